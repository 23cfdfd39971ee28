"""What an event changed: the ``changes`` of the result that :meth:`Session.observe`, ``amend`` and
``retract`` return.

Two results are compared as a clinician reads them: the state (and the path, which a late or
amended event can rewrite), the recommendations, alerts, proposals and data requests that appeared
or went, and each rescue option whose status changed. An item whose text changed (a dose
recomputed) went in its old wording and appeared in its new one.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["view", "differences", "SECTIONS"]

#: the lists of a result whose items appear and go
SECTIONS = ("recommendations", "alerts", "proposals", "data_required")
#: keys that describe an item rather than identify it
_DESCRIPTIVE = {"evidence"}


#: ``json.dumps(..., sort_keys=True, default=repr)`` without a new encoder per call
_ENCODE = json.JSONEncoder(sort_keys=True, default=repr).encode


def _key(item: Any) -> str:
    if not isinstance(item, dict):
        return _ENCODE(item)
    return _ENCODE({k: v for k, v in item.items() if k not in _DESCRIPTIVE})


def view(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a result that :func:`differences` compares (shares the result's items: read only)."""
    return {
        "state": result.get("state"),
        "path": list(result.get("path") or []),
        **{name: {_key(item): item for item in result.get(name) or []} for name in SECTIONS},
        "options": {o.get("option"): o.get("status") for o in result.get("options") or [] if isinstance(o, dict)},
    }


def _brief(item: Any) -> dict[str, Any]:
    """An item as a change lists it: what identifies it, without its evidence."""
    return {k: v for k, v in item.items() if k not in _DESCRIPTIVE} if isinstance(item, dict) else {"value": item}


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The changes from one :func:`view` to another, in a stable order: state, path, then each
    section's items that went and appeared, then options whose status changed."""
    out: list[dict[str, Any]] = []
    if before["state"] != after["state"]:
        out.append({"section": "state", "change": "changed", "from": before["state"], "to": after["state"]})
    old_path, new_path = before["path"], after["path"]
    if new_path[: len(old_path)] != old_path:  # not merely extended: a late or amended event rewrote it
        out.append({"section": "path", "change": "rewritten", "from": list(old_path), "to": list(new_path)})
    for name in SECTIONS:
        went = [item for key, item in before[name].items() if key not in after[name]]
        came = [item for key, item in after[name].items() if key not in before[name]]
        out += [{"section": name, "change": "went", **_brief(item)} for item in went]
        out += [{"section": name, "change": "appeared", **_brief(item)} for item in came]
    for option in sorted(set(before["options"]) | set(after["options"]), key=str):
        old, new = before["options"].get(option), after["options"].get(option)
        if old != new:
            out.append({"section": "options", "change": "changed", "option": option, "from": old, "to": new})
    return out
