"""The engine returns, for every scenario of the library, exactly what it returned before its performance
work: each ``observe`` result, the final result, the session document, the evaluations and the restored
result, also with a late event and a retraction (recorded by ``tests/golden.py``)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from golden import FIXTURE, compute, digest, digests, key, scenarios

from pathway.runtime.api import Pathway

GOLDEN: dict[str, Any] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
SCENARIOS = scenarios()
_cache: dict[Any, Pathway] = {}


def test_the_golden_set_covers_the_whole_library():
    assert len(SCENARIOS) >= 460
    assert sorted(key(ls) for ls in SCENARIOS) == sorted(GOLDEN)
    # it records late events and retractions, not only courses in order
    assert sum("late" in g for g in GOLDEN.values()) > 300
    assert sum(len(g["in_order"]["observed"]) for g in GOLDEN.values() if isinstance(g["in_order"], dict)) > 1500


@pytest.mark.parametrize("ls", [ls for ls in SCENARIOS if key(ls) in GOLDEN and "refused" not in GOLDEN[key(ls)]["in_order"]
                                and ls.scenario.expect.refused is None], ids=key)
def test_run_case_returns_the_recorded_final_result(ls):
    """A batch run builds no result before the last event: the final result is the recorded one."""
    from golden import _pathway

    case = ls.scenario.case
    result = _pathway(ls, _cache).run_case({"patient": case.patient, "events": list(case.events)})
    assert {k: digest(v) for k, v in result.items()} == GOLDEN[key(ls)]["in_order"]["result"]


@pytest.mark.parametrize("ls", SCENARIOS, ids=key)
def test_results_and_documents_are_the_recorded_ones(ls):
    now = digests(compute(ls, _cache))
    if key(ls) not in GOLDEN:
        pytest.fail(f"{key(ls)} is not in the golden set: record it with `python tests/golden.py`")
    before = GOLDEN[key(ls)]
    if now != before:
        diffs = []
        for name in sorted(set(now) | set(before)):
            a, b = now.get(name), before.get(name)
            if isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b)):
                    if a.get(k) != b.get(k):
                        sub = a.get(k), b.get(k)
                        if isinstance(sub[0], dict) and isinstance(sub[1], dict):
                            keys = sorted(set(sub[0]) | set(sub[1]))
                            k = f"{k}[{', '.join(x for x in keys if sub[0].get(x) != sub[1].get(x))}]"
                        diffs.append(f"{name}.{k}")
            elif a != b:
                diffs.append(name)
        pytest.fail("differs from the recorded result: " + ", ".join(diffs))
