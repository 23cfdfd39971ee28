"""``pathway codes [-o FILE]``: the table of every diagnostic and check code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathway.cli.common import Subparsers
from pathway.core.codes import codes_document
from pathway.core.errors import display_path

__all__ = ["add_command"]


def _run(args: argparse.Namespace) -> int:
    text = codes_document()
    if not args.output:
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {display_path(target)}")
    return 0


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("codes", help="list every diagnostic and check code (Markdown)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE (e.g. docs/codes.md) instead of printing")
    p.set_defaults(handler=_run)
