"""Publishing into real Redis: documents, the pointer switch, rollback, expiry, refusals, the DAG
and the CLI."""

from __future__ import annotations

import datetime as dt
import subprocess

import orjson
import pyarrow.compute as pc
import pytest
import redis

from audotics import lake
from audotics.lake import tables
from audotics.settings import Settings
from serving import keys
from serving.errors import PublishError
from serving.publish import RETIRED_TTL_S, publish_recommendations, rollback
from tests.serving.test_serving_support import NOW, TRICKY_TITLE, DemoLake, emptied
from tests.support import REPO, environment_for, stderr_on_a_terminal

VERSIONS = ["als-a", "als-b", "als-c"]
DEMO = DemoLake()


@pytest.fixture(scope="module")
def lake_settings(isolated_platform) -> Settings:
    settings = isolated_platform("serving_publish")
    DEMO.write(settings, VERSIONS, published="als-b")
    return settings


@pytest.fixture
def platform(lake_settings: Settings) -> Settings:
    """The module's platform with an empty Redis database."""
    return emptied(lake_settings)


@pytest.fixture
def client(platform: Settings) -> redis.Redis:
    return redis.Redis.from_url(platform.redis_dsn)


def stored(client: redis.Redis, key: str, field: str | None = None) -> dict | None:
    value = client.get(key) if field is None else client.hget(key, field)
    return None if value is None else orjson.loads(value)


def test_publish_loads_the_registry_version_with_track_metadata(platform, client) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = publish_recommendations(platform)
    after = dt.datetime.now(dt.UTC)

    assert (result.action, result.model_version, result.previous) == ("published", "als-b", None)
    users_with_lists = len({r["user_id"] for r in DEMO.recommendations(1)})
    assert (result.users, result.tracks) == (users_with_lists, len(DEMO.tracks) - 2)
    assert client.get(keys.CURRENT) == b"als-b"
    expected_users = DEMO.user_documents(1, "als-b", platform)
    for user in DEMO.users:
        assert stored(client, keys.users_key("als-b"), user) == expected_users.get(user)
    expected_tracks = DEMO.similar_documents(1, "als-b", platform)
    for track in DEMO.tracks:
        assert stored(client, keys.similar_key("als-b"), track) == expected_tracks.get(track)
    # Current catalog rows only, odd characters intact, unknown tracks with null metadata.
    documents = client.hvals(keys.users_key("als-b")) + client.hvals(keys.similar_key("als-b"))
    titles = {i["title"] for d in map(orjson.loads, documents) for i in d["items"]}
    assert "Old title" not in titles and None in titles
    assert TRICKY_TITLE in titles

    manifest = client.hgetall(keys.manifest_key("als-b"))
    assert manifest[b"status"] == b"ready"
    assert int(manifest[b"users"]) == result.users and int(manifest[b"format"]) == 1
    # Every document carries when training made it (the registry's created_at) and when this
    # publish loaded it, the manifest's publish time.
    published_at = dt.datetime.fromisoformat(manifest[b"published_at"].decode())
    assert before <= published_at <= after
    assert manifest[b"generated_at"] == NOW.isoformat().encode() == b"2026-11-04T00:00:00+00:00"
    popular = stored(client, keys.popular_key("als-b"))
    assert (popular["generated_at"], popular["published_at"]) == (
        "2026-11-04T00:00:00+00:00",
        published_at.isoformat(),
    )


def test_a_version_without_a_registry_row_has_a_null_generated_at(platform, client) -> None:
    registry = tables.MODEL_REGISTRY
    rows = lake.read_arrow(platform, registry)
    lake.write_arrow(platform, registry, rows.filter(pc.field("model_version") != "als-c"),
                     mode="overwrite")  # fmt: skip
    try:
        publish_recommendations(platform, model_version="als-c")
        document = stored(client, keys.users_key("als-c"), DEMO.users[1])
        assert document["generated_at"] is None and document["published_at"] is not None
        assert b"generated_at" not in client.hgetall(keys.manifest_key("als-c"))
    finally:
        lake.write_arrow(platform, registry, rows, mode="overwrite")


def test_popular_list_ranks_the_most_recommended_tracks(platform, client) -> None:
    publish_recommendations(platform)
    popular = stored(client, keys.popular_key("als-b"))

    rows = DEMO.recommendations(1)
    users = len({r["user_id"] for r in rows})
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["track_id"]] = counts.get(row["track_id"], 0) + 1
    expected = sorted(counts, key=lambda t: (-counts[t], t))[: DEMO.list_length]
    assert (popular["model_version"], popular["fallback"], popular["total"]) == ("als-b", True, 5)
    assert [i["track_id"] for i in popular["items"]] == expected
    assert [i["rank"] for i in popular["items"]] == [1, 2, 3, 4, 5]
    assert popular["items"][0]["score"] == round(counts[expected[0]] / users, 6)
    assert {i["source"] for i in popular["items"]} == {"popular"}


def test_the_readme_script_reads_pointer_and_document_at_once(platform, client) -> None:
    """The contract for apps that read Redis directly (serving/README.md) works as written."""
    readme = (REPO / "serving" / "README.md").read_text()
    script = readme.split("```lua\n", 1)[1].split("```", 1)[0]
    publish_recommendations(platform)

    def read(user: str) -> list:
        return client.eval(script, 1, keys.CURRENT, keys.VERSION_PREFIX, user)

    user = DEMO.users[1]
    version, document = read(user)
    assert (version, orjson.loads(document)) == (
        b"als-b",
        DEMO.user_documents(1, "als-b", platform)[user],
    )
    assert orjson.loads(read(DEMO.users[0])[1])["fallback"] is True


def test_publishing_the_current_version_again_changes_nothing(platform, client) -> None:
    publish_recommendations(platform)
    before = client.hgetall(keys.users_key("als-b"))

    again = publish_recommendations(platform)

    assert (again.action, again.model_version, again.load_seconds) == ("unchanged", "als-b", 0.0)
    assert client.hgetall(keys.users_key("als-b")) == before


def test_versions_switch_keep_the_previous_and_retire_older_ones(platform, client) -> None:
    for version in VERSIONS:
        result = publish_recommendations(platform, model_version=version)

    assert (result.model_version, result.previous, result.retired) == ("als-c", "als-b", ("als-a",))
    assert client.mget(keys.CURRENT, keys.PREVIOUS) == [b"als-c", b"als-b"]
    assert client.smembers(keys.VERSIONS) == {b"als-b", b"als-c"}
    for key in keys.version_keys("als-a"):
        assert 0 < client.ttl(key) <= RETIRED_TTL_S
    for key in keys.version_keys("als-b") + keys.version_keys("als-c"):
        assert client.ttl(key) == -1

    back = rollback(platform)
    assert (back.action, back.model_version, back.previous) == ("rolled_back", "als-b", "als-c")
    assert client.mget(keys.CURRENT, keys.PREVIOUS) == [b"als-b", b"als-c"]
    assert rollback(platform).model_version == "als-c"  # a second rollback goes forward again

    # A retired version published again is reloaded whole and no longer expires.
    reloaded = publish_recommendations(platform, model_version="als-a")
    assert (reloaded.model_version, reloaded.previous, reloaded.retired) == ("als-a", "als-c",
                                                                            ("als-b",))  # fmt: skip
    assert all(client.ttl(key) == -1 for key in keys.version_keys("als-a"))
    user = DEMO.users[1]
    assert (
        stored(client, keys.users_key("als-a"), user)
        == DEMO.user_documents(0, "als-a", platform)[user]
    )


def test_rollback_needs_a_complete_previous_version(platform, client) -> None:
    with pytest.raises(PublishError, match="nothing to roll back to"):
        rollback(platform)
    publish_recommendations(platform, model_version="als-a")
    publish_recommendations(platform, model_version="als-b")
    client.delete(keys.manifest_key("als-a"))
    with pytest.raises(PublishError, match="als-a is no longer complete"):
        rollback(platform)
    assert client.get(keys.CURRENT) == b"als-b"


def test_one_publisher_at_a_time(platform, client) -> None:
    client.set(keys.PUBLISH_LOCK, "someone else", ex=30)
    with pytest.raises(PublishError, match="another publish or rollback is running"):
        publish_recommendations(platform)
    assert client.get(keys.CURRENT) is None


def test_refusals_name_the_table_and_the_reason(platform, make_settings, tmp_path) -> None:
    with pytest.raises(PublishError, match=r"gold/recommendations \(version \d+\) has no rows for "
                       "model version als-zzz"):  # fmt: skip
        publish_recommendations(platform, model_version="als-zzz")
    with pytest.raises(keys.InvalidModelVersion, match="not usable as a Redis key part"):
        publish_recommendations(platform, model_version="als b*")

    empty_lake = make_settings(tmp_path, redis_url=platform.redis_dsn)
    with pytest.raises(PublishError, match="gold/recommendations does not exist yet"):
        publish_recommendations(empty_lake, model_version="als-a")
    DEMO.write(empty_lake, ["als-a"], published=None)
    with pytest.raises(PublishError, match="models/registry has no row with status 'published'"):
        publish_recommendations(empty_lake)


def test_the_dag_publishes_on_both_gold_assets(lake_settings, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder="dags/publish_recommendations.py")
    assert bag.import_errors == {}
    dag = bag.dags["publish_recommendations"]
    assert dag.task_ids == ["publish_recommendations"]
    assert {a.name for a in dag.timetable.asset_condition.objects} == {
        "gold/recommendations",
        "gold/similar_tracks",
    }
    settings = emptied(lake_settings)
    monkeypatch.setenv("AUDOTICS_HOME", str(settings.home))
    monkeypatch.setenv("AUDOTICS_REDIS_URL", settings.redis_dsn)
    summary = dag.get_task("publish_recommendations").python_callable()
    assert (summary["action"], summary["model_version"]) == ("published", "als-b")


def test_on_a_terminal_publish_draws_a_progress_bar_over_the_documents(lake_settings) -> None:
    settings = emptied(lake_settings)
    drawn = stderr_on_a_terminal(["audotics", "publish"], environment_for(settings))
    # 36 users and 28 tracks: drawn while they load, then cleared (the summary line stays).
    assert b"publish als-b:" in drawn and b"/64 [" in drawn, drawn[-500:]
    assert drawn.rstrip(b" ").endswith(b"\r"), drawn[-500:]


def test_cli_publishes_and_rolls_back(lake_settings) -> None:
    settings = emptied(lake_settings)
    publish_recommendations(settings, model_version="als-a")
    env = environment_for(settings)

    def audotics(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["audotics", *args], env=env, capture_output=True, text=True)

    published = audotics("publish")
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("published: als-b (36 users, 28 tracks")
    assert "previous: als-a" in published.stdout
    example = published.stdout.splitlines()[1]
    assert example.startswith(
        "try it (with `audotics serve` running): curl -H "
        "'X-API-Key: demo-key-change-me' 'http://127.0.0.1:8000/v1/users/"
    )
    assert example.split("/")[-2] in DEMO.user_documents(1, "als-b", settings)  # fmt: skip
    back = audotics("publish", "--rollback")
    assert back.stdout.startswith("rolled_back: als-a") and "previous: als-b" in back.stdout
    clash = audotics("publish", "--rollback", "--model-version", "als-a")
    assert clash.returncode == 2 and "exclude each other" in clash.stderr
