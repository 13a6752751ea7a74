"""Shared by the serving tests (no tests here): a small lake that follows the data contract
(silver catalog, gold recommendations and similar tracks, the model registry), the documents
each model version must produce, and the read API run by a real uvicorn server."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import redis
import uvicorn

from audotics import lake
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings
from serving import keys

NOW = dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
TRICKY_TITLE = 'Say "Hi" \\ Ünïcödé – 🎵\n'  # must survive JSON escaping intact


def published_times(settings: Settings, model_version: str) -> dict[str, str]:
    """The times every document of a published version carries: the registry's created_at
    (NOW, see `DemoLake.write`) and the publish time its manifest recorded."""
    manifest = redis.Redis.from_url(settings.redis_dsn).hget(
        keys.manifest_key(model_version), "published_at"
    )
    assert manifest is not None, f"{model_version} is not published"
    return {"generated_at": NOW.isoformat(), "published_at": manifest.decode()}


def ids(kind: str, count: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"audotics-test/{kind}/{i}")) for i in range(count)]


@dataclass
class DemoLake:
    """A deterministic catalog and, for each model version, different lists per user/track."""

    users: list[str] = field(default_factory=lambda: ids("user", 40))
    tracks: list[str] = field(default_factory=lambda: ids("track", 30))
    artists: list[str] = field(default_factory=lambda: ids("artist", 5))
    list_length: int = 5
    similar_length: int = 3

    @property
    def uncataloged_track(self) -> str:
        """Recommended but missing from silver/tracks: served with null metadata."""
        return self.tracks[-1]

    def title(self, track: str) -> str | None:
        index = self.tracks.index(track)
        if track == self.uncataloged_track:
            return None
        return TRICKY_TITLE if index == 0 else f"Track {index}"

    def artist_of(self, track: str) -> str:
        return self.artists[self.tracks.index(track) % len(self.artists)]

    def artist_name(self, artist: str) -> str:
        return f"Artist {self.artists.index(artist)}"

    def recommendations(self, version: int) -> list[dict]:
        """Users whose index is a multiple of 10 get none (they get the popular list)."""
        rows = []
        for u, user in enumerate(self.users):
            if u % 10 == 0:
                continue
            for rank in range(1, self.list_length + 1):
                track = self.tracks[(u * 7 + rank * (version + 2)) % len(self.tracks)]
                rows.append(
                    dict(user_id=user, rank=rank, track_id=track, score=1.0 / rank + version / 1e3,
                         source="model" if rank < self.list_length else "fallback")
                )  # fmt: skip
        return rows

    def similar(self, version: int) -> list[dict]:
        rows = []
        for t, track in enumerate(self.tracks[:-2]):  # the last two have no similar list
            for rank in range(1, self.similar_length + 1):
                similar = self.tracks[(t + rank * (version + 1)) % len(self.tracks)]
                rows.append(
                    dict(track_id=track, rank=rank, similar_track_id=similar,
                         score=round(0.9 - rank / 10 - version / 100, 6))
                )  # fmt: skip
        return rows

    def item(self, row: dict, track: str, **extra: object) -> dict:
        artist = None if track == self.uncataloged_track else self.artist_of(track)
        return {
            "rank": row["rank"],
            "score": round(row["score"], 6),
            **extra,
            "track_id": track,
            "title": self.title(track),
            "artist_id": artist,
            "artist_name": None if artist is None else self.artist_name(artist),
        }

    def user_documents(
        self, version: int, model_version: str, settings: Settings
    ) -> dict[str, dict]:
        """user_id -> the document `audotics publish` must store for that user (as published
        into `settings`' Redis: its publish time is the manifest's)."""
        lists: dict[str, list[dict]] = {}
        for row in self.recommendations(version):
            item = self.item(row, row["track_id"], source=row["source"])
            lists.setdefault(row["user_id"], []).append(item)
        opening = {"model_version": model_version, "fallback": False,
                   **published_times(settings, model_version)}  # fmt: skip
        return {
            user: {**opening, "total": len(items), "items": items} for user, items in lists.items()
        }

    def similar_documents(
        self, version: int, model_version: str, settings: Settings
    ) -> dict[str, dict]:
        """track_id -> the document `audotics publish` must store for that track."""
        lists: dict[str, list[dict]] = {}
        for row in self.similar(version):
            lists.setdefault(row["track_id"], []).append(self.item(row, row["similar_track_id"]))
        opening = {"model_version": model_version, **published_times(settings, model_version)}
        return {
            track: {**opening, "total": len(items), "items": items}
            for track, items in lists.items()
        }

    def write(self, settings: Settings, versions: list[str], published: str | None) -> None:
        """Write the catalog and one gold partition per version; `published` gets that status
        in the registry (the others stay candidates)."""
        self._write_catalog(settings)
        for index, model_version in enumerate(versions):
            _write_partition(
                settings, tables.RECOMMENDATIONS, model_version, self.recommendations(index)
            )
            _write_partition(settings, tables.SIMILAR_TRACKS, model_version, self.similar(index))
        registry = pa.Table.from_pylist(
            [
                dict(model_version=v, engine="implicit", params="{}", data_as_of=NOW.date(),
                     data_version=1, metrics='{"ndcg@10": 0.1}', baseline_metrics="{}",
                     status="published" if v == published else "candidate", reason="test",
                     created_at=NOW, status_changed_at=NOW + dt.timedelta(minutes=i))
                for i, v in enumerate(versions)
            ],
            tables.MODEL_REGISTRY.schema,
        )  # fmt: skip
        lake.write_arrow(settings, tables.MODEL_REGISTRY, registry, mode="overwrite")

    def _write_catalog(self, settings: Settings) -> None:
        cataloged = [t for t in self.tracks if t != self.uncataloged_track]
        tracks = pa.Table.from_pylist(
            [
                dict(track_id=t, title=self.title(t), artist_id=self.artist_of(t), genre="pop",
                     valid_from=NOW, valid_to=None, is_current=True)
                for t in cataloged
            ]
            # An old version of a track's row: only current rows may be served.
            + [dict(track_id=cataloged[1], title="Old title", artist_id=self.artists[0],
                    genre="pop", valid_from=NOW - dt.timedelta(days=9), valid_to=NOW,
                    is_current=False)],
            tables.SILVER_TRACKS.schema,
        )  # fmt: skip
        artists = pa.Table.from_pylist(
            [dict(artist_id=a, name=self.artist_name(a), valid_from=NOW, valid_to=None,
                  is_current=True) for a in self.artists]
            + [dict(artist_id=self.artists[1], name="Old name", valid_from=NOW - dt.timedelta(9),
                    valid_to=NOW, is_current=False)],
            tables.SILVER_ARTISTS.schema,
        )  # fmt: skip
        lake.write_arrow(settings, tables.SILVER_TRACKS, tracks, mode="overwrite")
        lake.write_arrow(settings, tables.SILVER_ARTISTS, artists, mode="overwrite")


def _write_partition(
    settings: Settings, table: Table, model_version: str, rows: list[dict]
) -> None:
    """Replace one model version's partition of a gold table with `rows`."""
    data = pa.Table.from_pylist(
        [{"model_version": model_version, **row} for row in rows], table.schema
    )
    lake.write_arrow(
        settings, table, data, mode="overwrite", predicate=f"model_version = '{model_version}'"
    )


def emptied(settings: Settings) -> Settings:
    """The settings, after emptying their Redis database."""
    redis.Redis.from_url(settings.redis_dsn).flushdb()
    return settings


@contextlib.contextmanager
def live_api(settings: Settings, port: int) -> Iterator[str]:
    """The read API in a real uvicorn server (a thread of this process); yields its base URL."""
    from serving.api import create_app

    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, loop="asyncio", http="httptools",
        log_level="warning", access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
