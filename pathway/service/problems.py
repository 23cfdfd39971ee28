"""Every error the service answers is ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``,
``detail`` and ``diagnostics``, the located diagnostics of the library (``code``, ``file``, ``line``, ``col``,
``path``, ``message``, ``hint``).

A diagnostic's ``path`` is where the refused value is: a key path into the request body for the service's own
checks (``body.patient.id``), the session's timeline for the library's (``events[4].crp_mg_l``), the resource
and element for FHIR input (``Bundle.entry[3].resource.valueQuantity``). ``file``, ``line`` and ``col`` are
those of the library's diagnostic (a line of 0: no place in a file).
"""

from __future__ import annotations

import json
from typing import Any

from pathway.core.errors import Diagnostic, PathwayError

__all__ = ["PROBLEM_TYPE", "MEDIA_TYPE", "Problem", "problem_body", "problem_bytes", "diagnostic_dict"]

#: the ``type`` URIs of the problems (relative: resolved against the service's URL)
PROBLEM_TYPE = "/problems/"
MEDIA_TYPE = "application/problem+json"


def diagnostic_dict(d: Diagnostic) -> dict[str, Any]:
    """A diagnostic as a problem lists it."""
    path = d.file if not d.line else None
    # a located diagnostic keeps the path it was made from at the head of its message (``events[2].x: ...``)
    if d.line and ": " in d.message:
        head = d.message.split(": ", 1)[0]
        if " " not in head:
            path = head
    return {"code": d.code, "file": d.file, "line": d.line, "col": d.col, "path": path, "message": d.message,
            "hint": d.hint}


class Problem(Exception):
    """An error answered as problem+json; ``kind`` names its ``type`` (``/problems/<kind>``)."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "",
                 diagnostics: list[Diagnostic] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or title)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.diagnostics = list(diagnostics or [])
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, status: int, kind: str, title: str, exc: PathwayError) -> Problem:
        diagnostics: list[Diagnostic] = list(getattr(exc, "diagnostics", []) or [])
        detail = "; ".join(d.message for d in diagnostics[:3]) if diagnostics else str(exc)
        return cls(status, kind, title, detail[:2000], diagnostics)

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.kind, self.title, self.detail,
                            [diagnostic_dict(d) for d in self.diagnostics])


def problem_body(status: int, kind: str, title: str, detail: str = "",
                 diagnostics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": PROBLEM_TYPE + kind, "title": title, "status": status, "detail": detail,
            "diagnostics": list(diagnostics or [])}


def problem_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
