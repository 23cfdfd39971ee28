"""Static checks of a pathway: ``pathway check PATHWAY``.

Every finding is one compiler-style line, ``file:line:col: severity: message [PW6xx]``; the
codes are stable (see :data:`CHECKS` and docs/auditing.md). Three kinds of check:

- **load** (PW600): the pathway does not load; the loader's own diagnostics are listed.
- **graph** (PW601-PW605): unreachable states, dead ends, terminal states with a way out, states
  from which no terminal state can be reached, transitions no rule takes, rule transitions that
  are not edges.
- **rules** (PW610-PW615): two rules of equal priority asking for different states on the same
  input (overlap), complete inputs on which no rule leaves a decision state (gap), rules that can
  never move the patient because a higher-priority rule always wins (shadowed), branches that can
  never fire, conflicting derivations, and parameters without a source.

The rule checks search the boundary values of every threshold the state's rules use (see
:func:`pathway.evaluate.field_candidates`), state by state and time point by time point. The
search assigns one field at a time and evaluates every rule on the partial input with
three-valued logic extended to "not decided yet"; a branch of the search is dropped as soon as
its outcome is settled, so the whole space is covered without trying every combination. Each
search is bounded (``--budget`` nodes); when a bound is hit the check reports what it covered in
a note instead of a conclusion. Overlaps, gaps and conflicts come with a concrete input
(witness) that was re-checked with :func:`pathway.evaluate.evaluate_state`.

Checks are switched off with ``--disable CODE`` or a ``checks:`` entry with ``disable: true``
in pathway.yaml; a ``checks:`` entry with a ``note`` explains the warnings it matches (narrowed to
a ``state`` and/or ``rule``), so they no longer count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import networkx as nx
from pydantic import ValidationError

from pathway.analysis.evaluate import (
    TIME_FIELDS,
    Move,
    atoms_of,
    branch_conditions,
    branch_effects,
    derived_made,
    derived_tests,
    evaluate_state,
    field_candidates,
    format_facts,
    format_value,
    numeric_inputs,
    rule_inputs,
    time_candidates,
)
from pathway.core.codes import CODES
from pathway.core.errors import DefinitionError, Diagnostic, display_path, suggest
from pathway.core.text import one_line
from pathway.core.yamlsafe import RULE_FILE_LIMITS, Located, YamlProblem, load_yaml_file
from pathway.definition import conditions as C
from pathway.definition.effects import (
    CARD_SUMMARY_MAX,
    TEMPLATE_RE,
    Alert,
    Derive,
    Dose,
    Propose,
    Recommend,
    Score,
    Titrate,
    Transition,
    compute_score,
)
from pathway.definition.graph import build_graph, expand_sources
from pathway.definition.model import PathwayFile
from pathway.definition.pathway import BRANCH_KEYS, BRANCHES, Branch, PathwayDef, Rule
from pathway.loading.loader import load_definition, resolve_pathway_dir
from pathway.runtime.compile import CompiledPathway, compile_kept

__all__ = [
    "CheckInfo",
    "CHECKS",
    "Finding",
    "CheckReport",
    "StateSpace",
    "check_pathway",
    "DEFAULT_BUDGET",
    "ExtraCheck",

]

#: Search nodes per question (one state, one time point, one property).
DEFAULT_BUDGET = 20000


@dataclass(frozen=True)
class CheckInfo:
    """A static check: stable code, severity and a one-line description."""

    code: str
    severity: str  # error | warning
    title: str


CHECKS: dict[str, CheckInfo] = {c.code: CheckInfo(c.code, c.severity, c.title)
                                 for c in CODES.values() if c.kind == "check"}

#: Loader codes that are findings of a check of their own (the rest are listed under PW600).
_LOADER_CODES = {"PW207": "PW603", "PW206": "PW606"}


@dataclass(frozen=True)
class Finding:
    """One result of a check, located in a rule or pathway file."""

    code: str
    severity: str
    file: str
    line: int
    col: int
    message: str
    states: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    witness: dict[str, Any] | None = None
    explained: str | None = None
    hint: str | None = None

    @property
    def diagnostic(self) -> Diagnostic:
        """The finding as a :class:`Diagnostic` (the message starts with the severity)."""
        label = "explained" if self.explained else self.severity
        return Diagnostic(self.file, self.line, self.col, self.code, f"{label}: {self.message}", self.hint)

    def __str__(self) -> str:
        text = str(self.diagnostic)
        return f"{text} - {self.explained}" if self.explained else text

    def sort_key(self) -> tuple[Any, ...]:
        """Report order: file, line, column, code, message."""
        return (self.file, self.line, self.col, self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``pathway check --format json``)."""
        return {"code": self.code, "severity": self.severity, "file": self.file, "line": self.line, "col": self.col,
                "message": self.message, "states": list(self.states), "rules": list(self.rules),
                "witness": self.witness, "explained": self.explained, "hint": self.hint}


@dataclass
class CheckReport:
    """Findings of one run of the checks on one pathway."""

    pathway: str
    version: str
    profile: str | None
    root: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    loaded: bool = True

    @property
    def errors(self) -> list[Finding]:
        """Error findings (errors cannot be explained)."""
        return [f for f in self.findings if f.severity == "error" and not f.explained]

    @property
    def warnings(self) -> list[Finding]:
        """Warnings not explained under ``checks:``."""
        return [f for f in self.findings if f.severity == "warning" and not f.explained]

    @property
    def explained(self) -> list[Finding]:
        """Findings explained under ``checks:`` in pathway.yaml."""
        return [f for f in self.findings if f.explained]

    def exit_code(self, strict: bool = False) -> int:
        """1 when there is an error (or, with ``strict``, an unexplained warning), else 0."""
        return 1 if self.errors or (strict and self.warnings) else 0

    def summary(self) -> str:
        """``asuc 0.1.0: 0 error(s), 3 warning(s), 1 explained``."""
        return (f"{self.pathway} {self.version}: {len(self.errors)} error(s), {len(self.warnings)} warning(s), "
                f"{len(self.explained)} explained")

    def text(self, show_explained: bool = False) -> str:
        """Compiler-style lines, then notes and the summary."""
        lines = [one_line(f) for f in self.findings if show_explained or not f.explained]
        lines += [one_line(f"note: {n}") for n in self.notes]
        lines.append(one_line(self.summary()))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the whole report."""
        return {"pathway": self.pathway, "version": self.version, "profile": self.profile, "loaded": self.loaded,
                "errors": len(self.errors), "warnings": len(self.warnings), "explained": len(self.explained),
                "findings": [f.to_dict() for f in self.findings], "notes": list(self.notes),
                "disabled": list(self.disabled)}


# -- the input space of one state --------------------------------------------------------

_ABSENT = object()  # a derived fact that no rule derived
_ANY = object()  # a derived number whose value is not decided yet (or not modelled)
_OPEN = object()  # a field not decided yet in a search (memo keys)


@dataclass(frozen=True)
class _Outcome:
    """Possible results of every rule on a partial input."""

    status: dict[str, frozenset[str | None]]  # rule id -> possible branches (None: does not fire)
    due: dict[str, frozenset[bool | None]]


class StateSpace:
    """The inputs of one state: candidate values per field, the clock points, and a search over them."""

    def __init__(self, compiled: CompiledPathway, state: str, budget: int = DEFAULT_BUDGET,
                 conditions: dict[str, dict[str, C.Cond]] | None = None):
        definition = compiled.definition
        self.compiled = compiled
        self.definition = definition
        self.conds = conditions if conditions is not None else branch_conditions(compiled)
        self.state = state
        self.budget = budget
        self.rules = definition.rules_in(state)
        self.by_id = {r.id: r for r in self.rules}
        self.order = {r.id: i for i, r in enumerate(definition.rules)}
        self.derived_names = set(definition.spec.derived)
        self.inputs = {r.id: rule_inputs(r, self.derived_names, self.conds.get(r.id, {})) for r in self.rules}
        self.tests = {r.id: derived_tests(r) for r in self.rules}
        self.made = {r.id: derived_made(r) for r in self.rules}
        self.producers: dict[str, list[str]] = {}
        for r in self.rules:
            for name in self.made[r.id]:
                self.producers.setdefault(name, []).append(r.id)
        self.moves: list[Move] = []
        #: moves a rule proposes (the patient leaves once the team records the decision)
        self.proposals: list[Move] = []
        for r in self.rules:
            for branch in ("then", "else"):
                for effect in branch_effects(r, branch):
                    if isinstance(effect, Transition):
                        self.moves.append(Move(r.id, branch, effect.to, r.priority, self.order[r.id]))
                    elif isinstance(effect, Propose):
                        self.proposals.append(Move(r.id, branch, effect.to, r.priority, self.order[r.id]))
        atoms: dict[str, list[C.Cmp]] = {}
        numeric: set[str] = set()
        for r in self.rules:
            for c in atoms_of(r, self.conds.get(r.id, {})):
                if not c.derived:
                    atoms.setdefault(c.field, []).append(c)
            numeric |= numeric_inputs(r)
        self.atoms = atoms
        self.numeric = numeric
        self.times = time_candidates([c for name in TIME_FIELDS for c in atoms.get(name, [])])
        # Facts kept by decision points: after a window has passed they are not derived but given
        # (any value their rules can derive, or none when no evaluation fell in the window).
        self.kept: dict[str, float] = {}  # kept fact tested here -> day from which it is given
        self._kept_clock: dict[str, str] = {}  # kept fact -> the clock that day is on
        self._kept_values: dict[str, list[Any]] = {}
        tested_here = {n for r in self.rules for n in self.tests[r.id]}
        for name, point in sorted(definition.kept.items()):
            if name not in tested_here:
                continue
            dp = definition.decision_points[point]
            self.kept[name] = dp.before_day
            # in the state its days count from, the window is on days_in_state (see DecisionPoint)
            self._kept_clock[name] = "days_in_state" if dp.counted_from == self.state else "day"
            made = [v for r in definition.rules for b, v in derived_made(r).get(name, []) if v is not None]
            dtests = [c for r in self.rules for c in atoms_of(r, self.conds.get(r.id, {})) if c.derived and c.field == name]
            ddef = definition.spec.derived[name]
            if ddef.type == "number":
                values = field_candidates(name, "number", [replace(c, derived=False) for c in dtests])
            else:
                values = list(dict.fromkeys(made + (list(ddef.values) if ddef.type == "string" else [])))
            self._kept_values[name] = values or [True]
        self._values: dict[str, list[Any]] = {}
        self._cyclic: set[str] = set()
        self._topo = self._topological()
        self._reads = {r.id: tuple(sorted(self.inputs[r.id] | set(TIME_FIELDS))) for r in self.rules}
        #: clock fields some rule of the state tests (the others are left out of witnesses)
        self.clock = tuple(n for n in TIME_FIELDS if atoms.get(n))
        self._tested_sorted = {r.id: tuple(sorted(self.tests[r.id])) for r in self.rules}

    # -- candidates --------------------------------------------------------------------
    def values(self, name: str) -> list[Any]:
        """Candidate values of an input field in this state (without "missing")."""
        if name not in self._values:
            fdef = self.definition.fields.get(name)
            if fdef is None:
                self._values[name] = [True]
            else:
                self._values[name] = field_candidates(name, fdef.type, self.atoms.get(name, []), values=fdef.values,
                                                      value_range=fdef.range, numeric_use=name in self.numeric)
        return self._values[name]

    def candidates(self, name: str, complete: bool) -> list[Any]:
        """Candidate values of a field (or of a kept fact); unless ``complete``, "missing" (None) comes first.

        A decision is never part of complete clinical data: it may always be not (yet) recorded,
        so a gap is one where no rule moves the patient before the team decides anything.
        """
        values = self._kept_values[name] if name in self._kept_values else self.values(name)
        return values if complete and name not in self.definition.decisions else [None] + values

    def kept_at(self, time: dict[str, Any]) -> list[str]:
        """Kept facts given at this time point (their decision window has passed)."""
        out = []
        for n, start in self.kept.items():
            day = time.get(self._kept_clock[n])
            if isinstance(day, (int, float)) and day >= start:
                out.append(n)
        return out

    # -- structure ---------------------------------------------------------------------
    def _topological(self) -> list[str]:
        """Rules ordered so that producers of a derived fact come before the rules testing it."""
        ids = [r.id for r in self.rules]
        graph = nx.DiGraph()
        graph.add_nodes_from(ids)
        for r in self.rules:
            for name in self.tests[r.id]:
                for p in self.producers.get(name, []):
                    if p != r.id:
                        graph.add_edge(p, r.id)
        try:
            return list(nx.lexicographical_topological_sort(graph, key=lambda n: self.order[n]))
        except nx.NetworkXUnfeasible:
            # Facts that rules derive from each other in a cycle may take any value when tested.
            self._cyclic = {name for name, rids in self.producers.items() if any(
                nx.has_path(graph, t, p) for p in rids for t in ids if name in self.tests[t])}
            return ids

    def ancestors(self, rule_ids: Iterable[str]) -> set[str]:
        """The rules plus every rule deriving a fact they test, transitively."""
        out: set[str] = set()
        todo = list(rule_ids)
        while todo:
            rid = todo.pop()
            if rid in out:
                continue
            out.add(rid)
            for name in self.tests[rid]:
                todo.extend(self.producers.get(name, []))
        return out

    # -- possible outcomes on a partial input ----------------------------------------------
    def _cmp(self, c: C.Cmp, asg: dict[str, Any], open_: dict[str, list[Any]], dposs: dict[str, set[Any]]) -> set[Any]:
        if c.derived:
            out: set[Any] = set()
            for v in dposs.get(c.field, {_ABSENT}):
                if v is _ABSENT:
                    out.add(None)
                elif v is _ANY or c.op == "present":
                    out |= {True} if c.op == "present" else {True, False}
                else:
                    out.add(c.holds({c.field: v}))
            return out
        if c.field in asg:
            return {c.holds(asg)}
        if c.field in open_:
            return {c.holds({c.field: v}) for v in open_[c.field]}
        return {c.holds({})}

    def _cond(self, cond: C.Cond, asg: dict[str, Any], open_: dict[str, list[Any]], dposs: dict[str, set[Any]]) -> set[Any]:
        if isinstance(cond, C.Always):
            return {True}
        if isinstance(cond, C.Cmp):
            return self._cmp(cond, asg, open_, dposs)
        if isinstance(cond, C.AtLeast):
            return self._cond(C.expand_counts(cond), asg, open_, dposs)
        sets = [self._cond(i, asg, open_, dposs) for i in cond.items]
        out: set[Any] = set()
        if isinstance(cond, C.And):
            if all(True in s for s in sets):
                out.add(True)
            if any(False in s for s in sets):
                out.add(False)
            if sets and all((True in s or None in s) for s in sets) and any(None in s for s in sets):
                out.add(None)
            return out
        if any(True in s for s in sets):
            out.add(True)
        if all(False in s for s in sets):
            out.add(False)
        if sets and all((False in s or None in s) for s in sets) and any(None in s for s in sets):
            out.add(None)
        return out

    def possible(self, rule_ids: set[str], asg: dict[str, Any], open_: dict[str, list[Any]], abstract: bool,
                 memo: dict[Any, Any] | None = None) -> _Outcome:
        """Possible branches of each rule over every completion of the partial input ``asg``.

        ``open_`` maps undecided fields to their remaining candidates; other fields are missing.
        With ``abstract``, scores may take any value (used to prove that something never happens).
        ``memo`` caches each rule's result by what it reads (valid while the candidates stay the same).
        """
        dposs: dict[str, set[Any]] = {}
        definite: set[str] = set()
        for name in self.kept:  # kept facts assigned (or still open) in the search
            if name in asg:
                dposs[name] = {_ABSENT if asg[name] is None else asg[name]}
                definite.add(name)
            elif name in open_:
                dposs[name] = {_ABSENT if v is None else v for v in open_[name]}
                definite.add(name)
        status: dict[str, frozenset[str | None]] = {}
        dues: dict[str, frozenset[bool | None]] = {}
        finalized: set[str] = set()
        for rid in self._topo:
            if rid not in rule_ids:
                continue
            rule = self.by_id[rid]
            for name in self.tests[rid]:
                if name not in finalized:
                    finalized.add(name)
                    if name not in definite:
                        dposs.setdefault(name, set()).add(_ABSENT)
                    if name in self._cyclic:
                        dposs[name].add(_ANY)
            key = None
            if memo is not None:
                key = (rid,
                       tuple(asg[f] if f in asg else (_OPEN if f in open_ else None) for f in self._reads[rid]),
                       tuple(frozenset(dposs.get(n, ())) for n in self._tested_sorted[rid]))
            cached = memo.get(key) if memo is not None else None
            if cached is not None:
                du, outs_f = cached
            else:
                du = frozenset(self._cond(rule.due, asg, open_, dposs))
                outs: set[str | None] = set()
                certain = False
                if True in du:
                    for then_else, cond in self.conds.get(rid, {}).items():
                        values = self._cond(cond, asg, open_, dposs)
                        if True in values:
                            outs.add(then_else)
                            certain = certain or values == {True}
                if not certain:
                    outs.add(None)
                outs_f = frozenset(outs)
                if memo is not None:
                    memo[key] = (du, outs_f)
            dues[rid] = du
            status[rid] = outs_f
            outs = set(outs_f)
            for branch in outs:
                if branch is None:
                    continue
                for effect in branch_effects(rule, branch):
                    if isinstance(effect, Derive):
                        for name, derived in effect.values.items():
                            dposs.setdefault(name, set()).add(derived)
                            if outs == {branch}:
                                definite.add(name)
                    elif isinstance(effect, Score):
                        value: Any = _ANY
                        needed = {t.field for t in effect.terms} | ({effect.divide_by} if effect.divide_by else set())
                        needed |= {c.field for item in effect.items for c in C.fields_of(item.when)}
                        if not abstract and all(n in asg for n in needed) and all(asg.get(n) is not None for n in rule.requires):
                            try:
                                value = compute_score(effect, asg)
                            except (KeyError, TypeError, ZeroDivisionError, ValueError):
                                value = _ANY
                        dposs.setdefault(effect.name, set()).add(value)
                        if outs == {branch}:
                            definite.add(effect.name)
        return _Outcome(status, dues)

    # -- search ------------------------------------------------------------------------
    def active_rules(self, rule_ids: set[str], time: dict[str, Any]) -> set[str]:
        """The rules whose ``due`` can hold at this time point (with any other input)."""
        fields = {n for rid in rule_ids for n in self.inputs[rid]}
        open_ = {n: [None] + self.values(n) for n in fields}
        asg = dict(time, state=self.state)
        out = self.possible(rule_ids, asg, open_, abstract=True)
        return {rid for rid in rule_ids if True in out.due[rid]}

    def search(self, rule_ids: set[str], time: dict[str, Any], predicate: Callable[[_Outcome], bool | None], *,
               complete: bool, abstract: bool, accept_possible: bool, focus: Sequence[str] = ()) -> _SearchResult:
        """Look for an input (at this time point) on which ``predicate`` holds.

        The predicate answers True / False / None (not decided) on the possible outcomes of a
        partial input. ``complete``: every field present (else "missing" is a candidate too).
        ``accept_possible``: a full input on which the predicate is still undecided counts (used
        with ``abstract`` to prove that something can never happen).
        """
        active = self.active_rules(rule_ids, time)
        rules = set(rule_ids)  # inactive rules stay in: their branches are settled by their 'due'
        names: list[str] = []
        for rid in list(focus) + sorted(rules, key=lambda r: (-self.by_id[r].priority, self.order[r])):
            if rid not in active:
                continue
            for n in sorted(self.inputs[rid]):
                if n not in names:
                    names.append(n)
        for n in self.kept_at(time):
            if n not in names and any(n in self.tests[rid] for rid in rules):
                names.append(n)
        cands = {n: self.candidates(n, complete) for n in names}
        asg: dict[str, Any] = dict(time, state=self.state)
        nodes = 0
        memo: dict[Any, Any] = {}

        def visit(i: int) -> dict[str, Any] | None:
            nonlocal nodes
            nodes += 1
            if nodes > self.budget:
                raise _Budget
            open_ = {n: cands[n] for n in names[i:]}
            verdict = predicate(self.possible(rules, asg, open_, abstract, memo))
            if verdict is False:
                return None
            if verdict is True or (i == len(names) and accept_possible):
                found = dict(asg)
                for n in names[i:]:
                    found[n] = cands[n][0]
                return found
            if i == len(names):
                return None
            name = names[i]
            for value in cands[name]:
                asg[name] = value
                hit = visit(i + 1)
                if hit is not None:
                    del asg[name]
                    return hit
            del asg[name]
            return None

        try:
            found = visit(0)
        except _Budget:
            return _SearchResult(None, False, nodes)
        if found is not None:
            found.pop("state", None)
            for name in TIME_FIELDS:
                if name not in self.clock:
                    found.pop(name, None)
        return _SearchResult(found, True, nodes)

    def find(self, rule_ids: set[str], predicate: Callable[[_Outcome], bool | None], *, complete: bool = False,
             abstract: bool = False, accept_possible: bool = False, focus: Sequence[str] = ()) -> _SearchResult:
        """:meth:`search` over every time point of the state; the first hit wins."""
        exhaustive = True
        nodes = 0
        for time in self.times:
            result = self.search(rule_ids, time, predicate, complete=complete, abstract=abstract,
                                 accept_possible=accept_possible, focus=focus)
            nodes += result.nodes
            if result.witness is not None:
                return _SearchResult(result.witness, True, nodes)
            exhaustive = exhaustive and result.exhaustive
        return _SearchResult(None, exhaustive, nodes)


class _Budget(Exception):
    pass


@dataclass(frozen=True)
class _SearchResult:
    witness: dict[str, Any] | None
    exhaustive: bool
    nodes: int


def _never(cond: C.Cond) -> bool:
    """True when a condition contains a part that can never hold (an empty 'any', e.g. a false parameter test)."""
    if isinstance(cond, C.Or) and not cond.items:
        return True
    return isinstance(cond, (C.And, C.Or, C.AtLeast)) and any(_never(c) for c in cond.items)


def _fires(outcome: _Outcome, rule: str, branch: str) -> bool | None:
    outs = outcome.status.get(rule, frozenset({None}))
    if branch not in outs:
        return False
    return True if outs == {branch} else None


# -- the checks ---------------------------------------------------------------------------

class _Checker:
    def __init__(self, root: Path, pdoc: Located | None, spec: PathwayFile | None, compiled: CompiledPathway | None,
                 disabled: set[str], budget: int):
        self.root = root
        self.pdoc = pdoc
        self.spec = spec
        self.compiled = compiled
        self.definition = compiled.definition if compiled else None
        self.conds = branch_conditions(compiled) if compiled else {}
        self.disabled = disabled
        self.budget = budget
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.unreachable: list[str] = []
        self.dead: set[str] = set()
        self.pfile = pdoc.file if pdoc else display_path(root / "pathway.yaml")

    def add(self, code: str, where: tuple[str, int, int], message: str, *, states: Iterable[str] = (),
            rules: Iterable[str] = (), witness: dict[str, Any] | None = None, hint: str | None = None) -> None:
        if code in self.disabled:
            return
        file, line, col = where
        self.findings.append(Finding(code, CHECKS[code].severity, file, line, col, message, tuple(states), tuple(rules),
                                     witness, None, hint))

    def at(self, path: tuple[Any, ...], key: bool = False) -> tuple[str, int, int]:
        if self.pdoc is None:
            return (self.pfile, 1, 1)
        line, col = self.pdoc.pos(path, key=key)
        return (self.pfile, line, col)

    @staticmethod
    def rule_at(rule: Rule) -> tuple[str, int, int]:
        return (rule.file, rule.line, rule.col)

    def edge_at(self, source: str, target: str) -> tuple[str, int, int]:
        assert self.spec is not None
        for i, t in enumerate(self.spec.transitions):
            if t.to == target and source in expand_sources(self.spec, t.from_):
                return self.at(("transitions", i))
        return self.at(("transitions",))

    # -- graph ---------------------------------------------------------------------------
    def graph_checks(self) -> None:
        spec = self.spec
        assert spec is not None
        graph = build_graph(spec)
        starts = [s for s, d in spec.states.items() if d.kind == "start"]
        terminal = {s for s, d in spec.states.items() if d.kind == "terminal"}
        for i, t in enumerate(spec.transitions):
            sources = [t.from_] if isinstance(t.from_, str) else list(t.from_)
            for j, src in enumerate(sources):
                if src in terminal:
                    where = ("transitions", i, "from") + ((j,) if not isinstance(t.from_, str) else ())
                    self.add("PW603", self.at(where), f"terminal state '{src}' has a way out (transition {src} -> {t.to})",
                             states=(src, t.to))
        if len(starts) != 1:
            return
        start = starts[0]
        reachable = {start} | nx.descendants(graph, start)
        self.unreachable = [s for s in spec.states if s not in reachable]
        for s in self.unreachable:
            self.add("PW601", self.at(("states", s), key=True), f"state '{s}' cannot be reached from the start state '{start}'",
                     states=(s,))
        rule_edges: set[tuple[str, str]] = set()
        if self.definition is not None:
            rule_edges = {(a, b) for a, b, data in self.definition.graph.edges(data=True)
                          if data.get("rules") or data.get("proposals")}
        for s in spec.states:
            if s in terminal or s not in reachable:
                continue
            out = list(graph.successors(s))
            if not out:
                self.dead.add(s)
                self.add("PW602", self.at(("states", s), key=True),
                         f"state '{s}' is not terminal but no transition leaves it (dead end)", states=(s,))
            elif self.definition is not None and not any((s, t) in rule_edges for t in out):
                self.dead.add(s)
                self.add("PW602", self.at(("states", s), key=True),
                         f"state '{s}' is not terminal but no rule takes any of its transitions ({', '.join(sorted(out))}): "
                         "a patient there never leaves (dead end)", states=(s,))
        for s in spec.states:
            if s in terminal or s not in reachable or s in self.dead:
                continue
            if not (nx.descendants(graph, s) & terminal):
                self.add("PW604", self.at(("states", s), key=True),
                         f"no terminal state can be reached from state '{s}'", states=(s,))
        if self.definition is None:
            return
        by_rules = nx.DiGraph()
        by_rules.add_nodes_from(spec.states)
        by_rules.add_edges_from(rule_edges)
        rule_reachable = {start} | nx.descendants(by_rules, start)
        for a, b in sorted(graph.edges, key=lambda e: (list(spec.states).index(e[0]), list(spec.states).index(e[1]))):
            if (a, b) in rule_edges or a not in reachable or a in self.dead:
                continue
            extra = ""
            if b not in rule_reachable and b in reachable:
                extra = f"; no rule can bring a patient to '{b}'"
            self.add("PW605", self.edge_at(a, b), f"transition {a} -> {b} is used by no rule{extra}", states=(a, b))

    # -- the end of the pathway and overdue decisions ---------------------------------------
    def ending_checks(self) -> None:
        """PW607: a terminal state entered automatically while emergency rules could still apply
        there; PW616: a state with decisions to make and no overdue watchdog."""
        d = self.definition
        assert d is not None
        spec = d.spec
        active = {s for s, sd in spec.states.items() if sd.kind != "terminal"}
        emergency = [r for r in d.rules if set(r.states) >= active and r.targets("then")]
        targets = {t for r in emergency for t in r.targets("then")}
        names = ", ".join(sorted(r.id for r in emergency))
        for rule in d.rules if emergency else []:  # without emergency rules, ending early misses none
            if rule in emergency:
                continue
            decided = any(c.field in d.decisions for c in C.fields_of(rule.when))
            for branch in ("then", "else"):
                for target in rule.targets(branch):
                    if spec.states[target].kind != "terminal" or target in targets or decided:
                        continue
                    self.add("PW607", self.rule_at(rule),
                             f"rule '{rule.id}' ends the pathway in terminal state '{target}' automatically, while the "
                             f"emergency rules ({names}) could still apply to the patient: keep the patient in an active "
                             "state until a recorded decision (e.g. discharge) ends the pathway", states=(target,),
                             rules=(rule.id,))
        for sid, sdef in spec.states.items():
            if sdef.kind == "terminal" or sid in d.watchdogs:
                continue
            exits = [r.id for r in d.rules_in(sid) if r not in emergency
                     and any(r.targets(b) or r.proposed(b) for b in ("then", "else"))]
            if exits:
                self.add("PW616", self.at(("states", sid), key=True),
                         f"state '{sid}' has decisions to make ({', '.join(sorted(exits))}) but no 'overdue' watchdog: "
                         "a patient whose data never completes would wait there without an alert", states=(sid,),
                         rules=sorted(exits))

    def summary_checks(self) -> None:
        """PW617: a recommendation, dose, alert or proposal whose text, filled, is longer than a card's
        one-line summary and that gives no ``summary`` (a card would cut it, perhaps before its action), or
        whose ``summary`` is itself longer. A parameter counts at its value, a field at 4 characters."""
        d = self.definition
        assert d is not None

        def length(template: str) -> int:
            return len(TEMPLATE_RE.sub(lambda m: str(d.params.get(m.group(1), "0000")), template))

        for sid, sdef in d.spec.states.items():
            watchdog = sdef.overdue
            if watchdog is not None and length(watchdog.summary or watchdog.text) > CARD_SUMMARY_MAX:
                which = "summary" if watchdog.summary else "text"
                self.add("PW617", self.at(("states", sid, "overdue", which)),
                         f"the overdue {which} of state '{sid}' is about {length(watchdog.summary or watchdog.text)} "
                         f"characters filled, longer than a card's summary ({CARD_SUMMARY_MAX})"
                         + ("" if watchdog.summary else ": give a short 'summary' that keeps the action"), states=(sid,))
        for rule in d.rules:
            for branch, effects in (("then", rule.then), ("else", rule.otherwise)):
                for i, eff in enumerate(effects):
                    if not isinstance(eff, (Recommend, Dose, Titrate, Alert, Propose)) or not eff.text:
                        continue
                    kind = type(eff).__name__.lower()
                    if eff.summary and length(eff.summary) > CARD_SUMMARY_MAX:
                        self.add("PW617", self.rule_at(rule),
                                 f"the summary of rule '{rule.id}' ({branch}, effect {i + 1}: {kind}) is about "
                                 f"{length(eff.summary)} characters filled, longer than a card's {CARD_SUMMARY_MAX}",
                                 states=rule.states, rules=(rule.id,))
                    elif not eff.summary and length(eff.text) > CARD_SUMMARY_MAX:
                        self.add("PW617", self.rule_at(rule),
                                 f"the text of rule '{rule.id}' ({branch}, effect {i + 1}: {kind}) is about "
                                 f"{length(eff.text)} characters filled: a card's summary would cut it at "
                                 f"{CARD_SUMMARY_MAX}, perhaps before its action; give a short 'summary' that keeps "
                                 "the action", states=rule.states, rules=(rule.id,))

    # -- parameters ----------------------------------------------------------------------
    def parameter_checks(self) -> None:
        d = self.definition
        assert d is not None
        users: dict[str, list[str]] = {}
        for r in d.rules:
            for used in r.params:
                users.setdefault(used, []).append(r.id)
        computing: dict[str, list[str]] = {}
        for c in d.computed.values():
            for used in c.params:
                computing.setdefault(used, []).append(c.field)
        for name, p in d.spec.parameters.items():
            if (name in users or name in computing) and not p.sources:
                names = sorted(users.get(name, [])) + [f"computed input {f}" for f in sorted(computing.get(name, []))]
                who = "rules" if name not in computing else ("computed inputs" if name not in users else
                                                             "rules and computed inputs")
                self.add("PW613", self.at(("parameters", name), key=True),
                         f"parameter '{name}' has no source but {who} use it ({', '.join(names)})",
                         rules=sorted(users.get(name, [])))

    # -- rules ---------------------------------------------------------------------------
    def rule_checks(self) -> None:
        d = self.definition
        assert d is not None and self.compiled is not None
        never: dict[tuple[str, str], bool | None] = {}  # (rule, branch) -> fired somewhere / unknown
        for state, sdef in d.spec.states.items():
            if state in self.unreachable:
                continue
            space = StateSpace(self.compiled, state, self.budget, self.conds)
            if not space.rules:
                continue
            self._overlaps(space)
            if sdef.kind != "terminal" and space.moves and state not in self.dead:
                self._gap(space)
            self._shadows(space)
            self._conflicts(space)
            self._branches(space, never)
        if "PW614" in self.disabled:
            return
        for (rid, branch), fired in never.items():
            if fired is False:
                rule = next(r for r in d.rules if r.id == rid)
                where = "in any of its states" if len(rule.states) > 1 else f"in state '{rule.states[0]}'"
                label = f"'{BRANCH_KEYS[cast(Branch, branch)]}'"
                why = ""
                if _never(rule.due) or _never(rule.when):
                    why = (" (a condition on a parameter is false with the parameter values in use"
                           + (f", profile '{d.profile}'" if d.profile else "") + ")")
                self.add("PW614", self.rule_at(rule), f"the {label} branch of rule '{rid}' can never fire {where}{why}",
                         states=rule.states, rules=(rid,))

    def _note_bound(self, what: str, space: StateSpace) -> None:
        self.notes.append(f"{what} in state '{space.state}': search bound of {space.budget} steps reached; not decided "
                          "(raise --budget)")

    def _overlaps(self, space: StateSpace) -> None:
        if "PW610" in self.disabled:
            return
        moves = space.moves
        seen: set[tuple[str, ...]] = set()
        for i, a in enumerate(moves):
            for b in moves[i + 1:]:
                if a.rule == b.rule or a.priority != b.priority or a.target == b.target:
                    continue
                pair = tuple(sorted((a.rule, b.rule)))
                if pair in seen:
                    continue
                higher = [m for m in moves if m.priority > a.priority]
                ids = space.ancestors({a.rule, b.rule} | {m.rule for m in higher})

                def pred(o: _Outcome, a: Move = a, b: Move = b, higher: list[Move] = higher) -> bool | None:
                    fa, fb = _fires(o, a.rule, a.branch), _fires(o, b.rule, b.branch)
                    if fa is False or fb is False:
                        return False
                    hs = [_fires(o, m.rule, m.branch) for m in higher]
                    if any(h is True for h in hs):
                        return False
                    return True if fa and fb and all(h is False for h in hs) else None

                result = space.find(ids, pred, focus=(a.rule, b.rule))
                if result.witness is None:
                    if not result.exhaustive:
                        self._note_bound(f"overlap of '{a.rule}' and '{b.rule}'", space)
                    continue
                check = evaluate_state(space.compiled, space.state, result.witness)
                if not (a.rule in check.fired and b.rule in check.fired and check.move_conflict):
                    self.notes.append(f"overlap of '{a.rule}' and '{b.rule}' in state '{space.state}': witness not confirmed")
                    continue
                seen.add(pair)
                first, second = sorted((a, b), key=lambda m: m.order)
                other = space.by_id[second.rule]
                self.add("PW610", self.rule_at(space.by_id[first.rule]),
                         f"rules '{first.rule}' and '{second.rule}' ({other.file}:{other.line}) can both fire in state "
                         f"'{space.state}' at priority {a.priority} and ask for different states ({first.target}, "
                         f"{second.target}); the engine refuses the move, e.g. on {format_facts(result.witness)}",
                         states=(space.state,), rules=(first.rule, second.rule), witness=result.witness)

    def _gap(self, space: StateSpace) -> None:
        if "PW611" in self.disabled:
            return
        # a proposal is a way out too: the decision is the team's, and a decision is never complete data
        moves = space.moves + space.proposals
        leaving = {m.rule for m in moves}
        due_rules = [rid for rid in sorted(leaving) if not isinstance(space.by_id[rid].due, C.Always)]
        ids = space.ancestors(leaving)

        def pred(o: _Outcome) -> bool | None:
            fires = [_fires(o, m.rule, m.branch) for m in moves]
            if any(f is True for f in fires):
                return False
            if due_rules:
                dues = [o.due.get(r, frozenset({None})) for r in due_rules]
                if not any(True in d for d in dues):
                    return False
                due_now = any(d == {True} for d in dues)
            else:
                due_now = True
            return True if due_now and all(f is False for f in fires) else None

        result = space.find(ids, pred, complete=True)
        if result.witness is None:
            if not result.exhaustive:
                self._note_bound("gap search", space)
            return
        check = evaluate_state(space.compiled, space.state, result.witness)
        if check.moves or any(check.fired.get(m.rule) == m.branch for m in space.proposals):
            self.notes.append(f"gap in state '{space.state}': witness not confirmed")
            return
        others = sorted(rid for rid in check.fired if rid in space.by_id)
        waiting = f"; rules firing there: {', '.join(others)}" if others else ""
        self.add("PW611", self.at(("states", space.state), key=True),
                 f"gap in state '{space.state}': with every value present, no rule leaves it on "
                 f"{format_facts(result.witness)}{waiting}", states=(space.state,), rules=tuple(others),
                 witness=result.witness)

    def _shadows(self, space: StateSpace) -> None:
        if "PW612" in self.disabled:
            return
        for m in space.moves:
            higher = [h for h in space.moves if h.priority > m.priority]
            if not higher:
                continue

            def fires_at_all(o: _Outcome, m: Move = m) -> bool | None:
                return _fires(o, m.rule, m.branch)

            fires = space.find(space.ancestors({m.rule}), fires_at_all, abstract=True, accept_possible=True)
            if fires.witness is None:
                continue  # never fires at all: PW614
            ids = space.ancestors({m.rule} | {h.rule for h in higher})

            def wins(o: _Outcome, m: Move = m, higher: list[Move] = higher) -> bool | None:
                f = _fires(o, m.rule, m.branch)
                if f is False:
                    return False
                hs = [_fires(o, h.rule, h.branch) for h in higher]
                if any(h is True for h in hs):
                    return False
                return True if f and all(h is False for h in hs) else None

            result = space.find(ids, wins, abstract=True, accept_possible=True, focus=(m.rule,))
            if result.witness is not None:
                continue
            if not result.exhaustive:
                self._note_bound(f"shadowing of '{m.rule}'", space)
                continue
            example = space.find(space.ancestors({m.rule}), fires_at_all)
            detail, winners = "", []
            if example.witness is not None:
                check = evaluate_state(space.compiled, space.state, example.witness)
                winners = sorted({t.rule for t in check.top() if t.priority > m.priority})
                if winners:
                    detail = f", e.g. {', '.join(winners)} on {format_facts(example.witness)}"
            self.add("PW612", self.rule_at(space.by_id[m.rule]),
                     f"rule '{m.rule}' (priority {m.priority}) can never move the patient to '{m.target}' in state "
                     f"'{space.state}': whenever it fires, a rule of higher priority moves first{detail}",
                     states=(space.state,), rules=(m.rule, *winners), witness=example.witness)

    def _conflicts(self, space: StateSpace) -> None:
        if "PW615" in self.disabled:
            return
        for fact, producers in sorted(space.producers.items()):
            pairs = []
            entries = [(rid, b, v) for rid in producers for b, v in space.made[rid][fact] if v is not None]
            for i, (ra, ba, va) in enumerate(entries):
                for rb, bb, vb in entries[i + 1:]:
                    if ra != rb and va != vb:
                        pairs.append(((ra, ba, va), (rb, bb, vb)))
            for (ra, ba, va), (rb, bb, vb) in pairs:
                def both(o: _Outcome, ra: str = ra, ba: str = ba, rb: str = rb, bb: str = bb) -> bool | None:
                    x, y = _fires(o, ra, ba), _fires(o, rb, bb)
                    if x is False or y is False:
                        return False
                    return True if x and y else None

                result = space.find(space.ancestors({ra, rb}), both, focus=(ra, rb))
                if result.witness is None:
                    if not result.exhaustive:
                        self._note_bound(f"derivations of '{fact}'", space)
                    continue
                first = space.by_id[ra]
                self.add("PW615", self.rule_at(first),
                         f"rules '{ra}' and '{rb}' both fire in state '{space.state}' and derive {fact} = "
                         f"{format_value(va)} and {format_value(vb)}; the engine refuses the evaluation, e.g. on "
                         f"{format_facts(result.witness)}", states=(space.state,), rules=(ra, rb), witness=result.witness)

    def _branches(self, space: StateSpace, never: dict[tuple[str, str], bool | None]) -> None:
        if "PW614" in self.disabled:
            return
        for rule in space.rules:
            for branch in BRANCHES:
                if not branch_effects(rule, branch) or never.get((rule.id, branch)):
                    continue

                def fires(o: _Outcome, r: str = rule.id, b: str = branch) -> bool | None:
                    return _fires(o, r, b)

                result = space.find(space.ancestors({rule.id}), fires, abstract=True, accept_possible=True, focus=(rule.id,))
                if result.witness is not None:
                    never[(rule.id, branch)] = True
                elif not result.exhaustive:
                    never[(rule.id, branch)] = None
                    self._note_bound(f"firing of '{rule.id}' ({branch})", space)
                else:
                    never.setdefault((rule.id, branch), False)

    # -- checks: section -----------------------------------------------------------------
    def apply_settings(self) -> None:
        spec = self.spec
        if spec is None:
            return
        profile = self.definition.profile if self.definition else None
        # entries for another site profile do not apply (and are not stale) in this run
        used = [entry.profile is not None and entry.profile != profile for entry in spec.checks]
        states = set(spec.states)
        rules = {r.id for r in self.definition.rules} if self.definition else None
        for i, entry in enumerate(spec.checks):
            if used[i]:
                continue
            info = CHECKS.get(entry.code)
            if info is None:
                self.add("PW690", self.at(("checks", i, "code")), f"unknown check code '{entry.code}'",
                         hint=suggest(entry.code, CHECKS))
                used[i] = True
                continue
            if info.severity == "error":
                self.add("PW690", self.at(("checks", i, "code")),
                         f"{entry.code} is an error check ({info.title}); fix the pathway instead of explaining it")
                used[i] = True
                continue
            if entry.state is not None and entry.state not in states:
                self.add("PW690", self.at(("checks", i, "state")), f"unknown state '{entry.state}'",
                         hint=suggest(entry.state, states))
                used[i] = True
            if entry.rule is not None and rules is not None and entry.rule not in rules:
                self.add("PW690", self.at(("checks", i, "rule")), f"unknown rule '{entry.rule}'",
                         hint=suggest(entry.rule, rules))
                used[i] = True
            if entry.parameter is not None and entry.code != "PW627":
                self.add("PW690", self.at(("checks", i, "parameter")),
                         "'parameter' narrows only PW627 (a threshold mutant no scenario notices)")
                used[i] = True
            elif entry.parameter is not None and self.definition and entry.parameter not in self.definition.params:
                self.add("PW690", self.at(("checks", i, "parameter")), f"unknown parameter '{entry.parameter}'",
                         hint=suggest(entry.parameter, list(self.definition.params)))
                used[i] = True
            if entry.disable or entry.code == "PW627":
                # PW627 entries explain survivors of 'pathway test --mutate', which this command does not run
                used[i] = True
        explained: list[Finding] = []
        for f in self.findings:
            note = None
            for i, entry in enumerate(spec.checks):
                if entry.disable or entry.code != f.code or CHECKS.get(entry.code, CHECKS["PW690"]).severity != "warning":
                    continue
                if entry.profile is not None and entry.profile != profile:
                    continue
                if entry.state is not None and entry.state not in f.states:
                    continue
                if entry.rule is not None and entry.rule not in f.rules:
                    continue
                used[i] = True
                note = entry.note
                break
            explained.append(f if note is None else replace(f, explained=note))
        self.findings = explained
        for i, entry in enumerate(spec.checks):
            if not used[i] and entry.code not in self.disabled:
                scope = "".join(f" {k} '{v}'" for k, v in (("state", entry.state), ("rule", entry.rule),
                                                              ("profile", entry.profile)) if v)
                self.add("PW691", self.at(("checks", i)), f"the entry for {entry.code}{scope} explains no finding; remove it")


#: A check that a later stage supplies (the hazard log's, which runs scenarios): given the loaded
#: pathway it returns findings, to which ``--disable`` and the ``checks:`` section apply as to the rest.
ExtraCheck = Callable[[PathwayDef], Iterable[Finding]]


def check_pathway(name_or_path: str | Path, *, profile: str | None = None, parameters: dict[str, Any] | None = None,
                  disable: Iterable[str] = (), budget: int = DEFAULT_BUDGET, extra: Sequence[ExtraCheck] = ()) -> CheckReport:
    """Run every static check on a pathway folder (or a shipped pathway by name).

    ``extra`` checks run after the rule checks when the pathway loads (``pathway check`` passes the
    hazard log's checks, PW620-PW626, from :mod:`pathway.audit.hazards`). Raises DefinitionError
    (PW001) when there is no such pathway; every other problem is a finding of the report.
    """
    root = resolve_pathway_dir(name_or_path)
    shown = display_path(root / "pathway.yaml")
    pdoc: Located | None = None
    spec: PathwayFile | None = None
    try:
        pdoc = load_yaml_file(str(root / "pathway.yaml"), shown, RULE_FILE_LIMITS)
        if isinstance(pdoc.data, dict):
            spec = PathwayFile.model_validate(pdoc.data)
    except (YamlProblem, ValidationError):
        spec = None
    compiled: CompiledPathway | None = None
    loader_diags: list[Diagnostic] = []
    try:
        compiled = compile_kept(load_definition(root, parameters, profile))
    except DefinitionError as exc:  # includes EngineLimitError (PW30x)
        loader_diags = list(exc.diagnostics)
    definition = compiled.definition if compiled else None
    disabled = {c.strip().upper() for c in disable if c.strip()}
    unknown = sorted(c for c in disabled if c not in CHECKS)
    if unknown:
        raise DefinitionError([Diagnostic("--disable", 0, 0, "PW690", f"unknown check code '{c}'", suggest(c, CHECKS))
                               for c in unknown])
    if spec is not None:
        active = definition.profile if definition else profile
        disabled |= {e.code for e in spec.checks if e.disable and CHECKS.get(e.code, CHECKS["PW690"]).severity == "warning"
                     and e.profile in (None, active)}
    checker = _Checker(root, pdoc, spec, compiled, disabled, budget)
    report = CheckReport(spec.id if spec else root.name, spec.version if spec else "?",
                         definition.profile if definition else profile, display_path(root), disabled=sorted(disabled))
    if spec is not None:
        checker.graph_checks()
    if definition is None:
        report.loaded = False
        rest = []
        for d in loader_diags:
            code = _LOADER_CODES.get(d.code)
            if code == "PW603" and spec is not None:
                continue  # found by the graph check itself
            if code is not None:
                checker.add(code, (d.file, d.line, d.col), d.message + (f" (did you mean '{d.hint}'?)" if d.hint else ""))
            else:
                rest.append(d)
        for d in rest:
            hint = f" (did you mean '{d.hint}'?)" if d.hint else ""
            checker.add("PW600", (d.file, d.line, d.col), f"{d.message}{hint} [{d.code}]")
        checker.notes.append("rule checks skipped: the pathway does not load")
    else:
        checker.ending_checks()
        checker.summary_checks()
        checker.parameter_checks()
        checker.rule_checks()
        for check in extra:
            for finding in check(definition):
                if finding.code not in disabled:
                    checker.findings.append(finding)
    checker.apply_settings()
    report.findings = sorted(checker.findings, key=Finding.sort_key)
    report.notes = list(dict.fromkeys(checker.notes))
    return report


# -- command ------------------------------------------------------------------------------
