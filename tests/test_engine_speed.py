"""What makes the engine fast keeps its answers: the render cache, the summary result, the session
document built without deep copies and the batch run without intermediate results."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from pathway import load_pathway
from pathway.definition.effects import fill_text
from pathway.definition.model import Display

CASE = {"patient": {"id": "p1", "weight_kg": 70},
        "events": [{"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.9, "hb_g_dl": 10.2,
                    "crp_mg_l": 60, "albumin_g_l": 30, "uceis": 6},
                   {"day": 1, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 70}]}


def test_the_render_cache_tells_apart_what_reads_differently():
    template = "dose {dose} mg on day {day} ({flag})"
    assert fill_text(template, {"dose": 1.26, "day": 3.7, "flag": True}) == "dose 1.26 mg on day 3 (yes)"
    assert fill_text(template, {"dose": 1.26, "day": 3.7, "flag": True},
                     {"dose": Display(decimals=1)}) == "dose 1.3 mg on day 3 (yes)"
    assert fill_text(template, {"dose": 1.26, "day": 3.7, "flag": True},
                     {"dose": Display(step=0.5)}) == "dose 1.5 mg on day 3 (yes)"
    assert fill_text(template, {"dose": 1, "day": 3, "flag": 1}) == "dose 1 mg on day 3 (1)"
    assert fill_text(template, {"dose": True, "day": 3, "flag": False}) == "dose yes mg on day 3 (no)"
    assert fill_text(template, {"dose": -0.0, "day": 0}) == "dose -0 mg on day 0 (not recorded)"
    assert fill_text(template, {"dose": 0.0, "day": 0}) == "dose 0 mg on day 0 (not recorded)"
    assert fill_text("no names here", {"dose": 1}) == "no names here"
    # a value that cannot be a key is rendered all the same
    assert fill_text("{x}", {"x": ["a"]}) == "['a']"


def test_a_summary_result_is_the_full_result_without_the_trace(pw):
    session, _ = pw.run_course(copy.deepcopy(CASE))
    full, summary = session.result(), session.result(detail="summary")
    assert full["trace"] and "trace" not in summary
    assert {k: v for k, v in full.items() if k != "trace"} == summary
    assert session.result(detail="full") == full
    with pytest.raises(ValueError, match="'full' or 'summary'"):
        session.result(detail="brief")


def test_observe_amend_and_retract_answer_a_summary_and_the_trace_grows_by_what_each_event_added(pw):
    full = pw.start(copy.deepcopy(CASE["patient"]))
    brief = pw.start(copy.deepcopy(CASE["patient"]))
    for i, event in enumerate(CASE["events"]):
        before = brief.trace_length
        want = full.observe({"id": f"e{i}", **event})
        got = brief.observe({"id": f"e{i}", **event}, detail="summary")
        assert "trace" not in got and got == {k: v for k, v in want.items() if k != "trace"}
        assert brief.trace(before) == want["trace"][before:] and brief.trace_length == len(want["trace"])
    assert brief.trace() == full.result()["trace"]
    got = brief.amend("e1", {**CASE["events"][1], "crp_mg_l": 75}, detail="summary")
    want = full.amend("e1", {**CASE["events"][1], "crp_mg_l": 75})
    assert "trace" not in got and got == {k: v for k, v in want.items() if k != "trace"}
    got = brief.retract("e1", "entered twice", detail="summary")
    assert "trace" not in got and got["changes"]["operation"] == "retract"
    assert brief.trace() == full.retract("e1", "entered twice")["trace"]
    assert "trace" not in brief.as_one(lambda: {"operation": "none"}, detail="summary")
    # a copy: changing it changes nothing kept
    brief.trace()[0]["facts"].clear()
    assert brief.trace() == full.result()["trace"]


@pytest.mark.parametrize("detail", ["brief", None, 1])
def test_a_detail_that_is_not_full_or_summary_is_refused_and_changes_nothing(pw, detail):
    session, _ = pw.run_course(copy.deepcopy(CASE))
    before, length = session.dump(), session.trace_length
    event = {"day": 2, "stool_freq_24h": 7}
    for call in (lambda: session.observe(event, detail=detail), lambda: session.as_one(lambda: {}, detail=detail)):
        with pytest.raises(ValueError, match="'full' or 'summary'"):
            call()
    assert session.dump() == before and session.trace_length == length
    for start in (-1, True, 1.5):
        with pytest.raises(ValueError, match="whole number"):
            session.trace(start)  # type: ignore[arg-type]


LONGER = {"patient": {"id": "p2", "weight_kg": 70},
          "events": [{"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60,
                      "albumin_g_l": 32},
                     {"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80, "albumin_g_l": 30},
                     {"day": 3.5, "stool_freq_24h": 4, "visible_blood": False, "crp_mg_l": 20}]}


def test_a_session_keeps_no_evaluation_records_and_makes_them_again_from_its_events(pw):
    """What each evaluation saw is made again from the recorded events when asked for (a replay): the same
    records a session that keeps them all has, for every event and for the last one; the document (format 5)
    holds none, and a session resumed from its text without a replay gives the same result."""
    from pathway.runtime.restore import resume_verified

    lean = pw.start(copy.deepcopy(LONGER["patient"]))
    kept = pw.start(copy.deepcopy(LONGER["patient"]))
    kept.keep_evaluations("all")
    last = pw.start(copy.deepcopy(LONGER["patient"]))
    last.keep_evaluations("last")
    for event in LONGER["events"]:
        for s in (lean, kept, last):
            s.observe(copy.deepcopy(event))
    assert lean.state_evaluations() == [] and len(kept.state_evaluations()) >= 4
    assert {e[0] for e in last.state_evaluations()} == {2}  # compact records: the event first
    assert lean.evaluations == kept.evaluations == last.evaluations
    assert {e["event"] for e in lean.evaluations} == {0, 1, 2}
    assert lean.last_event_evaluations() == kept.last_event_evaluations() == last.last_event_evaluations() != []
    doc = lean.dump()
    assert doc["format"] == 5 and "evaluations" not in doc and kept.dump() == doc
    assert lean.result()["computed"] and resume_verified(pw, copy.deepcopy(doc)).result() == lean.result()
    with pytest.raises(ValueError, match="'none', 'last' or 'all'"):
        lean.keep_evaluations("some")


def test_a_document_of_format_4_restores_with_its_evaluations_checked(pw):
    """A document written before format 5 holds every evaluation: they are compared with the replay's (an
    edited one is refused, PW525), then dropped; format 5 with evaluations is refused (PW522); format 4
    without them is read as format 5 (the replay makes them)."""
    from pathway.core.errors import SessionError
    from pathway.runtime.state import inputs_checksum

    session = pw.start(copy.deepcopy(LONGER["patient"]))
    for event in LONGER["events"]:
        session.observe(copy.deepcopy(event))
    old = dict(session.dump(), format=4, evaluations=session.evaluations)
    old["checksum"] = inputs_checksum(old["patient"], old["events"], old["revisions"], old["acted"])
    restored = pw.restore(copy.deepcopy(old))
    assert restored.result() == session.result() and restored.state_evaluations() == []
    assert restored.dump() == session.dump()
    edited = copy.deepcopy(old)
    edited["evaluations"][0]["facts"]["crp_mg_l"] = 61
    with pytest.raises(SessionError) as err:
        pw.restore(edited)
    assert err.value.diagnostics[0].code == "PW525" and err.value.diagnostics[0].file.startswith("evaluations[0]")
    with pytest.raises(SessionError) as err:
        pw.restore(dict(copy.deepcopy(old), format=5))
    assert err.value.diagnostics[0].code == "PW522"
    assert pw.restore({k: v for k, v in copy.deepcopy(old).items() if k != "evaluations"}).dump() == session.dump()


def test_a_dump_and_the_evaluations_are_copies_the_caller_may_change(pw):
    session, _ = pw.run_course(copy.deepcopy(CASE))
    dump, evaluations = session.dump(), session.evaluations
    before = copy.deepcopy(dump)
    dump["events"][0]["crp_mg_l"] = 1
    dump["trace"][0]["facts"]["x"] = 1
    evaluations[-1]["derived"]["x"] = 1
    evaluations[-1]["frozen"]["x"] = 1
    assert session.dump() == before
    assert "x" not in session.evaluations[-1]["derived"] and "x" not in session.evaluations[-1]["frozen"]
    assert pw.restore(copy.deepcopy(before)).result() == session.result()


def test_run_case_gives_the_final_result_of_run_course(pw):
    session, results = pw.run_course(copy.deepcopy(CASE))
    final = pw.run_case(copy.deepcopy(CASE))
    assert final == session.result()
    assert {k: v for k, v in results[-1].items() if k != "changes"} == final


def _poison(value: object) -> None:
    """Change every dict and list inside ``value`` in place."""
    if isinstance(value, dict):
        for v in list(value.values()):
            _poison(v)
        value["poisoned"] = True
    elif isinstance(value, list):
        for v in value:
            _poison(v)
        value.append("poisoned")


def test_a_result_is_the_callers_to_change_every_dict_and_list_in_it():
    """A result is a fresh dict all the way down: a caller changing anything in it (after each event, in each
    scenario) changes neither the session's next result nor its document."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from golden import scenarios

    cache: dict = {}
    checked = 0
    for ls in scenarios():
        sc = ls.scenario
        key = (sc.profile, tuple(sorted(sc.parameters.items())))
        if key not in cache:
            cache[key] = load_pathway("asuc", profile=sc.profile, parameters=dict(sc.parameters) or None)
        try:
            s = cache[key].start(copy.deepcopy(sc.case.patient))
        except Exception:  # a scenario of a refused patient
            continue
        for event in sc.case.events:
            try:
                result = s.observe(copy.deepcopy(event))
            except Exception:  # a refused event: the scenario checks it
                continue
            pristine = json.dumps([s.result(), s.dump()], sort_keys=True)
            _poison(result)
            _poison(s.result(detail="summary"))
            assert json.dumps([s.result(), s.dump()], sort_keys=True) == pristine, (sc.id, event)
            checked += 1
    assert checked > 1000


def test_sessions_sharing_kept_values_never_see_each_others_events():
    """Sessions share equal values they keep (interned firings, history entries, trace entries): every scenario's
    course run one event at a time in turn with all the others gives, after each event, what it gives alone."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from golden import scenarios

    cache: dict = {}
    courses = []
    for ls in scenarios():
        sc = ls.scenario
        key = (sc.profile, tuple(sorted(sc.parameters.items())))
        if key not in cache:
            cache[key] = load_pathway("asuc", profile=sc.profile, parameters=dict(sc.parameters) or None)
        courses.append((cache[key], sc))

    def step(session, event):
        try:
            return json.dumps(session.observe(copy.deepcopy(event)), sort_keys=True)
        except Exception as exc:  # a refused event: the refusal is what the course gives
            return repr(exc)

    def started(pw, sc):
        try:
            return pw.start(copy.deepcopy(sc.case.patient))
        except Exception:  # a scenario of a refused patient
            return None

    alone = []
    for pw, sc in courses:
        s = started(pw, sc)
        alone.append([step(s, e) for e in sc.case.events] if s is not None else [])
    sessions = [started(pw, sc) for pw, sc in courses]
    together: list[list[str]] = [[] for _ in courses]
    for r in range(max(len(sc.case.events) for _, sc in courses)):
        for i, ((_, sc), s) in enumerate(zip(courses, sessions, strict=True)):
            if s is not None and r < len(sc.case.events):
                together[i].append(step(s, sc.case.events[r]))
    for (_, sc), a, t in zip(courses, alone, together, strict=True):
        assert t == a, sc.id
    assert sum(map(len, alone)) > 1000


def test_values_of_one_hash_are_never_confused_when_shared():
    """Shared values are keyed by a hash of their exact bytes: equal values (same types) share one object;
    another value under the same key is checked and is then kept as it is, never swapped for the other."""
    import marshal

    from pathway.runtime import state

    state.forget_shared()
    first = state.interned({"crp_mg_l": 60, "visible_blood": True})
    again = state.interned({"crp_mg_l": 60, "visible_blood": True})
    assert again is first
    assert state.interned({"crp_mg_l": 60.0, "visible_blood": True}) is not first  # 60.0 is not 60
    entry = state.history_entry(3, 60, 72.0, 1)
    assert state.history_entry(3, 60, 72.0, 1) is entry
    # a colliding key: another value stored under the key this value's bytes hash to
    value = {"crp_mg_l": 61, "visible_blood": False}
    state._SHARED[hash(marshal.dumps(value, 2))] = {"crp_mg_l": 99}
    got = state.interned(value)
    assert got is value and got == {"crp_mg_l": 61, "visible_blood": False}
    state.forget_shared()


def test_compact_trace_entries_and_kept_facts_share_only_equal_values_of_the_same_types():
    """A session keeps trace entries and decision facts as compact tuples with shared heads; equal entries are
    shared between sessions, never ones that differ in a value's type (1, 1.0 and True; 0.0 and -0.0), and
    each reads back as the dict the document shows."""
    from pathway.runtime import state

    state.forget_shared()
    one = state.trace_entry(2, 3, "iv_steroids", "oxford_index", "then", {"crp_mg_l": 50, "stool_freq_24h": 9},
                            None, None, None)
    assert state.trace_entry(2, 3, "iv_steroids", "oxford_index", "then", {"crp_mg_l": 50, "stool_freq_24h": 9},
                             None, None, None) is one
    other = state.trace_entry(2, 3, "iv_steroids", "oxford_index", "then", {"crp_mg_l": 50.0, "stool_freq_24h": 9},
                              None, None, None)
    assert other is not one and type(state.entry_dict(other)["facts"]["crp_mg_l"]) is float
    assert other[0] is one[0]  # one head
    zero = state.trace_entry(2, 3, "s", "r", "then", {"x": 0.0}, None, None, None)
    assert state.trace_entry(2, 3, "s", "r", "then", {"x": -0.0}, None, None, None) is not zero
    moved = state.trace_entry(4, 5, "a", "r", "then", {"x": True}, ("y",), "a", "b")
    assert state.entry_dict(moved) == {"event": 4, "day": 5, "state": "a", "rule": "r", "branch": "then",
                                       "facts": {"x": True}, "missing": ["y"], "from": "a", "to": "b"}
    assert state.entry_move(moved) == (4, "b", "r")
    kept = state.kept_entry("high", 3, 2, "day3", "lindgren_index", "then", {"crp_mg_l": 50}, {"crp_mg_l": 3})
    again = state.kept_entry(7.5, 3, 2, "day3", "lindgren_index", "then", {"crp_mg_l": 50}, {"crp_mg_l": 3})
    assert again[0] is kept[0] and again[5] is kept[5]  # head and recorded days shared
    assert state.kept_entry("high", 3, 2, "day3", "lindgren_index", "then", {"crp_mg_l": 50},
                            {"crp_mg_l": 3.0})[5] is not kept[5]
    doc = state.kept_dict(kept)
    assert doc == {"value": "high", "day": 3, "event": 2, "decision_point": "day3", "rule": "lindgren_index",
                   "branch": "then", "facts": {"crp_mg_l": 50}, "recorded": {"crp_mg_l": 3}}
    assert state.kept_dict(state.compact_kept(doc)) == doc
    assert state.kept_get(kept, "missed") is False and state.kept_get(kept, "recorded") == {"crp_mg_l": 3}
    missed = state.kept_entry("unknown", 4, 3, "day3", "ho_unknown", "then", {}, {}, missed=True)
    assert state.kept_dict(missed)["missed"] is True and state.kept_get(missed, "facts") == {}
    state.forget_shared()
