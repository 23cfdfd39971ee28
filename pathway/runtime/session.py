"""One patient's course through a pathway: events in, a result out (JSON-ready dicts).

A session is isolated (its own facts, state and trace) and deterministic: the same patient
and events give byte-identical JSON. An event is validated first and evaluated on a copy of the
session's state; the session keeps the copy only when the whole event was evaluated without error.

The events form a timeline in clinical time. An event may carry an ``id``: the same id again with
the same content is a no-op, with other content a refusal (amend it instead). An event earlier
than the latest one (a late result) is placed at its time and the course is evaluated again from
the timeline; :meth:`Session.amend` and :meth:`Session.retract` change or withdraw an event by id
the same way. Events at the same clinical time keep their arrival order; otherwise the result
does not depend on the order in which events arrive, except that a confirmation (``confirmed_by``)
confirms only the values that had arrived when it was recorded: the session keeps the order in which
its events arrived (``SessionState.arrived``; an amended event arrives when it is amended). Every late
placement, amendment and retraction is kept in ``revisions``, and every result returned after one lists
its ``changes``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.core.errors import Diagnostic, EngineError, InputError, TransitionRefused
from pathway.definition.clock import hours_between, parse_time
from pathway.definition.effects import Propose, Transition, derived_by
from pathway.definition.inputs import free_form_problem, shown_value, validate_event, validate_patient
from pathway.runtime import changes, facts
from pathway.runtime.decisions import (
    acting_fields,
    blocked_records,
    in_effect,
    overruled_item,
    overruled_records,
    refuse_untimely,
    standing,
    unacted_records,
    untimely,
)
from pathway.runtime.moves import Move, choose, is_conflict, top_moves
from pathway.runtime.records import record, text_values
from pathway.runtime.result import RESULT_KEYS, build_result, copy_trace
from pathway.runtime.state import (
    SESSION_FORMAT,
    SessionState,
    arrival_order,
    evaluation,
    evaluation_dict,
    evaluation_get,
    first_history,
    history_entry,
    interned,
    json_copy,
    kept_entry,
    pack,
    shared_list,
    shared_path,
    trace_entry,
)
from pathway.runtime.watchdogs import overdue_records

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway
    from pathway.runtime.engine import Firing

__all__ = ["Session", "RESULT_KEYS", "SESSION_FORMAT", "start_session", "observed_form", "replay_event"]


class Session:
    """A patient's session. Create with :meth:`Pathway.start`; feed with :meth:`observe`."""

    def __init__(self, pathway: Pathway, state: SessionState):
        self._pathway = pathway
        self._st = state
        #: what the last result returned showed (:func:`changes.kept_view`), to list the next one's changes
        self._view: tuple[Any, ...] | None = None
        #: set by ``Pathway.restore(doc, replay=True)`` on a session moved from other rules: what it ran under
        #: (``from``), what it runs under (``to``), its ``events`` and the ``differences`` the new rules make
        self.migration: dict[str, Any] | None = None

    # -- public API --------------------------------------------------------------------
    @property
    def patient_id(self) -> str:
        return self._st.patient_id

    @property
    def state(self) -> str:
        return self._st.state

    @property
    def path(self) -> list[str]:
        return list(self._st.path)

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        """Every evaluation so far: ``event``, ``day``, ``state``, the ``facts`` it saw, the ``derived`` facts and
        where each ``computed`` input's value came from. A session keeps those of its last event; those of the
        events before it are made again by running the recorded events on a new session (what a restore
        does), which gives the same evaluations."""
        return json_copy([evaluation_dict(e) for e in self._evaluation_records("all")])  # type: ignore[no-any-return]

    def _evaluation_records(self, need: str) -> list[Any]:
        """The evaluation records of every event (``need`` "all") or of the last one ("last"): those the state
        keeps, or those of a replay of the recorded events."""
        st = self._st
        if st.evaluations_kept == "all" or (need == "last" and st.evaluations_kept == "last") or not st.events:
            return st.evaluations
        # the recorded patient and events run again on a new session that keeps them all (as a restore
        # replays them; the moves taken on decisions that stand, too)
        replay = start_session(self._pathway, copy.deepcopy(st.patient))
        replay.keep_acted(list(st.acted))
        replay.keep_arrived(list(st.arrived))
        replay.keep_evaluations("all")
        for entry in st.events:
            replay_event(replay, entry)
        return replay._st.evaluations

    def last_event_evaluations(self) -> list[dict[str, Any]]:
        """The evaluations of the last applied event only (a fresh copy): the first is the state the
        event found, the others those it moved through."""
        last = len(self._st.events) - 1
        return json_copy([evaluation_dict(e) for e in self._evaluation_records("last")  # type: ignore[no-any-return]
                          if evaluation_get(e, "event") == last])

    @property
    def pathway(self) -> Pathway:
        """The pathway this session runs under."""
        return self._pathway

    @property
    def admission(self) -> datetime | None:
        """The admission time (UTC, from the patient record or the first timed event), if known."""
        return self._st.admission

    def recorded_events(self) -> list[dict[str, Any]]:
        """The events as recorded, in timeline order (a fresh copy)."""
        return json_copy(self._st.events)  # type: ignore[no-any-return]

    def share(self) -> Session:
        """A new session on this session's state, not copied: an operation never changes a state in place
        (it replaces it), so the two go their own ways from their next event (a store's cache of the
        sessions it saved hands these out)."""
        return Session(self._pathway, self._st)

    def log_mark(self) -> tuple[tuple[dict[str, Any], ...], int]:
        """Where this session's record stands, for :meth:`appended_since`: its recorded events (the entries
        themselves, never changed in place) and the number of its revisions."""
        return tuple(self._st.events), len(self._st.revisions)

    def appended_since(self, mark: tuple[tuple[dict[str, Any], ...], int]) -> list[dict[str, Any]] | None:
        """The events recorded after ``mark`` (a :meth:`log_mark` of this session) when the record only grew
        since then: the same events first and no revision (a late, amended or retracted event, a replay
        under other rules) in between; else None. The entries are the session's own: read, never change."""
        entries, revisions = mark
        events = self._st.events
        if len(self._st.revisions) != revisions or len(events) < len(entries):
            return None
        if any(a is not b for a, b in zip(events, entries, strict=False)):
            return None  # the record was rebuilt or put back to another course
        return events[len(entries):]

    def shown_record(self) -> dict[str, Any]:
        """What the session shows now as a document records it (``state``, ``path``, ``current``,
        ``warnings``; read from :func:`pathway.runtime.changes.recorded_view`): not copied, read only."""
        st = self._st
        return {"state": st.state, "path": st.path, "current": st.current, "warnings": st.warnings}

    # Several operations applied as one (a FHIR Bundle): the state before them, put back on a refusal.
    # Safe because an operation never changes a state in place: it replaces it with a new one.
    def checkpoint(self) -> tuple[SessionState, tuple[Any, ...] | None]:
        return self._st, self._view

    def rollback(self, saved: tuple[SessionState, tuple[Any, ...] | None]) -> None:
        self._st, self._view = saved

    def shown_view(self) -> dict[str, Any]:
        """What the last result returned showed (:func:`changes.view`), to list the next one's changes."""
        if self._view is not None:
            return changes.unkept_view(self._view)
        return changes.view(self.result(detail="summary"))

    def remember_view(self, view: dict[str, Any]) -> None:
        self._view = changes.kept_view(view)

    def observe(self, event: dict[str, Any], detail: str = "full") -> dict[str, Any]:
        """Apply one event (``day`` or ``time`` plus field values, an optional ``id`` and ``note``);
        return the result after it, with its ``changes`` (see :mod:`pathway.runtime.changes`).
        ``detail="summary"``: the result without ``trace``, whose copy grows with the course (a caller
        that keeps its own record reads the new entries with :meth:`trace`); see :meth:`result`.

        An event earlier than the latest one is placed at its time and the course evaluated again
        (``changes.operation`` is ``insert``); an ``id`` seen before with the same content changes
        nothing (``duplicate``). Raises InputError (bad event; ``.event`` is its index; PW413 for an
        id seen before with other content), TransitionRefused or EngineError; in every case the
        session is left exactly as it was.
        """
        return self._changing(lambda: self._receive(event), detail)

    def receive(self, event: dict[str, Any]) -> None:
        """Apply one event as :meth:`observe` does, without building a result (a batch run that reads
        only the final result); the next :meth:`observe` lists its ``changes`` from the state after it."""
        self._receive(event)
        self._view = None

    def amend(self, event_id: str | int, event: dict[str, Any], detail: str = "full") -> dict[str, Any]:
        """Replace the event recorded with ``event_id`` by ``event`` (which keeps that id) and evaluate
        the course again from the timeline; the result lists its ``changes``. InputError PW414 when no
        event has that id; nothing changes when anything is refused. ``detail``: as :meth:`observe`."""
        return self._changing(lambda: self._amend(event_id, event), detail)

    def retract(self, event_id: str | int, reason: str | None = None, detail: str = "full") -> dict[str, Any]:
        """Withdraw the event recorded with ``event_id`` (entered in error) and evaluate the course
        again without it; it stays in ``revisions`` with the ``reason``. InputError PW414 when no event
        has that id; nothing changes when anything is refused. ``detail``: as :meth:`observe`."""
        return self._changing(lambda: self._retract(event_id, reason), detail)

    def _changing(self, operation: Any, detail: str = "full") -> dict[str, Any]:
        _check_detail(detail)  # before anything is applied: a refused call changes nothing
        before = self.shown_view()
        meta = operation()
        result = self.result(detail)
        after = changes.view(result)
        self._view = changes.kept_view(after)
        result["changes"] = {**meta, "items": changes.differences(before, after)}
        return result

    def as_one(self, operation: Callable[[], dict[str, Any]], detail: str = "full") -> dict[str, Any]:
        """Run ``operation`` (several observes, amends or retracts on this session) as one: on any exception
        the session is put back as it was and the exception raised; else the result, whose ``changes`` are
        what ``operation`` returns (``operation``, ``operations``...) plus the ``items`` changed since the
        last result returned. ``detail``: as :meth:`observe`."""
        _check_detail(detail)
        saved = self.checkpoint()
        try:
            return self._changing(operation, detail)
        except BaseException:
            self.rollback(saved)
            raise

    def _receive(self, event: dict[str, Any]) -> dict[str, Any]:
        st = self._st
        index = len(st.events)
        event_id = event.get("id") if isinstance(event, dict) else None
        if event_id is not None:
            at = self._index_of(event_id)
            if at is not None:
                try:
                    self._check_same(at, event, f"events[{index}]")
                except InputError as exc:
                    exc.event = index  # like every refusal of observe: the index the event arrived at
                    raise
                return {"operation": "duplicate", "id": event_id, "event": at}
        late = self._apply(event)
        if late is None:
            return {"operation": "append", "id": event_id, "event": index}
        timeline = [observed_form(e) for e in st.events]
        at = _place(st.events, late)
        timeline.insert(at, event)
        origin: list[int | None] = list(range(len(st.events)))
        origin.insert(at, None)
        self._rebuild(timeline, origin, at, {"op": "insert", "id": event_id, "event": at, "day": late,
                                             "latest_day": st.events[-1]["day"]}, index, new_at=at)
        return {"operation": "insert", "id": event_id, "event": at, "reevaluated_from": at}

    def _amend(self, event_id: Any, event: Any) -> dict[str, Any]:
        st = self._st
        at = self._require(event_id, "amend")
        if not isinstance(event, dict):
            raise InputError([Diagnostic(f"events[{at}]", 0, 0, "PW400", "an event must be a mapping with 'day' or 'time'")])
        if "id" in event and event["id"] != event_id:
            raise InputError([Diagnostic(f"events[{at}].id", 0, 0, "PW413",
                                         f"an amendment keeps the id of the event it amends ({_shown(event_id)}), "
                                         f"not {_shown(event['id'])}")])
        new = {**event, "id": event_id}
        day = self._validated_day(new, at)
        timeline = [observed_form(e) for e in st.events]
        del timeline[at]
        rest = st.events[:at] + st.events[at + 1:]
        place = at if day == st.events[at]["day"] else _place(rest, day)
        timeline.insert(place, new)
        origin: list[int | None] = list(range(len(st.events)))
        del origin[at]
        origin.insert(place, None)
        # a decision the amendment records again unchanged (a note added, a value beside it corrected) keeps
        # the moves taken on it
        values = self._validated(new, f"events[{at}]")[1]
        decisions = self._pathway.definition.decisions
        same = frozenset(name for name in decisions if name in values and st.events[at].get(name) == values[name])
        before = {name for name in decisions if name in st.events[at]}
        # the amended event is checked as a new one (a decision where it is not taken refused) unless every
        # decision it records is the one it recorded before (or it records none): then it is not a new decision
        strict = before != same or any(name in values for name in decisions if name not in same)
        self._rebuild(timeline, origin, min(at, place),
                      {"op": "amend", "id": event_id, "event": place, "was": st.events[at]}, at,
                      new_at=place if strict else None, amended=(at, place, same))
        return {"operation": "amend", "id": event_id, "event": place, "reevaluated_from": min(at, place)}

    def _retract(self, event_id: Any, reason: Any) -> dict[str, Any]:
        st = self._st
        at = self._require(event_id, "retract")
        revision: dict[str, Any] = {"op": "retract", "id": event_id, "event": at, "was": st.events[at]}
        if reason is not None:
            problem = free_form_problem(reason)
            if not isinstance(reason, str) or problem is not None:
                raise InputError([Diagnostic("reason", 0, 0, problem[1] if problem else "PW402",
                                             problem[2] if problem else f"a reason is text, not {_shown(reason)}")])
            revision["reason"] = reason
        timeline = [observed_form(e) for e in st.events]
        del timeline[at]
        origin: list[int | None] = list(range(len(st.events)))
        del origin[at]
        self._rebuild(timeline, origin, at, revision, at)
        return {"operation": "retract", "id": event_id, "event": at, "reevaluated_from": at}

    def _index_of(self, event_id: Any) -> int | None:
        for i, entry in enumerate(self._st.events):
            if "id" in entry and entry["id"] == event_id and type(entry["id"]) is type(event_id):
                return i
        return None

    def _require(self, event_id: Any, what: str) -> int:
        if isinstance(event_id, bool) or not isinstance(event_id, (str, int)):
            raise InputError([Diagnostic("id", 0, 0, "PW414", f"to {what} an event, give its id (text or a whole number), "
                                                             f"not {_shown(event_id)}")])
        at = self._index_of(event_id)
        if at is None:
            raise InputError([Diagnostic("id", 0, 0, "PW414", f"no event has the id {_shown(event_id)}: nothing to {what}")])
        return at

    def _check_same(self, at: int, event: dict[str, Any], where: str) -> None:
        """PW413 unless ``event`` records what the event at ``at`` recorded (the same id sent again)."""
        try:
            day, values, _admission, _warnings = self._validated(event, where)
            same = _entry(day, values, event) == self._st.events[at]
        except InputError:
            same = False
        if not same:
            raise InputError([Diagnostic(f"{where}.id", 0, 0, "PW413",
                                         f"the id {_shown(event.get('id'))} was recorded with other values "
                                         f"(events[{at}]); amend that event to change it")])

    def _validated(self, event: dict[str, Any], where: str) -> tuple[float, dict[str, Any], datetime | None,
                                                                       list[dict[str, Any]]]:
        st = self._st
        d = self._pathway.definition
        return validate_event(event, d.fields, self._pathway.builtins, where=where, admission=st.admission,
                              checks=d.consistency, dated_by_day=st.admission is None and bool(st.events))

    def _validated_day(self, event: dict[str, Any], index: int) -> float:
        try:
            return self._validated(event, f"events[{index}]")[0]
        except InputError as exc:
            exc.event = index
            raise

    def _rebuild(self, timeline: list[dict[str, Any]], origin: list[int | None], start: int, revision: dict[str, Any],
                 arrival: int, new_at: int | None = None,
                 amended: tuple[int, int, frozenset[str]] | None = None) -> None:
        """Evaluate the course again from the patient along ``timeline`` (in time order); keep it only
        when every event is applied, with ``revision`` added to the revisions. A refusal (PW415) names
        ``arrival`` as its event: the index the caller's event arrived at, or the event amended.
        ``timeline[new_at]`` is the caller's new or amended event: checked as a new event is (a decision
        where it is not taken is refused, PW407); every other event is already in the course (replayed).
        ``new_at`` None: every event is one already in the course (an amendment that records no new decision).
        ``origin[i]``: the index ``timeline[i]`` had in the course (None: the caller's event), so the moves
        taken on decisions (SessionState.acted) follow their events; those of a withdrawn or amended event, or
        on a decision recorded by one, go, except that ``amended`` (its index before and after, and the decisions
        it records unchanged) keeps the moves on those decisions."""
        fresh = start_session(self._pathway, self._st.patient)
        now = {old: i for i, old in enumerate(origin) if old is not None}
        kept = []
        for entry in self._st.acted:
            event, recorded = entry["event"], entry["recorded"]
            if amended is not None and recorded == amended[0] and entry["field"] in amended[2]:
                recorded = amended[1]
            elif recorded is not None:
                recorded = now.get(recorded)
                if recorded is None:
                    continue
            # the event the move was taken in: where it went; amended, where the amendment put it; withdrawn,
            # the event before it (the move was taken by then); never before the decision was recorded
            if amended is not None and event == amended[0]:
                event = amended[1]
            elif event in now:
                event = now[event]
            else:
                event = next((now[old] for old in range(event - 1, -1, -1) if old in now), 0)
            kept.append({**entry, "event": max(event, recorded if recorded is not None else 0), "recorded": recorded})
        fresh._st.acted = tuple(kept)
        # the order the events arrived in: each kept event as before, the caller's new or amended event last (an
        # amendment records the event's values again); set before the replay, whose positions are the final ones
        old = self._st.arrived
        fresh._st.arrived = arrival_order([len(origin) if o is None else old[o] if old else o for o in origin])
        for i, event in enumerate(timeline):
            try:
                if fresh._apply(event, replaying=i != new_at) is not None:  # cannot happen: in time order
                    raise EngineError(f"events[{i}] is out of time order in the timeline")
            except InputError as exc:
                note = Diagnostic(f"events[{start}]", 0, 0, "PW415",
                                  f"evaluating the course again from events[{start}] refuses events[{i}]: "
                                  + "; ".join(x.message for x in exc.diagnostics[:3]))
                err = InputError([note, *exc.diagnostics])
                err.event = arrival
                raise err from None
        fresh._st.revisions = [*self._st.revisions, {**copy.deepcopy(revision)}]
        self._st = fresh._st

    def _apply(self, event: dict[str, Any], replaying: bool = False) -> float | None:
        """Validate ``event`` and, when it is not earlier than the latest event, evaluate it (a restore
        replays events with this); return its day without applying it when it is earlier.

        ``replaying``: the event is already in the course (a re-evaluation or a restore), so a decision it
        records where it is not taken is kept, not acted on and said aloud (SessionState.unacted) rather
        than refused (PW407), which a new event is."""
        st = self._st
        try:
            day, values, admission, warnings = self._validated(event, f"events[{len(st.events)}]")
        except InputError as exc:
            exc.event = len(st.events)
            raise
        if st.events and day < st.events[-1]["day"]:
            return day
        work = st.copy()
        work.admission = admission
        work.warnings = shared_list([interned(w) for w in warnings])  # the event's own; kept only if the whole event is applied
        try:
            _step(self._pathway, work, day, _clock_hours(day, event, admission), values, event, replaying)
        except InputError as exc:
            exc.event = len(st.events)
            raise
        self._st = work
        return None

    def result(self, detail: str = "full") -> dict[str, Any]:
        """The current result (the contract of DESIGN §2); a fresh JSON-ready dict.

        ``detail="summary"``: the same without ``trace`` (its cost grows with the course; the session
        keeps it, and a full result or :meth:`dump` still gives it)."""
        _check_detail(detail)
        return build_result(self._pathway, self._st, trace=detail == "full")

    def trace(self, start: int = 0) -> list[dict[str, Any]]:
        """The entries of the trace from index ``start`` on (a fresh copy, as a full result shows them):
        after ``observe(event, detail="summary")``, ``trace(n)`` with the length before it gives the
        entries that event added. A late placement, amendment or retraction evaluates the course again
        and rewrites the trace from the event it changed (``changes.reevaluated_from``)."""
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start is a whole number from 0, not {start!r}")
        return copy_trace(self._st.trace[start:])

    @property
    def trace_length(self) -> int:
        """The number of entries in the trace (what a full result's ``trace`` would hold)."""
        return len(self._st.trace)

    def to_json(self) -> str:
        """Deterministic JSON of the current result (sorted keys)."""
        return json.dumps(self.result(), sort_keys=True, ensure_ascii=False, indent=2)

    # -- persistence -------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Everything needed to resume this session later (JSON-ready), with the fingerprint of the
        pathway it runs under; :meth:`Pathway.restore` refuses it under any other rules."""
        d = self._pathway.definition
        return self._st.to_doc(d.id, d.version, d.profile, self._pathway.fingerprint, self._pathway.provisional_values)

    def keep_acted(self, acted: list[dict[str, Any]]) -> None:
        """Set the moves taken on decisions that stand (a restore takes them from the document, before its replay)."""
        self._st.acted = tuple(copy.deepcopy(entry) for entry in acted)

    def keep_arrived(self, arrived: list[int]) -> None:
        """Set the order in which the recorded events arrived (SessionState.arrived; a restore takes it from the
        document, before its replay: each evaluation of the replay reads it)."""
        self._st.arrived = tuple(arrived)

    def keep_revisions(self, revisions: list[dict[str, Any]]) -> None:
        """Set the record of revisions (a restore takes it from the verified document)."""
        self._st.revisions = revisions

    def keep_evaluations(self, which: str) -> None:
        """Which evaluation records this session keeps from now on: ``"none"`` (a session's default: they are
        made again from the recorded events when asked for), the ``"last"`` event's (a caller that reads
        :meth:`last_event_evaluations` after every event), or ``"all"``."""
        if which not in ("none", "last", "all"):
            raise ValueError(f"which is 'none', 'last' or 'all', not {which!r}")
        st = self._st
        st.evaluations_kept = which
        if which == "none":
            st.evaluations = []
        elif which == "last":
            last = len(st.events) - 1
            st.evaluations = [e for e in st.evaluations if evaluation_get(e, "event") == last]

    def state_evaluations(self) -> list[Any]:
        """The evaluation records this session's state keeps (compact, not copied: never change them)."""
        return self._st.evaluations

    def state_values(self) -> dict[str, Any]:
        """The document keys of this session's state, not copied (a restore compares them; never change them)."""
        return self._st.values(self._pathway.provisional_values)

    @classmethod
    def load(cls, pathway: Pathway, doc: dict[str, Any]) -> Session:
        """The same as :meth:`Pathway.restore` (kept for code that called it)."""
        return pathway.restore(doc)


def _clock_hours(day: float, event: dict[str, Any], admission: datetime | None) -> float:
    """Hours since admission: exact from an event's clock ``time``, else ``day`` x 24."""
    if "time" in event and admission is not None:
        return hours_between(admission, parse_time(event["time"]))  # validated: it parses
    return float(day) * 24


def _step(pw: Pathway, st: SessionState, day: float, hours: float, values: dict[str, Any],
          raw_event: dict[str, Any], replaying: bool = False) -> None:
    """Evaluate one validated event on ``st`` (a working copy): record the values, then evaluate the
    current state, follow the move it takes, and repeat until a state takes no move (``replaying``: see
    Session._apply)."""
    d = pw.definition
    index = len(st.events)
    st.day = day
    st.hours = hours
    # a provisional value ('pending') never replaces a result as the current value (FieldDef.provisional)
    # (the same reading as state.current_entry, which the document and the ages use)
    provisional = pw.provisional_values
    current = {name: value for name, value in values.items()
               if name not in provisional or not (value in provisional[name] and name in st.facts
                                                  and st.facts[name] not in provisional[name])}
    st.facts.update(current)
    for name, value in values.items():
        st.record_value(name, history_entry(day, value, hours, index))
    st.events.append(_entry(day, values, raw_event))
    if st.arrived and len(st.arrived) < len(st.events):  # appended to a course placed out of arrival order
        st.arrived += (index,)  # (a re-evaluation or a restore sets the whole order before it replays)
    recorded = {name: value for name, value in values.items() if name in d.decisions}
    for name in recorded:
        st.recorded_event[name] = index
    records = st.evaluations_kept  # which evaluation records the session keeps (Session.keep_evaluations)
    if records == "last":
        st.evaluations = []
    passed = [st.state]  # the states this event is evaluated in
    stood: list[dict[str, Any]] = []  # the moves on decisions that stood in this event
    taken: list[dict[str, Any]] = []
    event_derived: dict[str, Any] = {}
    values_now, computed = facts.values_now(pw, st)
    # read only, as the kept facts and each evaluation's derived facts: shared (each input's provenance too)
    computed = interned({name: interned(entry) for name, entry in computed.items()})
    st.computed = computed
    _missed(pw, st, index)
    frozen = interned(facts.frozen_now(pw, st))
    for _hop in range(len(d.spec.states) + 1):
        snapshot = facts.snapshot(pw, st, values_now)
        firings, derived = pw.engine.evaluate(st.state, snapshot, frozen)
        if st.state in pw.reads_proposals:
            firings, derived, snapshot = _with_proposals(pw, st.state, snapshot, frozen, firings, derived)
        derived = interned(derived)
        st.derived = derived
        event_derived.update({k: v for k, v in derived.items() if k not in frozen})
        # by reference: the engine's derived facts and the event's kept facts are never changed
        # afterwards (every reader gets a copy: Session.evaluations, dump)
        present = {k: v for k, v in snapshot.items() if v is not None}
        if records != "none":
            st.evaluations.append(evaluation(index, day, st.state, present, derived, computed, frozen))
        _keep(pw, st, firings, derived, index)
        chosen = _choose(pw, st.state, firings)
        for f in firings:  # compact entries (state.compact_entry): read through state.entry_dict
            moved = chosen is not None and f is chosen[0]
            st.trace.append(trace_entry(index, day, st.state, f.rule, f.branch, f.facts,
                                        tuple(f.missing) if f.missing else None, st.state if moved else None,
                                        chosen[1] if chosen is not None and moved else None))
        texts = text_values(d.params, present, st.derived)  # the same names: it reads the values present
        if chosen is None and st.acted:
            kept = standing(pw, st, index)
            if kept is not None and kept not in stood:  # a move taken before on a decision stands: taken, said why
                stood.append(kept)  # once in an event (a rule may move the patient back: no loop)
                item = overruled_item(pw, st, kept, snapshot, derived, firings)
                st.overruled += (item,)
                st.trace.append(trace_entry(index, day, st.state, f"decision.{item['field']}", "then",
                                            {item["field"]: item["value"]}, None, st.state, kept["to"]))
                _enter(st, kept["to"], index, day, passed)
                continue
        if chosen is None:
            if not replaying:
                refuse_untimely(pw, recorded, passed, f"events[{index}]")
            else:
                st.unacted += tuple({"field": name, "value": recorded[name], "event": index, "day": day, "state": st.state}
                                    for name in untimely(pw, recorded, passed) if not in_effect(st, name, index))
            # Only what makes up "now" is rendered: the moves taken and the final state's firings,
            # and any recorded decision that could not be acted on, said aloud.
            st.current = (taken + [record(f, snapshot, texts, pw.display, pw.rule(f.rule)) for f in firings]
                          + blocked_records(pw, st, snapshot, derived, firings) + unacted_records(pw, st)
                          + overruled_records(st))
            st.current += overdue_records(pw, st, snapshot, derived, st.current, texts)
            # kept read only (a result copies what it shows): equal records shared between sessions
            st.current = shared_list([interned(item) for item in st.current])
            # The result shows every fact derived during this event, in every state it passed.
            st.derived = interned(event_derived)
            # kept read only (a working copy copies them): equal ones shared between sessions
            st.entered, st.recorded_event, st.path = interned(st.entered), interned(st.recorded_event), shared_path(st.path)
            return
        firing, target = chosen
        if not pw.graph.has_edge(st.state, target):
            raise TransitionRefused(firing.rule, st.state, target)
        taken.append(record(firing, snapshot, texts, pw.display, pw.rule(firing.rule)))
        acting = [name for name in acting_fields(pw, firing.rule) if st.facts.get(name) is not None]
        if acting:  # a move on a recorded decision: it stands from now on (while that decision is recorded)
            name = acting[0]
            acted = {"event": index, "day": day, "from": st.state, "to": target, "rule": firing.rule,
                     "field": name, "value": st.facts[name], "recorded": st.recorded_event.get(name)}
            if acted not in st.acted:
                st.acted += (acted,)
        _enter(st, target, index, day, passed)
    raise EngineError(f"more than {len(d.spec.states)} transitions in one event: the rules loop")


def _with_proposals(pw: Pathway, state: str, snapshot: dict[str, Any], frozen: dict[str, Any], firings: list[Firing],
                    derived: dict[str, Any]) -> tuple[list[Firing], dict[str, Any], dict[str, Any]]:
    """The evaluation again with ``proposed_<state>`` true for each move a rule of it proposes (false in the
    first), when a rule of the state reads one: those rules only advise (PW223), so the firings that propose, move
    or derive are those of the first pass, and the second gives every firing of the evaluation."""
    made = {e.to for f in firings for e in f.effects if isinstance(e, Propose)}
    names = [pw.proposals_read[target] for target in sorted(made) if target in pw.proposals_read]
    if not names:
        return firings, derived, snapshot
    snapshot = {**snapshot, **dict.fromkeys(names, True)}
    again, derived_again = pw.engine.evaluate(state, snapshot, frozen)
    if derived_again != derived or {e.to for f in again for e in f.effects if isinstance(e, Propose)} != made:
        raise EngineError(f"the rules of state '{state}' that read a proposal changed what is derived or proposed; "
                          "nothing was applied")
    return again, derived_again, snapshot


def _enter(st: SessionState, target: str, index: int, day: float, passed: list[str]) -> None:
    """Move the patient to ``target`` in event ``index``."""
    st.state = target
    st.state_event = index
    passed.append(target)
    st.entered_day = day
    st.entered.setdefault(target, day)
    st.path.append(target)


def _entry(day: float, values: dict[str, Any], raw_event: dict[str, Any]) -> dict[str, Any]:
    """An event as the session records it: its day, canonical values, ``time``, ``note``, ``id`` and
    ``sources``, and each quantity as given."""
    entry: dict[str, Any] = {"day": day, **values}
    for key in ("time", "note", "id", "sources"):
        if key in raw_event:  # validated JSON; a copy, so the caller's object can change later
            entry[key] = copy.deepcopy(raw_event[key])
    # Quantities as given ({value, unit}): the canonical value alone could read differently as a bare
    # number (an ambiguity band), so a restore replays the event as it was observed.
    given = {name: {"value": raw_event[name]["value"], "unit": raw_event[name]["unit"]}
             for name in values if isinstance(raw_event.get(name), dict)}
    if given:
        entry["given"] = given
    return entry


def _place(events: list[dict[str, Any]], day: float) -> int:
    """Where an event of ``day`` goes in a timeline: after every event of that day or earlier."""
    at = len(events)
    while at and events[at - 1]["day"] > day:
        at -= 1
    return at


def _shown(value: Any) -> str:
    return shown_value(value)


def _keep(pw: Pathway, st: SessionState, firings: list[Firing], derived: dict[str, Any], event: int) -> None:
    """Keep, with provenance, the facts that decision rules derived in this evaluation (inside their
    window; the last derivation counts): the value, when, which rule, the facts it matched and the
    day each input it used was recorded. The facts and the recorded days of one firing are one pair
    of dicts shared by every fact it keeps (kept entries are never changed in place: replaced)."""
    d = pw.definition
    for f in firings:
        rule = pw.rule(f.rule)
        if rule.decision_point is None:
            continue
        shared: tuple[dict[str, Any], dict[str, Any]] | None = None
        for name in derived_by(f.effects):
            if name not in derived or d.kept.get(name) != rule.decision_point:
                continue
            if shared is None:
                used = {k: v for k, v in f.facts.items() if k not in d.spec.derived}
                shared = pack(dict(f.facts)), pack({k: st.history[k][-1][0] for k in used if st.history.get(k)})
            st.frozen[name] = kept_entry(derived[name], st.day, event, rule.decision_point, rule.id, f.branch,
                                         shared[0], shared[1])


def _missed(pw: Pathway, st: SessionState, event: int) -> None:
    """A decision point whose window passed with no evaluation inside it (nothing recorded then) keeps what
    its rules derive when their inputs are missing (``if_missing``), as an evaluation in the window with
    nothing recorded would have: the day-3 indices are "unknown", never silently absent. Only for a
    patient in the rule's state since before the window closed."""
    entered = st.entered.get(st.state)
    for point_id, defaults in pw.missed_defaults.items():
        point = pw.definition.decision_points[point_id]
        if entered is None or not point.passed(st.day, st.entered):
            continue
        since = point.days(entered, st.entered)
        if since is None or since >= point.before_day:
            continue
        for name, value, rule_id, states, branch in defaults:
            if name in st.frozen or st.state not in states:
                continue
            st.frozen[name] = kept_entry(value, st.day, event, point_id, rule_id, branch, {}, {}, missed=True)


def _choose(pw: Pathway, state: str, firings: list[Firing]) -> tuple[Firing, str] | None:
    """The firing whose move is taken, and its target (see :mod:`pathway.runtime.moves`)."""
    by_rule = {f.rule: f for f in firings}
    moves = [Move(f.rule, f.branch, e.to, pw.rule(f.rule).priority, pw.rule_order(f.rule))
             for f in firings for e in f.effects if isinstance(e, Transition)]
    if is_conflict(moves):
        names = ", ".join(f"{m.rule} -> {m.target}" for m in top_moves(moves))
        raise EngineError(f"conflicting transitions at the same priority in state '{state}': {names}; "
                          "give one rule a higher priority; nothing was applied")
    move = choose(moves)
    return None if move is None else (by_rule[move.rule], move.target)


def start_session(pathway: Pathway, patient: dict[str, Any]) -> Session:
    d = pathway.definition
    pid, values, admission, warnings = validate_patient(patient, d.fields, pathway.builtins, d.consistency)
    start = d.start_state
    # A value in the patient record counts as recorded on admission (it ages from there when its
    # field has a validity window).
    return Session(pathway, SessionState(patient_id=pid, patient=copy.deepcopy(patient), admission=admission,
                                         facts=values, state=start, path=[start], entered={start: 0},
                                         warnings=warnings,
                                         history={name: first_history(history_entry(0, value, 0.0, None))
                                                  for name, value in values.items()}))


def _check_detail(detail: Any) -> None:
    if detail not in ("full", "summary"):
        raise ValueError(f"detail is 'full' or 'summary', not {detail!r}")


def observed_form(entry: dict[str, Any]) -> dict[str, Any]:
    """A recorded event (an entry of a session document's ``events``) as it was observed: its clock
    ``time`` or else its ``day``, its ``note``, and each value as given (a quantity with its unit)."""
    event = {k: v for k, v in entry.items() if k not in ("day", "given")}
    if "time" not in entry:
        event["day"] = entry["day"]
    given = entry.get("given")
    if isinstance(given, dict):
        event.update(given)
    return event


def replay_event(session: Session, entry: dict[str, Any]) -> None:
    """Apply a recorded event again (a restore replays a document's events through the engine)."""
    session._apply(observed_form(entry), replaying=True)
