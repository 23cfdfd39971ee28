"""`pathway table`: decision tables per state or decision point (DMN style)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathway.analysis.check import DEFAULT_BUDGET, check_pathway
from pathway.analysis.tables import decision_tables, resolve_ids
from pathway.cli.common import EXIT_FINDINGS, EXIT_OK, Subparsers, add_parameter_option, parameters, write_output
from pathway.loading.loader import load_definition, resolve_pathway_dir
from pathway.render.tables import FORMATS
from pathway.runtime.compile import compile_kept


def _run(args: argparse.Namespace) -> int:
    root = resolve_pathway_dir(args.pathway)
    params = parameters(args.parameter)
    compiled = compile_kept(load_definition(root, params or None, args.profile))
    ids = resolve_ids(compiled.definition, args.state or None)  # an unknown state is refused before the checks run
    checks = None
    if not args.no_checks:
        checks = check_pathway(root, profile=args.profile, parameters=params or None, budget=args.budget)
    tables = decision_tables(compiled, ids, checks=checks)
    text = FORMATS[args.format](tables)
    if args.output:
        write_output(Path(args.output), text)
    else:
        sys.stdout.write(text)
    errors = [m for t in tables for m in t.marks if m.level == "error"]
    return EXIT_FINDINGS if errors else EXIT_OK


def add_command(sub: Subparsers) -> None:
    """Add ``pathway table``."""
    p = sub.add_parser("table", help="decision tables (DMN style): per state, the rules as rows, the inputs they test "
                                     "as columns, the hit policy, and the findings of pathway check on the rows")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("--state", action="append", default=[], metavar="STATE",
                   help="a state or decision point (repeat for several; default: every state that is not terminal "
                        "and has rules)")
    p.add_argument("--profile", default=None, help="site profile (thresholds are shown as its parameter values)")
    add_parameter_option(p)
    p.add_argument("--format", choices=list(FORMATS), default="text")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--no-checks", action="store_true", help="do not run pathway check (no rows marked; faster)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="search bound of the checks")
    p.set_defaults(handler=_run)
