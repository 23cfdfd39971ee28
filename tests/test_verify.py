"""`pathway check`: every static check has a fixture that breaks exactly that check; findings are
compiler-style lines with stable codes; witnesses are real inputs; ASUC passes with no error."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from pathway import load_pathway
from pathway.analysis.check import CHECKS, StateSpace, check_pathway
from pathway.analysis.evaluate import branch_conditions, evaluate_state, field_candidates, time_candidates
from pathway.audit.hazards import hazard_check
from pathway.cli.main import main
from pathway.core.errors import EngineError
from pathway.definition import conditions as C

FIXTURES = ROOT / "tests" / "fixtures" / "checks"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|explained): (?P<msg>.+) "
                  r"\[(?P<code>PW\d{3})\]$")

# fixture -> (the one check it breaks, file of the finding, text on the finding's line, number of findings)
CASES = {
    "load_error": ("PW600", "rules.yaml", "transition: finished", 1),
    "unreachable": ("PW601", "pathway.yaml", "orphan:", 1),
    "dead_end": ("PW602", "pathway.yaml", "stuck:", 1),
    "terminal_way_out": ("PW603", "pathway.yaml", "{from: done, to: treat}", 1),
    "no_terminal": ("PW604", "pathway.yaml", "treat:", 2),
    "unused_transition": ("PW605", "pathway.yaml", "{from: treat, to: transfer}", 1),
    "not_an_edge": ("PW606", "rules.yaml", "transition: start", 1),
    "terminal_automatic": ("PW607", "rules.yaml", "- id: triage", 3),
    "no_watchdog": ("PW616", "pathway.yaml", "treat:", 1),
    "overlap": ("PW610", "rules.yaml", "id: low_level", 1),
    "gap": ("PW611", "pathway.yaml", "treat:", 1),
    "shadowed": ("PW612", "rules.yaml", "id: low_level", 1),
    "no_source": ("PW613", "pathway.yaml", "limit:", 1),
    "never_fires": ("PW614", "rules.yaml", "id: impossible_alert", 1),
    "conflict": ("PW615", "rules.yaml", "id: mark_high", 1),
    "long_text": ("PW617", "rules.yaml", "id: high_level_alert", 1),
    # the hazard log's checks (run by 'pathway check' through audit.hazards.hazard_check)
    "hazard_open_unmitigated": ("PW620", "hazards.yaml", "- id: H1", 1),
    "hazard_open_unverified": ("PW621", "hazards.yaml", "- id: H1", 1),
    "hazard_claims_mitigation": ("PW622", "hazards.yaml", "- id: H1", 1),
    "hazard_claims_verification": ("PW623", "hazards.yaml", "- id: H1", 1),
    "hazard_scenario_fails": ("PW624", "hazards.yaml", "ineligible_out", 1),
    "hazard_unknown_scenario": ("PW625", "hazards.yaml", "inelegible_out", 1),
    "hazard_unacceptable": ("PW626", "hazards.yaml", "- id: H1", 1),
}


def _line(path: Path, number: int) -> str:
    return path.read_text(encoding="utf-8").splitlines()[number - 1]


def test_the_clean_fixture_has_no_finding():
    report = check_pathway(FIXTURES / "ok")
    assert report.findings == [] and report.notes == []
    assert report.exit_code(strict=True) == 0


def test_every_check_code_has_a_fixture():
    covered = {code for code, *_ in CASES.values()}
    # PW69x are about checks: (tested below); PW627 is reported by 'pathway test --mutate' (test_mutate.py)
    assert covered == {c for c in CHECKS if c not in ("PW690", "PW691", "PW627")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_breaks_exactly_one_check(name: str):
    code, file, text, count = CASES[name]
    report = check_pathway(FIXTURES / name, extra=[hazard_check])
    assert {f.code for f in report.findings} == {code}, report.text()
    assert len(report.findings) == count
    first = report.findings[0]
    assert first.severity == CHECKS[code].severity
    assert first.file.endswith(f"fixtures/checks/{name}/{file}")
    assert text in _line(ROOT / first.file, first.line), (first, _line(ROOT / first.file, first.line))
    for f in report.findings:
        match = LINE.match(str(f))
        assert match and match["code"] == code and match["sev"] == f.severity, str(f)
    assert report.exit_code() == (1 if CHECKS[code].severity == "error" else 0)


def test_load_failure_lists_the_loaders_diagnostic_under_pw600():
    report = check_pathway(FIXTURES / "load_error")
    (f,) = report.findings
    assert "unknown state 'finished' [PW201]" in f.message
    assert not report.loaded and "rule checks skipped: the pathway does not load" in report.notes


def test_terminal_way_out_is_reported_once_not_again_as_loader_error():
    report = check_pathway(FIXTURES / "terminal_way_out")
    assert [f.code for f in report.findings] == ["PW603"]
    assert "terminal state 'done' has a way out (transition done -> treat)" in report.findings[0].message


def _witness_level(name: str) -> float:
    (f,) = check_pathway(FIXTURES / name).findings
    assert f.witness is not None and set(f.witness) == {"level"}
    return f.witness["level"]


def test_overlap_witness_is_an_input_where_both_rules_fire():
    level = _witness_level("overlap")
    assert 5 <= level <= 10  # low_level (<= 10 -> done) and raised_level (>= 5 -> out)
    pw = load_pathway(FIXTURES / "overlap")
    firings, _ = pw.engine.evaluate("treat", {"state": "treat", "level": level, "day": 0, "days_in_state": 0})
    assert {f.rule for f in firings} == {"low_level", "raised_level"}


def test_gap_witness_is_an_input_where_nothing_leaves_the_state():
    level = _witness_level("gap")
    assert 10 < level <= 20
    pw = load_pathway(FIXTURES / "gap")
    firings, _ = pw.engine.evaluate("treat", {"state": "treat", "level": level, "day": 0, "days_in_state": 0})
    assert firings == []


def test_conflict_witness_is_an_input_where_both_derivations_fire():
    level = _witness_level("conflict")
    assert level > 8
    pw = load_pathway(FIXTURES / "conflict")
    with pytest.raises(EngineError, match="already derived"):
        pw.engine.evaluate("treat", {"state": "treat", "level": level, "day": 0, "days_in_state": 0})


def test_shadowed_names_the_rule_that_wins():
    (f,) = check_pathway(FIXTURES / "shadowed").findings
    assert f.rules == ("low_level", "escalate")
    assert "e.g. escalate on level=" in f.message


def test_a_search_bound_is_reported_as_a_note_not_as_a_conclusion():
    report = check_pathway(FIXTURES / "gap", budget=1)
    assert report.findings == []
    assert any("search bound of 1 steps reached" in n for n in report.notes)


# -- switching checks ------------------------------------------------------------------------

def _with_checks(tmp_path: Path, name: str, entries: list[dict]) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    path = dest / "pathway.yaml"
    path.write_text(path.read_text(encoding="utf-8") + yaml.safe_dump({"checks": entries}, sort_keys=False), encoding="utf-8")
    return dest


def test_disable_flag_skips_a_check():
    assert check_pathway(FIXTURES / "gap", disable=["PW611"]).findings == []
    assert main(["check", str(FIXTURES / "gap"), "--disable", "PW611", "--strict"]) == 0


def test_unknown_code_on_the_command_line_is_bad_input(capsys):
    assert main(["check", str(FIXTURES / "ok"), "--disable", "PW999"]) == 2
    assert "unknown check code 'PW999'" in capsys.readouterr().err


def test_checks_section_explains_a_warning(tmp_path: Path, capsys):
    folder = _with_checks(tmp_path, "gap", [{"code": "PW611", "state": "treat", "note": "levels of 11-20 wait for review"}])
    report = check_pathway(folder)
    assert report.warnings == [] and len(report.explained) == 1
    assert report.explained[0].explained == "levels of 11-20 wait for review"
    assert main(["check", str(folder), "--strict"]) == 0
    assert capsys.readouterr().out.splitlines() == ["mini 1.0.0: 0 error(s), 0 warning(s), 1 explained"]
    assert main(["check", str(folder), "--show-explained"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert ": explained: gap in state 'treat'" in line and line.endswith("[PW611] - levels of 11-20 wait for review")


def test_checks_section_scoped_to_another_state_or_profile_does_not_explain(tmp_path: Path):
    folder = _with_checks(tmp_path, "gap", [{"code": "PW611", "state": "start", "note": "not this one"},
                                            {"code": "PW611", "profile": "elsewhere", "note": "another site"}])
    report = check_pathway(folder)
    assert [f.code for f in report.warnings] == ["PW611", "PW691"]  # the entry for 'start' is stale; 'elsewhere' is inactive
    assert "the entry for PW611 state 'start' explains no finding" in report.warnings[1].message


def test_checks_section_can_disable_a_warning_check(tmp_path: Path):
    folder = _with_checks(tmp_path, "gap", [{"code": "PW611", "disable": True, "note": "reviewed by hand"}])
    report = check_pathway(folder)
    assert report.findings == [] and report.disabled == ["PW611"]


def test_checks_section_refuses_to_explain_an_error_or_an_unknown_name(tmp_path: Path):
    folder = _with_checks(tmp_path, "overlap", [{"code": "PW610", "note": "fine"},
                                                {"code": "PW611", "rule": "low_levle", "note": "typo"}])
    report = check_pathway(folder)
    codes = [f.code for f in report.findings]
    assert codes.count("PW610") == 1 and not report.findings[codes.index("PW610")].explained
    bad = [f for f in report.findings if f.code == "PW690"]
    assert len(bad) == 2
    assert "PW610 is an error check" in bad[0].message
    assert str(bad[1]).endswith("unknown rule 'low_levle' (did you mean 'low_level'?) [PW690]")
    assert _line(folder / "pathway.yaml", bad[1].line).strip().startswith("rule: low_levle")


def test_json_output(capsys):
    assert main(["check", str(FIXTURES / "overlap"), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == 1 and doc["findings"][0]["code"] == "PW610"
    assert doc["findings"][0]["witness"]["level"] == _witness_level("overlap")
    assert doc["findings"][0]["rules"] == ["low_level", "raised_level"]


# -- the evaluator is the engine's semantics ---------------------------------------------------

def test_static_evaluator_agrees_with_the_engine_on_asuc(pw):
    """Random inputs from each state's boundary space: same firings and derived facts as durable_rules."""
    conds = branch_conditions(pw.compiled)
    rng = random.Random(20260302)
    compared = 0
    for state in pw.definition.spec.states:
        space = StateSpace(pw.compiled, state, conditions=conds)
        names = sorted({n for r in space.rules for n in space.inputs[r.id]})
        for _ in range(60 if names else 0):
            facts = dict(rng.choice(space.times))
            for n in names:
                facts[n] = rng.choice(space.candidates(n, complete=rng.random() < 0.5))
            mine = evaluate_state(pw.compiled, state, facts, conditions=conds)
            snapshot = {k: v for k, v in facts.items() if v is not None}
            snapshot["state"] = state
            try:
                firings, derived = pw.engine.evaluate(state, snapshot)
            except Exception:  # noqa: BLE001 - the engine refuses conflicting derivations
                assert mine.conflicts, facts
                continue
            assert sorted((f.rule, f.branch) for f in firings) == sorted(mine.fired.items()), (state, facts)
            assert derived == mine.derived, (state, facts)
            compared += 1
    assert compared > 300


def test_boundary_values():
    gt45 = C.Cmp("crp_mg_l", "gt", 45)
    assert field_candidates("crp_mg_l", "number", [gt45], value_range=(0, 800)) == [45, 46]  # 44 is like 45 for '> 45'
    lte = C.Cmp("crp_mg_l", "lte", 45)
    gte = C.Cmp("crp_mg_l", "gte", 45)
    assert sorted(field_candidates("crp_mg_l", "number", [lte, gte], value_range=(0, 800))) == [44, 45, 46]
    assert field_candidates("temp_c", "number", [C.Cmp("temp_c", "gt", 37.8)], value_range=(30, 44)) == [37.8, 37.9]
    assert field_candidates("n", "integer", [C.Cmp("n", "gte", 3)], value_range=(0, 4)) == [3, 2]
    assert field_candidates("b", "boolean", []) == [False]  # no test tells true from false
    assert field_candidates("b", "boolean", [C.Cmp("b", "eq", True)]) == [False, True]
    assert field_candidates("e", "enum", [C.Cmp("e", "eq", "x")], values=["x", "y", "z"]) == ["x", "y"]
    scored = field_candidates("s", "integer", [C.Cmp("s", "gt", 8)], value_range=(0, 60), numeric_use=True)
    assert {0, 60, 8, 9} <= set(scored)  # a field a score computes with keeps range ends and midpoints
    points = time_candidates([C.Cmp("day", "gte", 3), C.Cmp("days_in_state", "gte", 7)])
    assert all(p["days_in_state"] <= p["day"] for p in points)
    assert {(p["day"] >= 3, p["days_in_state"] >= 7) for p in points} == {(False, False), (True, False), (True, True)}


# -- the shipped pathway -----------------------------------------------------------------------

def test_asuc_has_no_check_error(capsys):
    report = check_pathway("asuc")
    assert report.loaded
    assert report.errors == [], report.text()
    assert main(["check", "asuc"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("asuc ") and " 0 error(s)" in out
    for line in out.splitlines()[:-1]:
        assert LINE.match(line) or line.startswith("note: "), line


def test_asuc_warnings_are_explained_by_the_proposed_checks_section(rules_copy: Path):
    """tests/fixtures/checks/asuc-checks.yaml is the checks: section proposed for rules/asuc/pathway.yaml."""
    proposal = (FIXTURES / "asuc-checks.yaml").read_text(encoding="utf-8")
    path = rules_copy / "pathway.yaml"
    text = path.read_text(encoding="utf-8")
    if "\nchecks:" not in text:
        path.write_text(text.rstrip("\n") + "\n\n" + proposal, encoding="utf-8")
    profiles = sorted(p.stem for p in (rules_copy / "profiles").glob("*.yaml")) or [None]
    for profile in profiles:
        report = check_pathway(rules_copy, profile=profile)
        assert report.errors == [] and report.warnings == [], (profile, report.text())
