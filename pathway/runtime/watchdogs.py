"""Overdue decisions: a state's watchdog (``overdue:`` in pathway.yaml) turns a patient still
waiting past the due point into a critical alert naming what is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathway.definition import conditions as C
from pathway.definition.effects import fill_text
from pathway.runtime.facts import recordable
from pathway.runtime.state import SessionState

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["overdue_records"]


def _still_needed(pathway: Pathway, current: list[dict[str, Any]]) -> list[str]:
    """Fields the rendered firings ask for: what waiting rules need (the recordable inputs of a
    computed field) and what 'require' effects list."""
    out: list[str] = []
    for item in current:
        for name in item.get("missing", []):
            out += recordable(pathway, name)
        for eff in item["effects"]:
            if eff["kind"] == "require":
                for name in eff["fields"]:
                    out += recordable(pathway, name)
    return list(dict.fromkeys(out))


def overdue_records(pathway: Pathway, st: SessionState, snapshot: dict[str, Any], derived: dict[str, Any],
                    current: list[dict[str, Any]], texts: dict[str, Any]) -> list[dict[str, Any]]:
    """The critical "decision overdue" alert of the current state, when its watchdog holds."""
    d = pathway.definition
    cond = d.watchdogs.get(st.state)
    if cond is None:
        return []
    facts = {k: v for k, v in snapshot.items() if v is not None}
    facts.update(derived)
    if C.evaluate(cond, facts) is not True:
        return []
    spec = d.spec.states[st.state].overdue
    assert spec is not None  # watchdogs holds only states that declare one
    text = fill_text(spec.text, texts, pathway.display)
    # a card's one line: the state's short form, then what is missing counted, not listed
    summary = fill_text(spec.summary, texts, pathway.display) if spec.summary else text
    needed = _still_needed(pathway, current)
    if needed:
        titles = [d.fields[f].title if f in d.fields else f for f in needed]
        text += " Still needed: " + "; ".join(f"{t} ({f})" for t, f in zip(titles, needed, strict=True)) + "."
        summary += f" {len(needed)} value{'s' if len(needed) > 1 else ''} still needed."
    proposals = [e for item in current for e in item["effects"] if e["kind"] == "propose"]
    if proposals:
        text += " Awaiting the team's decision on: " + "; ".join(
            f"{e['to']} ({', '.join(f'{k}: {v}' for k, v in e['record'].items())})" for e in proposals) + "."
        summary += " Awaiting the team's decision."
    ev = spec.evidence
    return [{"rule": f"overdue.{st.state}", "branch": "then", "synthetic": True,
             "title": f"Decision overdue in '{d.spec.states[st.state].title}'",
             "evidence": {"sources": list(ev.sources), "strength": ev.strength, "status": ev.status},
             "effects": [{"kind": "alert", "level": "critical", "text": text,
                          **({"summary": summary} if summary != text else {})}]}]
