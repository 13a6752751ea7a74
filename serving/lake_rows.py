"""What a publish reads from the lake: the published model version (models/registry), that
version's gold/recommendations and gold/similar_tracks, checked against the data contract, and
the current catalog's track metadata (silver/tracks, silver/artists), ready to become documents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from audotics import lake
from audotics.lake import tables
from audotics.lake.tables import Table
from audotics.settings import Settings
from serving.documents import POPULAR_SOURCE, TrackMetadata
from serving.errors import PublishError

RECOMMENDATION_SOURCES = ["model", "fallback"]  # gold/recommendations.source, data contract


@dataclass(frozen=True)
class VersionRows:
    """What the lake holds for one model version, ready to become documents."""

    model_version: str
    recommendations: pa.Table  # sorted by user_id, rank; with track `members`
    similar: pa.Table  # sorted by track_id, rank; with track `members`
    popular: pa.Table  # rank, score, source, members
    users: int
    tracks: int
    table_versions: dict[str, int]  # Delta versions read, recorded in the manifest
    generated_at: dt.datetime | None  # the registry's created_at; None if not registered


def published_model_version(settings: Settings) -> str:
    """The registry's published model: the latest row with status 'published'."""
    registry = lake.read_arrow(
        settings,
        tables.MODEL_REGISTRY,
        columns=["model_version", "status_changed_at"],
        filter=pc.field("status") == "published",
    )
    if registry.num_rows == 0:
        raise PublishError(
            f"{tables.MODEL_REGISTRY} has no row with status 'published': publish a model in "
            "training, or choose one with --model-version"
        )
    latest = registry.sort_by([("status_changed_at", "descending")])
    return latest["model_version"][0].as_py()


def read_version(settings: Settings, version: str) -> VersionRows:
    recommendations, recommendations_version = _read_gold(
        settings, tables.RECOMMENDATIONS, ["user_id", "rank", "track_id", "score", "source"],
        version,
    )  # fmt: skip
    similar, similar_version = _read_gold(
        settings, tables.SIMILAR_TRACKS, ["track_id", "rank", "similar_track_id", "score"],
        version,
    )  # fmt: skip
    _check_rows(recommendations, tables.RECOMMENDATIONS, ["user_id", "rank", "track_id", "score"])
    _check_rows(similar, tables.SIMILAR_TRACKS, ["track_id", "rank", "similar_track_id", "score"])
    unknown_sources = set(pc.unique(recommendations["source"]).to_pylist()) - set(
        RECOMMENDATION_SOURCES
    )
    if unknown_sources:
        raise PublishError(
            f"{tables.RECOMMENDATIONS} has source values {sorted(map(str, unknown_sources))} "
            f"for {version}: the contract allows {RECOMMENDATION_SOURCES}"
        )
    metadata = TrackMetadata(
        lake.read_current(settings, tables.SILVER_TRACKS, ["track_id", "title", "artist_id"]),
        lake.read_current(settings, tables.SILVER_ARTISTS, ["artist_id", "name"]),
    )
    recommendations = recommendations.sort_by([("user_id", "ascending"), ("rank", "ascending")])
    # The similar track is the item; the track it is similar to keys the document.
    similar = similar.sort_by([("track_id", "ascending"), ("rank", "ascending")])
    users = len(pc.unique(recommendations["user_id"]))
    return VersionRows(
        model_version=version,
        recommendations=recommendations.append_column(
            "members", metadata.members(recommendations["track_id"])
        ),
        similar=similar.append_column("members", metadata.members(similar["similar_track_id"])),
        popular=_popular(recommendations, users, metadata),
        users=users,
        tracks=len(pc.unique(similar["track_id"])),
        table_versions={
            tables.RECOMMENDATIONS.path: recommendations_version,
            tables.SIMILAR_TRACKS.path: similar_version,
        },
        generated_at=_generated_at(settings, version),
    )


def _generated_at(settings: Settings, version: str) -> dt.datetime | None:
    """When training wrote the version's lists: its registry row's created_at (a version
    published with --model-version may have none)."""
    registry = lake.read_arrow(
        settings, tables.MODEL_REGISTRY, columns=["created_at"],
        filter=pc.field("model_version") == version,
    )  # fmt: skip
    return registry["created_at"][0].as_py() if registry.num_rows else None


def _read_gold(
    settings: Settings, table: Table, columns: list[str], version: str
) -> tuple[pa.Table, int]:
    """The version's rows of a gold list and the Delta version they were read at."""
    table_version = lake.version(settings, table)
    if table_version is None:
        raise PublishError(f"{table} does not exist yet: run training before publishing")
    rows = lake.read_arrow(
        settings, table, version=table_version, columns=columns,
        filter=pc.field("model_version") == version,
    )  # fmt: skip
    if rows.num_rows == 0:
        raise PublishError(
            f"{table} (version {table_version}) has no rows for model version {version}"
        )
    return rows, table_version


def _check_rows(rows: pa.Table, table: Table, required: list[str]) -> None:
    for column in required:
        if rows[column].null_count:
            raise PublishError(f"{table} has {rows[column].null_count} null values in {column}")
    if not pc.all(pc.is_finite(rows["score"])).as_py():
        raise PublishError(f"{table} has scores that are not finite numbers (NaN or infinity)")
    if pc.min(rows["rank"]).as_py() < 1:
        raise PublishError(f"{table} has ranks below 1 (ranks are 1-based)")


def _popular(recommendations: pa.Table, users: int, metadata: TrackMetadata) -> pa.Table:
    """The version's popular list: the tracks recommended to the most users (score: the share
    of `users`), as long as the longest user list. Served to users without recommendations."""
    size = pc.max(pc.value_counts(recommendations["user_id"]).field("counts")).as_py()
    counts = recommendations.group_by("track_id").aggregate([("user_id", "count_distinct")])
    top = counts.sort_by([("user_id_count_distinct", "descending"), ("track_id", "ascending")])
    top = top.slice(0, size)
    return pa.table(
        {
            "rank": pa.array(range(1, top.num_rows + 1), pa.int32()),
            "score": pc.divide(pc.cast(top["user_id_count_distinct"], pa.float64()), users),
            "source": pa.array([POPULAR_SOURCE] * top.num_rows),
            "members": metadata.members(top["track_id"]),
        }
    )
