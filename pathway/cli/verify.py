"""``pathway verify PATHWAY [--budget N] [--seed S] [--profile P] [--json FILE]``: search for a patient
course that breaks a safety invariant.

Generates ``--budget`` courses (default 1000) with a fixed ``--seed`` (the same seed finds the same
course), runs them through the engine and checks every invariant of the pathway's invariants file
after every event. On a violation the course is shrunk to a shortest one and printed as a scenario
to paste into the library, with the invariant and the hazards it verifies. Exit 0 when no course
breaks an invariant, 1 on a violation, 2 on bad input (a pathway without an invariants file, or
Hypothesis not installed: ``pip install 'asuc-pathway[verify]'``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pathway.cli.common import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, Subparsers
from pathway.runtime.api import load_pathway

__all__ = ["add_command"]


def _run(args: argparse.Namespace) -> int:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        print("error: 'pathway verify' needs Hypothesis: pip install 'asuc-pathway[verify]'", file=sys.stderr)
        return EXIT_BAD_INPUT
    from pathway.authoring.verify import scenario_yaml, verify

    pw = load_pathway(args.pathway, profile=args.profile)
    if not pw.definition.invariants:
        print(f"error: pathway '{pw.id}' has no invariants (name a file as 'invariants_file' in pathway.yaml)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.budget < 1:
        print("error: --budget must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = verify(pw, budget=args.budget, seed=args.seed)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    checked = ", ".join(f"{k} {v}" for k, v in sorted(report.checks.items())) or "none applied"
    print(f"{pw.id} (profile {report.profile}): {report.courses} course(s), {report.events} event(s) applied, "
          f"{report.refused} refused, seed {report.seed}, {report.seconds:g} s")
    print(f"invariants applied: {checked}")
    unused = sorted(i.id for i in pw.definition.invariants if i.id not in report.checks)
    if unused:
        print(f"never applied (no generated course reached them): {', '.join(unused)}")
    v = report.violation
    if v is None:
        print(f"no violation of {len(pw.definition.invariants)} invariant(s)")
        return EXIT_OK
    print(f"\nVIOLATION of {v.invariant} ({', '.join(v.hazards) or 'no hazard'}): {v.title}")
    print(f"after event {v.event}: {v.detail}\n")
    print(scenario_yaml(v))
    return EXIT_FINDINGS


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("verify", help="search generated patient courses for one that breaks a safety invariant")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("--budget", type=int, default=1000, help="courses to generate (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--profile", default=None, help="site profile")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(handler=_run)
