"""``pathway serve`` as a process: it listens where it says, logs one JSON line per request with the rule ids
that fired and no patient data (unless ``--log-patient-data``), and refuses a bad command line with exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET_ID, SECRET_NOTE = "Zq-PATIENT-80412", "Zq-NOTE-talked-to-family"


@contextmanager
def serve(*args: str, cwd: Path) -> Iterator[tuple[str, list[str]]]:
    """``pathway serve`` on a free port; yields its URL and (after the block) its standard error lines."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pathway", "serve", "asuc", "--port", "0", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # standard error is read as it comes, in a thread: a server never blocks on a full pipe, and a server that says
    # nothing cannot hold the test past the deadline
    lines: list[str] = []
    listening = threading.Event()
    found: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            hit = re.search(r"on (http://127\.0\.0\.1:\d+) ", line)
            if hit and not found:
                found.append(hit.group(1))
                listening.set()
        listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        listening.wait(60)
        assert found, "".join(lines)
        yield found[0], lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(30)
        assert proc.stderr is not None
        proc.stderr.close()


def drive(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/health").status_code == 200
        assert http.post("/sessions", json={"id": SECRET_ID, "weight_kg": 83.7}).status_code == 201
        reply = http.post(f"/sessions/{SECRET_ID}/events",
                          json={"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 113, "note": SECRET_NOTE})
        assert reply.status_code == 200
        assert http.post(f"/sessions/{SECRET_ID}/events", json={"day": 1, "crp_mg_l": 76543}).status_code == 422
        assert http.get(f"/sessions/{SECRET_ID}?detail=summary").json()["state"] == "iv_steroids"


def records(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_serve_logs_one_json_line_per_request_with_rule_ids_and_no_patient_data(tmp_path):
    with serve("--store", str(tmp_path / "s.db"), cwd=tmp_path) as (url, lines):
        drive(url)
    logged = records(lines)
    assert [(r["method"], r["route"], r["status"]) for r in logged] == [
        ("GET", "/health", 200), ("POST", "/sessions", 201), ("POST", "/sessions/{patient_id}/events", 200),
        ("POST", "/sessions/{patient_id}/events", 422), ("GET", "/sessions/{patient_id}", 200)]
    assert "tw_asuc_confirmed" in logged[2]["rules"] and logged[2]["state"] == "iv_steroids"
    # what may hold a patient's digits by chance is left out: the random request id, the timing, the port
    volatile = ("request_id", "ms", "ts", "time")
    kept = [{k: v for k, v in r.items() if k not in volatile} for r in logged]
    other = [line.replace(url, "URL") for line in lines if not line.startswith("{")]
    text = json.dumps(kept) + "\n".join(other)
    for value in (SECRET_ID, SECRET_NOTE, "76543", "113", "83.7"):
        assert value not in text
    assert (tmp_path / "s.db").is_file()


def test_log_patient_data_puts_the_patient_id_and_url_in_the_logs(tmp_path):
    with serve("--log-patient-data", cwd=tmp_path) as (url, lines):
        drive(url)
    logged = records(lines)
    assert logged[1]["patient_id"] == SECRET_ID and logged[2]["url"] == f"/sessions/{SECRET_ID}/events"
    assert any("in memory" in line for line in lines)  # the default store is said to be lost on exit


@pytest.mark.parametrize("args, words", [
    (["--token-issuer", "https://ehr.example.org"], "--token-issuer takes ISS=JWKS_URL"),
    (["--max-body", "0"], "positive"),
    (["--port", "70000"], "--port takes 0-65535"),
])
def test_a_bad_command_line_exits_2_with_a_message(tmp_path, args, words):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pathway", "serve", "asuc", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and words in proc.stderr
