"""Two `audotics run` (or two warehouse builds) cannot run at once: while one holds its lock,
a second waits and then refuses, naming the holder. Real CLI processes and PostgreSQL; the
holder here is this test, so nothing heavy runs."""

from __future__ import annotations

import subprocess

import pytest

from audotics import locks


@pytest.mark.parametrize(
    ("lock", "command"),
    [
        ("audotics run", ["audotics", "run"]),
        ("warehouse build", ["audotics", "warehouse", "build"]),
    ],
)
def test_a_second_run_refuses_naming_the_holder(isolated_platform, env_for, lock, command):
    settings = isolated_platform("run_locks")
    env = env_for(settings) | {"AUDOTICS_LOCK_WAIT_SECONDS": "1"}
    with locks.exclusive(settings, lock, purpose="the first run"):
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode != 0
    assert f"lock '{lock}' is held by audotics lock '{lock}': the first run" in second.stderr
    assert "AUDOTICS_LOCK_WAIT_SECONDS=1s" in second.stderr
