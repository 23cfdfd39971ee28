"""Validation of case files and API events against the pathway's field vocabulary.

A value is given in its canonical unit under the field's name (``crp_mg_l: 52``) or as
``{value, unit}`` in another unit (``crp_mg_l: {value: 5.2, unit: mg/dL}``), converted with
the §13 factors. Unknown fields, wrong types, unknown units and implausible values are
refused with a message naming the field, the value and the plausible range.

A bare number (no unit) inside one of the field's ambiguity bands (``ambiguous:`` in
fields.yaml) is plausible in two units: a ``refuse`` band refuses it (PW408, naming both
readings), a ``warn`` band accepts it in the canonical unit and returns a warning alert naming
both readings. A field with ``unit_required`` refuses every bare number. A ``{value, unit}``
quantity is never ambiguous, whatever its unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from pathway.core.errors import Diagnostic, InputError, suggest
from pathway.definition.clock import MAX_DAY
from pathway.definition.model import AmbiguityBand, FieldDef
from pathway.definition.pathway import Consistency
from pathway.definition.units import convert, shown, units_for

__all__ = ["validate_patient", "validate_event", "check_consistency", "EVENT_META", "PATIENT_META"]

EVENT_META = {"day", "time", "note", "id"}
PATIENT_META = {"id", "admission_time", "note"}


def _diag(where: str, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(where, 0, 0, code, message, hint)


def _converted(spec: FieldDef, value: float, band: AmbiguityBand) -> str:
    """The bare number read in the band's unit, in the canonical unit, as texts show it."""
    converted = convert(spec.quantity, value, band.unit)
    return shown(converted if converted is not None else value, spec.display)


def _reading(spec: FieldDef, value: float, band: AmbiguityBand) -> str:
    """``1.1 mg/dL = 0.45 mmol/L``: the bare number read in the band's unit, in the canonical unit."""
    return f"{value:g} {band.unit} = {_converted(spec, value, band)} {spec.unit}"


def _ambiguity(name: str, spec: FieldDef, value: float, where: str, out: list[Diagnostic],
               warnings: list[dict[str, Any]]) -> bool:
    """Check a bare number against the field's ambiguity bands; False when it is refused."""
    bands = [b for b in spec.ambiguous if b.range[0] <= value <= b.range[1]]
    if not bands:
        return True
    readings = ", or ".join(_reading(spec, value, b) for b in bands)
    if any(b.action == "refuse" for b in bands):
        out.append(_diag(where, "PW408", f"{name} = {value:g} is ambiguous: {value:g} {spec.unit}, or {readings}; "
                                         "give {value, unit}"))
        return False
    for band in bands:
        warnings.append({
            "rule": f"input.{name}",
            "level": "warning",
            "text": f"{spec.title} ({name}) {value:g} given without a unit was read as {value:g} {spec.unit}; "
                    f"if it was {value:g} {band.unit}, it is {_converted(spec, value, band)} {spec.unit}. "
                    "Give {value, unit} to remove the doubt.",
            "evidence": {"sources": list(band.evidence.sources), "strength": band.evidence.strength,
                         "status": band.evidence.status},
        })
    return True


def _value(name: str, spec: FieldDef, raw: Any, where: str, out: list[Diagnostic],
           warnings: list[dict[str, Any]]) -> Any:
    bare = not isinstance(raw, dict)
    if isinstance(raw, dict):
        if spec.type not in ("number", "integer"):
            out.append(_diag(where, "PW402", f"'{name}' is {spec.type}; a {{value, unit}} quantity does not fit"))
            return None
        extra = set(raw) - {"value", "unit"}
        if extra or "value" not in raw or "unit" not in raw:
            out.append(_diag(where, "PW402", f"'{name}': a quantity is {{value: <number>, unit: <unit>}}"))
            return None
        value, unit = raw["value"], raw["unit"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(_diag(where, "PW402", f"'{name}': value {value!r} is not a number"))
            return None
        converted = convert(spec.quantity, value, str(unit)) if unit != spec.unit else float(value)
        if converted is None:
            known = units_for(spec.quantity) or [spec.unit]
            out.append(_diag(where, "PW404", f"'{name}': unit '{unit}' is not accepted (use one of: {', '.join(known)})",
                             suggest(str(unit), known)))
            return None
        raw = converted
        if spec.type == "integer" and float(raw).is_integer():
            raw = int(raw)
    if spec.type in ("number", "integer"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (isinstance(raw, float) and not math.isfinite(raw)):
            out.append(_diag(where, "PW402", f"'{name}' must be a number in {spec.unit or 'its unit'}, not {raw!r}"))
            return None
        if spec.type == "integer" and not float(raw).is_integer():
            out.append(_diag(where, "PW402", f"'{name}' must be a whole number, not {raw!r}"))
            return None
        if bare and spec.unit_required:
            units = units_for(spec.quantity) or [spec.unit]
            out.append(_diag(where, "PW408", f"{name} = {raw:g} has no unit, and {name} needs one: give "
                                             f"{{value: {raw:g}, unit: ...}} with one of: {', '.join(units)}"))
            return None
        if spec.range is not None:
            low, high = spec.range
            if not low <= raw <= high:
                unit = f" {spec.unit}" if spec.unit else ""
                out.append(_diag(where, "PW403",
                                 f"implausible {name} = {raw:g}{unit}: plausible range is {low:g}–{high:g}{unit}"
                                 + (" (check the unit)" if spec.quantity else "")))
                return None
        if bare and not _ambiguity(name, spec, raw, where, out, warnings):
            return None
        return int(raw) if spec.type == "integer" else float(raw) if isinstance(raw, float) else raw
    if spec.type == "boolean":
        if not isinstance(raw, bool):
            out.append(_diag(where, "PW402", f"'{name}' must be true or false, not {raw!r}"))
            return None
        return raw
    if spec.type == "enum":
        if raw not in spec.values:
            out.append(_diag(where, "PW402", f"'{name}' must be one of {', '.join(spec.values)}; got {raw!r}",
                             suggest(str(raw), spec.values)))
            return None
        return raw
    if not isinstance(raw, str):
        out.append(_diag(where, "PW402", f"'{name}' must be text, not {raw!r}"))
        return None
    return raw


def _fields(data: dict[str, Any], fields: dict[str, FieldDef], meta: set[str], scopes: tuple[str, ...],
            builtins: set[str], where: str, out: list[Diagnostic], warnings: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if name in meta:
            continue
        loc = f"{where}.{name}"
        if name in builtins:
            out.append(_diag(loc, "PW401", f"'{name}' is computed by the engine and cannot be given"))
            continue
        spec = fields.get(name)
        if spec is None:
            out.append(_diag(loc, "PW401", f"unknown field '{name}'", suggest(name, [*fields, *meta])))
            continue
        if spec.scope not in scopes:
            out.append(_diag(loc, "PW401", f"'{name}' belongs to the {spec.scope}, not here"))
            continue
        if raw is None:
            continue
        value = _value(name, spec, raw, loc, out, warnings)
        if value is not None:
            values[name] = value
    return values


_CHECK_WORDS = {"gt": "more than", "gte": "at least", "lt": "less than", "lte": "at most"}


def check_consistency(values: dict[str, Any], checks: Sequence[Consistency], where: str,
                      out: list[Diagnostic]) -> None:
    """PW409 for every check that two values given together (canonical units) break."""
    for check in checks:
        if not check.holds(values):
            a, b = values[check.field], values[check.other]
            out.append(_diag(f"{where}.{check.field}", "PW409",
                             f"inconsistent values: {check.field} = {a:g} must be {_CHECK_WORDS[check.op]} "
                             f"{check.other} = {b:g} when both are given together ({check.title})"))


def validate_patient(patient: Any, fields: dict[str, FieldDef], builtins: set[str],
                     checks: Sequence[Consistency] = ()) -> tuple[str, dict[str, Any], datetime | None, list[dict[str, Any]]]:
    """Return (patient id, canonical values, admission time, input warnings); raise InputError otherwise.

    Input warnings are alerts (``rule`` ``input.<field>``, ``level``, ``text``, ``evidence``) for
    bare numbers accepted inside a ``warn`` band, sorted by field.
    """
    out: list[Diagnostic] = []
    warnings: list[dict[str, Any]] = []
    if not isinstance(patient, dict):
        raise InputError([_diag("patient", "PW400", "the patient must be a mapping")])
    pid = patient.get("id")
    if not isinstance(pid, (str, int)) or isinstance(pid, bool) or str(pid).strip() == "":
        out.append(_diag("patient.id", "PW400", "the patient needs an 'id' (text or number)"))
    admission = None
    if patient.get("admission_time") is not None:
        admission = _parse_time(patient["admission_time"], "patient.admission_time", out)
    values = _fields(patient, fields, PATIENT_META, ("patient", "both"), builtins, "patient", out, warnings)
    check_consistency(values, checks, "patient", out)
    if out:
        raise InputError(out)
    return str(pid), values, admission, _sorted(warnings)


def _sorted(warnings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input warnings in a fixed order (by field, then text), whatever the order of the event's keys."""
    return sorted(warnings, key=lambda w: (w["rule"], w["text"]))


def _parse_time(raw: Any, where: str, out: list[Diagnostic]) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        out.append(_diag(where, "PW405", f"'{raw}' is not an ISO 8601 time (e.g. 2026-03-02T08:00)"))
        return None
    if parsed.tzinfo is None:
        return parsed
    # fromisoformat gives a fixed-offset timezone: an aware time always has an offset.
    return parsed.replace(tzinfo=None) - cast(timedelta, parsed.utcoffset())


def validate_event(event: Any, fields: dict[str, FieldDef], builtins: set[str], *, where: str,
                   admission: datetime | None, last_day: float | None,
                   checks: Sequence[Consistency] = ()) -> tuple[float, dict[str, Any], datetime | None, list[dict[str, Any]]]:
    """Return (clinical day, canonical values, admission time to keep, input warnings); raise InputError
    otherwise (see :func:`validate_patient` for the warnings).

    ``checks`` compare values given together in this event (``consistency:`` in the fields file).
    """
    out: list[Diagnostic] = []
    warnings: list[dict[str, Any]] = []
    if not isinstance(event, dict):
        raise InputError([_diag(where, "PW400", "an event must be a mapping with 'day' or 'time'")])
    day: float | None = None
    if "day" in event and "time" in event:
        out.append(_diag(where, "PW405", "give either 'day' or 'time', not both"))
    elif "day" in event:
        raw = event["day"]
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0 or raw > MAX_DAY:
            out.append(_diag(f"{where}.day", "PW405", f"'day' must be a number from 0 (admission) to {MAX_DAY}, not {raw!r}"))
        else:
            day = float(raw)
    elif "time" in event:
        when = _parse_time(event["time"], f"{where}.time", out)
        if when is not None:
            admission = admission or when
            day = round((when - admission).total_seconds() / 86400.0, 4)
            if day < 0:
                out.append(_diag(f"{where}.time", "PW405", f"time {event['time']} is before admission"))
                day = None
    else:
        out.append(_diag(where, "PW405", "an event needs 'day' (0 = admission and first IV steroid dose) or an ISO 'time'"))
    if day is not None and last_day is not None and day < last_day:
        out.append(_diag(f"{where}.day", "PW406", f"events must be in time order: day {day:g} comes after day {last_day:g}"))
    values = _fields(event, fields, EVENT_META, ("event", "both"), builtins, where, out, warnings)
    check_consistency(values, checks, where, out)
    if out:
        raise InputError(out)
    assert day is not None
    return (int(day) if float(day).is_integer() else day), values, admission, _sorted(warnings)
