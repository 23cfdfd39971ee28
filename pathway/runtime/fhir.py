"""FHIR resources fed to a session: one event per clinical moment, resends, corrections, withdrawals.

:func:`pathway.loading.fhir.read_fhir` turns resources into items; this module applies them to a
:class:`~pathway.runtime.session.Session` through its event feed (``observe``, ``amend``, ``retract``):

- **One event per clinical moment.** Every resource of one effective time goes into one event (id
  ``fhir:<time>``, e.g. ``fhir:2026-03-05T08:00:00Z``), whose ``sources`` list the resources and what
  each gave. A laboratory panel drawn at 08:00 is evaluated together, whatever order its results
  arrive in: a result for a moment already recorded amends that moment's event, and the course is
  evaluated again from it. So the result does not depend on the order resources arrive in, and a late
  result (a day-3 CRP after day-4 observations) re-evaluates the decisions from its time.
- **Resends and corrections.** A resource sent again with the same content is a duplicate (nothing
  changes); with other content it must be a correction (status ``amended``/``corrected``, or a
  transaction ``PUT``), which replaces what it gave, else it is refused (PW413). ``entered-in-error``
  (a cancelled order, a ``DELETE``) withdraws it.
- **Decisions where due.** An order records the first of its decisions (codes file, ``records``) that
  the session accepts at its time (``rescue_choice`` in rescue selection, ``sequential_rescue_choice``
  during rescue); when none is due (a dose change of the agent already chosen) it records its other
  values and the result says so under ``fhir.ignored``. A decision not due when it arrived is tried
  again when a late or corrected result re-evaluates the course before it.
- **All or nothing.** A refusal (a malformed resource, an implausible value, another patient's
  resource) leaves the session exactly as it was, and names the resource and the path of the value.

The result returned is the session's result with ``changes`` (what the input changed, as for
``Session.observe``) and ``fhir``: the resources ``applied`` (with the event and fields), the
``duplicates``, those ``withdrawn`` and those ``ignored`` (with the reason).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pathway.core.errors import Diagnostic, InputError
from pathway.core.yamlsafe import Located
from pathway.definition.clock import parse_time
from pathway.definition.inputs import shown_value
from pathway.loading.fhir import FhirInput, Item, read_fhir
from pathway.runtime.session import Session, observed_form, start_session
from pathway.runtime.state import arrival_order

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["GROUP_PREFIX", "observe_fhir", "start_fhir", "events_from_bundle"]

#: The id of the event of one clinical moment: this prefix and the UTC time.
GROUP_PREFIX = "fhir:"

_FIELD = re.compile(r"^events\[\d+\]\.([A-Za-z_][A-Za-z0-9_]*)")


def start_fhir(pathway: Pathway, data: Any, *, doc: Located | None = None, name: str = "fhir",
               patient_id: str | None = None) -> tuple[Session, dict[str, Any]]:
    """A new session from a FHIR Bundle (or one resource): its Patient (id, age), the admission time (an
    Encounter's ``period.start``), patient-record Observations, then every resource applied. Returns the
    session and the result (with ``changes`` and the ``fhir`` report). ``patient_id``: the patient the
    input must be of (a CDS Hooks call's ``context.patientId``); a Patient or subject of another patient is
    refused (PW434). InputError names what is refused."""
    fin = read_fhir(pathway.definition, data, doc=doc, name=name, expect_patient=patient_id)
    if "id" not in fin.patient:
        raise InputError([Diagnostic(name, 0, 0, "PW434", "no patient: give a Patient resource, or a subject "
                                                          "reference (Patient/<id>) on the resources")])
    try:
        session = pathway.start(fin.patient)
    except InputError as exc:
        raise InputError(_located(exc.diagnostics, fin.patient_paths, doc)) from None
    return session, _apply(session, fin, doc)


def observe_fhir(session: Session, data: Any, *, doc: Located | None = None, name: str = "fhir",
                 detail: str = "full") -> dict[str, Any]:
    """Apply a FHIR resource or Bundle to ``session`` (see the module docstring); the result after it
    (``detail="summary"``: without the trace, as :meth:`Session.observe` gives it).

    A patient-record field (history) sent once the session has started is not applied (it is listed
    under ``fhir.ignored``). Raises InputError (PW430-PW437, PW413, and the session's own refusals,
    located at the resource); the session is then left exactly as it was."""
    fin = read_fhir(session.pathway.definition, data, doc=doc, name=name, patient_id=session.patient_id,
                    admission=session.admission)
    return _apply(session, fin, doc, detail)


def events_from_bundle(pathway: Pathway, data: Any, *, doc: Located | None = None,
                       name: str = "fhir") -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A FHIR Bundle as a case: ``(patient, events, ignored)``. The events are those a session records
    from it (one per clinical moment, decisions resolved where due, each with its ``sources``), so
    ``{"patient": patient, "events": events}`` run as a case file gives the same result."""
    session, result = start_fhir(pathway, data, doc=doc, name=name)
    events = [observed_form(entry) for entry in session.dump()["events"]]
    return copy.deepcopy(session.dump()["patient"]), events, result["fhir"]["ignored"]


# -- applying ---------------------------------------------------------------------------------

class _Feed:
    def __init__(self, session: Session, fin: FhirInput, doc: Located | None):
        self.session = session
        self.fin = fin
        self.doc = doc
        self.report: dict[str, list[dict[str, Any]]] = {"applied": [], "duplicates": [], "withdrawn": [],
                                                         "ignored": list(fin.ignored)}
        for item in fin.patient_items:  # a new session's patient record
            self.report["applied"].append({"resource": item.key, "where": item.where, "event": "patient",
                                           "fields": sorted(item.values)})
        self.operations: list[dict[str, Any]] = []
        #: time -> {"id", "members": {key: member}, "new": bool}
        self.groups: dict[str, dict[str, Any]] = {}
        self.owner: dict[str, str] = {}
        self.items: dict[str, Item] = {}
        for entry in session.recorded_events():
            eid, sources = entry.get("id"), entry.get("sources")
            if isinstance(eid, str) and eid.startswith(GROUP_PREFIX) and isinstance(sources, list):
                time = eid[len(GROUP_PREFIX):]
                members = {m["resource"]: copy.deepcopy(m) for m in sources if isinstance(m, dict) and "resource" in m}
                self.groups[time] = {"id": eid, "members": members, "new": False}
                self.owner.update({key: time for key in members})

    def plan(self) -> set[str]:
        """Sort the items into the moments they change; the moments touched."""
        touched: set[str] = set()
        admission = self.session.admission
        for item in sorted(self.fin.items, key=lambda it: (it.time or "", it.key)):
            self.items[item.key] = item
            seen = {"resource": item.key, "where": item.where}
            if item.action == "withdraw":
                time = self.owner.pop(item.key, None)
                if time is None:
                    self.report["ignored"].append({**seen, "reason": f"withdrawn ({item.status}) but never recorded"})
                    continue
                del self.groups[time]["members"][item.key]
                touched.add(time)
                self.report["withdrawn"].append({**seen, "event": self.groups[time]["id"], "status": item.status})
                continue
            if item.patient_record:
                recorded = self.session.state_values()["patient"]
                if all(recorded.get(name) == value for name, value in item.values.items()):
                    self.report["duplicates"].append(seen)
                else:
                    self.report["ignored"].append({**seen, "reason": "a patient-record field ("
                                                   + ", ".join(item.values) + ") once the session has started"})
                continue
            assert item.time is not None
            if admission is not None and parse_time(item.time) < admission:
                self.report["ignored"].append({**seen, "reason": f"before the admission ({admission.isoformat()}Z)"})
                continue
            member = {"resource": item.key, "type": item.resource_type, "values": item.values, "decide": item.decide}
            time = self.owner.get(item.key)
            if time is not None:
                old = self.groups[time]["members"][item.key]
                if time == item.time and old["values"] == item.values and old["decide"] == item.decide:
                    self.report["duplicates"].append(seen)
                    continue
                if not item.correction:
                    raise InputError(self.locate([Diagnostic(item.where, 0, 0, "PW413", (
                        f"{item.key} was recorded with other values or at another time; send it as a correction "
                        "(status amended or corrected) to change it"))]))
                del self.groups[time]["members"][item.key]
                touched.add(time)
            group = self.groups.setdefault(item.time, {"id": GROUP_PREFIX + item.time, "members": {}, "new": True})
            group["members"][item.key] = {**member, "decided": None}
            self.owner[item.key] = item.time
            touched.add(item.time)
        return touched

    def event(self, time: str, choice: dict[str, int]) -> dict[str, Any]:
        """The event of one moment: the values of its members, each member's decision at ``choice``."""
        group = self.groups[time]
        values: dict[str, Any] = {}
        given_by: dict[str, str] = {}
        sources = []
        for key in sorted(group["members"]):
            member = group["members"][key]
            at = choice.get(key, 0)
            decided = member["decide"][at] if at < len(member["decide"]) else None
            member["decided"] = decided[0] if decided else None
            gives = dict(member["values"])
            if decided:
                gives[decided[0]] = decided[1]
            for name, value in gives.items():
                if name in values and values[name] != value:
                    where = self.items[key].where if key in self.items else key
                    raise InputError(self.locate([Diagnostic(where, 0, 0, "PW436", (
                        f"{key} gives {name} = {shown_value(value)} at {time}, and {given_by[name]} gave "
                        f"{shown_value(values[name])} at the same time"))]))
                values[name] = value
                given_by[name] = key
            sources.append(copy.deepcopy(member))
        return {"time": time, "id": group["id"], "sources": sources, **values}

    def settle(self, time: str, operation: Callable[[dict[str, Any]], dict[str, Any]], *, log: bool = True) -> None:
        """Apply the moment's event, each order falling back to its next decision while the one tried is
        not due (PW407); the last fallback records no decision."""
        group = self.groups[time]
        choice = {key: 0 for key in group["members"]}
        self.current = time
        while True:
            event = self.event(time, choice)
            try:
                result = operation(event)
                break
            except InputError as exc:
                fields = {m.group(1) for d in exc.diagnostics if d.code == "PW407" for m in [_FIELD.match(d.file)] if m}
                moved = False
                for key, member in group["members"].items():
                    if member["decided"] in fields:
                        choice[key] += 1
                        moved = True
                if not moved:
                    raise
        group["new"] = False
        if log:
            self.operations.append({k: v for k, v in result["changes"].items() if k != "items"})
        for key, member in group["members"].items():
            item = self.items.get(key)
            if item is None or item.action != "record" or self.owner.get(key) != time:
                continue
            given = sorted(member["values"]) + ([member["decided"]] if member["decided"] else [])
            self.report["applied"].append({"resource": key, "where": item.where, "event": group["id"], "fields": given})
            if member["decide"] and not member["decided"]:
                tried = ", ".join(f"{f} {v}" for f, v in member["decide"])
                self.report["ignored"].append({"resource": key, "where": item.where,
                                               "reason": f"no decision recorded ({tried}): none is due at {time}"})

    def day_of(self, time: str) -> float | None:
        admission = self.session.admission
        if admission is None:
            return None
        return round((parse_time(time) - admission).total_seconds() / 86400.0, 4)

    def run(self) -> None:
        session = self.session
        touched = self.plan()
        if not touched:
            return
        events = session.recorded_events()
        latest = events[-1]["day"] if events else None
        days = {t: self.day_of(t) for t in touched}
        if all(self.groups[t]["new"] for t in touched) and all(
                latest is None or (d is not None and d >= latest) for d in days.values()):
            for time in sorted(touched):  # later than everything recorded: appended in time order
                self.settle(time, functools.partial(session.observe, detail="summary"))
            return
        self.rebuild(events, touched)

    def rebuild(self, events: list[dict[str, Any]], touched: set[str]) -> None:
        """Evaluate the course again from the patient: every moment in time order, each order's decision
        resolved anew (the first that is due at its time), then put in place of the session's state with
        the revisions recorded. A late, corrected or withdrawn resource, and an order that is now due or
        no longer due, all come out of the same pass."""
        session = self.session
        timeline: list[tuple[float, int, str, Any]] = []  # (day, arrival, kind, event or moment)
        index: dict[str, int] = {}
        for i, entry in enumerate(events):
            eid = entry.get("id")
            if isinstance(eid, str) and eid.startswith(GROUP_PREFIX) and isinstance(entry.get("sources"), list):
                time = eid[len(GROUP_PREFIX):]
                index[time] = i
                if self.groups.get(time, {}).get("members"):
                    timeline.append((entry["day"], i, "moment", time))
            else:
                timeline.append((entry["day"], i, "event", observed_form(entry)))
        for time in sorted(touched):
            if time not in index and self.groups[time]["members"]:
                day = self.day_of(time)
                timeline.append((day if day is not None else 0.0, len(events), "moment", time))
        timeline.sort(key=lambda x: (x[0], x[1], x[3] if x[2] == "moment" else ""))
        recorded_before = session.state_values()
        fresh = start_session(session.pathway, copy.deepcopy(recorded_before["patient"]))
        # the order the events arrived in (SessionState.arrived): each as before, a moment new or changed now (in
        # time order among them); set before the replay, as Session._rebuild does
        before = recorded_before.get("arrived") or range(len(events))
        fresh.keep_arrived(list(arrival_order([len(events) + k if kind == "moment" and what in touched else before[i]
                                               for k, (_day, i, kind, what) in enumerate(timeline)])))
        placed: dict[str, int] = {}
        for k, (_day, _arrival, kind, what) in enumerate(timeline):
            # each moment's own result is not kept (only its changes, and here not even those): no trace copied
            if kind == "event":
                fresh.observe(what, detail="summary")
            else:
                self.settle(what, functools.partial(fresh.observe, detail="summary"), log=False)
                placed[what] = k
        first = min([placed[t] for t in touched if t in placed] + [index[t] for t in touched if t in index])
        revisions = list(session.state_values()["revisions"])
        latest = events[-1]["day"] if events else 0
        recorded = fresh.recorded_events()
        for time in sorted(touched):
            gid = GROUP_PREFIX + time
            op: dict[str, Any] = {}
            if time in index and time in placed:
                op = {"op": "amend", "id": gid, "event": placed[time], "was": events[index[time]]}
            elif time in index:
                op = {"op": "retract", "id": gid, "event": index[time], "was": events[index[time]],
                      "reason": "FHIR: every resource of this moment was withdrawn"}
            elif time in placed and recorded[placed[time]]["day"] < latest:
                op = {"op": "insert", "id": gid, "event": placed[time], "day": recorded[placed[time]]["day"],
                      "latest_day": latest}
            if op:
                revisions.append(copy.deepcopy(op))
            self.operations.append({"operation": op.get("op", "append"), "id": gid,
                                    "event": op.get("event", placed.get(time)), "reevaluated_from": first})
        fresh.keep_revisions(revisions)
        session.rollback((fresh.checkpoint()[0], session.checkpoint()[1]))

    def locate(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """The session's diagnostics (``events[4].crp_mg_l``) at the resource and value that gave them."""
        paths: dict[str, str] = {}
        group = self.groups.get(getattr(self, "current", ""))
        if group is not None:
            for key, member in group["members"].items():
                item = self.items.get(key)
                if item is not None:
                    paths.update({name: item.paths.get(name, item.where)
                                  for name in [*member["values"], *(d[0] for d in member["decide"])]})
                    if item.time_path is not None:  # the moment's time, as the first of its resources gives it
                        paths.setdefault("time", item.time_path)
        return _located(diagnostics, paths, self.doc)


def _located(diagnostics: list[Diagnostic], paths: dict[str, str], doc: Located | None) -> list[Diagnostic]:
    # a value refused is also refused inside the event's sources, which only repeat it
    shown = [d for d in diagnostics if ".sources" not in d.file] or diagnostics
    out = []
    for d in shown:
        match = _FIELD.match(d.file) or re.match(r"^patient\.([A-Za-z_][A-Za-z0-9_]*)", d.file)
        path = paths.get(match.group(1)) if match else None
        if path is None:
            out.append(d)
            continue
        message = f"{match.group(1) if match else ''}: {d.message}" if match and match.group(1) not in d.message \
            else d.message
        if doc is not None:
            line, col = doc.pos(_doc_path(path))
            out.append(Diagnostic(doc.file, line, col, d.code, f"{path}: {message}", d.hint))
        else:
            out.append(Diagnostic(path, 0, 0, d.code, message, d.hint))
    return out


def _doc_path(path: str) -> tuple[Any, ...]:
    """``Bundle.entry[3].resource.valueQuantity`` -> ``('entry', 3, 'resource', 'valueQuantity')``."""
    out: list[Any] = []
    for part in path.split(".")[1:]:
        name, *indexes = part.split("[")
        out.append(name)
        out.extend(int(i.rstrip("]")) for i in indexes)
    return tuple(out)


def _apply(session: Session, fin: FhirInput, doc: Located | None, detail: str = "full") -> dict[str, Any]:
    feed = _Feed(session, fin, doc)

    def run() -> dict[str, Any]:
        feed.run()
        return {"operation": "fhir" if feed.operations else "duplicate", "operations": feed.operations}

    try:
        result = session.as_one(run, detail=detail)
    except InputError as exc:  # nothing was applied (as_one put the session back)
        raise InputError(feed.locate(exc.diagnostics)) from None
    result["fhir"] = feed.report
    return result

