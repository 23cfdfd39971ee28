"""Bounded memory: reloading pathways does not grow the process.

- the load cache keeps the ``LOAD_CACHE_SIZE`` most recently used pathways;
- a pathway that is closed, or that nobody holds any more, frees its durable_rules rulesets
  (their sessions included), and a closed pathway refuses to evaluate;
- 100 edit-and-load cycles of a rule file, each running a patient: the resident set grows by at most
  40 MB while the load cache fills (8 pathways), then by at most 10 MB over the rest (measured from
  /proc/self/statm in a child process, so nothing else the test run loaded counts).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from pathway import load_pathway
from pathway.core.errors import EngineError
from pathway.runtime import api
from pathway.runtime import engine as engine_module

ROOT = Path(__file__).resolve().parent.parent
RELOADS = 100
#: what the load cache may hold (LOAD_CACHE_SIZE pathways, each about 5 MB for ASUC; see api.LOAD_CACHE_SIZE)
CACHE_MB = 40
#: how much the process may grow once the load cache is full
FLAT_MB = 10

PATIENT = {"id": "p1", "weight_kg": 70}
EVENTS = [{"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 38.1, "hb_g_dl": 10, "crp_mg_l": 50},
          {"day": 3, "stool_freq_24h": 9, "crp_mg_l": 60, "visible_blood": True}]

_CHILD = r"""
import json, os, sys
from pathlib import Path
from pathway import load_pathway

def rss_mb():
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

folder, reloads = Path(sys.argv[1]), int(sys.argv[2])
case = json.loads(sys.argv[3])
rule_file = folder / "steroids.yaml"
original = rule_file.read_text(encoding="utf-8")
marker = "Methylprednisolone 60 mg IV"
assert marker in original
samples = []
for i in range(reloads + 1):  # load 0 warms up (imports, first compile); its RSS is the baseline
    rule_file.write_text(original.replace(marker, f"{marker} (edit {i})"), encoding="utf-8")
    pathway = load_pathway(folder)  # the cache sees the edit and loads again
    assert f"(edit {i})" in str(pathway.rule("ivs_regimen").then), "the edit was not loaded"
    pathway.run_case(case)
    samples.append(rss_mb())
print(json.dumps(samples))
"""


def _reload_rss(folder: Path, reloads: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    case = json.dumps({"patient": PATIENT, "events": EVENTS})
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(reloads), case], capture_output=True,
                          text=True, env=env, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [float(x) for x in json.loads(proc.stdout)]


@pytest.mark.slow
def test_a_hundred_edits_and_reloads_keep_the_resident_set_flat(rules_copy: Path):
    samples = _reload_rss(rules_copy, RELOADS)
    # the load cache fills first (LOAD_CACHE_SIZE pathways, about 5 MB each), then nothing more may grow
    full = api.LOAD_CACHE_SIZE + 2
    shown = (f"after 1: {samples[1]:.1f} MB, {full}: {samples[full]:.1f} MB, 30: {samples[30]:.1f} MB, "
             f"{RELOADS}: {samples[RELOADS]:.1f} MB")
    filled = samples[full] - samples[1]  # after the first reload: the same process, everything imported and warm
    assert filled <= CACHE_MB, f"RSS grew {filled:.1f} MB while the load cache filled ({shown})"
    growth = max(samples[full:]) - samples[full]
    assert growth <= FLAT_MB, f"RSS grew {growth:.1f} MB over the {RELOADS - full} reloads after the cache was full ({shown})"


def _case() -> dict[str, object]:
    return {"patient": dict(PATIENT), "events": [dict(e) for e in EVENTS]}


def test_the_load_cache_keeps_only_the_most_recently_used(rules_copy: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(api, "LOAD_CACHE_SIZE", 2)
    monkeypatch.setattr(api, "_cache", type(api._cache)())
    first = load_pathway(rules_copy, parameters={"tw_pulse_bpm": 91})
    second = load_pathway(rules_copy, parameters={"tw_pulse_bpm": 92})
    assert load_pathway(rules_copy, parameters={"tw_pulse_bpm": 91}) is first  # used again: now the most recent
    third = load_pathway(rules_copy, parameters={"tw_pulse_bpm": 93})  # drops the least recent: the second
    assert len(api._cache) == 2
    assert load_pathway(rules_copy, parameters={"tw_pulse_bpm": 91}) is first
    assert load_pathway(rules_copy, parameters={"tw_pulse_bpm": 93}) is third
    dropped = weakref.ref(second.engine)
    release = second.engine._release_rulesets
    del second
    gc.collect()
    assert dropped() is None and not release.alive  # nobody held it: its rulesets were deleted


def test_an_edited_pathway_frees_the_version_it_replaces(rules_copy: Path):
    old = load_pathway(rules_copy)
    old.run_case(_case())
    release = old.engine._release_rulesets
    engine = weakref.ref(old.engine)
    steroids = rules_copy / "steroids.yaml"
    steroids.write_text(steroids.read_text(encoding="utf-8").replace("higher doses add no benefit", "more adds nothing"),
                        encoding="utf-8")
    new = load_pathway(rules_copy)
    assert new is not old and release.alive  # still held here: still usable
    assert old.run_case(_case()) == old.run_case(_case())
    del old
    gc.collect()
    assert engine() is None and not release.alive
    assert new.run_case(_case())["patient_id"] == "p1"


def test_a_collected_engine_is_freed_at_the_next_safe_point_not_inside_the_collector(rules_copy: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch):
    """The collector runs wherever Python allocates, inside another engine's evaluation too: a collected engine's
    finalizer only queues its rulesets, and they are freed at the next registration, evaluation or close, with
    no engine inside an evaluation (the core lock held)."""
    core = engine_module._core
    freed: list[bool] = []

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(core, name)

        def delete_ruleset(self, handle: object) -> object:
            freed.append(engine_module._CORE.locked())
            return core.delete_ruleset(handle)

    monkeypatch.setattr(engine_module, "_core", Spy())
    old = load_pathway(rules_copy, cache=False)
    old.run_case(_case())
    del old
    gc.collect()
    assert freed == [] and engine_module.pending_rulesets() >= 1  # queued, nothing freed inside the collector
    new = load_pathway(rules_copy, cache=False)  # registering is a safe point
    assert freed and all(freed) and engine_module.pending_rulesets() == 0
    new.run_case(_case())
    count = len(freed)
    new.close()  # freed at once, under the lock
    assert len(freed) > count and all(freed) and engine_module.pending_rulesets() == 0


def test_a_closed_pathway_refuses_to_evaluate_and_is_loaded_afresh(rules_copy: Path):
    pathway = load_pathway(rules_copy)
    session = pathway.start(dict(PATIENT))
    session.observe(dict(EVENTS[0]))
    before = json.dumps(session.dump(), sort_keys=True)
    with pathway:
        pass  # leaving the block closes it
    assert pathway.closed
    with pytest.raises(EngineError, match="closed"):
        session.observe(dict(EVENTS[1]))
    assert json.dumps(session.dump(), sort_keys=True) == before  # nothing applied
    pathway.close()  # twice: nothing happens
    again = load_pathway(rules_copy)
    assert again is not pathway and not again.closed
    restored = again.restore(session.dump())
    assert restored.observe(dict(EVENTS[1]))["day"] == 3
