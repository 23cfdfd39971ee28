"""The hazard log: the DCB0129 risk matrix, the hazards file's loader checks, ``pathway hazards`` (text,
JSON, Markdown) and the hazard checks of ``pathway check`` (fixtures: tests/fixtures/checks/hazard_*)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from test_error_corpus import with_hazards

from pathway.analysis.check import check_pathway
from pathway.audit.hazards import hazard_check, hazard_log, render_markdown, render_text
from pathway.authoring.scenario import discover, run_scenarios
from pathway.cli.main import main
from pathway.core.errors import DefinitionError
from pathway.definition.model import LIKELIHOODS, RISK_MATRIX, SEVERITIES, risk_rating
from pathway.loading.loader import load_definition

FIXTURES = ROOT / "tests" / "fixtures" / "checks"
CORPUS = ROOT / "tests" / "corpus"

# DCB0129's matrix as published: rows are likelihoods, columns the five severities.
PUBLISHED = """
             minor significant considerable major catastrophic
very high      3       4           4          5        5
high           2       3           3          4        5
medium         2       2           3          3        4
low            1       2           2          3        4
very low       1       1           2          2        3
"""


def test_the_risk_matrix_is_dcb0129s() -> None:
    rows = [line.rsplit(None, 5) for line in PUBLISHED.strip().splitlines()[1:]]
    assert {r[0]: tuple(int(x) for x in r[1:]) for r in rows} == RISK_MATRIX
    assert SEVERITIES == ("minor", "significant", "considerable", "major", "catastrophic")
    assert LIKELIHOODS == ("very low", "low", "medium", "high", "very high")
    assert risk_rating("catastrophic", "very high") == 5 and risk_rating("minor", "very low") == 1
    assert risk_rating("major", "medium") == 3 and risk_rating("catastrophic", "low") == 4
    for i, lk in enumerate(LIKELIHOODS):  # never lower for a worse harm or a likelier one
        for j, sev in enumerate(SEVERITIES):
            if j:
                assert risk_rating(sev, lk) >= risk_rating(SEVERITIES[j - 1], lk)
            if i:
                assert risk_rating(sev, lk) >= risk_rating(sev, LIKELIHOODS[i - 1])
    with pytest.raises(ValueError):
        risk_rating("fatal", "low")


def test_risks_are_computed_when_left_out(tmp_path: Path) -> None:
    d = load_definition(with_hazards(tmp_path))
    one, two = d.hazards
    assert (one.id, one.initial_risk, one.residual_risk, one.status) == ("HZ-1", 4, 3, "mitigated")
    assert [r.id for r in one.scenarios] == ["perforation_goes_to_surgery"] and one.scenarios[0].line > 1
    assert (two.initial_risk, two.residual_risk) == (2, 2)  # considerable x low, considerable x very low: both 2
    assert one.mitigated_by == ("rule:perforation_surgery", "field:perforation") and not two.verified_by


def test_a_missing_hazards_file_is_located_in_pathway_yaml(tmp_path: Path) -> None:
    root = with_hazards(tmp_path)
    (root / "hazards.yaml").unlink()
    with pytest.raises(DefinitionError) as info:
        load_definition(root)
    (d,) = info.value.diagnostics
    assert d.code == "PW002" and d.file.endswith("pathway.yaml")
    assert "hazards_file" in (root / "pathway.yaml").read_text(encoding="utf-8").splitlines()[d.line - 1]


def test_a_hazard_error_does_not_hold_back_the_rule_checks(tmp_path: Path) -> None:
    """Hazard problems are reported together with the rule files' own (PW212 included)."""
    root = with_hazards(tmp_path)
    shutil.copyfile(CORPUS / "rules" / "derived_fact_never_derived.yaml", root / "rules.yaml")
    with pytest.raises(DefinitionError) as info:
        load_definition(root)
    assert sorted(d.code for d in info.value.diagnostics) == ["PW212", "PW230"]


# -- pathway hazards ---------------------------------------------------------------------------

@pytest.fixture
def clean(tmp_path: Path) -> Path:
    """A copy of the failing-scenario fixture with the scenario corrected: a clean hazard log."""
    root = tmp_path / "mini"
    shutil.copytree(FIXTURES / "hazard_scenario_fails", root)
    path = root / "scenarios" / "basic.yaml"
    head, tail = path.read_text(encoding="utf-8").rsplit("      state: done\n", 1)  # ineligible_out's expectation
    path.write_text(head + "      state: out\n" + tail, encoding="utf-8")
    return root


def test_clean_log_text(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_pathway(clean, extra=[hazard_check]).findings == []
    assert main(["hazards", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "1 hazard(s): 1 mitigated" in out and "verifying scenarios: 2 pass, 0 fail, 0 unknown (of 2)" in out
    assert "H1  [mitigated]  risk 3 -> 3  A level above the limit is not treated" in out
    assert "initial risk: 3 (major, medium likelihood); residual risk: 3 (major, low likelihood)" in out
    assert "mitigations: rules treated; parameters limit" in out
    assert "PASS    eligible_treated  (" in out and "PASS    ineligible_out  (" in out
    assert out.rstrip().endswith("mini 1.0.0: 0 error(s), 0 warning(s) (open hazards without mitigation or "
                                 "verification; 'pathway check' lists them)")


def test_log_json_and_markdown(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hazards", str(clean), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["by_status"] == {"open": 0, "accepted": 0, "mitigated": 1, "closed": 0}
    assert doc["risk_matrix"]["ratings"]["medium"] == [2, 2, 3, 3, 4]
    (h,) = doc["hazards"]
    assert h["id"] == "H1" and h["initial_risk"] == 3 and h["residual_risk"] == {"severity": "major",
                                                                                 "likelihood": "low", "risk": 3}
    assert h["mitigations"] == {"rules": ["treated"], "parameters": ["limit"], "fields": [], "watchdogs": []}
    assert [(v["id"], v["passed"]) for v in h["verification"]["scenarios"]] == [("eligible_treated", True),
                                                                                ("ineligible_out", True)]
    assert h["verified"] is True and h["location"].endswith("hazards.yaml:3:5") and doc["findings"] == []
    assert main(["hazards", str(clean), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Hazard log: mini 1.0.0") and "| H1 | A level above the limit is not treated | mitigated |" in md
    assert "- **verification**: `eligible_treated` (pass), `ineligible_out` (pass)" in md


def test_a_failing_or_unknown_scenario_fails_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hazards", str(FIXTURES / "hazard_scenario_fails")]) == 1
    out = capsys.readouterr().out
    assert "FAIL    ineligible_out" in out and "[PW624]" in out
    assert main(["hazards", str(FIXTURES / "hazard_unknown_scenario")]) == 1
    out = capsys.readouterr().out
    assert "UNKNOWN inelegible_out  (no scenario has this id)" in out
    assert "(did you mean 'ineligible_out'?) [PW625]" in out


def test_open_hazards_are_warnings_not_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hazards", str(FIXTURES / "hazard_open_unmitigated")]) == 0
    assert "mitigations: none" in capsys.readouterr().out
    assert main(["check", str(FIXTURES / "hazard_open_unmitigated")]) == 0
    assert main(["check", str(FIXTURES / "hazard_open_unmitigated"), "--strict"]) == 1
    assert "[PW620]" in capsys.readouterr().out


def test_a_pathway_without_a_hazard_log(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hazards", str(FIXTURES / "ok")]) == 2
    assert "has no hazard log" in capsys.readouterr().err
    assert hazard_log(FIXTURES / "ok").entries == []


def test_scenario_outcomes_of_an_earlier_run_are_reused(clean: Path) -> None:
    outcomes, _ = run_scenarios(discover([clean / "scenarios"]), str(clean))
    outcomes[0].passed = False  # a reused outcome shows, so nothing was run again
    outcomes[0].failures = ["made up"]
    (entry,) = hazard_log(clean, outcomes=outcomes).entries
    assert [v.passed for v in entry.scenarios] == [False, True]


def test_checks_section_and_disable_apply_to_hazard_findings(tmp_path: Path) -> None:
    root = tmp_path / "mini"
    shutil.copytree(FIXTURES / "hazard_open_unmitigated", root)
    assert [f.code for f in check_pathway(root, extra=[hazard_check], disable=["PW620"]).findings] == []
    path = root / "pathway.yaml"
    path.write_text(path.read_text(encoding="utf-8")
                    + yaml.safe_dump({"checks": [{"code": "PW620", "note": "the control is outside this pathway"}]}),
                    encoding="utf-8")
    report = check_pathway(root, extra=[hazard_check])
    assert report.warnings == [] and [f.explained for f in report.explained] == ["the control is outside this pathway"]


def test_renderers_take_the_json_form(clean: Path) -> None:
    data = hazard_log(clean).to_dict()
    assert render_text(json.loads(json.dumps(data))) == render_text(data)
    assert render_markdown(data).count("## H1:") == 1


# -- the shipped hazard log ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def asuc_log() -> dict:
    return hazard_log("asuc").to_dict()


def test_asuc_hazard_log_has_no_check_error_under_any_profile() -> None:
    profiles = sorted(p.stem for p in (ROOT / "rules" / "asuc" / "profiles").glob("*.yaml"))
    assert profiles == ["default", "nice", "tac_high_start"]
    for profile in profiles:
        report = check_pathway("asuc", profile=profile, extra=[hazard_check])
        assert report.errors == [], (profile, report.text())
        assert {f.code for f in report.warnings} <= {"PW620", "PW621"}, report.text()


def test_asuc_open_hazards_claim_nothing_and_mitigated_ones_are_verified(asuc_log: dict) -> None:
    hazards = asuc_log["hazards"]
    assert len(hazards) >= 29 and asuc_log["summary"]["scenarios"]["fail"] == 0
    assert asuc_log["summary"]["scenarios"]["unknown"] == 0
    for h in hazards:
        controls = [n for names in h["mitigations"].values() for n in names]
        if h["status"] == "open":
            assert not controls and not h["verification"]["scenarios"], h["id"]
            assert h["residual_risk"]["risk"] == h["initial_risk"], h["id"]
            assert (h["residual_risk"]["severity"], h["residual_risk"]["likelihood"]) == (h["severity"], h["likelihood"])
            assert h["open_questions"], f"{h['id']}: say what is still to be decided"
        else:
            assert h["status"] == "mitigated" and controls and h["verified"], h["id"]
            assert h["residual_risk"]["risk"] <= 3, h["id"]


@pytest.mark.parametrize("words", [
    "no pjp prophylaxis advice with infliximab, a thiopurine and steroids",
    "hyperkalaemia on a calcineurin inhibitor",
    "absent tpmt",
    "ciclosporin toxicity monitoring stops",
    "rescue response judged as a complete response",
    "blocked by an absolute creatinine",
    "hepatitis b on antiviral without an hbv dna result",
    "misleading rule texts",
])
def test_asuc_hazards_mitigated_by_rules_and_verified_by_scenarios(asuc_log: dict, words: str) -> None:
    (h,) = [h for h in asuc_log["hazards"] if words in h["title"].lower()]
    assert h["status"] == "mitigated" and h["verified"] and h["residual_risk"]["risk"] < h["initial_risk"]


@pytest.mark.parametrize("words", ["toxic megacolon missed", "colectomy delayed", "wrong weight-based dose",
                                   "wrong one of two plausible units", "stale value", "contraindicated rescue drug",
                                   "decision silently ignored"])
def test_asuc_classic_hazards_are_logged(asuc_log: dict, words: str) -> None:
    assert [h["id"] for h in asuc_log["hazards"] if words in h["title"].lower()], words


def test_asuc_hazards_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hazards", "asuc"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Hazard log of asuc ") and "0 fail, 0 unknown" in out
    assert "HAZ-082  [mitigated]" in out and "82 hazard(s): 82 mitigated" in out
    # the safety case holds under every profile: no hazard without mitigation or verification
    for profile in ("default", "nice", "tac_high_start"):
        assert main(["check", "asuc", "--profile", profile, "--strict"]) == 0, profile
