"""Safety invariants and ``pathway verify``: the shipped invariants hold on generated courses under
every profile, a planted fault is found, shrunk and printed as a scenario that reproduces it, and
broken invariant files get located errors."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT

from pathway import DefinitionError, load_pathway
from pathway.authoring.scenario import Scenario, load_scenarios, run_scenario
from pathway.authoring.verify import candidate_values, check_course, scenario_yaml, verify
from pathway.cli.main import main

#: Courses per profile in the test suite (longer searches on demand: pathway verify --budget N).
CI_BUDGET = 2000


@pytest.mark.parametrize("profile", ["default", "nice", "tac_high_start"])
def test_no_invariant_is_broken_at_the_ci_budget(profile: str) -> None:
    report = verify(load_pathway("asuc", profile=profile), budget=CI_BUDGET, seed=0)
    assert report.violation is None, report.violation and scenario_yaml(report.violation)
    assert report.courses == CI_BUDGET and report.events > CI_BUDGET
    # every invariant is exercised by some course (an invariant never applied proves nothing)
    ids = {i.id for i in load_pathway("asuc", profile=profile).definition.invariants}
    assert set(report.checks) == ids, sorted(ids - set(report.checks))


def test_every_scenario_course_of_the_library_keeps_every_invariant() -> None:
    """The scenario library's courses are courses too: each one is checked against every invariant."""
    pw = load_pathway("asuc")
    broken = []
    for path in sorted((ROOT / "rules" / "asuc" / "scenarios").glob("*.yaml")):
        for sc in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]:
            if sc.get("profile") or sc.get("parameters"):
                continue
            v = check_course(pw, sc["case"])
            if v is not None:
                broken.append(f"{sc['id']}: {v.invariant}: {v.detail}")
    assert not broken, "\n".join(broken)


def _without_emergency_rule(rules_copy):
    emergency = rules_copy / "emergency.yaml"
    text = emergency.read_text(encoding="utf-8")
    start = text.index("  - id: perforation_or_massive_bleed")
    end = text.index("\n  - id:", start + 5) + 1
    emergency.write_text(text[:start] + text[end:], encoding="utf-8")
    hazards = rules_copy / "hazards.yaml"
    hazards.write_text(re.sub(r"perforation_or_massive_bleed, |, perforation_or_massive_bleed", "",
                              hazards.read_text(encoding="utf-8")), encoding="utf-8")
    return load_pathway(rules_copy, cache=False)


def test_a_planted_fault_is_found_shrunk_and_printed_as_a_reproducing_scenario(rules_copy, tmp_path) -> None:
    planted = _without_emergency_rule(rules_copy)
    report = verify(planted, budget=500, seed=0)
    v = report.violation
    assert v is not None and v.invariant == "INV-001" and "HAZ-003" in v.hazards
    assert len(v.case["events"]) == 1  # shrunk to one event: a perforation or haemorrhage on admission
    event = v.case["events"][0]
    assert event.get("perforation") is True or event.get("massive_haemorrhage") is True
    text = scenario_yaml(v)
    assert text.startswith("# INV-001 broken after event 0")
    scenario = Scenario.model_validate(yaml.safe_load(text)["scenarios"][0])
    assert scenario.expect.state == "colectomy"
    # the printed scenario fails on the faulty rules and passes on the shipped ones
    assert check_course(planted, scenario.case.model_dump()) is not None
    assert check_course(load_pathway("asuc"), scenario.case.model_dump()) is None
    (tmp_path / "counterexample.yaml").write_text(text, encoding="utf-8")
    (loaded,) = load_scenarios(tmp_path / "counterexample.yaml")
    assert run_scenario(loaded, "asuc").passed
    assert not run_scenario(loaded, rules_copy).passed


def test_a_non_monotone_index_is_found(rules_copy) -> None:
    # Oxford positive only for 9-12 stools: 13 stools (worse) would read negative
    steroids = rules_copy / "steroids.yaml"
    text = steroids.read_text(encoding="utf-8")
    steroids.write_text(text.replace("        - stool_freq_24h: {gt: $oxford_stool_high}\n",
                                     "        - stool_freq_24h: {between: [9, 12]}\n", 1), encoding="utf-8")
    report = verify(load_pathway(rules_copy, cache=False), budget=1500, seed=0)
    v = report.violation
    assert v is not None and v.invariant == "INV-014"
    assert "oxford_high_risk is true with stool_freq_24h=12 but false with stool_freq_24h=13" in v.detail


def test_the_same_seed_finds_the_same_course(rules_copy) -> None:
    planted = _without_emergency_rule(rules_copy)
    first, again = verify(planted, budget=1500, seed=7), verify(planted, budget=1500, seed=7)
    assert first.violation is not None and again.violation is not None
    assert first.violation.case == again.violation.case and first.courses == again.courses


def test_verify_command(rules_copy, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "asuc", "--budget", "50"]) == 0
    out = capsys.readouterr().out
    assert "50 course(s)" in out and "no violation of 20 invariant(s)" in out
    _without_emergency_rule(rules_copy)
    assert main(["verify", str(rules_copy), "--budget", "1500"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATION of INV-001" in out and "scenarios:\n- id: verify-inv-001-counterexample" in out
    assert main(["verify", "asuc", "--budget", "0"]) == 2


def test_values_straddle_every_threshold() -> None:
    values = candidate_values(load_pathway("asuc"))
    assert {44, 45, 46} <= set(values["crp_mg_l"])                  # Oxford CRP > 45
    assert {7, 8, 9} <= set(values["stool_freq_24h"])               # Oxford stools > 8
    assert values["rescue_choice"] if "rescue_choice" in values else True
    assert "rescue_choice" not in values                            # decisions are drawn separately


def _broken(rules_copy, old: str, new: str) -> list:
    path = rules_copy / "invariants.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_pathway(rules_copy, cache=False)
    return info.value.diagnostics


@pytest.mark.parametrize("old,new,code,fragment", [
    ("    hazards: [HAZ-011]\n    when: {state: rescue_selection, ciclosporin_excluded: true}",
     "    hazards: [HAZ-911]\n    when: {state: rescue_selection, ciclosporin_excluded: true}",
     "PW239", "names unknown hazard 'HAZ-911'"),
    ("    builtin: no_stall\n", "    builtin: no_stalls\n", "PW112", "unknown built-in invariant 'no_stalls'"),
    ("        - moves_to: colectomy\n        - state: colectomy\n",
     "        - moves_to: colectomyy\n        - state: colectomy\n", "PW201", "unknown state 'colectomyy'"),
    ("        - not: {offers: {option: ciclosporin, status: available}}",
     "        - nott: {offers: {option: ciclosporin, status: available}}", "PW110", "unknown expectation 'nott'"),
    ("    when: {state: rescue_selection, tacrolimus_excluded: true}",
     "    when: {state: rescue_selection, tacrolimus_exclude: true}", "PW202", "tacrolimus_exclude"),
    ("    after: {moves_to: iv_steroids}\n    within_days: 10\n", "    after: {moves_to: iv_steroids}\n",
     "PW112", "'after' and 'within_days' go together: add 'within_days'"),
    ("    within_days: 2\n", "    within_days: -2\n", "PW112", "'within_days' is a whole number of days"),
    ("    within_days: 2\n", "    within_days: $no_such_days\n", "PW203", "no_such_days"),
    ("    at: end\n", "    at: end\n    within_days: 3\n", "PW112", "'at: end' checks the last result"),
    ("    builtin: no_stall\n", "    builtin: no_stall\n    at: end\n", "PW112", "takes no course operator"),
])
def test_broken_invariants_get_located_errors(rules_copy, old: str, new: str, code: str, fragment: str) -> None:
    diags = _broken(rules_copy, old, new)
    match = [d for d in diags if d.code == code and fragment in d.message]
    assert match, "\n".join(map(str, diags))
    assert match[0].file.endswith("invariants.yaml") and match[0].line > 1


def test_hazards_name_the_invariants_that_verify_them() -> None:
    d = load_pathway("asuc").definition
    by_hazard = {h.id: set(h.invariants) for h in d.hazards}
    for inv in d.invariants:
        for hazard in inv.hazards:
            assert inv.id in by_hazard[hazard], (inv.id, hazard)
    assert all(h.scenarios or h.invariants for h in d.hazards)
    assert (ROOT / "rules" / "schema" / "invariants.schema.json").is_file()


# -- course operators ----------------------------------------------------------------------------

ADMISSION = {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60,
             "albumin_g_l": 32}


def test_a_stall_past_the_evidence_is_found_whatever_the_parameters_say() -> None:
    """INV-016 is written from the evidence (no benefit from IV steroids beyond 7-10 days), not from the
    watchdog: a profile that moves the final steroid day to day 30 silences the watchdog and the
    final-day rule, and the search finds a patient left on IV steroids on day 11 with nothing said. (The
    planted profile also raises the day-3 index thresholds out of reach, so that a day-3 assessment
    made, with every index negative, is common among the courses searched: with nothing recorded on
    day 3 the incomplete-assessment alert speaks, and that is not a stall.)"""
    planted = load_pathway("asuc", parameters={"final_steroid_day": 30, "oxford_stool_high": 40, "oxford_crp_mg_l": 900,
                                               "lindgren_threshold": 200, "car_threshold": 50}, cache=False)
    report = verify(planted, budget=300, seed=0)
    assert report.violation is not None and report.violation.invariant == "INV-016", report.violation
    assert "by day 10" in report.violation.detail
    course = report.violation.case
    assert check_course(planted, course) is not None
    # the same course under the shipped parameters keeps every invariant
    assert check_course(load_pathway("asuc"), course) is None


def test_within_days_is_judged_when_an_event_arrives_past_the_deadline() -> None:
    pw = load_pathway("asuc", parameters={"final_steroid_day": 30}, cache=False)
    patient = {"id": "w", "weight_kg": 70}
    quiet = {"stool_freq_24h": 5, "visible_blood": True}
    # day 3: 4 stools, CRP 10 mg/L: every index negative (Oxford, Lindgren 5.4, CRP/albumin 0.3), no complete
    # response, so nothing but the (planted) final steroid day would move the patient on
    day3 = {"day": 3, "stool_freq_24h": 4, "visible_blood": True, "crp_mg_l": 10, "albumin_g_l": 32}
    # nothing is known after day 10: the course has not broken the invariant (yet)
    assert check_course(pw, {"patient": patient, "events": [ADMISSION, day3, {"day": 10, **quiet}]}) is None
    late = check_course(pw, {"patient": patient, "events": [ADMISSION, day3, {"day": 10, **quiet}, {"day": 11, **quiet}]})
    assert late is not None and late.invariant == "INV-016" and late.event == 3
    # with nothing recorded in the day-3 window the incomplete-assessment alert speaks, so nothing stalls silently
    assert check_course(pw, {"patient": patient, "events": [ADMISSION, {"day": 10, **quiet}, {"day": 11, **quiet}]}) is None


def test_at_end_checks_only_the_last_result(rules_copy) -> None:
    path = rules_copy / "invariants.yaml"
    path.write_text(path.read_text(encoding="utf-8") + """
  - id: INV-900
    title: Every course ends in rescue selection (false on purpose)
    at: end
    expect: {state: rescue_selection}
""", encoding="utf-8")
    pw = load_pathway(rules_copy, cache=False)
    assert pw.definition.invariants[-1].at_end
    patient = {"id": "e", "weight_kg": 70}
    failing_day3 = {"day": 3, "stool_freq_24h": 12, "visible_blood": True, "crp_mg_l": 80, "albumin_g_l": 30}
    # admission alone ends in IV steroids: broken, and said to be about the end of the course
    v = check_course(pw, {"patient": patient, "events": [ADMISSION]})
    assert v is not None and v.invariant == "INV-900" and v.detail.startswith("at the end of the course")
    # the same admission followed by steroid failure ends in rescue selection: kept, although the
    # first result (IV steroids) alone would not satisfy it
    assert check_course(pw, {"patient": patient, "events": [ADMISSION, failing_day3]}) is None


def test_courses_give_values_in_both_units_and_long_rescue_courses() -> None:
    from hypothesis import HealthCheck, find, settings

    from pathway.authoring.verify import courses
    from pathway.definition.units import convert

    pw = load_pathway("asuc")
    conf = settings(max_examples=500, database=None, suppress_health_check=list(HealthCheck))
    other_unit = find(courses(pw), lambda c: any(isinstance(v, dict) for e in c["events"] for v in e.values()),
                      settings=conf)
    name, given = next((k, v) for e in other_unit["events"] for k, v in e.items() if isinstance(v, dict))
    field = pw.definition.fields[name]
    assert given["unit"] != field.unit and convert(field.quantity, given["value"], given["unit"]) is not None
    # a course on a rescue agent with a daily chart for more than a week
    long_rescue = find(courses(pw), lambda c: sum(1 for e in c["events"] if "stool_freq_24h" in e
                                                  and float(e["day"]) > 3) >= 8, settings=conf)
    assert any("rescue_choice" in e for e in long_rescue["events"])
