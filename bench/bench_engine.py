"""Throughput and memory of the engine, against raw durable_rules on the same compiled rulesets.

    python bench/bench_engine.py [--patients 100000] [--baseline 20000] [--seed 1]

In one run, on one machine:

1. *engine*: synthetic patients (deterministic mix of every branch of the ASUC pathway) go
   through ``Pathway.start`` / ``Session.observe``: validation, snapshots, durable_rules,
   transitions, effects, trace and the result dict after every event;
2. *raw durable_rules*: the exact sequence of ruleset evaluations the engine made for the
   first ``--baseline`` patients is replayed on a bare durable_rules host with the same
   compiled rulesets: assert the snapshot, run the actions (derived facts asserted by the
   actions, as in the engine), retract. This is the floor any wrapper pays;
3. resident memory (VmRSS) after 1k patients and after all of them, and the peak (VmHWM).

Prints one line per measurement and a summary; exits 0. Not a test: numbers, not verdicts.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from durable import engine as durable_engine  # noqa: E402
from durable.engine import MessageNotHandledException  # noqa: E402

from pathway import load_pathway  # noqa: E402
from pathway.definition.effects import Derive  # noqa: E402


def _rss_kb(field: str = "VmRSS") -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


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


class _RawHost(durable_engine.Host):
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
    host = _RawHost(compiled)
    host.set_rulesets(copy.deepcopy(compiled.rulesets))
    start = time.perf_counter()
    for ruleset, snapshot, kept in evaluations:
        fact = dict(snapshot)
        fact["_k"] = "case"
        fact["sid"] = "0"
        host.asserted = []
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
        if host.asserted:
            host.retract_facts(ruleset, list(reversed(host.asserted)))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="patients replayed on raw durable_rules")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print the numbers as one JSON line")
    args = parser.parse_args()

    pw = load_pathway("asuc")

    def case(i: int) -> dict[str, Any]:
        # Generated on demand (one deterministic generator per patient), so resident memory
        # measures the engine, not a list of 100k cases.
        return synthetic_case(i, random.Random(args.seed * 1_000_003 + i))

    rss_start = _rss_kb()

    # Record the engine's evaluations for the raw replay (first --baseline patients only).
    recorded: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    original = pw.engine.evaluate

    def recording(state: str, snapshot: dict[str, Any], frozen: dict[str, Any] | None = None):  # noqa: ANN202
        for name in pw.compiled.state_rulesets.get(state, []):
            tested = pw.engine._tested[name]  # the same messages the engine sends
            kept = {k: v for k, v in sorted((frozen or {}).items()) if k in pw.engine._tested_derived[name]}
            recorded.append((name, {k: v for k, v in snapshot.items() if v is not None and k in tested}, kept))
        return original(state, snapshot, frozen)

    pw.engine.evaluate = recording  # type: ignore[method-assign]
    base_events = 0
    baseline_cases = [case(i) for i in range(args.baseline)]
    for c in baseline_cases:
        s = pw.start(c["patient"])
        for event in c["events"]:
            s.observe(event)
        base_events += len(c["events"])
    pw.engine.evaluate = original  # type: ignore[method-assign]

    # Engine, on the same first --baseline patients (timed), then on all of them.
    start = time.perf_counter()
    for c in baseline_cases:
        s = pw.start(c["patient"])
        for event in c["events"]:
            s.observe(event)
    engine_base_s = time.perf_counter() - start
    raw_s = run_raw(pw.compiled, recorded)
    n_recorded = len(recorded)

    end_states: dict[str, int] = {}
    for c in baseline_cases[:2000]:
        state = pw.run_case(c)["state"]
        end_states[state] = end_states.get(state, 0) + 1
    del baseline_cases
    recorded.clear()
    gc.collect()

    rss_before_run = _rss_kb()
    n_events = 0
    start = time.perf_counter()
    rss_1k = 0
    for i in range(args.patients):
        c = case(i)
        s = pw.start(c["patient"])
        for event in c["events"]:
            s.observe(event)
        n_events += len(c["events"])
        if i + 1 == 1000:
            rss_1k = _rss_kb()
    total_s = time.perf_counter() - start
    rss_end, rss_peak = _rss_kb(), _rss_kb("VmHWM")

    numbers = {
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "patients": args.patients,
        "events": n_events,
        "engine_patients_per_s": round(args.patients / total_s),
        "engine_events_per_s": round(n_events / total_s),
        "baseline_patients": args.baseline,
        "baseline_evaluations": n_recorded,
        "engine_s_on_baseline": round(engine_base_s, 3),
        "raw_durable_s_on_baseline": round(raw_s, 3),
        "raw_durable_patients_per_s": round(args.baseline / raw_s),
        "raw_durable_events_per_s": round(base_events / raw_s),
        "overhead_x": round(engine_base_s / raw_s, 2),
        "rss_mb_at_start": round(rss_start / 1024, 1),
        "rss_mb_before": round(rss_before_run / 1024, 1),
        "rss_mb_after_1k": round(rss_1k / 1024, 1),
        f"rss_mb_after_{args.patients // 1000}k": round(rss_end / 1024, 1),
        "peak_rss_mb": round(rss_peak / 1024, 1),
        "retired_sids": pw.engine.retired_sids,
        "final_states_sample": dict(sorted(end_states.items())),
    }
    print(f"machine            {numbers['machine']}")
    print(f"engine             {numbers['engine_patients_per_s']:>8} patients/s  {numbers['engine_events_per_s']:>8} events/s"
          f"  ({args.patients} patients, {n_events} events, {total_s:.1f} s)")
    print(f"raw durable_rules  {numbers['raw_durable_patients_per_s']:>8} patients/s  "
          f"{numbers['raw_durable_events_per_s']:>8} events/s"
          f"  (replay of the engine's {n_recorded} evaluations for {args.baseline} patients)")
    print(f"overhead           {numbers['overhead_x']:.2f}x raw durable_rules on the same patients "
          f"({engine_base_s:.2f} s vs {raw_s:.2f} s)")
    print(f"memory (VmRSS)     at start {numbers['rss_mb_at_start']} MB, before the run {numbers['rss_mb_before']} MB, "
          f"after 1k {numbers['rss_mb_after_1k']} MB, "
          f"after {args.patients // 1000}k {round(rss_end / 1024, 1)} MB, peak {numbers['peak_rss_mb']} MB")
    print(f"engine sessions retired (not verifiably empty): {pw.engine.retired_sids}")
    print(f"final states of the first {sum(end_states.values())} patients: "
          + ", ".join(f"{k} {v}" for k, v in sorted(end_states.items())))
    if args.json:
        print(json.dumps(numbers, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
