"""What the rules see at one moment: values still current, computed fields, kept decision facts and the clocks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pathway.definition.clock import days_since
from pathway.definition.model import Aggregate
from pathway.definition.timeline import is_current, window_hours
from pathway.runtime.doses import num
from pathway.runtime.state import SessionState

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["values_now", "aggregate", "snapshot", "age_hours", "expired", "frozen_now"]


def age_hours(st: SessionState, name: str) -> float | None:
    """Hours since the field's latest value was recorded (None: never recorded, or no clock yet)."""
    seen = st.seen_hours.get(name)
    if seen is None or st.hours is None:
        return None
    return max(0.0, st.hours - seen)


def values_now(pathway: Pathway, st: SessionState) -> dict[str, Any]:
    """Values still current now (see ``valid_for``) and the computed fields."""
    fields = pathway.definition.fields
    snap: dict[str, Any] = {}
    for name, value in st.facts.items():
        age = age_hours(st, name)
        if age is None or is_current(fields[name], age):
            snap[name] = value
    for name, spec in pathway.aggregates.items():
        assert spec.aggregate is not None  # pathway.aggregates holds only computed fields
        if spec.aggregate.since is not None:
            continue  # depends on the states entered: computed per state (see snapshot)
        value = aggregate(st, spec.aggregate)
        if value is not None:
            snap[name] = value
    return snap


def expired(pathway: Pathway, st: SessionState, name: str) -> dict[str, Any] | None:
    """The latest value of a field that is recorded but no longer current: ``last_value``,
    ``recorded_day`` (and ``recorded_time`` when the event gave a clock time), ``age_hours`` and
    ``valid_hours``; None when the field is current, never recorded, or never expires."""
    spec = pathway.definition.fields.get(name)
    if spec is None or spec.aggregate is not None or name not in st.facts:
        return None
    age = age_hours(st, name)
    window = window_hours(spec)
    if age is None or window is None or is_current(spec, age):
        return None
    entries = st.history.get(name) or [[st.seen.get(name, 0), st.facts[name], st.seen_hours.get(name, 0.0), None]]
    day, value, _hours, event = entries[-1][:4]
    out: dict[str, Any] = {"last_value": value, "recorded_day": day, "age_hours": round(age, 2), "valid_hours": window}
    if event is not None and "time" in st.events[event]:
        out["recorded_time"] = st.events[event]["time"]
    return out


def aggregate(st: SessionState, agg: Aggregate) -> Any:
    """mean/first/last/min/max/count/ever of a field's recorded values in a window (the last value of
    each clinical day counts); see :class:`pathway.definition.model.Aggregate`."""
    now_day = st.day if st.day is not None else 0.0
    if agg.since is not None and agg.since not in st.entered:
        return None  # the state was never entered: the window has not begun
    if math.floor(now_day) < agg.from_day:
        return None  # the window has not begun
    start = st.entered.get(agg.since, 0.0) if agg.since is not None else None
    per_day: dict[int, Any] = {}
    for entry in st.history.get(agg.of, []):
        day, value, hours = entry[0], entry[1], entry[2]
        clinical = math.floor(day)
        if not agg.from_day <= clinical <= agg.to_day or day > now_day:
            continue
        if start is not None and day < start:
            continue
        if agg.within is not None and (st.hours is None or not agg.within.holds(st.hours - hours)):
            continue
        per_day[clinical] = value
    if agg.fn == "ever":
        return bool(per_day)
    if agg.fn == "count":
        return len(per_day)
    if not per_day:
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


def frozen_now(pathway: Pathway, st: SessionState) -> dict[str, Any]:
    """The kept facts that stand in for their rules now: those of decision points whose window has passed."""
    decisions = pathway.definition.decision_points
    return {name: kept["value"] for name, kept in sorted(st.frozen.items())
            if decisions[kept["decision_point"]].passed(st.day)}


def snapshot(st: SessionState, base: dict[str, Any], pathway: Pathway | None = None) -> dict[str, Any]:
    """The facts of one evaluation: ``base`` (:func:`values_now`, which only an event changes and
    which is reused across the states one event passes through) plus the clocks of the current state
    and, given the ``pathway``, the computed fields counted since a state was entered."""
    snap = dict(base)
    if pathway is not None:
        for name, spec in pathway.aggregates.items():
            if spec.aggregate is not None and spec.aggregate.since is not None:
                value = aggregate(st, spec.aggregate)
                if value is not None:
                    snap[name] = value
    snap["day"] = st.day
    snap["days_in_state"] = num(st.day - st.entered_day) if st.day is not None else None
    if st.day is not None:
        for state, entered in st.entered.items():
            snap[days_since(state)] = num(st.day - entered)
    snap["state"] = st.state
    return snap
