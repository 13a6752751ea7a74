"""The vocabulary of the feature store, in the spirit of Feast: an entity is what features
describe (a user, a track), a feature view is a set of features of one entity computed by one
job into one offline table, with an owner and a freshness limit (ttl)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from audotics.errors import AudoticsError

# Offline tables live at features/<view name>.
OFFLINE_LAYER = "features"


class FeatureStoreError(AudoticsError):
    """A feature, view or entity is unknown or a request to the store is malformed."""


class Dtype(Enum):
    """A feature's value type: its Spark SQL type (offline tables) and its Arrow type."""

    INT64 = ("bigint", pa.int64())
    FLOAT64 = ("double", pa.float64())
    STRING = ("string", pa.string())
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
    """Features of one entity, one row per entity and `as_of_date` in features/<name>.

    `ttl` is the freshness limit: a snapshot older than that is not served (offline: not joined;
    online: its Redis keys expire that long after materialization).
    """

    name: str
    entity: Entity
    features: tuple[Feature, ...]
    owner: str
    source_job: str
    ttl: dt.timedelta
    description: str

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise FeatureStoreError(f"feature view {self.name} declares {duplicated} twice")

    @property
    def table(self) -> str:
        """The offline table, <OFFLINE_LAYER>/<table>."""
        return self.name

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise FeatureStoreError(f"feature view {self.name} has no feature {name!r}")

    def arrow_schema(self) -> pa.Schema:
        """The offline table's schema: entity key, `as_of_date`, then the features in order."""
        return pa.schema(
            [
                pa.field(self.entity.join_key, pa.string(), nullable=False),
                pa.field("as_of_date", pa.date32(), nullable=False),
                *(pa.field(f.name, f.dtype.arrow_type) for f in self.features),
            ]
        )


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
    entities = sorted({ref.view.entity.name for ref in refs})
    if single_entity and len(entities) > 1:
        raise FeatureStoreError(
            f"features of one entity per request; {names} mix the entities {entities}"
        )
    return refs
