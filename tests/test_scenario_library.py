"""The ASUC scenario library: it passes, covers every rule and edge, and failures name file and line."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from pathway.audit.evidence import evidence
from pathway.authoring.scenario import discover, load_scenarios, run_scenario, run_scenarios
from pathway.cli.main import main

LIBRARY = ROOT / "rules" / "asuc" / "scenarios"


@pytest.fixture(scope="module")
def library():
    return run_scenarios(discover([LIBRARY]), "asuc")


def _one(file: str, scenario_id: str) -> str:
    """One scenario of a library file, as a scenario file of its own."""
    rest = (LIBRARY / file).read_text(encoding="utf-8").partition(f"\n- id: {scenario_id}")[2]
    return f"scenarios:\n- id: {scenario_id}" + rest.split("\n- id:")[0]


def _outcome(path, text: str):
    """``text`` written to ``path`` and its one scenario run."""
    path.write_text(text, encoding="utf-8")
    (loaded,) = load_scenarios(path)
    return run_scenario(loaded)


def _misspelt(path, one: str, right: str, wrong: str):
    """The scenario ``one`` passes; with ``right`` replaced by ``wrong`` it is run again: its outcome, and the line
    (1-based) of the first line holding ``wrong``."""
    assert _outcome(path, one).passed
    typo = one.replace(right, wrong)
    assert typo != one
    lines = typo.splitlines()
    return _outcome(path, typo), lines.index(next(x for x in lines if wrong in x)) + 1


def test_library_has_at_least_40_scenarios_and_all_pass(library):
    outcomes, _ = library
    assert len(outcomes) >= 40
    failed = [o.report() for o in outcomes if not o.passed]
    assert not failed, "\n".join(failed)


#: The clinical review of December 2026 numbered its findings 1-36; each has a regression scenario
#: named after it (review-NN-...), so a finding whose fix is undone fails by name.
REVIEW_FINDINGS = range(1, 37)


def test_every_review_finding_has_a_passing_scenario_named_after_it(library):
    outcomes, _ = library
    passed: dict[int, list[str]] = {}
    for o in outcomes:
        sid = o.scenario.scenario.id
        if sid.startswith("review-") and sid[7:9].isdigit() and o.passed:
            passed.setdefault(int(sid[7:9]), []).append(sid)
    assert [n for n in REVIEW_FINDINGS if n not in passed] == []


def test_library_covers_every_rule_and_edge(library):
    _, coverage = library
    assert coverage.rules_never == [], f"rules never fired by a scenario: {coverage.rules_never}"
    assert coverage.edges_never == [], f"edges never taken by a scenario: {coverage.edges_never}"
    assert coverage.percent() == (100.0, 100.0)


def test_every_contraindication_is_tested_both_ways(library):
    outcomes, _ = library
    by_id = {o.id: o.result for o in outcomes}
    pairs = [("renal_impairment_excludes_cni", "creatinine_mg_dl_normal", "tacrolimus_excluded"),
             ("infliximab_latent_tb", "infliximab_tb_treated", "infliximab_excluded"),
             ("infliximab_hbv_untreated", "infliximab_hbv_on_antiviral", "infliximab_excluded"),
             ("infliximab_nyha_3", "infliximab_nyha_2", "infliximab_excluded")]
    for excluded, allowed, fact in pairs:
        assert by_id[excluded]["derived"][fact] is True
        assert by_id[allowed]["derived"][fact] is False
    # cautions (reasons against, still choosable) are tested both ways too
    option = {o.id: {x["option"]: x["status"] for x in o.result["options"]} for o in outcomes if o.result}
    assert option["ciclosporin_low_cholesterol"]["ciclosporin"] == "caution"
    assert option["ciclosporin_normal_cholesterol"]["ciclosporin"] == "available"


def test_a_wrong_expectation_names_the_file_and_line(tmp_path):
    text = (LIBRARY / "tacrolimus.yaml").read_text(encoding="utf-8")
    parts = text.split("\n\n- id:")
    first = parts[0] + "\n\n- id:" + parts[1]
    wrong = first.replace("dose_mg: 2, times_per_day: 2, daily_mg: 4", "dose_mg: 3, times_per_day: 2, daily_mg: 4")
    assert wrong != first
    path = tmp_path / "wrong.yaml"
    path.write_text(wrong + "\n", encoding="utf-8")
    (loaded,) = load_scenarios(path)
    outcome = run_scenario(loaded)
    assert not outcome.passed
    line = wrong.splitlines().index(next(yaml_line for yaml_line in wrong.splitlines() if "dose_mg: 3" in yaml_line)) + 1
    assert f"wrong.yaml:{line}: scenario 'tac_start_dose_72kg': tacrolimus dose_mg" in outcome.report()
    assert "expected: 3" in outcome.report() and "actual:   2" in outcome.report()



def test_an_expectation_naming_no_rule_of_the_pathway_fails_with_its_line(tmp_path):
    """``absent: [{rule: <a typo>}]`` would hold whatever the engine does: a rule name the pathway does not have
    fails the scenario, at its line, with the closest rule named; the engine's own entries (``overdue.<state>``) pass."""
    one = _one("worse-earlier-on-rescue.yaml", "worse-on-infliximab-then-clearly-better-asks-nothing")
    path = tmp_path / "typo.yaml"
    outcome, line = _misspelt(path, one, "- {rule: rescue_worse_earlier_not_reassessed}",
                              "- {rule: rescue_worse_earlier_not_reasessed}")
    assert not outcome.passed
    assert f"typo.yaml:{line}: scenario 'worse-on-infliximab-then-clearly-better-asks-nothing': alerts: names no rule" \
        in outcome.report()
    assert "did you mean 'rescue_worse_earlier_not_reassessed'?" in outcome.report()
    engine = one.replace("- {rule: rescue_worse_earlier_not_reassessed}", "- {rule: overdue.rescue_ciclosporin}")
    assert _outcome(path, engine).passed
    never = one.replace("  expect:\n", "  expect:\n    not_fired: [rescue_worsenning]\n", 1)
    assert never != one
    outcome = _outcome(path, never)
    assert not outcome.passed and "not_fired: names no rule of the pathway" in outcome.report()
    assert "did you mean 'rescue_worsening'?" in outcome.report()


def test_an_excluded_field_the_pathway_does_not_have_fails_with_its_line(tmp_path):
    """``data_required_excludes: [<a typo>]`` would hold whatever the engine asks for: a field name the pathway does
    not have fails the scenario, at its line, with the closest field named."""
    one = _one("after-discharge.yaml", "no-stool-count-a-week-after-discharge-asks-nothing")
    outcome, line = _misspelt(tmp_path / "typo.yaml", one, "data_required_excludes: [stool_freq_24h]",
                              "data_required_excludes: [stool_frequency_24h]")
    assert not outcome.passed
    assert (f"typo.yaml:{line}: scenario 'no-stool-count-a-week-after-discharge-asks-nothing': "
            "data_required_excludes: names no field of the pathway") in outcome.report()
    assert "did you mean 'stool_freq_24h'?" in outcome.report()


def test_an_option_matches_a_rule_only_among_the_rules_that_made_it(tmp_path):
    """``{option: ciclosporin, rule: R}`` holds when R is one of the rules behind the option (a reason against it
    included), and fails naming the option when it is not."""
    one = _one("sequential-cautions.yaml", "seq-csa-seizure-history-on-the-decision-day-is-said")
    path = tmp_path / "option.yaml"
    assert _outcome(path, one).passed
    other = one.replace("rule: ciclosporin_seizure_history}", "rule: ciclosporin_reason_cholesterol}")
    assert other != one
    outcome = _outcome(path, other)
    assert not outcome.passed and "rule: ciclosporin_reason_cholesterol" in outcome.report()


def test_pathway_test_command_reports_coverage_and_fails_on_a_failure(tmp_path, capsys):
    assert main(["test", "asuc", "--coverage", "--json", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert "coverage: rules 100.0%" in out and "edges 100.0%" in out
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["coverage"]["rules_never_fired"] == [] and all(s["passed"] for s in data["scenarios"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  - id: x\n    purpose: wrong state\n"
                   "    case: {patient: {id: x}, events: [{day: 0, bloody_stools_24h: 2}]}\n"
                   "    expect: {state: iv_steroids}\n", encoding="utf-8")
    assert main(["test", "asuc", str(bad)]) == 1
    assert "bad.yaml:5: scenario 'x': final state" in capsys.readouterr().out


def test_evidence_listing_has_every_rule_and_the_verified_split(pw):
    data = evidence(pw)
    ids = {r["id"] for r in data["rules"]}
    assert ids == {r.id for r in pw.definition.rules}
    assert data["summary"]["verified"] + data["summary"]["unverified"] == len(ids)
    assert data["summary"]["unverified"] > 0
    for r in data["rules"]:
        assert r["sources"] and all(s in data["sources"] for s in r["sources"])
    assert data["sources"]["Ogata-2006"]["ref"].startswith("https://")


def test_profiles_change_the_rescue_order_without_python(tmp_path):
    from cases import to_rescue

    from pathway import load_pathway

    default = load_pathway("asuc").run_case(to_rescue())
    nice = load_pathway("asuc", profile="nice").run_case(to_rescue())
    order = lambda r: [o["option"] for o in r["options"] if o["available"]]  # noqa: E731
    assert order(default)[:2] == ["ciclosporin", "infliximab"] and default["options"][0]["rank"] == default["options"][1]["rank"]
    assert order(nice)[:2] == ["ciclosporin", "infliximab"] and nice["options"][0]["rank"] < nice["options"][1]["rank"]
    assert (default["profile"], nice["profile"]) == ("default", "nice")
    ifx = lambda r: next(o for o in r["options"] if o["option"] == "infliximab")  # noqa: E731
    assert any("Ciclosporin-first policy" in a for a in ifx(nice)["against"])
    assert not any("Ciclosporin-first policy" in a for a in ifx(default)["against"])


def test_profile_file_edit_changes_the_order(rules_copy):
    from cases import to_rescue

    from pathway import load_pathway

    nice = rules_copy / "profiles" / "nice.yaml"
    nice.write_text(nice.read_text(encoding="utf-8").replace("rank_infliximab: 2", "rank_infliximab: 0"), encoding="utf-8")
    result = load_pathway(rules_copy, profile="nice").run_case(to_rescue())
    assert result["options"][0]["option"] == "infliximab"


def test_a_bad_profile_is_reported_with_its_line(rules_copy):
    from pathway import DefinitionError, load_pathway

    (rules_copy / "profiles" / "bad.yaml").write_text(
        "id: bad\ntitle: Bad\nparameters:\n  rank_infliximab: 1\n  oxford_crp: 50\n  tac_start_mg_kg_day: 0.2\n",
        encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_pathway(rules_copy, profile="bad")
    text = str(info.value)
    assert "bad.yaml:5:3: unknown parameter 'oxford_crp' (did you mean 'oxford_crp_mg_l'?) [PW203]" in text
    assert "bad.yaml:6:" in text and "not one of the choices" in text
    with pytest.raises(DefinitionError) as info:
        load_pathway(rules_copy, profile="nicee")
    assert info.value.diagnostics[0].code == "PW211" and info.value.diagnostics[0].hint == "nice"
