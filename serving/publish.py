"""Publish a model version from the lake into Redis, and roll back to the previous one.

A publish reads the version's rows from the lake (`serving.lake_rows`), bulk loads them into
the version's own keyspace and verifies the key counts (`serving.bulk_load`), and only then
switches the `current` pointer (one MULTI/EXEC). The version it replaces stays as `previous`
for an instant rollback; any older one expires, unless an arm of the running experiment serves
it. One publisher at a time holds a Redis lock, also to start, stop or promote an experiment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import redis

from audotics.db import redis_client
from audotics.settings import Settings
from serving import keys
from serving.bulk_load import load_version, publish_lock
from serving.errors import PublishError
from serving.lake_rows import published_model_version, read_version

log = logging.getLogger(__name__)

RETIRED_TTL_S = 600  # grace before an older version's keys vanish (apps caching the pointer)


@dataclass(frozen=True)
class PublishResult:
    action: str  # "published", "unchanged" (already current), "rolled_back" or "promoted"
    model_version: str  # the version now current
    previous: str | None  # the version a rollback would return to
    users: int  # recommendation documents of the current version
    tracks: int  # similar-tracks documents of the current version
    retired: tuple[str, ...]  # older versions now expiring
    seconds: float  # the whole call
    load_seconds: float  # building documents and writing them to Redis (0 if nothing loaded)

    def summary(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        loaded = self.users + self.tracks
        rate = f", {loaded / self.load_seconds:,.0f} documents/s" if self.load_seconds else ""
        return (
            f"{self.action}: {self.model_version} ({self.users:,} users, {self.tracks:,} tracks"
            f"{rate}) in {self.seconds:.2f}s; previous: {self.previous or '-'}"
            + (f"; retiring: {', '.join(self.retired)}" if self.retired else "")
        )


def example_curl(settings: Settings, model_version: str) -> str:
    """A working request to `audotics serve` for a user of `model_version`. The key is shown
    only if it is the shipped demo key: real keys stay out of terminals and logs."""
    user = _text(redis_client(settings).hrandfield(keys.users_key(model_version)))
    demo_key = Settings.model_fields["api_keys"].default
    key = demo_key if demo_key in settings.api_key_set else "<a key of AUDOTICS_API_KEYS>"
    url = f"http://{settings.api_host}:{settings.api_port}/v1/users/{user}/recommendations"
    return f"curl -H 'X-API-Key: {key}' '{url}?limit=5'"


def publish_recommendations(settings: Settings, model_version: str | None = None) -> PublishResult:
    """Make `model_version` (default: the registry's published model) the one Redis serves.

    Idempotent: a version that is already current and complete is left as it is; any other
    is reloaded from scratch into its own keyspace before readers are switched to it."""
    started = time.perf_counter()
    version = keys.checked_version(model_version or published_model_version(settings))
    with _redis_errors():
        client = redis_client(settings)
        if _is_current(client, version):
            return _unchanged(client, version, started)
        rows = read_version(settings, version)
        with publish_lock(client) as lock:
            if _is_current(client, version):  # another publisher got there first
                return _unchanged(client, version, started)
            load_started = time.perf_counter()
            load_version(client, rows, lock)
            load_seconds = time.perf_counter() - load_started
            previous = _switch(client, version)
            retired = _retire(client, keep={version, previous})
    result = PublishResult(
        "published", version, previous, rows.users, rows.tracks, retired,
        time.perf_counter() - started, load_seconds,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


def rollback(settings: Settings) -> PublishResult:
    """Switch readers back to the previous version; a second rollback returns to the first."""
    started = time.perf_counter()
    with _redis_errors():
        client = redis_client(settings)
        with publish_lock(client):
            current, previous = (_text(v) for v in client.mget(keys.CURRENT, keys.PREVIOUS))
            if previous is None:
                raise PublishError("nothing to roll back to: no previous version in Redis")
            manifest = _manifest(client, previous)
            if manifest.get("status") != "ready":
                raise PublishError(
                    f"previous version {previous} is no longer complete in Redis: publish it "
                    f"again with --model-version {previous}"
                )
            with client.pipeline(transaction=True) as pipe:
                pipe.set(keys.CURRENT, previous)
                if current is not None:
                    pipe.set(keys.PREVIOUS, current)
                pipe.execute()
    result = PublishResult(
        "rolled_back", previous, current, int(manifest["users"]), int(manifest["tracks"]), (),
        time.perf_counter() - started, 0.0,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


def serve_experiment(
    settings: Settings, experiment_id: str, salt: str, arms: list[tuple[str, str, int]]
) -> None:
    """Split user traffic between `arms` (name, version, upper bucket: see `keys.arms_field`);
    refuses a version that is not wholly loaded, and a second experiment."""
    with _redis_errors():
        client = redis_client(settings)
        with publish_lock(client):
            running = _text(client.hget(keys.EXPERIMENT, "id"))
            if running is not None:
                raise PublishError(f"experiment {running} is running: stop or promote it first")
            loaded = {_text(v) for v in client.smembers(keys.VERSIONS)}
            for name, version, _ in arms:
                if version not in loaded or _manifest(client, version).get("status") != "ready":
                    raise PublishError(
                        f"arm {name}: model version {version} is not loaded in Redis: publish "
                        f"it first (audotics publish --model-version {version})"
                    )
            client.hset(
                keys.EXPERIMENT,
                mapping={"id": experiment_id, "salt": salt, "arms": keys.arms_field(arms)},
            )


def serving_experiment(settings: Settings) -> str | None:
    """The id of the experiment whose arms the read API serves, or None."""
    with _redis_errors():
        return _text(redis_client(settings).hget(keys.EXPERIMENT, "id"))


def end_experiment(settings: Settings, promoted: str | None = None) -> PublishResult | None:
    """Serve every user the current version again; with `promoted`, first make that (loaded)
    version current, as a publish would."""
    started = time.perf_counter()
    with _redis_errors():
        client = redis_client(settings)
        with publish_lock(client):
            if promoted is None:
                client.delete(keys.EXPERIMENT)
                return None
            manifest = _manifest(client, promoted)
            if manifest.get("status") != "ready":
                raise PublishError(f"model version {promoted} is not wholly loaded in Redis")
            previous = _switch(client, promoted)
            client.delete(keys.EXPERIMENT)  # after the switch: its arm's users see no change
            retired = _retire(client, keep={promoted, previous})
    result = PublishResult(
        "promoted", promoted, previous, int(manifest["users"]), int(manifest["tracks"]),
        retired, time.perf_counter() - started, 0.0,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


def _switch(client: redis.Redis, version: str) -> str | None:
    """Point readers at `version`, keep the one it replaces as previous; return previous."""
    current = _text(client.get(keys.CURRENT))
    with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.CURRENT, version)
        if current is not None and current != version:
            pipe.set(keys.PREVIOUS, current)
        pipe.get(keys.PREVIOUS)
        return _text(pipe.execute()[-1])


def _retire(client: redis.Redis, keep: set[str | None]) -> tuple[str, ...]:
    """Let every version expire but the current, the previous and the running arms' ones."""
    keep = keep | keys.arm_versions(client.hget(keys.EXPERIMENT, "arms"))
    retired = sorted({_text(v) for v in client.smembers(keys.VERSIONS)} - keep)
    with client.pipeline(transaction=False) as pipe:
        for version in retired:
            for key in keys.version_keys(version):
                pipe.expire(key, RETIRED_TTL_S)
            pipe.srem(keys.VERSIONS, version)
        pipe.execute()
    return tuple(retired)


def _is_current(client: redis.Redis, version: str) -> bool:
    return (
        _text(client.get(keys.CURRENT)) == version
        and _manifest(client, version).get("status") == "ready"
    )


def _unchanged(client: redis.Redis, version: str, started: float) -> PublishResult:
    manifest = _manifest(client, version)
    result = PublishResult(
        "unchanged", version, _text(client.get(keys.PREVIOUS)), int(manifest["users"]),
        int(manifest["tracks"]), (), time.perf_counter() - started, 0.0,
    )  # fmt: skip
    log.info("%s", result.line())
    return result


def _manifest(client: redis.Redis, version: str) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in client.hgetall(keys.manifest_key(version)).items()}


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise PublishError(f"Redis failed during publish: {exc}") from exc
