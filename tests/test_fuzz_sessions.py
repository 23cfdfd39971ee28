"""Sessions cannot be forged or lost: tampered dumps, corrupt store rows, two writer processes, kill -9;
the store's tests run on SQLite and, when PATHWAY_TEST_POSTGRES is set, on PostgreSQL (tests/storebackends.py).

Every tampered document is either refused with SessionError or restores to a session identical to the
honest one. The fixed set edits every top-level key of two real dumps every way (deleted, retyped, out
of range, NaN, huge, long or control text), every key of the patient and of each event, the state, the
path and the trace's moves to every other state, and the identity keys; ``PATHWAY_FUZZ_BUDGET`` more
documents per course (default 150, seeded) are drawn at random among every path of each dump.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import random
from typing import Any

import pytest
import sessionfuzz as F
from cases import ADMIT, patient

from pathway import SessionError, SessionStore, load_pathway
from pathway.core.codes import CODES
from pathway.runtime.state import inputs_checksum

BUDGET = int(os.environ.get("PATHWAY_FUZZ_BUDGET", "150"))
SEED = 14
SESSION_CODES = {c for c, entry in CODES.items() if entry.kind == "stored session"}


@pytest.fixture(scope="module")
def honest(pw: Any) -> dict[str, tuple[dict[str, Any], str, str]]:
    """course -> (its dump as JSON gives it, the canonical dump and result of its honest restore)"""
    out = {}
    for name, case in F.courses().items():
        session = F.run(pw, case)
        doc = json.loads(json.dumps(session.dump()))
        restored = pw.restore(copy.deepcopy(doc))
        assert F.canonical(restored.dump()) == F.canonical(doc) and restored.result() == session.result()
        out[name] = (doc, F.canonical(doc), F.canonical(session.result()))
    return out


def _verdict(pw: Any, doc: Any, honest_dump: str, honest_result: str) -> str:
    """'refused' or 'identical'; anything else fails the test with the document's label."""
    try:
        restored = pw.restore(doc)
    except SessionError as exc:
        assert exc.diagnostics and {d.code for d in exc.diagnostics} <= SESSION_CODES
        assert all(d.file and "\n" not in str(d) for d in exc.diagnostics)
        return "refused"
    dump, result = F.canonical(restored.dump()), F.canonical(restored.result())
    return "identical" if (dump, result) == (honest_dump, honest_result) else "accepted but different"


@pytest.mark.parametrize("course", ["rescue", "clock", "admitted", "steroids"])
def test_every_tampered_dump_is_refused_or_restores_identical(pw, honest, course):
    doc, honest_dump, honest_result = honest[course]
    other = load_pathway("asuc", profile="nice").fingerprint
    states = list(pw.definition.spec.states)
    counts: dict[str, int] = {}
    wrong: list[str] = []
    for label, tampered in F.mutants(doc, states, random.Random(SEED), BUDGET, other, fixed=course in ("rescue", "clock")):
        try:
            verdict = _verdict(pw, tampered, honest_dump, honest_result)
        except Exception as exc:  # a raw traceback is a failure too, named by its document
            verdict = f"raised {type(exc).__name__}"
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict not in ("refused", "identical"):
            wrong.append(f"{label}: {verdict}")
    assert wrong == []
    assert counts["refused"] > 0.97 * sum(counts.values())  # only no-op edits and optional keys restore


def test_the_tampered_documents_of_the_issue_are_refused_naming_the_key(pw, honest):
    doc = honest["rescue"][0]

    def refused(edit) -> tuple[str, str]:
        tampered = copy.deepcopy(doc)
        edit(tampered)
        with pytest.raises(SessionError) as info:
            pw.restore(tampered)
        return info.value.diagnostics[0].file, info.value.diagnostics[0].code

    assert refused(lambda d: d.update(state="colectomy")) == ("state", "PW525")
    assert refused(lambda d: d["patient"].update(weight_kg=-5)) == ("patient.weight_kg", "PW524")
    assert refused(lambda d: d["facts"].update(weight_kg=-5)) == ("facts.weight_kg", "PW525")
    assert refused(lambda d: d["events"][3].update(crp_mg_l=float("nan"))) == ("events[3].crp_mg_l", "PW524")
    assert refused(lambda d: d["events"][1].update(crp_mg_l=81)) == ("checksum", "PW524")
    assert refused(lambda d: d["path"].__setitem__(-1, "colectomy")) == ("path[4]", "PW525")
    assert refused(lambda d: d["derived"].update(oxford_high_risk=False)) == ("derived.oxford_high_risk", "PW525")
    assert refused(lambda d: d.update(fingerprint="0" * 16)) == ("fingerprint", "PW523")
    assert refused(lambda d: d.pop("fingerprint")) == ("fingerprint", "PW523")
    assert refused(lambda d: d.update(events={})) == ("events", "PW521")
    assert refused(lambda d: d.update(format=9)) == ("format", "PW522")

    def forged(d: dict[str, Any]) -> None:  # an edited input with its checksum recomputed
        d["events"][1]["crp_mg_l"] = 20
        d["checksum"] = inputs_checksum(d["patient"], d["events"], d["revisions"], d["acted"])

    file, code = refused(forged)
    assert code == "PW525" and file.startswith(("trace", "facts", "history", "evaluations"))


def test_consistent_input_forgeries_restore_only_to_what_their_inputs_give(pw, honest):
    """A checksum is no signature: an edited input with its checksum recomputed may restore, but then to
    exactly the session its inputs give, never to a recorded outcome they do not produce."""
    doc = honest["clock"][0]
    verdicts = {"refused": 0, "replayed": 0}
    for label, forged in F.input_forgeries(doc, random.Random(SEED), max(40, BUDGET // 3), inputs_checksum):
        try:
            restored = pw.restore(copy.deepcopy(forged))
        except SessionError:
            verdicts["refused"] += 1
            continue
        assert F.canonical(restored.dump()) == F.canonical(pw.replay(forged).dump()), label
        verdicts["replayed"] += 1
    assert verdicts["refused"] > 0


def test_a_corrupt_stored_row_is_refused_or_restores_identical(pw, honest, backend):
    doc, honest_dump, honest_result = honest["clock"]
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False)
    backend.open().close()  # the store's tables
    rng = random.Random(SEED)
    raw = text.encode("utf-8")
    cases: list[bytes] = [raw[:n] for n in sorted(rng.sample(range(len(raw)), 40))]  # truncated rows
    for _ in range(max(60, BUDGET // 2)):  # one byte overwritten
        i = rng.randrange(len(raw))
        cases.append(raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1:])
    verdicts = {"refused": 0, "identical": 0, "not stored": 0}
    for blob in cases:
        try:
            backend.put_row("clock-1", doc["version"], doc["state"], len(doc["events"]), blob)
        except Exception as exc:  # PostgreSQL holds UTF-8 text only: it refuses to store the rest
            assert backend.name == "postgresql" and type(exc).__name__ == "CharacterNotInRepertoire", exc
            verdicts["not stored"] += 1
            continue
        store = SessionStore(backend.location)
        try:
            restored = store.load(pw, "clock-1")
        except SessionError as exc:
            assert {d.code for d in exc.diagnostics} <= SESSION_CODES
            verdicts["refused"] += 1
        else:
            assert (F.canonical(restored.dump()), F.canonical(restored.result())) == (honest_dump, honest_result)
            verdicts["identical"] += 1
        finally:
            store.close()
    assert verdicts["refused"] >= 40  # every truncation at least
    assert (verdicts["not stored"] > 0) == (backend.name == "postgresql")  # bytes that are not UTF-8 were drawn


# -- real processes --------------------------------------------------------------------------------------

def _final_notes(pw: Any, location: str, patients: list[str]) -> dict[str, list[str]]:
    store = SessionStore(location)
    try:
        return {pid: [e.get("note") for e in store.load(pw, pid).dump()["events"]] for pid in patients}
    finally:
        store.close()


def test_two_processes_never_lose_an_acknowledged_event(pw, backend):
    patients = [f"c{i}" for i in range(3)]
    store = SessionStore(backend.location)
    for pid in patients:
        s = pw.start(patient(id=pid))
        s.observe(dict(ADMIT, note="admitted"))
        store.save(s)
    store.close()
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    writers = [ctx.Process(target=F.concurrent_writer, args=(backend.location, tag, patients, 12, barrier, out))
               for tag in "AB"]
    for w in writers:
        w.start()
    reports = [out.get(timeout=300) for _ in writers]
    for w in writers:
        w.join(timeout=60)
        assert w.exitcode == 0
    acked = [note for _, notes, _ in reports for note in notes]
    conflicts = sum(c for _, _, c in reports)
    stored = _final_notes(pw, backend.location, patients)
    present = [n for notes in stored.values() for n in notes if n != "admitted"]
    assert len(acked) == 24 and sorted(present) == sorted(acked)  # no acknowledged event lost, none twice
    assert conflicts >= 1  # the second writer was told, not overwritten


def test_kill_9_during_a_stream_loses_no_acknowledged_event(pw, backend, tmp_path):
    acks = str(tmp_path / "acks.txt")
    patients, events, kills = 5, 6, 3
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(SEED)
    interrupted = 0
    for _ in range(kills):
        before = len(F.read_acks(acks))
        proc = ctx.Process(target=F.stream_writer, args=(backend.location, acks, patients, events))
        proc.start()
        F.wait_for_lines(acks, before + rng.randint(2, 5), timeout=180)
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.join(timeout=60)
        interrupted += proc.exitcode == -9
    proc = ctx.Process(target=F.stream_writer, args=(backend.location, acks, patients, events))
    proc.start()
    proc.join(timeout=300)
    assert proc.exitcode == 0
    assert interrupted >= 2  # the stream was cut mid-way (a writer that finished first is not killed)
    assert backend.integrity() == "ok"
    stored = _final_notes(pw, backend.location, [f"k{i}" for i in range(patients)])  # every row restores: none corrupt
    acked = F.read_acks(acks)
    present = {n for notes in stored.values() for n in notes}
    assert set(acked) <= present  # no acknowledged event lost
    for i in range(patients):
        assert stored[f"k{i}"] == [f"k{i}-e{j}" for j in range(events)]  # every event once, in order
