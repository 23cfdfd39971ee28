"""Compile a resolved pathway into durable_rules rulesets (JSON data, not code).

One ruleset per state (partitioning keeps every ruleset far from durable_rules' limits).
Each pathway rule becomes up to three kinds of durable rules, all bound by name to the
engine's generic effect handlers:

- ``<id>.then.<k>``: ``due`` and every ``requires`` field present and ``when`` holds;
- ``<id>.else.<k>``: ``due``, ``requires`` present and ``when`` is definitely false;
- ``<id>.missing``: ``due`` holds but a ``requires`` field is missing (data required).

``<k>`` numbers the disjuncts when a condition mixes case fields and derived facts: each
derived test becomes a join with a derived-fact message, so a fact derived by one rule's
action triggers the rules that test it, inside the engine.

Messages: the case snapshot ``{"_k": "case", field: value, ...}`` and one message per
derived fact ``{"_k": "derived", "name": ..., "value": ...}``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import conditions as C
from .effects import Derive
from .errors import Diagnostic, EngineLimitError
from .loader import PathwayDef, Rule

__all__ = [
    "Binding",
    "CompiledPathway",
    "compile_pathway",
    "MAX_RULES_PER_RULESET",
    "MAX_IDENTICAL_CONDITIONS",
    "ruleset_name",
]

#: durable-rules 2.0.28 hangs registering more than ~512 rules in one ruleset and fails with
#: error 303 when one fact activates ~255 rules; every rule of a partition can be activated by
#: the one snapshot fact, so a partition stays well below both.
MAX_RULES_PER_RULESET = 200
#: 256 rules on one identical condition segfault the engine.
MAX_IDENTICAL_CONDITIONS = 64


@dataclass(frozen=True)
class Binding:
    """What a durable rule name stands for: the pathway rule and which branch fired."""

    rule: Rule
    branch: str  # "then" | "else" | "missing"
    clauses: tuple[C.Cond, ...]


@dataclass
class CompiledPathway:
    definition: PathwayDef
    rulesets: dict[str, dict[str, Any]]  # ruleset name -> durable definition (without 'run')
    bindings: dict[str, Binding]  # durable rule name -> binding
    state_ruleset: dict[str, str]  # state -> ruleset name (absent: state has no rules)

    def ruleset_json(self, state: str) -> str:
        return json.dumps(self.rulesets[self.state_ruleset[state]], sort_keys=True, indent=1)


def ruleset_name(definition: PathwayDef, state: str) -> str:
    return f"{definition.id}.{state}"


def _present(names: tuple[str, ...]) -> C.Cond:
    return C.And(tuple(C.Cmp(n, "present", True) for n in names))


def _absent_any(names: tuple[str, ...]) -> C.Cond:
    return C.Or(tuple(C.Cmp(n, "present", False) for n in names))


def _patterns(conj: list[C.Cond]) -> list[dict[str, Any]]:
    snapshot = [c for c in conj if not (isinstance(c, C.Cmp) and c.derived)]
    derived: dict[str, list[C.Cmp]] = {}
    for c in conj:
        if isinstance(c, C.Cmp) and c.derived:
            derived.setdefault(c.field, []).append(c)
    snap = C.snapshot_json(C.And(tuple(snapshot)))
    m: dict[str, Any] = {"$and": [{"_k": "case"}, snap]} if snap is not None else {"_k": "case"}
    patterns: list[dict[str, Any]] = [{"m": m}]
    for i, (name, tests) in enumerate(sorted(derived.items())):
        body = [{"_k": "derived"}, {"name": name}]
        body += [C.derived_json(t) for t in tests if t.op != "present"]
        patterns.append({f"d{i}": {"$and": body}})
    return patterns


def _expand(rule: Rule, branch: str, cond: C.Cond, out: dict[str, Any], bindings: dict[str, Binding],
            priority: int, diags: list[Diagnostic]) -> None:
    dnf = C.to_dnf(cond)
    if len(dnf) > C.MAX_DNF_TERMS:
        diags.append(Diagnostic(rule.file, rule.line, rule.col, "PW301",
                                f"rule '{rule.id}' expands into {len(dnf)} engine rules (limit {C.MAX_DNF_TERMS}); "
                                "move derived-fact tests out of large 'any' blocks or derive an intermediate fact"))
        return
    for k, conj in enumerate(dnf):
        name = f"{rule.id}.{branch}.{k}"
        out[name] = {"all": _patterns(conj), "pri": priority, "run": name}
        bindings[name] = Binding(rule, branch, tuple(conj))


def compile_pathway(definition: PathwayDef) -> CompiledPathway:
    """Build the per-state rulesets; raise EngineLimitError when a partition is too large."""
    rulesets: dict[str, dict[str, Any]] = {}
    bindings: dict[str, Binding] = {}
    state_ruleset: dict[str, str] = {}
    diags: list[Diagnostic] = []
    for state in definition.spec.states:
        rules = definition.rules_in(state)
        if not rules:
            continue
        out: dict[str, Any] = {}
        for rule in rules:
            # Derivations run first so the trace reads in causal order; decisions are taken
            # only after the engine is quiet, so firing order never changes the outcome.
            priority = 1 if any(isinstance(e, Derive) for e in rule.then + rule.otherwise) else 2
            ready = C.And((rule.due, _present(rule.requires)))
            if rule.then:
                _expand(rule, "then", C.And((ready, rule.when)), out, bindings, priority, diags)
            if rule.otherwise:
                _expand(rule, "else", C.And((ready, C.negate(rule.when))), out, bindings, priority, diags)
            if rule.requires:
                _expand(rule, "missing", C.And((rule.due, _absent_any(rule.requires))), out, bindings, 3, diags)
        name = ruleset_name(definition, state)
        _check_limits(definition, state, name, out, diags)
        rulesets[name] = out
        state_ruleset[state] = name
    if diags:
        raise EngineLimitError(diags)
    return CompiledPathway(definition, rulesets, bindings, state_ruleset)


def _check_limits(definition: PathwayDef, state: str, name: str, out: dict[str, Any], diags: list[Diagnostic]) -> None:
    pfile = str(definition.root / "pathway.yaml")
    if len(out) > MAX_RULES_PER_RULESET:
        diags.append(Diagnostic(pfile, 1, 1, "PW302",
                                f"state '{state}' compiles into {len(out)} engine rules; the limit is {MAX_RULES_PER_RULESET} "
                                "per state (durable_rules hangs or fails beyond ~255); split the state"))
    same = Counter(json.dumps(r["all"], sort_keys=True) for r in out.values())
    worst, count = same.most_common(1)[0] if same else ("", 0)
    if count > MAX_IDENTICAL_CONDITIONS:
        diags.append(Diagnostic(pfile, 1, 1, "PW303",
                                f"state '{state}' has {count} rules on one identical condition; the limit is "
                                f"{MAX_IDENTICAL_CONDITIONS} (durable_rules crashes at 256)"))
