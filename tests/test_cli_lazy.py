"""One command imports its own module only: the table of commands matches the modules that add them,
and ``pathway validate`` starts without networkx, the renderers, audits, authoring tools or FHIR."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from pathway.cli.main import COMMAND_MODULES, COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def test_the_table_of_commands_names_the_module_that_adds_each_command():
    added: dict[str, str] = {}
    for module in COMMAND_MODULES:
        parser = argparse.ArgumentParser(prog="pathway")
        sub = parser.add_subparsers(dest="command")
        importlib.import_module(module).add_command(sub)
        for name in _commands(parser):
            added[name] = module
    assert added == COMMANDS
    assert _commands(build_parser()) == [c for m in COMMAND_MODULES for c, owner in added.items() if owner == m]


def test_a_parser_for_one_command_knows_that_module_s_commands_only():
    assert _commands(build_parser("validate")) == ["validate", "run", "diagram", "demo"]
    assert sorted(_commands(build_parser("no-such-command"))) == sorted(COMMANDS)


def test_an_unknown_command_still_lists_every_command(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    for name in ("validate", "verify", "report", "table"):
        assert name in err


def test_validate_starts_without_networkx_renderers_audits_authoring_or_fhir():
    code = ("import sys, json\nfrom pathway.cli.main import main\nrc = main(['validate', 'asuc'])\n"
            "print(json.dumps([rc, sorted(sys.modules)]))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    rc, modules = json.loads(out.stdout.splitlines()[-1])
    assert rc == 0 and out.stdout.startswith("ok: asuc")
    loaded = [m for m in modules if m.split(".")[0] in ("graphviz", "fhir", "jinja2", "networkx")
              or m.startswith(("pathway.render", "pathway.audit", "pathway.authoring", "pathway.analysis",
                               "pathway.runtime.fhir", "pathway.loading.fhir", "pathway.runtime.restore",
                               "pathway.runtime.store"))]
    assert loaded == []
