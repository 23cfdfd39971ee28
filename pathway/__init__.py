"""asuc-pathway: clinical pathways as declarative rule files, run on durable_rules.

    >>> from pathway import load_pathway
    >>> pw = load_pathway("asuc")
    >>> s = pw.start({"id": "p1", "weight_kg": 70})
    >>> result = s.observe({"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104})
    >>> result["state"]
    'iv_steroids'
"""

from pathway.runtime.api import Pathway, load_pathway, run_case
from pathway.core.errors import (
    DefinitionError,
    Diagnostic,
    EngineError,
    EngineLimitError,
    InputError,
    PathwayError,
    TransitionRefused,
)
from pathway.runtime.session import RESULT_KEYS, Session
from pathway.runtime.store import SessionNotFound, SessionStore

__version__ = "0.1.0"

__all__ = [
    "Pathway",
    "Session",
    "SessionStore",
    "SessionNotFound",
    "load_pathway",
    "run_case",
    "RESULT_KEYS",
    "PathwayError",
    "DefinitionError",
    "InputError",
    "EngineError",
    "EngineLimitError",
    "TransitionRefused",
    "Diagnostic",
    "__version__",
]
