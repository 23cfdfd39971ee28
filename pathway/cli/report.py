"""`pathway report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pathway.analysis.check import DEFAULT_BUDGET
from pathway.audit.report import write_report
from pathway.cli.common import Subparsers, as_of_date
from pathway.core.errors import display_path


def _run(args: argparse.Namespace) -> int:
    path, problems = write_report(args.pathway, Path(args.output), profile=args.profile,
                                  scenario_dir=Path(args.scenarios) if args.scenarios else None, budget=args.budget,
                                  as_of=as_of_date(args.as_of),
                                  mutations=Path(args.mutations) if args.mutations else None)
    print(f"wrote {display_path(path)}" + (f" ({problems} problem(s) shown)" if problems else ""))
    return 1 if problems else 0


def add_command(sub: Subparsers) -> None:
    """Add ``pathway report``."""
    p = sub.add_parser("report", help="write a self-contained HTML audit report")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--profile", default=None, help="site profile")
    p.add_argument("--scenarios", default=None, help="scenario folder (default: <pathway>/scenarios)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="search bound of the checks")
    p.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                   help="date the rule sign-offs are judged on (default: today)")
    p.add_argument("--mutations", default=None, metavar="FILE",
                   help="include a threshold mutation report written by 'pathway test PATHWAY --mutate --json FILE'")
    p.set_defaults(handler=_run)
