"""`pathway check`."""

from __future__ import annotations

import argparse
import json

from pathway.analysis.check import DEFAULT_BUDGET, check_pathway
from pathway.audit.hazards import hazard_check
from pathway.cli.common import Subparsers, add_parameter_option, parameters


def _run(args: argparse.Namespace) -> int:
    codes = [c for item in args.disable for c in item.split(",")]
    report = check_pathway(args.pathway, profile=args.profile, parameters=parameters(args.parameter), disable=codes,
                           budget=args.budget, extra=[hazard_check])
    if args.format == "json":
        print(json.dumps(report.to_dict(), sort_keys=True, indent=2, ensure_ascii=False))
    else:
        print(report.text(show_explained=args.show_explained))
    return report.exit_code(strict=args.strict)


def add_command(sub: Subparsers) -> None:
    """Add ``pathway check``."""
    p = sub.add_parser("check", help="static checks: graph, overlaps, gaps, shadowed rules, sources, the hazard log "
                                     "(codes PW6xx)")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("--profile", default=None, help="site profile (profiles/<id>.yaml)")
    add_parameter_option(p)
    p.add_argument("--disable", action="append", default=[], metavar="CODE", help="skip a check (repeat, or CODE,CODE)")
    p.add_argument("--strict", action="store_true", help="exit 1 on unexplained warnings too")
    p.add_argument("--show-explained", action="store_true", help="also list findings explained in pathway.yaml")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help=f"search nodes per question (default {DEFAULT_BUDGET})")
    p.set_defaults(handler=_run)

