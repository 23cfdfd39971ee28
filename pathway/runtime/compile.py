"""Compile a resolved pathway into durable_rules rulesets (JSON data, not code).

One ruleset per state (partitioning keeps every ruleset far from durable_rules' limits).
Each pathway rule becomes up to three kinds of durable rules, all bound by name to the
engine's generic effect handlers:

- ``<id>.then.<k>``: ``due`` and ``when`` definitely true (three-valued: a test on a value that
  is not recorded does not match, so ``a or b`` holds on ``a`` alone), and every value the
  effects compute with (score inputs, a dose's weight) recorded;
- ``<id>.else.<k>``: ``due``, every ``requires`` field recorded and ``when`` definitely false;
- ``<id>.missing``: only for rules with ``if_missing`` effects: ``due`` holds, a ``requires``
  field is missing and ``when`` is not definitely false.

Which missing values a waiting rule lists is computed from the same conditions by
:func:`pathway.definition.waiting.waiting_for`.

``<k>`` numbers the disjuncts when a condition mixes case fields and derived facts: each
derived test becomes a join with a derived-fact message, so a fact derived by one rule's
action triggers the rules that test it, inside the engine.

Messages: the case snapshot ``{"_k": "case", field: value, ...}`` and one message per
derived fact ``{"_k": "derived", "name": ..., "value": ...}``.

Numbers: durable_rules reads a number written with an exponent only when its mantissa has a
decimal point (``1.0e-05``, not ``1e-05``: error 204 when the ruleset is registered or a message
is asserted), and Python writes every float below 1e-4 (or from 1e16) that way. Rule files hold
numbers of a magnitude from 1e-12 to 1e12 (PW125), and the compiler rewrites each comparison with
a threshold durable cannot read into the same test on the neighbouring float (``x > t`` is
``x >= next_up(t)`` for every float x), which it can read (:func:`engine_safe`); the engine writes
its messages in the form durable reads (``engine.message_text``). So every value in range is compared
exactly as Python compares it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pathway.core.errors import Diagnostic, EngineLimitError
from pathway.definition import conditions as C
from pathway.definition.effects import Derive, Score
from pathway.definition.pathway import Branch, PathwayDef, Rule
from pathway.loading import stored

__all__ = [
    "compile_kept",
    "Binding",
    "CompiledPathway",
    "compile_pathway",
    "MAX_RULES_PER_RULESET",
    "MAX_IDENTICAL_CONDITIONS",
    "MAX_ALPHA_STACK",
    "MAX_PATTERN_EXPRESSIONS",
    "alpha_stack_bound",
    "pattern_expressions",
    "ruleset_name",
    "engine_safe",
    "engine_reads",
]

#: durable-rules 2.0.28 hangs registering more than ~512 rules in one ruleset and fails with
#: error 303 when one fact activates ~255 rules; every rule of a partition can be activated by
#: the one snapshot fact, so a partition stays well below both.
MAX_RULES_PER_RULESET = 200
#: 256 rules on one identical condition segfault the engine.
MAX_IDENTICAL_CONDITIONS = 64
#: durable_rules walks its alpha network for one fact with a fixed stack of 64 entries
#: (``MAX_STACK_SIZE`` in events.c): a fact that matches more pending alpha nodes at once fails
#: with error 303 (measured: 64 rules diverging under one node pass, 65 fail). The compiler
#: computes an upper bound of that stack for every ruleset and keeps a margin below 64.
MAX_ALPHA_STACK = 60
#: durable_rules keeps the tests of one pattern of a rule (the case snapshot, or one derived fact it joins) in a
#: fixed sequence of 32 entries (``MAX_SEQUENCE_EXPRESSIONS`` in rete.h) and refuses the ruleset with error 113
#: (``ERR_EXPRESSION_LIMIT_EXCEEDED``) when an entry reaches the 32nd: each ``$and`` and ``$or`` takes two (its
#: start and its end), a comparison with a constant none (it is an alpha node), a comparison with a value of
#: another pattern one (the compiler writes none). Measured: 15 groups in one pattern register, 16 fail; two
#: patterns of 15 each in one rule register. The count does not depend on the facts, so there is no margin.
MAX_PATTERN_EXPRESSIONS = 31


@dataclass(frozen=True)
class Binding:
    """What a durable rule name stands for: the pathway rule and which branch fired."""

    rule: Rule
    branch: Branch
    clauses: tuple[C.Cond, ...]
    #: (name, is_derived) of every value the clauses test, reported in the trace
    fields: tuple[tuple[str, bool], ...] = ()


@dataclass
class CompiledPathway:
    definition: PathwayDef
    rulesets: dict[str, dict[str, Any]]  # ruleset name -> durable definition (without 'run')
    bindings: dict[str, Binding]  # durable rule name -> binding
    state_rulesets: dict[str, list[str]]  # state -> its ruleset names (absent: state has no rules)

    def ruleset_json(self, state: str) -> str:
        """The durable_rules definitions of one state, as evaluated (without action names)."""
        merged = {n: {k: v for k, v in r.items() if k != "run"}
                  for name in self.state_rulesets.get(state, []) for n, r in self.rulesets[name].items()}
        return json.dumps(merged, sort_keys=True, indent=1)


def ruleset_name(definition: PathwayDef, state: str) -> str:
    return f"{definition.id}.{state}"


def _present(names: tuple[str, ...]) -> C.Cond:
    return C.And(tuple(C.Cmp(n, "present", True) for n in names))


def _absent_any(names: tuple[str, ...]) -> C.Cond:
    return C.Or(tuple(C.Cmp(n, "present", False) for n in names))


def _possible(cond: C.Cond) -> C.Cond:
    """``cond`` is true or unknown: each case-field test also passes when its field is missing.

    Used for data-required: a missing value is reported only for rules that could still fire.
    Derived facts cannot be tested for absence, so their tests stay as they are.
    """
    if isinstance(cond, C.Always):
        return cond
    if isinstance(cond, C.Cmp):
        if cond.derived or cond.op == "present":
            return cond
        return C.Or((cond, C.Cmp(cond.field, "present", False, False, None, cond.line, cond.col)))
    items = tuple(_possible(c) for c in cond.items)
    if isinstance(cond, C.AtLeast):
        return C.AtLeast(cond.n, items, cond.param)  # n items true or unknown
    return C.And(items) if isinstance(cond, C.And) else C.Or(items)


def engine_reads(value: Any) -> bool:
    """True when durable_rules reads ``value`` as written by ``json.dumps`` exactly as Python holds it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if isinstance(value, int):
        return -(2 ** 63) < value < 2 ** 63
    if not math.isfinite(value):
        return False
    mantissa, exponent, _ = repr(value).partition("e")
    return not exponent or "." in mantissa


#: A strict comparison with a threshold is the non-strict one with the next float (and the reverse):
#: operator -> (the equivalent operator, the direction of the next float).
_NEXT = {"$gt": ("$gte", math.inf), "$gte": ("$gt", -math.inf), "$lt": ("$lte", -math.inf), "$lte": ("$lt", math.inf)}


def engine_safe(expr: Any) -> Any:
    """A durable_rules condition with every number it cannot read rewritten into an exact equivalent.

    ``x > t`` becomes ``x >= next_up(t)`` (no float lies between the two), ``x = t`` becomes
    ``x >= t and x <= t`` and ``x != t`` ``x < t or x > t`` (both false on a missing value, as the
    originals are), each then rewritten in turn.
    """
    if not isinstance(expr, dict) or len(expr) != 1:
        return expr
    ((key, body),) = expr.items()
    if key in ("$and", "$or") and isinstance(body, list):
        return {key: [engine_safe(item) for item in body]}
    if key in _NEXT and isinstance(body, dict) and len(body) == 1:
        ((name, value),) = body.items()
        if engine_reads(value) or not isinstance(value, float) or not math.isfinite(value):
            return expr
        op, toward = _NEXT[key]
        return {op: {name: math.nextafter(value, toward)}}
    if key == "$neq" and isinstance(body, dict) and len(body) == 1:
        ((name, value),) = body.items()
        if engine_reads(value):
            return expr
        return {"$or": [engine_safe({"$lt": {name: value}}), engine_safe({"$gt": {name: value}})]}
    if not key.startswith("$") and not engine_reads(body):
        return {"$and": [engine_safe({"$gte": {key: body}}), engine_safe({"$lte": {key: body}})]}
    return expr


def _patterns(conj: list[C.Cond]) -> list[dict[str, Any]]:
    snapshot = [c for c in conj if not (isinstance(c, C.Cmp) and c.derived)]
    derived: dict[str, list[C.Cmp]] = {}
    for c in conj:
        if isinstance(c, C.Cmp) and c.derived:
            derived.setdefault(c.field, []).append(c)
    snap = C.snapshot_json(C.And(tuple(snapshot)))
    if snap is None:
        m: dict[str, Any] = {"_k": "case"}
    else:
        m = {"$and": [{"_k": "case"}, *(snap["$and"] if set(snap) == {"$and"} else [snap])]}
    patterns: list[dict[str, Any]] = [{"m": engine_safe(m)}]
    for i, (name, tests) in enumerate(sorted(derived.items())):
        body = [{"_k": "derived"}, {"name": name}]
        body += [C.derived_json(t) for t in tests if t.op != "present"]
        patterns.append({f"d{i}": engine_safe({"$and": body})})
    return patterns


def _expand(rule: Rule, branch: Branch, cond: C.Cond, out: dict[str, Any], bindings: dict[str, Binding],
            priority: int, diags: list[Diagnostic]) -> None:
    dnf = C.to_dnf(cond)
    if len(dnf) > C.MAX_DNF_TERMS:
        diags.append(Diagnostic(rule.file, rule.line, rule.col, "PW301",
                                f"rule '{rule.id}' expands into {len(dnf)} engine rules (limit {C.MAX_DNF_TERMS}); "
                                "move derived-fact tests out of large 'any' blocks or derive an intermediate fact"))
        return
    compiled = [_patterns(conj) for conj in dnf]
    if not _check_expressions(rule, branch, compiled, diags):
        return
    for k, (conj, patterns) in enumerate(zip(dnf, compiled, strict=True)):
        name = f"{rule.id}.{branch}.{k}"
        out[name] = {"all": patterns, "pri": priority, "run": name}
        seen: dict[str, bool] = {}
        for clause in conj:
            for cmp in C.fields_of(clause):
                seen.setdefault(cmp.field, cmp.derived)
        bindings[name] = Binding(rule, branch, tuple(conj), tuple(seen.items()))


def _components(rules: list[Rule]) -> list[list[Rule]]:
    """Rules of one state grouped so that every derived fact stays inside one group.

    A rule that tests a derived fact must share a ruleset with the rules that derive it
    (forward chaining happens inside one durable_rules session); unrelated groups may be
    evaluated in separate rulesets of the same state.
    """
    parent = list(range(len(rules)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, rule in enumerate(rules):
        names = {c.field for cond in (rule.due, rule.when) for c in C.fields_of(cond) if c.derived}
        names |= {n for e in rule.then + rule.otherwise + rule.if_missing if isinstance(e, Derive) for n in e.values}
        names |= {e.name for e in rule.then + rule.otherwise if isinstance(e, Score)}
        for name in sorted(names):
            if name in owner:
                parent[find(i)] = find(owner[name])
            else:
                owner[name] = i
    groups: dict[int, list[Rule]] = {}
    for i, rule in enumerate(rules):
        groups.setdefault(find(i), []).append(rule)
    # in the order of each group's first rule (the order the groups were found in, as rules.index(g[0]) gives)
    return list(groups.values())


def _engine_rules(rule: Rule, out: dict[str, Any], bindings: dict[str, Binding], diags: list[Diagnostic],
                  derived: frozenset[str]) -> None:
    """The engine rules of one pathway rule (three-valued, see :mod:`pathway.definition.waiting`)."""
    # Derivations run first so the trace reads in causal order; decisions are taken only
    # after the engine is quiet, so firing order never changes the outcome.
    priority = 1 if any(isinstance(e, (Derive, Score)) for e in rule.then + rule.otherwise) else 2
    if rule.then:
        # 'when' definitely true (a test on a missing value does not match), and every value the
        # effects compute with recorded.
        inputs = tuple(f for f in rule.computes_with("then") if f not in derived)
        _expand(rule, "then", C.And((rule.due, _present(inputs), rule.when)), out, bindings, priority, diags)
    if rule.otherwise:
        ready = C.And((rule.due, _present(rule.requires)))
        _expand(rule, "else", C.And((ready, C.negate(rule.when))), out, bindings, priority, diags)
    if rule.if_missing:
        # Derivations made while data is missing (e.g. an index 'unknown') must chain inside the
        # engine like any other; the fields listed as required come from waiting_for.
        missing_priority = 1 if any(isinstance(e, Derive) for e in rule.if_missing) else 3
        _expand(rule, "missing", C.And((rule.due, _absent_any(rule.requires), _possible(rule.when))), out, bindings,
                missing_priority, diags)


def compile_kept(definition: PathwayDef, like: CompiledPathway | None = None, keep: bool = True) -> CompiledPathway:
    """:func:`compile_pathway`, or the compiled form kept on disk with a definition that the cache gave or
    took (:mod:`pathway.loading.stored`): the same rulesets, without building them again. ``keep=False``: one
    compiled here is not kept yet (the caller keeps it once durable_rules took its rulesets)."""
    kept = stored.stored_compiled(definition)
    if isinstance(kept, CompiledPathway) and kept.definition is definition:
        return kept
    compiled = compile_pathway(definition, like)
    if keep:
        stored.keep_compiled(definition, compiled)
    return compiled


def compile_pathway(definition: PathwayDef, like: CompiledPathway | None = None) -> CompiledPathway:
    """Build the rulesets of every state; raise EngineLimitError when a group is too large.

    A state's rules go into one ruleset while it stays within the engine's limits; beyond
    that they are split into several rulesets along derived-fact groups (see _components).

    ``like``: the compiled form of another profile of the same pathway (``pathway validate`` compiles
    every profile); a state whose rules equal its rules there (a profile that sets no value they read)
    takes its rulesets from it, with bindings naming this definition's rules: the same result.
    """
    rulesets: dict[str, dict[str, Any]] = {}
    bindings: dict[str, Binding] = {}
    state_rulesets: dict[str, list[str]] = {}
    diags: list[Diagnostic] = []
    derived = frozenset(definition.spec.derived)
    same_frame = (like is not None and like.definition.id == definition.id
                  and frozenset(like.definition.spec.derived) == derived)
    for state in definition.spec.states:
        rules = definition.rules_in(state)
        if not rules:
            continue
        if like is not None and same_frame and state in like.state_rulesets:
            theirs = like.definition.rules_in(state)
            if theirs == rules:
                ours = {id(a): b for a, b in zip(theirs, rules, strict=True)}
                for name in like.state_rulesets[state]:
                    rulesets[name] = like.rulesets[name]
                    for engine_rule in like.rulesets[name]:
                        was = like.bindings[engine_rule]
                        bindings[engine_rule] = Binding(ours[id(was.rule)], was.branch, was.clauses, was.fields)
                state_rulesets[state] = list(like.state_rulesets[state])
                continue
        # Each chunk keeps its alpha network: a group is chained into it once and the bound is
        # updated along the nodes it touched (not rebuilt from the whole chunk for every group).
        chunks: list[dict[str, Any]] = []
        bounds: list[int] = []
        net: _AlphaNet | None = None
        for group in _components(rules):
            part: dict[str, Any] = {}
            for rule in group:
                _engine_rules(rule, part, bindings, diags, derived)
            if net is not None and len(chunks[-1]) + len(part) <= MAX_RULES_PER_RULESET:
                bound = net.add(part)  # the chunk's net is dropped when the group does not fit
                if bound <= MAX_ALPHA_STACK:
                    chunks[-1].update(part)
                    bounds[-1] = bound
                    continue
            net = _AlphaNet()
            chunks.append(part)
            bounds.append(net.add(part))
        names = []
        for k, chunk in enumerate(chunks):
            name = ruleset_name(definition, state) + (f".{k + 1}" if k else "")
            _check_limits(definition, state, name, chunk, diags, bounds[k])
            rulesets[name] = chunk
            names.append(name)
        state_rulesets[state] = names
    if diags:
        raise EngineLimitError(diags)
    return CompiledPathway(definition, rulesets, bindings, state_rulesets)


class _Alpha:
    """A node of a model of durable_rules' alpha network (identical tests under one parent share a node)."""

    __slots__ = ("children", "best", "f", "touched")

    def __init__(self) -> None:
        self.children: dict[Any, _Alpha] = {}
        #: the largest ``f`` of a child (0 without children) and ``f`` itself, as of the last :meth:`_AlphaNet.add`
        self.best = 0
        self.f = 0
        #: the children the rules being added passed to (their subtrees may have grown), by id
        self.touched: dict[int, _Alpha] = {}


def _test_key(expr: dict[str, Any]) -> Any:
    """What identifies a test among the children of one node: equal for two tests exactly when their
    JSON (``json.dumps(expr, sort_keys=True)``) is; a tuple for the usual ``{op: {name: value}}`` and
    ``{name: value}`` tests (without writing JSON), the JSON itself for any other."""
    if len(expr) == 1:
        ((op, body),) = expr.items()
        if isinstance(op, str):
            if isinstance(body, dict):
                if len(body) == 1:
                    ((name, value),) = body.items()
                    if isinstance(name, str):
                        scalar = _scalar_key(value)
                        if scalar is not None:
                            return (op, name, scalar)
            else:
                scalar = _scalar_key(body)
                if scalar is not None:
                    return (op, scalar)
    return json.dumps(expr, sort_keys=True)


def _scalar_key(value: Any) -> tuple[str, Any] | None:
    """A scalar as ``json.dumps`` tells it from every other one (1, 1.0 and True are three values)."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("true" if value else "false", None)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, int):
        return ("i", int(value))
    if isinstance(value, float):
        return ("f", float.__repr__(value))
    return None


class _AlphaNet:
    """A model of durable_rules' alpha network for one ruleset, built rule by rule.

    Identical tests under one parent share a node; each ``$or`` links the ends of its branches to
    one forward node. :meth:`add` chains more rules in and returns the stack bound of everything
    added so far; only the nodes the new rules passed through are computed again, each from its
    previous value and the children the new rules passed to (a node's ``f`` never decreases as the
    network grows, and its subtree changes only when a rule passes through it: forward nodes of
    earlier rules are never reached again, since chaining starts at the root and follows test keys only).
    """

    def __init__(self) -> None:
        self.root = _Alpha()
        self._forwards = 0

    def add(self, ruleset: dict[str, Any]) -> int:
        for rule in ruleset.values():
            for pattern in rule["all"]:
                (expr,) = pattern.values()
                self._chain([self.root], expr)
        return self._update()

    def _chain(self, parents: list[_Alpha], expr: dict[str, Any]) -> list[_Alpha]:
        """Add ``expr`` below every node of ``parents``; return the nodes where the chain continues."""
        if len(expr) == 1 and "$and" in expr:
            for item in expr["$and"]:
                parents = self._chain(parents, item)
            return parents
        if len(expr) == 1 and "$or" in expr:
            ends: list[_Alpha] = []
            for branch in expr["$or"]:
                ends.extend(self._chain(parents, branch))
            self._forwards += 1
            forward = _Alpha()  # the node every branch links to (one per $or)
            name = f"forward#{self._forwards}"
            for end in ends:
                end.children[name] = forward
                end.touched[id(forward)] = forward
            return [forward]
        key = _test_key(expr)
        out = []
        for parent in parents:
            child = parent.children.get(key)
            if child is None:
                child = parent.children[key] = _Alpha()
            parent.touched[id(child)] = child
            out.append(child)
        return out

    def _update(self) -> int:
        """``f(node) = children + max(0, f(child) - 1)`` again for the nodes the last rules passed
        through, children first, iteratively (no recursion limit); the root's ``f``."""
        seen: set[int] = set()
        stack: list[tuple[_Alpha, bool]] = [(self.root, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                best = node.best
                for kid in node.touched.values():
                    if kid.f > best:
                        best = kid.f
                node.touched = {}
                node.best = best
                node.f = len(node.children) + max(0, best - 1)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((kid, False) for kid in node.touched.values() if id(kid) not in seen)
        return self.root.f


def alpha_stack_bound(ruleset: dict[str, Any]) -> int:
    """Upper bound of durable_rules' alpha-walk stack for any one message of this ruleset.

    Popping a node pushes its matching children; the bound assumes every child matches:
    ``f(node) = children + max(0, f(child) - 1)``.
    """
    return _AlphaNet().add(ruleset)


def _check_limits(definition: PathwayDef, state: str, name: str, out: dict[str, Any], diags: list[Diagnostic],
                  bound: int) -> None:
    pfile = str(definition.root / "pathway.yaml")
    if len(out) > MAX_RULES_PER_RULESET:
        diags.append(Diagnostic(pfile, 1, 1, "PW302",
                                f"state '{state}' compiles into {len(out)} engine rules; the limit is {MAX_RULES_PER_RULESET} "
                                "per state (durable_rules hangs or fails beyond ~255); split the state"))
    if bound > MAX_ALPHA_STACK:
        diags.append(Diagnostic(pfile, 1, 1, "PW304",
                                f"ruleset '{name}' of state '{state}' may match {bound} alpha nodes for one fact; "
                                f"durable_rules fails beyond 64 (error 303), this pathway engine allows {MAX_ALPHA_STACK}; "
                                "share leading tests between rules derived facts connect into one group, or split the state"))
    same = Counter(json.dumps(r["all"], sort_keys=True) for r in out.values())
    worst, count = same.most_common(1)[0] if same else ("", 0)
    if count > MAX_IDENTICAL_CONDITIONS:
        diags.append(Diagnostic(pfile, 1, 1, "PW303",
                                f"state '{state}' has {count} rules on one identical condition; the limit is "
                                f"{MAX_IDENTICAL_CONDITIONS} (durable_rules crashes at 256)"))


def pattern_expressions(expr: Any) -> int:
    """The entries of durable_rules' expression sequence that one pattern's condition takes (see
    :data:`MAX_PATTERN_EXPRESSIONS`): two for each ``$and`` and ``$or``, one for each comparison with a value
    of another pattern (``{"$gt": {"x": {"first": "y"}}}``, which the compiler never writes)."""
    if not isinstance(expr, dict) or len(expr) != 1:
        return 0
    ((key, body),) = expr.items()
    if key in ("$and", "$or") and isinstance(body, list):
        return 2 + sum(pattern_expressions(item) for item in body)
    if isinstance(body, dict) and len(body) == 1 and isinstance(next(iter(body.values())), dict):
        return 1
    return 0


#: what each branch's condition is, for PW305
_BRANCH_TEST = {
    "then": "its 'when' (with 'due')",
    "else": "its 'when' negated for 'otherwise' (an 'all' becomes an 'any' and the reverse)",
    "missing": "its 'if_missing' test (each value tested reads 'this, or missing', one 'or' each)",
}


def _check_expressions(rule: Rule, branch: Branch, compiled: list[list[dict[str, Any]]],
                       diags: list[Diagnostic]) -> bool:
    """PW305 when a pattern of one of the engine rules of ``rule``'s ``branch`` holds more 'and'/'or' groups
    than durable_rules registers (:data:`MAX_PATTERN_EXPRESSIONS`); True when every pattern fits."""
    limit = MAX_PATTERN_EXPRESSIONS
    worst = max((pattern_expressions(expr) for patterns in compiled for p in patterns for expr in p.values()),
                default=0)
    if worst <= limit:
        return True
    diags.append(Diagnostic(rule.file, rule.line, rule.col, "PW305",
                            f"rule '{rule.id}': {_BRANCH_TEST[branch]} compiles into {worst // 2} 'and'/'or' "
                            f"groups on one fact; durable_rules holds at most {limit // 2} (error 113 when the "
                            "pathway is loaded); split the rule: derive an intermediate fact from part of the "
                            "condition in a rule of its own, and test that fact here"))
    return False
