"""Safe YAML loading that remembers where every value came from.

- Only plain data: mappings, sequences, strings, numbers, ``true``/``false``/``null``.
  No object tags, no implicit ``yes``/``no``/``on``/``off`` booleans, no implicit dates.
- Duplicate keys are errors (PyYAML would silently keep the last one).
- :class:`Located` maps a path of keys/indexes to the (line, column) of that node,
  1-based, so validation errors can point at ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from pathway.core.errors import Diagnostic, suggest

__all__ = ["Located", "load_yaml_text", "load_yaml_file", "YamlProblem", "validation_diagnostics", "keys_at"]

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
        super().__init__(str(diagnostic))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-like booleans and no implicit timestamps."""


# Rebuild the implicit resolvers without bool (yes/no/on/off) and timestamp.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def _build(node: yaml.Node, path: Path_, out: Located, loader: _StrictLoader) -> Any:
    out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem(Diagnostic(out.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                             "PW100", "a mapping key must be a plain scalar"))
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlProblem(Diagnostic(out.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                             "PW100", "YAML merge keys ('<<') are not allowed in rule files"))
            key = loader.construct_object(key_node)
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                raise YamlProblem(Diagnostic(out.file, kpos[0], kpos[1], "PW101", f"duplicate key '{key}'"))
            out.key_positions[path + (key,)] = kpos
            result[key] = _build(value_node, path + (key,), out, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), out, loader) for i, item in enumerate(node.value)]
    if node.tag not in (
        "tag:yaml.org,2002:str",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
    ):
        raise YamlProblem(Diagnostic(out.file, node.start_mark.line + 1, node.start_mark.column + 1,
                                     "PW100", f"tag '{node.tag}' is not allowed (plain data only)"))
    return loader.construct_object(node)


def load_yaml_text(text: str, file: str) -> Located:
    """Parse one YAML document; raise :class:`YamlProblem` with a located diagnostic."""
    loader = _StrictLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            message = f"YAML syntax error: {exc.problem or exc.context}"
            ctx = exc.context_mark
            if exc.problem and exc.context and ctx is not None and ctx.line + 1 != line:
                # e.g. an unclosed '[': the parser notices on a later line; name where it opened.
                message += f" ({exc.context} that starts at line {ctx.line + 1}, column {ctx.column + 1})"
            raise YamlProblem(Diagnostic(file, line, col, "PW100", message)) from None
        except yaml.YAMLError as exc:
            raise YamlProblem(Diagnostic(file, 1, 1, "PW100", f"YAML error: {exc}")) from None
        out = Located(data=None, file=file)
        if node is None:
            out.data = None
            return out
        out.data = _build(node, (), out, loader)
        return out
    finally:
        loader.dispose()


def load_yaml_file(path: str, display: str) -> Located:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise YamlProblem(Diagnostic(display, 1, 1, "PW100", f"file is not UTF-8 text: {exc.reason}")) from None
    return load_yaml_text(text, display)


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
