"""`pathway report`: one self-contained HTML page, checked as text and rendered in headless Chromium
(a screenshot with content, no console errors). The printed PDF is checked in test_report_print.py."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from pathway.analysis.check import check_pathway
from pathway.audit.browser import find_chromium, run_chromium
from pathway.audit.hazards import hazard_check
from pathway.audit.report import build_report, write_report
from pathway.authoring.scenario import discover, run_scenarios
from pathway.cli.main import main

FIXTURES = ROOT / "tests" / "fixtures" / "checks"
def _chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium was not found on PATH (Debian package 'chromium'; './dev test' installs it)")
    return exe


def _browse(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    _chromium()
    return run_chromium(page, *args)


def _console(stderr: str) -> list[str]:
    """Console messages and uncaught errors Chromium logged while loading the page."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of a PNG (8-bit, as Chromium writes them), unfiltered."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def _screenshot_stats(path: Path) -> tuple[int, int, int, float]:
    """(width, height, distinct colours, share of non-white pixels) of a screenshot, sampled."""
    width, height, rows = _png_pixels(path)
    bpp = len(rows[0]) // width
    colours, inked, total = set(), 0, 0
    for y in range(0, height, 4):
        row = rows[y]
        for x in range(0, width, 4):
            px = row[x * bpp:x * bpp + 3]
            colours.add(px)
            inked += px != b"\xff\xff\xff"
            total += 1
    return width, height, len(colours), inked / total


@pytest.fixture(scope="module")
def asuc_report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report("asuc", out)
    return out, out.read_text(encoding="utf-8")


def test_report_is_self_contained_and_complete(asuc_report, pw):
    _, html = asuc_report
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)  # nothing to fetch, nothing to run
    assert html.count("<svg") == 1 and "<?xml" not in html  # the diagram, inline
    for section in ("diagram", "checks", "rules", "scenarios", "hazards", "parameters", "sources"):
        assert f'id="{section}"' in html
    d = pw.definition
    assert html.count('<tr id="rule-') == len(d.rules)
    for rule in d.rules:
        assert f'<tr id="rule-{rule.id}">' in html
    for name in d.spec.parameters:
        assert f"<td><code>{name}</code></td>" in html
    checks = check_pathway("asuc", extra=[hazard_check])
    assert checks.summary() in html
    for f in checks.findings:
        assert f"<code>{f.code}</code>" in html and f"{f.file}:{f.line}:{f.col}" in html
    outcomes, cov = run_scenarios(discover([d.root / "scenarios"]), str(d.root))
    r, e = cov.percent()
    assert f"{len([o for o in outcomes if o.passed])} of {len(outcomes)} scenarios pass" in html
    assert f"<td>{r}% (" in html and f"<td>{e}% (" in html
    assert "Oxford (Travis) criteria on day 3" in html
    assert "when: &gt; 8 stools in 24 h or (≥ 3 and ≤ 8 stools in 24 h and CRP &gt; 45 mg/L)" in html
    assert "due: on day 3" in html and "$" not in re.sub(r"<(style|script)[^<]*</\1>", "", html)
    assert html.count('<tr id="hazard-') == len(d.hazards) > 0
    assert "Clinical sign-off as of " in html and f"0 signed off, 0 review overdue, {len(d.rules)} not reviewed" in html
    assert '<span class="pill not_reviewed">not reviewed</span>' in html
    assert "DrOracle</code></td><td>S (AI, not authoritative) <span class=\"pill warning\">not authoritative</span>" in html


def test_report_is_deterministic():
    assert build_report("asuc")[0] == build_report("asuc")[0]


def test_report_renders_in_headless_chromium(asuc_report, pw, tmp_path: Path):
    page, _ = asuc_report
    dom = _browse(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    assert dom.stdout.count('<tr id="rule-') == len(pw.definition.rules)
    assert "<svg" in dom.stdout and 'class="node"' in dom.stdout
    shot = tmp_path / "report.png"
    run = _browse(page, f"--screenshot={shot}", "--window-size=1280,2200", "--hide-scrollbars")
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    assert _console(run.stderr) == []
    width, height, colours, inked = _screenshot_stats(shot)
    assert (width, height) == (1280, 2200)
    assert colours > 20 and inked > 0.03, (colours, inked)


def test_the_browser_checks_can_fail(tmp_path: Path):
    """Controls: a page with a script error is caught, and a blank page is not taken for a report."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>x</p><script>throw new Error('boom')</script></body></html>",
                      encoding="utf-8")
    messages = _console(_browse(broken, "--dump-dom").stderr)
    assert any("Uncaught Error: boom" in m for m in messages)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    shot = tmp_path / "blank.png"
    _browse(blank, f"--screenshot={shot}", "--window-size=400,300")
    width, height, colours, inked = _screenshot_stats(shot)
    assert (width, height) == (400, 300) and colours == 1 and inked == 0.0


def test_command_with_scenarios_and_exit_codes(tmp_path: Path, capsys):
    folder = tmp_path / "mini"
    shutil.copytree(FIXTURES / "ok", folder)
    (folder / "scenarios").mkdir()
    (folder / "scenarios" / "basic.yaml").write_text(yaml.safe_dump({"scenarios": [
        {"id": "treated_then_done", "purpose": "A low level ends the treatment",
         "case": {"patient": {"id": "s1", "eligible": True}, "events": [{"day": 0, "level": 4}]},
         "expect": {"state": "done"}},
        {"id": "not_eligible", "purpose": "Not eligible: out of the pathway",
         "case": {"patient": {"id": "s2", "eligible": False}, "events": [{"day": 0}]},
         "expect": {"state": "out"}}]}, sort_keys=False), encoding="utf-8")
    out = tmp_path / "mini.html"
    assert main(["report", str(folder), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "2 of 2 scenarios pass" in html and "<td>100.0% (2/2)</td>" in html
    assert "<b>Transitions never taken:</b> treat -&gt; out" in html
    assert "mini 1.0.0: 0 error(s), 0 warning(s), 0 explained" in html
    broken = tmp_path / "overlap"
    shutil.copytree(FIXTURES / "overlap", broken)
    assert main(["report", str(broken), "-o", str(tmp_path / "overlap.html")]) == 1  # written, with a check error
    assert "<code>PW610</code>" in (tmp_path / "overlap.html").read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.html")]) == 2


HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def test_hostile_texts_in_the_hazard_log_and_sign_off_are_escaped(tmp_path: Path, capsys):
    folder = tmp_path / "mini"
    shutil.copytree(FIXTURES / "hazard_open_unmitigated", folder)
    hazards = folder / "hazards.yaml"
    text = hazards.read_text(encoding="utf-8").replace("title: A level above the limit is not treated",
                                                       f"title: {json.dumps(HOSTILE)}")
    text = text.replace("    status: open\n", f"    status: open\n    open_questions: [{json.dumps(HOSTILE)}]\n"
                        f"    note: {json.dumps(HOSTILE)}\n")
    hazards.write_text(text, encoding="utf-8")
    rules = folder / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace(
        "  - id: treated\n", "  - id: treated\n    reviewed_by: " + json.dumps(HOSTILE)
        + "\n    reviewed_on: 2026-01-10\n    review_due: 2026-06-30\n", 1), encoding="utf-8")
    out = tmp_path / "mini.html"
    assert main(["report", str(folder), "-o", str(out), "--as-of", "2026-12-01"]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    # the hazard's title, open question and note, the PW620 finding naming the hazard, the rule's reviewer
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;") == 5
    assert '<span class="pill review_overdue">review overdue</span>' in html
    assert "review overdue since 2026-06-30" in html and "1 review overdue, 1 not reviewed" in html
    assert main(["report", str(folder), "-o", str(out), "--as-of", "2026-03-01"]) == 0
    assert '<span class="pill signed_off">signed off</span>' in out.read_text(encoding="utf-8")
    assert main(["report", str(folder), "-o", str(out), "--as-of", "1 March"]) == 2
    assert "--as-of takes a date as YYYY-MM-DD" in capsys.readouterr().err
