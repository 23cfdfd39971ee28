"""The session store's log: a save that only adds events appends a row of them after the snapshot, a late,
amended or retracted event (or every ``snapshot_every`` rows) writes the whole document again, and a load
(snapshot + the logged events applied again) resumes byte-identical results and documents; a lost, edited
or reordered log row is refused, a batch is saved whole or not at all, and a session moved to other rules
is compared as it stood at its last save."""

from __future__ import annotations

import copy
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from cases import ADMIT, DAY3_FAIL, RESCUE_LABS, patient

from pathway import SessionConflict, SessionError, SessionStore, load_pathway

sys.path.insert(0, str(Path(__file__).parent))
from golden import scenarios  # noqa: E402


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    return _json(a.dump()) == _json(b.dump()) and _json(a.result()) == _json(b.result())


def test_a_save_that_adds_events_appends_a_row_and_the_snapshot_stays(backend, pw):
    store = backend.open()
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    store.save(s)
    snapshot = backend.read_doc("p-1")
    s.observe(dict(DAY3_FAIL, note="day 3"))
    store.save(s)
    s.observe({"day": 3, "pulse_bpm": 96, "id": "pulse-3"})
    s.observe({"day": 3, "pulse_bpm": 96, "id": "pulse-3"})  # the same id again: nothing new
    store.save(s)
    assert backend.read_doc("p-1") == snapshot and backend.tail("p-1") == 2
    rows = [json.loads(body) for _n, body in backend.log("p-1")]
    assert [[e.get("note") for e in row["events"]] for row in rows] == [["day 3"], [None]]
    assert rows[-1]["shown"]["state"] == s.state
    for reader in (store, backend.open()):  # the store that wrote it, and another (a replay)
        assert _same(reader.load(pw, "p-1"), s)


def test_a_late_amended_or_retracted_event_writes_the_whole_document_again(backend, pw):
    store = backend.open()
    s = pw.start(patient())
    s.observe(dict(ADMIT, id="admit"))
    store.save(s)
    s.observe(dict(DAY3_FAIL, id="d3"))
    store.save(s)
    assert backend.tail("p-1") == 1
    for change in (lambda: s.observe({"day": 2, "pulse_bpm": 88, "id": "late"}),
                   lambda: s.amend("late", {"day": 2, "pulse_bpm": 90}),
                   lambda: s.retract("late", "entered in error")):
        change()
        store.save(s)
        assert backend.tail("p-1") == 0 and backend.log("p-1") == []
        assert json.loads(backend.read_doc("p-1"))["revisions"] == s.dump()["revisions"]
        assert _same(backend.open().load(pw, "p-1"), s)
        s.observe({"day": 4 + len(s.dump()["revisions"]), "pulse_bpm": 80})  # and appends again after it
        store.save(s)
        assert backend.tail("p-1") == 1 and _same(backend.open().load(pw, "p-1"), s)


def test_every_snapshot_every_rows_the_whole_document_is_written(backend, pw):
    store = backend.open()
    store.snapshot_every = 3
    s = pw.start(patient())
    store.save(s)
    tails = []
    for day in range(7):
        s.observe({"day": day, "pulse_bpm": 90 + day})
        store.save(s)
        tails.append(backend.tail("p-1"))
    assert tails == [1, 2, 3, 0, 1, 2, 3]
    assert json.loads(backend.read_doc("p-1"))["events"] == s.dump()["events"][:4]
    assert _same(backend.open().load(pw, "p-1"), s)


def test_a_loaded_session_appends_on_its_next_save_and_a_second_writer_still_conflicts(backend, pw):
    first = backend.open()
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    first.save(s)
    a, b = first.load(pw, "p-1"), backend.open().load(pw, "p-1")
    a.observe(dict(DAY3_FAIL, note="a"))
    first.save(a)
    b.observe(dict(DAY3_FAIL, note="b"))
    other = backend.open()
    b2 = other.load(pw, "p-1")  # loaded after a's append: appends on top of it
    b2.observe({"day": 4, "pulse_bpm": 80, "note": "b2"})
    other.save(b2)
    assert backend.tail("p-1") == 2
    with pytest.raises(SessionConflict):
        backend.open().save(b)  # never saved by that store: a new row, and one is stored
    assert [e.get("note") for e in backend.open().load(pw, "p-1").dump()["events"]] == [None, "a", "b2"]


@pytest.mark.parametrize("damage", ["edited", "lost", "swapped", "not json", "another event", "edited, chain gone"])
def test_a_damaged_log_row_is_refused_on_load(backend, pw, damage):
    store = backend.open()
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    store.save(s)
    for event in (dict(DAY3_FAIL), {"day": 4, "pulse_bpm": 80}):
        s.observe(event)
        store.save(s)
    (n1, one), (n2, two) = backend.log("p-1")
    if damage == "edited":
        backend.edit_log("p-1", 1, one.replace('"crp_mg_l":80', '"crp_mg_l":8'))
    elif damage == "lost":
        backend.edit_log("p-1", 1, None)
    elif damage == "swapped":
        backend.edit_log("p-1", 1, two)
        backend.edit_log("p-1", 2, one)
    elif damage == "not json":
        backend.edit_log("p-1", 2, two[:-5])
    elif damage == "edited, chain gone":  # a row of a version before the log has no chain, and no log rows either
        backend.edit_log("p-1", 1, one.replace('"crp_mg_l":80', '"crp_mg_l":8'))
        backend._run(f"UPDATE {backend.sessions_table} SET chain = NULL", ())
    else:  # the row and its chain rewritten together: the events then do not give what was shown
        from pathway.runtime.storebase import link

        doc = json.loads(backend.read_doc("p-1"))
        row = json.loads(one)
        row["events"][0].update(stool_freq_24h=2, visible_blood=False, crp_mg_l=5)  # a response, not a failure
        text = json.dumps(row)
        backend.edit_log("p-1", 1, text)
        chain = link(link(doc["checksum"], text.encode()), two.encode())
        backend._run(f"UPDATE {backend.sessions_table} SET chain = {backend.mark}", (chain,))
    for reader in (store, backend.open()):
        with pytest.raises(SessionError) as info:
            reader.load(pw, "p-1")
        d = info.value.diagnostics[0]
        if damage == "another event":
            assert d.code == "PW525" and d.file in ("state", "path", "current", "warnings")
        else:
            assert d.code == "PW520" and d.file == f"{backend.label}[asuc/p-1]" and "log" in d.message


def test_save_many_saves_every_session_or_none(backend, pw):
    store = backend.open()
    sessions = [pw.start(patient(id=f"p-{i}")) for i in range(3)]
    store.save_many(sessions)
    for s in sessions:
        s.observe(dict(ADMIT))
    store.save_many(sessions)
    assert [backend.tail(f"p-{i}") for i in range(3)] == [1, 1, 1]
    rival = backend.open()
    r = rival.load(pw, "p-1")
    r.observe(dict(DAY3_FAIL, note="rival"))
    rival.save(r)
    for s in sessions:
        s.observe(dict(DAY3_FAIL, note="batch"))
    with pytest.raises(SessionConflict) as info:
        store.save_many(sessions)
    assert "p-1" in str(info.value) and "nothing was saved" in str(info.value)
    loaded = [backend.open().load(pw, f"p-{i}") for i in range(3)]
    assert [[e.get("note") for e in x.dump()["events"]] for x in loaded] == [[None], [None, "rival"], [None]]
    with pytest.raises(ValueError):
        store.save_many([sessions[0], sessions[0]])
    store.save_many([sessions[0], sessions[2]])  # the others of the batch save once the conflict is left out
    assert [backend.tail(f"p-{i}") for i in (0, 2)] == [2, 2]


def test_a_session_moved_to_other_rules_is_compared_as_it_stood_at_its_last_save(backend):
    nice, default = load_pathway("asuc", profile="nice"), load_pathway("asuc")
    store = backend.open()
    s = nice.start(patient())
    s.observe(dict(ADMIT))
    store.save(s)  # the snapshot, at admission
    s.observe(dict(DAY3_FAIL))
    s.observe(dict(RESCUE_LABS))
    store.save(s)  # the rescue decision: in the log only
    assert backend.tail("p-1") == 1
    whole = default.restore(copy.deepcopy(s.dump()), replay=True)  # what a whole document gives
    moved = backend.open().load(default, "p-1", replay=True)
    assert moved.migration == whole.migration and moved.migration["events"] == 3
    assert _same(moved, whole)
    store2 = backend.open()
    again = store2.load(default, "p-1", replay=True)
    store2.save(again)  # moved: the whole document, under these rules
    assert backend.tail("p-1") == 0 and _same(backend.open().load(default, "p-1"), whole)


@pytest.mark.parametrize("profile", [None, "nice"])
def test_a_course_placed_out_of_arrival_order_resumes_in_that_order(backend, profile):
    """The order the events arrived in (a weight placed before a confirmation it arrived after: HAZ-049) is in the
    snapshot; an event appended after it is logged, and arrives last on load, also in a replay under other rules."""
    from cases import rescue
    pw, default = load_pathway("asuc", profile=profile), load_pathway("asuc")
    store = backend.open()
    s = pw.start(patient())
    for event in [*rescue("infliximab")["events"], {"day": 4, "weight_kg": 154}, {"day": 4.5, "weight_confirmed": True}]:
        s.observe(dict(event))
    store.save(s)
    s.observe({"day": 4.2, "weight_kg": 200})  # placed late: the whole document
    store.save(s)
    s.observe({"day": 5, "pulse_bpm": 80})  # appended: a log row
    store.save(s)
    assert backend.tail("p-1") == 1 and json.loads(backend.read_doc("p-1"))["arrived"] == [0, 1, 2, 3, 4, 6, 5]
    assert s.dump()["arrived"] == [0, 1, 2, 3, 4, 6, 5, 7]
    assert s.result()["computed"]["weight_to_confirm"]["value"] is True
    if profile is None:
        for reader in (store, backend.open()):
            assert _same(reader.load(pw, "p-1"), s)
        return
    whole = default.restore(copy.deepcopy(s.dump()), replay=True)
    moved = backend.open().load(default, "p-1", replay=True)
    assert moved.migration == whole.migration and _same(moved, whole)
    assert moved.dump()["arrived"] == [0, 1, 2, 3, 4, 6, 5, 7]
    assert moved.result()["computed"]["weight_to_confirm"]["value"] is True


def test_sqlite_commits_are_synced_at_checkpoints_unless_durable(tmp_path):
    for durable, level in ((False, 1), (True, 2)):
        with SessionStore(tmp_path / "s.db", durable=durable) as store:
            assert store._db.execute("PRAGMA synchronous").fetchone()[0] == level


def test_a_sqlite_file_of_the_previous_version_gains_the_log_and_its_rows_load(tmp_path, pw):
    path = tmp_path / "old.db"
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    doc = s.dump()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE sessions (pathway TEXT NOT NULL, patient_id TEXT NOT NULL, version TEXT NOT NULL, "
                "state TEXT NOT NULL, events INTEGER NOT NULL, doc TEXT NOT NULL, rev INTEGER NOT NULL DEFAULT 0, "
                "PRIMARY KEY (pathway, patient_id))")
    con.execute("INSERT INTO sessions VALUES ('asuc', 'p-1', ?, ?, 1, ?, 4)", (doc["version"], doc["state"], json.dumps(doc)))
    con.commit()
    con.close()
    with SessionStore(path) as store:
        loaded = store.load(pw, "p-1")
        assert _same(loaded, s)
        loaded.observe(dict(DAY3_FAIL))
        store.save(loaded)
    with SessionStore(path) as store:
        assert _same(store.load(pw, "p-1"), loaded)


def test_a_sqlite_file_that_kept_documents_beside_the_log_moves_them_to_their_own_table(tmp_path, pw):
    """A file of the version that held each snapshot in ``sessions`` (with log rows after it) opens with the
    documents in ``session_doc``, its rows, revisions and log unchanged, and its sessions load and save on."""
    path = tmp_path / "previous.db"
    with SessionStore(path) as store:
        s = pw.start(patient())
        s.observe(dict(ADMIT))
        store.save(s)
        s.observe(dict(DAY3_FAIL))
        store.save(s)  # a log row after the snapshot
    con = sqlite3.connect(path)
    doc, = con.execute("SELECT doc FROM session_doc").fetchone()
    header = con.execute("SELECT pathway, patient_id, version, state, events, rev, tail, chain FROM sessions").fetchall()
    log = con.execute("SELECT * FROM session_log").fetchall()
    # the previous shape: the document in the sessions row, no session_doc table
    con.execute("ALTER TABLE sessions ADD COLUMN doc TEXT NOT NULL DEFAULT ''")
    con.execute("UPDATE sessions SET doc = ?", (doc,))
    con.execute("DROP TABLE session_doc")
    con.commit()
    con.close()
    with SessionStore(path) as store:
        loaded = store.load(pw, "p-1")
        assert _same(loaded, s)
    con = sqlite3.connect(path)
    assert con.execute("SELECT doc FROM session_doc").fetchall() == [(doc,)]
    assert con.execute("SELECT pathway, patient_id, version, state, events, rev, tail, chain FROM sessions").fetchall() == header
    assert "doc" not in {row[1] for row in con.execute("PRAGMA table_info(sessions)")}
    assert con.execute("SELECT * FROM session_log").fetchall() == log
    con.close()
    with SessionStore(path) as store:
        loaded = store.load(pw, "p-1")
        loaded.observe(dict(RESCUE_LABS))
        store.save(loaded)
    with SessionStore(path) as other:
        assert _same(other.load(pw, "p-1"), loaded)


def test_every_scenario_saved_after_each_event_resumes_byte_identical(tmp_path):
    """Each scenario's course, saved after every event (a log row each, a snapshot every third), loads with
    the same dump and result as the session that was saved, by the store that wrote it and by another."""
    with SessionStore(tmp_path / "s.db") as writer:
        writer.snapshot_every = 3
        checked = _save_and_resume_every_scenario(writer, tmp_path / "s.db")
    assert checked > 400


def _save_and_resume_every_scenario(writer: Any, path: Path) -> int:
    cache: dict[Any, Any] = {}
    checked = 0
    for n, ls in enumerate(scenarios()):
        sc = ls.scenario
        k = (sc.profile, tuple(sorted(sc.parameters.items())))
        if k not in cache:
            cache[k] = load_pathway("asuc", profile=sc.profile, parameters=dict(sc.parameters) or None)
        pw = cache[k]
        try:
            s = pw.start(dict(copy.deepcopy(sc.case.patient), id=f"s{n}"))
        except Exception:  # a scenario of a refused patient
            continue
        writer.save(s)
        for event in sc.case.events:
            try:
                s.observe(copy.deepcopy(event))
            except Exception:  # a scenario of a refused event: the session is as it was
                break
            writer.save(s)
        with SessionStore(path) as reader:
            for store in (writer, reader):
                assert _same(store.load(pw, f"s{n}"), s), ls.scenario.id
        checked += 1
    return checked


def test_the_sessions_a_store_saved_load_from_memory_and_each_goes_its_own_way(backend, pw):
    store = backend.open()
    store.cache_sessions = 2
    saved = []
    for i in range(3):
        s = pw.start(patient(id=f"p-{i}"))
        s.observe(dict(ADMIT))
        store.save(s)
        s.observe(dict(DAY3_FAIL))
        store.save(s)
        saved.append(s)
    before = pw.engine.evaluations
    a, b = store.load(pw, "p-2"), store.load(pw, "p-2")
    assert pw.engine.evaluations == before and _same(a, saved[2]) and _same(b, saved[2])  # no replay
    a.observe({"day": 4, "pulse_bpm": 80, "note": "a"})
    assert _same(b, saved[2]) and _same(store.load(pw, "p-2"), saved[2])  # the others did not move
    store.save(a)
    assert [e.get("note") for e in store.load(pw, "p-2").dump()["events"]][-1] == "a"
    store.load(pw, "p-0")  # the least recently used (p-0) was dropped: read and replayed
    assert pw.engine.evaluations > before


def test_a_postgresql_store_of_schema_1_is_migrated_in_place_and_its_rows_load(tmp_path, pw):
    from storebackends import make_backend

    pg = make_backend("postgresql", tmp_path)
    try:
        s = pw.start(patient())
        s.observe(dict(ADMIT))
        doc = s.dump()
        pg._run("CREATE TABLE pathway_sessions (pathway text NOT NULL, patient_id text NOT NULL, version text NOT NULL, "
                "state text NOT NULL, events integer NOT NULL, doc text NOT NULL, rev bigint NOT NULL, "
                "saved_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pathway, patient_id))")
        pg._run("CREATE SEQUENCE pathway_session_rev AS bigint")
        pg._run("CREATE TABLE pathway_store_meta (key text PRIMARY KEY, value bigint NOT NULL)")
        pg._run("INSERT INTO pathway_store_meta VALUES ('schema', 1)")
        pg._run("INSERT INTO pathway_sessions (pathway, patient_id, version, state, events, doc, rev) "
                "VALUES ('asuc', 'p-1', %s, %s, 1, %s, nextval('pathway_session_rev'))",
                (doc["version"], doc["state"], json.dumps(doc)))
        store = pg.open()
        assert pg._run("SELECT value FROM pathway_store_meta WHERE key = 'schema'") == [(2,)]
        loaded = store.load(pw, "p-1")
        assert _same(loaded, s)
        loaded.observe(dict(DAY3_FAIL))
        store.save(loaded)
        assert pg.tail("p-1") == 1 and _same(pg.open().load(pw, "p-1"), loaded)
    finally:
        pg.cleanup()


def test_a_sqlite_row_whose_document_is_gone_is_refused_and_not_replaced(tmp_path, pw):
    path = tmp_path / "s.db"
    with SessionStore(path) as store:
        s = pw.start(patient())
        s.observe(dict(ADMIT))
        store.save(s)
    con = sqlite3.connect(path)
    con.execute("DELETE FROM session_doc")
    con.commit()
    con.close()
    with SessionStore(path) as store:
        with pytest.raises(SessionError, match=r"holds no document \[PW520\]"):
            store.load(pw, "p-1")
        with pytest.raises(SessionConflict):  # a new session of that patient does not overwrite the row
            store.save(pw.start(patient()))


def test_a_log_row_is_the_json_of_its_events_and_of_what_the_session_shows():
    """A log row's text is written from each firing record's JSON, kept once per process: the same bytes as the
    JSON of the whole row, after every event of the first 150 scenarios (records shared between sessions)."""
    from pathway.runtime.storebase import _ENCODE, row_text

    cache: dict[Any, Any] = {}
    rows = 0
    for n, ls in enumerate(list(scenarios())[:150]):
        sc = ls.scenario
        k = (sc.profile, tuple(sorted(sc.parameters.items())))
        if k not in cache:
            cache[k] = load_pathway("asuc", profile=sc.profile, parameters=dict(sc.parameters) or None)
        try:
            s = cache[k].start(dict(copy.deepcopy(sc.case.patient), id=f"s{n}"))
        except Exception:  # a scenario of a refused patient
            continue
        for event in sc.case.events:
            try:
                s.observe(copy.deepcopy(event))
            except Exception:  # a scenario of a refused event
                break
            added, shown = [event], s.shown_record()
            assert row_text(added, shown) == _ENCODE({"events": added, "shown": shown}), sc.id
            rows += 1
    assert rows > 300
    with pytest.raises(ValueError):  # what is not JSON is refused as before (the store says PW520)
        row_text([], {"state": "s", "path": [], "current": [{"score": float("nan")}], "warnings": []})
