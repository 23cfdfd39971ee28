"""The ``pathway`` command: one subcommand per module of this package.

    pathway validate PATHWAY                 check rule files and compile them (exit 2 on errors)
    pathway run CASE [--pathway P] [--format json|text]
    pathway diagram PATHWAY [-o FILE]        write FILE.dot and FILE.svg (default diagrams/<id>)
    pathway demo [-o DIR]                    run the demo case and write the diagrams
    pathway test | check | explain | trace | diff | report | evidence | hazards | verify | schema | fields | table ...

Exit codes: 0 ok, 1 findings, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pathway.cli.common import EXIT_BAD_INPUT, EXIT_OK, UsageError, print_diags
from pathway.core.errors import DefinitionError, InputError, PathwayError
from pathway.core.text import one_line
from pathway.core.version import __version__

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: Modules that add subcommands: each has ``add_command(subparsers)`` that creates its parser and
#: sets ``handler`` (a function ``(args) -> exit code``). Imported when the parser is built.
COMMAND_MODULES: list[str] = [
    "pathway.cli.run",
    "pathway.cli.testing",
    "pathway.cli.evidence",
    "pathway.cli.hazards",
    "pathway.cli.schema",
    "pathway.cli.fields",
    "pathway.cli.check",
    "pathway.cli.explain",
    "pathway.cli.trace",
    "pathway.cli.diff",
    "pathway.cli.report",
    "pathway.cli.codes",
    "pathway.cli.verify",
    "pathway.cli.table",
    "pathway.cli.serve",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pathway", description="Clinical pathways as rule files, run on durable_rules.")
    parser.add_argument("--version", action="version", version=f"asuc-pathway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_command(sub)
    return parser


def _escape_unencodable() -> None:
    """Text the terminal cannot encode (a lone surrogate read from a JSON case file) is written as a
    backslash escape (``\\ud800``, still valid inside JSON), never a traceback halfway through."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _escape_unencodable()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code not in (0, None) else EXIT_OK
    try:
        return int(args.handler(args))
    except DefinitionError as exc:
        print_diags(exc.diagnostics)
        print(f"{len(exc.diagnostics)} problem(s) found", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InputError as exc:
        print_diags(exc.diagnostics)
        return EXIT_BAD_INPUT
    except PathwayError as exc:
        print(one_line(f"error: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except UsageError as exc:
        print(one_line(f"error: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
