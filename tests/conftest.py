from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pathway import load_pathway  # noqa: E402


@pytest.fixture(scope="session")
def pw():
    return load_pathway("asuc")


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A private copy of the ASUC rules folder that a test may edit."""
    dest = tmp_path / "asuc"
    shutil.copytree(ROOT / "rules" / "asuc", dest)
    return dest


# Deliberately broken files (error corpus, check fixtures) are inputs of tests, not tests.
collect_ignore = ["corpus", "fixtures"]


_STARTED = time.monotonic()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With PATHWAY_TEST_RECORD naming a file (`./dev test-pythons` sets it), write which interpreter ran the suite
    and how it ended: CI checks that every supported CPython wrote one, under its own version, with exit status 0."""
    target = os.environ.get("PATHWAY_TEST_RECORD")
    if not target:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter is not None else {}
    record = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "exitstatus": int(exitstatus),
        "collected": session.testscollected,
        "outcomes": {k: len(stats.get(k, [])) for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")},
        "seconds": round(time.monotonic() - _STARTED, 1),
    }
    Path(target).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
