"""The shape of a case: a patient and the events of their course (the case-file contract)."""

from __future__ import annotations

from typing import Any

__all__ = ["CASE_KEYS", "case_problem"]

#: Keys a case may have: the course itself, and what scenario and case files put beside it.
CASE_KEYS = frozenset({"patient", "events", "title", "description", "pathway", "expect"})

_SHAPE = "a case is a mapping with 'patient' (mapping) and 'events' (list)"


def case_problem(case: Any) -> tuple[tuple[str, ...], str, str] | None:
    """What makes ``case`` not a case, as ``(path, code, message)``; None when it is one."""
    if not isinstance(case, dict) or not isinstance(case.get("patient"), dict) or not isinstance(case.get("events"), list):
        return (), "PW400", _SHAPE
    extra = sorted(k for k in case if isinstance(k, str) and k not in CASE_KEYS)
    if extra:
        key = extra[0]
        plain = len(key) <= 60 and key.isprintable()  # else quoted short, and not used as a location
        if plain:
            return (key,), "PW401", f"unknown key '{key}' in case"
        return (), "PW401", f"unknown key {key[:60]!r} in case"
    for other in case:
        if not isinstance(other, str):
            return (), "PW401", f"a key of a case is text, not {type(other).__name__}"
    return None
