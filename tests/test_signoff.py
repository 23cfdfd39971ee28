"""Per-rule clinical sign-off (reviewed_by, reviewed_on, review_due) and evidence that only
non-authoritative sources support: located loader errors, statuses by date, and no effect on results."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pathway import load_pathway
from pathway.audit.evidence import evidence, render_markdown, render_text
from pathway.authoring.fieldref import field_reference
from pathway.cli.main import main
from pathway.core.errors import DefinitionError
from pathway.definition import conditions as C
from pathway.definition.model import Evidence
from pathway.definition.pathway import Rule
from pathway.loading.loader import load_definition

SIGNED = ("    evidence: {sources: [Turner-2007, AGA-2020, Islam-2012], strength: M, status: verified}\n"
          "    reviewed_by: Dr A Gastroenterologist\n"
          "    reviewed_on: 2026-11-30\n"
          "    review_due: 2027-11-30\n")
IVS_EVIDENCE = "    evidence: {sources: [Turner-2007, AGA-2020, Islam-2012], strength: M, status: verified}\n"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _rule(**signoff: object) -> Rule:
    return Rule(id="r", title="t", file="f.yaml", line=1, col=1, states=("s",), priority=0, due=C.Always(), requires=(),
                when=C.Always(), then=(), otherwise=(), evidence=Evidence(sources=["S"], strength="G", status="verified"),
                **signoff)  # type: ignore[arg-type]


def test_signoff_status_by_date() -> None:
    signed = _rule(reviewed_by="Dr A", reviewed_on=date(2026, 11, 30), review_due=date(2027, 11, 30))
    assert signed.signoff(date(2027, 1, 1)) == "signed_off"
    assert signed.signoff(date(2027, 11, 30)) == "signed_off"  # due that day, not yet overdue
    assert signed.signoff(date(2027, 12, 1)) == "review_overdue"
    assert _rule(reviewed_by="Dr A", reviewed_on=date(2026, 11, 30)).signoff(date(2040, 1, 1)) == "signed_off"
    assert _rule().signoff(date(2027, 1, 1)) == "not_reviewed"


def test_shipped_rule_with_a_signoff_loads_and_changes_no_result(rules_copy: Path) -> None:
    case = {"patient": {"id": "p", "weight_kg": 70},
            "events": [{"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "crp_mg_l": {"value": 60, "unit": "mg/L"}}]}
    before = json.dumps(load_pathway(rules_copy).run_case(case), sort_keys=True)
    _edit(rules_copy / "steroids.yaml", IVS_EVIDENCE, SIGNED)
    pw = load_pathway(rules_copy)
    rule = pw.rule("ivs_regimen")
    assert (rule.reviewed_by, rule.reviewed_on, rule.review_due) == ("Dr A Gastroenterologist", date(2026, 11, 30),
                                                                     date(2027, 11, 30))
    assert json.dumps(pw.run_case(case), sort_keys=True) == before


@pytest.mark.parametrize("signoff, fragment", [
    ("    reviewed_on: 2026-11-30\n", "'reviewed_on' without 'reviewed_by'"),
    ("    reviewed_by: Dr A\n    reviewed_on: 2026-11-30\n    review_due: 2026-11-30\n",
     "review_due 2026-11-30 is not after reviewed_on 2026-11-30"),
    ("    review_due: 2027-01-01\n", "'review_due' without 'reviewed_on'"),
])
def test_signoff_errors_are_located(rules_copy: Path, signoff: str, fragment: str) -> None:
    _edit(rules_copy / "steroids.yaml", IVS_EVIDENCE, IVS_EVIDENCE + signoff)
    with pytest.raises(DefinitionError) as info:
        load_definition(rules_copy)
    # the sign-off error itself (a rule refused also leaves its medicine unknown to the codes file: PW112 there)
    (d,) = [x for x in info.value.diagnostics if x.code == "PW238"]
    line = (rules_copy / "steroids.yaml").read_text(encoding="utf-8").splitlines()[d.line - 1]
    assert d.code == "PW238" and fragment in d.message and d.file.endswith("steroids.yaml")
    assert line.strip().startswith(("reviewed", "review_due")), line


# -- non-authoritative sources --------------------------------------------------------------------

def test_droracle_is_not_authoritative_and_no_shipped_evidence_rests_on_it_alone() -> None:
    d = load_definition("asuc")
    assert d.spec.sources["DrOracle"].authoritative is False
    assert d.spec.sources["Travis-1996"].authoritative is True
    weak = {sid for sid, s in d.spec.sources.items() if not s.authoritative}
    evidence = [(r.id, r.evidence) for r in d.rules] + [(c.field, c.evidence) for c in d.computed.values()]
    for name, ev in evidence:
        assert not (ev.status == "verified" and set(ev.sources) <= weak), name
    # a verified rule may cite an AI page beside an authoritative source
    assert "DrOracle" in d.rules[[r.id for r in d.rules].index("tac_start_dose")].evidence.sources


@pytest.mark.parametrize("file, old, new", [
    ("supportive.yaml", "    evidence: {sources: [DrOracle], strength: S, status: unverified}\n",
     "    evidence: {sources: [DrOracle], strength: S, status: verified}\n"),
    ("fields.yaml", "        sources: [GastroTrain, DrOracle]\n        strength: S\n        status: unverified\n",
     "        sources: [DrOracle]\n        strength: S\n        status: verified\n"),
])
def test_verified_evidence_on_an_ai_source_alone_is_refused(rules_copy: Path, file: str, old: str, new: str) -> None:
    text = (rules_copy / file).read_text(encoding="utf-8")
    (rules_copy / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_definition(rules_copy)
    (d,) = info.value.diagnostics
    assert d.code == "PW237" and d.file.endswith(file) and "only non-authoritative sources (DrOracle)" in d.message
    assert "verified" in (rules_copy / file).read_text(encoding="utf-8").splitlines()[d.line - 1]


def test_a_source_marked_authoritative_again_lifts_the_refusal(rules_copy: Path) -> None:
    path = rules_copy / "supportive.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    evidence: {sources: [DrOracle], strength: S, status: unverified}\n",
                                 "    evidence: {sources: [DrOracle], strength: S, status: verified}\n", 1), encoding="utf-8")
    with pytest.raises(DefinitionError):
        load_definition(rules_copy)
    _edit(rules_copy / "sources.yaml", "    authoritative: false\n    ref: https://www.droracle.ai", "    ref: https://www.droracle.ai")
    load_definition(rules_copy)


# -- display: pathway evidence and the field reference -------------------------------------------

@pytest.fixture
def signed_copy(rules_copy: Path) -> Path:
    _edit(rules_copy / "steroids.yaml", IVS_EVIDENCE, SIGNED)
    return rules_copy


def test_evidence_shows_the_signoff_status_as_of_a_date(signed_copy: Path) -> None:
    pw = load_pathway(signed_copy)
    data = evidence(pw, as_of=date(2027, 6, 1))
    (ivs,) = [r for r in data["rules"] if r["id"] == "ivs_regimen"]
    assert ivs["signoff"] == {"status": "signed_off", "reviewed_by": "Dr A Gastroenterologist",
                              "reviewed_on": "2026-11-30", "review_due": "2027-11-30"}
    assert data["as_of"] == "2027-06-01"
    assert data["summary"]["signoff"] == {"signed_off": 1, "review_overdue": 0, "not_reviewed": len(data["rules"]) - 1}
    text = render_text(data)
    assert "sign-off as of 2027-06-01: 1 signed off, 0 review overdue," in text
    assert "IV corticosteroid regimen [signed off by Dr A Gastroenterologist on 2026-11-30, review due 2027-11-30]" in text
    assert "tw_asuc_confirmed [G] ECCO-2012, ECCO-2017, ClinMed-2015: Truelove & Witts criteria met [not reviewed]" in text
    assert "DrOracle (S (AI, not authoritative)) [not authoritative]:" in text
    later = evidence(pw, as_of=date(2028, 1, 1))
    assert "[review overdue since 2027-11-30 (signed off by Dr A Gastroenterologist on 2026-11-30)]" in render_text(later)
    assert "| review overdue since 2027-11-30 (signed off by" in render_markdown(later)


def test_evidence_command_takes_a_date(signed_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", str(signed_copy), "--format", "json", "--as-of", "2028-01-01"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["signoff"]["review_overdue"] == 1
    assert main(["evidence", str(signed_copy), "--as-of", "tomorrow"]) == 2
    assert "--as-of takes a date as YYYY-MM-DD" in capsys.readouterr().err
    assert main(["evidence", "asuc"]) == 0  # today by default
    assert f"sign-off as of {date.today().isoformat()}:" in capsys.readouterr().out


def test_field_reference_lists_the_signoff_keys_and_signed_rules(signed_copy: Path) -> None:
    page = field_reference(load_definition(signed_copy))
    assert "| `reviewed_on` | date (YYYY-MM-DD) | optional |" in page
    assert "| `ivs_regimen` | Dr A Gastroenterologist | 2026-11-30 | 2027-11-30 |" in page
    assert "No rule of this pathway carries a sign-off yet." in field_reference(load_definition("asuc"))
