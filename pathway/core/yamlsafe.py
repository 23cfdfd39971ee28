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
from typing import Any

import yaml

from pathway.core.errors import Diagnostic, suggest

__all__ = ["Located", "load_yaml_text", "load_yaml_file", "YamlProblem"]

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

    def diag(self, path: Path_, code: str, message: str, hint: str | None = None, *, key: bool = False) -> Diagnostic:
        line, col = self.pos(path, key=key)
        return Diagnostic(self.file, line, col, code, message, hint)


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


def _known_keys() -> list[str]:
    from pathway.definition import effects
    from pathway.definition import model
    from pathway.authoring import scenario  # local: these import this module

    keys: set[str] = set()
    for module in (model, effects, scenario):
        for obj in vars(module).values():
            fields = getattr(obj, "model_fields", None)
            if isinstance(fields, dict):
                for name, info in fields.items():
                    keys.add(info.alias or name)
    return sorted(keys)


def validation_diagnostics(doc: Located, path: Path_, exc: Any) -> list[Diagnostic]:
    """Turn a pydantic ValidationError on the data at ``path`` into located diagnostics."""
    out: list[Diagnostic] = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
        loc = tuple(x[:-1] if isinstance(x, str) and x.endswith("_") and x[:-1] in ("for", "from", "in") else x for x in loc)
        where = path + loc
        if err["type"] == "extra_forbidden":
            out.append(doc.diag(where, "PW110", f"unknown key '{loc[-1]}'", suggest(str(loc[-1]), _known_keys()), key=True))
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
