"""Clinical time: the day counter every rule sees, its bounds, and hours on the clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

__all__ = ["MAX_DAY", "TIME_FIELDS", "DAYS_SINCE_PREFIX", "days_since", "is_days_since", "utc_naive",
           "hours_between"]

#: The last clinical day a course may reach (ten years after admission).
MAX_DAY = 3650

#: Clock fields of every snapshot: the clinical day, and the days since the current state was entered.
TIME_FIELDS = ("day", "days_in_state")

#: ``days_since_<state>``: days since a state was first entered (one field per state).
DAYS_SINCE_PREFIX = "days_since_"


def days_since(state: str) -> str:
    """The field that counts the days since ``state`` was first entered."""
    return DAYS_SINCE_PREFIX + state


def is_days_since(name: str) -> bool:
    return name.startswith(DAYS_SINCE_PREFIX)


def utc_naive(moment: datetime) -> datetime:
    """A time without a zone as given; a time with one (an offset) as UTC without a zone."""
    if moment.tzinfo is None:
        return moment
    return moment.replace(tzinfo=None) - cast(timedelta, moment.utcoffset())


def hours_between(start: datetime, end: datetime) -> float:
    """Hours from ``start`` to ``end`` (exact: ages of values are counted on the clock)."""
    return (end - start).total_seconds() / 3600.0
