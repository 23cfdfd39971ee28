"""The decision-table rows that change between two versions: a section of ``pathway diff``.

Each version's decision tables (:mod:`pathway.analysis.tables`: every state that is not terminal
and has rules, and every decision point) are built once, under that version's profile, and compared
table by table (a state or decision point of either version):

- **rows** are matched by their rule and branch (``then``, ``otherwise``, ``if missing``); the
  alternatives of one branch (``then 1/5`` ... ``then 5/5``) are paired in order, an alternative
  unchanged in both versions with its twin, so one alternative more or less is one row added or
  removed, not every later one changed. A matched row is *changed* when a cell (the test on one
  input column, parameters resolved: ``C-reactive protein (mg/L): > 45 -> > 50``), an output (the
  move, proposal, facts derived, advice, alerts and options, data asked for), its priority, or
  whether it can fire at all differs; a row of one version only is *added* or *removed*, shown
  with its cells and outcome;
- **columns** (inputs the table tests) are added or removed, or relabelled (a field's title or unit).

The findings of ``pathway check`` marked on rows are not compared (the checks are not run here).
Cells and outputs are the tables' own words; rule-file text in them is escaped on the way out
(:func:`pathway.core.text.one_line` in text, :func:`pathway.core.text.md_inline` in Markdown).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pathway.analysis.tables import DecisionTable, Row, decision_tables, default_table_ids, table_ids
from pathway.core.text import md_code, md_inline, one_line
from pathway.definition.pathway import PathwayDef
from pathway.runtime.compile import CompiledPathway, compile_pathway

__all__ = ["CellChange", "RowChange", "ColumnChange", "TableChange", "TableDiff", "OUTPUTS", "diff_tables", "table_diff",
           "comparable_ids"]

Kind = Literal["added", "removed", "changed"]

#: A row's outputs compared, in the order shown: (JSON key, words).
OUTPUTS: tuple[tuple[str, str], ...] = (
    ("moves", "moves to"), ("proposals", "proposes"), ("derives", "derives"), ("advice", "advice"),
    ("data", "asks for"), ("priority", "priority"), ("fires", "fires"), ("note", "note"),
)
_MARK = {"added": "+", "removed": "-", "changed": "~"}


#: The outputs that are lists of items (a change shows the items of one version only).
_LISTS = ("moves", "proposals", "derives", "advice", "data")


def _outputs(row: Row) -> dict[str, tuple[str, ...]]:
    """A row's outputs, each as a tuple of items (empty when it has none). ``fires`` is ``never`` for a
    branch that cannot fire (its note, which says so, is not compared apart)."""
    return {"moves": row.moves, "proposals": row.proposals, "derives": row.derives, "advice": row.advice,
            "data": row.data, "priority": () if row.priority is None else (str(row.priority),),
            "fires": ("never",) if row.never else (), "note": (row.note,) if row.note and not row.never else ()}


def _signature(row: Row) -> tuple[Any, ...]:
    """What a row says (its cells and outputs), to find a row unchanged between the versions."""
    return tuple(sorted(row.cells.items())), tuple(_outputs(row).items())


@dataclass(frozen=True)
class CellChange:
    """One input cell or output of a row: old -> new (None: the row has no such side)."""

    what: Literal["cell", "output"]
    name: str  # the column's field name, or the output's key (see OUTPUTS)
    label: str  # the column's heading, or the output in words
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "name": self.name, "label": self.label, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class RowChange:
    """A row added, removed or changed in one table."""

    kind: Kind
    rule: str
    branch: str
    old: Row | None
    new: Row | None
    details: tuple[CellChange, ...] = ()

    @property
    def row(self) -> Row:
        """The row in the new version (in the old one when removed)."""
        row = self.new if self.new is not None else self.old
        assert row is not None
        return row

    @property
    def title(self) -> str:
        return self.row.title

    @property
    def label(self) -> str:
        """``then 2/2``, or ``then 3/5 -> then 2/4`` when the row's number changed."""
        if self.old is None or self.new is None or self.old.label == self.new.label:
            return self.row.label
        return f"{self.old.label} -> {self.new.label}"

    def to_dict(self) -> dict[str, Any]:
        def alt(r: Row | None) -> dict[str, int] | None:
            return None if r is None else {"alternative": r.alternative, "alternatives": r.alternatives}

        return {"kind": self.kind, "rule": self.rule, "branch": self.branch, "title": self.title,
                "label": self.label, "old": alt(self.old), "new": alt(self.new),
                "section": self.row.section,
                "cells": [c.to_dict() for c in self.details if c.what == "cell"],
                "outputs": [c.to_dict() for c in self.details if c.what == "output"]}


@dataclass(frozen=True)
class ColumnChange:
    """An input column added, removed or relabelled."""

    kind: Kind
    name: str
    old: str | None  # its label in each version
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "old": self.old, "new": self.new}


@dataclass
class TableChange:
    """The changes of one state's or decision point's table."""

    id: str
    kind: Kind  # added | removed (the table exists in one version only) | changed
    table_kind: str  # state | decision point
    title: str
    columns: list[ColumnChange] = field(default_factory=list)
    rows: list[RowChange] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for r in self.rows if r.kind == k) for k in ("added", "removed", "changed")}

    @property
    def heading(self) -> str:
        return f"{self.title} ({self.table_kind} {self.id})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "table_kind": self.table_kind, "title": self.title,
                "counts": self.counts(), "columns": [c.to_dict() for c in self.columns],
                "rows": [r.to_dict() for r in self.rows]}


@dataclass
class TableDiff:
    """The decision tables of two versions compared (a section of ``pathway diff``)."""

    tables: int = 0  # tables compared (of either version)
    old_rows: int = 0
    new_rows: int = 0
    changes: list[TableChange] = field(default_factory=list)
    key: str = "tables"

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def rows(self, kind: Kind | None = None) -> list[tuple[TableChange, RowChange]]:
        """Every row change (of one kind), with its table."""
        return [(t, r) for t in self.changes for r in t.rows if kind is None or r.kind == kind]

    def counts(self) -> dict[str, int]:
        n = {"added": len(self.rows("added")), "removed": len(self.rows("removed")), "changed": len(self.rows("changed"))}
        columns = [c for t in self.changes for c in t.columns]
        return {"tables": self.tables, "tables_changed": len(self.changes), "old_rows": self.old_rows,
                "new_rows": self.new_rows, "rows_added": n["added"], "rows_removed": n["removed"],
                "rows_changed": n["changed"],
                "columns_added": sum(1 for c in columns if c.kind == "added"),
                "columns_removed": sum(1 for c in columns if c.kind == "removed"),
                "columns_changed": sum(1 for c in columns if c.kind == "changed")}

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "changed": [t.to_dict() for t in self.changes]}

    def _summary(self) -> str:
        n = self.counts()
        head = (f"{n['tables']} table(s) compared, {n['old_rows']} rows in the old version and {n['new_rows']} "
                f"in the new: ")
        if not self.changed:
            return head + "no row changes"
        columns = (f"; columns: {n['columns_added']} added, {n['columns_removed']} removed"
                   + (f", {n['columns_changed']} relabelled" if n["columns_changed"] else "")
                   if n["columns_added"] or n["columns_removed"] or n["columns_changed"] else "")
        return (head + f"{n['tables_changed']} table(s) changed; rows: {n['rows_added']} added, "
                f"{n['rows_removed']} removed, {n['rows_changed']} changed{columns}")

    def text(self) -> str:
        """Plain text: a summary, then per changed table its columns and rows (``+`` added, ``-`` removed,
        ``~`` changed), a changed row with each cell or output ``old -> new``."""
        lines = ["decision tables: " + self._summary()]
        for t in self.changes:
            c = t.counts()
            what = ("only in the new version" if t.kind == "added" else "only in the old version" if t.kind == "removed"
                    else f"{c['added']} added, {c['removed']} removed, {c['changed']} changed")
            lines.append(f"  {_MARK[t.kind]} table {one_line(t.id)} ({one_line(t.title)}, {t.table_kind}): {what}")
            for col in t.columns:
                lines.append(f"      {_MARK[col.kind]} column {one_line(col.name)}: "
                             + (f"{one_line(col.old)} -> {one_line(col.new)}" if col.kind == "changed"
                                else one_line(col.new if col.kind == "added" else col.old)))
            for r in t.rows:
                head = f"      {_MARK[r.kind]} {one_line(r.rule or '(gap)')} {one_line(r.label)}"
                if r.kind == "changed":
                    parts = [f"{one_line(d.label)}: {_side(d, d.old, one_line)} -> {_side(d, d.new, one_line)}"
                             for d in r.details]
                    if len(parts) == 1:
                        lines.append(f"{head}: {parts[0]}")
                    else:
                        lines.append(head + ":")
                        lines += [f"          {p}" for p in parts]
                else:
                    lines.append(f"{head}: when {_when(r, one_line)} => {_outcome(r, one_line)}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """Markdown: a heading, the summary, and per changed table one line per changed cell or output
        (old | new), an added or removed row with its conditions and outcome."""
        lines = ["## Decision-table rows that change", "", md_inline(self._summary()) + ".", ""]
        if not self.changes:
            lines += ["No decision-table row changes.", ""]
        for t in self.changes:
            c = t.counts()
            what = {"added": "Only in the new version", "removed": "Only in the old version",
                    "changed": f"Rows: {c['added']} added, {c['removed']} removed, {c['changed']} changed"}[t.kind]
            lines += [f"### {md_inline(t.title)} ({t.table_kind} {md_code(t.id)})", "", f"{what}.", ""]
            if t.columns:
                lines += ["| column | change | old | new |", "|---|---|---|---|"]
                lines += [f"| {md_code(c.name)} | {c.kind} | {md_inline(c.old) if c.old is not None else '*(none)*'} | "
                          f"{md_inline(c.new) if c.new is not None else '*(none)*'} |" for c in t.columns]
                lines.append("")
            if t.rows:
                lines += ["| row | change | what | old | new |", "|---|---|---|---|---|"]
                for r in t.rows:
                    name = f"{md_code(r.rule or '(gap)')} {md_inline(r.label)}"
                    if r.kind == "changed":
                        lines += [f"| {name} | changed | {md_inline(d.label)} | {_side(d, d.old, md_inline)} | "
                                  f"{_side(d, d.new, md_inline)} |" for d in r.details]
                        continue
                    when, outcome = _when(r, md_inline), _outcome(r, md_inline)
                    old, new = ("*(none)*", when) if r.kind == "added" else (when, "*(none)*")
                    lines.append(f"| {name} | {r.kind} | when | {old} | {new} |")
                    old, new = ("*(none)*", outcome) if r.kind == "added" else (outcome, "*(none)*")
                    lines.append(f"| {name} | {r.kind} | outcome | {old} | {new} |")
                lines.append("")
        return "\n".join(lines)


def _side(d: CellChange, value: str | None, escape: Callable[[Any], str]) -> str:
    """One side of a change in words: ``any`` for a cell the row does not test (``-`` in the table),
    ``can fire`` for a branch that is not ``never``, ``(none)`` for no row or no output."""
    if d.what == "cell" and value == "-":
        return "any"
    if d.name == "fires" and value == "":
        return "can fire"
    return "(none)" if not value else escape(value)


def _when(r: RowChange, escape: Callable[[Any], str]) -> str:
    """The cells of an added or removed row: ``label test, ...`` (``any value`` when it tests none)."""
    tests = [(d.label, d.new if r.kind == "added" else d.old) for d in r.details if d.what == "cell"]
    return "; ".join(f"{escape(label)} {escape(value)}" for label, value in tests) or "any value"


def _outcome(r: RowChange, escape: Callable[[Any], str]) -> str:
    """The outputs of an added or removed row in one line, with its note (``never fires: ...``)."""
    return escape(r.row.outcome) + (f" ({escape(r.row.note)})" if r.row.note else "")


# -- comparing ---------------------------------------------------------------------------------------

def _labels(table: DecisionTable | None) -> dict[str, str]:
    return {} if table is None else {c.name: c.label for c in table.columns}


def _row_details(old: Row | None, new: Row | None, old_labels: dict[str, str],
                 new_labels: dict[str, str]) -> tuple[CellChange, ...]:
    """The cells and outputs that differ (of an added or removed row: every cell it tests and output it has)."""
    out: list[CellChange] = []
    names = list(dict.fromkeys([*(new.cells if new else {}), *(old.cells if old else {})]))
    order = list(new_labels) + [n for n in old_labels if n not in new_labels]
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    for name in names:
        cell_a = None if old is None else old.cell(name)
        cell_b = None if new is None else new.cell(name)
        if cell_a != cell_b:
            out.append(CellChange("cell", name, new_labels.get(name) or old_labels.get(name) or name, cell_a, cell_b))
    oa = _outputs(old) if old is not None else None
    ob = _outputs(new) if new is not None else None
    for key, words in OUTPUTS:
        a, b = (oa or {}).get(key, ()), (ob or {}).get(key, ())
        if a == b:
            continue
        if key in _LISTS and oa is not None and ob is not None and sorted(a) != sorted(b):
            a, b = tuple(x for x in a if x not in b), tuple(x for x in b if x not in a)  # the items that differ
        out.append(CellChange("output", key, words, "; ".join(a) if oa is not None else None,
                              "; ".join(b) if ob is not None else None))
    return tuple(out)


def _pair(old: Sequence[Row], new: Sequence[Row]) -> list[tuple[Row | None, Row | None]]:
    """The rows of one rule's branch in two versions, paired: equal rows with each other, the others in
    order (one alternative more or less is an added or removed row, not every later row changed)."""
    a, b = [_signature(r) for r in old], [_signature(r) for r in new]
    out: list[tuple[Row | None, Row | None]] = []
    for _op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            out.append((old[i1 + k] if i1 + k < i2 else None, new[j1 + k] if j1 + k < j2 else None))
    return out


def _compare_table(tid: str, old: DecisionTable | None, new: DecisionTable | None) -> TableChange | None:
    ref = new or old
    assert ref is not None
    kind: Kind = "added" if old is None else "removed" if new is None else "changed"
    change = TableChange(tid, kind, ref.kind, ref.title)
    la, lb = _labels(old), _labels(new)
    for name in lb:
        if name not in la:
            change.columns.append(ColumnChange("added", name, None, lb[name]))
        elif la[name] != lb[name]:
            change.columns.append(ColumnChange("changed", name, la[name], lb[name]))
    change.columns += [ColumnChange("removed", name, la[name], None) for name in la if name not in lb]
    groups: dict[tuple[str, str], tuple[list[Row], list[Row]]] = {}
    for side, table in ((1, new), (0, old)):  # in the new table's order, then the rules of the old one only
        for row in table.rows if table is not None else ():
            groups.setdefault((row.rule, row.branch), ([], []))[side].append(row)
    for (rule, branch), (rows_a, rows_b) in groups.items():
        for a, b in _pair(rows_a, rows_b):
            details = _row_details(a, b, la, lb)
            if a is not None and b is not None and not details:
                continue
            row_kind: Kind = "added" if a is None else "removed" if b is None else "changed"
            change.rows.append(RowChange(row_kind, rule, branch, details=details, old=a, new=b))
    if kind == "changed" and not change.columns and not change.rows:
        return None
    return change


def comparable_ids(old: PathwayDef, new: PathwayDef) -> tuple[list[str], list[str]]:
    """The tables to build in each version: every state that is not terminal and has rules, and every
    decision point, of either version (where the other version has that state or point too)."""
    def wanted(d: PathwayDef) -> list[str]:
        return default_table_ids(d) + [p for p in d.decision_points if p not in d.spec.states]

    union = list(dict.fromkeys(wanted(new) + wanted(old)))
    known_a, known_b = set(table_ids(old)), set(table_ids(new))
    return [i for i in union if i in known_a], [i for i in union if i in known_b]


def diff_tables(old: Iterable[DecisionTable], new: Iterable[DecisionTable]) -> TableDiff:
    """Compare two versions' tables (matched by id; a table of one version only is added or removed)."""
    a = {t.id: t for t in old}
    b = {t.id: t for t in new}
    out = TableDiff(tables=len(set(a) | set(b)), old_rows=sum(len(t.rows) for t in a.values()),
                    new_rows=sum(len(t.rows) for t in b.values()))
    for tid in list(dict.fromkeys([*b, *a])):
        change = _compare_table(tid, a.get(tid), b.get(tid))
        if change is not None:
            out.changes.append(change)
    return out


def table_diff(old: PathwayDef | CompiledPathway, new: PathwayDef | CompiledPathway) -> TableDiff:
    """Build every table of both versions once (each under its own profile; a definition is compiled
    first) and compare them."""
    a = old if isinstance(old, CompiledPathway) else compile_pathway(old)
    b = new if isinstance(new, CompiledPathway) else compile_pathway(new)
    ids_a, ids_b = comparable_ids(a.definition, b.definition)
    return diff_tables(decision_tables(a, ids_a), decision_tables(b, ids_b))
