"""FHIR R4 input: a Bundle of a whole course gives the result of the equivalent case file, arrival
order and resends do not change it, late and corrected results re-evaluate the course, every UCUM unit
of the codes file converts, and hostile resources are located refusals that change nothing."""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cases import without_clock

from pathway import InputError, events_from_bundle, load_pathway, observe_fhir
from pathway.authoring.fhirmap import BEGIN, END, mapping_markdown
from pathway.core.errors import DefinitionError
from pathway.core.yamlsafe import load_yaml_file
from pathway.definition.units import convert, units_for
from pathway.loading.fhir import read_fhir

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "tests" / "fixtures" / "fhir" / "demo-bundle.json"
DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"
LOINC, UCUM, LOCAL = "http://loinc.org", "http://unitsofmeasure.org", "urn:asuc-pathway:field"
#: what a clinician reads in a result (the trace names event indices, which differ by construction)
CLINICAL = ("state", "path", "recommendations", "options", "proposals", "data_required", "alerts", "frozen",
            "unverified_rules", "day", "state_title", "patient_id", "computed")



@pytest.fixture(scope="module")
def pw():
    return load_pathway("asuc")


def bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


def entries_of(b: dict[str, Any], rtype: str | None = None) -> list[dict[str, Any]]:
    return [e for e in b["entry"] if rtype is None or e["resource"]["resourceType"] == rtype]


def resource(b: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(copy.deepcopy(e["resource"]) for e in b["entry"] if e["resource"]["id"] == rid)


def header(b: dict[str, Any]) -> dict[str, Any]:
    """The Bundle with only its Patient and Encounter (a session started before any result)."""
    return {**b, "entry": [e for e in b["entry"] if e["resource"]["resourceType"] in ("Patient", "Encounter")]}


def obs(rid: str, time: str, code: str, value: dict[str, Any], system: str = LOINC, status: str = "final",
        subject: str = "Patient/demo-001") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": status, "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": subject}, "effectiveDateTime": time, **value}


def qty(value: Any, code: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": code, "system": UCUM, "code": code}}


# -- the same course as the case file ----------------------------------------------------------

def test_the_demo_bundle_gives_the_result_of_the_demo_case_file(pw):
    case = load_yaml_file(str(DEMO), "demo.yaml").data
    expected = pw.run_case(case)
    session, result = pw.start_fhir(bundle())
    assert result["state"] == "maintenance_thiopurine"
    clock_free = without_clock(result)
    assert {k: clock_free[k] for k in CLINICAL} == {k: expected[k] for k in CLINICAL}
    # the age went into the patient record, from birthDate on the admission day; the history, which may also be taken
    # on the ward, into the event of its time (here the admission)
    patient = session.dump()["patient"]
    assert patient["age_years"] == 34 and "prior_anti_tnf_failure" not in patient
    assert patient["admission_time"] == "2026-03-02T08:00:00Z"
    # one event per clinical moment, each naming its resources
    events = session.recorded_events()
    assert [e["id"] for e in events] == ["fhir:2026-03-02T08:00:00Z", "fhir:2026-03-03T08:00:00Z", "fhir:2026-03-05T08:00:00Z",
                                         "fhir:2026-03-08T08:00:00Z", "fhir:2026-03-11T08:00:00Z", "fhir:2026-03-12T08:00:00Z",
                                         "fhir:2026-03-13T08:00:00Z"]
    assert events[0]["prior_anti_tnf_failure"] is True
    day3 = events[2]
    assert day3["rescue_choice"] == "tacrolimus" and day3["crp_mg_l"] == 52.0 and day3["given"]["crp_mg_l"] == {
        "value": 5.2, "unit": "mg/dL"}
    assert {s["resource"] for s in day3["sources"]} >= {"MedicationRequest/tac-1", "Observation/d3-1988-5"}
    # a dose change of the agent already chosen records its daily dose (2 mg every 12 h), not a decision
    assert events[3]["tacrolimus_daily_dose_mg"] == 4 and "rescue_choice" not in events[3]
    ignored = {i["resource"]: i["reason"] for i in result["fhir"]["ignored"]}
    assert set(ignored) == {"Condition/uc-1", "Observation/d0-2951-2", "MedicationRequest/tac-2", "MedicationRequest/tac-3"}
    assert "2951-2" in ignored["Observation/d0-2951-2"] and "none is due" in ignored["MedicationRequest/tac-2"]
    applied = {a["resource"] for a in result["fhir"]["applied"]}
    assert "Observation/d3-1988-5" in applied and "Observation/d0-prior-anti-tnf-failure" in applied
    assert len(applied) == 50  # 54 entries: all but the Patient, the Encounter, a Condition and a sodium
    assert result["changes"]["operation"] == "fhir" and len(result["changes"]["operations"]) == 7


def test_events_from_bundle_is_a_case_file_with_the_same_result(pw):
    patient, events, ignored = events_from_bundle(pw, bundle())
    case = {"patient": patient, "events": events}
    assert pw.run_case(copy.deepcopy(case)) == pw.start_fhir(bundle())[0].result()
    assert len(ignored) == 4 and all(e["time"].endswith("Z") for e in events)


def test_pathway_run_prints_the_case_file_result_and_names_what_it_did_not_read(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pathway", "run", *args], capture_output=True, text=True, cwd=ROOT)

    fhir, case = run(str(BUNDLE)), run(str(DEMO))
    assert fhir.returncode == 0 and case.returncode == 0
    a, b = without_clock(json.loads(fhir.stdout)), json.loads(case.stdout)
    assert sorted(k for k in a if a[k] != b[k]) == ["trace"]
    assert "Observation/d0-2951-2" in fhir.stderr and "Condition is not read" in fhir.stderr
    text = run(str(BUNDLE), "--format", "text", "--fhir")
    assert text.returncode == 0 and "path: suspected_asuc -> iv_steroids -> rescue_selection" in text.stdout
    bad = bundle()
    next(e for e in entries_of(bad, "Observation") if e["resource"]["id"] == "d9-1988-5")["resource"]["valueQuantity"][
        "code"] = "mg/dl/x"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad, indent=1), encoding="utf-8")
    refused = run(str(path))
    assert refused.returncode == 2 and refused.stdout == ""
    assert "bad.json:" in refused.stderr and "Bundle.entry[" in refused.stderr and "[PW433]" in refused.stderr


# -- arrival order, resends, late and corrected results -----------------------------------------

def test_shuffled_and_duplicated_bundles_give_identical_results(pw):
    reference = pw.start_fhir(bundle())[0].result()
    rng = random.Random(13)
    for _ in range(3):
        b = bundle()
        entries = b["entry"] + rng.sample(b["entry"], 12)
        rng.shuffle(entries)
        session, result = pw.start_fhir({**b, "entry": entries})
        assert session.result() == reference
        assert len(result["fhir"]["duplicates"]) >= 6  # a resource sent twice is recognised


def test_resources_arriving_one_at_a_time_in_any_order_give_the_same_result(pw):
    reference = pw.start_fhir(bundle())[0].result()
    rng = random.Random(7)
    others = [e["resource"] for e in bundle()["entry"] if e["resource"]["resourceType"] not in ("Patient", "Encounter")]
    for _ in range(2):
        order = others + rng.sample(others, 8)
        rng.shuffle(order)
        session, _ = pw.start_fhir(header(bundle()))
        history = [r for r in order if r.get("code", {}).get("coding", [{}])[0].get("code") in (
            "prior_anti_tnf_failure", "prior_thiopurine_failure", "demyelinating_disease")]
        # the history first, with the admission (it is recorded in the event of its time either way)
        session, _ = pw.start_fhir({**header(bundle()), "entry": header(bundle())["entry"]
                                    + [{"resource": r} for r in history]})
        for r in order:
            if r in history:
                continue
            observe_fhir(session, r)
        assert session.result() == reference


def test_a_late_day3_crp_after_day4_observations_reevaluates_the_day3_decision(pw):
    b = bundle()
    late = resource(b, "d3-1988-5")
    day4 = [obs("d4-stools", "2026-03-06T08:00:00Z", "9253-6", {"valueInteger": 6}),
            obs("d4-blood", "2026-03-06T08:00:00Z", "visible_blood", {"valueBoolean": True}, LOCAL)]
    course = [e for e in b["entry"] if e["resource"]["id"] not in ("d3-1988-5", "tac-1")
              and e["resource"]["resourceType"] != "MedicationRequest"
              and e["resource"].get("effectiveDateTime", "") < "2026-03-06"]
    session, before = pw.start_fhir({**b, "entry": course + [{"resource": r} for r in day4]})
    assert before["state"] == "iv_steroids"  # without the day-3 CRP the day-3 indices cannot be computed
    assert "oxford_high_risk" not in before["frozen"]
    result = observe_fhir(session, late)
    assert result["state"] == "rescue_selection"
    assert result["frozen"]["oxford_high_risk"]["value"] is True and result["frozen"]["oxford_high_risk"]["day"] == 3
    assert result["changes"]["operations"] == [{"operation": "amend", "id": "fhir:2026-03-05T08:00:00Z", "event": 2,
                                                "reevaluated_from": 2}]
    items = result["changes"]["items"]
    assert {"section": "state", "change": "changed", "from": "iv_steroids", "to": "rescue_selection"} in items
    assert result["path"] == ["suspected_asuc", "iv_steroids", "rescue_selection"]
    # the same as receiving the CRP in time
    in_time, _ = pw.start_fhir({**b, "entry": course + [{"resource": late}] + [{"resource": r} for r in day4]})
    assert session.result() == in_time.result()


def test_a_weight_arriving_after_its_confirmation_but_dated_before_it_is_not_confirmed(pw):
    """HAZ-049: a weight confirmation confirms only the weights that had arrived when it was recorded, also when a
    late resource makes the course be evaluated again from the resources."""
    b = bundle()
    course = [e for e in b["entry"] if e["resource"].get("effectiveDateTime", e["resource"].get("authoredOn", ""))
              < "2026-03-06"]
    session, before = pw.start_fhir({**b, "entry": course})
    assert before["state"] == "rescue_tacrolimus"
    observe_fhir(session, obs("w-154", "2026-03-06T08:00:00Z", "29463-7", qty(154, "kg")))
    confirmed = observe_fhir(session, obs("w-ok", "2026-03-06T20:00:00Z", "weight_confirmed", {"valueBoolean": True},
                                          LOCAL))
    assert confirmed["computed"]["weight_to_confirm"]["value"] is False
    assert any(r["rule"] == "tac_start_dose" for r in confirmed["recommendations"])
    late = observe_fhir(session, obs("w-200", "2026-03-06T12:00:00Z", "29463-7", qty(200, "kg")))
    assert late["changes"]["operations"][0]["operation"] == "insert"
    assert late["computed"]["weight_to_confirm"]["value"] is True
    assert any(a["rule"] == "weight_change_to_confirm" and "from 154 kg to 200 kg" in a["text"] for a in late["alerts"])
    assert not any(r["rule"] == "tac_start_dose" for r in late["recommendations"])
    assert pw.restore(session.dump()).result() == session.result()


def test_an_order_that_arrived_before_the_result_that_made_it_due_is_recorded_once_due(pw):
    b = bundle()
    late = resource(b, "d3-1988-5")
    course = [e for e in b["entry"] if e["resource"]["id"] != "d3-1988-5"
              and e["resource"].get("effectiveDateTime", e["resource"].get("authoredOn", "")) < "2026-03-06"]
    session, before = pw.start_fhir({**b, "entry": course})
    assert before["state"] == "iv_steroids" and "rescue_choice" not in session.recorded_events()[-1]
    assert any(i["resource"] == "MedicationRequest/tac-1" for i in before["fhir"]["ignored"])
    result = observe_fhir(session, late)
    assert result["state"] == "rescue_tacrolimus"  # the day-3 order is the rescue choice once the CRP decides
    assert session.recorded_events()[-1]["rescue_choice"] == "tacrolimus"


def test_a_resource_sent_again_is_a_duplicate(pw):
    session, result = pw.start_fhir(bundle())
    again = observe_fhir(session, resource(bundle(), "d9-1988-5"))
    assert again["changes"]["operation"] == "duplicate" and again["changes"]["items"] == []
    assert again["fhir"]["duplicates"] == [{"resource": "Observation/d9-1988-5", "where": "resource"}]
    assert session.result() == {k: v for k, v in result.items() if k not in ("changes", "fhir")}
    twice = observe_fhir(session, bundle())
    assert twice["changes"]["operation"] == "duplicate" and len(twice["fhir"]["duplicates"]) == 50


def test_a_corrected_result_amends_the_moment_and_a_changed_final_one_is_refused(pw):
    session, _ = pw.start_fhir(bundle())
    changed = resource(bundle(), "d3-1988-5")
    changed["valueQuantity"]["value"] = 1.0  # 10 mg/L: the Oxford index turns negative
    with pytest.raises(InputError) as err:
        observe_fhir(session, changed)
    assert err.value.codes == ["PW413"] and "Observation/d3-1988-5" in str(err.value)
    changed["status"] = "corrected"
    result = observe_fhir(session, changed)
    assert result["changes"]["operations"][0] == {"operation": "amend", "id": "fhir:2026-03-05T08:00:00Z", "event": 2,
                                                  "reevaluated_from": 2}
    assert result["frozen"]["oxford_high_risk"]["value"] is False  # the day-3 decision was taken again
    assert result["frozen"]["lindgren_index"]["value"] == pytest.approx(8.4)
    assert session.recorded_events()[2]["crp_mg_l"] == 10
    assert session.dump()["revisions"][-1]["op"] == "amend"


def test_entered_in_error_withdraws_what_the_resource_gave(pw):
    session, _ = pw.start_fhir(bundle())
    wrong = resource(bundle(), "d11-11253-2")
    wrong["status"] = "entered-in-error"
    result = observe_fhir(session, wrong)
    assert result["fhir"]["withdrawn"][0]["resource"] == "Observation/d11-11253-2"
    last = session.recorded_events()[-1]
    assert "tacrolimus_trough_ng_ml" not in last and "Observation/d11-11253-2" not in {s["resource"] for s in last["sources"]}
    # a moment whose every resource is withdrawn is retracted; a transaction DELETE withdraws too
    gone = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": f"Observation/{rid}"}} for rid in ("d11-9253-6", "d11-visible-blood")]}
    result = observe_fhir(session, gone)
    assert result["changes"]["operations"] == [{"operation": "retract", "id": "fhir:2026-03-13T08:00:00Z", "event": 6,
                                                "reevaluated_from": 6}]
    assert len(session.recorded_events()) == 6


# -- units ------------------------------------------------------------------------------------------

#: canonical value of 10 of each (quantity, pathway unit), written from the conversion factors
#: independently of the unit table (asuc-evidence §13; UCUM's own definitions)
EXPECTED = {
    "°C": 10, "°F": (10 - 32) * 5 / 9, "kg": 10, "g": 0.01, "lb": 4.5359237,
    ("crp", "mg/L"): 10, ("crp", "mg/dL"): 100, ("albumin", "g/L"): 10, ("albumin", "g/dL"): 100,
    ("haemoglobin", "g/dL"): 10, ("haemoglobin", "g/L"): 1, ("haemoglobin", "mmol/L"): 10 / 0.6206,
    ("magnesium", "mmol/L"): 10, ("magnesium", "mg/dL"): 10 / 2.431, ("magnesium", "mEq/L"): 5,
    ("potassium", "mmol/L"): 10, ("potassium", "mEq/L"): 10,
    ("creatinine", "µmol/L"): 10, ("creatinine", "mg/dL"): 884,
    ("cholesterol", "mmol/L"): 10, ("cholesterol", "mg/dL"): 10 / 38.67,
    ("glucose", "mmol/L"): 10, ("glucose", "mg/dL"): 10 / 18,
    ("drug_level", "ng/mL"): 10, ("drug_level", "µg/L"): 10, ("drug_level", "mg/L"): 10000, ("drug_level", "µg/mL"): 10000,
    ("cell_count", "10^9/L"): 10, ("cell_count", "10^3/µL"): 10, ("cell_count", "/µL"): 0.01, ("cell_count", "/mm3"): 0.01,
    ("length", "cm"): 10, ("length", "mm"): 1,
    "/min": 10, "/24 h": 10, "mm/h": 10, "mmHg": 10, "10^9/L": 10, "mg/day": 10,
}


def _cases(pw) -> list[tuple[str, str, str, str, str]]:
    """(code, system, UCUM unit, field, pathway unit) for every code of the codes file and every field
    reached by the pathway's own codes (local_system), in every UCUM unit each accepts."""
    codes, fields = pw.definition.codes, pw.definition.fields
    out = [(o.code, o.system, ucum, o.field, unit) for o in codes.observations.values() for ucum, unit in o.units.items()]
    for name, fdef in fields.items():
        if fdef.aggregate is None and fdef.type in ("number", "integer") and fdef.unit:
            accepted = set(units_for(fdef.quantity) or [fdef.unit])
            out += [(name, LOCAL, ucum, name, unit) for ucum, unit in codes.units.items() if unit in accepted]
    return out


def test_every_ucum_unit_of_the_codes_file_is_accepted_by_some_code(pw):
    used = {ucum for _code, _system, ucum, _field, _unit in _cases(pw)}
    assert set(pw.definition.codes.units) == used


@pytest.mark.parametrize("index", range(160))
def test_each_code_and_unit_converts_as_the_fields_file_says(pw, index):
    cases = _cases(pw)
    if index >= len(cases):
        assert len(cases) <= 160, "raise the range: every (code, unit) pair needs a case"
        return
    code, system, ucum, field, unit = cases[index]
    fdef = pw.definition.fields[field]
    key = unit if unit in EXPECTED else (fdef.quantity, unit)
    assert key in EXPECTED, f"no expected conversion for {code} in {ucum}"
    value = 10
    fin = read_fhir(pw.definition, obs("u1", "2026-03-02T08:00:00Z", code, qty(value, ucum), system=system),
                    patient_id="demo-001")
    (item,) = fin.items
    given = item.values[field]
    assert given == {"value": value, "unit": unit}
    canonical = convert(fdef.quantity, value, unit) if unit != fdef.unit else value
    assert canonical == pytest.approx(EXPECTED[key], abs=1e-6)


def test_units_the_codes_file_does_not_accept_for_a_code_are_refused(pw):
    session, _ = pw.start_fhir(header(bundle()))
    for q, code, where in [(qty(11, "mmol/L"), "PW433", "valueQuantity.code"),  # Hb moles under the mass code
                           ({"valueQuantity": {"value": 11, "unit": "g/dL", "system": "http://snomed.info/sct", "code": "g/dL"}},
                            "PW433", "valueQuantity.system"),
                           ({"valueQuantity": {"value": 11, "unit": "grams per decilitre"}}, "PW433", "valueQuantity.unit"),
                           ({"valueQuantity": {"value": 11}}, "PW433", "valueQuantity")]:
        with pytest.raises(InputError) as err:
            observe_fhir(session, obs("hb", "2026-03-02T09:00:00Z", "718-7", q))
        assert err.value.codes == [code] and str(err.value.diagnostics[0]).startswith(f"resource.{where}:"), str(err.value)


# -- hostile resources ------------------------------------------------------------------------------

HOSTILE = [
    ("wrong type", {"valueQuantity": {"value": "abc", "unit": "mg/L", "system": UCUM, "code": "mg/L"}}, "PW431",
     "Bundle.entry[1].resource.valueQuantity.value"),
    ("NaN as text", {"valueQuantity": {"value": "NaN", "unit": "mg/L", "system": UCUM, "code": "mg/L"}}, "PW431",
     "Bundle.entry[1].resource.valueQuantity.value"),
    ("unknown element", {"valueQuantity": {"value": 5, "unit": "mg/L", "code": "mg/L", "colour": "red"}}, "PW431",
     "Bundle.entry[1].resource.valueQuantity.colour"),
    ("huge number", qty(1e300, "mg/L"), "PW410", "Bundle.entry[1].resource.valueQuantity.value"),
    ("implausible", qty(5000, "mg/L"), "PW403", "Bundle.entry[1].resource.valueQuantity.value"),
    ("non-UCUM unit", {"valueQuantity": {"value": 5, "unit": "mg/L", "system": "urn:other", "code": "mg/L"}}, "PW433",
     "Bundle.entry[1].resource.valueQuantity.system"),
    ("unknown UCUM unit", qty(5, "mg/mL"), "PW433", "Bundle.entry[1].resource.valueQuantity.code"),
    ("a string value", {"valueString": "52"}, "PW435", "Bundle.entry[1].resource.valueString"),
    ("a bound", {"valueQuantity": {"value": 5, "comparator": "<", "unit": "mg/L", "system": UCUM, "code": "mg/L"}}, "PW435",
     "Bundle.entry[1].resource.valueQuantity.comparator"),
]


@pytest.mark.parametrize("name, value, code, where", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_values_are_located_refusals_that_change_nothing(pw, name, value, code, where):
    session, _ = pw.start_fhir(bundle())
    before = session.dump()
    b = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": obs("ok-1", "2026-03-13T10:00:00Z", "8867-4", qty(80, "/min"))},
        {"resource": obs("bad-1", "2026-03-13T10:00:00Z", "1988-5", value)}]}
    with pytest.raises(InputError) as err:
        observe_fhir(session, b)
    assert code in err.value.codes, str(err.value)
    assert any(d.file == where for d in err.value.diagnostics), str(err.value)
    assert session.dump() == before


@pytest.mark.parametrize("change, code, where", [
    (lambda r: r.pop("effectiveDateTime"), "PW432", "resource"),
    (lambda r: r.update(effectiveDateTime="2026-03-13"), "PW432", "resource.effectiveDateTime"),
    (lambda r: r.update(effectiveDateTime="2026-03-13T10:00:00"), "PW431", "resource.effectiveDateTime"),
    (lambda r: r.update(effectiveDateTime="yesterday"), "PW431", "resource.effectiveDateTime"),
    (lambda r: r.update(subject={"reference": "Patient/someone-else"}), "PW434", "resource.subject.reference"),
    (lambda r: r.update(resourceType="Observatoin"), "PW431", "resource.resourceType"),
])
def test_hostile_resources_are_located_refusals(pw, change, code, where):
    session, _ = pw.start_fhir(bundle())
    r = obs("x", "2026-03-13T10:00:00Z", "1988-5", qty(20, "mg/L"))
    change(r)
    with pytest.raises(InputError) as err:
        observe_fhir(session, r)
    assert err.value.codes[0] == code and err.value.diagnostics[0].file == where, str(err.value)


def _stranger_first(b: dict[str, Any]) -> dict[str, Any]:
    """``b`` with every resource that names a patient moved before its Patient and made another patient's."""
    patient = [e for e in b["entry"] if e["resource"]["resourceType"] == "Patient"]
    rest = copy.deepcopy([e for e in b["entry"] if e["resource"]["resourceType"] != "Patient"])
    for e in rest:
        if "subject" in e["resource"]:
            e["resource"]["subject"] = {"reference": "Patient/someone-else"}
    return {**b, "entry": rest + patient}


def test_another_patients_resources_before_the_patient_are_refused_not_recorded_as_this_ones(pw):
    # Every result of someone-else's, then demo-001's Patient: one patient's input must not mix two. Whichever
    # patient it is of, the resources of the other are not this patient's: refused, nothing started.
    with pytest.raises(InputError) as err:
        pw.start_fhir(_stranger_first(bundle()))
    assert set(err.value.codes) == {"PW434"}, str(err.value)
    assert err.value.diagnostics[0].file == "Bundle.entry[0].resource.subject.reference", str(err.value)
    assert "Patient/someone-else" in err.value.diagnostics[0].message
    # one stranger's result ahead of the Patient in a feed of a started session: refused, the session unchanged
    session, _ = pw.start_fhir(bundle())
    before = session.dump()
    stranger = obs("crp-x", "2026-03-13T10:00:00Z", "1988-5", qty(150, "mg/L"), subject="Patient/someone-else")
    patient = resource(bundle(), "demo-001")
    with pytest.raises(InputError) as err:
        observe_fhir(session, {"resourceType": "Bundle", "type": "collection",
                               "entry": [{"resource": stranger}, {"resource": patient}]})
    assert err.value.codes == ["PW434"] and err.value.diagnostics[0].file == "Bundle.entry[0].resource.subject.reference"
    assert session.dump() == before


def test_the_patient_may_stand_anywhere_in_a_bundle_and_be_named_by_its_full_url(pw):
    b = bundle()
    expected = pw.start_fhir(b)[1]
    moved = copy.deepcopy(b)
    patient = [e for e in moved["entry"] if e["resource"]["resourceType"] == "Patient"]
    rest = [e for e in moved["entry"] if e["resource"]["resourceType"] != "Patient"]
    for e in rest:
        if "subject" in e["resource"]:
            e["resource"]["subject"] = {"reference": patient[0]["fullUrl"]}  # urn:uuid:patient-demo-001
    result = pw.start_fhir({**moved, "entry": rest + patient})[1]
    assert {k: result[k] for k in CLINICAL} == {k: expected[k] for k in CLINICAL}
    assert result["patient_id"] == "demo-001"


def test_a_new_session_for_a_named_patient_refuses_another_patients_data(pw):
    with pytest.raises(InputError) as err:
        pw.start_fhir(bundle(), patient_id="p-77")
    assert err.value.codes[0] == "PW434" and err.value.diagnostics[0].file == "Bundle.entry[0].resource.id", str(err.value)
    without_patient = {**bundle(), "entry": [e for e in bundle()["entry"] if e["resource"]["resourceType"] != "Patient"]}
    with pytest.raises(InputError) as err:
        pw.start_fhir(without_patient, patient_id="p-77")
    assert set(err.value.codes) == {"PW434"}
    assert err.value.diagnostics[0].file == "Bundle.entry[0].resource.subject.reference", str(err.value)
    session, _ = pw.start_fhir(without_patient, patient_id="demo-001")
    assert session.patient_id == "demo-001"


def test_a_quantity_whose_unit_and_ucum_code_disagree_is_refused(pw):
    # CRP 52 with unit "mg/L" but code "mg/dL": read by the code it would be 520 mg/L; by the unit 52. Neither
    # can be known to be right: refused (PW433) at the unit, nothing recorded.
    session, _ = pw.start_fhir(bundle())
    before = session.dump()
    for value, unit, code in [(52, "mg/L", "mg/dL"), (52, "MG/DL", "mg/L"), (11, "g/L", "g/dL")]:
        r = obs("conflict", "2026-03-13T10:00:00Z", "1988-5" if value == 52 else "718-7",
                {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code}})
        with pytest.raises(InputError) as err:
            observe_fhir(session, r)
        assert err.value.codes == ["PW433"] and err.value.diagnostics[0].file == "resource.valueQuantity.unit", \
            str(err.value)
        assert "disagree" in err.value.diagnostics[0].message
        assert session.dump() == before
    # a display text that names no unit, or the code in other letters, is read by the code
    for hour, unit in [(10, "milligram per litre"), (11, "mg/l")]:
        r = obs(f"crp-{hour}", f"2026-03-13T{hour}:00:00Z", "1988-5",
                {"valueQuantity": {"value": 52, "unit": unit, "system": UCUM, "code": "mg/L"}})
        observe_fhir(session, r)
    crp = [e["crp_mg_l"] for e in session.recorded_events() if e.get("time", "").startswith("2026-03-13T1")]
    assert crp == [52, 52], crp


def test_a_dose_whose_unit_and_ucum_code_disagree_is_not_recorded(pw):
    from pathway.loading.fhir import _daily_dose
    dosage = {"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
              "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "g", "code": "mg", "system": UCUM}}]}
    why = _daily_dose([dosage])
    assert isinstance(why, str) and "disagree" in why
    dosage["doseAndRate"][0]["doseQuantity"]["unit"] = "milligram"
    assert _daily_dose([dosage]) == 10.0


def test_a_time_the_session_refuses_is_located_at_the_element_that_gave_it(pw):
    session, _ = pw.start_fhir(bundle())
    before = session.dump()
    late = obs("far", "2126-03-13T10:00:00Z", "1988-5", qty(20, "mg/L"))
    given = {**obs("given", "2126-03-13T10:00:00Z", "1988-5", qty(20, "mg/L")),
             "effectivePeriod": {"start": "2126-03-13T10:00:00Z"}}
    del given["effectiveDateTime"]
    for r, where in [(late, "Bundle.entry[0].resource.effectiveDateTime"),
                     (given, "Bundle.entry[0].resource.effectivePeriod.start")]:
        with pytest.raises(InputError) as err:
            observe_fhir(session, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r}]})
        assert [(d.code, d.file) for d in err.value.diagnostics] == [("PW405", where)], str(err.value)
    assert session.dump() == before


def test_input_that_is_not_fhir_is_refused(pw):
    session, _ = pw.start_fhir(bundle())
    deep: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    for data, code in [([1, 2], "PW430"), ({"resourceType": "Bundle", "type": "document"}, "PW430"), (deep, "PW430"),
                       ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Foo"}}]},
                        "PW431")]:
        with pytest.raises(InputError) as err:
            observe_fhir(session, data)
        assert err.value.codes == [code]


def test_two_values_for_one_field_at_one_moment_are_refused(pw):
    session, _ = pw.start_fhir(bundle())
    b = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": obs("crp-a", "2026-03-13T10:00:00Z", "1988-5", qty(20, "mg/L"))},
        {"resource": obs("crp-b", "2026-03-13T10:00:00Z", "1988-5", qty(25, "mg/L"))}]}
    with pytest.raises(InputError) as err:
        observe_fhir(session, b)
    assert err.value.codes == ["PW436"] and "Observation/crp-a" in str(err.value)


def test_unknown_codes_and_unread_statuses_are_reported_not_fatal(pw):
    session, _ = pw.start_fhir(bundle())
    b = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": obs("na", "2026-03-13T10:00:00Z", "2951-2", qty(140, "mmol/L"))},
        {"resource": obs("pre", "2026-03-13T10:00:00Z", "1988-5", qty(20, "mg/L"), status="preliminary")},
        {"resource": obs("hr", "2026-03-13T10:00:00Z", "8867-4", qty(70, "/min"))}]}
    result = observe_fhir(session, b)
    reasons = {i["resource"]: i["reason"] for i in result["fhir"]["ignored"]}
    assert "2951-2" in reasons["Observation/na"] and "preliminary" in reasons["Observation/pre"]
    assert [a["resource"] for a in result["fhir"]["applied"]] == ["Observation/hr"]


# -- the codes file is pathway data, checked like the others ---------------------------------------

def test_a_broken_codes_file_is_a_located_definition_error(tmp_path):
    folder = tmp_path / "asuc"
    shutil.copytree(ROOT / "rules" / "asuc", folder)
    text = (folder / "codes.yaml").read_text(encoding="utf-8")
    text = text.replace("field: crp_mg_l}", "field: crp_mgl}").replace("units: [g/dL, g/L]", "units: [g/dL, mg/L]")
    text = text.replace("[{rescue_choice: tacrolimus}]", "[{rescue_choice: tacrolimu}]")
    (folder / "codes.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_pathway(folder, cache=False)
    lines = [str(d) for d in err.value.diagnostics]
    assert any("codes.yaml:" in line and "unknown field 'crp_mgl'" in line and "crp_mg_l" in line for line in lines)
    assert any("UCUM 'mg/L' reads as 'mg/L', not a unit of 'hb_g_dl'" in line for line in lines)
    assert any("'tacrolimu' is not a value of 'rescue_choice'" in line for line in lines)


def test_the_mapping_table_in_the_docs_is_generated_from_the_codes_file(pw):
    doc = (ROOT / "docs" / "integrating.md").read_text(encoding="utf-8")
    assert "## FHIR input" in doc
    block = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == mapping_markdown(pw.definition).strip(), "regenerate the table in docs/integrating.md"
    assert "| `1988-5` | LOINC |" in block and "| `[degF]` | °F |" in block


def test_importing_pathway_and_its_fhir_modules_does_not_load_fhir_resources():
    code = ("import sys, pathway, pathway.loading.fhir, pathway.runtime.fhir; "
            "print(sorted(m for m in sys.modules if m == 'fhir' or m.startswith('fhir.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"


HOSTILE_TEXT = "x\n| injected | row |\n<script>alert(1)</script> `code` [link](http://a)\r\u2028"


def test_hostile_codes_file_texts_stay_inside_their_cells_of_the_mapping_table(tmp_path):
    folder = tmp_path / "asuc"
    shutil.copytree(ROOT / "rules" / "asuc", folder)
    text = (folder / "codes.yaml").read_text(encoding="utf-8")
    text = text.replace("display: Heart rate,", f"display: {json.dumps(HOSTILE_TEXT)},")
    (folder / "codes.yaml").write_text(text, encoding="utf-8")
    table = mapping_markdown(load_pathway(folder, cache=False).definition)
    rows = [line for line in table.splitlines() if "`8867-4`" in line]
    assert len(rows) == 1 and rows[0].count(" | ") == 5 and "<script>" not in table
    assert len(table.splitlines()) == len(mapping_markdown(load_pathway("asuc").definition).splitlines())


def test_hostile_texts_of_an_unread_resource_are_one_line_on_the_command_line(tmp_path):
    b = bundle()
    b["entry"].append({"resource": obs("odd", "2026-03-13T09:00:00Z", "0000-0", qty(1, "mg/L"))})
    b["entry"][-1]["resource"]["code"]["coding"][0]["display"] = HOSTILE_TEXT
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(b), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pathway", "run", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0
    notes = [line for line in run.stderr.splitlines() if "Observation/odd" in line]
    assert len(notes) == 1 and notes[0].startswith("note: Bundle.entry[54].resource") and "<script>" in notes[0]
    assert len(run.stderr.splitlines()) == 5  # the four notes of the demo and this one, each one line


def test_a_fhir_session_restores_from_its_dump_and_goes_on_recognising_its_resources(pw):
    session, _ = pw.start_fhir(bundle())
    restored = pw.restore(json.loads(json.dumps(session.dump())))
    assert restored.result() == session.result()
    again = observe_fhir(restored, resource(bundle(), "d11-11253-2"))
    assert again["changes"]["operation"] == "duplicate"
    late = observe_fhir(restored, obs("d10-k", "2026-03-12T08:00:00Z", "2823-3", qty(7.8, "meq/L")))
    assert late["changes"]["operations"][0]["operation"] == "amend"
    assert restored.recorded_events()[5]["potassium_mmol_l"] == 7.8
    assert pw.restore(json.loads(json.dumps(restored.dump()))).result() == restored.result()


def test_a_summary_fhir_result_is_the_full_one_without_the_trace(pw):
    b = bundle()
    late = resource(b, "d3-1988-5")
    course = {**b, "entry": [e for e in b["entry"] if e["resource"]["id"] != "d3-1988-5"]}
    full_session, _ = pw.start_fhir(course)
    summary_session, _ = pw.start_fhir(course)
    full = observe_fhir(full_session, late)
    summary = observe_fhir(summary_session, late, detail="summary")
    assert "trace" in full and "trace" not in summary
    assert summary == {k: v for k, v in full.items() if k != "trace"}
    assert summary_session.dump() == full_session.dump()  # the session itself keeps the whole trace
    with pytest.raises(ValueError):
        observe_fhir(summary_session, late, detail="brief")
