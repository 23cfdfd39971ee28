"""Decision tables written as text, Markdown, CSV and HTML (the models: :mod:`pathway.analysis.tables`).

Every format shows the same table: per part (moves and proposals, facts derived, advice, missing
data) the input columns its rows test, then the outputs, the rule's title and the findings of
``pathway check`` marked on the rows. Free text from the rule files (titles, texts, units, values)
is inert in each format: one line with visible escapes in text (:func:`pathway.core.text.one_line`),
escaped Markdown (:func:`pathway.core.text.md_inline`), HTML escaped, and CSV cells that a
spreadsheet could read as a formula (starting with ``=``, ``+``, ``-`` or ``@``) prefixed with ``'``.
"""

from __future__ import annotations

import csv
import html
import io
import re
import textwrap
from collections.abc import Callable, Sequence

from pathway.analysis.tables import DecisionTable, Row
from pathway.core.text import md_inline, one_line

__all__ = ["tables_text", "tables_markdown", "tables_csv", "tables_html", "tables_html_page", "table_anchor", "TABLE_CSS",
           "FORMATS"]

#: The output columns: (key, heading, the row's value).
_OUTPUTS: list[tuple[str, str, Callable[[Row], str]]] = [
    ("moves", "Move to", lambda r: "; ".join(r.moves)),
    ("proposals", "Proposes", lambda r: "; ".join(r.proposals)),
    ("derives", "Derives", lambda r: "; ".join(r.derives)),
    ("advice", "Advice, alerts and options", lambda r: "; ".join(r.advice)),
    ("data", "Data required", lambda r: "; ".join(r.data)),
]


def _rule_cell(row: Row) -> str:
    return row.rule or "(gap)"


def _checks(row: Row) -> str:
    return "; ".join(m.words() for m in row.marks)


def _annotation(row: Row) -> str:
    parts = [row.title] + ([row.note] if row.note else [])
    return " - ".join(parts)


def _outputs(rows: Sequence[Row]) -> list[tuple[str, str, Callable[[Row], str]]]:
    """The output columns some row of ``rows`` fills."""
    return [o for o in _OUTPUTS if any(o[2](r) for r in rows)]


def _grid(table: DecisionTable, rows: Sequence[Row]) -> tuple[list[str], list[list[str]], int]:
    """Header, cells and the number of input columns of one part (plain strings, not escaped)."""
    inputs = table.columns_of(rows)
    outputs = _outputs(rows)
    header = ["Rule", "Priority", "Branch"] + [c.label for c in inputs] + [o[1] for o in outputs] + ["Title and note"]
    marked = any(r.marks for r in rows)
    if marked:
        header.append("Checks")
    body = []
    for r in rows:
        line = [_rule_cell(r), "" if r.priority is None else str(r.priority), r.label]
        line += [r.cell(c.name) for c in inputs] + [o[2](r) or "-" for o in outputs] + [_annotation(r)]
        if marked:
            line.append(_checks(r) or "-")
        body.append(line)
    return header, body, len(inputs)


# -- text ---------------------------------------------------------------------------------------------

_WIDTH = {"Rule": 26, "Branch": 13, "Priority": 8, "Title and note": 28, "Checks": 36}


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def _text_grid(header: list[str], body: list[list[str]], inputs: int) -> list[str]:
    widths = []
    for i, name in enumerate(header):
        limit = 14 if 3 <= i < 3 + inputs else _WIDTH.get(name, 30)
        longest = max([len(one_line(name))] + [len(one_line(row[i])) for row in body])
        widths.append(max(3, min(limit, longest)))
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def lines(cells: list[str]) -> list[str]:
        wrapped = [_wrap(one_line(c), w) for c, w in zip(cells, widths, strict=True)]
        height = max(len(w) for w in wrapped)
        return ["| " + " | ".join((w[k] if k < len(w) else "").ljust(width) for w, width in zip(wrapped, widths, strict=True))
                + " |" for k in range(height)]

    out = [rule] + lines(header) + [rule.replace("-", "=")]
    for row in body:
        out += lines(row)
        out.append(rule)
    return out


def _text_one(table: DecisionTable) -> list[str]:
    out = [one_line(f"Decision table: {table.heading}"),
           one_line(f"Pathway {table.pathway} {table.version}" + (f", profile {table.profile}" if table.profile else "")),
           ""]
    out += [f"  {line}" if i else line for i, line in enumerate(_wrap(one_line("Hit policy: " + table.hit_policy), 110))]
    out.append("Notes:")
    for note in table.notes:
        out += [("  - " if i == 0 else "    ") + line for i, line in enumerate(_wrap(one_line(note), 106))]
    marks = table.marks
    if table.checked:
        out.append(one_line(f"Checks: {len(marks)} finding(s) of pathway check marked on the rows" if marks
                            else "Checks: no finding of pathway check concerns these rows"))
    for _key, heading, rows in table.sections():
        out += ["", one_line(heading)]
        header, body, inputs = _grid(table, rows)
        out += _text_grid(header, body, inputs)
    return out


def tables_text(tables: Sequence[DecisionTable]) -> str:
    """The tables as plain text: one grid per part, long cells wrapped."""
    blocks = ["\n".join(_text_one(t)) for t in tables]
    return "\n\n".join(blocks) + "\n"


# -- Markdown -----------------------------------------------------------------------------------------

def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(md_inline(c) if c else " " for c in cells) + " |"


def tables_markdown(tables: Sequence[DecisionTable]) -> str:
    """The tables as Markdown: a heading per table, the hit policy and notes, a table per part."""
    out: list[str] = []
    if tables:
        t0 = tables[0]
        out += [f"# Decision tables: {md_inline(t0.pathway)} {md_inline(t0.version)}"
                + (f", profile {md_inline(t0.profile)}" if t0.profile else ""), ""]
    for t in tables:
        out += [f"## {md_inline(t.title)} ({md_inline(t.kind)} {md_inline(t.id)})", "",
                f"**Hit policy.** {md_inline(t.hit_policy)}", ""]
        out += [f"- {_md_item(n)}" for n in t.notes] + [""]
        if t.checked:
            count = len(t.marks)
            out += [f"Checks: {count} finding(s) of pathway check marked on the rows." if count
                    else "Checks: no finding of pathway check concerns these rows.", ""]
        for _key, heading, rows in t.sections():
            header, body, _ = _grid(t, rows)
            out += [f"### {md_inline(heading)}", "", _md_row(header), "|" + "|".join(" --- " for _ in header) + "|"]
            out += [_md_row(line) for line in body] + [""]
    return "\n".join(out)


# -- CSV ----------------------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@")


def _csv_cell(text: str) -> str:
    """One line; a cell a spreadsheet would read as a formula is prefixed with ``'`` (a lone ``-``,
    "any value", is not a formula and stays as it is)."""
    s = one_line(text)
    return "'" + s if s.startswith(_FORMULA) and s != "-" else s


def tables_csv(tables: Sequence[DecisionTable]) -> str:
    """Every row of every table in one CSV: the table and part, the rule and branch, one column per
    input (the union over the tables, headed by title and unit; '-' any value, empty where the table
    has no such input), the outputs, the title and note, the findings marked."""
    labels: dict[str, str] = {}
    for t in tables:
        for c in t.columns:
            labels.setdefault(c.name, c.label)
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    heads = {n: (f"{lab} [{n}]" if seen[lab] > 1 else lab) for n, lab in labels.items()}
    header = (["Table", "Part", "Rule", "Priority", "Branch", "Alternative"] + list(heads.values())
              + [o[1] for o in _OUTPUTS] + ["Title", "Note", "Checks"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_csv_cell(h) for h in header])
    for t in tables:
        own = {c.name for c in t.columns}
        sections = dict((k, h) for k, h, _ in t.sections())
        for r in t.rows:
            alt = f"{r.alternative}/{r.alternatives}" if r.alternative else ""
            line = [t.id, sections.get(r.section, r.section), _rule_cell(r), "" if r.priority is None else str(r.priority),
                    r.branch, alt]
            line += [r.cell(n) if n in own else "" for n in heads]
            line += [o[2](r) for o in _OUTPUTS] + [r.title, r.note, _checks(r)]
            writer.writerow([_csv_cell(c) for c in line])
    return buf.getvalue()


# -- HTML ---------------------------------------------------------------------------------------------

#: Styles of the HTML tables (class names start with ``dt-``); the report adds them to its own.
TABLE_CSS = """
.dt-table { margin-top: 1.4rem; }
.dt-table h3 { font-size: 1.1rem; margin-bottom: 0.2rem; } .dt-table h4 { font-size: 0.95rem; margin: 0.9rem 0 0.2rem; }
.dt-id { color: #64748b; font-weight: normal; font-size: 0.85rem; }
.dt-policy, .dt-notes { font-size: 0.85rem; } .dt-notes { margin: 0.3rem 0; padding-left: 1.2rem; }
.dt-wrap { overflow-x: auto; }
table.dt { border-collapse: collapse; width: 100%; font-size: 0.78rem; margin-top: 0.3rem; }
table.dt th, table.dt td { border: 1px solid #cbd5e1; padding: 0.2rem 0.35rem; vertical-align: top; text-align: left; }
table.dt td { color: #94a3b8; text-align: center; }
table.dt td.dt-rule, table.dt td.dt-b, table.dt td.dt-out, table.dt td.dt-note, table.dt td.dt-marks {
  color: #0f172a; text-align: left; }
table.dt th { background: #f1f5f9; } table.dt th.dt-in { background: #e0f2fe; } table.dt th.dt-out { background: #fef9c3; }
table.dt td.dt-in { white-space: nowrap; color: #0f172a; }
table.dt td.dt-first-out, table.dt th.dt-first-out { border-left: 3px double #475569; }
table.dt td.dt-rule code { font-size: 0.75rem; } .dt-title { color: #334155; }
table.dt td.dt-out { min-width: 7rem; } table.dt td.dt-advice { min-width: 16rem; } table.dt td.dt-note { min-width: 14rem; }
tr.dt-gap td { background: #fff7ed; } tr.dt-never td { color: #94a3b8; }
.dt-mark { display: inline-block; padding: 0 0.35rem; border-radius: 0.5rem; font-size: 0.72rem; font-weight: bold; }
.dt-mark-error { background: #fee2e2; color: #991b1b; } .dt-mark-warning { background: #fef3c7; color: #92400e; }
.dt-mark-explained { background: #e0e7ff; color: #3730a3; }
tr.dt-marked-error td.dt-rule { border-left: 4px solid #dc2626; }
tr.dt-marked-warning td.dt-rule { border-left: 4px solid #d97706; }
tr.dt-marked-explained td.dt-rule { border-left: 4px solid #6366f1; }
@media print { table.dt { font-size: 0.62rem; } .dt-wrap { overflow: visible; } tr.dt-row { break-inside: avoid; } }
"""


def _h(text: object) -> str:
    return html.escape(one_line("" if text is None else text), quote=True)


def table_anchor(table: DecisionTable) -> str:
    """The HTML id of a table's section: ``dt-<id>``."""
    return "dt-" + "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in table.id)


def _runs(rows: Sequence[Row], same: Callable[[Row, Row], bool]) -> list[int]:
    """For each row, how many rows its merged cell spans (0: covered by the cell of a row above)."""
    spans = [0] * len(rows)
    i = 0
    while i < len(rows):
        j = i + 1
        while j < len(rows) and same(rows[i], rows[j]):
            j += 1
        spans[i] = j - i
        i = j
    return spans


def _td(span: int, attrs: str, body: str) -> str:
    if not span:
        return ""
    return f"<td{attrs}{f' rowspan={span}' if span > 1 else ''}>{body}</td>"


def _html_part(table: DecisionTable, heading: str, rows: Sequence[Row], link_rules: bool) -> str:
    inputs = table.columns_of(rows)
    outputs = _outputs(rows)
    marked = any(r.marks for r in rows)
    head = ['<th class="dt-rule">Rule</th><th>Priority</th><th>Branch</th>']
    head += [f'<th class="dt-in" title="{_h(c.name)}">{_h(c.label)}</th>' for c in inputs]
    head += [f'<th class="dt-out{" dt-first-out" if i == 0 else ""}">{_h(o[1])}</th>' for i, o in enumerate(outputs)]
    head.append("<th>Title and note</th>" + ("<th>Checks</th>" if marked else ""))
    # the alternatives of one branch share its rule, priority, outputs, title and findings: one cell each
    by_rule = _runs(rows, lambda a, b: bool(a.rule) and a.rule == b.rule)
    by_branch = _runs(rows, lambda a, b: bool(a.rule) and a.rule == b.rule and a.branch == b.branch
                      and a.branch in ("then", "otherwise"))
    body = []
    for k, r in enumerate(rows):
        level = ""
        if r.marks:
            levels = {m.level for m in r.marks}
            level = next(x for x in ("error", "warning", "explained") if x in levels)
        classes = ["dt-row"] + (["dt-gap"] if r.branch == "gap" else []) + (["dt-never"] if r.never else []) \
            + ([f"dt-marked-{level}"] if level else [])
        rule = f"<code>{_h(_rule_cell(r))}</code>"
        if link_rules and r.rule:
            rule = f'<a href="#rule-{_h(r.rule)}">{rule}</a>'
        cells = [_td(by_rule[k], ' class="dt-rule"', rule),
                 _td(by_rule[k], ' class="dt-b"', "" if r.priority is None else str(r.priority)),
                 f'<td class="dt-b">{_h(r.label)}</td>']
        for c in inputs:
            value = r.cell(c.name)
            cells.append("<td>-</td>" if value == "-" else f'<td class="dt-in">{_h(value)}</td>')  # plain: any value
        span = by_branch[k]
        for i, o in enumerate(outputs):
            extra = (" dt-first-out" if i == 0 else "") + (" dt-advice" if o[0] == "advice" else "")
            cells.append(_td(span, f' class="dt-out{extra}"', _h(o[2](r) or "-")))
        cells.append(_td(span, ' class="dt-note"', f'<span class="dt-title">{_h(r.title)}</span>'
                         + (f"<br>{_h(r.note)}" if r.note else "")))
        if marked:
            marks = "".join(f'<span class="dt-mark dt-mark-{_h(m.level)}">{_h(m.code)}</span> {_h(m.text)}'
                            + (f" <i>explained: {_h(m.explained)}</i>" if m.explained else "") + "<br>" for m in r.marks)
            cells.append(_td(span, ' class="dt-marks"', marks))
        body.append(f'<tr class="{" ".join(classes)}">' + "".join(cells) + "</tr>")
    return (f"<h4>{_h(heading)}</h4>"
            f'<div class="dt-wrap"><table class="dt"><thead><tr>{"".join(head)}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def tables_html(tables: Sequence[DecisionTable], *, link_rules: bool = False) -> str:
    """The tables as an HTML fragment (no scripts; every text escaped), styled by :data:`TABLE_CSS`;
    ``link_rules``: rule ids link to ``#rule-<id>`` (the report's rule table)."""
    out = []
    for t in tables:
        parts = [f'<section class="dt-table" id="{_h(table_anchor(t))}">'
                 f'<h3>{_h(t.title)} <span class="dt-id">{_h(t.kind)} {_h(t.id)}</span></h3>'
                 f'<p class="dt-policy"><b>Hit policy.</b> {_h(t.hit_policy)}</p>'
                 '<ul class="dt-notes">' + "".join(f"<li>{_h(n)}</li>" for n in t.notes) + "</ul>"]
        if t.checked:
            count = len(t.marks)
            parts.append('<p class="dt-policy">' + (f"{count} finding(s) of <code>pathway check</code> marked on the rows."
                                                    if count else "No finding of <code>pathway check</code> concerns "
                                                                  "these rows.") + "</p>")
        parts += [_html_part(t, heading, rows, link_rules) for _key, heading, rows in t.sections()]
        parts.append("</section>")
        out.append("".join(parts))
    return "".join(out)


#: Printing the page on its own: wide tables on A4 landscape, every column wrapped to fit.
_PAGE_PRINT_CSS = """
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  body { margin: 0; }
  table.dt { table-layout: auto; font-size: 0.55rem; }
  table.dt td.dt-in { white-space: normal; }
  table.dt td.dt-out, table.dt td.dt-advice, table.dt td.dt-note { min-width: 0; }
  table.dt th, table.dt td { overflow-wrap: anywhere; }
}
"""


#: What would start a heading, quote, list or setext underline at the start of a list item's text.
_MD_BLOCK_START = re.compile(r"^(?:[#>+=-]|\d+[.)])(?:\s|$)")


def _md_item(text: str) -> str:
    """A list item's text: inline Markdown (:func:`md_inline`) that cannot open a block either."""
    s = md_inline(text)
    return "\\" + s if _MD_BLOCK_START.match(s) else s


def tables_html_page(tables: Sequence[DecisionTable]) -> str:
    """A self-contained HTML page of the tables (inline CSS, no scripts, no external resources)."""
    title = "Decision tables"
    if tables:
        t0 = tables[0]
        title += f": {t0.pathway} {t0.version}" + (f", profile {t0.profile}" if t0.profile else "")
    contents = "".join(f'<li><a href="#{_h(table_anchor(t))}">{_h(t.title)}</a></li>' for t in tables)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_h(title)}</title>'
            "<style>body { font-family: Helvetica, Arial, sans-serif; margin: 2rem; color: #0f172a; line-height: 1.4; }"
            f"{TABLE_CSS}{_PAGE_PRINT_CSS}</style></head><body><h1>{_h(title)}</h1><ul>{contents}</ul>{tables_html(tables)}</body></html>\n")


#: ``--format`` name -> writer.
FORMATS: dict[str, Callable[[Sequence[DecisionTable]], str]] = {
    "text": tables_text, "markdown": tables_markdown, "csv": tables_csv, "html": tables_html_page,
}
