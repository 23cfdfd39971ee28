"""The session store's one class and what every backend shares: conditional saves, the checks a loaded
row passes, and the cache that spares the replay of a row this store wrote itself.

``SessionStore(location)`` returns the backend that the location names (the backends register themselves
by the prefix of their locations: :mod:`pathway.runtime.store` imports them all): a file path for SQLite
(:class:`pathway.runtime.store.SqliteSessionStore`), a ``postgresql://`` URL for PostgreSQL
(:class:`pathway.runtime.pgstore.PostgresSessionStore`). The promises are in :mod:`pathway.runtime.store`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from pathway.core.errors import Diagnostic, PathwayError, SessionConflict, SessionError
from pathway.runtime.restore import resume_verified

if TYPE_CHECKING:
    from typing import Self

    from pathway.runtime.api import Pathway
    from pathway.runtime.session import Session

__all__ = ["SessionStore", "SessionNotFound", "StoreUnavailable"]


class SessionNotFound(PathwayError):
    pass


class StoreUnavailable(PathwayError):
    """The store's database cannot be reached or used (the server is down, the connection was lost, or the
    database holds a store schema this version does not know). Nothing is known to be lost: the message says
    whether a save in flight may have been written, in which case load the session and look for the event."""


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
    #: the backends by the prefix of their locations ("": every other location, a file path)
    _backends: ClassVar[dict[str, type[SessionStore]]] = {}

    def __init_subclass__(cls, prefixes: tuple[str, ...] = (), **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for prefix in prefixes:
            SessionStore._backends[prefix] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is SessionStore:
            location = args[0] if args else kwargs.get("path", kwargs.get("conninfo", ":memory:"))
            text = location if isinstance(location, str) else ""
            prefix = max((p for p in cls._backends if text.startswith(p)), key=len, default=None)
            if prefix is None:
                raise TypeError("no store backend is registered: import pathway.runtime.store (or use pathway.SessionStore)")
            return super().__new__(cls._backends[prefix])  # type: ignore[return-value]  # a subclass
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike[str] = ":memory:"):
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

    def load(self, pathway: Pathway, patient_id: str, *, replay: bool = False) -> Session:
        """The stored session of a patient, verified by :meth:`Pathway.restore` (SessionError when it cannot
        be trusted, SessionNotFound when there is none). With ``replay=True`` a session stored under other
        rules is replayed under ``pathway`` (``Session.migration`` lists the differences); saving it then
        moves the row to these rules."""
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
        session = resume_verified(pathway, doc) if known else pathway.restore(doc, replay=replay)
        with self._lock:
            self._revisions[session] = int(revision)
            if session.migration is None:  # a row of other rules stays unverified under these until saved again
                self._verified[(pathway.id, patient_id)] = seal
        return session

    def _forget(self, pathway_id: str, patient_id: str) -> None:
        self._verified.pop((pathway_id, patient_id), None)


