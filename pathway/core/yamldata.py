"""What a YAML load gives (:class:`Located`: the data and where each node came from), its problems and its
limits: shared by :mod:`pathway.core.yamlsafe` (the loading interface and validation messages) and
:mod:`pathway.core.yamlparse` (the parsers, imported on the first parse)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from pathway.core.errors import Diagnostic

__all__ = ["Located", "Limits", "DOCUMENT_LIMITS", "RULE_FILE_LIMITS", "MAX_NUMBER", "MIN_NUMBER", "number_problem",
           "YamlProblem", "Path_"]

Path_ = tuple[Any, ...]


@dataclass
class Located:
    """Parsed data plus the position of each node (keyed by path)."""

    data: Any
    file: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def pos(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Position of the node at ``path`` (or of its key), falling back to the nearest parent."""
        path = tuple(path)
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def locate(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """Point diagnostics whose file is a path into this document (``events[2].crp_mg_l``) at
        that value's line and column, keeping the path in the message."""
        return [Diagnostic(self.file, *self.pos(_path_of(d.file)), d.code, f"{d.file}: {d.message}", d.hint)
                for d in diagnostics]

    def diag(self, path: Path_, code: str, message: str, hint: str | None = None, *, key: bool = False) -> Diagnostic:
        line, col = self.pos(path, key=key)
        return Diagnostic(self.file, line, col, code, message, hint)


def _path_of(where: str) -> Path_:
    """``'events[2].crp_mg_l'`` -> ``('events', 2, 'crp_mg_l')``"""
    out: list[Any] = []
    for part in where.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        if not m:
            out.append(part)
            continue
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)


class YamlProblem(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        #: values composed before the problem was found (what reading the file cost)
        self.nodes = 0
        super().__init__(str(diagnostic))


#: The largest magnitude a number in a rule file may have, and the smallest one other than 0
#: (PW125). No threshold, dose, rank or count comes near either, and every number between them
#: reaches durable_rules in a form it reads exactly (see :mod:`pathway.runtime.compile`).
MAX_NUMBER = 1e12
MIN_NUMBER = 1e-12
#: The longest number literal that is read (Python refuses integers of more than 4,300 digits).
_MAX_NUMBER_CHARS = 100


@dataclass(frozen=True)
class Limits:
    """What one YAML document may hold; beyond a limit it is refused with a located diagnostic.

    ``max_nodes`` and the depth count values after expanding aliases, so an alias bomb is stopped
    while it is being composed; ``numbers`` checks every number (finite, PW124; within
    :data:`MIN_NUMBER`..:data:`MAX_NUMBER`, PW125).
    """

    max_bytes: int
    max_depth: int
    max_aliases: int
    max_nodes: int
    max_string: int
    numbers: bool
    #: how a message names what ``max_nodes`` counts
    scope: str = "in one file"
    #: the longest text libyaml composes all at once (None: ``max_nodes``); a text that composes to more than
    #: ``max_nodes`` values is then read again by the checking loader, which reports it
    compose_chars: int | None = None


#: Rule, pathway, fields, sources, hazards, invariants and profile files (the largest shipped
#: file is ~50 KB with ~1,800 values, nested 9 levels deep, its longest text ~900 characters).
RULE_FILE_LIMITS = Limits(max_bytes=1_000_000, max_depth=64, max_aliases=1_000, max_nodes=100_000,
                          max_string=20_000, numbers=True)
#: Any other document read as YAML (case files, scenarios): the same protections, larger sizes,
#: numbers left to the reader (events have their own plausible ranges).
DOCUMENT_LIMITS = Limits(max_bytes=16_000_000, max_depth=64, max_aliases=1_000, max_nodes=4_000_000,
                         max_string=1_000_000, numbers=False)

def _shown_number(value: int | float) -> str:
    if isinstance(value, float):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan" if math.isnan(value) else repr(value))
    text = str(value)
    return text if len(text) <= 20 else f"{text[:8]}... ({len(text.lstrip('-'))} digits)"


def number_problem(value: Any) -> tuple[str, str] | None:
    """``(code, message)`` when ``value`` is a number a rule file may not hold, else None.

    Numbers are finite (PW124) and 0 or of a magnitude from :data:`MIN_NUMBER` to
    :data:`MAX_NUMBER` (PW125). Booleans and texts are not numbers here.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "PW124", f"{_shown_number(value)} is not a finite number; rule files hold finite numbers only"
    magnitude = abs(value)
    if magnitude > MAX_NUMBER or 0 < magnitude < MIN_NUMBER:
        return "PW125", (f"number {_shown_number(value)} is out of range: a number in a rule file is 0 or of a "
                         f"magnitude from {MIN_NUMBER:g} to {MAX_NUMBER:g}")
    return None
