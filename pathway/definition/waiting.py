"""Three-valued rule semantics: which branch a rule can take on what is known, and which missing
values it is waiting for.

A condition is true, false or unknown (Kleene): ``a or b`` is true as soon as one side is true,
``a and b`` is false as soon as one side is false, and a test on a value that is not recorded is
unknown. For a rule that is due:

- ``then`` fires when ``when`` is definitely true and every value its effects compute with (a
  score's inputs, a dose's weight, a titration's dose and level) is recorded;
- ``otherwise`` fires when ``when`` is definitely false and every ``requires`` field is recorded;
- otherwise the rule is **waiting**: if it asks for data (it has ``requires``, or effects that
  compute with values), the result lists the missing values that can still change its outcome
  (:func:`waiting_for`), and ``if_missing`` effects apply.

The engine (durable_rules) fires ``then`` and ``otherwise``; the static evaluator uses the same
conditions; both list what a waiting rule needs through :func:`waiting_for`.
"""

from __future__ import annotations

from typing import Any

from pathway.definition import conditions as C
from pathway.definition.pathway import Rule

__all__ = ["relevant_unknowns", "asks_for_data", "waiting_for"]


def relevant_unknowns(cond: C.Cond, facts: dict[str, Any]) -> list[str]:
    """The input fields not recorded in ``facts`` whose values could still change the value of ``cond``.

    Empty when ``cond`` is already true or false. Tests on derived facts are never listed (a
    derived fact is made by rules, not recorded).
    """
    if C.evaluate(cond, facts) is not None:
        return []
    if isinstance(cond, C.Cmp):
        return [] if cond.derived or cond.op == "present" else [cond.field]
    if isinstance(cond, C.Always):
        return []
    out: list[str] = []
    for item in cond.items:
        out += relevant_unknowns(item, facts)
    return list(dict.fromkeys(out))


def asks_for_data(rule: Rule) -> bool:
    """A rule that lists missing data while it waits: it names ``requires``, or computes with values."""
    return bool(rule.requires) or bool(rule.computes_with("then"))


def waiting_for(rule: Rule, facts: dict[str, Any], derived: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The missing values a due rule that took no branch is waiting for, in the rule's order.

    ``facts`` are the snapshot and the derived facts; ``derived`` names the derived facts (never
    listed). ``when`` unknown: the unknowns that could decide it, then what each branch still
    needs; ``when`` true: what ``then`` computes with; ``when`` false: the ``requires`` of
    ``otherwise`` (only when the rule has ``otherwise`` effects).
    """
    if not asks_for_data(rule):
        return ()
    value = C.evaluate(rule.when, facts)
    out: list[str] = []
    if value is None:
        out += relevant_unknowns(rule.when, facts)
    if value is not False:
        out += [f for f in rule.computes_with("then") if facts.get(f) is None]
    if value is not True and (rule.otherwise or rule.if_missing):
        out += [f for f in rule.requires if facts.get(f) is None]
    return tuple(f for f in dict.fromkeys(out) if f not in derived)
