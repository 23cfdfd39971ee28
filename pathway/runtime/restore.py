"""Restoring a dumped or stored session without trusting it.

A session document (:meth:`Session.dump`) holds the recorded inputs (the patient as given, the
events as observed) and everything the pathway derived from them. :func:`restore` trusts the inputs
only, and only under the rules they ran under:

1. the document is a mapping (PW520) of the expected shape, checked by a schema (PW521);
2. it names this pathway and a format this version reads (PW522), and was dumped under this
   pathway version, profile and fingerprint: the contents of every file the load read, the
   profile and the parameter values (PW523);
3. its recorded inputs pass the pathway's input validation as they are replayed through the engine,
   and its checksum matches them (PW524; an engine failure on replay is PW525);
4. every other key equals what the replay gives, value and type (PW525): a state, path, trace,
   fact, derived or kept value that the events do not produce is refused.

The session returned is the replay's own, so nothing reaches it that the events do not produce.
``restore(pathway, doc, replay=True)`` moves a document of other rules (step 2's PW523 only) to these:
steps 1 and 3 as above, then ``Session.migration`` lists what changed for the patient.
Every refusal is a :class:`SessionError` whose diagnostics name the key (``state``,
``events[3].crp_mg_l``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pathway.core.errors import Diagnostic, EngineError, InputError, SessionError, TransitionRefused, suggest
from pathway.definition.clock import MAX_DAY
from pathway.runtime import changes
from pathway.runtime.facts import recordable
from pathway.runtime.session import Session, replay_event, start_session
from pathway.runtime.state import FORMATS, SessionState, evaluation_dict, inputs_checksum

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["restore", "replay", "resume_verified", "session_error", "key_text"]

_Day = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_DAY)]
#: hours since admission: a value recorded shortly before the admission time (bloods in the emergency
#: department) is a little below 0, while its clinical day is 0
_Hours = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-24 * MAX_DAY, le=24 * MAX_DAY)]
_Int = Annotated[int, Field(strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Quantity(_Model):
    value: Any  # checked by the input validation on replay
    unit: Any


class _Patient(BaseModel):
    """The patient as given: its fields are checked by the input validation on replay."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: Any

    @field_validator("id")
    @classmethod
    def _text_or_whole_number(cls, value: Any) -> Any:
        # one message for the one rule (a union type would report each of its members)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("a patient id is text or a whole number")
        return value


class _Event(BaseModel):
    """An event as recorded: ``day``, an optional ``time`` and ``note``, the quantities as given, and
    canonical field values (checked by the input validation on replay)."""

    model_config = ConfigDict(extra="allow", strict=True)
    day: _Day
    time: str | None = None
    note: Any = None
    given: dict[str, _Quantity] | None = None


class _Revision(_Model):
    """A late placement, amendment or retraction of an event (a log: checked by the checksum)."""

    op: Literal["insert", "amend", "retract", "replay"]
    id: Any
    event: Annotated[int, Field(strict=True, ge=0)]
    day: _Day | None = None
    latest_day: _Day | None = None
    was: dict[str, Any] | None = None
    reason: str | None = None
    #: a replay under other rules: the version, profile and fingerprint it ran under, and what changed
    replayed: dict[str, Any] | None = None


class _Acted(_Model):
    """A move a rule took on a recorded decision (SessionState.acted: a record, checked by the checksum)."""

    event: Annotated[int, Field(strict=True, ge=0)]
    day: _Day
    from_: str = Field(alias="from")
    to: str
    rule: str
    field: str
    value: Any
    recorded: Annotated[int, Field(strict=True, ge=0)] | None


class _Inputs(BaseModel):
    """What a replay reads: the patient and the events."""

    model_config = ConfigDict(extra="ignore", strict=True)
    patient: _Patient
    events: list[_Event]


class _Document(_Model):
    """A session document of any format this version reads (the keys a format lacks are checked apart)."""

    format: Literal[1, 2, 3, 4, 5]
    pathway: str
    version: str
    profile: str | None
    fingerprint: str
    checksum: str
    patient: _Patient
    admission: str | None
    facts: dict[str, Any]
    state: str
    path: list[str] = Field(min_length=1)
    entered_day: _Day
    day: _Day | None
    events: list[_Event]
    trace: list[dict[str, Any]]
    evaluations: list[dict[str, Any]] | None = None  # formats 1-4 (format 5 makes them again by replay)
    current: list[dict[str, Any]]
    derived: dict[str, Any]
    seen: dict[str, _Day]
    history: dict[str, list[list[Any]]]
    entered: dict[str, _Day]
    # keys added after format 1 was first written (a document may lack them; the replay fills them)
    state_event: _Int = -1
    recorded_event: dict[str, _Int] = Field(default_factory=dict)
    warnings: list[dict[str, Any]] = Field(default_factory=list)
    # format 2 and later
    hours: _Hours | None = None
    seen_hours: dict[str, _Hours] | None = None
    frozen: dict[str, dict[str, Any]] | None = None
    # format 4 and later
    revisions: list[_Revision] = Field(default_factory=list)
    acted: list[_Acted] = Field(default_factory=list)
    #: the order the events arrived in, when it is not the timeline order (checked apart: _arrival_problem)
    arrived: list[Annotated[int, Field(strict=True, ge=0)]] = Field(default_factory=list)


#: keys every document of format 2 or later has
_SINCE_FORMAT_2 = ("hours", "seen_hours", "frozen")
#: keys compared with nothing: they identify the rules and the inputs, and are checked before the replay
_IDENTITY = {"format", "pathway", "version", "profile", "fingerprint", "checksum"}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_text(path: tuple[Any, ...]) -> str:
    """``('events', 3, 'crp_mg_l')`` -> ``events[3].crp_mg_l``; a key that is not a plain name is
    quoted as JSON, so no text from the document reaches a message raw."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _NAME.fullmatch(part) and len(part) <= 80:
            out += f".{part}" if out else part
        else:
            out += f"[{_show(part, 40)}]"
    return out or "document"


def _show(value: Any, limit: int = 60) -> str:
    """A value as a message shows it: JSON, ASCII only, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=True, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = ascii(type(value).__name__)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(text: str) -> str:
    """Control characters of a message or location escaped (an input diagnostic may quote the document)."""
    return text if text.isprintable() else ascii(text)[1:-1]


def session_error(key: str, code: str, message: str, hint: str | None = None) -> SessionError:
    return SessionError([Diagnostic(_clean(key), 0, 0, code, _clean(message), hint)])


def _schema_errors(exc: ValidationError, model: type[BaseModel]) -> SessionError:
    out: list[Diagnostic] = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
        where = key_text(loc)
        if err["type"] == "extra_forbidden":
            known = sorted(info.alias or name for name, info in model.model_fields.items()) if len(loc) == 1 else []
            out.append(Diagnostic(where, 0, 0, "PW521", "unknown key", suggest(str(loc[-1]), known)))
        elif err["type"] == "missing":
            out.append(Diagnostic(where, 0, 0, "PW521", "missing key"))
        else:
            # a validator's own message without pydantic's "Value error, " in front
            msg = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
            out.append(Diagnostic(where, 0, 0, "PW521", f"{_clean(msg)}, not {_show(err.get('input'))}"))
    return SessionError(out[:50])


def _identity(pathway: Pathway, doc: Mapping[str, Any]) -> None:
    """PW522/PW523: the document is for this pathway, in a format this version reads, and was dumped
    under this version, profile and fingerprint."""
    d = pathway.definition
    fmt = doc.get("format")
    if type(fmt) is not int or fmt not in FORMATS:
        raise session_error("format", "PW522", f"session format {_show(fmt)} is not one this version reads "
                                               f"({', '.join(map(str, FORMATS))})")
    if doc.get("pathway") != d.id:
        raise session_error("pathway", "PW522", f"the session is for pathway {_show(doc.get('pathway'))}, not '{d.id}'")
    if doc.get("version") != d.version:
        raise session_error("version", "PW523", f"the session ran under {d.id} {_show(doc.get('version'))}; this is "
                                                f"{d.version}: Pathway.restore(doc, replay=True) re-runs its events under it")
    if "profile" not in doc:
        raise session_error("profile", "PW521", "missing key")
    if doc["profile"] != d.profile:
        shown = "no profile" if d.profile is None else f"profile '{d.profile}'"
        raise session_error("profile", "PW523", f"the session was dumped under profile {_show(doc.get('profile'))}; "
                                                f"this pathway is loaded under {shown}")
    if "fingerprint" not in doc:
        raise session_error("fingerprint", "PW523", "the session carries no pathway fingerprint (dumped before sessions "
                                                    "had one, or edited): Pathway.replay(doc) re-runs its events")
    if doc["fingerprint"] != pathway.fingerprint:
        raise session_error("fingerprint", "PW523",
                            f"the session was dumped under other rule files or parameter values (fingerprint "
                            f"{_show(doc['fingerprint'], 40)}; this pathway's is \"{pathway.fingerprint}\"): "
                            "Pathway.restore(doc, replay=True) re-runs its events under these rules")


def _refused(exc: InputError) -> SessionError:
    return SessionError([Diagnostic(_clean(x.file), 0, 0, "PW524", f"recorded input refused: {_clean(x.message)} ({x.code})")
                         for x in exc.diagnostics])


def _replayed(pathway: Pathway, patient: Mapping[str, Any], events: list[dict[str, Any]],
              acted: list[dict[str, Any]] | None = None, evaluations: str = "none",
              arrived: list[int] | None = None) -> Session:
    """The session the recorded inputs give (input refusals PW524, engine failures PW525); ``acted``: the
    moves taken on decisions that stand (SessionState.acted); ``evaluations``: the evaluation records the
    session keeps (Session.keep_evaluations); ``arrived``: the order the events arrived in (SessionState.arrived,
    checked by _checked)."""
    try:
        session = start_session(pathway, dict(patient))
        session.keep_acted(acted or [])
        session.keep_arrived(arrived or [])
        session.keep_evaluations(evaluations)
    except InputError as exc:
        raise _refused(exc) from None
    except (ArithmeticError, ValueError, TypeError) as exc:  # an input the validation could not even read
        raise session_error("patient", "PW524", f"recorded patient refused: {type(exc).__name__}: {exc}") from None
    for i, entry in enumerate(events):
        try:
            replay_event(session, entry)
        except InputError as exc:
            raise _refused(exc) from None
        except (TransitionRefused, EngineError) as exc:
            raise session_error(f"events[{i}]", "PW525",
                                f"the recorded event does not replay under this pathway: {exc}") from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise session_error(f"events[{i}]", "PW524",
                                f"recorded event refused: {type(exc).__name__}: {str(exc)[:200]}") from None
    return session


def _differences(given: Any, replayed: Any, path: tuple[Any, ...], prefix: bool) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Where ``given`` differs from ``replayed`` in value or JSON type (``prefix``: a format-1 history
    entry is the first elements of the replayed one)."""
    if isinstance(replayed, Mapping):
        if not isinstance(given, Mapping):
            yield path, f"is {_show(given)}; its events give a mapping"
            return
        for key in given:
            if key not in replayed:
                yield (*path, key), "is not produced by its events"
                return
        for key in replayed:
            if key not in given:
                yield (*path, key), f"is missing; its events give {_show(replayed[key])}"
                return
        for key in replayed:
            yield from _differences(given[key], replayed[key], (*path, key), prefix)
        return
    if isinstance(replayed, (list, tuple)):
        if not isinstance(given, (list, tuple)):
            yield path, f"is {_show(given)}; its events give a list"
            return
        if len(given) != len(replayed) and not (prefix and 2 <= len(given) < len(replayed)):
            yield path, f"has {len(given)} entries; its events give {len(replayed)}"
            return
        for i, (a, b) in enumerate(zip(given, replayed, strict=False)):
            yield from _differences(a, b, (*path, i), prefix)
        return
    if _kind(given) != _kind(replayed) or given != replayed:
        yield path, f"is {_show(given)}; its events give {_show(replayed)}"


def _kind(value: Any) -> str:
    """The JSON type of a value (bool apart from int, int apart from float)."""
    if value is None or isinstance(value, (bool, str)):
        return type(value).__name__
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


def _same(given: Any, replayed: Any) -> bool:
    """Equal as JSON (value and type: 1, 1.0 and true differ); the fast path of :func:`_differences`."""
    try:
        return json.dumps(given, sort_keys=True) == json.dumps(replayed, sort_keys=True)
    except (TypeError, ValueError):  # not JSON (keys of mixed types, a Python object): compared item by item
        return next(_differences(given, replayed, (), False), None) is None


def _compare(doc: Mapping[str, Any], replayed: dict[str, Any]) -> None:
    legacy = doc["format"] == 1
    for key, value in doc.items():
        prefix = legacy and key == "history"
        if key in _IDENTITY or (not prefix and _same(value, replayed[key])):
            continue
        # (a difference JSON sees and equality does not, such as -0.0 for 0.0, changes nothing: the session
        # returned is the replay's)
        for where, message in _differences(value, replayed[key], (key,), prefix):
            raise session_error(key_text(where), "PW525", f"{message}: the session records what its events do not produce")


def restore(pathway: Pathway, doc: Any, *, replay: bool = False) -> Session:
    """Resume a session from :meth:`Session.dump` output, verified by replaying its recorded events
    (see the module docstring); SessionError when anything in it cannot be trusted.

    With ``replay=True`` a document dumped under another version, profile or rule files (PW523) is not
    refused: its recorded patient and events (checked by their checksum) are run under this pathway, and
    the session returned carries in ``migration`` what the patient showed then against what these rules
    give now; the replay is kept in its ``revisions``. A document of these rules
    is restored as without it (``migration`` None)."""
    try:
        if replay and isinstance(doc, Mapping):
            try:
                _identity(pathway, doc)
            except SessionError as exc:
                if [d.code for d in exc.diagnostics] == ["PW523"]:
                    return _migrate(pathway, doc)
                raise
        return _restore(pathway, doc)
    except RecursionError:
        raise session_error("document", "PW520", "the session document is nested too deeply to read") from None


def _restore(pathway: Pathway, doc: Any) -> Session:
    if not isinstance(doc, Mapping):
        raise session_error("document", "PW520", f"a session document is a mapping, not {type(doc).__name__}")
    _identity(pathway, doc)
    _checked(doc)
    # The replay comes first so that an input the pathway refuses is named by its key; a valid input that
    # was edited is found by the checksum.
    # a document before format 5 holds the evaluations of every event: they are compared too, then dropped
    earlier = doc["format"] < 5 and doc.get("evaluations") is not None
    session = _replayed(pathway, doc["patient"], doc["events"], doc.get("acted"), "all" if earlier else "none",
                        doc.get("arrived"))
    revisions = _checksummed(doc)
    # the revisions are the record of how the timeline came to be, not something its events produce
    session.keep_revisions(copy.deepcopy(revisions))
    values = session.state_values()
    if earlier:
        values = {**values, "evaluations": [evaluation_dict(e) for e in session.state_evaluations()]}
    _compare(doc, values)
    if earlier:
        session.keep_evaluations("none")
    return session


def _checksummed(doc: Mapping[str, Any]) -> list[Any]:
    """The document's revisions, once its checksum matches its recorded patient, events, revisions and
    moves taken on decisions (PW524)."""
    revisions: list[Any] = doc.get("revisions") or []
    if doc["checksum"] != inputs_checksum(doc["patient"], doc["events"], revisions, doc.get("acted") or [],
                                          doc.get("arrived")):
        raise session_error("checksum", "PW524", "the checksum does not match the recorded patient and events: "
                                                 "an input was edited or is corrupt")
    return revisions


def _checked(doc: Mapping[str, Any]) -> None:
    """The shape and format checks of a restore (before anything runs)."""
    try:
        _Document.model_validate(doc)
    except ValidationError as exc:
        raise _schema_errors(exc, _Document) from None
    if doc["format"] >= 2:
        missing = [k for k in _SINCE_FORMAT_2 if k not in doc or (doc[k] is None and k != "hours")]
        if missing:
            raise SessionError([Diagnostic(k, 0, 0, "PW521", f"missing key (format {doc['format']} has it)")
                                for k in missing])
    if doc["format"] >= 5 and "evaluations" in doc:
        raise session_error("evaluations", "PW522", "format 5 keeps no evaluations (a restore makes them again)")
    if doc["format"] < 3 and any("given" in e for e in doc["events"]):
        raise session_error("format", "PW522", f"format {doc['format']} has no quantities as given ('given')")
    if doc["format"] < 4 and ("revisions" in doc or any("id" in e for e in doc["events"])):
        raise session_error("format", "PW522", f"format {doc['format']} has no event ids or revisions")
    if "arrived" in doc:
        problem = _arrival_problem(doc["arrived"], len(doc["events"]))
        if problem is not None:
            raise session_error(*problem)


def _arrival_problem(arrived: list[int], events: int) -> tuple[str, str, str] | None:
    """Where and why ``arrived`` (whole numbers, the schema checked) is not an order of arrival of ``events``
    events other than their timeline order (which a document records by leaving the key out); else None."""
    if len(arrived) != events:
        return "arrived", "PW521", f"has {len(arrived)} entries; the document has {events} events"
    seen: set[int] = set()
    for i, rank in enumerate(arrived):
        if rank >= events or rank in seen:
            return (f"arrived[{i}]", "PW521", f"is {rank}: each event's rank of arrival is one of 0 to {events - 1}, "
                                               "each once")
        seen.add(rank)
    if arrived == list(range(events)):
        return "arrived", "PW521", "is the timeline order: a document records it by leaving the key out"
    return None


def _migrate(pathway: Pathway, doc: Mapping[str, Any]) -> Session:
    """A document of other rules, replayed under these: checked for shape and checksum as a restore is (its
    inputs are what it recorded), then run; the session keeps its revisions plus this replay."""
    _checked(doc)  # (its format and pathway were checked by _identity, which found only other rules)
    revisions = _checksummed(doc)
    session = _replayed(pathway, doc["patient"], doc["events"], doc.get("acted"), arrived=doc.get("arrived"))
    d = pathway.definition
    before = {"version": doc["version"], "profile": doc["profile"], "fingerprint": doc["fingerprint"]}
    after = {"version": d.version, "profile": d.profile, "fingerprint": pathway.fingerprint}
    differences = changes.differences(changes.recorded_view(dict(doc), lambda f: recordable(pathway, f)),
                                      changes.compared_view(session.result()))
    revision = {"op": "replay", "id": None, "event": len(doc["events"]),
                "replayed": {"from": before, "to": after, "differences": copy.deepcopy(differences)}}
    session.keep_revisions([*copy.deepcopy(revisions), revision])
    session.migration = {"from": before, "to": after, "events": len(doc["events"]), "differences": differences}
    return session


def replay(pathway: Pathway, doc: Any) -> Session:
    """A new session from the patient and events recorded in a session document, run under this
    pathway whatever rules, profile or version the document was dumped under; nothing else in the
    document is read. SessionError when the document has no valid patient and events, or the
    pathway refuses one of them."""
    try:
        if not isinstance(doc, Mapping):
            raise session_error("document", "PW520", f"a session document is a mapping, not {type(doc).__name__}")
        if doc.get("pathway") != pathway.id:
            raise session_error("pathway", "PW522", f"the session is for pathway {_show(doc.get('pathway'))}, "
                                                    f"not '{pathway.id}'")
        try:
            _Inputs.model_validate(doc)
        except ValidationError as exc:
            raise _schema_errors(exc, _Inputs) from None
        return _replayed(pathway, doc["patient"], doc["events"])
    except RecursionError:
        raise session_error("document", "PW520", "the session document is nested too deeply to read") from None


def resume_verified(pathway: Pathway, doc: dict[str, Any]) -> Session:
    """A session from a document already verified under this pathway: only for a document whose text is
    byte-identical to one that :func:`restore` accepted or that this process dumped itself (the store
    checks a hash of the text), so replaying it again would give the same session."""
    return Session(pathway, SessionState.from_doc(doc))
