"""Decision tables: the rules of one state (or decision point) as a DMN-style table.

``pathway table PATHWAY --state STATE`` and the report's "Decision tables" section read these
models; :mod:`pathway.render.tables` writes them as text, Markdown, CSV and HTML.

A table has one **input column** per value the rules test (the clock, recorded inputs, derived
facts), headed by the field's title and unit, and one **row per rule and branch**: ``then``,
``otherwise`` and ``if missing`` (a rule that asks for data while it cannot decide has an ``if
missing`` row even without ``if_missing`` effects: it lists what it needs). The conditions are
the engine's own (:func:`pathway.analysis.evaluate.branch_conditions`, read from the compiled
rules): ``then`` is ``due`` and ``when`` definitely true with every value its effects compute with
recorded; ``otherwise`` is ``due``, every ``requires`` value recorded and ``when`` definitely false.
A condition with alternatives (``any``, ``at_least``, the negation of ``all``) is expanded to one
row per alternative, so every row is a conjunction of cell tests (DMN unary tests such as
``≥ 6``, ``> 90``, ``true``; ``-`` for any value); parameters are shown as their values under the
profile. Contradictory alternatives (``≤ 8`` and ``> 8``) are dropped.

The **hit policy** is the engine's (:mod:`pathway.runtime.moves`): every matching row fires (its
advice and derived facts are all kept); the move is decided by priority, and equal priorities
asking for different states are a conflict that the engine refuses.

Rows are grouped in parts: moves and proposals, facts derived, advice, and missing data. Findings
of ``pathway check`` that concern rows are marked on them: overlaps (PW610), shadowed moves (PW612),
branches that never fire (PW614), conflicting derivations (PW615); a gap (PW611) is a row of its own
with the witness input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any, Literal

from pathway.analysis.check import CheckReport, Finding
from pathway.analysis.evaluate import branch_conditions, format_value
from pathway.core.errors import Diagnostic, InputError, suggest
from pathway.definition import conditions as C
from pathway.definition import prose
from pathway.definition.clock import TIME_FIELDS, is_days_since
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
from pathway.definition.pathway import Branch, PathwayDef, Rule
from pathway.definition.waiting import asks_for_data
from pathway.runtime.compile import CompiledPathway

__all__ = ["Column", "Mark", "Row", "DecisionTable", "SECTIONS", "HIT_POLICY", "MAX_ALTERNATIVES",
           "decision_table", "decision_tables", "default_table_ids", "table_ids", "resolve_ids"]

#: A branch with more alternatives than this is shown as one row with its condition in words.
MAX_ALTERNATIVES = 48

Section = Literal["move", "derive", "advice", "missing"]
#: The parts of a table, in the order shown, with their headings.
SECTIONS: dict[str, str] = {
    "move": "Moves and proposals",
    "derive": "Facts derived",
    "advice": "Advice, alerts and options",
    "missing": "Missing data",
}

#: The engine's hit policy in words (see :mod:`pathway.runtime.moves` and :mod:`pathway.runtime.engine`).
HIT_POLICY = (
    "Every rule whose row matches fires: the advice, alerts, options and data requests of all of them "
    "are shown, and their facts are derived (DMN: collect). Facts are derived before the move is decided. "
    "The move goes by priority (DMN: priority): of the matching rows that move the patient, the one of "
    "highest priority wins; rows of equal priority asking for the same state make one move; rows of equal "
    "priority asking for different states are a conflict: the engine refuses the event and moves nobody "
    "(pathway check reports it as an overlap, PW610). After a move the new state's rules are read on the same "
    "values. A proposal never moves the patient: it waits for the team's recorded decision."
)

_BRANCH_WORDS = {"then": "then", "else": "otherwise", "missing": "if missing", "gap": "gap"}
_CLOCK_LABELS = {"day": "Clinical day", "days_in_state": "Days in this state"}


@dataclass(frozen=True)
class Column:
    """An input column: a value the rules of the table test."""

    name: str
    label: str  # the field's title and unit: "C-reactive protein (mg/L)"
    kind: Literal["clock", "state", "input", "derived"]


@dataclass(frozen=True)
class Mark:
    """A finding of ``pathway check`` shown on a row."""

    code: str
    severity: str  # error | warning
    text: str
    explained: str | None = None

    @property
    def level(self) -> str:
        """``error``, ``warning`` or ``explained`` (a warning the pathway explains under ``checks:``)."""
        return "explained" if self.explained else self.severity

    def words(self) -> str:
        """The mark in one line, with the explanation when there is one."""
        return f"{self.text} [{self.code}]" + (f" (explained: {self.explained})" if self.explained else "")


@dataclass(frozen=True)
class Row:
    """One row: a rule's branch (one alternative of its condition), or a gap found by the checks."""

    section: Section
    rule: str  # "" for a gap row
    title: str
    branch: str  # then | otherwise | if missing | gap
    priority: int | None
    cells: dict[str, str]  # column name -> unary test; a column not in it is "-" (any value)
    alternative: int = 0  # 1-based number of the alternative, 0 when the branch has one
    alternatives: int = 1
    moves: tuple[str, ...] = ()
    proposals: tuple[str, ...] = ()
    derives: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    note: str = ""
    never: bool = False  # the branch can never fire (its condition is settled false)
    marks: tuple[Mark, ...] = ()

    def cell(self, column: str) -> str:
        return self.cells.get(column, "-")

    @property
    def label(self) -> str:
        """``then``, ``otherwise 2/3``, ``if missing``, ``gap``."""
        word = _BRANCH_WORDS.get(self.branch, self.branch)
        return f"{word} {self.alternative}/{self.alternatives}" if self.alternative else word

    @property
    def outcome(self) -> str:
        """Every output of the row in one line (moves, proposals, derived facts, advice, data)."""
        parts = [f"moves to {m}" for m in self.moves] + [f"proposes {p}" for p in self.proposals]
        parts += list(self.derives) + list(self.advice)
        if self.data:
            parts.append("asks for " + ", ".join(self.data))
        return "; ".join(parts) or "-"


@dataclass(frozen=True)
class DecisionTable:
    """The decision table of one state or decision point."""

    id: str
    kind: Literal["state", "decision point"]
    title: str
    pathway: str
    version: str
    profile: str | None
    states: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    hit_policy: str = HIT_POLICY
    #: whether the marks of ``pathway check`` were computed (False: not run)
    checked: bool = False

    @property
    def heading(self) -> str:
        return f"{self.title} ({self.kind} {self.id})"

    def sections(self) -> list[tuple[str, str, list[Row]]]:
        """The non-empty parts: (key, heading, rows)."""
        out = []
        for key, heading in SECTIONS.items():
            rows = [r for r in self.rows if r.section == key]
            if rows:
                out.append((key, heading, rows))
        return out

    def columns_of(self, rows: Sequence[Row]) -> list[Column]:
        """The columns tested by some rule row of ``rows`` (a gap row shows its witness in those only)."""
        used = {name for r in rows if r.rule for name in r.cells}
        return [c for c in self.columns if c.name in used]

    @property
    def marks(self) -> list[Mark]:
        return [m for r in self.rows for m in r.marks]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "kind": self.kind, "title": self.title, "pathway": self.pathway, "version": self.version,
                "profile": self.profile, "states": list(self.states), "hit_policy": self.hit_policy,
                "notes": list(self.notes), "checked": self.checked,
                "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in self.columns],
                "rows": [{"section": r.section, "rule": r.rule, "title": r.title, "branch": r.branch,
                          "alternative": r.alternative, "alternatives": r.alternatives, "priority": r.priority,
                          "cells": dict(r.cells), "moves": list(r.moves), "proposals": list(r.proposals),
                          "derives": list(r.derives), "advice": list(r.advice), "data": list(r.data),
                          "note": r.note, "never": r.never,
                          "marks": [{"code": m.code, "severity": m.severity, "text": m.text, "explained": m.explained}
                                    for m in r.marks]} for r in self.rows]}


# -- which tables ---------------------------------------------------------------------------------

def default_table_ids(d: PathwayDef) -> list[str]:
    """Every state that has rules, in pathway order (a terminal state too, when a rule applies there:
    VTE prophylaxis once colectomy is decided)."""
    return [s for s in d.spec.states if d.rules_in(s)]


def table_ids(d: PathwayDef) -> list[str]:
    """Every id a table can be asked for: the states, then the decision points."""
    return list(d.spec.states) + [p for p in d.decision_points if p not in d.spec.states]


def resolve_ids(d: PathwayDef, ids: Iterable[str] | None = None) -> list[str]:
    """The tables asked for (default :func:`default_table_ids`), without repeats; raises InputError (PW201)
    for an id that is neither a state nor a decision point."""
    wanted = list(ids) if ids is not None else default_table_ids(d)
    known = table_ids(d)
    bad = [i for i in wanted if i not in known]
    if bad:
        raise InputError([Diagnostic("--state", 0, 0, "PW201", f"'{i}' is not a state or decision point of pathway '{d.id}'",
                                     suggest(i, known)) for i in bad])
    return list(dict.fromkeys(wanted))


def decision_tables(compiled: CompiledPathway, ids: Iterable[str] | None = None, *,
                    checks: CheckReport | None = None) -> list[DecisionTable]:
    """The tables of ``ids`` (states or decision points; default :func:`default_table_ids`).

    ``checks``: a report of :func:`pathway.analysis.check.check_pathway` on the same pathway and
    profile; its findings are marked on the rows. Raises InputError (PW201) for an unknown id.
    """
    d = compiled.definition
    conds = branch_conditions(compiled)
    return [_Builder(d, conds, i, checks).build() for i in resolve_ids(d, ids)]


def decision_table(compiled: CompiledPathway, table_id: str, *, checks: CheckReport | None = None) -> DecisionTable:
    """The table of one state or decision point."""
    return decision_tables(compiled, [table_id], checks=checks)[0]


# -- conditions as alternatives ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Maybe:
    """``test`` holds or the value is not recorded (the engine's test of an ``if missing`` branch)."""

    test: C.Cmp


_Atom = C.Cmp | _Maybe


class _TooMany(Exception):
    pass


class _Contradiction(Exception):
    pass


def _maybe(cond: C.Or) -> _Maybe | None:
    """``cmp or field not recorded`` as one atom."""
    if len(cond.items) != 2 or not all(isinstance(i, C.Cmp) for i in cond.items):
        return None
    a, b = cond.items
    assert isinstance(a, C.Cmp) and isinstance(b, C.Cmp)
    for test, absent in ((a, b), (b, a)):
        if (absent.op == "present" and absent.value is False and test.op != "present" and test.field == absent.field
                and not test.derived):
            return _Maybe(test)
    return None


def _dnf(cond: C.Cond) -> list[list[_Atom]]:
    """The alternatives of a condition (each a conjunction of atoms); raises _TooMany past the limit."""
    if isinstance(cond, C.Always):
        return [[]]
    if isinstance(cond, C.Cmp):
        return [[cond]]
    if isinstance(cond, C.AtLeast):
        return _dnf(C.expand_counts(cond))
    if isinstance(cond, C.Or):
        maybe = _maybe(cond)
        if maybe is not None:
            return [[maybe]]
        out: list[list[_Atom]] = []
        for item in cond.items:
            out += _dnf(item)
            if len(out) > MAX_ALTERNATIVES * 4:
                raise _TooMany
        return out
    result: list[list[_Atom]] = [[]]
    for item in cond.items:
        result = [left + right for left, right in product(result, _dnf(item))]
        if len(result) > MAX_ALTERNATIVES * 4:
            raise _TooMany
    return result


def _asked(cond: C.Cond) -> list[str]:
    """The input fields a waiting rule may ask for because ``cond`` tests them: not a derived fact, not a
    test of presence, and not a test that also passes when the value is not recorded (``x ≤ 30 or x not
    recorded`` is never unknown for want of x)."""
    if isinstance(cond, C.Cmp):
        return [] if cond.derived or cond.op == "present" else [cond.field]
    if isinstance(cond, C.Always) or _never(cond):
        return []
    asked = list(dict.fromkeys(f for item in cond.items for f in _asked(item)))
    if isinstance(cond, C.Or):  # 'x not recorded or ...' holds while x is missing
        passes = {i.field for i in cond.items if isinstance(i, C.Cmp) and i.op == "present" and i.value is False}
        asked = [f for f in asked if f not in passes]
    return asked


def _never(cond: C.Cond) -> bool:
    """A condition settled false when the pathway loaded (a test of a parameter that does not hold)."""
    if isinstance(cond, C.Or):
        return all(_never(i) for i in cond.items)
    if isinstance(cond, C.And):
        return any(_never(i) for i in cond.items)
    return False


# -- one field's tests: simplified, checked for contradictions ----------------------------------------

_LOWER = {"gt", "gte"}
_UPPER = {"lt", "lte"}


@dataclass
class _Tests:
    """What one alternative requires of one value."""

    name: str
    derived: bool
    ftype: str
    present: bool | None = None  # True: recorded; False: not recorded
    lower: tuple[Any, bool] | None = None  # (bound, inclusive)
    upper: tuple[Any, bool] | None = None
    eq: list[Any] = field(default_factory=list)
    ne: list[Any] = field(default_factory=list)
    among: list[tuple[Any, ...]] = field(default_factory=list)  # in
    none_of: list[Any] = field(default_factory=list)  # not in
    maybe: list[C.Cmp] = field(default_factory=list)

    def add(self, cmp: C.Cmp) -> None:
        if cmp.op == "present":
            if self.present is not None and self.present != bool(cmp.value):
                raise _Contradiction
            self.present = bool(cmp.value)
        elif cmp.op in _LOWER:
            bound = (cmp.value, cmp.op == "gte")
            if self.lower is None or _tighter_low(bound, self.lower):
                self.lower = bound
        elif cmp.op in _UPPER:
            bound = (cmp.value, cmp.op == "lte")
            if self.upper is None or _tighter_high(bound, self.upper):
                self.upper = bound
        elif cmp.op == "eq":
            self.eq.append(cmp.value)
        elif cmp.op == "ne":
            self.ne.append(cmp.value)
        elif cmp.op == "in":
            self.among.append(tuple(cmp.value))
        elif cmp.op == "not_in":
            self.none_of += list(cmp.value)

    def key(self) -> tuple[Any, ...]:
        """What the tests ask, by value (two alternatives asking the same of every value are one)."""
        return (self.name, self.present, repr(self.lower), repr(self.upper), repr(self.eq), repr(sorted(map(repr, self.ne))),
                repr(self.among), repr(sorted(map(repr, self.none_of))), repr(self.maybe))

    @property
    def valued(self) -> bool:
        """Some test needs a recorded value."""
        return bool(self.lower or self.upper or self.eq or self.ne or self.among or self.none_of)

    def allows(self, value: Any) -> bool:
        """``value`` passes every value test (not the maybes)."""
        if self.lower is not None and not _holds(value, "gte" if self.lower[1] else "gt", self.lower[0]):
            return False
        if self.upper is not None and not _holds(value, "lte" if self.upper[1] else "lt", self.upper[0]):
            return False
        if any(value != v for v in self.eq) or any(value == v for v in self.ne):
            return False
        return all(value in s for s in self.among) and value not in self.none_of

    def settle(self) -> bool:
        """Simplify in place; False when the tests contradict each other (no value passes them)."""
        if self.maybe:
            if self.present is False:
                self.maybe = []  # not recorded: each "test or not recorded" holds
            elif self.present is True or self.valued:
                for cmp in self.maybe:  # recorded: each must hold as a test
                    self.add(cmp)
                self.maybe = []
        if self.present is False:
            return not self.valued
        if self.ftype == "boolean" or (self.derived and self.ftype == "boolean"):
            for v in self.ne:
                self.eq.append(not v)
            self.ne = []
        if self.among:
            pool = set(self.among[0]).intersection(*self.among[1:])
            allowed = [v for v in self.among[0] if v in pool and self.allows(v)]
            if not allowed:
                return False
            self.among = [tuple(allowed)] if len(allowed) > 1 else []
            if len(allowed) == 1:
                self.eq = [allowed[0]]
        if self.eq:
            value = self.eq[0]
            if not self.allows(value):
                return False
            self.eq, self.ne, self.among, self.none_of = [value], [], [], []
            self.lower = self.upper = None
        if self.lower is not None and self.upper is not None:
            (lo, lo_in), (hi, hi_in) = self.lower, self.upper
            if lo > hi or (lo == hi and not (lo_in and hi_in)):
                return False
            if lo == hi:
                self.eq, self.lower, self.upper = [lo], None, None
        if self.valued and self.present:
            self.present = None  # a value test already needs the value recorded
        return True


def _holds(value: Any, op: str, bound: Any) -> bool:
    try:
        return bool(C.Cmp("x", op, bound).holds({"x": value}))
    except TypeError:
        return False


def _tighter_low(a: tuple[Any, bool], b: tuple[Any, bool]) -> bool:
    return bool(a[0] > b[0] or (a[0] == b[0] and not a[1] and b[1]))


def _tighter_high(a: tuple[Any, bool], b: tuple[Any, bool]) -> bool:
    return bool(a[0] < b[0] or (a[0] == b[0] and not a[1] and b[1]))


# -- the cell formatter ---------------------------------------------------------------------------------

_SYMBOL = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "eq": "=", "ne": "≠"}


def _value_text(value: Any, name: str, d: PathwayDef) -> str:
    if name == "state" and isinstance(value, str) and value in d.spec.states:
        return d.spec.states[value].title
    return format_value(value)


def _unary(tests: _Tests, d: PathwayDef) -> str:
    """One value's tests as a terse DMN unary test: ``≥ 6``, ``[3..8]``, ``true``, ``low or unknown``,
    ``not recorded``, ``> 30 or not recorded``.

    The one place that words a test (a rule file's comparison, parameters resolved): replaceable by a
    shared renderer of conditions in words.
    """
    name = tests.name

    def number(v: Any) -> str:
        return _value_text(v, name, d)

    if tests.present is False:
        return "not recorded"
    parts: list[str] = []
    if tests.eq:
        value = tests.eq[0]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        parts.append(f"= {number(value)}" if is_number else number(value))
    if tests.lower is not None and tests.upper is not None and tests.lower[1] and tests.upper[1]:
        parts.append(f"[{number(tests.lower[0])}..{number(tests.upper[0])}]")
    else:
        if tests.lower is not None:
            parts.append(f"{_SYMBOL['gte' if tests.lower[1] else 'gt']} {number(tests.lower[0])}")
        if tests.upper is not None:
            parts.append(f"{_SYMBOL['lte' if tests.upper[1] else 'lt']} {number(tests.upper[0])}")
    excluded = list(tests.none_of)
    if len(set(tests.ne)) == 1 and not excluded:
        parts.append(f"≠ {number(tests.ne[0])}")
    else:
        excluded = list(tests.ne) + excluded
    for group in tests.among:
        parts.append(" or ".join(number(v) for v in group))
    if excluded:
        values = [number(v) for v in dict.fromkeys(excluded)]
        parts.append(f"neither {values[0]} nor {values[1]}" if len(values) == 2 else f"not {values[0]}" if len(values) == 1
                     else "none of " + ", ".join(values))
    if tests.maybe:
        inner = _Tests(name, tests.derived, tests.ftype)
        for cmp in tests.maybe:
            inner.add(cmp)
        if not inner.settle():
            return "not recorded"
        return f"{_unary(inner, d)} or not recorded"
    if not parts and tests.present:
        return "known" if tests.derived else "recorded"
    return " and ".join(parts) or "-"


# -- building a table ---------------------------------------------------------------------------------

def _first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of a text (at most ``limit`` characters)."""
    text = " ".join(text.split())
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z(])", text)
    if match is not None:
        text = text[:match.start()]
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


class _Builder:
    def __init__(self, d: PathwayDef, conds: dict[str, dict[str, C.Cond]], table_id: str, checks: CheckReport | None):
        self.d = d
        self.conds = conds
        self.id = table_id
        self.checks = checks
        self.order = {r.id: i for i, r in enumerate(d.rules)}
        self.derived = set(d.spec.derived)
        point = d.decision_points.get(table_id) if table_id not in d.spec.states else None
        self.point = point
        if point is not None:
            self.rules = [r for r in d.rules if r.decision_point == table_id]
            self.states = tuple(dict.fromkeys(s for r in self.rules for s in r.states))
        else:
            self.rules = d.rules_in(table_id)
            self.states = (table_id,)
        self.expanded = False
        self.ranges = False
        self.truncated = False

    # -- labels
    def label(self, name: str) -> str:
        if name in _CLOCK_LABELS:
            return _CLOCK_LABELS[name]
        if name == "state":
            return "Current state"
        if name in self.d.spec.derived:
            return self.d.spec.derived[name].title
        f = self.d.fields.get(name)
        if f is None:
            return name
        unit = f.unit
        if unit == "day" and "day" in f.title.lower():
            unit = ""
        return f"{f.title} ({unit})" if unit else f.title

    def kind(self, name: str) -> Literal["clock", "state", "input", "derived"]:
        if name in TIME_FIELDS or is_days_since(name):
            return "clock"
        if name == "state":
            return "state"
        return "derived" if name in self.derived else "input"

    def ftype(self, name: str) -> str:
        if name in self.d.spec.derived:
            return self.d.spec.derived[name].type
        f = self.d.fields.get(name)
        return f.type if f is not None else "string"

    def state_title(self, state: str) -> str:
        sdef = self.d.spec.states.get(state)
        return sdef.title if sdef is not None else state

    # -- alternatives
    def alternatives(self, cond: C.Cond) -> list[dict[str, _Tests]] | None:
        """The satisfiable alternatives of ``cond`` by value (None: too many to show)."""
        try:
            raw = _dnf(cond)
        except _TooMany:
            return None
        found: list[tuple[frozenset[tuple[Any, ...]], dict[str, _Tests]]] = []
        for conj in raw:
            tests = self.conjunction(conj)
            if tests is None:
                continue
            key = frozenset(t.key() for t in tests.values())
            if any(k == key for k, _ in found):
                continue
            found.append((key, tests))
        # 'a or (a and b)' is 'a': an alternative that asks all another asks and more adds no case
        out = [tests for key, tests in found if not any(other < key for other, _ in found)]
        return out if len(out) <= MAX_ALTERNATIVES else None

    def conjunction(self, atoms: list[_Atom]) -> dict[str, _Tests] | None:
        by: dict[str, _Tests] = {}
        try:
            for atom in atoms:
                cmp = atom.test if isinstance(atom, _Maybe) else atom
                if cmp.field == "state" and len(self.states) == 1:
                    if not cmp.holds({"state": self.states[0]}):
                        return None
                    continue
                tests = by.setdefault(cmp.field, _Tests(cmp.field, cmp.derived or cmp.field in self.derived,
                                                        self.ftype(cmp.field)))
                if isinstance(atom, _Maybe):
                    tests.maybe.append(atom.test)
                else:
                    tests.add(atom)
        except _Contradiction:
            return None
        for tests in by.values():
            if not tests.settle():
                return None
        return by

    def cells(self, tests: dict[str, _Tests]) -> dict[str, str]:
        out = {}
        for name, t in tests.items():
            text = _unary(t, self.d)
            if text != "-":
                out[name] = text
                self.ranges = self.ranges or text.startswith("[")
        return out

    # -- outputs
    def fill(self, text: str) -> str:
        """A text with its parameters filled in and the patient's values as '…'."""
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.d.params:
                return format_value(self.d.params[name])
            return "…"
        return _first_sentence(TEMPLATE_RE.sub(one, text))

    def outputs(self, effects: Sequence[Effect]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"moves": [], "proposals": [], "derives": [], "advice": [], "data": []}
        for e in effects:
            if isinstance(e, Transition):
                out["moves"].append(self.state_title(e.to))
            elif isinstance(e, Propose):
                out["proposals"].append(f"{self.state_title(e.to)} (waits for the recorded decision)")
            elif isinstance(e, Derive):
                out["derives"] += [f"{self.label(k)} = {format_value(v)}" for k, v in e.values.items()]
            elif isinstance(e, Score):
                out["derives"].append(f"{self.label(e.name)} computed")
            elif isinstance(e, Recommend):
                out["advice"].append(f"{e.kind}: {self.fill(e.text)}")
            elif isinstance(e, Alert):
                out["advice"].append(f"alert ({e.level}): {self.fill(e.text)}")
            elif isinstance(e, Offer):
                rank = format_value(e.rank) if not isinstance(e.rank, str) else e.rank
                out["advice"].append(f"option {e.option}: {e.status}, rank {rank}")
            elif isinstance(e, (Dose, Titrate)):
                what = "dose" if isinstance(e, Dose) else "dose titrated to the level"
                out["advice"].append(f"{what}: {e.name} ({e.route})" + (f": {self.fill(e.text)}" if e.text else ""))
            elif isinstance(e, Require):
                out["data"] += [self.label(f) for f in e.fields]
        return out

    # -- rows
    def rule_rows(self, rule: Rule) -> list[Row]:
        rows: list[Row] = []
        conds = self.conds.get(rule.id, {})
        branches: tuple[tuple[Branch, str], ...] = (("then", "then"), ("else", "otherwise"))
        for branch, key in branches:
            effects = rule.effects(branch)
            if not effects:
                continue
            cond = conds.get(branch, C.Or(()))
            outs = self.outputs(effects)
            section: Section = ("move" if outs["moves"] or outs["proposals"] else
                                "derive" if outs["derives"] else "advice")
            alts = self.alternatives(cond)
            base = Row(section=section, rule=rule.id, title=rule.title, branch=key, priority=rule.priority, cells={},
                       moves=tuple(outs["moves"]), proposals=tuple(outs["proposals"]), derives=tuple(outs["derives"]),
                       advice=tuple(outs["advice"]), data=tuple(outs["data"]))
            if alts is None:
                self.truncated = True
                words = prose.condition_text(cond, self.d)
                rows.append(replace(base, note=f"condition with too many alternatives to show as rows: {words}"))
                continue
            if not alts:
                rows.append(replace(base, never=True,
                                    note="never fires: its condition cannot hold with these parameter values"))
                continue
            if len(alts) > 1:
                self.expanded = True
            for k, tests in enumerate(alts, 1):
                rows.append(replace(base, cells=self.cells(tests), alternative=k if len(alts) > 1 else 0,
                                    alternatives=len(alts)))
        rows += self.missing_rows(rule, conds)
        return rows

    def missing_rows(self, rule: Rule, conds: dict[str, C.Cond]) -> list[Row]:
        """One row per value the rule needs and may find missing: ``if_missing`` effects, or the data request."""
        if not asks_for_data(rule) and not rule.if_missing:
            return []
        # what pathway.definition.waiting lists: the values the condition tests, what 'then' computes
        # with, and the required values of a rule with 'otherwise' or 'if_missing' effects
        tested = _asked(rule.when)
        required = [f for f in rule.requires if rule.otherwise or rule.if_missing or f in tested]
        needed = [f for f in dict.fromkeys(tested + required + list(rule.computes_with("then")))
                  if f not in self.derived and self.kind(f) == "input"]
        if not needed:
            return []
        # asked for only because the condition tests them (not required, nor what 'then' computes with)
        only_tested = set(needed) - set(required) - set(rule.computes_with("then"))
        outs = self.outputs(rule.if_missing)
        due = self.alternatives(rule.due) or []
        if not due:
            return []
        rows = []
        total = len(due) * len(needed)
        k = 0
        for d_tests in due:
            for name in needed:
                # with other values tested, the rule may already be decided without this one
                note = "while its condition can still hold" if set(tested) - {name} else ""
                tests = {n: t for n, t in d_tests.items()}
                absent = _Tests(name, False, self.ftype(name), present=False)
                if name in tests and (tests[name].valued or tests[name].present):
                    continue  # the rule is due only with this value recorded
                if name in only_tested and not _still_tested(C.expand_counts(rule.when), name, d_tests):
                    continue  # the values the rule is due on already decide the part of the condition that reads it
                tests[name] = absent
                k += 1
                rows.append(Row(section="missing", rule=rule.id, title=rule.title, branch="if missing",
                                priority=rule.priority, cells=self.cells(tests),
                                alternative=k if total > 1 else 0, alternatives=total,
                                derives=tuple(outs["derives"]), advice=tuple(outs["advice"]),
                                data=(self.label(name),) + tuple(outs["data"]), note=note))
        if k != total:  # alternatives that test the value itself were left out
            rows = [replace(r, alternative=i if k > 1 else 0, alternatives=k) for i, r in enumerate(rows, 1)]
        return rows

    # -- findings
    def relevant(self, f: Finding) -> bool:
        return bool(set(f.states) & set(self.states))

    def witness_text(self, witness: dict[str, Any] | None) -> str:
        if not witness:
            return ""
        names = [n for n in TIME_FIELDS if n in witness] + sorted(n for n in witness if n not in TIME_FIELDS)
        parts = []
        for n in names:
            if n == "state" or witness[n] is None:
                continue
            unit = ""
            f = self.d.fields.get(n)
            if f is not None and f.unit and not (f.unit == "day" and n in TIME_FIELDS):
                unit = f" {f.unit}"
            parts.append(f"{self.label_plain(n)} = {_value_text(witness[n], n, self.d)}{unit}")
        return ", ".join(parts)

    def label_plain(self, name: str) -> str:
        """The title alone (units go with the value)."""
        if name in _CLOCK_LABELS:
            return _CLOCK_LABELS[name]
        if name in self.d.spec.derived:
            return self.d.spec.derived[name].title
        f = self.d.fields.get(name)
        return f.title if f is not None else name

    def mark_rows(self, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """Rows with the findings marked, and the gap rows to add."""
        if self.checks is None:
            return rows, []
        marks: dict[tuple[str, str | None], list[Mark]] = {}
        gaps: list[Row] = []

        def add(rule: str, branch: str | None, mark: Mark) -> None:
            marks.setdefault((rule, branch), []).append(mark)

        for f in self.checks.findings:
            if not self.relevant(f):
                continue
            example = self.witness_text(f.witness)
            eg = f", e.g. on {example}" if example else ""
            if f.code == "PW610" and len(f.rules) >= 2:
                a, b = f.rules[0], f.rules[1]
                for me, other in ((a, b), (b, a)):
                    add(me, "move", Mark(f.code, f.severity, f"overlap with {other}: both can match at the same priority "
                                                             f"and ask for different states; the engine refuses the "
                                                             f"move{eg}", f.explained))
            elif f.code == "PW612" and f.rules:
                winners = ", ".join(f.rules[1:]) or "a rule of higher priority"
                add(f.rules[0], "move", Mark(f.code, f.severity, f"shadowed: whenever it matches, {winners} moves the "
                                                                 f"patient first{eg}", f.explained))
            elif f.code == "PW614" and f.rules:
                found = re.search(r"the '(then|otherwise|if_missing)' branch", f.message)
                branch = {"then": "then", "otherwise": "otherwise", "if_missing": "if missing"}.get(
                    found.group(1) if found else "", None)
                add(f.rules[0], branch, Mark(f.code, f.severity, "this branch never fires" + (
                    " (a condition on a parameter is false with these parameter values)" if "parameter" in f.message
                    else ""), f.explained))
            elif f.code == "PW615" and len(f.rules) >= 2:
                a, b = f.rules[0], f.rules[1]
                for me, other in ((a, b), (b, a)):
                    add(me, "derive", Mark(f.code, f.severity, f"derives a different value than {other} on the same "
                                                               f"input; the engine refuses the evaluation{eg}", f.explained))
            elif f.code == "PW611" and self.point is None:
                mark = Mark(f.code, f.severity, "gap: with every value present, no rule leaves the state", f.explained)
                firing = [r for r in f.rules if r]
                witness = {k: v for k, v in (f.witness or {}).items() if k != "state" and v is not None}
                cells = {k: _value_text(v, k, self.d) for k, v in witness.items()}
                gaps.append(Row(section="move", rule="", title="No rule leaves the state", branch="gap", priority=None,
                                cells=cells, moves=(f"none: stays in {self.state_title(self.states[0])}",),
                                note=(f"witness input: {example}" if example else "")
                                + (f"; rules firing there: {', '.join(firing)}" if firing else ""),
                                marks=(mark,)))
        out = []
        for row in rows:
            mine = list(marks.get((row.rule, row.branch), []))
            if row.section == "move":
                mine += marks.get((row.rule, "move"), [])
            if row.section == "derive" or row.derives:
                mine += marks.get((row.rule, "derive"), [])
            out.append(replace(row, marks=tuple(mine)) if mine else row)
        return out, gaps

    def parameter_text(self, name: str) -> str:
        """``Oxford CRP with 3-8 stools (above) = 45 mg/L``."""
        p = self.d.spec.parameters.get(name)
        value = format_value(self.d.params[name])
        if p is None:
            return f"{name} = {value}"
        if p.unit == "day":
            return f"{p.title or name} = day {value}"
        return f"{p.title or name} = {value}" + (f" {p.unit}" if p.unit else "")

    # -- notes
    def notes(self, rows: list[Row], columns: list[Column]) -> list[str]:
        d = self.d
        out = ["Each row is a conjunction: it matches when every cell holds. '-' means any value, recorded or not.",
               "A test on a value that is not recorded is neither true nor false (three-valued logic): the row does "
               "not match, and neither does the 'otherwise' row of its rule; 'otherwise' rows also need every value "
               "the rule requires to be recorded. Rows under 'Missing data' say what a rule asks for while it cannot "
               "decide, and what its 'if missing' effects do."]
        if self.expanded:
            out.append("A rule whose condition has alternatives (any of, at least N of, or the negation of all of) "
                       "takes one row per alternative, numbered 1/N, 2/N, ...; alternatives that cannot hold are left out.")
        if self.ranges:
            out.append("[a..b] means from a to b, both included.")
        if any(c.kind == "derived" for c in columns):
            out.append("A test on a derived fact is unknown until a rule of this table derives it; facts are derived "
                       "before the move is decided.")
        kept: dict[str, list[str]] = {}
        for c in columns:
            point = d.kept.get(c.name)
            if point is not None:
                kept.setdefault(point, []).append(self.label(c.name))
        for pid, labels in kept.items():
            p = d.decision_points[pid]
            window = f"from day {format_value(p.from_day)} to before day {format_value(p.before_day)}"
            if p.counted_from is not None:
                window += f" of '{self.state_title(p.counted_from)}'"
            out.append(f"Decided at '{p.title}' ({window}) and kept afterwards (later rows read the kept value): "
                       + "; ".join(labels) + ".")
        computed = [c for c in columns if c.name in d.computed]
        for c in computed:
            comp = d.computed[c.name]
            out.append(f"{self.label(c.name)}: computed from {', '.join(self.label(i) for i in comp.inputs)} when not "
                       "recorded (a recorded value wins).")
        used = sorted({p for r in self.rules for p in r.params})
        if used:
            where = f"profile '{d.profile}'" if d.profile else "the pathway's defaults"
            out.append(f"Thresholds are the parameter values under {where}: "
                       + "; ".join(self.parameter_text(p) for p in used if p in d.params) + ".")
        if self.truncated:
            out.append(f"A branch with more than {MAX_ALTERNATIVES} alternatives is shown as one row with its condition.")
        if self.checks is None:
            out.append("The findings of pathway check were not computed for this table.")
        return out

    def build(self) -> DecisionTable:
        d = self.d
        rows: list[Row] = []
        for rule in self.rules:
            rows += self.rule_rows(rule)
        rows, gaps = self.mark_rows(rows)
        order = {k: i for i, k in enumerate(SECTIONS)}
        branch_order = {"then": 0, "otherwise": 1, "if missing": 2}

        def key(r: Row) -> tuple[Any, ...]:
            pri = -(r.priority or 0) if r.section == "move" else 0
            return (order[r.section], pri, self.order.get(r.rule, 0), branch_order.get(r.branch, 3), r.alternative)

        rows = sorted(rows, key=key) + gaps
        rows = sorted(rows, key=lambda r: order[r.section])  # gap rows last in their part (a stable sort)
        used = {n for r in rows for n in r.cells}
        names: list[str] = []
        for rule in self.rules:
            for cmp in C.fields_of(rule.due) + C.fields_of(rule.when):
                names.append(cmp.field)
            names += list(rule.requires)
        names += sorted(used)
        kinds = {"clock": 0, "state": 1, "input": 2, "derived": 3}
        ordered = [n for n in dict.fromkeys(names) if n in used]
        ordered.sort(key=lambda n: kinds[self.kind(n)])  # stable: first use within each kind
        columns = [Column(n, self.label(n), self.kind(n)) for n in ordered]
        if self.point is not None:
            title = self.point.title
            kind: Literal["state", "decision point"] = "decision point"
        else:
            title = self.state_title(self.id)
            kind = "state"
        notes = self.notes(rows, columns)
        if self.point is not None:
            counted = (f" (days counted from the first day in '{self.state_title(self.point.counted_from)}')"
                       if self.point.counted_from is not None else "")
            notes.insert(0, f"The rules of this decision point fire from day {format_value(self.point.from_day)} to "
                            f"before day {format_value(self.point.before_day)}{counted}, in "
                            + ", ".join(self.state_title(s) for s in self.states) + "; what they derive is kept.")
        if not self.rules:
            notes.insert(0, "No rule fires here.")
        return DecisionTable(self.id, kind, title, d.id, d.version, d.profile, self.states, tuple(columns), tuple(rows),
                             tuple(notes), HIT_POLICY, self.checks is not None)


def _implied(cmp: C.Cmp, tests: dict[str, _Tests]) -> bool:
    """Whether every value that passes ``tests`` (one alternative's) makes ``cmp`` true."""
    t = tests.get(cmp.field)
    if t is None or t.present is False:
        return False
    valued = t.present is True or t.lower is not None or t.upper is not None or bool(t.eq)
    if cmp.op == "present":
        return bool(cmp.value) and valued
    try:
        if cmp.op in _LOWER and t.lower is not None:
            bound, inclusive = t.lower
            return bool(bound > cmp.value or (bound == cmp.value and (cmp.op == "gte" or not inclusive)))
        if cmp.op in _UPPER and t.upper is not None:
            bound, inclusive = t.upper
            return bool(bound < cmp.value or (bound == cmp.value and (cmp.op == "lte" or not inclusive)))
        if cmp.op == "eq":
            return cmp.value in t.eq
    except TypeError:
        return False
    return False


def _still_tested(cond: C.Cond, name: str, tests: dict[str, _Tests]) -> bool:
    """Whether ``cond`` still reads ``name`` once the tests an alternative of the rule's ``due`` makes are
    known to hold: a test under an ``any`` whose other branch they make true is never read (the engine does
    not ask for it)."""
    return _scan(cond, name, tests)[1]


def _scan(cond: C.Cond, name: str, tests: dict[str, _Tests]) -> tuple[bool, bool]:
    """(``cond`` is true on every value passing ``tests``, ``cond`` reads ``name``)."""
    if isinstance(cond, C.Cmp):
        return _implied(cond, tests), cond.field == name
    if isinstance(cond, C.Always):
        return True, False
    if isinstance(cond, (C.And, C.Or)):
        parts = [_scan(item, name, tests) for item in cond.items]
        if isinstance(cond, C.Or):
            if any(true for true, _ in parts):
                return True, False
            return False, any(reads for _, reads in parts)
        return all(true for true, _ in parts), any(reads for _, reads in parts)
    return False, True  # anything else: assume it reads the value
