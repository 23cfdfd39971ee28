"""`pathway evidence`."""

from __future__ import annotations

import argparse
import json
from datetime import date

from pathway.audit.evidence import evidence, render_markdown, render_text
from pathway.cli.common import Subparsers, as_of_date
from pathway.runtime.api import load_pathway


def _run(args: argparse.Namespace) -> int:
    data = evidence(load_pathway(args.pathway, profile=args.profile), as_of=as_of_date(args.as_of) or date.today())
    if args.format == "json":
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    elif args.format == "markdown":
        print(render_markdown(data), end="")
    else:
        print(render_text(data))
    return 0


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("evidence", help="list every rule with its sources, strength and verification status")
    p.add_argument("pathway")
    p.add_argument("--profile", default=None)
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                   help="date the rule sign-offs are judged on (default: today); never changes a result")
    p.set_defaults(handler=_run)
