"""The state graph: a networkx DiGraph built from the pathway file.

The graph is the single contract shared by the loader (a rule may only take an edge),
the session (refuses any other move), the diagrams and the checks. Nodes carry ``title``,
``kind`` and ``phase`` (None when the state names none; the graph's ``phases`` maps phase ids to
titles, in the order declared); edges carry ``title``, ``rules`` (ids of the rules that can take them) and
``any_active`` (declared only through ``from: any_active``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pathway.definition.model import ANY_ACTIVE, PathwayFile

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["build_graph", "expand_sources", "active_states", "transition_pairs"]


def active_states(pathway: PathwayFile) -> list[str]:
    return [sid for sid, s in pathway.states.items() if s.kind != "terminal"]


def expand_sources(pathway: PathwayFile, value: str | list[str]) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for name in names:
        for sid in active_states(pathway) if name == ANY_ACTIVE else [name]:
            if sid not in out:
                out.append(sid)
    return out


def transition_pairs(pathway: PathwayFile) -> dict[tuple[str, str], None]:
    """The edges of :func:`build_graph`'s graph as ``(from, to)`` pairs, in the order it adds them,
    without networkx (what checking a rule file needs: loading it does not import networkx)."""
    out: dict[tuple[str, str], None] = {}
    for transition in pathway.transitions:
        for source in expand_sources(pathway, transition.from_):
            if source in pathway.states and transition.to in pathway.states:
                out[(source, transition.to)] = None
    return out


def build_graph(pathway: PathwayFile, rule_edges: Iterable[tuple[str, str, str]] = (),
                proposal_edges: Iterable[tuple[str, str, str]] = ()) -> nx.DiGraph:
    """Graph of states and transitions; ``rule_edges`` is ``(rule_id, from, to)`` per rule move,
    ``proposal_edges`` the same for a rule that proposes the move (taken once a decision is recorded)."""
    import networkx as nx  # on first use: loading and compiling a pathway need no graph library

    graph = nx.DiGraph(id=pathway.id, version=pathway.version, title=pathway.title,
                       phases={pid: phase.title for pid, phase in pathway.phases.items()})
    for sid, state in pathway.states.items():
        graph.add_node(sid, title=state.title, kind=state.kind, phase=state.phase)
    for transition in pathway.transitions:
        from_any = transition.from_ == ANY_ACTIVE or (not isinstance(transition.from_, str) and ANY_ACTIVE in transition.from_)
        for source in expand_sources(pathway, transition.from_):
            if source in graph and transition.to in graph:
                if not graph.has_edge(source, transition.to):
                    # any_active: the edge exists only because it leaves every active state
                    # (e.g. emergency colectomy); diagrams draw such edges apart.
                    graph.add_edge(source, transition.to, title=transition.title, rules=[], proposals=[],
                                   any_active=from_any)
                else:
                    edge = graph.edges[source, transition.to]
                    edge["any_active"] = edge["any_active"] and from_any
                    if transition.title and not edge["title"]:
                        edge["title"] = transition.title
    for key, edges in (("rules", rule_edges), ("proposals", proposal_edges)):
        for rule_id, source, target in edges:
            if graph.has_edge(source, target):
                names = graph.edges[source, target][key]
                if rule_id not in names:
                    names.append(rule_id)
                    names.sort()
    return graph
