"""`pathway fields`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathway.authoring.fieldref import default_output, field_reference
from pathway.cli.common import Subparsers, write_output
from pathway.core.errors import display_path
from pathway.loading.loader import load_definition


def _run(args: argparse.Namespace) -> int:
    definition = load_definition(args.pathway)
    text = field_reference(definition)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args.output) if args.output else default_output(definition.id)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current != text:
            print(f"{display_path(target)}: stale or missing; run 'pathway fields {args.pathway} -o {display_path(target)}'",
                  file=sys.stderr)
            return 1
        print(f"ok: {display_path(target)} is current")
        return 0
    write_output(target, text)
    return 0


def add_command(sub: Subparsers) -> None:
    """``pathway fields PATHWAY [-o FILE] [--check]``."""
    p = sub.add_parser("fields", help="write the field reference (Markdown) of a pathway")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="output file (default docs/fields-<id>.md; '-' prints to standard output)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if FILE is not current")
    p.set_defaults(handler=_run)
