"""Threshold mutations: one parameter nudged one step, or one comparison's strictness flipped.

A mutation is applied while a pathway loads (see ``load_definition(..., mutation=...)``); the
scenario library is then rerun against the mutant (``pathway test --mutate``). A mutation that no
scenario notices marks a threshold the scenarios do not pin down: moving it would change care and
nothing would fail.

Comparison sites are the numeric comparisons written in conditions (``gt``, ``gte``, ``lt``,
``lte`` and the bounds of ``between``), each at the position of its operator in its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

__all__ = ["Mutation", "Site", "STRICTNESS_FLIP", "nudge", "step_of"]

#: The operator each comparison becomes when its strictness is flipped.
STRICTNESS_FLIP = {"gt": "gte", "gte": "gt", "lt": "lte", "lte": "lt"}


@dataclass(frozen=True)
class Site:
    """A numeric comparison written in a condition: ``field op value`` at ``file:line:col``."""

    file: str
    line: int
    col: int
    field: str
    op: str
    value: Any
    param: str | None = None
    #: what the condition belongs to: a rule id, ``state <id>`` (a watchdog), ``field <name>`` (a
    #: computed input) or an invariant id
    owner: str = ""

    @property
    def where(self) -> tuple[str, int, int]:
        return (self.file, self.line, self.col)

    def text(self) -> str:
        target = f"${self.param}" if self.param else repr(self.value)
        return f"{self.field} {self.op} {target}"


def step_of(value: float | int) -> float | int:
    """One step of a threshold: 1 for a whole number, else one unit of its last written decimal (0.1 at least)."""
    if isinstance(value, int):
        return 1
    exponent = Decimal(repr(value)).as_tuple().exponent
    decimals = max(1, -exponent) if isinstance(exponent, int) else 1
    return float(Decimal(1).scaleb(-decimals))


def nudge(value: float | int, direction: int) -> float | int:
    """``value`` moved one step (``direction`` +1 or -1), rounded to the step's decimals."""
    step = step_of(value)
    if isinstance(value, int):
        return value + direction * int(step)
    decimals = max(1, -int(Decimal(repr(step)).as_tuple().exponent))
    return round(value + direction * step, decimals)


@dataclass(frozen=True)
class Mutation:
    """One mutant: ``parameter`` nudged by ``direction`` steps, or the comparison at ``site`` flipped."""

    kind: Literal["parameter", "operator"]
    parameter: str | None = None
    direction: int = 0
    site: Site | None = None

    @property
    def id(self) -> str:
        if self.kind == "parameter":
            return f"${self.parameter} {'+' if self.direction > 0 else '-'}1 step"
        assert self.site is not None
        return f"{self.site.file}:{self.site.line}:{self.site.col} {self.site.op}->{STRICTNESS_FLIP[self.site.op]}"

    def describe(self, params: dict[str, Any] | None = None) -> str:
        if self.kind == "parameter":
            assert self.parameter is not None
            if params and isinstance(params.get(self.parameter), (int, float)):
                old = params[self.parameter]
                return f"${self.parameter} {old} -> {nudge(old, self.direction)}"
            return self.id
        assert self.site is not None
        s = self.site
        target = f"${s.param}" if s.param else repr(s.value)
        owner = f" ({s.owner})" if s.owner else ""
        return f"{s.file}:{s.line}{owner}: {s.field} {s.op} {target} -> {s.field} {STRICTNESS_FLIP[s.op]} {target}"

    def operator_at(self, file: str, line: int, col: int, op: str) -> str:
        """The operator to compile for the comparison at ``file:line:col`` (flipped when this mutant targets it)."""
        if self.kind == "operator" and self.site is not None and self.site.where == (file, line, col):
            return STRICTNESS_FLIP.get(op, op)
        return op
