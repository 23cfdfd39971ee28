"""`pathway explain`."""

from __future__ import annotations

import argparse
import json

from pathway.analysis.explain import explain, explain_text
from pathway.cli.common import Subparsers, add_parameter_option, case_pathway, parameters, read_case
from pathway.runtime.api import load_pathway


def _run(args: argparse.Namespace) -> int:
    doc, case = read_case(args.case)
    pw = load_pathway(case_pathway(args.pathway, case), profile=args.profile, parameters=parameters(args.parameter) or None)
    session, _ = pw.run_course(case, doc)
    out = explain(pw, session, rule=args.rule)
    if args.format == "json":
        print(json.dumps(out, sort_keys=True, indent=2, ensure_ascii=False))
    else:
        print(explain_text(out))
    return 0


def add_command(sub: Subparsers) -> None:
    """Add ``pathway explain``."""
    p = sub.add_parser("explain", help="why the patient of a case is where they are, and what would change it")
    p.add_argument("case", help="case file (YAML or JSON)")
    p.add_argument("--rule", default=None, help="explain this rule only")
    p.add_argument("--pathway", default=None, help="pathway name or folder (default: the case's 'pathway', else asuc)")
    p.add_argument("--profile", default=None, help="site profile")
    add_parameter_option(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_run)

