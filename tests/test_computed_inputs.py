"""Inputs derived from inputs: computed inputs (``compute:`` in the fields file) with their manual
override and provenance, and consistency checks between the values of one event."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cases import ADMIT, patient
from conftest import ROOT

from pathway import InputError, load_pathway
from pathway.analysis.explain import explain, explain_text
from pathway.cli.main import main
from pathway.core.errors import DefinitionError

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


def test_a_recorded_true_that_stands_is_lifted_only_by_a_recorded_false(tmp_path: Path) -> None:
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    (root / "fields.yaml").write_text(_MINI_FIELDS.replace(
        "      when: {crp_mg_l: {gt: $crp_limit_mg_l}}\n",
        "      when: {crp_mg_l: {gt: $crp_limit_mg_l}}\n      recorded_true_stands: true\n"), encoding="utf-8")
    pw = load_pathway(root, cache=False)
    assert pw.definition.computed["high_crp"].recorded_true_stands
    assert not pw.definition.computed["visible_blood"].recorded_true_stands
    s = pw.start({"id": "m1"})
    s.observe({"day": 0, "crp_mg_l": 40})
    r = s.observe({"day": 0.2, "high_crp": True})
    assert (r["computed"]["high_crp"]["value"], r["computed"]["high_crp"]["source"]) == (True, "recorded")
    r = s.observe({"day": 0.5, "crp_mg_l": 5})  # a newer input that computes false: the recorded true stands
    assert r["computed"]["high_crp"] == {"value": True, "source": "recorded", "derived": False, "recorded": True,
                                         "inputs": {"crp_mg_l": 5}}
    assert s.evaluations[-1]["facts"]["high_crp"] is True  # the engine saw the value used
    restored = pw.restore(s.dump())
    assert restored.observe({"day": 0.6, "stool_freq_24h": 2})["computed"]["high_crp"]["value"] is True
    r = s.observe({"day": 0.7, "high_crp": False})  # the recorded false lifts it
    assert (r["computed"]["high_crp"]["value"], r["computed"]["high_crp"]["source"]) == (False, "recorded")
    r = s.observe({"day": 0.8, "crp_mg_l": 60})  # and a recorded false is replaced by a newer input, as before
    assert (r["computed"]["high_crp"]["value"], r["computed"]["high_crp"]["source"]) == (True, "derived")
    # without the option, the newer input's computed value replaces the recorded true
    (root / "fields.yaml").write_text(_MINI_FIELDS, encoding="utf-8")
    s = load_pathway(root, cache=False).start({"id": "m2"})
    s.observe({"day": 0, "crp_mg_l": 40})
    s.observe({"day": 0.2, "high_crp": True})
    r = s.observe({"day": 0.5, "crp_mg_l": 5})
    assert (r["computed"]["high_crp"]["value"], r["computed"]["high_crp"]["source"]) == (False, "derived")


# -- computed inputs in the ASUC pathway: three-valued, override, provenance --------------------

def test_no_value_while_the_inputs_are_missing(pw) -> None:
    s = pw.start(patient())
    r = s.observe({"day": 0, "pulse_bpm": 100})
    assert "visible_blood" not in r["computed"] and "visible_blood" not in s.evaluations[-1]["facts"]
    r = s.observe({"day": 0, "bloody_stools_24h": 0})
    assert r["computed"]["visible_blood"] == {"value": False, "source": "derived", "derived": False, "recorded": None,
                                              "inputs": {"bloody_stools_24h": 0}}
    r = s.observe({"day": 0.5, "bloody_stools_24h": 3})
    assert r["computed"]["visible_blood"]["value"] is True


def test_jalan_is_unknown_until_it_can_be_decided(pw) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    # fever and tachycardia: 2 of 4 signs, 2 still open; nothing of the second group is known
    r = s.observe({"day": 1, "pulse_bpm": 125, "temp_c": 38.4})
    assert "systemic_toxicity" not in r["computed"]
    # a third sign (anaemia) but no second-group sign known yet: still unknown
    r = s.observe({"day": 1.2, "hb_g_dl": 9.5})
    assert "systemic_toxicity" not in r["computed"]
    r = s.observe({"day": 1.4, "potassium_mmol_l": 3.1})
    assert r["computed"]["systemic_toxicity"]["value"] is True
    # only 2 signs possible (neutrophils normal, Hb normal): definitely not toxic, whatever the rest
    s2 = pw.start(patient(id="p-2"))
    s2.observe(dict(ADMIT))
    r = s2.observe({"day": 1, "pulse_bpm": 125, "temp_c": 38.4, "hb_g_dl": 12, "neutrophils_10e9_l": 8})
    assert r["computed"]["systemic_toxicity"]["value"] is False


@pytest.mark.parametrize("events,value,source", [
    # recorded in the same event as the count, and agreeing with it (false with a count of 2 is refused)
    ([{"day": 3, "bloody_stools_24h": 2, "visible_blood": True}], True, "recorded"),
    # recorded in a later event than the count: the recorded value wins
    ([{"day": 3, "bloody_stools_24h": 2}, {"day": 3.2, "visible_blood": False}], False, "recorded"),
    # recorded in an earlier event than the count: the computed value wins
    ([{"day": 3, "visible_blood": False}, {"day": 3.2, "bloody_stools_24h": 2}], True, "derived"),
    # the computation is unknown (no count): the older recorded value stays
    ([{"day": 3, "visible_blood": False}, {"day": 3.2, "stool_freq_24h": 2}], False, "recorded"),
    # the recorded value has expired (current for 1 day): the computed value
    ([{"day": 1.5, "visible_blood": True}, {"day": 3, "bloody_stools_24h": 0}], False, "derived"),
    # the count has expired, the later recorded value has not
    ([{"day": 2.0, "bloody_stools_24h": 3}, {"day": 2.5, "visible_blood": False}, {"day": 3.2, "crp_mg_l": 10}],
     False, "recorded"),
])
def test_a_recorded_value_wins_unless_an_input_is_newer(pw, events, value, source) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    for event in events:
        r = s.observe(event)
    entry = r["computed"]["visible_blood"]
    assert (entry["value"], entry["source"]) == (value, source)
    assert s.evaluations[-1]["facts"]["visible_blood"] is value  # the engine saw the value used


def test_provenance_names_the_overridden_value_and_its_inputs(pw) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 3, "stool_freq_24h": 2, "bloody_stools_24h": 1, "crp_mg_l": 10})
    r = s.observe({"day": 3.1, "visible_blood": False})  # the team corrects the chart later (both together are refused)
    assert r["computed"]["visible_blood"] == {"value": False, "source": "recorded", "derived": True, "recorded": False,
                                              "inputs": {"bloody_stools_24h": 1}}
    assert r["state"] == "steroid_response"
    fired = next(t for t in reversed(r["trace"]) if t["rule"] == "complete_response")
    assert fired["facts"]["visible_blood"] is False
    text = explain_text(explain(pw, s, rule="complete_response"))
    line = next(x for x in text.splitlines() if x.strip().startswith("computed inputs:"))
    assert "visible_blood=false (recorded; overrides true computed from bloody_stools_24h=1)" in line


def test_explanations_show_where_a_computed_value_came_from(pw) -> None:
    case = {"patient": patient(), "events": [dict(ADMIT), {"day": 3, "stool_freq_24h": 2, "bloody_stools_24h": 0,
                                                             "crp_mg_l": 10, "albumin_g_l": 35}]}
    doc = explain(pw, case)
    assert doc["state"] == "steroid_response"
    assert doc["arrived_by"]["evaluation"]["computed"]["visible_blood"]["source"] == "derived"
    session, _ = pw.run_course(case)
    text = explain_text(explain(pw, session, rule="complete_response"))
    assert "visible_blood=false (computed from bloody_stools_24h=0)" in text


def test_data_required_names_what_a_missing_computed_input_is_computed_from(pw) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    r = s.observe({"day": 2, "transverse_colon_cm": 7.0})
    need = {d["field"]: d for d in r["data_required"]}
    assert need["systemic_toxicity"]["computed_from"] == [
        "temp_c", "pulse_bpm", "neutrophils_10e9_l", "hb_g_dl", "dehydration", "altered_consciousness",
        "potassium_mmol_l", "systolic_bp_mmhg"]


def test_computed_inputs_are_deterministic_and_survive_dump_and_restore(pw) -> None:
    case = {"patient": patient(), "events": [dict(ADMIT), {"day": 2, "transverse_colon_cm": 7.2, "pulse_bpm": 128,
                                                             "temp_c": 38.6, "hb_g_dl": 9.0, "systolic_bp_mmhg": 85}]}
    first = json.dumps(pw.run_case(case), sort_keys=True)
    assert first == json.dumps(load_pathway("asuc", cache=False).run_case(case), sort_keys=True)
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    restored = pw.restore(json.loads(json.dumps(s.dump())))
    r = restored.observe(case["events"][1])
    assert r["state"] == "colectomy" and r["computed"]["systemic_toxicity"]["source"] == "derived"


def test_a_parameter_in_a_computation_follows_overrides() -> None:
    base = load_pathway("asuc")
    lower = load_pathway("asuc", parameters={"bp_uncontrolled_systolic_mmhg": 140})
    for pw, expected in ((base, False), (lower, True)):
        s = pw.start(patient())
        r = s.observe({"day": 0, "systolic_bp_mmhg": 150})
        assert r["computed"]["bp_uncontrolled"]["value"] is expected


# -- loader errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,code,fragment", [
    ("when: {bloody_stools_24h: {gt: 0}}", "when: {bloody_stools: {gt: 0}}", "PW202",
     "unknown field or derived fact 'bloody_stools'"),
    ("when: {bloody_stools_24h: {gt: 0}}", "when: {day: {gt: 0}}", "PW220",
     "computed input 'visible_blood' tests built-in 'day'"),
    ("when: {bloody_stools_24h: {gt: 0}}", "when: {complete_response: true}", "PW220",
     "tests derived fact 'complete_response'"),
    # a field computed from the record since a state was entered has its value only once the states are known
    ("when: {bloody_stools_24h: {gt: 0}}", "when: {tacrolimus_trough_recorded: true}", "PW220",
     "tests 'tacrolimus_trough_recorded', which is counted from when the patient entered 'rescue_tacrolimus'"),
    ("when: {bloody_stools_24h: {gt: 0}}", "when: {visible_blood: true}", "PW218",
     "cycle: visible_blood <- visible_blood"),
    ("when: {systolic_bp_mmhg: {gte: $bp_uncontrolled_systolic_mmhg}}", "when: {systolic_bp_mmhg: {gte: $bp_limit}}",
     "PW203", "unknown parameter 'bp_limit'"),
    ("              n: $jalan_min_signs", "              n: 5", "PW112", "'n' must be from 1 to the number of conditions (4)"),
    ("    gte: bloody_stools_24h", "    gte: bloody_stool_24h", "PW202", "unknown input field 'bloody_stool_24h'"),
])
def test_computation_and_check_errors_are_located(rules_copy: Path, old: str, new: str, code: str, fragment: str) -> None:
    path = rules_copy / "fields.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    line = text[:text.index(old)].count("\n") + 1
    with pytest.raises(DefinitionError) as info:
        load_pathway(rules_copy, cache=False)
    diags = [d for d in info.value.diagnostics if d.code == code]
    assert diags, str(info.value)
    d = diags[0]
    assert fragment in d.message and d.file.endswith("fields.yaml") and d.col >= 1
    assert d.line in (line, line - 1), str(d)  # the value, or the key naming it
    assert str(d).startswith(f"{d.file}:{d.line}:{d.col}: ") and str(d).endswith(f"[{code}]")


def test_a_cycle_through_two_computed_inputs_names_both(rules_copy: Path) -> None:
    path = rules_copy / "fields.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("when: {bloody_stools_24h: {gt: 0}}", "when: {bp_uncontrolled: true}")
    text = text.replace("when: {systolic_bp_mmhg: {gte: $bp_uncontrolled_systolic_mmhg}}", "when: {visible_blood: true}")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_pathway(rules_copy, cache=False)
    (cycle,) = [d for d in info.value.diagnostics if d.code == "PW218"]
    assert "visible_blood <- bp_uncontrolled <- visible_blood" in cycle.message


# -- consistency between the values of one event ------------------------------------------------

def test_an_inconsistent_event_is_refused_and_changes_nothing(pw) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    before = json.dumps(s.dump(), sort_keys=True)
    with pytest.raises(InputError) as info:
        s.observe({"day": 1, "bloody_stools_24h": 9, "stool_freq_24h": 4})
    assert json.dumps(s.dump(), sort_keys=True) == before
    (d,) = info.value.diagnostics
    assert d.code == "PW409" and d.file == "events[1].stool_freq_24h"
    assert "stool_freq_24h = 4 must be at least bloody_stools_24h = 9" in d.message
    # each value alone, or both consistent, is accepted
    s.observe({"day": 1, "bloody_stools_24h": 9})
    s.observe({"day": 1, "stool_freq_24h": 4})
    s.observe({"day": 1.5, "bloody_stools_24h": 4, "stool_freq_24h": 4})


def test_a_refused_case_file_points_at_the_inconsistent_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case.yaml"
    case.write_text("patient: {id: c1}\nevents:\n  - {day: 0, bloody_stools_24h: 8, pulse_bpm: 100}\n"
                    "  - day: 1\n    bloody_stools_24h: 9\n    stool_freq_24h: 4\n", encoding="utf-8")
    assert main(["run", str(case)]) == 2
    err = capsys.readouterr().err
    assert "case.yaml:6:21: events[1].stool_freq_24h: inconsistent values" in err and err.rstrip().endswith("[PW409]")


def test_a_forbidden_combination_is_refused_and_changes_nothing(pw) -> None:
    """A bloody stool is visible blood: both given as contradicting each other in one event is refused
    (read either way, it would decide the response); alone, or agreeing, they are accepted."""
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    before = json.dumps(s.dump(), sort_keys=True)
    with pytest.raises(InputError) as info:
        s.observe({"day": 4, "stool_freq_24h": 2, "bloody_stools_24h": 2, "visible_blood": False})
    assert json.dumps(s.dump(), sort_keys=True) == before
    (d,) = info.value.diagnostics
    assert d.code == "PW409" and d.file == "events[1].bloody_stools_24h"
    assert "bloody_stools_24h = 2 with visible_blood = false cannot be given together" in d.message
    assert "a bloody stool in the last 24 hours is visible blood" in d.message
    s.observe({"day": 4, "stool_freq_24h": 2, "bloody_stools_24h": 0, "visible_blood": False})
    s.observe({"day": 4.5, "stool_freq_24h": 2, "bloody_stools_24h": 0, "visible_blood": True})  # blood passed alone
    s.observe({"day": 5, "bloody_stools_24h": 1, "visible_blood": True})


def test_a_refused_case_file_points_at_the_forbidden_combination(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case.yaml"
    case.write_text("patient: {id: c1}\nevents:\n  - {day: 0, bloody_stools_24h: 8, pulse_bpm: 100}\n"
                    "  - day: 1\n    visible_blood: false\n    bloody_stools_24h: 3\n", encoding="utf-8")
    assert main(["run", str(case)]) == 2
    err = capsys.readouterr().err
    assert "case.yaml:6:" in err and "events[1].bloody_stools_24h: inconsistent values" in err
    assert err.rstrip().endswith("[PW409]")


@pytest.mark.parametrize("check,code,words", [
    ("{id: c, title: t, forbid: {all: [{crp_mg_l: {gt: 10}}, {perforaton: true}]}}", "PW202", "perforaton"),
    ("{id: c, title: t, field: crp_mg_l, forbid: {perforation: true}}", "PW112", "not both"),
    ("{id: c, title: t, forbid: {perforation: 3}}", None, None),
    ("{id: c, title: t, forbid: {crp_mg_l: {gt: $no_such_limit}}}", "PW203", "no_such_limit"),
])
def test_a_forbid_check_is_checked_where_it_is_written(tmp_path: Path, check: str, code: str | None,
                                                       words: str | None) -> None:
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    text = _MINI_FIELDS.replace("  - {id: crp_within_limit_field, title: a check of two values, field: crp_mg_l, "
                                "lte: crp_max_mg_l}\n", f"  - {check}\n")
    (root / "fields.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_pathway(root, cache=False)
    diags = info.value.diagnostics
    assert diags and all(d.file.endswith("fields.yaml") and d.line == 2 for d in diags), diags
    if code is not None:
        assert diags[0].code == code and words in diags[0].message + (diags[0].hint or "")


def test_a_forbid_check_in_a_small_pathway(tmp_path: Path) -> None:
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    text = _MINI_FIELDS.replace(
        "  - {id: crp_within_limit_field, title: a check of two values, field: crp_mg_l, lte: crp_max_mg_l}\n",
        "  - {id: quiet_perforation, title: a perforation is not recorded with a CRP under 5, "
        "forbid: {all: [{perforation: true}, {crp_mg_l: {lt: 5}}]}}\n")
    (root / "fields.yaml").write_text(text, encoding="utf-8")
    pw = load_pathway(root, cache=False)
    s = pw.start({"id": "m1"})
    with pytest.raises(InputError) as info:
        s.observe({"day": 0, "crp_mg_l": 2, "perforation": True})
    assert info.value.diagnostics[0].message.startswith("inconsistent values: perforation = true with crp_mg_l = 2")
    s.observe({"day": 0, "crp_mg_l": 2})
    s.observe({"day": 0, "perforation": True})  # the CRP of an earlier event is not 'given together'
