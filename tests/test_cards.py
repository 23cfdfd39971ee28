"""CDS Hooks 2.0 cards: what a clinician sees in the EHR for the patient's current state and for a draft order.

Expectations come from the clinical evidence (shared/clinical/asuc-evidence.md): the Oxford (Travis) criteria
on day 3 (§4.2: 3-8 stools with CRP > 45 mg/L predicts ~85% colectomy, so rescue is discussed), calcineurin
inhibitors excluded by renal impairment (§5.4, D13), anti-TNF only once hepatitis B status is known (§3, D14),
and the weight-based rescue doses (tacrolimus 0.05 mg/kg/day in two doses, §10; infliximab 5 mg/kg, D14).
Every card is validated against the CDS Hooks 2.0 card model (pathway.service.cards.Card).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cases import ADMIT, RESCUE_LABS, patient, rescue, to_rescue

from pathway import load_pathway
from pathway.core.errors import InputError
from pathway.service.cards import (
    DOSE_CRITICAL_RATIO,
    DOSE_TOLERANCE,
    EXTENSION,
    OVERRIDE_REASONS,
    SUMMARY_MAX,
    Card,
    order_cards,
    patient_view_cards,
    prefetch_templates,
    summary_text,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TACROLIMUS = {"system": RXNORM, "code": "42316", "display": "tacrolimus"}
INFLIXIMAB = {"system": RXNORM, "code": "191831", "display": "infliximab"}
#: day 3 by the Oxford criteria: 3-8 stools with visible blood and CRP > 45 mg/L (Travis-1996)
OXFORD_DAY3 = {"day": 3, "stool_freq_24h": 5, "visible_blood": True, "crp_mg_l": 50}


def _session(pw: Any, case: dict[str, Any]) -> Any:
    session = pw.start(case["patient"])
    for event in case["events"]:
        session.observe(event)
    return session


def _ext(card: dict[str, Any]) -> dict[str, Any]:
    return card["extension"][EXTENSION]


def _valid(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for card in cards:
        Card.model_validate(card)
        assert len(card["summary"]) <= SUMMARY_MAX < 140
        assert "\n" not in card["summary"]
    assert len({c["uuid"] for c in cards}) == len(cards), "two cards of one response share a uuid"
    return cards


def _order(concept: dict[str, Any], *, mg: float | None = None, per_day: float | None = 1, order_id: str | None = None,
           route: str | None = None, every_days: float | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order",
                             "medicationCodeableConcept": concept, "subject": {"reference": "Patient/p-1"}}
    if order_id:
        order["id"] = order_id
    if mg is not None:
        dosage: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg",
                                                                    "system": "http://unitsofmeasure.org", "code": "mg"}}]}
        if every_days is not None:
            dosage["timing"] = {"repeat": {"frequency": 1, "period": every_days, "periodUnit": "d"}}
        elif per_day is not None:
            dosage["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
        if route:
            dosage["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": route}]}
        order["dosageInstruction"] = [dosage]
    return order


# -- patient-view ----------------------------------------------------------------------------------------

def test_oxford_positive_on_day_3_gives_a_warning_card_to_discuss_rescue_and_a_decision_card_with_the_options(pw):
    session = _session(pw, {"patient": patient(), "events": [dict(ADMIT), dict(OXFORD_DAY3)]})
    result = session.result()
    assert result["state"] == "rescue_selection" and result["frozen"]["oxford_high_risk"]["value"] is True
    cards = _valid(patient_view_cards(pw, session))
    failure = [c for c in cards if _ext(c)["rule"] == "steroid_failure_day3"]
    assert len(failure) == 1 and failure[0]["indicator"] in ("warning", "critical")
    assert "Discuss rescue therapy and colectomy today" in failure[0]["detail"]
    assert "Travis-1996" in _ext(failure[0])["evidence"]["sources"]
    assert "Travis-1996" in failure[0]["source"]["label"] or "+" in failure[0]["source"]["label"]
    decision = [c for c in cards if _ext(c)["kind"] == "decision"]
    assert len(decision) == 1 and decision[0]["indicator"] == "warning"
    assert _ext(decision[0])["field"] == "rescue_choice"
    # every rescue option is listed with its status: the drugs wait for the eligibility labs (creatinine,
    # cholesterol, magnesium, infection, blood pressure), asked for on their own cards; only the choosable
    # options are suggestions (one at most)
    assert _ext(decision[0])["options"] == {"ciclosporin": "pending", "infliximab": "pending",
                                            "tacrolimus": "pending", "colectomy": "available"}
    assert [s["label"].split(":")[0] for s in decision[0]["suggestions"]] == ["Colectomy"]
    asked = {f for c in cards if _ext(c)["kind"] == "data" for f in _ext(c)["fields"]}
    assert {"creatinine_umol_l", "magnesium_mmol_l", "active_serious_infection"} <= asked
    session.observe(dict(RESCUE_LABS))
    decision = [c for c in _valid(patient_view_cards(pw, session)) if _ext(c)["kind"] == "decision"]
    assert _ext(decision[0])["options"] == {"ciclosporin": "available", "infliximab": "available",
                                            "tacrolimus": "available", "colectomy": "available"}
    labels = [s["label"] for s in decision[0]["suggestions"]]
    assert [label.split(":")[0] for label in labels] == ["Ciclosporin", "Infliximab", "Tacrolimus", "Colectomy"]
    assert decision[0]["selectionBehavior"] == "at-most-one"
    assert [r["code"] for r in decision[0]["overrideReasons"]] == [r["code"] for r in OVERRIDE_REASONS]
    assert "| Option | Status |" in decision[0]["detail"]
    # the most urgent first
    order = {"critical": 0, "warning": 1, "info": 2}
    assert [order[c["indicator"]] for c in cards] == sorted(order[c["indicator"]] for c in cards)


def test_no_eligible_rescue_agent_gives_a_critical_colectomy_proposal_whose_suggestion_orders_nothing(pw):
    case = to_rescue()
    case["events"][2] = dict(RESCUE_LABS, active_serious_infection=True)  # every rescue agent excluded
    session = _session(pw, case)
    cards = _valid(patient_view_cards(pw, session))
    proposal = [c for c in cards if _ext(c)["kind"] == "proposal"]
    assert len(proposal) == 1
    card = proposal[0]
    assert card["indicator"] == "critical" and _ext(card)["rule"] == "no_eligible_rescue"
    assert _ext(card)["record"] == {"rescue_choice": "colectomy"}
    assert [s.get("actions") for s in card["suggestions"]] == [None]  # a decision to record, not an order
    assert card["selectionBehavior"] == "at-most-one" and card["overrideReasons"]
    # and the alert of the same rule, critical in its own right
    alerts = [c for c in cards if _ext(c)["kind"] == "alert" and _ext(c)["rule"] == "no_eligible_rescue"]
    assert [c["indicator"] for c in alerts] == ["critical"]
    decision = next(c for c in cards if _ext(c)["kind"] == "decision")
    assert _ext(decision)["options"]["tacrolimus"] == "unavailable"
    assert [s["label"].split(":")[0] for s in decision["suggestions"]] == ["Colectomy"]


def test_a_computed_tacrolimus_dose_carries_a_suggestion_creating_its_medication_request(pw):
    session = _session(pw, rescue("tacrolimus"))
    cards = _valid(patient_view_cards(pw, session, base_url="https://cds.example.org/"))
    dose = next(c for c in cards if _ext(c)["rule"] == "tac_start_dose")
    assert dose["selectionBehavior"] == "at-most-one"
    (suggestion,) = dose["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "create"
    request = action["resource"]
    # 0.05 mg/kg/day for 70 kg in two doses (3.5 mg/day), rounded to the capsule step
    (dosage,) = request["dosageInstruction"]
    per_dose = dosage["doseAndRate"][0]["doseQuantity"]
    assert per_dose["code"] == "mg" and abs(per_dose["value"] * 2 - 3.5) <= 1.0
    assert dosage["timing"]["repeat"] == {"frequency": 2, "period": 1, "periodUnit": "d"}
    assert dosage["route"]["coding"][0]["code"] == "26643006"  # SNOMED CT oral route
    assert dosage["text"] == suggestion["label"] and "twice daily" in suggestion["label"]
    assert request["medicationCodeableConcept"]["coding"][0]["code"] == "42316"  # RxNorm tacrolimus
    assert request["subject"] == {"reference": "Patient/p-1"}
    assert dose["source"]["url"] == "https://cds.example.org/pathways/asuc/rules/tac_start_dose"
    assert dose["source"]["topic"]["code"] == "tac_start_dose"
    assert "Ogata-2006" in dose["detail"] and "verified" in dose["detail"]
    # a FHIR R4 MedicationRequest the EHR can take as it is
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    MedicationRequest.model_validate(request)


def test_data_required_and_rechecks_name_the_fields_in_clinical_words(pw):
    # tacrolimus on day 6 with a low trough and the creatinine of day 3 expired: the increase waits for it
    later = {"day": 6, "tacrolimus_trough_ng_ml": 6.5, "tacrolimus_daily_dose_mg": 4}
    session = _session(pw, rescue("tacrolimus", later))
    cards = _valid(patient_view_cards(pw, session))
    recheck = [c for c in cards if _ext(c)["kind"] in ("recheck", "data") and "creatinine_umol_l" in _ext(c)["fields"]]
    # one card per rule that waits for it: the increase, and the tacrolimus monitoring (creatinine and magnesium
    # expired, glucose never recorded)
    assert sorted(_ext(c)["rule"] for c in recheck) == ["tac_monitoring", "tac_trough_low"]
    for card in recheck:
        assert card["indicator"] == "warning"
        assert "serum creatinine" in card["summary"].lower() and "creatinine_umol_l" not in card["summary"]
        assert "recheck serum creatinine (last 70" in card["detail"]
    increase = next(c for c in recheck if _ext(c)["rule"] == "tac_trough_low")
    assert _ext(increase)["kind"] == "recheck"
    monitoring = next(c for c in recheck if _ext(c)["rule"] == "tac_monitoring")
    # a value never recorded among them: a data card
    assert _ext(monitoring)["kind"] == "data"
    assert _ext(monitoring)["fields"] == ["creatinine_umol_l", "magnesium_mmol_l", "glucose_mmol_l"]


def test_pending_eligibility_asks_for_the_data_in_clinical_words(pw):
    case = to_rescue()
    del case["patient"]["hbv_status"]
    session = _session(pw, case)
    cards = _valid(patient_view_cards(pw, session))
    data = [c for c in cards if _ext(c)["kind"] == "data" and "hbv_status" in _ext(c)["fields"]]
    assert len(data) == 1 and data[0]["indicator"] == "warning"
    assert "Hepatitis B" in data[0]["summary"]
    decision = next(c for c in cards if _ext(c)["kind"] == "decision")
    assert _ext(decision)["options"]["infliximab"] == "pending"
    assert "Infliximab" not in [s["label"].split(":")[0] for s in decision["suggestions"]]


def test_card_uuids_are_the_same_for_the_same_state_and_new_when_the_state_changes(pw):
    case = to_rescue()
    first = _session(pw, case)
    second = _session(pw, copy.deepcopy(case))
    a, b = patient_view_cards(pw, first), patient_view_cards(pw, second)
    assert [c["uuid"] for c in a] == [c["uuid"] for c in b] and a == b
    assert patient_view_cards(pw, first) == a  # asking again changes nothing
    first.observe({"day": 3, "cholesterol_mmol_l": 4.4})
    c = patient_view_cards(pw, first)
    assert not {x["uuid"] for x in a} & {x["uuid"] for x in c}
    suggestions = [s["uuid"] for card in c for s in card.get("suggestions", [])]
    assert len(set(suggestions)) == len(suggestions)
    # another patient in the same state: other uuids
    other = _session(pw, to_rescue(id="p-2"))
    assert not {x["uuid"] for x in a} & {x["uuid"] for x in patient_view_cards(pw, other)}


def test_every_card_of_a_whole_course_is_a_valid_cds_hooks_card(pw):
    for agent in ("tacrolimus", "ciclosporin", "infliximab", "colectomy"):
        case = rescue(agent, {"day": 6, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 85})
        session = pw.start(case["patient"])
        for event in case["events"]:
            session.observe(event)
            _valid(patient_view_cards(pw, session))


def test_summaries_are_cut_on_a_word_with_an_ellipsis():
    long = "word " * 60
    text = summary_text(long)
    assert len(text) <= SUMMARY_MAX and text.endswith("…") and text[:-1].endswith("word")
    assert summary_text("short\nline\x1b") == "short line\\x1b"


# -- order-select / order-sign --------------------------------------------------------------------------

def test_tacrolimus_ordered_for_a_patient_with_renal_impairment_gives_a_critical_card_naming_the_reason(pw):
    case = to_rescue()
    case["events"][2] = dict(RESCUE_LABS, creatinine_umol_l=200)  # above creatinine_max_umol_l (130)
    session = _session(pw, case)
    cards = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=2, per_day=2)]))
    (card,) = cards
    assert card["indicator"] == "critical" and _ext(card)["kind"] == "order-unavailable"
    assert "Creatinine 200 µmol/L is above 130 µmol/L" in card["summary"]
    assert "renal impairment" in card["detail"]
    assert _ext(card)["rule"] == "tacrolimus_reason_renal" and _ext(card)["agent"] == "tacrolimus"
    assert card["overrideReasons"]


def test_infliximab_ordered_with_hepatitis_b_status_unknown_gives_a_pending_warning(pw):
    case = to_rescue()
    del case["patient"]["hbv_status"]
    session = _session(pw, case)
    (card,) = _valid(order_cards(pw, session, [_order({"text": "Infliximab 350 mg IV infusion"})]))
    assert card["indicator"] == "warning" and _ext(card)["kind"] == "order-pending"
    assert "hepatitis B status" in card["summary"]


def test_a_cautioned_agent_gives_a_warning_with_its_reason(pw):
    session = _session(pw, to_rescue(prior_anti_tnf_failure=True))
    (card,) = _valid(order_cards(pw, session, [_order({"coding": [INFLIXIMAB]})]))
    assert card["indicator"] == "warning" and _ext(card)["kind"] == "order-caution"
    assert "Previous anti-TNF failure" in card["summary"]


def test_a_tacrolimus_dose_other_than_the_computed_one_gives_a_warning_with_a_replacing_suggestion(pw):
    session = _session(pw, to_rescue())  # the choice is not recorded yet: the dose it would get is computed
    before = session.dump()
    ordered = _order({"coding": [TACROLIMUS]}, mg=2.5, per_day=2, order_id="draft-1")
    (card,) = _valid(order_cards(pw, session, [ordered]))
    assert session.dump() == before  # asking left the session as it was
    assert card["indicator"] == "warning" and _ext(card)["kind"] == "order-dose"
    ext = _ext(card)
    assert ext["ordered"] == 5 and ext["unit"] == "mg/day" and abs(ext["computed"] - 3.5) <= 1.0
    assert f"{ext['computed']:g} mg/day" in card["summary"] and "5 mg/day" in card["summary"]
    (action,) = card["suggestions"][0]["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == "draft-1"
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] * 2 == ext["computed"]
    # the computed dose itself (and anything within the tolerance) gives no card
    per_dose = ext["computed"] / 2
    assert order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=per_dose, per_day=2)]) == []
    near = per_dose * (1 + DOSE_TOLERANCE / 2)
    assert order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=near, per_day=2)]) == []


def test_an_infliximab_dose_is_checked_per_infusion_at_5_mg_per_kg(pw):
    session = _session(pw, rescue("infliximab"))
    (card,) = _valid(order_cards(pw, session, [_order({"coding": [INFLIXIMAB]}, mg=700, route="47625008",
                                                      per_day=None)]))
    ext = _ext(card)
    assert ext["unit"] == "mg per dose" and ext["computed"] == 350 and ext["ordered"] == 700  # 5 mg/kg x 70 kg
    action = card["suggestions"][0]["actions"][0]
    assert action["type"] == "create"  # the draft has no id to update or delete: the clinician is told to remove it
    assert "remove the draft of 700 mg per dose" in action["description"]
    assert "draft must be removed by hand" in card["detail"]
    assert order_cards(pw, session, [_order({"coding": [INFLIXIMAB]}, mg=350, per_day=None)]) == []


def test_an_order_the_pathway_has_no_agent_for_gives_no_card(pw):
    session = _session(pw, to_rescue())
    paracetamol = _order({"coding": [{"system": RXNORM, "code": "161"}], "text": "paracetamol"}, mg=1000, per_day=4)
    assert order_cards(pw, session, [paracetamol]) == []
    assert order_cards(pw, session, []) == []
    # asked for, an info card says it was not checked
    (card,) = _valid(order_cards(pw, session, [paracetamol], unmapped=True))
    assert card["indicator"] == "info" and card["summary"] == "Not checked by the pathway: paracetamol"
    assert _ext(card)["kind"] == "order-unmapped" and "overrideReasons" not in card


def _bad(**changes: Any) -> dict[str, Any]:
    order = _order({"coding": [TACROLIMUS]}, mg=2, per_day=2)
    order.update(changes)
    return order


_MALFORMED = [
    ("not an order", "draftOrders[1]"),
    (_bad(resourceType="Observation"), "draftOrders[1].resourceType"),
    (_bad(medicationCodeableConcept=["tacrolimus"]), "draftOrders[1].medicationCodeableConcept"),
    (_bad(dosageInstruction=[{"doseAndRate": [{"doseQuantity": {"value": "two", "code": "mg"}}]}]),
     "draftOrders[1].dosageInstruction[0].doseAndRate[0].doseQuantity.value"),
    (_bad(dosageInstruction={"text": "2 mg twice daily"}), "draftOrders[1].dosageInstruction"),
]


@pytest.mark.parametrize(("order", "where"), _MALFORMED)
def test_a_malformed_draft_order_is_a_located_input_error_from_the_fhir_model(pw, order, where):
    pytest.importorskip("fhir.resources")
    session = _session(pw, to_rescue())
    with pytest.raises(InputError) as exc:
        order_cards(pw, session, [_order({"coding": [TACROLIMUS]}), order])
    assert {d.code for d in exc.value.diagnostics} == {"PW431"}
    assert where in [d.file for d in exc.value.diagnostics], [d.file for d in exc.value.diagnostics]


@pytest.mark.parametrize(("order", "where"), _MALFORMED)
def test_without_the_fhir_model_a_malformed_draft_order_is_still_a_located_input_error(pw, order, where, monkeypatch):
    import pathway.service.cards as cards

    monkeypatch.setattr(cards, "_fhir_available", lambda: False)
    session = _session(pw, to_rescue())
    with pytest.raises(InputError) as exc:
        order_cards(pw, session, [_order({"coding": [TACROLIMUS]}), order])
    (diag,) = exc.value.diagnostics
    assert diag.code == "PW450" and diag.file == where


# -- prefetch --------------------------------------------------------------------------------------------

def test_prefetch_templates_search_the_observations_the_pathway_reads_by_their_codes():
    pw = load_pathway("asuc")
    templates = prefetch_templates(pw, "patient-view")
    assert templates["patient"] == "Patient/{{context.patientId}}"
    observations = templates["observations"]
    assert observations.startswith("Observation?patient={{context.patientId}}&code=")
    for code in ("1988-5", "718-7", "1751-7", "8867-4", "8310-5", "29463-7", "19123-9", "2160-0"):
        assert f"http://loinc.org|{code}" in observations
    assert templates["medications"].startswith("MedicationRequest?patient={{context.patientId}}&code=")
    assert f"{RXNORM}|42316" in templates["medications"]
    assert "Procedure?patient={{context.patientId}}&code=http://snomed.info/sct|23968004" == templates["procedures"]
    assert "procedures" not in prefetch_templates(pw, "order-select")


def test_an_order_given_by_a_brand_name_alone_is_read_as_its_agent(pw):
    case = to_rescue()
    case["events"][2] = dict(RESCUE_LABS, creatinine_umol_l=200)
    session = _session(pw, case)
    (card,) = order_cards(pw, session, [_order({"text": "PROGRAF 1 mg capsules"})])
    assert _ext(card)["agent"] == "tacrolimus" and card["indicator"] == "critical"
    # a name inside another word is not that medicine (prednisolone is not methylprednisolone)
    assert order_cards(pw, session, [_order({"text": "methylprednisolone sodium succinate"})]) == []


def test_an_agent_in_the_codes_file_must_be_an_option_or_a_computed_medicine(rules_copy):
    from pathway.core.errors import DefinitionError

    codes = rules_copy / "codes.yaml"
    text = codes.read_text(encoding="utf-8")
    codes.write_text(text.replace("    agent: tacrolimus\n", "    agent: tacrolimuss\n"), encoding="utf-8")
    with pytest.raises(DefinitionError) as exc:
        load_pathway(rules_copy, cache=False)
    (diag,) = exc.value.diagnostics
    assert diag.code == "PW112" and "tacrolimuss" in diag.message and "tacrolimus" in (diag.hint or "")


def test_choosing_a_rescue_medicine_from_the_decision_card_orders_the_dose_the_pathway_gives_for_it(pw):
    session = _session(pw, to_rescue())
    before = session.dump()
    decision = next(c for c in _valid(patient_view_cards(pw, session)) if _ext(c)["kind"] == "decision")
    assert session.dump() == before
    by_option = {s["label"].split(":")[0]: s for s in decision["suggestions"]}
    assert "actions" not in by_option["Colectomy"]  # a procedure decided with the patient, not an order
    (tacrolimus,) = by_option["Tacrolimus"]["actions"]
    dose = tacrolimus["resource"]["dosageInstruction"][0]
    assert dose["doseAndRate"][0]["doseQuantity"]["value"] * 2 == pytest.approx(3.5, abs=1.0)  # 0.05 mg/kg/day, 70 kg
    (infliximab,) = by_option["Infliximab"]["actions"]
    assert infliximab["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 350  # 5 mg/kg
    # one infusion of the weeks 0, 2 and 6 schedule (§5.3), not a daily dose
    assert infliximab["resource"]["dosageInstruction"][0]["timing"] == {"repeat": {"count": 1}}
    (ciclosporin,) = by_option["Ciclosporin"]["actions"]
    csa = ciclosporin["resource"]["dosageInstruction"][0]
    # 2 mg/kg/day by continuous infusion (§5.2): 140 mg over 24 hours as a rate, not a once-daily 140 mg dose
    assert csa["doseAndRate"][0]["rateQuantity"] == {"value": round(140 / 24, 3), "unit": "mg/h",
                                                    "system": "http://unitsofmeasure.org", "code": "mg/h"}
    assert csa["timing"]["repeat"]["duration"] == 24 and csa["timing"]["repeat"]["durationUnit"] == "h"
    assert csa["route"]["coding"][0]["code"] == "47625008"  # IV
    # each one-click order passes the pathway's own order check
    for action in (tacrolimus, infliximab, ciclosporin):
        assert order_cards(pw, session, [action["resource"]]) == [], action["resource"]["medicationCodeableConcept"]


def test_a_rescue_decision_still_open_a_day_after_steroid_failure_is_critical(pw):
    # delaying a needed colectomy costs lives (Randall-2010, Travis-2006): the open choice becomes critical
    case = to_rescue()
    case["events"].append({"day": 4, "stool_freq_24h": 8, "visible_blood": True})
    session = _session(pw, case)
    cards = _valid(patient_view_cards(pw, session))
    decision = next(c for c in cards if _ext(c)["kind"] == "decision")
    assert decision["indicator"] == "critical" and decision["summary"].startswith("Decision overdue:")
    overdue = [c for c in cards if _ext(c)["rule"] == "overdue.rescue_selection"]
    assert [c["indicator"] for c in overdue] == ["critical"] and "decide today" in overdue[0]["summary"] + overdue[0]["detail"]


def test_a_dose_twice_the_computed_one_or_more_is_critical(pw):
    # tacrolimus 0.1 mg/kg/day for 70 kg is about 7 mg/day (evidence §5.4; the profile may start at 0.05);
    # 5 mg twice a day, or a ten-fold slip (50 mg twice a day), is a toxicity risk: critical, not a warning
    session = _session(pw, to_rescue())
    for mg in (5, 50):
        (card,) = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=mg, per_day=2)]))
        ext = _ext(card)
        assert ext["ordered"] / ext["computed"] >= DOSE_CRITICAL_RATIO
        assert card["indicator"] == "critical" and "times the computed dose" in card["detail"]
    # a tenth of the dose is as far off the other way (a rescue that cannot work)
    computed = _ext(card)["computed"]
    (low,) = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=computed / 20, per_day=2)]))
    assert low["indicator"] == "critical"


def test_a_dose_in_a_unit_that_is_not_a_mass_is_said_not_checked(pw):
    session = _session(pw, to_rescue())
    order = _order({"coding": [TACROLIMUS]}, mg=2, per_day=2)
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"].update(unit="mL", code="mL")
    (card,) = _valid(order_cards(pw, session, [order]))
    assert card["indicator"] == "warning" and _ext(card)["kind"] == "order-dose-unread"
    assert card["summary"] == "Tacrolimus dose not checked: 2 mL is not a mass (mg, g or µg)"


# -- orders the pathway has no dose for: said, never passed over (expectations from the evidence) ------------

def _kinds(cards: list[dict[str, Any]]) -> dict[str, str]:
    return {_ext(c)["kind"]: c["indicator"] for c in cards}


def test_a_rescue_agent_ordered_before_the_day3_decision_is_not_a_choice_yet(pw):
    # §4.1: rescue is decided at the day-3 assessment (steroid failure); on day 1 the patient is on IV steroids
    case = to_rescue()
    session = _session(pw, {"patient": case["patient"], "events": case["events"][:1]})
    (card,) = _valid(order_cards(pw, session, [_order({"coding": [INFLIXIMAB]}, mg=3500)]))
    assert _ext(card)["kind"] == "order-not-offered" and card["indicator"] == "warning"
    assert card["summary"] == "Infliximab is not a choice of the pathway now (IV corticosteroids)"


def test_a_second_rescue_agent_or_one_after_colectomy_is_critical(pw):
    # §5.1: one attempt at rescue only (sequential rescue in specialist centres is a recorded choice of its own);
    # after colectomy no rescue agent is a choice at all
    on_tac = _session(pw, rescue("tacrolimus"))
    cards = _valid(order_cards(pw, on_tac, [_order({"coding": [INFLIXIMAB]}, mg=350)]))
    assert _kinds(cards).get("order-not-offered") == "critical"
    colectomy = _session(pw, rescue("colectomy"))
    cards = _valid(order_cards(pw, colectomy, [_order({"text": "ciclosporin 2 mg/kg IV"})]))
    assert _kinds(cards) == {"order-not-offered": "critical"}


def test_the_agent_given_now_ordered_against_a_critical_alert_is_critical(pw):
    # D18: a toxic tacrolimus trough (25 ng/mL, above 20) means withhold the next doses: an order for more is
    # against that, whatever its dose, and the dose cannot be compared (the pathway computes none now)
    session = _session(pw, rescue("tacrolimus", {"day": 6, "tacrolimus_trough_ng_ml": 25, "creatinine_umol_l": 75,
                                                 "tacrolimus_daily_dose_mg": 4}))
    assert any(a["level"] == "critical" and "withhold" in a["text"] for a in session.result()["alerts"])
    cards = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=2, per_day=2)]))
    kinds = _kinds(cards)
    assert kinds["order-against-alert"] == "critical" and "order-not-offered" not in kinds
    assert kinds["order-dose-unchecked"] == "warning"


def test_a_dose_that_cannot_be_computed_is_said_not_checked(pw):
    # doses are per kg (§5.2-5.4): with no weight recorded nothing can be compared, and a 10-fold dose must not pass
    case = to_rescue()
    del case["patient"]["weight_kg"]
    session = _session(pw, case)
    (card,) = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=20, per_day=2)]))
    assert _ext(card)["kind"] == "order-dose-unchecked"
    assert card["summary"] == "Tacrolimus dose not checked: the patient's weight is not recorded"


def test_the_route_is_checked_when_the_dose_is_right_and_micrograms_are_read(pw):
    session = _session(pw, rescue("infliximab"))
    subcut = _order({"coding": [INFLIXIMAB]}, mg=350, route="34206005", per_day=None)  # subcutaneous, at 5 mg/kg
    (card,) = _valid(order_cards(pw, session, [subcut]))
    assert _ext(card)["kind"] == "order-route" and card["indicator"] == "warning"
    micro = _order({"coding": [INFLIXIMAB]}, mg=350_000, per_day=None)
    micro["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"].update(unit="µg", code="µg")
    assert order_cards(pw, session, [micro]) == []  # 350,000 µg is the computed 350 mg


CICLOSPORIN = {"system": RXNORM, "code": "3008", "display": "cyclosporine"}
ORAL, IV = "26643006", "47625008"


def test_two_rescue_agents_in_one_order_set_are_critical(pw):
    # §5.1: infliximab *or* ciclosporin (ACG-2025), one attempt at rescue (Travis-2006): the rescue decision
    # records one agent; two ordered at once (two calcineurin inhibitors, or one with infliximab) is critical,
    # at their computed doses too
    session = _session(pw, to_rescue())
    tac = _order({"coding": [TACROLIMUS]}, mg=2, per_day=2)  # the computed 4 mg/day at 70 kg
    for other in (_order({"coding": [INFLIXIMAB]}, mg=350, per_day=None), _order({"coding": [CICLOSPORIN]})):
        cards = _valid(order_cards(pw, session, [tac, other]))
        together = [c for c in cards if _ext(c)["kind"] == "order-together"]
        assert len(together) == 1 and together[0]["indicator"] == "critical"
        assert together[0]["summary"].startswith("Two rescue agents ordered together: ")
        assert "tacrolimus" in together[0]["summary"] and _ext(together[0])["orders"] == [0, 1]
        assert _ext(together[0])["rule"] == "rescue_discussion"
        assert "Travis-2006" in _ext(together[0])["evidence"]["sources"]
    three = _valid(order_cards(pw, session, [tac, _order({"coding": [INFLIXIMAB]}, mg=350, per_day=None),
                                             _order({"coding": [CICLOSPORIN]})]))
    (together,) = [c for c in three if _ext(c)["kind"] == "order-together"]
    assert together["summary"].startswith("Three rescue agents ordered together: ")
    # one agent alone, at its computed dose: nothing to say
    assert order_cards(pw, session, [tac]) == []


def test_oral_ciclosporin_with_low_cholesterol_is_not_compared_with_the_iv_dose(pw):
    # §5.2 (GastroTrain): cholesterol below 3.0 mmol/L raises the seizure risk of IV ciclosporin and oral
    # ciclosporin is suggested instead; the oral dose (5.5 mg/kg/day in two doses, CONSTRUCT) is several times
    # the IV 2 mg/kg/day, so an oral order is neither a critical overdose nor to be changed to the IV infusion;
    # the pathway computes no IV dose beside the low cholesterol (csa_iv_dose), so the dose is said to be unchecked
    session = _session(pw, to_rescue())
    session.observe({"day": 3, "cholesterol_mmol_l": 2.5})
    oral = _order({"coding": [CICLOSPORIN]}, mg=200, per_day=2, route=ORAL, order_id="draft-csa")
    cards = _valid(order_cards(pw, session, [oral]))
    kinds = _kinds(cards)
    assert kinds == {"order-caution": "warning", "order-dose-unchecked": "warning"}
    unchecked = next(c for c in cards if _ext(c)["kind"] == "order-dose-unchecked")
    assert "dose not checked" in unchecked["summary"] and "suggestions" not in unchecked
    assert not any(c["indicator"] == "critical" for c in cards)


def test_infliximab_ordered_more_often_than_its_schedule_is_flagged(pw):
    # §5.3 (CONSTRUCT, CySIF): 5 mg/kg at weeks 0, 2 and 6: two weeks between the first doses at the shortest.
    # Daily is 14 times as often (critical); every 10 days is a warning; every 14 days is the schedule
    session = _session(pw, rescue("infliximab"))
    (daily,) = _valid(order_cards(pw, session, [_order({"coding": [INFLIXIMAB]}, mg=350, per_day=1, route=IV)]))
    assert _ext(daily)["kind"] == "order-frequency" and daily["indicator"] == "critical"
    assert "weeks 0, 2 and 6" in daily["summary"] and _ext(daily)["shortest_interval_days"] == 14
    (ten,) = _valid(order_cards(pw, session, [_order({"coding": [INFLIXIMAB]}, mg=350, every_days=10, route=IV)]))
    assert ten["indicator"] == "warning"
    assert order_cards(pw, session, [_order({"coding": [INFLIXIMAB]}, mg=350, every_days=14, route=IV)]) == []


def test_a_rescue_order_with_c_difficile_positive_is_a_caution(pw):
    # D4, §2: a positive C. difficile toxin is treated and the immunosuppression reviewed before a rescue agent
    session = _session(pw, to_rescue())
    session.observe({"day": 3, "cdiff_result": "positive"})
    cards = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]}, mg=2, per_day=2)]))
    caution = [c for c in cards if _ext(c)["kind"] == "order-caution"]
    assert len(caution) == 1 and caution[0]["indicator"] == "warning"
    assert "C. difficile" in caution[0]["detail"]


def _line(mg: float, per_day: float) -> dict[str, Any]:
    return {"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org",
                                              "code": "mg"}}]}


def test_every_dosage_line_a_range_and_a_rate_are_read(pw):
    # tacrolimus is computed at 4 mg/day for 70 kg (§5.4/§10, default profile); ciclosporin IV at 2 mg/kg/day by
    # continuous infusion, 140 mg/24 h (§5.2, D13). Each of these orders is far above that and must be critical.
    session = _session(pw, to_rescue())
    split = _order({"coding": [TACROLIMUS]})
    split["dosageInstruction"] = [_line(2, 1), _line(30, 1)]  # 2 mg in the morning, 30 mg at night: 32 mg/day
    (card,) = _valid(order_cards(pw, session, [split]))
    assert card["indicator"] == "critical" and _ext(card)["ordered"] == 32 and _ext(card)["unit"] == "mg/day"
    assert "dosage lines" in card["detail"]
    ranged = _order({"coding": [TACROLIMUS]})
    ranged["dosageInstruction"] = [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                    "doseAndRate": [{"doseRange": {"low": {"value": 20, "unit": "mg", "code": "mg"},
                                                                   "high": {"value": 30, "unit": "mg", "code": "mg"}}}]}]
    (card,) = _valid(order_cards(pw, session, [ranged]))
    assert card["indicator"] == "critical" and _ext(card)["ordered"] == 60 and "upper end" in card["detail"]
    on_csa = _session(pw, rescue("ciclosporin"))
    rate = _order({"coding": [CICLOSPORIN]})
    rate["dosageInstruction"] = [{"route": {"coding": [{"system": "http://snomed.info/sct", "code": IV}]},
                                  "doseAndRate": [{"rateQuantity": {"value": 58, "unit": "mg/h", "code": "mg/h"}}]}]
    (card,) = _valid(order_cards(pw, on_csa, [rate]))
    assert card["indicator"] == "critical" and _ext(card)["ordered"] == 58 * 24 and _ext(card)["computed"] == 140
    rate["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"].update(value=5.8, unit="mg/h", code="mg/h")
    assert order_cards(pw, on_csa, [rate]) == []  # 139.2 mg/24 h is the computed dose


def test_a_dose_given_as_text_only_is_said_not_checked(pw):
    session = _session(pw, to_rescue())
    text_only = _order({"coding": [TACROLIMUS]})
    text_only["dosageInstruction"] = [{"text": "20 mg twice daily"}]
    (card,) = _valid(order_cards(pw, session, [text_only]))
    assert _ext(card)["kind"] == "order-dose-unread" and card["indicator"] == "warning"
    assert "text only" in card["summary"] and "20 mg twice daily" in card["detail"]


MORPHINE = {"system": RXNORM, "code": "7052", "display": "morphine"}
VANCOMYCIN = {"system": RXNORM, "code": "11124", "display": "vancomycin"}


def test_a_drug_to_avoid_in_acute_colitis_is_a_warning_while_the_rule_applies(pw):
    # §2 (QI-2016: avoid narcotics; the wider list from a secondary source): opioids, NSAIDs and antidiarrhoeals
    # can precipitate colonic dilatation. On IV steroids an order of morphine (by code) or loperamide (by a brand
    # name in the text) is a warning citing the rule; after colectomy the advice no longer applies
    case = to_rescue()
    on_steroids = _session(pw, {"patient": case["patient"], "events": case["events"][:1]})
    (card,) = _valid(order_cards(pw, on_steroids, [_order({"coding": [MORPHINE]}, mg=10, per_day=4)]))
    assert _ext(card)["kind"] == "order-avoid" and card["indicator"] == "warning"
    assert _ext(card)["rule"] == "avoid_drugs" and "Avoid opioids" in card["summary"]
    assert "QI-2016" in _ext(card)["evidence"]["sources"]
    (card,) = _valid(order_cards(pw, on_steroids, [_order({"text": "Imodium 2 mg after each loose stool"})]))
    assert _ext(card)["kind"] == "order-avoid"
    # the medicine in a contained Medication that the order references, as some EHRs send it
    referenced = _order({"coding": [MORPHINE]}, mg=10, per_day=4)
    referenced["contained"] = [{"resourceType": "Medication", "id": "med1",
                                "code": referenced.pop("medicationCodeableConcept")}]
    referenced["medicationReference"] = {"reference": "#med1"}
    (card,) = _valid(order_cards(pw, on_steroids, [referenced]))
    assert _ext(card)["kind"] == "order-avoid" and "Avoid opioids" in card["summary"]
    after = _session(pw, rescue("colectomy"))
    assert order_cards(pw, after, [_order({"coding": [MORPHINE]}, mg=10, per_day=4)]) == []


def test_iv_vancomycin_for_c_difficile_is_a_route_warning(pw):
    # §2: C. difficile is treated with oral vancomycin 125 mg four times daily (IV vancomycin does not reach the
    # colon): the oral course gives no card, the IV route is flagged
    session = _session(pw, to_rescue())
    session.observe({"day": 3, "cdiff_result": "positive"})
    assert order_cards(pw, session, [_order({"coding": [VANCOMYCIN]}, mg=125, per_day=4, route=ORAL)]) == []
    (card,) = _valid(order_cards(pw, session, [_order({"coding": [VANCOMYCIN]}, mg=1000, per_day=2, route=IV)]))
    assert _ext(card)["kind"] == "order-route" and "oral" in card["summary"]


def test_an_order_card_names_every_reason_for_the_status_and_only_those(pw):
    # an exclusion for two reasons (renal impairment, §5.4/D13; current malignancy, GastroTrain) names both in the
    # summary; a caution (C. difficile positive, D4) names its own reason, and the option's general cons are listed
    # apart in the detail, not as reasons for the caution
    session = _session(pw, to_rescue(malignancy_current=True))
    session.observe({"day": 3, "creatinine_umol_l": 150})
    (card,) = _valid(order_cards(pw, session, [_order({"coding": [TACROLIMUS]})]))
    assert card["indicator"] == "critical"
    assert "Creatinine 150" in card["summary"] and "malignancy" in card["summary"]
    cdiff = _session(pw, to_rescue())
    cdiff.observe({"day": 3, "cdiff_result": "positive"})
    (card,) = _valid(order_cards(pw, cdiff, [_order({"coding": [TACROLIMUS]})]))
    assert card["summary"].startswith("Caution with tacrolimus: C. difficile positive")
    assert "- Reason: C. difficile positive" in card["detail"]
    assert "- Also against it in general: Hypomagnesaemia" in card["detail"]
    assert "- Reason: Hypomagnesaemia" not in card["detail"]


def test_the_intensified_infliximab_dose_the_pathway_names_is_a_warning_not_a_dose_error(pw):
    # §5.3, §11.7: with low albumin or a very high CRP a specialist may choose 10 mg/kg (expert practice,
    # unverified): the pathway names it, so an order of it is a warning naming the regimen, with the standard
    # 5 mg/kg offered; it is never a one-click order; without that advice 10 mg/kg stays a critical 2x dose
    low_albumin = _session(pw, rescue("infliximab", {"day": 4, "albumin_g_l": 24}))
    (card,) = _valid(order_cards(pw, low_albumin, [_order({"coding": [INFLIXIMAB]}, mg=700, per_day=None, route=IV)]))
    assert _ext(card)["kind"] == "order-dose-alternative" and card["indicator"] == "warning"
    assert "specialist" in card["summary"] and "350 mg" in card["summary"]
    assert card["suggestions"][0]["actions"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0][
        "doseQuantity"]["value"] == 350
    view = _valid(patient_view_cards(pw, low_albumin))
    intensified = [c for c in view if _ext(c)["rule"] == "ifx_accelerated_consideration"
                   and _ext(c).get("medication", {}).get("alternative")]
    assert intensified and all("suggestions" not in c for c in intensified)
    assert order_cards(pw, low_albumin, [_order({"coding": [INFLIXIMAB]}, mg=350, per_day=None, route=IV)]) == []
    normal = _session(pw, rescue("infliximab", {"day": 4, "albumin_g_l": 35}))
    (card,) = _valid(order_cards(pw, normal, [_order({"coding": [INFLIXIMAB]}, mg=700, per_day=None, route=IV)]))
    assert _ext(card)["kind"] == "order-dose" and card["indicator"] == "critical"
    # at the rescue decision, before infliximab is recorded, the dose it would get is compared the same way
    selecting = _session(pw, to_rescue())
    selecting.observe({"day": 3, "albumin_g_l": 24})
    (card,) = _valid(order_cards(pw, selecting, [_order({"coding": [INFLIXIMAB]}, mg=700, per_day=None, route=IV)]))
    assert _ext(card)["kind"] == "order-dose-alternative"


def test_a_long_alert_s_card_summary_keeps_its_action_and_the_detail_keeps_the_whole_text(pw):
    # D18: a toxic tacrolimus trough (25 ng/mL, above 20): withhold the next doses, recheck in 24 h, then restart at
    # a lower dose. Cut at 139 characters the card stopped at "then…" and lost the restart at a lower dose.
    session = _session(pw, rescue("tacrolimus", {"day": 6, "tacrolimus_trough_ng_ml": 25, "creatinine_umol_l": 75,
                                                 "tacrolimus_daily_dose_mg": 4}))
    alert = next(a for a in session.result()["alerts"] if a["rule"] == "tac_trough_toxic")
    assert len(alert["text"]) > SUMMARY_MAX and "summary" in alert
    cards = _valid(patient_view_cards(pw, session))
    card = next(c for c in cards if _ext(c)["rule"] == "tac_trough_toxic")
    assert card["summary"] == alert["summary"] and card["summary"].endswith("restart at a lower dose")
    assert "withhold tacrolimus" in card["summary"] and "…" not in card["summary"]
    assert "recheck the trough and creatinine in 24 hours, then restart at a lower dose" in card["detail"]


def test_every_card_summary_of_a_whole_course_ends_whole_unless_the_text_is_generated(pw):
    """Only texts the pathway composes (an overdue alert's list, a unit doubt, a decision not acted on) may still be
    cut; every rule's own text fits or has a summary (pathway check PW617)."""
    for agent in ("tacrolimus", "ciclosporin", "infliximab", "colectomy"):
        case = rescue(agent, {"day": 6, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 85})
        session = pw.start(case["patient"])
        for event in case["events"]:
            session.observe(event)
            for card in _valid(patient_view_cards(pw, session)):
                rule = str(_ext(card).get("rule", ""))
                if card["summary"].endswith("…") and _ext(card)["kind"] in ("alert", "recommendation", "proposal"):
                    assert rule.split(".")[0] in ("overdue", "input", "decision"), (rule, card["summary"])
