"""The request bodies of the service, as pydantic models: they give the OpenAPI document its schemas and check
a body's shape (422 naming the key). The values themselves reach the library exactly as sent (the pathway's
fields are the pathway's, checked by :mod:`pathway.definition.inputs` with its located diagnostics), so the
models allow the keys they do not name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

__all__ = ["PatientIn", "EventIn", "CaseIn", "FhirIn", "StartBody", "EventsBody", "HookContext", "HookRequest", "FeedbackBody",
           "start_kind", "events_kind", "ResultOut", "StartedOut", "DiscoveryOut", "HookOut", "HealthOut"]

_OPEN = ConfigDict(extra="allow")


class PatientIn(BaseModel):
    """A patient as a case file gives it: ``id`` and the pathway's patient fields (``weight_kg``, history,
    baseline results), each a number, text, boolean or ``{value, unit}``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"id": "p1", "weight_kg": 70}]})
    id: str | int = Field(description="the patient's id in the session store (text or a whole number)")


class EventIn(BaseModel):
    """A case-file event: ``day`` (0 = admission) or a clock ``time`` (ISO 8601), an optional ``id`` (the
    same id again is a duplicate; amend or retract by it) and ``note``, and the pathway's field values."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "examples": [{"id": "lab-7", "day": 3, "crp_mg_l": 62, "bloody_stools_24h": 7}]})
    id: str | int | None = Field(default=None, description="the event's id (text or a whole number)")
    day: float | None = Field(default=None, description="days since admission (0 = admission and first IV steroid)")
    time: str | None = Field(default=None, description="clock time, ISO 8601 with its offset (instead of day)")
    note: str | None = None


class CaseIn(BaseModel):
    """A whole case file: the patient and the events of their course so far."""

    model_config = _OPEN
    patient: PatientIn
    events: list[EventIn]


class FhirIn(BaseModel):
    """A FHIR R4 resource or Bundle (Patient, Encounter, Observation, MedicationRequest, ...), read with the
    pathway's codes file."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"resourceType": "Bundle",
                                                                               "type": "collection", "entry": []}]})
    resourceType: str


def start_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return "fhir" if isinstance(value, FhirIn) else "case" if isinstance(value, CaseIn) else "patient"
    if not isinstance(value, dict):
        return None
    return "fhir" if "resourceType" in value else "case" if "events" in value else "patient"


def events_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "events"
    if isinstance(value, BaseModel):
        return "fhir" if isinstance(value, FhirIn) else "event"
    if not isinstance(value, dict):
        return None
    return "fhir" if "resourceType" in value else "event"


#: ``POST /sessions``: a patient, a whole case, or FHIR input (a Bundle with the Patient)
StartBody = Annotated[
    Annotated[FhirIn, Tag("fhir")] | Annotated[CaseIn, Tag("case")] | Annotated[PatientIn, Tag("patient")],
    Discriminator(start_kind)]

#: ``POST /sessions/{id}/events``: one event, a list of events (applied together or not at all), or FHIR input
EventsBody = Annotated[
    Annotated[FhirIn, Tag("fhir")] | Annotated[list[EventIn], Tag("events")] | Annotated[EventIn, Tag("event")],
    Discriminator(events_kind)]


class HookContext(BaseModel):
    """The context of a hook: the patient always; ``draftOrders`` (a Bundle) for order-select and order-sign,
    and ``selections`` (``MedicationRequest/<id>``) for order-select."""

    model_config = _OPEN
    userId: str | None = None
    patientId: str = Field(min_length=1)
    encounterId: str | None = None
    draftOrders: dict[str, Any] | None = None
    selections: list[str] | None = None


class HookRequest(BaseModel):
    """A CDS Hooks 2.0 request."""

    model_config = _OPEN
    hook: Literal["patient-view", "order-select", "order-sign"]
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class OverrideReason(BaseModel):
    model_config = _OPEN
    reason: dict[str, Any] | None = None
    userComment: str | None = None


class FeedbackItem(BaseModel):
    model_config = _OPEN
    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str


class FeedbackBody(BaseModel):
    """CDS Hooks feedback: what the clinician did with each card."""

    model_config = _OPEN
    feedback: list[FeedbackItem]


# -- answers (for the OpenAPI document; the result itself is the library's contract, RESULT_KEYS and more) --

class ResultOut(BaseModel):
    """A session's result (DESIGN §2 and docs/sessions.md): where the patient is, what is recommended, offered,
    asked for and alerted, and the trace; after a change, ``changes`` (and ``fhir`` for FHIR input)."""

    model_config = _OPEN
    pathway: str
    version: str
    patient_id: str
    state: str
    path: list[str]
    recommendations: list[dict[str, Any]]
    options: list[dict[str, Any]]
    data_required: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    trace: list[dict[str, Any]] | None = None
    changes: dict[str, Any] | None = None


class StartedOut(BaseModel):
    id: str
    url: str
    result: ResultOut


class ServiceOut(BaseModel):
    model_config = _OPEN
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str]


class DiscoveryOut(BaseModel):
    services: list[ServiceOut]


class HookOut(BaseModel):
    """The cards (CDS Hooks 2.0 Card objects: uuid, summary, indicator, detail, source, suggestions, ...)."""

    cards: list[dict[str, Any]]
    systemActions: list[dict[str, Any]]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    pathway: str
    version: str
    profile: str | None
    fingerprint: str
    engine_version: str
    store: Literal["reachable", "unreachable"]
