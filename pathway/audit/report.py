"""The audit report: ``pathway report PATHWAY -o report.html`` (and ``--pdf report.pdf``).

One self-contained HTML page (inline CSS and SVG, no scripts, no external resources) for a
reviewer: a title page (pathway, version, profile, fingerprint, date, tool version, status, contents
and the committee's sign-off block); the pathway diagram; the static check results (:mod:`pathway.verify`); every rule
with its state, priority, conditions in plain words, effects, evidence sources, strength and
status and clinical sign-off (signed off, review overdue or not reviewed, as of a date the
caller gives or today); the computed inputs with their conditions and evidence; the scenario
results and coverage (rules never fired, transitions never taken); the hazard log with the
verdict of every verifying scenario; and the parameters with their values under the profile and
their sources. Every text from the rule files is escaped. The page is deterministic: the same rule
files and date give the same bytes. Its print stylesheet lays it out on A4 (each section on a new page,
tables that wrap, the rules and hazards as blocks, a running footer naming the version and
fingerprint); :mod:`pathway.audit.browser` prints it to PDF with headless Chromium.

Exit code: 0 when the report shows no check error and no failed scenario, 1 otherwise (the
report is written in both cases), 2 on bad input.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from pathway.analysis.check import CHECKS, DEFAULT_BUDGET, CheckReport, ExtraCheck, check_pathway
from pathway.analysis.evaluate import format_value
from pathway.analysis.tables import DecisionTable, decision_tables, default_table_ids
from pathway.audit.evidence import signoff, signoff_text
from pathway.audit.hazards import HazardLog, hazard_log
from pathway.authoring.scenario import ScenarioOutcome, discover, run_scenarios
from pathway.core.errors import DefinitionError, PathwayError, display_path
from pathway.core.text import one_line
from pathway.core.version import __version__
from pathway.definition import prose
from pathway.definition.pathway import SIGNOFF_TEXT, PathwayDef
from pathway.loading.loader import load_definition, resolve_pathway_dir
from pathway.render.diagram import render_svg, to_dot
from pathway.render.tables import TABLE_CSS, table_anchor, tables_html
from pathway.runtime.api import load_pathway
from pathway.runtime.compile import CompiledPathway

__all__ = ["build_report", "write_report"]

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem; color: #0f172a; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
border-bottom: 2px solid #e2e8f0; padding-bottom: 0.2rem; } .muted { color: #64748b; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; margin-top: 0.6rem; }
th, td { border: 1px solid #e2e8f0; padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f1f5f9; } tr:nth-child(even) td { background: #fafafa; }
code { font-family: Menlo, Consolas, monospace; font-size: 0.8rem; }
.pill { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 0.6rem; font-size: 0.75rem; font-weight: bold; }
.error { background: #fee2e2; color: #991b1b; } .warning { background: #fef3c7; color: #92400e; }
.explained { background: #e0e7ff; color: #3730a3; } .ok { background: #dcfce7; color: #166534; }
.unverified { background: #fef3c7; color: #92400e; } .verified { background: #dcfce7; color: #166534; }
.diagram { overflow-x: auto; border: 1px solid #e2e8f0; padding: 0.5rem; }
.diagram svg { max-width: 100%; height: auto; }
.summary td { width: 25%; } ul.tight { margin: 0; padding-left: 1.1rem; }
.signed_off, .mitigated, .closed, .risk1, .risk2 { background: #dcfce7; color: #166534; }
.review_overdue, .open, .risk3 { background: #fef3c7; color: #92400e; }
.not_reviewed { background: #f1f5f9; color: #334155; } .accepted { background: #e0e7ff; color: #3730a3; }
.risk4, .risk5 { background: #fee2e2; color: #991b1b; }
.title-page { border-bottom: 2px solid #e2e8f0; padding-bottom: 1rem; }
.title-page h1 { margin-top: 0; } .kicker { text-transform: uppercase; letter-spacing: 0.08em; font-size: 0.8rem; }
table.identity { width: auto; min-width: 60%; } table.identity th { width: 11rem; }
ol.contents { columns: 2; column-gap: 2rem; padding-left: 1.4rem; margin: 0.4rem 0; }
.sign-off { border: 1px solid #94a3b8; padding: 0.6rem 0.8rem; margin-top: 1rem; }
.sign-off h2 { margin-top: 0; border: 0; } .sign-off .decision span.box { display: inline-block; width: 0.8em;
height: 0.8em; border: 1px solid #0f172a; margin: 0 0.3em 0 1.2em; vertical-align: -0.1em; }
table.signatures td { height: 2.2rem; vertical-align: bottom; } table.signatures tr:nth-child(even) td { background: none; }
section[class^="sec-"] { counter-increment: section; }
section[class^="sec-"] > h2:first-child::before { content: counter(section) ". "; }
.notes-box { border: 1px solid #94a3b8; height: 3.2rem; margin-top: 0.5rem; padding: 0.2rem 0.4rem; }
"""

#: The printed page (A4, what ``pathway report --pdf`` writes; a browser's "Print" uses it too): tables
#: of fixed layout that wrap long ids and texts inside column widths chosen for A4, header rows repeated
#: on every page, rows kept whole, each section on a new page, the diagram on a landscape page when it
#: is wide, no tinted backgrounds (status pills are outlined). The body keeps a 2 mm gutter inside the
#: right margin, so anything wider than the page shows as ink in that gutter (tests/test_report_print.py).
#: On screen the page is unchanged: these rules apply only to print.
_PRINT_CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
@page wide { size: A4 landscape; }
@page :first { @bottom-left { content: none; } }
@media print {
  html { font-size: 8.5pt; } body { margin: 0; padding-right: 2mm; line-height: 1.3; overflow-wrap: anywhere; }
  h1 { font-size: 17pt; } h2 { font-size: 13pt; margin-top: 0; break-after: avoid; }
  section[class^="sec-"], section.dt-table { break-before: page; }
  section.wide { page: wide; } .diagram { border: 0; padding: 0; overflow: visible; }
  .diagram svg { display: block; width: 100%; height: auto; max-height: 150mm; }
  section.wide .diagram svg { max-height: 162mm; }
  table { table-layout: fixed; width: 100%; font-size: 7pt; line-height: 1.25; break-inside: auto; }
  table.identity, table.summary { width: 100%; } table.identity th { width: 36mm; }
  thead { display: table-header-group; } tr, li { break-inside: avoid; } tfoot { display: table-footer-group; }
  th, td { overflow-wrap: anywhere; word-break: break-word; padding: 0.6mm 1mm; border-color: #94a3b8; }
  th { background: none; border-bottom: 1.2pt solid #334155; font-size: 6.5pt; } tr:nth-child(even) td { background: none; }
  code { font-size: 6.5pt; } pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 7pt; }
  .pill { background: none !important; border: 0.7pt solid currentColor; padding: 0 0.6mm; font-size: 6pt; font-weight: normal; }
  a { color: inherit; text-decoration: none; } abbr { text-decoration: none; }
  details > summary { list-style: none; font-weight: bold; margin-top: 0.6rem; }
  details::details-content { content-visibility: visible; display: contents; }
  .title-page { border: 0; padding: 0; break-after: page; } ol.contents { columns: 2; }
  .title-page table { font-size: 8.5pt; } .title-page th { font-size: 8pt; } .title-page .pill { font-size: 7.5pt; }
  .sign-off { break-inside: avoid; } table.signatures td { height: 10mm; } .notes-box { height: 28mm; }
  /* the decision tables: on landscape pages, every cell wrapped inside its column */
  .sec-decision-tables { overflow-wrap: anywhere; } .sec-decision-tables .dt-wrap { overflow: visible; }
  .sec-decision-tables table.dt { table-layout: fixed; font-size: 5.5pt; }
  .sec-decision-tables table.dt th { font-size: 5.5pt; }
  .sec-decision-tables table.dt td.dt-in { white-space: normal; }
  .sec-decision-tables table.dt td.dt-out, .sec-decision-tables table.dt td.dt-advice,
  .sec-decision-tables table.dt td.dt-note { min-width: 0; }
  .sec-decision-tables table.dt td.dt-rule code { font-size: 5.5pt; }
  .sec-decision-tables table.dt .dt-mark { display: inline; padding: 0 0.2mm; } /* a code badge wraps in a narrow column */
  /* column widths (percent of the table) for the wide tables */
  .sec-checks th:nth-child(1) { width: 11%; } .sec-checks th:nth-child(2) { width: 8%; }
  .sec-checks th:nth-child(3) { width: 24%; }
  .sec-scenarios table:last-of-type th:nth-child(1) { width: 6%; }
  .sec-scenarios table:last-of-type th:nth-child(2) { width: 22%; }
  .sec-scenarios table:last-of-type th:nth-child(3) { width: 42%; }
  .sec-scenarios table:last-of-type th:nth-child(4) { width: 17%; }
  .sec-parameters th:nth-child(1) { width: 16%; } .sec-parameters th:nth-child(2) { width: 9%; }
  .sec-parameters th:nth-child(3) { width: 6%; } .sec-parameters th:nth-child(4) { width: 17%; }
  .sec-parameters th:nth-child(5) { width: 10%; } .sec-parameters th:nth-child(6) { width: 8%; }
  .sec-parameters th:nth-child(7) { width: 18%; } .sec-parameters th:nth-child(8) { width: 16%; }
  .sec-computed th:nth-child(1) { width: 18%; } .sec-computed th:nth-child(2) { width: 34%; }
  .sec-computed th:nth-child(3) { width: 18%; } .sec-computed th:nth-child(5) { width: 8%; }
  .sec-sources th:nth-child(1) { width: 16%; } .sec-sources th:nth-child(2) { width: 16%; }
  .sec-sources th:nth-child(3) { width: 38%; }
  .sec-invariants th:nth-child(1) { width: 18%; } .sec-invariants th:nth-child(2) { width: 30%; }
  .sec-invariants th:nth-child(4) { width: 12%; }
  /* the rules and the hazard log: one block per rule or hazard, its fields labelled (ten or nine columns
     are too narrow on A4 for their long texts and lists) */
  .sec-rules table, .sec-rules tbody, .sec-hazards table:last-of-type, .sec-hazards table:last-of-type tbody {
    display: block; border: 0; }
  .sec-rules thead, .sec-hazards table:last-of-type thead { display: none; }
  .sec-rules tr, .sec-hazards table:last-of-type tr { display: grid; border: 0.7pt solid #94a3b8; margin-bottom: 2mm;
    break-inside: avoid; }
  .sec-rules td, .sec-hazards table:last-of-type td { display: block; border: 0; padding: 0.5mm 1.5mm; }
  .sec-rules tr { grid-template-columns: 28% 28% 12% 16% 16%; grid-template-areas: "id title title status signoff"
    "state state state prio strength" "cond cond effects effects effects" "src src src src src"; }
  .sec-rules td:nth-child(1) { grid-area: id; font-weight: bold; }
  .sec-rules td:nth-child(2) { grid-area: title; font-weight: bold; }
  .sec-rules td:nth-child(1), .sec-rules td:nth-child(2), .sec-rules td:nth-child(9), .sec-rules td:nth-child(10) {
    border-bottom: 0.5pt solid #cbd5e1; }
  .sec-rules td:nth-child(3) { grid-area: state; } .sec-rules td:nth-child(4) { grid-area: prio; }
  .sec-rules td:nth-child(5) { grid-area: cond; } .sec-rules td:nth-child(6) { grid-area: effects; }
  .sec-rules td:nth-child(7) { grid-area: src; } .sec-rules td:nth-child(8) { grid-area: strength; }
  .sec-rules td:nth-child(9) { grid-area: status; } .sec-rules td:nth-child(10) { grid-area: signoff; }
  .sec-rules td:nth-child(1) .muted { font-weight: normal; }
  .sec-rules td:nth-child(3)::before { content: "States: "; font-weight: bold; }
  .sec-rules td:nth-child(4)::before { content: "Priority: "; font-weight: bold; }
  .sec-rules td:nth-child(5)::before { content: "Conditions"; font-weight: bold; display: block; }
  .sec-rules td:nth-child(6)::before { content: "Effects"; font-weight: bold; display: block; }
  .sec-rules td:nth-child(7)::before { content: "Sources: "; font-weight: bold; }
  .sec-rules td:nth-child(8)::before { content: "Strength: "; font-weight: bold; }
  .sec-rules td:nth-child(9)::before { content: "Evidence: "; font-weight: bold; }
  .sec-rules td:nth-child(10)::before { content: "Sign-off: "; font-weight: bold; }
  .sec-rules td:nth-child(7) br { display: none; } .sec-rules td:nth-child(7) .muted::before { content: " \\2014  "; }
  .sec-hazards table:last-of-type tr { grid-template-columns: 1fr 1fr 1fr; }
  .sec-hazards table:last-of-type td:nth-child(1) { grid-column: 1 / 4; border-bottom: 0.7pt solid #94a3b8; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(2) { grid-column: 1 / 4; }
  .sec-hazards table:last-of-type td:nth-child(6), .sec-hazards table:last-of-type td:nth-child(7),
  .sec-hazards table:last-of-type td:nth-child(8), .sec-hazards table:last-of-type td:nth-child(9) { grid-column: 1 / 4; }
  .sec-hazards table:last-of-type td:nth-child(3)::before { content: "Status: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(4)::before { content: "Initial risk: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(5)::before { content: "Residual risk: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(6)::before { content: "Mitigations: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(7)::before { content: "Verification: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(8)::before { content: "Open questions: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(9)::before { content: "Sources: "; font-weight: bold; }
  .sec-hazards table:last-of-type td:nth-child(1) .muted { font-weight: normal; margin-left: 2mm; }
  .sec-hazards table:last-of-type td:nth-child(1) br { display: none; }
  .sec-hazards table:last-of-type ul.tight { display: inline; padding: 0; }
  .sec-hazards table:last-of-type li { display: inline; }
  .sec-hazards table:last-of-type li:not(:last-child)::after { content: "; "; }
}
"""


def _e(value: Any) -> str:
    """Text as HTML (attribute-safe); control characters other than line breaks shown escaped (``\\x1b``)."""
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = "\n".join(one_line(line) for line in text.split("\n"))
    return html.escape(text, quote=True)


def _pill(text: str, kind: str) -> str:
    return f'<span class="pill {_e(kind)}">{_e(text)}</span>'


def _list(items: list[str]) -> str:
    if not items:
        return '<span class="muted">-</span>'
    return '<ul class="tight">' + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _inline_svg(svg: str) -> str:
    """SVG text for embedding in HTML: no XML prolog, doctype or comments."""
    start = svg.find("<svg")
    body = svg[start:] if start >= 0 else svg
    return re.sub(r"<!--.*?-->", "", body, flags=re.S).strip()


def _css_string(text: str) -> str:
    """Text as a CSS string literal: every character but letters, digits, space and ``.-_:`` as a hex
    escape, so no text can end the string or the style element."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_:")
    return '"' + "".join(c if c in safe else f"\\{ord(c):06x}" for c in text) + '"'


def _page_css(footer: str) -> str:
    """The running footer of every printed page but the first: ``footer`` and the page number."""
    box = "font-family: Helvetica, Arial, sans-serif; font-size: 7pt; color: #475569;"
    return (f"@page {{ @bottom-left {{ content: {_css_string(footer)}; {box} }} "
            f'@bottom-right {{ content: "page " counter(page) " of " counter(pages); {box} }} }}'
            f"@page wide {{ @bottom-left {{ content: {_css_string(footer)}; {box} }} "
            f'@bottom-right {{ content: "page " counter(page) " of " counter(pages); {box} }} }}')


_H2 = re.compile(r'<h2 id="([a-z0-9-]+)">(.*?)</h2>', re.S)
_TABLE = re.compile(r"<table([^>]*)><tr>(.*?)</tr>(.*?)</table>", re.S)


def _with_head_rows(body: str) -> str:
    """Tables whose first row holds only header cells get it as ``<thead>`` (repeated on every printed
    page) and the other rows as ``<tbody>``. The report's tables do not nest."""
    def head(m: re.Match[str]) -> str:
        attrs, first, rest = m.groups()
        if "<td" in first:
            return m.group(0)
        return f"<table{attrs}><thead><tr>{first}</tr></thead><tbody>{rest}</tbody></table>"
    return _TABLE.sub(head, body)


def _as_section(part: str, wide: bool) -> str:
    """A part that starts with a ``<h2 id=...>`` heading as a ``<section class="sec-<id>">`` (one printed
    page break before each, column widths by section); the diagram's on a landscape page when ``wide``."""
    m = _H2.match(part)
    if m is None:
        return part
    landscape = (wide and m.group(1) == "diagram") or m.group(1) == "decision-tables"
    cls = f"sec-{m.group(1)}" + (" wide" if landscape else "")
    return f'<section class="{cls}">{part}</section>'


def _contents(parts: list[str]) -> str:
    """The table of contents: every section heading, numbered as printed, linked."""
    items = [(m.group(1), m.group(2)) for p in parts if (m := _H2.match(p))]
    return ('<ol class="contents">' + "".join(f'<li><a href="#{sid}">{text}</a></li>' for sid, text in items) + "</ol>")


def _is_wide(svg: str) -> bool:
    """Whether an SVG (Graphviz's, sized in pt) is wider than tall."""
    m = re.search(r'<svg[^>]*?width="([\d.]+)pt"[^>]*?height="([\d.]+)pt"', svg, re.S)
    return m is not None and float(m.group(1)) > float(m.group(2))


def _signoff_block(d: PathwayDef, fingerprint: str, when: date, signatories: list[tuple[str, str]]) -> str:
    """What the committee signs: this version and fingerprint, a decision, names, roles, signatures, dates."""
    profile = f"profile <b>{_e(d.profile)}</b>" if d.profile else "<b>no profile</b> (the pathway's own parameter values)"
    rows = [(name, role) for name, role in signatories] + [("", "")] * max(4 - len(signatories), 1)
    lines = "".join(f"<tr><td>{_e(name)}</td><td>{_e(role)}</td><td></td><td></td></tr>" for name, role in rows)
    return ('<div class="sign-off" id="sign-off"><h2>Sign-off</h2>'
            f"<p>By signing, the members of the committee named below confirm that they have reviewed the clinical logic "
            f"of pathway <b>{_e(d.id)}</b> version <b>{_e(d.version)}</b>, {profile}, with fingerprint "
            f"<b><code>{_e(fingerprint)}</code></b>, as set out in this report dated {_e(when.isoformat())}. The sign-off "
            "applies to this fingerprint only: any change to a rule file, the profile or a parameter value gives another "
            "fingerprint, which needs a new review.</p>"
            '<p class="decision"><b>Decision:</b><span class="box"></span>approved for use as clinical decision support'
            '<span class="box"></span>approved subject to the changes noted below<span class="box"></span>not approved</p>'
            '<table class="signatures"><tr><th>name</th><th>role</th><th>signature</th><th>date</th></tr>'
            + lines + '</table><div class="notes-box"><span class="muted">Changes required, notes:</span></div></div>')


def _title_page(d: PathwayDef, fingerprint: str, when: date, status: str, facts: list[str], contents: str,
                signoff_block: str) -> str:
    """The first printed page: what the report is about (pathway, version, profile, fingerprint, date,
    tool), its status, the contents and the sign-off block."""
    profile = f"<code>{_e(d.profile)}</code>" if d.profile else "no profile (the pathway's own parameter values)"
    identity = [("Pathway", f"<code>{_e(d.id)}</code>: {_e(d.spec.title)}"), ("Version", _e(d.version)),
                ("Profile", profile), ("Fingerprint", f"<code>{_e(fingerprint)}</code> (the rule files, profile and "
                                                     "parameter values this report was made from)"),
                ("Date", f"{_e(when.isoformat())} (rule sign-offs are judged on this date)"),
                ("Made with", f"asuc-pathway {_e(__version__)}")]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in identity)
    return ('<header class="title-page"><p class="muted kicker">Audit report</p>'
            f"<h1>{_e(d.spec.title)}</h1>"
            '<p class="muted">Decision support for review by clinicians, not clinical advice.</p>'
            f'<table class="identity">{rows}</table><p>{status}</p>'
            + "".join(f"<p>{f}</p>" for f in facts)
            + f"<p><b>Contents</b></p>{contents}{signoff_block}</header>")


def _section_checks(report: CheckReport) -> str:
    rows = []
    for f in report.findings:
        kind = "explained" if f.explained else f.severity
        where = f"{f.file}:{f.line}:{f.col}"
        rows.append(f"<tr><td>{_pill(kind, kind)}</td><td><code>{_e(f.code)}</code></td><td><code>{_e(where)}</code></td>"
                    f"<td>{_e(f.message)}"
                    + (f'<br><span class="muted">explained: {_e(f.explained)}</span>' if f.explained else "")
                    + "</td></tr>")
    table = ("<table><tr><th>severity</th><th>code</th><th>where</th><th>finding</th></tr>" + "".join(rows) + "</table>"
             if rows else f"<p>{_pill('no findings', 'ok')}</p>")
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    codes = "".join(f"<tr><td><code>{c.code}</code></td><td>{_pill(c.severity, c.severity)}</td><td>{_e(c.title)}</td></tr>"
                    for c in CHECKS.values())
    return (f'<h2 id="checks">Static checks</h2><p>{_e(report.summary())}'
            + (f" (disabled: {_e(', '.join(report.disabled))})" if report.disabled else "") + "</p>" + table
            + (f"<p class=\"muted\">Notes:</p><ul>{notes}</ul>" if notes else "")
            + "<details><summary>Check codes</summary><table><tr><th>code</th><th>severity</th><th>check</th></tr>"
            + codes + "</table></details>")


def _section_rules(d: PathwayDef, as_of: date) -> str:
    sources = d.spec.sources
    rows = []
    counts: dict[str, int] = {}
    for r in d.rules:
        sign = signoff(r, as_of)
        counts[sign["status"]] = counts.get(sign["status"], 0) + 1
        cond = []
        words = prose.rule_text(r, d)
        if words.due is not None:
            cond.append(f"due: {words.due}")
        if r.requires:
            cond.append(f"requires: {', '.join(prose.field_name(f, d) for f in r.requires)}")
        cond.append(f"when: {words.when}")
        cond += list(words.missing)
        effects = ([f"if met: {prose.effect_words(e, d)}" for e in r.then]
                   + [f"if not met: {prose.effect_words(e, d)}" for e in r.otherwise]
                   + [f"while data are missing: {prose.effect_words(e, d)}" for e in getattr(r, "if_missing", ())])
        srcs = ", ".join(f'<abbr title="{_e(sources[s].title if s in sources else s)}">{_e(s)}</abbr>'
                         for s in r.evidence.sources)
        in_states = ", ".join(prose.state_name(x, d) for x in r.states)
        rows.append(
            f'<tr id="rule-{_e(r.id)}"><td><code>{_e(r.id)}</code><br><span class="muted">{_e(r.location)}</span></td>'
            f"<td>{_e(r.title)}</td><td>{_e(in_states)}</td><td>{r.priority}</td><td>{_list(cond)}</td>"
            f"<td>{_list(effects)}</td><td>{srcs}"
            + (f'<br><span class="muted">{_e(r.evidence.note)}</span>' if r.evidence.note else "")
            + f"</td><td>{_e(r.evidence.strength)}</td><td>{_pill(r.evidence.status, r.evidence.status)}</td>"
            f"<td>{_pill(SIGNOFF_TEXT[sign['status']], sign['status'])}"
            + (f'<br><span class="muted">{_e(signoff_text(sign))}</span>' if sign["status"] != "not_reviewed" else "")
            + "</td></tr>")
    unverified = sum(1 for r in d.rules if r.evidence.status == "unverified")
    signed = ", ".join(f"{counts.get(k, 0)} {t}" for k, t in SIGNOFF_TEXT.items())
    return (f'<h2 id="rules">Rules</h2><p>{len(d.rules)} rules, {unverified} unverified. Clinical sign-off as of '
            f"{_e(as_of.isoformat())}: {_e(signed)}.</p>"
            "<table><tr><th>rule</th><th>title</th><th>state</th><th>priority</th><th>conditions</th><th>effects</th>"
            "<th>sources</th><th>strength</th><th>status</th><th>sign-off</th></tr>" + "".join(rows) + "</table>")


def _section_computed(d: PathwayDef) -> str:
    """Computed inputs and the consistency checks between the values of one event."""
    if not d.computed and not d.consistency:
        return ""
    sources = d.spec.sources
    rows = []
    for name, comp in d.computed.items():
        ev = comp.evidence
        srcs = ", ".join(f'<abbr title="{_e(sources[s].title if s in sources else s)}">{_e(s)}</abbr>' for s in ev.sources)
        rows.append(f'<tr id="computed-{_e(name)}"><td><code>{_e(name)}</code><br><span class="muted">{_e(comp.location)}'
                    f"</span></td><td>{_e(prose.computed_text(comp, d))}</td><td>{_e(', '.join(comp.inputs))}</td>"
                    f"<td>{_e(prose.computed_recorded_text(comp))}</td><td>{srcs}"
                    + (f'<br><span class="muted">{_e(ev.note)}</span>' if ev.note else "")
                    + f"</td><td>{_e(ev.strength)}</td><td>{_pill(ev.status, ev.status)}</td></tr>")
    # a forbidden combination in the words the rules are shown in (parameters as their values); two fields compared
    # as written
    checks = "".join(f"<tr><td><code>{_e(c.id)}</code></td><td>"
                     + (f"not: {_e(prose.condition_text(c.forbid, d))}" if c.forbid is not None
                        else f"<code>{_e(c.must_hold())}</code>")
                     + f"</td><td>{_e(c.title)}</td></tr>" for c in d.consistency)
    return ('<h2 id="computed">Computed inputs</h2><p>True/false inputs computed from other inputs when not recorded: '
            "true when the condition is definitely true, false when it is definitely false, no value otherwise. A value "
            "recorded in the same event as, or after, the newest input used wins, unless the field keeps a recorded true.</p>"
            "<table><tr><th>field</th><th>true when</th><th>computed from</th><th>a recorded value</th><th>sources</th>"
            "<th>strength</th>"
            "<th>status</th></tr>" + "".join(rows) + "</table>"
            + ("<p>Checks between the values of one event (a violation refuses the event):</p><table><tr><th>check</th>"
               "<th>must hold</th><th>meaning</th></tr>" + checks + "</table>" if checks else ""))


def _section_parameters(d: PathwayDef) -> str:
    users: dict[str, list[str]] = {}
    for r in d.rules:
        for used in r.params:
            users.setdefault(used, []).append(r.id)
    for c in d.computed.values():
        for used in c.params:
            users.setdefault(used, []).append(f"{c.field} (computed)")
    rows = []
    for name, p in d.spec.parameters.items():
        value = d.params.get(name, p.value)
        changed = "" if value == p.value else f' <span class="muted">(pathway default {_e(format_value(p.value))})</span>'
        srcs = ", ".join(f'<abbr title="{_e(d.spec.sources[s].title if s in d.spec.sources else s)}">{_e(s)}</abbr>'
                         for s in p.sources) or _pill("no source", "warning")
        rows.append(f"<tr><td><code>{_e(name)}</code></td><td>{_e(format_value(value))}{changed}</td><td>{_e(p.unit)}</td>"
                    f"<td>{_e(p.title)}</td><td>{srcs}</td><td>{_e(', '.join(format_value(c) for c in p.choices))}</td>"
                    f"<td>{_e(p.note)}</td><td>{_e(', '.join(sorted(users.get(name, []))))}</td></tr>")
    return ('<h2 id="parameters">Parameters</h2>'
            + (f"<p>Values under profile <code>{_e(d.profile)}</code>.</p>" if d.profile else "")
            + "<table><tr><th>parameter</th><th>value</th><th>unit</th><th>title</th><th>sources</th><th>choices</th>"
            "<th>note</th><th>used by</th></tr>" + "".join(rows) + "</table>")


def _section_sources(d: PathwayDef) -> str:
    rows = "".join(f"<tr><td><code>{_e(sid)}</code></td><td>{_e(s.tag)}"
                   + ("" if s.authoritative else " " + _pill("not authoritative", "warning"))
                   + f"</td><td>{_e(s.title)}</td><td>{_e(s.ref)}</td></tr>"
                   for sid, s in sorted(d.spec.sources.items()))
    return ('<h2 id="sources">Sources</h2><table><tr><th>id</th><th>tag</th><th>title</th><th>reference</th></tr>'
            + rows + "</table>")


def _section_scenarios(root: Path, scenario_dir: Path | None) -> tuple[str, int, list[ScenarioOutcome]]:
    folder = scenario_dir or root / "scenarios"
    head = '<h2 id="scenarios">Scenario coverage</h2>'
    files = discover([folder]) if folder.is_dir() else []
    if not files:
        return head + f"<p class=\"muted\">No scenario files in {_e(display_path(folder))}.</p>", 0, []
    try:
        outcomes, cov = run_scenarios(files, str(root))
    except PathwayError as exc:
        return head + f"<p>{_pill('error', 'error')} scenarios could not be run: <code>{_e(exc)}</code></p>", 1, []
    failed = [o for o in outcomes if not o.passed]
    r, e = cov.percent()
    rows = "".join(
        f"<tr><td>{_pill('pass', 'ok') if o.passed else _pill('fail', 'error')}</td><td><code>{_e(o.id)}</code></td>"
        f"<td>{_e(o.scenario.scenario.purpose)}</td><td><code>{_e(o.scenario.location)}</code></td>"
        f"<td>{'' if o.passed else '<pre>' + _e(o.report()) + '</pre>'}</td></tr>" for o in outcomes)
    never_r = ", ".join(cov.rules_never) or "none"
    never_e = ", ".join(f"{a} -> {b}" for a, b in cov.edges_never) or "none"
    body = (f"<p>{len(outcomes) - len(failed)} of {len(outcomes)} scenarios pass "
            f"({len(files)} file(s) in <code>{_e(display_path(folder))}</code>).</p>"
            '<table class="summary"><tr><th>rules fired</th>'
            f"<td>{r}% ({sum(1 for n in cov.rules.values() if n)}/{len(cov.rules)})</td>"
            f"<th>transitions taken</th><td>{e}% ({sum(1 for n in cov.edges.values() if n)}/{len(cov.edges)})</td></tr></table>"
            f"<p><b>Rules never fired:</b> {_e(never_r)}</p><p><b>Transitions never taken:</b> {_e(never_e)}</p>"
            "<table><tr><th>result</th><th>scenario</th><th>purpose</th><th>where</th><th>failure</th></tr>" + rows + "</table>")
    return head + body, len(failed), outcomes


def _risk(rating: int, severity: str, likelihood: str) -> str:
    return f"{_pill(str(rating), f'risk{rating}')} {_e(severity)}, {_e(likelihood)} likelihood"


def _section_hazards(log: HazardLog) -> str:
    """The hazard log: each hazard's risk before and after mitigation, controls, scenario verdicts and open questions."""
    data = log.to_dict()
    s = data["summary"]
    matrix = data["risk_matrix"]
    grid = "".join(f"<tr><th>{_e(lk)}</th>" + "".join(f"<td>{_pill(str(r), f'risk{r}')}</td>" for r in matrix["ratings"][lk])
                   + "</tr>" for lk in reversed(matrix["likelihoods"]))
    meanings = "".join(f"<li>{_pill(k, f'risk{k}')} {_e(v)}</li>" for k, v in matrix["meanings"].items())
    rows = []
    for h in data["hazards"]:
        r = h["residual_risk"]
        m = h["mitigations"]
        controls = [f"{kind}: {', '.join(m[key])}" for kind, key in (("rules", "rules"), ("parameters", "parameters"),
                                                                    ("fields", "fields"), ("watchdogs", "watchdogs"))
                    if m[key]]
        verdicts = "".join(
            "<li>" + (_pill("pass", "ok") if v["passed"] else _pill("fail", "error") if v["passed"] is False
                      else _pill("unknown", "error")) + f" <code>{_e(v['id'])}</code></li>"
            for v in h["verification"]["scenarios"])
        verdicts += "".join(f"<li>invariant <code>{_e(i)}</code></li>" for i in h["verification"]["invariants"])
        rows.append(
            f'<tr id="hazard-{_e(h["id"])}"><td><code>{_e(h["id"])}</code><br><span class="muted">{_e(h["location"])}'
            f"</span></td><td><b>{_e(h['title'])}</b><br><i>cause:</i> {_e(h['cause'])}<br><i>effect:</i> {_e(h['effect'])}"
            + (f'<br><span class="muted">{_e(h["note"])}</span>' if h["note"] else "")
            + f"</td><td>{_pill(h['status'], h['status'])}</td>"
            f"<td>{_risk(h['initial_risk'], h['severity'], h['likelihood'])}</td>"
            f"<td>{_risk(r['risk'], r['severity'], r['likelihood'])}</td>"
            f"<td>{_list(controls)}</td><td>"
            + (f'<ul class="tight">{verdicts}</ul>' if verdicts else '<span class="muted">-</span>')
            + f"</td><td>{_list(h['open_questions'])}</td><td>{_e(', '.join(h['sources']))}</td></tr>")
    sc = s["scenarios"]
    counts = ", ".join(f"{n} {k}" for k, n in s["by_status"].items())
    return (f'<h2 id="hazards">Hazard log</h2><p>{s["hazards"]} hazards ({_e(counts)}) in '
            f"<code>{_e(data['file'])}</code>; verifying scenarios: {sc['pass']} pass, {sc['fail']} fail, "
            f"{sc['unknown']} unknown. Risk ratings follow the DCB0129 matrix (likelihood by severity):</p>"
            "<table><tr><th>likelihood \\ severity</th>" + "".join(f"<th>{_e(sv)}</th>" for sv in matrix["severities"])
            + "</tr>" + grid + f"</table><ul>{meanings}</ul>"
            "<table><tr><th>hazard</th><th>what could go wrong</th><th>status</th><th>initial risk</th>"
            "<th>residual risk</th><th>mitigations</th><th>verification</th><th>open questions</th><th>sources</th></tr>"
            + "".join(rows) + "</table>")


def _section_invariants(d: PathwayDef) -> str:
    if not d.invariants:
        return ""
    rows = []
    for inv in d.invariants:
        if inv.builtin is not None:
            what = f"built-in check <code>{_e(inv.builtin)}</code>"
        else:
            what = _e(prose.invariant_text(inv, d))
        rows.append(f"<tr><td><code>{_e(inv.id)}</code></td><td>{_e(inv.title)}"
                    + (f'<br><span class="muted">{_e(inv.description)}</span>' if inv.description else "")
                    + f"</td><td>{what}</td><td>{_e(', '.join(inv.hazards))}</td></tr>")
    return ('<h2 id="invariants">Safety invariants</h2><p>What must hold after every event of any patient course. '
            "<code>pathway verify</code> generates courses (values around every threshold, missing and expired values, "
            "decisions at right and wrong times) and checks each invariant after every event; a violation is shrunk to "
            "the shortest course and printed as a scenario.</p><table><tr><th>invariant</th><th>title</th>"
            "<th>condition</th><th>hazards</th></tr>" + "".join(rows) + "</table>")


# the decision tables' own styles (class names dt-*), kept apart from the page's
_CSS += TABLE_CSS


def _decisions_only(table: DecisionTable) -> DecisionTable:
    """A state's table cut to the rows that move or propose (and gaps), with only the columns they test;
    a decision point's table (what it derives) whole."""
    if table.kind != "state":
        return table
    rows = tuple(r for r in table.rows if r.section == "move")
    used = {name for r in rows for name in r.cells}
    return replace(table, rows=rows, columns=tuple(c for c in table.columns if c.name in used))


def _section_decision_tables(compiled: CompiledPathway, checks: CheckReport) -> str:
    """For each state that is not terminal and has rules, its decisions as a DMN-style decision table (the
    rows that move or propose), and the decision points' tables (what they derive), with the hit policy
    and the findings of the checks marked on the rows (see :mod:`pathway.analysis.tables`). The whole
    tables (facts derived, advice, data requests) are ``pathway table``'s."""
    d = compiled.definition
    ids = default_table_ids(d) + [p for p in d.decision_points if p not in d.spec.states]
    tables = [_decisions_only(t) for t in decision_tables(compiled, ids, checks=checks if checks.loaded else None)]
    contents = "".join(f'<li><a href="#{_e(table_anchor(t))}">{_e(t.title)}</a></li>' for t in tables)
    return ('<h2 id="decision-tables">Decision tables</h2><p>For each state, its decisions as a decision table: '
            "one column per value the rules test (title and unit), one row per rule and branch that moves the "
            "patient or proposes a move (a condition with alternatives takes one row per alternative), the outputs, "
            "and the findings of the checks on the rows they concern; then each decision point's table of what it "
            "derives. Thresholds are shown as their values under this profile. The whole table of a state (the facts "
            f"derived, advice and data requests too) is <code>pathway table {_e(d.id)} --state STATE</code>.</p>"
            f'<ul class="dt-contents">{contents}</ul>' + tables_html(tables, link_rules=True))


def _section_mutations(doc: dict[str, Any] | None, d: PathwayDef, source: str) -> tuple[str, int]:
    """The saved result of ``pathway test --mutate --json`` (if any) and the number of problems it shows."""
    head = '<h2 id="mutations">Threshold mutation testing</h2>'
    explain = ("<p>Each numeric parameter is moved one step up and down, and each comparison's strictness is "
               "flipped (&gt; to &ge;, &lt; to &le;, and back); the scenario library is rerun against every such "
               "mutant. A mutant no scenario notices is a threshold that could move without any test failing.</p>")
    if doc is None:
        return (head + explain + "<p>" + _pill("not run", "warning") + " Run <code>pathway test "
                f"{_e(d.id)} --mutate --json FILE</code> and pass the file with <code>--mutations</code>.</p>"), 0
    try:
        outcomes = [o for o in doc["outcomes"] if isinstance(o, dict)]
        counts = {k: int(doc[k]) for k in ("mutants", "killed", "refused", "survived")}
        fingerprint = str(doc.get("fingerprint", ""))
    except (KeyError, TypeError, ValueError):
        return head + "<p>" + _pill("unreadable", "error") + f" {_e(source)} is not a mutation report.</p>", 1
    current = load_definition(d.root).fingerprint()
    stale = fingerprint != current
    decision = int(doc.get("decision_parameter_survivors", 0) or 0)
    status = _pill(f"{counts['survived']} survivor(s)", "error" if counts["survived"] else "ok")
    if stale:
        status += " " + _pill("stale: the rule files changed since this run", "warning")
    rows = "".join(f"<tr><td>{_e(o.get('kind', ''))}</td><td><code>{_e(o.get('mutation', ''))}</code></td>"
                   f"<td>{'yes' if o.get('decision') else 'no'}</td>"
                   + ("<td>" + _pill("unexplained", "error") + "</td></tr>" if o.get("status") == "survived"
                      else f"<td>{_pill('explained', 'warning')} {_e(o.get('by', ''))}</td></tr>")
                   for o in outcomes if o.get("status") in ("survived", "explained"))
    explained = int(doc.get("explained", 0) or 0)
    body = (f"<p>{status}</p><p>{counts['mutants']} mutants against {_e(doc.get('scenarios', '?'))} scenarios: "
            f"{counts['killed']} killed by a scenario, {counts['refused']} refused when the pathway loads, "
            f"{counts['survived']} survived unexplained ({decision} of a parameter used in a decision), {explained} "
            "explained in pathway.yaml (code PW627). Run on pathway "
            f"fingerprint <code>{_e(fingerprint)}</code>; the files now give <code>{_e(current)}</code>.</p>")
    if rows:
        body += ("<table><tr><th>kind</th><th>surviving mutant</th><th>parameter used in a decision</th>"
                 "<th>why it survives</th></tr>" + rows + "</table>")
    return head + explain + body, counts["survived"] + (1 if stale else 0)


def _section_feedback(feedback: dict[str, dict[str, Any]], d: PathwayDef, source: str) -> str:
    """How clinicians answered the CDS Hooks cards, per rule: cards issued, accepted, overridden and why
    (``feedback``: :meth:`pathway.service.feedback.FeedbackLog.summary`, plain data)."""
    head = '<h2 id="feedback">Card acceptance</h2>'
    explain = ("<p>CDS Hooks cards the service issued and the feedback clinicians gave on them, per rule that made "
               f"the card (feedback log {_e(source)}). Acceptance is accepted / (accepted + overridden); a rule "
               "whose cards are mostly overridden is worth reviewing with the reasons given.</p>")
    if not feedback:
        return head + explain + "<p>" + _pill("no cards", "warning") + " The log holds no issued card.</p>"
    titles = {r.id: r.title for r in d.rules}
    rows = []
    totals = {"issued": 0, "accepted": 0, "overridden": 0}
    for rule, entry in sorted(feedback.items()):
        counts = {k: int(entry.get(k, 0) or 0) for k in totals}
        for k in totals:
            totals[k] += counts[k]
        answered = counts["accepted"] + counts["overridden"]
        rate = f"{100 * counts['accepted'] / answered:.0f}%" if answered else "-"
        reasons = entry.get("override_reasons") or {}
        title = titles.get(rule)
        shown = _e(title) if title is not None else '<span class="muted">not a rule of this version</span>'
        rows.append(f"<tr><td><code>{_e(rule)}</code></td><td>{shown}</td><td>{counts['issued']}</td>"
                    f"<td>{counts['accepted']}</td><td>{counts['overridden']}</td><td>{_e(rate)}</td>"
                    f"<td>{_list([f'{k}: {v}' for k, v in sorted(reasons.items())])}</td></tr>")
    answered = totals["accepted"] + totals["overridden"]
    summary = (f"<p>{totals['issued']} cards issued by {len(feedback)} rules; {totals['accepted']} accepted, "
               f"{totals['overridden']} overridden"
               + (f" ({100 * totals['accepted'] / answered:.0f}% accepted)" if answered else "") + ".</p>")
    return (head + explain + summary + "<table><tr><th>rule</th><th>title</th><th>issued</th><th>accepted</th>"
            "<th>overridden</th><th>acceptance</th><th>override reasons</th></tr>" + "".join(rows) + "</table>")


def build_report(name_or_path: str | os.PathLike[str], *, profile: str | None = None, scenario_dir: Path | None = None,
                 budget: int = DEFAULT_BUDGET, as_of: date | None = None,
                 mutations: Path | None = None, signatories: Sequence[tuple[str, str]] = (),
                 feedback: dict[str, dict[str, Any]] | None = None, feedback_source: str = "") -> tuple[str, int]:
    """The report as HTML text and the number of problems it shows (check errors, the hazard log's
    included, plus failed scenarios, plus surviving mutants when a mutation report is given).
    Rule sign-offs are shown as of ``as_of`` (default: today), which is also the report's date;
    ``mutations`` is a file written by ``pathway test --mutate --json``; ``signatories`` (name, role)
    are printed in the sign-off block of the title page (blank lines follow for others); ``feedback``
    (the per-rule summary of a CDS Hooks feedback log, read from ``feedback_source``) adds the card
    acceptance section."""
    root = resolve_pathway_dir(name_or_path)
    try:
        pw = load_pathway(root, profile=profile)
    except DefinitionError:
        pw = None
    log: HazardLog | None = None
    scen_html, failed = "", 0
    if pw is not None:
        scen_html, failed, outcomes = _section_scenarios(pw.definition.root, scenario_dir)
        log = hazard_log(pw, outcomes=outcomes)
    extra: list[ExtraCheck] = []
    if log is not None:
        findings = log.findings()
        extra.append(lambda _definition: findings)
    checks = check_pathway(root, profile=profile, budget=budget, extra=extra)
    title = f"{checks.pathway} {checks.version}"
    head = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Audit report: {_e(title)}</title>"
            f"<style>{_CSS}{_PRINT_CSS}")
    parts: list[str] = []
    if pw is None:
        parts.append(f"<h1>Audit report: {_e(title)}</h1><p>{_pill('does not load', 'error')} The pathway does not load; "
                     "only the check results follow.</p>")
        parts.append(_section_checks(checks))
        return _page(head, "", parts, wide=False), len(checks.errors) or 1
    d = pw.definition
    when = as_of or date.today()
    fingerprint = d.fingerprint()
    status = _pill(f"{len(checks.errors)} check error(s)", "error" if checks.errors else "ok")
    status += " " + _pill(f"{len(checks.warnings)} warning(s)", "warning" if checks.warnings else "ok")
    status += " " + _pill(f"{failed} failed scenario(s)", "error" if failed else "ok")
    facts = [f"{d.graph.number_of_nodes()} states, {d.graph.number_of_edges()} transitions, {len(d.rules)} rules, "
             f"{len(d.spec.parameters)} parameters, {len(d.spec.sources)} sources."]
    signed: dict[str, int] = {}
    for r in d.rules:
        key = r.signoff(when)
        signed[key] = signed.get(key, 0) + 1
    facts.append(f"<b>Rule sign-off</b> on {_e(when.isoformat())}: "
                 + ", ".join(f"{signed.get(k, 0)} {t}" for k, t in SIGNOFF_TEXT.items()) + f" (of {len(d.rules)} rules).")
    if log is not None and log.entries:
        hs = log.to_dict()["summary"]
        facts.append(f"<b>Hazard log</b>: {hs['hazards']} hazards ("
                     + _e(", ".join(f"{n} {k}" for k, n in hs["by_status"].items()))
                     + f"); verifying scenarios: {hs['scenarios']['pass']} pass, {hs['scenarios']['fail']} fail, "
                     f"{hs['scenarios']['unknown']} unknown.")
    svg = _inline_svg(render_svg(to_dot(pw.graph, d)))
    parts.append(f'<h2 id="diagram">Diagram</h2><div class="diagram">{svg}</div>')
    parts.append(_section_checks(checks))
    parts.append(_section_rules(d, as_of or date.today()))
    parts.append(_section_decision_tables(pw.compiled, checks))
    parts.append(_section_computed(d))
    parts.append(scen_html)
    if log is not None and log.entries:
        parts.append(_section_hazards(log))
    parts.append(_section_invariants(d))
    mutation_doc: dict[str, Any] | None = None
    mutation_problems = 0
    if mutations is not None:
        try:
            loaded = json.loads(mutations.read_text(encoding="utf-8"))
            mutation_doc = loaded if isinstance(loaded, dict) else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            mutation_doc = {}
    mutation_html, mutation_problems = _section_mutations(mutation_doc, d, display_path(mutations) if mutations else "")
    parts.append(mutation_html)
    if feedback is not None:
        parts.append(_section_feedback(feedback, d, feedback_source))
    parts.append(_section_parameters(d))
    parts.append(_section_sources(d))
    title_page = _title_page(d, fingerprint, when, status, facts, _contents(parts),
                             _signoff_block(d, fingerprint, when, list(signatories)))
    footer = f"{d.id} {d.version} \u00b7 " + (f"profile {d.profile}" if d.profile else "no profile") \
        + f" \u00b7 fingerprint {fingerprint} \u00b7 {when.isoformat()}"
    html_text = _page(head, _page_css(footer), [title_page, *parts], wide=_is_wide(svg))
    return html_text, len(checks.errors) + failed + mutation_problems


def _page(head: str, page_css: str, parts: list[str], *, wide: bool) -> str:
    """The whole page: the head's open style element, the page CSS, the parts (sections wrapped)."""
    body = "".join(_as_section(p, wide) for p in parts if p)
    return f"{head}{page_css}</style></head><body>{_with_head_rows(body)}</body></html>\n"


def write_report(name_or_path: str | os.PathLike[str], out: Path, **kwargs: Any) -> tuple[Path, int]:
    """Write the report to ``out``; return the path and the number of problems shown."""
    text, problems = build_report(name_or_path, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out, problems
