"""Inputs derived from inputs: computed inputs (``compute:`` in the fields file) with their manual
override and provenance, and consistency checks between the values of one event."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from pathway import InputError, load_pathway

BASE = ROOT / "tests" / "corpus" / "base"

_MINI_FIELDS = """\
consistency:
  - {id: crp_within_limit_field, title: a check of two values, field: crp_mg_l, lte: crp_max_mg_l}
fields:
  weight_kg: {type: number, title: Body weight, unit: kg, range: [25, 300], scope: both}
  crp_mg_l: {type: number, title: C-reactive protein, unit: mg/L, quantity: crp, range: [0, 800], valid_for_days: 1}
  crp_max_mg_l: {type: number, title: Highest CRP of the admission, unit: mg/L, range: [0, 800]}
  stool_freq_24h: {type: integer, title: Stools, range: [0, 60], valid_for_days: 1}
  high_crp:
    type: boolean
    title: CRP above the limit
    valid_for_days: 1
    compute:
      when: {crp_mg_l: {gt: $crp_limit_mg_l}}
      evidence: {sources: [Guide-2020], strength: G, status: verified}
  visible_blood:
    type: boolean
    title: Visible blood
    valid_for_days: 1
    compute:
      when: {all: [{high_crp: true}, {stool_freq_24h: {gte: 6}}]}
      evidence: {sources: [Guide-2020], strength: expert, status: unverified}
  perforation: {type: boolean, title: Perforation, valid_for_days: 1}
"""


def test_computations_in_a_small_pathway(tmp_path: Path) -> None:
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    (root / "fields.yaml").write_text(_MINI_FIELDS, encoding="utf-8")
    pw = load_pathway(root, cache=False)
    assert list(pw.definition.computed) == ["high_crp", "visible_blood"]  # inputs before what they compute
    assert pw.definition.computed["high_crp"].params == ("crp_limit_mg_l",)
    s = pw.start({"id": "m1"})
    r = s.observe({"day": 0, "crp_mg_l": 40})
    assert r["computed"] == {"high_crp": {"value": True, "source": "derived", "derived": True, "recorded": None,
                                          "inputs": {"crp_mg_l": 40}}}  # visible_blood: stools unknown
    r = s.observe({"day": 0, "stool_freq_24h": 7})
    assert r["computed"]["visible_blood"]["inputs"] == {"high_crp": True, "stool_freq_24h": 7}
    r = s.observe({"day": 0, "high_crp": False})  # recorded after its input: wins, and the value built on it follows
    assert r["computed"]["high_crp"]["source"] == "recorded" and r["computed"]["visible_blood"]["value"] is False
    stricter = load_pathway(root, parameters={"crp_limit_mg_l": 50}, cache=False)
    r = stricter.start({"id": "m2"}).observe({"day": 0, "crp_mg_l": 40})
    assert r["computed"]["high_crp"]["value"] is False
    with pytest.raises(InputError) as info:
        pw.start({"id": "m3"}).observe({"day": 0, "crp_mg_l": 90, "crp_max_mg_l": 60})
    assert info.value.diagnostics[0].code == "PW409"
