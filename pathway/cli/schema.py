"""`pathway schema`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pathway.authoring.schema import add_headers, check_headers, default_schema_dir, schemas, stale_schemas, write_schemas
from pathway.cli.common import Subparsers
from pathway.core.errors import display_path
from pathway.loading.loader import load_definition, resolve_pathway_dir


def _run(args: argparse.Namespace) -> int:
    definition = load_definition(args.pathway)
    out_dir = Path(args.output) if args.output else default_schema_dir(resolve_pathway_dir(args.pathway))
    all_schemas = schemas(definition)
    if args.check:
        problems = [f"{display_path(out_dir / name)}: stale or missing; run 'pathway schema {args.pathway}'"
                    for name in stale_schemas(all_schemas, out_dir)]
        problems += check_headers(definition.root, out_dir)
        for line in problems:
            print(line, file=sys.stderr)
        if not problems:
            print(f"ok: {len(all_schemas)} schemas current in {display_path(out_dir)}; every file has its header")
        return 1 if problems else 0
    for path in write_schemas(all_schemas, out_dir):
        print(f"wrote {display_path(path)}")
    if args.add_headers:
        for path, action in add_headers(definition.root, out_dir):
            print(f"{action} header: {display_path(path)}")
    return 0


def add_command(sub: Subparsers) -> None:
    """``pathway schema PATHWAY [-o DIR] [--check] [--add-headers]``."""
    p = sub.add_parser("schema", help="write JSON Schemas for rule, pathway, profile, scenario and case files")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="output folder (default: schema/ beside the pathway folder, e.g. rules/schema)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a schema is stale or a YAML file lacks its header")
    p.add_argument("--add-headers", action="store_true",
                   help="also insert the '# yaml-language-server: $schema=...' line into YAML files that lack it")
    p.set_defaults(handler=_run)
