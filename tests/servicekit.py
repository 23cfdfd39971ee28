"""The service on a real loopback port for tests: uvicorn in a thread, an httpx client over HTTP."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "tests" / "fixtures" / "fhir" / "demo-bundle.json"
DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"
PROBLEM = "application/problem+json"


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, access_log=False, log_config=None, log_level="warning",
                                           server_header=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def demo_bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


def prefetch_of(bundle: dict[str, Any], upto: str | None = None) -> dict[str, Any]:
    """The demo bundle as an EHR prefetches it for the service's templates: the Patient and searchsets of the
    Observations and MedicationRequests (only those effective up to ``upto`` when given); the Encounter (the
    admission time) under a key of its own."""
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    rest = [copy.deepcopy(e) for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    if upto is not None:
        rest = [e for e in rest if _when(e["resource"]) is None or str(_when(e["resource"])) <= upto]

    def searchset(rtype: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [e for e in rest if e["resource"]["resourceType"] == rtype]}

    encounter = next(e["resource"] for e in rest if e["resource"]["resourceType"] == "Encounter")
    return {"patient": patient, "encounter": encounter, "observations": searchset("Observation"),
            "medications": searchset("MedicationRequest")}


def split_bundle(bundle: dict[str, Any], upto: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundle as two: what is effective up to ``upto`` (with the Patient, Encounter and history), and the rest."""
    first = [e for e in bundle["entry"] if _when(e["resource"]) is None or str(_when(e["resource"])) <= upto]
    later = [e for e in bundle["entry"] if e not in first]
    return ({**bundle, "entry": first}, {"resourceType": "Bundle", "type": "collection", "entry": later})


def _when(res: dict[str, Any]) -> str | None:
    for key in ("effectiveDateTime", "authoredOn", "occurrenceDateTime", "effectiveInstant", "performedDateTime"):
        if key in res:
            return str(res[key])
    return None


def hook_body(hook: str, patient_id: str, prefetch: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                            "context": {"userId": "Practitioner/example", "patientId": patient_id, **context}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def client(base: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=60, **kwargs)
