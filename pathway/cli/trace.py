"""``pathway trace CASE [-o FILE.svg|.dot|.mmd] [--format svg|dot|mermaid]``: one patient's course on the diagram.

The case runs through its pathway; the diagram is the pathway's with the course overlaid
(:func:`pathway.render.build_trace_diagram`): visited states and taken transitions highlighted
and numbered in order with the rule id and the day, the current state marked, the rest faded.
Without ``-o`` the diagram is printed (DOT by default).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathway.cli.common import Subparsers, add_parameter_option, case_pathway, parameters, read_case
from pathway.core.errors import display_path
from pathway.render.diagram import DIAGRAM_FORMATS, build_trace_diagram, diagram_format, render_diagram, write_diagram
from pathway.runtime.api import load_pathway

__all__ = ["add_command"]


def _run(args: argparse.Namespace) -> int:
    doc, case = read_case(args.case)
    pw = load_pathway(case_pathway(args.pathway, case), profile=args.profile, parameters=parameters(args.parameter) or None)
    session, _ = pw.run_course(case, doc)
    diagram = build_trace_diagram(pw.graph, session.result())
    if args.output:
        path = write_diagram(diagram, Path(args.output), args.format)
        print(f"wrote {display_path(path)}")
    else:
        sys.stdout.write(render_diagram(diagram, diagram_format(None, args.format or "dot")))
    return 0


def add_command(sub: Subparsers) -> None:
    """Add ``pathway trace``."""
    p = sub.add_parser("trace", help="draw a case's course over the pathway diagram")
    p.add_argument("case", help="case file (YAML or JSON)")
    p.add_argument("-o", "--output", default=None, help="output file (.svg, .dot or .mmd); default: print")
    p.add_argument("--format", choices=list(DIAGRAM_FORMATS), default=None,
                   help="svg, dot or mermaid (default: from the file suffix; dot when printing)")
    p.add_argument("--pathway", default=None, help="pathway name or folder (default: the case's 'pathway', else asuc)")
    p.add_argument("--profile", default=None, help="site profile")
    add_parameter_option(p)
    p.set_defaults(handler=_run)
