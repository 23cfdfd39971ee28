"""The event feed: ids, duplicates, late results placed at their time, amendments and retractions.

The clinical expectations come from the evidence (asuc-evidence §4, the Oxford/Travis index: on day
3 of IV steroids, more than 8 stools, or 3 to 8 stools with a CRP above 45 mg/L, predicts colectomy
in about 85%; §12, a positive day-3 index without a complete response is steroid failure, and rescue
therapy or colectomy is discussed that day), not from what the engine printed.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from cases import ADMIT, patient

from pathway import InputError, SessionError

#: day 3 without a CRP: 6 stools, with blood (no complete response); the Oxford index needs the CRP
DAY3_NO_CRP = {"id": "obs-d3", "day": 3, "stool_freq_24h": 6, "visible_blood": True}
#: the day-3 CRP, taken on day 3, reported after the day-4 ward round
LATE_CRP = {"id": "lab-crp-d3", "day": 3, "crp_mg_l": 60}
DAY4 = {"id": "obs-d4", "day": 4, "pulse_bpm": 88}


def _course(pw: Any) -> Any:
    s = pw.start(patient())
    s.observe(dict(ADMIT, id="adm"))
    s.observe(dict(DAY3_NO_CRP))
    s.observe(dict(DAY4))
    return s


def _dumped(session: Any) -> str:
    return json.dumps(session.dump(), sort_keys=True)


def _refused(session: Any, attempt: Any) -> InputError:
    before = _dumped(session)
    with pytest.raises(InputError) as info:
        attempt()
    assert _dumped(session) == before
    return info.value


def test_a_late_day3_crp_is_placed_on_day3_and_the_oxford_index_acts_on_it(pw):
    s = _course(pw)
    # without the CRP the day-3 assessment cannot tell 3-8 stools from steroid failure
    assert s.state == "iv_steroids"
    r = s.observe(dict(LATE_CRP))
    # 6 stools with CRP 60 > 45 on day 3: Oxford positive, no complete response -> steroid failure
    assert r["state"] == "rescue_selection"
    assert r["path"] == ["suspected_asuc", "iv_steroids", "rescue_selection"]
    # now (day 4) the rescue discussion is due; the day-3 move is in the trace
    assert any(x["rule"] == "rescue_discussion" for x in r["recommendations"])
    assert any(t["rule"] == "steroid_failure_day3" and t.get("to") == "rescue_selection" and t["day"] == 3
               for t in r["trace"])
    ch = r["changes"]
    assert (ch["operation"], ch["id"], ch["event"], ch["reevaluated_from"]) == ("insert", "lab-crp-d3", 2, 2)
    assert {"section": "state", "change": "changed", "from": "iv_steroids", "to": "rescue_selection"} in ch["items"]
    assert any(x["section"] == "recommendations" and x["change"] == "appeared" and x["rule"] == "rescue_discussion"
               for x in ch["items"])
    doc = s.dump()
    assert [e.get("id") for e in doc["events"]] == ["adm", "obs-d3", "lab-crp-d3", "obs-d4"]
    assert doc["revisions"] == [{"op": "insert", "id": "lab-crp-d3", "event": 2, "day": 3, "latest_day": 4}]


def test_the_course_with_a_late_result_equals_the_course_in_time_order(pw):
    late = _course(pw)
    late.observe(dict(LATE_CRP))
    in_order = pw.start(patient())
    for event in (dict(ADMIT, id="adm"), DAY3_NO_CRP, LATE_CRP, DAY4):
        in_order.observe(dict(event))
    assert json.dumps(late.result(), sort_keys=True) == json.dumps(in_order.result(), sort_keys=True)


def test_the_same_event_twice_is_a_no_op_and_the_same_id_with_other_values_is_refused(pw):
    s = _course(pw)
    before = _dumped(s)
    r = s.observe(dict(DAY3_NO_CRP))
    assert r["changes"] == {"operation": "duplicate", "id": "obs-d3", "event": 1, "items": []}
    assert _dumped(s) == before
    err = _refused(s, lambda: s.observe(dict(DAY3_NO_CRP, stool_freq_24h=7)))
    assert [d.code for d in err.diagnostics] == ["PW413"]
    assert err.diagnostics[0].file == "events[3].id" and "events[1]" in err.diagnostics[0].message


def test_an_amended_result_undoes_what_the_wrong_value_did_and_says_so(pw):
    s = _course(pw)
    s.observe(dict(LATE_CRP))
    assert s.state == "rescue_selection"
    # the CRP was 6, not 60 (a transcription error): 6 stools with CRP 6 is Oxford negative, and the
    # Lindgren index (stools + 0.14 x CRP = 6.8) is below 8: no steroid failure on day 3
    r = s.amend("lab-crp-d3", {"day": 3, "crp_mg_l": 6})
    assert r["state"] == "iv_steroids"
    assert not any(x["rule"] == "rescue_discussion" for x in r["recommendations"])
    items = r["changes"]["items"]
    assert r["changes"]["operation"] == "amend"
    assert {"section": "state", "change": "changed", "from": "rescue_selection", "to": "iv_steroids"} in items
    assert any(x["section"] == "path" and x["change"] == "rewritten" for x in items)
    assert any(x["section"] == "recommendations" and x["change"] == "went" and x["rule"] == "rescue_discussion"
               for x in items)
    doc = s.dump()
    assert doc["events"][2]["crp_mg_l"] == 6 and doc["events"][2]["id"] == "lab-crp-d3"
    assert doc["revisions"][-1]["op"] == "amend" and doc["revisions"][-1]["was"]["crp_mg_l"] == 60


def test_a_retracted_event_is_withdrawn_and_kept_in_the_revisions(pw):
    s = _course(pw)
    s.observe(dict(LATE_CRP))
    r = s.retract("lab-crp-d3", reason="sample from another patient")
    assert r["state"] == "iv_steroids"
    assert r["changes"]["operation"] == "retract"
    doc = s.dump()
    assert "lab-crp-d3" not in [e.get("id") for e in doc["events"]]
    assert doc["revisions"][-1] == {"op": "retract", "id": "lab-crp-d3", "event": 2, "was": doc["revisions"][-1]["was"],
                                    "reason": "sample from another patient"}
    assert doc["revisions"][-1]["was"]["crp_mg_l"] == 60


def test_a_revision_that_strands_a_later_decision_keeps_it_unacted_and_says_so(pw):
    # day 3: 9 stools (> 8) is Oxford positive -> rescue selection; the team records infliximab on day 4
    s = pw.start(patient())
    s.observe(dict(ADMIT, id="adm"))
    s.observe({"id": "d3", "day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80})
    s.observe({"id": "choice", "day": 4, "rescue_choice": "infliximab"})
    assert s.state == "rescue_selection"  # the choice recorded (this patient's screening is not complete)
    # day 3 was entered in error: withdrawing it leaves the choice recorded while the patient was still on
    # IV steroids. The correction is applied; the choice stays in the record, not acted on, said aloud.
    r = s.retract("d3", reason="another patient's chart")
    assert r["state"] == "iv_steroids" and r["path"] == ["suspected_asuc", "iv_steroids"]
    said = [a for a in r["alerts"] if a["rule"] == "decision.rescue_choice"]
    assert len(said) == 1 and said[0]["level"] == "critical"
    assert "day 4 (rescue_choice: infliximab) was not acted on" in said[0]["text"]
    assert "'IV corticosteroids'" in said[0]["text"]
    doc = s.dump()
    assert [e.get("id") for e in doc["events"]] == ["adm", "choice"]
    assert "unacted" not in doc  # a restore replays the events, which gives the same
    restored = pw.restore(doc)
    assert restored.result() == s.result()
    # a new decision where it is not taken is still refused (PW407), and changes nothing
    before = s.dump()
    err = _refused(s, lambda: s.observe({"day": 4.5, "rescue_choice": "ciclosporin"}))
    assert [d.code for d in err.diagnostics] == ["PW407"]
    assert s.dump() == before
    # it is said for the rest of the course, after a move on too
    r = s.observe({"day": 5, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 90})
    assert r["state"] == "rescue_selection"
    assert [a["text"] for a in r["alerts"] if a["rule"] == "decision.rescue_choice"] == [said[0]["text"]]
    # a late event that records a decision where the course does not take it is a new event: refused (PW407)
    before = s.dump()
    err = _refused(s, lambda: s.observe({"day": 2, "rescue_choice": "ciclosporin"}))
    assert "PW407" in [d.code for d in err.diagnostics] and "PW415" in [d.code for d in err.diagnostics]
    assert s.dump() == before
    # so is an amendment that puts one there
    err = _refused(s, lambda: s.amend("adm", dict(ADMIT, rescue_choice="ciclosporin")))
    assert "PW407" in [d.code for d in err.diagnostics]
    assert s.dump() == before


@pytest.mark.parametrize("attempt,code", [
    (lambda s: s.amend("nope", {"day": 3, "crp_mg_l": 5}), "PW414"),
    (lambda s: s.retract("nope"), "PW414"),
    (lambda s: s.retract(None), "PW414"),
    (lambda s: s.amend("obs-d3", {"id": "other", "day": 3, "stool_freq_24h": 2}), "PW413"),
    (lambda s: s.amend("obs-d3", {"day": 3, "stool_freq_24h": -2}), "PW403"),
    (lambda s: s.retract("obs-d3", reason=["not", "text"]), "PW402"),
    (lambda s: s.observe({"id": {"a": 1}, "day": 5, "pulse_bpm": 80}), "PW402"),
    (lambda s: s.observe({"id": True, "day": 5, "pulse_bpm": 80}), "PW402"),
    (lambda s: s.observe({"id": "", "day": 5, "pulse_bpm": 80}), "PW402"),
    (lambda s: s.observe({"id": "x" * 201, "day": 5, "pulse_bpm": 80}), "PW412"),
])
def test_bad_revisions_are_refused_and_change_nothing(pw, attempt, code):
    s = _course(pw)
    err = _refused(s, lambda: attempt(s))
    assert err.diagnostics[0].code == code


def test_a_late_event_before_admission_is_refused(pw):
    s = pw.start(patient(admission_time="2026-03-02T08:00"))
    s.observe({"time": "2026-03-02T09:00", "bloody_stools_24h": 8, "pulse_bpm": 100})
    s.observe({"time": "2026-03-05T09:00", "stool_freq_24h": 4})
    err = _refused(s, lambda: s.observe({"time": "2026-03-01T09:00", "crp_mg_l": 40}))
    assert err.diagnostics[0].code == "PW405"


def _events() -> list[dict[str, Any]]:
    """A course in clinical time, each event at its own time and with an id (a feed's messages)."""
    return [
        {"id": "e0", "time": "2026-03-02T09:00", "bloody_stools_24h": 8, "pulse_bpm": 104, "temp_c": 37.9},
        {"id": "e1", "time": "2026-03-02T11:30", "crp_mg_l": 95, "hb_g_dl": 10.1, "albumin_g_l": 29},
        {"id": "e2", "time": "2026-03-03T10:00", "stool_freq_24h": 10, "bloody_stools_24h": 8},
        {"id": "e3", "time": "2026-03-04T10:00", "stool_freq_24h": 8, "bloody_stools_24h": 6, "crp_mg_l": 70},
        {"id": "e4", "time": "2026-03-05T09:30", "stool_freq_24h": 7, "visible_blood": True},
        {"id": "e5", "time": "2026-03-05T12:00", "crp_mg_l": 52, "albumin_g_l": 27},
        {"id": "e6", "time": "2026-03-05T16:00", "creatinine_umol_l": 80, "magnesium_mmol_l": 0.8,
         "cholesterol_mmol_l": 4.4},
        {"id": "e7", "time": "2026-03-06T10:00", "pulse_bpm": 92, "stool_freq_24h": 7},
    ]


def test_the_result_does_not_depend_on_the_order_events_arrive_in(pw):
    p = patient(admission_time="2026-03-02T08:00")
    reference = pw.start(copy.deepcopy(p))
    for event in _events():
        reference.observe(event)
    expected = json.dumps(reference.result(), sort_keys=True)
    expected_events = reference.dump()["events"]
    assert reference.state == "rescue_selection"  # the day-3 indices are positive (evidence §4)
    rng = random.Random(15)
    for _ in range(12):
        order = _events()
        rng.shuffle(order)
        s = pw.start(copy.deepcopy(p))
        for event in order:
            s.observe(event)
        assert s.dump()["events"] == expected_events
        assert json.dumps(s.result(), sort_keys=True) == expected
        # and a duplicate of any of them afterwards changes nothing
        assert s.observe(rng.choice(_events()))["changes"]["operation"] == "duplicate"


def test_revisions_survive_a_restore_and_cannot_be_edited(pw):
    s = _course(pw)
    s.observe(dict(LATE_CRP))
    s.amend("lab-crp-d3", {"day": 3, "crp_mg_l": 6})
    doc = json.loads(json.dumps(s.dump()))
    assert doc["format"] == 5
    restored = pw.restore(copy.deepcopy(doc))
    assert restored.dump() == s.dump()
    # the restored session carries on: the same id again is still a duplicate
    assert restored.observe(dict(DAY4))["changes"]["operation"] == "duplicate"
    doc["revisions"][1]["was"]["crp_mg_l"] = 600
    with pytest.raises(SessionError) as info:
        pw.restore(doc)
    assert info.value.diagnostics[0].code == "PW524"


def test_every_result_returned_lists_its_changes_and_an_ordinary_event_appends(pw):
    s = pw.start(patient())
    r = s.observe(dict(ADMIT))
    assert r["changes"]["operation"] == "append" and r["changes"]["id"] is None
    assert {"section": "state", "change": "changed", "from": "suspected_asuc", "to": "iv_steroids"} in r["changes"]["items"]
    assert "changes" not in s.result()  # the current result alone has no "before"
    r = s.observe({"day": 1, "pulse_bpm": 90})
    assert not any(x["section"] == "state" for x in r["changes"]["items"])


# -- a move on a recorded decision, once taken, stands -------------------------------------------------------
# A rescue agent is started the day it is chosen (asuc-evidence §5, D15: one rescue attempt, started without
# delay). A correction that arrives afterwards cannot un-give it: the course does not go back to rescue
# selection as if nothing had been started (which would ask for a second choice and restart the rescue clock);
# the move stands and the reason the rules would not take it now is said aloud (critical).

def _tacrolimus_started(pw: Any) -> Any:
    from cases import DAY3_FAIL, RESCUE_LABS
    s = pw.start(patient())
    s.observe(dict(ADMIT, id="adm"))
    s.observe(dict(DAY3_FAIL, id="d3"))
    s.observe(dict(RESCUE_LABS, day=3.5, id="labs"))
    r = s.observe({"id": "choice", "day": 4, "rescue_choice": "tacrolimus"})
    assert r["state"] == "rescue_tacrolimus"
    return s


def test_withdrawn_labs_after_a_rescue_agent_started_keep_the_agent_and_say_why(pw):
    s = _tacrolimus_started(pw)
    r = s.retract("labs", reason="another patient's bloods")
    assert r["state"] == "rescue_tacrolimus"
    assert r["path"] == ["suspected_asuc", "iv_steroids", "rescue_selection", "rescue_tacrolimus"]
    said = [a for a in r["alerts"] if a["rule"] == "decision.rescue_choice"]
    assert len(said) == 1 and said[0]["level"] == "critical"
    assert "The move stands" in said[0]["text"] and "day 4" in said[0]["text"]
    assert "cannot be decided until these are recorded: creatinine_umol_l" in said[0]["text"]
    assert not any(a["rule"] == "overdue.rescue_selection" for a in r["alerts"])
    assert [t for t in r["trace"] if t.get("to") == "rescue_tacrolimus"][-1]["rule"] == "decision.rescue_choice"
    doc = s.dump()
    assert doc["acted"] == [{"event": 2, "day": 4, "from": "rescue_selection", "to": "rescue_tacrolimus",
                             "rule": "choose_tacrolimus", "field": "rescue_choice", "value": "tacrolimus",
                             "recorded": 2}]
    restored = pw.restore(copy.deepcopy(doc))
    assert restored.result() == s.result() and restored.dump() == doc
    # still said on the next event, and a later event is evaluated in the state the patient is in
    r = s.observe({"day": 5, "stool_freq_24h": 7, "visible_blood": True, "crp_mg_l": 60})
    assert r["state"] == "rescue_tacrolimus" and any(a["rule"] == "decision.rescue_choice" for a in r["alerts"])
    # a forged move (an edited 'acted' with the old checksum) is refused
    forged = copy.deepcopy(doc)
    forged["acted"][0]["to"] = "colectomy"
    with pytest.raises(SessionError) as info:
        pw.restore(forged)
    assert info.value.diagnostics[0].code == "PW524"


def test_a_withdrawn_or_amended_decision_does_not_stand(pw):
    s = _tacrolimus_started(pw)
    r = s.retract("choice", reason="recorded for the wrong patient")
    assert r["state"] == "rescue_selection"
    assert not any(a["rule"].startswith("decision.") for a in r["alerts"])
    assert s.dump()["acted"] == []
    s = _tacrolimus_started(pw)
    r = s.amend("choice", {"day": 4, "rescue_choice": "infliximab"})
    assert r["state"] == "rescue_infliximab"  # the amended choice acts on its own, as a new one would
    assert not any(a["rule"].startswith("decision.") for a in r["alerts"])
    assert [a["to"] for a in s.dump()["acted"]] == ["rescue_infliximab"]


def test_a_decision_that_acted_later_goes_with_the_decision_withdrawn(pw):
    # the choice waits for the screening; the move is taken on the later labs event, not the choice's own
    from cases import DAY3_FAIL, RESCUE_LABS
    s = pw.start(patient())
    s.observe(dict(ADMIT, id="adm"))
    s.observe(dict(DAY3_FAIL, id="d3"))
    assert s.observe({"id": "choice", "day": 3.5, "rescue_choice": "tacrolimus"})["state"] == "rescue_selection"
    assert s.observe(dict(RESCUE_LABS, day=4, id="labs"))["state"] == "rescue_tacrolimus"
    assert s.dump()["acted"][0]["event"] == 3 and s.dump()["acted"][0]["recorded"] == 2
    r = s.retract("choice")
    assert r["state"] == "rescue_selection" and s.dump()["acted"] == []


def test_moves_taken_on_decisions_survive_the_store(tmp_path, pw):
    from pathway import SessionStore
    s = _tacrolimus_started(pw)
    db = tmp_path / "acted.db"
    with SessionStore(db) as store:
        store.save(s)
        s.retract("labs")
        store.save(s)
        s.observe({"day": 5, "pulse_bpm": 90})  # an event appended after the snapshot
        store.save(s)
    with SessionStore(db) as store:
        again = store.load(pw, s.dump()["patient"]["id"])
    assert again.dump() == s.dump() and again.result() == s.result()
    assert again.state == "rescue_tacrolimus"


def test_an_amendment_that_records_the_same_decision_keeps_its_move(pw):
    s = _tacrolimus_started(pw)
    s.retract("labs", reason="another patient's bloods")
    assert s.state == "rescue_tacrolimus"
    # a note added to the choice: the decision is unchanged, so the move taken on it still stands
    r = s.amend("choice", {"day": 4, "rescue_choice": "tacrolimus", "note": "started 14:00"})
    assert r["state"] == "rescue_tacrolimus"
    assert any(a["rule"] == "decision.rescue_choice" and "The move stands" in a["text"] for a in r["alerts"])
    assert pw.restore(s.dump()).result() == s.result()
    # another agent recorded instead: a new decision, evaluated as one (here it waits for the screening)
    r = s.amend("choice", {"day": 4, "rescue_choice": "ciclosporin"})
    assert r["state"] == "rescue_selection" and s.dump()["acted"] == []


def _sequential_ciclosporin(pw: Any) -> Any:
    """Specialist centre: infliximab from day 3.2, no response to day 11; ciclosporin bloods on day 10.5;
    sequential ciclosporin recorded on day 11 (the second agent started; asuc-evidence §6, D20)."""
    from cases import DAY3_FAIL, RESCUE_LABS
    s = pw.start(patient(specialist_centre=True))
    s.observe(dict(ADMIT, id="adm"))
    s.observe(dict(DAY3_FAIL, id="d3"))
    s.observe(dict(RESCUE_LABS, id="labs"))
    s.observe({"id": "c", "day": 3.2, "rescue_choice": "infliximab"})
    for d in range(4, 12):
        s.observe({"id": f"o{d}", "day": d, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 85, "albumin_g_l": 29})
    s.observe({"id": "bl", "day": 10.5, "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70,
               "active_serious_infection": False, "bp_uncontrolled": False})
    assert s.observe({"id": "seq", "day": 11, "sequential_rescue_choice": "ciclosporin"})["state"] == "rescue_ciclosporin"
    return s


@pytest.mark.parametrize("correction", ["late", "retract", "amend"])
def test_a_second_agent_started_stands_after_a_correction_before_it(pw, correction):
    # uncontrolled hypertension excludes ciclosporin (D13); charted late, or the bloods withdrawn or corrected,
    # after IV ciclosporin was started: the move stands and is said aloud (before: a KeyError refused them all)
    s = _sequential_ciclosporin(pw)
    if correction == "late":
        r = s.observe({"day": 10.8, "bp_uncontrolled": True})
    elif correction == "retract":
        r = s.retract("bl", reason="another patient's bloods")
    else:
        r = s.amend("bl", {"day": 10.5, "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70,
                           "active_serious_infection": False, "bp_uncontrolled": True})
    assert r["state"] == "rescue_ciclosporin"
    said = [a for a in r["alerts"] if a["rule"] == "decision.sequential_rescue_choice"]
    assert len(said) == 1 and "The move stands" in said[0]["text"]
    assert pw.restore(s.dump()).result() == s.result()


def test_withdrawing_the_event_a_move_was_taken_in_keeps_the_move(pw):
    # the choice waited for the screening; the labs that let it act are then withdrawn (another patient's):
    # ciclosporin was started on day 4 and stands, said aloud
    from cases import DAY3_FAIL, RESCUE_LABS
    s = pw.start(patient())
    s.observe(dict(ADMIT, id="adm"))
    s.observe(dict(DAY3_FAIL, id="d3"))
    s.observe({"id": "choice", "day": 3.5, "rescue_choice": "ciclosporin"})
    assert s.observe(dict(RESCUE_LABS, day=4, id="labs"))["state"] == "rescue_ciclosporin"
    r = s.retract("labs", reason="another patient's bloods")
    assert r["state"] == "rescue_ciclosporin"
    assert any(a["rule"] == "decision.rescue_choice" and "The move stands" in a["text"] for a in r["alerts"])
    assert not any(a["rule"] == "overdue.rescue_selection" for a in r["alerts"])
    assert pw.restore(s.dump()).result() == s.result()


def test_a_deterioration_charted_before_oral_steroids_already_started_is_recorded(pw):
    # oral steroids chosen on day 4 after a complete response; a deterioration charted for day 3.95 arrives
    # afterwards (§4.8: deterioration calls for rescue or colectomy). It is recorded (before: the standing move and
    # the deterioration rule moved back and forth until the engine refused the event) and acts: rescue selection.
    from cases import DAY3_FAIL, RESCUE_LABS
    s = pw.start(patient())
    for e in (dict(ADMIT), dict(DAY3_FAIL), dict(RESCUE_LABS),
              {"day": 4, "stool_freq_24h": 2, "visible_blood": False, "crp_mg_l": 20}):
        s.observe(e)
    assert s.observe({"day": 4, "rescue_choice": "oral_steroids"})["state"] == "steroid_response"
    r = s.observe({"day": 3.95, "clinical_deterioration": True})
    assert r["state"] == "rescue_selection"
    assert r["path"][-3:] == ["rescue_selection", "steroid_response", "rescue_selection"]
    assert any(a["rule"] == "decision.rescue_choice" and a["level"] == "critical" for a in r["alerts"])
    assert pw.restore(s.dump()).result() == s.result()


def test_a_decision_whose_state_an_emergency_reached_first_is_not_said_to_be_overtaken(pw):
    s = _sequential_ciclosporin(pw)
    assert s.observe({"id": "col", "day": 12, "decision": "colectomy"})["state"] == "colectomy"
    r = s.observe({"day": 11.6, "massive_haemorrhage": True})  # charted before the decision, arriving after it
    assert r["state"] == "colectomy"
    assert not any(a["rule"] == "decision.decision" for a in r["alerts"])


def test_a_note_added_to_an_overtaken_discharge_is_accepted(pw):
    from cases import RESPONSE
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 3, **RESPONSE})
    assert s.observe({"id": "dc", "day": 6, "discharge": True})["state"] == "discharged"
    r = s.observe({"day": 5, "perforation": True})
    assert r["state"] == "colectomy" and any(a["rule"] == "decision.discharge" for a in r["alerts"])
    r = s.amend("dc", {"day": 6, "discharge": True, "note": "letter sent to the GP"})  # not a new decision
    assert r["state"] == "colectomy" and any(a["rule"] == "decision.discharge" for a in r["alerts"])


def test_explain_reads_a_course_with_a_move_that_stands(pw):
    from pathway.analysis.explain import explain, explain_text
    s = _tacrolimus_started(pw)
    s.retract("labs")
    doc = explain(pw, s)
    assert doc["state"] == "rescue_tacrolimus" and "arrived_by" not in doc
    assert any("decision.rescue_choice" in note and "stands" in note for note in doc["notes"])
    assert "stands" in explain_text(doc)


# -- the order events arrived in: a confirmation confirms only what had arrived (HAZ-049) ---------------

W154 = {"id": "w4", "day": 4, "weight_kg": 154}
CONFIRMED = {"id": "ok", "day": 4.5, "weight_confirmed": True}
#: recorded after the confirmation, dated before it (placed before it in the timeline)
LATE_200 = {"id": "late", "day": 4.2, "weight_kg": 200}


def _infliximab(pw: Any, *events: dict[str, Any]) -> Any:
    """Infliximab rescue from day 3 at 70 kg (5 mg/kg: 350 mg), then ``events``."""
    from cases import rescue
    s = pw.start(patient())
    for event in [*rescue("infliximab")["events"], *events]:
        s.observe(dict(event))
    return s


def _weight(s: Any) -> tuple[bool, str | None, float | None]:
    """Whether the weight awaits confirmation, the alert's text, and the infliximab dose computed (None: none)."""
    r = s.result()
    alert = next((a["text"] for a in r["alerts"] if a["rule"] == "weight_change_to_confirm"), None)
    dose = next((x["medication"]["dose_mg"] for x in r["recommendations"] if x["rule"] == "ifx_induction"), None)
    return r["computed"]["weight_to_confirm"]["value"], alert, dose


def _held(s: Any, before: float, now: float) -> bool:
    held, alert, dose = _weight(s)
    return held is True and alert is not None and f"from {before:g} kg to {now:g} kg" in alert and dose is None


def _restores(pw: Any, s: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(s.dump()))
    restored = pw.restore(copy.deepcopy(doc))
    assert restored.dump() == doc and restored.result() == s.result()
    return doc


def test_the_order_events_arrived_in_is_kept_only_when_it_is_not_the_timeline_order(pw):
    s = _course(pw)
    assert "arrived" not in _restores(pw, s)  # in timeline order: nothing kept, the document as before
    s.observe(dict(LATE_CRP))  # placed third, arrived fourth
    assert _restores(pw, s)["arrived"] == [0, 1, 3, 2]
    s.observe({"id": "obs-d5", "day": 5, "pulse_bpm": 80})  # appended: arrived last
    assert _restores(pw, s)["arrived"] == [0, 1, 3, 2, 4]
    # an amendment records the event again: it arrives now, in its place in the timeline
    s.amend("obs-d3", dict(DAY3_NO_CRP, note="stools counted again"))
    doc = _restores(pw, s)
    assert [e["id"] for e in doc["events"]] == ["adm", "obs-d3", "lab-crp-d3", "obs-d4", "obs-d5"]
    assert doc["arrived"] == [0, 4, 2, 1, 3]
    s.retract("lab-crp-d3")  # the others keep their order
    assert _restores(pw, s)["arrived"] == [0, 3, 1, 2]
    s.retract("obs-d3")  # the rest arrived in timeline order: the key goes
    assert "arrived" not in _restores(pw, s)
    # amending the last event leaves it last: still the timeline order
    s = _course(pw)
    s.amend("obs-d4", dict(DAY4, pulse_bpm=90))
    assert "arrived" not in _restores(pw, s)
    # each evaluation made again (a replay of the recorded events) reads the same order
    s = _infliximab(pw, W154, CONFIRMED, LATE_200)
    assert s.dump()["arrived"] == [0, 1, 2, 3, 4, 6, 5]
    assert s.evaluations[-1]["computed"]["weight_to_confirm"]["value"] is True


def test_a_weight_placed_before_a_confirmation_it_arrived_after_is_not_confirmed(pw):
    # the scenario of rules/asuc/scenarios/weight-change.yaml, through observe
    s = _infliximab(pw, W154, CONFIRMED)
    assert _weight(s) == (False, None, 770)
    s.observe(dict(LATE_200))
    assert _held(s, 154, 200)  # not 1000 mg: nobody confirmed 200 kg
    retracted = pw.restore(s.dump())
    retracted.retract("late", "another patient's weight")
    assert _weight(retracted) == (False, None, 770)  # the confirmed 154 kg again
    # amending the confirmation records it again, after 200 kg was recorded: it confirms 200 kg
    s.amend("ok", dict(CONFIRMED, note="re-weighed: 200 kg"))
    assert _weight(s) == (False, None, 1000)


def test_a_confirmed_weight_amended_is_to_be_confirmed_again(pw):
    s = _infliximab(pw, W154, CONFIRMED)
    s.amend("w4", {"day": 4, "weight_kg": 200})
    assert _held(s, 70, 200)  # 200 kg was never confirmed; nor is 154 now (amended away)
    s.observe({"day": 5, "weight_confirmed": True})
    assert _weight(s) == (False, None, 1000)
    # the same weight recorded again with a note is recorded again: the confirmation before it does not count
    s = _infliximab(pw, W154, CONFIRMED)
    s.amend("w4", dict(W154, note="weighed on the ward scales"))
    assert _held(s, 70, 154)


def test_a_weight_confirmed_in_its_own_event_stays_confirmed_when_that_event_is_amended(pw):
    s = _infliximab(pw, {"id": "w4", "day": 4, "weight_kg": 154, "weight_confirmed": True})
    assert _weight(s) == (False, None, 770)
    s.amend("w4", {"day": 4, "weight_kg": 160, "weight_confirmed": True})
    assert _weight(s) == (False, None, 800)
    s.amend("w4", {"day": 4, "weight_kg": 160})  # the confirmation amended away
    assert _held(s, 70, 160)
