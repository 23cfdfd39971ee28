"""``pathway codes [-o FILE]``: the table of every diagnostic and check code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathway.cli.common import Subparsers, write_output
from pathway.core.codes import codes_document

__all__ = ["add_command"]


def _run(args: argparse.Namespace) -> int:
    text = codes_document()
    if not args.output:
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    write_output(target, text)
    return 0


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("codes", help="list every diagnostic and check code (Markdown)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE (e.g. docs/codes.md) instead of printing")
    p.set_defaults(handler=_run)
