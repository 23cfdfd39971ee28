"""`pathway evidence`."""

from __future__ import annotations

import argparse
from datetime import date

from pathway.audit.evidence import evidence, render_markdown, render_text
from pathway.cli.common import Subparsers, as_of_date, print_document
from pathway.runtime.api import load_pathway


def _run(args: argparse.Namespace) -> int:
    data = evidence(load_pathway(args.pathway, profile=args.profile), as_of=as_of_date(args.as_of) or date.today())
    print_document(data, args.format, render_text, render_markdown)
    return 0


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("evidence", help="list every rule with its sources, strength and verification status")
    p.add_argument("pathway")
    p.add_argument("--profile", default=None)
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                   help="date the rule sign-offs are judged on (default: today); never changes a result")
    p.set_defaults(handler=_run)
