"""An integrator's loop, end to end: a patient's events arrive from a feed (out of order, resent,
corrected), each is applied to the patient's stored session, and what changed is shown.

Run from the repository: python docs/examples/integrate.py [STORE]  (STORE: a SQLite file or a
postgresql:// URL; a temporary SQLite file by default).
"""

import json
import sys
import tempfile
from pathlib import Path

from pathway import InputError, SessionConflict, SessionNotFound, SessionStore, load_pathway

pw = load_pathway("asuc")  # once per process: the rules are read, checked and compiled once
location = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "sessions.db")

PATIENT = {"id": "mrn-204", "admission_time": "2026-03-02T08:00", "weight_kg": 68, "age_years": 41}
FEED = [  # as an interface engine delivers them: ids from the lab and the ward, a late result, a resend
    {"id": "ward-0", "time": "2026-03-02T09:00", "bloody_stools_24h": 8, "pulse_bpm": 98,
     "temp_c": 37.6, "hb_g_dl": 11.9, "crp_mg_l": {"value": 64, "unit": "mg/L"}, "albumin_g_l": 33},
    {"id": "ward-1", "time": "2026-03-03T09:00", "stool_freq_24h": 8, "visible_blood": True},
    {"id": "ward-3", "time": "2026-03-05T09:00", "stool_freq_24h": 6, "visible_blood": True},
    {"id": "ward-4", "time": "2026-03-06T09:00", "stool_freq_24h": 6, "visible_blood": True},
    {"id": "lab-881", "time": "2026-03-05T07:30", "crp_mg_l": {"value": 52, "unit": "mg/L"}},  # day-3 CRP, late
    {"id": "lab-881", "time": "2026-03-05T07:30", "crp_mg_l": {"value": 52, "unit": "mg/L"}},  # resent
]


def apply(store: SessionStore, event: dict) -> dict:
    """One event to the patient's stored session; a concurrent writer's save makes us load again."""
    while True:
        try:
            session = store.load(pw, PATIENT["id"])
        except SessionNotFound:
            session = pw.start(PATIENT)
        result = session.observe(event)
        try:
            store.save(session)
            return result
        except SessionConflict:
            continue  # someone saved this patient since we loaded: nothing was written, so redo on theirs


def show(result: dict) -> None:
    c = result["changes"]
    print(f"{c['operation']:>9} {str(c['id']):8} -> {result['state']}")
    for item in c["items"]:
        if item["section"] in ("state", "alerts", "proposals"):
            print(f"{'':19}{item['section']} {item['change']}: {item.get('text') or item.get('to')}")


with SessionStore(location) as store:
    for event in FEED:
        try:
            show(apply(store, event))
        except InputError as exc:  # refused, and nothing was applied or saved
            print("refused:", "; ".join(str(d) for d in exc.diagnostics))
    # the lab withdraws its result (the sample was another patient's): the course is evaluated again from day 3
    session = store.load(pw, PATIENT["id"])
    result = session.retract("lab-881", "sample belonged to another patient")
    store.save(session)
    show(result)
    final = store.load(pw, PATIENT["id"]).result()
    print(json.dumps({k: final[k] for k in ("state", "path")}, indent=None))
    print("needs:", [d["field"] for d in final["data_required"]])
