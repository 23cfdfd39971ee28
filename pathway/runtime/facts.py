"""What the rules see at one moment: values still current, computed fields and inputs, kept decision
facts and the clocks.

Computed inputs (``compute:`` in the fields file) are filled in here, before the engine sees the
snapshot, so every rule tests them like any other input. Each is three-valued: true when its
condition is definitely true, false when definitely false, no value otherwise. A value recorded
for the field (a manual override) wins when it was recorded in the same event as, or a later event
than, the newest input value the condition used (patient-record values count as recorded before
every event); otherwise the computed value wins. With ``recorded_true_stands`` a recorded true wins until a
false is recorded. An expired recorded value counts as not recorded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from pathway.definition import conditions as C
from pathway.definition.clock import days_since, elapsed
from pathway.definition.model import Aggregate
from pathway.definition.timeline import is_current, window_hours
from pathway.runtime.doses import num
from pathway.runtime.state import SessionState, arrival, current_entry, entry_move, kept_get

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pathway.runtime.api import Pathway

__all__ = ["values_now", "aggregate", "snapshot", "decision_counts", "age_hours", "expired", "frozen_now", "recordable",
           "PATIENT_RECORD"]

#: The position of a value from the patient record: before every event.
PATIENT_RECORD = -1


def age_hours(pathway: Pathway, st: SessionState, name: str) -> float | None:
    """Hours since the field's current value was recorded (None: never recorded, or no clock yet)."""
    entry = current_entry(st.history.get(name), pathway.provisional_values.get(name))
    if entry is None or st.hours is None:
        return None
    return max(0.0, st.hours - float(entry[2]))


def values_now(pathway: Pathway, st: SessionState) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Values still current now (see ``valid_for``), the computed fields and the computed inputs;
    and, per computed input that has a value, where the value came from:
    ``{value, source: "derived" | "recorded", derived, recorded, inputs}``."""
    d = pathway.definition
    validities = pathway.validities
    snap: dict[str, Any] = {}
    now, history, provisional = st.hours, st.history, pathway.provisional_values
    for name, value in st.facts.items():
        valid = validities[name]  # is_current, with each field's validity worked out once per pathway
        if valid.until is not None:
            snap[name] = value
            continue
        entries = history.get(name)  # age_hours, inline
        entry = (entries[-1] if entries else None) if name not in provisional else current_entry(entries, provisional[name])
        if entry is None or now is None or valid.holds(max(0.0, now - entry[2])):
            snap[name] = value
    if not d.computed and not pathway.aggregates:
        return snap, {}
    history = st.history
    position: dict[str, int] = {}  # the event each computed value stands at (inputs: see recorded_at)

    def recorded_at(name: str) -> int:
        """The event ``name`` was last recorded in (PATIENT_RECORD: only in the patient record, or never)."""
        at = position.get(name)
        if at is not None:
            return at
        entries = history.get(name)
        event = entries[-1][3] if entries and len(entries[-1]) > 3 else None
        return PATIENT_RECORD if event is None else int(event)

    # those that depend on the states entered are computed per state (see snapshot)
    for name, agg, needed in pathway.event_aggregates:
        if needed is not None and not history.get(needed):
            continue  # nothing recorded that it is computed from: no value
        value = aggregate(st, agg)
        if value is not None:
            snap[name] = value
            position[name] = recorded_at(agg.of)
    provenance: dict[str, dict[str, Any]] = {}
    for name, comp in d.computed.items():  # inputs before the fields computed from them
        recorded = snap.get(name)
        derived = C.evaluate(comp.when, snap)
        used = {f: snap[f] for f in comp.inputs if snap.get(f) is not None}
        newest = max((recorded_at(f) for f in used), default=None)
        mine = recorded_at(name)
        if recorded is not None and (derived is None or newest is None or mine >= newest
                                     or (recorded is True and comp.recorded_true_stands)):
            value, source = recorded, "recorded"
        elif derived is not None:
            value, source = derived, "derived"
            mine = newest if newest is not None else PATIENT_RECORD
        else:
            continue
        snap[name] = value
        position[name] = mine
        provenance[name] = {"value": value, "source": source, "derived": derived, "recorded": recorded,
                            "inputs": used}
    return snap, provenance


def recordable(pathway: Pathway, name: str) -> list[str]:
    """The fields to ask for when ``name`` is missing: itself, or for a field computed from the
    record (``aggregate``), the fields it is computed from (those can be recorded)."""
    spec = pathway.aggregates.get(name)
    if spec is None or spec.aggregate is None:
        return [name]
    out = [spec.aggregate.of]
    base = spec.aggregate.baseline
    if base is not None and base.of not in out:
        out.append(base.of)
    if spec.aggregate.per is not None and spec.aggregate.per not in out:
        out.append(spec.aggregate.per)
    return out


def expired(pathway: Pathway, st: SessionState, name: str) -> dict[str, Any] | None:
    """The latest value of a field that is recorded but no longer current: ``last_value``,
    ``recorded_day`` (and ``recorded_time`` when the event gave a clock time), ``age_hours`` and
    ``valid_hours``; None when the field is current, never recorded, or never expires."""
    spec = pathway.definition.fields.get(name)
    if spec is None or spec.aggregate is not None or name not in st.facts:
        return None
    age = age_hours(pathway, st, name)
    window = window_hours(spec)
    if age is None or window is None or is_current(spec, age):
        return None
    entries = st.history.get(name) or [[0, st.facts[name], 0.0, None]]
    day, value, _hours, event = entries[-1][:4]
    out: dict[str, Any] = {"last_value": value, "recorded_day": day, "age_hours": round(age, 2), "valid_hours": window}
    if event is not None and "time" in st.events[event]:
        out["recorded_time"] = st.events[event]["time"]
    return out


def _entered(st: SessionState, ref: str | list[str] | None) -> tuple[str, float] | None:
    """The state of ``ref`` (one, or the one of a list entered last: on the same day, the greatest
    name) and the day it was entered."""
    entered = st.entered
    if isinstance(ref, str):
        day = entered.get(ref)
        return None if day is None else (ref, day)
    best: tuple[float, str] | None = None
    for name in ref or ():
        day = entered.get(name)
        if day is not None and (best is None or (day, name) > best):
            best = (day, name)
    return None if best is None else (best[1], best[0])


def _last_change(st: SessionState, name: str) -> tuple[int, float] | None:
    """The event in which ``name`` last took a value other than the one recorded before it, and its clock
    hours (None: it never changed; its first value is no change)."""
    entries = st.history.get(name) or ()
    for i in range(len(entries) - 1, 0, -1):
        value, before = entries[i][1], entries[i - 1][1]
        if value != before:
            event = entries[i][3] if len(entries[i]) > 3 else None
            return (PATIENT_RECORD if event is None else int(event)), float(entries[i][2])
    return None


def entry_event(entry: Sequence[Any]) -> int:
    """The event a history entry was recorded in (PATIENT_RECORD for the patient record)."""
    return PATIENT_RECORD if len(entry) < 4 or entry[3] is None else int(entry[3])


def _confirmed_value(st: SessionState, entries: Sequence[Sequence[Any]], confirmation: str) -> Any:
    """The value last confirmed (Aggregate.confirmed_by): the last of ``entries`` recorded in or before the last
    event that recorded ``confirmation``, when that recording is true, and that had arrived by the time it was
    recorded (SessionState.arrived: a value placed late before it, or amended after it, was not seen by whoever
    confirmed); else the first value recorded."""
    if not entries:
        return None
    marks = st.history.get(confirmation)
    if marks and marks[-1][1] is True:
        upto = entry_event(marks[-1])
        seen = arrival(st, upto)
        confirmed = [entry for entry in entries
                     if (at := entry_event(entry)) <= upto and arrival(st, at) <= seen]
        if confirmed:
            return confirmed[-1][1]
    return entries[0][1]


def aggregate(st: SessionState, agg: Aggregate) -> Any:
    """mean/first/last/min/max/count/ever of a field's recorded values in a window (the last value of
    each clinical day counts), or its fall from a baseline; see
    :class:`pathway.definition.model.Aggregate`."""
    value = _window_value(st, agg)
    if value is None and agg.or_else is not None:
        value = aggregate(st, agg.or_else)
    if value is None:
        return value
    if agg.per is not None:
        divisor = st.facts.get(agg.per)
        if not divisor:  # none recorded (or 0): no value per unit of it
            return None
        return num(round(value / divisor, 4))
    baseline = agg.baseline
    if baseline is None:
        return value
    base = aggregate(st, baseline)
    if base is None or (agg.percent and base == 0):
        return None
    change = base - value if agg.fall_from is not None else value - base
    return num(round(100 * change / base, 1)) if agg.percent else num(change)


def _window_value(st: SessionState, agg: Aggregate) -> Any:
    entries = st.history.get(agg.of)
    if not entries and agg.fn != "ever" and agg.fn != "count":
        return None  # nothing recorded: no value, whatever the window
    since = until = None
    if agg.since is not None:
        since = _entered(st, agg.since)
        if since is None:
            return None  # the state was never entered: the window has not begun
    if agg.until is not None:
        until = _entered(st, agg.until)
        if until is None:
            return None  # the window has no end yet
    now_day = st.day if st.day is not None else 0.0
    origin = 0.0
    if agg.counted_from is not None:
        start = st.entered.get(agg.counted_from)
        if start is None:
            return None  # days counted from a state not entered: the window has not begun
        origin = start
    # days as numbers: the loader resolves a $parameter (Aggregate.from_day)
    from_day, to_day = cast(float, agg.from_day), cast(float, agg.to_day)
    if math.floor(elapsed(now_day, origin)) < from_day:
        return None  # the window has not begun
    after_event = (st.state_event if agg.after_entry and since is not None and since[0] == st.state
                   else None)
    if agg.confirmed_by is not None:
        return _confirmed_value(st, entries or (), agg.confirmed_by)
    change = _last_change(st, agg.since_change_of) if agg.since_change_of is not None else None
    changed = change[0] if change is not None else None
    # with ``settled``: values recorded at least that long after the change count (its hours: when it changed)
    settled_from = change[1] if change is not None and agg.settled is not None else None
    settled = agg.settled
    within, hours_now, among = agg.within, st.hours, agg.values
    since_day = since[1] if since is not None else None
    until_day = math.floor(until[1]) if until is not None else None
    floor = math.floor
    per_day: dict[int, Any] = {}
    for entry in entries or ():
        day = entry[0]
        clinical = floor(elapsed(day, origin)) if origin else floor(day)
        if not from_day <= clinical <= to_day or day > now_day:
            continue
        if since_day is not None and day < since_day:
            continue
        if after_event is not None and (len(entry) < 4 or entry[3] is None or entry[3] <= after_event):
            continue  # recorded before, or in, the event that moved the patient into the state
        if until_day is not None and floor(day) > until_day:
            continue  # after the clinical day the state was entered
        if changed is not None and (len(entry) < 4 or entry[3] is None or entry[3] < changed):
            continue  # recorded before the event in which the other field last changed
        if settled_from is not None and settled is not None and settled.holds(entry[2] - settled_from):
            continue  # recorded too soon after that change (not settled yet)
        if within is not None and (hours_now is None or not within.holds(hours_now - entry[2])):
            continue
        if among is not None and entry[1] not in among:
            continue  # only these values count (each recording of one, whatever came later that day)
        per_day[clinical] = entry[1]
    if agg.fn == "ever":
        return bool(per_day)
    if agg.fn == "count":
        return len(per_day)
    if not per_day or len(per_day) < agg.min_days:
        return None
    values = [per_day[d] for d in sorted(per_day)]
    if agg.fn == "first":
        return values[0]
    if agg.fn == "last":
        return values[-1]
    if agg.fn == "min":
        return min(values)
    if agg.fn == "max":
        return max(values)
    return num(sum(values) / len(values))


def decision_counts(pathway: Pathway, st: SessionState, name: str) -> bool:
    """A recorded decision counts in the current state: the state accepts it, and it was recorded
    since the patient entered the state (see model.DecisionSpec), unless it is the decision that
    moved the patient into the state (recorded in that event and tested by the rule that moved):
    then it was acted on, and it does not carry over."""
    accepted = pathway.definition.decisions.get(name)
    if not (accepted is not None and st.state in accepted and name in st.recorded_event
            and st.recorded_event[name] >= st.state_event):
        return False
    if st.state_event < 0 or st.recorded_event[name] != st.state_event:
        return True
    rule = next((r for event, to, r in map(entry_move, reversed(st.trace)) if to == st.state and event == st.state_event),
                None)
    if isinstance(rule, str) and rule.startswith("decision."):  # a move on a decision that stands (Session: acted)
        return name != rule[len("decision."):]
    return rule is None or name not in {c.field for c in C.fields_of(pathway.rule(rule).when)}


def frozen_now(pathway: Pathway, st: SessionState) -> dict[str, Any]:
    """The kept facts that stand in for their rules now: those of decision points whose window has passed."""
    points = pathway.definition.decision_points
    return {name: kept_get(kept, "value") for name, kept in sorted(st.frozen.items())
            if points[kept_get(kept, "decision_point")].passed(st.day, st.entered)}


def snapshot(pathway: Pathway, st: SessionState, base: dict[str, Any]) -> dict[str, Any]:
    """The facts of one evaluation: ``base`` (:func:`values_now`, which only an event changes and
    which is reused across the states one event passes through) plus the clocks of the current
    state, the computed fields counted since a state was entered, and a recorded decision only
    where it counts (:func:`decision_counts`)."""
    snap = dict(base)
    for name in pathway.definition.decisions:
        if name in snap and not decision_counts(pathway, st, name):
            del snap[name]
    history = st.history
    for name, agg, needed in pathway.state_aggregates:
        if needed is not None and not history.get(needed):
            continue  # nothing recorded that it is computed from: no value (see values_now)
        value = aggregate(st, agg)
        if value is not None:
            snap[name] = value
    snap["day"] = st.day
    snap["days_in_state"] = num(st.day - st.entered_day) if st.day is not None else None
    if st.day is not None:
        for state, entered in st.entered.items():
            snap[days_since(state)] = num(st.day - entered)
    snap["state"] = st.state
    if st.state in pathway.reads_proposals:  # only where a rule reads one: set true by the session where a rule
        for name in pathway.proposals_read.values():  # of the evaluation proposes
            snap[name] = False
    return snap
