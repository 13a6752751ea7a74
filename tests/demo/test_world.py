"""The demo world generator on a real PostgreSQL and real files: determinism, the app schema,
the event file contract, the behaviour a recommender can learn, bad records that match the
manifest, re-runs, and the CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import orjson
import pytest

from audotics import db
from audotics.assignment import assign
from audotics.settings import Settings
from demo.world import TINY_WORLD, WorldError, generate_world, load_manifest, with_overrides
from demo.world.bad_records import BAD_KINDS
from demo.world.jsonlines import assemble, integers, iso_times, quoted
from experiments import definition

WORLD = {**TINY_WORLD, "world_events_per_day": 5_000, "world_bad_record_rate": 0.03}
CONTRACT_FIELDS = (
    "event_id", "event_type", "user_id", "track_id", "ts", "ms_played", "context",
    "playlist_id", "model_version", "experiment", "arm", "device", "country",
)  # fmt: skip
TABLE_COLUMNS = {
    "users": ["user_id", "username", "email", "country", "birth_year", "subscription",
              "created_at", "updated_at"],
    "artists": ["artist_id", "name", "country", "genre", "created_at", "updated_at"],
    "tracks": ["track_id", "title", "artist_id", "album", "genre", "duration_ms", "release_date",
               "danceability", "energy", "valence", "tempo", "acousticness", "instrumentalness",
               "loudness", "created_at", "updated_at"],
    "playlists": ["playlist_id", "owner_user_id", "name", "is_public", "created_at",
                  "updated_at"],
    "playlist_tracks": ["playlist_id", "track_id", "position", "added_at", "updated_at"],
}  # fmt: skip
FILE_NAME = re.compile(r"date=(\d{4}-\d{2}-\d{2})/events-(\d{4}-\d{2}-\d{2})T(\d{2})\.jsonl\.gz")


@dataclass
class Line:
    file_hour: dt.datetime
    raw: bytes
    event: dict | None  # parsed, if the line is valid JSON


@dataclass
class World:
    settings: Settings
    manifest: object
    rows: dict[str, list[tuple]]
    files: dict[str, bytes]
    lines: list[Line]


def table_rows(settings: Settings) -> dict[str, list[tuple]]:
    with db.connect(settings) as conn:
        return {
            table: conn.execute(f"select * from app.{table} order by 1, 2").fetchall()
            for table in TABLE_COLUMNS
        }


def event_files(settings: Settings) -> dict[str, bytes]:
    root = Path(settings.landing_root) / "events"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.gz"))}


def parse_lines(files: dict[str, bytes]) -> list[Line]:
    lines = []
    for name, data in files.items():
        _, day, hour = FILE_NAME.fullmatch(name).groups()
        file_hour = dt.datetime.fromisoformat(f"{day}T{hour}:00:00+00:00")
        for raw in gzip.decompress(data).splitlines():
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                event = None
            lines.append(Line(file_hour, raw, event))
    return lines


@pytest.fixture(scope="module")
def world(isolated_platform) -> World:
    settings = isolated_platform("world", **WORLD)
    manifest = generate_world(settings, progress=False)
    files = event_files(settings)
    return World(settings, manifest, table_rows(settings), files, parse_lines(files))


def ts_of(event: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(event["ts"])


def similarity(a: Counter, b: Counter) -> float:
    """Cosine similarity of two count vectors."""
    dot = sum(a[k] * b[k] for k in a)
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def classify(lines: list[Line], world: World) -> tuple[list[dict], Counter]:
    """An independent check of every line, in arrival order: the valid events (first
    occurrence of each event_id) and the bad lines per kind."""
    users = {str(row[0]) for row in world.rows["users"]}
    tracks = {str(row[0]) for row in world.rows["tracks"]}
    launch = dt.datetime.combine(world.settings.service_launch_date, dt.time(), dt.UTC)
    end = dt.datetime.combine(world.settings.world_start_date, dt.time(), dt.UTC) + dt.timedelta(
        days=world.settings.world_days
    )
    types = {"event_id": str, "event_type": str, "user_id": str, "track_id": str, "ts": str}
    seen: set[str] = set()
    valid, bad = [], Counter()

    def kind(event: dict | None) -> str | None:
        if event is None:
            return "malformed_json"
        if any(f not in event for f in (*types, "ms_played")):
            return "missing_field"
        if (
            any(not isinstance(event[f], t) for f, t in types.items())
            or type(event["ms_played"]) is not int
        ):
            return "wrong_type"
        if event["event_type"] not in ("play", "skip", "like", "playlist_add"):
            return "unknown_event_type"
        if ts_of(event) >= end:
            return "ts_future"
        if ts_of(event) < launch:
            return "ts_before_launch"
        if event["user_id"] not in users:
            return "unknown_user"
        if event["track_id"] not in tracks:
            return "unknown_track"
        if event["event_id"] in seen:
            return "duplicate_event_id"
        return None

    for line in lines:
        problem = kind(line.event)
        if problem:
            bad[problem] += 1
        else:
            seen.add(line.event["event_id"])
            valid.append({**line.event, "file_hour": line.file_hour})
    return valid, bad


@pytest.fixture(scope="module")
def valid_events(world: World) -> list[dict]:
    return classify(world.lines, world)[0]


# --- determinism --------------------------------------------------------------------------------


def test_same_settings_and_seed_give_identical_files_and_rows(world, isolated_platform) -> None:
    again = isolated_platform("world_again", **WORLD)
    generate_world(again, progress=False)
    assert event_files(again) == world.files  # byte for byte
    assert table_rows(again) == world.rows

    other_seed = isolated_platform("world_other_seed", **WORLD, world_seed=7)
    generate_world(other_seed, progress=False)
    assert table_rows(other_seed)["users"] != world.rows["users"]


# --- the app database ---------------------------------------------------------------------------


def test_app_tables_follow_the_contract(world) -> None:
    settings = world.settings
    with db.connect(settings) as conn:
        columns = conn.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'app' order by table_name, ordinal_position"
        ).fetchall()
        keys = conn.execute(
            "select tc.table_name, tc.constraint_type, count(*) "
            "from information_schema.table_constraints tc where tc.table_schema = 'app' "
            "and tc.constraint_type in ('PRIMARY KEY', 'FOREIGN KEY', 'UNIQUE') "
            "group by 1, 2 order by 1, 2"
        ).fetchall()
        sound = dict(conn.execute("select genre, avg(acousticness) from app.tracks group by 1"))
        energy = dict(conn.execute("select genre, avg(energy) from app.tracks group by 1"))
        orphans = conn.execute(
            "select (select count(*) from app.tracks t left join app.artists a using (artist_id)"
            "         where a.artist_id is null)"
            "     + (select count(*) from app.playlist_tracks p left join app.tracks t"
            "         using (track_id) where t.track_id is null)"
        ).fetchone()[0]
        release_after_creation = conn.execute(
            "select count(*) from app.tracks where release_date > (created_at at time zone 'UTC')"
        ).fetchone()[0]
        added_too_early = conn.execute(
            "select count(*) from app.playlist_tracks e join app.playlists p using (playlist_id)"
            " join app.tracks t using (track_id)"
            " where e.added_at < p.created_at or e.added_at < t.created_at"
            "    or p.updated_at < e.added_at"
        ).fetchone()[0]
    by_table = defaultdict(list)
    for table, column in columns:
        by_table[table].append(column)
    assert dict(by_table) == TABLE_COLUMNS
    assert keys == [
        ("artists", "PRIMARY KEY", 1),
        ("playlist_tracks", "FOREIGN KEY", 2),
        ("playlist_tracks", "PRIMARY KEY", 1),
        ("playlists", "FOREIGN KEY", 1),
        ("playlists", "PRIMARY KEY", 1),
        ("tracks", "FOREIGN KEY", 1),
        ("tracks", "PRIMARY KEY", 1),
        ("users", "PRIMARY KEY", 1),
        ("users", "UNIQUE", 1),
    ]
    assert orphans == 0
    assert release_after_creation == 0
    assert added_too_early == 0
    # Audio features carry the genre: classical is acoustic and calm, metal loud and energetic.
    assert sound["classical"] > 0.7 > 0.2 > sound["metal"]
    assert energy["metal"] > 0.8 > 0.3 > energy["classical"]

    counts = {table: len(rows) for table, rows in world.rows.items()}
    assert counts == world.manifest.catalog
    assert counts["users"] == WORLD["world_users"]
    assert counts["artists"] == WORLD["world_artists"]
    assert counts["tracks"] == WORLD["world_tracks"]
    assert counts["playlists"] > 0 and counts["playlist_tracks"] > counts["playlists"]


def test_rows_change_after_creation_but_never_before(world) -> None:
    first_day = world.settings.world_start_date
    start = dt.datetime.combine(first_day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=world.settings.world_days)
    for table in ("users", "artists", "tracks", "playlists"):
        rows = world.rows[table]
        created, updated = TABLE_COLUMNS[table].index("created_at"), -1
        assert all(row[updated] >= row[created] for row in rows), table
        assert all(row[updated] < end for row in rows), table
    users = world.rows["users"]
    assert sum(row[-1] > row[-2] for row in users) > 0.2 * len(users)  # some were updated
    new_users = [row for row in users if row[-2] >= start]
    assert 0.05 * len(users) < len(new_users) < 0.2 * len(users)  # sign-ups during the world
    new_tracks = [row for row in world.rows["tracks"] if row[6] >= first_day]
    assert new_tracks, "some tracks are released during the generated days"


# --- the event files ----------------------------------------------------------------------------


def test_one_file_per_hour_with_the_manifests_line_counts(world) -> None:
    names = list(world.files)
    days = [world.settings.world_start_date + dt.timedelta(days=d) for d in range(2)]
    assert names == [f"date={d}/events-{d}T{h:02d}.jsonl.gz" for d in days for h in range(24)]
    lines = Counter(str(line.file_hour.strftime("date=%Y-%m-%d/events-%Y-%m-%dT%H.jsonl.gz"))
                    for line in world.lines)  # fmt: skip
    assert dict(lines) == world.manifest.files
    root = Path(world.settings.landing_root) / "events"
    assert not list(root.rglob(".*")), "no temporary files are left"
    assert load_manifest(world.settings) == world.manifest
    # Time of day: the evening is busier than the night.
    assert world.manifest.files[names[20]] > 3 * world.manifest.files[names[4]]
    for day, counts in world.manifest.days.items():
        assert counts.lines == WORLD["world_events_per_day"], day


def test_lines_are_canonical_json(world) -> None:
    # Every line that parses is byte for byte what orjson writes for its object.
    parsed = [line for line in world.lines if line.event is not None]
    assert len(parsed) > 0.98 * len(world.lines)
    assert all(orjson.dumps(line.event) == line.raw for line in parsed)


def test_json_lines_encode_edge_values_like_orjson() -> None:
    times = [0, -1, 86_399_999, 1_835_395_200_000, 1_793_540_712_345, 5]  # 2028-02-29 too
    numbers = [0, 9, 10, 99, 1_234_567, 0]
    words = ["r&b", None, "hip-hop", "als-20261031-1a2b3c", "", "x"]
    lines = assemble(
        [b'{"ts":"', iso_times(np.array(times)), b'","n":', integers(np.array(numbers)),
         b',"w":', quoted(words), b"}\n"],
        len(numbers),
    )  # fmt: skip
    assert lines == [
        orjson.dumps({"ts": iso(t), "n": n, "w": w}, option=orjson.OPT_APPEND_NEWLINE)
        for t, n, w in zip(times, numbers, words, strict=True)
    ]
    with pytest.raises(ValueError, match="escaping"):
        quoted(['say "hi"'])


def iso(epoch_ms: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_valid_events_follow_the_contract(world, valid_events) -> None:
    playlists = {str(row[0]) for row in world.rows["playlists"]}
    for event in valid_events:
        assert tuple(k for k in event if k != "file_hour") == CONTRACT_FIELDS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"])
        assert event["context"] in ("playlist", "search", "recommendation", "radio", "album")
        assert event["device"] in ("ios", "android", "web", "desktop")
        assert re.fullmatch(r"[A-Z]{2}", event["country"])
        has_playlist = event["context"] == "playlist" or event["event_type"] == "playlist_add"
        assert (event["playlist_id"] in playlists) if has_playlist else event["playlist_id"] is None
        if event["context"] == "recommendation":
            assert re.fullmatch(r"als-\d{8}-[0-9a-f]{6}", event["model_version"])
        else:
            assert event["model_version"] is event["experiment"] is event["arm"] is None
        if event["event_type"] in ("like", "playlist_add"):
            assert event["ms_played"] == 0
        else:
            assert event["ms_played"] > 0


def test_bad_records_match_the_manifest_and_the_rate(world, valid_events) -> None:
    _, bad = classify(world.lines, world)
    totals = world.manifest.totals
    assert dict(bad) == {k: v for k, v in totals.bad_kinds.items() if v}
    assert set(bad) == set(BAD_KINDS), "every kind of bad record is made"
    assert totals.bad_records == sum(bad.values()) == round(totals.lines * 0.03)
    assert totals.valid_events == len(valid_events) == totals.lines - totals.bad_records
    assert Counter(e["event_type"] for e in valid_events) == Counter(totals.event_types)
    first_sent = {e["event_id"]: e["file_hour"] for e in valid_events}
    resent_later = [
        line for line in world.lines
        if line.event and first_sent.get(line.event.get("event_id"), line.file_hour)
        < line.file_hour
    ]  # fmt: skip
    assert resent_later, "some events are resent in a later file"


def test_events_happen_when_their_user_and_track_exist(world, valid_events) -> None:
    users = {str(row[0]): row[-2] for row in world.rows["users"]}
    tracks = {str(row[0]): row[-2] for row in world.rows["tracks"]}
    lateness = dt.timedelta(days=world.settings.lateness_days)
    start = dt.datetime.combine(world.settings.world_start_date, dt.time(), dt.UTC)
    late = 0
    for event in valid_events:
        ts, hour = ts_of(event), event["file_hour"]
        assert ts >= users[event["user_id"]] and ts >= tracks[event["track_id"]]
        assert start <= ts < hour + dt.timedelta(hours=1)
        if ts < hour:
            late += 1
            assert ts >= hour - lateness
    assert late == world.manifest.totals.late_events > 0
    assert sum(world.manifest.valid_events_by_event_date.values()) == len(valid_events)
    new_users = {u for u, created in users.items() if created >= start}
    assert any(e["user_id"] in new_users for e in valid_events), "new users listen"
    new_tracks = {t for t, created in tracks.items() if created >= start}
    assert any(e["track_id"] in new_tracks for e in valid_events), "new tracks are played"


# --- behaviour ----------------------------------------------------------------------------------


def test_listening_shows_taste_popularity_and_sessions(world, valid_events) -> None:
    genre = {str(row[0]): row[4] for row in world.rows["tracks"]}
    duration = {str(row[0]): row[5] for row in world.rows["tracks"]}
    listens = [e for e in valid_events if e["event_type"] in ("play", "skip")]
    by_user = defaultdict(Counter)
    for e in listens:
        by_user[e["user_id"]][genre[e["track_id"]]] += 1
    favourite = {user: genres.most_common(1)[0][0] for user, genres in by_user.items()}

    def skip_rate(on_taste: bool) -> float:
        picked = [e for e in listens
                  if (genre[e["track_id"]] == favourite[e["user_id"]]) == on_taste]  # fmt: skip
        return sum(e["event_type"] == "skip" for e in picked) / len(picked)

    assert skip_rate(on_taste=True) < skip_rate(on_taste=False) - 0.1

    plays = Counter(e["track_id"] for e in listens if e["event_type"] == "play")
    top = sum(n for _, n in plays.most_common(WORLD["world_tracks"] // 100))
    assert top / sum(plays.values()) > 0.10  # the top 1% of tracks: 10x their fair share

    full = [e["ms_played"] / duration[e["track_id"]] for e in listens if e["event_type"] == "play"]
    skipped = [e["ms_played"] for e in listens if e["event_type"] == "skip"]
    assert sorted(full)[len(full) // 2] > 0.8
    assert sorted(skipped)[len(skipped) // 2] < 30_000

    # Taste is stable: a user's genres on the second day resemble their own first day more
    # than another user's.
    daily = defaultdict(Counter)
    for e in listens:
        daily[(e["user_id"], e["ts"][:10])][genre[e["track_id"]]] += 1
    first, second = sorted({day for _, day in daily})
    active = [
        u for u in by_user if min(daily[(u, first)].total(), daily[(u, second)].total()) >= 10
    ]
    own = [similarity(daily[(u, first)], daily[(u, second)]) for u in active]
    other = [similarity(daily[(u, first)], daily[(v, second)]) for u, v in pairwise(active)]
    assert len(active) >= 20
    assert sum(own) / len(own) > sum(other) / len(other) + 0.2

    # Sessions: a user's listens follow one another within minutes.
    by_time = sorted(listens, key=lambda e: (e["user_id"], e["ts"]))
    gaps = [ts_of(b) - ts_of(a) for a, b in pairwise(by_time) if a["user_id"] == b["user_id"]]
    assert sum(g < dt.timedelta(minutes=15) for g in gaps) > 0.6 * len(gaps)


# --- re-runs, errors and the command line -------------------------------------------------------


def test_rerun_rewrites_and_a_different_world_needs_force(isolated_platform) -> None:
    small = {**TINY_WORLD, "world_events_per_day": 500}
    settings = isolated_platform("world_rerun", **small)
    first = generate_world(settings, progress=False)
    files = event_files(settings)
    assert generate_world(settings, progress=False).totals == first.totals
    assert event_files(settings) == files

    fewer_days = with_overrides(settings, days=1)
    with pytest.raises(WorldError, match=r"different world \(differs in world_days\).*--force"):
        generate_world(fewer_days, progress=False)
    generate_world(fewer_days, force=True, progress=False)
    assert len(event_files(settings)) == 24, "the old world's second day is gone"

    (Path(settings.landing_root) / "events" / "_world.json").unlink()
    with pytest.raises(WorldError, match=r"no _world\.json"):
        generate_world(fewer_days, progress=False)


def test_cli_generates_a_world_with_overrides(isolated_platform, env_for) -> None:
    settings = isolated_platform("world_cli")
    audotics = str(Path(sys.executable).parent / "audotics")
    options = ["--days", "1", "--events-per-day", "2000", "--users", "100", "--artists", "10",
               "--tracks", "200", "--seed", "7", "--bad-rate", "0.1"]  # fmt: skip
    result = subprocess.run(
        [audotics, "generate", *options], env=env_for(settings), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "100 users, 10 artists, 200 tracks" in result.stdout
    assert "2,000 lines in 24 files" in result.stdout
    manifest = load_manifest(settings)
    assert manifest.seed == 7 and manifest.totals.bad_records == 200
    assert manifest.settings["world_users"] == 100
    assert manifest.settings["world_bad_record_rate"] == 0.1
    # Another process (another hash seed), the same world.
    same = isolated_platform("world_cli_same", **manifest.settings)
    generate_world(same, progress=False)
    assert event_files(same) == event_files(settings)
    assert table_rows(same) == table_rows(settings)

    result = subprocess.run(
        [audotics, "generate", "--tracks", "5", "--force"],
        env=env_for(settings), capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert "error: world_tracks (5) must be at least world_artists (300)" in result.stderr


def test_the_experiment_serves_each_user_the_arm_the_api_would(world, valid_events) -> None:
    """Over the world's last day (TINY_WORLD has two: one of pre-period), recommendations come
    from the user's arm, assigned as the read API assigns it, and say which; the experiment is
    registered on the lake as started at its first day."""
    plan = world.manifest.experiment
    start = dt.datetime.fromisoformat(plan["start_date"]).replace(tzinfo=dt.UTC)
    arms = [(arm["name"], arm["model_version"]) for arm in plan["arms"]]
    served = Counter()
    for event in valid_events:
        if event["context"] != "recommendation" or ts_of(event) < start:
            assert event["experiment"] is event["arm"] is None
            continue
        arm = arms[assign(plan["salt"], event["user_id"], [0.5, 0.5])]
        assert (event["experiment"], event["arm"], event["model_version"]) == (
            plan["experiment_id"], *arm)  # fmt: skip
        served[arm[0]] += 1
    assert served["control"] > 100 and served["challenger"] > 100

    registered = definition.get(world.settings, plan["experiment_id"])
    assert registered.status == "running"
    assert registered.created_at == start
    assert [(a.name, a.model_version, a.share) for a in registered.arms] == [
        (arm["name"], arm["model_version"], arm["share"]) for arm in plan["arms"]
    ]


def test_the_challengers_true_effect_lengthens_its_recommendation_sessions(isolated_platform):
    """The ground truth the warehouse's analysis is tested against: with a true effect, the
    challenger's users listen to more from recommendations than the control's; with none, the
    arms behave alike. Counted on the events themselves, before any pipeline."""

    def minutes_per_user(effect: float) -> dict[str, float]:
        settings = isolated_platform(
            f"world_effect_{int(effect * 100)}",
            **{**TINY_WORLD, "world_users": 1_000, "world_days": 3, "world_events_per_day": 10_000},
            world_experiment_effect=effect, world_bad_record_rate=0.0,
        )  # fmt: skip
        generate_world(settings, progress=False)
        minutes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for line in parse_lines(event_files(settings)):
            if line.event["experiment"]:
                minutes[line.event["arm"]][line.event["user_id"]] += line.event["ms_played"] / 6e4
        return {arm: sum(users.values()) / len(users) for arm, users in minutes.items()}

    treated, untreated = minutes_per_user(1.0), minutes_per_user(0.0)
    # Per-user minutes vary with how much each user listens at all (what CUPED takes out), and
    # sessions end with their hour, so the minutes grow less than the sessions: 1.13 vs 0.92.
    treated_ratio = treated["challenger"] / treated["control"]
    untreated_ratio = untreated["challenger"] / untreated["control"]
    assert treated_ratio > untreated_ratio + 0.1
    assert 0.8 < untreated_ratio < 1.2
