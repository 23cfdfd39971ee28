"""Hostile text is inert in every output format.

Strings with newlines, control characters, HTML, DOT and Mermaid syntax, Markdown links and
tables, backticks, pipes, backslashes and very long runs go through every place a case or a rule
file may put free text (the patient id; titles, descriptions, notes, texts, sources and hazards
of a copy of the rules folder) and come out of every format: the course as text and JSON,
``pathway explain`` (text, JSON), the trace, the pathway diagram (rule titles, badges, tooltips, phase
boxes) and a decision-point diagram (rules, conditions, options) in DOT, SVG and Mermaid, the
evidence listing and the hazard log (text, Markdown, JSON), the field reference, ``pathway check``
and the HTML report (and its PDF). Each output is compared with the same output of a benign run: the same
lines, the same DOT nodes and edges, the same SVG, HTML and rendered Markdown elements, nothing
that a value could have opened (no script, link, image, emphasis or extra table cell). Where an
id must be an id (states, fields, sources, parameters, rules, hazards), the hostile string is
refused with a located, one-line diagnostic.

The fixed corpus always runs; ``PATHWAY_FUZZ_BUDGET`` sets how many more strings a seeded
generator composes for the patient id (default 12; each costs about a second).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway import load_pathway
from pathway.analysis.check import check_pathway
from pathway.analysis.diff import VersionDiff, diff_pathways
from pathway.analysis.explain import explain, explain_text
from pathway.analysis.table_diff import table_diff
from pathway.analysis.tables import decision_tables
from pathway.audit.browser import find_chromium, print_pdf
from pathway.audit.evidence import evidence
from pathway.audit.evidence import render_markdown as evidence_markdown
from pathway.audit.evidence import render_text as evidence_text
from pathway.audit.hazards import HazardEntry, HazardLog, ScenarioVerdict
from pathway.audit.hazards import render_markdown as hazards_markdown
from pathway.audit.hazards import render_text as hazards_text
from pathway.audit.patients import collect_cases, patient_diff
from pathway.audit.report import build_report
from pathway.authoring.fieldref import field_reference
from pathway.cli.main import main
from pathway.core.errors import DefinitionError, InputError
from pathway.core.text import one_line
from pathway.render.diagram import build_diagram, build_trace_diagram, diagram_to_dot, diagram_to_mermaid, render_svg
from pathway.render.diff import build_diff_diagram
from pathway.render.state_diagram import build_state_diagram
from pathway.render.tables import tables_csv, tables_html_page, tables_markdown, tables_text
from pathway.service.cards import Card, order_cards, patient_view_cards
from pathway.service.rulepage import rule_document, rule_html

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"
AS_OF = date(2026, 12, 1)
SEED = 20261202
BUDGET = int(os.environ.get("PATHWAY_FUZZ_BUDGET", "12"))

#: Markup: characters a clinical text may legitimately hold, arranged to break out of each format.
MARKUP = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)"> <!-- comment --> <b>bold</b>',
    '"]; evil [label="pwned"]; x -> y [label="',
    "}; digraph evil { a -> b; subgraph cluster_x",
    'A --> B click A href "javascript:alert(1)" end',
    "%%{init: {'securityLevel': 'loose'}}%% flowchart LR",
    "[a link](javascript:alert(1)) ![img](http://e.example/x.png) <http://evil.example> [ref][1]",
    "`code` ``double`` ```fence``` `",
    "| cell | injected | --- |",
    "*bold* **strong** _em_ __em__ ~~strike~~ ~one~",
    "back\\slash\\ \\n \\N \\G \\l \\E \\\" ends with a backslash\\",
    "&lt;script&gt; &amp; &#60; &#x3c; #lt; #quot; #35; #amp;",
    "# heading - list > quote 1. item",
    '=HYPERLINK("http://evil.example","x") +cmd|\' /C calc\'!A0 @SUM(1) -2+3',
    "\u00fc\u65e5\u672c\u8a9e \U0001f600 \u00a0nbsp",
    "A" * 3000 + "<script>",
    " ".join(["word"] * 1500) + " </td></tr></table>",
]
#: Line breaks, terminal escapes and invisible reordering.
CONTROL = [
    "line one\nline two\n\nline four",
    "carriage\rreturn\r\ntab\there form\x0cfeed vt\x0b fs\x1c\x1d\x1e\x1f nel\x85 ls\u2028 ps\u2029",
    "\x1b[31mred\x1b[0m \x1b]0;set title\x07 nul\x00 bs\x08 del\x7f csi\x9b",
    "\u202eevil\u202c \u2066isolate\u2069 \u200fmark \ufeffbom",
    '"]\n    click suspected_asuc call alert()\n    x["',
    "---\ntitle: forged\n---\nflowchart LR",
    "| a |\n|---|\n| injected row |",
    "ok: asuc 0.1.0 is valid\nrules/asuc/pathway.yaml:1:1: forged diagnostic [PW100]",
]
CORPUS = MARKUP + CONTROL

_FRAGMENTS = CORPUS + ["<", ">", "&", '"', "'", "`", "|", "\\", "[", "]", "(", ")", "*", "_", "~", "#", ";", "{", "}",
                       "-->", "==>", "-.->", "\n", "\r", "\t", "\x1b", "\x00", "\u2028", "\u202e", "end", "click", "style"]


def _generated(n: int) -> list[str]:
    """``n`` strings composed from the corpus, syntax characters and random code points (seeded)."""
    rng = random.Random(SEED)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            roll = rng.random()
            if roll < 0.6:
                parts.append(rng.choice(_FRAGMENTS))
            elif roll < 0.8:
                codes = [rng.choice([rng.randint(0, 0x9f), rng.randint(0xa0, 0x2fff)]) for _ in range(rng.randint(1, 8))]
                parts.append("".join(map(chr, codes)))
            else:
                parts.append("".join(rng.choice("abcdefxyz0123456789 -.") for _ in range(rng.randint(1, 20))))
        text = "".join(parts)
        out.append(text if text.strip() else "x" + text)
    return out


# -- checks shared by the tests ---------------------------------------------------------------

def _printable_lines(text: str, allowed: str = "\n") -> None:
    """Every character is printable, a space or a line end (no control character, no bidi override)."""
    bad = sorted({f"U+{ord(c):04X}" for c in text
                  if not (c.isprintable() or c in allowed or unicodedata.category(c) == "Zs")})
    assert not bad, f"unescaped characters in the output: {bad[:10]}"


def _same_lines(out: str, benign: str, what: str, allowed: str = "\n") -> None:
    lines, expected = out.count("\n"), benign.count("\n")
    assert lines == expected, f"{what}: {lines} lines, the benign output has {expected}"
    _printable_lines(out, allowed)


def _dot_graph(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Node names and edges (tail, head names) as Graphviz's own parser reads the DOT source."""
    proc = subprocess.run(["dot", "-Tjson0"], input=source.encode("utf-8"), capture_output=True, check=False)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode("utf-8", "replace")[:500]
    doc = json.loads(proc.stdout)
    objects = doc.get("objects", [])
    names = sorted(o["name"] for o in objects if "nodes" not in o)  # clusters list their nodes
    ids = {o["_gvid"]: o["name"] for o in objects}
    edges = sorted((ids[e["tail"]], ids[e["head"]]) for e in doc.get("edges", []))
    return names, edges


def _assert_dot(source: str, benign: str, shown: list[str]) -> None:
    _same_lines(source, benign, "DOT", allowed="\n\t")  # the graphviz package indents with tabs
    assert _dot_graph(source) == _dot_graph(benign), "the DOT source has other nodes or edges than the benign one"
    for text in shown:
        assert text in source, f"{text!r} is missing from the DOT source"


_SVG_FORBIDDEN = {"script", "foreignObject", "a", "image", "iframe", "use", "style", "animate", "set"}


def _svg_tags(svg: str) -> Counter[str]:
    root = ET.fromstring(svg.encode("utf-8"))  # well-formed XML, whatever the labels held
    tags: Counter[str] = Counter()
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        tags[tag] += 1
        assert tag not in _SVG_FORBIDDEN, f"<{tag}> in the SVG"
        for attr in el.attrib:
            name = attr.rsplit("}", 1)[-1].lower()
            assert not name.startswith("on") and name != "href", f"attribute {attr} in the SVG"
    return tags


def _svg_text(svg: str) -> str:
    root = ET.fromstring(svg.encode("utf-8"))
    return "\n".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("}text") or el.tag == "text")


def _svg_groups(svg: str) -> Counter[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    return Counter(el.get("class", "") for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "g")


_MERMAID_LINE = [
    re.compile(r'title: "[^"<>\\]*(\\\\[^"<>\\]*)*"'),
    re.compile(r"---|flowchart TB|    subgraph legend \[\"Legend\"\]|        direction TB|    end"),
    re.compile(r'    subgraph cluster_\w+ \["[^"<>|`]*"\]'),  # a phase of care
    re.compile(r'( {4}| {8})\w+(\(\(|\(\[|\[\[|\(|\[)"[^"<>|`]*"(\)\)|\]\)|\]\]|\)|\])'),
    re.compile(r'    \w+ (-->|-\.->|==>|--o|---|-\.-)(\|"[^"<>|`]*"\|)? \w+'),
    re.compile(r'        legend_\d+\["[^"<>|`]*"\]'),
    re.compile(r"    style \w+ [#\w:,.\- ]+"),
    re.compile(r"    linkStyle \d+ [#\w:,.\- ]+"),
]


def _assert_mermaid(text: str, benign: str, shown: list[str]) -> None:
    _same_lines(text, benign, "Mermaid")
    for line in text.splitlines():
        plain = line.replace("<br/>", "")
        assert any(rx.fullmatch(plain) for rx in _MERMAID_LINE), f"unexpected Mermaid line: {line[:200]!r}"
    for value in shown:
        assert value in text, f"{value!r} is missing from the Mermaid text"


def _md_pipes(line: str) -> int:
    """Table cell boundaries: '|' not escaped by a backslash (GFM splits cells even inside code spans)."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count


class _Tags(HTMLParser):
    """Elements and attributes of an HTML document (inside or outside an inline SVG)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.svg_depth = 0
        self.problems: list[str] = []
        self.text: list[str] = []
        self.code: set[str] = set()  # the text of every <code> element
        self._in_code: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "code":
            self._in_code = []
        if tag == "svg":
            self.svg_depth += 1
        if not self.svg_depth:
            self.tags[tag] += 1
        if tag in ("script", "iframe", "img", "object", "embed", "foreignobject", "form", "input", "link", "base", "meta") \
                and tag != "meta":
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in ("src", "srcdoc", "formaction"):
                self.problems.append(f"{tag} {name}={value!r}")
            if name == "href" and not (value or "").startswith("#"):
                self.problems.append(f"{tag} href={value!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.svg_depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg_depth -= 1
        if tag == "code" and self._in_code is not None:
            self.code.add("".join(self._in_code))
            self._in_code = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_code is not None:
            self._in_code.append(data)


def _html_tags(html_text: str) -> _Tags:
    parser = _Tags()
    parser.feed(html_text)
    parser.close()
    return parser


def _markdown_html(md: str) -> str | None:
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - the structural checks still run
        return None
    return str(MarkdownIt("commonmark").enable("table").enable("strikethrough").render(md))


def _assert_markdown(md: str, benign: str, shown: list[str]) -> None:
    _same_lines(md, benign, "Markdown")
    for line, ref in zip(md.splitlines(), benign.splitlines(), strict=True):
        if ref.startswith("|"):
            assert _md_pipes(line) == _md_pipes(ref), f"a table row gained cells: {line[:200]!r}"
        else:
            assert line[:1] == ref[:1], f"a line starts differently: {line[:80]!r} (benign {ref[:80]!r})"
    rendered, reference = _markdown_html(md), _markdown_html(benign)
    if rendered is not None and reference is not None:
        tags, ref_tags = _html_tags(rendered), _html_tags(reference)
        assert tags.problems == ref_tags.problems, tags.problems[:5]  # only the document's own links
        # the same elements; code spans only of names the benign document has (the field
        # reference lists the fields a text mentions, so the hostile one may list fewer)
        tags.tags.pop("code", None), ref_tags.tags.pop("code", None)
        assert tags.tags == ref_tags.tags, f"rendered Markdown has other elements: {tags.tags - ref_tags.tags} " \
                                           f"(missing {ref_tags.tags - tags.tags})"
        assert tags.code <= ref_tags.code, f"code spans made from a text: {sorted(tags.code - ref_tags.code)[:5]}"
        text = "".join(tags.text)
        for value in shown:
            assert " ".join(value.split()) in " ".join(text.split()), f"{value[:60]!r} is not shown as text"


# -- the patient id -----------------------------------------------------------------------------

def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _case_file(folder: Path, patient_id: Any, note: Any = "admission") -> Path:
    case = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    case["patient"]["id"] = patient_id
    case["events"][0]["note"] = note
    path = folder / "case.json"
    # Case files are read by the YAML parser, which does not join an escaped surrogate pair and
    # folds a raw U+2028 inside a string: printable text raw, everything else escaped.
    text = json.dumps(case, ensure_ascii=False)
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    path.write_text(text, encoding="utf-8")
    return path


_FORMATS = [("run", "--format", "json"), ("run", "--format", "text"), ("explain", "--format", "text"),
            ("explain", "--format", "json"), ("trace", "--format", "dot"), ("trace", "--format", "svg"),
            ("trace", "--format", "mermaid")]


#: A located input refusal: ``file:line:col: message [PWnnn]``, one line per diagnostic.
_REFUSAL = re.compile(r"^\S.*:\d+:\d+: .* \[PW4\d\d\]$")


def _outputs(case: Path) -> dict[str, str] | None:
    """Every format's output, or None when the case is refused at input (an id too long or not valid
    Unicode): then the refusal must be located diagnostics, one line each, and nothing else."""
    code, _, err = _cli("run", str(case), "--format", "json")
    if code == 2:
        lines = err.strip().splitlines()
        assert lines and all(_REFUSAL.match(line) for line in lines), f"refused, but not cleanly: {err[:500]}"
        return None
    out = {}
    for cmd, *opts in _FORMATS:
        code, text, err = _cli(cmd, str(case), *opts)
        assert code == 0, f"pathway {cmd} {' '.join(opts)} failed: {err[:500]}"
        out[f"{cmd} {opts[-1]}"] = text
    return out


@pytest.fixture(scope="module")
def benign_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = _outputs(_case_file(tmp_path_factory.mktemp("benign"), "demo-001"))
    assert out is not None
    return out


def _check_patient_outputs(hostile: str, out: dict[str, str] | None, benign: dict[str, str]) -> None:
    if out is None:  # refused at input with located diagnostics: nothing was written anywhere
        return
    shown = one_line(hostile)
    for fmt in ("run json", "explain json"):
        doc, ref = json.loads(out[fmt]), json.loads(benign[fmt])
        assert doc.pop("patient_id") == hostile and ref.pop("patient_id") == "demo-001"
        assert doc == ref, f"{fmt}: a hostile patient id changed the course"
    for fmt in ("run text", "explain text"):
        _same_lines(out[fmt], benign[fmt], fmt)
        assert shown in out[fmt]
    dot_shown = shown.replace("\\", "\\\\").replace('"', '\\"')
    _assert_dot(out["trace dot"], benign["trace dot"], [dot_shown] if len(shown) < 500 else [])
    tags, ref_tags = _svg_tags(out["trace svg"]), _svg_tags(benign["trace svg"])
    assert tags == ref_tags, f"trace SVG: other elements than the benign one: {tags - ref_tags}"
    if "<script>" in shown:
        assert "<script>" in _svg_text(out["trace svg"])  # shown as text, not an element
    _assert_mermaid(out["trace mermaid"], benign["trace mermaid"], [])


@pytest.mark.parametrize("hostile", CORPUS, ids=[f"corpus{i}" for i in range(len(CORPUS))])
def test_hostile_patient_id_is_inert_in_every_format(hostile: str, tmp_path: Path, benign_outputs: dict[str, str]):
    _check_patient_outputs(hostile, _outputs(_case_file(tmp_path, hostile, note=hostile)), benign_outputs)


def test_generated_patient_ids_are_inert_in_every_format(tmp_path: Path, benign_outputs: dict[str, str]):
    for i, hostile in enumerate(_generated(BUDGET)):
        case = _case_file(tmp_path, hostile, note=hostile)
        try:
            _check_patient_outputs(hostile, _outputs(case), benign_outputs)
        except AssertionError as exc:
            raise AssertionError(f"generated string {i} ({hostile[:80]!r}): {exc}") from None


def test_the_mermaid_trace_title_cannot_add_lines_or_html(tmp_path: Path, benign_outputs: dict[str, str]):
    """The reproducer of the issue: a newline in the patient id injected diagram lines, '<script>' passed raw."""
    hostile = 'p1"\n    click iv_steroids href "javascript:alert(1)"\n<script>alert(1)</script>'
    code, text, _ = _cli("trace", str(_case_file(tmp_path, hostile)), "--format", "mermaid")
    assert code == 0
    title = text.splitlines()[1]
    assert title.startswith('title: "Acute severe ulcerative colitis - patient p1\' ') and title.endswith('"')
    assert "<" not in title and ">" not in title and "\u2039script\u203a" in title
    assert not any(line.lstrip().startswith("click") for line in text.splitlines())
    assert text.count("\n") == benign_outputs["trace mermaid"].count("\n")


def test_a_lone_surrogate_in_a_json_case_is_refused_with_a_located_error_not_a_traceback(tmp_path: Path):
    """A JSON case file can hold a lone surrogate, which no output can encode: the patient id is refused
    at input (PW411) with one located line, in every command."""
    case = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    case["patient"]["id"] = "p\ud800x"
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="ascii")  # json.dumps escapes it: "p\ud800x"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    for args in (["run", str(path), "--format", "json"], ["run", str(path), "--format", "text"],
                 ["trace", str(path), "--format", "mermaid"]):
        proc = subprocess.run([sys.executable, "-m", "pathway", *args], capture_output=True, env=env, check=False)
        err = proc.stderr.decode("utf-8")
        assert proc.returncode == 2 and "Traceback" not in err, err[-800:]
        assert "[PW411]" in err and all(_REFUSAL.match(line) for line in err.strip().splitlines()), err
        assert proc.stdout == b""


def _diff_cases(folder: Path, ids: list[str]) -> Path:
    """A copy of the demo case per id: the id is the patient id and, as far as a file name can hold it
    (no '/', no NUL, 80 characters), the case file's name."""
    folder.mkdir()
    case = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    for i, pid in enumerate(ids):
        case["patient"]["id"] = pid
        name = "".join(c for c in pid if c not in "/\x00")[:80]
        text = json.dumps(case, ensure_ascii=False)
        text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
        (folder / f"{i:02d} {name}.json").write_text(text, encoding="utf-8")
    return folder


def test_hostile_patient_ids_and_case_names_are_inert_in_the_patient_diff(tmp_path: Path):
    """``pathway diff --cases`` in text, Markdown and JSON: a hostile patient id and case file name
    change nothing but themselves (the same lines, table cells and rendered elements as benign ones)."""
    pw = load_pathway("asuc")
    patient = yaml.safe_load(DEMO.read_text(encoding="utf-8"))["patient"]
    accepted = []
    for hostile in CORPUS:
        try:
            pw.start(dict(patient, id=hostile))
            accepted.append(hostile)
        except InputError:  # refused at input (as every command refuses it): not a case to compare
            pass
    assert len(accepted) >= len(CORPUS) - 2
    diff, old, new = diff_pathways("asuc", "asuc", new_profile="nice")
    out = {}
    for label, ids in (("hostile", accepted), ("benign", [f"p{i}" for i in range(len(accepted))])):
        cases = collect_cases([_diff_cases(tmp_path / label, ids)])
        report = VersionDiff(diff, [patient_diff(old, new, cases, [str(tmp_path / label)], new_profile="nice")])
        out[label] = (report.text(), report.markdown(), report.to_dict())
    (text, md, doc), (benign_text, benign_md, benign_doc) = out["hostile"], out["benign"]
    assert doc["patients"]["counts"] == benign_doc["patients"]["counts"] and doc["patients"]["counts"]["changed"] == len(accepted)
    assert [c["patient"] for c in doc["patients"]["changed"]] == accepted
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
    _same_lines(text, benign_text, "diff text")
    for hostile in accepted:
        assert one_line(hostile) in text
    _assert_markdown(md, benign_md, [s for s in accepted if s in MARKUP and len(s) < 200])


def test_a_hostile_event_value_is_refused_with_one_line_per_diagnostic(tmp_path: Path):
    case = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    case["events"][0]["latent_tb"] = "negative\nrules/asuc/fields.yaml:1:1: forged [PW100]\x1b[2J"
    case["events"][0]["time"] = "2026\n<script>"
    del case["events"][0]["day"]
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    code, out, err = _cli("run", str(path))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines and all(re.fullmatch(r".+:\d+:\d+: .+ \[PW\d{3}\]", line) for line in lines), lines
    assert "forged" not in "".join(line.split(": ", 1)[0] for line in lines)  # no line starts as a forged location
    _printable_lines(err)


# -- rule files ---------------------------------------------------------------------------------

#: Keys whose string values are free text in the rule files (titles, texts, notes, sources, hazards).
_TEXT_KEYS = {"title", "description", "note", "text", "summary", "cause", "effect", "ref", "tag", "open_questions",
              "purpose", "short", "short_false"}
_SKIP_FILES = {"profiles", "cases", "scenarios"}


def _copy_rules(dest: Path) -> Path:
    """A copy of the rules folder (as the ``rules_copy`` fixture makes) without its scenarios, so
    that the hazard log and the report do not spend the test's time running them."""
    shutil.copytree(ROOT / "rules" / "asuc", dest)
    shutil.rmtree(dest / "scenarios")
    return dest


def _poison(folder: Path, strings: list[str]) -> dict[str, list[str]]:
    """Replace every free-text value of the rule files with the hostile strings in turn; return
    the strings used by slot (``rules.title``: the titles of rules, ``hazards.cause``, ...)."""
    cycle = itertools.cycle(strings)
    used: dict[str, list[str]] = {}

    def pick(where: tuple[Any, ...], key: str) -> str:
        value = next(cycle)
        slot = f"{where[0]}.{key}" if len(where) == 2 else f"other.{key}"
        used.setdefault(slot, []).append(value)
        used.setdefault("all", []).append(value)
        return value

    def walk(node: Any, where: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _TEXT_KEYS and isinstance(value, str):
                    node[key] = pick(where, key)
                elif key in _TEXT_KEYS and isinstance(value, list) and all(isinstance(v, str) for v in value):
                    node[key] = [pick(where, key) for _ in value]
                else:
                    walk(value, (*where, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*where, i))
        return node

    for path in sorted(folder.rglob("*.yaml")):
        if _SKIP_FILES & set(path.relative_to(folder).parts):
            continue
        data = walk(yaml.safe_load(path.read_text(encoding="utf-8")), ())
        if path.name == "pathway.yaml":
            # a hostile string is often longer than a card's summary: the length check (PW617, about the texts'
            # length, not their content) would add findings the benign report does not have
            data.setdefault("checks", []).append({"code": "PW617", "disable": True, "note": "texts replaced"})
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1 << 20), encoding="utf-8")
    return used


def _hazard_log(pw: Any) -> HazardLog:
    """The hazard log without running scenarios (every verifying scenario unknown): what matters
    here is how its texts render."""
    d = pw.definition
    log = HazardLog(d.id, d.version, "hazards.yaml")
    for h in d.hazards:
        log.entries.append(HazardEntry(h, [ScenarioVerdict(ref.id, ref.line, ref.col) for ref in h.scenarios]))
    return log


def _rule_outputs(folder: Path) -> dict[str, str]:
    pw = load_pathway(folder, cache=False)
    case = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    session, results = pw.run_course(case)
    from pathway.cli.run import _course_text  # the text of ``pathway run --format text``

    plain = build_diagram(pw.graph, pw.definition, clusters=True)  # rule titles, badges, tooltips, phases
    state = build_state_diagram(pw.definition, "rescue_selection")  # rules, conditions, options and their texts
    trace = build_trace_diagram(pw.graph, session.result())
    ev = evidence(pw, as_of=AS_OF)
    log = _hazard_log(pw).to_dict()
    out = {
        "diagram dot": diagram_to_dot(plain), "diagram mermaid": diagram_to_mermaid(plain),
        "trace dot": diagram_to_dot(trace), "trace mermaid": diagram_to_mermaid(trace),
        "state dot": diagram_to_dot(state), "state mermaid": diagram_to_mermaid(state),
        "run text": _course_text(pw, case, results), "run json": json.dumps(session.result(), ensure_ascii=False),
        "explain text": explain_text(explain(pw, session)),
        "evidence text": evidence_text(ev), "evidence markdown": evidence_markdown(ev), "evidence json": json.dumps(ev),
        "hazards text": hazards_text(log), "hazards markdown": hazards_markdown(log),
        "fields markdown": field_reference(pw.definition),
        # the page a CDS Hooks card's source.url opens (pathway serve)
        "rule page html": rule_html(pw, rule_document(pw, "tw_asuc_confirmed", AS_OF)),
    }
    out["diagram svg"] = render_svg(out["diagram dot"])
    out["trace svg"] = render_svg(out["trace dot"])
    tables = decision_tables(pw.compiled)  # every state's table (the findings of the checks: see the report)
    out.update({"table text": tables_text(tables), "table markdown": tables_markdown(tables),
                "table csv": tables_csv(tables), "table html": tables_html_page(tables)})
    out["state svg"] = render_svg(out["state dot"])
    out.update(_card_outputs(pw, case))
    pw.close()
    out.update(_diff_outputs(folder))
    return out


def _card_outputs(pw: Any, case: dict[str, Any]) -> dict[str, str]:
    """The CDS Hooks cards of the demo patient at the rescue decision (options, data required, a tacrolimus
    order at another dose than the computed one) and at the end of the course: summaries and Markdown details."""
    tacrolimus = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
                  "subject": {"reference": "Patient/demo-001"},
                  "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                            "code": "42316"}]},
                  "dosageInstruction": [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                         "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg", "code": "mg",
                                                                           "system": "http://unitsofmeasure.org"}}]}]}
    cards: list[dict[str, Any]] = []
    session = pw.start(case["patient"])
    for i, event in enumerate(case["events"]):  # every moment of the course: alerts, rechecks, doses
        session.observe(event)
        cards += patient_view_cards(pw, session)
        if i == 2:  # day 3: the rescue decision
            cards += order_cards(pw, session, [tacrolimus])
    # no rescue agent suitable (an active serious infection on day 3): the colectomy proposal
    session = pw.start(case["patient"])
    for event in case["events"][:3]:
        session.observe(dict(event, active_serious_infection=True) if event.get("day") == 3 else event)
    cards += patient_view_cards(pw, session)
    kinds = {c["extension"]["asuc-pathway"]["kind"] for c in cards}
    assert {"proposal", "decision", "alert", "recheck", "recommendation", "order-dose"} <= kinds, kinds
    return {"cards markdown": "\n\n".join(c["detail"] for c in cards),
            "cards summaries": "\n".join(c["summary"] for c in cards),
            "cards json": json.dumps(cards, ensure_ascii=False)}


#: A profile under which no day-3 index of the demo patient is positive: the demo's course changes
#: from day 3 on, so the patient diff shows the texts of both courses' recommendations.
_NO_INDEX_PROFILE = ("id: fuzz\ntitle: No day-3 index\n"
                     "parameters: {oxford_crp_mg_l: 60, lindgren_threshold: 20, car_threshold: 5}\n")


def _diff_outputs(folder: Path) -> dict[str, str]:
    """``pathway diff FOLDER FOLDER --new-profile fuzz --cases demo.yaml`` in text, Markdown and JSON (the
    definitions, the decision-table rows that change, the patients), and its diagram."""
    (folder / "profiles" / "fuzz.yaml").write_text(_NO_INDEX_PROFILE, encoding="utf-8")
    diff, old, new = diff_pathways(folder, folder, new_profile="fuzz")
    tables = table_diff(old, new)  # the day-3 index rows: column titles and derived facts from the rule files
    assert tables.counts()["rows_changed"] > 0
    patients = patient_diff(old, new, collect_cases([DEMO]), ["demo.yaml"], new_profile="fuzz")
    assert patients.counts()["changed"] == 1
    report = VersionDiff(diff, [tables, patients])
    diagram = build_diff_diagram(diff, old, new)
    return {"diff text": report.text(), "diff markdown": report.markdown(),
            "diff json": json.dumps(report.to_dict(), ensure_ascii=False),
            "diff dot": diagram_to_dot(diagram), "diff mermaid": diagram_to_mermaid(diagram)}


@pytest.fixture(scope="module")
def benign_rules(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = _copy_rules(tmp_path_factory.mktemp("benign-rules") / "asuc")
    return folder, _rule_outputs(folder)


@pytest.fixture(scope="module")
def benign_report(benign_rules: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> str:
    empty = tmp_path_factory.mktemp("no-scenarios")
    html_text, _ = build_report(benign_rules[0], scenario_dir=empty, as_of=AS_OF)
    return html_text


def _shown(used: dict[str, list[str]], *slots: str) -> list[str]:
    """The markup strings (short enough to search for) put in these slots."""
    return [s for s in dict.fromkeys(v for slot in slots for v in used.get(slot, [])) if s in MARKUP and len(s) < 200]


def _check_rule_outputs(out: dict[str, str], benign: dict[str, str], used: dict[str, list[str]]) -> None:
    for fmt in ("run text", "explain text", "evidence text", "hazards text", "diff text"):
        _same_lines(out[fmt], benign[fmt], fmt)
    for fmt in ("diagram dot", "trace dot", "diff dot", "state dot"):
        _assert_dot(out[fmt], benign[fmt], [])
    for fmt in ("diagram svg", "trace svg", "state svg"):
        tags = _svg_tags(out[fmt])
        assert _svg_groups(out[fmt]) == _svg_groups(benign[fmt]), f"{fmt}: other nodes, edges or clusters"
        assert "script" not in tags
        assert "<script>alert('x')</script>" not in out[fmt]
    # rule titles are labels of the pathway and decision-point diagrams: shown as text
    shown = " ".join((_svg_text(out["diagram svg"]) + " " + _svg_text(out["state svg"])).split())
    titles = [t for t in dict.fromkeys(used.get("rules.title", [])) if len(t) < 200]
    assert [t for t in titles if " ".join(one_line(t).split()) in shown], "no hostile rule title is shown as text"
    for fmt in ("diagram mermaid", "trace mermaid", "diff mermaid", "state mermaid"):
        _assert_mermaid(out[fmt], benign[fmt], [])
    for fmt, slots in (("evidence markdown", ("rules.title", "sources.title")), ("hazards markdown", ("hazards.title",)),
                       ("fields markdown", ("fields.title",)), ("diff markdown", ())):
        _assert_markdown(out[fmt], benign[fmt], _shown(used, *slots))
    for fmt, slots in (("evidence text", ("rules.title",)), ("hazards text", ("hazards.cause",))):
        for value in used.get(slots[0], []):
            assert one_line(value) in out[fmt], f"{fmt}: {value[:60]!r} is not shown"
    # CDS Hooks cards: summaries one line each and under 140 characters, details inert Markdown
    _same_lines(out["cards summaries"], benign["cards summaries"], "card summaries")
    assert all(len(line) < 140 for line in out["cards summaries"].splitlines())
    _assert_markdown(out["cards markdown"], benign["cards markdown"], [])
    for card in json.loads(out["cards json"]):
        Card.model_validate(card)
    for fmt in ("run json", "evidence json", "diff json", "cards json"):
        json.loads(out[fmt])  # strict JSON, whatever the texts hold
    page, page_ref = _html_tags(out["rule page html"]), _html_tags(benign["rule page html"])
    assert not page.problems and page.tags == page_ref.tags, ("rule page html", page.problems[:5], page.tags - page_ref.tags)
    _printable_lines(out["rule page html"])
    # the decision-table rows that change name their columns by the fields' titles: shown, on one line
    titles = [one_line(v) for v in used.get("fields.title", [])]
    assert [t for t in titles if t in out["diff text"]], "no hostile field title in the table rows of the diff"
    _assert_tables(out, benign, used)


def _assert_tables(out: dict[str, str], benign: dict[str, str], used: dict[str, list[str]]) -> None:
    """The decision tables: the same grids, cells, rows and elements as the benign ones."""
    # text: long cells wrap, so the line count may differ; the grids may not
    text, ref = out["table text"], benign["table text"]
    _printable_lines(text)
    assert [line[:1] for line in text.splitlines() if line[:1] in "+="].count("+") == \
        [line[:1] for line in ref.splitlines() if line[:1] in "+="].count("+"), "table text: other grid lines"
    border = 0
    for line in text.splitlines():
        if line.startswith("+"):
            border = len(line)
        elif line.startswith("|"):
            assert len(line) == border, f"table text: a row line is not as wide as its grid: {line[:120]!r}"
    assert text.count("\nDecision table: ") == ref.count("\nDecision table: ")
    _assert_markdown(out["table markdown"], benign["table markdown"], _shown(used, "rules.title"))
    # CSV: the same rows and columns; no cell a spreadsheet would run
    rows, ref_rows = list(csv.reader(io.StringIO(out["table csv"]))), list(csv.reader(io.StringIO(benign["table csv"])))
    assert len(rows) == len(ref_rows) and [len(r) for r in rows] == [len(r) for r in ref_rows]
    for row in rows:
        for cell in row:
            assert cell == "-" or not cell.startswith(("=", "+", "-", "@")), f"table csv: a formula cell {cell[:80]!r}"
            _printable_lines(cell, allowed="")
    cells = {c.lstrip("'") for row in rows for c in row}
    for value in used.get("rules.title", []):
        assert one_line(value).lstrip("'") in cells, f"table csv: the rule title {value[:60]!r} is not a cell"
    # HTML: the same elements, nothing to run or fetch
    tags, ref_tags = _html_tags(out["table html"]), _html_tags(benign["table html"])
    assert not tags.problems, tags.problems[:5]
    assert tags.tags == ref_tags.tags, f"table html: other elements: {tags.tags - ref_tags.tags} " \
                                       f"(missing {ref_tags.tags - tags.tags})"
    _printable_lines(out["table html"])


def _check_report(html_text: str, benign_html: str, used: dict[str, list[str]]) -> None:
    tags, ref = _html_tags(html_text), _html_tags(benign_html)
    assert not tags.problems, tags.problems[:5]
    # the same elements outside the diagram (the diagram's labels wrap differently)
    assert tags.tags == ref.tags, f"report: other elements than the benign one: {tags.tags - ref.tags} " \
                                  f"(missing {ref.tags - tags.tags})"
    _printable_lines(html_text)
    text = " ".join("".join(tags.text).split())
    for value in _shown(used, "rules.title", "hazards.title", "sources.title", "parameters.title"):
        assert " ".join(value.split()) in text, f"{value[:60]!r} is not shown as text in the report"


def _check_report_pdf(html_text: str, used: dict[str, list[str]], folder: Path) -> None:
    """The printed report (``pathway report --pdf``): the markup in rule-file texts is printed as text, and
    the longest texts (3,000 letters without a space, 1,500 words) wrap inside the page."""
    import pypdfium2 as pdfium
    from pdfpages import cut_pages, page_texts

    def latin(text: str) -> str:  # compared without spaces (lines wrap) and beyond Latin (no CJK or emoji font)
        return "".join(c for c in text if ord(c) < 0x250 and not c.isspace())

    doc = pdfium.PdfDocument(str(print_pdf(html_text, folder / "report.pdf")))
    text = latin("".join(page_texts(doc)))
    for value in _shown(used, "rules.title", "hazards.title", "sources.title", "parameters.title"):
        assert latin(value) in text, f"{value[:60]!r} is not printed as text in the PDF"
    assert cut_pages(doc) == []
    doc.close()


@pytest.mark.slow
@pytest.mark.parametrize("group", ["markup", "control", "mixed"])
def test_hostile_rule_file_texts_are_inert_or_refused(group: str, tmp_path_factory: pytest.TempPathFactory,
                                                      benign_rules: tuple[Path, dict[str, str]], benign_report: str):
    strings = {"markup": MARKUP, "control": CONTROL, "mixed": CONTROL + MARKUP[::-1]}[group]
    folder = _copy_rules(tmp_path_factory.mktemp(f"hostile-{group}") / "asuc")
    used = _poison(folder, strings)
    assert len(used["all"]) > 400  # every title, text, note, source and hazard of the pathway
    try:
        out = _rule_outputs(folder)
    except DefinitionError as exc:  # refused at input: located, one line each
        assert group != "markup", f"markup in clinical text must load: {exc.diagnostics[:3]}"
        for d in exc.diagnostics:
            assert re.fullmatch(r".+:\d+:\d+: .+ \[PW\d{3}\]", str(d)), str(d)
            _printable_lines(str(d))
        return
    _check_rule_outputs(out, benign_rules[1], used)
    empty = tmp_path_factory.mktemp(f"no-scenarios-{group}")
    html_text, _ = build_report(folder, scenario_dir=empty, as_of=AS_OF)
    _check_report(html_text, benign_report, used)
    if group == "markup" and find_chromium() is not None:
        _check_report_pdf(html_text, used, tmp_path_factory.mktemp("hostile-pdf"))
    if group == "mixed":
        report = check_pathway(folder)
        text = report.text(show_explained=True)
        _printable_lines(text)
        for line in text.splitlines():
            assert re.fullmatch(r".+:\d+:\d+: .+ \[PW\d{3}\]( - .*)?|note: .*|.+: \d+ error\(s\), \d+ warning\(s\), "
                                r"\d+ explained", line), line[:200]


def _set_key(folder: Path, file: str, path: tuple[Any, ...], new_key: str) -> None:
    """Rename the mapping key at ``path`` (its last element) to ``new_key``, keeping its value."""
    f = folder / file
    data = yaml.safe_load(f.read_text(encoding="utf-8"))
    node = data
    for key in path[:-1]:
        node = node[key]
    if isinstance(path[-1], str):
        node[new_key] = node.pop(path[-1])
    else:
        node[path[-1]]["id"] = new_key
    f.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1 << 20), encoding="utf-8")


_ID_SLOTS = [
    ("state", "pathway.yaml", ("states", "not_asuc")),
    ("parameter", "pathway.yaml", ("parameters", "tw_pulse_bpm")),
    ("field", "fields.yaml", ("fields", "pulse_bpm")),
    ("source", "sources.yaml", ("sources", "ECCO-2012")),
    ("rule", "steroids.yaml", ("rules", 0)),
    ("hazard", "hazards.yaml", ("hazards", 0)),
]
_HOSTILE_IDS = ["ok_id\n", 'x\n]; evil [<script>"', "a\\ `|` \x1b[2J"]


@pytest.mark.parametrize("slot", _ID_SLOTS, ids=[s[0] for s in _ID_SLOTS])
def test_hostile_ids_are_refused_with_a_located_one_line_diagnostic(slot: tuple[str, str, tuple[Any, ...]], tmp_path: Path):
    _, file, path = slot
    for i, hostile in enumerate(_HOSTILE_IDS):
        folder = _copy_rules(tmp_path / f"ids{i}")
        _set_key(folder, file, path, hostile)
        code, out, err = _cli("validate", str(folder))
        assert code == 2 and out == ""
        lines = err.splitlines()
        assert re.fullmatch(r"\d+ problem\(s\) found", lines[-1]) and int(lines[-1].split()[0]) == len(lines) - 1
        for line in lines[:-1]:  # one line per diagnostic, whatever the id held
            assert re.fullmatch(r".+:\d+:\d+: .+ \[PW\d{3}\]", line), line
            _printable_lines(line)
        located = [line for line in lines[:-1] if line.startswith(str(folder / file) + ":") and " [PW112]" in line]
        assert located, f"no PW112 at the {slot[0]} id in {file}: {lines[:4]}"
