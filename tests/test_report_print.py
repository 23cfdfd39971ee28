"""`pathway report --pdf`: the printed report, checked from the PDF Chromium writes.

The PDF's pages are rasterised with pypdfium2 and read as a reviewer would hold them: every page is
A4, no ink lies past the right edge of the text column (a table cut at the margin reaches it), the
title page names the version, profile, fingerprint and date and carries the sign-off block, every
section starts a page, and every rule and hazard is printed. Control documents prove the checks can
fail: a table wider than the page is caught by both the pixel check and the layout check.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from conftest import ROOT
from pdfpages import A4, MARGINS_MM, cut_pages, page_texts

from pathway.audit.browser import CHROMIUM_ENV, ChromiumNotFound, chromium, find_chromium, print_pdf, run_chromium
from pathway.audit.report import build_report
from pathway.cli.main import main
from pathway.core.errors import PathwayError
from pathway.loading.loader import load_definition

AS_OF = "2026-11-30"
SIGNATORIES = ["Dr Ada Lovelace: chair, guideline committee", "Sam Patel: clinical safety officer"]
#: Pages of the ASUC report: 119 on 2026-12-02 (140 rules, 30 hazards, 456 scenarios, 86 parameters, 83
#: sources; each of the 11 sections starts a page), 48 of them the decision tables (the moves of 11
#: states and the day-3 decision point, each table on landscape pages of its own); 71 without the
#: tables. Before the print stylesheet it printed on 80 Letter pages with the rules table cut at the
#: right margin, and a first A4 layout with the rules and hazards as narrow ten- and nine-column tables
#: took 121. More than the bound means a layout regression (rows no longer wrap, blocks printed as
#: narrow columns, a section printed twice) or a much larger pathway: then raise it and say why.
#: 141 pages once the rules for ciclosporin's renal and seizure risks, one tacrolimus step per trough and
#: toxicity with an older film were added; 159 once the rules after a response, after the discharge and in
#: the colectomy state were added; 181 once the infection alerts on infliximab and ciclosporin, severe colitis
#: again on rescue and the film with toxicity were added, with about twenty rules acting after the discharge
#: (the discharged state's decision table); 211 once worse-after-better, the tacrolimus trough guards, contradicted
#: screening, the infliximab hold, the 8-weekly schedule and no discharge during an infection were added (48
#: hazards, 817 scenarios); 247 once the calcineurin-inhibitor stop texts, the response hold read from the chart, the
#: refused second-line rescue, the lost response on the last IV steroid day and the tacrolimus bridge checks were
#: added (55 hazards, 1,045 scenarios); 282 once the holds beside a colectomy proposal (the next infliximab infusion,
#: the discharge) and the rules for a deterioration not reassessed (on rescue, in maintenance, after the discharge)
#: were added (73 hazards, 1,261 scenarios).
MAX_PAGES = 310
#: Sections every report of a pathway that loads has (others may come between them).
SECTIONS = ("Diagram", "Static checks", "Rules", "Hazard log", "Parameters", "Sources")


def _sections(html: str) -> list[str]:
    """The report's section titles, in order, as the print stylesheet numbers them."""
    return re.findall(r'<section class="sec-[a-z0-9-]+(?: wide)?"><h2 id="[a-z0-9-]+">(.*?)</h2>', html)


def _browser() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium was not found (Debian package 'chromium'; './dev test' installs it)")
    return exe


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The ASUC report written by the command as HTML and PDF, with the time the PDF took."""
    _browser()
    folder = tmp_path_factory.mktemp("printed")
    html, pdf = folder / "report.html", folder / "report.pdf"
    args = ["report", "asuc", "-o", str(html), "--pdf", str(pdf), "--as-of", AS_OF]
    for s in SIGNATORIES:
        args += ["--signatory", s]
    start = time.monotonic()
    code = main(args)
    seconds = time.monotonic() - start
    assert code == 0
    doc = pdfium.PdfDocument(str(pdf))
    yield {"html": html, "pdf": pdf, "doc": doc, "texts": page_texts(doc), "seconds": seconds}
    doc.close()


def test_every_page_is_a4_and_only_the_diagram_and_the_decision_tables_are_landscape(printed):
    doc, texts = printed["doc"], printed["texts"]
    sizes = [tuple(round(v) for v in page.get_size()) for page in doc]
    assert all(s in (A4, A4[::-1]) for s in sizes), set(sizes)
    landscape = [i for i, s in enumerate(sizes, start=1) if s == A4[::-1]]
    html = printed["html"].read_text(encoding="utf-8")
    svg = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', html)
    assert svg and "1. Diagram" in texts[1]
    wide = float(svg.group(1)) > float(svg.group(2))
    # a wide state diagram gets a landscape page, scaled to it; the decision tables are printed landscape
    tables = [i for i, t in enumerate(texts, start=1) if "Decision tables" in " ".join(t.split())[:300]]
    assert len(tables) == 1
    first_after = next(i for i, t in enumerate(texts, start=1) if i > tables[0] and "Computed inputs" in t[:400])
    assert landscape == ([2] if wide else []) + list(range(tables[0], first_after))


def test_page_count_is_bounded(printed):
    pages = len(printed["doc"])
    print(f"\n{pages} pages, {printed['pdf'].stat().st_size / 1e6:.2f} MB, written in {printed['seconds']:.1f} s")
    assert 20 < pages <= MAX_PAGES, pages


def test_no_table_is_cut_at_the_right_margin(printed):
    assert cut_pages(printed["doc"]) == []


def test_every_section_starts_a_page_and_the_running_footer_names_the_version(printed):
    texts = printed["texts"]
    fingerprint = load_definition(ROOT / "rules" / "asuc").fingerprint()
    tops = [" ".join(t.split())[:400] for t in texts]
    outline = {b.get_title(): b.get_dest().get_index() for b in printed["doc"].get_toc() if b.level == 1}
    sections = _sections(printed["html"].read_text(encoding="utf-8"))
    assert [t for t in sections if t in SECTIONS] == list(SECTIONS)
    for number, title in enumerate(sections, start=1):
        starts = [i for i, t in enumerate(tops) if re.search(rf"\bof {len(texts)} {number}\. {re.escape(title)}\b", t)]
        assert len(starts) == 1, (number, title)
        assert outline[title] == starts[0]  # the PDF's bookmarks lead to the section's first page
    assert outline["Sign-off"] == 0
    for i, text in enumerate(texts[1:], start=2):
        # without any white space: the PDF's text layer may split a line into letters (seen on one page)
        flat = "".join(text.split())
        assert f"fingerprint{fingerprint}" in flat and f"page{i}of{len(texts)}" in flat, i


def test_title_page_names_what_is_signed(printed):
    first = " ".join(printed["texts"][0].split())
    d = load_definition(ROOT / "rules" / "asuc")
    fingerprint = d.fingerprint()
    for expected in ("Audit report".upper(), d.spec.title, f"Version {d.version}", "Profile default",
                     f"Fingerprint {fingerprint}", f"Date {AS_OF}", "Made with asuc-pathway",
                     f"Rule sign-off on {AS_OF}: 0 signed off, 0 review overdue, {len(d.rules)} not reviewed",
                     f"Hazard log: {len(d.hazards)} hazards", "0 check error(s)", "0 failed scenario(s)",
                     "Sign-off", f"pathway asuc version {d.version}, profile default, with fingerprint {fingerprint}",
                     "applies to this fingerprint only", "approved for use as clinical decision support", "not approved",
                     "name role signature date", "Dr Ada Lovelace chair, guideline committee",
                     "Sam Patel clinical safety officer", "page 1 of"):
        assert expected in first, expected
    for number, title in enumerate(_sections(printed["html"].read_text(encoding="utf-8")), start=1):  # the contents
        assert f"{number}. {title}" in first or re.search(rf"\b{number}\.\s*{re.escape(title)}", first), title


def test_every_rule_and_hazard_is_printed_with_its_sign_off(printed, pw):
    joined = "".join("".join(t.split()) for t in printed["texts"])  # ids may wrap inside a narrow column
    d = pw.definition
    for rule in d.rules:
        assert rule.id in joined, rule.id
    for hazard in d.hazards:
        assert hazard.id in joined, hazard.id
    flat = " ".join(" ".join(t.split()) for t in printed["texts"])
    assert flat.count("Sign-off: not reviewed") == len(d.rules)
    assert flat.count("Residual risk:") == len(d.hazards) and flat.count("Verification:") == len(d.hazards)


def test_the_screen_view_keeps_its_tables(printed):
    """The blocks are a print layout only: on screen the rules and the hazard log stay tables."""
    html = printed["html"].read_text(encoding="utf-8")
    screen = html[:html.index("@media print")]
    assert ".sec-rules" not in screen and "display: grid" not in screen
    assert html.count("<thead>") == html.count("<table") - html.count('<table class="summary">') \
        - html.count('<table class="identity">')


# --- the layout check: the print rules applied on screen at the A4 text width, measured by a script ------

_MEASURE = """<script>
addEventListener('load', () => {
  const over = [];
  for (const el of document.querySelectorAll('body, section, table, tr, th, td, pre, div, p, li, ul, ol, h1, h2')) {
    if (el.scrollWidth > el.clientWidth + 1) over.push(el.tagName + ' ' + el.scrollWidth + '>' + el.clientWidth + ' '
                                                      + el.textContent.slice(0, 60));
  }
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({width: document.documentElement.scrollWidth,
                                    tables: document.querySelectorAll('table').length, overflow: over});
  document.body.appendChild(out);
});
</script>"""
A4_TEXT_PX = round((210 - MARGINS_MM[1] - MARGINS_MM[3]) / 25.4 * 96)  # CSS pixels across the printed text column


def _print_layout_overflow(html: str, folder: Path) -> dict[str, object]:
    """Elements wider than their box when the print rules apply in a window as wide as the A4 text column."""
    page = folder / "measure.html"
    page.write_text(html.replace("@media print {", "@media all {").replace("</body>", _MEASURE + "</body>"),
                    encoding="utf-8")
    run = run_chromium(page, "--dump-dom", "--hide-scrollbars", f"--window-size={A4_TEXT_PX},1000")
    m = re.search(r'<pre id="measured">(.*?)</pre>', run.stdout, re.S)
    assert m, run.stderr[-2000:]
    data: dict[str, object] = json.loads(m.group(1).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&"))
    return data


def test_no_element_overflows_in_the_print_layout(printed, tmp_path: Path):
    data = _print_layout_overflow(printed["html"].read_text(encoding="utf-8"), tmp_path)
    assert data["overflow"] == [] and data["width"] == A4_TEXT_PX and data["tables"] > 10, data


WIDE = '<section class="sec-wide"><h2 id="wide">Wide</h2><table><tr><th>a</th><th>b</th></tr><tr><td>x</td>' \
       '<td style="white-space: nowrap">' + "unbreakable&nbsp;text " * 40 + "</td></tr></table></section>"


def test_the_cut_checks_can_fail(printed, tmp_path: Path):
    """Controls: a table wider than the page is found by the pixel check and by the layout check."""
    html = printed["html"].read_text(encoding="utf-8")
    wide = html[:html.index("<body>")] + "<body>" + WIDE + "</body></html>"
    pdf = print_pdf(wide, tmp_path / "wide.pdf")
    doc = pdfium.PdfDocument(str(pdf))
    problems = cut_pages(doc)
    doc.close()
    assert len(problems) == 1 and problems[0].startswith("page 1: ink"), problems
    data = _print_layout_overflow(wide, tmp_path)
    assert data["width"] > A4_TEXT_PX and any(o.startswith("TD ") for o in data["overflow"]), data


# --- the command -----------------------------------------------------------------------------------------

def test_pdf_only_writes_no_html_and_reports_the_time(tmp_path: Path, monkeypatch, capsys):
    _browser()
    folder = ROOT / "tests" / "fixtures" / "checks" / "ok"
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(folder), "--pdf", "mini.pdf", "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"wrote mini\.pdf in \d+\.\d s\n", out), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.pdf"]
    doc = pdfium.PdfDocument(str(tmp_path / "mini.pdf"))
    first = " ".join(doc[0].get_textpage().get_text_range().split())
    assert "Profile no profile (the pathway's own parameter values)" in first
    assert "version 1.0.0, no profile (the pathway's own parameter values), with fingerprint" in first
    assert cut_pages(doc) == []
    doc.close()


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _fake_browser(folder: Path, body: str) -> Path:
    exe = folder / "fake-chromium"
    exe.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_no_browser_is_a_usage_error_naming_the_package(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser on PATH
    monkeypatch.delenv(CHROMIUM_ENV, raising=False)
    assert find_chromium() is None
    with pytest.raises(ChromiumNotFound, match="Debian's 'chromium' package"):
        chromium()
    start = time.monotonic()
    assert main(["report", "asuc", "--pdf", str(tmp_path / "r.pdf"), "-o", str(tmp_path / "r.html")]) == 2
    assert time.monotonic() - start < 5  # said before the report is built
    err = capsys.readouterr().err
    assert err.startswith("error: headless Chromium is needed to write a PDF and was not found")
    assert "apt-get install chromium" in err
    assert not (tmp_path / "r.pdf").exists() and not (tmp_path / "r.html").exists()
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "nowhere"))
    assert main(["report", "asuc", "--pdf", str(tmp_path / "r.pdf")]) == 2
    assert f"${CHROMIUM_ENV} ('{tmp_path / 'nowhere'}') is not an executable" in capsys.readouterr().err


def test_a_browser_that_hangs_is_stopped_and_one_that_writes_nothing_is_reported(tmp_path: Path, monkeypatch, capsys):
    pids = tmp_path / "pids"
    # a browser that starts a helper and never finishes: both are ended (they share a process group)
    hang = _fake_browser(tmp_path, f"sleep 60 & echo $! $$ > {pids}; wait")
    monkeypatch.setenv(CHROMIUM_ENV, str(hang))
    start = time.monotonic()
    with pytest.raises(PathwayError, match=r"Chromium did not finish within 1 s and was stopped"):
        print_pdf("<!DOCTYPE html><p>x</p>", tmp_path / "x.pdf", timeout=1)
    assert time.monotonic() - start < 10
    started = [int(p) for p in pids.read_text(encoding="utf-8").split()]
    assert len(started) == 2
    time.sleep(0.2)
    assert [p for p in started if _running(p)] == []
    silent = _fake_browser(tmp_path, "echo 'no pdf here' >&2; exit 0")
    monkeypatch.setenv(CHROMIUM_ENV, str(silent))
    folder = ROOT / "tests" / "fixtures" / "checks" / "ok"
    assert main(["report", str(folder), "--pdf", str(tmp_path / "x.pdf")]) == 2
    assert "error: Chromium did not write a PDF (exit 0): no pdf here" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()


HOSTILE = '<script>alert("x")</script> & </style><img src=x onerror=alert(1)>'


def test_signatories_are_escaped_and_a_bad_one_is_a_usage_error(tmp_path: Path, capsys):
    folder = ROOT / "tests" / "fixtures" / "checks" / "ok"
    html, _ = build_report(folder, signatories=[(HOSTILE, HOSTILE)])
    assert "<script" not in html and "<img" not in html and html.count("</style>") == 1
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;/style&gt;&lt;img") == 2
    assert main(["report", str(folder), "-o", str(tmp_path / "x.html"), "--signatory", ": a role"]) == 2
    assert "--signatory takes 'NAME: ROLE'" in capsys.readouterr().err
    assert main(["report", str(folder), "--pdf", str(tmp_path / "x.pdf"), "--pdf-timeout", "0"]) == 2
    assert "--pdf-timeout takes a number of seconds above 0, not 0" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()


def test_footer_text_cannot_leave_its_css_string():
    from pathway.audit.report import _css_string
    text = _css_string('a"b\\c</style><script>\n\u00b7 d')
    assert re.fullmatch(r'"[A-Za-z0-9 .\-_:\\]*"', text), text
    assert text == '"a\\000022b\\00005cc\\00003c\\00002fstyle\\00003e\\00003cscript\\00003e\\00000a\\0000b7 d"'


# --- the screenshots in docs/ -----------------------------------------------------------------------------

def test_the_screenshot_script_renders_pdf_pages(printed, tmp_path: Path):
    out = tmp_path / "rules.png"
    script = str(ROOT / "docs" / "screenshot.py")
    run = subprocess.run([sys.executable, script, str(printed["pdf"]), "--page-with", "Clinical sign-off as of", "--dpi", "60",
                          "-o", str(out)], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (round(A4[0] * 60 / 72), round(A4[1] * 60 / 72))
    missing = subprocess.run([sys.executable, script, str(printed["pdf"]), "--page-with", "no such heading", "-o", str(out)],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no page contains 'no such heading'" in missing.stderr
