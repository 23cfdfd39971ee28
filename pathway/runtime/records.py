"""A firing's effects rendered against the facts it saw: texts filled, doses computed.

These records are what a session keeps of "now" (its current state's firings and the moves that
led there); :mod:`pathway.runtime.result` assembles the result from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pathway.definition.effects import Alert, Dose, Offer, Propose, Recommend, Require, Titrate, fill_text
from pathway.definition.model import Display
from pathway.definition.pathway import Rule
from pathway.runtime import doses
from pathway.runtime.engine import Firing

__all__ = ["text_values", "record"]


def text_values(params: dict[str, Any], snapshot: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """Names a text may use: parameters, then current values, then derived facts."""
    values = dict(params)
    values.update({k: v for k, v in snapshot.items() if v is not None})
    values.update(derived)
    return values


def _offer(eff: Offer, status: str, fill: Callable[[str], str], pending: list[str] | None = None) -> dict[str, Any]:
    item = {"kind": "offer", "option": eff.option, "status": status, "rank": doses.num(float(eff.rank)),
            "text": fill(eff.text), "for": [fill(x) for x in eff.for_], "against": [fill(x) for x in eff.against]}
    if pending:
        item["pending"] = pending
    return item


def record(firing: Firing, snapshot: dict[str, Any], values: dict[str, Any],
           display: Mapping[str, Display] | None = None, rule: Rule | None = None) -> dict[str, Any]:
    """Effects of one firing, rendered against the snapshot (texts filled, doses computed).

    ``display`` maps a field to its display precision: texts show its value rounded to it, while
    doses and every decision use the unrounded value. ``rule`` (the firing's rule) lets a waiting
    rule list the options it decides as pending.
    """

    def fill(text: str) -> str:
        return fill_text(text, values, display)

    def short(item: dict[str, Any], summary: str) -> dict[str, Any]:
        if summary:  # only when the rule gives one: a result without it is as before
            item["summary"] = summary
        return item

    effects: list[dict[str, Any]] = []
    for eff in firing.effects:
        if isinstance(eff, Recommend):
            item: dict[str, Any] = {"kind": "recommend", "rec_kind": eff.kind, "text": fill(eff.text)}
            if eff.medication is not None:
                item["medication"] = doses.medication(eff.medication)
            effects.append(short(item, fill(eff.summary) if eff.summary else ""))
        elif isinstance(eff, Dose):
            med, text, summary = doses.dose(eff, snapshot, values, display)
            effects.append(short({"kind": "dose", "rec_kind": "medication", "text": text, "medication": med}, summary))
        elif isinstance(eff, Titrate):
            med, text, summary = doses.titrate(eff, snapshot, values, display)
            effects.append(short({"kind": "dose", "rec_kind": "medication", "text": text, "medication": med}, summary))
        elif isinstance(eff, Alert):
            effects.append(short({"kind": "alert", "level": eff.level, "text": fill(eff.text)},
                                 fill(eff.summary) if eff.summary else ""))
        elif isinstance(eff, Require):
            missing = [f for f in eff.fields if snapshot.get(f) is None]
            if missing:
                effects.append({"kind": "require", "fields": missing, "text": fill(eff.text)})
        elif isinstance(eff, Offer):
            effects.append(_offer(eff, eff.status, fill))
        elif isinstance(eff, Propose):
            field, value = eff.decision
            effects.append(short({"kind": "propose", "to": eff.to, "record": {field: value}, "text": fill(eff.text),
                                  "for": [fill(x) for x in eff.for_], "against": [fill(x) for x in eff.against]},
                                 fill(eff.summary) if eff.summary else ""))
    if firing.branch == "missing" and rule is not None:
        # A rule that decides an option is waiting for data: the option is pending on that data.
        for eff in rule.then + rule.otherwise:
            if isinstance(eff, Offer):
                effects.append(_offer(eff, "pending", fill, pending=list(firing.missing)))
    out: dict[str, Any] = {"rule": firing.rule, "branch": firing.branch, "effects": effects}
    if firing.missing:
        out["missing"] = list(firing.missing)
    return out
