"""``pathway test PATHWAY [FILES...] [--coverage] [--json FILE] [--mutate [--jobs N] [--only KIND]]``.

Runs scenario files: one line per scenario and, for each failure, an expected-vs-actual diff
naming the scenario file and line. Exit 0 when all pass, 1 when any fails, 2 on bad input.

With ``--mutate``, runs threshold mutation testing instead (see ``pathway.authoring.mutate``): every
numeric parameter one step each way and every comparison's strictness flipped, each against the
scenarios; lists the mutants no scenario notices and exits 1 when any survives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pathway.authoring.mutate import MutantOutcome, run_mutation
from pathway.authoring.scenario import Coverage, discover, run_scenarios
from pathway.cli.common import Subparsers
from pathway.core.errors import display_path
from pathway.runtime.api import load_pathway

__all__ = ["add_command", "default_scenario_dir"]


def default_scenario_dir(pathway: str) -> Path:
    return load_pathway(pathway).definition.root / "scenarios"


def coverage_text(cov: Coverage) -> str:
    r, e = cov.percent()
    lines = [f"coverage: rules {r}% ({sum(1 for n in cov.rules.values() if n)}/{len(cov.rules)}), "
             f"edges {e}% ({sum(1 for n in cov.edges.values() if n)}/{len(cov.edges)})"]
    if cov.rules_never:
        lines.append("  rules never fired: " + ", ".join(cov.rules_never))
    if cov.edges_never:
        lines.append("  edges never taken: " + ", ".join(f"{a}->{b}" for a, b in cov.edges_never))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    files = discover(args.files or [default_scenario_dir(args.pathway)])
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    if args.mutate:
        return _mutate(args, files)
    outcomes, cov = run_scenarios(files, args.pathway)
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        print(f"{'PASS' if o.passed else 'FAIL'}  {o.id}  ({o.scenario.location})")
        if not o.passed:
            print("      " + o.report().replace("\n", "\n      "))
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if args.coverage:
        print(coverage_text(cov))
    if args.json:
        out = {"pathway": args.pathway, "files": [display_path(f) for f in files],
               "scenarios": [{"id": o.id, "location": o.scenario.location, "passed": o.passed, "failures": o.failures}
                             for o in outcomes],
               "coverage": cov.to_dict()}
        Path(args.json).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if failed else 0


def _mutate(args: argparse.Namespace, files: list[Path]) -> int:
    kinds = ("parameter", "operator") if args.only is None else (args.only,)

    def progress(o: MutantOutcome) -> None:
        if args.verbose:
            print(f"{o.status.upper():8}  {o.description}" + (f"  <- {o.by}" if o.by else ""), flush=True)

    try:
        report = run_mutation(args.pathway, files, kinds=kinds, parameters=args.param or None, jobs=args.jobs,
                              progress=progress)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if report.survivors else 0


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("test", help="run scenario files (default: the pathway's scenarios/ folder)")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("files", nargs="*", help="scenario files or folders")
    p.add_argument("--coverage", action="store_true", help="report rules fired and edges taken")
    p.add_argument("--json", metavar="FILE", help="write outcomes and coverage (or the mutation report) as JSON")
    p.add_argument("--mutate", action="store_true",
                   help="threshold mutation testing: nudge each numeric parameter one step each way and flip each "
                        "comparison's strictness, rerun the scenarios, list the mutants none notices")
    p.add_argument("--only", choices=("parameter", "operator"), help="with --mutate: only this kind of mutant")
    p.add_argument("--param", action="append", metavar="NAME",
                   help="with --mutate: only mutants of this parameter and of the comparisons with it (repeatable)")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="with --mutate: worker processes (default: CPUs)")
    p.add_argument("-v", "--verbose", action="store_true", help="with --mutate: print each mutant as it finishes")
    p.set_defaults(handler=_run)
