"""A small Python evaluator of one state's rules, for static checks and explanations.

The runtime is durable_rules (:mod:`pathway.engine`); this module mirrors its semantics on plain
dicts so that checks can try many inputs and explanations can ask "what if" without running the
engine again:

- a branch of a rule (``then``, ``else``, ``missing``) fires when one of its compiled engine rules
  matches: the conditions are read from the compiled bindings (:mod:`pathway.compile`), so they are
  exactly what the engine tests, evaluated with three-valued logic
  (:func:`pathway.conditions.Cmp.holds`);
- a test on a derived fact is a join with the derived-fact message, so it is unknown (never
  false) while the fact has not been derived;
- derivations (``derive`` and ``score`` effects) are applied until nothing more fires
  (forward chaining); a fact derived twice with different values is a conflict (the engine
  refuses the evaluation);
- the highest priority among the moves wins; equal priorities asking for different states are a
  conflict (the engine refuses the move).

It also builds the *input space* of a state for the checks: candidate values of every field
(boundary values of each threshold the state's rules use, booleans, enum values, optionally
"missing") and of the clock (``day``, ``days_in_state``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from pathway.definition import conditions as C
from pathway.definition.clock import MAX_DAY, TIME_FIELDS
from pathway.definition.effects import Derive, Effect, Score, Transition, compute_score
from pathway.definition.pathway import BRANCHES, Branch, Rule
from pathway.definition.waiting import asks_for_data, waiting_for
from pathway.runtime.compile import CompiledPathway
from pathway.runtime.moves import Move, choose, is_conflict, top_moves

__all__ = [
    "TIME_FIELDS",
    "BRANCHES",
    "Move",
    "StateEvaluation",
    "truth",
    "branch_conditions",
    "rule_branch",
    "branch_effects",
    "evaluate_state",
    "atoms_of",
    "rule_inputs",
    "derived_tests",
    "derived_made",
    "field_candidates",
    "step_of",
    "time_candidates",
    "format_value",
    "format_facts",
]

#: The clock fields every snapshot has; the checks enumerate them as one time point.
#: Branch names as in the engine's bindings and the session trace.


@dataclass
class StateEvaluation:
    """What the rules of one state do on one input (see :func:`evaluate_state`)."""

    state: str
    facts: dict[str, Any]
    derived: dict[str, Any] = field(default_factory=dict)
    fired: dict[str, str] = field(default_factory=dict)  # rule id -> branch, in firing order
    #: rule id -> the missing values a waiting rule lists (its 'missing' firings)
    waiting: dict[str, tuple[str, ...]] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    #: (fact, first rule, first value, rule, value): a fact derived twice with different values
    conflicts: list[tuple[str, str, Any, str, Any]] = field(default_factory=list)

    def top(self) -> list[Move]:
        """The moves at the highest priority asked for (empty when no rule moves)."""
        return top_moves(self.moves)

    @property
    def move_conflict(self) -> bool:
        """True when moves of equal top priority ask for different states (the engine refuses)."""
        return is_conflict(self.moves)

    def decision(self) -> Move | None:
        """The move the session takes, or None (no move, or a conflict)."""
        return choose(self.moves)

    def facts_and_derived(self) -> dict[str, Any]:
        """Inputs and derived facts together (names never clash)."""
        return {**self.facts, **self.derived}


def _leaf(cond: C.Cmp, facts: dict[str, Any]) -> bool | None:
    if cond.derived and cond.op == "present":
        return True if facts.get(cond.field) is not None else None
    return cond.holds(facts)


def truth(cond: C.Cond, facts: dict[str, Any]) -> bool | None:
    """Three-valued value of a condition; a test on a derived fact not yet derived is unknown."""
    return C.evaluate(cond, facts, _leaf)


def branch_conditions(compiled: CompiledPathway) -> dict[str, dict[str, C.Cond]]:
    """rule id -> branch -> the condition under which the engine fires that branch.

    A branch compiles into one engine rule per disjunct (see :func:`pathway.conditions.to_dnf`);
    its condition is the ``or`` of their conjunctions.
    """
    terms: dict[str, dict[str, list[C.Cond]]] = {}
    for name in sorted(compiled.bindings):
        binding = compiled.bindings[name]
        terms.setdefault(binding.rule.id, {}).setdefault(binding.branch, []).append(C.And(tuple(binding.clauses)))
    return {rid: {b: (t[0] if len(t) == 1 else C.Or(tuple(t))) for b, t in sorted(by.items())} for rid, by in terms.items()}


def rule_branch(conds: dict[str, C.Cond], facts: dict[str, Any]) -> str | None:
    """The branch (of one rule's :func:`branch_conditions`) that fires on ``facts``, or None."""
    for branch in BRANCHES:
        cond = conds.get(branch)
        if cond is not None and truth(cond, facts) is True:
            return branch
    return None


def branch_effects(rule: Rule, branch: str) -> tuple[Effect, ...]:
    """Effects of a branch (``then``, ``else`` or ``missing``)."""
    return rule.effects(cast(Branch, branch))


def evaluate_state(compiled: CompiledPathway, state: str, facts: dict[str, Any], rules: Iterable[Rule] | None = None,
                   conditions: dict[str, dict[str, C.Cond]] | None = None,
                   frozen: dict[str, Any] | None = None) -> StateEvaluation:
    """Evaluate the rules of ``state`` on input ``facts`` (``day`` and ``days_in_state`` included).

    Derivations are applied until no further rule fires; every rule fires at most once (one
    branch), as in the engine. ``rules`` restricts the evaluation (default: all rules of the
    state); ``conditions`` are :func:`branch_conditions` of ``compiled`` when already computed.
    ``frozen``: facts kept by decision points whose window has passed, derived before any rule
    fires (as the engine asserts them); a kept fact may also be given in ``facts``.
    """
    definition = compiled.definition
    conds = conditions if conditions is not None else branch_conditions(compiled)
    selected = list(rules) if rules is not None else definition.rules_in(state)
    order = {r.id: i for i, r in enumerate(definition.rules)}
    kept = dict(frozen or {})
    kept.update({k: v for k, v in facts.items() if k in definition.kept and v is not None})
    env = {k: v for k, v in facts.items() if v is not None and k not in kept}
    env["state"] = state
    out = StateEvaluation(state, dict(env))
    made_by: dict[str, str] = {}
    for name, value in sorted(kept.items()):
        out.derived[name] = value
        made_by[name] = "(kept)"
        env[name] = value
    changed = True
    while changed:
        changed = False
        for rule in selected:
            if rule.id in out.fired:
                continue
            branch = rule_branch(conds.get(rule.id, {}), env)
            if branch is None:
                continue
            out.fired[rule.id] = branch
            changed = True
            for effect in branch_effects(rule, branch):
                values: dict[str, Any] = {}
                if isinstance(effect, Derive):
                    values = dict(effect.values)
                elif isinstance(effect, Score):
                    values = {effect.name: compute_score(effect, env)}
                for name, value in values.items():
                    if name in out.derived:
                        if out.derived[name] != value:
                            out.conflicts.append((name, made_by[name], out.derived[name], rule.id, value))
                        continue
                    out.derived[name] = value
                    made_by[name] = rule.id
                    env[name] = value
    names = frozenset(definition.spec.derived)
    for rule in selected:  # due, no branch taken, and waiting for data (as the engine reports it)
        if rule.id in out.fired:
            if out.fired[rule.id] == "missing":
                out.waiting[rule.id] = waiting_for(rule, env, names)
            continue
        if asks_for_data(rule) and truth(rule.due, env) is True:
            missing = waiting_for(rule, env, names)
            if missing:
                out.fired[rule.id] = "missing"
                out.waiting[rule.id] = missing
    by_id = {r.id: r for r in selected}
    for rule_id, branch in sorted(out.fired.items(), key=lambda kv: order[kv[0]]):
        rule = by_id[rule_id]
        for effect in branch_effects(rule, branch):
            if isinstance(effect, Transition):
                out.moves.append(Move(rule.id, branch, effect.to, rule.priority, order[rule.id]))
    return out


# -- what rules test and make ------------------------------------------------------------

def atoms_of(rule: Rule, conds: dict[str, C.Cond] | None = None) -> list[C.Cmp]:
    """Every comparison of a rule: its branch conditions (else ``due`` and ``when``) and its score items."""
    if conds is not None:
        out = [c for cond in conds.values() for c in C.fields_of(cond)]
    else:
        out = C.fields_of(rule.due) + C.fields_of(rule.when)
    for branch in BRANCHES:
        for effect in branch_effects(rule, branch):
            if isinstance(effect, Score):
                for item in effect.items:
                    if isinstance(item.when, (C.Cmp, C.And, C.Or, C.Always, C.AtLeast)):
                        out.extend(C.fields_of(item.when))
    return out


def _score_fields(rule: Rule) -> set[str]:
    names: set[str] = set()
    for branch in BRANCHES:
        for effect in branch_effects(rule, branch):
            if isinstance(effect, Score):
                names |= {t.field for t in effect.terms}
                if effect.divide_by:
                    names.add(effect.divide_by)
    return names


def rule_inputs(rule: Rule, derived_names: Iterable[str], conds: dict[str, C.Cond] | None = None) -> set[str]:
    """Input fields a rule reads (tests, requirements, score terms); not derived facts or the clock."""
    derived = set(derived_names)
    names = {c.field for c in atoms_of(rule, conds) if not c.derived} | set(rule.requires) | _score_fields(rule)
    return {n for n in names if n not in derived and n not in TIME_FIELDS and n != "state"}


def numeric_inputs(rule: Rule) -> set[str]:
    """Fields whose exact value a rule computes with (score terms and divisors)."""
    return _score_fields(rule)


def derived_tests(rule: Rule) -> set[str]:
    """Derived facts a rule tests."""
    return {c.field for c in C.fields_of(rule.due) + C.fields_of(rule.when) if c.derived}


def derived_made(rule: Rule) -> dict[str, list[tuple[str, Any]]]:
    """Derived facts a rule makes: fact -> [(branch, value)] (a score's value is None: computed)."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for branch in BRANCHES:
        for effect in branch_effects(rule, branch):
            if isinstance(effect, Derive):
                for name, value in effect.values.items():
                    out.setdefault(name, []).append((branch, value))
            elif isinstance(effect, Score):
                out.setdefault(effect.name, []).append((branch, None))
    return out


# -- candidate values ---------------------------------------------------------------------

def step_of(value: float) -> float:
    """One unit of the last decimal of a number (1 for whole numbers)."""
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return 10.0 ** int(exponent) if isinstance(exponent, int) and exponent < 0 else 1.0


def _tidy(value: float) -> float | int:
    value = round(float(value), 9)
    return int(value) if value.is_integer() else value


def _numbers(atoms: list[C.Cmp]) -> list[float]:
    out: set[float] = set()
    for c in atoms:
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.add(float(v))
    return sorted(out)


def _signature(atoms: list[C.Cmp], name: str, value: Any) -> tuple[Any, ...]:
    return tuple(c.holds({name: value}) for c in atoms)


def _dedupe(atoms: list[C.Cmp], name: str, values: list[Any]) -> list[Any]:
    """Keep one value per region the comparisons tell apart (the first in preference order)."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for v in values:
        sig = _signature(atoms, name, v)
        if sig not in seen:
            seen.add(sig)
            kept.append(v)
    return kept


def field_candidates(name: str, ftype: str, atoms: list[C.Cmp], *, values: Iterable[str] = (),
                     value_range: tuple[float, float] | None = None, numeric_use: bool = False) -> list[Any]:
    """Boundary values of a field for the checks, one per region, in the order a search tries them.

    Numbers: each threshold the comparisons use, just below and just above it (integers: +-1;
    numbers: one unit of the threshold's last decimal, or half the gap to a neighbouring
    threshold), within the plausible range; fields a score computes with also get the range
    bounds and midpoints. Booleans: false, true. Enums: every value. Values that no comparison
    tells apart are merged, keeping the threshold itself where it stands for its region, so that
    witnesses read as boundaries (``crp_mg_l=45``).
    """
    if ftype in ("number", "integer"):
        thresholds = _numbers(atoms)
        raw: list[float] = []
        for i, t in enumerate(thresholds):
            if ftype == "integer":
                raw += [t, t - 1, t + 1] if float(t).is_integer() else [math.floor(t), math.ceil(t)]
                continue
            delta = step_of(t)
            if i > 0:
                delta = min(delta, (t - thresholds[i - 1]) / 2)
            if i + 1 < len(thresholds):
                delta = min(delta, (thresholds[i + 1] - t) / 2)
            raw += [t, t - delta, t + delta]
        low, high = value_range if value_range else (None, None)
        if numeric_use:
            ends = [x for x in (low, high) if x is not None]
            points = sorted(set(raw + ends))
            mids = [(a + b) / 2 for a, b in zip(points, points[1:], strict=False)]
            raw += ends + ([math.floor(m) for m in mids] if ftype == "integer" else mids)
        if not raw:
            raw = [low if low is not None else 0]
        kept = []
        for v in raw:
            if (low is not None and v < low) or (high is not None and v > high):
                continue
            v = _tidy(v)
            if v not in kept:
                kept.append(v)
        if not kept:
            kept = [_tidy(low if low is not None else 0)]
        return kept if numeric_use else _dedupe(atoms, name, kept)
    if ftype == "boolean":
        return _dedupe(atoms, name, [False, True])
    options: list[Any] = list(values)
    for c in atoms:
        for v in (c.value if isinstance(c.value, tuple) else (c.value,)):
            if isinstance(v, str) and v not in options:
                options.append(v)
    if ftype == "string":
        other = "other"
        while other in options:
            other += "_"
        options.append(other)
    return _dedupe(atoms, name, options) if options else ["other"]


def time_candidates(atoms: list[C.Cmp]) -> list[dict[str, float | int]]:
    """Time points (``day``, ``days_in_state``) telling apart every clock threshold the atoms use.

    ``days_in_state`` never exceeds ``day``; a clock field no rule tests follows the other
    (the state was entered on day 0).
    """
    per: dict[str, list[Any]] = {}
    for name in TIME_FIELDS:
        mine = [c for c in atoms if c.field == name and not c.derived]
        per[name] = field_candidates(name, "number", mine, value_range=(0, MAX_DAY)) if mine else []
    days, in_state = per["day"], per["days_in_state"]
    if days and in_state:
        pairs = {(max(d, s), s) for d in days for s in in_state}
        pairs |= {(d, d) for d in days if not any(s <= d for s in in_state)}  # entered on day 0
        points = [{"day": d, "days_in_state": s} for d, s in sorted(pairs)]
    elif days:
        points = [{"day": d, "days_in_state": d} for d in days]
    elif in_state:
        points = [{"day": s, "days_in_state": s} for s in in_state]
    else:
        points = [{"day": 0, "days_in_state": 0}]
    return points


# -- presentation -------------------------------------------------------------------------

def format_value(value: Any) -> str:
    """A value as written in a rule file: true/false, numbers without trailing zeros."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def format_facts(facts: dict[str, Any], *, skip: Iterable[str] = ("state",)) -> str:
    """``day=3, days_in_state=3, crp_mg_l=46`` (clock first, then by name; missing values left out)."""
    skipped = set(skip)
    names = [n for n in TIME_FIELDS if n in facts] + sorted(n for n in facts if n not in TIME_FIELDS)
    return ", ".join(f"{n}={format_value(facts[n])}" for n in names if n not in skipped and facts[n] is not None)
