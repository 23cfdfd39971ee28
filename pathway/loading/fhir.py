"""Reading FHIR R4 input: resources and Bundles turned into a patient record and time-stamped items.

Every resource is first validated with the ``fhir.resources`` R4B models (FHIR 4.3, which reads the
R4 resources the pathway uses unchanged: Patient, Encounter, Observation, MedicationRequest,
MedicationAdministration, Procedure): a malformed one is refused with a located diagnostic naming
it and the path of the bad value (``Bundle.entry[3].resource.valueQuantity.value``, PW431), and
nothing of the input is used. The pathway's codes file (:mod:`pathway.definition.coding`) then says
what a resource records; this module knows no code itself.

- An Observation records the field its code maps to (a ``valueQuantity`` in a UCUM unit the code
  accepts, a ``valueInteger``, ``valueBoolean`` or coded answer), at its ``effectiveDateTime``
  (or ``effectivePeriod.start``, ``effectiveInstant``); components are read like Observations (a
  blood-pressure panel gives its systolic component).
- A MedicationRequest (at ``authoredOn``), MedicationAdministration (at its effective time) or
  Procedure (at its performed time) records the decisions its code maps to, in order of preference
  (the session records the first one that is due), and a MedicationRequest its daily dose.
- ``entered-in-error`` (and a cancelled order) withdraws what the resource recorded; ``amended`` and
  ``corrected`` (or a transaction ``PUT``) replace it; a ``DELETE`` entry withdraws it.
- The patient record: Patient (``id``; age on admission from ``birthDate``), the admission time from
  an Encounter's ``period.start``, and Observations of patient-record fields.

A resource that records nothing the pathway reads (an unknown code, a preliminary result, a
Condition) is not an error: it is listed in ``ignored`` with the reason. The item for a resource
keeps its key (``Observation/crp-3``, else its identifier, else a hash of its content), so a
resource sent again is recognised (:mod:`pathway.runtime.fhir` applies items to a session).
``fhir.resources`` is imported on first use, so ``import pathway`` does not load it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pathway.core.errors import Diagnostic, InputError
from pathway.core.yamlsafe import Located
from pathway.definition.clock import utc_naive
from pathway.definition.coding import UCUM_SYSTEM, ObservationMap, OrderMap, Terminology
from pathway.definition.inputs import shown_value
from pathway.definition.model import FieldDef
from pathway.definition.pathway import PathwayDef

__all__ = ["Item", "FhirInput", "read_fhir", "check_resources", "fhir_models", "BUNDLE_TYPES", "MAX_DEPTH", "MAX_VALUES"]

#: Bundle types read: a course sent at once (collection), a write (transaction, batch), a search result.
BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset")
#: FHIR input nested deeper than this, or holding more values, is refused before it is validated.
MAX_DEPTH = 64
MAX_VALUES = 2_000_000

_OBSERVATION_RECORDED = {"final", "amended", "corrected"}
_OBSERVATION_CORRECTED = {"amended", "corrected"}
_WITHDRAWN = {"entered-in-error"}
_ORDER_RECORDED = {"active", "completed", "stopped", "on-hold"}
_ORDER_INTENTS = {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
_ADMINISTERED = {"completed", "in-progress"}
_PERFORMED = {"completed", "in-progress", "preparation"}


@dataclass
class Item:
    """What one resource records (or withdraws), at one clinical time."""

    key: str
    #: where the resource is in the input (``Bundle.entry[3].resource``)
    where: str
    resource_type: str
    status: str
    #: ``record`` or ``withdraw``
    action: str = "record"
    #: the clinical time, UTC (``2026-03-05T08:00:00Z``); None for a withdrawal
    time: str | None = None
    #: field -> value as the session takes it (a quantity as ``{value, unit}`` in the pathway's unit)
    values: dict[str, Any] = field(default_factory=dict)
    #: decisions recorded, in order of preference: ``[field, value]`` pairs
    decide: list[list[Any]] = field(default_factory=list)
    #: field -> the path of the value that gave it (for located errors)
    paths: dict[str, str] = field(default_factory=dict)
    #: a correction of an earlier version (status amended/corrected, a transaction PUT)
    correction: bool = False
    #: True for a patient-record field (history): the session starts with it
    patient_record: bool = False
    #: the path of the element that gave the clinical time (``Bundle.entry[3].resource.effectiveDateTime``)
    time_path: str | None = None

    def content(self) -> dict[str, Any]:
        """What makes two versions of the resource the same (a resend is a duplicate)."""
        return {"time": self.time, "values": self.values, "decide": self.decide}


@dataclass
class FhirInput:
    """The patient record, the items in input order, and the resources ignored (with the reason)."""

    patient: dict[str, Any]
    items: list[Item]
    ignored: list[dict[str, Any]]
    #: the references that name the patient (``Patient/demo-001``, a Bundle fullUrl)
    patient_refs: set[str] = field(default_factory=set)
    #: patient-record field -> where its value came from (for located errors)
    patient_paths: dict[str, str] = field(default_factory=dict)
    #: the resources that went into the patient record
    patient_items: list[Item] = field(default_factory=list)


def fhir_models() -> Any:
    """The ``fhir.resources`` R4B package; InputError PW437 when the optional extra is not installed."""
    try:
        import fhir.resources.R4B as r4b
    except ImportError:
        raise InputError([Diagnostic("fhir", 0, 0, "PW437", "FHIR input needs the 'fhir' extra: "
                                                            "pip install 'asuc-pathway[fhir]'")]) from None
    return r4b


class _Reader:
    def __init__(self, definition: PathwayDef, doc: Located | None, name: str):
        if definition.codes is None:
            raise InputError([Diagnostic(name, 0, 0, "PW437", f"pathway '{definition.id}' has no codes file "
                                                              "('codes_file' in pathway.yaml): it cannot read FHIR")])
        self.d = definition
        self.codes: Terminology = definition.codes
        self.doc = doc
        self.name = name
        self.diags: list[Diagnostic] = []
        self.ignored: list[dict[str, Any]] = []
        self.items: list[Item] = []
        self.patient: dict[str, Any] = {}
        self.patient_refs: set[str] = set()
        self.birth: tuple[str, str] | None = None  # (birthDate, where)
        self.admissions: list[tuple[datetime, str, str]] = []
        self.media: dict[str, dict[str, Any]] = {}  # Medication resources by reference
        #: the patient the input must be of (a session's, a CDS Hooks call's context.patientId)
        self.expected: str | None = None

    # -- diagnostics ---------------------------------------------------------------------
    def fail(self, path: tuple[Any, ...], code: str, message: str) -> None:
        where = _fhir_path(path)
        if self.doc is not None:
            line, col = self.doc.pos(path)
            self.diags.append(Diagnostic(self.doc.file, line, col, code, f"{where}: {message}"))
        else:
            self.diags.append(Diagnostic(where, 0, 0, code, message))

    def ignore(self, path: tuple[Any, ...], key: str, reason: str) -> None:
        self.ignored.append({"resource": key, "where": _fhir_path(path), "reason": reason})

    # -- input ---------------------------------------------------------------------------
    def read(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.fail((), "PW430", f"FHIR input is a resource or a Bundle (a JSON object), not {shown_value(data)}")
            return
        problem = _size_problem(data)
        if problem is not None:
            self.fail((), "PW430", problem)
            return
        models = fhir_models()
        rtype = data.get("resourceType")
        if rtype != "Bundle":
            self.resource(models, data, (), None)
            return
        if data.get("type") not in BUNDLE_TYPES:
            self.fail(("type",), "PW430", f"a Bundle of type {shown_value(data.get('type'))} is not read (read: "
                                          f"{', '.join(BUNDLE_TYPES)})")
            return
        entries = data.get("entry", [])
        shell = {k: v for k, v in data.items() if k != "entry"}
        if isinstance(entries, list):
            shell["entry"] = [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
                              for e in entries]
        self.validate(models, "Bundle", shell, ())
        if self.diags:
            return
        for i, entry in enumerate(entries):
            resource = entry.get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") == "Medication":
                self.validate(models, "Medication", resource, ("entry", i, "resource"))
                for ref in _refs_of(resource, entry):
                    self.media[ref] = resource
        # the Patient first: which patient the input is of is known before any resource that names one
        for i, entry in enumerate(entries):
            resource = entry.get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                before = len(self.diags)
                self.resource(models, resource, ("entry", i, "resource"), entry)
                if len(self.diags) == before and isinstance(entry.get("fullUrl"), str):
                    self.patient_refs.add(entry["fullUrl"])
        for i, entry in enumerate(entries):
            at = ("entry", i)
            request = entry.get("request") or {}
            resource = entry.get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                continue
            if resource is None:
                if request.get("method") == "DELETE" and isinstance(request.get("url"), str):
                    key = request["url"].split("?")[0].strip("/")
                    self.items.append(Item(key=key, where=_fhir_path(at), resource_type=key.split("/")[0],
                                           status="deleted", action="withdraw"))
                else:
                    self.ignore(at, str(entry.get("fullUrl", "")), "an entry without a resource")
                continue
            self.resource(models, resource, at + ("resource",), entry)

    def validate(self, models: Any, rtype: Any, data: dict[str, Any], at: tuple[Any, ...]) -> bool:
        """Validate with the R4B model of ``rtype``; PW431 for each problem (located)."""
        try:
            model = models.get_fhir_model_class(rtype) if isinstance(rtype, str) else None
        except Exception:  # noqa: BLE001 - fhir.resources raises ValueError (or worse) for an unknown name
            model = None
        if model is None:
            self.fail(at + ("resourceType",), "PW431", f"{shown_value(rtype)} is not a FHIR R4 resource type")
            return False
        try:
            model.model_validate(data)
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, or an error of fhir_core itself
            errors = exc.errors() if hasattr(exc, "errors") and callable(exc.errors) else None
            if not errors:
                self.fail(at, "PW431", f"not a valid {rtype}: {shown_value(str(exc))}")
                return False
            for err in errors[:20]:
                loc = tuple(x for x in err.get("loc", ()) if isinstance(x, (str, int)))
                message = str(err.get("msg", "invalid"))
                if err.get("type") == "extra_forbidden":
                    message = "unknown element (not in FHIR R4)"
                self.fail(at + loc, "PW431", f"{message} (got {shown_value(err.get('input'))})"
                          if err.get("type") != "missing" else f"{rtype} needs this element")
            return False
        return True

    def resource(self, models: Any, r: dict[str, Any], at: tuple[Any, ...], entry: dict[str, Any] | None) -> None:
        rtype = r.get("resourceType")
        if not self.validate(models, rtype, r, at):
            return
        key = _key(r, entry)
        correction = bool(entry and (entry.get("request") or {}).get("method") == "PUT")
        handler = {"Patient": self.patient_resource, "Encounter": self.encounter, "Observation": self.observation,
                   "MedicationRequest": self.order, "MedicationAdministration": self.order,
                   "Procedure": self.order}.get(str(rtype))
        if handler is None:
            if rtype != "Medication":
                self.ignore(at, key, f"{rtype} is not read by this pathway")
            return
        handler(r, at, key, correction)

    def subject_ok(self, r: dict[str, Any], at: tuple[Any, ...], name: str = "subject") -> bool:
        ref = (r.get(name) or {}).get("reference")
        if ref is None or not self.patient_refs:
            if ref is not None:
                self.patient_refs.add(ref)
            return True
        if ref in self.patient_refs or any(ref.endswith("/" + p) for p in self.patient_refs if p.startswith("Patient/")):
            return True
        self.fail(at + (name, "reference"), "PW434", f"{shown_value(ref)} is another patient than "
                                                     f"{' or '.join(sorted(self.patient_refs))}: not recorded")
        return False

    # -- resources -----------------------------------------------------------------------
    def patient_resource(self, r: dict[str, Any], at: tuple[Any, ...], key: str, correction: bool) -> None:
        pid = r.get("id")
        if pid is None:
            self.fail(at + ("id",), "PW434", "a Patient needs its id (the pathway's patient id)")
            return
        if "id" in self.patient and self.patient["id"] != pid:
            self.fail(at + ("id",), "PW434", f"a second patient ({shown_value(pid)}, and {shown_value(self.patient['id'])}): "
                                             "FHIR input is one patient's")
            return
        if self.expected is not None and pid != self.expected:
            self.fail(at + ("id",), "PW434", f"the Patient is {shown_value(pid)}, not {shown_value(self.expected)}, "
                                             "the patient this input is for: nothing recorded")
            return
        self.patient["id"] = pid
        self.patient_refs.add(f"Patient/{pid}")
        if "birthDate" in r:
            self.birth = (r["birthDate"], _fhir_path(at + ("birthDate",)))

    def encounter(self, r: dict[str, Any], at: tuple[Any, ...], key: str, correction: bool) -> None:
        if not self.subject_ok(r, at):
            return
        start = (r.get("period") or {}).get("start")
        if start is None:
            self.ignore(at, key, "an Encounter without period.start gives no admission time")
            return
        moment = self.time(start, at + ("period", "start"))
        if moment is not None:
            self.admissions.append((moment[0], moment[1], key))

    def time(self, text: Any, at: tuple[Any, ...]) -> tuple[datetime, str] | None:
        """A FHIR dateTime with a clock time and its offset, as (UTC time, ``...Z`` text); PW432 otherwise."""
        if not isinstance(text, str) or "T" not in text:
            self.fail(at, "PW432", f"{shown_value(text)} is a date without a clock time: the pathway needs the time "
                                   "(e.g. 2026-03-05T08:00:00Z)")
            return None
        try:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                self.fail(at, "PW432", f"{shown_value(text)} has no offset (FHIR requires one with a time, "
                                       "e.g. 2026-03-05T08:00:00+01:00)")
                return None
            moment = utc_naive(moment)
        except (ValueError, OverflowError):
            self.fail(at, "PW432", f"{shown_value(text)} is not a FHIR dateTime")
            return None
        return moment, moment.isoformat() + "Z"

    def located_time(self, text: Any, at: tuple[Any, ...]) -> tuple[datetime, str, str] | None:
        moment = self.time(text, at)
        return None if moment is None else (*moment, _fhir_path(at))

    def observation(self, r: dict[str, Any], at: tuple[Any, ...], key: str, correction: bool) -> None:
        status = r.get("status", "")
        if not self.subject_ok(r, at):
            return
        if status in _WITHDRAWN or status == "cancelled":
            self.items.append(Item(key, _fhir_path(at), "Observation", status, action="withdraw"))
            return
        if status not in _OBSERVATION_RECORDED:
            self.ignore(at, key, f"status '{status}': only final, amended and corrected results are recorded")
            return
        parts = [(r, at)] + [(c, at + ("component", k)) for k, c in enumerate(r.get("component") or [])]
        mapped = [(part, where, code) for part, where in parts for code in [self.observation_code(part)]
                  if code is not None]
        if not mapped:
            self.ignore(at, key, "no code of the codes file: " + _codes_text(r.get("code")))
            return
        when = self.effective(r, at, ("effectiveDateTime", "effectiveInstant"), "effectivePeriod")
        if when is None:
            return
        item = Item(key, _fhir_path(at), "Observation", status, time=when[1],
                    correction=correction or status in _OBSERVATION_CORRECTED, time_path=when[2])
        for part, where, (fname, omap) in mapped:
            fdef = self.d.fields[fname]
            value = self.observation_value(part, where, fname, fdef, omap, key)
            if value is None:
                continue
            item.values[fname] = value[0]
            item.paths[fname] = value[1]
            item.patient_record = fdef.scope == "patient"
        if item.values:
            if item.patient_record and len(item.values) > 1:
                self.fail(at, "PW435", "an Observation gives a patient-record field and event fields together")
                return
            self.items.append(item)

    def observation_code(self, part: dict[str, Any]) -> tuple[str, ObservationMap | None] | None:
        for coding in (part.get("code") or {}).get("coding") or []:
            system, code = coding.get("system"), coding.get("code")
            omap = self.codes.observation(system, code) if system and code else None
            if omap is not None:
                return omap.field, omap
            if system is not None and system == self.codes.local_system and code in self.d.fields:
                fdef = self.d.fields[code]
                if fdef.aggregate is None:
                    return code, None
        return None

    def observation_value(self, part: dict[str, Any], at: tuple[Any, ...], fname: str, fdef: FieldDef,
                          omap: ObservationMap | None, key: str) -> tuple[Any, str] | None:
        kinds = [k for k in part if k.startswith("value")]
        if not kinds:
            reason = _codes_text(part.get("dataAbsentReason")) if "dataAbsentReason" in part else "no value"
            self.ignore(at, key, f"{fname}: no value ({reason})")
            return None
        kind = kinds[0]
        raw = part[kind]
        where = at + (kind,)
        if kind == "valueQuantity":
            return self.quantity(raw, where, fname, fdef, omap)
        if kind == "valueInteger" and (fdef.type == "integer" or (fdef.type == "number" and fdef.quantity is None)):
            return raw, _fhir_path(where)
        if kind == "valueBoolean" and fdef.type == "boolean":
            return raw, _fhir_path(where)
        if kind == "valueCodeableConcept" and fdef.type in ("boolean", "enum"):
            for k, coding in enumerate(raw.get("coding") or []):
                system, code = coding.get("system"), coding.get("code")
                value: Any = None
                if (system, code) in self.codes.answers:
                    value = self.codes.answers[(system, code)]
                elif system is not None and system == self.codes.local_system:
                    value = {"true": True, "false": False}.get(code, code) if fdef.type == "boolean" else code
                if value is None:
                    continue
                fits = isinstance(value, bool) if fdef.type == "boolean" else isinstance(value, str) and value in fdef.values
                if not fits:
                    self.fail(where + ("coding", k), "PW435", f"the answer {shown_value(code)} gives {shown_value(value)}, "
                                                              f"not a value of {fname}")
                    return None
                return value, _fhir_path(where + ("coding", k))
            self.fail(where, "PW435", f"no answer code of the codes file for {fname}: {_codes_text(raw)}")
            return None
        wanted = {"boolean": "valueBoolean or a coded answer", "enum": "a coded answer (valueCodeableConcept)",
                  "integer": "valueInteger or valueQuantity", "number": "valueQuantity with a UCUM unit",
                  "string": "a value the pathway does not read from FHIR"}.get(fdef.type, fdef.type)
        self.fail(where, "PW435", f"a {kind} for {fname}, which takes {wanted}")
        return None

    def quantity(self, q: dict[str, Any], at: tuple[Any, ...], fname: str, fdef: FieldDef,
                 omap: ObservationMap | None) -> tuple[Any, str] | None:
        if fdef.type not in ("number", "integer"):
            self.fail(at, "PW435", f"a valueQuantity for {fname}, which is {fdef.type}")
            return None
        if "value" not in q:
            self.fail(at + ("value",), "PW435", f"a Quantity without a value for {fname}")
            return None
        if "comparator" in q:
            self.fail(at + ("comparator",), "PW435", f"{fname} {q['comparator']} {q['value']}: a bound is not a value "
                                                     "the pathway can decide on")
            return None
        system = q.get("system")
        if system is not None and system != UCUM_SYSTEM:
            self.fail(at + ("system",), "PW433", f"unit system {shown_value(system)} is not UCUM ({UCUM_SYSTEM})")
            return None
        unit_at = at + (("code",) if "code" in q else ("unit",))
        ucum = q.get("code", q.get("unit"))
        accepted = omap.units if omap is not None else {u: p for u, p in self.codes.units.items()
                                                         if p in _accepted(fdef)}
        conflict = _unit_conflict(q, set(self.codes.units) | set(accepted))
        if conflict is not None:
            self.fail(at + ("unit",), "PW433", f"{fname}: {conflict}")
            return None
        if not accepted and fdef.unit is None:
            accepted = {}
        if ucum is None:
            if fdef.unit:
                self.fail(at, "PW433", f"{fname}: a Quantity without a unit (give the UCUM code: "
                                       f"{', '.join(sorted(accepted))})")
                return None
            unit = None
        elif ucum not in accepted:
            self.fail(unit_at, "PW433", f"{fname}: unit {shown_value(ucum)} is not a UCUM unit this code accepts "
                                        f"({', '.join(sorted(accepted)) or 'none'})")
            return None
        else:
            unit = accepted[ucum]
        number = _number(q["value"])
        path = _fhir_path(at + ("value",))
        return ({"value": number, "unit": unit} if unit is not None else number), path

    def effective(self, r: dict[str, Any], at: tuple[Any, ...], points: tuple[str, ...],
                  period: str | None) -> tuple[datetime, str, str] | None:
        """The resource's clinical time: (UTC time, ``...Z`` text, the path of the element that gave it)."""
        for name in points:
            if name in r:
                return self.located_time(r[name], at + (name,))
        if period is not None and period in r:
            if "start" not in r[period]:
                self.fail(at + (period,), "PW432", f"{period} without a start: no clinical time")
                return None
            return self.located_time(r[period]["start"], at + (period, "start"))
        names = " or ".join([*points, f"{period}.start"] if period else points)
        self.fail(at, "PW432", f"no clinical time: give {names}")
        return None

    def order(self, r: dict[str, Any], at: tuple[Any, ...], key: str, correction: bool) -> None:
        rtype = r["resourceType"]
        status = r.get("status", "")
        if not self.subject_ok(r, at):
            return
        if status in _WITHDRAWN or (rtype == "MedicationRequest" and status == "cancelled"):
            self.items.append(Item(key, _fhir_path(at), rtype, status, action="withdraw"))
            return
        recorded = {"MedicationRequest": _ORDER_RECORDED, "MedicationAdministration": _ADMINISTERED,
                    "Procedure": _PERFORMED}[rtype]
        if status not in recorded:
            self.ignore(at, key, f"status '{status}' records nothing (recorded: {', '.join(sorted(recorded))})")
            return
        if rtype == "MedicationRequest" and r.get("intent") not in _ORDER_INTENTS:
            self.ignore(at, key, f"intent '{r.get('intent')}': a proposal or plan is not a decision")
            return
        concept = self.medication(r, at) if rtype != "Procedure" else r.get("code")
        omap = self.order_code(concept, rtype)
        if omap is None:
            self.ignore(at, key, f"no {rtype} code of the codes file: " + _codes_text(concept))
            return
        if rtype == "MedicationRequest":
            when = self.effective(r, at, ("authoredOn",), None)
        elif rtype == "MedicationAdministration":
            when = self.effective(r, at, ("effectiveDateTime",), "effectivePeriod")
        else:
            when = self.effective(r, at, ("performedDateTime",), "performedPeriod")
        if when is None:
            return
        item = Item(key, _fhir_path(at), rtype, status, time=when[1], correction=correction,
                    decide=[[name, value] for name, value in omap.records], time_path=when[2])
        for name, _value in omap.records:
            item.paths[name] = _fhir_path(at)
        if rtype == "MedicationRequest" and omap.daily_dose is not None and r.get("dosageInstruction"):
            dose = _daily_dose(r["dosageInstruction"])
            if isinstance(dose, str):
                self.ignore(at + ("dosageInstruction",), key, f"{omap.daily_dose} not recorded: {dose}")
            else:
                item.values[omap.daily_dose] = dose
                item.paths[omap.daily_dose] = _fhir_path(at + ("dosageInstruction",))
        if not item.values and not item.decide:
            self.ignore(at, key, f"{omap.display or omap.code} records nothing")
            return
        self.items.append(item)

    def medication(self, r: dict[str, Any], at: tuple[Any, ...]) -> Any:
        if "medicationCodeableConcept" in r:
            return r["medicationCodeableConcept"]
        ref = (r.get("medicationReference") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("#"):
            for contained in r.get("contained") or []:
                if contained.get("id") == ref[1:]:
                    return contained.get("code")
        return (self.media.get(ref) or {}).get("code") if isinstance(ref, str) else None

    def order_code(self, concept: Any, rtype: str) -> OrderMap | None:
        for coding in (concept or {}).get("coding") or []:
            omap = self.codes.order(coding.get("system"), coding.get("code"))
            if omap is not None and rtype in omap.resources:
                return omap
        return None

    # -- the patient record --------------------------------------------------------------
    def finish(self, patient_id: str | None, admission: datetime | None) -> FhirInput:
        if self.expected is not None:
            self.patient["id"] = self.expected
        if self.admissions and admission is None:
            first = min(self.admissions)
            self.patient["admission_time"] = first[1]
            admission = first[0]
            for other in self.admissions:
                if other is not first and other[0] != first[0]:
                    self.ignore((), other[2], f"a later Encounter; the admission is {first[1]}")
        record = [item for item in self.items if item.patient_record]
        paths: dict[str, str] = {}
        if patient_id is None:  # a new session: history goes into its patient record
            for item in record:
                self.items.remove(item)
                for name, value in item.values.items():
                    self.patient[name] = value
                    paths[name] = item.paths[name]
        if "id" not in self.patient:
            named = sorted(ref.split("/", 1)[1] for ref in self.patient_refs if ref.startswith("Patient/"))
            if named:
                self.patient["id"] = named[0]
        if self.birth is not None and admission is not None and "age_years" in self.d.fields:
            text, where = self.birth
            try:
                born = date.fromisoformat(text)
            except ValueError:
                self.ignored.append({"resource": f"Patient/{self.patient.get('id')}", "where": where,
                                     "reason": f"birthDate {text} is not a full date: age not computed"})
            else:
                seen = admission.date()
                self.patient["age_years"] = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
        if self.diags:
            raise InputError(self.diags)
        taken = [item for item in record if item not in self.items]
        return FhirInput(dict(self.patient), self.items, self.ignored, set(self.patient_refs), paths, taken)


def check_resources(resources: list[Any], resource_type: str, where: str) -> None:
    """Validate each of ``resources`` as a FHIR R4 ``resource_type`` (e.g. the ``draftOrders`` of a CDS Hooks
    request as MedicationRequests): InputError PW431 naming ``where[i]`` and the path of each bad element
    (``draftOrders[1].dosageInstruction[0].doseAndRate[0].doseQuantity.value``), PW437 without the 'fhir'
    extra. Nothing else is read."""
    models = fhir_models()
    diags: list[Diagnostic] = []
    for i, data in enumerate(resources):
        at = f"{where}[{i}]"
        if not isinstance(data, dict):
            diags.append(Diagnostic(at, 0, 0, "PW431", f"a {resource_type} is a JSON object, not {shown_value(data)}"))
            continue
        if data.get("resourceType") != resource_type:
            diags.append(Diagnostic(f"{at}.resourceType", 0, 0, "PW431",
                                    f"a {resource_type}, not {shown_value(data.get('resourceType'))}"))
            continue
        problem = _size_problem(data)
        if problem is not None:
            diags.append(Diagnostic(at, 0, 0, "PW431", problem))
            continue
        try:
            models.get_fhir_model_class(resource_type).model_validate(data)
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, or an error of fhir_core itself
            errors = exc.errors() if hasattr(exc, "errors") and callable(exc.errors) else None
            if not errors:
                diags.append(Diagnostic(at, 0, 0, "PW431", f"not a valid {resource_type}: {shown_value(str(exc))}"))
            for err in (errors or [])[:20]:
                # ("root": a list or object model's own value, not an element of the resource)
                loc = tuple(x for x in err.get("loc", ()) if isinstance(x, (str, int)) and x != "root")
                path = at + _fhir_path(loc).removeprefix("resource")
                if err.get("type") == "missing":
                    message = f"{resource_type} needs this element"
                elif err.get("type") == "extra_forbidden":
                    message = "unknown element (not in FHIR R4)"
                else:
                    message = f"{err.get('msg', 'invalid')} (got {shown_value(err.get('input'))})"
                diags.append(Diagnostic(path, 0, 0, "PW431", message))
    if diags:
        raise InputError(diags)


def read_fhir(definition: PathwayDef, data: Any, *, doc: Located | None = None, name: str = "fhir",
              patient_id: str | None = None, admission: datetime | None = None,
              expect_patient: str | None = None) -> FhirInput:
    """Read a FHIR resource or Bundle (a parsed JSON object) with ``definition``'s codes file.

    ``patient_id``: the session's patient (a resource of another patient is refused, PW434); ``admission``:
    the session's admission time (else the earliest Encounter's ``period.start``). ``expect_patient``: for
    a new session, the patient the input must be of (a Patient or subject of another one is refused,
    PW434). Without either, the input's Patient says whose it is (a Bundle's Patient is read before the
    resources that name one, wherever it stands), else the first subject reference. ``doc``: the file the
    input was read from, so diagnostics give its line and column. InputError lists every problem found
    (PW430-PW437, PW431 from the FHIR R4 model); nothing is applied.
    """
    reader = _Reader(definition, doc, name)
    reader.expected = patient_id if patient_id is not None else expect_patient
    if reader.expected is not None:
        reader.patient_refs.add(f"Patient/{reader.expected}")
    reader.read(data)
    if reader.diags:
        raise InputError(reader.diags)
    return reader.finish(patient_id, admission)


# -- helpers ----------------------------------------------------------------------------------

def _fhir_path(path: tuple[Any, ...]) -> str:
    """``('entry', 3, 'resource', 'valueQuantity')`` -> ``Bundle.entry[3].resource.valueQuantity``."""
    out = "Bundle" if path[:1] == ("entry",) else "resource"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _size_problem(data: Any) -> str | None:
    count = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return f"FHIR input holds more than {MAX_VALUES:,} values"
        if depth > MAX_DEPTH:
            return f"FHIR input is nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def _key(r: dict[str, Any], entry: dict[str, Any] | None) -> str:
    """The resource's identity: ``Type/id``, else its first identifier, else a hash of its content."""
    rtype = r.get("resourceType")
    if isinstance(r.get("id"), str):
        return f"{rtype}/{r['id']}"
    for ident in r.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("value"):
            return f"{rtype}?identifier={ident.get('system', '')}|{ident['value']}"
    if entry is not None and isinstance(entry.get("fullUrl"), str):
        return str(entry["fullUrl"])
    digest = hashlib.sha256(json.dumps(r, sort_keys=True, default=str).encode("utf-8", "replace")).hexdigest()[:16]
    return f"{rtype}#{digest}"


def _refs_of(r: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    refs = [f"{r.get('resourceType')}/{r['id']}"] if isinstance(r.get("id"), str) else []
    if isinstance(entry.get("fullUrl"), str):
        refs.append(entry["fullUrl"])
    return refs


def _codes_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return "none"
    codings = [f"{c.get('system', '?')}|{c.get('code', '?')}" + (f" ({c['display']})" if c.get("display") else "")
               for c in concept.get("coding") or [] if isinstance(c, dict)]
    text = "; ".join(codings[:3]) or (concept.get("text") or "no coding")
    return shown_value(text) if len(text) > 200 else text


def _accepted(fdef: FieldDef) -> set[str]:
    from pathway.definition.units import units_for
    return set(units_for(fdef.quantity) or ([fdef.unit] if fdef.unit else []))


def _number(raw: Any) -> int | float:
    """A JSON number as the session takes it (a non-finite or huge one is refused there, located)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return raw
    return float(raw)  # a Decimal (a number too large for a float becomes inf, refused as PW410)


_MASS = {"mg": 1.0, "g": 1000.0, "ug": 0.001}


def _unit_conflict(q: dict[str, Any], known: set[str]) -> str | None:
    """Why a Quantity's display ``unit`` and its UCUM ``code`` cannot both be right, or None.

    The display unit is free text and may say anything ("milligrams per litre"); when it is itself a
    unit the pathway knows and names another one than the code (``unit: mg/L``, ``code: mg/dL``),
    which one the value was measured in is not known, so the value is not read by either."""
    code, text = q.get("code"), q.get("unit")
    if not isinstance(code, str) or not isinstance(text, str):
        return None
    said = text.strip().casefold()
    if said == code.strip().casefold() or said not in {u.casefold() for u in known}:
        return None
    return (f"the unit {shown_value(text)} and the UCUM code {shown_value(code)} disagree: which one the value is in "
            "is not known, so it is not recorded")


_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0}


def _daily_dose(instructions: list[dict[str, Any]]) -> float | str:
    """The total daily dose in mg of a MedicationRequest's dosage instructions, or why there is none."""
    total = 0.0
    for k, dosage in enumerate(instructions):
        rates = dosage.get("doseAndRate") or []
        quantity = next((d["doseQuantity"] for d in rates if "doseQuantity" in d), None)
        if quantity is None:
            return f"dosageInstruction[{k}] gives no doseQuantity"
        unit = quantity.get("code", quantity.get("unit"))
        conflict = _unit_conflict(quantity, set(_MASS))
        if conflict is not None:
            return f"dosageInstruction[{k}] {conflict}"
        factor = _MASS.get(unit) if quantity.get("system", UCUM_SYSTEM) == UCUM_SYSTEM else None
        if factor is None or "value" not in quantity:
            return f"dosageInstruction[{k}] dose is not in mg (UCUM mg, g or ug): {shown_value(unit)}"
        repeat = (dosage.get("timing") or {}).get("repeat") or {}
        frequency, period, unit_name = repeat.get("frequency", 1), repeat.get("period"), repeat.get("periodUnit")
        if period is None or unit_name not in _PERIOD_DAYS or float(period) <= 0:
            return f"dosageInstruction[{k}] gives no timing.repeat period in s, min, h, d or wk"
        total += float(quantity["value"]) * factor * float(frequency) / (float(period) * _PERIOD_DAYS[unit_name])
    return round(total, 6)
