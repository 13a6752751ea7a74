"""The demo world: a seeded, reproducible music service (catalog in PostgreSQL schema `app`,
hourly listening event files in the landing folder) for the pipeline to ingest and learn from.
See README.md in this folder."""

from demo.world.errors import WorldError
from demo.world.generate import generate_world, load_manifest
from demo.world.manifest import Counts, WorldManifest
from demo.world.spec import with_overrides

# Small enough for tests of other stages to generate in about a second.
TINY_WORLD: dict[str, object] = {
    "world_users": 300,
    "world_artists": 40,
    "world_tracks": 800,
    "world_days": 2,
    "world_events_per_day": 3_000,
}

__all__ = [
    "TINY_WORLD",
    "Counts",
    "WorldError",
    "WorldManifest",
    "generate_world",
    "load_manifest",
    "with_overrides",
]
