"""The YAML parsers behind :func:`pathway.core.yamlsafe.load_yaml_text` (see that module for what they accept):
PyYAML's pure loader, and libyaml's where present, with the same data, marks and errors. Imported on the first
parse only, so that a process that reads no rule file (a start from the cache of loaded pathways) never imports
PyYAML."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from pathway.core.errors import Diagnostic
from pathway.core.yamldata import _MAX_NUMBER_CHARS, DOCUMENT_LIMITS, Limits, Located, Path_, YamlProblem, number_problem

__all__ = ["load_yaml_text"]

_SCALAR_TAGS = frozenset({
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
})
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_STR_TAG, _NULL_TAG, _BOOL_TAG = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
#: the only texts the boolean resolver accepts (YAML 1.2's), as SafeConstructor reads them
_BOOLS = {"true": True, "false": False}



def _at(file: str, mark: Any, code: str, message: str) -> YamlProblem:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return YamlProblem(Diagnostic(file, line, col, code, message))


class _Bounded:
    """The composer of both loaders: refuses tags and keeps every document within its
    :class:`Limits` while composing it (before anything is expanded or built)."""

    if TYPE_CHECKING:  # provided by the parser each loader is built on
        def peek_event(self) -> Any: ...

    def _bound(self, file: str, limits: Limits) -> None:
        self._file = file
        self._limits = limits
        self._depth = 0
        self._aliases = 0
        self._open: list[str] = []  # anchors of the collections being composed (an alias to one is recursive)
        self._size: dict[int, int] = {}  # id(node) -> number of values once aliases are expanded
        self._height: dict[int, int] = {}  # id(node) -> nesting depth once aliases are expanded

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        event = self.peek_event()
        limits = self._limits
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _at(self._file, event.start_mark, "PW122",
                          f"alias '*{event.anchor}' refers to the value that contains it (a recursive alias)")
            self._aliases += 1
            if self._aliases > limits.max_aliases:
                raise _at(self._file, event.start_mark, "PW122",
                          f"more than {limits.max_aliases:,} aliases in one file")
            node: yaml.Node = super().compose_node(parent, index)  # type: ignore[misc]
            return node
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _at(self._file, event.start_mark, "PW100",
                      f"YAML tag '{tag}' is not allowed (rule files hold plain data only)")
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        anchor = getattr(event, "anchor", None)
        if collection:
            self._depth += 1
            if self._depth > limits.max_depth:
                raise _at(self._file, event.start_mark, "PW121", f"nesting deeper than {limits.max_depth} levels")
            if anchor is not None:
                self._open.append(anchor)
        try:
            node = super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            if collection:
                self._depth -= 1
                if anchor is not None:
                    self._open.pop()
        self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        """Size and depth of ``node`` with its aliases expanded, from those of its children."""
        limits = self._limits
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > limits.max_string:
                raise _at(self._file, node.start_mark, "PW123",
                          f"text of {len(node.value):,} characters; the limit is {limits.max_string:,}")
            self._size[id(node)], self._height[id(node)] = 1, 0
            return
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value
        size = 1 + sum(self._size[id(c)] for c in children)
        height = 1 + max((self._height[id(c)] for c in children), default=0)
        if size > limits.max_nodes:
            if self._aliases:
                raise _at(self._file, node.start_mark, "PW122",
                          f"this value expands through its aliases to more than {limits.max_nodes:,} values")
            raise _at(self._file, node.start_mark, "PW120", f"more than {limits.max_nodes:,} values {limits.scope}")
        if height > limits.max_depth:
            raise _at(self._file, node.start_mark, "PW122",
                      f"this value nests deeper than {limits.max_depth} levels once its aliases are expanded")
        self._size[id(node)], self._height[id(node)] = size, height


class _StrictLoader(_Bounded, yaml.SafeLoader):
    """SafeLoader (pure Python) with YAML 1.2-like booleans and no implicit timestamps; its error
    messages are the ones diagnostics show."""

    def __init__(self, text: str, file: str, limits: Limits):
        yaml.SafeLoader.__init__(self, text)
        self._bound(file, limits)


# Rebuild the implicit resolvers with YAML 1.2's booleans and numbers: YAML 1.1's yes/no/on/off
# booleans, timestamps, base-60 numbers (``1:30`` read as 90), leading-zero octals (``017`` read as 15),
# binary and ``_`` separators are gone, so a value is never silently read as another number.
_NUMBER_FREE = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:float")
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _NUMBER_FREE]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"),
)


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    """A YAML 1.2 integer: decimal (``017`` is 17), ``0o`` octal or ``0x`` hexadecimal."""
    text = node.value
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)

_Loader = type[_StrictLoader] | Any
_FastLoader: _Loader = None
def _libyaml_parser() -> Any:
    try:
        from yaml import _yaml
    except ImportError:  # PyYAML without libyaml: the pure Python parser does it all
        return None
    return getattr(_yaml, "CParser", None)


_CParser: Any = _libyaml_parser()
if _CParser is not None:
    class _LibyamlLoader(_Bounded, yaml.composer.Composer, yaml.constructor.SafeConstructor,
                         yaml.resolver.Resolver, _CParser):  # type: ignore[misc]
        """The same loader on libyaml's parser (about four times faster); the composer, the
        resolvers and the limits are the ones above."""

        yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers
        yaml_constructors = _StrictLoader.yaml_constructors

        def __init__(self, text: str, file: str, limits: Limits):
            _CParser.__init__(self, text)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._bound(file, limits)

    _FastLoader = _LibyamlLoader

def _libyaml_version() -> tuple[int, ...]:
    try:
        from yaml import _yaml
        return tuple(_yaml.get_version())
    except (ImportError, AttributeError):  # pragma: no cover - PyYAML without libyaml
        return (0,)


_ComposedLoader: Any = None
# libyaml from 0.2.5 on refuses nesting beyond 1,000 levels while it parses, so its (recursive)
# composer never runs deep; older versions compose in Python only.
if _CParser is not None and _libyaml_version() >= (0, 2, 5):
    class _LibyamlComposedLoader(yaml.constructor.SafeConstructor, yaml.resolver.Resolver,
                                 _CParser):  # type: ignore[misc]
        """libyaml parses and composes (the fastest way): for files without tags or anchors, which
        is every shipped rule file; the resolvers and constructors are the ones above."""

        yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers
        yaml_constructors = _StrictLoader.yaml_constructors

        def __init__(self, text: str):
            _CParser.__init__(self, text)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._tags: dict[str, str] = {}

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            """The resolvers' tag, remembered for each text of a plain scalar (which alone decides it:
            this loader has no path resolvers)."""
            if kind is yaml.ScalarNode and implicit[0]:
                tag = self._tags.get(value)
                if tag is None:
                    tag = self._tags[value] = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
                return tag
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

        # no path resolvers: nothing to follow while libyaml composes (what Resolver does without them)
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    assert not _LibyamlComposedLoader.yaml_path_resolvers
    _ComposedLoader = _LibyamlComposedLoader

#: Where a tag (``!``, ``!!str``, ``!foo``) or an anchor (``&a``) may start: at the start of the text
#: or after a space or a flow indicator (``Truelove & Witts`` is a text). A match, even in a text,
#: sends the file to the loaders that check every event.
_MAY_TAG_OR_ANCHOR = re.compile(r"(?:^|[\s\[\]{},\ufeff])(?:!|&\S)")


def _may_tag_or_anchor(text: str) -> bool:
    """Whether :data:`_MAY_TAG_OR_ANCHOR` is found in ``text``: tried only where a ``!`` or ``&`` is
    (a search of the whole text tries it at every character, ~25 times slower on the shipped files)."""
    for mark in "!&":
        at = text.find(mark)
        while at >= 0:
            # from the character before (or the start, where '^' matches): a match there is a match
            if _MAY_TAG_OR_ANCHOR.match(text, at - 1 if at else 0):
                return True
            at = text.find(mark, at + 1)
    return False


def _within(node: yaml.Node, limits: Limits) -> int:
    """The number of values of a composed tree (no aliases), or -1 when it is beyond the nesting,
    size or text limits."""
    count = 0
    stack = [(node, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if isinstance(item, yaml.ScalarNode):
            if len(item.value) > limits.max_string:
                return -1
            continue
        depth += 1
        if depth > limits.max_depth:
            return -1
        if isinstance(item, yaml.MappingNode):
            stack.extend((part, depth) for pair in item.value for part in pair)
        else:
            stack.extend((child, depth) for child in item.value)
    return count if count <= limits.max_nodes else -1


def _most_values(text: str) -> int:
    """An upper bound of the values a YAML text without tags, anchors or aliases composes to. Each value is the
    document, a mapping's key or value, or a sequence item. A key and its value share a ':' (or, without one, a
    '?', a '{' or a ',' before the key); an item has a '-', a '[' or a ',' before it. Counting those characters
    anywhere (in text too) can only count more; each counts twice (a key and its value)."""
    return 1 + 2 * sum(text.count(c) for c in ":-,[{?")


def _load_composed(text: str, file: str, limits: Limits) -> Located | None:
    """The document composed by libyaml, or None when it may hold a tag or an anchor, is broken or
    is beyond a limit: the other loaders then read it and report the problem in their words. A
    problem found while building the values (a duplicate key, a number out of range) is the one
    those loaders would report, at the same place, so it is raised."""
    # libyaml composes the whole text at once (unlike the checking composer, which counts as it goes): only a
    # text bound to compose to no more than ``bound`` values. Every value but a null after ':' or '-' takes a
    # character of its own, so a text no longer than that is; so is a longer one whose separators say so
    # (:func:`_most_values`: the hazard log is long prose in few values).
    bound = limits.max_nodes if limits.compose_chars is None else limits.compose_chars
    if _ComposedLoader is None or _may_tag_or_anchor(text) or (len(text) > bound and _most_values(text) > bound):
        return None
    loader = _ComposedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            return None
        out = Located(data=None, file=file)
        if node is not None:
            builder = _Builder(out, loader, limits)
            try:
                out.data = builder.build(node, (), 1)
            except _Beyond:
                return None
            except YamlProblem as exc:
                # a file beyond a limit anywhere is the other loaders' to report, as when nothing is wrong
                values = _within(node, limits)
                if values < 0:
                    return None
                exc.nodes = values  # as the other loaders count it: the whole file was composed
                raise
            if builder.count > limits.max_nodes:
                return None
        return out
    finally:
        loader.dispose()


class _Beyond(Exception):
    """A composed document is beyond a nesting, size or text limit (the checking loaders report it)."""


class _Builder:
    """:func:`_build` for a document libyaml composed, which also counts its values and keeps it within
    the nesting and text limits as :func:`_within` does (raising :class:`_Beyond`), in the same walk."""

    def __init__(self, out: Located, loader: Any, limits: Limits):
        self.out = out
        self.loader = loader
        self.limits = limits
        self.count = 0

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        """The value of ``node`` at ``path``; ``depth`` is the number of collections ``node`` would be the
        last of (1 at the root)."""
        out = self.out
        out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.count += 1
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > self.limits.max_string:
                raise _Beyond
            return _scalar(node, out, self.loader, self.limits)
        if depth > self.limits.max_depth:
            raise _Beyond
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                self.count += 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlProblem(Diagnostic(out.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                                 "PW100", "a mapping key must be a plain scalar"))
                if len(key_node.value) > self.limits.max_string:
                    raise _Beyond
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise YamlProblem(Diagnostic(out.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                                 "PW100", "YAML merge keys ('<<') are not allowed in rule files"))
                key = _scalar(key_node, out, self.loader, self.limits)
                kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in result:
                    raise YamlProblem(Diagnostic(out.file, kpos[0], kpos[1], "PW101", f"duplicate key '{key}'"))
                where = path + (key,)
                out.key_positions[where] = kpos
                result[key] = self.build(value_node, where, depth + 1)
            return result
        items = []
        for i, item in enumerate(node.value):
            items.append(self.build(item, path + (i,), depth + 1))
        return items


#: A file libyaml finds broken is read again with the pure Python parser, whose messages the
#: diagnostics show, when libyaml had composed at most this many values before the problem (about
#: a second of the Python parser); beyond, the diagnostic gives libyaml's message.
_REPARSE_NODES = 20_000


class _SyntaxProblem(YamlProblem):
    """A YamlProblem from the parser (not from a limit): the Python parser says it best."""


def _scalar(node: yaml.ScalarNode, out: Located, loader: Any, limits: Limits) -> Any:
    """The value of a scalar: plain data only, numbers readable (and checked for rule files)."""
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if node.tag not in _SCALAR_TAGS:
        raise YamlProblem(Diagnostic(out.file, line, col, "PW100", f"tag '{node.tag}' is not allowed (plain data only)"))
    if node.tag in _NUMBER_TAGS and len(node.value) > _MAX_NUMBER_CHARS:
        raise YamlProblem(Diagnostic(out.file, line, col, "PW125",
                                     f"number of {len(node.value)} characters; the limit is {_MAX_NUMBER_CHARS}"))
    tag = node.tag
    if tag == _STR_TAG:  # what the constructors give for a text, a null and a boolean, without calling them
        return node.value
    if tag == _NULL_TAG:
        return None
    if tag == _BOOL_TAG and node.value in _BOOLS:
        return _BOOLS[node.value]
    try:
        value = loader.construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError):  # e.g. '0x_' resolves as an integer without digits
        raise YamlProblem(Diagnostic(out.file, line, col, "PW100", "a value that looks like a number but is not one; "
                                                                   "quote it if it is a text")) from None
    if limits.numbers:
        problem = number_problem(value)
        if problem is not None:
            raise YamlProblem(Diagnostic(out.file, line, col, *problem))
    return value


def _build(node: yaml.Node, path: Path_, out: Located, loader: Any, limits: Limits) -> Any:
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
            key = _scalar(key_node, out, loader, limits)
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                raise YamlProblem(Diagnostic(out.file, kpos[0], kpos[1], "PW101", f"duplicate key '{key}'"))
            out.key_positions[path + (key,)] = kpos
            result[key] = _build(value_node, path + (key,), out, loader, limits)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), out, loader, limits) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node, out, loader, limits)


def _line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def load_yaml_text(text: str, file: str, limits: Limits = DOCUMENT_LIMITS) -> Located:
    """Parse one YAML document; raise :class:`YamlProblem` with a located diagnostic."""
    if len(text) > limits.max_bytes:
        raise YamlProblem(Diagnostic(file, 1, 1, "PW120", f"more than {limits.max_bytes:,} characters; "
                                                          "a rule file is at most that long"))
    composed = _load_composed(text, file, limits)
    if composed is not None:
        return composed
    if _FastLoader is not None:
        try:
            return _load(_FastLoader, text, file, limits)
        except _SyntaxProblem as exc:
            if exc.nodes > _REPARSE_NODES:
                raise
    return _load(_StrictLoader, text, file, limits)


def _reader_problem(text: str, file: str, exc: yaml.reader.ReaderError) -> _SyntaxProblem:
    """A control character, anywhere (even in a comment)."""
    line, col = _line_col(text, exc.position)
    what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
    return _SyntaxProblem(Diagnostic(file, line, col, "PW100",
                                     f"character {what} is not allowed in a YAML file (not even in a comment)"))


def _syntax_problem(text: str, file: str, exc: yaml.YAMLError) -> _SyntaxProblem:
    """The parser's error as a located diagnostic (the parser's own words, never the file's text)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_problem(text, file, exc)
    if not isinstance(exc, yaml.MarkedYAMLError):
        return _SyntaxProblem(Diagnostic(file, 1, 1, "PW100", f"YAML error: {type(exc).__name__}"))
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = f"YAML syntax error: {exc.problem or exc.context}"
    ctx = exc.context_mark
    if exc.problem and exc.context and ctx is not None and ctx.line + 1 != line:
        # e.g. an unclosed '[': the parser notices on a later line; name where it opened.
        message += f" ({exc.context} that starts at line {ctx.line + 1}, column {ctx.column + 1})"
    return _SyntaxProblem(Diagnostic(file, line, col, "PW100", message))


def _load(kind: _Loader, text: str, file: str, limits: Limits) -> Located:
    try:
        loader = kind(text, file, limits)
    except yaml.reader.ReaderError as exc:  # the pure Python reader checks every character first
        raise _reader_problem(text, file, exc) from None
    try:
        try:
            node = loader.get_single_node()
            out = Located(data=None, file=file)
            if node is not None:
                out.data = _build(node, (), out, loader, limits)
            return out
        except yaml.YAMLError as exc:
            problem: YamlProblem = _syntax_problem(text, file, exc)
        except YamlProblem as exc:
            problem = exc
        problem.nodes = len(loader._size)
        raise problem from None
    finally:
        loader.dispose()
