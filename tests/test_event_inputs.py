"""Bad events, patient records and cases: the regression corpus of the event fuzzer's findings.

Every reproducer is refused with an InputError whose code and location name the field (and the
event), and leaves the session byte-identical; every in-range value evaluates, however it is
written; whatever is kept is strict JSON.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from cases import ADMIT, patient
from test_fuzz_events import bases, strict

from pathway import InputError, load_pathway
from pathway.definition.clock import MAX_DAY, parse_time
from pathway.definition.inputs import MAX_FREE_DEPTH, free_form_problem, shown_value
from pathway.runtime.engine import message_text

ADMITTED = "2026-03-02T08:00"


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(scope="module")
def fresh():
    return load_pathway("asuc", cache=False)


def _admitted(pw: Any) -> Any:
    s = pw.start(patient(admission_time=ADMITTED))
    s.observe(dict(ADMIT))
    return s


def _refused(pw: Any, event: Any) -> InputError:
    """Observe ``event`` as the second event; it must be refused, leaving the session as it was."""
    s = _admitted(pw)
    before = json.dumps(s.dump(), sort_keys=True)
    with pytest.raises(InputError) as info:
        s.observe(event)
    assert json.dumps(s.dump(), sort_keys=True) == before
    assert info.value.event == 1
    text = str(info.value)
    text.encode("utf-8")  # printable whatever the input
    assert len(text) < 2_000
    return info.value


# -- the reproducers, and their kin --------------------------------------------------

REFUSED = [
    # huge integers (OverflowError before)
    ({"day": 1, "crp_mg_l": 10 ** 400}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "crp_mg_l": -10 ** 400}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "nyha_class": 10 ** 5000}, "PW410", "events[1].nyha_class"),
    ({"day": 1, "crp_mg_l": 10 ** 20}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "crp_mg_l": {"value": 10 ** 400, "unit": "mg/dL"}}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "crp_mg_l": {"value": 10 ** 400, "unit": "mg/L"}}, "PW410", "events[1].crp_mg_l"),
    ({"day": 10 ** 400}, "PW405", "events[1].day"),
    ({"day": -10 ** 400}, "PW405", "events[1].day"),
    # NaN and infinities, bare and inside {value, unit} (ValueError from Fraction before)
    ({"day": 1, "crp_mg_l": {"value": math.nan, "unit": "mg/dL"}}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "crp_mg_l": {"value": math.inf, "unit": "mg/dL"}}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "temp_c": {"value": -math.inf, "unit": "°F"}}, "PW410", "events[1].temp_c"),
    ({"day": 1, "crp_mg_l": math.nan}, "PW410", "events[1].crp_mg_l"),
    ({"day": 1, "crp_mg_l": 1e300}, "PW410", "events[1].crp_mg_l"),
    ({"day": math.nan}, "PW405", "events[1].day"),
    ({"day": math.inf}, "PW405", "events[1].day"),
    # times near the ends of the calendar (OverflowError before), and past the clinical clock (accepted before)
    ({"time": "9999-12-31T23:59:59-14:00"}, "PW405", "events[1].time"),
    ({"time": "0001-01-01T00:00:00+14:00"}, "PW405", "events[1].time"),
    ({"time": "9999-12-31T23:59:59"}, "PW405", "events[1].time"),
    ({"time": (datetime.fromisoformat(ADMITTED) + timedelta(days=MAX_DAY, seconds=60)).isoformat()}, "PW405",
     "events[1].time"),
    ({"time": "2036-03-02T08:00+00:00"}, "PW405", "events[1].time"),
    # a time that is not text (accepted before, then breaking dump())
    ({"time": datetime(2026, 3, 3, 8, 0)}, "PW405", "events[1].time"),
    ({"time": 20260303}, "PW405", "events[1].time"),
    ({"time": "2" * 10_000}, "PW405", "events[1].time"),
    # notes that are not JSON (accepted before, then breaking dump()/save())
    ({"day": 1, "note": math.nan}, "PW410", "events[1].note"),
    ({"day": 1, "note": {"t": [1, math.inf]}}, "PW410", "events[1].note.t[1]"),
    ({"day": 1, "note": 10 ** 5000}, "PW410", "events[1].note"),
    ({"day": 1, "note": {1, 2}}, "PW411", "events[1].note"),
    ({"day": 1, "note": b"x"}, "PW411", "events[1].note"),
    ({"day": 1, "note": datetime(2026, 3, 2)}, "PW411", "events[1].note"),
    ({"day": 1, "note": object()}, "PW411", "events[1].note"),
    ({"day": 1, "note": complex(1, 1)}, "PW411", "events[1].note"),
    ({"day": 1, "note": {(1, 2): 3}}, "PW411", "events[1].note"),
    ({"day": 1, "note": {1: "a"}}, "PW411", "events[1].note"),
    ({"day": 1, "note": "\ud800"}, "PW411", "events[1].note"),
    ({"day": 1, "note": {"by": "\udfff"}}, "PW411", "events[1].note.by"),
    ({"day": 1, "note": _deep(100_000)}, "PW412", "events[1].note" + "[0]" * MAX_FREE_DEPTH),
    ({"day": 1, "note": "n" * 200_000}, "PW412", "events[1].note"),
    ({"day": 1, "id": object()}, "PW402", "events[1].id"),
    ({"day": 1, "id": ["e", 1]}, "PW402", "events[1].id"),
    ({"day": 1, "id": 10 ** 16}, "PW410", "events[1].id"),
    ({"day": 1, "id": "e\ud800"}, "PW411", "events[1].id"),
    # built-in fields the session sets: a proposal of the current evaluation, the days since a state, the clock
    ({"day": 1, "proposed_colectomy": True}, "PW401", "events[1].proposed_colectomy"),
    ({"day": 1, "days_since_iv_steroids": 2}, "PW401", "events[1].days_since_iv_steroids"),
    # keys and values that used to fail while the error was being written
    ({"day": 1, 10 ** 5000: 1}, "PW401", "events[1].<an integer of about 5001 digits>"),
    ({"day": 1, ("a", "b"): 1}, "PW401", "events[1].('a', 'b')"),
    ({"day": 1, "x" * 10_000: 1}, "PW401", None),
    ({"day": 1, "\ud800": 1}, "PW401", "events[1].'\\ud800'"),
    ({"day": 1, "tpmt_status": _deep(100_000)}, "PW402", "events[1].tpmt_status"),
    ({"day": 1, "tpmt_status": 10 ** 5000}, "PW402", "events[1].tpmt_status"),
    ({"day": 1, "crp_mg_l": {"value": 5, "unit": _deep(100_000)}}, "PW404", "events[1].crp_mg_l"),
    ({"day": 1, "crp_mg_l": {"value": 5, "unit": "m" * 100_000}}, "PW404", "events[1].crp_mg_l"),
]


@pytest.mark.parametrize("event,code,where", REFUSED, ids=[f"{i}-{c}" for i, (_, c, _) in enumerate(REFUSED)])
def test_a_bad_event_is_refused_with_a_located_input_error(fresh, event, code, where):
    exc = _refused(fresh, event)
    assert exc.codes == [code]
    if where is not None:
        assert exc.diagnostics[0].file == where


@pytest.mark.parametrize("value", [5e-05, 0.00005, 1e-05, 1e-07, 1e-320, 5e-324, {"value": 5e-06, "unit": "mg/dL"},
                                   {"value": 1e-320, "unit": "mg/dL"}])
def test_an_in_range_value_evaluates_however_python_writes_it(fresh, value):
    """Durable refused ``5e-05`` (an exponent without a decimal point) with error 204."""
    tiny, small = _admitted(fresh), _admitted(fresh)
    r = tiny.observe({"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": value})
    ref = small.observe({"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 0.0001})
    assert r["state"] == ref["state"] and [t["rule"] for t in r["trace"]] == [t["rule"] for t in ref["trace"]]
    assert 0 <= tiny.dump()["facts"]["crp_mg_l"] < 0.0001
    assert fresh.engine.retired_sids == 0


def test_a_tiny_day_evaluates(fresh):
    s = fresh.start(patient())
    r = s.observe({**ADMIT, "day": 1e-05})
    assert r["state"] == "iv_steroids" and s.dump()["day"] == 1e-05
    s.observe({"day": 2e-05, "crp_mg_l": 5e-324})
    assert fresh.engine.retired_sids == 0


def test_a_tiny_value_in_any_number_field_at_any_point_of_the_course_evaluates(fresh):
    """1e-320 and 5e-05 everywhere: applied, or refused as an input (a range, a unit, a decision); never an
    engine error, and no engine session retired."""
    numeric = sorted(n for n, f in fresh.definition.fields.items()
                     if f is not None and f.type in ("number", "integer") and n not in fresh.builtins
                     and f.scope in ("event", "both"))
    applied = 0
    for _name, doc, _timed in bases(fresh):
        for name in numeric:
            for value in (1e-320, 5e-05):
                s = fresh.restore(doc)
                try:
                    s.observe({"day": doc.get("day") or 0, name: value})
                except InputError:
                    continue
                applied += 1
                strict(s.dump())
    assert applied >= 100 and fresh.engine.retired_sids == 0


@pytest.mark.parametrize("value", [5e-05, -5e-05, 1e-320, 5e-324, 1e16, -1e300, 1.5e-07, 0.1 + 0.2, 123.456, 1e-4, 0.0])
def test_engine_messages_write_every_float_in_a_form_durable_reads(value):
    text = message_text({"_k": "case", "x": value, "sid": "0"})
    assert json.loads(text)["x"] == value
    number = text.split('"x": ')[1].split(",")[0]
    mantissa, _, power = number.partition("e")
    assert not power or "." in mantissa
    with pytest.raises(ValueError):
        message_text({"x": math.nan})


def test_a_time_exactly_at_the_end_of_the_clinical_clock_is_accepted(fresh):
    s = _admitted(fresh)
    end = (datetime.fromisoformat(ADMITTED) + timedelta(days=MAX_DAY)).isoformat()
    s.observe({"time": end})
    assert s.dump()["day"] == MAX_DAY


def test_a_time_a_second_past_the_end_of_the_clinical_clock_is_refused(fresh):
    """The range is checked on the exact time: one second past the end rounds to the last day (4 places), but its
    clock hours are past the end, which a session document could not hold (found by the event fuzzer)."""
    s = _admitted(fresh)
    before = strict(s.dump())
    late = (datetime.fromisoformat(ADMITTED) + timedelta(days=MAX_DAY, seconds=1)).isoformat()
    with pytest.raises(InputError) as info:
        s.observe({"time": late, "crp_mg_l": 20})
    assert [(d.code, d.file) for d in info.value.diagnostics] == [("PW405", "events[1].time")]
    assert strict(s.dump()) == before


def test_numbers_are_normalised_on_the_way_in(fresh):
    class Float(float):
        pass

    class Int(int):
        pass

    s = _admitted(fresh)
    s.observe({"day": Float(1.5), "crp_mg_l": -0.0, "pulse_bpm": Float(90.5), "bloody_stools_24h": Int(4)})
    text = strict(s.dump())
    facts = s.dump()["facts"]
    assert type(facts["pulse_bpm"]) is float and type(facts["bloody_stools_24h"]) is int
    assert facts["crp_mg_l"] == 0 and "-0.0" not in text


def test_a_json_note_is_kept_as_a_copy(fresh):
    s = _admitted(fresh)
    note: dict[str, Any] = {"by": "ward", "tags": ["a", 1, 2.5, None, True], "é": "\u2028"}
    s.observe({"day": 1, "note": note, "id": "e-2"})
    before = strict(s.dump())
    note["tags"].append("later")
    assert strict(s.dump()) == before
    assert s.dump()["events"][-1]["note"] == {"by": "ward", "tags": ["a", 1, 2.5, None, True], "é": "\u2028"}
    assert strict(fresh.restore(json.loads(before)).dump()) == before


def test_observe_names_the_refused_event(fresh):
    s = _admitted(fresh)
    s.observe({"day": 1})
    with pytest.raises(InputError) as info:
        s.observe({"day": 2, "crp_mg_l": "high"})
    assert info.value.event == 2 and info.value.diagnostics[0].file == "events[2].crp_mg_l"



def test_a_clock_time_in_a_course_dated_by_day_without_an_admission_time_is_refused(fresh):
    """Events given by day count from the admission; with no admission time a clock time has nothing to count
    from, and taking it as the admission would place it at day 0, before the events already recorded (a CRP of
    today read as the admission CRP). Refused, located, nothing applied; with an admission time it is placed."""
    s = fresh.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 2, "stool_freq_24h": 6, "visible_blood": True})
    before = strict(s.dump())
    with pytest.raises(InputError) as info:
        s.observe({"time": "2026-03-04T10:00", "crp_mg_l": 80})
    (d,) = info.value.diagnostics
    assert (d.code, d.file, info.value.event) == ("PW405", "events[2].time", 2)
    assert "admission_time" in d.message and "day" in d.message
    assert strict(s.dump()) == before
    # the same event where the admission time is known: placed at its time, after the day-2 event
    timed = fresh.start(patient(admission_time="2026-03-02T08:00"))
    timed.observe(dict(ADMIT))
    timed.observe({"day": 2, "stool_freq_24h": 6, "visible_blood": True})
    result = timed.observe({"time": "2026-03-04T10:00", "crp_mg_l": 80})
    assert result["changes"]["operation"] != "insert" and timed.dump()["day"] == pytest.approx(2.0833, abs=1e-4)
    # a course dated by clock times from its first event: a later event may still be given by day
    clocked = fresh.start(patient())
    clocked.observe({"time": "2026-03-02T08:00", **{k: v for k, v in ADMIT.items() if k != "day"}})
    clocked.observe({"day": 1, "crp_mg_l": 70})
    assert clocked.dump()["day"] == 1


# -- patient records ---------------------------------------------------------------------------

PATIENTS = [
    ({"id": 10 ** 5000}, "PW412", "patient.id"),
    ({"id": "x" * 201}, "PW412", "patient.id"),
    ({"id": "p\ud800"}, "PW411", "patient.id"),
    ({"id": 1.5}, "PW400", "patient.id"),
    ({"id": "p", "admission_time": "0001-01-01T00:00:00+14:00"}, "PW405", "patient.admission_time"),
    ({"id": "p", "admission_time": "9999-12-31T23:59:59-14:00"}, "PW405", "patient.admission_time"),
    ({"id": "p", "admission_time": datetime(2026, 3, 2)}, "PW405", "patient.admission_time"),
    ({"id": "p", "note": {1, 2}}, "PW411", "patient.note"),
    ({"id": "p", "note": math.nan}, "PW410", "patient.note"),
    ({"id": "p", "note": _deep(100_000)}, "PW412", "patient.note" + "[0]" * MAX_FREE_DEPTH),
    ({"id": "p", "weight_kg": 10 ** 400}, "PW410", "patient.weight_kg"),
    ({"id": "p", "weight_kg": {"value": math.inf, "unit": "lb"}}, "PW410", "patient.weight_kg"),
    ({"id": "p", 10 ** 5000: 1}, "PW401", "patient.<an integer of about 5001 digits>"),
]


@pytest.mark.parametrize("record,code,where", PATIENTS, ids=[f"{i}-{c}" for i, (_, c, _) in enumerate(PATIENTS)])
def test_a_bad_patient_record_is_refused_with_a_located_input_error(fresh, record, code, where):
    with pytest.raises(InputError) as info:
        fresh.start(record)
    assert info.value.codes == [code] and info.value.diagnostics[0].file == where
    str(info.value).encode("utf-8")


def test_a_patient_id_may_be_a_long_integer(fresh):
    assert fresh.start({"id": 10 ** 30}).patient_id == str(10 ** 30)


# -- cases -------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,message", [
    ({1: "x", "title": "t"}, "a key of a case is text, not int"),  # TypeError from sorted() before
    ({None: 1}, "a key of a case is text, not NoneType"),
    ({"zz": 1, 2: 1}, "unknown key 'zz' in case"),
    ({"\ud800": 1}, "unknown key '\\ud800' in case"),
])
def test_a_case_with_odd_keys_is_refused_with_an_input_error(fresh, extra, message):
    with pytest.raises(InputError) as info:
        fresh.run_course({"patient": patient(), "events": [], **extra})
    assert info.value.codes == ["PW401"] and message in str(info.value)
    str(info.value).encode("utf-8")


def test_a_case_names_the_refused_event(fresh):
    with pytest.raises(InputError) as info:
        fresh.run_course({"patient": patient(), "events": [dict(ADMIT), {"day": 1, "note": {1, 2}}]})
    assert info.value.event == 1 and info.value.diagnostics[0].file == "events[1].note"


# -- helpers -----------------------------------------------------------------------------------

def test_parse_time_refuses_with_a_reason():
    assert parse_time("2026-03-02T09:00+01:00") == datetime(2026, 3, 2, 8, 0)
    for bad, reason in [(5, "text"), ("x" * 65, "at most"), ("2026-13-01", "ISO"), ("0001-01-01T00:00+01:00", "calendar")]:
        with pytest.raises(ValueError, match=reason):
            parse_time(bad)


def test_free_form_values_are_walked_without_recursion():
    assert free_form_problem({"a": [1, 2.5, "x", None, True, {"b": []}]}) is None
    assert free_form_problem(_deep(MAX_FREE_DEPTH)) is None
    problem = free_form_problem(_deep(MAX_FREE_DEPTH + 1))
    assert problem is not None and problem[1] == "PW412"
    assert free_form_problem(_deep(1_000_000)) is not None


def test_shown_value_is_short_whatever_the_value():
    for value in (10 ** 5000, _deep(100_000), "x" * 1_000_000, {i: i for i in range(10_000)}, "\ud800"):
        text = shown_value(value)
        assert len(text) < 200
        text.encode("utf-8")
