from __future__ import annotations

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
