from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Loads come from the rule files, not from the cache of loaded pathways on disk (pathway.loading.stored): a test
# that changes the loader's code in memory must see its change. tests/test_stored.py turns the cache on.
os.environ["PATHWAY_NO_CACHE"] = "1"

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


# What `./dev test` watches while the suites run: PATHWAY_TEST_PROGRESS names a file that holds this run's process id,
# the number of tests started of those collected and the test running now (rewritten as each test starts), so the
# runner can say where each suite is; PATHWAY_TEST_STACKS names a file that every thread's stack is written to on
# SIGUSR1 (the runner sends it to a suite that overran its time before stopping it, so the log says where it hung).
_PROGRESS = os.environ.get("PATHWAY_TEST_PROGRESS", "")
_started = _total = 0


def pytest_configure(config: pytest.Config) -> None:
    stacks = os.environ.get("PATHWAY_TEST_STACKS")
    if stacks:
        import faulthandler

        config._pathway_stacks = open(stacks, "w", encoding="utf-8")  # type: ignore[attr-defined]  # noqa: SIM115
        faulthandler.register(signal.SIGUSR1, file=config._pathway_stacks, all_threads=True)  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    stacks = getattr(config, "_pathway_stacks", None)
    if stacks is not None:
        import faulthandler

        faulthandler.unregister(signal.SIGUSR1)
        stacks.close()


# A test marked `once` checks the rule library itself (every threshold mutant against the whole scenario library):
# its outcome does not depend on the interpreter, whose engine behaviour the other tests check under each version.
# `./dev test` runs the suite under every supported CPython at once and names in PATHWAY_TEST_ONCE_UNDER the one
# (X.Y) that runs these; under the others they are skipped, saying where they ran. Unset, every test runs.
_ONCE_UNDER = os.environ.get("PATHWAY_TEST_ONCE_UNDER", "")
_HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"
_once = {"collected": 0, "run_here": True}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    once = [item for item in items if item.get_closest_marker("once") is not None]
    _once["collected"] = len(once)
    if _ONCE_UNDER and _ONCE_UNDER != _HERE:
        _once["run_here"] = False
        skip = pytest.mark.skip(reason=f"checks the rule library, not the interpreter: run under CPython {_ONCE_UNDER} "
                                       "in this run (PATHWAY_TEST_ONCE_UNDER)")
        for item in once:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    global _total
    _total = len(session.items)


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    global _started
    _started += 1
    if _PROGRESS:
        tmp = _PROGRESS + ".tmp"
        Path(tmp).write_text(f"{os.getpid()}\t{_started}/{_total}\t{int(time.time())}\t{nodeid}\n", encoding="utf-8")
        os.replace(tmp, _PROGRESS)


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
        # the tests marked `once` collected, and whether this interpreter ran them (./dev checks one version did)
        "once": dict(_once),
        # CPU time of the run and of the processes it waited for (dot, Chromium, subprocesses): the work it took,
        # which other load on a shared machine does not inflate as it does the wall time (./dev prints both)
        "cpu_seconds": round(sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage,
                                                                       (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))), 1),
    }
    Path(target).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
