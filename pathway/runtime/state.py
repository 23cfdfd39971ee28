"""The plain state of one patient's session, and its JSON document (``Session.dump``)."""

from __future__ import annotations

import copy
import hashlib
import json
import marshal
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

__all__ = ["SessionState", "SESSION_FORMAT", "FORMATS", "upgrade", "inputs_checksum", "json_copy", "compact_entry",
           "trace_entry", "shared_keys",
           "entry_dict", "entry_move", "Packed", "pack", "unpack", "evaluation_dict", "evaluation",
           "evaluation_get", "EVALUATION_KEYS", "kept_entry", "kept_dict", "kept_get", "compact_kept", "arrival",
           "arrival_order"]


class Packed:
    """A dict of facts as a session keeps it: its keys (one tuple shared by every dict of the same keys
    in the same order) and its values; :func:`unpack` gives the dict back, in the same order."""

    __slots__ = ("keys", "values")

    def __init__(self, keys: tuple[str, ...], values: tuple[Any, ...]):
        self.keys = keys
        self.values = values


#: key tuples shared between packed dicts (dropped when full: only the sharing is lost)
_KEYS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_KEYS_MAX = 65536


def pack(facts: Any) -> Any:
    """A dict of facts packed (:class:`Packed`); anything else as it is."""
    if type(facts) is not dict:
        return facts
    return Packed(shared_keys(facts), tuple(facts.values()))


def unpack(facts: Any) -> Any:
    """A new dict of the packed facts (a dict is copied; anything else is returned as it is)."""
    if type(facts) is Packed:
        return dict(zip(facts.keys, facts.values, strict=True))
    return dict(facts) if type(facts) is dict else facts


#: the keys of an evaluation record, in order; a session keeps such a record as a tuple of their values
#: (``facts`` packed), :func:`evaluation_dict` gives it back as the document shows it
EVALUATION_KEYS = ("event", "day", "state", "facts", "derived", "computed", "frozen")


def evaluation(event: int, day: float, state: str, facts: dict[str, Any], derived: dict[str, Any],
               computed: dict[str, Any], frozen: dict[str, Any]) -> tuple[Any, ...]:
    """An evaluation record as a session keeps it (compact; read through :func:`evaluation_dict`)."""
    return (event, day, state, pack(facts), derived, computed, frozen)


def evaluation_dict(entry: Any) -> Any:
    """An evaluation record as the session document shows it (a new dict; its other values shared)."""
    if type(entry) is tuple:
        event, day, state, facts, derived, computed, frozen = entry
        return {"event": event, "day": day, "state": state, "facts": unpack(facts), "derived": derived,
                "computed": computed, "frozen": frozen}
    if type(entry) is not dict or type(entry.get("facts")) is not Packed:
        return entry
    return {**entry, "facts": unpack(entry["facts"])}


_NO_DEFAULT: Any = object()


def evaluation_get(entry: Any, key: str, default: Any = _NO_DEFAULT) -> Any:
    """One value of an evaluation record, kept compact or as a dict (``facts`` as kept: maybe packed):
    ``entry[key]``, or ``entry.get(key, default)`` when a default is given."""
    if type(entry) is tuple:
        return entry[EVALUATION_KEYS.index(key)]
    return entry[key] if default is _NO_DEFAULT else entry.get(key, default)


#: the keys of a kept decision fact (``SessionState.frozen``), in order; :func:`kept_dict` gives the document's form.
#: A session keeps one as a tuple ``(head, value, day, event, facts values, recorded values)``, where ``head`` is
#: (decision point, rule, branch, facts keys, recorded keys, missed), one tuple shared by every fact of the same
#: head, and the values tuples are shared by the facts one firing keeps (and the recorded days between sessions)
KEPT_KEYS = ("value", "day", "event", "decision_point", "rule", "branch", "facts", "recorded", "missed")
_KEPT_HEAD = {"decision_point": 0, "rule": 1, "branch": 2, "missed": 5}
_KEPT_ITEM = {"value": 1, "day": 2, "event": 3}


def kept_entry(value: Any, day: Any, event: Any, decision_point: str, rule: str, branch: str, facts: Any,
               recorded: Any, missed: bool = False) -> tuple[Any, ...]:
    """A kept decision fact as a session keeps it (``facts`` and ``recorded`` dicts, or packed: :func:`pack`,
    whose values tuples are then shared)."""
    facts, recorded = pack(facts), pack(recorded)
    head = _shared_head((decision_point, rule, branch, facts.keys, recorded.keys, missed))
    return (head, value, day, event, facts.values, _shared_values(recorded.values))


def kept_dict(item: Any) -> Any:
    """A kept decision fact as the session document shows it (a new dict; ``missed`` only when true)."""
    if type(item) is not tuple:
        return item
    (decision_point, rule, branch, facts_keys, recorded_keys, missed), value, day, event, facts, recorded = item
    out = {"value": value, "day": day, "event": event, "decision_point": decision_point, "rule": rule,
           "branch": branch, "facts": dict(zip(facts_keys, facts, strict=True)),
           "recorded": dict(zip(recorded_keys, recorded, strict=True))}
    if missed:
        out["missed"] = True
    return out


def kept_get(item: Any, key: str) -> Any:
    """One value of a kept decision fact, compact or a dict (``facts``/``recorded`` as new dicts; ``missed`` False
    when absent)."""
    if type(item) is tuple:
        at = _KEPT_ITEM.get(key)
        if at is not None:
            return item[at]
        if key == "facts":
            return dict(zip(item[0][3], item[4], strict=True))
        if key == "recorded":
            return dict(zip(item[0][4], item[5], strict=True))
        return item[0][_KEPT_HEAD[key]]
    if key in ("facts", "recorded"):
        return dict(item[key])
    return item.get(key, False) if key == "missed" else item[key]


def compact_kept(entry: Any) -> Any:
    """A kept decision fact of a document in the compact form (an entry of another shape as it is)."""
    if type(entry) is not dict or type(entry.get("facts")) is not dict or type(entry.get("recorded")) is not dict:
        return entry
    keys = tuple(entry)
    if keys == KEPT_KEYS[:-1] or (keys == KEPT_KEYS and entry["missed"] is True):
        return kept_entry(entry["value"], entry["day"], entry["event"], entry["decision_point"], entry["rule"],
                          entry["branch"], entry["facts"], entry["recorded"], missed=keys == KEPT_KEYS)
    return entry


#: a trace entry as a session keeps it (compact): one tuple ``(head, event, day, *facts values)``, where
#: ``head`` is (state, rule, branch, facts keys, missing, from, to), one tuple shared by every entry of the
#: same head; a facts dict is its keys (a tuple shared as :func:`pack` shares it) and its values, other facts
#: are keys None and the value itself (the one value after the day); ``missing`` a tuple or None,
#: ``from``/``to`` None unless the firing moved the patient
_BASE = ("event", "day", "state", "rule", "branch", "facts")
_SHAPES = {_BASE: (False, False), _BASE + ("missing",): (True, False), _BASE + ("from", "to"): (False, True),
           _BASE + ("missing", "from", "to"): (True, True)}
#: the heads of trace entries and kept decision facts, shared (dropped when full: only the sharing is lost)
_HEADS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _shared_head(head: tuple[Any, ...]) -> tuple[Any, ...]:
    """An equal head kept before (names, key tuples and flags: equal means the same), else ``head``."""
    return cast("tuple[Any, ...]", _one_of(_HEADS, head))


def _one_of(table: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any = None) -> Any:
    """The value kept in ``table`` under ``key`` (``value``, by default the key itself, kept there now if none
    was; the table is emptied when full: only the sharing is lost)."""
    kept = table.get(key)
    if kept is None:
        if len(table) >= _KEYS_MAX:
            table.clear()
        kept = table[key] = key if value is None else value
    return kept


#: JSON-ready values shared between sessions by :func:`interned` and :func:`history_entry`, keyed by the hash
#: of their ``marshal`` bytes (exact: 1, 1.0 and True differ, as do 0.0 and -0.0, and the order of keys counts); dropped
#: when full (only the sharing is lost). The bound is what a process keeps of sessions long closed: 1,000 open
#: sessions make about 9,000 entries here; at 65,536 a process that ran 100,000 patients one after another
#: held 155 MB instead of 72 MB.
_SHARED: dict[int, Any] = {}
_SHARED_MAX = 8192
#: the one-entry histories of :func:`first_history`, keyed by the id of their entry (bounded as _SHARED)
_ONE: dict[int, list[Any]] = {}


def interned(value: Any) -> Any:
    """An equal value (same types, same key order) shared with every session that kept one, for a
    value kept read-only (never changed in place: replaced); a value of another type as it is."""
    return _share(value) if type(value) is dict else value


def history_entry(day: Any, value: Any, hours: Any, event: Any) -> list[Any]:
    """A history entry ``[day, value, hours, event]``, shared with every session that recorded the same
    (history entries and their lists are never changed in place: a new list replaces a field's)."""
    return _share([day, value, hours, event])  # type: ignore[no-any-return]


def _share(value: Any) -> Any:
    try:
        raw = marshal.dumps(value, 2)  # version 2: no references, so equal values give equal bytes
    except ValueError:  # holds something marshal cannot write: not shared
        return value
    # keyed by the hash of the bytes, not the bytes (they would cost as much as the value they share): a value
    # found is checked to give the same bytes, so two values of one hash are never confused (the later one is
    # then not shared)
    key = hash(raw)
    kept = _SHARED.get(key)
    if kept is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        kept = _SHARED[key] = value
    elif kept is not value and marshal.dumps(kept, 2) != raw:
        return value
    return kept


def first_history(entry: list[Any]) -> list[Any]:
    """The history of a field recorded once, ``[entry]``: shared for a shared entry (:func:`history_entry`)."""
    key = id(entry)  # the cache holds the entry: its id is not reused meanwhile
    kept = _ONE.get(key)
    if kept is None or kept[0] is not entry:
        if len(_ONE) >= _SHARED_MAX:
            _ONE.clear()
        kept = _ONE[key] = [entry]
    return kept


#: lists of shared items, shared in turn (keyed by the identities of their items; :func:`shared_list`)
_LISTS: dict[tuple[int, ...], Any] = {}
_Items = TypeVar("_Items", list[Any], tuple[Any, ...])


def shared_list(items: _Items) -> _Items:
    """A list (or tuple) holding the same objects as ``items`` (each already shared: :func:`interned`) kept by
    another session, else ``items`` (kept for the next): for one kept read only (replaced, never changed in
    place)."""
    # the table holds the list, so the ids of its items are not reused meanwhile; a list and a tuple of the
    # same items (empty ones) are not the same value
    key = (id(type(items)), *map(id, items))
    kept = _LISTS.get(key)
    if kept is not None and len(kept) == len(items) and all(a is b for a, b in zip(kept, items, strict=True)):
        return cast(_Items, kept)
    if len(_LISTS) >= _SHARED_MAX:
        _LISTS.clear()
    _LISTS[key] = items
    return items


#: state paths shared between sessions (lists of state names, keyed by the names)
_PATHS: dict[tuple[str, ...], list[str]] = {}


def shared_path(path: list[str]) -> list[str]:
    """An equal path kept by another session, else ``path`` (kept for the next): for a path kept read only
    (a working copy copies it before it moves the patient)."""
    return cast("list[str]", _one_of(_PATHS, tuple(path), path))


def shared_keys(facts: dict[str, Any]) -> tuple[Any, ...]:
    """The keys of a dict as a tuple shared by every dict of the same keys in the same order."""
    return cast("tuple[Any, ...]", _one_of(_KEYS, tuple(facts)))


def trace_entry(event: int, day: float, state: str, rule: str, branch: str, facts: Any, missing: Any,
                source: str | None, target: str | None) -> tuple[Any, ...]:
    """A trace entry in the compact form a session keeps (``missing`` a tuple or None)."""
    if type(facts) is dict:
        head = _shared_head((state, rule, branch, shared_keys(facts), missing, source, target))
        return _shared_entry((head, event, day, *facts.values()))
    return ((state, rule, branch, None, missing, source, target), event, day, facts)


#: trace entries shared between sessions (by equality, checked for the same types; never one holding a float
#: zero: 0.0 and -0.0 are equal keys); dropped when full (only the sharing is lost)
_TRACE: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_SCALARS = (int, float, str, bool, type(None))


def _shared_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """An equal tuple of scalars kept before (the same types; never one holding a float zero), else ``values``."""
    return _shared_entry(values, 0)


def _shared_entry(entry: tuple[Any, ...], scalars_from: int = 2) -> tuple[Any, ...]:
    """An equal trace entry (the same JSON) kept by another session, else ``entry`` (kept for the next)."""
    try:
        kept = _TRACE.get(entry)
    except TypeError:  # a value that cannot be a key
        return entry
    if kept is not None:
        if tuple(map(type, kept)) == tuple(map(type, entry)):
            return kept
        return entry
    if any(type(v) not in _SCALARS or (type(v) is float and v == 0) for v in entry[scalars_from:]):
        return entry
    if len(_TRACE) >= _SHARED_MAX:
        _TRACE.clear()
    _TRACE[entry] = entry
    return entry


def forget_shared() -> None:
    """Drop the values sessions share (:func:`interned`, history and trace entries): open sessions keep
    theirs; sessions from now on share among themselves (a measurement of what sessions cost counts them)."""
    _SHARED.clear()
    _ONE.clear()
    _TRACE.clear()
    _HEADS.clear()
    _LISTS.clear()
    _PATHS.clear()


def compact_entry(entry: Any) -> Any:
    """A trace entry (the dict a result shows) in the compact form a session keeps; an entry of any
    other shape is kept as it is (:func:`entry_dict` reads both)."""
    if type(entry) is not dict:
        return entry
    shape = _SHAPES.get(tuple(entry))
    if shape is None or (shape[0] and type(entry["missing"]) is not list):
        return entry
    return trace_entry(entry["event"], entry["day"], entry["state"], entry["rule"], entry["branch"], entry["facts"],
                       tuple(entry["missing"]) if shape[0] else None, entry["from"] if shape[1] else None,
                       entry["to"] if shape[1] else None)


def entry_dict(item: Any, copy_facts: bool = False) -> dict[str, Any]:
    """A kept trace entry as the result and the session document show it (a new dict; its ``facts``
    are shared unless ``copy_facts`` or kept compact)."""
    if type(item) is dict:
        out = dict(item)
        if copy_facts:
            out["facts"] = dict(item["facts"])
        if "missing" in item:
            out["missing"] = list(item["missing"])
        return out
    (state, rule, branch, keys, missing, source, target), event, day = item[0], item[1], item[2]
    out = {"event": event, "day": day, "state": state, "rule": rule, "branch": branch,
           "facts": dict(zip(keys, item[3:], strict=True)) if keys is not None
           else (unpack(item[3]) if copy_facts else item[3])}
    if missing is not None:
        out["missing"] = list(missing)
    if target is not None:
        out["from"], out["to"] = source, target
    return out


def entry_move(item: Any) -> tuple[Any, Any, Any]:
    """(event, target state or None, rule) of a kept trace entry."""
    if type(item) is dict:
        return item.get("event"), item.get("to"), item.get("rule")
    return item[1], item[0][6], item[0][1]


def json_copy(value: Any) -> Any:
    """A copy of JSON-ready data (dicts, lists, tuples and scalars) the caller may change freely: what
    ``copy.deepcopy`` gives for such data, several times faster; anything else is deep-copied."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    if kind is tuple:
        return tuple(json_copy(v) for v in value)
    return copy.deepcopy(value)

#: 2: clock hours (``hours``, ``seen_hours``, a third element in history entries, an event's
#: ``time``) and kept decision facts (``frozen``); a format-1 document is read as day x 24 hours.
#: 3: the pathway's ``fingerprint`` and a ``checksum`` of the recorded patient and events, and each
#: event's quantities as given (``given``: ``{field: {value, unit}}``), so that restoring replays
#: exactly what was observed.
#: 4: event ``id``s, and ``revisions``: the late placements, amendments and retractions of events.
#: 5: no ``evaluations``: what each evaluation saw is made again from the recorded events when asked for
#: (:attr:`pathway.runtime.session.Session.evaluations`), as a restore does.
SESSION_FORMAT = 5

#: the formats :meth:`Pathway.restore` reads
FORMATS = (1, 2, 3, 4, 5)

#: keys added to the session document after format 1 was first written; older documents lack them
_OPTIONAL = {"warnings", "state_event", "recorded_event", "revisions", "acted", "arrived"}
#: fields of the state that are not keys of the document (the patient id is in the patient; see
#: SessionState.unacted and SessionState.overruled)
_NOT_KEPT = {"patient_id", "unacted", "overruled", "evaluations", "evaluations_kept", "computed"}


@dataclass(slots=True)
class SessionState:
    """Everything a session knows. The session evaluates an event on :meth:`copy` and keeps the copy
    only when the whole event succeeded, so a refused event leaves the state as it was."""

    patient_id: str
    patient: dict[str, Any]
    admission: datetime | None
    facts: dict[str, Any]  # field -> latest value (patient and event values)
    state: str
    path: list[str]
    entered_day: float = 0  # day the current state was entered
    day: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    #: compact entries (:func:`compact_entry`); :func:`entry_dict` gives each as a result shows it
    trace: list[Any] = field(default_factory=list)
    #: what each evaluation saw (inputs and derived facts), so every clause of every rule can be explained
    #: (compact records, ``facts`` packed: see evaluation_dict): kept as ``evaluations_kept`` says; a session
    #: keeps none, and makes them again from its recorded events when asked for (Session.evaluations)
    evaluations: list[Any] = field(default_factory=list)
    current: list[dict[str, Any]] = field(default_factory=list)  # rendered firings that make up "now"
    derived: dict[str, Any] = field(default_factory=dict)
    #: field -> [[day, value, hours, event index or None for the patient record], ...]
    history: dict[str, list[list[Any]]] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)  # state -> day first entered
    state_event: int = -1  # index of the event in which the current state was entered (-1: at the start)
    recorded_event: dict[str, int] = field(default_factory=dict)  # decision field -> event that recorded it
    #: input warnings (alerts) of the last input: the patient record until the first event, then each
    #: event's own (a bare number accepted inside a ``warn`` ambiguity band)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    hours: float | None = None  # now, in hours since admission (exact when events give a time)
    #: derived fact -> what a decision point kept: value, day, event, decision point, rule, branch, facts, recorded
    #: (compact: :func:`kept_entry`, read with :func:`kept_get`; never changed in place: replaced)
    frozen: dict[str, Any] = field(default_factory=dict)
    #: each late placement (``insert``), ``amend`` and ``retract`` of an event, in the order made: the
    #: event id, where it went, and the event as it was recorded before (``was``); and each ``replay`` of
    #: the course under other rules (``replayed``: from, to, differences)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    #: decisions in the events that a re-evaluation of the course found in a state that does not take them
    #: (kept, not acted on, said aloud for the rest of the course): ``{field, value, event, day, state}``. Not in
    #: the document: a restore
    #: replays the events, which gives them again.
    unacted: tuple[dict[str, Any], ...] = ()  # replaced, never changed in place: shared by copies
    #: each move a rule took on a recorded decision (``{event, day, from, to, rule}``): a move on a decision,
    #: once taken, stands when the course is evaluated again (the treatment it started may have been given),
    #: so an evaluation that would not take it now takes it still and says why (``overruled``). A record of
    #: the course, like ``revisions``: in the document and its checksum; a restore replays with it.
    acted: tuple[dict[str, Any], ...] = ()  # replaced, never changed in place: shared by copies
    #: the order in which the events arrived (were recorded): ``arrived[i]`` is the arrival rank of ``events[i]``
    #: (0 the first recorded), a permutation of ``range(len(events))``; empty when the events arrived in
    #: timeline order (no late placement or amendment), as most sessions do. An amended event arrives when it is
    #: amended (its values are recorded again). A confirmation confirms only what had arrived when it was
    #: recorded (facts.aggregate, ``confirmed_by``). A record of the course: in the document (only when not
    #: empty) and its checksum; a restore replays with it. Read through :func:`arrival`.
    arrived: tuple[int, ...] = ()  # replaced, never changed in place: shared by copies
    #: the moves of ``acted`` that an evaluation again took although its rules would not now
    #: (``{field, value, event, day, from, to, rule, text}``; said aloud for the rest of the course). Not in the
    #: document: a restore replays the events with ``acted``, which gives them again.
    overruled: tuple[dict[str, Any], ...] = ()
    #: which evaluation records the state keeps: "none", the "last" event's, or "all" (not in the document)
    evaluations_kept: str = "none"
    #: where each computed input's value came from at the last evaluation (read only: shared); None when
    #: not known yet (a state read from a document: the result works it out again)
    computed: dict[str, Any] | None = None

    def copy(self) -> SessionState:
        """A working copy: every container that an evaluation appends to or updates is new; the
        entries themselves are never changed in place, so they are shared. ``history`` is a new dict
        whose lists are shared: an evaluation replaces the list of a field it records
        (:meth:`record_value`), never appends to it."""
        new = _new_state(SessionState)  # dataclasses.replace without its checks and __init__
        for name in _SLOTS:
            setattr(new, name, getattr(self, name))
        new.facts, new.path, new.events = dict(self.facts), list(self.path), list(self.events)
        new.trace, new.evaluations, new.current = list(self.trace), list(self.evaluations), list(self.current)
        new.derived, new.history = dict(self.derived), dict(self.history)
        new.entered = dict(self.entered)
        new.recorded_event, new.warnings = dict(self.recorded_event), list(self.warnings)
        new.frozen, new.revisions = dict(self.frozen), list(self.revisions)
        return new

    def record_value(self, name: str, entry: list[Any]) -> None:
        """Add a history entry of ``name`` (a new list: the old one may be shared with other states)."""
        old = self.history.get(name)
        self.history[name] = [*old, entry] if old else first_history(entry)

    def to_doc(self, pathway_id: str, version: str, profile: str | None, fingerprint: str,
               provisional: Mapping[str, Collection[Any]]) -> dict[str, Any]:
        """The JSON document of this state (deep copies: the caller may change it freely), with the
        fingerprint of the pathway it ran under and the checksum of its recorded inputs (``provisional``: as
        :meth:`values`)."""
        doc: dict[str, Any] = {"format": SESSION_FORMAT, "pathway": pathway_id, "version": version, "profile": profile,
                               "fingerprint": fingerprint}
        doc.update(json_copy(self.values(provisional)))
        doc["checksum"] = inputs_checksum(doc["patient"], doc["events"], doc["revisions"], doc["acted"],
                                          doc.get("arrived"))
        return doc

    def values(self, provisional: Mapping[str, Collection[Any]]) -> dict[str, Any]:
        """The keys of the document that this state makes (not copied: read, never change them);
        ``provisional``: the provisional values of each field that has some (FieldDef.provisional), which
        ``seen`` and ``seen_hours`` are worked out with (:func:`current_entry`)."""
        out = {f.name: (value.isoformat() if isinstance(value, datetime) else value)
               for f in fields(self) if f.name not in _NOT_KEPT for value in (getattr(self, f.name),)}
        out["seen"], out["seen_hours"] = recorded_days(self.history, provisional), recorded_hours(self.history, provisional)
        out["trace"] = [entry_dict(item) for item in self.trace]
        out["frozen"] = {name: kept_dict(kept) for name, kept in self.frozen.items()}
        out["acted"] = list(self.acted)
        if self.arrived:
            out["arrived"] = list(self.arrived)
        else:  # events in timeline order: no key (a document without it reads as that)
            del out["arrived"]
        return out

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SessionState:
        doc = upgrade(doc)
        # A document written before a key with a default existed (e.g. 'warnings') restores with the default.
        values = {f.name: json_copy(doc[f.name]) for f in fields(cls)
                  if f.name not in _NOT_KEPT and (f.name in doc or f.name not in _OPTIONAL)}
        values["admission"] = datetime.fromisoformat(doc["admission"]) if doc.get("admission") else None
        values["trace"] = [compact_entry(entry) for entry in values["trace"]]
        values["frozen"] = {name: compact_kept(kept) for name, kept in values.get("frozen", {}).items()}
        values["acted"] = tuple(values.get("acted") or ())
        values["arrived"] = tuple(values.get("arrived") or ())
        return cls(patient_id=str(doc["patient"]["id"]), **values)


#: the attributes of a SessionState (slots: no instance dict, a few hundred bytes less per open session)
_SLOTS = tuple(f.name for f in fields(SessionState))
_new_state = object.__new__


def current_entry(entries: Sequence[Sequence[Any]] | None, pending: Collection[Any] | None) -> Sequence[Any] | None:
    """The history entry of a field's current value (None: nothing recorded): the last, unless the field has
    provisional values (``pending``), of which one never replaces a result as the current value (a value of the
    patient record is current until an event records another)."""
    if not entries:
        return None
    if not pending:
        return entries[-1]
    current: Sequence[Any] | None = None
    for entry in entries:
        if (len(entry) < 4 or entry[3] is None or current is None or entry[1] not in pending
                or current[1] in pending):
            current = entry
    return current


def recorded_days(history: dict[str, list[list[Any]]], provisional: Mapping[str, Collection[Any]]) -> dict[str, Any]:
    """The day each field's current value was recorded in an event (the document's ``seen``; a value only in
    the patient record has none): :func:`current_entry`."""
    out: dict[str, Any] = {}
    for name, entries in history.items():
        entry = current_entry(entries, provisional.get(name))
        if entry is not None and len(entry) > 3 and entry[3] is not None:
            out[name] = entry[0]
    return out


def recorded_hours(history: dict[str, list[list[Any]]], provisional: Mapping[str, Collection[Any]]) -> dict[str, Any]:
    """The clock hours each field's current value was recorded at (the document's ``seen_hours``; 0 for the
    patient record): :func:`current_entry`."""
    out: dict[str, Any] = {}
    for name, entries in history.items():
        entry = current_entry(entries, provisional.get(name))
        if entry is not None:
            out[name] = entry[2]
    return out


def inputs_checksum(patient: Any, events: Any, revisions: Any = None, acted: Any = None, arrived: Any = None) -> str:
    """A hash of the recorded inputs (the patient as given, the events as recorded and, when there
    are any, the revisions of events, the moves taken on decisions and the order in which the events arrived
    when it is not their timeline order), as canonical JSON: it detects an
    edited or corrupt input in a stored document. It is not a signature (anyone can recompute it); what
    a session derives is checked by replaying these inputs instead."""
    inputs = {"patient": patient, "events": events}
    if revisions:  # a document without revisions hashes as it did before they existed
        inputs["revisions"] = revisions
    if acted:  # the same for the moves taken on decisions
        inputs["acted"] = acted
    if arrived:  # and for the arrival order (none: the timeline order)
        inputs["arrived"] = arrived
    try:
        text = json.dumps(inputs, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):  # keys of mixed types in a free-form value: not JSON, hashed as shown
        text = ascii(repr(inputs))
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def arrival(st: SessionState, event: int) -> int:
    """The arrival rank of event ``event`` of ``st`` (SessionState.arrived): its index when the events arrived in
    timeline order; the patient record (a negative index) arrived before every event."""
    arrived = st.arrived
    return arrived[event] if 0 <= event < len(arrived) else event


def arrival_order(ranks: list[int]) -> tuple[int, ...]:
    """``ranks`` (distinct numbers, one per event in timeline order: the greater, the later it arrived) as
    SessionState.arrived keeps them: ranks 0 to n-1, or empty when they are the timeline order."""
    order = sorted(range(len(ranks)), key=ranks.__getitem__)
    if order == list(range(len(ranks))):
        return ()
    out = [0] * len(ranks)
    for rank, at in enumerate(order):
        out[at] = rank
    return tuple(out)


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document in the current format (format 1 counted time in days only)."""
    if doc.get("format") != 1:
        return doc
    out = copy.deepcopy(doc)
    out["format"] = SESSION_FORMAT
    out["hours"] = None if doc.get("day") is None else doc["day"] * 24
    out["seen_hours"] = {name: day * 24 for name, day in doc.get("seen", {}).items()}
    out["history"] = {name: [[day, value, day * 24, None] for day, value, *_ in entries]
                      for name, entries in doc.get("history", {}).items()}
    out["frozen"] = {}
    return out
