"""Decisions are recorded, not assumed: a clinical choice is a proposal until the team records it; a
decision counts only where it is due; a decision that cannot be acted on is said aloud."""

from __future__ import annotations

import json

import pytest
from cases import ADMIT, DAY3_FAIL, NO_RESPONSE, RESCUE_LABS, patient, rescue

from pathway import InputError


def _dump(session) -> str:
    return json.dumps(session.dump(), sort_keys=True)


def test_a_choice_recorded_before_it_is_due_is_refused_and_changes_nothing(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    before = _dump(s)
    with pytest.raises(InputError) as info:
        s.observe({"day": 2, "rescue_choice": "infliximab"})
    assert info.value.codes == ["PW407"]
    assert "rescue_choice" in str(info.value) and "rescue_selection" in str(info.value)
    assert _dump(s) == before


def test_a_choice_in_the_event_that_reaches_its_state_is_acted_on(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({**DAY3_FAIL})
    r = s.observe({**RESCUE_LABS, "day": 3, "rescue_choice": "ciclosporin"})
    assert r["state"] == "rescue_ciclosporin"
    # the same record, failure data and choice together: the choice counts once the patient is there
    s2 = pw.start(patient())
    s2.observe(dict(ADMIT))
    r2 = s2.observe({**DAY3_FAIL, **{k: v for k, v in RESCUE_LABS.items() if k != "day"}, "rescue_choice": "ciclosporin"})
    assert r2["path"][-2:] == ["rescue_selection", "rescue_ciclosporin"]


def test_a_choice_that_cannot_be_acted_on_says_why(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe(dict(DAY3_FAIL))
    labs = {k: v for k, v in RESCUE_LABS.items() if k != "bp_uncontrolled"}
    s.observe(labs)
    r = s.observe({"day": 4, "rescue_choice": "ciclosporin"})
    assert r["state"] == "rescue_selection"
    alert = next(a for a in r["alerts"] if a["rule"] == "decision.rescue_choice")
    assert alert["level"] == "critical"
    assert "ciclosporin" in alert["text"] and "bp_uncontrolled" in alert["text"]
    # still said on the next event while the choice stands and nothing has changed
    r = s.observe({"day": 4, "stool_freq_24h": 9})
    assert any(a["rule"] == "decision.rescue_choice" for a in r["alerts"])
    # once BP is recorded the choice is acted on
    r = s.observe({"day": 4, "bp_uncontrolled": False})
    assert r["state"] == "rescue_ciclosporin"
    assert not any(a["rule"].startswith("decision.") for a in r["alerts"])


def test_a_contraindicated_choice_is_said_once_by_its_own_rule(pw):
    s = pw.start(patient())
    for event in (ADMIT, DAY3_FAIL, {**RESCUE_LABS, "creatinine_umol_l": 190}):
        s.observe(dict(event))
    r = s.observe({"day": 3, "rescue_choice": "ciclosporin"})
    rules = [a["rule"] for a in r["alerts"]]
    assert "chosen_agent_contraindicated" in rules and "decision.rescue_choice" not in rules


def test_no_response_is_a_proposal_that_a_recorded_decision_enacts(pw):
    r = pw.run_case(rescue("infliximab", {"day": 10, **NO_RESPONSE}))
    assert r["state"] == "rescue_infliximab"
    proposal = next(p for p in r["proposals"] if p["rule"] == "ifx_no_response")
    assert proposal["to"] == "colectomy" and proposal["record"] == {"decision": "colectomy"}
    assert proposal["evidence"]["sources"]
    r = pw.run_case(rescue("infliximab", {"day": 10, **NO_RESPONSE}, {"day": 10, "decision": "colectomy"}))
    assert r["state"] == "colectomy" and r["trace"][-1]["rule"] != "ifx_no_response"
    assert [t["rule"] for t in r["trace"] if "to" in t][-1] == "decided_colectomy"


def test_a_choice_does_not_carry_over_into_a_later_state(pw):
    # rescue_choice ciclosporin moved the patient; in rescue_ciclosporin it no longer counts, so a
    # rule there cannot be triggered by it and no "not acted on" alert appears
    r = pw.run_case(rescue("ciclosporin", {"day": 5, "stool_freq_24h": 5, "visible_blood": True}))
    assert r["state"] == "rescue_ciclosporin"
    assert not any(a["rule"].startswith("decision.") for a in r["alerts"])


def test_a_session_dumped_before_decisions_were_tracked_still_restores(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    doc = s.dump()
    del doc["state_event"], doc["recorded_event"]
    restored = pw.restore(doc)
    assert restored.observe(dict(DAY3_FAIL))["state"] == "rescue_selection"


def test_the_reasons_a_condition_holds_are_the_tests_it_holds_through():
    # any(all(untreated recorded, latent TB negative), active infection): true through the infection alone;
    # "latent TB negative" holds but its 'all' does not, so it is no reason
    from pathway.definition import conditions as C
    from pathway.runtime.decisions import _false_tests, _true_tests

    untreated = C.Cmp("latent_tb_untreated_recorded", "eq", True)
    negative = C.Cmp("latent_tb", "eq", "negative")
    infection = C.Cmp("active_serious_infection", "eq", True)
    cond = C.Or((C.And((untreated, negative)), infection))
    facts = {"latent_tb_untreated_recorded": False, "latent_tb": "negative", "active_serious_infection": True}
    assert _true_tests(cond, facts) == [infection]
    assert _true_tests(cond, {**facts, "latent_tb_untreated_recorded": True}) == [untreated, negative, infection]
    assert _true_tests(cond, {**facts, "active_serious_infection": False}) == []
    assert _false_tests(cond, {**facts, "active_serious_infection": False}) == [untreated, infection]


def test_a_refused_decision_names_the_states_by_title_and_counts_the_rest(pw):
    from pathway.runtime.decisions import _states_named

    s = pw.start(patient())
    s.observe(dict(ADMIT))
    with pytest.raises(InputError) as info:
        s.observe({"day": 2, "rescue_choice": "infliximab"})
    message = info.value.diagnostics[0].message
    assert "taken in 'Rescue therapy selection' (rescue_selection); the patient is in 'IV corticosteroids' (iv_steroids)" \
        in message
    taking = pw.definition.decisions["decision"]
    named = _states_named(pw, taking)
    assert len(taking) == 11 and named.endswith("and 7 other states") and named.count(" (") == 4


def test_the_sequential_wait_reads_every_value_the_eligibility_of_its_agent_requires(pw):
    """sequential_choice_waiting holds the default colectomy only while the chosen agent's eligibility is not
    known (second_agent_eligibility_open); an exclusion cannot be tested for being unknown, so the rule deriving
    it names the eligibility rules' required values. A value added to an eligibility rule and not there would let
    a decision waiting for it be refused instead of held: this keeps the lists equal."""
    from pathway.definition import conditions as C

    rule = pw.rule("second_agent_eligibility")
    absent = {c.field for c in C.fields_of(rule.when) if c.op == "present" and c.value is False}
    for eligibility in ("infliximab_eligibility", "ciclosporin_eligibility"):
        required = set(pw.rule(eligibility).requires)
        assert required and required <= absent, (eligibility, sorted(required - absent))


def test_a_refusal_names_what_settled_an_exclusion_only_where_the_exclusion_is_the_reason(pw):
    # Sequential ciclosporin recorded on infliximab day 2 with uncontrolled blood pressure: its rule is not due until
    # the response is judged (rescue_response_day). That is the reason given; the exclusion (a reason of "does not hold")
    # is not appended to it. On the day it is due, the exclusion is the reason, with the value that settled it.
    s = pw.start(patient(specialist_centre=True))
    for event in rescue("infliximab")["events"]:
        s.observe(event)
    s.observe({"day": 5, "bp_uncontrolled": True})
    r = s.observe({"day": 5, "sequential_rescue_choice": "ciclosporin"})
    (alert,) = [a for a in r["alerts"] if a["rule"] == "decision.sequential_rescue_choice"]
    assert "is not due yet" in alert["text"] and "does not hold" not in alert["text"]
    assert "blood pressure" not in alert["text"].lower().replace("sequential rescue with ciclosporin", "")
    labs = {k: v for k, v in RESCUE_LABS.items() if k != "day"}
    s.observe({"day": 10, **NO_RESPONSE, **labs, "albumin_g_l": 30, "bp_uncontrolled": True})
    r = s.observe({"day": 10, "sequential_rescue_choice": "ciclosporin"})
    (alert,) = [a for a in r["alerts"] if a["rule"] == "decision.sequential_rescue_choice"]
    assert "does not hold" in alert["text"] and "ciclosporin_excluded is true" in alert["text"]
    assert "(" in alert["text"].split("ciclosporin_excluded is true", 1)[1]  # what settled the exclusion
