"""``pathway serve``: the CDS Hooks 2.0 service and the JSON API over HTTP (FastAPI on uvicorn).

    pathway serve asuc --store sessions.db --port 8000
    pathway serve asuc --store postgresql://app@db/cds --base-url https://cds.example.org \\
        --token-issuer https://ehr.example.org=https://ehr.example.org/.well-known/jwks.json

Needs the ``service`` extra (``pip install 'asuc-pathway[service]'``). See docs/integrating.md, "The service".
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from pathway.cli.common import EXIT_OK, Subparsers, UsageError, add_parameter_option, parameters
from pathway.loading.loader import DEFAULT_PATHWAY

__all__ = ["add_command", "JsonLines"]


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        return json.dumps(out, ensure_ascii=False, sort_keys=True, default=str)


def add_command(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the CDS Hooks service and the JSON API (FastAPI on uvicorn)",
                       description="Serve CDS Hooks 2.0 (discovery, patient-view, order-select, order-sign, feedback) "
                                   "and a JSON API over stored sessions, with OpenAPI at /openapi.json.")
    p.add_argument("pathway", nargs="?", default=DEFAULT_PATHWAY, help="pathway name or folder (default: asuc)")
    p.add_argument("--profile", help="site profile the pathway runs under")
    add_parameter_option(p)
    p.add_argument("--store", default=":memory:", metavar="LOCATION",
                   help="session store: a SQLite file or a postgresql:// URL (default: in memory, lost on exit)")
    p.add_argument("--feedback", metavar="LOCATION",
                   help="card feedback log, a SQLite file or a postgresql:// URL (default: the store's database)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--base-url", help="the service's URL as the EHR calls it: token audience and card links "
                                      "(default http://HOST:PORT)")
    p.add_argument("--token-issuer", action="append", default=[], metavar="ISS=JWKS_URL",
                   help="check CDS Hooks bearer tokens: an allowed issuer and the URL of its JWK Set (repeatable; "
                        "none: no check)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow this browser origin (repeatable; default: CORS off)")
    p.add_argument("--max-body", type=int, default=1_000_000, metavar="BYTES", help="request body limit (default 1 MB)")
    p.add_argument("--max-depth", type=int, default=64, metavar="LEVELS", help="JSON nesting limit (default 64)")
    p.add_argument("--fhir-read-back", action="store_true",
                   help="read prefetch the EHR did not send from its FHIR server (fhirServer, fhirAuthorization)")
    p.add_argument("--log-patient-data", action="store_true",
                   help="put patient ids, URLs and error texts in the logs (default: rule ids and routes only)")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from pathway.service.app import LOGGER, Settings, create_app
        from pathway.service.auth import parse_issuer
    except ImportError as exc:
        raise UsageError(f"pathway serve needs the service extra (pip install 'asuc-pathway[service]'): {exc}") from None
    from pathway.runtime.api import load_pathway
    from pathway.runtime.store import SessionStore

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port takes 0-65535, not {args.port}")
    if args.max_body < 1 or args.max_depth < 1:
        raise UsageError("--max-body and --max-depth take a positive number")
    issuers: dict[str, tuple[str, ...]] = {}
    for text in args.token_issuer:
        try:
            iss, url = parse_issuer(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        issuers[iss] = (*issuers.get(iss, ()), url)
    pathway = load_pathway(args.pathway, profile=args.profile, parameters=parameters(args.parameter))
    store = SessionStore(args.store)
    feedback = args.feedback or args.store
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    service_log = logging.getLogger(LOGGER)
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    # listening before the address is printed: a client that connects at once waits in the backlog until the
    # server accepts, instead of being refused by a socket that is bound but not yet listening
    sock.listen(2048)
    port = sock.getsockname()[1]  # the port chosen when --port 0
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    settings = Settings(base_url=args.base_url or f"http://{shown_host}:{port}", max_body=args.max_body,
                        max_depth=args.max_depth, log_patient_data=args.log_patient_data,
                        cors_origins=tuple(args.cors_origin), token_issuers=issuers, feedback=feedback,
                        fhir_read_back=args.fhir_read_back)
    app = create_app(pathway, store, settings)
    # no access log (its lines hold the URL, so patient ids) and no Server header
    server = uvicorn.Server(uvicorn.Config(app, access_log=False, log_config=None, server_header=False,
                                           proxy_headers=False, log_level="warning"))
    if args.fhir_read_back and not issuers:
        print("note: --fhir-read-back without --token-issuer lets any caller make the service fetch from the "
              "fhirServer it names", file=sys.stderr)
    if args.store == ":memory:":
        print("note: sessions are kept in memory and lost on exit (--store FILE or postgresql://... keeps them)",
              file=sys.stderr)
    print(f"pathway serve: {pathway.id} {pathway.version} on http://{shown_host}:{port} "
          f"(CDS Hooks at /cds-services, OpenAPI at /openapi.json)", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        store.close()
    return EXIT_OK
