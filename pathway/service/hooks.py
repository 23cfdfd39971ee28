"""CDS Hooks 2.0 around a pathway: the services it offers and the answer to one hook call.

One service per hook (``<pathway>-patient-view``, ``<pathway>-order-select``, ``<pathway>-order-sign``), each
with the prefetch templates of :func:`pathway.service.cards.prefetch_templates`. A call finds the patient's
session in the store (``context.patientId``) and feeds it the prefetched resources (:func:`observe_fhir`: a
resource already recorded is a duplicate, so the same prefetch on every call changes nothing), or starts one
from them (:meth:`Pathway.start_fhir`), saves it, and answers the cards of
:mod:`pathway.service.cards`. What is missing is said on a card, never as an error: a prefetch key the EHR
did not fill (and could not be read back from its FHIR server), no data at all for a new patient, or
prefetched resources the pathway refused (the card names them; nothing of that input is recorded).

The cards are for the time of the call (``as_of``, the service's clock), not for the last recorded
event: the session is evaluated once more at that time with nothing recorded, and put back as it was
(nothing of that evaluation is saved). A decision gone overdue since the last result, a day-3
assessment that was never made, a value that has expired since: each is on the cards the clinician
sees on opening the chart, though no new data came. When that cannot be done (a session with no
admission clock time, a call timed before the last event) the cards are those of the last result and
an info card says so.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.core.errors import InputError, PathwayError, SessionConflict, SessionError
from pathway.core.text import md_code, md_inline, one_line
from pathway.runtime.fhir import observe_fhir
from pathway.runtime.session import Session
from pathway.runtime.storebase import SessionNotFound, SessionStore
from pathway.service.cards import order_cards, patient_view_cards, prefetch_templates, summary_text, validate_card
from pathway.service.problems import Problem

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["HOOKS", "services", "HookAnswer", "answer_hook", "fill_template"]

HOOKS = ("patient-view", "order-select", "order-sign")
_DESCRIPTIONS = {
    "patient-view": "Where the patient is on the pathway: decisions due, data required and alerts.",
    "order-select": "Checks a selected medication order against the pathway: an agent unavailable or cautioned for "
                    "this patient, a dose other than the computed one.",
    "order-sign": "Checks the medication orders about to be signed against the pathway: an agent unavailable or "
                  "cautioned for this patient, a dose other than the computed one.",
}
#: how long a FHIR read-back may take, per query
READ_BACK_TIMEOUT = 5.0
#: at most this many attempts at load -> feed -> save when other writers save the patient meanwhile
SAVE_ATTEMPTS = 3


def service_id(pathway: Pathway, hook: str) -> str:
    return f"{pathway.id}-{hook}"


def services(pathway: Pathway) -> list[dict[str, Any]]:
    """The discovery document's ``services``."""
    title = one_line(pathway.definition.spec.title)
    return [{"hook": hook, "id": service_id(pathway, hook), "title": f"{title}: {hook}",
             "description": _DESCRIPTIONS[hook], "prefetch": prefetch_templates(pathway, hook),
             "usageRequirements": "Observations coded as in the pathway's codes file (LOINC, UCUM units)."}
            for hook in HOOKS]


def fill_template(template: str, context: dict[str, Any]) -> str:
    """A prefetch template with its ``{{context.x}}`` tokens replaced (URL-quoted) by the context's values."""
    out = template
    for key, value in context.items():
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            out = out.replace("{{context." + key + "}}", urllib.parse.quote(str(value), safe=""))
    return out


@dataclass
class HookAnswer:
    cards: list[dict[str, Any]]
    #: the rules that fired while the call's data was applied (for the log: ids, never values)
    rules: list[str] = field(default_factory=list)
    #: the prefetch keys still missing
    missing: list[str] = field(default_factory=list)


_NOTE_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:asuc-pathway:cds-hooks-service-note")


def _card(patient_id: str, summary: str, detail: str, indicator: str, source: dict[str, Any]) -> dict[str, Any]:
    """A card of the service's own (what is missing or refused): the same words for the same patient give the
    same uuid, as the pathway's cards do for the same state."""
    key = "\x1f".join([patient_id, summary, detail])
    return validate_card({"uuid": str(uuid.uuid5(_NOTE_NS, key)), "summary": summary_text(summary),
                          "indicator": indicator, "detail": detail, "source": source})


def _read_back(fhir_server: str, authorization: dict[str, Any] | None, query: str) -> Any:
    """One prefetch query read from the EHR's FHIR server; None when it cannot be read."""
    if not fhir_server.startswith(("https://", "http://")):
        return None
    url = fhir_server.rstrip("/") + "/" + query.lstrip("/")
    headers = {"Accept": "application/fhir+json"}
    token = authorization.get("access_token") if isinstance(authorization, dict) else None
    if isinstance(token, str) and token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=READ_BACK_TIMEOUT) as reply:
            if reply.status != 200:
                return None
            return json.loads(reply.read(2_000_001).decode("utf-8"))
    except (OSError, ValueError):
        return None


def _resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of the prefetch: each value a resource, or a Bundle (a search result) of them."""
    out: list[dict[str, Any]] = []
    for name in sorted(prefetch):
        value = prefetch[name]
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    out.append(entry["resource"])
        elif "resourceType" in value:
            out.append(value)
    seen: set[tuple[str, str]] = set()
    unique = []
    for res in out:  # one resource fetched by two prefetch queries is given once
        same = (str(res.get("resourceType")), json.dumps(res, sort_keys=True))
        if same not in seen:
            seen.add(same)
            unique.append(res)
    return unique


def _draft_orders(hook: str, context: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int] | None]:
    """The draft MedicationRequests of the call, and for order-select the positions of the selected ones
    among them (the others are read too: a rescue agent selected beside another one already drafted)."""
    drafts = context.get("draftOrders")
    if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
        raise Problem(422, "bad-context", "The hook's context is incomplete",
                      f"{hook} needs context.draftOrders, a FHIR Bundle of the draft orders")
    orders = [e["resource"] for e in drafts.get("entry") or []
              if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if hook == "order-select":
        selections = context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise Problem(422, "bad-context", "The hook's context is incomplete",
                          "order-select needs context.selections, the ids of the selected orders (MedicationRequest/<id>)")
        orders = [o for o in orders if o.get("resourceType") == "MedicationRequest"]
        return orders, [i for i, o in enumerate(orders) if f"{o.get('resourceType')}/{o.get('id')}" in selections]
    return [o for o in orders if o.get("resourceType") == "MedicationRequest"], None


def _as_of(session: Session, when: datetime) -> tuple[bool, str]:
    """Evaluate ``session`` once more at ``when`` with nothing recorded (the caller puts it back): whether it
    could, and if not why."""
    try:
        result = session.observe({"time": when.isoformat(timespec="minutes")})
    except (InputError, PathwayError) as exc:
        return False, "; ".join(one_line(d.message) for d in getattr(exc, "diagnostics", [])[:2]) or one_line(str(exc))
    if result["changes"]["operation"] != "append":
        return False, "the call's time is before the last recorded event"
    return True, ""


def answer_hook(pathway: Pathway, store: SessionStore, hook: str, body: dict[str, Any], *,
                base_url: str | None, read_back: bool, lock: Any,
                as_of: datetime | None = None) -> tuple[HookAnswer, Session | None]:
    """The cards for one hook call, and the patient's session after it (None: no data for a new patient).
    With ``as_of`` the cards are for that time (see the module docstring); the session returned is the
    stored one."""
    context = body.get("context")
    if not isinstance(context, dict):
        raise Problem(422, "bad-context", "The hook's context is incomplete", "the request has no context object")
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise Problem(422, "bad-context", "The hook's context is incomplete", f"{hook} needs context.patientId")
    drafts, selected = _draft_orders(hook, context) if hook != "patient-view" else ([], None)
    prefetch = dict(body.get("prefetch") or {})
    templates = prefetch_templates(pathway, hook)
    missing = [key for key in templates if prefetch.get(key) is None]
    if missing and read_back and isinstance(body.get("fhirServer"), str):
        for key in list(missing):
            value = _read_back(body["fhirServer"], body.get("fhirAuthorization"), fill_template(templates[key], context))
            if isinstance(value, dict):
                prefetch[key] = value
                missing.remove(key)
    resources = _resources(prefetch)
    source = {"label": one_line(pathway.definition.spec.title)}
    notes: list[dict[str, Any]] = []
    rules: list[str] = []
    session: Session | None = None
    with lock:
        for attempt in range(SAVE_ATTEMPTS):
            notes, rules = [], []
            try:
                session = store.load(pathway, patient_id)
            except SessionNotFound:
                session = None
            except SessionConflict:
                raise
            except SessionError as exc:  # stored under other rules, or a row that cannot be trusted
                shown = "; ".join(md_inline(d) for d in exc.diagnostics[:3])
                return HookAnswer([_card(patient_id, "The pathway's stored session of this patient cannot be used",
                                         f"The stored session is refused, so no pathway card is given: {shown}. "
                                         "Move it to the running rules after review "
                                         "(SessionStore.load(..., replay=True) lists what changes) or delete it.",
                                         "warning", source)], [], missing), None
            before = len(session.result()["trace"]) if session is not None else 0
            changed = False
            if resources:
                bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
                try:
                    if session is None:
                        session, result = pathway.start_fhir(bundle, doc=None, patient_id=patient_id)
                        changed = True
                    else:
                        result = observe_fhir(session, bundle)
                        changed = result["changes"]["operation"] != "duplicate"
                except InputError as exc:
                    shown = "; ".join(md_inline(d) for d in exc.diagnostics[:5]) or (
                        f"the prefetched data is not of patient {md_code(patient_id)}")
                    notes.append(_card(patient_id, "Some of the EHR's data was refused and not used",
                                       f"The pathway refused the prefetched resources, so none of them was recorded: "
                                       f"{shown}.", "warning", source))
            if session is not None and changed:
                rules = [step["rule"] for step in session.result()["trace"][before:]]
                try:
                    store.save(session)
                except SessionConflict:  # another worker saved the patient meanwhile: feed what it saved
                    if attempt + 1 < SAVE_ATTEMPTS:
                        continue
                    raise
            break
    if missing:
        listed = "\n".join(f"- {md_code(key)}: {md_code(templates[key])}" for key in missing)
        notes.append(_card(patient_id, f"Data required: the EHR sent no {', '.join(missing)}",
                           "The other cards use only the data the pathway already has. The EHR did not prefetch"
                           + (" (nor could the service read back from its FHIR server)" if read_back else "")
                           + f":\n\n{listed}", "info", source))
    if session is None:
        notes.append(_card(patient_id, f"No pathway data for patient {one_line(patient_id)}",
                           "No session is stored for this patient and "
                           + ("the resources the EHR sent were refused." if resources else
                              "the EHR sent no resources to start one."),
                           "info", source))
        return HookAnswer(notes, rules, missing), None
    saved = session.checkpoint()
    if as_of is not None:
        now, why = _as_of(session, as_of)
        if not now:
            session.rollback(saved)
            day = session.result()["day"]
            day = math.floor(day) if isinstance(day, (int, float)) else day
            notes.append(_card(patient_id, "These cards are as of the last recorded event, not now",
                               f"The pathway could not evaluate the patient at the time of this call ({md_inline(why)}), "
                               f"so the cards are those of the last recorded event (day {md_inline(day)}): a decision "
                               "that has become due or overdue since is not shown.", "warning", source))
    try:
        if hook == "patient-view":
            cards = patient_view_cards(pathway, session, base_url=base_url)
        else:
            cards = order_cards(pathway, session, drafts, base_url=base_url, selected=selected)
    finally:
        session.rollback(saved)  # the evaluation at the call's time is not kept
    return HookAnswer([*cards, *notes], rules, missing), session
