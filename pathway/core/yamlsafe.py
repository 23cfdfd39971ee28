"""Safe YAML loading that remembers where every value came from.

- Only plain data: mappings, sequences, strings, numbers, ``true``/``false``/``null``.
  No YAML tags of any kind (``!!str``, ``!foo``, on scalars, lists or mappings), no implicit
  ``yes``/``no``/``on``/``off`` booleans, no implicit dates. Numbers are YAML 1.2's: no base 60
  (``1:30`` is a text, not 90), no leading-zero octal (``017`` is 17), no ``_`` separators.
- Duplicate keys are errors (PyYAML would silently keep the last one).
- Bounded: a file's size, its nesting depth, the number of aliases and the size and depth of what
  they expand to (a "billion laughs" file is refused while it is being read, not after), the
  length of one text and of one number are all limited (:class:`Limits`); rule files also have
  their numbers checked (finite, within a plausible magnitude). A control character anywhere,
  even inside a comment, is a located error. Every problem is a :class:`YamlProblem` with a
  located diagnostic, never a raw exception.
- :class:`Located` maps a path of keys/indexes to the (line, column) of that node,
  1-based, so validation errors can point at ``file:line:col``.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pathway.core.errors import Diagnostic, suggest
from pathway.core.yamldata import (
    DOCUMENT_LIMITS,
    MAX_NUMBER,
    MIN_NUMBER,
    RULE_FILE_LIMITS,
    Limits,
    Located,
    Path_,
    YamlProblem,
    number_problem,
)

__all__ = ["Located", "Limits", "DOCUMENT_LIMITS", "RULE_FILE_LIMITS", "MAX_NUMBER", "MIN_NUMBER", "number_problem",
           "load_yaml_text", "load_yaml_file", "read_text_file", "YamlProblem", "validation_diagnostics", "keys_at"]


def load_yaml_text(text: str, file: str, limits: Limits = DOCUMENT_LIMITS) -> Located:
    """Parse one YAML document; raise :class:`YamlProblem` with a located diagnostic (the parsers live in
    :mod:`pathway.core.yamlparse`, imported on the first parse: a process that reads no YAML never imports them)."""
    from pathway.core.yamlparse import load_yaml_text as parse

    return parse(text, file, limits)


def read_text_file(path: str, display: str, limits: Limits = DOCUMENT_LIMITS) -> str:
    """The UTF-8 text of a file, read no further than the size limit allows; YamlProblem when it
    is too large (PW120), not UTF-8 (PW100) or cannot be read (PW242)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise YamlProblem(Diagnostic(display, 1, 1, "PW242", f"the file cannot be read: {reason}")) from None
    if len(data) > limits.max_bytes:
        raise YamlProblem(Diagnostic(display, 1, 1, "PW120", f"the file is larger than {limits.max_bytes:,} bytes"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlProblem(Diagnostic(display, line, col, "PW100", f"file is not UTF-8 text: {exc.reason}")) from None


def load_yaml_file(path: str, display: str, limits: Limits = DOCUMENT_LIMITS) -> Located:
    """Read and parse one YAML file within ``limits``; raise :class:`YamlProblem` with a located diagnostic."""
    return load_yaml_text(read_text_file(path, display, limits), display, limits)


def _types_at(tp: Any, loc: tuple[Any, ...]) -> list[Any]:
    """The types a value at ``loc`` inside a value of type ``tp`` may have (unions give several)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _types_at(get_args(tp)[0], loc)
    if origin in (Union, UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if loc and isinstance(loc[0], str):
            named = [a for a in members if getattr(a, "__name__", None) == loc[0]]
            if named:  # pydantic names the union member it tried in the location
                return _types_at(named[0], loc[1:])
        return [t for a in members for t in _types_at(a, loc)]
    if not loc:
        return [tp]
    head, rest = loc[0], loc[1:]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if head in (name, info.alias):
                return _types_at(info.annotation, rest)
        return []
    if origin is dict:
        return _types_at(get_args(tp)[1], rest)
    if origin in (list, tuple, set, frozenset) and isinstance(head, int):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return _types_at(args[min(head, len(args) - 1)], rest) if args else []
    return []


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at ``loc`` of a ``model`` document may have: the hints for an unknown key there."""
    keys: set[str] = set()
    for tp in _types_at(model, loc):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys.update(info.alias or name for name, info in tp.model_fields.items())
    return sorted(keys)


def validation_diagnostics(doc: Located, path: Path_, exc: ValidationError, model: type[BaseModel]) -> list[Diagnostic]:
    """Turn the ValidationError of ``model`` on the data at ``path`` into located diagnostics.

    An unknown key is answered with the closest key that ``model`` allows at that place.
    """
    out: list[Diagnostic] = []
    for err in exc.errors():
        raw = tuple(err["loc"])
        loc = tuple(x for x in raw if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
        loc = tuple(x[:-1] if isinstance(x, str) and x.endswith("_") and x[:-1] in ("for", "from", "in") else x for x in loc)
        where = path + loc
        if err["type"] == "extra_forbidden":
            out.append(doc.diag(where, "PW110", f"unknown key '{loc[-1]}'", suggest(str(loc[-1]), keys_at(model, raw[:-1])),
                                key=True))
        elif err["type"] == "missing":
            out.append(doc.diag(where[:-1], "PW111", f"missing required key '{loc[-1]}'"))
        else:
            what = ".".join(map(str, loc)) or "value"
            hint = None
            if err["type"] == "literal_error" and isinstance(err.get("input"), str):
                # "Input should be 'start', 'active' or 'terminal'": suggest the closest allowed value.
                hint = suggest(err["input"], re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", ""))))
            out.append(doc.diag(where, "PW112", f"{what}: {err['msg']}", hint))
    return out
