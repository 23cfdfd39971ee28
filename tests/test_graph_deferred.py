"""Loading and checking a pathway need no networkx: the edges of the declared transitions, the order of
computed inputs and their cycles are found in plain Python, exactly as networkx finds them, and the
state graph is built on first use, the same graph as before."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from pathway import load_pathway
from pathway.definition.graph import build_graph, transition_pairs
from pathway.loading.loader import load_every_profile, strongly_connected, topological_order


def _edges_with_data(graph: nx.DiGraph) -> list[tuple[str, str, dict]]:
    return [(u, v, dict(d)) for u, v, d in graph.edges(data=True)]


def test_the_declared_transitions_are_the_edges_of_the_graph():
    for definition in load_every_profile("asuc").values():
        pairs = transition_pairs(definition.spec)
        graph = build_graph(definition.spec)
        assert set(pairs) == set(graph.edges) and len(pairs) == graph.number_of_edges() > 0


def test_the_graph_built_on_first_use_carries_every_rule_and_proposal():
    definition = load_pathway("asuc").definition
    graph = definition.graph
    assert graph is definition.graph  # built once
    rule_edges = [(r.id, s, t) for r in definition.rules for s in r.states for b in ("then", "else", "missing")
                  for t in r.targets(b)]
    assert set(definition.rule_edges) == set(rule_edges) and definition.rule_edges
    expected = build_graph(definition.spec, definition.rule_edges, definition.proposal_edges)
    assert list(graph.nodes(data=True)) == list(expected.nodes(data=True))
    assert _edges_with_data(graph) == _edges_with_data(expected)
    assert graph.graph == expected.graph
    assert any(d["rules"] for _, _, d in graph.edges(data=True))
    assert any(d["proposals"] for _, _, d in graph.edges(data=True))


def _random_graph(rng: random.Random) -> dict[str, list[str]]:
    nodes = [f"n{i}" for i in range(rng.randint(1, 12))]
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for _ in range(rng.randint(0, 25)):
        u, v = rng.choice(nodes), rng.choice(nodes)
        if v not in out[u]:
            out[u].append(v)
    return out


def _nx(successors: dict[str, list[str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(successors)
    graph.add_edges_from((u, v) for u, vs in successors.items() for v in vs)
    return graph


@pytest.mark.parametrize("seed", range(200))
def test_components_and_order_are_networkx_s(seed):
    rng = random.Random(seed)
    successors = _random_graph(rng)
    graph = _nx(successors)
    ours = sorted(sorted(c) for c in strongly_connected(successors))
    assert ours == sorted(sorted(c) for c in nx.strongly_connected_components(graph))
    if nx.is_directed_acyclic_graph(graph):
        order = {n: rng.random() for n in successors}
        rank = {n: i for i, n in enumerate(sorted(successors, key=order.__getitem__))}
        assert topological_order(successors, key=rank.__getitem__) == \
            list(nx.lexicographical_topological_sort(graph, key=lambda n: f"{rank[n]:06d}"))


def test_a_long_chain_needs_no_recursion():
    n = 5000
    successors = {f"n{i}": [f"n{i + 1}"] if i + 1 < n else ["n0"] for i in range(n)}
    assert [len(c) for c in strongly_connected(successors)] == [n]
    successors[f"n{n - 1}"] = []
    assert topological_order(successors, key=lambda s: -int(s[1:]))[:3] == ["n0", "n1", "n2"]
