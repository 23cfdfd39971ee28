"""Diagrams of the state graph: DOT text built deterministically, SVG rendered by Graphviz ``dot``.

Building (an intermediate description from the graph) is kept apart from rendering (DOT,
then ``dot -Tsvg``; or Mermaid); the style table maps state kinds to Graphviz attributes.

- :func:`to_dot` draws the pathway (the committed ``diagrams/<id>.dot`` is drawn with its
  definition: readable labels);
- :func:`build_diagram`, :func:`build_trace_diagram` build a :class:`Diagram` (nodes and edges
  with Graphviz attributes, clusters, a legend), rendered by :func:`diagram_to_dot` or
  :func:`diagram_to_mermaid` and written by :func:`write_diagram`;
- given the pathway's definition, :func:`build_diagram` labels each transition with the titles of
  the rules that take it (the rule id small under each, an evidence badge beside it, the full
  criterion in the tooltip, which SVG shows on hover), draws proposals (moves that wait for a
  recorded decision) apart from automatic moves and the rules of every active state (emergencies)
  apart from both, marks decision points, adds a legend, and with ``clusters`` boxes the states of
  each phase of care (``phase:`` in pathway.yaml); without it, transitions carry rule ids;
- a trace diagram overlays one patient's course: visited states and taken transitions
  highlighted and numbered in order with the rule and the day, the current state marked, the
  rest faded.

Text from rule files and cases (titles, ids, the patient id) is inert in every format. Plain labels
of the diagram model are DOT escape strings (``\\n`` breaks a line; every other backslash of a text
is doubled by :func:`dot_text`, control characters are shown escaped). Rich labels (tables of
:mod:`pathway.render.labels`) are HTML-like labels whose every text is one line passed through
:func:`html.escape`; tooltips are escape strings like plain labels. The Mermaid writer turns labels
back into lines and escapes quotes, ``#``, ``<``, ``>``, ``&``, backticks and ``|`` as Mermaid
entity codes; a node id that is not a plain identifier is drawn under a generated one.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import graphviz
import networkx as nx

from pathway.core.errors import PathwayError
from pathway.core.text import one_line
from pathway.definition.effects import Offer
from pathway.definition.model import Evidence
from pathway.definition.pathway import Branch, PathwayDef, Rule
from pathway.render.labels import (
    BADGE_COLOURS,
    STRENGTH_WORDS,
    Cell,
    Run,
    Table,
    badge_cell,
    badge_text,
    effect_groups,
    effect_text,
    moves_of,
    rule_summary,
    table_html,
    table_lines,
    wrap_lines,
)

__all__ = [
    "STYLE",
    "to_dot",
    "render_svg",
    "write_diagrams",
    "DotNotFound",
    "Diagram",
    "DiagramNode",
    "DiagramEdge",
    "Cluster",
    "LegendItem",
    "build_diagram",
    "phase_clusters",
    "offered_options",
    "shared_rules",
    "rule_rows",
    "rules_label",
    "rules_plain",
    "rules_tooltip",
    "state_table",
    "pathway_legend",
    "ANY_ACTIVE_NODE",
    "build_trace_diagram",
    "diagram_to_dot",
    "diagram_to_mermaid",
    "to_mermaid",
    "write_diagram",
    "write_dot_svg",
    "render_diagram",
    "diagram_format",
    "DIAGRAM_FORMATS",
    "dot_text",
]

#: Role -> Graphviz node attributes.
STYLE: dict[str, dict[str, str]] = {
    "start": {"shape": "oval", "style": "filled,bold", "fillcolor": "#dbeafe", "color": "#1d4ed8"},
    "active": {"shape": "box", "style": "filled,rounded", "fillcolor": "#f1f5f9", "color": "#334155"},
    # a state whose rules offer options: the team records the choice
    "decision": {"shape": "box", "style": "filled,rounded,bold", "fillcolor": "#ede9fe", "color": "#6d28d9",
                 "penwidth": "1.6"},
    "terminal": {"shape": "box", "style": "filled,rounded", "fillcolor": "#fef3c7", "color": "#92400e",
                 "peripheries": "2"},
    "emergency_edge": {"color": "#b91c1c", "fontcolor": "#b91c1c", "style": "dashed"},
    # readable pathway diagrams: a move the rules make, and a move that waits for a recorded decision
    "move_edge": {"color": "#334155", "penwidth": "1.3"},
    "proposal_edge": {"color": "#6d28d9", "fontcolor": "#6d28d9", "style": "dotted", "penwidth": "1.8",
                      "arrowhead": "onormal"},
    "any_active": {"shape": "box", "style": "rounded,dashed", "color": "#b91c1c", "fontcolor": "#b91c1c"},
    "junction": {"shape": "point", "width": "0.07", "height": "0.07"},
    "cluster": {"style": "rounded,filled", "color": "#cbd5e1", "fillcolor": "#fbfdff", "fontcolor": "#334155"},
    # one patient's course (trace diagrams)
    "visited": {"fillcolor": "#dcfce7", "color": "#15803d", "penwidth": "2"},
    "current": {"fillcolor": "#4ade80", "color": "#14532d", "penwidth": "3.5", "fontcolor": "#052e16"},
    "faded": {"fillcolor": "#f8fafc", "color": "#cbd5e1", "fontcolor": "#94a3b8"},
    "taken_edge": {"color": "#15803d", "fontcolor": "#14532d", "penwidth": "2.5"},
    "faded_edge": {"color": "#cbd5e1", "fontcolor": "#94a3b8", "style": "dashed"},
    # two versions (diff diagrams)
    "added": {"fillcolor": "#dcfce7", "color": "#16a34a", "fontcolor": "#14532d", "penwidth": "2.5"},
    "removed": {"fillcolor": "#fee2e2", "color": "#dc2626", "fontcolor": "#7f1d1d", "penwidth": "2.5",
                "style": "filled,rounded,dashed"},
    "changed": {"fillcolor": "#ffedd5", "color": "#ea580c", "fontcolor": "#7c2d12", "penwidth": "2.5"},
    "unchanged": {"fillcolor": "#f8fafc", "color": "#94a3b8", "fontcolor": "#475569"},
    "added_edge": {"color": "#16a34a", "fontcolor": "#16a34a", "penwidth": "2.5"},
    "removed_edge": {"color": "#dc2626", "fontcolor": "#dc2626", "penwidth": "2.5", "style": "dashed"},
    "changed_edge": {"color": "#ea580c", "fontcolor": "#ea580c", "penwidth": "2.5"},
    "unchanged_edge": {"color": "#94a3b8", "fontcolor": "#64748b"},
}

#: Output formats of :func:`write_diagram` (by option or file suffix).
DIAGRAM_FORMATS = ("dot", "svg", "mermaid")
_SUFFIX_FORMAT = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".mmd": "mermaid", ".mermaid": "mermaid"}


class DotNotFound(PathwayError):
    """Graphviz's ``dot`` is not installed (Debian package ``graphviz``)."""


def dot_text(text: object) -> str:
    """A text (a title, an id, a patient id) as part of a DOT label: one line (control characters
    shown escaped), every backslash doubled so that only the diagram's own ``\\n`` breaks a line
    (DOT's ``\\N``, ``\\G``, ``\\l`` cannot come from a text, nor an escaped closing quote)."""
    return one_line(text).replace("\\", "\\\\")


def wrap(text: str, width: int = 28) -> str:
    """``text`` as a DOT label (see :func:`dot_text`) broken into lines of about ``width`` characters."""
    return "\\n".join(line for line in wrap_lines(dot_text(text), width) if line)


def to_dot(graph: nx.DiGraph, definition: PathwayDef | None = None, *, clusters: bool = False) -> str:
    """DOT source of the pathway diagram (see :func:`build_diagram`)."""
    return diagram_to_dot(build_diagram(graph, definition, clusters=clusters))


#: Graphviz writes a tooltip as a link element without a target (``<a xlink:title="...">``).
_TOOLTIP_LINK = re.compile(r'<a xlink:title="([^"<>]*)">')


def _svg_tooltips(svg: str) -> str:
    """Each tooltip as an SVG ``<title>`` of a group instead of Graphviz's link element (browsers show
    both on hover; a ``<title>`` is no link). Labels cannot forge the pattern: their ``<`` is escaped."""
    converted = _TOOLTIP_LINK.sub(r"<g><title>\1</title>", svg)
    if "<a " in converted or "<a>" in converted:  # some other link form (never written here): left as it is
        return svg
    return converted.replace("</a>", "</g>")


def render_svg(dot_source: str) -> str:
    """SVG text rendered by Graphviz's ``dot`` (tooltips as ``<title>`` elements)."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotNotFound("Graphviz 'dot' was not found on PATH; install Debian's 'graphviz' package")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0:
        raise PathwayError(f"dot failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return _svg_tooltips(proc.stdout.decode("utf-8"))


def write_diagrams(graph: nx.DiGraph, out: Path, definition: PathwayDef | None = None, *,
                   clusters: bool = False) -> list[Path]:
    """Write ``<out>.dot`` and ``<out>.svg`` (``out`` without suffix, or with .dot/.svg); with the
    pathway's ``definition``, readable labels (see :func:`build_diagram`)."""
    return write_dot_svg(build_diagram(graph, definition, clusters=clusters), out)


def write_dot_svg(d: Diagram, out: Path) -> list[Path]:
    """Write a diagram as ``<out>.dot`` and ``<out>.svg`` (``out`` without suffix, or with .dot/.svg)."""
    base = out.with_suffix("") if out.suffix in (".dot", ".svg") else out
    base.parent.mkdir(parents=True, exist_ok=True)
    source = diagram_to_dot(d)
    dot_path, svg_path = base.with_suffix(".dot"), base.with_suffix(".svg")
    dot_path.write_text(source, encoding="utf-8")
    svg_path.write_text(render_svg(source), encoding="utf-8")
    return [dot_path, svg_path]


# -- the diagram model ------------------------------------------------------------------------

@dataclass
class DiagramNode:
    """A state as drawn: DOT label (lines joined by ``\\n``) and Graphviz attributes; ``table``, when
    given, is drawn instead of ``label`` (an HTML-like label in DOT, its lines in Mermaid);
    ``tooltip``: plain text shown on hover in SVG (lines joined by a newline)."""

    id: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)
    table: Table | None = None
    tooltip: str = ""


@dataclass
class DiagramEdge:
    """A transition as drawn (``table`` and ``tooltip`` as for :class:`DiagramNode`)."""

    source: str
    target: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)
    table: Table | None = None
    tooltip: str = ""


@dataclass
class Cluster:
    """A box around some nodes (a phase of care): ``title`` is plain text."""

    id: str
    title: str
    nodes: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


#: A legend entry: (text, kind, attributes). Kinds: ``node`` and ``edge`` (drawn in the style of
#: the attributes), ``badge`` (attributes ``strength`` and ``status``), ``header`` and ``note`` (text).
LegendItem = tuple[str, str, dict[str, str]]


@dataclass
class Diagram:
    """What a diagram shows, independent of the output format."""

    name: str
    title: str
    nodes: list[DiagramNode] = field(default_factory=list)
    edges: list[DiagramEdge] = field(default_factory=list)
    #: drawn in a legend box; empty: no legend
    legend: list[LegendItem] = field(default_factory=list)
    graph_attrs: dict[str, str] = field(default_factory=lambda: {
        "labelloc": "t", "fontname": "Helvetica", "fontsize": "16", "rankdir": "TB", "nodesep": "0.4", "ranksep": "0.55"})
    node_attrs: dict[str, str] = field(default_factory=lambda: {"fontname": "Helvetica", "fontsize": "11"})
    edge_attrs: dict[str, str] = field(default_factory=lambda: {"fontname": "Helvetica", "fontsize": "9", "color": "#475569"})
    clusters: list[Cluster] = field(default_factory=list)
    #: where DOT draws the legend: ``box`` (a box the layout places) or ``strip`` (under the title,
    #: across the top, its sections side by side; the layout of the states is left alone)
    legend_place: str = "box"


def _state_label(node: str, data: dict[str, Any]) -> str:
    return f"{wrap(data['title'])}\\n[{dot_text(node)}]"


def _emergency(data: dict[str, Any]) -> bool:
    """An edge that exists only because it leaves every active state (``from: any_active``)."""
    return bool(data.get("any_active"))


def phase_clusters(graph: nx.DiGraph) -> list[Cluster]:
    """A cluster per phase of care that has states (``phase:`` of the states in pathway.yaml), in
    the order the phases are declared."""
    phases: dict[str, str] = graph.graph.get("phases") or {}
    out = []
    for pid, title in phases.items():
        members = [n for n, data in graph.nodes(data=True) if data.get("phase") == pid]
        if members:
            out.append(Cluster(pid, title, members, dict(STYLE["cluster"])))
    return out


def build_diagram(graph: nx.DiGraph, definition: PathwayDef | None = None, *, clusters: bool = False) -> Diagram:
    """The pathway diagram. With the pathway's ``definition`` (its rules): readable labels, proposals
    and decision points drawn apart, evidence badges and a legend (see the module docstring);
    without it, states by kind and edges labelled with the ids of the rules that take them.
    ``clusters``: a box per phase of care."""
    if definition is not None:
        d = _readable_diagram(graph, definition)
    else:
        name = graph.graph.get("id", "pathway")
        d = Diagram(name, dot_text(f"{graph.graph.get('title', name)} (version {graph.graph.get('version', '?')})"))
        for node, data in graph.nodes(data=True):
            d.nodes.append(DiagramNode(node, _state_label(node, data), dict(STYLE[data["kind"]])))
        for source, target, data in graph.edges(data=True):
            names = [dot_text(r) for r in data.get("rules", [])]
            names += [f"{dot_text(r)} (proposal)" for r in data.get("proposals", [])]
            label = "\\n".join(names) if names else "(no rule)"
            attrs = dict(STYLE["emergency_edge"]) if _emergency(data) else {}
            d.edges.append(DiagramEdge(source, target, label, attrs))
    if clusters:
        d.clusters = phase_clusters(graph)
    return d


# -- the readable pathway diagram ----------------------------------------------------------------

#: Characters per line of a rule title on an edge.
EDGE_WIDTH = 36
_MUTED = "#64748b"


def offered_options(rules: list[Rule]) -> list[str]:
    """The options the rules offer (``offer`` effects of any branch), in rank order, then by name."""
    ranks: dict[str, float] = {}
    for rule in rules:
        for _branch, effects in effect_groups(rule):
            for eff in effects:
                if isinstance(eff, Offer):
                    rank = float(eff.rank) if not isinstance(eff.rank, str) else 100.0
                    ranks[eff.option] = min(ranks.get(eff.option, rank), rank)
    return sorted(ranks, key=lambda o: (ranks[o], o))


def shared_rules(d: PathwayDef) -> set[str]:
    """Rules that apply in every start and active state (``in: any_active``, e.g. emergencies)."""
    active = {s for s, spec in d.spec.states.items() if spec.kind != "terminal"}
    return {r.id for r in d.rules if active and active <= set(r.states)}


def rule_rows(rules: list[Rule], width: int = EDGE_WIDTH) -> list[list[Cell]]:
    """Rows of a label listing rules: the badge beside the title (wrapped), the id small below it."""
    rows: list[list[Cell]] = []
    for rule in rules:
        rows.append([badge_cell(rule.evidence), Cell.text(rule.title, width)])
        rows.append([Cell(((Run(""),),)), Cell.text(rule.id, small=True, colour=_MUTED)])
    return rows


def rules_tooltip(rules: list[Rule], d: PathwayDef, target: str, kind: str) -> str:
    """The tooltip of a move (``kind``: move, proposal or shared): where it leads, then each rule in
    words (:func:`pathway.render.labels.rule_summary`) for the branches that lead there."""
    head = {"move": "Moves the patient to", "proposal": "Proposes (the team records the decision):",
            "shared": "From every active state to"}[kind]
    title = d.spec.states[target].title if target in d.spec.states else target
    blocks = [f"{head} {one_line(title)}"]
    for rule in rules:
        branches: list[Branch] = [b for b, _ in moves_of(rule, target)] or ["then"]
        blocks.append(rule_summary(rule, d, branches))
    return "\n\n".join(blocks)


def _sideways(graph: nx.DiGraph, shared: set[str]) -> set[tuple[str, str]]:
    """Moves drawn across rather than down: between two states that one state leads to (a response
    after IV steroids, then deterioration), unless into a terminal state or part of a loop. They
    may keep their ends on one rank (``minlen=0``), so the diagram grows wide rather than tall."""
    own = {(u, v) for u, v, data in graph.edges(data=True)
           if any(r not in shared for r in data.get("rules", []) + data.get("proposals", []))}
    reach = {u: nx.descendants(graph.edge_subgraph(own), u) for u, _ in own}
    return {(u, v) for u, v in own
            if graph.nodes[v]["kind"] != "terminal" and u not in reach.get(v, set())
            and any((w, v) in own for w, _ in own if (w, u) in own)}


#: The box that stands for every start and active state (rules written ``in: any_active``).
ANY_ACTIVE_NODE = "any_active"


def state_table(node: str, title: str, options: list[str] | None = None, size: str = "12") -> Table:
    """A state's label: its title, its id small under it, the options it offers (if any) small."""
    rows = [[Cell(tuple((Run(line, size=size),) for line in wrap_lines(title, 26)), align="center")],
            [Cell(((Run(f"[{node}]", small=True, colour=_MUTED),),), align="center")]]
    if options:
        rows.append([Cell(tuple((Run(line, small=True, colour=STYLE["decision"]["color"]),)
                                for line in wrap_lines("options: " + ", ".join(options), 34)), align="center")])
    return Table(rows)


def rules_label(kind: str, members: list[Rule]) -> Table:
    """The label of a move: its rules (badge, title, id), under "proposal: the team decides" for proposals."""
    rows = rule_rows(members)
    if kind == "proposal":
        rows.insert(0, [Cell(((Run("proposal: the team decides", small=True, colour=STYLE["proposal_edge"]["color"]),),),
                             colspan=2)])
    return Table(rows)


def rules_plain(kind: str, members: list[Rule]) -> str:
    """The label of a move as one line of plain text (badge, title and id of each rule)."""
    text = "; ".join(f"{badge_text(r.evidence)} {r.title} ({r.id})" for r in members) or "(no rule)"
    return ("proposal: " + text) if kind == "proposal" else text


def _readable_diagram(graph: nx.DiGraph, d: PathwayDef) -> Diagram:
    name = graph.graph.get("id", d.id)
    out = Diagram(name, dot_text(f"{graph.graph.get('title', name)} (version {graph.graph.get('version', '?')})"
                                 + (f", profile {d.profile}" if d.profile else "")))
    out.graph_attrs.update({"rankdir": "TB", "nodesep": "0.15", "ranksep": "0.2"})
    out.node_attrs.update({"fontsize": "12", "margin": "0.12,0.06"})
    rules = {r.id: r for r in d.rules}
    shared = shared_rules(d)
    for node, data in graph.nodes(data=True):
        here = d.rules_in(node)
        options = offered_options(here)
        kind = "decision" if options and data["kind"] == "active" else data["kind"]
        label = _state_label(node, data) + (f"\\noptions: {dot_text(', '.join(options))}" if options else "")
        spec = d.spec.states.get(node)
        tip = [one_line(data["title"]) + f" [{node}]"]
        if spec is not None and spec.description:
            tip.append(one_line(spec.description))
        tip.append(f"{len(here)} rule(s) apply here" + ("; options: " + ", ".join(options) if options else ""))
        if spec is not None and spec.overdue is not None:
            tip.append("overdue: " + effect_text(spec.overdue.text, d))
        out.nodes.append(DiagramNode(node, label, dict(STYLE[kind]), table=state_table(node, data["title"], options),
                                     tooltip="\n".join(tip)))
    used: dict[str, set[str]] = {}
    # (target, kind) -> rule -> the states it moves the patient from; shared rules go to the box
    # that stands for every active state
    moves: dict[tuple[str, str], dict[str, list[str]]] = {}
    everywhere: dict[str, list[Rule]] = {}
    bare: list[tuple[str, str]] = []  # transitions no rule takes
    for source, target, data in graph.edges(data=True):
        auto = [r for r in data.get("rules", []) if r in rules]
        proposals = [r for r in data.get("proposals", []) if r in rules]
        if not auto and not proposals:
            bare.append((source, target))
        for rid in auto:
            if rid in shared:
                if rules[rid] not in everywhere.setdefault(target, []):
                    everywhere[target].append(rules[rid])
            else:
                moves.setdefault((target, "move"), {}).setdefault(rid, []).append(source)
        for rid in proposals:
            moves.setdefault((target, "proposal"), {}).setdefault(rid, []).append(source)
    for source, target in bare:
        out.edges.append(DiagramEdge(source, target, "(no rule)", dict(STYLE["move_edge"]),
                                     tooltip="no rule takes this transition"))
    sideways = _sideways(graph, shared)

    def placed(attrs: dict[str, str], *edges: tuple[str, str]) -> dict[str, str]:
        return {**attrs, "minlen": "0"} if edges and all(e in sideways for e in edges) else attrs

    junctions = 0
    for (target, kind), by_rule in moves.items():
        # rules that move from the same states share one label: from several states, the edges
        # meet at a junction and the label is drawn once, on the way into the target
        groups: dict[tuple[str, ...], list[Rule]] = {}  # the states moved from -> the rules
        for rid, froms in by_rule.items():
            groups.setdefault(tuple(froms), []).append(rules[rid])
        for sources, members in groups.items():
            for r in members:
                used.setdefault(r.evidence.strength, set()).add(r.evidence.status)
            attrs = dict(STYLE[f"{kind}_edge"])
            tooltip = rules_tooltip(members, d, target, kind)
            label, table = dot_text(rules_plain(kind, members)), rules_label(kind, members)
            if len(sources) == 1:
                out.edges.append(DiagramEdge(sources[0], target, label, placed(attrs, (sources[0], target)), table=table,
                                             tooltip=tooltip))
                continue
            junctions += 1
            junction = f"junction_{junctions}"
            while junction in graph:
                junction += "_"
            out.nodes.append(DiagramNode(junction, "", dict(STYLE["junction"], color=attrs["color"]), tooltip=tooltip))
            for source in sources:
                out.edges.append(DiagramEdge(source, junction, "", placed({**attrs, "arrowhead": "none"}, (source, target)),
                                             tooltip=tooltip))
            out.edges.append(DiagramEdge(junction, target, label, placed(attrs, *((src, target) for src in sources)),
                                         table=table, tooltip=tooltip))
    if everywhere:
        node_id = ANY_ACTIVE_NODE
        while node_id in graph:
            node_id += "_"
        states = [s for s, data in graph.nodes(data=True) if data["kind"] != "terminal"]
        out.nodes.append(DiagramNode(node_id, "Any active state", dict(STYLE["any_active"]),
                                     tooltip="Every start or active state: " + ", ".join(states)))
        for target, members in everywhere.items():
            for r in members:
                used.setdefault(r.evidence.strength, set()).add(r.evidence.status)
            out.edges.append(DiagramEdge(node_id, target, dot_text(rules_plain("shared", members)),
                                         dict(STYLE["emergency_edge"]), table=rules_label("shared", members),
                                         tooltip=rules_tooltip(members, d, target, "shared")))
    out.legend = pathway_legend(used, bool(everywhere))
    out.legend_place = "strip"
    return out


def pathway_legend(used: dict[str, set[str]], emergency: bool) -> list[LegendItem]:
    """The legend of the readable pathway diagram: state kinds, kinds of move, the evidence badges in use."""
    items: list[LegendItem] = [
        ("States", "header", {}),
        ("start", "node", dict(STYLE["start"])),
        ("active state", "node", dict(STYLE["active"])),
        ("decision point: options offered, the team records the choice", "node", dict(STYLE["decision"])),
        ("terminal: the pathway is over for this admission", "node", dict(STYLE["terminal"])),
        ("Moves: each rule's title, its id below", "header", {}),
        ("automatic: the rules move the patient", "edge", dict(STYLE["move_edge"])),
        ("proposal: moves once the team records the decision", "edge", dict(STYLE["proposal_edge"])),
    ]
    if emergency:
        items.append(("emergency: from every active state", "edge", dict(STYLE["emergency_edge"])))
    items.append(("Evidence of each rule", "header", {}))
    order = list(STRENGTH_WORDS)
    for strength in sorted(used, key=lambda s: order.index(s) if s in order else len(order)):
        items.append((STRENGTH_WORDS.get(strength, strength), "badge", {"strength": strength, "status": "verified"}))
    if any("unverified" in statuses for statuses in used.values()):
        items.append(("not verified (dashed)", "badge", {"strength": "S", "status": "unverified", "shown": "?"}))
    items.append(("Hover a move for its full criterion.", "note", {"svg_only": "1"}))
    return items


def _fmt_day(day: Any) -> str:
    return f"{day:g}" if isinstance(day, (int, float)) else dot_text(day)


def build_trace_diagram(graph: nx.DiGraph, result: dict[str, Any]) -> Diagram:
    """The pathway with one patient's course (a session result) overlaid.

    Visited states and taken transitions are highlighted; each taken transition is labelled
    ``<step>. <rule> (day <d>)`` in the order of the course; the current state is marked
    ``now, day <d>``; states and transitions not taken are faded.
    """
    base = build_diagram(graph)
    steps = [t for t in result.get("trace", []) if "to" in t]
    visited = set(result.get("path", []))
    current = result.get("state")
    entered: dict[str, Any] = {}
    for t in steps:
        entered.setdefault(t["to"], t["day"])
    title = (f"{dot_text(graph.graph.get('title', base.name))} - patient {dot_text(result.get('patient_id', '?'))}, "
             f"day {_fmt_day(result.get('day'))} (version {dot_text(graph.graph.get('version', '?'))})")
    d = Diagram(base.name, title, graph_attrs=dict(base.graph_attrs), node_attrs=dict(base.node_attrs),
                edge_attrs=dict(base.edge_attrs))
    for n in base.nodes:
        kind = graph.nodes[n.id]["kind"]
        attrs = dict(STYLE[kind])
        label = n.label
        if n.id == current:
            attrs.update(STYLE["current"])
            attrs["style"] = attrs.get("style", "filled") + ",bold"
            label += f"\\nnow, day {_fmt_day(result.get('day'))}"
        elif n.id in visited:
            attrs.update(STYLE["visited"])
            if n.id in entered:
                label += f"\\nentered day {_fmt_day(entered[n.id])}"
        else:
            attrs.update(STYLE["faded"])
        d.nodes.append(DiagramNode(n.id, label, attrs))
    taken: dict[tuple[str, str], list[str]] = {}
    for i, t in enumerate(steps, start=1):
        taken.setdefault((t["from"], t["to"]), []).append(f"{i}. {dot_text(t['rule'])} (day {_fmt_day(t['day'])})")
    for e in base.edges:
        if (e.source, e.target) in taken:
            d.edges.append(DiagramEdge(e.source, e.target, "\\n".join(taken[(e.source, e.target)]), dict(STYLE["taken_edge"])))
        else:
            d.edges.append(DiagramEdge(e.source, e.target, e.label, dict(STYLE["faded_edge"])))
    d.legend = [("current state", "node", {**STYLE["active"], **STYLE["current"]}),
                ("visited state", "node", {**STYLE["active"], **STYLE["visited"]}),
                ("not visited", "node", {**STYLE["active"], **STYLE["faded"]}),
                ("taken: step. rule (day)", "edge", dict(STYLE["taken_edge"])),
                ("not taken", "edge", dict(STYLE["faded_edge"]))]
    return d


# -- rendering ----------------------------------------------------------------------------------

def _legend_arrow(attrs: dict[str, str]) -> str:
    style = attrs.get("style", "")
    line = " . . . ." if "dotted" in style else " - - -" if "dashed" in style else " -----"
    return line + ("&gt;" if attrs.get("arrowhead", "normal") == "normal" else "|&gt;")


def _legend_html(legend: list[LegendItem]) -> str:
    if any(kind == "badge" for _, kind, _ in legend):
        return _legend_table(legend)
    rows = []
    for text, kind, attrs in legend:
        label = html.escape(one_line(text))
        if kind == "node":
            fill = attrs.get("fillcolor", "#ffffff")
            color = attrs.get("color", "#000000")
            font = attrs.get("fontcolor", "#000000")
            rows.append(f'<tr><td bgcolor="{fill}" color="{color}" border="2"><font color="{font}">{label}</font></td></tr>')
        elif kind == "edge":
            color = attrs.get("color", "#000000")
            rows.append(f'<tr><td border="0" align="left"><font color="{color}"><b>{_legend_arrow(attrs)}</b> {label}'
                        "</font></td></tr>")
        elif kind == "badge":
            rows.append(f'<tr><td border="0" align="left">[{html.escape(badge_text(_legend_evidence(attrs)))}] {label}'
                        "</td></tr>")
        elif kind == "header":
            rows.append(f'<tr><td border="0" align="left"><b>{label}</b></td></tr>')
        else:
            rows.append(f'<tr><td border="0" align="left"><font point-size="9" color="#475569">{label}</font></td></tr>')
    return '<<table border="0" cellspacing="4" cellpadding="4">' + "".join(rows) + "</table>>"


def _legend_table(legend: list[LegendItem]) -> str:
    """A legend with evidence badges: two columns (the badge, or a sample, and the words)."""
    rows = []
    for text, kind, attrs in legend:
        label = html.escape(one_line(text))
        if kind == "node":
            fill = attrs.get("fillcolor", "#ffffff")
            color = attrs.get("color", "#000000")
            font = attrs.get("fontcolor", "#000000")
            rows.append(f'<tr><td colspan="2" bgcolor="{fill}" color="{color}" border="2"><font color="{font}">{label}'
                        "</font></td></tr>")
        elif kind == "edge":
            color = attrs.get("color", "#000000")
            rows.append(f'<tr><td border="0" align="left"><font color="{color}"><b>{_legend_arrow(attrs)}</b></font></td>'
                        f'<td border="0" align="left"><font color="{color}">{label}</font></td></tr>')
        elif kind == "badge":
            rows.append(f'<tr>{_legend_badge(attrs)}<td border="0" align="left">{label}</td></tr>')
        elif kind == "header":
            rows.append(f'<tr><td colspan="2" border="0" align="left"><b>{label}</b></td></tr>')
        else:
            rows.append(f'<tr><td colspan="2" border="0" align="left"><font point-size="9" color="#475569">{label}'
                        "</font></td></tr>")
    return '<<table border="0" cellspacing="3" cellpadding="3">' + "".join(rows) + "</table>>"


def _legend_strip(title: str, legend: list[LegendItem]) -> str:
    """The diagram's title with the legend under it, its sections (each starting at a ``header``)
    side by side: an HTML-like graph label."""
    sections: list[list[str]] = []
    for text, kind, attrs in legend:
        label = f'<font point-size="10">{html.escape(one_line(text))}</font>'
        if kind == "header" or not sections:
            sections.append([])
        rows = sections[-1]
        if kind == "header":
            rows.append(f'<tr><td colspan="2" align="left"><b>{label}</b></td></tr>')
        elif kind == "node":
            fill, color = attrs.get("fillcolor", "#ffffff"), attrs.get("color", "#000000")
            rows.append(f'<tr><td colspan="2" bgcolor="{fill}" color="{color}" border="1">{label}</td></tr>')
        elif kind == "edge":
            color = attrs.get("color", "#000000")
            rows.append(f'<tr><td align="left"><font color="{color}"><b>{_legend_arrow(attrs)}</b></font></td>'
                        f'<td align="left"><font color="{color}">{label}</font></td></tr>')
        elif kind == "badge":
            rows.append(f'<tr>{_legend_badge(attrs)}<td align="left">{label}</td></tr>')
        else:
            rows.append(f'<tr><td colspan="2" align="left"><font color="#475569">{label}</font></td></tr>')
    columns = "".join(f'<td valign="top"><table border="0" cellspacing="1" cellpadding="1">{"".join(rows)}</table></td>'
                      for rows in sections)
    heading = html.escape(one_line(" ".join(_label_lines(title))))
    return (f'<<table border="0" cellspacing="0" cellpadding="3"><tr><td colspan="{len(sections)}">'
            f'<font point-size="16">{heading}</font></td></tr>'
            f'<tr><td colspan="{len(sections)}"> </td></tr>'
            f'<tr>{columns}</tr></table>>')


def _legend_evidence(attrs: dict[str, str]) -> Evidence:
    return Evidence(sources=["-"], strength=attrs.get("strength", "G"), status=attrs.get("status", "verified"))  # type: ignore[arg-type]


def _legend_badge(attrs: dict[str, str]) -> str:
    """A badge as a legend cell: a small table inside, so the badge keeps its own size."""
    cell = badge_cell(_legend_evidence(attrs))
    if "shown" in attrs:
        cell = Cell(((Run(attrs["shown"], small=True, bold=True, colour=cell.lines[0][0].colour),),), bg=cell.bg,
                    border=cell.border, dashed=cell.dashed, align="center", boxed=True)
    return table_html(Table([[cell]]))[1:-1].split("<tr>", 1)[1].rsplit("</tr>", 1)[0]



def _legend_plain(text: str, kind: str, attrs: dict[str, str]) -> str:
    """A legend entry as plain text (Mermaid)."""
    if kind == "edge":
        style = attrs.get("style", "")
        arrow = ". . . ." if "dotted" in style else "- - -" if "dashed" in style else "----"
        return arrow + ("o " if attrs.get("arrowhead") == "onormal" else "> ") + text
    if kind == "badge":
        return f"[{attrs.get('shown') or badge_text(_legend_evidence(attrs))}] {text}"
    return text


#: The longest tooltip drawn (Graphviz refuses a quoted string of more than 16,384 characters, and
#: escaping can make a character four): longer text is cut with an ellipsis.
MAX_TOOLTIP = 3000


def _tooltip(text: str) -> graphviz.quoting.NoHtml:
    """A tooltip as a DOT escape string: its lines joined by ``\\n``, each made inert by :func:`dot_text`."""
    if len(text) > MAX_TOOLTIP:
        text = text[: MAX_TOOLTIP - 1] + "…"
    return graphviz.nohtml("\\n".join(dot_text(line) for line in text.split("\n")))


_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _node_id(node: str) -> str:
    """A node's id in DOT and Mermaid: itself when a plain identifier (every valid state id is),
    else a name made from its hash (the label still shows the id, escaped)."""
    if _PLAIN_ID.fullmatch(node):
        return node
    return "n_" + hashlib.sha256(node.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _dot_node(graph: Any, n: DiagramNode) -> None:
    label = table_html(n.table) if n.table is not None else graphviz.nohtml(n.label)
    extra = {"tooltip": _tooltip(n.tooltip)} if n.tooltip else {}
    graph.node(_node_id(n.id), label=label, **n.attrs, **extra)


def diagram_to_dot(d: Diagram) -> str:
    """Graphviz DOT source of a diagram (deterministic: attributes sorted by the graphviz package).

    Plain labels and tooltips are quoted escape strings (``nohtml``), whatever a text holds; a
    rich label (``table``) is an HTML-like label built by :func:`pathway.render.labels.table_html`,
    which escapes every text. Nodes of a cluster are declared inside it.
    """
    dot = graphviz.Digraph(name=_node_id(d.name), strict=False)
    strip = bool(d.legend) and d.legend_place == "strip"
    dot.attr(label=_legend_strip(d.title, d.legend) if strip else graphviz.nohtml(d.title), **d.graph_attrs)
    dot.attr("node", **d.node_attrs)
    dot.attr("edge", **d.edge_attrs)
    nodes = {n.id: n for n in d.nodes}
    placed: set[str] = set()
    for c in d.clusters:
        with dot.subgraph(name=f"cluster_{_node_id(c.id)}") as sub:
            sub.attr(label=graphviz.nohtml(wrap(c.title, 60)), **c.attrs)  # wrapped: an overwide cluster fails dot
            for member in c.nodes:
                if member in nodes and member not in placed:
                    _dot_node(sub, nodes[member])
                    placed.add(member)
    for n in d.nodes:
        if n.id not in placed:
            _dot_node(dot, n)
    for e in d.edges:
        label = table_html(e.table) if e.table is not None else graphviz.nohtml(e.label)
        extra = {"tooltip": _tooltip(e.tooltip), "labeltooltip": _tooltip(e.tooltip)} if e.tooltip else {}
        dot.edge(_node_id(e.source), _node_id(e.target), label=label, **e.attrs, **extra)
    if d.legend and not strip:
        with dot.subgraph(name="cluster_legend") as legend:
            legend.attr(label="Legend", fontsize="11", style="rounded", color="#cbd5e1")
            legend.node("legend", label=_legend_html(d.legend), shape="plaintext")
    return cast(str, dot.source)  # graphviz is untyped; ``source`` is the DOT text


_MERMAID_RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click", "linkstyle",
                     "direction", "default"}


def _mermaid_id(node: str) -> str:
    node = _node_id(node)
    return f"{node}_" if node.lower() in _MERMAID_RESERVED else node


def _label_lines(label: str) -> list[str]:
    """A DOT escape-string label as its lines of plain text (``\\n`` breaks, ``\\\\`` is a backslash)."""
    lines: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(label):
        ch = label[i]
        if ch == "\\" and i + 1 < len(label):
            nxt = label[i + 1]
            if nxt == "n":
                lines.append("".join(out))
                out = []
            else:
                out.append(nxt if nxt in "\\\"" else ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    lines.append("".join(out))
    return lines


#: Characters of a text that Mermaid would read as syntax, as its entity codes.
_MERMAID_ENTITIES = {"#": "#35;", "&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;", "|": "#124;"}
_MERMAID_SYNTAX = re.compile("[" + re.escape("".join(_MERMAID_ENTITIES)) + "]")


def _mermaid_text(label: str) -> str:
    """A label as the text of a quoted Mermaid string: lines joined by ``<br/>``, syntax as entity codes."""
    return "<br/>".join(_MERMAID_SYNTAX.sub(lambda m: _MERMAID_ENTITIES[m.group()], one_line(line))
                        for line in _label_lines(label))


def _mermaid_title(title: str) -> str:
    """The title for the YAML front matter: one double-quoted line; Mermaid reads no entity codes
    there, so ``<``/``>`` are shown as the single angle quotes ``‹``/``›`` and ``"`` as ``'``."""
    text = " ".join(_label_lines(title))
    text = one_line(text).replace("\\", "\\\\").replace('"', "'").replace("<", "\u2039").replace(">", "\u203a")
    return f'"{text}"'


def _mermaid_style(attrs: dict[str, str], edge: bool = False) -> str:
    parts = []
    if not edge and "fillcolor" in attrs:
        parts.append(f"fill:{attrs['fillcolor']}")
    if "color" in attrs:
        parts.append(f"stroke:{attrs['color']}")
    if "penwidth" in attrs:
        parts.append(f"stroke-width:{attrs['penwidth']}px")
    if "dashed" in attrs.get("style", ""):
        parts.append("stroke-dasharray:5 5")
    elif "dotted" in attrs.get("style", ""):
        parts.append("stroke-dasharray:2 3")
    if "fontcolor" in attrs:
        parts.append(f"color:{attrs['fontcolor']}")
    return ",".join(parts)


def _mermaid_shape(node_id: str, text: str, attrs: dict[str, str]) -> str:
    if attrs.get("shape") == "point":
        return f'{node_id}((" "))'
    if attrs.get("shape") == "oval":
        return f'{node_id}(["{text}"])'
    if attrs.get("peripheries") == "2":
        return f'{node_id}[["{text}"]]'
    if "rounded" in attrs.get("style", ""):
        return f'{node_id}("{text}")'
    return f'{node_id}["{text}"]'


def _mermaid_label(label: str, table: Table | None) -> str:
    """A plain (DOT escape string) label, or a table's lines, as Mermaid text."""
    if table is not None:
        label = "\\n".join(dot_text(line) for line in table_lines(table))
    return _mermaid_text(label)


def _mermaid_arrow(attrs: dict[str, str]) -> str:
    if attrs.get("arrowhead") == "none":  # into a junction: the arrow is drawn once, out of it
        return "-.-" if any(k in attrs.get("style", "") for k in ("dashed", "dotted")) else "---"
    if attrs.get("arrowhead") == "onormal":
        return "--o"
    if "dashed" in attrs.get("style", ""):
        return "-.->"
    return "==>" if float(attrs.get("penwidth", "1")) >= 2 else "-->"


def _mermaid_legend_style(kind: str, attrs: dict[str, str]) -> str:
    if kind == "node":
        return _mermaid_style(attrs)
    if kind == "badge":
        colour = BADGE_COLOURS.get(attrs.get("strength", ""), "#475569")
        dash = ",stroke-dasharray:3 3" if attrs.get("status") == "unverified" else ""
        return f"fill:#ffffff,stroke:{colour},color:{colour}{dash}"
    if kind in ("header", "note"):
        return "fill:#ffffff,stroke:#ffffff,color:#0f172a"
    color = attrs.get("color", "#000000")
    return f"fill:#ffffff,stroke:{color},color:{color}"


def diagram_to_mermaid(d: Diagram) -> str:
    """Mermaid flowchart source of a diagram (same states, transitions, labels, clusters and colours)."""
    lines = ["---", f"title: {_mermaid_title(d.title)}", "---", "flowchart TB"]
    nodes = {n.id: n for n in d.nodes}
    placed: set[str] = set()
    for c in d.clusters:
        members = [nodes[m] for m in c.nodes if m in nodes and m not in placed]
        if not members:
            continue
        lines.append(f'    subgraph cluster_{_node_id(c.id)} ["{_mermaid_text(dot_text(c.title))}"]')
        for n in members:
            lines.append("        " + _mermaid_shape(_mermaid_id(n.id), _mermaid_label(n.label, n.table), n.attrs))
            placed.add(n.id)
        lines.append("    end")
    for n in d.nodes:
        if n.id not in placed:
            lines.append("    " + _mermaid_shape(_mermaid_id(n.id), _mermaid_label(n.label, n.table), n.attrs))
    links: list[str] = []
    for e in d.edges:
        text = _mermaid_label(e.label, e.table)
        label = f'|"{text}"|' if text else ""
        lines.append(f"    {_mermaid_id(e.source)} {_mermaid_arrow(e.attrs)}{label} {_mermaid_id(e.target)}")
        links.append(_mermaid_style(e.attrs, edge=True))
    legend = [item for item in d.legend if not item[2].get("svg_only")]
    if legend:
        lines.append('    subgraph legend ["Legend"]')
        lines.append("        direction TB")
        for i, (text, kind, attrs) in enumerate(legend):
            lines.append(f'        legend_{i}["{_mermaid_text(dot_text(_legend_plain(text, kind, attrs)))}"]')
        lines.append("    end")
    for n in d.nodes:
        style = _mermaid_style(n.attrs)
        if style:
            lines.append(f"    style {_mermaid_id(n.id)} {style}")
    for i, (_text, kind, attrs) in enumerate(legend):
        lines.append(f"    style legend_{i} {_mermaid_legend_style(kind, attrs)}")
    for c in d.clusters:
        if any(m in placed for m in c.nodes):
            lines.append(f"    style cluster_{_node_id(c.id)} {_mermaid_style(c.attrs)}")
    for i, style in enumerate(links):
        if style:
            lines.append(f"    linkStyle {i} {style}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: nx.DiGraph, definition: PathwayDef | None = None, *, clusters: bool = False) -> str:
    """Mermaid source of the pathway diagram (see :func:`build_diagram`)."""
    return diagram_to_mermaid(build_diagram(graph, definition, clusters=clusters))


def diagram_format(out: Path | None, fmt: str | None) -> str:
    """The format asked for: ``fmt`` if given, else the file suffix (.dot .svg .mmd), else svg."""
    if fmt:
        if fmt not in DIAGRAM_FORMATS:
            raise PathwayError(f"unknown diagram format '{fmt}' (use {', '.join(DIAGRAM_FORMATS)})")
        return fmt
    if out is not None and out.suffix in _SUFFIX_FORMAT:
        return _SUFFIX_FORMAT[out.suffix]
    return "svg"


def render_diagram(d: Diagram, fmt: str) -> str:
    """The diagram as text in one format (``svg`` runs Graphviz's ``dot``)."""
    if fmt == "mermaid":
        return diagram_to_mermaid(d)
    source = diagram_to_dot(d)
    return render_svg(source) if fmt == "svg" else source


def write_diagram(d: Diagram, out: Path, fmt: str | None = None) -> Path:
    """Write a diagram to ``out`` in ``fmt`` (default: by suffix); a missing suffix is added."""
    kind = diagram_format(out, fmt)
    suffix = {"dot": ".dot", "svg": ".svg", "mermaid": ".mmd"}[kind]
    if _SUFFIX_FORMAT.get(out.suffix) == kind:
        path = out
    elif out.suffix in _SUFFIX_FORMAT:
        path = out.with_suffix(suffix)
    else:
        path = Path(str(out) + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_diagram(d, kind), encoding="utf-8")
    return path
