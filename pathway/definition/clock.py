"""Clinical time: the day counter every rule sees, its bounds, and hours on the clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

__all__ = ["MAX_DAY", "TIME_FIELDS", "DAYS_SINCE_PREFIX", "days_since", "elapsed", "is_days_since", "utc_naive",
           "hours_between", "parse_time", "MAX_TIME_TEXT", "PROPOSED_PREFIX", "proposed", "is_proposed"]

#: The last clinical day a course may reach (ten years after admission).
MAX_DAY = 3650

#: Clock fields of every snapshot: the clinical day, and the days since the current state was entered.
TIME_FIELDS = ("day", "days_in_state")

#: ``days_since_<state>``: days since a state was first entered (one field per state).
DAYS_SINCE_PREFIX = "days_since_"


def days_since(state: str) -> str:
    """The field that counts the days since ``state`` was first entered."""
    return DAYS_SINCE_PREFIX + state


#: ``proposed_<state>``: a rule of the same evaluation proposes moving to the state (one field per state; see
#: :func:`proposed`)
PROPOSED_PREFIX = "proposed_"


def proposed(state: str) -> str:
    """The built-in field that is true while a rule of the current evaluation proposes moving to ``state``: set by
    the session after the rules that propose have run (they may not read it; the rules that read it only advise)."""
    return PROPOSED_PREFIX + state


def is_proposed(name: str) -> bool:
    return name.startswith(PROPOSED_PREFIX)


def elapsed(day: float, start: float) -> float:
    """Days from ``start`` to ``day``, rounded as every clock field is (six decimals): day numbers come
    from clock times in 1/24 steps, and 4.0417 - 0.0417 is 3.9999999999999996 in binary floating point,
    which would put day 4 of a state on day 3."""
    return round(day - start, 6)


def is_days_since(name: str) -> bool:
    return name.startswith(DAYS_SINCE_PREFIX)


def utc_naive(moment: datetime) -> datetime:
    """A time without a zone as given; a time with one (an offset) as UTC without a zone."""
    if moment.tzinfo is None:
        return moment
    return moment.replace(tzinfo=None) - cast(timedelta, moment.utcoffset())


#: The longest text read as a clock time (an ISO 8601 time with microseconds and an offset is 32).
MAX_TIME_TEXT = 64


def parse_time(text: object) -> datetime:
    """An ISO 8601 clock time (``2026-03-02T08:00``, with an optional offset) as a time without a zone
    (UTC when an offset was given); ``ValueError`` with the reason when ``text`` is not one.

    A time near the ends of the calendar whose offset would take it past year 1 or 9999 is refused
    here rather than overflowing later."""
    if not isinstance(text, str):
        raise ValueError("a time is ISO 8601 text")
    if len(text) > MAX_TIME_TEXT:
        raise ValueError(f"a time is at most {MAX_TIME_TEXT} characters")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 time") from None
    try:
        return utc_naive(moment)
    except OverflowError:
        raise ValueError("out of the calendar once its offset is applied") from None


def hours_between(start: datetime, end: datetime) -> float:
    """Hours from ``start`` to ``end`` (exact: ages of values are counted on the clock)."""
    return (end - start).total_seconds() / 3600.0
