"""Conditions as data: parsing (with positions), negation, and durable_rules JSON.

Syntax (YAML)::

    when:
      all:
        - bloody_stools_24h: {gte: $tw_min_bloody_stools}
        - any:
            - pulse_bpm: {gt: 90}
            - temp_c: {gt: 37.8}
        - not: {toxic_megacolon: true}

- A mapping with several keys is an implicit ``all``; a list is an implicit ``all``.
- ``at_least: {n: 3, of: [...]}`` holds when at least ``n`` of the listed conditions hold (``n`` may
  be a ``$parameter``); three-valued: true when ``n`` items are true, false when fewer than ``n``
  items can still be true, unknown otherwise.
- ``field: value`` tests equality; ``field: {op: value, ...}`` with ops
  ``eq ne gt gte lt lte in not_in between present``.
- A string value starting with ``$`` names a pathway parameter; a key starting with ``$`` tests a
  parameter (``$rescue_policy: ciclosporin_first``), settled when the pathway loads.
- ``true`` is the condition that always holds.
- Field names are inputs (``fields.yaml``), built-ins (``day``, ``days_in_state``) or named
  derived facts (``derived:`` in the pathway file). Tests on derived facts are compiled into
  joins with the derived-fact messages, so asserting a derived fact triggers the rules that
  use it inside the engine (forward chaining).

Logic is three-valued (Kleene): a comparison on a missing value is *unknown*, so neither a
rule nor its negation (``otherwise``) fires, and the rule's ``requires`` list reports the gap.
"""

from __future__ import annotations

import copy
import functools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any, cast

from pathway.core.errors import Diagnostic, suggest
from pathway.core.yamlsafe import Located
from pathway.definition.mutation import Mutation, Site

__all__ = [
    "Cmp",
    "And",
    "Or",
    "Always",
    "AtLeast",
    "Cond",
    "ConditionParser",
    "negate",
    "evaluate",
    "expand_counts",
    "fields_of",
    "to_dnf",
    "snapshot_json",
    "describe",
    "MAX_DNF_TERMS",
    "MAX_COUNT_CHOICES",
]

MAX_DNF_TERMS = 16
#: An ``at_least`` compiles into one alternative per choice of ``n`` of its items; beyond this many
#: choices it is refused when the pathway loads (the engine would hold too many alternatives).
MAX_COUNT_CHOICES = 64

_NEGATE_OP = {
    "eq": "ne",
    "ne": "eq",
    "gt": "lte",
    "lte": "gt",
    "gte": "lt",
    "lt": "gte",
    "in": "not_in",
    "not_in": "in",
}
_NUMERIC_OPS = {"gt", "gte", "lt", "lte"}
_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between", "present"}
_EMPTY_TEST = "an empty mapping tests nothing; write the test (such as '{gte: 3}'), or 'true' for a condition that always holds"
_OP_WORDS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in", "not_in": "not in"}


@dataclass(frozen=True)
class Cmp:
    """``field op value``; ``op == 'present'`` tests presence (value True) or absence (False)."""

    field: str
    op: str
    value: Any
    derived: bool = False
    param: str | None = None
    line: int = 0
    col: int = 0

    def holds(self, facts: dict[str, Any]) -> bool | None:
        """Evaluate in Python (three-valued): used by explanations and tests, never for firing."""
        if self.op == "present":
            return (facts.get(self.field) is not None) == bool(self.value)
        actual = facts.get(self.field)
        if actual is None:
            return None
        if self.op == "eq":
            return cast(bool, actual == self.value)
        if self.op == "ne":
            return cast(bool, actual != self.value)
        if self.op == "in":
            return actual in self.value
        if self.op == "not_in":
            return actual not in self.value
        try:  # only the comparison asked for (the mapping below evaluates all four)
            op = self.op
            if op == "gt":
                return cast(bool, actual > self.value)
            if op == "gte":
                return cast(bool, actual >= self.value)
            if op == "lt":
                return cast(bool, actual < self.value)
            if op == "lte":
                return cast(bool, actual <= self.value)
        except TypeError:
            pass  # values that do not compare: the mapping raises the error it always raised
        comparisons: dict[str, bool] = {
            "gt": actual > self.value,
            "gte": actual >= self.value,
            "lt": actual < self.value,
            "lte": actual <= self.value,
        }
        return comparisons[self.op]


@dataclass(frozen=True)
class And:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Always:
    pass


@dataclass(frozen=True)
class AtLeast:
    """At least ``n`` of ``items`` hold (``1 <= n <= len(items)``, checked by the parser)."""

    n: int
    items: tuple[Cond, ...]
    param: str | None = None


Cond = Cmp | And | Or | Always | AtLeast


def _choices(cond: AtLeast) -> Or:
    """``at_least`` as the ``or`` of every choice of ``n`` items (the same three-valued value)."""
    return Or(tuple(And(chosen) for chosen in combinations(cond.items, cond.n)))


def expand_counts(cond: Cond) -> Cond:
    """``cond`` with every ``at_least`` rewritten as :func:`_choices` (only ``and``/``or`` left).

    Kleene logic gives both forms the same value: the ``or`` is true when one choice has ``n``
    true items, and false when every choice has a false item, i.e. fewer than ``n`` items can
    still be true. The engine compiles the expanded form.
    """
    if isinstance(cond, (Cmp, Always)):
        return cond
    if isinstance(cond, AtLeast):
        return expand_counts(_choices(cond))
    items = tuple(expand_counts(c) for c in cond.items)
    return And(items) if isinstance(cond, And) else Or(items)


def evaluate(cond: Cond, facts: dict[str, Any],
             leaf: Callable[[Cmp, dict[str, Any]], bool | None] | None = None) -> bool | None:
    """Three-valued (Kleene) value of a condition on plain values: True, False or None (unknown).

    The engine fires rules in durable_rules; this evaluator serves effects that compute values
    from conditions (``score`` items), explanations and static checks. ``leaf`` may replace
    :meth:`Cmp.holds` for the comparisons (the condition is then walked, every item evaluated);
    without one the condition runs compiled (:func:`_compile`), where an ``all`` stops at its first
    false item and an ``any`` at its first true one.
    """
    if leaf is None:
        return _compiled(cond)(facts)
    return _interpreted(cond, facts, leaf)


def _interpreted(cond: Cond, facts: dict[str, Any],
                 leaf: Callable[[Cmp, dict[str, Any]], bool | None] | None = None) -> bool | None:
    """:func:`evaluate` walking the condition (the definition the compiled form follows, and the form a
    ``leaf`` needs)."""
    kind = type(cond)
    if kind is Cmp:
        return leaf(cond, facts) if leaf is not None else cond.holds(facts)  # type: ignore[union-attr,arg-type]
    if kind is And or kind is Or:  # every item is evaluated (as before: none is skipped)
        any_false = any_true = any_unknown = False
        for c in cond.items:  # type: ignore[union-attr]
            v = _interpreted(c, facts, leaf)
            if v is True:
                any_true = True
            elif v is False:
                any_false = True
            elif v is None:
                any_unknown = True
        if kind is And:
            return False if any_false else (None if any_unknown else True)
        return True if any_true else (None if any_unknown else False)
    if isinstance(cond, Always):
        return True
    if isinstance(cond, Cmp):
        return leaf(cond, facts) if leaf is not None else cond.holds(facts)
    values = [_interpreted(c, facts, leaf) for c in cond.items]
    if isinstance(cond, AtLeast):
        true = sum(1 for v in values if v is True)
        if true >= cond.n:
            return True
        return False if true + sum(1 for v in values if v is None) < cond.n else None
    if isinstance(cond, And):
        if any(v is False for v in values):
            return False
        return None if any(v is None for v in values) else True
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


#: a condition's compiled form (:func:`_compile`) by its identity, with a weak reference to it: the entry goes
#: when the condition does (a pathway loaded again compiles its own; none is kept alive by this table), and
#: the compiled form holds no reference to the condition itself
_COMPILED: dict[int, tuple[weakref.ref[Any], Callable[[dict[str, Any]], bool | None]]] = {}


def _compiled(cond: Cond) -> Callable[[dict[str, Any]], bool | None]:
    key = id(cond)
    kept = _COMPILED.get(key)
    if kept is not None and kept[0]() is cond:
        return kept[1]
    fn = _compile(cond)
    _COMPILED[key] = (weakref.ref(cond, functools.partial(_forget, key)), fn)
    return fn


def _forget(key: int, _ref: weakref.ref[Any]) -> None:
    _COMPILED.pop(key, None)


def _compile(cond: Cond) -> Callable[[dict[str, Any]], bool | None]:
    """``cond`` as a function of the facts giving what :func:`_interpreted` gives (the same value, and the same
    error from a comparison that fails): one closure per node, the node's constants bound once. An ``all``
    stops at a false item and an ``any`` at a true one, whose value the rest cannot change (so a later item
    holding a value that does not compare raises nothing); an ``at_least`` evaluates every item."""
    kind = type(cond)
    if kind is Cmp:
        return _compile_cmp(cond)  # type: ignore[arg-type]
    if kind is Always:
        return _true
    items = tuple(_compile(c) for c in cond.items)  # type: ignore[union-attr]
    if kind is And or kind is Or:
        settles = kind is Or  # the value of an item that settles the whole: false for an 'all', true for an 'any'

        def junction(facts: dict[str, Any]) -> bool | None:
            unknown = False
            for f in items:
                v = f(facts)
                if v is settles:
                    return settles
                if v is None:
                    unknown = True
            return None if unknown else not settles
        return junction
    n = cond.n  # type: ignore[union-attr]

    def at_least(facts: dict[str, Any]) -> bool | None:
        values = [f(facts) for f in items]
        true = values.count(True)
        if true >= n:
            return True
        return False if true + values.count(None) < n else None
    return at_least


def _true(facts: dict[str, Any]) -> bool | None:
    return True


def _compile_cmp(cmp: Cmp) -> Callable[[dict[str, Any]], bool | None]:
    name, op, value = cmp.field, cmp.op, cmp.value
    if op == "present":
        wanted = bool(value)
        return lambda facts: (facts.get(name) is not None) == wanted
    twin = copy.copy(cmp)  # an equal test that is not the condition compiled (see _COMPILED)
    if op in ("eq", "ne", "in", "not_in"):
        return twin.holds  # one test after the lookup: the method is as short as a closure
    compare = {"gt": _gt, "gte": _gte, "lt": _lt, "lte": _lte}[op]

    def ordered(facts: dict[str, Any]) -> bool | None:
        actual = facts.get(name)
        if actual is None:
            return None
        try:
            return compare(actual, value)
        except TypeError:
            return twin.holds(facts)  # the error the comparison always raised
    return ordered


def _gt(a: Any, b: Any) -> bool:
    return cast(bool, a > b)


def _gte(a: Any, b: Any) -> bool:
    return cast(bool, a >= b)


def _lt(a: Any, b: Any) -> bool:
    return cast(bool, a < b)


def _lte(a: Any, b: Any) -> bool:
    return cast(bool, a <= b)


def negate(cond: Cond) -> Cond:
    """Negation pushed down to the comparisons (keeps three-valued semantics)."""
    if isinstance(cond, Always):
        return Or(())  # never holds
    if isinstance(cond, And):
        return Or(tuple(negate(c) for c in cond.items))
    if isinstance(cond, Or):
        return And(tuple(negate(c) for c in cond.items))
    if isinstance(cond, AtLeast):
        # fewer than n of m hold <=> at least m - n + 1 of them do not hold
        return AtLeast(len(cond.items) - cond.n + 1, tuple(negate(c) for c in cond.items))
    if cond.op == "present":
        return Cmp(cond.field, "present", not cond.value, cond.derived, cond.param, cond.line, cond.col)
    return Cmp(cond.field, _NEGATE_OP[cond.op], cond.value, cond.derived, cond.param, cond.line, cond.col)


def fields_of(cond: Cond) -> list[Cmp]:
    """Every comparison of a condition, in the order written."""
    if isinstance(cond, Cmp):
        return [cond]
    if isinstance(cond, (And, Or, AtLeast)):
        return [c for item in cond.items for c in fields_of(item)]
    return []


def _has_derived(cond: Cond) -> bool:
    return any(c.derived for c in fields_of(cond))


def to_dnf(cond: Cond) -> list[list[Cond]]:
    """Disjunctive normal form over *derived* tests only.

    Sub-trees that touch no derived fact stay whole (they compile into one pattern with
    nested ``$or``); only the parts that need joins with derived facts are multiplied out.
    Returns a list of conjunctions; each conjunction is a list of snapshot sub-trees and
    derived comparisons.
    """
    if not _has_derived(cond):
        return [[cond]]
    if isinstance(cond, Cmp):
        return [[cond]]
    if isinstance(cond, AtLeast):
        return to_dnf(_choices(cond))
    if isinstance(cond, Or):
        return [conj for item in cond.items for conj in to_dnf(item)]
    assert isinstance(cond, And)
    result: list[list[Cond]] = [[]]
    for item in cond.items:
        result = [left + right for left, right in product(result, to_dnf(item))]
        if len(result) > MAX_DNF_TERMS * 4:
            break
    return result


def _cmp_json(c: Cmp, name: str) -> dict[str, Any]:
    if c.op == "present":
        return {"$ex" if c.value else "$nex": {name: 1}}
    if c.op == "eq":
        return {name: c.value}
    if c.op == "ne":
        return {"$neq": {name: c.value}}
    if c.op == "in":
        return {"$or": [{name: v} for v in c.value]} if len(c.value) != 1 else {name: c.value[0]}
    if c.op == "not_in":
        return {"$and": [{"$ex": {name: 1}}] + [{"$neq": {name: v}} for v in c.value]}
    return {"$" + c.op: {name: c.value}}  # $gt $gte $lt $lte


def snapshot_json(cond: Cond) -> dict[str, Any] | None:
    """durable_rules JSON (operator-first form) for a sub-tree on the case snapshot.

    Returns None for a condition that always holds.
    """
    if isinstance(cond, Always):
        return None
    if isinstance(cond, Cmp):
        return _cmp_json(cond, cond.field)
    if isinstance(cond, AtLeast):
        return snapshot_json(_choices(cond))
    compiled = [snapshot_json(item) for item in cond.items]
    if isinstance(cond, Or) and any(p is None for p in compiled):
        return None  # an always-true branch makes the whole Or true
    # Flatten nested $and/$or of the same kind, so the ruleset JSON reads like the rule.
    key = "$and" if isinstance(cond, And) else "$or"
    parts = [q for p in compiled if p is not None for q in (p[key] if set(p) == {key} else [p])]
    if isinstance(cond, And):
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if not parts:
        # Or(()) never holds: a test no fact can pass.
        return {"$and": [{"$ex": {"_never": 1}}, {"$nex": {"_never": 1}}]}
    return parts[0] if len(parts) == 1 else {"$or": parts}


def derived_json(c: Cmp) -> dict[str, Any]:
    return _cmp_json(c, "value")


def describe(cond: Cond) -> str:
    """A code-like rendering (field ids, ``$parameters``) for debugging and messages to authors;
    what people read is written by :mod:`pathway.definition.prose`."""
    if isinstance(cond, Always):
        return "always"
    if isinstance(cond, Cmp):
        value = f"${cond.param}" if cond.param else cond.value
        if cond.op == "present":
            return f"{cond.field} {'is recorded' if cond.value else 'is missing'}"
        if isinstance(value, bool):
            value = str(value).lower()
        return f"{cond.field} {_OP_WORDS[cond.op]} {value}"
    if isinstance(cond, AtLeast):
        count = f"${cond.param}" if cond.param else str(cond.n)
        return f"at least {count} of (" + ", ".join(describe(i) for i in cond.items) + ")"
    joiner = " and " if isinstance(cond, And) else " or "
    if not cond.items:
        return "always" if isinstance(cond, And) else "never"
    return "(" + joiner.join(describe(i) for i in cond.items) + ")"


class ConditionParser:
    """Parses condition data with positions, checking names, operators, types and parameters."""

    def __init__(
        self,
        doc: Located,
        field_type: Callable[[str], tuple[str, list[str]] | None],
        derived_type: Callable[[str], tuple[str, list[str]] | None],
        params: dict[str, Any],
        known_names: list[str],
        diagnostics: list[Diagnostic],
        mutation: Mutation | None = None,
        sites: list[Site] | None = None,
    ):
        self.doc = doc
        #: a threshold mutation to apply while parsing (``pathway test --mutate``), and the list that
        #: collects every numeric comparison parsed (its ``Site``)
        self.mutation = mutation
        self.sites = sites
        #: the rule, watchdog or computed input being parsed (recorded on each Site)
        self.owner = ""
        self.field_type = field_type
        self.derived_type = derived_type
        self.params = params
        self.known_names = known_names
        self.diagnostics = diagnostics
        self.used_params: set[str] = set()

    def _err(self, path: tuple[Any, ...], code: str, message: str, hint: str | None = None, key: bool = False) -> None:
        self.diagnostics.append(self.doc.diag(path, code, message, hint, key=key))

    def parse(self, data: Any, path: tuple[Any, ...]) -> Cond:
        if data is True:
            return Always()
        if isinstance(data, list):
            if not data:
                self._err(path, "PW112", "an empty list is not a condition (write 'true' for always)")
            return And(tuple(self.parse(item, path + (i,)) for i, item in enumerate(data)))
        if not isinstance(data, dict) or not data:
            self._err(path, "PW112", f"a condition must be a mapping, a list or 'true', not {data!r}")
            return Always()
        parts: list[Cond] = []
        for key, value in data.items():
            sub = path + (key,)
            if key == "all":
                if not isinstance(value, list) or not value:
                    self._err(sub, "PW112", "'all' takes a non-empty list of conditions")
                    continue
                parts.append(And(tuple(self.parse(v, sub + (i,)) for i, v in enumerate(value))))
            elif key == "any":
                if not isinstance(value, list) or not value:
                    self._err(sub, "PW112", "'any' takes a non-empty list of conditions")
                    continue
                parts.append(Or(tuple(self.parse(v, sub + (i,)) for i, v in enumerate(value))))
            elif key == "not":
                parts.append(negate(self.parse(value, sub)))
            elif key == "at_least":
                count = self._at_least(value, sub)
                if count is not None:
                    parts.append(count)
            else:
                parts.extend(self._field(str(key), value, sub))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _at_least(self, value: Any, path: tuple[Any, ...]) -> Cond | None:
        """``at_least: {n: 3, of: [...]}``: at least ``n`` (a number or ``$parameter``) of the listed conditions."""
        if not isinstance(value, dict) or set(value) != {"n", "of"}:
            extra = sorted(str(k) for k in value) if isinstance(value, dict) else []
            unknown = [k for k in extra if k not in ("n", "of")]
            if unknown:
                missing = [k for k in ("n", "of") if k not in value]
                hint = suggest(unknown[0], ["n", "of"]) or (missing[0] if len(missing) == 1 else None)
                self._err(path + (unknown[0],), "PW110", f"unknown key '{unknown[0]}' in 'at_least' (it takes 'n' and 'of')",
                          hint, key=True)
            else:
                self._err(path, "PW112", "'at_least' takes 'n' (how many) and 'of' (a list of conditions)")
            return None
        items_raw = value["of"]
        if not isinstance(items_raw, list) or len(items_raw) < 2:
            self._err(path + ("of",), "PW112", "'of' takes a list of at least two conditions")
            return None
        items = tuple(self.parse(v, path + ("of", i)) for i, v in enumerate(items_raw))
        n, param = self._resolve(value["n"], path + ("n",))
        if n is None and param is not None:
            return None
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not float(n).is_integer():
            self._err(path + ("n",), "PW112", f"'n' is a whole number of conditions, not {n!r}")
            return None
        n = int(n)
        if not 1 <= n <= len(items):
            self._err(path + ("n",), "PW112", f"'n' must be from 1 to the number of conditions ({len(items)}), not {n}")
            return None
        if math.comb(len(items), n) > MAX_COUNT_CHOICES:
            self._err(path, "PW112", f"at least {n} of {len(items)} conditions has {math.comb(len(items), n)} "
                                     f"combinations (limit {MAX_COUNT_CHOICES}); split it into smaller groups")
            return None
        # 'at least n' is a count >= n: a strictness mutant makes it 'more than n' (at least n + 1).
        if self._site("(number of conditions that hold)", "gte", n, param, path + ("n",), key=True) == "gt":
            if n == len(items):
                return Or(())
            n += 1
        return AtLeast(n, items, param)

    def _resolve(self, value: Any, path: tuple[Any, ...]) -> tuple[Any, str | None]:
        if isinstance(value, str) and value.startswith("$"):
            name = value[1:]
            if name not in self.params:
                self._err(path, "PW203", f"unknown parameter '{name}'", suggest(name, self.params))
                return None, name
            self.used_params.add(name)
            return self.params[name], name
        return value, None

    def _param_test(self, name: str, spec: Any, path: tuple[Any, ...]) -> list[Cond]:
        """``$param: value`` (or ``{op: value}``): a test on a parameter, settled when the pathway loads.

        Lets a site profile switch a rule on or off; the rule's trace still shows the real inputs.
        """
        pname = name[1:]
        if pname not in self.params:
            self._err(path, "PW203", f"unknown parameter '{pname}'", suggest(pname, self.params), key=True)
            return []
        self.used_params.add(pname)
        value = self.params[pname]
        if spec == {}:
            self._err(path, "PW112", _EMPTY_TEST)
            return []
        ops = spec if isinstance(spec, dict) else {"eq": spec}
        outcome = True
        for op, raw in ops.items():
            opath = path + (op,) if isinstance(spec, dict) else path
            if op not in _OPS or op in ("present", "between"):
                self._err(opath, "PW110", f"operator '{op}' cannot test a parameter", key=True)
                return []
            target, tparam = self._resolve(raw, opath)
            if target is None and tparam is not None:
                return []
            if op in ("in", "not_in"):
                if not isinstance(target, list) or not target or any(isinstance(t, (list, dict)) for t in target):
                    self._err(opath, "PW112", f"'{op}' takes a non-empty list of values")
                    return []
                target = tuple(target)
            elif isinstance(target, (list, dict)):
                self._err(opath, "PW112", f"'{op}' takes one value, not a list or a mapping")
                return []
            if op in _NUMERIC_OPS and (isinstance(value, bool) or not isinstance(value, (int, float))):
                self._err(opath, "PW209", f"'{op}' needs a number, but parameter '{pname}' is {value!r}")
                return []
            if op in _NUMERIC_OPS and (isinstance(target, bool) or not isinstance(target, (int, float))):
                self._err(opath, "PW112", f"'{op}' compares with a number, not {target!r}")
                return []
            held = Cmp("$", op, target).holds({"$": value})
            outcome = outcome and bool(held)
        return [Always() if outcome else Or(())]

    def _field(self, name: str, spec: Any, path: tuple[Any, ...]) -> list[Cond]:
        if name.startswith("$"):
            return self._param_test(name, spec, path)
        kind = self.field_type(name)
        derived = False
        if kind is None:
            kind = self.derived_type(name)
            derived = kind is not None
        if kind is None:
            self._err(path, "PW202", f"unknown field or derived fact '{name}'", suggest(name, self.known_names), key=True)
            return []
        ftype, values = kind
        line, col = self.doc.pos(path, key=True)
        if spec == {}:
            self._err(path, "PW112", _EMPTY_TEST)
            return []
        if not isinstance(spec, dict):
            spec = {"eq": spec}
            op_paths = {"eq": path}
        else:
            op_paths = {op: path + (op,) for op in spec}
        out: list[Cond] = []
        for op, raw in spec.items():
            opath = op_paths[op]
            if op not in _OPS:
                self._err(opath, "PW110", f"unknown operator '{op}'", suggest(str(op), _OPS), key=True)
                continue
            if op == "present":
                if not isinstance(raw, bool):
                    self._err(opath, "PW112", "'present' takes true or false")
                    continue
                if derived and raw is False:
                    self._err(opath, "PW210",
                              f"derived fact '{name}' cannot be tested for absence; derive an explicit false value instead")
                    continue
                out.append(Cmp(name, "present", raw, derived, None, line, col))
                continue
            if op == "between":
                if not isinstance(raw, list) or len(raw) != 2:
                    self._err(opath, "PW112", "'between' takes a list of two bounds [low, high] (both inclusive)")
                    continue
                low, low_param = self._resolve(raw[0], opath + (0,))
                high, high_param = self._resolve(raw[1], opath + (1,))
                checked = [self._check_value(name, ftype, values, "gte", bound, bpath)
                           for bound, bpath in ((low, opath + (0,)), (high, opath + (1,)))]
                if all(checked) and low > high:
                    self._err(opath, "PW127", f"'between' [{low:g}, {high:g}]: the low bound is above the high bound, "
                                              "so the test never holds")
                low_op = self._site(name, "gte", low, low_param, opath + (0,), key=False)
                high_op = self._site(name, "lte", high, high_param, opath + (1,), key=False)
                out.append(Cmp(name, low_op, low, derived, low_param, line, col))
                out.append(Cmp(name, high_op, high, derived, high_param, line, col))
                continue
            if op in ("in", "not_in"):
                if not isinstance(raw, list) or not raw:
                    self._err(opath, "PW112", f"'{op}' takes a non-empty list of values")
                    continue
                resolved = []
                for i, item in enumerate(raw):
                    value, _ = self._resolve(item, opath + (i,))
                    self._check_value(name, ftype, values, "eq", value, opath + (i,))
                    resolved.append(value)
                out.append(Cmp(name, op, tuple(resolved), derived, None, line, col))
                continue
            value, param = self._resolve(raw, opath)
            if value is None and param is not None:
                continue
            if not self._check_value(name, ftype, values, op, value, opath):
                continue
            if op in _NUMERIC_OPS:
                op = self._site(name, op, value, param, opath, key=isinstance(spec, dict))
            out.append(Cmp(name, op, value, derived, param, line, col))
        return out

    def _site(self, name: str, op: str, value: Any, param: str | None, path: tuple[Any, ...], *, key: bool) -> str:
        """Record a numeric comparison (at its operator's position) and return the operator to compile."""
        line, col = self.doc.pos(path, key=key)
        if self.sites is not None:
            self.sites.append(Site(self.doc.file, line, col, name, op, value, param, self.owner))
        return self.mutation.operator_at(self.doc.file, line, col, op) if self.mutation is not None else op

    def _check_value(self, name: str, ftype: str, values: list[str], op: str, value: Any, path: tuple[Any, ...]) -> bool:
        if value is None:
            return False
        if op in _NUMERIC_OPS and ftype not in ("number", "integer"):
            self._err(path, "PW209", f"'{op}' needs a number, but '{name}' is {ftype}")
            return False
        if ftype in ("number", "integer"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self._err(path, "PW112", f"'{name}' is a number; {value!r} is not")
                return False
        elif ftype == "boolean":
            if not isinstance(value, bool):
                self._err(path, "PW112", f"'{name}' is true/false; {value!r} is not")
                return False
        elif ftype == "enum":
            if value not in values:
                self._err(path, "PW112", f"'{value}' is not a value of '{name}' ({', '.join(values)})",
                          suggest(str(value), values))
                return False
        elif not isinstance(value, str):
            self._err(path, "PW112", f"'{name}' is text; {value!r} is not")
            return False
        return True
