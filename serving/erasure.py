"""GDPR erasure in serving: a user's published recommendation documents out of Redis."""

from __future__ import annotations

from audotics.db import redis_client
from audotics.settings import Settings
from serving import keys


def erase_user(settings: Settings, user_id: str) -> int:
    """Remove the user's recommendation document from every version in Redis; returns how many
    were removed. A later read gets the fallback list, as for a new user."""
    client = redis_client(settings)
    versions = [version.decode() for version in client.smembers(keys.VERSIONS)]
    return sum(client.hdel(keys.users_key(version), user_id) for version in versions)
