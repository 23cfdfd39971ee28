"""Diagrams of the state graph: DOT text built deterministically, SVG rendered by Graphviz ``dot``.

Building (an intermediate description from the graph) is kept apart from rendering (DOT,
then ``dot -Tsvg``; or Mermaid); the style table maps state kinds to Graphviz attributes.

- :func:`to_dot` draws the plain pathway (the committed ``diagrams/<id>.dot``);
- :func:`build_diagram`, :func:`build_trace_diagram` build a :class:`Diagram` (nodes and edges
  with Graphviz attributes, a legend), rendered by :func:`diagram_to_dot` or
  :func:`diagram_to_mermaid` and written by :func:`write_diagram`;
- a trace diagram overlays one patient's course: visited states and taken transitions
  highlighted and numbered in order with the rule and the day, the current state marked, the
  rest faded.

Text from rule files and cases (titles, ids, the patient id) is inert in every format: labels of
the diagram model are DOT escape strings (``\\n`` breaks a line; every other backslash of a text is
doubled by :func:`dot_text`, control characters are shown escaped), never HTML-like labels; the
Mermaid writer turns them back into lines and escapes quotes, ``#``, ``<``, ``>``, ``&``, backticks
and ``|`` as Mermaid entity codes; a node id that is not a plain identifier is drawn under a
generated one.
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

__all__ = [
    "STYLE",
    "to_dot",
    "render_svg",
    "write_diagrams",
    "DotNotFound",
    "Diagram",
    "DiagramNode",
    "DiagramEdge",
    "build_diagram",
    "build_trace_diagram",
    "diagram_to_dot",
    "diagram_to_mermaid",
    "to_mermaid",
    "write_diagram",
    "render_diagram",
    "diagram_format",
    "DIAGRAM_FORMATS",
    "dot_text",
]

#: Role -> Graphviz node attributes.
STYLE: dict[str, dict[str, str]] = {
    "start": {"shape": "oval", "style": "filled,bold", "fillcolor": "#dbeafe", "color": "#1d4ed8"},
    "active": {"shape": "box", "style": "filled,rounded", "fillcolor": "#f1f5f9", "color": "#334155"},
    "terminal": {"shape": "box", "style": "filled,rounded", "fillcolor": "#fef3c7", "color": "#92400e",
                 "peripheries": "2"},
    "emergency_edge": {"color": "#b91c1c", "fontcolor": "#b91c1c", "style": "dashed"},
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
    words, lines, line = dot_text(text).split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return "\\n".join(lines)


def to_dot(graph: nx.DiGraph) -> str:
    """DOT source of the pathway graph: states by kind, edges labelled with rule ids (see :func:`build_diagram`)."""
    return diagram_to_dot(build_diagram(graph))


def render_svg(dot_source: str) -> str:
    """SVG text rendered by Graphviz's ``dot``."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotNotFound("Graphviz 'dot' was not found on PATH; install Debian's 'graphviz' package")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0:
        raise PathwayError(f"dot failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout.decode("utf-8")


def write_diagrams(graph: nx.DiGraph, out: Path) -> list[Path]:
    """Write ``<out>.dot`` and ``<out>.svg`` (``out`` without suffix, or with .dot/.svg)."""
    base = out.with_suffix("") if out.suffix in (".dot", ".svg") else out
    base.parent.mkdir(parents=True, exist_ok=True)
    source = to_dot(graph)
    dot_path, svg_path = base.with_suffix(".dot"), base.with_suffix(".svg")
    dot_path.write_text(source, encoding="utf-8")
    svg_path.write_text(render_svg(source), encoding="utf-8")
    return [dot_path, svg_path]


# -- the diagram model ------------------------------------------------------------------------

@dataclass
class DiagramNode:
    """A state as drawn: DOT label (lines joined by ``\\n``) and Graphviz attributes."""

    id: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class DiagramEdge:
    """A transition as drawn."""

    source: str
    target: str
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Diagram:
    """What a diagram shows, independent of the output format."""

    name: str
    title: str
    nodes: list[DiagramNode] = field(default_factory=list)
    edges: list[DiagramEdge] = field(default_factory=list)
    #: (label, kind "node" or "edge", attributes) drawn in a legend box; empty: no legend
    legend: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    graph_attrs: dict[str, str] = field(default_factory=lambda: {
        "labelloc": "t", "fontname": "Helvetica", "fontsize": "16", "rankdir": "TB", "nodesep": "0.4", "ranksep": "0.55"})
    node_attrs: dict[str, str] = field(default_factory=lambda: {"fontname": "Helvetica", "fontsize": "11"})
    edge_attrs: dict[str, str] = field(default_factory=lambda: {"fontname": "Helvetica", "fontsize": "9", "color": "#475569"})


def _state_label(node: str, data: dict[str, Any]) -> str:
    return f"{wrap(data['title'])}\\n[{dot_text(node)}]"


def _emergency(data: dict[str, Any]) -> bool:
    """An edge that exists only because it leaves every active state (``from: any_active``)."""
    return bool(data.get("any_active"))


def build_diagram(graph: nx.DiGraph) -> Diagram:
    """The plain pathway: states by kind, edges labelled with the ids of the rules that take them."""
    name = graph.graph.get("id", "pathway")
    d = Diagram(name, dot_text(f"{graph.graph.get('title', name)} (version {graph.graph.get('version', '?')})"))
    for node, data in graph.nodes(data=True):
        d.nodes.append(DiagramNode(node, _state_label(node, data), dict(STYLE[data["kind"]])))
    for source, target, data in graph.edges(data=True):
        rules = [dot_text(r) for r in data.get("rules", [])] + [f"{dot_text(r)} (proposal)" for r in data.get("proposals", [])]
        label = "\\n".join(rules) if rules else "(no rule)"
        attrs = dict(STYLE["emergency_edge"]) if _emergency(data) else {}
        d.edges.append(DiagramEdge(source, target, label, attrs))
    return d


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

def _legend_html(legend: list[tuple[str, str, dict[str, str]]]) -> str:
    rows = []
    for text, kind, attrs in legend:
        label = html.escape(text)
        if kind == "node":
            fill = attrs.get("fillcolor", "#ffffff")
            color = attrs.get("color", "#000000")
            font = attrs.get("fontcolor", "#000000")
            rows.append(f'<tr><td bgcolor="{fill}" color="{color}" border="2"><font color="{font}">{label}</font></td></tr>')
        else:
            color = attrs.get("color", "#000000")
            dash = " - - -" if "dashed" in attrs.get("style", "") else " -----"
            rows.append(f'<tr><td border="0" align="left"><font color="{color}"><b>{dash}&gt;</b> {label}</font></td></tr>')
    return '<<table border="0" cellspacing="4" cellpadding="4">' + "".join(rows) + "</table>>"


_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _node_id(node: str) -> str:
    """A node's id in DOT and Mermaid: itself when a plain identifier (every valid state id is),
    else a name made from its hash (the label still shows the id, escaped)."""
    if _PLAIN_ID.fullmatch(node):
        return node
    return "n_" + hashlib.sha256(node.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def diagram_to_dot(d: Diagram) -> str:
    """Graphviz DOT source of a diagram (deterministic: attributes sorted by the graphviz package).

    Labels are quoted escape strings, never HTML-like labels (``nohtml``), whatever a text holds.
    """
    dot = graphviz.Digraph(name=_node_id(d.name), strict=False)
    dot.attr(label=graphviz.nohtml(d.title), **d.graph_attrs)
    dot.attr("node", **d.node_attrs)
    dot.attr("edge", **d.edge_attrs)
    for n in d.nodes:
        dot.node(_node_id(n.id), label=graphviz.nohtml(n.label), **n.attrs)
    for e in d.edges:
        dot.edge(_node_id(e.source), _node_id(e.target), label=graphviz.nohtml(e.label), **e.attrs)
    if d.legend:
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
    if "fontcolor" in attrs:
        parts.append(f"color:{attrs['fontcolor']}")
    return ",".join(parts)


def _mermaid_shape(node_id: str, text: str, attrs: dict[str, str]) -> str:
    if attrs.get("shape") == "oval":
        return f'{node_id}(["{text}"])'
    if attrs.get("peripheries") == "2":
        return f'{node_id}[["{text}"]]'
    if "rounded" in attrs.get("style", ""):
        return f'{node_id}("{text}")'
    return f'{node_id}["{text}"]'


def diagram_to_mermaid(d: Diagram) -> str:
    """Mermaid flowchart source of a diagram (same states, transitions, labels and colours)."""
    lines = ["---", f"title: {_mermaid_title(d.title)}", "---", "flowchart TB"]
    for n in d.nodes:
        lines.append("    " + _mermaid_shape(_mermaid_id(n.id), _mermaid_text(n.label), n.attrs))
    links: list[str] = []
    for e in d.edges:
        arrow = "-.->" if "dashed" in e.attrs.get("style", "") else ("==>" if float(e.attrs.get("penwidth", "1")) >= 2 else "-->")
        label = f'|"{_mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"    {_mermaid_id(e.source)} {arrow}{label} {_mermaid_id(e.target)}")
        links.append(_mermaid_style(e.attrs, edge=True))
    if d.legend:
        lines.append('    subgraph legend ["Legend"]')
        lines.append("        direction TB")
        for i, (text, kind, attrs) in enumerate(d.legend):
            shown = text if kind == "node" else ("- - -> " if "dashed" in attrs.get("style", "") else "----> ") + text
            lines.append(f'        legend_{i}["{_mermaid_text(shown)}"]')
        lines.append("    end")
    for n in d.nodes:
        style = _mermaid_style(n.attrs)
        if style:
            lines.append(f"    style {_mermaid_id(n.id)} {style}")
    for i, (_text, kind, attrs) in enumerate(d.legend):
        color = attrs.get("color", "#000000")
        style = _mermaid_style(attrs) if kind == "node" else f"fill:#ffffff,stroke:{color},color:{color}"
        lines.append(f"    style legend_{i} {style}")
    for i, style in enumerate(links):
        if style:
            lines.append(f"    linkStyle {i} {style}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: nx.DiGraph) -> str:
    """Mermaid source of the plain pathway diagram."""
    return diagram_to_mermaid(build_diagram(graph))


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
