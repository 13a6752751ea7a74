"""The read API over real Redis, served by a real uvicorn server: answers, auth, validation,
rate limits, probes, metrics, OpenAPI, and a schemathesis fuzz run that must find no 5xx."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audotics.settings import Settings
from serving import keys
from serving.api import create_app
from serving.publish import publish_recommendations
from serving.schema import Recommendations, SimilarTracks
from tests.serving.test_serving_support import DemoLake, live_api, published_times
from tests.support import environment_for, free_port

DEMO = DemoLake()
KEY, OTHER_KEY = "key-one", "key-two"
USER = DEMO.users[1]  # has a list
USER_WITHOUT_LIST = DEMO.users[0]
TRACK = DEMO.tracks[0]


@pytest.fixture(scope="module")
def platform(isolated_platform) -> Settings:
    settings = isolated_platform(
        # A limit too high to reach, as in the benchmark (its bucket outruns float precision).
        # No failed-key throttle: the fuzzer sends hundreds of bad keys from one address and
        # wants a 401 for each (the throttle's tests are in test_serving_hardening.py).
        "serving_api", api_keys=f"{KEY},{OTHER_KEY}", api_rate_limit_rps=1e9,
        api_rate_limit_burst=10**9, api_failed_key_rps=0,
    )  # fmt: skip
    DEMO.write(settings, ["als-a"], published="als-a")
    publish_recommendations(settings)
    return settings


@pytest.fixture(scope="module")
def base_url(platform: Settings) -> Iterator[str]:
    with live_api(platform, free_port()) as url:
        yield url


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=5) as client:
        yield client


def recommendations(user: str, query: str = "") -> str:
    return f"/v1/users/{user}/recommendations{query}"


def test_recommendations_are_the_published_documents(api, platform) -> None:
    response = api.get(recommendations(USER))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = {
        "user_id": USER,
        "experiment": None,
        "arm": None,
        **DEMO.user_documents(0, "als-a", platform)[USER],
    }
    assert response.json() == expected
    Recommendations.model_validate_json(response.content)
    # Ids are matched in canonical lowercase.
    assert api.get(recommendations(USER.upper())).json() == expected


def test_limit_and_offset_slice_the_list(api, platform) -> None:
    items = DEMO.user_documents(0, "als-a", platform)[USER]["items"]

    sliced = api.get(recommendations(USER, "?limit=2&offset=1")).json()
    assert (sliced["items"], sliced["total"], sliced["user_id"]) == (items[1:3], 5, USER)
    assert api.get(recommendations(USER, "?offset=4")).json()["items"] == items[4:]
    assert api.get(recommendations(USER, "?offset=10")).json()["items"] == []
    assert api.get(recommendations(USER, "?limit=100&unknown=1")).json()["items"] == items


def test_users_without_recommendations_get_the_popular_list(api, platform) -> None:
    popular = redis.Redis.from_url(platform.redis_dsn).get(keys.popular_key("als-a"))
    for user in (USER_WITHOUT_LIST, str(uuid.uuid4())):
        body = api.get(recommendations(user, "?limit=3")).json()
        assert (body["user_id"], body["fallback"], body["model_version"]) == (user, True, "als-a")
        assert body["items"] == httpx.Response(200, content=popular).json()["items"][:3]
        assert {item["source"] for item in body["items"]} == {"popular"}


def test_similar_tracks(api, platform) -> None:
    expected = {"track_id": TRACK, **DEMO.similar_documents(0, "als-a", platform)[TRACK]}
    response = api.get(f"/v1/tracks/{TRACK}/similar")
    assert response.json() == expected
    SimilarTracks.model_validate_json(response.content)
    limited = api.get(f"/v1/tracks/{TRACK}/similar?limit=1&offset=2").json()  # no offset here
    assert limited["items"] == expected["items"][:1]

    missing = api.get(f"/v1/tracks/{DEMO.tracks[-1]}/similar")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": f"track {DEMO.tracks[-1]} has no similar tracks in model version als-a",
        "parameter": "track_id",
    }


def test_every_v1_route_needs_a_known_api_key(base_url) -> None:
    for path in (recommendations(USER), f"/v1/tracks/{TRACK}/similar"):
        missing = httpx.get(base_url + path)
        assert missing.status_code == 401
        assert missing.json()["message"] == (
            "missing X-API-Key header: every /v1 route needs an API key"
        )
        wrong = httpx.get(base_url + path, headers={"X-API-Key": "guess"})
        assert (wrong.status_code, wrong.json()["error"]) == (401, "unauthorized")
        assert httpx.get(base_url + path, headers={"X-API-Key": OTHER_KEY}).status_code == 200
    for probe in ("/healthz", "/readyz", "/metrics", "/docs"):
        assert httpx.get(base_url + probe).status_code == 200


@pytest.mark.parametrize(
    ("path", "parameter", "message"),
    [
        (recommendations("not-a-uuid"), "user_id",
         "user_id must be a UUID such as 123e4567-e89b-12d3-a456-426614174000; got 'not-a-uuid'"),
        ("/v1/tracks/12345/similar", "track_id", "track_id must be a UUID such as "),
        (recommendations(USER, "?limit=0"), "limit",
         "limit must be a whole number from 1 to 100; got '0'"),
        (recommendations(USER, "?limit=101"), "limit", "from 1 to 100; got '101'"),
        (recommendations(USER, "?limit=ten"), "limit", "got 'ten'"),
        (recommendations(USER, "?limit="), "limit", "got ''"),
        (recommendations(USER, "?offset=-1"), "offset",
         "offset must be a whole number from 0 to 10000; got '-1'"),
        (recommendations(USER, "?offset=10001"), "offset", "got '10001'"),
    ],
)  # fmt: skip
def test_invalid_parameters_are_named_in_a_422(api, path, parameter, message) -> None:
    response = api.get(path)
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["parameter"]) == ("invalid_parameter", parameter)
    assert body["message"].startswith(message) or message in body["message"]


def test_unknown_routes_and_methods_get_json_errors(api) -> None:
    for path in ("/v1/users", "/v1/users/x/y/recommendations", "/nowhere"):
        response = api.get(path)
        assert (response.status_code, response.json()["error"]) == (404, "not_found")
    post = api.post(recommendations(USER))
    assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
    assert post.json()["error"] == "method_not_allowed"


def test_rate_limit_is_per_key_and_shared_by_workers(platform) -> None:
    """Two servers stand for two workers: one bucket per key in Redis serves both."""
    limited = platform.model_copy(
        update={"api_keys": "limited-1,limited-2", "api_rate_limit_rps": 2.0,
                "api_rate_limit_burst": 3}
    )  # fmt: skip
    with live_api(limited, free_port()) as first, live_api(limited, free_port()) as second:
        path = recommendations(USER)
        statuses = [
            httpx.get(url + path, headers={"X-API-Key": "limited-1"}).status_code
            for url in (first, second, first, second)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = httpx.get(first + path, headers={"X-API-Key": "limited-1"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "error": "rate_limited",
            "message": "rate limit of 2 requests/s (burst 3) for this API key exceeded: "
            "retry in 1 s",
        }
        assert httpx.get(first + path, headers={"X-API-Key": "limited-2"}).status_code == 200
        time.sleep(0.6)  # a token refills every 0.5 s
        assert httpx.get(second + path, headers={"X-API-Key": "limited-1"}).status_code == 200


def test_readiness_follows_the_published_pointer(api, platform) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {
        "status": "ready",
        "model_version": "als-a",
        **published_times(platform, "als-a"),
    }
    client = redis.Redis.from_url(platform.redis_dsn)
    client.rename(keys.CURRENT, "parked")
    try:
        not_ready = api.get("/readyz")
        assert (not_ready.status_code, not_ready.json()["error"]) == (503, "not_ready")
        read = api.get(recommendations(USER))
        assert (read.status_code, read.json()["error"]) == (503, "not_ready")
        assert read.headers["retry-after"] == "5"
    finally:
        client.rename("parked", keys.CURRENT)


def test_metrics_count_requests_by_route_and_status(api) -> None:
    def count(route: str, status: int) -> float:
        line = f'audotics_api_request_duration_seconds_count{{route="{route}",status="{status}"}}'
        for row in api.get("/metrics").text.splitlines():
            if row.startswith(line):
                return float(row.split()[-1])
        return 0.0

    route = "/v1/users/{user_id}/recommendations"
    before = (count(route, 200), count(route, 422), count("unmatched", 404))
    for _ in range(3):
        api.get(recommendations(USER))
    api.get(recommendations("bad"))
    api.get("/nowhere/at/all")
    after = (count(route, 200), count(route, 422), count("unmatched", 404))
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 1, 1]
    assert count("/metrics", 200) >= 1


def test_openapi_documents_the_v1_routes(api) -> None:
    schema = api.get("/openapi.json").json()
    operation = schema["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["user_id", "limit", "offset"]
    assert set(operation["responses"]) == {"200", "401", "422", "429", "500", "503"}
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert {"Recommendations", "SimilarTracks", "ErrorBody"} <= set(schema["components"]["schemas"])
    assert "swagger-ui" in api.get("/docs").text
    assert schema == OPENAPI


# The schema the server publishes at /openapi.json (test_openapi_... checks they are equal).
OPENAPI = create_app(Settings(_env_file=None)).docs.openapi()
fuzzed = schemathesis.openapi.from_dict(OPENAPI)
FUZZ_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    ignored_auth,
]


@fuzzed.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzing_the_openapi_schema_finds_no_server_error(case, base_url) -> None:
    """Valid and invalid requests alike: never a 5xx, only documented statuses, content types
    and bodies. (Not checked: that invalid input is refused, since unknown query parameters
    are ignored on purpose and the key is added to every request.)"""
    case.call_and_validate(base_url=base_url, headers={"X-API-Key": KEY}, checks=FUZZ_CHECKS)


def test_audotics_serve_runs_workers_that_add_up_their_metrics(platform, tmp_path) -> None:
    env = environment_for(platform) | {"AUDOTICS_API_KEYS": KEY, "AUDOTICS_API_WORKERS": "2"}
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            ["audotics", "serve", "--port", str(port)], env=env, stdout=output, stderr=output
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            time.sleep(0.2)
        for _ in range(20):  # a new connection each: the kernel spreads them over the workers
            answer = httpx.get(url + recommendations(USER), headers={"X-API-Key": KEY})
            assert answer.json()["model_version"] == "als-a"
        route = "/v1/users/{user_id}/recommendations"
        counted = f'audotics_api_request_duration_seconds_count{{route="{route}",status="200"}}'
        assert f"{counted} 20.0" in httpx.get(f"{url}/metrics").text
    finally:
        server.terminate()
        assert server.wait(30) == 0, log.read_text()
