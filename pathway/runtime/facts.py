"""What the rules see at one moment: values still current, computed fields and the clocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathway.definition.clock import days_since
from pathway.definition.model import Aggregate
from pathway.runtime.doses import num
from pathway.runtime.state import SessionState

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["values_now", "aggregate", "snapshot", "decision_counts"]


def values_now(pathway: Pathway, st: SessionState) -> dict[str, Any]:
    """Values still current on this day (see ``valid_for_days``) and the computed fields."""
    fields = pathway.definition.fields
    snap: dict[str, Any] = {}
    for name, value in st.facts.items():
        seen = st.seen.get(name)
        valid = fields[name].valid_for_days
        if seen is None or valid is None or st.day is None or st.day - seen < valid:
            snap[name] = value
    for name, spec in pathway.aggregates.items():
        assert spec.aggregate is not None  # pathway.aggregates holds only computed fields
        value = aggregate(st, spec.aggregate)
        if value is not None:
            snap[name] = value
    return snap


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
