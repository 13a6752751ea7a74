"""The vocabulary of the feature store, in the spirit of Feast: an entity is what features
describe (a user, a track); a feature view is a set of features of one or more entities,
computed by one job into one offline table of the lake catalog, with an owner and a freshness
limit (ttl); a feature service names the features one consumer (a model) reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from audotics.errors import AudoticsError
from audotics.lake.tables import UTC_TIMESTAMP, Table

# Every offline table holds one snapshot per as_of_date, each in a partition of its own.
AS_OF_COLUMN = "as_of_date"


class FeatureStoreError(AudoticsError):
    """A feature, view or entity is unknown or a request to the store is malformed."""


class Dtype(Enum):
    """A feature's value type: its Spark SQL type (offline tables) and its Arrow type."""

    INT64 = ("bigint", pa.int64())
    FLOAT64 = ("double", pa.float64())
    STRING = ("string", pa.string())
    TIMESTAMP = ("timestamp", UTC_TIMESTAMP)
    FLOAT64_LIST = ("array<double>", pa.list_(pa.float64()))
    STRING_TO_FLOAT64 = ("map<string,double>", pa.map_(pa.string(), pa.float64()))

    def __init__(self, spark_type: str, arrow_type: pa.DataType) -> None:
        self.spark_type = spark_type
        self.arrow_type = arrow_type


@dataclass(frozen=True)
class Entity:
    name: str
    join_key: str
    description: str


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: Dtype
    description: str


@dataclass(frozen=True)
class FeatureView:
    """Features of some entities, one row per entity key and `as_of_date` in `table`.

    `ttl` is the freshness limit: a snapshot older than that is not served (offline: not joined;
    online: its Redis keys expire that long after materialization). `online`: materialized to
    the online store (a view of one entity only: Redis is looked up by one id).
    """

    name: str
    entities: tuple[Entity, ...]
    features: tuple[Feature, ...]
    table: Table
    owner: str
    source_job: str
    ttl: dt.timedelta
    description: str
    online: bool = True

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise FeatureStoreError(f"feature view {self.name} declares {duplicated} twice")
        if self.online and len(self.entities) != 1:
            raise FeatureStoreError(
                f"feature view {self.name}: an online view describes exactly one entity"
            )

    @property
    def entity(self) -> Entity:
        """The one entity of a single-entity view (every online view is one)."""
        if len(self.entities) != 1:
            raise FeatureStoreError(
                f"feature view {self.name} describes {[e.name for e in self.entities]}, not one "
                "entity"
            )
        return self.entities[0]

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(entity.join_key for entity in self.entities)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise FeatureStoreError(f"feature view {self.name} has no feature {name!r}")

    def arrow_schema(self) -> pa.Schema:
        """The offline table's schema: entity keys, `as_of_date`, then the features in order."""
        return pa.schema(
            [
                *(pa.field(key, pa.string(), nullable=False) for key in self.join_keys),
                pa.field(AS_OF_COLUMN, pa.date32(), nullable=False),
                *(pa.field(f.name, f.dtype.arrow_type) for f in self.features),
            ]
        )

    def select(self, *names: str) -> Projection:
        """Some of the view's features (all without names), as a feature service lists them."""
        return Projection(self, tuple(names) if names else tuple(self.feature_names))


@dataclass(frozen=True)
class Projection:
    """A view and the features of it that a consumer reads."""

    view: FeatureView
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in self.features:
            self.view.feature(name)  # raises for a feature the view does not declare


@dataclass(frozen=True)
class FeatureService:
    """What one consumer reads from the store, Feast-style: a list of view projections. Its
    readers ask the service for their inputs, so the features a model depends on are declared
    in one place (and a change of a view shows which consumers it touches)."""

    name: str
    description: str
    projections: tuple[Projection, ...]

    def projection(self, view: FeatureView) -> Projection:
        for projection in self.projections:
            if projection.view == view:
                return projection
        raise FeatureStoreError(f"feature service {self.name} reads nothing of view {view.name}")


@dataclass(frozen=True)
class FeatureRef:
    """One requested feature, resolved to its view, under the name it was requested by."""

    view: FeatureView
    feature: Feature
    requested_name: str

    @property
    def qualified_name(self) -> str:
        return f"{self.view.name}:{self.feature.name}"


def resolve_refs(
    views: Mapping[str, FeatureView], feature_names: Iterable[str], *, single_entity: bool
) -> list[FeatureRef]:
    """Resolve `view:feature` names, or bare feature names that exactly one view declares.

    `single_entity` refuses a request whose features describe different entities (an online
    lookup takes the ids of one entity)."""
    names = list(feature_names)
    if not names:
        raise FeatureStoreError("no feature names requested")
    refs = []
    for name in names:
        if ":" in name:
            view_name, feature_name = name.split(":", 1)
            if view_name not in views:
                raise FeatureStoreError(
                    f"unknown feature view {view_name!r} in {name!r}; known: {sorted(views)}"
                )
            view = views[view_name]
            refs.append(FeatureRef(view, view.feature(feature_name), name))
            continue
        owners = [view for view in views.values() if name in view.feature_names]
        if not owners:
            raise FeatureStoreError(f"unknown feature {name!r}: no feature view declares it")
        if len(owners) > 1:
            candidates = [f"{view.name}:{name}" for view in owners]
            raise FeatureStoreError(
                f"feature {name!r} is ambiguous: qualify it as one of {candidates}"
            )
        refs.append(FeatureRef(owners[0], owners[0].feature(name), name))
    entities = sorted({"+".join(e.name for e in ref.view.entities) for ref in refs})
    if single_entity and len(entities) > 1:
        raise FeatureStoreError(
            f"features of one entity per request; {names} mix the entities {entities}"
        )
    return refs
