"""The benchmark runs on a tiny budget and writes every section of its JSON; the README table renders from
that JSON and parses as a Markdown table. Timings are never checked here, only keys and exact counts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import readme_table  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PATHWAY_TEST_POSTGRES", None)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_engine.py"), "--baseline", "6", "--sessions", "12",
                           "--store", "4", "--patients", "20", "--long", "20", "--cold-runs", "1", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    data["_stdout"] = done.stdout
    return data


def test_every_section_is_written(run):
    import bench_engine

    assert set(bench_engine.SECTIONS) <= set(run)
    assert run["engine"]["journeys"] == 6 and run["engine"]["events"] > 6
    assert set(run["engine"]["observe_cpu_ms"]) == {"p50", "p95", "p99", "max", "mean"}
    assert list(run["cold"]["phases_cpu_ms"]) == sorted(readme_table.PHASES)  # JSON keys are sorted
    # cold starts are measured with the package's bytecode compiled (as installed), and what compiling the
    # modules `pathway validate` imports from source would add is reported beside them
    assert run["cold"]["bytecode_cached"] is True and run["cold"]["source_compile_cpu_ms"] > 0
    # validate with the cache of loaded pathways in place, without it, and the first start that writes it
    assert all(run["cold"][k] > 0 for k in ("validate_wall_ms", "validate_uncached_wall_ms", "validate_first_wall_ms"))
    assert run["memory"]["sessions"] == 12 and run["memory"]["bytes_per_session"] > 0
    flat = run["memory"]["flat"]  # sampled at every tenth of the sequential patients
    assert flat["patients"] == 20 and [x["patients"] for x in flat["samples"]] == list(range(2, 21, 2))
    assert all(x["rss_mb"] > 0 and x["python_blocks"] > 0 for x in flat["samples"])
    assert flat["second_half_python_blocks"] == flat["samples"][-1]["python_blocks"] - flat["samples"][4]["python_blocks"]
    long = run["long"]
    assert long["events"] == 20 and long["trace_entries"] > 20
    assert all(long[k] > 0 for k in ("full_first_ms", "full_last_ms", "summary_first_ms", "summary_last_ms"))
    assert set(run["store"]) == {"sqlite"} and run["store"]["sqlite"]["sessions"] == 4
    for line in ("engine ", "core floor", "engine / floor", "core in place", "durable Host API",
                 "long course", "cold load", "open sessions",
                 "sequential", "store sqlite"):
        assert line in run["_stdout"]


def test_the_floor_replays_exactly_the_engine_s_core_calls(run):
    floor = run["floor"]
    assert floor["mismatches"] == 0  # every replayed call returned what it returned to the engine
    calls = floor["calls_by_function"]
    # a state an action ran on is deleted (delete_state), any other is retracted from and checked empty
    assert {"assert_fact", "start_action_for_state", "complete_and_start_action", "delete_state"} <= set(calls)
    assert set(calls) <= {"assert_fact", "start_action_for_state", "complete_and_start_action", "delete_state",
                          "retract_facts", "get_facts"}
    assert sum(calls.values()) == floor["core_calls"]
    assert 0 < floor["evaluate_seconds"]
    # the same calls timed where the engine makes them: as many as the floor replays. The two are timed in
    # separate passes, so how they compare is the benchmark's number to print, not something a test can pin
    assert floor["in_place_calls"] == floor["core_calls"]
    assert 0 < floor["in_place_seconds"] and 0 < floor["evicted_replay_seconds"]
    assert floor["engine_over_in_place"] > 0
    core = floor["in_place_observe_ms"]
    assert 0 < core["p50"] <= core["p95"] <= core["p99"]
    assert run["host"]["measured"] is True and run["host"]["evaluations"] > 0


def _table(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in lines]


def test_the_readme_table_renders_from_the_json_and_parses(run, tmp_path, capsys):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({k: v for k, v in run.items() if k != "_stdout"}), encoding="utf-8")
    assert readme_table.main([str(path)]) == 0
    text = capsys.readouterr().out
    table = _table(text)
    assert table[0] == list(readme_table.HEADER)
    assert table[1] == ["---"] * len(readme_table.HEADER)
    body = table[2:]
    assert all(len(row) == len(readme_table.HEADER) for row in body)
    labels = [row[0] for row in body]
    assert len(body) == len(readme_table.rows(run))
    for start in ("Engine:", "Floor:", "Engine time ÷ floor", "The same core calls timed where",
                  "`observe` CPU", "The core's calls inside each `observe`", "`observe` CPU time in one long course",
                  "Cold `pathway validate asuc`",
                  "Cold `python -c", "Cold load, CPU time:", "Memory per open session", "Resident memory over 20 sequential",
                  "SessionStore on SQLite"):
        assert any(label.startswith(start) for label in labels), start
    assert f"{run['floor']['engine_over_floor']:.2f}x" in text


def test_a_file_that_is_not_a_bench_run_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"engine": {}}', encoding="utf-8")
    assert readme_table.main([str(bad)]) == 2
    assert "not a bench run" in capsys.readouterr().err
    assert readme_table.main([]) == 2
