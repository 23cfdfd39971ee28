"""Dose arithmetic: weight-based doses and trough-guided titration, rounded to a deliverable step."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, cast

from pathway.definition.clock import days_since
from pathway.definition.effects import Dose, Medication, Titrate, fill_text
from pathway.definition.model import Display
from pathway.runtime.state import json_copy

__all__ = ["num", "round_to_step", "medication", "dose", "titrate"]


def num(value: float) -> float | int:
    """A number as results show it: six decimals at most, an int when whole."""
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value


def round_to_step(value: float, step: float, rounding: str = ROUND_HALF_UP) -> float:
    """Round to a multiple of ``step`` (half up by default: deterministic, no banker's rounding)."""
    q = (Decimal(str(value)) / Decimal(str(step))).quantize(Decimal(1), rounding=rounding)
    result = float(q * Decimal(str(step)))
    return int(result) if result.is_integer() else round(result, 6)


def medication(med: Medication) -> dict[str, Any]:
    """A recommendation's fixed medication, as the result shows it (a new dict each time: the
    medication of a rule file is shown the same way every time, so it is worked out once)."""
    kept = _MEDICATIONS.get(id(med))
    if kept is None or kept[0] is not med:
        data = med.model_dump(exclude_defaults=True)
        if "targets" in data:
            data["targets"] = {k: [num(v[0]), num(v[1])] for k, v in data["targets"].items()}
        if len(_MEDICATIONS) >= _MEDICATIONS_MAX:
            _MEDICATIONS.clear()
        kept = _MEDICATIONS[id(med)] = (med, data)
    return cast(dict[str, Any], json_copy(kept[1]))


#: id of a rule file's medication -> (the medication, as :func:`medication` shows it); holding the
#: medication keeps its id from being reused; cleared when full
_MEDICATIONS: dict[int, tuple[Medication, dict[str, Any]]] = {}
_MEDICATIONS_MAX = 1024


def titrate(eff: Titrate, snapshot: dict[str, Any], values: dict[str, Any],
            display: Mapping[str, Display] | None = None) -> tuple[dict[str, Any], str, str]:
    """The next dose from the current daily dose and a measured level, proportional to target/measured,
    limited to ``max_change_fraction`` per step."""
    current = float(snapshot[eff.current_daily_mg])
    measured = float(snapshot[eff.measured])
    target = float(eff.target)
    times = float(eff.times_per_day)
    step = float(eff.round_to_mg)
    proposed = current * target / measured if measured > 0 else current * 2
    limited = False
    if eff.max_change_fraction is not None:
        frac = float(eff.max_change_fraction)
        low, high = current * (1 - frac), current * (1 + frac)
        if not low <= proposed <= high:
            proposed, limited = min(max(proposed, low), high), True
    ceiling = None
    if eff.max_mg_per_kg_per_day is not None and proposed > current:
        ceiling = float(eff.max_mg_per_kg_per_day) * float(snapshot["weight_kg"])  # required with a ceiling
        if proposed > ceiling:
            proposed, limited = max(ceiling, current), True
        else:
            ceiling = None
    if limited:
        # At the limit, round toward the current dose so the step never exceeds the limit.
        rounding = ROUND_FLOOR if proposed > current else ROUND_CEILING
        dose_mg = round_to_step(proposed / times, step, rounding)
    else:
        dose_mg = round_to_step(proposed / times, step)
    if dose_mg <= 0:
        dose_mg = num(step)
    at_limit = ceiling is not None and dose_mg * times <= current  # no step left below the limit: no change
    if at_limit:
        dose_mg = num(current / times)
    med: dict[str, Any] = {"name": eff.name, "dose_mg": dose_mg, "times_per_day": num(times), "route": eff.route,
                           "daily_mg": num(dose_mg * times),
                           "basis": {eff.current_daily_mg: num(current), eff.measured: num(measured),
                                     "target": num(target)},
                           "calculated_mg": num(proposed / times)}
    if limited:
        med["change_limited"] = True
    if at_limit:
        med["at_limit"] = True
    capped = ""
    limits: dict[str, Any] = {}
    if ceiling is not None:
        med["max_daily_mg"] = num(round(ceiling, 2))
        limits = {"max_mg_per_kg_per_day": num(float(eff.max_mg_per_kg_per_day or 0)), "max_daily_mg": med["max_daily_mg"]}
        capped = fill_text(eff.cap_text, dict(values, **limits), display)
    change = round(100 * (dose_mg * times - current) / current) if current else 0
    filled = dict(values, dose_mg=dose_mg, times_per_day=num(times), new_daily_mg=med["daily_mg"], change_percent=change,
                  capped=capped, **limits)
    default = f"{eff.name} {dose_mg:g} mg {eff.route} {num(times)} times a day"
    if at_limit and eff.limit_text:
        return med, fill_text(eff.limit_text, filled, display), ""
    # an empty {capped} at the end leaves no trailing space
    return (med, fill_text(eff.text, filled, display).rstrip() if eff.text else default,
            fill_text(eff.summary, filled, display).rstrip() if eff.summary else "")


def _administrations(eff: Dose, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The dated administrations of a scheduled infusion, counted from the day ``from_state`` was
    first entered: ``administrations`` (``course_day``: days after the first dose; ``day``: day of
    the admission), ``then_every_days`` and ``next_day`` (the first one from today on)."""
    today = float(snapshot["day"])
    since = snapshot.get(days_since(eff.from_state)) if eff.from_state else snapshot.get("days_in_state")
    start = math.floor(today - float(since) if since is not None else today)  # the clinical day of the first dose
    plan = [{"course_day": num(float(d)), "day": num(start + float(d))} for d in eff.at_days]
    out: dict[str, Any] = {"administrations": plan}
    if eff.then_every_days is not None:
        out["then_every_days"] = num(float(eff.then_every_days))
    upcoming = [p["day"] for p in plan if p["day"] >= math.floor(today)]
    if upcoming:
        out["next_day"] = upcoming[0]
    elif eff.then_every_days is not None:
        last, every = plan[-1]["day"], float(eff.then_every_days)
        out["next_day"] = num(last + every * math.ceil((math.floor(today) - last) / every))
    return out


def dose(eff: Dose, snapshot: dict[str, Any], values: dict[str, Any],
         display: Mapping[str, Display] | None = None) -> tuple[dict[str, Any], str, str]:
    """A weight-based dose (per kg per day, or per kg per administration), capped at ``max_mg_per_dose``."""
    weight = float(snapshot["weight_kg"])  # guaranteed: dose rules require weight_kg
    times = float(eff.times_per_day)
    step = float(eff.round_to_mg)
    if eff.mg_per_kg_per_day is not None:
        per_kg_day = float(eff.mg_per_kg_per_day)
        raw = weight * per_kg_day / times
    else:
        per_kg_day = None
        raw = weight * float(cast(float, eff.mg_per_kg))  # set: the loader requires exactly one of the two
    dose_mg = round_to_step(raw, step)
    capped = False
    if eff.max_mg_per_dose is not None and dose_mg > float(eff.max_mg_per_dose):
        dose_mg, capped = num(float(eff.max_mg_per_dose)), True
    med: dict[str, Any] = {"name": eff.name, "dose_mg": dose_mg, "route": eff.route,
                           "basis": {"weight_kg": num(weight)}, "calculated_mg": num(raw)}
    if eff.at_days:
        med.update(_administrations(eff, snapshot))  # a scheduled infusion: dated, not daily
    else:
        med.update(times_per_day=num(times), daily_mg=num(dose_mg * times))
    if per_kg_day is not None:
        med["mg_per_kg_per_day"] = num(per_kg_day)
    else:
        med["mg_per_kg"] = num(float(cast(float, eff.mg_per_kg)))
    if capped:
        med["capped_at_max"] = True
    if eff.alternative:
        med["alternative"] = True
    for key in ("frequency", "duration", "schedule"):
        if getattr(eff, key):
            med[key] = getattr(eff, key)
    if eff.targets:
        med["targets"] = {k: [num(float(v[0])), num(float(v[1]))] for k, v in eff.targets.items()}
    filled = dict(values, dose_mg=dose_mg, times_per_day=num(times), daily_mg=med.get("daily_mg"),
                  mg_per_kg_per_day=med.get("mg_per_kg_per_day"), mg_per_kg=med.get("mg_per_kg"),
                  next_day=med.get("next_day"))
    default = f"{eff.name} {dose_mg:g} mg {eff.route}" + (f" {num(times)} times a day" if times != 1 else "")
    return (med, fill_text(eff.text, filled, display) if eff.text else default,
            fill_text(eff.summary, filled, display) if eff.summary else "")
