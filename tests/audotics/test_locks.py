"""Named locks in a real PostgreSQL: a second holder waits, then refuses naming the first; a
holder killed with SIGKILL leaves no stale lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from audotics import locks
from tests.support import REPO, environment_for

HOLD = """
import sys, time
from audotics import locks
from audotics.settings import Settings
with locks.exclusive(Settings(), "test lock", purpose="the holder under test"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def platform(isolated_platform):
    return isolated_platform("locks", lock_wait_seconds=1)


def test_a_second_holder_waits_then_refuses_naming_the_first(platform) -> None:
    with locks.exclusive(platform, "test lock", purpose="refine of landing day 2026-11-01"):
        started = time.monotonic()
        with (
            pytest.raises(locks.LockTimeout) as refused,
            locks.exclusive(platform, "test lock", purpose="the second run"),
        ):
            pass
        waited = time.monotonic() - started
    message = str(refused.value)
    assert "'test lock' is held by audotics lock 'test lock': refine of landing day" in message
    assert "AUDOTICS_LOCK_WAIT_SECONDS=1s: the second run did not run" in message
    assert 1 <= waited < 5
    with locks.exclusive(platform, "test lock", purpose="after the first ended"):
        pass  # released with its holder


def test_other_names_do_not_wait(platform) -> None:
    with (
        locks.exclusive(platform, "one", purpose="first"),
        locks.exclusive(platform, "two", purpose="second"),
    ):
        pass


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(platform) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], cwd=REPO, env=environment_for(platform),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(locks.LockTimeout, match="the holder under test"),
            locks.exclusive(platform, "test lock", purpose="while it lives"),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10  # the server ends the session as the socket closes
    while True:
        try:
            with locks.exclusive(platform, "test lock", purpose="after the kill"):
                break
        except locks.LockTimeout:
            assert time.monotonic() < deadline, "the killed holder's lock was never released"
