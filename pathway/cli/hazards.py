"""``pathway hazards PATHWAY [--format text|json|markdown]``: the hazard log and its verification.

Prints every hazard of the pathway's hazards file with its risk before and after mitigation, the
controls that mitigate it and whether each verifying scenario passes (the scenarios are run). Exit
0 when the log has no error finding, 1 when a verifying scenario fails or is unknown or a hazard
claims a control it does not name, 2 on bad input (a pathway without a hazards file included).
"""

from __future__ import annotations

import argparse
import sys

from pathway.audit.hazards import hazard_log, render_markdown, render_text
from pathway.cli.common import EXIT_BAD_INPUT, Subparsers, print_document
from pathway.runtime.api import load_pathway

__all__ = ["add_command"]


def _run(args: argparse.Namespace) -> int:
    pw = load_pathway(args.pathway)
    if not pw.definition.spec.hazards_file:
        print(f"error: pathway '{pw.id}' has no hazard log (name one as 'hazards_file' in pathway.yaml)", file=sys.stderr)
        return EXIT_BAD_INPUT
    log = hazard_log(pw)
    data = log.to_dict()
    print_document(data, args.format, render_text, render_markdown)
    return log.exit_code()


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("hazards", help="the hazard log: risks, mitigations and whether each verifying scenario passes")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.set_defaults(handler=_run)
