"""`pathway report`: the audit report as HTML (``-o``), as a printable PDF (``--pdf``), or both."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pathway.analysis.check import DEFAULT_BUDGET
from pathway.audit.browser import PDF_TIMEOUT, chromium, print_pdf
from pathway.audit.report import build_report
from pathway.cli.common import Subparsers, UsageError, as_of_date
from pathway.core.errors import display_path


def _signatory(text: str) -> tuple[str, str]:
    """``--signatory "NAME: ROLE"`` as (name, role); the role may be left out."""
    name, _, role = text.partition(":")
    if not name.strip():
        raise UsageError(f"--signatory takes 'NAME: ROLE', not {text!r}")
    return name.strip(), role.strip()


def _shown(location: str) -> str:
    """A feedback log's location as the report names it (a file path; a URL without its password)."""
    return location if "://" not in location else location.split("://", 1)[0] + "://" + location.rsplit("@", 1)[-1]


def _feedback(location: str) -> dict[str, dict[str, Any]]:
    """The per-rule summary of the CDS Hooks feedback log at ``location`` (a usage error when there is none)."""
    from pathway.runtime.storebase import StoreUnavailable
    from pathway.service.feedback import FeedbackLog

    if "://" not in location and not Path(location).is_file():
        raise UsageError(f"--feedback: no feedback log at {location!r} (the SQLite file the service records into)")
    try:
        with FeedbackLog(location) as log:
            return log.summary()
    except StoreUnavailable as exc:
        raise UsageError(f"--feedback: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    signatories = [_signatory(s) for s in args.signatory]
    as_of = as_of_date(args.as_of)
    html_out = Path(args.output) if args.output else None if args.pdf else Path("report.html")
    if args.pdf:
        if not args.pdf_timeout > 0:
            raise UsageError(f"--pdf-timeout takes a number of seconds above 0, not {args.pdf_timeout:g}")
        chromium()  # no browser: say so before the report is built, and write nothing
    feedback = _feedback(args.feedback) if args.feedback else None
    text, problems = build_report(args.pathway, profile=args.profile,
                                  scenario_dir=Path(args.scenarios) if args.scenarios else None, budget=args.budget,
                                  as_of=as_of, mutations=Path(args.mutations) if args.mutations else None,
                                  signatories=signatories, feedback=feedback,
                                  feedback_source=_shown(args.feedback) if args.feedback else "")
    shown = f" ({problems} problem(s) shown)" if problems else ""
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(text, encoding="utf-8")
        print(f"wrote {display_path(html_out)}{shown}")
    if args.pdf:
        start = time.monotonic()
        pdf = print_pdf(text, Path(args.pdf), timeout=args.pdf_timeout)
        print(f"wrote {display_path(pdf)} in {time.monotonic() - start:.1f} s{shown}")
    return 1 if problems else 0


def add_command(sub: Subparsers) -> None:
    """Add ``pathway report``."""
    p = sub.add_parser("report", help="write the audit report as self-contained HTML and/or a printable PDF")
    p.add_argument("pathway", help="pathway name (e.g. asuc) or folder")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="HTML file to write (default report.html, unless only --pdf is given)")
    p.add_argument("--pdf", default=None, metavar="FILE",
                   help="also (or only) write the report as an A4 PDF to print and sign (needs headless Chromium, "
                        "Debian package 'chromium')")
    p.add_argument("--pdf-timeout", type=float, default=PDF_TIMEOUT, metavar="SECONDS",
                   help=f"stop the browser after this long (default {PDF_TIMEOUT:g})")
    p.add_argument("--signatory", action="append", default=[], metavar="'NAME: ROLE'",
                   help="a committee member printed in the sign-off block (repeat; blank lines follow for others)")
    p.add_argument("--profile", default=None, help="site profile")
    p.add_argument("--scenarios", default=None, help="scenario folder (default: <pathway>/scenarios)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="search bound of the checks")
    p.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                   help="the report's date, on which the rule sign-offs are judged (default: today)")
    p.add_argument("--mutations", default=None, metavar="FILE",
                   help="include a threshold mutation report written by 'pathway test PATHWAY --mutate --json FILE'")
    p.add_argument("--feedback", default=None, metavar="LOCATION",
                   help="add the acceptance of the CDS Hooks cards per rule, from the service's feedback log "
                        "(the SQLite file given to 'pathway serve')")
    p.set_defaults(handler=_run)
