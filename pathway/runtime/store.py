"""Persistence of patient sessions: one row per patient and pathway, in SQLite or PostgreSQL.

    store = SessionStore("sessions.db")                    # SQLite, embedded (the default)
    store = SessionStore("postgresql://app@db/pathway")    # PostgreSQL, shared by several worker processes
    store.save(session)
    session = store.load(pw, "p1")
    session.observe(event)
    store.save(session)            # SessionConflict if another writer saved p1 in between

Both backends are the same class to their callers (:class:`SessionStore`; the location chooses
:class:`SqliteSessionStore` or :class:`pathway.runtime.pgstore.PostgresSessionStore`) and keep the same
promises. Each save is one transaction; a session document is the JSON of :meth:`Session.dump`.

Saving is conditional on the revision the session was loaded at (optimistic concurrency): every
save gives the row a new revision, taken from a counter of the database that never goes back (so a
row deleted and created again never repeats a revision), and a save whose session was loaded at
another revision than the row holds now, or that would create a row another writer created
meanwhile, raises :class:`SessionConflict` and writes nothing. Two processes doing load -> observe
-> save on the same patient therefore never lose an acknowledged event: the second writer is told
to load again. A row that is not a JSON session document, or that names another patient, raises
:class:`SessionError`; a document is restored with :meth:`Pathway.restore`, which verifies it by
replaying its events (a row whose text is byte-identical to one this store wrote or verified itself
is not replayed again: a hash of the text is kept per patient).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from pathway.runtime.pgstore import PostgresSessionStore
from pathway.runtime.storebase import SessionNotFound, SessionStore, StoreUnavailable

__all__ = ["SessionStore", "SqliteSessionStore", "PostgresSessionStore", "SessionNotFound", "StoreUnavailable"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    pathway    TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    version    TEXT NOT NULL,
    state      TEXT NOT NULL,
    events     INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    rev        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pathway, patient_id)
)
"""
#: the revision counter (one row, ``key = 'rev'``): the last revision given to any row
_META = "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"


class SqliteSessionStore(SessionStore, prefixes=("",)):
    """The embedded backend: one SQLite file (WAL), shared by the threads and processes that open it."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:"):
        name = os.fspath(path)
        self._setup(os.path.basename(name) or name)
        self._db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
                if "rev" not in columns:  # a store written before saves were conditional
                    self._db.execute("ALTER TABLE sessions ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")
                self._db.execute(_META)
                self._db.execute("INSERT OR IGNORE INTO store_meta (key, value) "
                                 "SELECT 'rev', COALESCE(MAX(rev), 0) FROM sessions")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _write(self, pathway_id: str, patient_id: str, expected: int | None, doc: dict[str, Any], text: str) -> int:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT rev FROM sessions WHERE pathway = ? AND patient_id = ?",
                                   (pathway_id, patient_id)).fetchone()
            current = None if row is None else int(row[0])
            if current != expected:
                raise self._conflict(pathway_id, patient_id, expected, current)
            self._db.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'rev'")
            revision = int(self._db.execute("SELECT value FROM store_meta WHERE key = 'rev'").fetchone()[0])
            values = (doc["version"], doc["state"], len(doc["events"]), text, revision, pathway_id, patient_id)
            if row is None:
                self._db.execute("INSERT INTO sessions (version, state, events, doc, rev, pathway, patient_id) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", values)
            else:
                self._db.execute("UPDATE sessions SET version = ?, state = ?, events = ?, doc = ?, rev = ? "
                                 "WHERE pathway = ? AND patient_id = ?", values)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return revision

    def _read(self, pathway_id: str, patient_id: str) -> tuple[bytes | None, int] | None:
        row = self._db.execute("SELECT CAST(doc AS BLOB), rev FROM sessions WHERE pathway = ? AND patient_id = ?",
                               (pathway_id, patient_id)).fetchone()
        return None if row is None else (row[0], int(row[1]))

    def delete(self, pathway_id: str, patient_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM sessions WHERE pathway = ? AND patient_id = ?", (pathway_id, str(patient_id)))
            self._forget(pathway_id, str(patient_id))
        return cur.rowcount > 0

    def patients(self, pathway_id: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT patient_id FROM sessions WHERE pathway = ? ORDER BY patient_id", (pathway_id,))
            return [r[0] for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
