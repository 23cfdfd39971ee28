"""The pytest plugin: pytest in a folder of scenario files runs each scenario as a test item."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCENARIOS = """\
scenarios:
  - id: admitted
    purpose: T&W met by pulse
    case:
      patient: {id: a}
      events: [{day: 0, bloody_stools_24h: 8, pulse_bpm: 100}]
    expect:
      state: iv_steroids
  - id: wrong_on_purpose
    purpose: a deliberately wrong expectation
    case:
      patient: {id: b}
      events: [{day: 0, bloody_stools_24h: 2}]
    expect:
      state: iv_steroids
"""


def test_pytest_collects_scenarios_and_shows_the_diff(tmp_path: Path):
    (tmp_path / "my_scenarios.yaml").write_text(SCENARIOS, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed" in out
    assert "my_scenarios.yaml::wrong_on_purpose" in out
    assert "my_scenarios.yaml:15: scenario 'wrong_on_purpose': final state" in out
    assert "expected: iv_steroids" in out and "actual:   not_asuc" in out
