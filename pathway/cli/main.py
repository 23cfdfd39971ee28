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
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from pathway.cli.common import EXIT_BAD_INPUT, EXIT_OK, UsageError, print_diags
from pathway.core.errors import DefinitionError, InputError, PathwayError
from pathway.core.text import one_line
from pathway.core.version import __version__

__all__ = ["main", "build_parser", "COMMAND_MODULES", "COMMANDS"]

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


#: Each command and the module that adds it (tests check it against the parser built from every
#: module): running one command imports that module only, not the renderers, audits and authoring
#: tools of all the others.
COMMANDS: dict[str, str] = {
    "validate": "pathway.cli.run",
    "run": "pathway.cli.run",
    "diagram": "pathway.cli.run",
    "demo": "pathway.cli.run",
    "test": "pathway.cli.testing",
    "evidence": "pathway.cli.evidence",
    "hazards": "pathway.cli.hazards",
    "schema": "pathway.cli.schema",
    "fields": "pathway.cli.fields",
    "check": "pathway.cli.check",
    "explain": "pathway.cli.explain",
    "trace": "pathway.cli.trace",
    "diff": "pathway.cli.diff",
    "report": "pathway.cli.report",
    "codes": "pathway.cli.codes",
    "verify": "pathway.cli.verify",
    "table": "pathway.cli.table",
    "serve": "pathway.cli.serve",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``command`` (one of :data:`COMMANDS`) a parser that
    knows the commands of that command's module only."""
    parser = argparse.ArgumentParser(prog="pathway", description="Clinical pathways as rule files, run on durable_rules.")
    parser.add_argument("--version", action="version", version=f"asuc-pathway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for module in modules:
        importlib.import_module(module).add_command(sub)
    return parser


def _escape_unencodable() -> None:
    """Text the terminal cannot encode (a lone surrogate read from a JSON case file) is written as a
    backslash escape (``\\ud800``, still valid inside JSON), never a traceback halfway through."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _build_frozen(command: str | None) -> argparse.ArgumentParser:
    """:func:`build_parser` for the ``pathway`` command itself. Importing the command's module (models,
    engine) builds many objects that live as long as the process, and next to no garbage: the cyclic
    collector is paused meanwhile and what was built is frozen (``gc.freeze``: never examined again),
    where the first collection after the imports would examine every object (~20 ms for validate).
    Not when :func:`main` is called with arguments (tests, embedding): a frozen object is never freed."""
    was = gc.isenabled()
    gc.disable()
    try:
        return build_parser(command)
    finally:
        gc.freeze()
        if was:
            gc.enable()


#: The exit status of a command whose reader closed the pipe (``pathway hazards asuc | head -1``): 128 + SIGPIPE,
#: as a shell reports a command the signal ended.
EXIT_PIPE_CLOSED = 141


def _reader_gone() -> int:
    """The output's reader closed the pipe: stop quietly. Standard output is pointed at the null device so that
    the interpreter's own flush at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a replaced sys.stdout): nothing left to flush there
        pass
    return EXIT_PIPE_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    _escape_unencodable()
    words = list(sys.argv[1:] if argv is None else argv)
    command = words[0] if words else None
    parser = _build_frozen(command) if argv is None else build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code not in (0, None) else EXIT_OK
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a reader gone (``| head``) shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        return _reader_gone()
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
