"""Experiments end to end on real Redis and a real lake: the definition's checks, the CLI, and
the read API assigning users to arms (in its Lua script) through publish, rollback, stop and
promote."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from click.testing import CliRunner

from audotics.assignment import assign
from audotics.settings import Settings
from experiments.cli import experiment_group
from experiments.definition import Arm, Experiment, ExperimentError
from serving import keys
from serving.errors import PublishError
from serving.publish import publish_recommendations, rollback
from tests.serving.test_serving_support import DemoLake, emptied, live_api
from tests.support import environment_for, free_port

DEMO = DemoLake()
KEY = "key-one"
USERS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"experiment-user/{i}")) for i in range(600)]
ARMS = ("--arm", "control=als-a:0.5", "--arm", "challenger=als-b:0.5")


def experiment(**changes: object) -> Experiment:
    fields: dict[str, object] = dict(
        experiment_id="exp-1", salt="exp-1",
        arms=(Arm("control", "als-a", 0.5), Arm("challenger", "als-b", 0.5)),
        primary_metric="recommendation_minutes", guardrails=("skip_rate",), mde=0.02,
        sample_size=1000,
    )  # fmt: skip
    return Experiment(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"experiment_id": "has space"}, "experiment id 'has space'"),
        ({"salt": ""}, "salt: must not be empty"),
        ({"arms": (Arm("control", "als-a", 1.0),)}, "arms: need a control"),
        ({"arms": (Arm("a", "als-a", 0.5), Arm("a", "als-b", 0.5))}, "arms: names must differ"),
        ({"arms": (Arm("a", "als-a", 0.5), Arm("b", "als-b", 0.4))}, "shares must sum to 1"),
        ({"arms": (Arm("a", "als-a", 0.0), Arm("b", "als-b", 1.0))}, "arm a: share must be"),
        ({"guardrails": ("recommendation_minutes",)}, "guardrails: recommendation_minutes is"),
        ({"primary_metric": "minutes"}, "metric 'minutes': not one of"),
        ({"mde": 0.0}, "mde: must be a positive effect"),
        ({"sample_size": 1}, "sample size: must be at least one user per arm"),
    ],
)
def test_an_invalid_definition_names_the_field_and_the_reason(changes, message) -> None:
    with pytest.raises(ExperimentError, match=message):
        experiment(**changes)


@pytest.fixture(scope="module")
def lake_settings(isolated_platform) -> Settings:
    settings = isolated_platform(
        "experiments", api_keys=KEY, api_rate_limit_rps=0, api_failed_key_rps=0
    )
    DEMO.write(settings, ["als-a", "als-b", "als-c"], published="als-a")
    return settings


@pytest.fixture
def platform(lake_settings: Settings, monkeypatch) -> Settings:
    """Redis emptied, then als-a and als-b published (als-b current, als-a previous); the
    CLI's environment pointed at it. Each test starts experiments of ids of its own."""
    settings = emptied(lake_settings)
    for name, value in environment_for(settings).items():
        monkeypatch.setenv(name, value)
    publish_recommendations(settings, "als-a")
    publish_recommendations(settings, "als-b")
    return settings


@pytest.fixture
def client(platform: Settings) -> redis.Redis:
    return redis.Redis.from_url(platform.redis_dsn)


@pytest.fixture(scope="module")
def api(lake_settings: Settings) -> Iterator[httpx.Client]:
    with (
        live_api(lake_settings, free_port()) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=5) as client,
    ):
        yield client


def cli(*args: str) -> str:
    result = CliRunner().invoke(experiment_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def start(experiment_id: str, *arms: str, salt: str | None = None) -> str:
    plan = ["--metric", "recommendation_minutes", "--guardrail", "skip_rate", "--mde", "0.02",
            "--sample-size", "600"]  # fmt: skip
    return cli("start", experiment_id, *arms, *plan, *(["--salt", salt] if salt else []))


def served(api: httpx.Client, user: str) -> tuple[str | None, str | None, str]:
    answer = api.get(f"/v1/users/{user}/recommendations").json()
    return answer["experiment"], answer["arm"], answer["model_version"]


def status(experiment_id: str) -> dict:
    return next(
        e for e in json.loads(cli("status", "--json")) if e["experiment_id"] == experiment_id
    )


def test_start_refuses_a_version_not_loaded_in_serving(platform, client) -> None:
    with pytest.raises(PublishError, match="arm challenger: model version als-c is not loaded"):
        start("exp-refused", "--arm", "control=als-b:0.5", "--arm", "challenger=als-c:0.5")
    assert client.exists(keys.EXPERIMENT) == 0
    assert "exp-refused" not in cli("status")


def test_users_keep_their_arm_and_the_split_matches_the_shares(platform, api) -> None:
    start("exp-split", "--arm", "control=als-a:0.3", "--arm", "challenger=als-b:0.7", salt="s-1")
    arms = {"control": "als-a", "challenger": "als-b"}

    first = [served(api, user) for user in USERS]
    second = [served(api, user) for user in USERS]

    assert first == second
    # The Lua script assigns exactly as the Python function does, and serves the arm's version.
    expected = [["control", "challenger"][assign("s-1", user, [0.3, 0.7])] for user in USERS]
    assert first == [("exp-split", arm, arms[arm]) for arm in expected]
    observed = [expected.count("control"), expected.count("challenger")]
    chi_square = sum((o - e) ** 2 / e for o, e in zip(observed, [180, 420], strict=True))
    assert chi_square < 10.83, observed  # p > 0.001 at 1 degree of freedom
    # Similar tracks are not part of the experiment: still the current version, no fields.
    similar = api.get(f"/v1/tracks/{DEMO.tracks[0]}/similar").json()
    assert similar["model_version"] == "als-b" and "arm" not in similar
    assert status("exp-split")["arms"] == [
        {"name": "control", "model_version": "als-a", "share": 0.3},
        {"name": "challenger", "model_version": "als-b", "share": 0.7},
    ]


def test_publish_and_rollback_keep_every_arm_version(platform, client, api) -> None:
    start("exp-keep", *ARMS)
    control = next(u for u in USERS if served(api, u)[1] == "control")

    result = publish_recommendations(platform, "als-c")  # als-a is neither current nor previous

    assert (result.previous, result.retired) == ("als-b", ())
    assert b"als-a" in client.smembers(keys.VERSIONS)
    assert all(client.ttl(key) == -1 for key in keys.version_keys("als-a"))
    assert served(api, control) == ("exp-keep", "control", "als-a")
    rollback(platform)
    assert served(api, control) == ("exp-keep", "control", "als-a")
    assert served(api, USERS[0])[0] == "exp-keep"


def test_stop_serves_the_current_version_again(platform, client, api) -> None:
    start("exp-stop", *ARMS)
    cli("stop", "exp-stop")

    assert client.exists(keys.EXPERIMENT) == 0
    assert {served(api, user) for user in USERS[:50]} == {(None, None, "als-b")}
    assert status("exp-stop")["status"] == "stopped"
    with pytest.raises(ExperimentError, match="exp-stop is stopped, not running"):
        cli("stop", "exp-stop")


def test_promote_makes_the_arm_version_current_and_ends_the_experiment(platform, client, api):
    start("exp-promote", *ARMS)
    output = cli("promote", "exp-promote", "control")

    assert "promoted" in output
    assert client.mget(keys.CURRENT, keys.PREVIOUS) == [b"als-a", b"als-b"]
    assert client.exists(keys.EXPERIMENT) == 0
    assert {served(api, user) for user in USERS[:50]} == {(None, None, "als-a")}
    recorded = status("exp-promote")
    assert (recorded["status"], recorded["promoted_arm"]) == ("promoted", "control")
    assert recorded["created_at"] < recorded["status_changed_at"]
