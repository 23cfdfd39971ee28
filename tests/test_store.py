"""The session store on each backend (SQLite always, PostgreSQL when PATHWAY_TEST_POSTGRES is set: see
tests/storebackends.py): the second of two writers gets a conflict and loses nothing, a new session never
overwrites a stored one, a corrupt or foreign row and a session of other rules are refused, and the
PostgreSQL store rides over a lost connection without saving anything twice or losing it silently."""

from __future__ import annotations

import getpass
import json
import multiprocessing
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from cases import ADMIT, DAY3_FAIL, patient
from storebackends import POSTGRES, Backend, make_backend, postgres_or_skip, saving_writer, with_search_path

import pathway
from pathway import SessionConflict, SessionError, SessionNotFound, SessionStore, StoreUnavailable, load_pathway
from pathway.runtime.store import PostgresSessionStore, SqliteSessionStore


def _stored(backend: Backend, pw: Any, patient_id: str = "p-1") -> SessionStore:
    store = backend.open()
    s = pw.start(patient(id=patient_id))
    s.observe(dict(ADMIT))
    store.save(s)
    return store


def _notes(session: Any) -> list[Any]:
    return [e.get("note") for e in session.dump()["events"]]


def test_the_location_chooses_the_backend_and_callers_see_one_class(backend, tmp_path):
    store = backend.open()
    assert isinstance(store, SessionStore)
    assert type(store).__name__ == {"sqlite": "SqliteSessionStore", "postgresql": "PostgresSessionStore"}[backend.name]
    with SessionStore() as memory:
        assert type(memory) is SqliteSessionStore and memory.count() == 0
    with SessionStore(tmp_path / "other.db") as other:  # a path, not a URL
        assert type(other) is SqliteSessionStore
    with SessionStore(path=str(tmp_path / "other.db")) as other:  # the keyword of earlier versions
        assert type(other) is SqliteSessionStore and other._name == "other.db"
    assert pathway.SessionStore is SessionStore and issubclass(PostgresSessionStore, SessionStore)
    assert pathway.StoreUnavailable is StoreUnavailable and issubclass(StoreUnavailable, pathway.PathwayError)


def test_the_second_of_two_writers_gets_a_conflict_and_loses_nothing(backend, pw):
    store = _stored(backend, pw)
    other = backend.open()  # another writer (another connection)
    a, b = store.load(pw, "p-1"), other.load(pw, "p-1")
    a.observe(dict(DAY3_FAIL, note="a"))
    b.observe({"day": 3, "pulse_bpm": 80, "note": "b"})
    store.save(a)
    with pytest.raises(SessionConflict) as info:
        other.save(b)
    d = info.value.diagnostics[0]
    assert d.code == "PW527" and d.file == f"{backend.label}[asuc/p-1]" and "nothing was saved" in d.message
    assert info.value.current is not None and info.value.expected is not None and info.value.current > info.value.expected
    assert _notes(other.load(pw, "p-1")) == [None, "a"]
    b = other.load(pw, "p-1")  # the second writer loads again and applies its event again
    b.observe({"day": 3, "pulse_bpm": 80, "note": "b"})
    other.save(b)
    assert _notes(store.load(pw, "p-1")) == [None, "a", "b"]


def test_a_new_session_never_overwrites_a_stored_one_and_a_deleted_one_is_not_resurrected(backend, pw):
    store = _stored(backend, pw)
    with pytest.raises(SessionConflict) as info:
        store.save(pw.start(patient()))  # the same patient started again
    assert info.value.expected is None and "already stored" in str(info.value)
    loaded = store.load(pw, "p-1")
    assert store.delete("asuc", "p-1") and not store.delete("asuc", "p-1")
    loaded.observe(dict(DAY3_FAIL))
    with pytest.raises(SessionConflict) as info:
        store.save(loaded)
    assert info.value.current is None and store.count() == 0
    with pytest.raises(SessionNotFound):
        store.load(pw, "p-1")


def test_revisions_never_repeat_after_a_row_is_deleted_and_created_again(backend, pw):
    store = _stored(backend, pw)
    old = store.load(pw, "p-1")
    store.delete("asuc", "p-1")
    _stored(backend, pw)  # created again by another writer
    old.observe(dict(DAY3_FAIL))
    with pytest.raises(SessionConflict) as info:
        store.save(old)  # loaded from the deleted row: its revision is not the new row's
    assert info.value.current is not None and info.value.expected is not None
    assert info.value.current > info.value.expected


def test_saving_the_same_session_again_needs_no_reload_and_lists_patients(backend, pw):
    store = backend.open()
    s = pw.start(patient())
    store.save(s)
    s.observe(dict(ADMIT))
    store.save(s)
    s.observe(dict(DAY3_FAIL))
    store.save(s)
    assert backend.open().load(pw, "p-1").state == s.state
    for pid in ("p-b", "p-a", "P-c"):
        store.save(pw.start(patient(id=pid)))
    assert store.patients("asuc") == ["P-c", "p-1", "p-a", "p-b"]  # by code point on both backends
    assert store.patients("other") == [] and store.count() == 4


@pytest.mark.parametrize("corrupt", ["truncated", "not utf-8", "nan", "a list", "empty"])
def test_a_corrupt_stored_row_raises_session_error_not_a_decode_error(backend, pw, corrupt):
    _stored(backend, pw)
    text = backend.read_doc("p-1")
    row = {"truncated": text[: len(text) // 2], "not utf-8": text.encode()[:10] + b"\xff\xfe" + text.encode()[12:],
           "nan": text.replace('"day": 0', '"day": NaN', 1), "a list": "[1, 2]", "empty": ""}[corrupt]
    if corrupt == "not utf-8" and backend.name == "postgresql":
        import psycopg

        with pytest.raises(psycopg.errors.CharacterNotInRepertoire):  # the database holds UTF-8 text only
            backend.write_doc("p-1", row)
        assert backend.open().load(pw, "p-1").state == "iv_steroids"
        return
    backend.write_doc("p-1", row)
    with pytest.raises(SessionError) as info:
        backend.open().load(pw, "p-1")
    assert info.value.diagnostics[0].code == "PW520" and info.value.diagnostics[0].file == f"{backend.label}[asuc/p-1]"


def test_a_row_holding_another_patients_document_is_refused(backend, pw):
    store = _stored(backend, pw)
    other = pw.start(patient(id="p-2"))
    backend.write_doc("p-1", json.dumps(other.dump()))
    with pytest.raises(SessionError) as info:
        store.load(pw, "p-1")
    assert info.value.diagnostics[0].code == "PW526"


def test_a_row_tampered_after_this_store_saved_it_is_still_verified(backend, pw):
    store = _stored(backend, pw)
    evaluations = pw.engine.evaluations
    assert store.load(pw, "p-1").state == "iv_steroids"
    assert pw.engine.evaluations == evaluations  # the text this store wrote itself is not replayed again
    doc = json.loads(backend.read_doc("p-1"))
    doc["state"] = "colectomy"
    backend.write_doc("p-1", json.dumps(doc))
    with pytest.raises(SessionError) as info:
        store.load(pw, "p-1")
    assert (info.value.diagnostics[0].file, info.value.diagnostics[0].code) == ("state", "PW525")


def test_a_session_saved_under_other_rules_is_refused_on_load(backend, pw):
    nice = load_pathway("asuc", profile="nice")
    store = backend.open()
    s = nice.start(patient())
    s.observe(dict(ADMIT))
    store.save(s)
    assert backend.open().load(nice, "p-1").state == "iv_steroids"  # under its own rules it restores
    for other in (pw, load_pathway("asuc", parameters={"tac_start_mg_kg_day": 0.1})):
        with pytest.raises(SessionError) as info:
            backend.open().load(other, "p-1")
        assert info.value.diagnostics[0].code == "PW523"
        assert info.value.diagnostics[0].file in ("profile", "fingerprint")


def test_writers_in_threads_serialise_and_lose_no_acknowledged_event(backend, pw):
    """Four threads, each with its own store (connection), add events to one patient by load -> observe ->
    save, loading again on a conflict: every acknowledged event is stored once."""
    _stored(backend, pw)
    acked: list[str] = []
    conflicts = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(tag: str) -> None:
        try:
            store = backend.open()
            for k in range(3):
                note = f"{tag}{k}"
                while True:
                    session = store.load(pw, "p-1")
                    session.observe({"day": 1, "pulse_bpm": 70 + k, "note": note})
                    try:
                        store.save(session)
                    except SessionConflict:
                        with lock:
                            conflicts[0] += 1
                        continue
                    with lock:
                        acked.append(note)
                    break
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    stored = _notes(backend.open().load(pw, "p-1"))
    assert stored[0] is None and sorted(stored[1:]) == sorted(acked) and len(acked) == 12


def test_without_psycopg_sqlite_works_and_a_postgresql_store_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['psycopg'] = None\n"  # as if the postgres extra were not installed
            "from pathway import SessionStore, StoreUnavailable\n"
            f"with SessionStore({str(tmp_path / 'x.db')!r}) as store: print(store.count())\n"
            "try: SessionStore('postgresql://nobody@/db')\n"
            "except StoreUnavailable as exc: print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["0", "a PostgreSQL session store needs psycopg 3: pip install 'asuc-pathway[postgres]'"]


# -- PostgreSQL only -----------------------------------------------------------------------------------

@pytest.fixture
def pg(tmp_path) -> Any:
    b = make_backend("postgresql", tmp_path)
    yield b
    b.cleanup()


def test_an_unreachable_server_is_store_unavailable(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(StoreUnavailable) as info:
        SessionStore(f"postgresql://nobody@/pathway?host={tmp_path}&port=1&connect_timeout=2")
    assert "cannot connect" in str(info.value) and isinstance(info.value, pathway.PathwayError)


def test_workers_starting_together_create_the_tables_once(pg, pw):
    stores: list[SessionStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(pg.open())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(stores) == 4
    assert pg._run("SELECT key, value FROM pathway_store_meta") == [("schema", 2)]


def test_a_store_schema_newer_than_this_version_is_refused(pg):
    pg.open()
    pg._run("UPDATE pathway_store_meta SET value = 3 WHERE key = 'schema'")
    with pytest.raises(StoreUnavailable) as info:
        pg.open()
    assert "store schema 3, newer than this version reads (2)" in str(info.value)


def test_a_connection_lost_between_calls_is_opened_again(pg, pw):
    store = _stored(pg, pw)
    session = store.load(pw, "p-1")
    pid = _server_pid(store)
    assert pg._run("SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    session.observe(dict(DAY3_FAIL, note="after"))
    store.save(session)  # the save finds the connection dead, opens another and writes once
    assert _server_pid(store) != pid
    assert _notes(store.load(pw, "p-1")) == [None, "after"]
    assert pg._run("SELECT pg_terminate_backend(%s)", (_server_pid(store),)) == [(True,)]
    assert store.patients("asuc") == ["p-1"]  # a read is tried again on a new connection


def test_a_save_in_flight_when_its_connection_is_lost_is_settled_by_reading_the_row(pg, pw):
    """The save waits on a row lock; its server process is killed; the store reads the row back on a new
    connection, finds it still at the revision loaded (so the save was not written) and saves once."""
    import psycopg

    store = _stored(pg, pw)
    session = store.load(pw, "p-1")
    session.observe(dict(DAY3_FAIL, note="in flight"))
    pid = _server_pid(store)
    holder = psycopg.connect(pg.location)
    holder.execute("SELECT 1 FROM pathway_sessions WHERE patient_id = 'p-1' FOR UPDATE")  # opens a transaction
    done: list[BaseException | None] = []
    saver = threading.Thread(target=lambda: done.append(_try(store.save, session)))
    saver.start()
    _wait_for(lambda: pg._run("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)) == [("Lock",)])
    pg._run("SELECT pg_terminate_backend(%s)", (pid,))
    # the store reconnects, reads the row and saves again: it waits on the lock once more
    _wait_for(lambda: _server_pid(store) != pid and pg._run(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (_server_pid(store),)) == [("Lock",)])
    holder.rollback()
    holder.close()
    saver.join(timeout=30)
    assert done == [None]
    assert _notes(pg.open().load(pw, "p-1")) == [None, "in flight"]


def test_a_save_whose_answer_was_lost_is_known_saved_or_said_unknown(pg, pw, monkeypatch):
    import psycopg

    store = _stored(pg, pw)
    real = store._try_write

    def written_then_lost(writes: Any, *, meanwhile: Any = None) -> Any:
        real(writes)
        if meanwhile is not None:
            meanwhile()
        store._conn.close()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    # the answer was lost, and the row holds this very document: saved
    session = store.load(pw, "p-1")
    session.observe(dict(DAY3_FAIL, note="once"))
    monkeypatch.setattr(store, "_try_write", written_then_lost)
    store.save(session)
    monkeypatch.undo()
    assert _notes(pg.open().load(pw, "p-1")) == [None, "once"]
    session.observe({"day": 4, "pulse_bpm": 80, "note": "next"})
    store.save(session)  # the revision the settled save returned is the row's: no conflict

    # the answer was lost and another writer saved on top meanwhile: unknown, said so, nothing overwritten
    other = pg.open()

    def another_writer() -> None:
        s = other.load(pw, "p-1")
        s.observe({"day": 5, "pulse_bpm": 81, "note": "other"})
        other.save(s)

    session.observe({"day": 5, "pulse_bpm": 82, "note": "lost"})
    monkeypatch.setattr(store, "_try_write", lambda w: written_then_lost(w, meanwhile=another_writer))
    with pytest.raises(StoreUnavailable) as info:
        store.save(session)
    monkeypatch.undo()
    assert "whether this save was written is unknown" in str(info.value)
    assert _notes(pg.open().load(pw, "p-1")) == [None, "once", "next", "lost", "other"]


def test_the_dsn_may_choose_a_schema_and_the_url_keeps_no_password_in_messages(pg, pw):
    parts = urlsplit(POSTGRES)
    secret = parts.password or "s3cret"  # the server of ./dev test trusts its socket: any password passes
    if parts.password is None:
        parts = parts._replace(netloc=parts.netloc.replace("@", f":{secret}@", 1) if "@" in parts.netloc
                               else f"{getpass.getuser()}:{secret}@{parts.netloc}")
    store = SessionStore(with_search_path(urlunsplit(parts), pg.schema))
    try:
        s = pw.start(patient())
        store.save(s)
        with pytest.raises(SessionConflict) as info:
            store.save(pw.start(patient()))
        assert secret not in str(info.value) and str(info.value).startswith(f"{pg.label}[asuc/p-1]")
        assert pg._run("SELECT count(*) FROM pathway_sessions") == [(1,)]
    finally:
        store.close()


def test_a_writer_killed_while_its_save_is_in_flight_leaves_the_row_whole(pg, pw):
    """kill -9 of a writer process whose save waits on a row lock, mid-statement: the row is then either as
    it was or holds the whole save (never torn, never a half-written document), and every later writer
    works on it."""
    import psycopg

    store = _stored(pg, pw)
    holder = psycopg.connect(pg.location)
    holder.execute("SELECT 1 FROM pathway_sessions WHERE patient_id = 'p-1' FOR UPDATE")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    writer = ctx.Process(target=saving_writer, args=(pg.location, "p-1", "killed", out))
    writer.start()
    pid = out.get(timeout=120)
    _wait_for(lambda: pg._run("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)) == [("Lock",)])
    writer.kill()
    writer.join(timeout=30)
    assert writer.exitcode == -9 and out.empty()  # killed before its save returned: never acknowledged
    holder.rollback()
    holder.close()
    _wait_for(lambda: pg._run("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == [(0,)])
    notes = _notes(pg.open().load(pw, "p-1"))  # restores: the document is whole
    assert notes in ([None], [None, "killed"])
    session = store.load(pw, "p-1")
    session.observe({"day": 4, "pulse_bpm": 80, "note": "after"})
    store.save(session)
    assert _notes(pg.open().load(pw, "p-1")) == [*notes, "after"]


def test_a_role_with_only_the_documented_privileges_can_use_tables_made_beforehand(pg, pw):
    """A database administrator creates the tables (SCHEMA_SQL); the service's role gets only the grants
    docs/sessions.md lists, and its stores open, save, conflict, load and delete."""
    from pathway.runtime.pgstore import SCHEMA_SQL

    if not pg._run("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")[0][0]:
        pytest.skip("the test server's user cannot create roles")
    role = f"svc_{pg.schema}"
    pg._run(SCHEMA_SQL)
    pg._run(f"CREATE ROLE {role} LOGIN PASSWORD 'svc-secret'")
    try:
        pg._run(f"GRANT USAGE ON SCHEMA {pg.schema} TO {role}")
        pg._run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON pathway_sessions, pathway_session_log TO {role}")
        pg._run(f"GRANT SELECT ON pathway_store_meta TO {role}")
        pg._run(f"GRANT USAGE ON SEQUENCE pathway_session_rev TO {role}")
        parts = urlsplit(pg.location)
        host = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit(parts._replace(netloc=f"{role}:svc-secret@{host}"))
        with SessionStore(url) as a, SessionStore(url) as b:
            s = pw.start(patient())
            s.observe(dict(ADMIT))
            a.save(s)
            first, second = a.load(pw, "p-1"), b.load(pw, "p-1")
            first.observe(dict(DAY3_FAIL, note="a"))
            a.save(first)
            second.observe(dict(DAY3_FAIL, note="b"))
            with pytest.raises(SessionConflict):
                b.save(second)
            assert _notes(b.load(pw, "p-1")) == [None, "a"] and b.patients("asuc") == ["p-1"]
            assert a.delete("asuc", "p-1") and b.count() == 0
        pg._run(f"REVOKE USAGE ON SEQUENCE pathway_session_rev FROM {role}")  # one grant short: said, not hidden
        with SessionStore(url) as a:
            with pytest.raises(StoreUnavailable) as info:
                a.save(pw.start(patient()))
            assert "permission denied" in str(info.value) and "nothing was saved" in str(info.value)
    finally:
        pg._run(f"DROP OWNED BY {role}")
        pg._run(f"DROP ROLE {role}")


def _server_pid(store: Any) -> int:
    """The server process of the store's connection (-1 while it has none)."""
    conn = store._conn
    return -1 if conn is None or conn.closed or conn.broken else int(conn.info.backend_pid)


def _try(fn: Any, *args: Any) -> BaseException | None:
    try:
        fn(*args)
    except BaseException as exc:  # returned to the test
        return exc
    return None


def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_postgres_is_required_when_dev_test_says_so(monkeypatch):
    """./dev test sets PATHWAY_REQUIRE_POSTGRES=1: a missing server then fails the suite, not skips it."""
    import storebackends

    monkeypatch.setattr(storebackends, "POSTGRES", "")
    monkeypatch.setattr(storebackends, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match="PATHWAY_TEST_POSTGRES is not set"):
        postgres_or_skip()
    monkeypatch.setattr(storebackends, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception):
        postgres_or_skip()
