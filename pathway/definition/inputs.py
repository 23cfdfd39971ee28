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

Numbers are finite and at most ``MAX_NUMBER`` in magnitude (PW410), bare or inside ``{value, unit}``,
and are normalised on the way in (an ``int`` or a ``float``, never a subclass or ``-0.0``); free-form
values (``note``, an event ``id``) must be strict JSON (PW411) and small (PW412). Nothing in a
message or a location can fail to print: values are quoted short, whatever their size or depth.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pathway.core.errors import Diagnostic, InputError, suggest
from pathway.definition import conditions as C
from pathway.definition.clock import MAX_DAY, parse_time
from pathway.definition.model import AmbiguityBand, FieldDef
from pathway.definition.pathway import Consistency
from pathway.definition.units import convert, shown, units_for

__all__ = ["validate_patient", "validate_event", "check_consistency", "free_form_problem", "shown_value",
           "EVENT_META", "PATIENT_META", "MAX_NUMBER", "MAX_FREE_DEPTH", "MAX_FREE_CHARS", "MAX_TEXT", "MAX_ID"]

EVENT_META = {"day", "time", "note", "id", "sources"}
PATIENT_META = {"id", "admission_time", "note"}

#: The largest magnitude of any number a case gives (a value, ``day``, a number in a note): whole
#: numbers up to it are exact as floats, and every value in it evaluates in the engine.
MAX_NUMBER = 1e15
#: Free-form values (``note``, an event ``id``): at most this many levels of lists and mappings,
MAX_FREE_DEPTH = 32
#: and this many characters (texts, keys and numbers counted roughly as JSON writes them).
MAX_FREE_CHARS = 100_000
#: The longest text value of a ``string`` field.
MAX_TEXT = 10_000
#: The longest patient id (an integer id counts its digits).
MAX_ID = 200
#: Keys longer than this are quoted short in locations and get no "did you mean".
_MAX_KEY = 100


class _Short(reprlib.Repr):
    """reprlib with integers of any size (``repr`` refuses those above 4,300 digits)."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:
            return f"{'-' if x < 0 else ''}<an integer of about {int(math.log10(abs(x))) + 1} digits>"
        return str(x)


_REPR = _Short()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 40, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4


def shown_value(value: Any) -> str:
    """A value as a message quotes it: short and printable whatever its size, depth or text."""
    try:
        return _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__: the type is enough
        return f"<{type(value).__name__}>"


def _encodable(text: str) -> bool:
    """True when ``text`` encodes as UTF-8 (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key(name: Any) -> str:
    """A key as a location names it: itself when it is short printable text, else quoted short."""
    if isinstance(name, str) and len(name) <= _MAX_KEY and name.isprintable() and _encodable(name):
        return name
    return shown_value(name)


def _diag(where: str, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(where, 0, 0, code, message, hint)


def _finite(name: str, raw: int | float, where: str, out: list[Diagnostic]) -> int | float | None:
    """A number (``int`` or ``float``, not ``bool``) normalised, or None after a PW410."""
    if isinstance(raw, float) and not math.isfinite(raw):
        out.append(_diag(where, "PW410", f"'{name}' is {shown_value(raw)}: give a finite number"))
        return None
    if abs(raw) > MAX_NUMBER:  # exact for integers of any size
        out.append(_diag(where, "PW410", f"'{name}' = {shown_value(raw)} is beyond the largest number accepted "
                                         f"(±{MAX_NUMBER:.0e})"))
        return None
    if isinstance(raw, float):
        return float(raw) + 0.0  # a plain float; -0.0 becomes 0.0
    return int(raw)


def free_form_problem(value: Any) -> tuple[str, str, str] | None:
    """What makes ``value`` unfit to keep as a free-form value (``note``, an event ``id``):
    ``(path inside it, code, message)``; None when it is strict JSON within the limits.

    Strict JSON: None, booleans, finite numbers of at most ``MAX_NUMBER``, text that encodes as
    UTF-8, lists (or tuples) and mappings with text keys, at most ``MAX_FREE_DEPTH`` levels and
    ``MAX_FREE_CHARS`` characters. Walked without recursion, so any depth is refused cleanly.
    """
    size = 0
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, (int, float)):
            if isinstance(item, float) and not math.isfinite(item):
                return path, "PW410", f"{shown_value(item)} is not a finite number"
            if abs(item) > MAX_NUMBER:
                return path, "PW410", f"{shown_value(item)} is beyond the largest number accepted (±{MAX_NUMBER:.0e})"
            size += 24
        elif isinstance(item, str):
            if not _encodable(item):
                return path, "PW411", "text that is not valid Unicode (a lone surrogate)"
            size += len(item) + 2
        elif isinstance(item, (list, tuple, dict)):
            if depth >= MAX_FREE_DEPTH:
                return path, "PW412", f"nested deeper than {MAX_FREE_DEPTH} levels"
            size += 2 + len(item)  # brackets and separators, counted before the items are walked
            if size > MAX_FREE_CHARS:
                break
            if isinstance(item, dict):
                for k, v in item.items():
                    if not isinstance(k, str):
                        return path, "PW411", f"key {shown_value(k)} is not text (JSON keys are text)"
                    if not _encodable(k):
                        return path, "PW411", f"key {shown_value(k)} is not valid Unicode (a lone surrogate)"
                    size += len(k) + 3
                    stack.append((v, f"{path}.{_key(k)}", depth + 1))
            else:
                stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
        else:
            return path, "PW411", f"{shown_value(item)} ({type(item).__name__}) is not a JSON value"
        if size > MAX_FREE_CHARS:
            break
    if size > MAX_FREE_CHARS:
        return "", "PW412", f"longer than {MAX_FREE_CHARS:,} characters"
    return None


def _free_form(name: str, value: Any, where: str, out: list[Diagnostic]) -> None:
    problem = free_form_problem(value)
    if problem is not None:
        path, code, message = problem
        out.append(_diag(f"{where}.{name}{path}", code, f"'{name}' must be strict JSON (text, finite numbers, "
                                                         f"true/false/null, lists, mappings with text keys): {message}"))


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
    if any(b.action == "refuse" for b in bands):
        readings = ", or ".join(_reading(spec, value, b) for b in bands)
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
            out.append(_diag(where, "PW402", f"'{name}': value {shown_value(value)} is not a number"))
            return None
        number = _finite(name, value, where, out)
        if number is None:
            return None
        known = units_for(spec.quantity) or [spec.unit]
        converted = None
        if isinstance(unit, str):
            converted = convert(spec.quantity, number, unit) if unit != spec.unit else float(number)
        if converted is None:
            hint = suggest(unit, known) if isinstance(unit, str) and len(unit) <= _MAX_KEY else None
            out.append(_diag(where, "PW404", f"'{name}': unit {shown_value(unit)} is not accepted "
                                             f"(use one of: {', '.join(known)})", hint))
            return None
        raw = converted
        if spec.type == "integer" and float(raw).is_integer():
            raw = int(raw)
    if spec.type in ("number", "integer"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            out.append(_diag(where, "PW402", f"'{name}' must be a number in {spec.unit or 'its unit'}, "
                                             f"not {shown_value(raw)}"))
            return None
        number = _finite(name, raw, where, out)
        if number is None:
            return None
        raw = number
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
        return int(raw) if spec.type == "integer" else raw
    if spec.type == "boolean":
        if not isinstance(raw, bool):
            out.append(_diag(where, "PW402", f"'{name}' must be true or false, not {shown_value(raw)}"))
            return None
        return raw
    if spec.type == "enum":
        if not isinstance(raw, str) or raw not in spec.values:
            hint = suggest(raw, spec.values) if isinstance(raw, str) and len(raw) <= _MAX_KEY else None
            out.append(_diag(where, "PW402", f"'{name}' must be one of {', '.join(spec.values)}; got {shown_value(raw)}",
                             hint))
            return None
        return raw
    if not isinstance(raw, str):
        out.append(_diag(where, "PW402", f"'{name}' must be text, not {shown_value(raw)}"))
        return None
    if len(raw) > MAX_TEXT:
        out.append(_diag(where, "PW412", f"'{name}' is {len(raw):,} characters long; at most {MAX_TEXT:,}"))
        return None
    if not _encodable(raw):
        out.append(_diag(where, "PW411", f"'{name}' is text that is not valid Unicode (a lone surrogate)"))
        return None
    return str(raw)


def _fields(data: dict[str, Any], fields: dict[str, FieldDef], meta: set[str], scopes: tuple[str, ...],
            builtins: set[str], where: str, out: list[Diagnostic], warnings: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if name in meta:
            continue
        loc = f"{where}.{_key(name)}"
        if not isinstance(name, str):
            out.append(_diag(loc, "PW401", f"unknown field {shown_value(name)}: field names are text"))
            continue
        if name in builtins:
            out.append(_diag(loc, "PW401", f"'{name}' is computed by the engine and cannot be given"))
            continue
        spec = fields.get(name)
        if spec is None:
            hint = suggest(name, [*fields, *meta]) if len(name) <= _MAX_KEY else None
            out.append(_diag(loc, "PW401", f"unknown field {shown_value(name)}", hint))
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


def _given(value: Any) -> str:
    """A value as written in an event: true/false, numbers without trailing zeros, text as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, (int, float)) else reprlib.repr(value)


def check_consistency(values: dict[str, Any], checks: Sequence[Consistency], where: str,
                      out: list[Diagnostic]) -> None:
    """PW409 for every check that two values given together (canonical units) break."""
    for check in checks:
        if not check.holds(values):
            if check.forbid is not None:
                names = dict.fromkeys(c.field for c in C.fields_of(check.forbid) if c.field in values)
                given = " with ".join(f"{name} = {_given(values[name])}" for name in names)
                out.append(_diag(f"{where}.{check.field}", "PW409",
                                 f"inconsistent values: {given} cannot be given together ({check.title}); "
                                 "correct the one that is wrong"))
                continue
            a, b = values[check.field], values[check.other]
            out.append(_diag(f"{where}.{check.field}", "PW409",
                             f"inconsistent values: {check.field} = {a:g} must be {_CHECK_WORDS[str(check.op)]} "
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
    if isinstance(pid, int) and not isinstance(pid, bool):
        pid = str(pid) if pid.bit_length() <= 3 * MAX_ID else "x" * (MAX_ID + 1)  # str() refuses 4,300+ digits
    if not isinstance(pid, str) or pid.strip() == "":
        out.append(_diag("patient.id", "PW400", "the patient needs an 'id' (text or number)"))
    elif len(pid) > MAX_ID:
        out.append(_diag("patient.id", "PW412", f"the patient id is longer than {MAX_ID} characters"))
    elif not _encodable(pid):
        out.append(_diag("patient.id", "PW411", "the patient id is text that is not valid Unicode (a lone surrogate)"))
    admission = None
    if patient.get("admission_time") is not None:
        admission = _parse_time(patient["admission_time"], "patient.admission_time", out)
    if "note" in patient:
        _free_form("note", patient["note"], "patient", out)
    values = _fields(patient, fields, PATIENT_META, ("patient", "both"), builtins, "patient", out, warnings)
    check_consistency(values, checks, "patient", out)
    if out:
        raise InputError(out)
    assert isinstance(pid, str)
    return pid, values, admission, _sorted(warnings)


def _sorted(warnings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input warnings in a fixed order (by field, then text), whatever the order of the event's keys."""
    return sorted(warnings, key=lambda w: (w["rule"], w["text"]))


def _parse_time(raw: Any, where: str, out: list[Diagnostic]) -> datetime | None:
    try:
        return parse_time(raw)
    except ValueError as exc:
        out.append(_diag(where, "PW405", f"{shown_value(raw)} is not a clock time: {exc} (e.g. 2026-03-02T08:00)"))
        return None


def _event_id(value: Any, where: str, out: list[Diagnostic]) -> None:
    """An event id names one event of the patient's timeline (a duplicate is recognised by it): text
    or a whole number, as FHIR resource ids and message ids are."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_NUMBER:
            out.append(_diag(f"{where}.id", "PW410", f"the event id {shown_value(value)} is beyond ±{MAX_NUMBER:g}"))
    elif not isinstance(value, str) or value.strip() == "":
        out.append(_diag(f"{where}.id", "PW402", f"an event id is text or a whole number, not {shown_value(value)}"))
    elif len(value) > MAX_ID:
        out.append(_diag(f"{where}.id", "PW412", f"the event id is longer than {MAX_ID} characters"))
    elif not _encodable(value):
        out.append(_diag(f"{where}.id", "PW411", "the event id is text that is not valid Unicode (a lone surrogate)"))


def validate_event(event: Any, fields: dict[str, FieldDef], builtins: set[str], *, where: str,
                   admission: datetime | None,
                   checks: Sequence[Consistency] = (),
                   dated_by_day: bool = False) -> tuple[float, dict[str, Any], datetime | None, list[dict[str, Any]]]:
    """Return (clinical day, canonical values, admission time to keep, input warnings); raise InputError
    otherwise (see :func:`validate_patient` for the warnings). An event may come earlier than the
    events before it (a late result): the session places it in its timeline.

    ``checks`` compare values given together in this event (``consistency:`` in the fields file).
    ``dated_by_day``: the course already holds events, all given by ``day``, and no admission time is known: a
    clock ``time`` has nothing to count from (taken as the admission, it would be placed at day 0, before them),
    so it is refused (PW405).
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
        # a bool is an int, and an int of any size compares exactly with MAX_DAY
        if (isinstance(raw, bool) or not isinstance(raw, (int, float)) or (isinstance(raw, float) and math.isnan(raw))
                or not 0 <= raw <= MAX_DAY):
            out.append(_diag(f"{where}.day", "PW405", f"'day' must be a number from 0 (admission) to {MAX_DAY}, "
                                                      f"not {shown_value(raw)}"))
        else:
            day = float(raw) + 0.0
    elif "time" in event:
        when = _parse_time(event["time"], f"{where}.time", out)
        if when is not None and admission is None and dated_by_day:
            out.append(_diag(f"{where}.time", "PW405",
                             f"time {event['time']} cannot be placed: the events before it are given by 'day' and the "
                             "patient has no admission_time to count a clock time from",
                             "give this event's 'day' (0 = admission), or record the patient's admission_time"))
        elif when is not None:
            admission = admission or when
            # the end of the clinical clock is checked on the exact time, not on the day rounded to 4 places: a second
            # past the end rounds to its last day, and its clock hours would still be past the end; a value a few
            # seconds before the admission time (bloods in the emergency department) rounds to day 0 and is kept
            exact = (when - admission).total_seconds() / 86400.0
            day = round(exact, 4)
            if day < 0:
                out.append(_diag(f"{where}.time", "PW405", f"time {event['time']} is before admission"))
                day = None
            elif exact > MAX_DAY:
                out.append(_diag(f"{where}.time", "PW405", f"time {event['time']} is more than {MAX_DAY} days after "
                                                           f"admission, where the clinical clock ends"))
                day = None
    else:
        out.append(_diag(where, "PW405", "an event needs 'day' (0 = admission and first IV steroid dose) or an ISO 'time'"))
    if "note" in event:
        _free_form("note", event["note"], where, out)
    if "id" in event:
        _event_id(event["id"], where, out)
    if "sources" in event:  # where the values came from (e.g. the FHIR resources that gave them)
        _free_form("sources", event["sources"], where, out)
    values = _fields(event, fields, EVENT_META, ("event", "both"), builtins, where, out, warnings)
    check_consistency(values, checks, where, out)
    if out:
        raise InputError(out)
    assert day is not None
    return (int(day) if float(day).is_integer() else day), values, admission, _sorted(warnings)
