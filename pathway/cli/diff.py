"""`pathway diff`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pathway.analysis.diff import diff_pathways
from pathway.cli.common import Subparsers
from pathway.core.errors import display_path
from pathway.render.diagram import DIAGRAM_FORMATS, diagram_format, render_diagram, write_diagram
from pathway.render.diff import build_diff_diagram


def _run(args: argparse.Namespace) -> int:
    diff, old, new = diff_pathways(args.old, args.new, old_profile=args.old_profile, new_profile=args.new_profile)
    if args.json:
        print(json.dumps(diff.to_dict(), sort_keys=True, indent=2, ensure_ascii=False))
    else:
        print(diff.text())
    if args.output or args.format:
        diagram = build_diff_diagram(diff, old, new)
        if args.output:
            # with --json, standard output stays one JSON document
            print(f"wrote {display_path(write_diagram(diagram, Path(args.output), args.format))}",
                  file=sys.stderr if args.json else sys.stdout)
        else:
            print(render_diagram(diagram, diagram_format(None, args.format)), end="")
    return 0 if diff.same else 1


def add_command(sub: Subparsers) -> None:
    """Add ``pathway diff``."""
    p = sub.add_parser("diff", help="compare two pathway versions (states, transitions, rules, parameters)")
    p.add_argument("old", help="old pathway name or folder")
    p.add_argument("new", help="new pathway name or folder")
    p.add_argument("--old-profile", default=None, help="site profile of the old version")
    p.add_argument("--new-profile", default=None, help="site profile of the new version")
    p.add_argument("-o", "--output", default=None, help="write the diff diagram (.svg, .dot or .mmd)")
    p.add_argument("--format", choices=list(DIAGRAM_FORMATS), default=None, help="diagram format (default: by suffix)")
    p.add_argument("--json", action="store_true", help="print the changes as JSON")
    p.set_defaults(handler=_run)
