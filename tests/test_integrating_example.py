"""docs/examples/integrate.py, the integrator's guide's end-to-end example, runs on every store backend and
prints what the guide shows (a late day-3 CRP moves the patient to rescue selection, its resend changes
nothing, and its withdrawal brings the patient back with the incomplete-assessment alert)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "integrate.py"
GUIDE = ROOT / "docs" / "integrating.md"


def _run(location: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(EXAMPLE), location], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_the_example_runs_the_feed_through_a_stored_session(backend):
    lines = _run(backend.location)
    steps = [(m.group(1), m.group(2), m.group(3)) for line in lines
             if (m := re.match(r"^\s*(append|insert|duplicate|amend|retract) (\S+)\s+-> (\S+)$", line))]
    assert steps == [("append", "ward-0", "iv_steroids"), ("append", "ward-1", "iv_steroids"),
                     ("append", "ward-3", "iv_steroids"), ("append", "ward-4", "iv_steroids"),
                     ("insert", "lab-881", "rescue_selection"), ("duplicate", "lab-881", "rescue_selection"),
                     ("retract", "lab-881", "iv_steroids")]
    assert lines[-2] == '{"state": "iv_steroids", "path": ["suspected_asuc", "iv_steroids"]}'
    # stools 6 and CRP 52 mg/L on day 3: Travis positive (3-8 stools and CRP > 45), so steroid failure is predicted
    insert = lines.index(next(x for x in lines if "insert lab-881" in x))
    assert any("No rescue treatment recorded" in x for x in lines[insert:insert + 4])


def test_the_guide_shows_the_examples_own_output(tmp_path):
    lines = _run(str(tmp_path / "s.db"))
    text = GUIDE.read_text(encoding="utf-8")
    block = text.split("Its output:\n\n```\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(block) >= 10
    shown = iter(lines)
    for expected in block:  # in order; a line the guide cuts ends with "..."
        actual = next(shown)
        if expected.endswith("..."):
            assert actual.startswith(expected[:-3].rstrip()), (expected, actual)
        else:
            assert actual == expected
