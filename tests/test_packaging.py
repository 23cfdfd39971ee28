"""The wheel ships the rules: `pip install` then `pathway validate asuc` works from any folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_wheel_contains_rules_and_command_works_elsewhere(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("asuc_pathway-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    # Dependencies come from this environment (no network needed); the package itself from the wheel.
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(py), "-c",
                            "import pathway, pathway.loading.loader as l; print(pathway.__file__); print(l.shipped_rules_dir())"],
                           cwd=elsewhere, check=True, capture_output=True, text=True, env=env).stdout.split()
    assert all(str(venv) in line for line in where), where
    validate = subprocess.run([str(venv / "bin" / "pathway"), "validate", "asuc"], cwd=elsewhere,
                              capture_output=True, text=True, env=env)
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout.startswith("ok: asuc ")
    demo_case = Path(where[1]) / "asuc" / "cases" / "demo.yaml"
    run = subprocess.run([str(venv / "bin" / "pathway"), "run", str(demo_case), "--format", "json"], cwd=elsewhere,
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert '"state": "maintenance_thiopurine"' in run.stdout


def test_supported_pythons_agree_between_ci_requires_python_and_classifiers():
    """The versions `./dev test` (CI) runs the suite under are exactly those the package admits and lists."""
    match = re.search(r"^PYTHONS=\(([^)]*)\)$", (ROOT / "dev").read_text(encoding="utf-8"), re.M)
    assert match, "PYTHONS=(...) not found in ./dev"
    tested = match.group(1).split()
    minors = sorted(int(v.split(".")[1]) for v in tested)
    assert tested == [f"3.{m}" for m in minors] and minors == list(range(minors[0], minors[-1] + 1)), tested
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == f">=3.{minors[0]},<3.{minors[-1] + 1}"
    listed = [m.group(1) for c in project["classifiers"] if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))]
    assert listed == tested
