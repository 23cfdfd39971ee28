from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sys
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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty session store database: SQLite always, PostgreSQL when PATHWAY_TEST_POSTGRES is set
    (tests/storebackends.py)."""
    from storebackends import make_backend

    b = make_backend(request.param, tmp_path)
    yield b
    b.cleanup()


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
        # CPU time of the run and of the processes it waited for (dot, Chromium, subprocesses): the work it took,
        # which other load on a shared machine does not inflate as it does the wall time (./dev prints both)
        "cpu_seconds": round(sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage,
                                                                       (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))), 1),
    }
    Path(target).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
