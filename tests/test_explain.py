"""`pathway explain`: why a rule fired or not, from what the session saw, and which data would
change the decision (checked by running the changed case through the engine)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from cases import ADMIT, patient, to_rescue
from conftest import ROOT

from pathway.analysis.explain import explain, explain_text
from pathway.cli.main import main
from pathway.core.errors import InputError

DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"

# Day 3: no index positive, no complete response yet -> the patient stays on IV steroids.
WAITING = {"patient": patient(id="p-wait"),
           "events": [dict(ADMIT, albumin_g_l=35),
                      {"day": 3, "stool_freq_24h": 5, "visible_blood": True, "crp_mg_l": 20, "albumin_g_l": 35}]}


def _rule(doc: dict, rule_id: str) -> dict:
    return next(r for r in doc["rules"] if r["rule"] == rule_id)


def _leaves(node: dict) -> list[dict]:
    if node["kind"] == "test":
        return [node]
    return [leaf for item in node.get("items", []) for leaf in _leaves(item)]


def test_final_state_explains_the_move_that_brought_the_patient_there(pw):
    doc = explain(pw, yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    # a responder stays on the pathway until discharge: what could still move them is explained too
    assert doc["state"] == "maintenance_thiopurine" and doc["state_kind"] == "active"
    assert {"discharge", "deterioration_after_rescue_response", "perforation_or_massive_bleed"} <= {
        r["rule"] for r in doc["rules"]}
    arrived = doc["arrived_by"]
    assert arrived["rule"] == "tac_response" and arrived["outcome"] == "fired"
    assert arrived["took"] == {"from": "rescue_tacrolimus", "to": "maintenance_thiopurine"}
    (due,) = _leaves(arrived["due"])
    assert (due["field"], due["op"], due["param"], due["value"], due["result"]) == (
        "days_in_state", "gte", "tac_response_day", 7, True)
    assert due["saw"] == arrived["evaluation"]["facts"]["days_in_state"] == 7
    assert {(leaf["field"], leaf["saw"]) for leaf in _leaves(arrived["when"])} >= {("rescue_response", True)}


def test_why_not_names_the_first_failed_clause_with_value_and_threshold(pw):
    doc = explain(pw, WAITING)
    assert doc["state"] == "iv_steroids" and doc["evaluation"]["day"] == 3
    failure = _rule(doc, "steroid_failure_day3")
    assert failure["outcome"] == "condition_false"
    assert failure["failed"]["part"] == "when"
    assert (failure["failed"]["field"], failure["failed"]["saw"]) == ("oxford_high_risk", False)
    final = _rule(doc, "incomplete_response_final_day")
    assert final["outcome"] == "not_due"
    failed = final["failed"]
    assert (failed["field"], failed["op"], failed["value"], failed["saw"]) == ("days_in_state", "gte", 7, 3)
    assert final["failed"]["param"] == "final_steroid_day"
    assert {"field": "day", "was": 3, "value": 7, "branch": "then", "to": "rescue_selection"} in final["would_fire_if"]
    response = _rule(doc, "steroid_response_day3")
    assert (response["failed"]["field"], response["failed"]["saw"]) == ("complete_response", False)


def test_data_changes_really_change_the_decision(pw):
    """Every change that is not about time is replayed through the engine: the patient moves as explained."""
    doc = explain(pw, WAITING)
    changes = [c for c in doc["changes"] if c["field"] != "day" and isinstance(c["decision"], dict)]
    fields = {c["field"] for c in changes}
    assert {"stool_freq_24h", "crp_mg_l", "clinical_deterioration"} <= fields
    for change in changes:
        case = copy.deepcopy(WAITING)
        case["events"][-1][change["field"]] = change["value"]
        result = pw.run_case(case)
        assert result["state"] == change["decision"]["to"], change
        assert any(t.get("rule") == change["decision"]["rule"] and "to" in t for t in result["trace"]), change
    crp = next(c for c in changes if c["field"] == "crp_mg_l")
    assert 20 < crp["value"] < 30  # the nearest value found by bisection, not a far boundary
    smaller = copy.deepcopy(WAITING)
    smaller["events"][-1]["crp_mg_l"] = round(crp["value"] - 0.1, 1)
    assert pw.run_case(smaller)["state"] == "iv_steroids"  # just below it the decision stays


def test_explains_why_the_chosen_agent_does_not_move_the_patient(pw):
    case = to_rescue(malignancy_current=True)
    case["events"].append({"day": 3, "rescue_choice": "tacrolimus"})
    doc = explain(pw, case)
    assert doc["state"] == "rescue_selection"
    choose = _rule(doc, "choose_tacrolimus")
    assert choose["outcome"] == "condition_false"
    assert (choose["failed"]["field"], choose["failed"]["saw"]) == ("tacrolimus_excluded", True)


def test_rule_option_explains_an_earlier_decision(pw):
    doc = explain(pw, WAITING, rule="tw_asuc_confirmed")
    (item,) = doc["rules"]
    assert doc["evaluation"]["state"] == "suspected_asuc" and item["outcome"] == "fired"
    assert item["took"] == {"from": "suspected_asuc", "to": "iv_steroids"}
    seen = {leaf["field"]: (leaf["saw"], leaf["result"]) for leaf in _leaves(item["when"])}
    assert seen["pulse_bpm"] == (100, True) and seen["temp_c"] == (37.4, False) and seen["esr_mm_h"] == (None, None)
    with pytest.raises(InputError, match="unknown rule 'nope'"):
        explain(pw, WAITING, rule="nope")
    with pytest.raises(InputError, match="was never evaluated"):
        explain(pw, WAITING, rule="tac_response")


def test_explain_reads_kept_evaluations_without_running_the_engine_and_a_replay_gives_the_same(pw, monkeypatch):
    """A session keeps no evaluation records unless asked (Session.keep_evaluations): explaining it makes
    them again from its events; one that keeps them all is explained without running the engine."""
    session = pw.start(WAITING["patient"])
    kept = pw.start(WAITING["patient"])
    kept.keep_evaluations("all")
    for event in WAITING["events"]:
        session.observe(event)
        kept.observe(event)
    expected = explain(pw, session)
    session = kept

    def refuse(*args, **kwargs):
        raise AssertionError("the engine was run again")

    monkeypatch.setattr(pw.engine, "evaluate", refuse)
    assert explain(pw, session) == expected
    assert expected["notes"] == []  # the static evaluator derived what the engine derived


def test_text_rendering(pw):
    text = explain_text(explain(pw, WAITING))
    assert "state: iv_steroids (IV corticosteroids), active" in text
    assert "first failed (due): from day 7 of the current state: saw day 3" in text
    assert "[no]  Oxford index positive: saw no" in text
    assert "would fire with day = 7 (was 3) -> rescue_selection" in text
    assert "day = 7 (was 3): -> rescue_selection by incomplete_response_final_day" in text


def test_command_text_and_json(tmp_path: Path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps(WAITING), encoding="utf-8")
    assert main(["explain", str(case)]) == 0
    assert "rules that could leave iv_steroids:" in capsys.readouterr().out
    assert main(["explain", str(case), "--format", "json", "--rule", "oxford_index"]) == 0
    first = capsys.readouterr().out
    doc = json.loads(first)
    assert doc["rules"][0]["rule"] == "oxford_index" and doc["rules"][0]["branch"] == "else"
    assert main(["explain", str(case), "--format", "json", "--rule", "oxford_index"]) == 0
    assert capsys.readouterr().out == first  # deterministic
    assert main(["explain", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("patient: {id: x}\nevents:\n  - {day: 0, pulse_bpm: -5}\n", encoding="utf-8")
    assert main(["explain", str(bad)]) == 2
    assert "bad.yaml:3:" in capsys.readouterr().err


def test_day3_rescue_choice_and_rescue_response_decisions_fired_and_not(pw):
    """The three decisions auditors ask about, each explained when it fired and when it did not."""
    from cases import NO_RESPONSE, rescue

    demo = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    day3 = _rule(explain(pw, demo, rule="steroid_failure_day3"), "steroid_failure_day3")
    assert day3["outcome"] == "fired" and day3["took"] == {"from": "iv_steroids", "to": "rescue_selection"}
    assert ("oxford_high_risk", True) in {(leaf["field"], leaf["saw"]) for leaf in _leaves(day3["when"])}
    choice = _rule(explain(pw, demo, rule="choose_tacrolimus"), "choose_tacrolimus")
    assert choice["outcome"] == "fired"
    assert {("rescue_choice", "tacrolimus"), ("tacrolimus_excluded", False)} <= {
        (leaf["field"], leaf["saw"]) for leaf in _leaves(choice["when"])}

    waiting = explain(pw, rescue("tacrolimus", {"day": 10, **NO_RESPONSE}))
    assert waiting["state"] == "rescue_tacrolimus"
    response = _rule(waiting, "tac_response")
    assert response["outcome"] == "condition_false"
    assert (response["failed"]["field"], response["failed"]["saw"]) == ("rescue_response", False)
    no_response = _rule(waiting, "tac_no_response")
    assert no_response["outcome"] == "not_due"
    assert (no_response["failed"]["field"], no_response["failed"]["saw"], no_response["failed"]["value"]) == (
        "days_in_state", 7, 14)
