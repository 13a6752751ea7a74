"""The Redis keyspace of serving: the contract between `audotics publish`, the read API and any
app that reads Redis directly. serving/README.md documents it; change both together.

Every model version lives in its own keyspace `audotics:serving:v:<version>:*`. Readers follow
the `current` pointer, which publishing switches only once a version is wholly loaded and
verified, so a reader that reads the pointer and the value in one round trip (see
`READ_SCRIPT` in serving/api.py) never sees a partial or mixed version. While an A/B experiment
runs, the same script assigns each user an arm from EXPERIMENT and serves that arm's version.
"""

from __future__ import annotations

import re

from audotics.errors import AudoticsError

PREFIX = "audotics:serving"
# Version of the value format below (stored in each manifest): bump on incompatible change.
VALUE_FORMAT = 1

CURRENT = f"{PREFIX}:current"  # STRING: the model version readers get
PREVIOUS = f"{PREFIX}:previous"  # STRING: the version `audotics publish --rollback` returns to
VERSIONS = f"{PREFIX}:versions"  # SET: every version with keys in Redis (loading, live, kept)
PUBLISH_LOCK = f"{PREFIX}:publish-lock"  # STRING: held by the one publisher at work
# HASH of the running experiment (absent: none): `id`, `salt` and `arms`, see `arms_field`.
EXPERIMENT = f"{PREFIX}:experiment"

# Model versions become key names: keep them to a safe, readable alphabet.
_VERSION_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")


class InvalidModelVersion(AudoticsError):
    """A model version that cannot name a Redis keyspace."""


def checked_version(version: str) -> str:
    if not _VERSION_PATTERN.fullmatch(version):
        raise InvalidModelVersion(
            f"model version {version!r} is not usable as a Redis key part: use 1 to 128 of "
            "letters, digits, '.', '_' and '-'"
        )
    return version


VERSION_PREFIX = f"{PREFIX}:v:"  # + <version>:<users|similar|popular|manifest>


def version_prefix(version: str) -> str:
    return VERSION_PREFIX + checked_version(version)


def users_key(version: str) -> str:
    """HASH user_id -> the user's recommendations document."""
    return f"{version_prefix(version)}:users"


def similar_key(version: str) -> str:
    """HASH track_id -> the track's similar-tracks document."""
    return f"{version_prefix(version)}:similar"


def popular_key(version: str) -> str:
    """STRING: the version's popular list, served to users without recommendations."""
    return f"{version_prefix(version)}:popular"


def manifest_key(version: str) -> str:
    """HASH: status (loading or ready), counts and lineage of the loaded version."""
    return f"{version_prefix(version)}:manifest"


def version_keys(version: str) -> list[str]:
    return [users_key(version), similar_key(version), popular_key(version), manifest_key(version)]


def arms_field(arms: list[tuple[str, str, int]]) -> str:
    """The `arms` field of EXPERIMENT: `<arm> <version> <upper bucket>` per arm, space
    separated, in order. A user whose bucket (first 8 hex digits of sha1("<salt>:<user id>"),
    an integer below 2**32) is below an arm's upper bucket, and not below the one before it,
    gets that arm's version."""
    return " ".join(f"{checked_version(name)} {checked_version(version)} {upper}"
                    for name, version, upper in arms)  # fmt: skip


def arm_versions(field: bytes | None) -> set[str]:
    """The model versions of an `arms` field (None: no experiment)."""
    return set(field.decode().split()[1::3]) if field else set()


def rate_limit_key(key_id: str) -> str:
    """STRING: when (Unix ms) the token bucket of one API key is full again (GCRA); expires
    then. `key_id` is a digest, never the key itself."""
    return f"{PREFIX}:ratelimit:{key_id}"
