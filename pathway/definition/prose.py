"""Conditions in words: what a rule, a computed input, a watchdog or an invariant says, for people.

The rule files write conditions as data (``crp_mg_l: {gt: $tw_crp_mg_l}``); the people who check a
pathway against its guideline (a governance committee, a clinician reviewing a rule) read them here
as clinical prose with the values in effect under the loaded profile and the units of the fields
file::

    ≥ 6 bloody stools in 24 h and at least one of: pulse > 90/min, temperature > 37.8 °C,
    Hb < 10.5 g/dL, ESR > 30 mm/h, CRP > 30 mg/L

- Names: a field's ``short`` name from the fields file (``CRP``), else its ``title``; derived facts
  the same from ``derived:`` in the pathway file; states by their titles; the clocks (``day``,
  ``days_in_state``, ``days_since_<state>``) as days ("from day 3", "on days 14 to 16 of the current
  state", "from day 90 after first entering 'Rescue with tacrolimus'").
- Values: parameters are already resolved when the pathway loads, so a threshold reads as its value
  under the profile; numbers are shown exactly as the rule compares them (never rounded to the
  field's display precision, which would misstate the threshold) with the field's unit.
- A test on a parameter (``$tw_use_crp_for_esr: true``) is settled when the pathway loads: a clause
  that holds is dropped, a branch that cannot hold is dropped, and a condition that can never hold
  under the profile says so.
- Missing values (three-valued logic, :mod:`pathway.definition.waiting`): :func:`rule_text` states
  what a rule does when a value is not recorded, as the engine does it: asks for it (``requires``,
  or a dose or score computed with it), applies ``if_missing``, or waits without asking.

All words live in :data:`WORDS` and :data:`OPERATORS`. The texts are plain text on one line (titles
pass through :func:`pathway.core.text.one_line`); every output format escapes them as it escapes
any other text from the rule files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pathway.core.text import one_line
from pathway.definition import conditions as C
from pathway.definition.clock import DAYS_SINCE_PREFIX
from pathway.definition.effects import (
    TEMPLATE_RE,
    Alert,
    Derive,
    Dose,
    Effect,
    Offer,
    Propose,
    Recommend,
    Require,
    Score,
    Titrate,
    Transition,
)
from pathway.definition.invariants import BUILTINS, Expect, Invariant
from pathway.definition.pathway import ComputedInput, PathwayDef, Rule

__all__ = [
    "OPERATORS",
    "WORDS",
    "RuleText",
    "condition_text",
    "condition_outline",
    "comparison_text",
    "rule_text",
    "computed_text",
    "overdue_text",
    "invariant_text",
    "expect_text",
    "effect_words",
    "field_name",
    "state_name",
    "value_text",
    "seen_text",
    "simplify",
]

#: The comparison operators as the texts write them.
OPERATORS: dict[str, str] = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}

#: Every phrase the texts use, in one place.
WORDS: dict[str, str] = {
    "always": "always",
    "never": "never under this profile",
    "and": " and ",
    "or": " or ",
    "any_of": "at least one of: ",
    "all_of": "all of: ",
    "n_of": "at least {n} of: ",
    "list_sep": ", ",
    "recorded": "is recorded",
    "not_recorded": "is not recorded",
    "or_not_recorded": "(or not recorded)",
    "yes": "yes",
    "no": "no",
    "is": "is {value}",
    "is_not": "is not {value}",
    "one_of": "is one of: {values}",
    "none_of": "is none of: {values}",
    # clocks
    "day_from": "from day {a}",
    "day_after": "after day {a}",
    "day_before": "before day {b}",
    "day_upto": "up to day {b}",
    "day_on": "on day {a}",
    "day_not_on": "not on day {a}",
    "days_on": "on days {a} to {b}",
    "day_window": "from day {a} to before day {b}",
    "in_state": " of the current state",
    "since_state": " after first entering {state}",
    "entered": "has entered {state}",
    "never_entered": "has never entered {state}",
    "state_is": "in {state}",
    "state_is_not": "not in {state}",
    "state_neither": "in neither {a} nor {b}",
    "state_none": "in none of {states}",
    # what a rule does
    "moves": "moves to {state}",
    "proposes": "proposes {state} (moves once the team records {decision})",
    "recommends": "recommends ({kind}): {text}",
    "doses": "doses {name}: {amount}",
    "alerts": "alerts ({level}): {text}",
    "asks": "asks for {names}",
    "asks_text": "asks for {names}: {text}",
    "sets": "sets {name} to {value}",
    "offers": "offers {option} ({status})",
    "offers_text": "offers {option} ({status}): {text}",
    "computes": "computes {name}",
    "titrates": "recalculates the {name} dose from {measured}",
    "nothing": "nothing",
    # missing data (three-valued behaviour)
    "ask_when": "if {names} is not recorded and could change the answer: asks for it",
    "ask_compute": "{what} only with {names} recorded: if not recorded, asks for it",
    "ask_otherwise": "'not met' is concluded only with {names} recorded: if not recorded, asks for it",
    "if_missing": "while {names} is not recorded{unless}: {effects}",
    "if_missing_unless": " (unless the criteria are already not met)",
    "silent": "if {names} is not recorded: does not ask for it",
    "otherwise": "if definitely not met{ready}: {effects}",
    "otherwise_ready": " (with {names} recorded)",
    "switched_off": "never applies under this profile",
    "switched_off_by": "never applies under this profile ({settings})",
}

#: Routes of administration as texts write them.
ROUTES = {"oral": "oral", "iv": "IV", "sc": "subcutaneous", "im": "IM", "rectal": "rectal", "iv_infusion": "IV infusion"}
#: Unit spellings that read better than the fields file writes them (the canonical unit stays in the file).
_UNIT_WORDS = {"10^9/L": "×10⁹/L", "10^3/µL": "×10³/µL", "10^3/uL": "×10³/µL"}
#: Units written after the number without a space.
_UNIT_TIGHT = ("/", "%", "×")
#: The clock fields (a value, a count of days).
_CLOCKS = ("day", "days_in_state")
#: A one-line text longer than this is broken into an outline by :func:`condition_outline`.
OUTLINE_WIDTH = 72


# -- names and values -------------------------------------------------------------------------

def field_name(name: str, d: PathwayDef) -> str:
    """What texts call a field or derived fact: its ``short`` name, else its title, else its id."""
    f = d.fields.get(name)
    if f is not None:
        return one_line(f.short or f.title) or name
    derived = d.spec.derived.get(name)
    if derived is not None:
        return one_line(derived.short or derived.title) or name
    if name == "state":
        return "state"
    return name


def recorded_value(name: str, value: Any, d: PathwayDef) -> str:
    """A recorded value in words, as an alert names what it rests on (``active serious infection: yes``;
    a false value by the field's ``short_false`` when it has one)."""
    f = d.fields.get(name)
    if f is None:
        return f"{name} is {value}"
    if isinstance(value, bool):
        if not value and f.short_false:
            return one_line(f.short_false)
        value = WORDS["yes"] if value else WORDS["no"]
    return f"{field_name(name, d)}: {value}"


def state_name(state: str, d: PathwayDef) -> str:
    """A state by its title, quoted (``'Rescue with tacrolimus'``)."""
    s = d.spec.states.get(state)
    return f"'{one_line(s.title)}'" if s is not None and s.title else f"'{state}'"


def number_text(value: Any) -> str:
    """A threshold as the rule compares it: whole numbers without a decimal point, others exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return one_line(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        text = repr(value)
        return text if "e" not in text else f"{value:.12g}"
    return str(value)


def _unit(name: str, d: PathwayDef) -> str:
    f = d.fields.get(name)
    unit = f.unit if f is not None else ""
    return _UNIT_WORDS.get(unit, unit)


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit.startswith(_UNIT_TIGHT) else f"{text} {unit}"


def _label(value: Any) -> str:
    """An enum or text value as words (``positive_untreated`` -> ``positive untreated``)."""
    if isinstance(value, bool):
        return WORDS["yes"] if value else WORDS["no"]
    if isinstance(value, (int, float)):
        return number_text(value)
    return one_line(str(value).replace("_", " "))


def value_text(name: str, value: Any, d: PathwayDef) -> str:
    """A value of a field as texts show it: a state by its title, a yes/no, a label, a number with its unit."""
    if name == "state":
        return state_name(str(value), d)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _label(value)
    return _with_unit(number_text(value), _unit(name, d))


def seen_text(name: str, value: Any, d: PathwayDef) -> str:
    """A value a test saw, in words: ``30 mg/L``, ``no``, ``day 3``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if _kind(name, d) in ("clock", "since") and number:
        return f"day {number_text(value)}"
    if _kind(name, d) == "count" and number:
        return number_text(value)
    return value_text(name, value, d)


def _kind(name: str, d: PathwayDef) -> str:
    if name == "state":
        return "state"
    if name in _CLOCKS:
        return "clock"
    if name.startswith(DAYS_SINCE_PREFIX) and name[len(DAYS_SINCE_PREFIX):] in d.spec.states:
        return "since"
    f = d.fields.get(name)
    if f is not None:
        if f.type == "boolean":
            return "boolean"
        if f.type == "integer" and f.short and f.unit.startswith("/"):
            return "count"
        return "number" if f.type in ("number", "integer") else "label"
    derived = d.spec.derived.get(name)
    if derived is not None:
        return {"boolean": "boolean", "number": "number"}.get(derived.type, "label")
    return "label"


def _bool_phrase(name: str, value: bool, d: PathwayDef) -> str:
    """A true/false test in words: the field's name when true; its ``short_false`` (or ``name: no``) when false."""
    f = d.fields.get(name) or d.spec.derived.get(name)
    if value:
        return field_name(name, d)
    if f is not None and f.short_false:
        return one_line(f.short_false)
    return f"{field_name(name, d)}: {WORDS['no']}"


def _day(value: Any) -> str:
    return number_text(value)


def _whole(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


def _clock_test(op: str, value: Any) -> str:
    """One test on a day counter as words (``from day 3``)."""
    v = _day(value)
    if op == "gte":
        return WORDS["day_from"].format(a=v)
    if op == "gt":
        return WORDS["day_after"].format(a=v)
    if op == "lt":
        return WORDS["day_before"].format(b=v)
    if op == "lte":
        return WORDS["day_upto"].format(b=v)
    if op == "eq":
        return WORDS["day_on"].format(a=v)
    if op == "ne":
        return WORDS["day_not_on"].format(a=v)
    values = _join_or([_day(x) for x in value])
    return (WORDS["day_on"] if op == "in" else WORDS["day_not_on"]).format(a=values)


def _clock_window(low: C.Cmp, high: C.Cmp) -> str:
    """``day >= a and day < b`` (or ``<= b``) as one window: ``on day 3``, ``on days 3 to 7``."""
    a, b = low.value, high.value
    if low.op == "gte" and _whole(a) and _whole(b):
        last = float(b) - 1 if high.op == "lt" else float(b)
        if last == float(a):
            return WORDS["day_on"].format(a=_day(a))
        if last > float(a):
            return WORDS["days_on"].format(a=_day(a), b=_day(last))
    if low.op == "gte" and high.op == "lt":
        return WORDS["day_window"].format(a=_day(a), b=_day(b))
    return f"{_clock_test(low.op, a)}{WORDS['and']}{_clock_test(high.op, b)}"


def _clock_suffix(name: str, d: PathwayDef) -> str:
    if name == "days_in_state":
        return WORDS["in_state"]
    if name.startswith(DAYS_SINCE_PREFIX):
        return WORDS["since_state"].format(state=state_name(name[len(DAYS_SINCE_PREFIX):], d))
    return ""


# -- comparisons ----------------------------------------------------------------------------

def comparison_text(cmp: C.Cmp, d: PathwayDef) -> tuple[str, str]:
    """One comparison as (subject, test): ``("CRP", "> 30 mg/L")``, ``("visible blood", "no")``,
    ``("TPMT activity", "is not absent")``, ``("day", "from day 3")``.

    The subject heads a decision-table column; the test fills its cell. Read together
    (:func:`condition_text` of the comparison) they make the clause.
    """
    name, op, value = cmp.field, cmp.op, cmp.value
    kind = _kind(name, d)
    if kind == "state":
        subject = "state"
    elif kind == "clock":
        subject = "day" if name == "day" else "day of the current state"
    elif kind == "since":
        subject = "day after first entering " + state_name(name[len(DAYS_SINCE_PREFIX):], d)
    else:
        subject = field_name(name, d)
    if op == "present":
        if kind == "since":
            words = WORDS["entered"] if value else WORDS["never_entered"]
            return subject, words.format(state=state_name(name[len(DAYS_SINCE_PREFIX):], d))
        return subject, WORDS["recorded"] if value else WORDS["not_recorded"]
    if kind in ("clock", "since"):
        return subject, _clock_test(op, value)
    if kind == "state":
        states = [state_name(s, d) for s in (value if op in ("in", "not_in") else (value,))]
        if op in ("eq", "in"):
            return subject, WORDS["state_is"].format(state=_join_or(states))
        if len(states) == 1:
            return subject, WORDS["state_is_not"].format(state=states[0])
        if len(states) == 2:
            return subject, WORDS["state_neither"].format(a=states[0], b=states[1])
        return subject, WORDS["state_none"].format(states=", ".join(states))
    if kind == "boolean" and op in ("eq", "ne") and isinstance(value, bool):
        return subject, WORDS["yes"] if (value is True) == (op == "eq") else WORDS["no"]
    if op in ("in", "not_in"):
        values = WORDS["list_sep"].join(value_text(name, v, d) for v in value)
        return subject, WORDS["one_of" if op == "in" else "none_of"].format(values=values)
    if op in ("eq", "ne") and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return subject, WORDS["is" if op == "eq" else "is_not"].format(value=value_text(name, value, d))
    if kind == "count":
        return subject, f"{OPERATORS[op]} {number_text(value)}"
    return subject, f"{OPERATORS[op]} {value_text(name, value, d)}"


def _cmp_line(cmp: C.Cmp, d: PathwayDef) -> str:
    """One comparison as a clause: ``CRP > 30 mg/L``, ``visible blood``, ``≥ 6 bloody stools in 24 h``."""
    subject, test = comparison_text(cmp, d)
    kind = _kind(cmp.field, d)
    if kind == "state":
        return f"{subject} {test}" if cmp.op == "present" else test
    if kind == "since":
        return test if cmp.op == "present" else test + _clock_suffix(cmp.field, d)
    if kind == "clock":
        return f"{subject} {test}" if cmp.op == "present" else test + _clock_suffix(cmp.field, d)
    if kind == "boolean" and cmp.op in ("eq", "ne") and isinstance(cmp.value, bool):
        return _bool_phrase(cmp.field, (cmp.value is True) == (cmp.op == "eq"), d)
    if kind == "count" and cmp.op in OPERATORS and isinstance(cmp.value, (int, float)):
        return f"{OPERATORS[cmp.op]} {number_text(cmp.value)} {subject}"
    return f"{subject} {test}"


def _join_or(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _join_and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# -- simplification ---------------------------------------------------------------------------

_NEVER = C.Or(())


def _is_never(cond: C.Cond) -> bool:
    return isinstance(cond, C.Or) and not cond.items


def _is_always(cond: C.Cond) -> bool:
    return isinstance(cond, C.Always) or (isinstance(cond, C.And) and not cond.items)


def simplify(cond: C.Cond) -> C.Cond:
    """The same condition with settled parts removed: a clause that always holds (a parameter test
    that holds under the profile) is dropped from ``all``, a branch that never holds from ``any``;
    nested ``all``/``any`` of the same kind are flattened. Three-valued semantics are unchanged."""
    if isinstance(cond, (C.Cmp, C.Always)):
        return cond
    if isinstance(cond, C.AtLeast):
        items = [simplify(c) for c in cond.items]
        n = cond.n - sum(1 for c in items if _is_always(c))
        rest = tuple(c for c in items if not _is_always(c) and not _is_never(c))
        if n <= 0:
            return C.Always()
        if n > len(rest):
            return _NEVER
        if n == len(rest):
            return simplify(C.And(rest))
        if n == 1:
            return simplify(C.Or(rest))
        return C.AtLeast(n, rest, cond.param)
    items_out: list[C.Cond] = []
    if isinstance(cond, C.And):
        for item in (simplify(c) for c in cond.items):
            if _is_never(item):
                return _NEVER
            if _is_always(item):
                continue
            items_out += list(item.items) if isinstance(item, C.And) else [item]
        if not items_out:
            return C.Always()
        return items_out[0] if len(items_out) == 1 else C.And(tuple(items_out))
    for item in (simplify(c) for c in cond.items):
        if _is_always(item):
            return C.Always()
        if _is_never(item):
            continue
        items_out += list(item.items) if isinstance(item, C.Or) else [item]
    if not items_out:
        return _NEVER
    return items_out[0] if len(items_out) == 1 else C.Or(tuple(items_out))


# -- clauses --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Leaf:
    """A clause that reads as one phrase (one comparison, or a few on the same field read together);
    ``joiner`` is the ``and``/``or`` inside the phrase, if any (it is put in parentheses where it
    meets the other one)."""

    text: str
    joiner: str = ""


@dataclass(frozen=True)
class _Group:
    kind: str  # "and" | "or" | "n"
    items: tuple[_Node, ...]
    n: int = 0


_Node = _Leaf | _Group


def _same_field(a: C.Cond, b: C.Cond) -> bool:
    return isinstance(a, C.Cmp) and isinstance(b, C.Cmp) and a.field == b.field


def _absent_pair(cond: C.Or) -> C.Cmp | None:
    """In ``X op v or X is not recorded`` (either order), the ``X op v``; else None."""
    if len(cond.items) != 2 or not _same_field(*cond.items):
        return None
    absent = [c for c in cond.items if isinstance(c, C.Cmp) and c.op == "present" and c.value is False]
    other = [c for c in cond.items if isinstance(c, C.Cmp) and not (c.op == "present" and c.value is False)]
    if len(absent) != 1 or len(other) != 1 or other[0].op == "present":
        return None
    return other[0]


def _or_not_recorded(cond: C.Or, d: PathwayDef) -> _Leaf | None:
    """``X op v or X is not recorded`` as one phrase: ``CRP ≤ 30 mg/L (or not recorded)``."""
    other = _absent_pair(cond)
    return None if other is None else _Leaf(f"{_cmp_line(other, d)} {WORDS['or_not_recorded']}")


def _merge_and(items: Sequence[C.Cond], d: PathwayDef) -> list[C.Cond | _Leaf]:
    """Comparisons on the same field inside one ``all`` read together: a day window (``on days 3 to
    7``), a range (``tacrolimus trough ≥ 10 and ≤ 15 ng/mL``), a value that must be recorded and
    compare (``ESR is recorded and > 30 mm/h``)."""
    groups: dict[str, list[C.Cmp]] = {}
    for item in items:
        if isinstance(item, C.Cmp) and _mergeable(item):
            groups.setdefault(item.field, []).append(item)
    out: list[C.Cond | _Leaf] = []
    done: set[str] = set()
    for item in items:
        if not (isinstance(item, C.Cmp) and _mergeable(item)) or len(groups[item.field]) < 2:
            out.append(item)
            continue
        if item.field in done:
            continue
        done.add(item.field)
        text = _group_text(groups[item.field], d)
        if text is None:
            out.extend(groups[item.field])
        else:
            out.append(_Leaf(text, "and" if WORDS["and"] in text else ""))
    return out


_LOWER, _UPPER = ("gt", "gte"), ("lt", "lte")


def _mergeable(c: C.Cmp) -> bool:
    return (c.op == "present" and c.value is True) or c.op in _LOWER + _UPPER


def _group_text(cmps: list[C.Cmp], d: PathwayDef) -> str | None:
    """Tests on one field read as one phrase, or None when they do not fit one (two lower bounds)."""
    present = [c for c in cmps if c.op == "present"]
    lows = [c for c in cmps if c.op in _LOWER]
    highs = [c for c in cmps if c.op in _UPPER]
    if len(present) > 1 or len(lows) > 1 or len(highs) > 1:
        return None
    name = cmps[0].field
    kind = _kind(name, d)
    bounds = lows + highs
    if kind in ("clock", "since"):
        # "from day 90 after first entering X" says that X was entered
        if len(bounds) == 1:
            return _cmp_line(bounds[0], d)
        return _clock_window(lows[0], highs[0]) + _clock_suffix(name, d)
    if len(bounds) == 1:
        test = _cmp_line(bounds[0], d)
        if kind == "count":
            return f"{field_name(name, d)} {WORDS['recorded']}{WORDS['and']}{test}"
        subject, cell = comparison_text(bounds[0], d)
        return f"{subject} {WORDS['recorded']}{WORDS['and']}{cell}"
    low, high = lows[0], highs[0]
    prefix = f"{WORDS['recorded']}{WORDS['and']}" if present else ""
    tests = f"{OPERATORS[low.op]} {number_text(low.value)}{WORDS['and']}{OPERATORS[high.op]} {number_text(high.value)}"
    subject = field_name(name, d)
    if kind == "count":
        return f"{subject} {prefix}{tests}" if prefix else f"{tests} {subject}"
    return f"{subject} {prefix}{_with_unit(tests, _unit(name, d))}"


def _node(cond: C.Cond, d: PathwayDef) -> _Node:
    if isinstance(cond, C.Cmp):
        several = cond.op in ("in", "not_in") and len(cond.value) > 1 and _kind(cond.field, d) == "state"
        return _Leaf(_cmp_line(cond, d), "or" if several and cond.op == "in" else "")
    if isinstance(cond, C.Always):
        return _Leaf(WORDS["always"])
    if isinstance(cond, C.AtLeast):
        return _Group("n", tuple(_node(c, d) for c in cond.items), cond.n)
    if isinstance(cond, C.Or):
        if not cond.items:
            return _Leaf(WORDS["never"])
        leaf = _or_not_recorded(cond, d)
        if leaf is not None:
            return leaf
        if len(cond.items) > 1 and all(isinstance(c, C.Cmp) and c.op == "present" and c.value is True
                                       and _kind(c.field, d) != "since" for c in cond.items):
            names = [field_name(c.field, d) for c in cond.items if isinstance(c, C.Cmp)]
            return _Leaf(f"{_join_or(names)} {WORDS['recorded']}", "or")
        return _Group("or", tuple(_node(c, d) for c in cond.items))
    if not cond.items:
        return _Leaf(WORDS["always"])
    merged = _merge_and(cond.items, d)
    nodes = tuple(m if isinstance(m, _Leaf) else _node(m, d) for m in merged)
    return nodes[0] if len(nodes) == 1 else _Group("and", nodes)


def _listed(group: _Group) -> bool:
    """A group written as a list after a colon (``at least one of: a, b, c``)."""
    return group.kind == "n" or (group.kind == "or" and len(group.items) > 2)


def _text(node: _Node, *, last: bool = True) -> str:
    if isinstance(node, _Leaf):
        return node.text
    if _listed(node):
        head = WORDS["any_of"] if node.kind == "or" else WORDS["n_of"].format(n=node.n)
        body = head + WORDS["list_sep"].join(_inner(item, "list", last=False) for item in node.items)
        return body if last else f"({body})"
    parts = [_inner(item, node.kind, last=k == len(node.items) - 1) for k, item in enumerate(node.items)]
    return WORDS[node.kind].join(parts)


def _inner(node: _Node, parent: str, *, last: bool) -> str:
    """A clause inside another: a group in parentheses, unless it is a list that ends the sentence;
    a phrase with its own ``and``/``or`` in parentheses where the parent joins with the other word."""
    if isinstance(node, _Leaf):
        return f"({node.text})" if node.joiner and node.joiner != parent else node.text
    if _listed(node) and last:
        return _text(node, last=True)
    return f"({_text(node, last=True)})"


def condition_text(cond: C.Cond, d: PathwayDef) -> str:
    """A condition as one line of clinical prose, with the values in effect under ``d``'s profile.

    ``always`` for a condition that always holds, ``never under this profile`` for one that cannot.
    """
    return _text(_node(simplify(cond), d))


def condition_outline(cond: C.Cond, d: PathwayDef, width: int = OUTLINE_WIDTH) -> list[tuple[int, str]]:
    """A long condition as indented lines ``(depth, text)``: each ``all``/``any`` whose line would be
    longer than ``width`` becomes a heading (``all of:``, ``at least one of:``) over its items, one
    level deeper. A short condition is one line at depth 0."""
    out: list[tuple[int, str]] = []

    def walk(node: _Node, depth: int) -> None:
        line = _text(node)
        if isinstance(node, _Leaf) or len(line) <= width:
            out.append((depth, line))
            return
        head = {"and": WORDS["all_of"], "or": WORDS["any_of"]}.get(node.kind) or WORDS["n_of"].format(n=node.n)
        out.append((depth, head.rstrip()))
        for item in node.items:
            walk(item, depth + 1)

    walk(_node(simplify(cond), d), 0)
    return out


# -- effects --------------------------------------------------------------------------------

def _template(text: str, d: PathwayDef) -> str:
    """An effect's text with ``{field}`` placeholders named in words (``[CRP]``)."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in d.params and name not in d.fields and name not in d.spec.derived:
            return _label(d.params[name])
        return f"[{field_name(name, d)}]"

    return one_line(TEMPLATE_RE.sub(one, text))


def effect_words(effect: Effect, d: PathwayDef) -> str:
    """What one effect does, in words (``moves to 'IV corticosteroids'``, ``sets 'Oxford …' to yes``)."""
    if isinstance(effect, Transition):
        return WORDS["moves"].format(state=state_name(effect.to, d))
    if isinstance(effect, Propose):
        key, value = effect.decision
        return WORDS["proposes"].format(state=state_name(effect.to, d),
                                        decision=f"{field_name(key, d)}: {value_text(key, value, d)}")
    if isinstance(effect, Recommend):
        return WORDS["recommends"].format(kind=effect.kind, text=_template(effect.text, d))
    if isinstance(effect, Dose):
        if effect.mg_per_kg_per_day is not None:
            amount = f"{number_text(effect.mg_per_kg_per_day)} mg/kg/day"
        else:
            amount = f"{number_text(effect.mg_per_kg)} mg/kg"
        return WORDS["doses"].format(name=one_line(effect.name), amount=f"{amount} {ROUTES.get(effect.route, effect.route)}")
    if isinstance(effect, Alert):
        return WORDS["alerts"].format(level=effect.level, text=_template(effect.text, d))
    if isinstance(effect, Require):
        names = _join_and([field_name(f, d) for f in effect.fields])
        return (WORDS["asks_text"].format(names=names, text=_template(effect.text, d)) if effect.text
                else WORDS["asks"].format(names=names))
    if isinstance(effect, Derive):
        return "; ".join(WORDS["sets"].format(name=field_name(k, d), value=value_text(k, v, d))
                         for k, v in effect.values.items())
    if isinstance(effect, Offer):
        key = "offers_text" if effect.text else "offers"
        return WORDS[key].format(option=_label(effect.option), status=effect.status, text=_template(effect.text, d))
    if isinstance(effect, Score):
        return WORDS["computes"].format(name=field_name(effect.name, d))
    assert isinstance(effect, Titrate)
    return WORDS["titrates"].format(name=one_line(effect.name), measured=field_name(effect.measured, d))


def _effects(effects: Iterable[Effect], d: PathwayDef) -> str:
    words = [effect_words(e, d) for e in effects]
    return "; ".join(words) if words else WORDS["nothing"]


# -- rules ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleText:
    """A rule in words, under the loaded profile.

    ``when``: its criteria on one line; ``due``: when it is considered (None: whenever the patient
    is in one of its states); ``missing``: what it does when a value is not recorded (one sentence
    each, as the engine does it); ``otherwise``: what it does when the criteria are definitely not
    met (None without ``otherwise`` effects); ``then``: what it does when they are met;
    ``when_outline``: the criteria as indented lines (see :func:`condition_outline`);
    ``switched_off``: the criteria (or ``due``) can never hold under this profile.
    """

    when: str
    due: str | None
    missing: list[str]
    otherwise: str | None
    then: str
    when_outline: list[tuple[int, str]]
    switched_off: bool = False


def _inputs_tested(cond: C.Cond, d: PathwayDef) -> list[str]:
    """Input fields whose absence can leave a condition unknown: not presence tests, derived facts,
    the clocks or the state, nor a test written with its own answer for a missing value (``X ≤ v or
    X is not recorded``) or guarded by a presence test in the same ``all`` (``X is recorded and X > v``)."""
    def walk(c: C.Cond) -> list[str]:
        if isinstance(c, C.Cmp):
            if c.derived or c.op == "present" or _kind(c.field, d) in ("state", "clock", "since"):
                return []
            return [c.field]
        if isinstance(c, C.Always):
            return []
        if isinstance(c, C.Or) and _absent_pair(c) is not None:
            return []
        # a test next to "X is recorded" in an 'all' (false when X is missing), or next to "X is not
        # recorded" in an 'any' (true when X is missing), is never left unknown by X
        guard = isinstance(c, C.And)
        guarded = {i.field for i in c.items if isinstance(i, C.Cmp) and i.op == "present" and i.value is guard}
        return [f for item in c.items for f in walk(item) if f not in guarded]

    return list(dict.fromkeys(walk(simplify(cond))))


def _is_decision(name: str, d: PathwayDef) -> bool:
    f = d.fields.get(name)
    return f is not None and f.decision is not None


def _names(fields: Iterable[str], d: PathwayDef) -> str:
    """The fields joined with 'or' (``pulse, temperature or Hb``)."""
    return _join_or([field_name(f, d) for f in fields])


def rule_text(rule: Rule, d: PathwayDef) -> RuleText:
    """A rule's criteria, timing and three-valued behaviour in words (see :class:`RuleText`)."""
    when = simplify(rule.when)
    due = simplify(rule.due)
    off = _is_never(when) or _is_never(due)
    missing: list[str] = []
    asks = bool(rule.requires) or bool(rule.computes_with("then"))
    tested = _inputs_tested(when, d)
    if not off:
        if asks:
            if tested:
                names = _names(tested, d)
                missing.append(WORDS["ask_when"].format(names=names))
            computes = [f for f in rule.computes_with("then") if f not in tested]
            if computes:
                what = _effects([e for e in rule.then if isinstance(e, (Score, Dose, Titrate))], d)
                missing.append(WORDS["ask_compute"].format(what=what, names=_join_and([field_name(f, d) for f in computes])))
            need = [f for f in rule.requires if f not in tested and f not in computes]
            if need and rule.otherwise:
                missing.append(WORDS["ask_otherwise"].format(names=_join_and([field_name(f, d) for f in need])))
        elif [f for f in tested if not _is_decision(f, d)]:
            names = _names([f for f in tested if not _is_decision(f, d)], d)
            missing.append(WORDS["silent"].format(names=names))
        if rule.if_missing:
            names = _names(rule.requires, d)
            unless = "" if _is_always(when) else WORDS["if_missing_unless"]
            missing.append(WORDS["if_missing"].format(names=names, unless=unless, effects=_effects(rule.if_missing, d)))
    otherwise = None
    if rule.otherwise and not off:
        ready = WORDS["otherwise_ready"].format(names=_join_and([field_name(f, d) for f in rule.requires])) \
            if rule.requires else ""
        otherwise = WORDS["otherwise"].format(ready=ready, effects=_effects(rule.otherwise, d))
    off_text = WORDS["switched_off"]
    settings = _settings(rule, d)
    if settings:
        off_text = WORDS["switched_off_by"].format(settings="; ".join(settings))
    return RuleText(
        when=off_text if _is_never(when) else condition_text(when, d),
        due=None if _is_always(due) else (off_text if _is_never(due) else condition_text(due, d)),
        missing=missing,
        otherwise=otherwise,
        then=_effects(rule.then, d),
        when_outline=condition_outline(when, d),
        switched_off=off,
    )


def _settings(rule: Rule, d: PathwayDef) -> list[str]:
    """The profile's settings a rule reads (its parameters that are not numbers: switches and
    policies such as ``rescue_policy``), as ``title: value``."""
    out = []
    for name in rule.params:
        value = d.params.get(name)
        spec = d.spec.parameters.get(name)
        if spec is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            continue
        out.append(f"{one_line(spec.title) or name}: {_label(value)}")
    return out


def computed_text(comp: ComputedInput, d: PathwayDef) -> str:
    """When a computed input is true (it is false when the condition is definitely false, and has no
    value while it is unknown)."""
    return condition_text(comp.when, d)


def computed_recorded_text(comp: ComputedInput) -> str:
    """When a value recorded for a computed input wins over the computed one."""
    if comp.recorded_true_stands:
        return ("a recorded true stands until a false is recorded; a recorded false wins until a newer input value is "
                "recorded")
    return "a recorded value wins until a newer input value is recorded"


def overdue_text(state: str, d: PathwayDef) -> str | None:
    """When a state's decision is overdue (its watchdog), or None when it has none."""
    cond = d.watchdogs.get(state)
    return None if cond is None else condition_text(cond, d)


# -- invariants -----------------------------------------------------------------------------

_EXPECT_VERBS = {
    "moves_to": ("moves to {x}", "does not move to {x}"),
    "state": ("ends in {x}", "does not end in {x}"),
    "proposes": ("proposes {x}", "does not propose {x}"),
    "recommends": ("recommends {x}", "does not recommend {x}"),
    "alerts": ("raises {x}", "does not raise {x}"),
    "offers": ("offers {x}", "does not offer {x}"),
    "dose": ("gives a dose of {x}", "gives no dose of {x}"),
    "data_required": ("asks for data", "does not ask for data"),
}


def _expect_object(e: Expect, d: PathwayDef) -> str:
    if e.kind in ("moves_to", "proposes"):
        return state_name(str(e.arg), d)
    if e.kind == "state":
        return _join_or([state_name(s, d) for s in e.arg])
    if e.kind == "dose":
        return one_line(e.arg)
    if e.kind == "data_required":
        return ""
    arg = dict(e.arg)
    if e.kind == "offers":
        text = _label(arg.pop("option", "an option"))
        if "status" in arg:
            text += f" as {_label(arg.pop('status'))}"
    elif e.kind == "alerts":
        text = f"a {_label(arg.pop('level'))} alert" if "level" in arg else "an alert"
    else:
        text = f"a recommendation ({_label(arg.pop('kind'))})" if "kind" in arg else "a recommendation"
    if "rule" in arg:
        text += f" from rule {one_line(arg.pop('rule'))}"
    if "text_contains" in arg:
        text += f" whose text contains '{one_line(arg.pop('text_contains'))}'"
    return text


def expect_text(e: Expect, d: PathwayDef, *, negated: bool = False) -> str:
    """An invariant's expectation in words (``moves to 'Colectomy'``, ``does not offer ciclosporin as
    available``)."""
    if e.kind == "not":
        return expect_text(e.parts[0], d, negated=not negated)
    if e.kind in ("any", "all"):
        parts = [expect_text(p, d, negated=negated) for p in e.parts]
        if len(parts) == 1:
            return parts[0]
        # not (a or b) = neither: every part negated; not (a and b) = at least one part negated
        listed = "all" if (e.kind == "all") != negated else "any"
        return (WORDS["all_of"] if listed == "all" else WORDS["any_of"]) + "; ".join(parts)
    positive, negative = _EXPECT_VERBS[e.kind]
    return (negative if negated else positive).format(x=_expect_object(e, d))


def invariant_text(inv: Invariant, d: PathwayDef) -> str:
    """An invariant in words: ``when <condition>: <expectation>``, or the meaning of a built-in check."""
    if inv.builtin is not None:
        return re.sub(r" \([^()]*``[^()]*\)", "", one_line(BUILTINS.get(inv.builtin, inv.builtin))).replace("``", "")
    when = condition_text(inv.when, d) if inv.when is not None else WORDS["always"]
    expect = expect_text(inv.expect, d) if inv.expect is not None else ""
    if inv.at_end:
        expect = f"at the end of the course, {expect}"
    if inv.after is not None:
        expect = f"within {inv.within_days} days of a result that shows {expect_text(inv.after, d)}: {expect}"
    return f"when {when}: {expect}" if when != WORDS["always"] else f"after every event: {expect}"
