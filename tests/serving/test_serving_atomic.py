"""Readers never see a partial or mixed version: continuous API readers during publishes and
rollbacks get, every time, exactly one version's whole document, and never an error."""

from __future__ import annotations

import random
import threading
import time

import httpx
import orjson
import redis

from serving import keys
from serving.publish import publish_recommendations, rollback
from tests.serving.test_serving_support import DemoLake, live_api
from tests.support import free_port

VERSIONS = ["als-1", "als-2", "als-3"]
KEY = "atomic-key"
# Big enough that loading a version spans many reader round trips.
DEMO = DemoLake(users=[f"{i:08x}-0000-4000-8000-000000000000" for i in range(3000)],
                list_length=20)  # fmt: skip
READERS = 4


class Reader(threading.Thread):
    """Reads random users (with and without lists) until told to stop."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.reads: list[tuple[float, str, int, bytes]] = []  # when, user, status, body

    def run(self) -> None:
        chooser = random.Random(self.name)
        with httpx.Client(base_url=self.url, headers={"X-API-Key": KEY}, timeout=5) as client:
            while not self.stop.is_set():
                user = chooser.choice(DEMO.users)
                try:
                    response = client.get(f"/v1/users/{user}/recommendations")
                    self.reads.append((time.monotonic(), user, response.status_code,
                                       response.content))  # fmt: skip
                except httpx.HTTPError as exc:
                    self.reads.append((time.monotonic(), user, 0, repr(exc).encode()))


def test_readers_see_whole_versions_through_publishes_and_rollbacks(isolated_platform) -> None:
    # Atomicity, not latency, is under test: a reply slowed past the 250 ms default by the
    # bulk loads on a busy machine would be a 503, not a torn version.
    settings = isolated_platform(
        "serving_atomic", api_keys=KEY, api_rate_limit_rps=0, api_redis_timeout_ms=2_000
    )
    DEMO.write(settings, VERSIONS, published=None)
    publish_recommendations(settings, model_version=VERSIONS[0])
    stop = threading.Event()
    windows: list[tuple[float, float]] = []  # when each publish or rollback ran

    with live_api(settings, free_port()) as url:
        readers = [Reader(url, stop) for _ in range(READERS)]
        for reader in readers:
            reader.start()
        time.sleep(0.3)
        for step in (
            lambda: publish_recommendations(settings, model_version=VERSIONS[1]),
            lambda: rollback(settings),
            lambda: publish_recommendations(settings, model_version=VERSIONS[2]),
        ):
            started = time.monotonic()
            step()
            windows.append((started, time.monotonic()))
            time.sleep(0.3)
        stop.set()
        for reader in readers:
            reader.join(10)

    # Every version is still in Redis (the retired one expires later): the whole documents.
    client = redis.Redis.from_url(settings.redis_dsn)
    whole: dict[str, dict[str, dict]] = {}
    for index, version in enumerate(VERSIONS):
        popular = orjson.loads(client.get(keys.popular_key(version)))
        documents = DEMO.user_documents(index, version, settings)
        whole[version] = {user: documents.get(user, popular) for user in DEMO.users}

    reads = [read for reader in readers for read in reader.reads]
    errors = [f"{status} {body[:200]!r}" for _, _, status, body in reads if status != 200]
    assert errors == []
    seen: list[str] = []
    for _, user, _, body in reads:
        answer = orjson.loads(body)
        assert (answer.pop("user_id"), answer.pop("experiment"), answer.pop("arm")) == (
            user,
            None,
            None,
        )
        assert answer == whole[answer["model_version"]][user]  # one version, whole
        seen.append(answer["model_version"])
    assert set(seen) == set(VERSIONS)
    # The readers really were reading while each version was being loaded.
    for started, ended in windows[0], windows[2]:
        assert sum(started <= when <= ended for when, *_ in reads) > 10
