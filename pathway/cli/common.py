"""What every subcommand shares: exit codes, ``--parameter`` parsing, diagnostics, case files.

Importing it imports no loader, model or engine (``pathway.cli.main`` imports it before it knows the
command): what a command needs, its own module imports.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pathway.core.errors import Diagnostic, display_path

if TYPE_CHECKING:
    from pathway.core.yamlsafe import Located

__all__ = ["EXIT_OK", "EXIT_FINDINGS", "EXIT_BAD_INPUT", "UsageError", "Subparsers", "parameters", "print_diags",
           "read_case", "case_pathway", "add_parameter_option", "write_output", "print_document", "as_of_date",
           "paused_gc"]

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2

# the type of ``add_subparsers()``'s result; generic only in the type stubs (not subscriptable at run time)
if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction


class UsageError(Exception):
    """The command line itself is wrong (exit 2)."""


def parameters(values: list[str]) -> dict[str, Any]:
    """``--parameter NAME=VALUE`` options as a dict; VALUE is read as JSON where it parses, else as text."""
    out: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"--parameter takes NAME=VALUE, not {item!r}")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def as_of_date(text: str | None) -> date | None:
    """``--as-of YYYY-MM-DD`` as a date (None when not given)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of takes a date as YYYY-MM-DD, not {text!r}") from None


def add_parameter_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")


def write_output(target: Path, text: str) -> None:
    """Write a generated text file (parents created, LF line ends) and say so."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {display_path(target)}")


def print_document(data: Any, fmt: str, text: Callable[[Any], str], markdown: Callable[[Any], str]) -> None:
    """Print a report as JSON (sorted keys), Markdown or plain text."""
    if fmt == "json":
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    elif fmt == "markdown":
        print(markdown(data), end="")
    else:
        print(text(data))


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused for the block (a command that builds much and ends); a
    collector already off stays off, and one this turned off is on again after the block."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def print_diags(diags: Sequence[Diagnostic]) -> None:
    for d in diags:
        print(d, file=sys.stderr)


def read_case(path: str) -> tuple[Located, dict[str, Any]]:
    """A case file (JSON or YAML) with positions, or standard input when ``path`` is ``-``."""
    from pathway.loading.cases import load_case_file, load_case_text  # the commands that read cases import it

    if path == "-":
        return load_case_text(sys.stdin.read(), "<stdin>")
    return load_case_file(path)


def case_pathway(option: str | None, case: dict[str, Any]) -> str:
    """The pathway a case runs on: the command's option, else the case's own ``pathway``, else the default."""
    from pathway.loading.loader import DEFAULT_PATHWAY

    return option or case.get("pathway") or DEFAULT_PATHWAY
