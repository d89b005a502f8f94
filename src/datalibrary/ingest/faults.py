"""Named fault-injection points, so tests can kill a real ingestion at a chosen step.

Set ``DATALIBRARY_FAULT_PAUSE=<step>`` and ``DATALIBRARY_FAULT_PAUSE_FILE=<path>``: when the
pipeline reaches that step it writes the file and waits forever (for a kill -9). Unset in
production, ``checkpoint`` does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STEPS = ("landed", "written", "committed")


def checkpoint(step: str) -> None:
    if os.environ.get("DATALIBRARY_FAULT_PAUSE") != step:
        return
    marker = os.environ.get("DATALIBRARY_FAULT_PAUSE_FILE")
    if marker:
        Path(marker).write_text(step)
    while True:  # pragma: no cover - ended by the test's kill -9
        time.sleep(1)
