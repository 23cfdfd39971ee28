"""The built-in ``proposed_<state>``: true while a rule of the same evaluation proposes the move.

The session evaluates a state's rules, and when one of them proposes a move that a rule of the state reads, evaluates
them again with the field set (session._with_proposals): the next infliximab infusion stands aside while colectomy is
proposed, whichever rule proposes it, and a rule says so.
"""

from __future__ import annotations

import json

import pytest

from pathway.analysis.evaluate import evaluate_state

PATIENT = {"id": "p1", "weight_kg": 70, "age_years": 40, "prior_anti_tnf_failure": False,
           "prior_thiopurine_failure": False, "latent_tb": "negative", "hbv_status": "negative", "nyha_class": 0,
           "tpmt_status": "normal", "hiv_uncontrolled": False, "demyelinating_disease": False,
           "malignancy_current": False, "immunodeficiency": False}
ON_INFLIXIMAB = [
    {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60,
     "albumin_g_l": 32, "uceis": 5},
    {"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80, "albumin_g_l": 30},
    {"day": 3, "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70,
     "active_serious_infection": False, "bp_uncontrolled": False, "cdiff_result": "negative",
     "cmv_biopsy_result": "negative"},
    {"day": 3, "rescue_choice": "infliximab"},
    {"day": 9, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 84},
]
NO_RESPONSE_DAY_7 = {"day": 10, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 85}
HOLD = "ifx_infusions_while_colectomy_proposed"


def _session(pw, events):
    s = pw.start(PATIENT)
    s.keep_evaluations("all")
    for event in events:
        s.observe(event)
    return s


def _rules(items):
    return sorted({item["rule"] for item in items})


def test_the_field_is_false_until_a_rule_proposes_and_true_in_the_evaluation_that_proposes(pw):
    s = _session(pw, ON_INFLIXIMAB)
    before = s.last_event_evaluations()
    assert [e["facts"]["proposed_colectomy"] for e in before] == [False]
    assert "ifx_induction" in _rules(s.result()["recommendations"])
    r = s.observe(NO_RESPONSE_DAY_7)
    (last,) = s.last_event_evaluations()
    assert last["state"] == "rescue_infliximab" and last["facts"]["proposed_colectomy"] is True
    assert [p["rule"] for p in r["proposals"]] == ["ifx_no_response"]
    recs = _rules(r["recommendations"])
    assert HOLD in recs and not {"ifx_induction", "ifx_accelerated_consideration", "ifx_monitoring"} & set(recs)
    # one evaluation in the trace: the second pass replaces the first (each rule once, the proposal included)
    fired = [t["rule"] for t in r["trace"] if t["event"] == len(ON_INFLIXIMAB)]
    assert fired.count("ifx_no_response") == 1 and fired.count(HOLD) == 1 and "ifx_induction" not in fired


def test_the_python_evaluator_gives_the_same_rules_on_the_recorded_facts(pw):
    s = _session(pw, [*ON_INFLIXIMAB, NO_RESPONSE_DAY_7])
    (last,) = s.last_event_evaluations()
    check = evaluate_state(pw.compiled, last["state"], {k: v for k, v in last["facts"].items() if k != "state"},
                           frozen=last["frozen"])
    fired = {t["rule"]: t["branch"] for t in s.result()["trace"] if t["event"] == len(ON_INFLIXIMAB)
             and t["branch"] != "missing"}
    assert {k: v for k, v in check.fired.items()} == fired


def test_a_restored_session_gives_the_same_result(pw):
    s = _session(pw, [*ON_INFLIXIMAB, NO_RESPONSE_DAY_7])
    again = pw.restore(json.loads(json.dumps(s.dump())))
    assert json.dumps(again.result(), sort_keys=True) == json.dumps(s.result(), sort_keys=True)


def test_the_infusion_returns_when_the_proposal_goes(pw):
    """Maintenance after a response: a deterioration proposes colectomy and holds the week-2 infusion; recorded as
    over (no decision taken), nothing is proposed and the infusion is advised again."""
    responded = [*ON_INFLIXIMAB[:4], {"day": 5, "stool_freq_24h": 3, "visible_blood": False, "crp_mg_l": 20},
                 {"day": 6, "stool_freq_24h": 2, "visible_blood": False, "crp_mg_l": 12}]
    s = _session(pw, responded)
    assert s.result()["state"] == "maintenance_infliximab"
    r = s.observe({"day": 9, "clinical_deterioration": True})
    assert HOLD in _rules(r["recommendations"]) and "infliximab_maintenance" not in _rules(r["recommendations"])
    r = s.observe({"day": 11, "clinical_deterioration": False})
    assert not r["proposals"] and HOLD not in _rules(r["recommendations"])
    (dose,) = [x for x in r["recommendations"] if x["rule"] == "infliximab_maintenance"]
    assert "next infusion due on day 17" in dose["text"]


def test_the_rules_run_again_only_when_a_proposal_is_made(pw, monkeypatch):
    """No proposal: one evaluation of the state per event; a proposal of colectomy: a second one with it set."""
    calls: list[tuple[str, bool]] = []
    original = pw.engine.evaluate

    def counting(state, snapshot, frozen=None):
        calls.append((state, snapshot.get("proposed_colectomy")))
        return original(state, snapshot, frozen)

    s = _session(pw, ON_INFLIXIMAB)
    monkeypatch.setattr(pw.engine, "evaluate", counting)
    s.observe({"day": 9.5, "stool_freq_24h": 9, "visible_blood": True})
    assert calls == [("rescue_infliximab", False)]
    calls.clear()
    s.observe(NO_RESPONSE_DAY_7)
    assert calls == [("rescue_infliximab", False), ("rescue_infliximab", True)]
    assert "rescue_ciclosporin" not in pw.reads_proposals  # its proposal is read by no rule of its own


@pytest.mark.parametrize("state", ["rescue_infliximab", "maintenance_infliximab"])
def test_the_states_whose_rules_read_a_proposal(pw, state):
    assert state in pw.reads_proposals
    assert pw.proposals_read == {"colectomy": "proposed_colectomy"}
