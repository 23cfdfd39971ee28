"""Diagrams of the state graph: DOT text built deterministically, SVG rendered by Graphviz ``dot``.

Building (an intermediate description from the graph) is kept apart from rendering (DOT,
then ``dot -Tsvg``); the style table maps state kinds to Graphviz attributes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import graphviz
import networkx as nx

from .errors import PathwayError

__all__ = ["STYLE", "to_dot", "render_svg", "write_diagrams", "DotNotFound"]

#: Role -> Graphviz node attributes.
STYLE: dict[str, dict[str, str]] = {
    "start": {"shape": "oval", "style": "filled,bold", "fillcolor": "#dbeafe", "color": "#1d4ed8"},
    "active": {"shape": "box", "style": "filled,rounded", "fillcolor": "#f1f5f9", "color": "#334155"},
    "terminal": {"shape": "box", "style": "filled,rounded", "fillcolor": "#fef3c7", "color": "#92400e",
                 "peripheries": "2"},
    "emergency_edge": {"color": "#b91c1c", "fontcolor": "#b91c1c", "style": "dashed"},
}


class DotNotFound(PathwayError):
    """Graphviz's ``dot`` is not installed (Debian package ``graphviz``)."""


def _wrap(text: str, width: int = 28) -> str:
    words, lines, line = text.split(), [], ""
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
    """DOT source of the pathway graph: states by kind, edges labelled with rule ids."""
    name = graph.graph.get("id", "pathway")
    dot = graphviz.Digraph(name=name, strict=False)
    dot.attr(label=f"{graph.graph.get('title', name)} (version {graph.graph.get('version', '?')})",
             labelloc="t", fontname="Helvetica", fontsize="16", rankdir="TB", nodesep="0.4", ranksep="0.55")
    dot.attr("node", fontname="Helvetica", fontsize="11")
    dot.attr("edge", fontname="Helvetica", fontsize="9", color="#475569")
    for node, data in graph.nodes(data=True):
        dot.node(node, label=f"{_wrap(data['title'])}\\n[{node}]", **STYLE[data["kind"]])
    for source, target, data in graph.edges(data=True):
        rules = data.get("rules", [])
        label = "\\n".join(rules) if rules else "(no rule)"
        attrs: dict[str, str] = {}
        if target == "colectomy" and any(r in ("toxic_megacolon", "perforation_or_massive_bleed") for r in rules) and len(rules) <= 2:
            attrs = dict(STYLE["emergency_edge"])
        dot.edge(source, target, label=label, **attrs)
    return dot.source


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
