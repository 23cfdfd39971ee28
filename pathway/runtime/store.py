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

A row holds a snapshot (a whole document) and the log rows after it: a save whose session only grew
since this store last saved or loaded it appends a row of the new events and of what the session
shows; any other save, and every ``snapshot_every`` rows, writes the whole document again and drops
the log. A load restores the snapshot, applies the logged events again and checks that the session
shows what the last row recorded; the rows are numbered and chained by hashes from the snapshot's
checksum, so a lost, edited or moved row is refused. ``save_many`` saves a batch in one transaction.

Saving is conditional on the revision the session was loaded at (optimistic concurrency): every
save gives the row a new revision, taken from a counter of the database that never goes back (so a
row deleted and created again never repeats a revision), and a save whose session was loaded at
another revision than the row holds now, or that would create a row another writer created
meanwhile, raises :class:`SessionConflict` and writes nothing. Two processes doing load -> observe
-> save on the same patient therefore never lose an acknowledged event: the second writer is told
to load again. A row that is not a JSON session document, or that names another patient, raises
:class:`SessionError`; a document is restored with :meth:`Pathway.restore`, which verifies it by
replaying its events (a row whose text is byte-identical to one this store wrote or verified itself
is not replayed again: a hash of the text is kept per patient, and the last ``cache_sessions``
sessions saved are kept, so loading one of them again while its row is unchanged replays nothing).
"""

from __future__ import annotations

import os
import sqlite3

from pathway.runtime.pgstore import PostgresSessionStore
from pathway.runtime.storebase import SessionNotFound, SessionStore, Stored, StoreUnavailable, Write

__all__ = ["SessionStore", "SqliteSessionStore", "PostgresSessionStore", "SessionNotFound", "StoreUnavailable"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    pathway    TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    version    TEXT NOT NULL,
    state      TEXT NOT NULL,
    events     INTEGER NOT NULL,
    rev        INTEGER NOT NULL DEFAULT 0,
    tail       INTEGER NOT NULL DEFAULT 0,
    chain      TEXT,
    PRIMARY KEY (pathway, patient_id)
)
"""
#: each session's snapshot (its whole document), apart from the row an append updates: a row's pages are
#: written again whole on every update, and a snapshot is most of a session's bytes
_DOC = """
CREATE TABLE IF NOT EXISTS session_doc (
    pathway    TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (pathway, patient_id)
)
"""
#: the log rows after each session's snapshot: ``seq`` 1 to the session's ``tail``
_LOG = """
CREATE TABLE IF NOT EXISTS session_log (
    pathway    TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (pathway, patient_id, seq)
) WITHOUT ROWID
"""
#: the revision counter (one row, ``key = 'rev'``): the last revision given to any row
_META = "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
#: the columns of ``sessions`` that earlier versions may lack, with the value their rows take
_ADDED = {"rev": "0", "tail": "0", "chain": "NULL"}


class SqliteSessionStore(SessionStore, prefixes=("",)):
    """The embedded backend: one SQLite file (WAL), shared by the threads and processes that open it.

    Commits are made durable at WAL checkpoints (``synchronous=NORMAL``): a crash of the process loses
    nothing committed, a power cut or an operating-system crash may lose the last commits but never
    corrupts the file. ``durable=True`` syncs every commit to the disk (``synchronous=FULL``), about ten
    times slower on a disk that honours it."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, durable: bool = False):
        name = os.fspath(path)
        self._setup(os.path.basename(name) or name)
        self.durable = durable
        self._db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
                if "doc" in columns:  # a file of an earlier version: its documents move to their own table
                    self._move_documents(columns)
                self._db.execute(_SCHEMA)
                self._db.execute(_DOC)
                self._db.execute(_LOG)
                self._db.execute(_META)
                self._db.execute("INSERT OR IGNORE INTO store_meta (key, value) "
                                 "SELECT 'rev', COALESCE(MAX(rev), 0) FROM sessions")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _move_documents(self, columns: set[str]) -> None:
        """Give a file of an earlier version this version's tables (inside the opening transaction): the
        documents held in ``sessions`` move to ``session_doc``, and the columns it lacks take their defaults."""
        db = self._db
        db.execute("ALTER TABLE sessions RENAME TO sessions_before")
        db.execute(_SCHEMA)
        db.execute(_DOC)
        kept = ", ".join(column if column in columns else value for column, value in _ADDED.items())
        db.execute("INSERT INTO sessions (pathway, patient_id, version, state, events, rev, tail, chain) "
                   f"SELECT pathway, patient_id, version, state, events, {kept} FROM sessions_before")
        db.execute("INSERT INTO session_doc (pathway, patient_id, doc) SELECT pathway, patient_id, doc FROM sessions_before")
        db.execute("DROP TABLE sessions_before")

    def _write(self, writes: list[Write]) -> list[int]:
        db = self._db
        out = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for w in writes:
                key = (w.pathway_id, w.patient_id)
                row = db.execute("SELECT rev FROM sessions WHERE pathway = ? AND patient_id = ?", key).fetchone()
                current = None if row is None else int(row[0])
                if current != w.expected:
                    raise self._conflict(w.pathway_id, w.patient_id, w.expected, current)
                db.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'rev'")
                revision = int(db.execute("SELECT value FROM store_meta WHERE key = 'rev'").fetchone()[0])
                if not w.snapshot:
                    db.execute("INSERT INTO session_log (pathway, patient_id, seq, body) VALUES (?, ?, ?, ?)",
                               (*key, w.tail, w.text))
                    db.execute("UPDATE sessions SET state = ?, events = ?, rev = ?, tail = ?, chain = ? "
                               "WHERE pathway = ? AND patient_id = ?", (w.state, w.events, revision, w.tail, w.chain, *key))
                elif row is None:
                    db.execute("INSERT INTO sessions (version, state, events, rev, tail, chain, pathway, patient_id) "
                               "VALUES (?, ?, ?, ?, 0, ?, ?, ?)", (w.version, w.state, w.events, revision, w.chain, *key))
                    db.execute("INSERT OR REPLACE INTO session_doc (doc, pathway, patient_id) VALUES (?, ?, ?)",
                               (w.text, *key))
                else:
                    db.execute("UPDATE sessions SET version = ?, state = ?, events = ?, rev = ?, tail = 0, chain = ? "
                               "WHERE pathway = ? AND patient_id = ?", (w.version, w.state, w.events, revision, w.chain, *key))
                    db.execute("INSERT OR REPLACE INTO session_doc (doc, pathway, patient_id) VALUES (?, ?, ?)",
                               (w.text, *key))
                    db.execute("DELETE FROM session_log WHERE pathway = ? AND patient_id = ?", key)
                out.append(revision)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    def _read(self, pathway_id: str, patient_id: str) -> Stored | None:
        key = (pathway_id, patient_id)
        self._db.execute("BEGIN")  # the row and its log rows as of one moment
        try:
            row = self._db.execute("SELECT CAST(d.doc AS BLOB), s.rev, s.tail, s.chain, s.events FROM sessions s "
                                   "LEFT JOIN session_doc d ON d.pathway = s.pathway AND d.patient_id = s.patient_id "
                                   "WHERE s.pathway = ? AND s.patient_id = ?", key).fetchone()
            rows = [] if row is None else self._db.execute(
                "SELECT seq, CAST(body AS BLOB) FROM session_log WHERE pathway = ? AND patient_id = ? ORDER BY seq",
                key).fetchall()
        finally:
            self._db.execute("COMMIT")
        if row is None:
            return None
        return Stored(row[0], int(row[1]), [(int(n), b) for n, b in rows], int(row[2]), row[3], int(row[4]))

    def delete(self, pathway_id: str, patient_id: str) -> bool:
        key = (pathway_id, str(patient_id))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute("DELETE FROM sessions WHERE pathway = ? AND patient_id = ?", key)
                self._db.execute("DELETE FROM session_doc WHERE pathway = ? AND patient_id = ?", key)
                self._db.execute("DELETE FROM session_log WHERE pathway = ? AND patient_id = ?", key)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._forget(*key)
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
