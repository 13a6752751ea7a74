"""The reproduction of `gdpr-delete` crashing on one non-UTF-8 byte in bronze (ArrowInvalid:
Invalid UTF8 payload): raw lines are matched on bytes, in every spelling of the id a parser
would read, and other users' lines, whatever bytes they hold, stay exactly as they were. Real
Delta tables and landing files; no servers."""

from __future__ import annotations

import datetime as dt
import gzip
import re

import pyarrow as pa
import pytest

from audotics import lake
from audotics.lake import tables
from ingestion.erasure import delete_raw_lines, erase_landing, find_raw_lines
from ingestion.landing import LandingFileError, day_folder

DAY = dt.date(2026, 11, 1)
USER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER = "11111111-2222-4333-8444-555555555555"
ESCAPED = "".join(f"\\u{ord(c):04X}" if c in "abcdef-" else c for c in USER)
THEIRS = [  # the user's lines: literal, upper case, JSON-escaped, beside invalid bytes and NUL
    f'{{"user_id": "{USER}"}}'.encode(),
    f'{{"user_id": "{USER.upper()}"}}'.encode(),
    b'\xff{"user_id": "' + ESCAPED.encode() + b'"}',
    b"\x00" + USER.encode() + b"\xc3",
]
OTHERS = [  # never decoded, never changed
    b'{"user_id": "' + OTHER.encode() + b'", "note": "\xff\xfe"}',
    b'\x00{"user_id": "' + OTHER.encode() + b'"}',
    b"\xc3\x28 not utf-8 at all",
    USER[:-1].encode(),  # almost the id: not the id
]


def test_bronze_lines_are_matched_on_bytes_and_others_stay_exact(make_settings, tmp_path) -> None:
    settings = make_settings(tmp_path)
    lines = [*OTHERS[:2], *THEIRS, *OTHERS[2:]]
    rows = [
        {"source_file": "events-2026-11-01T09.jsonl.gz", "line_number": n, "raw": raw,
         "run_id": "r", "ingested_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
         "landing_date": DAY, "raw_bytes": len(raw), "raw_sha256": None}
        for n, raw in enumerate(lines, 1)
    ]  # fmt: skip
    lake.write_arrow(
        settings, tables.BRONZE_EVENTS, pa.Table.from_pylist(rows, tables.BRONZE_EVENTS.schema)
    )

    found = find_raw_lines(settings, tables.BRONZE_EVENTS, USER)

    assert found == {(DAY, "events-2026-11-01T09.jsonl.gz"): [3, 4, 5, 6]}
    assert delete_raw_lines(settings, tables.BRONZE_EVENTS, found) == len(THEIRS)
    left = lake.read_arrow(settings, tables.BRONZE_EVENTS, columns=["raw"]).column("raw")
    assert sorted(left.to_pylist()) == sorted(OTHERS)
    assert find_raw_lines(settings, tables.BRONZE_EVENTS, USER) == {}  # a rerun: nothing left


def test_landing_files_keep_every_other_byte(make_settings, tmp_path) -> None:
    settings = make_settings(tmp_path)
    folder = day_folder(settings, DAY)
    folder.mkdir(parents=True)
    theirs_only, mixed, untouched = (
        folder / f"events-2026-11-01T{hour:02d}.jsonl.gz" for hour in (8, 9, 10)
    )
    theirs_only.write_bytes(gzip.compress(b"\n".join(THEIRS) + b"\n"))
    mixed.write_bytes(gzip.compress(b"\n".join([*OTHERS[:2], *THEIRS, *OTHERS[2:]])))  # no \n
    untouched.write_bytes(before := gzip.compress(b"\n".join(OTHERS) + b"\n"))

    assert erase_landing(settings, USER) == 2 * len(THEIRS)

    assert gzip.decompress(theirs_only.read_bytes()) == b""
    assert gzip.decompress(mixed.read_bytes()) == b"\n".join(OTHERS)
    assert untouched.read_bytes() == before  # not rewritten
    assert erase_landing(settings, USER) == 0


def test_an_unreadable_landing_file_is_named(make_settings, tmp_path) -> None:
    settings = make_settings(tmp_path)
    folder = day_folder(settings, DAY)
    folder.mkdir(parents=True)
    truncated = folder / "events-2026-11-01T08.jsonl.gz"
    truncated.write_bytes(gzip.compress(b"\n".join(THEIRS))[:-12])
    with pytest.raises(LandingFileError, match=re.escape(f"{truncated} cannot be read")):
        erase_landing(settings, USER)
