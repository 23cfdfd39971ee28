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
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pathway.core.errors import Diagnostic, InputError, PathwayError, SessionConflict, SessionError
from pathway.runtime.restore import resume_verified
from pathway.runtime.state import inputs_checksum

if TYPE_CHECKING:
    from typing import Self

    from pathway.runtime.api import Pathway
    from pathway.runtime.session import Session

__all__ = ["SessionStore", "SessionNotFound", "StoreUnavailable", "SNAPSHOT_EVERY", "CACHE_SESSIONS"]

#: a save that only adds events appends a log row; every this many rows the whole document is written again
SNAPSHOT_EVERY = 8

#: the saved sessions a store keeps, so that loading one of them again costs a read of its row and no replay
CACHE_SESSIONS = 256

#: one encoder for every row (a new one per call costs as much as a short row)
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
#: the JSON of the firing records a log row shows (``current``: 90 % of a row's bytes), keyed by the record's id and
#: holding the record (so the id is not reused meanwhile): sessions share equal records, and a shared record is never
#: changed in place (:func:`pathway.runtime.state.interned`); emptied when full (only the time is lost)
_RECORD_TEXTS: dict[int, tuple[Any, str]] = {}
_RECORD_TEXTS_MAX = 8192


def _record_text(record: Any) -> str:
    kept = _RECORD_TEXTS.get(id(record))
    if kept is not None and kept[0] is record:
        return kept[1]
    text = _ENCODE(record)
    if len(_RECORD_TEXTS) >= _RECORD_TEXTS_MAX:
        _RECORD_TEXTS.clear()
    _RECORD_TEXTS[id(record)] = (record, text)
    return text


def row_text(events: list[dict[str, Any]], shown: dict[str, Any]) -> str:
    """The text of a log row, ``{"events": [...], "shown": {...}}`` as :data:`_ENCODE` writes it (the same bytes), each
    firing record of ``shown["current"]`` encoded once per process (see :data:`_RECORD_TEXTS`). ``shown``: the keys of
    :meth:`Session.shown_record`, in its order."""
    if list(shown) != ["state", "path", "current", "warnings"]:
        return _ENCODE({"events": events, "shown": shown})
    current = "[" + ",".join(map(_record_text, shown["current"])) + "]"
    return (f'{{"events":{_ENCODE(events)},"shown":{{"state":{_ENCODE(shown["state"])},"path":{_ENCODE(shown["path"])},'
            f'"current":{current},"warnings":{_ENCODE(shown["warnings"])}}}}}')


class SessionNotFound(PathwayError):
    pass


class StoreUnavailable(PathwayError):
    """The store's database cannot be reached or used (the server is down, the connection was lost, or the
    database holds a store schema this version does not know). Nothing is known to be lost: the message says
    whether a save in flight may have been written, in which case load the session and look for the event."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def link(chain: str, body: bytes) -> str:
    """The chain after one more log row: a hash of the chain before it and the row's text. A snapshot
    starts the chain at its document's checksum, so a row cannot be moved under another document."""
    return hashlib.sha256(chain.encode("ascii") + b"\n" + body).hexdigest()[:32]


def _chain(start: str, rows: Sequence[tuple[int, bytes | None]]) -> str:
    """The chain after the log rows ``(number, text)``, from the chain at the snapshot."""
    for _number, body in rows:
        start = link(start, bytes(body or b""))
    return start


@dataclass(frozen=True)
class Write:
    """One save as a backend writes it: a whole document (``snapshot``: ``text`` is the document, ``tail``
    0) or a log row appended after the snapshot (``text`` is the row; ``tail`` its number, from 1).
    ``chain`` is the row's chain after this save; ``expected`` the revision it is conditional on."""

    pathway_id: str
    patient_id: str
    expected: int | None
    snapshot: bool
    text: str
    version: str
    state: str
    events: int
    tail: int
    chain: str


@dataclass(frozen=True)
class Stored:
    """A row as a backend reads it: the snapshot document (bytes as stored), its revision, the log rows
    after it (``(number, text)`` in order) and the chain and event count the row records."""

    doc: bytes | None
    revision: int
    rows: Sequence[tuple[int, bytes | None]]
    tail: int
    chain: str | None
    events: int | None


#: a row as a store saved it: the fingerprint of its rules, the hash of its snapshot's text, the chain at the
#: snapshot and after the last log row, and its revision
_Row = tuple[str, bytes, str, str, int]


@dataclass(frozen=True)
class _Mark:
    """What a store knows of a session it saved or loaded: the row's revision, where the session's record
    stood (:meth:`Session.log_mark`), the log rows after the snapshot and their chain, and whether the next
    save may append (not after a load under other rules)."""

    revision: int
    record: tuple[tuple[dict[str, Any], ...], int]
    tail: int
    chain: str
    fingerprint: str
    appendable: bool
    #: a hash of the snapshot's text, and the chain at the snapshot (its document's checksum)
    snapshot: bytes
    start: str


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
        #: session -> the row it was loaded from or last saved as (per store)
        self._marks: weakref.WeakKeyDictionary[Session, _Mark] = weakref.WeakKeyDictionary()
        #: a save that only adds events appends a log row, and a whole document is written every this many
        self.snapshot_every = SNAPSHOT_EVERY
        #: the last sessions this store saved (at most :attr:`cache_sessions`, least recently used dropped):
        #: (pathway, patient) -> (what the row held: fingerprint, snapshot hash, chain, revision; the session)
        self._cache: OrderedDict[tuple[str, str], tuple[_Row, Session]] = OrderedDict()
        #: how many saved sessions a load may take from memory instead of reading and replaying their rows
        self.cache_sessions = CACHE_SESSIONS
        #: (pathway, patient) -> (fingerprint, hash of the row's text) of the last row this store wrote or
        #: verified: loading that very text again skips the replay (it would give the same session)
        self._verified: dict[tuple[str, str], tuple[str, bytes]] = {}

    # -- what a backend provides -------------------------------------------------------------------------

    def _write(self, writes: list[Write]) -> list[int]:
        """Make every write, each only if its row is still at revision ``expected`` (None: no row), in one
        transaction, and return the new revisions; else raise :meth:`_conflict` for the first write whose row
        moved and write nothing. A snapshot replaces the document and drops the log rows; an append adds its
        row and records the state, event count, row count and chain. Called under the lock."""
        raise NotImplementedError

    def _read(self, pathway_id: str, patient_id: str) -> Stored | None:
        """The row and its log rows as stored, read at one moment, or None when there is no row. Called under
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
        this session was loaded from: another writer saved, created or deleted it meanwhile.

        A session whose record only grew since this store last saved or loaded it (events added in time
        order) appends one log row of the new events; otherwise, and every :attr:`snapshot_every` rows, the
        whole document is written again (see :mod:`pathway.runtime.store`)."""
        self.save_many([session])

    def save_many(self, sessions: Iterable[Session]) -> None:
        """Store several sessions in one transaction (a stream of events to many patients): all are saved,
        or none is (SessionConflict names the first whose row moved; SessionError one that is not JSON)."""
        batch = list(sessions)
        if len({id(s) for s in batch}) != len(batch):
            raise ValueError("save_many: a session is given twice")
        with self._lock:
            writes = [self._prepare(session) for session in batch]
            if len({(w.pathway_id, w.patient_id) for w in writes}) != len(writes):
                raise ValueError("save_many: two sessions of one patient (save one of them)")
            revisions = self._write(writes) if writes else []
            for session, write, revision in zip(batch, writes, revisions, strict=True):
                key = (write.pathway_id, write.patient_id)
                before = self._marks.get(session)
                fingerprint = session.pathway.fingerprint
                if write.snapshot or before is None:
                    snapshot, start = hashlib.sha256(write.text.encode("utf-8")).digest(), write.chain
                    self._verified[key] = (fingerprint, snapshot)
                else:
                    snapshot, start = before.snapshot, before.start
                self._marks[session] = _Mark(revision, session.log_mark(), write.tail, write.chain, fingerprint, True,
                                             snapshot, start)
                self._remember(key, (fingerprint, snapshot, start, write.chain, revision), session)

    def _remember(self, key: tuple[str, str], row: _Row, session: Session) -> None:
        """Keep the session as saved (its state is shared, never changed in place). Called under the lock."""
        if self.cache_sessions <= 0:
            return
        self._cache[key] = (row, session.share())
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_sessions:
            self._cache.popitem(last=False)

    def _prepare(self, session: Session) -> Write:
        """The write that saves ``session``: a log row of the events it added since its mark, or the whole
        document. Called under the lock."""
        pw = session.pathway
        pathway_id, patient_id = pw.id, session.patient_id
        mark = self._marks.get(session)
        added = None
        if (mark is not None and mark.appendable and mark.tail < self.snapshot_every
                and mark.fingerprint == pw.fingerprint):
            added = session.appended_since(mark.record)
        try:
            if mark is not None and added is not None:
                shown = session.shown_record()
                text = row_text(added, shown)
                body = text.encode("utf-8")  # a lone surrogate in a text value has no UTF-8 form
                return Write(pathway_id, patient_id, mark.revision, False, text, pw.definition.version, shown["state"],
                             len(mark.record[0]) + len(added), mark.tail + 1, link(mark.chain, body))
            doc = session.dump()
            text = json.dumps(doc, sort_keys=True, ensure_ascii=False, allow_nan=False)
            text.encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise SessionError([Diagnostic(self._row(pathway_id, patient_id), 0, 0, "PW520",
                                           f"the session is not JSON, so it cannot be stored: {exc}")]) from None
        return Write(pathway_id, patient_id, None if mark is None else mark.revision, True, text, str(doc["version"]),
                     str(doc["state"]), len(doc["events"]), 0, str(doc["checksum"]))

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
        moves the row to these rules.

        The events of the log rows after the snapshot are applied again in order, and the session must then
        show what the last row recorded (PW525 otherwise)."""
        patient_id = str(patient_id)
        where = self._row(pathway.id, patient_id)
        with self._lock:
            row = self._read(pathway.id, patient_id)
        if row is None:
            raise SessionNotFound(f"no stored session for patient '{patient_id}' in pathway '{pathway.id}'")
        session = self._cached(pathway, patient_id, row)
        if session is not None:
            return session
        data, doc = self._document(where, row.doc)
        patient = doc.get("patient")
        stored_id = patient.get("id") if isinstance(patient, dict) else None
        if doc.get("pathway") != pathway.id or not isinstance(stored_id, (str, int)) or str(stored_id) != patient_id:
            raise SessionError([Diagnostic(where, 0, 0, "PW526", "the stored document is of another patient or pathway "
                                                                 "than the row it is stored under")])
        chain, logged = self._log(where, doc, row)
        seal = (pathway.fingerprint, hashlib.sha256(data).digest())
        key = (pathway.id, patient_id)
        with self._lock:
            known = self._verified.get(key) == seal
        d = pathway.definition
        other_rules = (doc.get("version"), doc.get("profile"), doc.get("fingerprint")) != (d.version, d.profile,
                                                                                          pathway.fingerprint)
        if logged and replay and other_rules:
            session = pathway.restore(_merged(doc, logged), replay=True)
        else:
            session = resume_verified(pathway, doc) if known else pathway.restore(doc, replay=replay)
            if logged:
                self._replay_log(where, session, logged)
        with self._lock:
            appendable = session.migration is None
            start = str(doc.get("checksum"))
            self._marks[session] = _Mark(int(row.revision), session.log_mark(), row.tail if appendable else 0,
                                         chain, pathway.fingerprint, appendable, seal[1], start)
            if appendable:  # a row of other rules stays unverified under these until saved again
                self._verified[key] = seal
                self._remember(key, (*seal, start, chain, int(row.revision)), session)
        return session

    def _cached(self, pathway: Pathway, patient_id: str, row: Stored) -> Session | None:
        """The session this store saved (or loaded) as the row still holds it, byte for byte: its snapshot's
        text, its log rows (by their chain from the snapshot) and its revision; else None."""
        key = (pathway.id, patient_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or row.doc is None:
            return None
        (fingerprint, snapshot, start, chain, revision), saved = cached
        if (fingerprint, revision, chain) != (pathway.fingerprint, row.revision, row.chain):
            return None
        if [n for n, _body in row.rows] != list(range(1, row.tail + 1)):
            return None
        if hashlib.sha256(bytes(row.doc)).digest() != snapshot:
            return None
        if _chain(start, row.rows) != chain:
            return None
        session = saved.share()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
            self._marks[session] = _Mark(revision, session.log_mark(), row.tail, chain, fingerprint, True, snapshot,
                                         start)
        return session

    @staticmethod
    def _document(where: str, raw: bytes | None) -> tuple[bytes, dict[str, Any]]:
        """The snapshot's bytes and its JSON document (PW520 when it is not one)."""
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
        return data, doc

    @staticmethod
    def _log(where: str, doc: dict[str, Any], row: Stored) -> tuple[str, list[dict[str, Any]]]:
        """The chain and the log rows after the snapshot, each ``{"events": [...], "shown": {...}}``, once
        they are whole: numbered 1 to ``tail``, JSON, and hashing to the chain the row records (PW520)."""
        def refused(why: str) -> SessionError:
            return SessionError([Diagnostic(where, 0, 0, "PW520", f"the stored session's log {why}: rows lost, "
                                                                  "edited or corrupt")])

        if [n for n, _body in row.rows] != list(range(1, row.tail + 1)):
            raise refused(f"holds rows {[n for n, _ in row.rows][:10]}, not 1 to {row.tail}")
        chain = _chain(str(doc.get("checksum")), row.rows)
        logged: list[dict[str, Any]] = []
        for number, body in row.rows:
            try:
                entry = json.loads(bytes(body or b"").decode("utf-8"), parse_constant=_no_constant)
            except (ValueError, RecursionError):
                raise refused(f"row {number} is not JSON") from None
            if (not isinstance(entry, dict) or not isinstance(entry.get("events"), list)
                    or not all(isinstance(e, dict) for e in entry["events"]) or not isinstance(entry.get("shown"), dict)):
                raise refused(f"row {number} is not a list of events with what the session showed")
            logged.append(entry)
        if row.chain is None and row.rows:  # a row of a version before the log has no chain and no log rows
            raise refused("has rows but the row records no chain to check them by")
        if row.chain is not None and chain != row.chain:
            raise refused("does not hash to the chain the row records")
        if row.events is not None and logged and row.events != len(doc.get("events") or []) + sum(
                len(entry["events"]) for entry in logged):
            raise refused(f"does not hold the {row.events} events the row records")
        return chain, logged

    @staticmethod
    def _replay_log(where: str, session: Session, logged: list[dict[str, Any]]) -> None:
        """Apply the logged events again in order; the session must then show what the last row recorded."""
        from pathway.runtime.session import replay_event

        at = len(session.log_mark()[0])
        for entry in logged:
            for event in entry["events"]:
                try:
                    replay_event(session, event)
                except InputError as exc:
                    detail = "; ".join(d.message for d in exc.diagnostics[:2])
                    raise SessionError([Diagnostic(f"events[{at}]", 0, 0, "PW524",
                                                   f"a logged event is refused: {detail}")]) from None
                at += 1
        shown = json.loads(_ENCODE(session.shown_record()))
        recorded = logged[-1]["shown"]
        for key in ("state", "path", "current", "warnings"):
            if shown.get(key) != recorded.get(key):
                raise SessionError([Diagnostic(key, 0, 0, "PW525", "the logged events do not give what the session "
                                                                   f"showed when it was saved ({where})")])

    def _forget(self, pathway_id: str, patient_id: str) -> None:
        self._verified.pop((pathway_id, patient_id), None)
        self._cache.pop((pathway_id, patient_id), None)


def _merged(doc: dict[str, Any], logged: list[dict[str, Any]]) -> dict[str, Any]:
    """The document as it stood at the last log row, for a replay under other rules: the snapshot's patient
    and revisions, every event, and what the session showed then (the inputs' checksum recomputed: the log
    rows were checked by their chain)."""
    merged = dict(doc)
    merged["events"] = [*(doc.get("events") or []), *(e for entry in logged for e in entry["events"])]
    merged.update({k: logged[-1]["shown"].get(k) for k in ("state", "path", "current", "warnings")})
    arrived = doc.get("arrived")
    if isinstance(arrived, list) and arrived:  # the logged events arrived after the snapshot's, in their order
        merged["arrived"] = [*arrived, *range(len(arrived), len(merged["events"]))]
    merged["checksum"] = inputs_checksum(merged.get("patient"), merged["events"], merged.get("revisions") or [],
                                         merged.get("acted") or [], merged.get("arrived"))
    return merged


