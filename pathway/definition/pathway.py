"""A resolved pathway: rules with conditions parsed and parameters substituted, fields, graph.

These are the types every later stage works on (the compiler, the engine, the checks, the
diagrams); :mod:`pathway.loading` builds them from the rule files.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pathway.definition import conditions as C
from pathway.definition.clock import MAX_DAY, elapsed
from pathway.definition.coding import Terminology
from pathway.definition.effects import Dose, Effect, Propose, Score, Titrate, Transition
from pathway.definition.invariants import Invariant
from pathway.definition.model import Evidence, FieldDef, PathwayFile
from pathway.definition.mutation import Site

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Rule", "PathwayDef", "ComputedInput", "Consistency", "DecisionPoint", "BUILTIN_NAMES", "builtin_fields",
           "Branch", "BRANCHES", "BRANCH_KEYS", "SignOff", "SIGNOFF_TEXT", "Ref", "Hazard"]

#: How a rule fired, as the engine's bindings and the result's trace name it.
Branch = Literal["then", "else", "missing"]
BRANCHES: tuple[Branch, ...] = ("then", "else", "missing")
#: The rule-file key of each branch's effects.
BRANCH_KEYS: dict[Branch, str] = {"then": "then", "else": "otherwise", "missing": "if_missing"}

#: A rule's sign-off status on a given date (see :meth:`Rule.signoff`).
SignOff = Literal["signed_off", "review_overdue", "not_reviewed"]
SIGNOFF_TEXT: dict[str, str] = {"signed_off": "signed off", "review_overdue": "review overdue",
                                "not_reviewed": "not reviewed"}

#: Fields every snapshot has, computed by the session (never given by a case): their names, and their
#: definitions (:func:`builtin_fields`).
BUILTIN_NAMES: tuple[str, ...] = ("day", "days_in_state")


@functools.cache
def builtin_fields() -> dict[str, FieldDef]:
    """The definitions of the built-in fields (made on first use: a pathway taken from the load cache
    validates no model, so it needs no pydantic validator built). Never change the dict."""
    return {
        "day": FieldDef(type="number", title="Clinical day (0 = admission and first IV steroid dose)", unit="day",
                        range=(0, MAX_DAY), scope="event", short="day"),
        "days_in_state": FieldDef(type="number", title="Days since the current state was entered", unit="day",
                                  range=(0, MAX_DAY), scope="event", short="day of the current state"),
    }


@dataclass(frozen=True)
class Rule:
    """A resolved rule: conditions parsed, parameters substituted, states expanded."""

    id: str
    title: str
    file: str
    line: int
    col: int
    states: tuple[str, ...]
    priority: int
    due: C.Cond
    requires: tuple[str, ...]
    when: C.Cond
    then: tuple[Effect, ...]
    otherwise: tuple[Effect, ...]
    evidence: Evidence
    params: tuple[str, ...] = ()
    note: str = ""
    if_missing: tuple[Effect, ...] = ()
    #: the decision point whose window the rule fires in (its ``due`` includes the window)
    decision_point: str | None = None
    reviewed_by: str = ""
    reviewed_on: date | None = None
    review_due: date | None = None

    def signoff(self, as_of: date) -> SignOff:
        """The clinical sign-off on ``as_of``: ``signed_off``, ``review_overdue`` (``review_due`` has
        passed) or ``not_reviewed``. Never read by the engine: it changes no result."""
        if not self.reviewed_by or self.reviewed_on is None:
            return "not_reviewed"
        if self.review_due is not None and as_of > self.review_due:
            return "review_overdue"
        return "signed_off"

    def effects(self, branch: Branch) -> tuple[Effect, ...]:
        """The effects of one branch: ``then``, ``else`` (the rule file's ``otherwise``) or
        ``missing`` (``if_missing``)."""
        if branch == "then":
            return self.then
        if branch == "else":
            return self.otherwise
        return self.if_missing

    def computes_with(self, branch: Branch = "then") -> tuple[str, ...]:
        """Input fields a branch's effects compute with (score items and terms, a dose's weight, a
        titration's current dose and level): the branch never fires while one is missing, since a
        dose or score is never computed on missing data."""
        # A rule never changes: the answer is worked out once per branch (kept beside the fields,
        # which equality and the dataclass fields ignore).
        cache: dict[str, tuple[str, ...]] = self.__dict__.setdefault("_computes_with_cache", {})
        if branch not in cache:
            cache[branch] = self._computes_with(branch)
        return cache[branch]

    def _computes_with(self, branch: Branch) -> tuple[str, ...]:
        names: list[str] = []
        for effect in self.effects(branch):
            if isinstance(effect, Score):
                for item in effect.items:
                    if isinstance(item.when, (C.Cmp, C.And, C.Or, C.Always)):
                        names += [c.field for c in C.fields_of(item.when) if not c.derived]
                names += [t.field for t in effect.terms]
                if effect.divide_by:
                    names.append(effect.divide_by)
            elif isinstance(effect, Dose):
                names.append("weight_kg")
            elif isinstance(effect, Titrate):
                names += [effect.current_daily_mg, effect.measured]
                if effect.max_mg_per_kg_per_day is not None:
                    names.append("weight_kg")
        return tuple(dict.fromkeys(names))

    def targets(self, branch: Branch = "then") -> list[str]:
        """States a branch moves the patient to."""
        return [e.to for e in self.effects(branch) if isinstance(e, Transition)]

    def proposed(self, branch: Branch = "then") -> list[str]:
        """States a branch proposes (the move waits for a recorded decision)."""
        return [e.to for e in self.effects(branch) if isinstance(e, Propose)]

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class ComputedInput:
    """A true/false input field computed from other inputs (``compute:`` in the fields file).

    ``when`` is true -> the field is true; definitely false -> false; unknown -> no value. A
    recorded value of the field wins when it was recorded in the same event as, or a later event
    than, the newest of the ``inputs`` the condition used (see :mod:`pathway.runtime.facts`); a
    recorded true always wins with ``recorded_true_stands``.
    """

    field: str
    when: C.Cond
    inputs: tuple[str, ...]  # the fields the condition tests, in the order written
    evidence: Evidence
    file: str
    line: int
    col: int
    params: tuple[str, ...] = ()
    #: a recorded true stands until a false is recorded (Computation.recorded_true_stands)
    recorded_true_stands: bool = False

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


#: How a consistency check's comparison is written (field reference, report, diff).
CHECK_SYMBOLS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


@dataclass(frozen=True)
class Consistency:
    """Values given together that must agree (``consistency:`` in the fields file): two number fields
    compared (``field`` ``op`` ``other``), or a ``forbid`` condition they must not definitely meet (then
    ``op`` is None, ``other`` empty, and ``field`` the first field it tests, where a refusal points)."""

    id: str
    title: str
    field: str
    op: Literal["gt", "gte", "lt", "lte"] | None
    other: str
    file: str
    line: int
    col: int
    forbid: C.Cond | None = None

    def must_hold(self) -> str:
        """What must hold, as written: ``stool_freq_24h ≥ bloody_stools_24h``, ``not (...)``."""
        if self.forbid is not None:
            return f"not {C.describe(self.forbid)}"
        return f"{self.field} {CHECK_SYMBOLS[str(self.op)]} {self.other}"

    def holds(self, values: dict[str, Any]) -> bool:
        """True unless the values given break the check (a forbidden combination definitely met, or
        both numbers given and the comparison failing)."""
        if self.forbid is not None:
            return C.evaluate(self.forbid, values) is not True
        a, b = values.get(self.field), values.get(self.other)
        if a is None or b is None:
            return True
        return self.op is None or bool(C.Cmp(self.field, self.op, b).holds({self.field: a}))


@dataclass(frozen=True)
class DecisionPoint:
    """A resolved decision point: its rules fire on clinical days ``from_day`` <= day < ``before_day``,
    counted from admission or, with ``counted_from``, from the first entry into that state (its rules
    are all in that state, entered once, so there the window is on ``days_in_state``); the facts they
    derive are kept afterwards (see :class:`pathway.definition.model.DecisionDef`)."""

    id: str
    title: str
    from_day: float
    before_day: float
    from_param: str | None = None
    before_param: str | None = None
    note: str = ""
    counted_from: str | None = None

    @property
    def clock(self) -> str:
        """The clock field the window is tested on in the point's rules."""
        return "day" if self.counted_from is None else "days_in_state"

    def window(self) -> C.Cond:
        """The condition on the clock that holds inside the window."""
        return C.And((C.Cmp(self.clock, "gte", self.from_day, param=self.from_param),
                      C.Cmp(self.clock, "lt", self.before_day, param=self.before_param)))

    def days(self, day: float | None, entered: Mapping[str, float]) -> float | None:
        """The day on this point's count: ``day`` from admission, or from the first entry into
        ``counted_from`` (None before the patient entered it)."""
        if day is None or self.counted_from is None:
            return day
        start = entered.get(self.counted_from)
        return None if start is None else elapsed(day, start)

    def passed(self, day: float | None, entered: Mapping[str, float]) -> bool:
        """True once the window is over: the kept facts stand in for their rules."""
        days = self.days(day, entered)
        return days is not None and days >= self.before_day


@dataclass(frozen=True)
class Ref:
    """A name a hazard refers to, with where the hazards file names it."""

    id: str
    line: int
    col: int


@dataclass(frozen=True)
class Hazard:
    """One entry of the hazard log, resolved: its risks rated by the DCB0129 matrix and every rule,
    parameter, field and watchdog it names checked (scenario ids are checked where scenarios are
    run: ``pathway check`` and ``pathway hazards``)."""

    id: str
    title: str
    cause: str
    effect: str
    severity: str
    likelihood: str
    initial_risk: int
    residual_severity: str
    residual_likelihood: str
    residual_risk: int
    status: str
    file: str
    line: int
    col: int
    rules: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    watchdogs: tuple[str, ...] = ()
    scenarios: tuple[Ref, ...] = ()
    invariants: tuple[str, ...] = ()
    open_questions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    note: str = ""
    #: where the hazards file lists the mitigations and the verification (for findings about them)
    mitigations_at: tuple[int, int] = (0, 0)
    verification_at: tuple[int, int] = (0, 0)

    @property
    def mitigated_by(self) -> tuple[str, ...]:
        """Every control named, as ``kind:name`` (empty when the hazard claims no mitigation)."""
        return (tuple(f"rule:{n}" for n in self.rules) + tuple(f"parameter:{n}" for n in self.parameters)
                + tuple(f"field:{n}" for n in self.fields) + tuple(f"watchdog:{n}" for n in self.watchdogs))

    @property
    def verified_by(self) -> tuple[str, ...]:
        return tuple(f"scenario:{r.id}" for r in self.scenarios) + tuple(f"invariant:{n}" for n in self.invariants)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class PathwayDef:
    """Everything the compiler, engine, diagrams and checks need, already validated."""

    root: Path
    spec: PathwayFile
    fields: dict[str, FieldDef]
    rules: list[Rule]
    #: ``(rule id, from, to)`` of every move a rule makes (the ``rules`` of the graph's edges)
    rule_edges: tuple[tuple[str, str, str], ...]
    params: dict[str, Any]
    profile: str | None = None
    files: list[str] = field(default_factory=list)
    #: decision field -> the states where it counts (see model.DecisionSpec)
    decisions: dict[str, frozenset[str]] = field(default_factory=dict)
    #: state -> its overdue condition (parsed, parameters resolved); text and evidence are in spec
    watchdogs: dict[str, C.Cond] = field(default_factory=dict)
    #: computed inputs in evaluation order (an input computed from another comes after it)
    computed: dict[str, ComputedInput] = field(default_factory=dict)
    consistency: tuple[Consistency, ...] = ()
    decision_points: dict[str, DecisionPoint] = field(default_factory=dict)
    #: derived fact -> the decision point that keeps it
    kept: dict[str, str] = field(default_factory=dict)
    #: the hazard log, in file order (empty when pathway.yaml names no hazards file)
    hazards: tuple[Hazard, ...] = ()
    #: the safety invariants, in file order (empty when pathway.yaml names no invariants file)
    invariants: tuple[Invariant, ...] = ()
    #: every numeric comparison written in a condition (the sites of threshold mutations)
    sites: tuple[Site, ...] = ()
    #: the FHIR terminology map (None when pathway.yaml names no codes file)
    codes: Terminology | None = None
    #: ``(rule id, from, to)`` of every move a rule proposes (the ``proposals`` of the graph's edges)
    proposal_edges: tuple[tuple[str, str, str], ...] = ()

    @cached_property
    def provisional(self) -> frozenset[str]:
        """The fields with provisional values (``FieldDef.provisional``: 'pending' never replaces a result)."""
        return frozenset(name for name, f in self.fields.items() if f is not None and f.provisional)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The state graph (:func:`pathway.definition.graph.build_graph`), built on first use, so that
        loading, checking and compiling a pathway do not import networkx."""
        from pathway.definition.graph import build_graph

        return build_graph(self.spec, self.rule_edges, self.proposal_edges)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def start_state(self) -> str:
        return next(s for s, d in self.spec.states.items() if d.kind == "start")

    def fingerprint(self) -> str:
        """A short hash of what this pathway decides with: the contents of every file the load read
        (named relative to the pathway folder), the profile and the parameter values in effect."""
        h = hashlib.sha256()
        for name in sorted(set(self.files)):
            path = Path(name)
            try:
                shown = path.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                shown = path.name
            h.update(shown.encode("utf-8", "surrogateescape") + b"\0")
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"\0missing\0")
            h.update(b"\0")
        h.update(json.dumps({"profile": self.profile, "parameters": self.params}, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def rules_in(self, state: str) -> list[Rule]:
        return [r for r in self.rules if state in r.states]
