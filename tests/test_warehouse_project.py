"""The dbt project's wiring, without running dbt: vocabularies shared with the platform, and the
connection that `dbt/profiles.yml`, `dbt_env` and `audotics dbt-profile` agree on."""

from __future__ import annotations

import subprocess

import yaml

from audotics import vocabulary
from audotics.settings import Settings
from audotics.warehouse import DBT_PROFILE, DBT_PROJECT_DIR, DBT_TARGET, dbt_env


def test_accepted_values_are_the_contract_vocabularies() -> None:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    variables = project["vars"]
    assert tuple(variables["event_types"]) == vocabulary.EVENT_TYPES
    assert tuple(variables["contexts"]) == vocabulary.CONTEXTS
    assert tuple(variables["devices"]) == vocabulary.DEVICES
    assert tuple(variables["genres"]) == vocabulary.GENRES


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
