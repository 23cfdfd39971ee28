"""Patient-path diagrams (`pathway trace`) and Mermaid export, tested as DOT/Mermaid text and rendered with dot."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import yaml
from cases import rescue
from conftest import ROOT

from pathway.cli.main import main
from pathway.render.diagram import STYLE, build_diagram, build_trace_diagram, diagram_to_dot, render_svg, to_dot, to_mermaid

DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"
NODE = re.compile(r'^\t(\w+) \[label="(.*?)"(.*)\]$', re.M)
EDGE = re.compile(r'^\t(\w+) -> (\w+) \[label=("?)(.*?)\3( .*)?\]$', re.M)


def _demo_result(pw) -> dict:
    return pw.run_case(yaml.safe_load(DEMO.read_text(encoding="utf-8")))


def _nodes(dot: str) -> dict[str, tuple[str, str]]:
    return {m[0]: (m[1], m[2]) for m in NODE.findall(dot)}


def _edges(dot: str) -> dict[tuple[str, str], tuple[str, str]]:
    return {(m[0], m[1]): (m[3], m[4]) for m in EDGE.findall(dot)}


def test_trace_highlights_the_course_in_order(pw):
    result = _demo_result(pw)
    dot = diagram_to_dot(build_trace_diagram(pw.graph, result))
    path = result["path"]
    assert path == ["suspected_asuc", "iv_steroids", "rescue_selection", "rescue_tacrolimus", "maintenance_thiopurine"]
    nodes, edges = _nodes(dot), _edges(dot)
    assert set(nodes) == set(pw.graph.nodes)
    assert "\t\tlegend [label=<<table" in dot  # the legend is an HTML-like label inside its cluster
    assert set(edges) == set(pw.graph.edges)
    current_label, current_attrs = nodes["maintenance_thiopurine"]
    assert current_label.endswith("\\nnow, day 11") and 'fillcolor="#4ade80"' in current_attrs and "penwidth=3.5" in current_attrs
    for state in path[1:-1]:
        label, attrs = nodes[state]
        assert 'fillcolor="#dcfce7"' in attrs and "\\nentered day" in label, state
    assert nodes["iv_steroids"][0].endswith("\\nentered day 0") and nodes["rescue_tacrolimus"][0].endswith("\\nentered day 3")
    for state in set(pw.graph.nodes) - set(path):
        assert 'fillcolor="#f8fafc"' in nodes[state][1] and 'fontcolor="#94a3b8"' in nodes[state][1], state
    moves = [t for t in result["trace"] if "to" in t]
    for i, step in enumerate(moves, start=1):
        label, attrs = edges[(step["from"], step["to"])]
        assert label == f"{i}. {step['rule']} (day {step['day']:g})"
        assert 'color="#15803d"' in attrs and "penwidth=2.5" in attrs
    assert [edges[(a, b)][0].split(".")[0] for a, b in zip(path, path[1:], strict=False)] == ["1", "2", "3", "4"]
    taken = set(zip(path, path[1:], strict=False))
    for edge, (label, attrs) in edges.items():
        if edge not in taken:
            assert "style=dashed" in attrs and 'color="#cbd5e1"' in attrs, edge
            data = pw.graph.edges[edge]
            names = data["rules"] + [f"{r} (proposal)" for r in data["proposals"]]
            assert label == "\\n".join(names) or label == "(no rule)"
    assert "subgraph cluster_legend" in dot and "taken: step. rule (day)" in dot


def test_trace_svg_is_rendered_by_dot(pw):
    result = pw.run_case(rescue("ciclosporin", {"day": 10, "stool_freq_24h": 6, "visible_blood": True},
                                {"day": 10, "decision": "colectomy"}))
    svg = render_svg(diagram_to_dot(build_trace_diagram(pw.graph, result)))
    assert svg.count('class="node"') == pw.graph.number_of_nodes() + 1  # + the legend
    assert svg.count('class="edge"') == pw.graph.number_of_edges()
    assert result["path"][-1] == "colectomy"
    assert "4. decided_colectomy (day 10)" in svg and "now, day 10" in svg


def test_plain_diagram_is_the_same_through_the_diagram_model(pw):
    committed = (ROOT / "diagrams" / "asuc.dot").read_text(encoding="utf-8")
    assert diagram_to_dot(build_diagram(pw.graph, pw.definition)) == to_dot(pw.graph, pw.definition) == committed
    assert diagram_to_dot(build_diagram(pw.graph)) == to_dot(pw.graph) != committed  # the graph alone: rule ids


def test_mermaid_export_of_the_pathway(pw):
    text = to_mermaid(pw.graph)
    lines = text.splitlines()
    assert lines[:4] == ["---", 'title: "Acute severe ulcerative colitis (version 0.1.0)"', "---", "flowchart TB"]
    assert '    suspected_asuc(["Suspected acute severe UC<br/>[suspected_asuc]"])' in lines  # start: stadium
    assert '    colectomy[["Colectomy<br/>[colectomy]"]]' in lines  # terminal: double border
    assert '    iv_steroids("IV corticosteroids<br/>[iv_steroids]")' in lines
    arrows = [line for line in lines if re.match(r"    \w+ (-->|-\.->|==>)", line)]
    assert len(arrows) == pw.graph.number_of_edges()
    assert '    suspected_asuc -->|"tw_asuc_confirmed"| iv_steroids' in lines
    emergency = [i for i, line in enumerate(arrows) if "-.->" in line]
    assert emergency and all("colectomy" in arrows[i] for i in emergency)
    for i in emergency:
        assert f"    linkStyle {i} stroke:#b91c1c,stroke-dasharray:5 5,color:#b91c1c" in lines
    assert "    style suspected_asuc fill:#dbeafe,stroke:#1d4ed8" in lines


def test_mermaid_escapes_text_and_reserved_ids():
    g = nx.DiGraph(id="t", title='A "quoted" <title>', version="1")
    g.add_node("start", title="Start & go", kind="start")
    g.add_node("end", title="The end", kind="terminal")
    g.add_edge("start", "end", title="", rules=["r1"])
    text = to_mermaid(g)
    assert "    end_[[\"The end<br/>[end]\"]]" in text and "start -->|\"r1\"| end_" in text
    assert "Start #amp; go" in text
    assert "title: \"A 'quoted' \u2039title\u203a (version 1)\"" in text  # no raw '<' in the front matter


def test_trace_command_writes_svg_dot_and_mermaid(tmp_path: Path, capsys):
    assert main(["trace", str(DEMO), "-o", str(tmp_path / "course.svg")]) == 0
    svg = (tmp_path / "course.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "1. tw_asuc_confirmed (day 0)" in svg
    assert main(["trace", str(DEMO), "-o", str(tmp_path / "course.dot")]) == 0
    assert (tmp_path / "course.dot").read_text(encoding="utf-8").startswith("digraph asuc {")
    assert main(["trace", str(DEMO), "--format", "mermaid", "-o", str(tmp_path / "course")]) == 0
    mmd = (tmp_path / "course.mmd").read_text(encoding="utf-8")
    assert '    suspected_asuc ==>|"1. tw_asuc_confirmed (day 0)"| iv_steroids' in mmd
    assert "    style maintenance_thiopurine fill:#4ade80,stroke:#14532d,stroke-width:3.5px,color:#052e16" in mmd
    assert 'subgraph legend ["Legend"]' in mmd
    capsys.readouterr()
    assert main(["trace", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph asuc {") and '"4. tac_response (day 10)"' in out


def test_diagram_command_mermaid_flag(tmp_path: Path, pw):
    assert main(["diagram", "asuc", "--format", "mermaid", "-o", str(tmp_path / "asuc")]) == 0
    assert (tmp_path / "asuc.mmd").read_text(encoding="utf-8") == to_mermaid(pw.graph, pw.definition)
    assert not (tmp_path / "asuc.svg").exists()
    assert main(["diagram", "asuc", "-o", str(tmp_path / "plain")]) == 0  # the default is unchanged
    assert (tmp_path / "plain.dot").is_file() and (tmp_path / "plain.svg").is_file()


def test_style_roles_used_by_traces_exist():
    for role in ("visited", "current", "faded", "taken_edge", "faded_edge"):
        assert STYLE[role]
