"""Diagrams an auditor can read: moves labelled with their rules' titles (id small, evidence badge,
full criterion on hover), proposals and emergencies drawn apart, a legend, phase boxes, and one
diagram per decision point with its rules and options. Read back through Graphviz's own parser
(``dot -Tjson0``) and the rendered SVG."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway import load_pathway
from pathway.cli.main import main
from pathway.core.errors import DefinitionError
from pathway.definition.effects import Offer
from pathway.definition.waiting import asks_for_data
from pathway.render.diagram import (
    ANY_ACTIVE_NODE,
    STYLE,
    build_diagram,
    diagram_to_dot,
    diagram_to_mermaid,
    render_svg,
    shared_rules,
    to_dot,
    to_mermaid,
)
from pathway.render.labels import BADGE_COLOURS, STRENGTH_WORDS, condition_words, criterion_words, moves_of
from pathway.render.state_diagram import build_state_diagram

SVG = "{http://www.w3.org/2000/svg}"


# -- reading a diagram back ----------------------------------------------------------------------

def _json(source: str) -> dict[str, Any]:
    """The diagram as Graphviz reads it: nodes by name, edges as (tail, head, attributes), clusters."""
    proc = subprocess.run(["dot", "-Tjson0"], input=source.encode("utf-8"), capture_output=True, check=False)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode("utf-8", "replace")[:500]
    doc = json.loads(proc.stdout)
    objects = doc.get("objects", [])
    names = {o["_gvid"]: o["name"] for o in objects}
    nodes = {o["name"]: o for o in objects if "nodes" not in o}
    clusters = {o["name"]: o for o in objects if "nodes" in o}
    edges = [(names[e["tail"]], names[e["head"]], e) for e in doc.get("edges", [])]
    return {"graph": doc, "nodes": nodes, "edges": edges, "clusters": clusters, "names": names}


def _html(label: str) -> ET.Element:
    """An HTML-like label (as ``-Tjson0`` gives it, without the outer ``<>``) as XML."""
    return ET.fromstring(label)


def _text(el: ET.Element) -> str:
    return " ".join(" ".join(el.itertext()).split())


def _rows(label: str) -> list[list[ET.Element]]:
    """The cells of each row of the outer table of a label."""
    table = _html(label)
    return [list(tr.findall("td")) for tr in table.findall("tr")]


def _badge(cell: ET.Element) -> tuple[str, dict[str, str]] | None:
    """(text, attributes) of the badge drawn in a cell (a small table of one cell), if any."""
    inner = cell.find("table/tr/td")
    if inner is None or inner.get("fixedsize") != "true":
        return None
    return _text(inner), dict(inner.attrib)


def _rules_on_label(label: str) -> list[tuple[str, str, tuple[str, dict[str, str]] | None]]:
    """(title, id, badge) of each rule a move's label lists: a badge beside the title, the id small
    on the next row."""
    rows = _rows(label)
    out = []
    for i, row in enumerate(rows):
        badge = _badge(row[0]) if row else None
        if badge is None or len(row) < 2:
            continue
        id_cell = rows[i + 1][1]
        font = id_cell.find("font")
        assert font is not None and font.get("point-size") == "7", "the rule id is not in the small font"
        out.append((_text(row[1]), _text(id_cell), badge))
    return out


def _svg_titles(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]


@pytest.fixture(scope="module")
def readable(pw: Any) -> dict[str, Any]:
    source = to_dot(pw.graph, pw.definition)
    return {"dot": source, "json": _json(source), "svg": render_svg(source)}


# -- the pathway diagram ------------------------------------------------------------------------

def _graph_moves(pw: Any) -> list[tuple[str, str, str, str]]:
    """(source, target, rule id, "move" or "proposal") for every rule on every transition."""
    return [(s, t, r, kind) for s, t, data in pw.graph.edges(data=True)
            for kind, key in (("move", "rules"), ("proposal", "proposals")) for r in data[key]]


def test_every_move_is_labelled_with_its_rules_titles_ids_and_badges(pw, readable):
    rules = {r.id: r for r in pw.definition.rules}
    listed: dict[str, tuple[str, tuple[str, dict[str, str]]]] = {}
    for _tail, _head, edge in readable["json"]["edges"]:
        if edge.get("label", "").startswith("<table"):
            for title, rid, badge in _rules_on_label(edge["label"]):
                listed[rid] = (title, badge)  # type: ignore[assignment]
    assert set(listed) == {r for _, _, r, _ in _graph_moves(pw)}
    for rid, (title, (text, attrs)) in listed.items():
        rule = rules[rid]
        assert title == " ".join(rule.title.split()), rid  # the title, wrapped over lines
        assert rid not in title
        colour = BADGE_COLOURS[rule.evidence.strength]
        if rule.evidence.status == "verified":
            assert (text, attrs.get("bgcolor")) == (rule.evidence.strength, colour), rid
        else:
            assert text == rule.evidence.strength + "?" and attrs.get("style") == "dashed" and attrs.get("color") == colour
    # the shipped pathway has both kinds of evidence on its moves
    assert {a.get("style") for _, (_, (_, a)) in listed.items()} == {None, "dashed"}
    assert "Truelove &amp; Witts criteria met" in readable["dot"] and "tw_asuc_confirmed</font>" in readable["dot"]


def test_every_transition_a_rule_takes_is_drawn_through_its_label(pw, readable):
    """Each rule's move from a state is drawn: straight, through a junction where the same rules
    move from several states (the label drawn once), or from the box standing for every active
    state for the rules of every active state."""
    j = readable["json"]
    shared = shared_rules(pw.definition)
    rules = {r.id: r for r in pw.definition.rules}
    into: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for tail, head, edge in j["edges"]:
        into.setdefault(head, []).append((tail, edge))

    def titles(edge: dict[str, Any]) -> set[str]:
        return {rid for _, rid, _ in _rules_on_label(edge["label"])} if edge.get("label", "").startswith("<table") else set()

    for source, target, rid, _kind in _graph_moves(pw):
        ways = []
        for tail, edge in into[target]:
            if rid not in titles(edge):
                continue
            if tail == source:
                ways.append("straight")
            elif tail.startswith("junction_") and any(t == source for t, _ in into.get(tail, [])):
                ways.append("junction")
            elif tail == ANY_ACTIVE_NODE and rid in shared:
                ways.append("every active state")
        assert len(ways) == 1, (source, target, rid, ways)
    # the discharge is drawn once for the five states it leaves, emergencies once for all
    discharge = [e for t, h, e in j["edges"] if h == "discharged" and titles(e) == {"discharge"}]
    assert len(discharge) == 1 and sum(1 for _, h, _ in j["edges"] if h.startswith("junction_")) >= 5
    assert sorted(titles(e) for t, h, e in j["edges"] if t == ANY_ACTIVE_NODE) == [
        {"decided_colectomy", "perforation_or_massive_bleed", "toxic_megacolon"}]
    assert all(rules[r].states == rules["toxic_megacolon"].states for r in ("decided_colectomy", "perforation_or_massive_bleed"))


def test_proposals_automatic_moves_and_emergencies_are_drawn_apart(pw, readable):
    rules = {r.id: r for r in pw.definition.rules}
    proposals = {r for _, _, r, kind in _graph_moves(pw) if kind == "proposal"}
    kinds = set()
    for tail, _head, edge in readable["json"]["edges"]:
        ids = {rid for _, rid, _ in _rules_on_label(edge["label"])} if edge.get("label", "").startswith("<table") else set()
        if not ids:
            continue
        if tail == ANY_ACTIVE_NODE:
            kind = "emergency"
            assert (edge.get("style"), edge.get("color")) == ("dashed", "#b91c1c")
        elif ids <= proposals:
            kind = "proposal"
            assert (edge.get("style"), edge.get("color"), edge.get("arrowhead")) == ("dotted", "#6d28d9", "onormal")
            assert "proposal: the team decides" in _text(_html(edge["label"]))
        else:
            kind = "move"
            assert not ids & proposals, ids  # never mixed on one drawn edge
            assert edge.get("style") is None and edge.get("color") == "#334155" and edge.get("arrowhead") is None
        kinds.add(kind)
        for rid in ids:
            assert (kind == "proposal") == any(b == "proposes" for b in [k for _, k in moves_of(rules[rid], _head_of(pw, rid))])
    assert kinds == {"move", "proposal", "emergency"}
    mermaid = to_mermaid(pw.graph, pw.definition)
    arrows = [line for line in mermaid.splitlines() if re.match(r"    \w+ (-->|--o|-\.->|==>|---|-\.-)[ |]", line)]
    assert len(arrows) == len(readable["json"]["edges"])
    assert arrows and any(" --o|" in a for a in arrows) and any(f"{ANY_ACTIVE_NODE} -.->|" in a for a in arrows)
    for i, arrow in enumerate(arrows):
        if " --o|" in arrow:
            assert "proposal: " in arrow and f"    linkStyle {i} stroke:#6d28d9,stroke-width:1.8px,stroke-dasharray:2 3," \
                                             "color:#6d28d9" in mermaid.splitlines()


def _head_of(pw: Any, rid: str) -> str:
    return next(t for _, t, r, _ in _graph_moves(pw) if r == rid)


def test_the_tooltip_of_a_move_holds_each_rules_full_criterion(pw, readable):
    rules = {r.id: r for r in pw.definition.rules}
    titles = _svg_titles(readable["svg"])
    checked = 0
    for _tail, head, edge in readable["json"]["edges"]:
        if not edge.get("label", "").startswith("<table"):
            continue
        tip = edge["tooltip"].replace("\\n", "\n")
        assert edge["labeltooltip"] == edge["tooltip"]
        for _title, rid, _ in _rules_on_label(edge["label"]):
            rule = rules[rid]
            assert f"{rule.title} [{rid}]" in tip
            assert condition_words(rule.when, pw.definition) in tip
            for branch, _ in moves_of(rule, head):
                assert all(line in tip for line in criterion_words(rule, pw.definition, branch))
            assert f"evidence: {rule.evidence.strength} ({STRENGTH_WORDS[rule.evidence.strength]}), {rule.evidence.status}" in tip
            checked += 1
        assert tip in titles  # the SVG shows it on hover, as a <title>
    assert checked >= len({r for _, _, r, _ in _graph_moves(pw)})
    assert "<a " not in readable["svg"] and "xlink:title" not in readable["svg"]  # no link elements


def test_decision_points_are_marked_with_their_options(pw, readable):
    nodes = readable["json"]["nodes"]
    for state in pw.graph.nodes:
        offers = {e.option for r in pw.definition.rules_in(state) for b in ("then", "else", "missing")
                  for e in r.effects(b) if isinstance(e, Offer)}
        text = _text(_html(nodes[state]["label"]))
        assert pw.graph.nodes[state]["title"] in text and f"[{state}]" in text
        assert (nodes[state]["fillcolor"] == STYLE["decision"]["fillcolor"]) == bool(offers), state
        assert ("options:" in text) == bool(offers)
        assert all(o in text for o in offers)
    assert nodes["rescue_selection"]["fillcolor"] == "#ede9fe" and nodes["iv_steroids"]["fillcolor"] == "#f1f5f9"


def test_the_legend_is_in_the_dot_the_svg_and_the_mermaid(pw, readable):
    label = _text(_html(readable["json"]["graph"]["label"]))
    expected = ["States", "start", "active state", "decision point: options offered, the team records the choice",
                "terminal: the pathway is over for this admission", "automatic: the rules move the patient",
                "proposal: moves once the team records the decision", "emergency: from every active state",
                "Evidence of each rule", "not verified (dashed)", "Hover a move for its full criterion."]
    strengths = {r.evidence.strength for r in pw.definition.rules if any(r.id == m[2] for m in _graph_moves(pw))}
    expected += [STRENGTH_WORDS[s] for s in strengths]
    for words in expected:
        assert words in label, words
    assert label.startswith("Acute severe ulcerative colitis (version 0.1.0), profile default")
    svg_text = " ".join(" ".join(t.itertext()) for t in ET.fromstring(readable["svg"].encode()).iter(f"{SVG}text"))
    for words in expected:
        assert words in svg_text, words
    mermaid = to_mermaid(pw.graph, pw.definition).splitlines()
    start = mermaid.index('    subgraph legend ["Legend"]')
    legend = mermaid[start:mermaid.index("    end", start)]
    for words in expected[1:]:
        assert any(words in line for line in legend) != words.startswith("Hover"), words  # no hover in Mermaid
    assert any('". . . .o proposal: moves once the team records the decision"' in line for line in legend)
    assert any(f'"[{s}] {STRENGTH_WORDS[s]}"' in line for line in legend for s in strengths)


def test_clusters_group_the_states_by_their_phase(pw):
    j = _json(to_dot(pw.graph, pw.definition, clusters=True))
    phases = pw.definition.spec.phases
    assert list(phases) == ["admission", "steroids", "rescue", "maintenance", "surgery"]
    clusters = {name: c for name, c in j["clusters"].items() if name.startswith("cluster_")}
    assert set(clusters) == {f"cluster_{p}" for p in phases}
    for pid, phase in phases.items():
        c = clusters[f"cluster_{pid}"]
        members = {j["names"][n] for n in c["nodes"]}
        assert members == {s for s, data in pw.graph.nodes(data=True) if data["phase"] == pid}, pid
        assert c["label"] == phase.title
    assert {j["names"][n] for n in clusters["cluster_rescue"]["nodes"]} == {
        "rescue_selection", "rescue_tacrolimus", "rescue_ciclosporin", "rescue_infliximab"}
    assert pw.graph.nodes["discharged"]["phase"] is None  # a state may belong to no phase
    assert not any(n.startswith("cluster_") for n in _json(to_dot(pw.graph, pw.definition))["clusters"])
    mermaid = to_mermaid(pw.graph, pw.definition, clusters=True).splitlines()
    start = mermaid.index('    subgraph cluster_rescue ["Rescue therapy"]')
    inside = mermaid[start + 1:mermaid.index("    end", start)]
    assert sorted(line.split("(")[0].strip() for line in inside) == sorted(
        ["rescue_selection", "rescue_tacrolimus", "rescue_ciclosporin", "rescue_infliximab"])


def test_an_unknown_phase_is_refused_at_its_key(rules_copy: Path):
    path = rules_copy / "pathway.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    kind: active\n    phase: steroids\n    title: IV corticosteroids",
                                 "    kind: active\n    phase: steriods\n    title: IV corticosteroids"), encoding="utf-8")
    line = next(i for i, s in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "phase: steriods" in s)
    with pytest.raises(DefinitionError) as exc:
        load_pathway(rules_copy, cache=False)
    found = [str(d) for d in exc.value.diagnostics]
    assert found == [f"{path}:{line}:12: unknown phase 'steriods' (phases: admission, steroids, rescue, maintenance, "
                     "surgery) (did you mean 'steroids'?) [PW112]"], found


# -- one decision point -----------------------------------------------------------------------------

def _state_parts(pw: Any, state: str) -> dict[str, Any]:
    j = _json(diagram_to_dot(build_state_diagram(pw.definition, state)))
    tables = {name: _rows(node["label"]) for name, node in j["nodes"].items() if name.startswith("table_")}
    return {"json": j, "tables": tables}


def _table_rule_ids(rows: list[list[ET.Element]]) -> list[str]:
    """Rule ids in a table: the small grey line of each rule cell."""
    ids = []
    for row in rows:
        for cell in row:
            for font in cell.iter("font"):
                if font.get("point-size") == "7" and re.fullmatch(r"[a-z][a-z0-9_]*", _text(font)) \
                        and font.get("color") == "#64748b":
                    ids.append(_text(font))
    return ids


@pytest.mark.parametrize("state", ["rescue_selection", "iv_steroids", "colectomy"])
def test_a_decision_point_diagram_shows_the_state_its_moves_and_exactly_its_rules(pw, state):
    parts = _state_parts(pw, state)
    d = pw.definition
    here = {r.id for r in d.rules_in(state)}
    nodes = set(parts["json"]["nodes"])
    neighbours = set(pw.graph.predecessors(state)) | set(pw.graph.successors(state))
    expected = {state} | neighbours | ({"table_rules"} if here else set())
    if state == "colectomy":  # every active state leads here: drawn as one box
        expected = (expected - {s for s in neighbours if set(pw.graph.edges[s, state]["rules"]) <= shared_rules(d)
                                and not pw.graph.edges[s, state]["proposals"]}) | {ANY_ACTIVE_NODE}
    if state == "rescue_selection":
        expected.add("table_options")
    assert nodes == expected
    if here:
        ids = _table_rule_ids(parts["tables"]["table_rules"])
        assert sorted(ids) == sorted(here) and len(ids) == len(set(ids))  # each rule once
    assert (ANY_ACTIVE_NODE in nodes) == (state == "colectomy")
    for tail, head, _edge in parts["json"]["edges"]:
        if not head.startswith("table_"):
            assert state in (tail, head) or tail == ANY_ACTIVE_NODE


def test_the_options_table_lists_every_status_the_rules_give(pw):
    d = pw.definition
    rows = _state_parts(pw, "rescue_selection")["tables"]["table_options"]
    expected: dict[str, set[tuple[str, str]]] = {}
    for rule in d.rules_in("rescue_selection"):
        for branch in ("then", "else", "missing"):
            for eff in rule.effects(branch):
                if isinstance(eff, Offer):
                    expected.setdefault(eff.option, set()).add((eff.status, rule.id))
        if asks_for_data(rule):
            for eff in rule.then + rule.otherwise:
                if isinstance(eff, Offer):
                    expected[eff.option].add(("pending", rule.id))
    shown: dict[str, set[tuple[str, str]]] = {}
    order = []
    option = None
    for row in rows[2:-1]:  # the heading, the column names; the closing note
        if len(row) == 1:
            option = _text(row[0]).split()[0]
            order.append(option)
            continue
        status = _text(row[0])
        rid = _table_rule_ids([row])[0]
        shown.setdefault(option, set()).add((status, rid))  # type: ignore[arg-type]
    assert shown == expected
    assert order == ["ciclosporin", "infliximab", "tacrolimus", "colectomy", "jak_inhibitor"]
    assert ("unavailable", "infliximab_reason_tb") in shown["infliximab"]
    assert ("available", "ciclosporin_eligibility") in shown["ciclosporin"]  # its 'otherwise' branch
    assert ("pending", "ciclosporin_eligibility") in shown["ciclosporin"]
    assert ("caution", "ciclosporin_reason_cholesterol") in shown["ciclosporin"]
    note = _text(rows[-1][0])
    assert "strongest" in note and "pending while a rule that decides it waits for data" in note


def test_the_options_follow_the_profiles_ranks(pw):
    def ranks(profile: str | None) -> dict[str, str]:
        p = load_pathway("asuc", profile=profile)
        rows = _rows(_json(diagram_to_dot(build_state_diagram(p.definition, "rescue_selection")))
                     ["nodes"]["table_options"]["label"])
        return {_text(r[0]).split()[0]: _text(r[0]).split("rank ")[1].split()[0] for r in rows[2:-1] if len(r) == 1}

    assert ranks(None)["infliximab"] == "1" and ranks("nice")["infliximab"] == "2"
    assert ranks(None)["ciclosporin"] == ranks("nice")["ciclosporin"] == "1"
    title = _json(diagram_to_dot(build_state_diagram(load_pathway("asuc", profile="nice").definition, "iv_steroids")))
    assert "profile nice" in _text(_html(title["graph"]["label"]))


def test_a_decision_point_diagram_renders_as_svg_and_mermaid(pw):
    diagram = build_state_diagram(pw.definition, "rescue_selection")
    svg = render_svg(diagram_to_dot(diagram))
    assert "Options at this decision" in svg and f"Rules in this state ({len(pw.definition.rules_in('rescue_selection'))})" in svg
    assert "<a " not in svg
    mermaid = diagram_to_mermaid(diagram)
    assert "table_options[" in mermaid and "choose_tacrolimus" in mermaid and 'subgraph legend ["Legend"]' in mermaid


# -- the command --------------------------------------------------------------------------------------

def test_diagram_command_state_clusters_and_profile(tmp_path: Path, capsys):
    assert main(["diagram", "asuc", "--state", "rescue_selection", "-o", str(tmp_path / "rs")]) == 0
    assert (tmp_path / "rs.dot").is_file() and "Options at this decision" in (tmp_path / "rs.svg").read_text(encoding="utf-8")
    assert main(["diagram", "asuc", "--state", "iv_steroids", "--profile", "nice", "--format", "mermaid",
                 "-o", str(tmp_path / "iv")]) == 0
    assert "profile nice" in (tmp_path / "iv.mmd").read_text(encoding="utf-8").splitlines()[1]
    assert main(["diagram", "asuc", "--clusters", "-o", str(tmp_path / "phases.svg")]) == 0
    assert "subgraph cluster_rescue" in (tmp_path / "phases.dot").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["diagram", "asuc", "--state", "rescue_selektion", "-o", str(tmp_path / "x")]) == 2
    assert "unknown state 'rescue_selektion' of pathway 'asuc' (did you mean 'rescue_selection'?)" in capsys.readouterr().err
    assert main(["diagram", "asuc", "--state", "iv_steroids", "--clusters", "-o", str(tmp_path / "x")]) == 2
    assert "--clusters" in capsys.readouterr().err and not (tmp_path / "x.dot").exists()


# -- hostile text ---------------------------------------------------------------------------------------

HOSTILE = '<b>bold</b> & "quoted" \\n ]]> <font point-size="90">big</font> \x1b[2J'


def test_hostile_rule_and_phase_titles_stay_text(rules_copy: Path):
    for name in ("steroids.yaml", "rescue_selection.yaml"):
        path = rules_copy / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for rule in data["rules"]:
            rule["title"] = HOSTILE + rule["id"]
            for eff in rule.get("then", []) + rule.get("otherwise", []):
                if "offer" in eff and "text" in eff["offer"]:
                    eff["offer"]["text"] = HOSTILE
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1 << 20), encoding="utf-8")
    spec = yaml.safe_load((rules_copy / "pathway.yaml").read_text(encoding="utf-8"))
    spec["phases"]["rescue"]["title"] = HOSTILE
    (rules_copy / "pathway.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False, width=1 << 20),
                                             encoding="utf-8")
    p = load_pathway(rules_copy, cache=False)
    for diagram in (build_diagram(p.graph, p.definition, clusters=True), build_state_diagram(p.definition, "rescue_selection")):
        source = diagram_to_dot(diagram)
        j = _json(source)  # Graphviz reads it without a warning
        svg = render_svg(source)
        root = ET.fromstring(svg.encode("utf-8"))
        tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
        assert not tags & {"b", "font", "a", "script"}
        text = " ".join(" ".join(t.itertext()) for t in root.iter(f"{SVG}text"))
        assert '<b>bold</b> & "quoted" \\n ]]> <font point-size="90">big</font> \\x1b[2J' in text
        sizes = {float(t.get("font-size", "0")) for t in root.iter(f"{SVG}text")}
        assert max(sizes) <= 16, sizes  # no text made big by a title
        for _, _, edge in j["edges"]:
            assert "\x1b" not in edge.get("tooltip", "")
        mermaid = diagram_to_mermaid(diagram)
        assert "<b>" not in mermaid and "#lt;b#gt;bold#lt;/b#gt; #amp; #quot;quoted#quot;" in mermaid
    assert 'subgraph cluster_rescue ["#lt;b#gt;' in diagram_to_mermaid(build_diagram(p.graph, p.definition, clusters=True))
    p.close()


def test_a_very_long_title_is_cut_in_the_diagram_and_it_still_renders(rules_copy):
    # Graphviz refuses an edge over 65,535 points and an overwide cluster: a 7,500-character rule title (wrapped,
    # 220 lines) or phase title (one line) made the whole diagram fail to render
    from pathway.render.diagram import build_diagram, diagram_to_dot, render_svg
    from pathway.render.labels import MAX_LINES

    long_text = " ".join(["word"] * 1500)
    pathway_file = rules_copy / "pathway.yaml"
    text = pathway_file.read_text(encoding="utf-8")
    assert "    title: Rescue therapy\n" in text
    pathway_file.write_text(text.replace("    title: Rescue therapy\n", f"    title: {long_text}\n"), encoding="utf-8")
    rules = rules_copy / "rescue_response.yaml"
    text = rules.read_text(encoding="utf-8")
    title = "    title: Worse than at the start of rescue - colectomy proposed before the deadline\n"
    assert title in text
    rules.write_text(text.replace(title, f"    title: {long_text}\n"), encoding="utf-8")
    pw = load_pathway(rules_copy, cache=False)
    dot = diagram_to_dot(build_diagram(pw.graph, pw.definition, clusters=True))
    svg = render_svg(dot)
    assert svg.lstrip().startswith(("<?xml", "<svg"))
    # cut in the labels (the tooltips keep it whole), not dropped
    assert "word …" in dot
    assert 0 < len(re.findall(r'<font point-size="10">word word', dot)) <= MAX_LINES
