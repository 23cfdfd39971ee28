"""Helpers of tests/test_fuzz_sessions.py: honest courses, the dump-tampering mutator, and the writer
processes of the concurrency and kill -9 tests (module level, so that spawned processes import them)."""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections.abc import Iterator
from typing import Any

from cases import ADMIT, DAY3_FAIL, RESCUE_LABS, RESCUE_RESPONSE, patient, rescue

# -- honest courses -------------------------------------------------------------------------------------


def courses() -> dict[str, dict[str, Any]]:
    """Three real courses: a tacrolimus rescue into maintenance (kept decision facts, a long trace), a
    course on the clock with quantities given in other units, notes and an input warning on its last
    event, and a patient admitted with no event yet."""
    clock = {
        "patient": patient(id="clock-1", weight_kg={"value": 154, "unit": "lb"}, admission_time="2026-03-02T08:00",
                           note="transfer from ward 7"),
        "events": [
            {"time": "2026-03-02T09:30", "bloody_stools_24h": 8, "pulse_bpm": 104, "temp_c": {"value": 99.5, "unit": "°F"},
             "hb_g_dl": {"value": 105, "unit": "g/L"}, "crp_mg_l": {"value": 6.0, "unit": "mg/dL"}, "note": "ED"},
            {"time": "2026-03-05T10:00", "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 70,
             "albumin_g_l": {"value": 2.8, "unit": "g/dL"}},
            {"time": "2026-03-05T12:00", "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70,
             "active_serious_infection": False, "bp_uncontrolled": False, "note": "night team"},
            {"time": "2026-03-05T14:00", "crp_mg_l": 40},  # bare, in CRP's warn band: an input warning
        ],
    }
    return {
        "rescue": rescue("tacrolimus", *RESCUE_RESPONSE),
        "clock": clock,
        "admitted": {"patient": patient(id="adm-1"), "events": []},
        "steroids": {"patient": patient(id="st-1"), "events": [dict(ADMIT), dict(DAY3_FAIL), dict(RESCUE_LABS)]},
    }


def run(pw: Any, case: dict[str, Any]) -> Any:
    s = pw.start(copy.deepcopy(case["patient"]))
    for event in case["events"]:
        s.observe(copy.deepcopy(event))
    return s


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=True, default=repr)


# -- the mutator ----------------------------------------------------------------------------------------

Path = tuple[Any, ...]


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every path below ``value`` (containers and leaves), depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), item
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*path, i), item
            yield from walk(item, (*path, i))


def _parent(doc: Any, path: Path) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _set(doc: Any, path: Path, value: Any) -> None:
    _parent(doc, path)[path[-1]] = value


def _delete(doc: Any, path: Path) -> None:
    del _parent(doc, path)[path[-1]]


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


#: value edits: name -> new value from the old one (None: not applicable to this value)
EDITS: dict[str, Any] = {
    "null": lambda v: None,
    "text": lambda v: "x" if v != "x" else "y",
    "text-of": lambda v: json.dumps(v) if not isinstance(v, str) else None,
    "int": lambda v: 7,
    "float": lambda v: 7.5,
    "bool": lambda v: (not v) if isinstance(v, bool) else True,
    "list": lambda v: [],
    "dict": lambda v: {},
    "negative": lambda v: -5,
    "out-of-range": lambda v: 1_000_000,
    "past-day-cap": lambda v: 3651,
    "nan": lambda v: float("nan"),
    "inf": lambda v: float("inf"),
    "-inf": lambda v: float("-inf"),
    "huge-int": lambda v: 10**400,
    "huge-float": lambda v: 1e308,
    "long-text": lambda v: "x" * 100_000,
    "control-text": lambda v: "a\nb\x00c<script>",
    "nudge": lambda v: (v + 1 if isinstance(v, int) else v * 1.01 + 0.01)
    if isinstance(v, (int, float)) and not isinstance(v, bool) else None,
    "int-as-float": lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else None,
    "float-as-int": lambda v: int(v) if isinstance(v, float) and v.is_integer() else None,
}
#: container edits
SHAPES: dict[str, Any] = {
    "drop-last": lambda v: v[:-1] if isinstance(v, list) and v else None,
    "dup-last": lambda v: [*v, copy.deepcopy(v[-1])] if isinstance(v, list) and v else None,
    "reverse": lambda v: v[::-1] if isinstance(v, list) and len(v) > 1 and v != v[::-1] else None,
    "extra-key": lambda v: {**v, "zz_extra": 1} if isinstance(v, dict) else None,
}


def _edit(doc: dict[str, Any], path: Path, kind: str, states: list[str]) -> dict[str, Any] | None:
    """The document with one edit at ``path``; None when the edit does not apply."""
    out = copy.deepcopy(doc)
    if kind == "delete":
        _delete(out, path)
        return out
    old = _get(doc, path)
    if kind.startswith("state:"):
        if not isinstance(old, str) or old == kind[6:]:
            return None
        _set(out, path, kind[6:])
        return out
    fn = EDITS.get(kind) or SHAPES[kind]
    new = fn(old)
    if new is None and kind != "null":
        return None
    _set(out, path, new)
    return out


#: the edits every key of the patient and of each event gets (every edit goes to the top-level keys)
CORE = ("delete", "null", "text", "negative", "nan", "huge-int", "int-as-float", "float-as-int", "nudge", "bool")


def mutants(doc: dict[str, Any], states: list[str], rng: random.Random, budget: int,
            other_fingerprint: str | None = None, fixed: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """Tampered copies of ``doc``, each with one edit and a label naming it.

    ``fixed``: every top-level key deleted and given every edit (retyped, out of range, NaN, huge, long or
    control text, nudged...); every key of the patient and of each event given the core edits; the state,
    each step of the path and each move of the trace set to every other state; the fingerprint, checksum,
    profile, format, version and pathway edited. Then ``budget`` more, drawn at random among every path of
    the document (trace, evaluations, history, kept facts...) and every edit.
    """
    kinds = ["delete", *EDITS, *SHAPES]
    seen: set[str] = set()

    def emit(path: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        label = f"{kind} at {'/'.join(map(str, path))}"
        if label in seen:
            return
        seen.add(label)
        try:
            out = _edit(doc, path, kind, states)
        except (KeyError, IndexError, TypeError):
            return
        if out is not None:
            yield label, out

    paths = [p for p, _ in walk(doc)]
    if fixed:
        for path in [p for p in paths if len(p) == 1]:
            for kind in kinds:
                yield from emit(path, kind)
        for path in [p for p in paths if p[0] == "patient" and len(p) == 2 or p[0] == "events" and len(p) in (2, 3)]:
            for kind in CORE:
                yield from emit(path, kind)
        moves = [("trace", i, k) for i, t in enumerate(doc["trace"]) if "to" in t for k in ("to", "from")]
        for target in (("state",), *[("path", i) for i in range(len(doc["path"]))], *moves):
            for state in states:
                yield from emit(target, f"state:{state}")
        for key in ("fingerprint", "checksum"):
            value = doc.get(key)
            if isinstance(value, str) and value:
                flipped = copy.deepcopy(doc)
                flipped[key] = value[:-1] + ("0" if value[-1] != "0" else "1")
                yield f"one character of {key} changed", flipped
                upper = copy.deepcopy(doc)
                upper[key] = value.upper()
                if upper[key] != value:
                    yield f"{key} in capitals", upper
        if other_fingerprint is not None:
            other = copy.deepcopy(doc)
            other["fingerprint"] = other_fingerprint
            yield "fingerprint of another profile", other
            both = copy.deepcopy(other)
            both["profile"] = "nice"
            yield "fingerprint and profile of another profile", both
        for path, values in ((("profile",), ("nice", "tac_high_start", "default", None, "../nice", "")),
                             (("format",), (1, 2, 4, 0, "3", True, None, 3.0)),
                             (("version",), ("0.0.1", "", None, 1)),
                             (("pathway",), ("other", "ASUC", None))):
            for value in values:
                yield from emit_value(doc, path, value, seen)
    for _ in range(budget):
        path = rng.choice(paths)
        kind = rng.choice([*kinds, "state:" + rng.choice(states)])
        yield from emit(path, kind)


def emit_value(doc: dict[str, Any], path: Path, value: Any, seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    label = f"{value!r} at {'/'.join(map(str, path))}"
    if label in seen or _get(doc, path) == value and type(_get(doc, path)) is type(value):
        return
    seen.add(label)
    out = copy.deepcopy(doc)
    _set(out, path, value)
    yield label, out


def input_forgeries(doc: dict[str, Any], rng: random.Random, count: int, checksum: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Consistent edits of the recorded inputs: one value of the patient or an event changed and the checksum
    recomputed (a checksum is no signature). These may restore, but only to what the edited inputs give."""
    paths = [p for p, v in walk(doc) if p[0] in ("patient", "events") and not isinstance(v, (dict, list))]
    for _ in range(count):
        path = rng.choice(paths)
        kind = rng.choice(["nudge", "bool", "negative", "int", "text", "state:colectomy", "delete"])
        try:
            out = _edit(doc, path, kind, [])
        except (KeyError, IndexError, TypeError):
            continue
        if out is None:
            continue
        out["checksum"] = checksum(out["patient"], out["events"])
        yield f"{kind} at {'/'.join(map(str, path))} with the checksum recomputed", out


# -- writer processes -----------------------------------------------------------------------------------

def concurrent_writer(location: str, tag: str, patients: list[str], events: int, barrier: Any, out: Any) -> None:
    """load -> observe -> save, one event at a time over ``patients``; a conflict loads again and retries.
    The first event of every writer is on the same patient, loaded before the barrier and saved after
    it, so that exactly one of two writers must conflict. Puts (acknowledged notes, conflicts)."""
    from pathway import SessionConflict, SessionStore, load_pathway

    pw = load_pathway("asuc")
    store = SessionStore(location)  # a SQLite file or a postgresql:// URL
    acked: list[str] = []
    conflicts = 0
    first = True
    for k in range(events):
        pid = patients[k % len(patients)]
        note = f"{tag}-{k}"
        while True:
            session = store.load(pw, pid)
            if first:
                barrier.wait(timeout=120)
                first = False
            session.observe({"day": 1, "pulse_bpm": 60 + k % 40, "note": note})
            try:
                store.save(session)
            except SessionConflict:
                conflicts += 1
                continue
            acked.append(note)
            break
    store.close()
    out.put((tag, acked, conflicts))


def stream_writer(location: str, acks: str, patients: int, events: int) -> None:
    """Resume a stream after a crash: for each patient, load what is stored (or start it), apply the planned
    events that are not there yet, save after each, and acknowledge each saved event with one line
    appended to ``acks`` (written after the save returned)."""
    from pathway import SessionNotFound, SessionStore, load_pathway

    pw = load_pathway("asuc")
    store = SessionStore(location)  # a SQLite file or a postgresql:// URL
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for i in range(patients):
        pid = f"k{i}"
        try:
            session = store.load(pw, pid)
        except SessionNotFound:
            session = pw.start({"id": pid, "weight_kg": 60 + i})
        done = {e.get("note") for e in session.dump()["events"]}
        for j in range(events):
            note = f"{pid}-e{j}"
            if note in done:
                continue
            session.observe(planned_event(i, j))
            store.save(session)
            os.write(fd, f"{note}\n".encode())
    os.close(fd)
    store.close()


def planned_event(i: int, j: int) -> dict[str, Any]:
    """The j-th event of stream patient i (admission on day 0, then daily observations)."""
    note = f"k{i}-e{j}"
    if j == 0:
        return {**ADMIT, "bloody_stools_24h": 6 + i % 4, "note": note}
    return {"day": j, "stool_freq_24h": 3 + (i + j) % 6, "visible_blood": (i + j) % 2 == 0, "crp_mg_l": 10 + 7 * j,
            "note": note}


def wait_for_lines(path: str, count: int, timeout: float) -> int:
    """Wait until ``path`` has at least ``count`` complete lines (or the timeout); the number there."""
    deadline = time.monotonic() + timeout
    while True:
        n = len(read_acks(path))
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.005)


def read_acks(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return text.split("\n")[:-1]  # a line cut by a kill has no newline: not acknowledged
