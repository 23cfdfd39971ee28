"""The move policy: which of the transitions asked for in one evaluation the patient takes.

The highest priority wins; among equal priorities the rule listed first in the pathway wins when
they agree on the target; equal priorities asking for different states are a conflict, and no
move is taken (the session refuses the event; the static checks report the overlap). The session
and the static evaluator both decide through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Move", "top_moves", "is_conflict", "choose"]


@dataclass(frozen=True)
class Move:
    """A transition asked for by one firing."""

    rule: str
    branch: str
    target: str
    priority: int
    order: int  # position of the rule in the pathway (first wins among equal moves)


def top_moves(moves: Sequence[Move]) -> list[Move]:
    """The moves at the highest priority asked for, in pathway order (empty when no rule moves)."""
    if not moves:
        return []
    best = max(m.priority for m in moves)
    return sorted((m for m in moves if m.priority == best), key=lambda m: m.order)


def is_conflict(moves: Sequence[Move]) -> bool:
    """True when moves of equal top priority ask for different states."""
    return len({m.target for m in top_moves(moves)}) > 1


def choose(moves: Sequence[Move]) -> Move | None:
    """The move taken, or None (no move, or a conflict)."""
    top = top_moves(moves)
    if not top or is_conflict(moves):
        return None
    return top[0]
