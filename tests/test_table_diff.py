"""`pathway diff OLD NEW`: the decision-table rows that change, state by state.

The expectations come from the rule files: the Oxford CRP threshold (``oxford_crp_mg_l``, used only
by ``oxford_index``: "stools 3-8 and CRP above $oxford_crp_mg_l", steroids.yaml) raised from 45 to
50 mg/L changes the CRP cell of the rows of that alternative (``> 45`` in ``then``, ``≤ 45`` in
``otherwise``) in the tables where ``oxford_index`` fires (its state and its decision point) and
nothing else; a rule written into a state adds its rows there (one per alternative of ``any``),
taken out it removes them; one alternative more adds one row and leaves the others; the NICE
profile (``rank_infliximab`` 1 -> 2, ``rescue_policy`` ciclosporin_first) changes the rows of
exactly the rules that use those parameters.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway.analysis.diff import diff_pathways
from pathway.analysis.table_diff import TableDiff, diff_tables, table_diff
from pathway.analysis.tables import decision_tables
from pathway.cli.main import main
from pathway.loading.loader import load_definition
from pathway.runtime.compile import compile_pathway


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _changed(diff: TableDiff, kind: str = "changed") -> list[tuple[str, str, str]]:
    """(table, rule, row label) of every row change of one kind."""
    return [(t.id, r.rule, r.label) for t, r in diff.rows(kind)]


@pytest.fixture
def crp_versions(rules_copy: Path, tmp_path: Path) -> tuple[Path, Path]:
    """OLD: the shipped rules; NEW: the Oxford CRP threshold raised from 45 to 50 mg/L."""
    new = tmp_path / "new"
    new.mkdir()
    shutil.copytree(rules_copy, new / "asuc")
    _replace(new / "asuc" / "pathway.yaml", "  oxford_crp_mg_l:\n    value: 45\n", "  oxford_crp_mg_l:\n    value: 50\n")
    return rules_copy, new / "asuc"


def test_a_raised_crp_threshold_changes_only_the_crp_cells_of_the_oxford_rows(crp_versions):
    old_dir, new_dir = crp_versions
    old, new = load_definition(old_dir), load_definition(new_dir)
    assert (old.params["oxford_crp_mg_l"], new.params["oxford_crp_mg_l"]) == (45, 50)
    users = [r for r in old.rules if "oxford_crp_mg_l" in r.params]
    assert [r.id for r in users] == ["oxford_index"]
    rule = users[0]
    where = [*rule.states, rule.decision_point]
    assert where == ["iv_steroids", "day3_assessment"]
    diff = table_diff(old, new)
    assert diff.changed and diff.old_rows == diff.new_rows > 500
    assert _changed(diff, "added") == _changed(diff, "removed") == []
    assert all(not t.columns for t in diff.changes)
    assert [t.id for t in diff.changes] == where
    # the alternative "3-8 stools and CRP > 45" (then), and its negation "CRP ≤ 45" (otherwise)
    label = f"{old.fields['crp_mg_l'].title} ({old.fields['crp_mg_l'].unit})"
    seen = []
    for table, row in diff.rows("changed"):
        assert row.rule == "oxford_index" and row.old is not None and row.new is not None
        assert [(d.what, d.name, d.label) for d in row.details] == [("cell", "crp_mg_l", label)]
        assert row.old.label == row.new.label and row.old.cells.keys() == row.new.cells.keys()
        seen.append((table.id, row.branch, row.details[0].old, row.details[0].new))
    assert sorted(seen) == sorted((t, b, f"{op} 45", f"{op} 50") for t in where for b, op in (("then", ">"), ("otherwise", "≤")))
    # every row of the old tables whose CRP cell tests 45 is among them; no other row
    tables = decision_tables(compile_pathway(old), where)
    tested = [(t.id, r.branch) for t in tables for r in t.rows if "45" in r.cell("crp_mg_l")]
    assert sorted(tested) == sorted((t, b) for t, b, _, _ in seen)
    text = diff.text()
    assert "      ~ oxford_index then 2/2: C-reactive protein (mg/L): > 45 -> > 50" in text.splitlines()
    assert text.splitlines()[0].endswith("rows: 0 added, 0 removed, 4 changed")


def test_identical_versions_have_no_table_change():
    d = load_definition("asuc")
    diff = table_diff(d, d)
    assert not diff.changed and diff.changes == []
    n = diff.counts()
    assert n["tables"] == len([s for s in d.spec.states if d.rules_in(s)]) + 1  # every state with rules, and day 3
    assert n["old_rows"] == n["new_rows"] > 500 and n["rows_changed"] == n["rows_added"] == n["rows_removed"] == 0
    assert diff.to_dict()["changed"] == []
    assert "No decision-table row changes." in diff.markdown()


# -- a rule added, removed, given one alternative more ------------------------------------------------

def _review_rule(alternatives: list[dict[str, Any]], source: str) -> dict[str, Any]:
    return {"id": "extra_senior_review", "title": "Senior review for a fast pulse or fever", "in": "iv_steroids",
            "when": {"any": alternatives},
            "then": [{"recommend": {"kind": "referral", "text": "Senior review today."}}],
            "evidence": {"sources": [source], "strength": "O", "status": "verified"}}


#: three alternatives; the iv_steroids table tests pulse and temperature already, not the blood pressure
PULSE, FEVER, SHOCK = {"pulse_bpm": {"gt": 120}}, {"temp_c": {"gt": 38.5}}, {"systolic_bp_mmhg": {"lt": 90}}


def _with_rule(folder: Path, alternatives: list[dict[str, Any]]) -> Path:
    source = next(iter(yaml.safe_load((folder / "sources.yaml").read_text(encoding="utf-8"))["sources"]))
    (folder / "extra.yaml").write_text(yaml.safe_dump({"rules": [_review_rule(alternatives, source)]}, sort_keys=False),
                                       encoding="utf-8")
    _replace(folder / "pathway.yaml", "rule_files:\n", "rule_files:\n  - extra.yaml\n")
    return folder


@pytest.fixture
def rule_versions(rules_copy: Path, tmp_path: Path) -> dict[str, Path]:
    out = {"plain": rules_copy}
    for name, alts in (("two", [PULSE, FEVER]), ("three", [PULSE, SHOCK, FEVER])):
        shutil.copytree(rules_copy, tmp_path / name)
        out[name] = _with_rule(tmp_path / name, alts)
    return out


def test_a_new_rule_adds_its_rows_and_a_removed_rule_removes_them(rule_versions):
    plain, two = load_definition(rule_versions["plain"]), load_definition(rule_versions["two"])
    assert "extra_senior_review" in {r.id for r in two.rules}
    diff = table_diff(plain, two)
    assert _changed(diff) == _changed(diff, "removed") == []
    added = diff.rows("added")
    assert {t.id for t, _ in added} == {"iv_steroids"} and {r.rule for _, r in added} == {"extra_senior_review"}
    # one 'then' row per alternative of 'any', testing that value alone
    rows = [(r.label, dict(r.row.cells)) for _, r in added]
    assert rows == [("then 1/2", {"pulse_bpm": "> 120"}), ("then 2/2", {"temp_c": "> 38.5"})]
    for _, r in added:
        assert r.old is None and r.new is not None and r.new.rule == "extra_senior_review"
    # every row the new table has for the rule, and no other
    new_table = decision_tables(compile_pathway(two), ["iv_steroids"])[0]
    assert len(added) == sum(1 for r in new_table.rows if r.rule == "extra_senior_review")
    old_columns = {c.name for c in decision_tables(compile_pathway(plain), ["iv_steroids"])[0].columns}
    change = diff.changes[0]
    assert [(c.kind, c.name) for c in change.columns] == [("added", n) for n in ("pulse_bpm", "temp_c")
                                                         if n not in old_columns]
    text = diff.text()
    line = next(x for x in text.splitlines() if "+ extra_senior_review then 1/2:" in x)
    assert line.split(": when ", 1)[1].startswith(f"{two.fields['pulse_bpm'].title} (/min) > 120 => ")
    assert "Senior review today" in line
    # the other way round: the same rows, removed
    back = table_diff(two, plain)
    assert _changed(back, "removed") == _changed(diff, "added")
    assert _changed(back) == _changed(back, "added") == []
    assert [(c.kind, c.name) for c in back.changes[0].columns] == [("removed", c.name) for c in change.columns]


def test_one_alternative_more_is_one_row_more_and_its_column(rule_versions):
    two, three = load_definition(rule_versions["two"]), load_definition(rule_versions["three"])
    diff = table_diff(two, three)
    assert _changed(diff) == _changed(diff, "removed") == []
    # the blood-pressure alternative (then 2/3); the pulse and fever rows (1/2 -> 1/3, 2/2 -> 3/3) are paired
    # with their twins: unchanged
    assert [(t.id, r.rule, r.label, dict(r.row.cells)) for t, r in diff.rows("added")] == [
        ("iv_steroids", "extra_senior_review", "then 2/3", {"systolic_bp_mmhg": "< 90"})]
    field = three.fields["systolic_bp_mmhg"]
    assert [(c.kind, c.name, c.old, c.new) for c in diff.changes[0].columns] == [
        ("added", "systolic_bp_mmhg", None, f"{field.title} ({field.unit})")]
    assert f"      + column systolic_bp_mmhg: {field.title} ({field.unit})" in diff.text().splitlines()
    # and back: the row and the column removed
    back = table_diff(three, two)
    assert [(r.label, r.kind) for _, r in back.rows()] == [("then 2/3", "removed")]
    assert [(c.kind, c.name) for c in back.changes[0].columns] == [("removed", "systolic_bp_mmhg")]


# -- profiles ------------------------------------------------------------------------------------------

def test_the_nice_profile_changes_the_rows_of_the_rules_using_its_parameters():
    default, nice = load_definition("asuc"), load_definition("asuc", profile="nice")
    moved = {p for p in default.params if default.params[p] != nice.params.get(p)}
    assert moved == {"rescue_policy", "rank_infliximab"}
    users = {r.id for r in default.rules if set(r.params) & moved}
    diff = table_diff(default, nice)
    assert {r.rule for _, r in diff.rows()} == users
    assert _changed(diff, "added") == _changed(diff, "removed") == []
    # every state where those rules fire, and only those
    states = {s for r in default.rules if r.id in users for s in r.states}
    assert {t.id for t in diff.changes} == states & {t.id for t in decision_tables(compile_pathway(default))}
    rank = (f"rank {default.params['rank_infliximab']:g}", f"rank {nice.params['rank_infliximab']:g}")
    for _, r in diff.rows():
        advice = [d for d in r.details if d.name == "advice"]
        assert len(advice) == 1 and advice[0].old is not None and advice[0].new is not None
        # the infliximab option only, its rank moved
        assert advice[0].old.startswith("option infliximab: ") and advice[0].old.endswith(rank[0])
        assert advice[0].new == advice[0].old[: -len(rank[0])] + rank[1]
    # the ciclosporin-first rule cannot fire under the default policy (rescue_policy equal): it can under NICE
    second = next(r for _, r in diff.rows() if r.rule == "nice_infliximab_second_line")
    assert second.old is not None and second.old.never and second.new is not None and not second.new.never
    fires = next(d for d in second.details if d.name == "fires")
    assert (fires.old, fires.new) == ("never", "")
    assert "fires: never -> can fire" in diff.text()


# -- the command ------------------------------------------------------------------------------------

def test_the_command_shows_the_rows_in_text_markdown_and_json(crp_versions, capsys):
    old, new = crp_versions
    assert main(["diff", str(old), str(new)]) == 1
    text = capsys.readouterr().out
    assert "\n\ndecision tables: 14 table(s) compared, " in text
    assert "  ~ table iv_steroids (IV corticosteroids, state): 0 added, 0 removed, 2 changed" in text
    assert "      ~ oxford_index otherwise 2/2: C-reactive protein (mg/L): ≤ 45 -> ≤ 50" in text
    assert main(["diff", str(old), str(new), "--markdown"]) == 1
    md = capsys.readouterr().out
    assert "\n## Decision-table rows that change\n" in md and "### IV corticosteroids (state `iv_steroids`)" in md
    assert "| `oxford_index` then 2/2 | changed | C-reactive protein (mg/L) | > 45 | > 50 |" in md
    assert main(["diff", str(old), str(new), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    tables = doc["tables"]
    assert set(tables) == {"counts", "changed"}
    assert set(tables["counts"]) == {"tables", "tables_changed", "old_rows", "new_rows", "rows_added", "rows_removed",
                                     "rows_changed", "columns_added", "columns_removed", "columns_changed"}
    assert tables["counts"]["rows_changed"] == 4 and tables["counts"]["tables_changed"] == 2
    first = tables["changed"][0]
    assert set(first) == {"id", "kind", "table_kind", "title", "counts", "columns", "rows"}
    assert (first["id"], first["kind"], first["table_kind"]) == ("iv_steroids", "changed", "state")
    row = first["rows"][0]
    assert set(row) == {"kind", "rule", "branch", "title", "label", "old", "new", "section", "cells", "outputs"}
    assert row["old"] == row["new"] == {"alternative": 2, "alternatives": 2}
    assert row["cells"] == [{"what": "cell", "name": "crp_mg_l", "label": "C-reactive protein (mg/L)", "old": "> 45",
                             "new": "> 50"}] and row["outputs"] == []
    # the definitions' keys are as before
    assert {"old", "new", "same", "counts", "changes"} <= set(doc)
    assert main(["diff", str(old), str(new), "--json", "--no-tables"]) == 1
    assert "tables" not in json.loads(capsys.readouterr().out)


def test_tables_are_built_once_per_version(monkeypatch):
    from pathway.analysis import table_diff as module
    calls: list[list[str]] = []
    real = module.decision_tables

    def counting(compiled: Any, ids: Any = None, **kw: Any) -> Any:
        calls.append(list(ids))
        return real(compiled, ids, **kw)

    monkeypatch.setattr(module, "decision_tables", counting)
    start = time.perf_counter()
    diff, old, new = diff_pathways("asuc", "asuc", new_profile="nice")
    sections = table_diff(old, new)
    elapsed = time.perf_counter() - start
    assert len(calls) == 2 and calls[0] == calls[1] and "day3_assessment" in calls[0]
    assert sections.changed and elapsed < 20


def test_a_table_of_one_version_only_is_added_with_all_its_rows():
    compiled = compile_pathway(load_definition("asuc"))
    tables = decision_tables(compiled, ["iv_steroids", "rescue_selection"])
    diff = diff_tables(tables[:1], tables)
    assert [(t.id, t.kind) for t in diff.changes] == [("rescue_selection", "added")]
    assert len(diff.rows("added")) == len(tables[1].rows) and diff.counts()["columns_added"] == len(tables[1].columns)
    back = diff_tables(tables, tables[:1])
    assert [(t.id, t.kind) for t in back.changes] == [("rescue_selection", "removed")]
    assert "only in the old version" in back.text()
