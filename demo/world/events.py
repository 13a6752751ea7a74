"""The listening event files, as the app exports them: one gzipped JSON-lines file per hour of
arrival (docs/data-contracts.md section 2), generated chunk by chunk with bounded memory.

Each hour gets its share of the day's lines by the time-of-day pattern; within it, a share of
bad records (`world_bad_record_rate`, exact over the world) and of late events (LATE_SHARE:
events from earlier hours that arrive only now). Every chunk has its own RNG stream, so a
chunk's lines depend only on the seed, the settings and where the chunk is."""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from demo.world.bad_records import BadRecordMaker
from demo.world.behaviour import Behaviour, EventBatch
from demo.world.catalog import Catalog
from demo.world.experiment import model_versions, plan_experiment
from demo.world.formats import MS_PER_DAY, MS_PER_HOUR, uuid_bytes
from demo.world.jsonlines import assemble, integers, iso_times, quoted
from demo.world.landing import BackgroundGzipWriter, hour_file
from demo.world.manifest import Counts
from demo.world.spec import WorldSpec
from demo.world.vocab import (
    CONTEXTS,
    COUNTRIES,
    DEVICES,
    EVENT_TYPES,
    HOURLY_ACTIVITY,
    RECOMMENDATION_CONTEXT,
)

EVENTS_STREAM, BAD_RECORDS_STREAM = 2, 3  # RNG streams (the catalog is 1)
LATE_SHARE = 0.01  # share of valid events that arrive in a later hour's file
MIN_LATENESS_MS = 5 * 60_000
MEAN_LATENESS_MS = 6 * MS_PER_HOUR
CHUNK_LINES = 50_000  # memory per chunk: ~2 KB per line while it is built
EVENTS_PER_SESSION = 5  # a low guess (sessions are cut at the hour's end), to size draws
_PARTS_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Chunk:
    hour_index: int
    index: int
    hour_start_ms: int
    start_ms: int  # sessions of this chunk start in [start_ms, end_ms)
    end_ms: int
    lines: int
    bad: int
    late: int
    last: bool  # the hour's file is complete after this chunk

    @property
    def hour_end_ms(self) -> int:
        return self.hour_start_ms + MS_PER_HOUR


@dataclass(frozen=True)
class Hour:
    index: int
    start_ms: int
    lines: int
    bad: int
    late: int

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start_ms // 1000, dt.UTC)

    @property
    def path(self) -> str:
        return hour_file(self.start)

    @property
    def date(self) -> str:
        return self.start.date().isoformat()

    def chunks(self) -> list[Chunk]:
        """The hour split in time slices of at most CHUNK_LINES lines (at least one chunk)."""
        count = max(1, math.ceil(self.lines / CHUNK_LINES))
        lines, bad, late = (_split(n, count) for n in (self.lines, self.bad, self.late))
        bounds = [self.start_ms + MS_PER_HOUR * i // count for i in range(count + 1)]
        return [
            Chunk(self.index, i, self.start_ms, bounds[i], bounds[i + 1], lines[i], bad[i],
                  late[i], last=i == count - 1)
            for i in range(count)
        ]  # fmt: skip


def plan_hours(spec: WorldSpec) -> list[Hour]:
    """Lines, bad records and late events of every hour of the world."""
    shares = HOURLY_ACTIVITY / HOURLY_ACTIVITY.sum()
    lines = np.tile(_apportion(spec.events_per_day, shares), spec.days)
    bad = _spread(lines, spec.bad_rate)
    late = _spread(lines - bad, LATE_SHARE if spec.lateness_days > 0 else 0.0)
    late[0] = 0  # nothing happened before the first hour
    return [
        Hour(i, spec.start_ms + i * MS_PER_HOUR, int(lines[i]), int(bad[i]), int(late[i]))
        for i in range(len(lines))
    ]


@dataclass
class EventFiles:
    """What `write_events` wrote."""

    files: dict[str, int] = field(default_factory=dict)  # path -> lines
    days: dict[str, Counts] = field(default_factory=dict)  # arrival date -> counts
    valid_by_event_date: dict[str, int] = field(default_factory=dict)
    json_bytes: int = 0
    gzip_bytes: int = 0


def write_events(
    spec: WorldSpec, catalog: Catalog, root: Path, *, progress: bool | None = None
) -> EventFiles:
    """Generate and write every hour's file under `root`; `progress` shows a bar on stderr
    (None: when stderr is a terminal)."""
    hours = plan_hours(spec)
    generator = ChunkGenerator(spec, catalog)
    written = EventFiles(days={d.isoformat(): Counts() for d in spec.dates()})
    by_event_date = np.zeros(spec.days, dtype=np.int64)
    writer = BackgroundGzipWriter(root)
    bar = tqdm(
        total=sum(h.lines for h in hours), unit="ev", unit_scale=True, desc="events",
        file=sys.stderr, disable=None if progress is None else not progress,
    )  # fmt: skip
    try:
        for hour in hours:
            for chunk in hour.chunks():
                data, counts, event_days = generator.lines(chunk)
                writer.write(hour.path, data, last=chunk.last)
                written.days[hour.date].add(counts)
                written.json_bytes += len(data)
                by_event_date += event_days
                bar.update(chunk.lines)
            written.files[hour.path] = hour.lines
    finally:
        bar.close()
        writer.close()
    dates = [d.isoformat() for d in spec.dates()]
    written.valid_by_event_date = dict(zip(dates, by_event_date.tolist(), strict=True))
    written.gzip_bytes = writer.compressed_bytes
    return written


class ChunkGenerator:
    """Turns a chunk of the plan into its lines, with the catalog's ids and the model
    versions the app would have recommended with (an experiment arm's, while it runs)."""

    def __init__(self, spec: WorldSpec, catalog: Catalog) -> None:
        self.spec = spec
        experiment = plan_experiment(spec)
        self.behaviour = Behaviour(catalog, experiment)
        daily = model_versions(spec)
        arms = experiment.definition.arms if experiment else ()
        self.first_arm_version = len(daily)  # model_version index of arm 0
        self.bad_records = BadRecordMaker(spec.launch_ms)
        # Each field's JSON values, to index with the events' codes and catalog indexes.
        self.encoded = {
            "event_type": quoted(EVENT_TYPES),
            "user_id": catalog.users.ids.astype("S36"),
            "track_id": catalog.tracks.ids.astype("S36"),
            "context": quoted(CONTEXTS),
            "playlist_id": quoted([*catalog.playlists.ids, None]),  # index -1: null
            # By day, then by arm; the last: null.
            "model_version": quoted([*daily, *(arm.model_version for arm in arms), None]),
            "experiment": quoted(
                [experiment.definition.experiment_id if experiment else None, None]
            ),
            "arm": quoted([*(arm.name for arm in arms), None]),  # index -1: null
            "device": quoted(DEVICES),
            "country": quoted(COUNTRIES)[catalog.users.country],  # by user
        }

    def lines(self, chunk: Chunk) -> tuple[bytes, Counts, np.ndarray]:
        """The chunk's lines, what they are, and valid events per day of the world by `ts`."""
        rng = np.random.default_rng([self.spec.seed, EVENTS_STREAM, chunk.hour_index, chunk.index])
        good = chunk.lines - chunk.bad - chunk.late

        def on_time_starts(count: int) -> np.ndarray:
            span = chunk.end_ms - chunk.start_ms
            return chunk.start_ms + (rng.random(count) * span).astype(np.int64)

        # One event more than written when none is: bad records are spoiled from it.
        sessions = self._events(rng, max(good, 1), on_time_starts, chunk.hour_end_ms)
        written = sessions.take(slice(0, good))
        written = written.take(np.argsort(written.ts_ms, kind="stable"))
        late = self._events(rng, chunk.late, self._late_starts(rng, chunk), chunk.hour_start_ms)

        good_lines = self._serialise(rng, written)
        templates = good_lines if good else self._serialise(rng, sessions)
        bad_rng = np.random.default_rng(
            [self.spec.seed, BAD_RECORDS_STREAM, chunk.hour_index, chunk.index]
        )
        bad_lines, bad_kinds = self.bad_records.make(
            bad_rng, chunk.bad, templates, good_lines, chunk.hour_end_ms
        )
        self.bad_records.remember(bad_rng, good_lines)
        lines = _scatter(rng, good_lines, self._serialise(rng, late) + bad_lines)

        valid = EventBatch.concat([written, late])
        counts = Counts(
            lines=chunk.lines,
            valid_events=len(valid),
            late_events=len(late),
            bad_records=chunk.bad,
            event_types=dict(
                zip(EVENT_TYPES, _bincount(valid.event_type, len(EVENT_TYPES)), strict=True)
            ),
            bad_kinds=Counts().bad_kinds | dict(bad_kinds),
        )
        days = (valid.ts_ms - self.spec.start_ms) // MS_PER_DAY
        return b"".join(lines), counts, np.asarray(_bincount(days, self.spec.days))

    def _events(
        self,
        rng: np.random.Generator,
        count: int,
        starts: Callable[[int], np.ndarray],
        until_ms: int,
    ) -> EventBatch:
        """Exactly `count` events of whole sessions (but the last), in session order."""
        batches, have, sessions_before = [], 0, 0
        while have < count:
            sessions = math.ceil((count - have) / EVENTS_PER_SESSION) + 2
            batch = self.behaviour.sessions(rng, starts(sessions), until_ms)
            batches.append(replace(batch, session=batch.session + sessions_before))
            have += len(batch)
            sessions_before += sessions
        return EventBatch.concat(batches).take(slice(0, count)) if batches else EventBatch.empty()

    def _late_starts(self, rng: np.random.Generator, chunk: Chunk) -> Callable[[int], np.ndarray]:
        """Session starts hours (sometimes days) before the chunk's hour, within the lateness
        window and not before the world's start."""
        latest = min(
            self.spec.lateness_days * MS_PER_DAY - MS_PER_HOUR,
            chunk.hour_start_ms - self.spec.start_ms,
        )

        def starts(count: int) -> np.ndarray:
            lateness = MIN_LATENESS_MS + rng.exponential(MEAN_LATENESS_MS, count)
            return chunk.hour_start_ms - np.minimum(lateness, latest).astype(np.int64)

        return starts

    def _serialise(self, rng: np.random.Generator, events: EventBatch) -> list[bytes]:
        """JSON lines in the field order of the data contract."""
        encoded = self.encoded
        day = (events.ts_ms - self.spec.start_ms) // MS_PER_DAY
        recommended = events.context == RECOMMENDATION_CONTEXT
        model = np.where(recommended, day, len(encoded["model_version"]) - 1)  # last: null
        served = events.arm >= 0
        model = np.where(served, self.first_arm_version + events.arm, model)
        return assemble(
            [
                b'{"event_id":"', uuid_bytes(rng, len(events)),
                b'","event_type":', encoded["event_type"][events.event_type],
                b',"user_id":"', encoded["user_id"][events.user],
                b'","track_id":"', encoded["track_id"][events.track],
                b'","ts":"', iso_times(events.ts_ms),
                b'","ms_played":', integers(events.ms_played),
                b',"context":', encoded["context"][events.context],
                b',"playlist_id":', encoded["playlist_id"][events.playlist],
                b',"model_version":', encoded["model_version"][model],
                b',"experiment":', encoded["experiment"][np.where(served, 0, 1)],
                b',"arm":', encoded["arm"][events.arm],
                b',"device":', encoded["device"][events.device],
                b',"country":', encoded["country"][events.user],
                b"}\n",
            ],
            len(events),
        )  # fmt: skip


def _apportion(total: int, shares: np.ndarray) -> np.ndarray:
    """`total` split by `shares` into integers that add up exactly (largest remainder)."""
    exact = total * shares
    parts = np.floor(exact).astype(np.int64)
    parts[np.argsort(parts - exact, kind="stable")[: total - parts.sum()]] += 1
    return parts


def _spread(lines: np.ndarray, rate: float) -> np.ndarray:
    """`rate` of the lines of each hour, rounded so the running total is always exact."""
    per_million = round(rate * _PARTS_PER_MILLION)
    running = np.cumsum(lines) * per_million // _PARTS_PER_MILLION
    return np.diff(running, prepend=0)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _scatter(rng: np.random.Generator, base: list[bytes], extra: list[bytes]) -> list[bytes]:
    """`extra` lines put at random places among `base` (which keeps its order)."""
    lines = np.empty(len(base) + len(extra), dtype=object)
    slots = np.zeros(len(lines), dtype=bool)
    slots[rng.choice(len(lines), size=len(extra), replace=False)] = True
    lines[slots] = _object_array(extra)[rng.permutation(len(extra))]
    lines[~slots] = _object_array(base)
    return lines.tolist()


def _object_array(items: list[bytes]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _bincount(values: np.ndarray, size: int) -> list[int]:
    return np.bincount(values, minlength=size)[:size].tolist()
