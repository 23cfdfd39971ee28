"""What the rules see at one moment: values still current, computed fields and the clocks.

Computed inputs (``compute:`` in the fields file) are filled in here, before the engine sees the
snapshot, so every rule tests them like any other input. Each is three-valued: true when its
condition is definitely true, false when definitely false, no value otherwise. A value recorded
for the field (a manual override) wins when it was recorded in the same event as, or a later event
than, the newest input value the condition used (patient-record values count as recorded before
every event); otherwise the computed value wins. An expired recorded value counts as not recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathway.definition import conditions as C
from pathway.definition.clock import days_since
from pathway.definition.model import Aggregate
from pathway.runtime.doses import num
from pathway.runtime.state import SessionState

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["values_now", "aggregate", "snapshot", "decision_counts", "PATIENT_RECORD"]

#: The position of a value from the patient record: before every event.
PATIENT_RECORD = -1


def values_now(pathway: Pathway, st: SessionState) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Values still current on this day (see ``valid_for_days``), the aggregate fields and the
    computed inputs; and, per computed input that has a value, where the value came from:
    ``{value, source: "derived" | "recorded", derived, recorded, inputs}``."""
    d = pathway.definition
    fields = d.fields
    snap: dict[str, Any] = {}
    for name, value in st.facts.items():
        seen = st.seen.get(name)
        valid = fields[name].valid_for_days
        if seen is None or valid is None or st.day is None or st.day - seen < valid:
            snap[name] = value
    if not d.computed and not pathway.aggregates:
        return snap, {}
    position: dict[str, int] = {}  # the event each value was last recorded in
    for index, event in enumerate(st.events):
        for name in event:
            position[name] = index
    for name, spec in pathway.aggregates.items():
        assert spec.aggregate is not None  # pathway.aggregates holds only computed fields
        value = aggregate(st, spec.aggregate)
        if value is not None:
            snap[name] = value
            position[name] = position.get(spec.aggregate.of, PATIENT_RECORD)
    provenance: dict[str, dict[str, Any]] = {}
    for name, comp in d.computed.items():  # inputs before the fields computed from them
        recorded = snap.get(name)
        derived = C.evaluate(comp.when, snap)
        used = {f: snap[f] for f in comp.inputs if snap.get(f) is not None}
        newest = max((position.get(f, PATIENT_RECORD) for f in used), default=None)
        mine = position.get(name, PATIENT_RECORD)
        if recorded is not None and (derived is None or newest is None or mine >= newest):
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


def aggregate(st: SessionState, agg: Aggregate) -> Any:
    """mean/first/last/min/max/count of a field's recorded values in a window of days (last value of each day)."""
    per_day: dict[float, Any] = {}
    for day, value in st.history.get(agg.of, []):
        if agg.from_day <= day <= agg.to_day and day <= (st.day if st.day is not None else day):
            per_day[day] = value
    if not per_day:
        return None
    values = [per_day[d] for d in sorted(per_day)]
    if agg.fn == "count":
        return len(values)
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
    since the patient entered the state (see model.DecisionSpec)."""
    accepted = pathway.definition.decisions.get(name)
    return (accepted is not None and st.state in accepted and name in st.recorded_event
            and st.recorded_event[name] >= st.state_event)


def snapshot(pathway: Pathway, st: SessionState, base: dict[str, Any]) -> dict[str, Any]:
    """The facts of one evaluation: ``base`` (:func:`values_now`, which only an event changes and
    which is reused across the states one event passes through) plus the clocks of the current
    state; a decision appears only where it counts (:func:`decision_counts`)."""
    snap = dict(base)
    for name in pathway.definition.decisions:
        if name in snap and not decision_counts(pathway, st, name):
            del snap[name]
    snap["day"] = st.day
    snap["days_in_state"] = num(st.day - st.entered_day) if st.day is not None else None
    if st.day is not None:
        for state, entered in st.entered.items():
            snap[days_since(state)] = num(st.day - entered)
    snap["state"] = st.state
    return snap
