"""The three ways a YAML file is read give the same data, the same line/column of every value and
key, and the same diagnostics: libyaml composing (files without tags or anchors), libyaml parsing
with the checking composer, and the pure Python loader (the fallback when libyaml is absent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pathway.core import yamlparse as Y
from pathway.core import yamlsafe as S

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((ROOT / "rules").rglob("*.yaml"))
needs_libyaml = pytest.mark.skipif(Y._ComposedLoader is None or Y._FastLoader is None, reason="PyYAML without libyaml")


def _typed(value: Any) -> Any:
    """The value with the type of every scalar (1 and 1.0 and True differ)."""
    if isinstance(value, dict):
        return {(type(k).__name__, k): _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


def _seen(doc: Y.Located) -> tuple[Any, ...]:
    return _typed(doc.data), doc.positions, doc.key_positions


def _outcome(read: Any, text: str, limits: Y.Limits) -> tuple[Any, ...]:
    try:
        doc = read(text, limits)
    except Y.YamlProblem as exc:
        d = exc.diagnostic
        return ("problem", d.file, d.line, d.col, d.code, d.message, exc.nodes)
    return ("ok", *_seen(doc))


def _pure(text: str, limits: Y.Limits) -> Y.Located:
    return Y._load(Y._StrictLoader, text, "f.yaml", limits)


def _events(text: str, limits: Y.Limits) -> Y.Located:  # libyaml parses, the checking composer composes
    return Y._load(Y._FastLoader, text, "f.yaml", limits)


def _public(text: str, limits: Y.Limits) -> Y.Located:
    return Y.load_yaml_text(text, "f.yaml", limits)


def test_the_shipped_rule_files_are_many():
    assert len(RULE_FILES) >= 17


@needs_libyaml
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_rule_file_reads_the_same_through_every_loader(path):
    text = path.read_text(encoding="utf-8")
    composed = Y._load_composed(text, "f.yaml", S.RULE_FILE_LIMITS)
    assert composed is not None  # the fastest way reads every shipped file
    expected = _seen(_pure(text, S.RULE_FILE_LIMITS))
    assert _seen(composed) == expected
    assert _seen(_events(text, S.RULE_FILE_LIMITS)) == expected
    assert _seen(_public(text, S.RULE_FILE_LIMITS)) == expected


SMALL = Y.Limits(max_bytes=10_000, max_depth=4, max_aliases=3, max_nodes=40, max_string=30, numbers=True)
#: small nesting and text limits with room for values, so that libyaml composes these files and the walk
#: that builds them keeps them within the limits
TIGHT = Y.Limits(max_bytes=10_000, max_depth=4, max_aliases=3, max_nodes=1_000, max_string=30, numbers=True)

BROKEN = {
    "unclosed flow": "a: [1, 2\nb: 3\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "tab indentation": "a:\n\tb: 1\n",
    "unclosed quote": 'a: "open\nb: 1\n',
    "two documents": "a: 1\n---\nb: 2\n",
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "duplicate key nested": "top:\n  x: {k: 1, k: 2}\n",
    "tag on a value": "a: !!str 017\n",
    "custom tag": "a: !thing 1\n",
    "non-specific tag": "a: ! 1\n",
    "tag on a list": "a: !!seq [1]\n",
    "anchor and alias": "a: &x [1, 2]\nb: *x\n",
    "recursive alias": "a: &x [1, *x]\n",
    "undefined alias": "a: *nothing\n",
    "too many aliases": "a: &x 1\nb: [*x, *x, *x, *x]\n",
    "alias bomb": "a: &x [1, 2, 3, 4, 5, 6, 7, 8]\nb: &y [*x, *x, *x]\nc: [*y, *y]\n",
    "merge key": "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "merge key without alias": "other:\n  <<: {x: 1}\n",
    "too deep": "a: {b: {c: {d: {e: 1}}}}\n",
    "too deep in blocks": "a:\n  b:\n    c:\n      d:\n        - 1\n",
    "too many values": "a: [" + ", ".join(str(i) for i in range(50)) + "]\n",
    "long text": "a: " + "x" * 40 + "\n",
    "long key": "k" * 31 + ": 1\n",
    "number out of range": "a: 1e13\n",
    "number too small": "a: 1e-13\n",
    "infinite": "a: .inf\n",
    "not a number": "a: .nan\n",
    "number-like": "a: 0x_\n",
    "control character": "a: 1\nb: \x07\n",
    "control character in a comment": "a: 1 # \x01\n",
    "mapping key": "? [1, 2]\n: 3\n",
    "bad character after a value": "a: 'x' y\n",
    "scalar document": "just text\n",
    "empty": "",
    "only a comment": "# nothing\n",
    "bom": "\ufeffa: 1\n",
    "text with ampersand and bang": "a: Truelove & Witts!\nb: 'x ! y'\n",
    "windows line ends": "a: 1\r\nb:\r\n  - 2\r\n",
    "as deep as allowed": "a: {b: {c: [1, {d: 2}]}}\n",
    "as long a text as allowed": "a: " + "x" * 30 + "\n" + "y" * 30 + ": 1\n",
    "duplicate key before too deep": "a: 1\na: 2\nb: {c: {d: {e: {f: 1}}}}\n",
    "too deep before duplicate key": "b: {c: {d: {e: {f: 1}}}}\na: 1\na: 2\n",
    "number out of range before long text": "a: 1e13\nb: " + "x" * 40 + "\n",
    "long text before number out of range": "b: " + "x" * 40 + "\na: 1e13\n",
    "list key before long key": "? [1]\n: 2\n" + "k" * 31 + ": 1\n",
    "duplicate key before long key": "a: 1\na: 2\n" + "k" * 31 + ": 1\n",
}


@needs_libyaml
@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("limits", [SMALL, TIGHT, S.RULE_FILE_LIMITS, Y.DOCUMENT_LIMITS],
                         ids=["small", "tight", "rule", "document"])
def test_broken_and_odd_files_give_the_same_outcome_as_the_pure_loader(name, limits):
    text = BROKEN[name]
    expected = _outcome(_pure, text, limits)
    assert _outcome(_public, text, limits) == expected


def test_the_broken_set_finds_problems_and_the_limits_trip():
    codes = {_outcome(_pure, text, SMALL)[4] for text in BROKEN.values() if _outcome(_pure, text, SMALL)[0] == "problem"}
    assert {"PW100", "PW101", "PW120", "PW121", "PW122", "PW123", "PW124", "PW125"} <= codes


def test_the_pure_loader_is_the_fallback_without_libyaml(monkeypatch):
    text = (ROOT / "rules" / "asuc" / "pathway.yaml").read_text(encoding="utf-8")
    expected = _seen(_pure(text, S.RULE_FILE_LIMITS))
    used: list[str] = []
    real = Y._load

    def spy(kind: Any, *args: Any) -> Y.Located:
        used.append(kind.__name__)
        return real(kind, *args)

    monkeypatch.setattr(Y, "_ComposedLoader", None)
    monkeypatch.setattr(Y, "_FastLoader", None)
    monkeypatch.setattr(Y, "_load", spy)
    assert _seen(Y.load_yaml_text(text, "f.yaml", S.RULE_FILE_LIMITS)) == expected
    with pytest.raises(Y.YamlProblem) as info:
        Y.load_yaml_text("a: [1\n", "f.yaml", S.RULE_FILE_LIMITS)
    assert info.value.diagnostic.code == "PW100"
    assert used == ["_StrictLoader", "_StrictLoader"]


@needs_libyaml
def test_a_file_that_may_hold_a_tag_or_an_anchor_is_not_composed_by_libyaml():
    for text in ("a: !!str 1\n", "a: &x 1\nb: *x\n", "- !x 1\n", "[!x 1]\n", "!x a\n"):
        assert Y._load_composed(text, "f.yaml", Y.DOCUMENT_LIMITS) is None
    assert Y._load_composed("a: Truelove & Witts!\n", "f.yaml", Y.DOCUMENT_LIMITS) is not None


@needs_libyaml
def test_a_text_longer_than_the_values_it_may_hold_is_composed_value_by_value():
    text = "a: [" + ",".join("1" for _ in range(30)) + "]\n"
    assert Y._load_composed(text, "f.yaml", SMALL) is None  # 64 characters, at most 40 values
    assert Y._load_composed("a: [1, 2]\n", "f.yaml", SMALL) is not None


@needs_libyaml
def test_loading_the_shipped_pathway_composes_every_file_with_libyaml(monkeypatch):
    from pathway.loading.loader import load_every_profile

    outcomes = _composed_outcomes(monkeypatch)
    load_every_profile("asuc")
    assert len(outcomes) >= 17 and all(outcomes)


def test_the_quick_look_for_a_tag_or_an_anchor_finds_what_the_pattern_finds():
    import random

    rng = random.Random(7)
    texts = [path.read_text(encoding="utf-8") for path in RULE_FILES] + list(BROKEN.values())
    texts += ["".join(rng.choice(" \n\t![]{},&ab\ufeff\u2003") for _ in range(rng.randint(0, 9))) for _ in range(20_000)]
    found = [Y._may_tag_or_anchor(text) for text in texts]
    assert found == [Y._MAY_TAG_OR_ANCHOR.search(text) is not None for text in texts]
    assert any(found) and not all(found)


def _composed_outcomes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each file read from now on was composed by libyaml (a list filled as files are read)."""
    outcomes: list[bool] = []
    real = Y._load_composed

    def spy(*args: Any) -> Y.Located | None:
        doc = real(*args)
        outcomes.append(doc is not None)
        return doc

    monkeypatch.setattr(Y, "_load_composed", spy)
    return outcomes


@needs_libyaml
def test_the_values_of_all_files_together_stay_within_the_load_budget(monkeypatch):
    """A file longer than the budget left (in characters) is still composed by libyaml when its values fit,
    and a file whose values do not fit is refused, located, by the checking loader (PW120)."""
    from pathway.core.errors import DefinitionError
    from pathway.loading import loader as L

    outcomes = _composed_outcomes(monkeypatch)
    sizes = [len(p.read_text(encoding="utf-8")) for p in RULE_FILES]
    monkeypatch.setattr(L, "MAX_LOAD_NODES", 30_000)  # the files' values fit; the longest texts are beyond it
    assert sum(sizes) > 30_000
    L.load_definition("asuc")
    assert outcomes and all(outcomes)
    monkeypatch.setattr(L, "MAX_LOAD_NODES", 3_000)
    with pytest.raises(DefinitionError) as info:
        L.load_definition("asuc")
    assert any(d.code == "PW120" and "values in the pathway's files together" in d.message
               for d in info.value.diagnostics), info.value.diagnostics


def _nodes(node: Any) -> int:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return 1 + sum(_nodes(k) + _nodes(v) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return 1 + sum(_nodes(v) for v in node.value)
    return 1


_SCALARS = ["", "a", "x: y", "- z", "1", "-1.5", "a, b", "[c]", "{d}", "? e", None, True, 0]


def _values(rng: Any, depth: int = 0) -> Any:
    kind = rng.randrange(3) if depth < 4 else 0
    if kind == 0:
        return rng.choice(_SCALARS)
    if kind == 1:
        return [_values(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(["k", "key: x", "-", "", "?", "a,b"]) + str(i): _values(rng, depth + 1)
            for i in range(rng.randrange(5))}


@pytest.mark.parametrize("flow", [False, True, None])
def test_the_bound_on_values_composed_at_once_is_never_below_the_values(flow: bool | None) -> None:
    """libyaml composes a text longer than the budget at once when its separators bound its values within it
    (the hazard log): that bound must never be below what the text composes to, in block or flow style."""
    import random

    import yaml

    rng = random.Random(7)
    texts = ["", "a:\nb:\n", "- \n-\n", "{a, b, c}", "[a, [b, {c}], ? d]", "? a\n? b\n", "{a: [], b: {}}", "- - - -"]
    texts += [yaml.safe_dump(_values(rng), default_flow_style=flow, allow_unicode=True) for _ in range(400)]
    for text in texts:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        values = 0 if node is None else _nodes(node)
        assert values <= Y._most_values(text), text
