"""The validation process's start: modules GX imports but the suites never use are deferred."""

from __future__ import annotations

import subprocess
import sys

import pytest

from expectations.validation import Deferred


@pytest.fixture
def colorsys_unloaded(monkeypatch):
    """A module this session has not loaded, unloaded again afterwards."""
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    yield
    sys.modules.pop("colorsys", None)


def test_a_deferred_module_is_imported_when_an_attribute_is_first_read(colorsys_unloaded):
    sys.modules["colorsys"] = Deferred("colorsys")
    import colorsys  # the stand-in: nothing is imported yet

    assert isinstance(colorsys, Deferred)
    assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert not isinstance(sys.modules["colorsys"], Deferred)  # the real one took its place
    assert colorsys.hsv_to_rgb(0.0, 1.0, 1.0) == (1.0, 0.0, 0.0)  # the stand-in still reads it


def test_the_validation_process_loads_gx_without_the_modules_it_defers() -> None:
    probe = (
        "import os, sys\n"
        "from expectations import validation\n"
        "validation._start_process(os.getppid(), None)\n"
        "import great_expectations.expectations as gxe\n"
        "loaded = [n for n in ('scipy.stats._stats_py', 'altair.vegalite') if n in sys.modules]\n"
        "print(hasattr(gxe, 'ExpectColumnKLDivergenceToBeLessThan'), loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "True []"
