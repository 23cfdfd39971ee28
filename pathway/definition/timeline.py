"""Observations on a timeline: how long a recorded value stays current, in words and in hours.

Every event value is recorded at a moment of the course (hours since admission: from the event's
``time`` when it gives one, else ``day`` x 24). A field's validity (``valid_for`` in fields.yaml)
says how long it stays current:

- a window, ``{hours: 72}`` or ``{days: 1}``: current while younger than the window, or up to and
  including its end with ``end: inclusive``; once older it is *expired*: rules no longer see it,
  and a rule waiting for it lists it under ``data_required`` as a recheck with the last value;
- a latch, ``superseded`` (until a newer value of the field; an observation that is repeated,
  such as a film) or ``stay`` (for the whole stay): never expires;
- the older ``valid_for_days: N`` means ``{days: N}``; a field with neither holds for the stay.

A value given in the patient record counts as recorded on admission (hour 0).
"""

from __future__ import annotations

import math

from pathway.definition.model import FieldDef, Validity
from pathway.definition.units import shown

__all__ = ["validity", "window_hours", "is_current", "validity_text", "hours_text"]


def validity(field: FieldDef) -> Validity:
    """The field's validity in one form (``valid_for``, else ``valid_for_days``, else the stay)."""
    if field.valid_for is not None:
        return field.valid_for
    if field.valid_for_days is not None:
        return Validity(days=field.valid_for_days)
    return Validity(until="stay")


def window_hours(field: FieldDef) -> float | None:
    """How many hours a value stays current (None: it never expires)."""
    v = validity(field)
    return None if v.until is not None else v.span_hours


def is_current(field: FieldDef, age_hours: float) -> bool:
    """True while a value recorded ``age_hours`` ago is current."""
    v = validity(field)
    return v.until is not None or v.holds(age_hours)


def day_text(day: float, time: str | None = None) -> str:
    """``day 4``, ``day 4.5`` (to 4 significant digits) or, with the clock time the event gave, ``day 4 at
    09:00`` (the day that time falls on): when something was recorded, in every text that says it."""
    return f"day {math.floor(day)} at {time}" if time else f"day {shown(day)}"


def hours_text(hours: float) -> str:
    """``72 h``, ``1.5 h``, or whole days when the hours are a multiple of 24 above 72 (``14 days``)."""
    if hours > 72 and float(hours / 24).is_integer():
        days = int(hours / 24)
        return f"{days} days"
    return f"{hours:g} h"


def validity_text(field: FieldDef) -> str:
    """How long a value stays current, in words (field reference, schemas): ``72 h`` (the end
    excluded), ``72 h, end included``, ``until a newer value``, ``for the whole stay``."""
    v = validity(field)
    if field.valid_for is None and field.valid_for_days is None:
        return "until replaced"
    if v.until == "superseded":
        return "until a newer value (no expiry)"
    if v.until == "stay":
        return "for the whole stay"
    span = v.span_hours
    assert span is not None  # a window has hours or days (the loader checks)
    if v.days is not None and not (v.days * 24 > 72 and float(v.days).is_integer()):
        text = f"{v.days:g} day" + ("" if v.days == 1 else "s")
    else:
        text = hours_text(span)
    return f"{text}, end included" if v.end == "inclusive" else text
