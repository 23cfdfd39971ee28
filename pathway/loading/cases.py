"""Reading case files (YAML or JSON, from a file or standard input) with the position of every value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pathway.core.errors import Diagnostic, InputError, display_path
from pathway.core.yamlsafe import Located, YamlProblem, load_yaml_file, load_yaml_text
from pathway.definition.case import case_problem

__all__ = ["load_case_file", "load_case_text", "read_case_document"]


def _checked(doc: Located) -> tuple[Located, dict[str, Any]]:
    problem = case_problem(doc.data)
    if problem is not None:
        path, code, message = problem
        raise InputError([doc.diag(path, code, message, key=bool(path))])
    return doc, doc.data


def load_case_file(path: str | os.PathLike[str]) -> tuple[Located, dict[str, Any]]:
    """A case file with its positions; InputError (PW400) when it is missing, not YAML or not a case."""
    shown = display_path(path)
    if not Path(path).is_file():
        raise InputError([Diagnostic(shown, 0, 0, "PW400", "case file not found")])
    try:
        return _checked(load_yaml_file(os.fspath(path), shown))
    except YamlProblem as exc:
        raise InputError([exc.diagnostic]) from None


def load_case_text(text: str, name: str) -> tuple[Located, dict[str, Any]]:
    """A case given as text (e.g. standard input), shown in diagnostics as ``name``."""
    try:
        return _checked(load_yaml_text(text, name))
    except YamlProblem as exc:
        raise InputError([exc.diagnostic]) from None


def read_case_document(doc: Located) -> tuple[Located, dict[str, Any]]:
    """A document already read (with its positions) checked as a case; InputError (PW400) when it is not one."""
    return _checked(doc)
