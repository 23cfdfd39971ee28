"""Saves and loads per second of the session store, on PostgreSQL against SQLite in the same run.

    python bench/bench_store.py [--postgres DSN] [--patients 200] [--saves 5] [--workers 2]
    ./dev bench-store            # starts a throwaway PostgreSQL server and passes its DSN

One machine, one run, the same sessions (real ASUC courses of 1 to 8 events, documents of 6 to 40 KB)
for each backend, in a new SQLite file and in a new PostgreSQL schema (dropped afterwards):

0. *dump+JSON only*: ``Session.dump()`` and its JSON text, as a save makes them, with no database;
1. *insert*: every patient's session saved for the first time;
2. *update*: each saved again ``--saves`` times (a conditional save on the revision it holds);
3. *load, known*: loaded by the store that wrote it (the row's text is byte-identical to what it wrote:
   parsed and resumed, not replayed);
4. *load, verified*: loaded by a new store (another worker): replayed through the engine and compared;
5. *workers*: ``--workers`` processes, each with its own store, saving their own patients at once;
6. *contended*: the same processes all adding events to one patient (load -> observe -> save, loading
   again on a conflict): acknowledged saves per second and conflicts.

Every save is durable when it returns on both backends as configured (the settings are printed).
Without a DSN (neither ``--postgres`` nor ``PATHWAY_TEST_POSTGRES``) only SQLite is measured. Prints
numbers, not verdicts; exits 0. Not a test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pathway import SessionConflict, SessionStore, load_pathway  # noqa: E402

ADMIT = {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60}


def course(i: int) -> list[dict[str, Any]]:
    """1 to 8 events: an admission, then daily observations."""
    events = [dict(ADMIT, note=f"e{i}-0")]
    for day in range(1, 1 + i % 8):
        events.append({"day": day, "stool_freq_24h": 4 + (i + day) % 5, "visible_blood": (i + day) % 2 == 0,
                       "crp_mg_l": 20 + 5 * day, "pulse_bpm": 80 + day, "note": f"e{i}-{day}"})
    return events[: 1 + i % 8]


def patient(pid: str, i: int) -> dict[str, Any]:
    return {"id": pid, "weight_kg": 55 + i % 40, "age_years": 20 + i % 60}


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:7.0f}/s ({count} in {seconds:.2f} s)"


def worker_saves(location: str, tag: str, count: int, saves: int, start: Any, out: Any) -> None:
    pw = load_pathway("asuc")
    store = SessionStore(location)
    sessions = []
    for i in range(count):
        s = pw.start(patient(f"w{tag}-{i}", i))
        for event in course(i):
            s.observe(event)
        sessions.append(s)
    start.wait(timeout=300)
    t0 = time.perf_counter()
    for s in sessions:
        store.save(s)
    for _ in range(saves):
        for s in sessions:
            store.save(s)
    out.put(("saves", count * (1 + saves), time.perf_counter() - t0))
    store.close()


def worker_contended(location: str, tag: str, events: int, start: Any, out: Any) -> None:
    pw = load_pathway("asuc")
    store = SessionStore(location)
    conflicts = 0
    start.wait(timeout=300)
    t0 = time.perf_counter()
    for k in range(events):
        while True:
            s = store.load(pw, "hot")
            s.observe({"day": 1, "pulse_bpm": 60 + k % 40, "note": f"{tag}-{k}"})
            try:
                store.save(s)
                break
            except SessionConflict:
                conflicts += 1
    out.put(("contended", events, time.perf_counter() - t0, conflicts))
    store.close()


def run_workers(location: str, workers: int, count: int, saves: int, events: int) -> tuple[str, str]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=worker_saves, args=(location, str(w), count, saves, start, out)) for w in range(workers)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    total = sum(r[1] for r in reports)
    parallel = f"{total / max(r[2] for r in reports):7.0f}/s ({workers} processes, {total} saves)"

    pw = load_pathway("asuc")
    with SessionStore(location) as store:
        s = pw.start(patient("hot", 0))
        s.observe(dict(ADMIT))
        store.save(s)
    start, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=worker_contended, args=(location, str(w), events, start, out)) for w in range(workers)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    with SessionStore(location) as store:
        stored = len(store.load(pw, "hot").dump()["events"]) - 1
    acked = sum(r[1] for r in reports)
    assert stored == acked, (stored, acked)  # a benchmark that lost an event measured nothing
    contended = (f"{acked / max(r[2] for r in reports):7.0f}/s ({acked} events, "
                 f"{sum(r[3] for r in reports)} conflicts, none lost)")
    return parallel, contended


def measure(label: str, location: str, args: argparse.Namespace) -> dict[str, str]:
    pw = load_pathway("asuc")
    sessions = []
    for i in range(args.patients):
        s = pw.start(patient(f"b{i}", i))
        for event in course(i):
            s.observe(event)
        sessions.append(s)
    results: dict[str, str] = {}
    sizes = sorted(len(json.dumps(s.dump(), sort_keys=True, ensure_ascii=False).encode()) for s in sessions)
    results["document"] = f"{sizes[len(sizes) // 2] / 1024:5.1f} KB median, {sizes[-1] / 1024:.1f} KB largest"
    t0 = time.perf_counter()
    for s in sessions:
        json.dumps(s.dump(), sort_keys=True, ensure_ascii=False, allow_nan=False).encode()
    results["dump+JSON only"] = rate(len(sessions), time.perf_counter() - t0)
    store = SessionStore(location)
    t0 = time.perf_counter()
    for s in sessions:
        store.save(s)
    results["insert"] = rate(len(sessions), time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(args.saves):
        for s in sessions:
            store.save(s)
    results["update"] = rate(len(sessions) * args.saves, time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(len(sessions)):
        store.load(pw, f"b{i}")
    results["load, known"] = rate(len(sessions), time.perf_counter() - t0)
    store.close()
    cold = SessionStore(location)
    t0 = time.perf_counter()
    for i in range(len(sessions)):
        cold.load(pw, f"b{i}")
    results["load, verified"] = rate(len(sessions), time.perf_counter() - t0)
    cold.close()
    if args.workers > 1:
        results["workers"], results["contended"] = run_workers(location, args.workers, args.patients // args.workers,
                                                               args.saves, args.contended)
    print(f"== {label}: done", flush=True)
    return results


def sqlite_settings(path: str) -> str:
    import sqlite3

    from pathway import SessionStore

    with SessionStore(path) as store:  # synchronous is a setting of each connection: the store's own
        con = store._db
        mode, sync = con.execute("PRAGMA journal_mode").fetchone()[0], con.execute("PRAGMA synchronous").fetchone()[0]
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, sync)
    return f"SQLite {sqlite3.sqlite_version}, journal_mode={mode}, synchronous={sync} (the store's connection)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postgres", default=os.environ.get("PATHWAY_TEST_POSTGRES", ""), help="a postgresql:// URL")
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--saves", type=int, default=5, help="updates per patient")
    ap.add_argument("--workers", type=int, default=2, help="processes in the parallel phases (1: none)")
    ap.add_argument("--contended", type=int, default=40, help="events per process on the one contended patient")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start; {args.patients} patients, {args.saves} updates each", flush=True)
    table: dict[str, dict[str, str]] = {}
    settings = []
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        table["SQLite"] = measure("SQLite", db, args)
        settings.append(sqlite_settings(db))
    if args.postgres:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}".encode())
            info = {k: admin.execute(f"SHOW {k}".encode()).fetchone()[0]  # type: ignore[index]
                    for k in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")}
            settings.append("PostgreSQL " + ", ".join(f"{k}={v}" for k, v in info.items()) + " (local socket)")
            try:
                table["PostgreSQL"] = measure("PostgreSQL", with_search_path(args.postgres, schema), args)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    else:
        print("(no PostgreSQL DSN: --postgres or PATHWAY_TEST_POSTGRES; ./dev bench-store starts a server)")
    for line in settings:
        print(line)
    rows = list(next(iter(table.values())))
    width = max(len(v) for values in table.values() for v in values.values())
    print(f"{'':16}" + "".join(f"  {name:{width}}" for name in table))
    for row in rows:
        print(f"{row:16}" + "".join(f"  {values[row]:{width}}" for values in table.values()))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
