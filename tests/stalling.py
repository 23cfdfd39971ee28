"""Work for worker-pool tests (importable by spawned workers): items that stall their worker once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_folder: Path | None = None


def init(folder: str) -> None:
    global _folder
    _folder = Path(folder)


def square_stalling_once(n: int) -> int:
    """n squared; a negative n stalls its worker the first time it is run (a marker file records the try),
    and n = -99 every time; an n below -100 kills its worker (a crash: the pool loses the task) the first time."""
    assert _folder is not None
    marker = _folder / f"tried-{n}"
    if n < 0 and (n == -99 or not marker.exists()):
        marker.touch()
        if n < -100:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(3600)
    return n * n
