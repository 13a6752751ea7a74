"""Generate a whole world into the places a settings object names: the app database (schema
`app`) and `<landing_root>/events`, then the manifest that describes it; the A/B experiment the
world's service ran is entered in the lake's register of experiments, as its operator would have
started it (demo/world/experiment.py).

Re-running with the same world settings rewrites the same world. A different world (other
seed, sizes or dates) already in the landing folder is replaced only with `force`, because
later stages may have ingested it."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from audotics.settings import Settings
from demo.world.catalog import build_catalog
from demo.world.database import load_catalog
from demo.world.errors import WorldError
from demo.world.events import write_events
from demo.world.experiment import plan_experiment, register
from demo.world.landing import events_root, generated_files, remove_world
from demo.world.manifest import WorldManifest, manifest_path, read_manifest
from demo.world.spec import WorldSpec


def generate_world(
    settings: Settings, *, force: bool = False, progress: bool | None = None
) -> WorldManifest:
    """Write the world `settings` describe; return its manifest. `progress` shows a progress
    bar on stderr (None: when stderr is a terminal)."""
    spec = WorldSpec.from_settings(settings)
    events = events_root(settings)
    _check_replaceable(events, spec, force)

    started = time.perf_counter()
    catalog = build_catalog(spec)
    load_catalog(settings, catalog)
    catalog_seconds = time.perf_counter() - started

    remove_world(events)
    started = time.perf_counter()
    written = write_events(spec, catalog, events, progress=progress)
    experiment = plan_experiment(spec)
    if experiment is not None:
        register(settings, experiment)
    manifest = WorldManifest(
        seed=spec.seed,
        settings=spec.as_settings(),
        catalog=catalog.row_counts(),
        files=written.files,
        days=written.days,
        valid_events_by_event_date=written.valid_by_event_date,
        json_bytes=written.json_bytes,
        gzip_bytes=written.gzip_bytes,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seconds={
            "catalog": round(catalog_seconds, 3),
            "events": round(time.perf_counter() - started, 3),
        },
        experiment=experiment.as_dict() if experiment else None,
    )
    _write_atomically(manifest_path(events), manifest.to_json())
    return manifest


def load_manifest(settings: Settings) -> WorldManifest:
    """The manifest of the world generated into `settings`' landing folder."""
    return read_manifest(events_root(settings))


def _check_replaceable(events: Path, spec: WorldSpec, force: bool) -> None:
    if force or not generated_files(events):
        return
    if not manifest_path(events).exists():
        raise WorldError(
            f"{events} holds event files but no {manifest_path(events).name} (an interrupted "
            "run?): rerun with --force to replace them"
        )
    existing, wanted = read_manifest(events).settings, spec.as_settings()
    if existing != wanted:
        changed = sorted(
            k for k in existing.keys() | wanted.keys() if existing.get(k) != wanted.get(k)
        )
        raise WorldError(
            f"{events} holds a different world (differs in {', '.join(changed)}): rerun with "
            "--force to replace it (stages that ingested it will see a new world)"
        )


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
