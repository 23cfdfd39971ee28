"""The result contract: what ``Session.observe`` and ``Session.result`` return (JSON-ready)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathway.definition.effects import fill_text
from pathway.definition.timeline import hours_text
from pathway.runtime.facts import expired
from pathway.runtime.state import SessionState

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["RESULT_KEYS", "build_result"]

#: Keys every result has (the stable part of the contract; later keys are additions).
RESULT_KEYS = ("pathway", "version", "patient_id", "state", "path", "recommendations", "options",
               "data_required", "alerts", "trace")


def _copy_trace(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy callers may change freely (entries hold scalars, a facts dict and a missing list)."""
    out = []
    for entry in trace:
        item = dict(entry)
        item["facts"] = dict(entry["facts"])
        if "missing" in entry:
            item["missing"] = list(entry["missing"])
        out.append(item)
    return out


def _need(required: dict[str, dict[str, Any]], name: str, rule: str, text: str) -> None:
    entry = required.setdefault(name, {"field": name, "rules": [], "text": text})
    if rule not in entry["rules"]:
        entry["rules"].append(rule)


def build_result(pathway: Pathway, st: SessionState) -> dict[str, Any]:
    """The result of a session in state ``st``: a fresh dict the caller may change."""
    d = pathway.definition
    recs: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    options: dict[str, dict[str, Any]] = {}
    required: dict[str, dict[str, Any]] = {}
    for item in st.current:
        rule = pathway.rule(item["rule"])
        evidence = {"sources": list(rule.evidence.sources), "strength": rule.evidence.strength,
                    "status": rule.evidence.status}
        for f in item.get("missing", []):
            _need(required, f, rule.id, f"needed for '{rule.title}'")
        for eff in item["effects"]:
            kind = eff["kind"]
            if kind == "recommend" or kind == "dose":
                rec = {"rule": rule.id, "kind": eff["rec_kind"], "text": eff["text"], "evidence": evidence}
                if eff.get("medication"):
                    rec["medication"] = eff["medication"]
                recs.append(rec)
            elif kind == "alert":
                alerts.append({"rule": rule.id, "level": eff["level"], "text": eff["text"], "evidence": evidence})
            elif kind == "require":
                for f in eff["fields"]:
                    _need(required, f, rule.id, eff["text"] or f"needed for '{rule.title}'")
            elif kind == "offer":
                opt = options.setdefault(eff["option"], {"option": eff["option"], "available": True, "rank": eff["rank"],
                                                         "text": "", "for": [], "against": [], "rules": []})
                opt["available"] = opt["available"] and eff["available"]
                opt["rank"] = min(opt["rank"], eff["rank"])
                opt["text"] = opt["text"] or eff["text"]
                for key in ("for", "against"):
                    opt[key].extend(x for x in eff[key] if x not in opt[key])
                if rule.id not in opt["rules"]:
                    opt["rules"].append(rule.id)
    ranked = sorted(options.values(), key=lambda o: (o["rank"], o["option"]))
    for name, entry in required.items():
        spec = d.fields.get(name)
        entry.update({"title": spec.title if spec else name, "unit": spec.unit if spec else ""})
        stale = expired(pathway, st, name)
        if stale is not None:
            entry.update(recheck=True, **stale)
            entry["text"] = f"{recheck_text(entry['title'], entry['unit'], stale)}: {entry['text']}"
    state_def = d.spec.states[st.state]
    return {
        "pathway": d.id,
        "version": d.version,
        "profile": d.profile,
        "patient_id": st.patient_id,
        "day": st.day,
        "state": st.state,
        "state_title": state_def.title,
        "state_kind": state_def.kind,
        "path": list(st.path),
        "recommendations": recs,
        "options": ranked,
        "data_required": list(required.values()),
        "alerts": alerts,
        "derived": dict(sorted(st.derived.items())),  # derived during the last event
        "frozen": {name: _frozen_entry(kept) for name, kept in sorted(st.frozen.items())},
        "unverified_rules": sorted({item["rule"] for item in st.current
                                    if pathway.rule(item["rule"]).evidence.status == "unverified"}),
        "trace": _copy_trace(st.trace),
    }


def recheck_text(title: str, unit: str, stale: dict[str, Any]) -> str:
    """``recheck serum magnesium (last 0.8 mmol/L on day 0, 74 h ago)``."""
    value = fill_text("{v}", {"v": stale["last_value"]})
    when = f"day {fill_text('{d}', {'d': stale['recorded_day']})}"
    if "recorded_time" in stale:
        when += f" at {stale['recorded_time']}"
    name = title[:1].lower() + title[1:] if title[1:2].islower() or len(title) == 1 else title
    age = hours_text(round(stale["age_hours"], 1))
    return f"recheck {name} (last {value}{' ' + unit if unit else ''} on {when}, {age} ago)"


def _frozen_entry(kept: dict[str, Any]) -> dict[str, Any]:
    """A kept decision fact as the result shows it (a copy the caller may change)."""
    return {"value": kept["value"], "day": kept["day"], "decision_point": kept["decision_point"], "rule": kept["rule"],
            "facts": dict(kept["facts"]), "recorded": dict(kept["recorded"])}
