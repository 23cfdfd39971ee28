"""The session store's backends as the tests see them: SQLite always; PostgreSQL when
``PATHWAY_TEST_POSTGRES`` holds a DSN (``./dev test`` starts a throwaway server and sets it, with
``PATHWAY_REQUIRE_POSTGRES=1``: then a missing or unreachable server fails the tests instead of skipping).

Each test gets an empty store: a new SQLite file, or a new PostgreSQL schema (chosen by the DSN's
``search_path``), dropped afterwards. ``Backend.location`` is what ``SessionStore(location)`` opens, in
this process or in a writer process; the other methods reach the rows behind the store's back.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from pathway import SessionStore

POSTGRES = os.environ.get("PATHWAY_TEST_POSTGRES", "")
REQUIRED = os.environ.get("PATHWAY_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


class Backend:
    name: str
    location: str
    #: what the store's diagnostics call it: ``NAME[pathway/patient]``
    label: str

    def __init__(self) -> None:
        self._stores: list[SessionStore] = []

    def open(self) -> SessionStore:
        """A new store on this backend's database (another connection: another writer)."""
        store = SessionStore(self.location)
        self._stores.append(store)
        return store

    def close_all(self) -> None:
        for store in self._stores:
            store.close()

    def read_doc(self, patient_id: str) -> str:
        raise NotImplementedError

    def write_doc(self, patient_id: str, doc: str | bytes) -> None:
        """Overwrite the stored text of a row (bytes as they are, when the database can hold them)."""
        raise NotImplementedError

    def put_row(self, patient_id: str, version: str, state: str, events: int, doc: str | bytes) -> None:
        """Replace every row by one written behind the store's back (revision of a store that never saved it)."""
        raise NotImplementedError

    def integrity(self) -> str:
        """The database's own check of its files ('ok')."""
        raise NotImplementedError

    #: the backend's table names: the sessions and the log rows after each snapshot
    sessions_table = "sessions"
    log_table = "session_log"
    mark = "?"

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def tail(self, patient_id: str) -> int:
        """The number of log rows the session's row records after its snapshot."""
        m = self.mark
        return int(self._run(f"SELECT tail FROM {self.sessions_table} WHERE patient_id = {m}", (patient_id,))[0][0])

    def log(self, patient_id: str) -> list[tuple[int, str]]:
        """The log rows after the snapshot, in order: (number, text)."""
        m = self.mark
        rows = self._run(f"SELECT seq, body FROM {self.log_table} WHERE patient_id = {m} ORDER BY seq", (patient_id,))
        return [(int(n), str(b)) for n, b in rows]

    def edit_log(self, patient_id: str, seq: int, body: str | None) -> None:
        """Overwrite a log row's text behind the store's back (None: delete the row)."""
        m = self.mark
        if body is None:
            self._run(f"DELETE FROM {self.log_table} WHERE patient_id = {m} AND seq = {m}", (patient_id, seq))
        else:
            self._run(f"UPDATE {self.log_table} SET body = {m} WHERE patient_id = {m} AND seq = {m}", (body, patient_id, seq))

    def cleanup(self) -> None:
        self.close_all()


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, tmp_path: Path):
        super().__init__()
        self.path = tmp_path / "s.db"
        self.location = str(self.path)
        self.label = "s.db"

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.path)
        try:
            rows = con.execute(query, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def read_doc(self, patient_id: str) -> str:
        return str(self._run("SELECT doc FROM session_doc WHERE patient_id = ?", (patient_id,))[0][0])

    def write_doc(self, patient_id: str, doc: str | bytes) -> None:
        self._run("UPDATE session_doc SET doc = ? WHERE patient_id = ?", (doc, patient_id))

    def put_row(self, patient_id: str, version: str, state: str, events: int, doc: str | bytes) -> None:
        con = sqlite3.connect(self.path)
        con.execute("DELETE FROM sessions")
        con.execute("DELETE FROM session_doc")
        con.execute("INSERT INTO sessions (pathway, patient_id, version, state, events) VALUES (?, ?, ?, ?, ?)",
                    ("asuc", patient_id, version, state, events))
        con.execute("INSERT INTO session_doc (pathway, patient_id, doc) VALUES (?, ?, ?)", ("asuc", patient_id, doc))
        con.commit()
        con.close()

    def integrity(self) -> str:
        return str(self._run("PRAGMA integrity_check")[0][0])


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN (a URL) with ``options=-csearch_path=SCHEMA`` added to its query."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


class PostgresBackend(Backend):
    name = "postgresql"
    sessions_table = "pathway_sessions"
    log_table = "pathway_session_log"
    mark = "%s"

    def __init__(self) -> None:
        import psycopg

        super().__init__()
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.location = with_search_path(POSTGRES, self.schema)
        self.admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
        self.admin.execute(f"CREATE SCHEMA {self.schema}")
        self.admin.execute(f"SET search_path = {self.schema}")
        self.label = str(self.admin.info.dbname)

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.admin.execute(query.encode(), params)
        return cur.fetchall() if cur.description else []

    def read_doc(self, patient_id: str) -> str:
        return str(self._run("SELECT doc FROM pathway_sessions WHERE patient_id = %s", (patient_id,))[0][0])

    def write_doc(self, patient_id: str, doc: str | bytes) -> None:
        # bytes go in as they are and the database decides (it holds UTF-8 text only)
        value = "convert_from(%s, 'UTF8')" if isinstance(doc, bytes) else "%s"
        self._run(f"UPDATE pathway_sessions SET doc = {value} WHERE patient_id = %s", (doc, patient_id))

    def put_row(self, patient_id: str, version: str, state: str, events: int, doc: str | bytes) -> None:
        value = "convert_from(%s, 'UTF8')" if isinstance(doc, bytes) else "%s"
        with self.admin.transaction():
            self._run("DELETE FROM pathway_sessions")
            self._run("INSERT INTO pathway_sessions (pathway, patient_id, version, state, events, doc, rev) "
                      f"VALUES ('asuc', %s, %s, %s, %s, {value}, nextval('pathway_session_rev'))",
                      (patient_id, version, state, events, doc))

    def integrity(self) -> str:
        # every row readable as text: the database checks its pages' checksums as it reads them
        self._run("SELECT count(*), sum(length(doc)) FROM pathway_sessions")
        return "ok"

    def cleanup(self) -> None:
        super().cleanup()
        try:
            self.admin.execute("SET lock_timeout = '5s'")
            self.admin.execute(f"DROP SCHEMA {self.schema} CASCADE")
        finally:
            self.admin.close()


def postgres_or_skip() -> None:
    """Skip (or fail, when PostgreSQL is required) unless the test server is reachable."""
    if not POSTGRES:
        if REQUIRED:
            pytest.fail("PATHWAY_REQUIRE_POSTGRES=1 but PATHWAY_TEST_POSTGRES is not set")
        pytest.skip("PostgreSQL store tests: set PATHWAY_TEST_POSTGRES to a DSN (./dev test starts a server)")
    try:
        import psycopg
    except ImportError:
        if REQUIRED:
            pytest.fail("PATHWAY_REQUIRE_POSTGRES=1 but psycopg is not installed (the 'postgres' extra)")
        pytest.skip("PostgreSQL store tests: psycopg is not installed (the 'postgres' extra)")
    try:
        psycopg.connect(POSTGRES, connect_timeout=5).close()
    except psycopg.Error as exc:
        if REQUIRED:
            pytest.fail(f"PATHWAY_REQUIRE_POSTGRES=1 but the server of PATHWAY_TEST_POSTGRES is not reachable: {exc}")
        pytest.skip(f"PostgreSQL store tests: the server is not reachable: {exc}")


def make_backend(name: str, tmp_path: Path) -> Backend:
    if name == "sqlite":
        return SqliteBackend(tmp_path)
    postgres_or_skip()
    return PostgresBackend()


def saving_writer(location: str, patient_id: str, note: str, out: Any) -> None:
    """A writer process: load the patient, add one event and save; puts its connection's server process
    id before saving and "saved" after (the test may kill it while the save waits)."""
    from pathway import load_pathway

    pw = load_pathway("asuc")
    store = SessionStore(location)
    session = store.load(pw, patient_id)
    session.observe({"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80, "note": note})
    out.put(store._conn.info.backend_pid)
    store.save(session)
    out.put("saved")
    store.close()
