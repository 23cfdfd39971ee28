"""The README's performance table, rendered from the JSON that ``bench/bench_engine.py --json FILE`` wrote.

    python bench/readme_table.py bench.json            # Markdown on standard output

One row per measure, with the performance goal it is held to where there is one; every number comes
from the one run in FILE. Exits 2 when FILE is not such a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: the header of the table (tests/test_bench.py parses it)
HEADER = ("Measure", "Result", "Goal")
#: the phases of a cold load, in the order they run
PHASES = ("import", "yaml", "definition", "compile", "registration")


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def rows(b: dict[str, Any]) -> list[tuple[str, str, str]]:
    engine, floor, host, cold, memory = b["engine"], b["floor"], b["host"], b["cold"], b["memory"]
    cpu = engine["observe_cpu_ms"]
    phases = [p for p in PHASES if p in cold["phases_cpu_ms"]] + sorted(set(cold["phases_cpu_ms"]) - set(PHASES))
    out = [
        ("Engine: journeys/s, events/s (validation, durable_rules, effects, trace, a result after every event)",
         f"{_n(engine['journeys_per_s'])} journeys/s, {_n(engine['events_per_s'])} events/s", "≥ 2,000 journeys/s"),
        ("Floor: durable_rules' C core replaying the engine's own calls "
         f"({floor['calls_per_event']} per event, pre-encoded)",
         f"{_n(floor['journeys_per_s'])} journeys/s, {_n(floor['events_per_s'])} events/s", ""),
        ("Engine time ÷ floor time, same journeys (`Engine.evaluate` alone ÷ floor)",
         f"{floor['engine_over_floor']:.2f}x ({floor['evaluate_over_floor']:.2f}x)", "≤ 2.5x"),
    ]
    if "in_place_seconds" in floor:
        out.append(("The same core calls timed where the engine makes them ÷ floor time (the floor replayed with 1 MiB "
                    "written between calls ÷ floor time); engine time ÷ core time in place",
                    f"{floor['in_place_over_floor']:.2f}x ({floor['evicted_over_floor']:.2f}x); "
                    f"{floor['engine_over_in_place']:.2f}x", ""))
    if host.get("measured"):
        out.append(("durable_rules through its Python Host API, same evaluations",
                    f"{_n(host['journeys_per_s'])} journeys/s, {_n(host['events_per_s'])} events/s", ""))
    out += [
        ("`observe` CPU time p50 / p95 / p99",
         f"{cpu['p50']:.2f} / {cpu['p95']:.2f} / {cpu['p99']:.2f} ms", "p99 ≤ 0.5 ms"),
    ]
    if "in_place_observe_ms" in floor:
        core = floor["in_place_observe_ms"]
        out.append(("The core's calls inside each `observe`, CPU time p50 / p95 / p99",
                    f"{core['p50']:.2f} / {core['p95']:.2f} / {core['p99']:.2f} ms", ""))
    long = b.get("long")
    if long:
        out.append((f"`observe` CPU time in one long course, first → last 10 % of {_n(long['events'])} observations "
                    f"({_n(long['trace_entries'])} trace entries at the end): full result; `detail=\"summary\"`",
                    f"{long['full_first_ms']:.2f} → {long['full_last_ms']:.2f} ms; "
                    f"{long['summary_first_ms']:.2f} → {long['summary_last_ms']:.2f} ms", ""))
    out += [
        ("Cold `pathway validate asuc` (wall, median of fresh runs; bytecode compiled, as an installed package has it"
         + (f"; from source +{_ms(cold['source_compile_cpu_ms'])} CPU" if "source_compile_cpu_ms" in cold else "") + ")"
         + ("; the cache of loaded pathways in place, as after the first start" if "validate_uncached_wall_ms" in cold else ""),
         _ms(cold["validate_wall_ms"]), "≤ 300 ms"),
    ]
    if "validate_uncached_wall_ms" in cold:
        out += [("Cold `pathway validate asuc` without the cache (`PATHWAY_NO_CACHE=1`); the first start, writing it",
                 f"{_ms(cold['validate_uncached_wall_ms'])}; {_ms(cold['validate_first_wall_ms'])}", "")]
    out += [
        ("Cold `python -c \"import pathway\"` (wall)", _ms(cold["import_pathway_wall_ms"]), "≤ 100 ms"),
        ("Cold load, CPU time: " + " / ".join(phases), " / ".join(_ms(cold["phases_cpu_ms"][p]) for p in phases), ""),
        (f"Memory per open session ({_n(memory['sessions'])} open, {memory['events_each']} events each)",
         f"{memory['bytes_per_session'] / 1024:,.1f} KB", "≤ 8 KB"),
    ]
    flat = memory.get("flat")
    if flat:
        samples = flat.get("samples") or []
        if samples:
            first, half = samples[0], next(x for x in samples if x["patients"] >= flat["patients"] // 2)
            out.append((f"Resident memory over {_n(flat['patients'])} sequential patients: after {_n(first['patients'])}"
                        f" → after {_n(half['patients'])} → after all (VmRSS); growth over the second half",
                        f"{first['rss_mb']} → {half['rss_mb']} → {samples[-1]['rss_mb']} MB; "
                        f"{flat['second_half_rss_mb']:+} MB", "flat"))
        else:
            out.append((f"Resident memory over {_n(flat['patients'])} sequential patients (after 1k → after all)",
                        f"{flat['rss_mb_after_1k']} MB → {flat['rss_mb_after_all']} MB", "flat"))
    for name, store in b["store"].items():
        label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(name, name)
        out.append((f"SessionStore on {label}: events saved/s as they arrive, one save each (whole documents → "
                    "log rows) and one batch per round",
                    f"{_n(store['documents_events_per_s'])} → {_n(store['appended_events_per_s'])}; "
                    f"{_n(store['batched_events_per_s'])} batched", "≥ 5,000 events/s"))
        out.append((f"SessionStore on {label}: loads/s (verified by replay); sessions resumed differently",
                    f"{_n(store['loads_per_s'])} ({_n(store['verified_loads_per_s'])}); "
                    f"{store['resumed_differently']} of {_n(store['sessions'])}", "0"))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(b: dict[str, Any]) -> str:
    m, s = b["machine"], b["settings"]
    # the options the run was given beyond --quick: counts other than its defaults (bench_engine.main)
    from bench_engine import FULL, QUICK  # beside this script

    defaults = QUICK if s["quick"] else FULL
    given = "".join(f" --{k} {s[k]}" for k in defaults if k in s and s[k] != defaults[k])
    lines = [f"Measured by `./dev bench{' --quick' if s['quick'] else ''}{given}` in one run: {m['platform']}, {m['python']}, "
             f"durable_rules {m['durable_rules']}, {m['cores']} cores (load average {m['load_average_start']} at the "
             f"start); {_n(s['baseline'])} synthetic journeys through every branch of the ASUC pathway.", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    for row in rows(b):
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python bench/readme_table.py BENCH.json", file=sys.stderr)
        return 2
    try:
        data = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        text = render(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{args[0]}: not a bench run written by bench_engine.py --json ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
