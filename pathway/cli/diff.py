"""`pathway diff OLD NEW [--cases PATH ...] [--scenarios] [--no-tables] [--json | --markdown] [-o changes.svg]`.

Lists what changed in the definitions, the decision-table rows that changed
(:mod:`pathway.analysis.table_diff`; not with ``--no-tables``) and, with ``--cases`` or
``--scenarios``, what the change does to patients (:mod:`pathway.audit.patients`). Exit 0 when the
versions are the same and no patient's course changes, 1 when they differ (or a case changes or
fails under one version), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pathway.analysis.diff import DiffSection, VersionDiff, diff_pathways
from pathway.analysis.table_diff import table_diff
from pathway.audit.patients import collect_cases, patient_diff, scenario_library
from pathway.cli.common import EXIT_FINDINGS, EXIT_OK, Subparsers, UsageError
from pathway.core.errors import display_path
from pathway.render.diagram import DIAGRAM_FORMATS, diagram_format, render_diagram, write_diagram
from pathway.render.diff import build_diff_diagram


def _run(args: argparse.Namespace) -> int:
    diff, old, new = diff_pathways(args.old, args.new, old_profile=args.old_profile, new_profile=args.new_profile)
    sections: list[DiffSection] = [] if args.no_tables else [table_diff(old, new)]
    if args.cases or args.scenarios:
        cases = collect_cases(args.cases)
        sources = [display_path(p) for p in args.cases]
        if args.scenarios:  # (a scenario also named with --cases is replayed once)
            named = {(c.location, c.id) for c in cases}
            cases += [c for c in scenario_library(old.root, new.root) if (c.location, c.id) not in named]
            sources += sorted({display_path(old.root / "scenarios"), display_path(new.root / "scenarios")})
        if not cases:
            raise UsageError("no case or scenario files found in " + ", ".join(sources))
        sections.append(patient_diff(old, new, cases, sources, old_profile=args.old_profile,
                                     new_profile=args.new_profile))
    report = VersionDiff(diff, sections)
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True, indent=2, ensure_ascii=False))
    elif args.markdown:
        print(report.markdown(), end="")
    else:
        print(report.text())
    if args.output or args.format:
        diagram = build_diff_diagram(diff, old, new)
        if args.output:
            # with --json or --markdown, standard output stays one document
            print(f"wrote {display_path(write_diagram(diagram, Path(args.output), args.format))}",
                  file=sys.stderr if args.json or args.markdown else sys.stdout)
        else:
            print(render_diagram(diagram, diagram_format(None, args.format)), end="")
    return EXIT_FINDINGS if report.changed else EXIT_OK


def add_command(sub: Subparsers) -> None:
    """Add ``pathway diff``."""
    p = sub.add_parser("diff", help="compare two pathway versions (states, transitions, rules, parameters, the "
                                    "decision-table rows) and, with --cases/--scenarios, what the change does to "
                                    "patients")
    p.add_argument("old", help="old pathway name or folder")
    p.add_argument("new", help="new pathway name or folder")
    p.add_argument("--old-profile", default=None, help="site profile of the old version")
    p.add_argument("--new-profile", default=None, help="site profile of the new version")
    p.add_argument("--cases", action="append", default=[], metavar="PATH",
                   help="case files, scenario files or folders of them, replayed under both versions (repeatable)")
    p.add_argument("--scenarios", action="store_true",
                   help="also replay the scenario library of each version (<folder>/scenarios)")
    p.add_argument("--no-tables", action="store_true",
                   help="do not compare the decision tables (faster: they are built for every state of both versions)")
    p.add_argument("-o", "--output", default=None, help="write the diff diagram (.svg, .dot or .mmd)")
    p.add_argument("--format", choices=list(DIAGRAM_FORMATS), default=None, help="diagram format (default: by suffix)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the changes as JSON")
    out.add_argument("--markdown", action="store_true", help="print the changes as Markdown")
    p.set_defaults(handler=_run)
