"""Persistence of patient sessions in SQLite (one row per patient and pathway).

    store = SessionStore("sessions.db")
    store.save(session)
    session = store.load(pw, "p1")

Each save is one transaction; a session document is the JSON of :meth:`Session.dump`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import TYPE_CHECKING

from pathway.core.errors import PathwayError

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway
    from pathway.runtime.session import Session

__all__ = ["SessionStore", "SessionNotFound"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    pathway    TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    version    TEXT NOT NULL,
    state      TEXT NOT NULL,
    events     INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (pathway, patient_id)
)
"""


class SessionNotFound(PathwayError):
    pass


class SessionStore:
    """A SQLite-backed store of open sessions; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:"):
        self._db = sqlite3.connect(os.fspath(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def save(self, session: Session) -> None:
        doc = session.dump()
        text = json.dumps(doc, sort_keys=True, ensure_ascii=False)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO sessions (pathway, patient_id, version, state, events, doc) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (pathway, patient_id) DO UPDATE SET version=excluded.version, state=excluded.state, "
                    "events=excluded.events, doc=excluded.doc",
                    (doc["pathway"], session.patient_id, doc["version"], doc["state"],
                     len(doc["events"]), text),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load(self, pathway: Pathway, patient_id: str) -> Session:
        with self._lock:
            row = self._db.execute("SELECT doc FROM sessions WHERE pathway = ? AND patient_id = ?",
                                   (pathway.id, str(patient_id))).fetchone()
        if row is None:
            raise SessionNotFound(f"no stored session for patient '{patient_id}' in pathway '{pathway.id}'")
        return pathway.restore(json.loads(row[0]))

    def delete(self, pathway_id: str, patient_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM sessions WHERE pathway = ? AND patient_id = ?", (pathway_id, str(patient_id)))
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
