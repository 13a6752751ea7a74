"""GDPR erasure as a resumable, audited job, on a tiny world run end to end (real PostgreSQL,
Redis, Delta, Spark, dbt): landing lines no parser can read, `kill -9` of `audotics gdpr-delete`
after each of several steps and a rerun; then the users are nowhere: not in any file of the
state folder (gzip decompressed, Parquet decoded), not in any warehouse table or statistic, not
in Redis's append-only file, and the next warehouse build passes without re-ingesting."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audotics import db, lake, services
from audotics.identifiers import new_run_id
from audotics.lake import tables
from demo.world.generate import generate_world
from feature_store.online import get_online_features
from ingestion.erasure import user_pattern
from ingestion.landing import landing_days, landing_files
from orchestration.gdpr import (
    DONE,
    ERASERS,
    KILL_AFTER_ENV,
    PENDING,
    erase_queued,
    erase_user,
    load_request,
    queued_requests,
    subject_hash,
)
from orchestration.stages import DOCS, STAGES, RunContext
from serving import keys
from tests.support import REPO
from warehouse.build import build_warehouse

AUDOTICS = str(REPO / ".venv" / "bin" / "audotics")
# kill -9 right after the work of these steps, before each is marked done: one user each.
KILLED_AFTER = ("serving", "raw lines", "vacuum", "redis persistence")
STEPS = [eraser.name for eraser in ERASERS]


def _escaped(user_id: str) -> str:
    """The id as a JSON parser still reads it: every letter a \\u escape."""
    return "".join(f"\\u{ord(c):04x}" if c.isalpha() else c for c in user_id)


def _bad_lines(erased: list[str], kept: str) -> list[bytes]:
    """Lines ingestion quarantines: invalid UTF-8, a NUL, the id in other spellings."""
    lines = [
        f'{{"user_id": "{kept}", "note": "'.encode() + b'\xff\xfe"}',  # another user's bytes
        b'\x00{"user_id": "' + kept.encode() + b'"}',
    ]
    spellings = [str.upper, _escaped, str, str]
    for user_id, spell in zip(erased, spellings, strict=True):
        lines.append(f'{{"user_id": "{spell(user_id)}", "ts": "x"}}'.encode() + b"\xc3")
    return lines


def _append_to_first_landing_file(settings, lines: list[bytes]) -> None:
    path = landing_files(settings, landing_days(settings)[0])[0].path
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data.rstrip(b"\n") + b"\n" + b"\n".join(lines) + b"\n"))


@pytest.fixture(scope="module")
def world(isolated_platform, running_services):
    # A seed no other test uses: the servers (and the Redis AOF the test reads) serve the whole
    # session, and other tests' worlds of the default seed hold the same user ids.
    settings = isolated_platform(
        "gdpr", world_users=120, world_artists=15, world_tracks=250, world_days=3,
        world_events_per_day=1_500, world_bad_record_rate=0.03, world_seed=20_261_201,
    )  # fmt: skip
    services.up(settings)
    generate_world(settings)
    with db.connect(settings) as conn:
        query = "select user_id::text from app.users order by 1 limit 6"
        users = [user_id for (user_id,) in conn.execute(query)]
    erased, kept = users[: len(KILLED_AFTER)], users[-1]
    _append_to_first_landing_file(settings, _bad_lines(erased, kept))
    ctx = RunContext(settings, new_run_id("test"))
    for stage in STAGES:  # the world is found: its lines and the extra ones are ingested
        if stage is not DOCS:
            stage.run(ctx)
    # Exact byte scans of Redis's rewritten AOF: its RDB preamble stores strings uncompressed.
    services.redis_admin_client(running_services).config_set("rdbcompression", "no")
    return settings, erased, kept


# --- where a user can be -------------------------------------------------------------------------


def _decoded(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"PAR1":
        return repr(pq.read_table(path).to_pylist()).encode()
    return data


def files_holding(root: Path, user_id: str) -> list[str]:
    """Every file under `root` whose bytes (gzip decompressed, Parquet decoded) hold the id in
    any spelling a line can have."""
    pattern = re.compile(user_pattern(user_id).encode())
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and pattern.search(_decoded(path))
    )


def warehouse_holding(settings, user_id: str) -> list[str]:
    """Warehouse tables (every schema but the app's) with a row holding the id, and columns
    whose planner statistics (most common values, histogram) do."""
    pattern = user_pattern(user_id)
    with db.connect(settings) as conn:
        relations = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema not in "
            "('pg_catalog', 'information_schema', 'app')"
        ).fetchall()
        found = [
            f"{schema}.{table}"
            for schema, table in relations
            if conn.execute(
                f'select exists (select from "{schema}"."{table}" t where t::text ~ %s)',
                (pattern,),
            ).fetchone()[0]
        ]
        stats = conn.execute(
            "select schemaname || '.' || tablename || '.' || attname from pg_stats "
            "where schemaname not in ('pg_catalog', 'information_schema', 'app') "
            "and (most_common_vals::text ~ %s or histogram_bounds::text ~ %s)",
            (pattern, pattern),
        ).fetchall()
    return found + [f"pg_stats {column}" for (column,) in stats]


def dead_tuples(settings, relations: set[str]) -> dict[str, int]:
    with db.connect(settings) as conn:
        rows = conn.execute(
            "select schemaname || '.' || relname, n_dead_tup from pg_stat_user_tables "
            "where schemaname || '.' || relname = any(%s) and n_dead_tup > 0",
            (sorted(relations),),
        ).fetchall()
    return dict(rows)


def aof_holding(running_services, user_id: str) -> list[str]:
    return files_holding(running_services.state_dir / "redis", user_id)


def recommended(settings, user_id: str) -> bool:
    client = db.redis_client(settings)
    version = client.get(keys.CURRENT).decode()
    return client.hget(keys.users_key(version), user_id) is not None


def has_features(settings, user_id: str) -> bool:
    features = get_online_features([user_id], ["user_features:plays_28d"], settings=settings)
    return features[user_id]["user_features:plays_28d"] is not None


# --- the tests -----------------------------------------------------------------------------------


def test_a_killed_erasure_resumes_and_leaves_the_users_nowhere(
    world, running_services, env_for
) -> None:
    settings, erased, kept = world
    home = Path(settings.home)
    held = set()  # the warehouse tables that hold an erased user
    for user_id in [*erased, kept]:  # the checks find them before
        assert files_holding(home, user_id), user_id
        assert warehouse_holding(settings, user_id), user_id
        if user_id != kept:
            held |= {t for t in warehouse_holding(settings, user_id) if " " not in t}
    assert recommended(settings, erased[0]) and has_features(settings, erased[0])
    with db.connect(settings, autocommit=True) as conn:
        conn.execute("analyze raw.events")
        (mcv,) = conn.execute(
            "select most_common_vals::text || histogram_bounds::text from pg_stats "
            "where schemaname = 'raw' and tablename = 'events' and attname = 'user_id'"
        ).fetchone()
    assert erased[0] in mcv  # so the statistics check below means something
    bronze_before = lake.read_arrow(settings, tables.BRONZE_EVENTS, columns=["raw"])
    kept_lines = sorted(r for r in bronze_before.column("raw").to_pylist() if kept.encode() in r)
    assert any(b"\xff" in r for r in kept_lines) and any(b"\x00" in r for r in kept_lines)

    for user_id, step in zip(erased, KILLED_AFTER, strict=True):
        done = subprocess.run(
            [AUDOTICS, "gdpr-delete", "--user-id", user_id],
            env=env_for(settings) | {KILL_AFTER_ENV: step}, capture_output=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == -9, done.stderr.decode()[-3000:]
        requests = [load_request(settings, r) for r in queued_requests(settings)]
        (request,) = [r for r in requests if r.subject_sha256 == subject_hash(user_id)]
        assert request.status == PENDING
        assert request.steps_done == STEPS[: STEPS.index(step)]
        assert not recommended(settings, user_id)  # the first step: no longer served
        assert not has_features(settings, user_id) or step == STEPS[0]

    # The audit never holds an id, pending or done.
    audit = lake.read_arrow(settings, tables.GDPR_REQUESTS).to_pylist()
    assert not any(user_id in str(audit) for user_id in erased)

    # A rerun of the command completes a request; the DAG's path completes the others.
    first = erase_user(settings, erased[0])
    assert first.status == DONE and first.steps_done == STEPS
    for request_id in queued_requests(settings):
        assert erase_queued(settings, request_id).status == DONE
    assert queued_requests(settings) == []

    for user_id in erased:
        assert files_holding(home, user_id) == [], user_id
        assert warehouse_holding(settings, user_id) == [], user_id
        assert aof_holding(running_services, user_id) == [], user_id
        assert not recommended(settings, user_id) and not has_features(settings, user_id)
    assert files_holding(home, kept) and warehouse_holding(settings, kept)
    assert dead_tuples(settings, held) == {}  # VACUUM removed the deleted rows' tuples
    bronze = lake.read_arrow(settings, tables.BRONZE_EVENTS, columns=["raw"])
    assert sorted(r for r in bronze.column("raw").to_pylist() if kept.encode() in r) == kept_lines

    audit = lake.read_arrow(settings, tables.GDPR_REQUESTS).to_pylist()
    assert sorted(a["subject_sha256"] for a in audit) == sorted(map(subject_hash, erased))
    assert {a["status"] for a in audit} == {DONE}
    # Each had a quarantined line (the extra ones), recorded for the warehouse's reconciliation.
    assert all(sum(json.loads(a["quarantine_lines"]).values()) >= 1 for a in audit)

    # The reconciliation of quarantine with the ingest runs accounts for the erased lines.
    build_warehouse(settings)
