"""Observations on a timeline: validity windows in hours, latches, history fields, decision points
that keep their facts, rechecks of expired values, and sessions that keep all of it."""

from __future__ import annotations

import copy
import json

import pytest
from cases import ADMIT, DAY3_FAIL, RESCUE_LABS, patient

from pathway import DefinitionError, load_pathway
from pathway.definition.model import Aggregate, FieldDef, Validity, Window
from pathway.definition.timeline import day_text, is_current, validity, validity_text, window_hours
from pathway.runtime.facts import aggregate
from pathway.runtime.state import SessionState


def _facts(session):
    """What the rules saw at the last evaluation."""
    return session.evaluations[-1]["facts"]


def _field(**kw):
    return FieldDef(type="number", title="x", **kw)


# -- windows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("window,age,current", [
    (Window(hours=72), 71.99, True),
    (Window(hours=72), 72, False),                     # the end is excluded by default
    (Window(hours=72, end="inclusive"), 72, True),
    (Window(hours=72, end="inclusive"), 72.01, False),
    (Window(days=1), 23.9, True),
    (Window(days=1), 24, False),
    (Window(days=1, end="inclusive"), 24, True),
])
def test_window_boundaries(window, age, current):
    assert window.holds(age) is current


def test_validity_forms_and_the_older_spelling():
    assert validity(_field(valid_for=Validity(hours=72))).span_hours == 72
    assert window_hours(_field(valid_for_days=3)) == 72  # valid_for_days: N is {days: N}
    assert window_hours(_field(valid_for=Validity(until="superseded"))) is None
    assert window_hours(_field()) is None  # no validity: for the whole stay
    assert _field(valid_for="stay").valid_for == Validity(until="stay")  # shorthand
    assert is_current(_field(valid_for="superseded"), 10_000)
    assert validity_text(_field(valid_for=Validity(hours=72, end="inclusive"))) == "72 h, end included"
    assert validity_text(_field(valid_for=Validity(days=14))) == "14 days"
    assert validity_text(_field(valid_for="stay")) == "for the whole stay"
    with pytest.raises(ValueError, match="did you mean 'stay'"):
        _field(valid_for="stya")


def test_day_numbers_count_24_hours_a_day(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT, magnesium_mmol_l=0.8, active_serious_infection=False))
    s.observe({"day": 2.99, "note": "71.8 h"})
    assert _facts(s)["magnesium_mmol_l"] == 0.8
    s.observe({"day": 3})  # 72 h: magnesium (end excluded) has expired, infection status (end included) has not
    assert "magnesium_mmol_l" not in _facts(s) and _facts(s)["active_serious_infection"] is False
    s.observe({"day": 3.01})
    assert "active_serious_infection" not in _facts(s)


def test_clock_times_give_exact_hours(pw):
    s = pw.start(patient(admission_time="2026-03-02T08:00"))
    s.observe({"time": "2026-03-02T08:00", "bloody_stools_24h": 8, "pulse_bpm": 100, "magnesium_mmol_l": 0.8})
    s.observe({"time": "2026-03-05T07:59"})
    assert _facts(s)["magnesium_mmol_l"] == 0.8  # 71 h 59 min
    s.observe({"time": "2026-03-05T08:00"})
    assert "magnesium_mmol_l" not in _facts(s)  # exactly 72 h
    # a time with an offset is counted in UTC: 09:00+01:00 is 08:00 UTC, 24 h after the stools
    s2 = pw.start(patient(admission_time="2026-03-02T08:00"))
    s2.observe({"time": "2026-03-02T08:00", "bloody_stools_24h": 8, "pulse_bpm": 100})
    s2.observe({"time": "2026-03-03T08:59+01:00"})
    assert _facts(s2)["bloody_stools_24h"] == 8
    s2.observe({"time": "2026-03-03T09:00+01:00"})
    assert "bloody_stools_24h" not in _facts(s2)


def test_a_patient_record_value_ages_from_admission(pw):
    s = pw.start(patient(active_serious_infection=False))
    s.observe(dict(ADMIT))
    assert _facts(s)["active_serious_infection"] is False
    r = s.observe(dict(DAY3_FAIL, day=3.5))
    assert "active_serious_infection" not in _facts(s)
    entry = next(d for d in r["data_required"] if d["field"] == "active_serious_infection")
    assert entry["recheck"] is True and entry["recorded_day"] == 0 and entry["age_hours"] == 84


# -- latches ------------------------------------------------------------------------------------

def test_a_film_holds_until_a_later_film_of_the_same_measure(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 1, "transverse_colon_cm": 6.2, "caecum_cm": 10, "systemic_toxicity": False})
    s.observe({"day": 6, "stool_freq_24h": 4, "visible_blood": True})
    assert _facts(s)["transverse_colon_cm"] == 6.2 and _facts(s)["caecum_cm"] == 10
    assert s.result()["derived"]["colonic_dilatation"] is True
    s.observe({"day": 7, "transverse_colon_cm": 5.0})
    # the newer transverse measure replaces the older one; the caecum keeps its own last value
    assert _facts(s)["transverse_colon_cm"] == 5.0 and _facts(s)["caecum_cm"] == 10
    s.observe({"day": 7, "caecum_cm": 8})
    assert "colonic_dilatation" not in s.result()["derived"]


# -- history (computed fields) ---------------------------------------------------------------------

def _state(history, day, hours=None, entered=None):
    return SessionState(patient_id="x", patient={"id": "x"}, admission=None, facts={}, state="a", path=["a"],
                        day=day, hours=day * 24 if hours is None else hours, history=history,
                        entered=entered or {"a": 0})


H = {"x": [[0, 6.0, 0.0, 0], [0.5, 7.0, 12.0, 1], [2, 5.0, 48.0, 2], [3.9, 4.0, 93.6, 3]]}


@pytest.mark.parametrize("agg,expected", [
    (Aggregate(of="x", fn="max", from_day=0, to_day=3), 7.0),        # the last value of each clinical day
    (Aggregate(of="x", fn="first"), 7.0),                            # day 0: 7.0 replaced 6.0
    (Aggregate(of="x", fn="last", to_day=2), 5.0),
    (Aggregate(of="x", fn="count"), 3),                             # days 0, 2, 3
    (Aggregate(of="x", fn="mean", from_day=2, to_day=3), 4.5),
    (Aggregate(of="x", fn="ever"), True),
    (Aggregate(of="y", fn="ever"), False),                          # nothing recorded: definitely false
    (Aggregate(of="y", fn="count"), 0),
    (Aggregate(of="y", fn="max"), None),
    (Aggregate(of="x", fn="min", within=Window(hours=48)), 4.0),     # recorded less than 48 h ago
    (Aggregate(of="x", fn="min", within=Window(hours=48, end="inclusive")), 4.0),
    (Aggregate(of="x", fn="count", within=Window(hours=45.6, end="inclusive")), 2),
    (Aggregate(of="x", fn="count", since="b"), None),                # the state was never entered
    (Aggregate(of="x", fn="min", from_day=5), None),                 # the window has not begun
])
def test_history_aggregates(agg, expected):
    assert aggregate(_state(H, 3.9), agg) == expected


def test_values_keep_only_the_values_named_each_recording_counted():
    # day 1: "u" then "n" on the same clinical day; day 2: "t"
    st = _state({"r": [[0, "n", 0.0, 0], [1, "u", 24.0, 1], [1.5, "n", 36.0, 2], [2, "t", 48.0, 3]]}, 2.5)
    assert aggregate(st, Aggregate(of="r", fn="ever", values=["u"])) is True   # not hidden by the later "n"
    assert aggregate(st, Aggregate(of="r", fn="ever")) is True
    assert aggregate(st, Aggregate(of="r", fn="ever", values=["x"])) is False
    assert aggregate(st, Aggregate(of="r", fn="count", values=["n", "t"])) == 3  # days 0, 1, 2
    assert aggregate(st, Aggregate(of="r", fn="last", values=["u", "n"])) == "n"
    assert aggregate(st, Aggregate(of="r", fn="ever", values=["u"], since="b")) is None  # window not begun


def test_an_aggregates_values_belong_to_its_field(rules_copy):
    diags = _broken(rules_copy, "fields.yaml", "aggregate: {of: latent_tb, fn: ever, values: [untreated]}",
                    "aggregate: {of: latent_tb, fn: ever, values: [untreeted]}")
    assert [d.code for d in diags] == ["PW112"] and "'untreeted' is not a value of 'latent_tb'" in diags[0].message
    assert diags[0].line > 0


def test_since_change_of_counts_from_the_last_change():
    # x on events 0-3; s recorded true in event 1, again true in event 2
    hist = dict(H, s=[[0.5, True, 12.0, 1], [2, True, 48.0, 2]])
    st = _state(hist, 3.9)
    # a first value, or the same value recorded again, is no change: every value counts
    assert aggregate(st, Aggregate(of="x", fn="count", since_change_of="s")) == 3
    hist["s"].append([3, False, 72.0, 3])  # s changes in event 3: only x of event 3 counts
    assert aggregate(st, Aggregate(of="x", fn="first", since_change_of="s")) == 4.0
    assert aggregate(st, Aggregate(of="x", fn="count", since_change_of="s")) == 1


def test_settled_keeps_the_values_recorded_long_enough_after_the_change():
    # x at 0, 12, 48 and 93.6 h; s (a dose) recorded 4 in event 0, changed to 8 in event 1 (12 h)
    hist = dict(H, s=[[0, 4, 0.0, 0], [0.5, 8, 12.0, 1]])
    settled = Window(hours=36)
    # x of events 1-3 is on the dose since the change; 36 h after it (48 h) and later are settled: 48.0 and 93.6 h
    assert aggregate(_state(hist, 3.9), Aggregate(of="x", fn="count", since_change_of="s")) == 3
    assert aggregate(_state(hist, 3.9), Aggregate(of="x", fn="count", since_change_of="s", settled=settled)) == 2
    assert aggregate(_state(hist, 3.9), Aggregate(of="x", fn="first", since_change_of="s", settled=settled)) == 5.0
    # exactly the span after the change counts; a moment less does not
    assert aggregate(_state(hist, 3.9), Aggregate(of="x", fn="first", since_change_of="s",
                                                  settled=Window(hours=36.1))) == 4.0
    # the same dose recorded again restarts nothing; a new change does (event 3 at 93.6 h: nothing settled yet)
    hist["s"].append([2, 8, 48.0, 2])
    assert aggregate(_state(hist, 3.9), Aggregate(of="x", fn="count", since_change_of="s", settled=settled)) == 2
    hist["s"].append([3.9, 12, 93.6, 3])
    assert aggregate(_state(hist, 3.9), Aggregate(of="x", fn="ever", since_change_of="s", settled=settled)) is False
    # never changed (its first value is no change): none is left out
    first = dict(H, s=[[0, 4, 0.0, 0]])
    assert aggregate(_state(first, 3.9), Aggregate(of="x", fn="count", since_change_of="s", settled=settled)) == 3


def test_settled_needs_since_change_of(rules_copy):
    diags = _broken(rules_copy, "fields.yaml", "fn: ever, since_change_of: tacrolimus_daily_dose_mg, settled: {hours: 48}}",
                    "fn: ever, settled: {hours: 48}}")
    assert [d.code for d in diags] == ["PW112"] and "'settled' counts from the last change" in diags[0].message
    assert diags[0].line > 0


def test_since_a_state_counts_from_its_entry():
    st = _state(H, 3.9, entered={"a": 0, "b": 2})
    assert aggregate(st, Aggregate(of="x", fn="count", since="b")) == 2
    assert aggregate(st, Aggregate(of="x", fn="first", since="b")) == 5.0


def test_counted_from_a_state_its_days_start_at_the_first_entry():
    # 'b' first entered on day 2 (day 1.9 of values is then day -1 of 'b'; day 3.9 is its clinical day 1)
    st = _state(H, 3.9, entered={"a": 0, "b": 2})
    assert aggregate(st, Aggregate(of="x", fn="first", from_day=0, to_day=0, counted_from="b")) == 5.0
    assert aggregate(st, Aggregate(of="x", fn="mean", from_day=1, to_day=3, counted_from="b")) == 4.0
    assert aggregate(st, Aggregate(of="x", fn="count", counted_from="b")) == 2
    assert aggregate(st, Aggregate(of="x", fn="max", from_day=2, counted_from="b")) is None  # not begun
    assert aggregate(st, Aggregate(of="x", fn="count", counted_from="c")) is None  # never entered
    assert aggregate(st, Aggregate(of="x", fn="count", from_day=0, to_day=0)) == 1  # from admission: day 0
    # days from clock times: entered 1 h after admission (day 0.0417); 3.0417 - 0.0417 is 2.9999999999999996
    # in floating point, and must still be day 3 of the state
    late = _state({"x": [[0.0417, 9.0, 1.0, 0], [3.0417, 4.0, 73.0, 1]]}, 3.0417, entered={"a": 0, "b": 0.0417})
    assert aggregate(late, Aggregate(of="x", fn="last", from_day=3, to_day=3, counted_from="b")) == 4.0
    point = load_pathway("asuc").definition.decision_points["day3_assessment"]
    assert point.passed(4.0417, {"iv_steroids": 0.0417}) and point.days(3.0417, {"iv_steroids": 0.0417}) == 3


def test_until_keeps_the_values_up_to_the_end_of_the_entry_day_and_a_list_takes_the_last_entered():
    # 'b' entered on day 2: values up to the end of clinical day 2 are the start values
    st = _state(H, 3.9, entered={"a": 0, "b": 2})
    assert aggregate(st, Aggregate(of="x", fn="last", until="b")) == 5.0
    assert aggregate(st, Aggregate(of="x", fn="count", until="b")) == 2    # days 0 and 2; not day 3.9
    # a result of the entry day that arrives after the move still counts (a late pre-treatment result)
    late = {"x": H["x"][:2] + [[2.4, 5.5, 57.6, 2]]}
    assert aggregate(_state(late, 2.5, entered={"a": 0, "b": 2.2}), Aggregate(of="x", fn="last", until="b")) == 5.5
    assert aggregate(st, Aggregate(of="x", fn="last", until="c")) is None  # never entered
    # with a list, the state entered last counts: 'c' on day 3 starts a new window
    st3 = _state(H, 3.9, entered={"a": 0, "b": 2, "c": 3})
    assert aggregate(st3, Aggregate(of="x", fn="count", since=["b", "c"])) == 1
    assert aggregate(st3, Aggregate(of="x", fn="count", since=["b", "zz"])) == 2


def test_or_else_stands_in_when_the_window_is_empty():
    st = _state(H, 3.9, entered={"a": 0, "b": 2})
    first_on = Aggregate(of="x", fn="first", since="b")
    assert aggregate(st, Aggregate(of="x", fn="last", to_day=-1, or_else=first_on)) == 5.0
    assert aggregate(st, Aggregate(of="x", fn="last", to_day=2, or_else=first_on)) == 5.0   # has a value: no stand-in
    assert aggregate(st, Aggregate(of="y", fn="last", or_else=Aggregate(of="y", fn="first"))) is None


def test_confirmed_by_gives_the_value_last_confirmed_each_recording_counting():
    # weight 70 on admission (the patient record), 154 and 155 unconfirmed, then confirmations and a withdrawal
    weights = [[0, 70, 0.0, None], [4, 154, 96.0, 4], [5, 155, 120.0, 5]]
    last_confirmed = Aggregate(of="w", fn="last", confirmed_by="ok")
    assert aggregate(_state({"w": weights}, 5), last_confirmed) == 70           # none confirmed: the first value
    assert aggregate(_state({"w": weights, "ok": [[5, True, 120.0, 4]]}, 5), last_confirmed) == 154  # in event 4
    assert aggregate(_state({"w": weights, "ok": [[5, True, 120.0, 5]]}, 5), last_confirmed) == 155
    withdrawn = [[5, True, 120.0, 5], [5, False, 121.0, 6]]
    assert aggregate(_state({"w": weights, "ok": withdrawn}, 5), last_confirmed) == 70  # withdrawn: the first again
    same_day = [[0, 70, 0.0, None], [4, 72, 96.0, 4], [4, 158, 97.0, 5]]        # not only the last of the day
    assert aggregate(_state({"w": same_day, "ok": [[4, True, 96.0, 4]]}, 4), last_confirmed) == 72
    assert aggregate(_state({"ok": [[4, True, 96.0, 4]]}, 4), last_confirmed) is None  # nothing recorded
    rise = Aggregate(of="w", fn="last", rise_from=last_confirmed, percent=True)
    assert aggregate(_state({"w": weights}, 5), rise) == 121.4                    # 155 against 70, not against 154


def test_confirmed_by_confirms_only_the_values_that_had_arrived():
    # 154 (event 0) confirmed in event 2; 200 in event 1, placed before the confirmation but recorded after it
    weights = [[0, 70, 0.0, None], [4, 154, 96.0, 0], [4.2, 200, 100.8, 1]]
    marks = [[4.5, True, 108.0, 2]]
    last_confirmed = Aggregate(of="w", fn="last", confirmed_by="ok")
    assert aggregate(_state({"w": weights, "ok": marks}, 4.5), last_confirmed) == 200  # arrived in timeline order
    late = _state({"w": weights, "ok": marks}, 4.5)
    late.arrived = (0, 2, 1)
    assert aggregate(late, last_confirmed) == 154
    late.arrived = (2, 1, 0)  # 154 amended after the confirmation too: only the patient record had arrived
    assert aggregate(late, last_confirmed) == 70
    # a confirmation that arrived after a weight dated later does not confirm it either
    later = _state({"w": [[0, 70, 0.0, None], [5, 154, 120.0, 1]], "ok": [[4.5, True, 108.0, 0]]}, 5)
    later.arrived = (1, 0)
    assert aggregate(later, last_confirmed) == 70


def test_fall_from_a_baseline():
    st = _state(H, 3.9, entered={"a": 0, "b": 2})
    st.state, st.state_event = "b", 2
    fall = Aggregate(of="x", fn="last", since="b", fall_from=Aggregate(of="x", fn="first"))
    assert aggregate(st, fall) == 3.0                      # first 7.0 (day 0), now 4.0
    rise = Aggregate(of="x", fn="max", fall_from=Aggregate(of="x", fn="min", from_day=3))
    assert aggregate(st, rise) == -3.0                     # negative: it rose
    assert aggregate(st, Aggregate(of="x", fn="last", fall_from=Aggregate(of="y", fn="last"))) is None
    up = Aggregate(of="x", fn="last", rise_from=Aggregate(of="x", fn="last", to_day=2), percent=True)
    assert aggregate(st, up) == -20.0                      # 5.0 on day 2, now 4.0: a 20% fall is a -20% rise
    assert aggregate(_state({"x": [[0, 0.0, 0.0, 0], [1, 3.0, 24.0, 1]]}, 1),
                     Aggregate(of="x", fn="last", rise_from=Aggregate(of="x", fn="first"), percent=True)) is None


def test_per_divides_by_the_latest_value_of_another_field():
    st = _state({"dose": [[3, 4.0, 72.0, 3], [5, 21.0, 120.0, 5]]}, 5)
    per_kg = Aggregate(of="dose", fn="last", per="w")
    assert aggregate(st, per_kg) is None                        # no weight recorded: no value, not a guess
    st.facts["w"] = 30
    assert aggregate(st, per_kg) == 0.7
    assert aggregate(st, Aggregate(of="dose", fn="first", per="w")) == 0.1333   # four decimals
    st.facts["w"] = 0
    assert aggregate(st, per_kg) is None                        # never a division by zero
    assert aggregate(_state({}, 5), per_kg) is None              # no dose recorded


def test_a_titration_stops_at_its_ceiling_per_kg_and_says_so_at_the_limit():
    from pathway.definition.effects import Titrate
    from pathway.runtime.doses import titrate

    eff = Titrate(name="tacrolimus", route="oral", current_daily_mg="dose", measured="trough", target=12.5,
                  times_per_day=2, round_to_mg=0.5, max_change_fraction=1.0, max_mg_per_kg_per_day=0.42,
                  cap_text="stops at {max_mg_per_kg_per_day} mg/kg/day ({max_daily_mg} mg/day).",
                  limit_text="at the limit of {max_daily_mg} mg/day: no further increase.",
                  text="from {dose} to {new_daily_mg} mg/day. {capped}")
    values = {"dose": 20, "trough": 4, "weight_kg": 60}
    med, text, _summary = titrate(eff, values, values)          # 62.5 wanted, 40 by the step, 25.2 by the ceiling
    assert (med["dose_mg"], med["daily_mg"], med["max_daily_mg"]) == (12.5, 25, 25.2)
    assert text == "from 20 to 25 mg/day. stops at 0.42 mg/kg/day (25.2 mg/day)."
    med, text, _summary = titrate(eff, {**values, "dose": 8}, {**values, "dose": 8})  # 16 mg/day: under the ceiling
    assert med["daily_mg"] == 16 and "max_daily_mg" not in med and text == "from 8 to 16 mg/day."
    med, text, _summary = titrate(eff, {**values, "dose": 25}, {**values, "dose": 25})  # no step left under 25.2
    assert med["at_limit"] and med["daily_mg"] == 25 and text == "at the limit of 25.2 mg/day: no further increase."
    high = {**values, "dose": 30, "trough": 18}                 # a reduction is never held at the ceiling
    med, text, _summary = titrate(eff, high, high)
    assert med["daily_mg"] == 21 and "max_daily_mg" not in med and "at_limit" not in med


def test_rescue_response_is_measured_from_the_start_of_the_agent(pw):
    s = pw.start(patient())
    for event in (dict(ADMIT), dict(DAY3_FAIL), dict(RESCUE_LABS), {"day": 3, "rescue_choice": "infliximab"}):
        s.observe(event)
    start = {k: DAY3_FAIL[k] for k in ("stool_freq_24h", "crp_mg_l")}
    s.observe({"day": 5, "stool_freq_24h": start["stool_freq_24h"] - 3, "visible_blood": False, "crp_mg_l": 20})
    facts = _facts(s)
    # one day charted: today's fall is known, the fall "on each of the last 2 days" is not yet
    assert facts["stool_freq_rescue_fall"] == 3 and facts["stool_chart_days_rescue_2d"] == 1
    assert "stool_freq_rescue_fall_2d" not in facts
    assert facts["crp_rescue_fall_pct"] == 75.0           # 80 -> 20
    r = s.observe({"day": 6, "stool_freq_24h": start["stool_freq_24h"] - 4, "visible_blood": False, "crp_mg_l": 15})
    assert r["state"] == "maintenance_infliximab"


def test_a_rule_waiting_for_a_computed_field_asks_for_the_recorded_one(pw):
    # 5 stools (4 fewer than at the start) without blood is a response only with a falling CRP (at most 3
    # stools would be a complete response whatever the CRP), so the CRP is asked for
    s = pw.start(patient())
    for event in (dict(ADMIT), dict(DAY3_FAIL), dict(RESCUE_LABS), {"day": 3, "rescue_choice": "ciclosporin"},
                  {"day": 9, "stool_freq_24h": DAY3_FAIL["stool_freq_24h"] - 4, "visible_blood": False}):
        s.observe(event)
    r = s.observe({"day": 10, "stool_freq_24h": DAY3_FAIL["stool_freq_24h"] - 4, "visible_blood": False})
    asked = {d["field"] for d in r["data_required"]}
    assert "crp_mg_l" in asked and not asked & set(pw.aggregates)
    overdue = [a for a in r["alerts"] if a["rule"] == "overdue.rescue_ciclosporin"]
    assert overdue and "crp_mg_l" in overdue[0]["text"] and "crp_rescue_fall_mg_l" not in overdue[0]["text"]


def test_tacrolimus_history_is_ever_recorded_not_currently_recorded(pw):
    s = pw.start(patient())
    for event in (dict(ADMIT), dict(DAY3_FAIL), dict(RESCUE_LABS), {"day": 3, "rescue_choice": "tacrolimus"}):
        s.observe(event)
    assert _facts(s)["tacrolimus_dose_recorded"] is False
    s.observe({"day": 5, "tacrolimus_trough_ng_ml": 6, "tacrolimus_daily_dose_mg": 4})
    r = s.observe({"day": 20, "stool_freq_24h": 5})
    assert _facts(s)["tacrolimus_dose_recorded"] is True and _facts(s)["tacrolimus_trough_last_ng_ml"] == 6
    assert "tacrolimus_trough_ng_ml" not in _facts(s)
    assert not any(x["rule"] == "tac_start_dose" for x in r["recommendations"])


# -- decision points ----------------------------------------------------------------------------------

def _day3_then(pw, *later):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 3, "stool_freq_24h": 4, "visible_blood": True, "crp_mg_l": 25, "albumin_g_l": 36})
    for event in later:
        s.observe(event)
    return s


def test_day3_indices_are_kept_with_provenance(pw):
    s = _day3_then(pw, {"day": 5, "stool_freq_24h": 6, "visible_blood": True, "crp_mg_l": 90, "albumin_g_l": 30})
    kept = s.result()["frozen"]
    assert kept["oxford_high_risk"]["value"] is False and kept["lindgren_index"]["value"] == 7.5
    assert kept["lindgren_index"] == {
        "value": 7.5, "day": 3, "decision_point": "day3_assessment", "rule": "lindgren_index",
        "facts": {"days_in_state": 3, "stool_freq_24h": 4, "crp_mg_l": 25, "lindgren_index": 7.5},
        "recorded": {"stool_freq_24h": 3, "crp_mg_l": 3}}
    # day 5: the engine saw the kept values; the index rules did not fire again
    last = s.evaluations[-1]
    assert last["frozen"]["oxford_high_risk"] is False and last["derived"]["lindgren_risk"] == "low"
    day5 = {t["rule"] for t in s.result()["trace"] if t["day"] == 5}
    assert not day5 & {"oxford_index", "lindgren_index", "lindgren_risk", "car_index", "ho_index"}
    assert s.state == "iv_steroids"  # Oxford would be positive on day-5 values (6 stools, CRP 90)
    assert "oxford_high_risk" not in s.result()["derived"]  # derived: only what this event derived


def test_inside_the_window_the_last_derivation_counts(pw):
    s = _day3_then(pw, {"day": 3.5, "crp_mg_l": 60})  # a later CRP on the assessment day
    assert s.result()["frozen"]["oxford_high_risk"]["value"] is True
    assert s.result()["frozen"]["oxford_high_risk"]["day"] == 3.5
    assert s.state == "rescue_selection"


def test_the_engine_and_the_evaluator_assert_kept_facts_alike(pw):
    from pathway.analysis.evaluate import evaluate_state

    facts = {"day": 5, "days_in_state": 5, "stool_freq_24h": 6, "visible_blood": True}
    frozen = {"oxford_high_risk": True, "lindgren_risk": "low", "car_risk": "low", "ho_risk": "low"}
    firings, derived = pw.engine.evaluate("iv_steroids", {**facts, "state": "iv_steroids"}, frozen)
    mine = evaluate_state(pw.compiled, "iv_steroids", facts, frozen=frozen)
    assert derived == mine.derived and {**frozen, "complete_response": False}.items() <= derived.items()
    assert sorted((f.rule, f.branch) for f in firings) == sorted(mine.fired.items())
    assert mine.decision().rule == "steroid_failure_day3"


def test_a_decision_rule_outside_its_window_is_not_due(pw):
    rule = pw.rule("oxford_index")
    assert rule.decision_point == "day3_assessment"
    point = pw.definition.decision_points["day3_assessment"]
    assert (point.from_day, point.before_day, point.counted_from) == (3, 4, "iv_steroids")
    # days of IV steroids: entered on admission day 0, or on day 2 after a late diagnosis
    assert point.passed(4, {"iv_steroids": 0}) and not point.passed(3.99, {"iv_steroids": 0})
    assert not point.passed(5.5, {"iv_steroids": 2}) and point.passed(6, {"iv_steroids": 2})
    assert not point.passed(30, {})  # never on IV steroids: the window has not even begun
    assert set(pw.definition.kept) >= {"oxford_high_risk", "lindgren_risk", "car_risk", "ho_risk", "ho_score"}


# -- rechecks -----------------------------------------------------------------------------------------

def test_an_expired_value_a_waiting_rule_needs_is_a_recheck(pw):
    s = pw.start(patient(admission_time="2026-03-02T08:00"))
    s.observe({"time": "2026-03-02T08:00", **{k: v for k, v in ADMIT.items() if k != "day"},
               "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70, "cholesterol_mmol_l": 4.5})
    r = s.observe({"time": "2026-03-05T10:00", **{k: v for k, v in DAY3_FAIL.items() if k != "day"},
                   "bp_uncontrolled": False, "active_serious_infection": False})
    mg = next(d for d in r["data_required"] if d["field"] == "magnesium_mmol_l")
    assert mg == {"field": "magnesium_mmol_l", "rules": ["ciclosporin_eligibility"], "title": "Serum magnesium",
                  "unit": "mmol/L", "recheck": True, "last_value": 0.8, "recorded_day": 0,
                  "recorded_time": "2026-03-02T08:00", "age_hours": 74.0, "valid_hours": 72.0,
                  "text": "recheck serum magnesium (last 0.8 mmol/L on day 0 at 2026-03-02T08:00, 74 h ago): "
                          "needed for 'Ciclosporin eligibility'"}
    # a field never recorded is asked for as before, without recheck keys
    assert all("recheck" not in d for d in r["data_required"] if d["field"] == "rescue_choice")


# -- persistence ----------------------------------------------------------------------------------------

def _course(pw):
    s = pw.start(patient(admission_time="2026-03-02T08:00"))
    s.observe({"time": "2026-03-02T08:00", **{k: v for k, v in ADMIT.items() if k != "day"}, "magnesium_mmol_l": 0.8})
    s.observe({"time": "2026-03-05T09:00", "stool_freq_24h": 4, "visible_blood": True, "crp_mg_l": 25,
               "albumin_g_l": 36})
    return s


def test_dump_and_restore_keep_hours_history_and_kept_facts(pw):
    s = _course(pw)
    doc = json.loads(json.dumps(s.dump()))
    assert doc["format"] == 5 and doc["frozen"]["oxford_high_risk"]["value"] is False
    assert doc["hours"] == 73 and doc["seen_hours"]["magnesium_mmol_l"] == 0
    restored = pw.restore(doc)
    assert restored.result() == s.result()
    later = {"time": "2026-03-07T09:00", "stool_freq_24h": 3, "visible_blood": False, "crp_mg_l": 50}
    assert restored.observe(dict(later)) == s.observe(dict(later))
    assert s.state == "steroid_response"


def test_a_format_1_document_is_read_in_days(pw):
    s = pw.start(patient())
    s.observe(dict(ADMIT, magnesium_mmol_l=0.8))
    s.observe({"day": 2, "stool_freq_24h": 5, "visible_blood": True})
    doc = copy.deepcopy(s.dump())
    old = {k: v for k, v in doc.items() if k not in ("hours", "seen_hours", "frozen", "revisions")}
    old["format"] = 1
    old["history"] = {name: [[day, value] for day, value, *_ in entries] for name, entries in doc["history"].items()}
    old["seen"] = {name: entries[-1][0] for name, entries in doc["history"].items() if entries[-1][3] is not None}
    restored = pw.restore(old)
    later = {"day": 3, "crp_mg_l": 50}
    assert restored.observe(dict(later))["state"] == s.observe(dict(later))["state"]


# -- the loader ---------------------------------------------------------------------------------------

def _broken(rules_copy, file, old, new):
    path = rules_copy / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_pathway(rules_copy, cache=False)
    return info.value.diagnostics


def test_a_decision_window_must_not_be_empty(rules_copy):
    diags = _broken(rules_copy, "pathway.yaml", "    before_day: $assessment_window_end_day\n", "    before_day: 3\n")
    assert [d.code for d in diags] == ["PW112"] and "window of 'day3_assessment' is empty" in diags[0].message


def test_a_decision_window_counts_from_a_known_state(rules_copy):
    diags = _broken(rules_copy, "pathway.yaml", "    counted_from: iv_steroids\n", "    counted_from: iv_steroid\n")
    assert [d.code for d in diags] == ["PW201"] and diags[0].hint == "iv_steroids" and diags[0].line > 0


def test_a_decision_window_cannot_count_from_a_state_entered_again(rules_copy):
    # rescue_infliximab -> rescue_ciclosporin -> rescue_infliximab: a second entry would restart days_in_state
    diags = _broken(rules_copy, "pathway.yaml", "    counted_from: iv_steroids\n", "    counted_from: rescue_infliximab\n")
    assert [d.code for d in diags] == ["PW112"] and "on a cycle" in diags[0].message


def test_the_rules_of_a_counted_window_are_in_its_state_alone(rules_copy):
    diags = _broken(rules_copy, "day3_indices.yaml",
                    "    in: iv_steroids\n    decision_point: day3_assessment\n    requires: [stool_freq_mean_d1_3",
                    "    in: [iv_steroids, steroid_response]\n    decision_point: day3_assessment\n"
                    "    requires: [stool_freq_mean_d1_3")
    assert {d.code for d in diags} == {"PW221"} and "count from 'iv_steroids'" in diags[0].message
    assert diags[0].file.endswith("day3_indices.yaml") and diags[0].line > 0


def test_an_aggregate_counts_from_a_known_state(rules_copy):
    diags = _broken(rules_copy, "fields.yaml", "fn: mean, from_day: 1, to_day: 3, counted_from: iv_steroids}",
                    "fn: mean, from_day: 1, to_day: 3, counted_from: iv_steroid}")
    assert [d.code for d in diags] == ["PW201"] and diags[0].hint == "iv_steroids"


def test_steroid_days_count_from_a_late_diagnosis(pw):
    """Severe only on day 2: the Ho index's days 1-3 and the admission albumin are those of IV steroids."""
    s = pw.start(patient())
    s.observe({"day": 0, "bloody_stools_24h": 4, "stool_freq_24h": 5, "pulse_bpm": 80, "temp_c": 37.0,
               "hb_g_dl": 12.5, "crp_mg_l": 20, "albumin_g_l": 28})
    r = s.observe({"day": 2, **{k: v for k, v in ADMIT.items() if k != "day"}, "albumin_g_l": 33, "stool_freq_24h": 9,
                   "transverse_colon_cm": 4.0})
    assert r["state"] == "iv_steroids"
    for day in (3, 4):
        r = s.observe({"day": day, "stool_freq_24h": 4, "visible_blood": True, "crp_mg_l": 30})
        assert r["state"] == "iv_steroids" and not r["frozen"], day
    r = s.observe({"day": 5, "stool_freq_24h": 4, "visible_blood": True, "crp_mg_l": 20, "albumin_g_l": 34})
    # mean of 4, 4, 4 (steroid days 1-3) = 1 point; albumin 33 on the first steroid day (28 on admission
    # day 0 would add one); a 4 cm colon: Ho 1, low. From admission days 1-3 the mean would be (9 + 4) / 2.
    assert r["state"] == "iv_steroids" and r["derived"]["ho_score"] == 1 and r["derived"]["ho_risk"] == "low"
    r = s.observe({"day": 6, "stool_freq_24h": 4, "visible_blood": True, "crp_mg_l": 18})
    assert r["frozen"]["ho_score"]["value"] == 1 and r["frozen"]["ho_score"]["day"] == 5


def test_a_decision_window_names_known_parameters(rules_copy):
    diags = _broken(rules_copy, "pathway.yaml", "    from_day: $assessment_day\n", "    from_day: $assesment_day\n")
    assert diags[0].code == "PW203" and diags[0].hint == "assessment_day"


def test_both_spellings_of_validity_are_refused(rules_copy):
    diags = _broken(rules_copy, "fields.yaml", "    valid_for: {days: 14}\n",
                    "    valid_for: {days: 14}\n    valid_for_days: 14\n")
    assert [d.code for d in diags] == ["PW112"] and "not both" in diags[0].message


def test_a_latch_has_no_end(rules_copy):
    diags = _broken(rules_copy, "fields.yaml", "    valid_for: {days: 14}\n", "    valid_for: {until: stay, end: inclusive}\n")
    assert [d.code for d in diags] == ["PW112"] and "'end' belongs to a window" in diags[0].message


RESCUE_STATES = "[rescue_tacrolimus, rescue_ciclosporin, rescue_infliximab]"


def test_an_aggregate_names_known_states(rules_copy):
    diags = _broken(rules_copy, "fields.yaml",
                    f"    aggregate: {{of: stool_freq_24h, fn: count, since: {RESCUE_STATES}, within: {{days: 2}}}}\n",
                    "    aggregate: {of: stool_freq_24h, fn: count, since: [rescue_cyclosporin], within: {days: 2}}\n")
    assert [d.code for d in diags] == ["PW201"] and diags[0].hint == "rescue_ciclosporin"
    assert diags[0].line > 0


CRP_BASE = "      fall_from:\n        of: crp_mg_l\n"


def test_a_fall_needs_numbers(rules_copy):
    diags = _broken(rules_copy, "fields.yaml",
                    f"      fn: last\n      since: {RESCUE_STATES}\n      within: {{hours: 72}}\n{CRP_BASE}",
                    f"      fn: count\n      since: {RESCUE_STATES}\n      within: {{hours: 72}}\n{CRP_BASE}")
    assert [d.code for d in diags] == ["PW112"] and "'fall_from' compares numbers" in diags[0].message


def test_a_recheck_names_the_day_a_clock_time_falls_on_not_a_fraction_of_a_day():
    from pathway.runtime.result import recheck_text

    stale = {"last_value": 64, "recorded_day": 0.0417, "recorded_time": "2026-03-02T09:00", "age_hours": 119.0}
    assert recheck_text("C-reactive protein", "mg/L", stale) == \
        "recheck C-reactive protein (last 64 mg/L on day 0 at 2026-03-02T09:00, 119 h ago)"
    stale = {"last_value": 64, "recorded_day": 2.9, "recorded_time": "2026-03-05T05:36", "age_hours": 50.0}
    assert "on day 2 at 2026-03-05T05:36" in recheck_text("CRP", "mg/L", stale)


def test_day_text_says_when_a_value_was_recorded() -> None:
    assert day_text(4) == "day 4"
    assert day_text(4.0) == "day 4"
    assert day_text(4.25) == "day 4.25"
    assert day_text(3.104166666) == "day 3.104"
    # with the event's clock time: the day that time falls on
    assert day_text(4.375, "09:00") == "day 4 at 09:00"


@pytest.mark.parametrize("seed", range(12))
def test_the_document_gives_the_day_a_provisional_field_s_current_value_was_recorded(pw, seed):
    """``seen`` (the day each current value was recorded in an event) is worked out from the history when a
    document is made: a 'pending' recorded while a result is current changes neither the value nor its day,
    and a patient-record value has no day."""
    import random

    rng = random.Random(seed)
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    current, day_seen = None, None
    for day in range(1, 7):
        value = rng.choice(["pending", "negative", "positive", None])
        s.observe({"day": day} if value is None else {"day": day, "cdiff_result": value})
        if value is not None and not (value == "pending" and current not in (None, "pending")):
            current, day_seen = value, day
    doc = s.dump()
    assert doc["seen"].get("cdiff_result") == day_seen
    assert ("cdiff_result" in doc["seen"]) == (current is not None)
    assert "bloody_stools_24h" in doc["seen"] and doc["seen"]["bloody_stools_24h"] == 0
    assert set(doc["seen_hours"]) == set(doc["history"]) and all(name in doc["seen_hours"] for name in doc["seen"])
    assert not set(doc["seen"]) & set(patient()) - {"id"}  # patient-record values: recorded in no event
    restored = pw.restore(doc)  # the document's days match the replay's
    assert restored.dump()["seen"] == doc["seen"]


def test_the_current_entry_of_a_provisional_field_is_the_result_a_later_pending_did_not_replace():
    from pathway.runtime.state import current_entry

    result, pending = [1, "negative", 30.0, 0], [2, "pending", 50.0, 1]
    assert current_entry([result, pending], ("pending",)) is result  # its age counts from the result
    assert current_entry([pending, result], ("pending",)) is result
    assert current_entry([[0, "pending", 0.0, None], pending], ("pending",)) is pending  # pending over pending
    assert current_entry([[0, "negative", 0.0, None], pending], ("pending",))[2] == 0.0  # the patient record
    assert current_entry([result, pending], ()) is pending  # no provisional values: the last
    assert current_entry([], ("pending",)) is None and current_entry(None, None) is None


def test_an_aggregate_day_given_as_a_parameter_follows_the_parameter():
    # tacrolimus_trough_on_lower_target counts troughs from day $tac_low_target_after_day of tacrolimus: a trough of
    # 8 ng/mL on tacrolimus day 11, no trough after it, on tacrolimus day 15. With the target lowered from day 14 it
    # was drawn below 10-15 (an increase was advised) and is overdue; lowered from day 10, it was drawn in 5-10 on
    # the dose given and is not. A window fixed at day 14 would call it overdue under both.
    def overdue(after_day: int | None) -> bool:
        pw = load_pathway("asuc", parameters=None if after_day is None else {"tac_low_target_after_day": after_day})
        field = pw.definition.fields["tacrolimus_trough_on_lower_target"]
        assert field.aggregate is not None and field.aggregate.from_day == (14 if after_day is None else after_day)
        s = pw.start(patient(id="agg-param"))
        for event in (ADMIT, DAY3_FAIL, RESCUE_LABS, {"day": 3, "rescue_choice": "tacrolimus"},
                      {"day": 4, "tacrolimus_daily_dose_mg": 7},
                      {"day": 14, "tacrolimus_trough_ng_ml": 8, "tacrolimus_daily_dose_mg": 7, "creatinine_umol_l": 72,
                       "magnesium_mmol_l": 0.8, "glucose_mmol_l": 6}):
            s.observe(event)
        result = s.observe({"day": 18, "stool_freq_24h": 4, "visible_blood": False})
        return any(a["rule"] == "tac_trough_overdue" for a in result["alerts"])

    assert overdue(None)
    assert not overdue(10)
