"""The dbt project's wiring, without running dbt: vocabularies shared with the platform, the
sources it declares against the tables the loader copies, and the connection that
`dbt/profiles.yml`, `dbt_env` and `audotics dbt-profile` agree on."""

from __future__ import annotations

import subprocess

import yaml

from audotics import vocabulary
from audotics.settings import Settings
from ingestion.runs import RUN_STATUSES
from warehouse.dbt import DBT_PROFILE, DBT_PROJECT_DIR, DBT_TARGET, dbt_env
from warehouse.load import LOADED_AT, SOURCES


def test_accepted_values_are_the_contract_vocabularies() -> None:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    variables = project["vars"]
    assert tuple(variables["event_types"]) == vocabulary.EVENT_TYPES
    assert tuple(variables["contexts"]) == vocabulary.CONTEXTS
    assert tuple(variables["devices"]) == vocabulary.DEVICES
    assert tuple(variables["genres"]) == vocabulary.GENRES
    assert tuple(variables["ingest_run_statuses"]) == RUN_STATUSES


def test_sources_are_the_loaded_tables_with_their_catalog_columns() -> None:
    """dbt's `lake` sources are exactly the raw tables the loader fills, and each documents the
    columns of the catalog schema of the lake table it is copied from, no more and no fewer
    (a drift test: a column renamed or added in the catalog fails here, not in dbt)."""
    sources_file = DBT_PROJECT_DIR / "models" / "staging" / "_lake__sources.yml"
    (lake_source,) = yaml.safe_load(sources_file.read_text())["sources"]
    declared = {table["name"]: table for table in lake_source["tables"]}
    assert lake_source["schema"] == "raw"
    assert sorted(declared) == sorted(source.raw_table for source in SOURCES)
    for source in SOURCES:
        if source.table.schema is None:  # a feature view declares its columns
            continue
        documented = {column["name"] for column in declared[source.raw_table]["columns"]}
        copied = {*source.table.schema.names, LOADED_AT}
        assert documented <= copied, (
            f"raw.{source.raw_table}: {documented - copied} not in {source.table}"
        )
        assert documented >= copied, f"raw.{source.raw_table}: {copied - documented} undocumented"


def test_profile_reads_every_variable_dbt_env_sets(tmp_path) -> None:
    external = Settings(
        _env_file=None,
        home=tmp_path,
        database_url="postgresql+psycopg://wh:s3cret@db.example:6543/dw",
    )
    env = dbt_env(external)
    assert env == {
        "DBT_AUDOTICS_HOST": "db.example",
        "DBT_AUDOTICS_PORT": "6543",
        "DBT_AUDOTICS_USER": "wh",
        "DBT_AUDOTICS_DBNAME": "dw",
        "DBT_ENV_SECRET_AUDOTICS_PASSWORD": "s3cret",
    }
    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())[DBT_PROFILE]
    output = profile["outputs"][DBT_TARGET]
    assert profile["target"] == DBT_TARGET and output["type"] == "postgres"
    rendered = " ".join(str(value) for value in output.values())
    assert all(f"env_var('{name}'" in rendered for name in env)
    # Unset, the profile falls back to the embedded server, following AUDOTICS_POSTGRES_PORT.
    assert "env_var('AUDOTICS_POSTGRES_PORT', '54329')" in output["port"]


def test_embedded_default_has_no_password(tmp_path) -> None:
    embedded = Settings(_env_file=None, home=tmp_path, postgres_port=50123)
    assert dbt_env(embedded) == {
        "DBT_AUDOTICS_HOST": "127.0.0.1",
        "DBT_AUDOTICS_PORT": "50123",
        "DBT_AUDOTICS_USER": "audotics",
        "DBT_AUDOTICS_DBNAME": "audotics",
    }


def test_dbt_profile_command_prints_shell_exports(env_for, tmp_path) -> None:
    env = env_for(Settings(_env_file=None, home=tmp_path, postgres_port=50124))
    result = subprocess.run(
        ["audotics", "dbt-profile"], env=env, capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert f"export DBT_PROFILES_DIR={DBT_PROJECT_DIR}" in lines
    assert "export DBT_AUDOTICS_PORT=50124" in lines
