"""The engine's speed and size, against durable_rules' own C core, in one run on one machine.

    python bench/bench_engine.py [--quick] [--json FILE] [--baseline N] [--patients N] [--sessions N]
    python bench/readme_table.py FILE        # the README's table from the JSON written by --json

What one run measures (``--quick``: smaller counts, under two minutes):

1. *engine*: synthetic patients (a deterministic mix of every branch of the ASUC pathway) through
   ``Pathway.start`` / ``Session.observe``: journeys/s, events/s, and the CPU time of each
   ``observe`` (``time.thread_time_ns``): p50, p95, p99. Rates and ratios in items 1-3 are per
   second of this process's CPU time (``time.process_time``): one core's worth, and steady on a
   machine shared with other work, where wall time is not;
2. *core-call replay floor*: every call the engine made into durable_rules' C core
   (``durable_rules_engine``: assert, start and complete action, delete_state or retract, get_facts) for those
   patients is recorded with its pre-encoded arguments, then replayed straight into the core on
   freshly registered rulesets (checked: every replayed call returns what it returned to the
   engine). No wrapper can do less; ``engine ÷ floor`` is what the engine costs above it. The same
   calls are also timed where the engine makes them (*core in place*), and replayed with 1 MiB of memory
   written between calls: the replay runs with the core's data in the processor's caches, which any work
   between calls (the engine's own Python) takes out, so the core costs more in place than in the replay;
3. *durable Host API*: the same evaluations through durable_rules' Python Host (assert the
   snapshot, actions assert the derived facts, then the state deleted where an action ran, else retracted, as the
   engine does): what a plain durable_rules program pays;
4. *cold load*: in a fresh process each time, median of 5: the CPU time of imports, YAML, the checked
   definition, compile, ruleset registration (from the rule files); and the wall time of ``pathway validate
   asuc`` (and its CPU time, the wall time without competing processes) with the cache of loaded pathways in
   place (``pathway.loading.stored``: every start after the first), without it, and the first start, which
   writes it; and of ``python -c "import pathway"`` (as ``time`` shows it);
5. *memory*: bytes per open session (tracemalloc) with ``--sessions`` sessions open after 3 events
   each; resident memory (VmRSS) and Python's allocated blocks at every tenth of ``--patients`` sequential
   patients, and what the second half of them added (flat: nothing that stays);
6. *store*: SessionStore events saved per second as they arrive (wall time: a save waits for the disk):
   whole documents per save (the baseline, in the same run), log rows per save, and a batch per round;
   loads/s by the writing store and verified by another, each load compared with the session saved; on
   SQLite, and on PostgreSQL when ``PATHWAY_TEST_POSTGRES`` holds a DSN.

Prints one line per measurement; ``--json FILE`` writes them all. Not a test: numbers, not verdicts.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib.util
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from durable import engine as durable_engine  # noqa: E402
from durable.engine import MessageNotHandledException  # noqa: E402

from pathway.definition.effects import Derive  # noqa: E402

#: the keys of the JSON output (tests/test_bench.py and bench/readme_table.py rely on them)
SECTIONS = ("machine", "settings", "engine", "floor", "host", "long", "cold", "memory", "store")


def synthetic_case(i: int, rng: random.Random) -> dict[str, Any]:
    """One patient; the branch is chosen by i so every run has the same mix."""
    patient = {"id": f"b{i}", "weight_kg": round(rng.uniform(45, 110), 1), "age_years": rng.randint(18, 85),
               "prior_anti_tnf_failure": rng.random() < 0.2, "prior_thiopurine_failure": rng.random() < 0.3,
               "latent_tb": "negative", "hbv_status": "negative", "nyha_class": 0, "tpmt_status": "normal",
               "hiv_uncontrolled": False, "demyelinating_disease": False, "malignancy_current": False,
               "immunodeficiency": False}
    admit = {"day": 0, "bloody_stools_24h": rng.randint(6, 14), "pulse_bpm": rng.randint(91, 130),
             "temp_c": round(rng.uniform(37.0, 39.0), 1), "hb_g_dl": round(rng.uniform(8.5, 13.5), 1),
             "crp_mg_l": rng.randint(31, 200), "albumin_g_l": rng.randint(20, 40), "uceis": rng.randint(3, 8)}
    branch = i % 8
    if branch == 0:  # not ASUC
        return {"patient": patient, "events": [{"day": 0, "bloody_stools_24h": rng.randint(1, 5), "pulse_bpm": 80}]}
    day1 = {"day": 1, "stool_freq_24h": rng.randint(4, 12), "visible_blood": True, "crp_mg_l": rng.randint(20, 150)}
    if branch == 1:  # responds to steroids
        return {"patient": patient, "events": [admit, day1,
                                               {"day": 3, "stool_freq_24h": rng.randint(0, 3), "visible_blood": False,
                                                "crp_mg_l": rng.randint(1, 8), "albumin_g_l": rng.randint(32, 42)}]}
    fail = {"day": 3, "stool_freq_24h": rng.randint(9, 15), "visible_blood": True, "crp_mg_l": rng.randint(46, 200),
            "cholesterol_mmol_l": round(rng.uniform(3.2, 6.5), 1), "magnesium_mmol_l": round(rng.uniform(0.7, 0.99), 2),
            "creatinine_umol_l": rng.randint(50, 110), "active_serious_infection": False, "bp_uncontrolled": False,
            "albumin_g_l": rng.randint(20, 40), "cdiff_result": "negative", "cmv_biopsy_result": "negative"}
    agent = ["tacrolimus", "ciclosporin", "infliximab", "tacrolimus", "ciclosporin", "colectomy"][branch - 2]
    if agent == "infliximab" and patient["prior_anti_tnf_failure"]:
        agent = "ciclosporin"
    events = [admit, day1, fail, {"day": 3, "rescue_choice": agent}]
    if agent == "colectomy":
        return {"patient": patient, "events": events}
    if agent == "tacrolimus":
        events.append({"day": 6, "tacrolimus_trough_ng_ml": round(rng.uniform(4, 20), 1), "stool_freq_24h": 5,
                       "visible_blood": True, "magnesium_mmol_l": round(rng.uniform(0.55, 0.9), 2),
                       "tacrolimus_daily_dose_mg": round(rng.uniform(2, 8) * 2) / 2})
    responds = rng.random() < 0.7
    events.append({"day": 11, "stool_freq_24h": 2 if responds else 7, "visible_blood": not responds})
    if agent == "tacrolimus" and not responds:
        events.append({"day": 18, "stool_freq_24h": 8, "visible_blood": True})
    return {"patient": patient, "events": events}



class _RawHost(durable_engine.Host):  # type: ignore[misc]
    def __init__(self, compiled: Any):
        self._compiled = compiled
        self.asserted: list[dict[str, Any]] = []
        self.firings = 0
        super().__init__()

    def _run(self) -> None:
        return None

    def get_action(self, action_name: str):  # noqa: ANN201
        binding = self._compiled.bindings[action_name]
        derives = [e for e in (binding.rule.then if binding.branch == "then" else binding.rule.otherwise)
                   if isinstance(e, Derive)] if binding.branch != "missing" else []

        def action(c: Any) -> None:
            self.firings += 1
            for effect in derives:
                for name, value in effect.values.items():
                    message = {"_k": "derived", "name": name, "value": value, "sid": c.s.sid}
                    try:
                        c.assert_fact(message)
                        self.asserted.append(message)
                    except MessageNotHandledException:
                        pass

        return action


def run_raw(compiled: Any, evaluations: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> float:
    """CPU seconds of the evaluations replayed through durable's Host API."""
    host = _RawHost(compiled)
    host.set_rulesets(copy.deepcopy(compiled.rulesets))
    start = time.process_time()
    for ruleset, snapshot, kept in evaluations:
        fact = dict(snapshot)
        fact["_k"] = "case"
        fact["sid"] = "0"
        host.asserted = []
        fired = host.firings
        try:
            host.assert_fact(ruleset, fact)
            host.asserted.insert(0, fact)
        except MessageNotHandledException:
            pass
        for name, value in kept.items():  # facts kept by a decision point, as the engine asserts them
            message = {"_k": "derived", "name": name, "value": value, "sid": "0"}
            try:
                host.assert_fact(ruleset, message)
                host.asserted.append(message)
            except MessageNotHandledException:
                pass
        if host.firings != fired:  # as the engine does: durable's retraction is unsafe where an action ran
            host.delete_state(ruleset, "0")
        elif host.asserted:
            host.retract_facts(ruleset, list(reversed(host.asserted)))
    return time.process_time() - start


class _CoreRecorder:
    """Stands in for ``durable_rules_engine`` inside the engine module: forwards every call and
    records it (name, arguments, result)."""

    def __init__(self, core: Any):
        self._core = core
        self.calls: list[tuple[str, tuple[Any, ...], Any]] = []

    def __getattr__(self, name: str) -> Any:
        function = getattr(self._core, name)
        if name.startswith(("delete_ruleset", "create_", "set_")):  # the ruleset's life, not an evaluation
            return function
        calls = self.calls

        def call(*args: Any) -> Any:
            result = function(*args)
            calls.append((name, args, result))
            return result

        return call


@contextlib.contextmanager
def recording_core() -> Iterator[_CoreRecorder]:
    """Record every call the engine module makes into the core: through the module it imports
    (``_core.assert_fact(...)``) or through a function of the core it keeps under its own name."""
    import durable_rules_engine

    from pathway.runtime import engine as engine_module

    recorder = _CoreRecorder(durable_rules_engine)
    replaced: dict[str, Any] = {}
    for name, value in list(vars(engine_module).items()):
        if value is durable_rules_engine:
            replaced[name] = value
            setattr(engine_module, name, recorder)
        elif callable(value) and getattr(durable_rules_engine, getattr(value, "__name__", ""), None) is value:
            replaced[name] = value
            setattr(engine_module, name, getattr(recorder, value.__name__))
    try:
        yield recorder
    finally:
        for name, value in replaced.items():
            setattr(engine_module, name, value)


def replay_floor(pw: Any, calls: list[tuple[str, tuple[Any, ...], Any]]) -> dict[str, Any]:
    """Replay the recorded core calls on freshly registered rulesets: the CPU time, and whether every
    call returned what it returned to the engine."""
    import durable_rules_engine as core

    from pathway.runtime.engine import Engine

    fresh = Engine(pw.compiled)
    handles = {old: fresh._handles[name] for name, old in pw.engine._handles.items()}
    ops = [(getattr(core, name), (handles[args[0]], *args[1:])) for name, args, _ in calls]
    gc.collect()
    start = time.process_time()
    for function, args in ops:
        function(*args)
    seconds = time.process_time() - start
    mismatches = sum(1 for (function, args), (_, _, result) in zip(ops, calls, strict=True) if function(*args) != result)
    fresh.close()
    counts: dict[str, int] = {}
    for name, _, _ in calls:
        counts[name] = counts.get(name, 0) + 1
    return {"seconds": seconds, "calls": len(calls), "mismatches": mismatches, "calls_by_function": counts}


class _TimedCore:
    """Stands in for ``durable_rules_engine`` inside the engine module: forwards every call and adds its CPU
    time (``time.thread_time_ns``) to ``spent``."""

    def __init__(self, core: Any):
        self._core = core
        self.spent = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        function = getattr(self._core, name)
        if name.startswith(("delete_ruleset", "create_", "set_")):
            return function
        clock = time.thread_time_ns

        def call(*args: Any) -> Any:
            t0 = clock()
            try:
                return function(*args)
            finally:
                self.spent += clock() - t0
                self.calls += 1

        return call


def _clock_cost_ns(samples: int = 200_000) -> float:
    """What one pair of ``thread_time_ns`` readings around a call adds to it (subtracted from the timed calls)."""
    clock = time.thread_time_ns
    start = clock()
    for _ in range(samples):
        clock()
    return (clock() - start) / samples


def in_place_core(pw: Any, cases: list[dict[str, Any]], calls: list[tuple[str, tuple[Any, ...], Any]]) -> dict[str, Any]:
    """The engine's core calls timed where the engine makes them (the same journeys again), and the floor's replay
    with 1 MiB of memory written between calls (each timed): what the core costs when other work has taken its
    data out of the processor's caches, as the engine's own Python work between calls does."""
    import durable_rules_engine

    from pathway.runtime import engine as engine_module
    from pathway.runtime.engine import Engine

    timed = _TimedCore(durable_rules_engine)
    original = engine_module._core
    engine_module._core = timed
    cost = _clock_cost_ns()
    per_observe: list[float] = []  # the core's CPU time inside each observe (ns)
    try:
        gc.collect()
        for c in cases:
            s = pw.start(c["patient"])
            for event in c["events"]:
                spent_before, calls_before = timed.spent, timed.calls
                s.observe(event)
                per_observe.append(max(0.0, timed.spent - spent_before - (timed.calls - calls_before) * cost))
    finally:
        engine_module._core = original
    in_place = max(0.0, (timed.spent - timed.calls * cost) / 1e9)
    fresh = Engine(pw.compiled)
    handles = {old: fresh._handles[name] for name, old in pw.engine._handles.items()}
    ops = [(getattr(durable_rules_engine, name), (handles[args[0]], *args[1:])) for name, args, _ in calls]
    other = [bytearray(64 * 1024) for _ in range(16)]  # 1 MiB, half the L2 cache of this machine class or less
    clock, spent = time.thread_time_ns, 0
    gc.collect()
    for function, args in ops:
        for block in other:
            block[::64] = bytes(1024)  # one write per 64-byte cache line
        t0 = clock()
        function(*args)
        spent += clock() - t0
    fresh.close()
    evicted = max(0.0, (spent - len(ops) * cost) / 1e9)
    return {"in_place_seconds": round(in_place, 3), "in_place_calls": timed.calls,
            "in_place_observe_ms": {q: round(percentile(per_observe, v) / 1e6, 3)  # type: ignore[arg-type]
                                    for q, v in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))},
            "evicted_replay_seconds": round(evicted, 3), "clock_cost_ns": round(cost, 1)}


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[k])


def _rss_kb(field: str = "VmRSS") -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def engine_run(pw: Any, cases: list[dict[str, Any]]) -> tuple[float, float, list[int], int]:
    """CPU seconds, wall seconds, the CPU time of every observe (ns), and the number of events."""
    cpu: list[int] = []
    events = 0
    clock = time.thread_time_ns
    gc.collect()
    wall, start = time.perf_counter(), time.process_time()
    for c in cases:
        s = pw.start(c["patient"])
        for event in c["events"]:
            t0 = clock()
            s.observe(event)
            cpu.append(clock() - t0)
        events += len(c["events"])
    return time.process_time() - start, time.perf_counter() - wall, cpu, events


def evaluate_run(pw: Any, cases: list[dict[str, Any]]) -> float:
    """CPU seconds spent inside ``Engine.evaluate`` (the rules of one state on one snapshot: the part of
    ``observe`` that talks to the core) over the same journeys."""
    engine = pw.engine
    original = engine.evaluate
    clock = time.thread_time_ns
    spent = [0]

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += clock() - t0

    engine.evaluate = timed
    try:
        for c in cases:
            s = pw.start(c["patient"])
            for event in c["events"]:
                s.observe(event)
    finally:
        del engine.evaluate
    return spent[0] / 1e9


def measure_engine(pw: Any, cases: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    # 1. Record, untimed: the engine's calls into the core, and its evaluations for the Host replay.
    recorded: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    engine = pw.engine
    original = engine.evaluate
    host_ok = hasattr(engine, "_tested") and hasattr(engine, "_tested_derived")

    def recording(state: str, snapshot: dict[str, Any], frozen: dict[str, Any] | None = None) -> Any:
        if host_ok:
            for name in pw.compiled.state_rulesets.get(state, []):
                tested = engine._tested[name]  # the same messages the engine sends
                kept = {k: v for k, v in sorted((frozen or {}).items()) if k in engine._tested_derived[name]}
                recorded.append((name, {k: v for k, v in snapshot.items() if v is not None and k in tested}, kept))
        return original(state, snapshot, frozen)

    engine.evaluate = recording
    try:
        with recording_core() as core:
            for c in cases:
                s = pw.start(c["patient"])
                for event in c["events"]:
                    s.observe(event)
    finally:
        del engine.evaluate
    # 2. The engine, timed, on the same patients.
    seconds, wall, cpu, events = engine_run(pw, cases)
    n = len(cases)
    out = {
        "journeys": n, "events": events, "seconds": round(seconds, 3), "wall_seconds": round(wall, 3),
        "journeys_per_s": round(n / seconds, 1), "events_per_s": round(events / seconds, 1),
        "observe_cpu_ms": {"p50": round(percentile(cpu, 0.50) / 1e6, 3), "p95": round(percentile(cpu, 0.95) / 1e6, 3),
                           "p99": round(percentile(cpu, 0.99) / 1e6, 3), "max": round(max(cpu, default=0) / 1e6, 3),
                           "mean": round(statistics.fmean(cpu) / 1e6, 3) if cpu else 0.0},
        "evaluations": engine.evaluations,
        "retired_sids": engine.retired_sids,
    }
    # 3. The floor: the core calls replayed.
    if not core.calls:
        raise SystemExit("no call into durable_rules' core was recorded: the engine reaches the core another way; "
                         "update recording_core() in bench/bench_engine.py")
    replay = replay_floor(pw, core.calls)
    evaluate_s = evaluate_run(pw, cases)
    placed = in_place_core(pw, cases, core.calls)
    floor = {
        "seconds": round(replay["seconds"], 3), "core_calls": replay["calls"], "mismatches": replay["mismatches"],
        "calls_per_event": round(replay["calls"] / max(events, 1), 1),
        "calls_by_function": replay["calls_by_function"],
        "journeys_per_s": round(n / replay["seconds"], 1), "events_per_s": round(events / replay["seconds"], 1),
        "us_per_event": round(replay["seconds"] / max(events, 1) * 1e6, 2),
        "engine_over_floor": round(seconds / replay["seconds"], 2),
        # Engine.evaluate alone (rules of one state on one snapshot), against the same floor
        "evaluate_seconds": round(evaluate_s, 3),
        "evaluate_over_floor": round(evaluate_s / replay["seconds"], 2),
        # the same calls timed where the engine makes them, and replayed with the caches emptied between calls
        **placed,
        "in_place_over_floor": round(placed["in_place_seconds"] / replay["seconds"], 2),
        "evicted_over_floor": round(placed["evicted_replay_seconds"] / replay["seconds"], 2),
        "engine_over_in_place": round(seconds / placed["in_place_seconds"], 2) if placed["in_place_seconds"] else None,
    }
    # 4. durable's Host API on the same evaluations.
    host: dict[str, Any] = {"measured": host_ok}
    if host_ok:
        raw_s = run_raw(pw.compiled, recorded)
        host.update({"seconds": round(raw_s, 3), "evaluations": len(recorded), "journeys_per_s": round(n / raw_s, 1),
                     "events_per_s": round(events / raw_s, 1), "engine_over_host": round(seconds / raw_s, 2)})
    return out, floor, host


def measure_long(pw: Any, events: int) -> dict[str, Any]:
    """The CPU time of ``observe`` as one course grows: the mean of the first and of the last 10 % of ``events``
    observations (a vital-signs check every 6 h), with the full result (its trace copied every time) and with
    ``detail="summary"``, on two sessions fed the same events alternately."""
    patient = {"id": "long", "weight_kg": 70, "age_years": 40}
    admit = {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60,
             "albumin_g_l": 32}
    full, brief = pw.start(dict(patient)), pw.start(dict(patient))
    full.observe(dict(admit))
    brief.observe(dict(admit))
    clock = time.thread_time_ns
    spent: dict[str, list[int]] = {"full": [], "summary": []}
    gc.collect()
    for i in range(events):
        event = {"day": round(0.25 * (i + 1), 2), "pulse_bpm": 80 + i % 7, "temp_c": 37.0}
        t0 = clock()
        full.observe(dict(event))
        t1 = clock()
        brief.observe(dict(event), detail="summary")
        spent["full"].append(t1 - t0)
        spent["summary"].append(clock() - t1)
    tenth = max(1, events // 10)

    def mean_ms(values: list[int]) -> float:
        return round(sum(values) / len(values) / 1e6, 3)

    return {"events": events, "trace_entries": full.trace_length,
            "full_first_ms": mean_ms(spent["full"][:tenth]), "full_last_ms": mean_ms(spent["full"][-tenth:]),
            "summary_first_ms": mean_ms(spent["summary"][:tenth]),
            "summary_last_ms": mean_ms(spent["summary"][-tenth:])}


def measure_flat(pw: Any, patients: int, case: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Memory over sequential patients (each session dropped after its journey), sampled at every tenth of the
    run: resident memory (VmRSS) and the blocks Python's allocator holds (``sys.getallocatedblocks``: live
    objects, whatever the allocator keeps of freed ones). Flat: the second half of the run adds nothing that
    stays."""
    gc.collect()
    before = _rss_kb()
    rss_1k = 0
    marks = {max(1, patients * k // 10) for k in range(1, 11)}
    samples: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i in range(patients):
        c = case(i)
        s = pw.start(c["patient"])
        for event in c["events"]:
            s.observe(event)
        del s
        if i + 1 == 1000:
            rss_1k = _rss_kb()
        if i + 1 in marks:
            gc.collect()
            samples.append({"patients": i + 1, "rss_mb": round(_rss_kb() / 1024, 1),
                            "python_blocks": sys.getallocatedblocks()})
    seconds = time.perf_counter() - start
    half = next(x for x in samples if x["patients"] >= patients // 2)
    last = samples[-1]
    return {"patients": patients, "seconds": round(seconds, 1), "journeys_per_s": round(patients / seconds, 1),
            "rss_mb_before": round(before / 1024, 1), "rss_mb_after_1k": round(rss_1k / 1024, 1),
            "rss_mb_after_all": round(_rss_kb() / 1024, 1), "samples": samples,
            "second_half_rss_mb": round(last["rss_mb"] - half["rss_mb"], 1),
            "second_half_python_blocks": last["python_blocks"] - half["python_blocks"]}


_FLAT_CHILD = r"""
import json, random, sys
sys.path.insert(0, sys.argv[1])
import bench_engine
from pathway import load_pathway
patients, seed = int(sys.argv[2]), int(sys.argv[3])
pw = load_pathway("asuc")
flat = bench_engine.measure_flat(pw, patients, lambda i: bench_engine.synthetic_case(i, random.Random(seed * 1_000_003 + i)))
print(json.dumps(flat))
"""


def flat_in_child(patients: int, seed: int) -> dict[str, Any]:
    """:func:`measure_flat` in a fresh process: resident memory is a high-water mark, so in this one (after the sessions
    kept open) it would say nothing of the patients run one after another."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _FLAT_CHILD, str(ROOT / "bench"), str(patients), str(seed)], check=True,
                         cwd=ROOT, env=env, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def measure_sessions(pw: Any, count: int, case: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Bytes per open session: ``count`` sessions kept open after (up to) 3 events each."""
    cases = [case(i) for i in range(count)]
    for c in cases[:20]:  # warm the caches the sessions share (compiled texts, interned names)
        s = pw.start(dict(c["patient"], id="warm-" + c["patient"]["id"]))
        for event in c["events"][:3]:
            s.observe(event)
    del s
    # Sessions share the equal values they keep (firings, history and trace entries, view items): the values
    # the measured sessions share are counted in their bytes, not those the sections before them made.
    from pathway.runtime import changes, state

    state.forget_shared()
    changes.forget_shared()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    sessions = []
    events = 0
    for c in cases:
        s = pw.start(c["patient"])
        for event in c["events"][:3]:
            s.observe(event)
            events += 1
        sessions.append(s)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    dumps = [len(json.dumps(s.dump(), sort_keys=True, ensure_ascii=False)) for s in sessions[:500]]
    del sessions
    gc.collect()
    return {"sessions": count, "events_each": round(events / count, 2), "bytes_per_session": round(used / count),
            "dump_bytes_mean": round(statistics.fmean(dumps))}


def _stream(pw: Any, store: Any, courses: list[dict[str, Any]], prefix: str, batch: bool) -> tuple[list[Any], float, int]:
    """Patients admitted, then their events in rounds (one event per patient per round), each saved as it is
    applied (``batch``: one ``save_many`` per round): the sessions, the seconds spent in the store, the
    events saved. Only the store's calls are timed."""
    sessions = [pw.start(dict(c["patient"], id=f"{prefix}{i}")) for i, c in enumerate(courses)]
    spent = 0.0
    start = time.perf_counter()
    store.save_many(sessions)
    spent += time.perf_counter() - start
    saved = 0
    for r in range(max(len(c["events"]) for c in courses)):
        moved = [s for s, c in zip(sessions, courses, strict=True) if r < len(c["events"])]
        for s, c in zip(sessions, courses, strict=True):
            if r < len(c["events"]):
                s.receive(c["events"][r])
                if not batch:
                    start = time.perf_counter()
                    store.save(s)
                    spent += time.perf_counter() - start
        if batch:
            start = time.perf_counter()
            store.save_many(moved)
            spent += time.perf_counter() - start
        saved += len(moved)
    return sessions, spent, saved


def measure_store(pw: Any, location: str, count: int, case: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Events saved per second as they arrive, by whole documents (the baseline: what every save wrote
    before the log) and by log rows, one save per event and one batch per round; then loads per second by
    the store that wrote the rows and by another (verified by replay), each compared with the session saved."""
    from pathway import SessionStore
    from pathway.runtime.storebase import SNAPSHOT_EVERY

    courses = [case(i) for i in range(count)]
    store = SessionStore(location)
    out: dict[str, Any] = {"sessions": count, "events": sum(len(c["events"]) for c in courses)}
    store.snapshot_every = 0  # every save a whole document
    _s, spent, saved = _stream(pw, store, courses, "doc", batch=False)
    out["documents_events_per_s"] = round(saved / spent, 1)
    store.snapshot_every = SNAPSHOT_EVERY
    _s, spent, saved = _stream(pw, store, courses, "log", batch=False)
    out["appended_events_per_s"] = round(saved / spent, 1)
    sessions, spent, saved = _stream(pw, store, courses, "st", batch=True)
    out["batched_events_per_s"] = round(saved / spent, 1)
    start = time.perf_counter()
    known = [store.load(pw, f"st{i}") for i in range(count)]
    out["loads_per_s"] = round(count / (time.perf_counter() - start), 1)
    store.close()
    cold = SessionStore(location)
    start = time.perf_counter()
    verified = [cold.load(pw, f"st{i}") for i in range(count)]
    out["verified_loads_per_s"] = round(count / (time.perf_counter() - start), 1)
    cold.close()

    def text(session: Any) -> str:
        return json.dumps([session.dump(), session.result()], sort_keys=True)

    out["resumed_differently"] = sum(text(a) != text(s) or text(b) != text(s)
                                     for s, a, b in zip(sessions, known, verified, strict=True))
    return out


def measure_stores(pw: Any, count: int, case: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = measure_store(pw, str(Path(tmp) / "bench.db"), count, case)
    dsn = os.environ.get("PATHWAY_TEST_POSTGRES", "")
    if dsn:
        import psycopg

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_store import with_search_path

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}".encode())
            try:
                out["postgresql"] = measure_store(pw, with_search_path(dsn, schema), count, case)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    return out


_COLD_CHILD = r"""
import json, sys, time
t0 = time.process_time()
import pathway.loading.loader as loader
from pathway.runtime.compile import compile_pathway
from pathway.runtime.engine import Engine
import pathway.runtime.api
t1 = time.process_time()
spent = [0.0]
read = loader.load_yaml_file
def timed(*args, **kwargs):
    start = time.process_time()
    try:
        return read(*args, **kwargs)
    finally:
        spent[0] += time.process_time() - start
loader.load_yaml_file = timed
definition = loader.load_definition(sys.argv[1])
t2 = time.process_time()
compiled = compile_pathway(definition)
t3 = time.process_time()
engine = Engine(compiled)
t4 = time.process_time()
print(json.dumps({"import": t1 - t0, "yaml": spent[0], "definition": t2 - t1 - spent[0], "compile": t3 - t2,
                  "registration": t4 - t3}))
"""


def _python(args: list[str], runs: int, cpu: list[float] | None = None, env: dict[str, str] | None = None) -> list[float]:
    """Wall seconds of ``runs`` fresh processes (and, into ``cpu``, the CPU seconds each used)."""
    env = dict(env or os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    walls = []
    for _ in range(runs):
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
    return walls


_MODULES_CHILD = r"""
import json, runpy, sys
sys.argv = ["pathway", "validate", sys.argv[1]]
try:
    runpy.run_module("pathway", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m.__file__ for name, m in list(sys.modules.items())
                        if name.split(".")[0] == "pathway" and getattr(m, "__file__", None))))
"""


def _source_compile_ms(pathway: str) -> float:
    """CPU milliseconds to compile, from source, the package's modules that ``pathway validate`` imports:
    what each start pays on top when no bytecode is cached (a checkout on a machine with
    ``PYTHONDONTWRITEBYTECODE`` set)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _MODULES_CHILD, pathway], check=True, cwd=ROOT, env=env,
                         capture_output=True, text=True)
    files = [Path(f) for f in json.loads(out.stdout.splitlines()[-1])]
    start = time.process_time()
    for path in files:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    return round((time.process_time() - start) * 1000, 1)


def measure_cold(pathway: str, runs: int) -> dict[str, Any]:
    """Each phase of a cold load in a fresh process (median of ``runs``), and two commands' wall time.

    The package's bytecode is compiled first, as ``pip install`` leaves an installed package (and as
    any start writes it unless ``PYTHONDONTWRITEBYTECODE`` is set); ``source_compile_cpu_ms`` is what
    a start pays on top without it."""
    import compileall

    compileall.compile_dir(str(ROOT / "pathway"), quiet=1)
    # the phases of a load from the rule files: no cache of loaded pathways (pathway.loading.stored)
    uncached = {k: v for k, v in os.environ.items() if k != "PATHWAY_CACHE_DIR"}
    uncached["PATHWAY_NO_CACHE"] = "1"
    env = dict(uncached, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    phases: dict[str, list[float]] = {}
    cpu: list[float] = []
    uncached_cpu: list[float] = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _COLD_CHILD, pathway], check=True, cwd=ROOT, env=env,
                             capture_output=True, text=True)
        for name, seconds in json.loads(out.stdout.splitlines()[-1]).items():
            phases.setdefault(name, []).append(seconds)
    median = {name: round(statistics.median(v) * 1000, 1) for name, v in phases.items()}
    validate = ["-m", "pathway", "validate", pathway]
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
        # a start with the cache of loaded pathways in place, as every start after the first one finds it
        cached = {k: v for k, v in os.environ.items() if k != "PATHWAY_NO_CACHE"}
        cached["PATHWAY_CACHE_DIR"] = folder
        first = _python(validate, 1, env=cached)
        walls = _python(validate, runs, cpu, env=cached)
    return {
        "runs": runs,
        "phases_cpu_ms": median,
        "load_cpu_ms": round(sum(median.values()), 1),
        "validate_wall_ms": round(statistics.median(walls) * 1000, 1),
        # the CPU time of those runs (user + system): what the wall time is when no other process competes
        "validate_cpu_ms": round(statistics.median(cpu) * 1000, 1),
        # the first start, which loads from the rule files and writes the cache, and starts with no cache at all
        "validate_first_wall_ms": round(first[0] * 1000, 1),
        "validate_uncached_wall_ms": round(statistics.median(_python(validate, runs, uncached_cpu, env=uncached)) * 1000, 1),
        "validate_uncached_cpu_ms": round(statistics.median(uncached_cpu) * 1000, 1),
        "import_pathway_wall_ms": round(statistics.median(_python(["-c", "import pathway"], runs)) * 1000, 1),
        "python_start_wall_ms": round(statistics.median(_python(["-c", "pass"], runs)) * 1000, 1),
        # compiled bytecode of the package present (as after pip install), not compiled on every start
        "bytecode_cached": Path(importlib.util.cache_from_source(str(ROOT / "pathway" / "cli" / "main.py"))).exists(),
        "source_compile_cpu_ms": _source_compile_ms(pathway),
    }


#: the counts of ``--quick`` and of a full run (an option given replaces its count)
QUICK = {"baseline": 300, "patients": 0, "sessions": 1_000, "store": 100, "long": 400}
FULL = {"baseline": 2_000, "patients": 100_000, "sessions": 10_000, "store": 1_000, "long": 400}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts: the whole run under two minutes")
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE (JSON)")
    parser.add_argument("--baseline", type=int, help="patients timed on the engine, the floor and the Host API")
    parser.add_argument("--patients", type=int, help="sequential patients for the flat-memory run (0: none)")
    parser.add_argument("--sessions", type=int, help="sessions kept open for bytes per session")
    parser.add_argument("--store", type=int, help="sessions saved and loaded per store")
    parser.add_argument("--long", type=int, help="observations of the one long course")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes per cold measurement")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    began = time.perf_counter()

    from pathway import load_pathway

    pw = load_pathway("asuc")

    def case(i: int) -> dict[str, Any]:
        # one deterministic generator per patient: generated on demand, the same in every run
        return synthetic_case(i, random.Random(args.seed * 1_000_003 + i))

    from importlib.metadata import version

    numbers: dict[str, Any] = {
        "machine": {"platform": f"{platform.machine()} {platform.system()}",
                    "python": f"{platform.python_implementation()} {platform.python_version()}",
                    "durable_rules": version("durable_rules"), "cores": os.cpu_count(),
                    "load_average_start": round(os.getloadavg()[0], 2)},
        "settings": {"quick": args.quick, "baseline": args.baseline, "patients": args.patients,
                     "sessions": args.sessions, "store": args.store, "long": args.long, "cold_runs": args.cold_runs,
                     "seed": args.seed},
    }
    say = print
    m = numbers["machine"]
    say(f"machine          {m['platform']}, {m['python']}, durable_rules {m['durable_rules']}, {m['cores']} cores, "
        f"load average {m['load_average_start']}")

    spent: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        spent[name] = round(now - mark, 1)
        mark = now

    cases = [case(i) for i in range(args.baseline)]
    engine, floor, host = measure_engine(pw, cases)
    lap("engine_floor_host")
    del cases
    numbers.update(engine=engine, floor=floor, host=host)
    cpu = engine["observe_cpu_ms"]
    say(f"engine           {engine['journeys_per_s']:>9,.0f} journeys/s {engine['events_per_s']:>9,.0f} events/s"
        f"  ({engine['journeys']} journeys, {engine['events']} events, {engine['seconds']} s CPU, "
        f"{engine['wall_seconds']} s wall)")
    say(f"observe CPU      p50 {cpu['p50']} ms, p95 {cpu['p95']} ms, p99 {cpu['p99']} ms, max {cpu['max']} ms")
    say(f"core floor       {floor['journeys_per_s']:>9,.0f} journeys/s {floor['events_per_s']:>9,.0f} events/s"
        f"  ({floor['core_calls']} core calls replayed, {floor['calls_per_event']} per event, "
        f"{floor['us_per_event']} us per event, {floor['mismatches']} mismatches)")
    say(f"engine / floor   {floor['engine_over_floor']}x whole journeys; Engine.evaluate alone "
        f"{floor['evaluate_over_floor']}x ({floor['evaluate_seconds']} s CPU)")
    say(f"core in place    {floor['in_place_seconds']} s CPU for the same {floor['in_place_calls']} calls timed where the "
        f"engine makes them ({floor['in_place_over_floor']}x the floor; replayed with 1 MiB written between calls: "
        f"{floor['evicted_over_floor']}x); engine / core in place {floor['engine_over_in_place']}x; the core's share of "
        f"each observe: p50 {floor['in_place_observe_ms']['p50']} ms, p95 {floor['in_place_observe_ms']['p95']} ms, "
        f"p99 {floor['in_place_observe_ms']['p99']} ms")
    if host["measured"]:
        say(f"durable Host API {host['journeys_per_s']:>9,.0f} journeys/s {host['events_per_s']:>9,.0f} events/s"
            f"  (the engine's {host['evaluations']} evaluations through durable's Python Host; "
            f"engine {host['engine_over_host']}x)")

    numbers["long"] = long = measure_long(pw, args.long)
    lap("long")
    say(f"long course      observe CPU over {long['events']} observations ({long['trace_entries']:,} trace entries "
        f"at the end): full result {long['full_first_ms']} ms first, {long['full_last_ms']} ms last; "
        f"summary {long['summary_first_ms']} ms first, {long['summary_last_ms']} ms last")

    numbers["cold"] = cold = measure_cold("asuc", args.cold_runs)
    lap("cold")
    phases = ", ".join(f"{k} {v} ms" for k, v in cold["phases_cpu_ms"].items())
    say(f"cold load        {cold['load_cpu_ms']} ms CPU ({phases}; median of {cold['runs']} fresh processes)")
    say(f"cold commands    pathway validate asuc {cold['validate_wall_ms']} ms ({cold['validate_cpu_ms']} ms CPU) with the "
        f"cache of loaded pathways, {cold['validate_uncached_wall_ms']} ms ({cold['validate_uncached_cpu_ms']} ms CPU) "
        f"without, {cold['validate_first_wall_ms']} ms writing it; "
        f"import pathway {cold['import_pathway_wall_ms']} ms, python alone {cold['python_start_wall_ms']} ms (wall, median; "
        f"bytecode compiled; compiling the package from source would add {cold['source_compile_cpu_ms']} ms CPU)")

    memory = measure_sessions(pw, args.sessions, case)
    if args.patients:
        memory["flat"] = flat_in_child(args.patients, args.seed)
    numbers["memory"] = memory
    lap("memory")
    say(f"open sessions    {memory['bytes_per_session']:,} bytes each ({memory['sessions']:,} open, "
        f"{memory['events_each']} events each; dump {memory['dump_bytes_mean']:,} bytes of JSON)")
    if "flat" in memory:
        f = memory["flat"]
        say(f"sequential       {f['patients']:,} patients at {f['journeys_per_s']:,.0f} journeys/s; VmRSS "
            f"{f['rss_mb_before']} MB before, {f['rss_mb_after_1k']} MB after 1k, {f['rss_mb_after_all']} MB after all; "
            "by tenths " + ", ".join(str(x["rss_mb"]) for x in f["samples"])
            + f" MB; second half {f['second_half_rss_mb']:+} MB, {f['second_half_python_blocks']:+,} Python blocks")

    numbers["store"] = stores = measure_stores(pw, args.store, case)
    lap("store")
    for name, st in stores.items():
        say(f"store {name:<10} events saved/s: {st['documents_events_per_s']:>7,.0f} as whole documents, "
            f"{st['appended_events_per_s']:>7,.0f} as log rows, {st['batched_events_per_s']:>7,.0f} in batches; "
            f"{st['loads_per_s']:>6,.0f} loads/s ({st['verified_loads_per_s']:,.0f} verified); "
            f"{st['resumed_differently']} of {st['sessions']} resumed differently")
    numbers["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
    numbers["seconds"] = round(time.perf_counter() - began, 1)
    numbers["settings"]["seconds_by_section"] = spent
    say(f"total            {numbers['seconds']} s wall (" + ", ".join(f"{k} {v} s" for k, v in spent.items()) + ")")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
