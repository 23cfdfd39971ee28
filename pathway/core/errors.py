"""Exception tree and compiler-style diagnostics.

Every problem found in a rule, pathway, profile or case file becomes a
:class:`Diagnostic`: one line ``file:line:col: message (did you mean 'x'?) [CODE]``.
A load collects all diagnostics and raises them together in a
:class:`DefinitionError`; input errors at run time (a bad event or case) raise
:class:`InputError`, which also carries diagnostics and never changes a session. A dumped or
stored session that cannot be trusted raises :class:`SessionError`, whose diagnostics name the
key of the document (``state``, ``events[3].crp_mg_l``).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from pathway.core.codes import CODES
from pathway.core.text import one_line

__all__ = [
    "Diagnostic",
    "PathwayError",
    "DefinitionError",
    "InputError",
    "SessionError",
    "SessionConflict",
    "TransitionRefused",
    "EngineError",
    "EngineLimitError",
    "suggest",
]


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """Closest candidate to ``name`` for a "did you mean" hint, or None."""
    matches = difflib.get_close_matches(str(name), sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def display_path(path: str | os.PathLike[str] | None) -> str:
    """A path as shown in diagnostics: relative to the working folder when under it."""
    if path is None:
        return "<input>"
    text = os.fspath(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:  # another drive on Windows
        return text
    return text if rel.startswith("..") else rel


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, located in a file."""

    file: str
    line: int
    col: int
    code: str
    message: str
    hint: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"diagnostic code {self.code!r} is not in the registry (pathway.core.codes)")

    def __str__(self) -> str:
        hint = f" (did you mean '{self.hint}'?)" if self.hint else ""
        # a diagnostic with no line names a key or a whole file, not a place in it
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        # one line, whatever the quoted value holds: a diagnostic cannot print a fake second one
        return one_line(f"{where}: {self.message}{hint} [{self.code}]")

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class PathwayError(Exception):
    """Base of every error this package raises on purpose."""


class _DiagnosticsError(PathwayError):
    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]


class DefinitionError(_DiagnosticsError):
    """A pathway, rule or profile file is wrong; all problems of the load are listed."""


class InputError(_DiagnosticsError):
    """A case file or an API event is wrong; nothing was applied.

    ``event`` is the index of the refused event when a whole course was run (None: the patient
    or the case itself).
    """

    event: int | None = None


class SessionError(_DiagnosticsError):
    """A dumped or stored session is refused: not a session document, malformed, dumped under other
    rules (version, profile, rule files or parameters), or recording an outcome its events do not
    produce. Nothing was restored or saved. Each diagnostic names the key of the document in its
    ``file`` (``state``, ``events[3].crp_mg_l``) or, for a store, the row."""


class SessionConflict(SessionError):
    """``SessionStore.save`` refused: the stored session changed since this one was loaded (another
    writer saved, created or deleted it). Nothing was saved: load again, apply the event again, save.

    ``expected`` is the revision this session was loaded at (None: it was never stored), ``current``
    the revision stored now (None: no row).
    """

    def __init__(self, diagnostics: list[Diagnostic], expected: int | None, current: int | None):
        super().__init__(diagnostics)
        self.expected, self.current = expected, current


class TransitionRefused(PathwayError):
    """A rule asked for a move that is not an edge of the state graph; nothing was applied."""

    def __init__(self, rule: str, source: str, target: str):
        self.rule, self.source, self.target = rule, source, target
        super().__init__(
            f"rule '{rule}' asked for transition {source} -> {target}, "
            "which is not an edge of the pathway graph; nothing was applied [PW501]"
        )


class EngineError(PathwayError):
    """The rules engine failed while evaluating; nothing was applied."""


class EngineLimitError(DefinitionError):
    """A compiled ruleset would exceed a measured limit of durable_rules."""
