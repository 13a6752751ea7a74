"""Progress bars for steps that take more than a few seconds. They are drawn on the console
only when it is a terminal (so captured output, CI logs and log files stay clean) and vanish
when the step ends: its one summary line is what stays."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(description: str, total: int | None = None, unit: str = "it") -> tqdm:
    """A bar for one step: use as a context manager, `.update(n)` as work gets done."""
    return tqdm(
        total=total, desc=description, unit=unit, file=sys.stderr,
        leave=False, disable=None, dynamic_ncols=True, mininterval=0.5,
    )  # fmt: skip
