"""The ``at_least`` condition: three-valued counting, its negation, plain words, and the engine
firing it as the evaluator counts."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from pathway import load_pathway
from pathway.analysis.evaluate import evaluate_state
from pathway.definition import conditions as C

BASE = ROOT / "tests" / "corpus" / "base"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_at_least_is_true_false_or_unknown_by_counting(n: int) -> None:
    items = tuple(C.Cmp(f"f{i}", "eq", True) for i in range(3))
    cond = C.AtLeast(n, items)
    for values in itertools.product([True, False, None], repeat=3):
        facts = {f"f{i}": v for i, v in enumerate(values) if v is not None}
        true, open_ = values.count(True), values.count(None)
        expected = True if true >= n else (False if true + open_ < n else None)
        assert C.evaluate(cond, facts) is expected, (n, values)
        assert C.evaluate(C.expand_counts(cond), facts) is expected, (n, values)  # the form the engine compiles
        assert C.evaluate(C.negate(cond), facts) is (None if expected is None else not expected), (n, values)


def test_at_least_reads_in_plain_words() -> None:
    cond = C.AtLeast(2, (C.Cmp("temp_c", "gt", 38), C.Cmp("pulse_bpm", "gt", 120, param="jalan_pulse_bpm"),
                         C.Cmp("hb_g_dl", "lt", 10.5)), param="signs")
    assert C.describe(cond) == "at least $signs of (temp_c > 38, pulse_bpm > $jalan_pulse_bpm, hb_g_dl < 10.5)"


def _mini(tmp_path: Path, rules: str | None = None, fields_extra: str = "") -> Path:
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    if rules is not None:
        (root / "rules.yaml").write_text(rules, encoding="utf-8")
    if fields_extra:
        path = root / "fields.yaml"
        path.write_text(path.read_text(encoding="utf-8") + fields_extra, encoding="utf-8")
    return root


_COUNT_RULES = """\
title: at_least in the engine
rules:
  - id: flare_severity
    title: Severe flare when two of three signs hold
    in: assessment
    when:
      at_least:
        n: 2
        of:
          - crp_mg_l: {gt: $crp_limit_mg_l}
          - stool_freq_24h: {gte: 6}
          - visible_blood: true
    then:
      - derive: {severe_flare: true}
    otherwise:
      - derive: {severe_flare: false}
    evidence: {sources: [Guide-2020], strength: G, status: verified}
  - id: start_treatment
    title: Severe flare or perforation
    in: assessment
    when:
      at_least:
        n: 1
        of: [{severe_flare: true}, {perforation: true}]
    then:
      - transition: treatment
    evidence: {sources: [Guide-2020], strength: G, status: verified}
  - id: steroid_dose
    title: Steroid dose
    in: treatment
    then:
      - dose: {name: prednisolone, route: oral, mg_per_kg_per_day: $steroid_mg_kg_day, round_to_mg: 5}
    evidence: {sources: [Trial-2018], strength: T, status: verified}
"""


def test_the_engine_fires_at_least_as_the_evaluator_counts(tmp_path: Path) -> None:
    pw = load_pathway(_mini(tmp_path, _COUNT_RULES), cache=False)
    crp = [None, 10, 50]
    stools = [None, 2, 8]
    blood = [None, False, True]
    perforation = [None, False, True]
    for values in itertools.product(crp, stools, blood, perforation):
        event = {"day": 0, **{k: v for k, v in zip(("crp_mg_l", "stool_freq_24h", "visible_blood", "perforation"),
                                                    values, strict=True) if v is not None}}
        s = pw.start({"id": "x", "weight_kg": 70})
        result = s.observe(event)
        signs = [values[0] is not None and values[0] > 30, values[1] is not None and values[1] >= 6, values[2]]
        true = sum(1 for v in signs if v is True)
        unknown = sum(1 for v, raw in zip(signs, values[:3], strict=True) if raw is None)
        severe = True if true >= 2 else (False if true + unknown < 2 else None)
        assert result["derived"].get("severe_flare") == severe, values
        moved = severe is True or values[3] is True
        assert result["state"] == ("treatment" if moved else "assessment"), values
        facts = {k: v for k, v in event.items() if k != "day"} | {"day": 0, "days_in_state": 0}
        static = evaluate_state(pw.compiled, "assessment", facts)
        assert static.derived.get("severe_flare") == severe and (static.decision() is not None) == moved, values
