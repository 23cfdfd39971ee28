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

import hashlib
import json
import os
import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING, Any

from pathway.core.errors import Diagnostic, PathwayError, SessionConflict, SessionError
from pathway.runtime.restore import resume_verified

if TYPE_CHECKING:
    from typing import Self

    from pathway.runtime.api import Pathway
    from pathway.runtime.session import Session

__all__ = ["SessionStore", "SqliteSessionStore", "SessionNotFound", "StoreUnavailable", "is_postgres_url"]

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


class SessionNotFound(PathwayError):
    pass


class StoreUnavailable(PathwayError):
    """The store's database cannot be reached or used (the server is down, the connection was lost, or the
    database holds a store schema this version does not know). Nothing is known to be lost: the message says
    whether a save in flight may have been written, in which case load the session and look for the event."""


def is_postgres_url(location: object) -> bool:
    """Whether ``SessionStore(location)`` opens PostgreSQL: a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class SessionStore:
    """A store of open sessions, safe to share between threads, and between processes that open the same
    database (each save is conditional on the revision its session was loaded at).

    ``SessionStore(path)`` opens a SQLite file (``":memory:"`` by default) and
    ``SessionStore("postgresql://...")`` a PostgreSQL database: both are instances of this class, with the
    same methods, errors and guarantees."""

    #: what diagnostics call the store (the file or database name, never a password)
    _name: str

    def __new__(cls, location: str | os.PathLike[str] = ":memory:", *args: Any, **kwargs: Any) -> Self:
        if cls is SessionStore:
            if is_postgres_url(location):
                from pathway.runtime.pgstore import PostgresSessionStore
                return super().__new__(PostgresSessionStore)  # type: ignore[return-value]
            return super().__new__(SqliteSessionStore)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(self, location: str | os.PathLike[str] = ":memory:"):
        # only reached for a subclass that does not define __init__: the backends do
        raise TypeError(f"{type(self).__name__} is not a store backend")

    def _setup(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        #: session -> the revision of the row it was loaded from or last saved as (per store)
        self._revisions: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()
        #: (pathway, patient) -> (fingerprint, hash of the row's text) of the last row this store wrote or
        #: verified: loading that very text again skips the replay (it would give the same session)
        self._verified: dict[tuple[str, str], tuple[str, bytes]] = {}

    # -- what a backend provides -------------------------------------------------------------------------

    def _write(self, pathway_id: str, patient_id: str, expected: int | None, doc: dict[str, Any], text: str) -> int:
        """Write the row if it is still at revision ``expected`` (None: no row), in one transaction, and
        return its new revision; else raise :meth:`_conflict` and write nothing. Called under the lock."""
        raise NotImplementedError

    def _read(self, pathway_id: str, patient_id: str) -> tuple[bytes | None, int] | None:
        """The row's document as stored (bytes) and its revision, or None when there is no row. Called under
        the lock."""
        raise NotImplementedError

    def delete(self, pathway_id: str, patient_id: str) -> bool:
        """Delete the patient's row; whether there was one. A session loaded from it can no longer be saved."""
        raise NotImplementedError

    def patients(self, pathway_id: str) -> list[str]:
        """The patient ids stored for a pathway, sorted."""
        raise NotImplementedError

    def count(self) -> int:
        """The number of stored sessions, of every pathway."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- the same for every backend ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(self, pathway_id: str, patient_id: str) -> str:
        return f"{self._name}[{pathway_id}/{patient_id}]"

    def save(self, session: Session) -> None:
        """Store the session; SessionConflict (nothing saved) when the stored row is no longer the one
        this session was loaded from: another writer saved, created or deleted it meanwhile."""
        doc = session.dump()
        pathway_id, patient_id = str(doc["pathway"]), session.patient_id
        try:
            text = json.dumps(doc, sort_keys=True, ensure_ascii=False, allow_nan=False)
            data = text.encode("utf-8")  # a lone surrogate in a text value has no UTF-8 form
        except (TypeError, ValueError) as exc:
            raise SessionError([Diagnostic(self._row(pathway_id, patient_id), 0, 0, "PW520",
                                           f"the session is not JSON, so it cannot be stored: {exc}")]) from None
        with self._lock:
            revision = self._write(pathway_id, patient_id, self._revisions.get(session), doc, text)
            self._revisions[session] = revision
            self._verified[(pathway_id, patient_id)] = (str(doc["fingerprint"]), hashlib.sha256(data).digest())

    def _conflict(self, pathway_id: str, patient_id: str, expected: int | None, current: int | None) -> SessionConflict:
        if expected is None and current is None:
            why = (f"a session of patient '{patient_id}' was stored and deleted by another writer meanwhile: "
                   "load the stored session, if any, and apply the event to it")
        elif expected is None:
            why = (f"a session of patient '{patient_id}' is already stored (revision {current}) and this one was "
                   "not loaded from it: load the stored session and apply the event to it")
        elif current is None:
            why = (f"the session of patient '{patient_id}' was deleted since it was loaded (revision {expected}): "
                   "start it again deliberately")
        else:
            why = (f"the session of patient '{patient_id}' was saved by another writer since it was loaded (revision "
                   f"{expected}, now {current}): load it again, apply the event again and save")
        return SessionConflict([Diagnostic(self._row(pathway_id, patient_id), 0, 0, "PW527", f"save conflict: {why}; "
                                           "nothing was saved")], expected, current)

    def load(self, pathway: Pathway, patient_id: str) -> Session:
        """The stored session of a patient, verified by :meth:`Pathway.restore` (SessionError when it cannot
        be trusted, SessionNotFound when there is none)."""
        patient_id = str(patient_id)
        where = self._row(pathway.id, patient_id)
        with self._lock:
            row = self._read(pathway.id, patient_id)
        if row is None:
            raise SessionNotFound(f"no stored session for patient '{patient_id}' in pathway '{pathway.id}'")
        raw, revision = row
        try:
            if raw is None:
                raise ValueError("the row holds no document")
            data = bytes(raw)
            doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            reason = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
            raise SessionError([Diagnostic(where, 0, 0, "PW520", "the stored session is not a JSON document (truncated "
                                                                 f"or corrupt): {reason[:120]}")]) from None
        if not isinstance(doc, dict):
            raise SessionError([Diagnostic(where, 0, 0, "PW520", f"the stored session is JSON {type(doc).__name__}, "
                                                                 "not a session document")])
        patient = doc.get("patient")
        stored_id = patient.get("id") if isinstance(patient, dict) else None
        if doc.get("pathway") != pathway.id or not isinstance(stored_id, (str, int)) or str(stored_id) != patient_id:
            raise SessionError([Diagnostic(where, 0, 0, "PW526", "the stored document is of another patient or pathway "
                                                                 "than the row it is stored under")])
        seal = (pathway.fingerprint, hashlib.sha256(data).digest())
        with self._lock:
            known = self._verified.get((pathway.id, patient_id)) == seal
        session = resume_verified(pathway, doc) if known else pathway.restore(doc)
        with self._lock:
            self._revisions[session] = int(revision)
            self._verified[(pathway.id, patient_id)] = seal
        return session

    def _forget(self, pathway_id: str, patient_id: str) -> None:
        self._verified.pop((pathway_id, patient_id), None)


class SqliteSessionStore(SessionStore):
    """The embedded backend: one SQLite file (WAL), shared by the threads and processes that open it."""

    def __init__(self, location: str | os.PathLike[str] = ":memory:"):
        name = os.fspath(location)
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
