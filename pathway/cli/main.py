"""The ``pathway`` command.

    pathway validate PATHWAY                 check rule files and compile them (exit 2 on errors)
    pathway run CASE [--pathway P] [--format json|text]
    pathway diagram PATHWAY [-o FILE]        write FILE.dot and FILE.svg (default diagrams/<id>)
    pathway demo [-o DIR]                    run the demo case and write the diagrams

Exit codes: 0 ok, 1 findings, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from pathway import __version__
from pathway.runtime.api import Pathway, load_pathway
from pathway.core.errors import DefinitionError, Diagnostic, InputError, PathwayError, display_path
from pathway.loading.loader import shipped_rules_dir
from pathway.render.diagram import build_diagram, build_trace_diagram, write_diagram, write_diagrams
from pathway.core.yamlsafe import Located, YamlProblem, load_yaml_file, load_yaml_text

__all__ = ["main"]

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


def _params(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--parameter takes NAME=VALUE, not {item!r}")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def _path_of(where: str) -> tuple[Any, ...]:
    """'events[2].crp_mg_l' -> ('events', 2, 'crp_mg_l')"""
    out: list[Any] = []
    for part in where.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        if not m:
            out.append(part)
            continue
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)


def _locate(doc: Located, diags: list[Diagnostic]) -> list[Diagnostic]:
    """Point input diagnostics (``events[2].crp_mg_l``) at the line and column in the case file."""
    located = []
    for d in diags:
        path = _path_of(d.file)
        line, col = doc.pos(path)
        located.append(Diagnostic(doc.file, line, col, d.code, f"{d.file}: {d.message}", d.hint))
    return located


def _print_diags(diags: Sequence[Diagnostic]) -> None:
    for d in diags:
        print(d, file=sys.stderr)


def _load_case(path: str) -> Located:
    """A case file (JSON or YAML), or standard input when ``path`` is ``-``."""
    if path == "-":
        return load_yaml_text(sys.stdin.read(), "<stdin>")
    file = Path(path)
    if not file.is_file():
        raise InputError([Diagnostic(display_path(path), 0, 0, "PW400", "case file not found")])
    return load_yaml_file(str(file), display_path(path))


def _course_text(pathway: Pathway, case: dict[str, Any], results: list[dict[str, Any]]) -> str:
    lines = [f"{pathway.definition.spec.title} ({pathway.id} {pathway.version}) - patient {results[-1]['patient_id'] if results else case['patient'].get('id')}"]
    previous_trace = 0
    for result in results:
        lines.append("")
        lines.append(f"day {result['day']:g}: {result['state']} - {result['state_title']}")
        for step in result["trace"][previous_trace:]:
            if "to" in step:
                lines.append(f"  -> {step['from']} => {step['to']}  [{step['rule']}]")
        previous_trace = len(result["trace"])
        for rec in result["recommendations"]:
            med = rec.get("medication")
            dose = f" ({med['name']} {med['dose_mg']:g} mg x{med['times_per_day']:g}/day {med['route']})" if med and med.get("dose_mg") is not None and med.get("times_per_day") else ""
            status = "" if rec["evidence"]["status"] == "verified" else " (unverified)"
            lines.append(f"  * {rec['text']}{dose} [{rec['rule']}; {', '.join(rec['evidence']['sources'])}{status}]")
        for opt in result["options"]:
            lines.append(f"  option {opt['option']}: {'available' if opt['available'] else 'NOT available'}"
                         + (f" - against: {'; '.join(opt['against'])}" if opt['against'] and not opt['available'] else ""))
        for alert in result["alerts"]:
            lines.append(f"  ! {alert['level']}: {alert['text']} [{alert['rule']}]")
        for need in result["data_required"]:
            lines.append(f"  ? data required: {need['field']} ({need['title']}) - {need['text']}")
    if results:
        lines.append("")
        lines.append("path: " + " -> ".join(results[-1]["path"]))
    return "\n".join(lines)


def _run_case(pathway_name: str | None, case_path: str, fmt: str, parameters: dict[str, Any]) -> int:
    try:
        doc = _load_case(case_path)
    except YamlProblem as exc:
        _print_diags([exc.diagnostic])
        return EXIT_BAD_INPUT
    case = doc.data
    if not isinstance(case, dict) or not isinstance(case.get("patient"), dict) or not isinstance(case.get("events"), list):
        _print_diags([doc.diag((), "PW400", "a case is a mapping with 'patient' (mapping) and 'events' (list)")])
        return EXIT_BAD_INPUT
    name = pathway_name or case.get("pathway") or "asuc"
    pathway = load_pathway(name, parameters=parameters)
    results: list[dict[str, Any]] = []
    try:
        session = pathway.start(case["patient"])
        for event in case["events"]:
            results.append(session.observe(event))
    except InputError as exc:
        _print_diags(_locate(doc, exc.diagnostics))
        return EXIT_BAD_INPUT
    final = session.result()
    if fmt == "json":
        print(json.dumps(final, sort_keys=True, ensure_ascii=False, indent=2))
    else:
        print(_course_text(pathway, case, results))
    return EXIT_OK


def _validate(name: str, parameters: dict[str, Any]) -> int:
    pathway = load_pathway(name, parameters=parameters)
    d = pathway.definition
    engine_rules = sum(len(r) for r in pathway.compiled.rulesets.values())
    largest = max((len(r) for r in pathway.compiled.rulesets.values()), default=0)
    unverified = sum(1 for r in d.rules if r.evidence.status == "unverified")
    print(f"ok: {d.id} {d.version}: {d.graph.number_of_nodes()} states, {d.graph.number_of_edges()} transitions, "
          f"{len(d.rules)} rules ({unverified} unverified), {len(d.spec.parameters)} parameters, "
          f"{engine_rules} engine rules in {len(pathway.compiled.rulesets)} rulesets (largest {largest})")
    return EXIT_OK


def _diagram(name: str, out: str | None, parameters: dict[str, Any], fmt: str = "graphviz") -> int:
    pathway = load_pathway(name, parameters=parameters)
    target = Path(out) if out else Path("diagrams") / pathway.id
    if fmt == "mermaid":
        print(f"wrote {display_path(write_diagram(build_diagram(pathway.graph), target, 'mermaid'))}")
        return EXIT_OK
    for path in write_diagrams(pathway.graph, target):
        print(f"wrote {display_path(path)}")
    return EXIT_OK


def _demo(out_dir: str) -> int:
    """The demo patient through the ASUC pathway: its course, then the diagrams (the pathway and
    the patient's path over it)."""
    case_path = shipped_rules_dir() / "asuc" / "cases" / "demo.yaml"
    print(f"== demo case: {display_path(case_path)}\n")
    code = _run_case("asuc", str(case_path), "text", {})
    if code != EXIT_OK:
        return code
    print()
    code = _diagram("asuc", str(Path(out_dir) / "asuc"), {})
    pathway = load_pathway("asuc")
    result = pathway.run_case(load_yaml_file(str(case_path), display_path(case_path)).data)
    trace = build_trace_diagram(pathway.graph, result)
    for fmt in ("dot", "svg"):
        print(f"wrote {display_path(write_diagram(trace, Path(out_dir) / 'asuc-demo-trace', fmt))}")
    return code


#: Modules that add further subcommands: each has ``add_command(subparsers)`` that creates its
#: parser and sets ``handler`` (a function ``(args) -> exit code``).
COMMAND_MODULES: list[str] = [
    "pathway.cli.testing",
    "pathway.audit.evidence",
    "pathway.authoring.schema",
    "pathway.authoring.fieldref",
    "pathway.analysis.check",
    "pathway.analysis.explain",
    "pathway.cli.trace",
    "pathway.analysis.diff",
    "pathway.audit.report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pathway", description="Clinical pathways as rule files, run on durable_rules.")
    parser.add_argument("--version", action="version", version=f"asuc-pathway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check and compile a pathway's rule files")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")
    p.set_defaults(handler=lambda a: _validate(a.pathway, _params(a.parameter)))

    p = sub.add_parser("run", help="run a case file (JSON or YAML) through a pathway")
    p.add_argument("case", help="case file, or - to read the case from standard input")
    p.add_argument("--pathway", default=None, help="pathway name or folder (default: the case's 'pathway', else asuc)")
    p.add_argument("--format", choices=["json", "text"], default="json")
    p.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE")
    p.set_defaults(handler=lambda a: _run_case(a.pathway, a.case, a.format, _params(a.parameter)))

    p = sub.add_parser("diagram", help="write the pathway diagram as DOT and SVG (or Mermaid)")
    p.add_argument("pathway")
    p.add_argument("-o", "--output", default=None, help="output file (without suffix, or .dot/.svg/.mmd); default diagrams/<id>")
    p.add_argument("--format", choices=["graphviz", "mermaid"], default="graphviz",
                   help="graphviz: FILE.dot and FILE.svg (default); mermaid: FILE.mmd")
    p.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE")
    p.set_defaults(handler=lambda a: _diagram(a.pathway, a.output, _params(a.parameter), a.format))

    p = sub.add_parser("demo", help="run the demo patient through the ASUC pathway and write the diagrams")
    p.add_argument("-o", "--output-dir", default="diagrams")
    p.set_defaults(handler=lambda a: _demo(a.output_dir))

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code not in (0, None) else EXIT_OK
    try:
        return int(args.handler(args))
    except DefinitionError as exc:
        _print_diags(exc.diagnostics)
        print(f"{len(exc.diagnostics)} problem(s) found", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InputError as exc:
        _print_diags(exc.diagnostics)
        return EXIT_BAD_INPUT
    except PathwayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
