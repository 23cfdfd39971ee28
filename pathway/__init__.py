"""asuc-pathway: clinical pathways as declarative rule files, run on durable_rules.

    >>> from pathway import load_pathway
    >>> pw = load_pathway("asuc")
    >>> s = pw.start({"id": "p1", "weight_kg": 70})
    >>> result = s.observe({"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104})
    >>> result["state"]
    'iv_steroids'

The names below are loaded on first use, so ``import pathway`` (or any lower layer such as
``pathway.definition.units``) does not start durable_rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pathway.core.version import __version__

if TYPE_CHECKING:
    from pathway.core.errors import (
        DefinitionError,
        Diagnostic,
        EngineError,
        EngineLimitError,
        InputError,
        PathwayError,
        SessionConflict,
        SessionError,
        TransitionRefused,
    )
    from pathway.runtime.api import Pathway, load_pathway, run_case
    from pathway.runtime.fhir import events_from_bundle, observe_fhir
    from pathway.runtime.result import RESULT_KEYS
    from pathway.runtime.session import Session
    from pathway.runtime.store import SessionNotFound, SessionStore, StoreUnavailable

#: public name -> module that defines it
_EXPORTS = {
    "Pathway": "pathway.runtime.api",
    "load_pathway": "pathway.runtime.api",
    "run_case": "pathway.runtime.api",
    "Session": "pathway.runtime.session",
    "observe_fhir": "pathway.runtime.fhir",
    "events_from_bundle": "pathway.runtime.fhir",
    "RESULT_KEYS": "pathway.runtime.result",
    "SessionStore": "pathway.runtime.store",
    "SessionNotFound": "pathway.runtime.store",
    "StoreUnavailable": "pathway.runtime.store",
    "PathwayError": "pathway.core.errors",
    "DefinitionError": "pathway.core.errors",
    "InputError": "pathway.core.errors",
    "SessionError": "pathway.core.errors",
    "SessionConflict": "pathway.core.errors",
    "EngineError": "pathway.core.errors",
    "EngineLimitError": "pathway.core.errors",
    "TransitionRefused": "pathway.core.errors",
    "Diagnostic": "pathway.core.errors",
}

__all__ = [
    "Pathway", "load_pathway", "run_case", "Session", "observe_fhir", "events_from_bundle",
    "RESULT_KEYS", "SessionStore", "SessionNotFound",
    "PathwayError", "DefinitionError", "InputError", "SessionError", "SessionConflict", "EngineError", "EngineLimitError",
    "TransitionRefused", "Diagnostic", "StoreUnavailable", "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pathway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
