"""The values of the Redis contract: one pre-serialized JSON document per user and per track, and
one popular list per version (format in serving/README.md).

Documents are built column-wise with Arrow compute, never with a Python loop per item, and in
batches of groups, so publishing is bound by Redis rather than by serialization, and memory by
the input table rather than by the documents. Track metadata is serialized once per track with
orjson (which escapes it) and referenced from every item through a dictionary array.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

SCORE_DECIMALS = 6
POPULAR_SOURCE = "popular"  # the `source` of items in the popular list
_STRING = pa.large_string()  # 64-bit offsets: a batch of documents may pass 2 GiB


@dataclass(frozen=True)
class Batch:
    """Documents of consecutive groups: `keys[i]` (a user or track id) owns `documents[i]`."""

    keys: list[str]
    documents: list[bytes]


def header(
    model_version: str,
    *,
    fallback: bool | None,
    generated_at: dt.datetime | None,
    published_at: dt.datetime,
) -> str:
    """The opening members of a document; `fallback` only for recommendation lists. The two
    times tell an app how fresh a list is: when training made it, when publish loaded it."""
    members: dict[str, object] = {"model_version": model_version}
    if fallback is not None:
        members["fallback"] = fallback
    members["generated_at"] = iso_time(generated_at)
    members["published_at"] = iso_time(published_at)
    return orjson.dumps(members).decode()[:-1]  # keep the object open for total and items


def iso_time(moment: dt.datetime | None) -> str | None:
    """A time as the contract writes it: ISO 8601 in UTC, to the second, e.g.
    2026-11-04T02:10:00+00:00."""
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="seconds")


class TrackMetadata:
    """The JSON members `"track_id", "title", "artist_id", "artist_name"` of every track, from
    the current catalog; a track missing from it gets nulls rather than failing a publish."""

    def __init__(self, tracks: pa.Table, artists: pa.Table) -> None:
        artist_names = dict(
            zip(artists["artist_id"].to_pylist(), artists["name"].to_pylist(), strict=True)
        )
        self._by_track = {
            track_id: (title, artist_id, artist_names.get(artist_id))
            for track_id, title, artist_id in zip(
                tracks["track_id"].to_pylist(),
                tracks["title"].to_pylist(),
                tracks["artist_id"].to_pylist(),
                strict=True,
            )
        }

    def members(self, track_ids: pa.ChunkedArray) -> pa.DictionaryArray:
        """The members of each row's track, as a dictionary array: one string per distinct
        track, however many rows name it."""
        distinct = pc.unique(track_ids)
        dictionary = pa.array(
            [self._members(track_id) for track_id in distinct.to_pylist()], type=_STRING
        )
        indices = pc.index_in(track_ids, value_set=distinct).combine_chunks()
        return pa.DictionaryArray.from_arrays(indices, dictionary)

    def _members(self, track_id: str) -> str:
        title, artist_id, artist_name = self._by_track.get(track_id, (None, None, None))
        described = {
            "track_id": track_id,
            "title": title,
            "artist_id": artist_id,
            "artist_name": artist_name,
        }
        return orjson.dumps(described).decode()[1:-1]


def items(rows: pa.Table) -> pa.Array:
    """One JSON object per row: rank, score, source (when `rows` has that column) and the
    track's members (see `TrackMetadata.members`). Sources must be plain words: the caller
    checks them against the data contract."""
    score = pc.cast(pc.round(rows["score"], SCORE_DECIMALS), _STRING)
    parts = [_text('{"rank":'), pc.cast(rows["rank"], _STRING), _text(',"score":'), score]
    if "source" in rows.column_names:
        parts += [_text(',"source":"'), pc.cast(rows["source"], _STRING), _text('"')]
    parts += [_text(","), pc.cast(rows["members"], _STRING), _text("}")]
    return pc.binary_join_element_wise(*parts, _text("")).combine_chunks()


def documents(rows: pa.Table, *, key: str, opening: str, batch_groups: int) -> Iterator[Batch]:
    """One document per distinct `key` value (opened by `opening`, see `header`), in batches
    of `batch_groups` documents.

    `rows` must be sorted by `key`, then by rank: each group's rows become its item list."""
    keys = rows[key].combine_chunks()
    starts = group_starts(keys)
    for first in range(0, len(starts) - 1, batch_groups):
        last = min(first + batch_groups, len(starts) - 1)
        begin, end = int(starts[first]), int(starts[last])
        offsets = pa.array(starts[first : last + 1] - begin, pa.int64())
        item_lists = pa.LargeListArray.from_arrays(offsets, items(rows.slice(begin, end - begin)))
        yield Batch(
            keys=keys.take(pa.array(starts[first:last])).to_pylist(),
            documents=wrap(opening, item_lists).to_pylist(),
        )


def document(opening: str, rows: pa.Table) -> bytes:
    """One document holding all `rows` (a popular list), ranked as they come."""
    offsets = pa.array([0, rows.num_rows], pa.int64())
    return wrap(opening, pa.LargeListArray.from_arrays(offsets, items(rows)))[0].as_py()


def wrap(opening: str, item_lists: pa.LargeListArray) -> pa.Array:
    """Whole documents, as bytes: `<opening>,"total":N,"items":[...]}`."""
    totals = pc.cast(pc.list_value_length(item_lists), _STRING)
    joined = pc.binary_join(item_lists, _text(","))
    closed = pc.binary_join_element_wise(
        _text(opening), _text(',"total":'), totals, _text(',"items":['), joined, _text("]}"),
        _text(""),
    )  # fmt: skip
    return closed.cast(pa.large_binary())


def group_starts(keys: pa.Array) -> np.ndarray:
    """Row index where each group of equal consecutive keys starts, then the row count."""
    if len(keys) == 0:
        return np.zeros(1, dtype=np.int64)
    changed = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    boundaries = np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1
    return np.concatenate(([0], boundaries, [len(keys)])).astype(np.int64)


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, _STRING)
