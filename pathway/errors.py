"""Alias of :mod:`pathway.core.errors`, kept for code written against 0.1.0 (``from pathway.errors
import PathwayError``). New code imports the errors from :mod:`pathway` itself."""

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
    display_path,
    suggest,
)

__all__ = ["Diagnostic", "PathwayError", "DefinitionError", "InputError", "SessionError", "SessionConflict",
           "TransitionRefused", "EngineError",
           "EngineLimitError", "suggest", "display_path"]
