"""Units that cannot be guessed: ambiguity bands, unit_required, input warnings as alerts.

A small pathway (a copy of tests/corpus/base) gets fields with bands, so the language is tested
apart from the clinical choices of the shipped pathway (tests/test_units_asuc.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from jsonschema import Draft7Validator

from pathway import InputError, Session, TransitionRefused, load_pathway
from pathway.authoring.schema import pathway_schemas
from pathway.definition.model import Display
from pathway.definition.units import shown
from pathway.loading.loader import load_definition

BASE = ROOT / "tests" / "corpus" / "base"

EXTRA_FIELDS = """\
  magnesium_mmol_l:
    type: number
    title: Serum magnesium
    unit: mmol/L
    quantity: magnesium
    range: [0.1, 3]
    ambiguous:
      - unit: mg/dL
        range: [1.0, 3.0]
        action: refuse
        evidence: {sources: [Guide-2020], strength: G, status: verified}
  albumin_g_l:
    type: number
    title: Serum albumin
    unit: g/L
    quantity: albumin
    range: [5, 70]
    scope: both
    ambiguous:
      - unit: g/dL
        range: [5, 7]
        action: warn
        evidence: {sources: [Trial-2018], strength: T, status: unverified}
  glucose_mmol_l:
    type: number
    title: Blood glucose
    unit: mmol/L
    quantity: glucose
    range: [0.5, 60]
    unit_required: true
"""

CRP_BAND = """\
    ambiguous:
      - unit: mg/dL
        range: [0.5, 80]
        action: warn
        evidence: {sources: [Guide-2020, Trial-2018], strength: G, status: verified}
"""


LOW_MAGNESIUM = """
  - id: low_magnesium
    title: Low magnesium
    in: any_active
    when: {magnesium_mmol_l: {lt: 0.5}}
    then:
      - alert: {level: warning, text: "Magnesium {magnesium_mmol_l} mmol/L is below 0.5 mmol/L (weight {weight_kg} kg,
                                       CRP {crp_mg_l} mg/L)."}
    evidence: {sources: [Guide-2020], strength: G, status: verified}
"""


def _insert(path: Path, anchor: str, extra: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(anchor) == 1, anchor
    path.write_text(text.replace(anchor, anchor + extra), encoding="utf-8")


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("units") / "mini"
    shutil.copytree(BASE, root)
    fields = root / "fields.yaml"
    _insert(fields, "    range: [0, 800]\n", CRP_BAND)
    _insert(fields, "    range: [25, 300]\n", "    display: {decimals: 1}\n")
    fields.write_text(fields.read_text(encoding="utf-8") + EXTRA_FIELDS, encoding="utf-8")
    _insert(fields, "    range: [0.1, 3]\n", "    display: {decimals: 2}\n")
    rules = root / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8") + LOW_MAGNESIUM, encoding="utf-8")
    return root


@pytest.fixture
def pw(mini: Path) -> Any:
    return load_pathway(mini, cache=False)


def _dump(session: Session) -> str:
    return json.dumps(session.dump(), sort_keys=True)


def _input_alerts(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in result["alerts"] if a["rule"].startswith("input.")]


# -- refuse bands -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, refused", [
    (0.99, False), (1.0, True), (1.1, True), (2.0, True), (3.0, True),  # the band is inclusive at both ends
])
def test_refuse_band_is_inclusive_at_both_ends(pw: Any, value: float, refused: bool) -> None:
    s = pw.start({"id": "p"})
    if refused:
        with pytest.raises(InputError) as info:
            s.observe({"day": 0, "magnesium_mmol_l": value})
        (d,) = info.value.diagnostics
        assert d.code == "PW408" and d.file == "events[0].magnesium_mmol_l"
    else:
        r = s.observe({"day": 0, "magnesium_mmol_l": value})
        assert s.dump()["facts"]["magnesium_mmol_l"] == value and _input_alerts(r) == []


def test_refusal_names_the_field_the_value_and_both_readings(pw: Any) -> None:
    s = pw.start({"id": "p"})
    with pytest.raises(InputError) as info:
        s.observe({"day": 0, "magnesium_mmol_l": 1.1})
    message = info.value.diagnostics[0].message
    # the second reading is shown at the field's display precision (2 decimals)
    assert message == "magnesium_mmol_l = 1.1 is ambiguous: 1.1 mmol/L, or 1.1 mg/dL = 0.45 mmol/L; give {value, unit}"


@pytest.mark.parametrize("quantity, stored", [
    ({"value": 1.1, "unit": "mmol/L"}, 1.1),  # the canonical unit, said out loud
    ({"value": 1.1, "unit": "mg/dL"}, 0.452489),  # 1.1 / 2.431
    ({"value": 2.0, "unit": "mg/dL"}, 0.822707),
])
def test_a_value_with_its_unit_is_never_ambiguous(pw: Any, quantity: dict[str, Any], stored: float) -> None:
    s = pw.start({"id": "p"})
    r = s.observe({"day": 0, "magnesium_mmol_l": quantity, "crp_mg_l": {"value": 5.2, "unit": "mg/L"}})
    assert s.dump()["facts"]["magnesium_mmol_l"] == pytest.approx(stored, abs=1e-6)
    assert _input_alerts(r) == []


def test_a_value_outside_the_range_is_implausible_not_ambiguous(pw: Any) -> None:
    s = pw.start({"id": "p"})
    with pytest.raises(InputError) as info:
        s.observe({"day": 0, "magnesium_mmol_l": 3.5})
    assert info.value.diagnostics[0].code == "PW403"


# -- unit_required ------------------------------------------------------------------------------

def test_unit_required_refuses_every_bare_number(pw: Any) -> None:
    s = pw.start({"id": "p"})
    for value in (5.4, 50, 0.5):
        with pytest.raises(InputError) as info:
            s.observe({"day": 0, "glucose_mmol_l": value})
        (d,) = info.value.diagnostics
        assert d.code == "PW408" and "glucose_mmol_l" in d.message and "mmol/L, mg/dL" in d.message
    s.observe({"day": 0, "glucose_mmol_l": {"value": 5.4, "unit": "mmol/L"}})
    s.observe({"day": 1, "glucose_mmol_l": {"value": 90, "unit": "mg/dL"}})
    assert s.dump()["facts"]["glucose_mmol_l"] == 5.0


# -- warn bands: alerts of the event that produced them --------------------------------------------

@pytest.mark.parametrize("value, warned", [(0.49, False), (0.5, True), (5.2, True), (80, True), (80.01, False)])
def test_warn_band_is_inclusive_at_both_ends(pw: Any, value: float, warned: bool) -> None:
    r = pw.start({"id": "p"}).observe({"day": 0, "crp_mg_l": value})
    assert len(_input_alerts(r)) == (1 if warned else 0)


def test_warning_is_an_alert_with_both_readings_and_the_band_evidence(pw: Any) -> None:
    s = pw.start({"id": "p"})
    r = s.observe({"day": 0, "crp_mg_l": 5.2, "stool_freq_24h": 7})
    assert s.dump()["facts"]["crp_mg_l"] == 5.2  # accepted in the canonical unit
    (alert,) = _input_alerts(r)
    assert alert["rule"] == "input.crp_mg_l" and alert["level"] == "warning"
    assert alert["text"] == ("C-reactive protein (crp_mg_l) 5.2 given without a unit was read as 5.2 mg/L; "
                             "if it was 5.2 mg/dL, it is 52 mg/L. Give {value, unit} to remove the doubt.")
    assert alert["evidence"] == {"sources": ["Guide-2020", "Trial-2018"], "strength": "G", "status": "verified"}
    assert r["alerts"][0] == alert  # input warnings come first


def test_warnings_belong_to_their_event(pw: Any) -> None:
    s = pw.start({"id": "p"})
    assert _input_alerts(s.observe({"day": 0, "crp_mg_l": 12}))
    assert _input_alerts(s.result())  # still the last event's
    assert _input_alerts(s.observe({"day": 1, "stool_freq_24h": 2})) == []
    assert _input_alerts(s.observe({"day": 2, "crp_mg_l": {"value": 1.2, "unit": "mg/dL"}})) == []


def test_patient_record_warnings_show_until_the_first_event(pw: Any) -> None:
    s = pw.start({"id": "p", "albumin_g_l": 6})
    (alert,) = _input_alerts(s.result())
    assert alert["rule"] == "input.albumin_g_l" and "if it was 6 g/dL, it is 60 g/L" in alert["text"]
    assert alert["evidence"]["status"] == "unverified"
    assert _input_alerts(s.observe({"day": 0, "stool_freq_24h": 2})) == []


def test_warnings_are_deterministic_whatever_the_key_order(pw: Any) -> None:
    a = pw.start({"id": "p"}).observe({"day": 0, "crp_mg_l": 5, "albumin_g_l": 6})
    b = pw.start({"id": "p"}).observe({"albumin_g_l": 6, "crp_mg_l": 5, "day": 0})
    assert [x["rule"] for x in _input_alerts(a)] == ["input.albumin_g_l", "input.crp_mg_l"]
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_warnings_survive_dump_and_restore(pw: Any, mini: Path) -> None:
    s = pw.start({"id": "p"})
    r = s.observe({"day": 0, "crp_mg_l": 40, "stool_freq_24h": 7})
    doc = json.loads(json.dumps(s.dump()))
    assert doc["warnings"] == _input_alerts(r)
    restored = load_pathway(mini, cache=False).restore(doc)
    assert restored.result() == s.result() == {k: v for k, v in r.items() if k != "changes"}
    assert _input_alerts(restored.observe({"day": 1, "stool_freq_24h": 2})) == []


def test_a_document_written_before_warnings_existed_restores(pw: Any) -> None:
    s = pw.start({"id": "p"})
    s.observe({"day": 0, "stool_freq_24h": 2})
    doc = s.dump()
    del doc["warnings"]
    assert pw.restore(doc).result() == s.result()


# -- a refused event changes nothing, warnings included ----------------------------------------------

def test_refused_event_leaves_the_session_byte_identical(pw: Any) -> None:
    s = pw.start({"id": "p"})
    s.observe({"day": 0, "crp_mg_l": 30, "stool_freq_24h": 4})
    before, result = _dump(s), s.result()
    for event in ({"day": 1, "crp_mg_l": 5.2, "magnesium_mmol_l": 1.1},  # a warning and a refusal
                  {"day": 1, "crp_mg_l": 5.2, "stool_freq": 3},  # a warning and an unknown field
                  {"day": 1, "albumin_g_l": 6, "glucose_mmol_l": 7}):  # a warning and a missing unit
        with pytest.raises(InputError):
            s.observe(event)
        assert _dump(s) == before and s.result() == result


def test_event_refused_by_the_graph_keeps_the_warnings_out(mini: Path) -> None:
    pw = load_pathway(mini, cache=False)
    s = pw.start({"id": "p"})
    s.observe({"day": 0, "crp_mg_l": 90, "stool_freq_24h": 2})
    before = _dump(s)
    pw.graph.remove_edge("assessment", "treatment")  # the graph is the runtime contract
    with pytest.raises(TransitionRefused):
        s.observe({"day": 1, "crp_mg_l": 60, "stool_freq_24h": 9})  # a warning, then a move the graph refuses
    assert _dump(s) == before and _input_alerts(s.result()) == []


# -- the case schema knows the bands --------------------------------------------------------------

def test_case_schema_rejects_bare_numbers_the_loader_refuses(mini: Path) -> None:
    schema = pathway_schemas(load_definition(mini))["mini.case.schema.json"]
    validator = Draft7Validator(schema)

    def ok(event: dict[str, Any]) -> bool:
        return not list(validator.iter_errors({"patient": {"id": "p"}, "events": [{"day": 0, **event}]}))

    assert ok({"magnesium_mmol_l": 0.8}) and not ok({"magnesium_mmol_l": 1.1})
    assert ok({"magnesium_mmol_l": {"value": 1.1, "unit": "mg/dL"}})
    assert ok({"crp_mg_l": 5.2})  # a warning, not a refusal
    assert not ok({"glucose_mmol_l": 5.4}) and ok({"glucose_mmol_l": {"value": 5.4, "unit": "mmol/L"}})


# -- converted values shown rounded ----------------------------------------------------------------

@pytest.mark.parametrize("value, display, text", [
    (0.4525, Display(decimals=2), "0.45"),
    (0.452489, Display(decimals=2), "0.45"),
    (0.8, Display(decimals=2), "0.8"),  # trailing zeros dropped
    (0.125, Display(decimals=2), "0.13"),  # half away from zero, on the decimal digits (the float is 0.12499...)
    (-0.125, Display(decimals=2), "-0.13"),
    (2.845, Display(decimals=1), "2.8"),
    (2.85, Display(decimals=1), "2.9"),
    (141.44, Display(decimals=0), "141"),
    (69.853225, Display(decimals=1), "69.9"),
    (69.853225, Display(step=0.5), "70"),
    (1.2, Display(step=0.25), "1.25"),
    (0.004, Display(decimals=2), "0"),
    (-0.004, Display(decimals=2), "0"),  # no "-0"
    (1997.84, Display(decimals=0), "1998"),
    (12345.67, Display(decimals=1), "12345.7"),  # no exponent, no 4-digit cut
    (0.4525, None, "0.4525"),  # a field without a display precision: 4 significant digits, as before
    (70, None, "70"),
])
def test_rounding_rule(value: float, display: Display | None, text: str) -> None:
    assert shown(value, display) == text


def test_texts_show_converted_values_rounded_and_decisions_use_the_full_value(pw: Any) -> None:
    s = pw.start({"id": "p", "weight_kg": {"value": 154, "unit": "lb"}})
    r = s.observe({"day": 0, "magnesium_mmol_l": {"value": 1.1, "unit": "mg/dL"},
                   "crp_mg_l": {"value": 0.4525, "unit": "mg/L"}})
    (alert,) = [a for a in r["alerts"] if a["rule"] == "low_magnesium"]
    assert alert["text"] == "Magnesium 0.45 mmol/L is below 0.5 mmol/L (weight 69.9 kg, CRP 0.4525 mg/L)."
    facts = s.dump()["facts"]
    assert facts["magnesium_mmol_l"] == pytest.approx(0.452489) and facts["weight_kg"] == pytest.approx(69.853225)


def test_a_value_within_half_a_step_of_a_threshold_reads_as_the_threshold(pw: Any) -> None:
    """1.21 mg/dL is 0.4977 mmol/L: below 0.5, so the rule fires, and shown at 2 decimals it reads 0.5."""
    s = pw.start({"id": "p"})
    r = s.observe({"day": 0, "magnesium_mmol_l": {"value": 1.21, "unit": "mg/dL"}})
    (alert,) = [a for a in r["alerts"] if a["rule"] == "low_magnesium"]
    assert alert["text"].startswith("Magnesium 0.5 mmol/L is below 0.5 mmol/L")
    assert s.dump()["facts"]["magnesium_mmol_l"] == pytest.approx(0.497738)
    r = s.observe({"day": 1, "magnesium_mmol_l": 0.5})  # exactly at the threshold: not below it
    assert not [a for a in r["alerts"] if a["rule"] == "low_magnesium"]
