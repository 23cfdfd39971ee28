"""`pathway diff OLD NEW`: added, removed and changed states, transitions, rules and parameters, as
text and as one coloured diagram."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from pathway.analysis.diff import diff_pathways
from pathway.cli.main import main
from pathway.render.diagram import diagram_to_dot, diagram_to_mermaid, render_svg
from pathway.render.diff import build_diff_diagram

NODE = re.compile(r'^\t(\w+) \[label="(.*?)"(.*)\]$', re.M)
EDGE = re.compile(r'^\t(\w+) -> (\w+) \[label=("?)(.*?)\3( .*)?\]$', re.M)


def _edit_pathway(folder: Path, change) -> None:
    path = folder / "pathway.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _rules(source: str, review_when: dict, review_text: str, status: str, extra: list[dict]) -> list[dict]:
    evidence = {"sources": [source], "strength": "O", "status": status}
    return [
        {"id": "extra_review", "title": "Senior review", "in": "iv_steroids", "when": review_when,
         "then": [{"recommend": {"kind": "referral", "text": review_text}}], "evidence": evidence},
        *extra,
    ]


@pytest.fixture
def versions(rules_copy: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two versions of the ASUC folder: NEW changes a parameter, a rule's condition, effect and
    evidence, removes a rule, and adds a rule, a state and a transition."""
    old = rules_copy
    source = next(iter(yaml.safe_load((old / "sources.yaml").read_text(encoding="utf-8"))["sources"]))
    gone = {"id": "extra_gone", "title": "Retired advice", "in": "iv_steroids",
            "then": [{"recommend": {"kind": "advice", "text": "Old advice."}}],
            "evidence": {"sources": [source], "strength": "S", "status": "verified"}}
    (old / "extra.yaml").write_text(yaml.safe_dump({"rules": _rules(source, {"day": {"gte": "$extra_day"}},
                                                                    "Senior review.", "verified", [gone])}, sort_keys=False),
                                     encoding="utf-8")

    def add_extra(data: dict) -> None:
        data["rule_files"].append("extra.yaml")
        data["parameters"]["extra_day"] = {"value": 5, "unit": "day", "title": "Day of the senior review", "sources": [source]}

    _edit_pathway(old, add_extra)
    new = tmp_path / "new"
    shutil.copytree(old, new)
    observe = {"id": "extra_observe", "title": "Observation bed", "in": "iv_steroids", "priority": 5,
               "when": {"clinical_deterioration": False, "day": {"gte": 30}}, "then": [{"transition": "observation"}],
               "evidence": {"sources": [source], "strength": "S", "status": "unverified"}}
    (new / "extra.yaml").write_text(yaml.safe_dump({"rules": _rules(
        source, {"day": {"gte": "$extra_day"}, "crp_mg_l": {"gt": 10}}, "Senior review today.", "unverified", [observe])},
        sort_keys=False), encoding="utf-8")

    def change(data: dict) -> None:
        data["version"] = "0.9.0"
        data["parameters"]["extra_day"]["value"] = 6
        data["states"]["observation"] = {"kind": "active", "title": "Observation"}
        data["transitions"].append({"from": "iv_steroids", "to": "observation", "title": "Observe"})

    _edit_pathway(new, change)
    return old, new


def test_text_lists_every_change_with_old_and_new(versions):
    old, new = versions
    diff, _, _ = diff_pathways(old, new)
    assert not diff.same
    keys = {(c.section, c.kind, c.key) for c in diff.changes}
    explicit = {
        ("state", "added", "observation"),
        ("transition", "added", "iv_steroids -> observation"),
        ("rule", "added", "extra_observe"),
        ("rule", "removed", "extra_gone"),
        ("rule", "changed", "extra_review"),
        ("parameter", "changed", "extra_day"),
    }
    assert explicit <= keys
    # A new active state also receives every 'any_active' transition and rule: reported, not hidden.
    assert ("transition", "added", "observation -> colectomy") in keys
    for c in diff.changes:
        if (c.section, c.kind, c.key) not in explicit | {("transition", "added", "observation -> colectomy")}:
            assert c.section == "rule" and c.kind == "changed" and len(c.details) == 1, c
            assert c.details[0].startswith("in: ") and c.details[0].endswith(", observation"), c
    text = diff.text()
    assert "diff asuc " in text and "-> asuc 0.9.0" in text
    review = next(c for c in diff.changes if c.key == "extra_review")
    # conditions in words with each side's values: the new extra_day (6) shows in the rule that uses it
    assert "when: from day 5 -> from day 6 and CRP > 10 mg/L" in review.details
    assert "then: - recommend (referral): Senior review." in review.details
    assert "then: + recommend (referral): Senior review today." in review.details
    assert any(d.startswith("evidence: ") and d.endswith("verified -> sources " + d.split("sources ")[2]) for d in review.details)
    assert any("; verified ->" in d and d.endswith("; unverified") for d in review.details)
    param = next(c for c in diff.changes if c.key == "extra_day")
    assert param.details == ("value: 5 day -> 6 day", "used by extra_review")
    assert "  ~ parameter extra_day\n      value: 5 day -> 6 day" in text
    assert "  + state observation" in text and "  - rule extra_gone" in text
    counts = diff.counts()
    assert text.splitlines()[-1] == f"{counts['added']} added, 1 removed, {counts['changed']} changed"
    assert counts["added"] == 4


def test_the_same_folder_has_no_difference(capsys):
    assert main(["diff", "asuc", "asuc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:-1] == ["same", ""]  # the definitions, then the decision tables
    assert lines[-1].startswith("decision tables: ") and lines[-1].endswith(": no row changes")


def test_profiles_compare_effective_parameter_values(rules_copy: Path):
    (rules_copy / "profiles" / "strict.yaml").write_text(
        "id: strict\ntitle: Strict\nparameters:\n  oxford_crp_mg_l: 40\n", encoding="utf-8")
    diff, old, new = diff_pathways(rules_copy, rules_copy, old_profile=None, new_profile="strict")
    before = old.params["oxford_crp_mg_l"]
    assert before != 40
    changed = [c for c in diff.changes if c.section == "parameter"]
    assert [c.key for c in changed] == ["oxford_crp_mg_l"]
    assert changed[0].details[0] == f"value: {before:g} mg/L -> 40 mg/L"
    # the rule that compares with the parameter shows its criteria with each profile's value
    assert [(c.section, c.key) for c in diff.changes] == [("rule", "oxford_index"), ("parameter", "oxford_crp_mg_l")]
    assert diff.changes[0].details == ("when: > 8 stools in 24 h or (≥ 3 and ≤ 8 stools in 24 h and CRP > 45 mg/L) -> "
                                       "> 8 stools in 24 h or (≥ 3 and ≤ 8 stools in 24 h and CRP > 40 mg/L)",)
    dot = diagram_to_dot(build_diff_diagram(diff, old, new))
    assert "(profile default -> strict)" in dot or f"(profile {old.profile or '-'} -> strict)" in dot
    rules_using = [r for r in new.rules if "oxford_crp_mg_l" in r.params]
    states = {s for r in rules_using for s in r.states}
    nodes = {m[0]: m[2] for m in NODE.findall(dot)}
    for state in states:  # a rule whose parameter changed marks its state as changed
        assert 'fillcolor="#ffedd5"' in nodes[state], state


def test_diagram_colours_every_change_and_has_a_legend(versions):
    old, new = versions
    diff, a, b = diff_pathways(old, new)
    d = build_diff_diagram(diff, a, b)
    dot = diagram_to_dot(d)
    nodes = {m[0]: (m[1], m[2]) for m in NODE.findall(dot)}
    edges = {(m[0], m[1]): (m[3], m[4]) for m in EDGE.findall(dot)}
    assert 'fillcolor="#dcfce7"' in nodes["observation"][1] and 'color="#16a34a"' in nodes["observation"][1]  # added
    changed_here = {c.key for c in diff.changes if c.section == "rule" and c.key.startswith("extra_")}
    assert 'fillcolor="#ffedd5"' in nodes["iv_steroids"][1] and "\\nrules changed: " in nodes["iv_steroids"][0]
    assert changed_here == {"extra_review", "extra_gone", "extra_observe"}
    touched = {s for r in a.rules + b.rules if r.id in {c.key for c in diff.changes if c.section == "rule"} for s in r.states}
    untouched = [s for s in b.spec.states if s not in touched and s != "observation"]
    assert untouched
    for state in untouched:
        assert 'fillcolor="#f8fafc"' in nodes[state][1], state  # unchanged
    label, attrs = edges[("iv_steroids", "observation")]
    assert label == "+extra_observe" and 'color="#16a34a"' in attrs
    assert 'color="#94a3b8"' in edges[("suspected_asuc", "not_asuc")][1]
    for text in ("added", "removed", "changed (or its rules, or their parameters)", "unchanged", "removed transition"):
        assert text in dot
    svg = render_svg(dot)
    assert svg.count('class="node"') == len(nodes) + 1 and "+extra_observe" in svg
    mermaid = diagram_to_mermaid(d)
    assert '    iv_steroids ==>|"+extra_observe"| observation' in mermaid
    assert "    style observation fill:#dcfce7,stroke:#16a34a,stroke-width:2.5px,color:#14532d" in mermaid


def test_removed_state_and_transition_are_drawn_red_and_dashed(versions):
    old, new = versions
    diff, a, b = diff_pathways(new, old)  # the other way round: the state and transition are removed
    assert {(c.section, c.kind, c.key) for c in diff.changes if c.section in ("state", "transition")} == {
        ("state", "removed", "observation"), ("transition", "removed", "iv_steroids -> observation"),
        ("transition", "removed", "observation -> colectomy")}
    dot = diagram_to_dot(build_diff_diagram(diff, a, b))
    nodes = {m[0]: m[2] for m in NODE.findall(dot)}
    edges = {(m[0], m[1]): (m[3], m[4]) for m in EDGE.findall(dot)}
    assert 'color="#dc2626"' in nodes["observation"] and "dashed" in nodes["observation"]
    assert edges[("iv_steroids", "observation")][0] == "-extra_observe"
    attrs = edges[("iv_steroids", "observation")][1]
    assert "style=dashed" in attrs and 'color="#dc2626"' in attrs


def test_command(versions, tmp_path: Path, capsys):
    old, new = versions
    assert main(["diff", str(old), str(new), "-o", str(tmp_path / "changes.svg")]) == 1
    out = capsys.readouterr().out
    assert "~ rule extra_review" in out and out.rstrip().endswith(f"wrote {tmp_path / 'changes.svg'}")
    assert "<svg" in (tmp_path / "changes.svg").read_text(encoding="utf-8")
    assert main(["diff", str(old), str(new), "--json", "--format", "mermaid", "-o", str(tmp_path / "changes")]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert captured.err.startswith("wrote ")
    assert doc["counts"] == diff_pathways(old, new)[0].counts() and doc["counts"]["removed"] == 1
    assert doc["new"]["version"] == "0.9.0" and not doc["same"]
    assert (tmp_path / "changes.mmd").read_text(encoding="utf-8").startswith("---\ntitle: \"Changes: ")
    assert main(["diff", str(old), str(tmp_path / "nowhere")]) == 2
