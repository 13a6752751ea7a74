"""What a user sees when a setting is wrong or a port is taken: one line naming the thing and
the fix, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

AUDOTICS = Path(sys.executable).with_name("audotics")


def run_audotics(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AUDOTICS_HOME": str(tmp_path / "state"), **env}
    return subprocess.run(
        [str(AUDOTICS), *args], env=environment, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_an_invalid_setting_names_its_variable_and_form(tmp_path: Path) -> None:
    result = run_audotics(tmp_path, "run", AUDOTICS_WORLD_USERS="abc")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: AUDOTICS_WORLD_USERS='abc' is invalid: Input should be a valid integer, unable "
        "to parse string as an integer (expected int, default 2000; fix or unset the variable, "
        "or .env)"
    ]


def test_serve_on_a_busy_port_names_the_port_and_how_to_move_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_audotics(tmp_path, "serve", "--port", str(port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "--port or AUDOTICS_API_PORT" in result.stderr
