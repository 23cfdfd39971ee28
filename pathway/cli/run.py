"""The core subcommands: ``validate``, ``run``, ``diagram`` and ``demo``."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pathway.cli.common import (
    EXIT_OK,
    Subparsers,
    UsageError,
    add_parameter_option,
    case_pathway,
    parameters,
    paused_gc,
)
from pathway.core.errors import DefinitionError, Diagnostic, EngineLimitError, InputError, display_path
from pathway.core.text import inert, one_line
from pathway.core.yamlsafe import Located, YamlProblem, load_yaml_file, load_yaml_text
from pathway.definition.graph import transition_pairs
from pathway.loading import stored
from pathway.loading.cases import read_case_document
from pathway.loading.loader import DEFAULT_PATHWAY, load_every_profile, shipped_rules_dir
from pathway.runtime.api import Pathway, load_pathway
from pathway.runtime.compile import compile_kept
from pathway.runtime.engine import check_registration

__all__ = ["add_command"]


def _course_text(pathway: Pathway, case: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The course as text: a block per event (every text one line, so no value can fake a line)."""
    case, results = inert(case), inert(results)
    lines = [f"{one_line(pathway.definition.spec.title)} ({pathway.id} {pathway.version}) - patient "
             f"{results[-1]['patient_id'] if results else case['patient'].get('id')}"]
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
            dose = (f" ({med['name']} {med['dose_mg']:g} mg x{med['times_per_day']:g}/day {med['route']})"
                    if med and med.get("dose_mg") is not None and med.get("times_per_day") else "")
            status = "" if rec["evidence"]["status"] == "verified" else " (unverified)"
            lines.append(f"  * {rec['text']}{dose} [{rec['rule']}; {', '.join(rec['evidence']['sources'])}{status}]")
        for opt in result["options"]:
            line = f"  option {opt['option']}: {opt['status']}"
            if opt.get("pending"):
                line += f" (waiting for {', '.join(opt['pending'])})"
            if opt["against"] and opt["status"] != "available":
                line += f" - against: {'; '.join(opt['against'])}"
            lines.append(line)
        for alert in result["alerts"]:
            lines.append(f"  ! {alert['level']}: {alert['text']} [{alert['rule']}]")
        for need in result["data_required"]:
            label = "recheck" if need.get("recheck") else "data required"
            lines.append(f"  ? {label}: {need['field']} ({need['title']}) - {need['text']}")
    if results:
        lines.append("")
        lines.append("path: " + " -> ".join(results[-1]["path"]))
    return "\n".join(lines)


def _read_document(path: str) -> Located:
    """The file (JSON or YAML) with its positions, or standard input when ``path`` is ``-``."""
    try:
        if path == "-":
            return load_yaml_text(sys.stdin.read(), "<stdin>")
        if not Path(path).is_file():
            raise InputError([Diagnostic(display_path(path), 0, 0, "PW400", "case file not found")])
        return load_yaml_file(path, display_path(path))
    except YamlProblem as exc:
        raise InputError([exc.diagnostic]) from None


def _run_case(pathway_name: str | None, case_path: str, fmt: str, params: dict[str, Any], fhir: bool = False) -> int:
    doc = _read_document(case_path)
    if fhir or (isinstance(doc.data, dict) and "resourceType" in doc.data):
        return _run_fhir(pathway_name, doc, fmt, params)
    doc, case = read_case_document(doc)
    pathway = load_pathway(case_pathway(pathway_name, case), parameters=params)
    session, results = pathway.run_course(case, doc)
    if fmt == "json":
        print(json.dumps(session.result(), sort_keys=True, ensure_ascii=False, indent=2))
    else:
        print(_course_text(pathway, case, results))
    return EXIT_OK


def _run_fhir(pathway_name: str | None, doc: Located, fmt: str, params: dict[str, Any]) -> int:
    """A FHIR R4 Bundle (or resource) run like a case file: the same result on standard output, and
    each resource the pathway did not read named on standard error with the reason."""
    pathway = load_pathway(pathway_name or DEFAULT_PATHWAY, parameters=params)
    session, result = pathway.start_fhir(doc.data, doc=doc)
    if fmt == "json":
        print(json.dumps(session.result(), sort_keys=True, ensure_ascii=False, indent=2))
    else:
        from pathway.runtime.session import observed_form

        case = {"patient": session.dump()["patient"], "events": [observed_form(e) for e in session.recorded_events()]}
        _session, results = pathway.run_course(case)
        print(_course_text(pathway, case, results))
    for item in result["fhir"]["ignored"]:
        print(f"note: {one_line(item['where'])} ({one_line(str(item['resource']))}): {one_line(item['reason'])}",
              file=sys.stderr)
    return EXIT_OK


def _validate(name: str, parameters: dict[str, Any]) -> int:
    """Load and compile the pathway under its default profile and under every profile it ships
    (``profiles/*.yaml``); one DefinitionError lists the problems of all of them."""
    # The command builds the pathway three times and ends: the cyclic collector's passes over all it
    # builds (a full one among them) find next to nothing, so it is paused until the command is done.
    # (Not in the library: a process that reloads pathways needs those passes to free the old ones.)
    with paused_gc():
        return _validated(name, parameters)


def _validated(name: str, parameters: dict[str, Any]) -> int:
    definitions = load_every_profile(name, parameters)
    diags: list[Diagnostic] = []
    pathway: Pathway | None = None
    default = definitions.get(None)
    for profile, definition in definitions.items():
        try:
            if profile is None:
                pathway = Pathway(definition)
            elif definition is not default:  # the default profile by its name: compiled above
                # states whose rules this profile leaves as they are take the default's rulesets (registered with
                # it); durable_rules is asked to take the others, once (the cache of loaded pathways records it)
                like = pathway.compiled if pathway is not None else None
                compiled = compile_kept(definition, like=like, keep=False)
                if not stored.registered_before(definition):
                    try:
                        check_registration(compiled, [name for name, ruleset in compiled.rulesets.items()
                                                      if like is None or ruleset is not like.rulesets.get(name)])
                    except EngineLimitError as exc:  # refused under this profile only: said so
                        raise EngineLimitError([replace(d, message=f"under profile '{profile}': {d.message}")
                                                for d in exc.diagnostics]) from None
                    stored.keep_compiled(definition, compiled, registered=True)
        except DefinitionError as exc:  # an engine limit (PW30x) under one profile
            diags.extend(d for d in exc.diagnostics if d not in diags)
    if diags or pathway is None:
        raise DefinitionError(diags)
    d = pathway.definition
    engine_rules = sum(len(r) for r in pathway.compiled.rulesets.values())
    largest = max((len(r) for r in pathway.compiled.rulesets.values()), default=0)
    unverified = sum(1 for r in d.rules if r.evidence.status == "unverified")
    # counted without building the networkx graph (the same nodes and edges)
    print(f"ok: {d.id} {d.version}: {len(d.spec.states)} states, {len(transition_pairs(d.spec))} transitions, "
          f"{len(d.rules)} rules ({unverified} unverified), {len(d.spec.parameters)} parameters, "
          f"{engine_rules} engine rules in {len(pathway.compiled.rulesets)} rulesets (largest {largest}); "
          f"profiles: {', '.join(sorted(p for p in definitions if p is not None)) or 'none'}")
    return EXIT_OK


def _diagram(name: str, out: str | None, parameters: dict[str, Any], fmt: str = "graphviz", *,
             profile: str | None = None, clusters: bool = False, state: str | None = None) -> int:
    """The pathway diagram (readable labels, legend; ``clusters``: a box per phase of care), or with
    ``state`` the decision-point diagram of that state."""
    if state is not None and clusters:
        raise UsageError("--clusters draws the phases of the whole pathway; it does not apply with --state")
    from pathway.render.diagram import build_diagram, write_diagram, write_dot_svg  # Graphviz: on first use
    from pathway.render.state_diagram import build_state_diagram
    pathway = load_pathway(name, profile=profile, parameters=parameters or None)
    if state is not None:
        diagram = build_state_diagram(pathway.definition, state)
        default = Path("diagrams") / f"{pathway.id}-{state}"
    else:
        diagram = build_diagram(pathway.graph, pathway.definition, clusters=clusters)
        default = Path("diagrams") / pathway.id
    target = Path(out) if out else default
    if fmt == "mermaid":
        print(f"wrote {display_path(write_diagram(diagram, target, 'mermaid'))}")
        return EXIT_OK
    for path in write_dot_svg(diagram, target):
        print(f"wrote {display_path(path)}")
    return EXIT_OK


def _demo(out_dir: str) -> int:
    """The demo patient through the ASUC pathway: its course, then the diagrams (the pathway and
    the patient's path over it)."""
    case_path = shipped_rules_dir() / DEFAULT_PATHWAY / "cases" / "demo.yaml"
    print(f"== demo case: {display_path(case_path)}\n")
    code = _run_case(DEFAULT_PATHWAY, str(case_path), "text", {})
    if code != EXIT_OK:
        return code
    print()
    code = _diagram(DEFAULT_PATHWAY, str(Path(out_dir) / DEFAULT_PATHWAY), {})
    from pathway.render.diagram import build_trace_diagram, write_diagram

    pathway = load_pathway(DEFAULT_PATHWAY)
    result = pathway.run_case(load_yaml_file(str(case_path), display_path(case_path)).data)
    trace = build_trace_diagram(pathway.graph, result)
    for fmt in ("dot", "svg"):
        print(f"wrote {display_path(write_diagram(trace, Path(out_dir) / f'{DEFAULT_PATHWAY}-demo-trace', fmt))}")
    return code


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("validate", help="check and compile a pathway's rule files under every profile it ships")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    add_parameter_option(p)
    p.set_defaults(handler=lambda a: _validate(a.pathway, parameters(a.parameter)))

    p = sub.add_parser("run", help="run a case file (JSON or YAML) through a pathway")
    p.add_argument("case", help="case file, or - to read the case from standard input")
    p.add_argument("--pathway", default=None, help="pathway name or folder (default: the case's 'pathway', else asuc)")
    p.add_argument("--format", choices=["json", "text"], default="json")
    p.add_argument("--fhir", action="store_true",
                   help="read the file as FHIR R4 (a Bundle or one resource; found by its resourceType anyway)")
    add_parameter_option(p)
    p.set_defaults(handler=lambda a: _run_case(a.pathway, a.case, a.format, parameters(a.parameter), a.fhir))

    p = sub.add_parser("diagram", help="write the pathway diagram (or one decision point's) as DOT and SVG, or Mermaid")
    p.add_argument("pathway")
    p.add_argument("-o", "--output", default=None,
                   help="output file (without suffix, or .dot/.svg/.mmd); default diagrams/<id> (diagrams/<id>-<state>)")
    p.add_argument("--format", choices=["graphviz", "mermaid"], default="graphviz",
                   help="graphviz: FILE.dot and FILE.svg (default); mermaid: FILE.mmd")
    p.add_argument("--state", default=None, metavar="STATE",
                   help="one decision point: the state, its moves in and out, its rules and the options it offers")
    p.add_argument("--clusters", action="store_true", help="draw each phase of care (phase: in pathway.yaml) as a box")
    p.add_argument("--profile", default=None, help="site profile (parameter values change the criteria)")
    add_parameter_option(p)
    p.set_defaults(handler=lambda a: _diagram(a.pathway, a.output, parameters(a.parameter), a.format, profile=a.profile,
                                              clusters=a.clusters, state=a.state))

    p = sub.add_parser("demo", help="run the demo patient through the ASUC pathway and write the diagrams")
    p.add_argument("-o", "--output-dir", default="diagrams")
    p.set_defaults(handler=lambda a: _demo(a.output_dir))
