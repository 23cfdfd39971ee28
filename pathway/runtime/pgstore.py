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

from pathway.runtime.storebase import SessionStore, StoreUnavailable

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresSessionStore", "SCHEMA_VERSION", "SCHEMA_SQL"]

#: the version of the tables below; a later one migrates in place, under the same advisory lock
SCHEMA_VERSION = 1

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
    PRIMARY KEY (pathway, patient_id)
);
CREATE SEQUENCE IF NOT EXISTS pathway_session_rev AS bigint;
CREATE TABLE IF NOT EXISTS pathway_store_meta (
    key   text   PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO pathway_store_meta (key, value) VALUES ('schema', 1) ON CONFLICT (key) DO NOTHING;
"""

#: pg_advisory_xact_lock key taken while the tables are checked or created: worker processes starting
#: together do not race on CREATE TABLE
_LOCK_KEY = 0x70617468_77617931  # "pathway1"

_INSERT = ("INSERT INTO pathway_sessions (pathway, patient_id, version, state, events, doc, rev) "
           "VALUES (%s, %s, %s, %s, %s, %s, nextval('pathway_session_rev')) "
           "ON CONFLICT (pathway, patient_id) DO NOTHING RETURNING rev")
_UPDATE = ("UPDATE pathway_sessions SET version = %s, state = %s, events = %s, doc = %s, "
           "rev = nextval('pathway_session_rev'), saved_at = now() "
           "WHERE pathway = %s AND patient_id = %s AND rev = %s RETURNING rev")
_SELECT = "SELECT doc, rev FROM pathway_sessions WHERE pathway = %s AND patient_id = %s"


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

    def _try_write(self, params: tuple[Any, ...], expected: int | None) -> int | None:
        """One conditional write: the new revision, or None when the row was not at ``expected``."""
        query = _INSERT if expected is None else _UPDATE
        row = self._connection().execute(query, params).fetchone()
        return None if row is None else int(row[0])

    def _write(self, pathway_id: str, patient_id: str, expected: int | None, doc: dict[str, Any], text: str) -> int:
        import psycopg

        meta = (str(doc["version"]), str(doc["state"]), len(doc["events"]), text)
        params = ((pathway_id, patient_id, *meta) if expected is None else (*meta, pathway_id, patient_id, expected))
        where = f"cannot save {self._row(pathway_id, patient_id)}"
        try:
            if self._lost():
                self._connection()  # a connection known to be lost is replaced before anything is sent
            revision = self._try_write(params, expected)
        except psycopg.OperationalError as exc:
            if not self._lost():  # the statement failed (a timeout, a cancel): its transaction was rolled back
                raise self._unavailable(where, exc, unknown="; nothing was saved") from None
            revision = self._settle(pathway_id, patient_id, expected, text, params, where, exc)
        except psycopg.Error as exc:
            raise self._unavailable(where, exc, unknown="; nothing was saved") from None
        if revision is None:
            found = self._query(_SELECT, (pathway_id, patient_id))
            raise self._conflict(pathway_id, patient_id, expected, int(found[0][1]) if found else None)
        return revision

    def _settle(self, pathway_id: str, patient_id: str, expected: int | None, text: str, params: tuple[Any, ...],
                where: str, lost: BaseException) -> int | None:
        """The connection was lost with the save in flight: read the row back on a new connection."""
        import psycopg

        unknown = ("; whether this save was written is unknown: load the session again and look for the event "
                   "before applying it again")
        try:
            found = self._connection().execute(_SELECT, (pathway_id, patient_id)).fetchall()
        except psycopg.Error:
            raise self._unavailable(f"{where}: the connection was lost", lost, unknown=unknown) from None
        if found and found[0][0] == text:
            return int(found[0][1])  # written (or the very same document was: the same session)
        if expected is not None and found and int(found[0][1]) == expected:
            try:  # still at the revision loaded, and every save changes it: this one was not written
                return self._try_write(params, expected)
            except psycopg.Error as exc:
                raise self._unavailable(f"{where}: the connection was lost twice", exc, unknown=unknown) from None
        raise self._unavailable(f"{where}: the connection was lost and the row changed meanwhile", lost, unknown=unknown)

    def _read(self, pathway_id: str, patient_id: str) -> tuple[bytes | None, int] | None:
        rows = self._query(_SELECT, (pathway_id, patient_id))
        if not rows:
            return None
        doc, rev = rows[0]
        return (None if doc is None else str(doc).encode("utf-8")), int(rev)

    def delete(self, pathway_id: str, patient_id: str) -> bool:
        import psycopg

        with self._lock:
            try:
                cur = self._connection().execute("DELETE FROM pathway_sessions WHERE pathway = %s AND patient_id = %s",
                                                 (pathway_id, str(patient_id)))
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
