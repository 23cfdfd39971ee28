"""The PostgreSQL backend of :class:`SessionStore`, for a service with several worker processes.

    store = SessionStore("postgresql://app@db.example/pathway")     # or PostgresSessionStore(conninfo)

Same methods, errors and guarantees as the SQLite store (see :mod:`pathway.runtime.store`), with psycopg 3
(the ``postgres`` extra). Every statement runs in its own transaction (autocommit): a save is one
statement, so it is committed, or not at all, when it returns:

- a session loaded at revision r is saved by ``UPDATE ... WHERE pathway = %s AND patient_id = %s AND
  rev = r``: of two writers that loaded the same revision, the second waits for the first's row lock,
  then finds another revision and writes nothing (:class:`SessionConflict`);
- a session never stored is saved by ``INSERT ... ON CONFLICT DO NOTHING``: it never overwrites a row
  another writer created;
- revisions come from a sequence, which never goes back.

A lost connection is opened again before the next statement. A save whose connection was lost while it
was in flight is settled by reading the row back: saved (the row holds this very document), not saved
and tried once more (the row is still at the revision loaded: a save always changes it), or
:class:`StoreUnavailable` saying the outcome is unknown. Tables are created on first use (``schema``
version 1, recorded in ``pathway_store_meta``); a database whose store schema is newer than this
version knows is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathway.runtime.storebase import SessionStore, Stored, StoreUnavailable, Write

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresSessionStore", "SCHEMA_VERSION", "SCHEMA_SQL", "MIGRATE_1_TO_2"]

#: the version of the tables below; a later one migrates in place, under the same advisory lock
SCHEMA_VERSION = 2

#: the log rows after each session's snapshot (``seq`` 1 to the session's ``tail``; ``rev`` the save that wrote it)
_LOG_TABLE = """
CREATE TABLE IF NOT EXISTS pathway_session_log (
    pathway    text    NOT NULL,
    patient_id text    NOT NULL,
    seq        integer NOT NULL,
    rev        bigint  NOT NULL,
    body       text    NOT NULL,
    PRIMARY KEY (pathway, patient_id, seq)
);
"""

#: the store's tables, in the connection's schema (``search_path``; choose one with the DSN's
#: ``options=-csearch_path=NAME``); created on first use, or by a database administrator beforehand
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS pathway_sessions (
    pathway    text        NOT NULL,
    patient_id text        NOT NULL,
    version    text        NOT NULL,
    state      text        NOT NULL,
    events     integer     NOT NULL,
    doc        text        NOT NULL,
    rev        bigint      NOT NULL,
    saved_at   timestamptz NOT NULL DEFAULT now(),
    tail       integer     NOT NULL DEFAULT 0,
    chain      text,
    PRIMARY KEY (pathway, patient_id)
);
CREATE SEQUENCE IF NOT EXISTS pathway_session_rev AS bigint;
""" + _LOG_TABLE + """
CREATE TABLE IF NOT EXISTS pathway_store_meta (
    key   text   PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO pathway_store_meta (key, value) VALUES ('schema', 2) ON CONFLICT (key) DO NOTHING;
"""

#: from schema 1 (one document per row) to 2 (a snapshot and the log rows after it)
MIGRATE_1_TO_2 = """
ALTER TABLE pathway_sessions ADD COLUMN IF NOT EXISTS tail integer NOT NULL DEFAULT 0;
ALTER TABLE pathway_sessions ADD COLUMN IF NOT EXISTS chain text;
""" + _LOG_TABLE + """
UPDATE pathway_store_meta SET value = 2 WHERE key = 'schema';
"""

#: pg_advisory_xact_lock key taken while the tables are checked or created: worker processes starting
#: together do not race on CREATE TABLE
_LOCK_KEY = 0x70617468_77617931  # "pathway1"

# Each save is one statement (atomic in autocommit); a batch runs them in one transaction.
_INSERT = ("INSERT INTO pathway_sessions (pathway, patient_id, version, state, events, doc, tail, chain, rev) "
           "VALUES (%s, %s, %s, %s, %s, %s, 0, %s, nextval('pathway_session_rev')) "
           "ON CONFLICT (pathway, patient_id) DO NOTHING RETURNING rev")
_SNAPSHOT = ("WITH u AS (UPDATE pathway_sessions SET version = %s, state = %s, events = %s, doc = %s, tail = 0, "
             "chain = %s, rev = nextval('pathway_session_rev'), saved_at = now() "
             "WHERE pathway = %s AND patient_id = %s AND rev = %s RETURNING pathway, patient_id, rev), "
             "d AS (DELETE FROM pathway_session_log l USING u WHERE l.pathway = u.pathway AND l.patient_id = u.patient_id) "
             "SELECT rev FROM u")
_APPEND = ("WITH u AS (UPDATE pathway_sessions SET state = %s, events = %s, tail = %s, chain = %s, "
           "rev = nextval('pathway_session_rev'), saved_at = now() "
           "WHERE pathway = %s AND patient_id = %s AND rev = %s RETURNING pathway, patient_id, rev) "
           "INSERT INTO pathway_session_log (pathway, patient_id, seq, rev, body) "
           "SELECT u.pathway, u.patient_id, %s, u.rev, %s FROM u RETURNING rev")
#: the row, its log rows after the snapshot, as of one moment (one statement)
_SELECT = ("SELECT s.doc, s.rev, s.tail, s.chain, s.events, l.seq, l.body FROM pathway_sessions s "
           "LEFT JOIN pathway_session_log l ON l.pathway = s.pathway AND l.patient_id = s.patient_id "
           "WHERE s.pathway = %s AND s.patient_id = %s ORDER BY l.seq")


def _statement(w: Write) -> tuple[str, tuple[Any, ...]]:
    """The one statement of a write, with its parameters."""
    if not w.snapshot:
        return _APPEND, (w.state, w.events, w.tail, w.chain, w.pathway_id, w.patient_id, w.expected, w.tail, w.text)
    if w.expected is None:
        return _INSERT, (w.pathway_id, w.patient_id, w.version, w.state, w.events, w.text, w.chain)
    return _SNAPSHOT, (w.version, w.state, w.events, w.text, w.chain, w.pathway_id, w.patient_id, w.expected)


def _psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreUnavailable("a PostgreSQL session store needs psycopg 3: pip install 'asuc-pathway[postgres]'") from None


class PostgresSessionStore(SessionStore, prefixes=("postgresql://", "postgres://")):
    """Sessions in a PostgreSQL database: one connection per store (threads share it under a lock); open
    one store per worker process. ``conninfo`` is a ``postgresql://`` URL or a ``key=value`` string.
    psycopg is imported when the first such store opens."""

    def __init__(self, conninfo: str, *, connect_timeout: int = 10):
        _psycopg()  # said plainly when it is not installed
        import psycopg

        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._setup("postgresql")  # named after the database once connected
        with self._lock:
            conn = self._connection()
            self._name = conn.info.dbname or "postgresql"
            try:
                self._ensure_schema(conn)
            except psycopg.Error as exc:
                conn.close()
                raise self._unavailable("cannot create or read the store's tables", exc) from None
            except BaseException:
                conn.close()
                raise

    # -- connection ----------------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection, opened (again) when there is none or it was lost."""
        import psycopg

        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        try:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._connect_timeout,
                                         application_name="pathway-session-store")
        except psycopg.Error as exc:
            raise self._unavailable("cannot connect", exc) from None
        return self._conn

    def _lost(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def _unavailable(self, what: str, exc: BaseException, *, unknown: str = "") -> StoreUnavailable:
        detail = " ".join(str(exc).split())[:200]
        return StoreUnavailable(f"PostgreSQL session store '{self._name}': {what}: {detail}{unknown}")

    def _ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            row = conn.execute("SELECT to_regclass('pathway_store_meta') IS NOT NULL").fetchone()
            version = None
            if row is not None and row[0]:
                found = conn.execute("SELECT value FROM pathway_store_meta WHERE key = 'schema'").fetchone()
                version = None if found is None else int(found[0])
            if version is None:
                conn.execute(SCHEMA_SQL)
            elif version == 1:
                conn.execute(MIGRATE_1_TO_2)
            elif version > SCHEMA_VERSION:
                raise StoreUnavailable(f"PostgreSQL session store '{self._name}': the database holds store schema "
                                       f"{version}, newer than this version reads ({SCHEMA_VERSION}): upgrade "
                                       "asuc-pathway")

    def _query(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Rows of a statement that writes nothing: tried again once on a new connection when the
        connection was lost. Called under the lock."""
        import psycopg

        for attempt in (1, 2):
            try:
                return self._connection().execute(query, params).fetchall()
            except psycopg.OperationalError as exc:
                if attempt == 1 and self._lost():
                    continue
                raise self._unavailable("cannot read", exc) from None
            except psycopg.Error as exc:
                raise self._unavailable("cannot read", exc) from None
        raise AssertionError("unreachable")

    # -- the backend ---------------------------------------------------------------------------------------

    def _try_write(self, writes: list[Write]) -> list[int | None]:
        """The writes' statements (in one transaction when there are several): the new revisions, up to a
        None for the first write whose row was not at its ``expected`` revision (then nothing is written)."""
        conn = self._connection()
        if len(writes) == 1:
            row = conn.execute(*_statement(writes[0])).fetchone()
            return [None if row is None else int(row[0])]

        class _Moved(Exception):
            pass

        out: list[int | None] = []
        try:
            with conn.transaction():
                for w in writes:
                    row = conn.execute(*_statement(w)).fetchone()
                    out.append(None if row is None else int(row[0]))
                    if row is None:
                        raise _Moved  # rolls the whole batch back
        except _Moved:
            pass
        return out

    def _write(self, writes: list[Write]) -> list[int]:
        import psycopg

        first = writes[0]
        where = f"cannot save {self._row(first.pathway_id, first.patient_id)}" + (
            f" and {len(writes) - 1} more" if len(writes) > 1 else "")
        try:
            if self._lost():
                self._connection()  # a connection known to be lost is replaced before anything is sent
            revisions = self._try_write(writes)
        except psycopg.OperationalError as exc:
            if not self._lost():  # the statement failed (a timeout, a cancel): its transaction was rolled back
                raise self._unavailable(where, exc, unknown="; nothing was saved") from None
            revisions = self._settle(writes, where, exc)
        except psycopg.Error as exc:
            raise self._unavailable(where, exc, unknown="; nothing was saved") from None
        if None in revisions:
            w = writes[revisions.index(None)]
            found = self._query("SELECT rev FROM pathway_sessions WHERE pathway = %s AND patient_id = %s",
                                (w.pathway_id, w.patient_id))
            raise self._conflict(w.pathway_id, w.patient_id, w.expected, int(found[0][0]) if found else None)
        return [int(r) for r in revisions if r is not None]

    def _settle(self, writes: list[Write], where: str, lost: BaseException) -> list[int | None]:
        """The connection was lost with the save in flight: read the rows back on a new connection."""
        import psycopg

        unknown = ("; whether this save was written is unknown: load the session again and look for the event "
                   "before applying it again")
        try:
            conn = self._connection()
            found = [conn.execute("SELECT doc, rev, chain, tail FROM pathway_sessions WHERE pathway = %s AND "
                                  "patient_id = %s", (w.pathway_id, w.patient_id)).fetchone() for w in writes]
        except psycopg.Error:
            raise self._unavailable(f"{where}: the connection was lost", lost, unknown=unknown) from None

        def written(w: Write, row: Any) -> bool:  # the row holds this very save (or the very same document)
            if row is None:
                return False
            return bool(row[0] == w.text) if w.snapshot else (row[2] == w.chain and int(row[3]) == w.tail)

        if all(written(w, row) for w, row in zip(writes, found, strict=True)):
            return [int(row[1]) for row in found if row is not None]
        pairs = list(zip(writes, found, strict=True))
        if all(w.expected is not None and row is not None and int(row[1]) == w.expected for w, row in pairs):
            try:  # still at the revisions loaded, and every save changes them: this one was not written
                return self._try_write(writes)
            except psycopg.Error as exc:
                raise self._unavailable(f"{where}: the connection was lost twice", exc, unknown=unknown) from None
        raise self._unavailable(f"{where}: the connection was lost and the row changed meanwhile", lost, unknown=unknown)

    def _read(self, pathway_id: str, patient_id: str) -> Stored | None:
        rows = self._query(_SELECT, (pathway_id, patient_id))
        if not rows:
            return None
        doc, rev, tail, chain, events = rows[0][:5]
        log = [(int(seq), str(body).encode("utf-8")) for *_head, seq, body in rows if seq is not None]
        return Stored(None if doc is None else str(doc).encode("utf-8"), int(rev), log, int(tail),
                      None if chain is None else str(chain), int(events))

    def delete(self, pathway_id: str, patient_id: str) -> bool:
        import psycopg

        with self._lock:
            try:
                cur = self._connection().execute(
                    "WITH d AS (DELETE FROM pathway_session_log WHERE pathway = %s AND patient_id = %s) "
                    "DELETE FROM pathway_sessions WHERE pathway = %s AND patient_id = %s",
                    (pathway_id, str(patient_id), pathway_id, str(patient_id)))
            except psycopg.Error as exc:
                raise self._unavailable(f"cannot delete {self._row(pathway_id, str(patient_id))}", exc,
                                        unknown="; load the session to see whether it is still there") from None
            self._forget(pathway_id, str(patient_id))
            return cur.rowcount > 0

    def patients(self, pathway_id: str) -> list[str]:
        with self._lock:
            rows = self._query('SELECT patient_id FROM pathway_sessions WHERE pathway = %s ORDER BY patient_id COLLATE "C"',
                               (pathway_id,))
        return [str(r[0]) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._query("SELECT count(*) FROM pathway_sessions", ())[0][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
