"""CDS Hooks 2.0 cards from a session's result, checks of draft medication orders, and prefetch templates.

A card is a plain JSON-ready dict (CDS Hooks 2.0 ``Card``), checked against :class:`Card` before it is
returned. Every card names the rule that made it in ``extension["asuc-pathway"]`` (``rule``, ``kind``) and
cites the rule's evidence (source ids, strength, verified or not) in its ``source`` label and its ``detail``.

- :func:`patient_view_cards`: the patient's current result: proposals and decisions due, data required and
  rechecks, alerts, recommendations (a computed dose carries a suggestion that creates its
  MedicationRequest), the options of a decision with their status.
- :func:`order_cards`: draft MedicationRequests (order-select / order-sign) checked against the pathway: an
  agent whose option is unavailable (critical), cautioned or pending (warning), a rescue dose that differs
  from the computed one beyond :data:`DOSE_TOLERANCE` (warning, with a suggestion replacing the order;
  critical at :data:`DOSE_CRITICAL_RATIO`), a route other than the computed one (warning; the dose is then
  not compared across routes), a scheduled infusion ordered more often than its schedule, and two rescue
  agents ordered together (critical).
- :func:`prefetch_templates`: the FHIR searches a hook needs, built from the pathway's codes file.

Card ``uuid`` s are deterministic (:func:`card_uuid`): a uuid5 over the pathway's fingerprint, the patient,
the rule, the card's kind and key, and how many events and revisions the session holds, so the same state
gives the same uuids and any new event gives new ones. Rule-file and patient text reaches ``summary`` as
one line (:func:`pathway.core.text.one_line`) and ``detail`` as escaped Markdown (``md_inline``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pathway.core.errors import Diagnostic, InputError, PathwayError
from pathway.core.text import md_code, md_inline, one_line
from pathway.definition.coding import OrderMap
from pathway.definition.effects import CARD_SUMMARY_MAX
from pathway.definition.prose import field_name
from pathway.loading.fhir import check_resources, fhir_models

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway
    from pathway.runtime.session import Session

__all__ = ["patient_view_cards", "order_cards", "prefetch_templates", "Card", "validate_card", "card_uuid",
           "rule_url", "OVERRIDE_REASONS", "OVERRIDE_SYSTEM", "EXTENSION", "SUMMARY_MAX", "DOSE_TOLERANCE", "DOSE_CRITICAL_RATIO",
           "HOOKS"]

#: the key of every card's ``extension`` (the feedback log maps a card's uuid to its rule through it)
EXTENSION = "asuc-pathway"
#: CDS Hooks 2.0: a summary is "<140 characters"; longer texts are cut on a word with "…"
SUMMARY_MAX = CARD_SUMMARY_MAX
#: a dose ordered within this fraction of the computed one (either way) is the computed dose
DOSE_TOLERANCE = 0.10
#: an order at least this many times the computed dose (or at most its inverse) is critical, not a warning: the
#: ten-fold and unit slips of prescribing, and twice the dose of a narrow-therapeutic-index agent (tacrolimus,
#: ciclosporin) is a toxicity risk on its own
DOSE_CRITICAL_RATIO = 2.0
#: the code system of the override reasons a card offers
OVERRIDE_SYSTEM = "urn:asuc-pathway:override-reason"
#: the reasons a clinician may give for not following a card (CDS Hooks ``overrideReasons``)
OVERRIDE_REASONS: tuple[dict[str, str], ...] = (
    {"system": OVERRIDE_SYSTEM, "code": "patient-declined", "display": "Patient declined"},
    {"system": OVERRIDE_SYSTEM, "code": "clinical-judgement", "display": "Clinical judgement"},
    {"system": OVERRIDE_SYSTEM, "code": "data-out-of-date", "display": "Data out of date"},
)
#: the hooks this module answers
HOOKS = ("patient-view", "order-select", "order-sign")

_RULE_SYSTEM = "urn:asuc-pathway:rule"
_UCUM = "http://unitsofmeasure.org"
_SNOMED = "http://snomed.info/sct"
#: routes of a computed dose as SNOMED CT route codes (a MedicationRequest's dosageInstruction.route)
_ROUTES = {"oral": ("26643006", "Oral route"), "iv": ("47625008", "Intravenous route"),
           "iv_infusion": ("47625008", "Intravenous route"),
           "sc": ("34206005", "Subcutaneous route")}
_STRENGTH = {"G": "guideline", "T": "randomised trial", "M": "meta-analysis", "O": "observational study",
             "S": "secondary summary", "Label": "drug label", "expert": "expert opinion"}
_ORDER = {"critical": 0, "warning": 1, "info": 2}
_CARD_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:asuc-pathway:cds-hooks-card")


# -- the CDS Hooks 2.0 card model --------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_Strict):
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None


class Source(_Strict):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | list[str] | None = None  # noqa: N815 - the CDS Hooks name

    @model_validator(mode="after")
    def _needs_target(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action needs its resource")
        if self.type == "delete" and self.resourceId is None:
            raise ValueError("a delete action needs its resourceId")
        return self


class Suggestion(_Strict):
    label: str = Field(min_length=1)
    uuid: str | None = None
    isRecommended: bool | None = None  # noqa: N815
    actions: list[Action] | None = None


class Link(_Strict):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    appContext: str | None = None  # noqa: N815


class Card(_Strict):
    """A CDS Hooks 2.0 Card: required ``summary`` (<140 characters), ``indicator`` and ``source``;
    ``selectionBehavior`` required with suggestions; uuids of the card and its suggestions."""

    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None  # noqa: N815
    overrideReasons: list[Coding] | None = None  # noqa: N815
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _selection(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("a card with suggestions needs selectionBehavior")
        if self.uuid is not None:
            uuid.UUID(self.uuid)
        for s in self.suggestions or []:
            if s.uuid is not None:
                uuid.UUID(s.uuid)
        return self


def validate_card(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` after checking it against the CDS Hooks 2.0 card model (pydantic ValidationError if not)."""
    Card.model_validate(card)
    return card


# -- helpers -----------------------------------------------------------------------------------------------

def summary_text(text: Any) -> str:
    """One line of at most :data:`SUMMARY_MAX` characters, cut on a word with "…" when longer."""
    s = " ".join(one_line(text).split())
    if len(s) <= SUMMARY_MAX:
        return s
    cut = s[:SUMMARY_MAX - 1]
    space = cut.rfind(" ")
    if space > SUMMARY_MAX // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def _short(item: dict[str, Any]) -> str:
    """What a card's summary says of a result item: the rule's short form when it gives one (the whole
    text is in the card's detail), else the text."""
    return str(item.get("summary") or item.get("text", ""))


def card_uuid(pathway: Pathway, session: Session, rule: str, kind: str, key: str = "") -> str:
    """The deterministic uuid of a card: the same pathway fingerprint, patient, rule, kind, key and
    number of events and revisions give the same uuid."""
    values = session.state_values()
    basis = "\x1f".join([pathway.fingerprint, str(session.patient_id), rule, kind, key,
                         str(len(values["events"])), str(len(values["revisions"]))])
    return str(uuid.uuid5(_CARD_NS, basis))


def rule_url(pathway: Pathway, rule: str, base_url: str | None) -> str | None:
    """The stable URL of a rule under ``base_url`` (``{base_url}/pathways/{pathway}/rules/{rule}``)."""
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/pathways/{pathway.id}/rules/{rule}"


def _rule_title(pathway: Pathway, rule: str) -> str:
    try:
        return pathway.rule(rule).title
    except KeyError:
        return rule


def _evidence_of(pathway: Pathway, rule: str, evidence: dict[str, Any] | None) -> dict[str, Any]:
    if evidence is not None:
        return evidence
    try:
        ev = pathway.rule(rule).evidence
    except KeyError:  # said by the service itself (an order it does not know): no evidence to cite
        return {"sources": [], "strength": "", "status": ""}
    return {"sources": list(ev.sources), "strength": ev.strength, "status": ev.status}


def _evidence_label(evidence: dict[str, Any]) -> str:
    sources = [one_line(s) for s in evidence.get("sources", [])]
    shown = ", ".join(sources[:3]) + (f" +{len(sources) - 3}" if len(sources) > 3 else "")
    strength = one_line(evidence.get("strength", ""))
    status = one_line(evidence.get("status", ""))
    parts = [p for p in (shown, strength, status) if p]
    return "; ".join(parts)


def _evidence_md(pathway: Pathway, evidence: dict[str, Any]) -> str:
    known = pathway.definition.spec.sources
    items = []
    for sid in evidence.get("sources", []):
        src = known.get(sid)
        items.append(f"{md_inline(sid)}" + (f" ({md_inline(src.title)})" if src is not None and src.title else ""))
    strength = evidence.get("strength", "")
    words = _STRENGTH.get(strength, strength)
    status = evidence.get("status", "")
    line = "Evidence: " + ("; ".join(items) or "none cited")
    if strength:
        line += f". Strength {md_inline(strength)}" + (f" ({md_inline(words)})" if words != strength else "")
    if status:
        line += f", {md_inline(status)}"
    line += "."
    if status == "unverified":
        line += " This rule's evidence has not been verified: use clinical judgement."
    weak = evidence.get("rests_on_unverified")
    if weak:
        line += " It rests on unverified rules: " + ", ".join(md_inline(w) for w in weak) + "."
    return line


class _Builder:
    """Cards of one session, sharing its pathway, patient and base URL."""

    def __init__(self, pathway: Pathway, session: Session, base_url: str | None):
        self.pw = pathway
        self.session = session
        self.base_url = base_url
        self.d = pathway.definition
        self.cards: list[dict[str, Any]] = []
        self.keys: set[tuple[str, str, str]] = set()

    def card(self, *, rule: str, kind: str, key: str, summary: str, indicator: str, detail: list[str],
             evidence: dict[str, Any] | None = None, suggestions: list[dict[str, Any]] | None = None,
             override: bool | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        n = 1
        unique = key
        while (rule, kind, unique) in self.keys:  # two cards of one rule and kind: told apart by their order
            n += 1
            unique = f"{key}#{n}"
        self.keys.add((rule, kind, unique))
        ev = _evidence_of(self.pw, rule, evidence)
        title = _rule_title(self.pw, rule)
        label = f"{one_line(self.d.spec.title or self.d.id)} {one_line(self.d.version)}: {one_line(title)}"
        cited = _evidence_label(ev)
        if cited:
            label += f" [{cited}]"
        source: dict[str, Any] = {"label": label,
                                  "topic": {"system": _RULE_SYSTEM, "code": rule, "display": one_line(title)}}
        url = rule_url(self.pw, rule, self.base_url)
        if url is not None:
            source["url"] = url
        body = [*detail, "", _evidence_md(self.pw, ev), "",
                f"Rule {md_inline(rule)}, {md_inline(self.d.id)} {md_inline(self.d.version)}"
                + (f" (profile {md_inline(self.d.profile)})" if self.d.profile else "") + "."]
        ext: dict[str, Any] = {"rule": rule, "kind": kind, "pathway": self.d.id, "version": self.d.version,
                               "patient": str(self.session.patient_id),
                               "evidence": {"sources": list(ev.get("sources", [])), "strength": ev.get("strength", ""),
                                            "status": ev.get("status", "")}}
        if extra:
            ext.update(extra)
        out: dict[str, Any] = {"uuid": card_uuid(self.pw, self.session, rule, kind, unique),
                               "summary": summary_text(summary), "indicator": indicator,
                               "detail": "\n".join(body).strip(), "source": source,
                               "extension": {EXTENSION: ext}}
        if suggestions:
            for i, s in enumerate(suggestions):
                s.setdefault("uuid", card_uuid(self.pw, self.session, rule, f"{kind}.suggestion", f"{unique}.{i}"))
            out["suggestions"] = suggestions
            out["selectionBehavior"] = "at-most-one"
        if override if override is not None else (suggestions or indicator != "info"):
            out["overrideReasons"] = [dict(r) for r in OVERRIDE_REASONS]
        self.cards.append(validate_card(out))
        return out

    def sorted(self) -> list[dict[str, Any]]:
        return sorted(self.cards, key=lambda c: _ORDER[c["indicator"]])


def _medication_code(pathway: Pathway, name: str) -> dict[str, Any]:
    """A CodeableConcept for a medicine the pathway names: the codes file's codings for it, and its name."""
    codes = pathway.definition.codes
    codings = []
    if codes is not None:
        for omap in codes.orders.values():
            if "MedicationRequest" in omap.resources and name in _agents_of(omap):
                codings.append({"system": omap.system, "code": omap.code, "display": one_line(omap.display)})
    concept: dict[str, Any] = {"text": one_line(name)}
    if codings:
        concept["coding"] = codings
    return concept


def _agents_of(omap: OrderMap) -> set[str]:
    """The pathway agent (an option or computed medicine's name) a medicine code stands for, if any."""
    return {omap.agent} if omap.agent is not None and "MedicationRequest" in omap.resources else set()


def medication_request(pathway: Pathway, session: Session, med: dict[str, Any], text: str,
                       *, status: str = "draft") -> dict[str, Any]:
    """A FHIR R4 MedicationRequest for a computed dose (``medication`` of a recommendation)."""
    dosage: dict[str, Any] = {"text": one_line(text)}
    route = _ROUTES.get(str(med.get("route", "")))
    if route is not None:
        dosage["route"] = {"coding": [{"system": _SNOMED, "code": route[0], "display": route[1]}]}
    times = med.get("times_per_day")
    dose = med.get("dose_mg")
    if med.get("route") == "iv_infusion" and times == 1 and isinstance(dose, (int, float)):
        # a daily dose by continuous infusion (ciclosporin 2 mg/kg/day) is a rate over 24 hours, not a
        # once-daily dose
        dosage["doseAndRate"] = [{"rateQuantity": {"value": round(float(dose) / 24, 3), "unit": "mg/h",
                                                   "system": _UCUM, "code": "mg/h"}}]
        dosage["timing"] = {"repeat": {"duration": 24, "durationUnit": "h", "frequency": 1, "period": 1,
                                       "periodUnit": "d"}}
    else:
        if isinstance(times, (int, float)) and times > 0:
            dosage["timing"] = {"repeat": {"frequency": int(times) if float(times).is_integer() else times,
                                           "period": 1, "periodUnit": "d"}}
        elif med.get("administrations"):
            # a scheduled infusion (infliximab at weeks 0, 2 and 6): this request is the next one, given once
            dosage["timing"] = {"repeat": {"count": 1}}
        if isinstance(dose, (int, float)):
            dosage["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": "mg", "system": _UCUM,
                                                       "code": "mg"}}]
    return {"resourceType": "MedicationRequest", "status": status, "intent": "order",
            "medicationCodeableConcept": _medication_code(pathway, str(med.get("name", ""))),
            "subject": {"reference": f"Patient/{session.patient_id}"}, "dosageInstruction": [dosage]}


def _dose_words(med: dict[str, Any]) -> str:
    dose, times, route = med.get("dose_mg"), med.get("times_per_day"), med.get("route")
    out = f"{one_line(med.get('name', ''))} {dose:g} mg" if isinstance(dose, (int, float)) else one_line(med.get("name", ""))
    if isinstance(times, (int, float)):
        out += " once daily" if times == 1 else " twice daily" if times == 2 else f" {times:g} times daily"
    if route:
        out += f" ({one_line(route)})"
    return out


# -- patient-view ------------------------------------------------------------------------------------------

_OPTION_WORDS = {"available": "available", "caution": "caution", "pending": "pending (data needed)",
                 "unavailable": "unavailable"}


def _options_md(options: list[dict[str, Any]]) -> list[str]:
    lines = ["| Option | Status | For | Against | Pending |", "|---|---|---|---|---|"]
    for o in options:
        lines.append("| " + " | ".join([
            f"**{md_inline(str(o['option']).replace('_', ' '))}** " + md_inline(o.get("text", "")),
            md_inline(_OPTION_WORDS.get(o["status"], o["status"])),
            "<br>".join(md_inline(x) for x in o.get("for", [])) or "-",
            "<br>".join(md_inline(x) for x in o.get("against", [])) or "-",
            "<br>".join(md_inline(x) for x in o.get("pending", [])) or "-"]) + " |")
    return lines


def _decision_values(pathway: Pathway, name: str) -> set[str]:
    f = pathway.definition.fields.get(name)
    return set(f.values) if f is not None and f.type == "enum" else set()


def _choice(pathway: Pathway, session: Session, option: dict[str, Any]) -> dict[str, Any]:
    """A decision card's suggestion for a choosable option; for a medicine, the order of the dose the pathway
    gives once it is chosen (signing that order records the choice when it comes back as FHIR)."""
    name = str(option["option"])
    label = f"{name.replace('_', ' ').capitalize()}: {option.get('text', '')}"
    if option["status"] == "caution":
        label += " (caution)"
    out: dict[str, Any] = {"label": one_line(label), "isRecommended": False}
    codes = pathway.definition.codes
    if codes is not None and name in codes.agents():
        found = _what_if(pathway, session, name)
        if found is not None:
            rec, med = found
            out["actions"] = [{"type": "create", "description": one_line(f"Order {_dose_words(med)}: {rec['text']}"),
                               "resource": medication_request(pathway, session, med, rec["text"])}]
    return out


def patient_view_cards(pathway: Pathway, session: Session, *, base_url: str | None = None) -> list[dict[str, Any]]:
    """CDS Hooks 2.0 cards for the patient's current result, most urgent first (see the module docstring)."""
    result = session.result()
    b = _Builder(pathway, session, base_url)
    d = pathway.definition
    state_title = one_line(result.get("state_title") or result["state"])
    options = list(result.get("options", []))
    day = result.get("day")
    when = f"day {day:g}" if isinstance(day, (int, float)) else "admission"
    # proposals: a move the team decides and records
    for p in result.get("proposals", []):
        record = ", ".join(f"{field_name(k, d)} = {one_line(v)}" for k, v in p.get("record", {}).items())
        detail = [f"**Proposal:** {md_inline(p['text'])}", "",
                  f"Proposed: {md_inline(p.get('to_title', p['to']))}. Record the decision with the patient "
                  f"({md_inline(record)}) to act on it."]
        if p.get("for"):
            detail += ["", "For: " + "; ".join(md_inline(x) for x in p["for"])]
        if p.get("against"):
            detail += ["", "Against: " + "; ".join(md_inline(x) for x in p["against"])]
        suggestion = {"label": one_line(f"Record the decision: {p.get('to_title', p['to'])}"), "isRecommended": True}
        b.card(rule=p["rule"], kind="proposal", key=str(p["to"]), summary=_short(p), indicator="critical",
               detail=detail, evidence=p.get("evidence"), suggestions=[suggestion],
               extra={"to": p["to"], "record": dict(p.get("record", {}))})
    # decisions due: a data_required entry of a decision field
    used_options = False
    absorbed: set[int] = set()  # recommendations shown on a decision card
    data: dict[str, list[dict[str, Any]]] = {}
    for entry in result.get("data_required", []):
        name = entry["field"]
        if name in d.decisions:
            rule = entry["rules"][0]
            values = _decision_values(pathway, name)
            mine = [o for o in options if o["option"] in values]
            used_options = used_options or bool(mine)
            detail = [f"**Decision due ({md_inline(state_title)}, {md_inline(when)}):** {md_inline(entry['text'])}"]
            for r in result.get("recommendations", []):  # what the deciding rule itself recommends
                if r["rule"] == rule and "medication" not in r:
                    detail += ["", f"Recommended: {md_inline(r['text'])}"]
                    absorbed.add(id(r))
            if mine:
                detail += ["", *_options_md(mine)]
            choices = [_choice(pathway, session, o) for o in mine if o["status"] in ("available", "caution")]
            summary = f"Decision due: {entry.get('title') or field_name(name, d)}"
            # overdue (the state's watchdog has fired): as urgent as the overdue alert itself
            overdue = any(a["rule"] == f"overdue.{result['state']}" for a in result.get("alerts", []))
            if overdue:
                summary = f"Decision overdue: {entry.get('title') or field_name(name, d)}"
            b.card(rule=rule, kind="decision", key=name, summary=summary, indicator="critical" if overdue else "warning",
                   detail=detail,
                   suggestions=choices or None, override=True,
                   extra={"field": name, "options": {o["option"]: o["status"] for o in mine}})
        else:
            for rule in entry["rules"]:
                data.setdefault(rule, []).append(entry)
    # data required and rechecks, one card per rule that waits for them
    for rule, entries in data.items():
        names = [one_line(e.get("title") or field_name(e["field"], d)) for e in entries]
        rechecks = [e for e in entries if e.get("recheck")]
        kind = "recheck" if len(rechecks) == len(entries) else "data"
        verb = "Recheck" if kind == "recheck" else "Needed"
        title = _rule_title(pathway, rule)
        detail = [f"**{md_inline(verb)} for '{md_inline(title)}':**", ""]
        for e in entries:
            line = f"- {md_code(e['field'])} {md_inline(e.get('title') or e['field'])}"
            if e.get("unit"):
                line += f" ({md_inline(e['unit'])})"
            line += f": {md_inline(e['text'])}"
            detail.append(line)
        b.card(rule=rule, kind=kind, key=",".join(e["field"] for e in entries),
               summary=f"{verb}: {', '.join(names)} (for {title})", indicator="warning", detail=detail,
               extra={"fields": [e["field"] for e in entries]})
    # alerts, at their own level
    for a in result.get("alerts", []):
        level = a.get("level", "warning")
        b.card(rule=a["rule"], kind="alert", key=str(a.get("text", ""))[:64], summary=_short(a),
               indicator=level if level in _ORDER else "warning",
               detail=[f"**Alert ({md_inline(level)}):** {md_inline(a['text'])}"],
               evidence=a.get("evidence"))
    # recommendations: a computed dose can be ordered from the card
    for r in result.get("recommendations", []):
        if id(r) in absorbed:
            continue
        med = r.get("medication")
        suggestions: list[dict[str, Any]] | None = None
        detail = [f"**Recommendation ({md_inline(r['kind'])}):** {md_inline(r['text'])}"]
        extra: dict[str, Any] = {"recommendation": r["kind"]}
        if isinstance(med, dict) and isinstance(med.get("dose_mg"), (int, float)):
            extra["medication"] = dict(med)
            if med.get("alternative"):  # a specialist's alternative to the standard dose: shown, not one click away
                detail += ["", "A dose a specialist may choose instead of the standard one: it is not offered as an "
                           "order here."]
            else:
                request = medication_request(pathway, session, med, r["text"])
                suggestions = [{"label": one_line(r["text"]), "isRecommended": True,
                                "actions": [{"type": "create", "description": one_line(f"Order {_dose_words(med)}"),
                                             "resource": request}]}]
        indicator = "warning" if r["kind"] in ("referral", "procedure") else "info"
        b.card(rule=r["rule"], kind="recommendation", key=r["kind"], summary=_short(r), indicator=indicator,
               detail=detail, evidence=r.get("evidence"), suggestions=suggestions, extra=extra)
    # options no decision card showed
    if options and not used_options:
        rule = options[0]["rules"][0] if options[0].get("rules") else "options"
        b.card(rule=rule, kind="options", key=result["state"],
               summary=f"Options at '{state_title}': " + ", ".join(
                   f"{str(o['option']).replace('_', ' ')} ({o['status']})" for o in options),
               indicator="info", detail=_options_md(options),
               extra={"options": {o["option"]: o["status"] for o in options}})
    return b.sorted()


# -- order-select / order-sign -----------------------------------------------------------------------------

def _fhir_available() -> bool:
    try:
        fhir_models()
    except InputError:  # without the 'fhir' extra the orders are checked by the reading below alone
        return False
    return True


def _located(where: str, message: str) -> InputError:
    return InputError([Diagnostic(where, 0, 0, "PW450", message)])


def _concept_of(order: dict[str, Any]) -> Any:
    """The medicine a draft MedicationRequest names: its ``medicationCodeableConcept``, or the code of the
    contained Medication its ``medicationReference`` points to; None when there is neither."""
    concept = order.get("medicationCodeableConcept")
    if concept is None:
        ref = order.get("medicationReference")
        ref = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(ref, str) and ref.startswith("#"):
            for c in order.get("contained") or []:
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    concept = c.get("code")
    return concept


def _agent_of_order(pathway: Pathway, order: dict[str, Any], where: str) -> tuple[str | None, str]:
    """The pathway agent a draft MedicationRequest orders (None: not a medicine of the pathway), and how it
    was named."""
    concept = _concept_of(order)
    if concept is None:
        return None, ""
    if not isinstance(concept, dict):
        raise _located(f"{where}.medicationCodeableConcept", "a CodeableConcept is a JSON object")
    codes = pathway.definition.codes
    codings = concept.get("coding") or []
    if not isinstance(codings, list):
        raise _located(f"{where}.medicationCodeableConcept.coding", "coding is a list")
    for k, coding in enumerate(codings):
        if not isinstance(coding, dict):
            raise _located(f"{where}.medicationCodeableConcept.coding[{k}]", "a Coding is a JSON object")
        if codes is None:
            continue
        omap = codes.order(str(coding.get("system")), str(coding.get("code")))
        if omap is not None and "MedicationRequest" in omap.resources:
            agents = sorted(_agents_of(omap))
            if agents:
                return agents[0], one_line(omap.display or omap.code)
    texts = [concept.get("text")] + [c.get("display") for c in codings]
    if codes is not None:
        for text in texts:
            if not isinstance(text, str):
                continue
            for agent in codes.agents():
                if _names_agent(pathway, agent, text):
                    return agent, one_line(text)
    return None, ""


_MASS = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "µg": 0.001, "mcg": 0.001}
#: a rate's time unit, per day (UCUM ``mg/h``, ``mg/min``, ``mg/d``)
_PER_DAY = {"h": 24.0, "min": 1440.0, "d": 1.0}


@dataclass(frozen=True)
class _Ordered:
    """What a draft order says of its dose, as far as the check reads it."""

    mg: float | None = None        #: the largest single administration, mg
    per_day: float | None = None   #: administrations per day, every dosage line together
    daily: float | None = None     #: mg per day, every dosage line together (None unless each has a timing or rate)
    route: str | None = None
    unread: str | None = None      #: why a dose that is there was not read ("2 mL is not a mass ...")
    ranged: bool = False           #: read from the upper end of a dose range
    lines: int = 0                 #: dosage lines read

    @property
    def dosed(self) -> bool:
        return self.mg is not None or self.daily is not None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _located(where, f"a dose is a number, not {one_line(repr(value))[:40]}")
    return float(value)


def _quantity_mg(q: Any, where: str) -> tuple[float | None, str | None]:
    """(mg, None) for a Quantity in a unit of mass, else (None, why it was not read)."""
    if not isinstance(q, dict):
        raise _located(where, "a Quantity is a JSON object")
    value = _number(q.get("value"), f"{where}.value")
    unit = q.get("code", q.get("unit"))
    factor = _MASS.get(str(unit))
    if factor is not None:
        return value * factor, None
    shown = f"{value:g} {unit}" if unit is not None else f"{value:g} (no unit)"
    return None, f"{shown} is not a mass (mg, g or µg)"


def _avoid_of_order(pathway: Pathway, order: dict[str, Any]) -> tuple[str, str] | None:
    """(the rule whose 'avoid' recommendation names it, how it was named) for a draft order of a medicine the
    codes file lists under ``avoid``: by its code, else by one of its names in the order's text."""
    codes = pathway.definition.codes
    concept = _concept_of(order)
    if codes is None or not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    for coding in codings:
        omap = codes.order(str(coding.get("system")), str(coding.get("code")))
        if omap is not None and omap.avoid is not None:
            return omap.avoid, one_line(omap.display or omap.code)
    for text in [concept.get("text")] + [c.get("display") for c in codings]:
        if not isinstance(text, str):
            continue
        for omap in codes.orders.values():
            if omap.avoid is not None and _mentions(text, omap.names):
                return omap.avoid, one_line(text)
    return None


def _ordered_dose(order: dict[str, Any], where: str) -> _Ordered:
    """The dose of a draft order: every dosage line (a split dose, 2 mg in the morning and 3 mg at night, is
    5 mg/day), a ``doseQuantity``, the upper end of a ``doseRange``, or a ``rateQuantity`` in mass per time
    (a continuous infusion, per day); a dose given as text only, or in a unit that is not a mass, is said
    unread."""
    dosages = order.get("dosageInstruction")
    if dosages is None:
        return _Ordered()
    if not isinstance(dosages, list) or not all(isinstance(x, dict) for x in dosages):
        raise _located(f"{where}.dosageInstruction", "dosageInstruction is a list of Dosage objects")
    route = unread = None
    ranged = False
    doses: list[float] = []
    per_days: list[float | None] = []
    daily_parts: list[float | None] = []
    texts: list[str] = []
    for n, dosage in enumerate(dosages):
        at = f"{where}.dosageInstruction[{n}]"
        for coding in ((dosage.get("route") or {}).get("coding") or []) if isinstance(dosage.get("route"), dict) else []:
            if isinstance(coding, dict) and route is None:
                route = next((name for name, (code, _display) in _ROUTES.items() if coding.get("code") == code), None)
        if isinstance(dosage.get("text"), str) and dosage["text"].strip():
            texts.append(dosage["text"].strip())
        repeat = ((dosage.get("timing") or {}).get("repeat") or {}) if isinstance(dosage.get("timing"), dict) else {}
        per_day = None
        period_days = {"h": 1 / 24, "d": 1.0, "wk": 7.0}.get(str(repeat.get("periodUnit")))
        freq, period = repeat.get("frequency", 1), repeat.get("period")
        if isinstance(period, (int, float)) and isinstance(freq, (int, float)) and period_days and period > 0:
            per_day = float(freq) / (float(period) * period_days)
        rates = dosage.get("doseAndRate") or []
        if not isinstance(rates, list):
            raise _located(f"{at}.doseAndRate", "doseAndRate is a list")
        for k, rate in enumerate(rates):
            if not isinstance(rate, dict):
                continue
            here = f"{at}.doseAndRate[{k}]"
            mg = why = None
            if rate.get("doseQuantity") is not None:
                mg, why = _quantity_mg(rate["doseQuantity"], f"{here}.doseQuantity")
            elif isinstance(rate.get("doseRange"), dict):
                rng = rate["doseRange"]
                end = rng.get("high") if rng.get("high") is not None else rng.get("low")
                if end is not None:
                    mg, why = _quantity_mg(end, f"{here}.doseRange.{'high' if rng.get('high') is not None else 'low'}")
                    ranged = ranged or mg is not None
            elif isinstance(rate.get("rateQuantity"), dict):
                rq = rate["rateQuantity"]
                unit = str(rq.get("code", rq.get("unit")))
                mass, _, per = unit.partition("/")
                value = _number(rq.get("value"), f"{here}.rateQuantity.value")
                if mass in _MASS and per in _PER_DAY:
                    daily_parts.append(value * _MASS[mass] * _PER_DAY[per])
                    break
                why = f"a rate of {value:g} {unit} is not a mass per time (mg/h, mg/min, mg/d)"
            else:
                continue
            if mg is not None:
                doses.append(mg)
                per_days.append(per_day)
                daily_parts.append(mg * per_day if per_day is not None else None)
            elif why is not None and unread is None:
                unread = why
            break
    if not doses and not daily_parts and unread is None and texts:
        unread = f"it is given as text only (\"{one_line(texts[0])[:60]}\")"
    daily = sum(x for x in daily_parts if x is not None) if daily_parts and all(x is not None for x in daily_parts) else None
    counted = [x for x in per_days if x is not None]
    per_day_total = sum(counted) if doses and len(counted) == len(doses) else None
    return _Ordered(mg=max(doses) if doses else None, per_day=per_day_total, daily=daily, route=route,
                    unread=unread if not doses and not daily_parts else None, ranged=ranged,
                    lines=len(dosages))


def _computed_dose(result: dict[str, Any], agent: str, *,
                   alternative: bool = False) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The computed dose of ``agent`` in a result (its recommendation and medication), if any: the standard
    one, or with ``alternative`` one a specialist may choose instead (accelerated infliximab)."""
    for r in result.get("recommendations", []):
        med = r.get("medication")
        if (isinstance(med, dict) and med.get("name") == agent and isinstance(med.get("dose_mg"), (int, float))
                and bool(med.get("alternative")) == alternative):
            return r, med
    return None


def _rescue_agents(pathway: Pathway) -> set[str]:
    """The agents the pathway offers as options (rescue: tacrolimus, ciclosporin, infliximab), not colectomy."""
    from pathway.definition.effects import Offer

    out = set()
    for rule in pathway.definition.rules:
        for effects in (rule.then, rule.otherwise, rule.if_missing):
            out |= {e.option for e in effects if isinstance(e, Offer)}
    return out - {"colectomy"}


def _names_agent(pathway: Pathway, agent: str, text: str) -> bool:
    """Whether ``text`` names ``agent`` (its name or a brand name of the codes file)."""
    codes = pathway.definition.codes
    return _mentions(text, [agent, *(n for m in (codes.agents().get(agent, []) if codes is not None else [])
                                     for n in m.names)])


def _mentions(text: str, names: Iterable[str]) -> bool:
    """Whether ``text`` holds one of ``names`` as whole words, whatever the case."""
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.IGNORECASE) for n in names)


def _recorded(session: Session) -> set[str]:
    """The fields recorded in the session (patient record and events)."""
    values = session.state_values()
    return set(values.get("facts") or {}) | {k for e in values.get("events") or [] for k in e}


def _what_if(pathway: Pathway, session: Session, agent: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The dose the pathway computes once ``agent`` is recorded as the decision due (see :func:`_what_if_result`)."""
    result = _what_if_result(pathway, session, agent)
    return _computed_dose(result, agent) if result is not None else None


def _what_if_result(pathway: Pathway, session: Session, agent: str) -> dict[str, Any] | None:
    """The result once ``agent`` is recorded as the decision due, at the latest event's time, when it gives
    a dose of it; None when no decision due records it. Evaluated on a fork of the session: a session's
    state is never changed in place (every operation replaces it), so a second Session over the same state
    leaves the caller's session untouched, whatever other threads do with it meanwhile."""
    from pathway.runtime.session import Session as _Session

    codes = pathway.definition.codes
    state, _view = session.checkpoint()
    if codes is None or not state.events:
        return None
    last = state.events[-1]
    for omap in codes.orders.values():
        if omap.agent != agent:
            continue
        for name, value in omap.records:
            if value != agent or name not in pathway.definition.decisions:
                continue
            event: dict[str, Any] = {name: value}
            if "time" in last:
                event["time"] = last["time"]
            else:
                event["day"] = last["day"]
            try:
                result = _Session(pathway, state).observe(event)
            except PathwayError:  # not due now (refused): no dose to compare with
                continue
            if _computed_dose(result, agent) is not None:
                return result
    return None


def _decision_rule(pathway: Pathway, agents: list[str]) -> str:
    """The rule that asks for the decision recording these agents (ASUC: rescue_discussion asks for
    rescue_choice), whose evidence says one of them is chosen; "options" when there is none."""
    from pathway.definition.effects import Require

    codes = pathway.definition.codes
    fields = {name for omap in (codes.orders.values() if codes is not None else []) if omap.agent in agents
              for name, value in omap.records if name in pathway.definition.decisions}
    for rule in pathway.definition.rules:
        if any(isinstance(e, Require) and set(e.fields) & fields for e in rule.then):
            return rule.id
    return "options"


def _together_card(b: _Builder, pathway: Pathway, agents: list[str], orders: list[int]) -> None:
    """One critical card for two or more rescue agents in one set of draft orders: the decision records
    one agent, and a second is given only after the first has failed."""
    shown = [a.replace("_", " ") for a in agents]
    named = ", ".join(shown[:-1]) + f" and {shown[-1]}"
    count = {2: "Two", 3: "Three", 4: "Four"}.get(len(agents), str(len(agents)))
    b.card(rule=_decision_rule(pathway, agents), kind="order-together", key="+".join(agents),
           summary=f"{count} rescue agents ordered together: {named}", indicator="critical", override=True,
           detail=[f"Ordered together: **{md_inline(named)}**. The pathway's rescue decision records one agent: "
                   "one attempt at rescue, a second agent only after the first has failed (in a specialist "
                   "centre, as sequential therapy), never two at once. Keep the one agent chosen with the "
                   "patient and remove the others."],
           extra={"agents": agents, "orders": orders})


def _frequency_card(b: _Builder, rec: dict[str, Any], med: dict[str, Any], shown: str, named: str, key: str,
                    agent: str, i: int, per_day: float | None) -> None:
    """A scheduled infusion (infliximab at weeks 0, 2 and 6) ordered more often than its schedule gives it:
    a warning, critical at twice as often or more (the dose check reads one administration only)."""
    days = [float(d) for d in (a.get("course_day") for a in med.get("administrations") or [])
            if isinstance(d, (int, float)) and not isinstance(d, bool)]
    gaps = [later - earlier for earlier, later in pairwise(days) if later > earlier]
    every = med.get("then_every_days")
    if isinstance(every, (int, float)) and not isinstance(every, bool) and every > 0:
        gaps.append(float(every))
    if per_day is None or per_day <= 0 or not gaps:
        return
    shortest, ordered_every = min(gaps), 1 / per_day
    if ordered_every >= shortest * (1 - DOSE_TOLERANCE):
        return
    ratio = shortest / ordered_every
    schedule = one_line(med.get("schedule") or f"every {shortest:g} days at the shortest")
    b.card(rule=rec["rule"], kind="order-frequency", key=key,
           summary=f"{shown.capitalize()} ordered every {ordered_every:.3g} days; the pathway gives it {schedule}",
           indicator="critical" if ratio >= DOSE_CRITICAL_RATIO else "warning", evidence=rec.get("evidence"),
           override=True,
           detail=[f"Ordered: {md_inline(named or shown)} every **{ordered_every:.3g} days** "
                   f"({ratio:.2g} times as often as the shortest interval of the schedule, {shortest:g} days).", "",
                   f"Computed: {md_inline(rec['text'])}"],
           extra={"agent": agent, "order": i, "ordered_every_days": round(ordered_every, 4),
                  "shortest_interval_days": shortest, "medication": dict(med)})


def order_cards(pathway: Pathway, session: Session, draft_orders: list[dict[str, Any]], *,
                base_url: str | None = None, unmapped: bool = False,
                selected: list[int] | None = None) -> list[dict[str, Any]]:
    """Cards for draft FHIR R4 MedicationRequests (CDS Hooks order-select ``draftOrders`` entries or
    order-sign): the ordered agent's option status for this patient and a dose check (see the module
    docstring). An order the pathway has no agent for gives no card, unless ``unmapped`` asks for an info
    card saying it was not checked. With ``selected`` (order-select: the positions of the orders just
    selected) only those are checked, and two rescue agents together are said when one of them is selected.
    InputError for a malformed order, located ``draftOrders[i]...``: PW431 from the FHIR R4 model (with the
    'fhir' extra), else PW450 for what the check reads."""
    if not isinstance(draft_orders, list):
        raise _located("draftOrders", "draftOrders is a list of MedicationRequest resources")
    if _fhir_available():  # the FHIR R4 model first: every malformed element, located
        check_resources(draft_orders, "MedicationRequest", "draftOrders")
    parsed = []
    for i, order in enumerate(draft_orders):
        where = f"draftOrders[{i}]"
        if not isinstance(order, dict):
            raise _located(where, "a draft order is a MedicationRequest (a JSON object)")
        if order.get("resourceType") != "MedicationRequest":
            raise _located(f"{where}.resourceType", f"a draft order is a MedicationRequest, not "
                                                    f"{one_line(repr(order.get('resourceType')))[:60]}")
        agent, named = _agent_of_order(pathway, order, where)
        dose = _ordered_dose(order, where)
        parsed.append((i, order, agent, named, dose))
    result = session.result()
    options = {o["option"]: o for o in result.get("options", [])}
    b = _Builder(pathway, session, base_url)
    rescue_agents = _rescue_agents(pathway)
    together = sorted({agent for _i, _o, agent, _n, _d in parsed if agent in rescue_agents})
    rescue_orders = [i for i, _o, agent, _n, _d in parsed if agent in rescue_agents]
    if len(together) > 1 and (selected is None or set(rescue_orders) & set(selected)):
        _together_card(b, pathway, together, rescue_orders)
    if selected is not None:
        parsed = [entry for entry in parsed if entry[0] in selected]
    avoided = {r["rule"]: r for r in result.get("recommendations", []) if r.get("kind") == "avoid"}
    for i, order, agent, named, dose in parsed:
        mg, per_day, route, unread = dose.mg, dose.per_day, dose.route, dose.unread
        avoid = _avoid_of_order(pathway, order) if agent is None else None
        if avoid is not None and avoid[0] in avoided:
            rec = avoided[avoid[0]]
            b.card(rule=avoid[0], kind="order-avoid", key=f"{order.get('id', i)}",
                   summary=f"{avoid[1].capitalize()}: {_short(rec)}", indicator="warning", override=True,
                   evidence=rec.get("evidence"),
                   detail=[f"Ordered: {md_inline(avoid[1])}. The pathway advises against it for this patient now:",
                           "", f"> {md_inline(rec['text'])}"],
                   extra={"order": i, "avoid": avoid[1]})
            continue
        if agent is None:
            if unmapped:
                concept = order.get("medicationCodeableConcept") or {}
                text = concept.get("text") or next((c.get("display") or c.get("code") for c in concept.get("coding") or []
                                                    if isinstance(c, dict)), None) or "a medicine"
                b.card(rule="order.unmapped", kind="order-unmapped", key=f"{order.get('id', i)}",
                       summary=f"Not checked by the pathway: {text}", indicator="info", override=False,
                       detail=[f"Not checked: {md_inline(text)} is no medicine of the "
                               f"{md_inline(pathway.definition.id)} pathway's codes file: neither its eligibility "
                               "nor its dose was checked."],
                       extra={"order": i})
            continue
        key = f"{order.get('id', i)}"
        shown = agent.replace("_", " ")
        opt = options.get(agent)
        if opt is not None and opt["status"] != "available":
            status = opt["status"]
            rule = opt["rules"][-1] if opt.get("rules") else "options"
            # the reasons that set the status (a caution's or exclusion's own), before the option's general cons
            because = list(opt.get("because") or opt.get("against", [])[-1:])
            reasons = (because + [x for x in opt.get("against", []) if x not in because] if status != "pending" else
                       [f"needs {field_name(f, pathway.definition)}" for f in opt.get("pending", [])])
            if status == "unavailable":
                summary = f"{shown.capitalize()} is not suitable for this patient: " + "; ".join(because)
                indicator = "critical"
            elif status == "caution":
                summary = f"Caution with {shown}: " + "; ".join(because)
                indicator = "warning"
            else:
                needed = ", ".join(field_name(f, pathway.definition) for f in opt.get("pending", [])) or "data"
                summary = f"{shown.capitalize()}: eligibility pending, needs {needed}"
                indicator = "warning"
            detail = [f"Ordered: {md_inline(named or shown)}. The pathway lists the option "
                      f"'{md_inline(shown)}' as **{md_inline(_OPTION_WORDS.get(status, status))}** for this patient.", ""]
            detail += ([f"- Reason: {md_inline(x)}" for x in reasons if x in because or status == "pending"]
                       + [f"- Also against it in general: {md_inline(x)}" for x in reasons
                          if x not in because and status != "pending"]) or ["- (no reason recorded)"]
            b.card(rule=rule, kind=f"order-{status}", key=key, summary=summary, indicator=indicator, detail=detail,
                   override=True, extra={"agent": agent, "order": i, "status": status, "rules": list(opt.get("rules", []))})
        # said now about this agent, critically (a toxic level, renal harm): the order goes against it
        for alert in (result.get("alerts", []) if opt is None or opt["status"] != "unavailable" else []):
            if alert.get("level") == "critical" and _names_agent(pathway, agent, str(alert.get("text", ""))):
                b.card(rule=str(alert.get("rule", "alerts")), kind="order-against-alert", key=key,
                       summary=f"{shown.capitalize()} ordered while the pathway says: {_short(alert)}",
                       indicator="critical", evidence=alert.get("evidence"), override=True,
                       detail=[f"Ordered: {md_inline(named or shown)}. A critical alert of the pathway for this patient "
                               f"names {md_inline(shown)}:", "", f"> {md_inline(alert['text'])}"],
                       extra={"agent": agent, "order": i})
        # the dose: the computed one now, or the one the pathway computes once this agent is recorded
        found = _computed_dose(result, agent)
        given_now = opt is None and agent in str(result.get("state", ""))  # e.g. tacrolimus in rescue_tacrolimus
        if found is None and opt is None and not given_now and agent in rescue_agents:
            # a rescue agent the pathway neither offers now nor gives: before the day-3 decision, beside another
            # rescue agent (one attempt at rescue only), or after colectomy was decided
            state = result.get("state_title") or result.get("state")
            after = any(str(s).startswith(("rescue_", "colectomy", "sequential", "maintenance"))
                        for s in result.get("path", [])[1:])
            b.card(rule="options", kind="order-not-offered", key=key,
                   summary=f"{shown.capitalize()} is not a choice of the pathway now ({state})",
                   indicator="critical" if after else "warning", override=True,
                   detail=[f"Ordered: {md_inline(named or shown)}. The pathway offers rescue agents at the rescue "
                           "decision (steroid failure from day 3 of IV steroids; one attempt at rescue only, then "
                           f"colectomy), and does not offer {md_inline(shown)} in the patient's current state, "
                           f"**{md_inline(state)}**."],
                   extra={"agent": agent, "order": i, "state": result.get("state")})
        doses_from = result  # the result whose doses the order is compared with
        if found is None and opt is not None and opt["status"] in ("available", "caution", "pending"):
            fork = _what_if_result(pathway, session, agent)
            if fork is not None:
                doses_from, found = fork, _computed_dose(fork, agent)
        offered = opt is not None and opt["status"] != "unavailable"
        if found is None and (dose.dosed or unread is not None) and (offered or given_now):
            why = ("the patient's weight is not recorded" if "weight_kg" not in _recorded(session)
                   else "the pathway computes no dose of it for this patient now")
            b.card(rule="options", kind="order-dose-unchecked", key=key,
                   summary=f"{shown.capitalize()} dose not checked: {why}",
                   indicator="warning",
                   detail=[f"Ordered: {md_inline(named or shown)}. The dose was not compared with a computed one: "
                           f"{md_inline(why)}."],
                   extra={"agent": agent, "order": i})
            continue
        if found is not None and not dose.dosed and unread is not None:
            rec, med = found
            b.card(rule=rec["rule"], kind="order-dose-unread", key=key,
                   summary=f"{shown.capitalize()} dose not checked: {unread}",
                   indicator="warning", evidence=rec.get("evidence"),
                   detail=[f"Not compared with the computed dose: {md_inline(unread)}. The pathway reads a dose "
                           "given as a mass (UCUM `mg`, `g` or `ug`) in `doseQuantity` or `doseRange`, or as a mass "
                           "per time in `rateQuantity`.", "", f"Computed: {md_inline(rec['text'])}"],
                   extra={"agent": agent, "order": i, "medication": dict(med)})
            continue
        if found is None or not dose.dosed:
            continue
        rec, med = found
        if route and med.get("route") and _ROUTES.get(route) != _ROUTES.get(str(med["route"])):
            # a dose for one route is not compared with a dose for another (oral ciclosporin is several times
            # the IV dose; IV tacrolimus a fraction of the oral one), and no change to the other route is offered
            b.card(rule=rec["rule"], kind="order-route", key=key,
                   summary=f"{shown.capitalize()} ordered by the {route} route; the pathway computes the "
                           f"{med['route']} dose: {route} dose not checked",
                   indicator="warning", evidence=rec.get("evidence"), override=True,
                   detail=[f"Route ordered: **{md_inline(route)}**; the pathway computes a dose for the "
                           f"**{md_inline(med['route'])}** route only. A dose for one route is not compared with "
                           f"the dose for another: check the {md_inline(route)} dose against the evidence.", "",
                           f"Computed: {md_inline(rec['text'])}"],
                   extra={"agent": agent, "order": i, "medication": dict(med)})
            continue
        _frequency_card(b, rec, med, shown, named, key, agent, i, per_day)
        computed_mg = float(med["dose_mg"])
        times = med.get("times_per_day")
        computed_daily = computed_mg * float(times) if isinstance(times, (int, float)) else None
        if dose.daily is not None and computed_daily is not None:
            ordered, computed, unit = dose.daily, computed_daily, "mg/day"
        elif mg is not None:
            ordered, computed, unit = mg, computed_mg, "mg per dose"
        else:  # a rate, where the pathway computes a dose per infusion
            b.card(rule=rec["rule"], kind="order-dose-unread", key=key,
                   summary=f"{shown.capitalize()} dose not checked: ordered as a rate, computed per infusion",
                   indicator="warning", evidence=rec.get("evidence"),
                   detail=[f"Ordered as a rate of **{dose.daily:g} mg/day**; the pathway computes a dose per "
                           "infusion, which a rate alone does not give.", "", f"Computed: {md_inline(rec['text'])}"],
                   extra={"agent": agent, "order": i, "medication": dict(med)})
            continue
        if computed > 0 and abs(ordered - computed) / computed <= DOSE_TOLERANCE:
            continue
        replacement = medication_request(pathway, session, med, rec["text"])
        if isinstance(order.get("id"), str):
            replacement["id"] = order["id"]
            action = {"type": "update", "description": one_line(f"Change the order to {_dose_words(med)}"),
                      "resource": replacement}
        else:  # a draft without an id cannot be updated or deleted by a suggestion: it stays until removed
            action = {"type": "create", "description": one_line(f"Order {_dose_words(med)} instead, then remove the "
                                                                f"draft of {ordered:g} {unit}"),
                      "resource": replacement}
        detail = [f"Ordered: **{ordered:g} {unit}**; the pathway computes **{computed:g} {unit}** "
                  f"(tolerance {DOSE_TOLERANCE:.0%}).", "", f"Computed: {md_inline(rec['text'])}"]
        if action["type"] == "create":
            detail += ["", "The draft order has no id, so the suggestion cannot replace it: it adds the computed "
                           "order, and **the draft must be removed by hand** before signing (else both are sent)."]
        if dose.ranged:
            detail += ["", "The order gives a dose range: its upper end was compared."]
        if dose.lines > 1 and unit == "mg/day":
            detail += ["", f"The order has {dose.lines} dosage lines: their daily doses were added up."]
        ratio = ordered / computed if computed > 0 else float("inf")
        far = ratio >= DOSE_CRITICAL_RATIO or ratio <= 1 / DOSE_CRITICAL_RATIO
        other = _computed_dose(doses_from, agent, alternative=True)
        alt_mg = float(other[1]["dose_mg"]) if other is not None else None
        if other is not None and alt_mg and mg is not None and abs(mg - alt_mg) <= DOSE_TOLERANCE * alt_mg:
            # the dose a specialist may choose instead, which the pathway itself names now: said, not a dose error
            alt_rec, alt_med = other
            b.card(rule=alt_rec["rule"], kind="order-dose-alternative", key=key,
                   summary=f"{shown.capitalize()} {mg:g} mg is the intensified dose, a specialist's choice; the "
                           f"standard is {computed_mg:g} mg",
                   indicator="warning", evidence=alt_rec.get("evidence"), override=True,
                   detail=[f"Ordered: **{mg:g} mg**, the alternative dose the pathway names for this patient now:", "",
                           f"> {md_inline(alt_rec['text'])}", "", f"Standard: {md_inline(rec['text'])}"],
                   suggestions=[{"label": one_line(rec["text"]), "isRecommended": False, "actions": [action]}],
                   extra={"agent": agent, "order": i, "ordered": mg, "computed": computed_mg,
                          "alternative": dict(alt_med), "medication": dict(med)})
            continue
        if far:
            detail = [f"**{ratio:.2g} times the computed dose.**", "", *detail]
        b.card(rule=rec["rule"], kind="order-dose", key=key,
               summary=f"{shown.capitalize()} dose {ordered:g} {unit} differs from the computed {computed:g} {unit}",
               indicator="critical" if far else "warning", detail=detail, evidence=rec.get("evidence"),
               suggestions=[{"label": one_line(rec["text"]), "isRecommended": True, "actions": [action]}],
               extra={"agent": agent, "order": i, "ordered": ordered, "computed": computed, "unit": unit,
                      "tolerance": DOSE_TOLERANCE, "medication": dict(med)})
    return b.sorted()


# -- prefetch ----------------------------------------------------------------------------------------------

def prefetch_templates(pathway: Pathway, hook: str) -> dict[str, str]:
    """CDS Hooks prefetch templates for ``hook``: the Patient, the Observations the pathway reads (by the
    codes of its codes file, grouped per code system), and its MedicationRequests and Procedures."""
    codes = pathway.definition.codes
    out = {"patient": "Patient/{{context.patientId}}"}
    if codes is None:
        return out
    by_system: dict[str, list[str]] = {}
    for (system, code) in codes.observations:
        if system != codes.local_system:  # searched by its system alone, below: any field may be coded in it
            by_system.setdefault(system, []).append(code)
    for system, listed in sorted(by_system.items(), key=lambda kv: (kv[0] != "http://loinc.org", kv[0])):
        key = "observations" if system == "http://loinc.org" else f"observations-{_slug(system)}"
        out[key] = ("Observation?patient={{context.patientId}}&code="
                    + ",".join(f"{system}|{c}" for c in sorted(set(listed))))
    if codes.local_system:
        out["observations-local"] = f"Observation?patient={{{{context.patientId}}}}&code={codes.local_system}|"
    media = sorted({f"{o.system}|{o.code}" for o in codes.orders.values() if "MedicationRequest" in o.resources})
    if media:
        out["medications"] = "MedicationRequest?patient={{context.patientId}}&code=" + ",".join(media)
    procedures = sorted({f"{o.system}|{o.code}" for o in codes.orders.values() if "Procedure" in o.resources})
    if procedures and hook == "patient-view":
        out["procedures"] = "Procedure?patient={{context.patientId}}&code=" + ",".join(procedures)
    return out


def _slug(system: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in system.split("//")[-1]).strip("-").lower()[:40]
