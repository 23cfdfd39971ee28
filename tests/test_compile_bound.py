"""The compiler's alpha-stack bound is built once per group, and the compiled rulesets are byte-identical
to those of the straightforward algorithm (every merge recomputed from scratch)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from pathway import load_pathway
from pathway.loading.loader import load_every_profile
from pathway.runtime import compile as comp
from pathway.runtime.compile import MAX_ALPHA_STACK, MAX_RULES_PER_RULESET, _AlphaNet, alpha_stack_bound


class _Node:
    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}


def _reference_bound(ruleset: dict[str, Any]) -> int:
    """The bound as first written: the whole network rebuilt, recursion with a memo."""
    counter = [0]

    def chain(parents: list[_Node], expr: dict[str, Any]) -> list[_Node]:
        if set(expr) == {"$and"}:
            for item in expr["$and"]:
                parents = chain(parents, item)
            return parents
        if set(expr) == {"$or"}:
            ends: list[_Node] = []
            for branch in expr["$or"]:
                ends.extend(chain(parents, branch))
            counter[0] += 1
            forward = _Node()
            for end in ends:
                end.children[f"forward#{counter[0]}"] = forward
            return [forward]
        key = json.dumps(expr, sort_keys=True)
        return [p.children.setdefault(key, _Node()) for p in parents]

    root = _Node()
    for rule in ruleset.values():
        for pattern in rule["all"]:
            (expr,) = pattern.values()
            chain([root], expr)
    memo: dict[int, int] = {}

    def f(node: _Node) -> int:
        if id(node) not in memo:
            kids = list(node.children.values())
            memo[id(node)] = len(kids) + max(0, max((f(k) - 1 for k in kids), default=0))
        return memo[id(node)]

    return f(root)


def _reference_chunks(definition: Any) -> dict[str, list[dict[str, Any]]]:
    """State -> its rulesets, chunked by testing every merge with a bound rebuilt from scratch."""
    out: dict[str, list[dict[str, Any]]] = {}
    derived = frozenset(definition.spec.derived)
    for state in definition.spec.states:
        rules = definition.rules_in(state)
        if not rules:
            continue
        chunks: list[dict[str, Any]] = []
        for group in comp._components(rules):
            part: dict[str, Any] = {}
            for rule in group:
                comp._engine_rules(rule, part, {}, [], derived)
            merged = {**chunks[-1], **part} if chunks else {}
            if chunks and len(merged) <= MAX_RULES_PER_RULESET and _reference_bound(merged) <= MAX_ALPHA_STACK:
                chunks[-1].update(part)
            else:
                chunks.append(part)
        out[state] = chunks
    return out


def _compiled_chunks(compiled: Any) -> dict[str, list[dict[str, Any]]]:
    return {state: [compiled.rulesets[n] for n in names] for state, names in compiled.state_rulesets.items()}


def _text(chunks: dict[str, list[dict[str, Any]]]) -> str:
    return json.dumps(chunks, sort_keys=True)


def _synthetic(tmp_path: Path, n: int) -> Path:
    """One state whose n rules diverge under one test (so the compiler must split it), plus
    rules with nested any/all conditions."""
    folder = tmp_path / f"split_{n}"
    folder.mkdir()
    (folder / "pathway.yaml").write_text(
        "id: split\nversion: 1.0.0\ntitle: Split\nstates:\n"
        "  s0: {kind: start, title: Start}\n  done: {kind: terminal, title: Done}\n"
        "transitions:\n  - {from: s0, to: done}\n"
        "sources:\n  SRC: {title: A source, tag: G}\nrule_files: [rules.yaml]\n", encoding="utf-8")
    (folder / "fields.yaml").write_text("fields:\n  x: {type: number, title: X, range: [0, 100000]}\n"
                                        "  y: {type: number, title: Y, range: [0, 100000]}\n", encoding="utf-8")
    lines = ["rules:"]
    for i in range(n):
        when = (f"{{any: [{{x: {{gte: {i}}}}}, {{all: [{{y: {{lt: {i % 7}}}}}, {{x: {{lt: {i % 5}}}}}]}}]}}"
                if i % 3 == 0 else f"{{x: {{gte: {i}}}}}")
        lines += [f"  - id: r{i}", f"    title: Rule {i}", "    in: s0", f"    when: {when}",
                  f"    then: [{{recommend: {{text: rule {i}}}}}]",
                  "    evidence: {sources: [SRC], strength: G, status: verified}"]
    (folder / "rules.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_every_profile_of_the_shipped_pathway_compiles_to_the_same_rulesets_as_the_reference():
    loaded = load_every_profile("asuc")
    assert len(loaded) >= 2
    for definition in loaded.values():
        compiled = comp.compile_pathway(definition)
        assert _text(_compiled_chunks(compiled)) == _text(_reference_chunks(definition))
        for ruleset in compiled.rulesets.values():
            assert alpha_stack_bound(ruleset) == _reference_bound(ruleset)


def test_a_state_split_into_several_rulesets_is_split_exactly_as_the_reference(tmp_path):
    pw = load_pathway(_synthetic(tmp_path, 170), cache=False)
    names = pw.compiled.state_rulesets["s0"]
    assert len(names) >= 3  # the split happened
    assert _text(_compiled_chunks(pw.compiled)) == _text(_reference_chunks(pw.compiled.definition))
    assert [alpha_stack_bound(pw.compiled.rulesets[n]) for n in names] == \
        [_reference_bound(pw.compiled.rulesets[n]) for n in names]


def _random_expr(rng: random.Random, depth: int) -> dict[str, Any]:
    pick = rng.random()
    if depth < 3 and pick < 0.25:
        return {"$or": [_random_expr(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 3 and pick < 0.5:
        return {"$and": [_random_expr(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    return {rng.choice(["$gte", "$lt", "$eq"]): {rng.choice("abc"): rng.randint(0, 3)}}


@pytest.mark.parametrize("seed", range(40))
def test_the_bound_added_group_by_group_is_the_bound_of_the_whole(seed):
    rng = random.Random(seed)
    net = _AlphaNet()
    whole: dict[str, Any] = {}
    for g in range(rng.randint(1, 8)):
        group = {f"g{g}r{i}": {"all": [{"m": _random_expr(rng, 0)} for _ in range(rng.randint(1, 3))]}
                 for i in range(rng.randint(1, 6))}
        whole.update(group)
        assert net.add(group) == _reference_bound(whole) == alpha_stack_bound(whole)


def _compiled_form(compiled: comp.CompiledPathway) -> tuple[Any, ...]:
    bindings = {name: (b.rule, b.branch, b.clauses, b.fields) for name, b in compiled.bindings.items()}
    return (json.dumps(compiled.rulesets), compiled.state_rulesets, list(compiled.bindings), bindings)


def test_a_profile_compiled_like_another_gives_what_its_own_compile_gives() -> None:
    """``pathway validate`` compiles each profile with the default's compiled form at hand: states whose
    rules a profile leaves unchanged take the default's rulesets, the rest are compiled; the result equals
    the profile's own compile in every ruleset, binding (naming the profile's own rule objects) and order."""
    definitions = load_every_profile("asuc")
    default = comp.compile_pathway(definitions[None])
    changed = 0
    for name, definition in definitions.items():
        alone = comp.compile_pathway(definition)
        like = comp.compile_pathway(definition, like=default)
        assert _compiled_form(like) == _compiled_form(alone), name
        ours = {id(r) for r in definition.rules}
        assert all(id(b.rule) in ours for b in like.bindings.values()), name
        changed += sum(1 for s in definition.spec.states if definition.rules_in(s) != definitions[None].rules_in(s))
    assert changed > 0  # a shipped profile changes some state's rules, so both paths of the reuse ran


def test_a_changed_rule_is_compiled_again_not_taken_from_the_other_profile() -> None:
    definitions = load_every_profile("asuc")
    default = comp.compile_pathway(definitions[None])
    other = next(d for n, d in definitions.items() if n is not None and any(
        d.rules_in(s) != definitions[None].rules_in(s) for s in d.spec.states))
    like = comp.compile_pathway(other, like=default)
    differs = [s for s in other.spec.states if other.rules_in(s) != definitions[None].rules_in(s)]
    assert differs
    for state in differs:  # built anew (a rule's effects may differ without changing its rulesets)
        assert all(like.rulesets[n] is not default.rulesets[n] for n in like.state_rulesets[state]), state
    for state in set(other.spec.states) - set(differs):
        assert all(like.rulesets[n] is default.rulesets[n] for n in like.state_rulesets.get(state, [])), state
