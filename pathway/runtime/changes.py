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

from pathway.runtime.result import STATUS_ORDER, offer_status
from pathway.runtime.state import json_copy, shared_list

__all__ = ["view", "differences", "SECTIONS", "compared_view", "recorded_view", "kept_view", "unkept_view"]

#: the lists of a result whose items appear and go
SECTIONS = ("recommendations", "alerts", "proposals", "data_required")
#: keys that describe an item rather than identify it
_DESCRIPTIVE = {"evidence", "summary"}


#: ``json.dumps(..., sort_keys=True, default=repr)`` without a new encoder per call
_ENCODE = json.JSONEncoder(sort_keys=True, default=repr).encode


def _key(item: Any) -> str:
    if not isinstance(item, dict):
        return _ENCODE(item)
    return _ENCODE({k: v for k, v in item.items() if k not in _DESCRIPTIVE})


def _keyed(items: Any) -> dict[str, Any]:
    """Items by :func:`_key`, each kept as :func:`_brief` would list it: a session keeps a view between
    results, and an item's evidence is not part of what is compared or listed."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict):
            brief = {k: v for k, v in item.items() if k not in _DESCRIPTIVE}
            out[_encoded(brief)] = brief
        else:
            out[_ENCODE(item)] = item
    return out


#: the keys of items made only of text, by their (name, text) pairs (most repeat across results and sessions)
_ENCODED: dict[tuple[tuple[str, Any], ...], str] = {}


def _encoded(brief: dict[str, Any]) -> str:
    """``_ENCODE(brief)``, looked up for an item whose values are all text (equal pairs: the same JSON)."""
    for k, v in brief.items():
        if type(v) is not str or type(k) is not str:
            return _ENCODE(brief)
    pairs = tuple(brief.items())
    key = _ENCODED.get(pairs)
    if key is None:
        if len(_ENCODED) >= _PAIRS_MAX:
            _ENCODED.clear()
        key = _ENCODED[pairs] = _ENCODE(brief)
    return key


def view(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a result that :func:`differences` compares (shares the values inside the result's
    items: read only)."""
    return {
        "state": result.get("state"),
        "path": list(result.get("path") or []),
        **{name: _keyed(result.get(name) or []) for name in SECTIONS},
        "options": {o.get("option"): o.get("status") for o in result.get("options") or [] if isinstance(o, dict)},
    }


def _brief(item: Any) -> dict[str, Any]:
    """An item as a change lists it: what identifies it, without its evidence (a copy the caller may change)."""
    return _copy({k: v for k, v in item.items() if k not in _DESCRIPTIVE}) if isinstance(item, dict) else {
        "value": json_copy(item)}


_FLAT = (str, int, float, bool, type(None))


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of an item the caller may change: a new dict of the same values when they are all scalars."""
    for v in item.values():
        if type(v) not in _FLAT:
            return json_copy(item)  # type: ignore[no-any-return]
    return dict(item)


#: (key, item) pairs of kept views, shared between sessions (each item a copy of the first seen: no result
#: shares it); dropped when full (only the sharing is lost)
_PAIRS: dict[str, tuple[str, Any]] = {}
#: (option, status) pairs of kept views, shared between sessions
_OPTIONS: dict[tuple[Any, Any], tuple[Any, Any]] = {}
_PAIRS_MAX = 8192


def _pair(key: str, item: Any) -> tuple[str, Any]:
    kept = _PAIRS.get(key)
    if kept is not None and type(item) is dict and type(kept[1]) is dict and tuple(kept[1]) == tuple(item):
        return kept
    pair = (key, _copy(item) if type(item) is dict else json_copy(item))
    if kept is None and type(item) is dict:
        if len(_PAIRS) >= _PAIRS_MAX:
            _PAIRS.clear()
        _PAIRS[key] = pair
    return pair


def forget_shared() -> None:
    """Drop the kept-view items, option statuses and item keys that sessions share (see
    :func:`pathway.runtime.state.forget_shared`)."""
    _PAIRS.clear()
    _OPTIONS.clear()
    _ENCODED.clear()


def _option(pair: tuple[Any, Any]) -> tuple[Any, Any]:
    try:
        kept = _OPTIONS.get(pair)
    except TypeError:  # an option that cannot be a key
        return pair
    if kept is None or type(kept[0]) is not type(pair[0]) or type(kept[1]) is not type(pair[1]):
        if len(_OPTIONS) >= _PAIRS_MAX:
            _OPTIONS.clear()
        kept = _OPTIONS[pair] = pair
    return kept


def kept_view(shown: dict[str, Any]) -> tuple[Any, ...]:
    """A :func:`view` as a session keeps it between results (compact; its items and options, and each of its
    parts, shared between sessions and with no result): :func:`unkept_view` gives it back."""
    return (shown["state"], shared_list(tuple(shown["path"])),
            *(shared_list(tuple(_pair(key, item) for key, item in shown[name].items())) for name in SECTIONS),
            shared_list(tuple(_option(pair) for pair in shown["options"].items())))


def unkept_view(kept: tuple[Any, ...]) -> dict[str, Any]:
    """The :func:`view` that :func:`kept_view` kept (its items read only)."""
    state, path, *sections, options = kept
    return {"state": state, "path": list(path), **{name: dict(pairs) for name, pairs in zip(SECTIONS, sections, strict=True)},
            "options": dict(options)}


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


# -- a session moved to other rules: what it showed then, against what the new rules give ----------------------

#: per section, the keys that identify an item when a session is compared across rule versions (its evidence,
#: titles and explanations may be reworded by the new rules without the item changing)
_IDENTIFIES = {
    "recommendations": ("rule", "kind", "text", "medication"),
    "alerts": ("rule", "level", "text", "code", "field"),
    "proposals": ("rule", "to", "text"),
    "data_required": ("field",),
}


def _identified(section: str, item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in _IDENTIFIES[section] if k in item}


def _sections(items: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        kept = [_identified(name, item) for item in items.get(name, []) if isinstance(item, dict)]
        out[name] = {_key(item): item for item in kept}
    return out


def compared_view(result: dict[str, Any]) -> dict[str, Any]:
    """The :func:`view` of a result as :func:`recorded_view` can also give it (items by what identifies them)."""
    return {
        "state": result.get("state"),
        "path": list(result.get("path") or []),
        **_sections({name: list(result.get(name) or []) for name in SECTIONS}),
        "options": {o.get("option"): o.get("status") for o in result.get("options") or [] if isinstance(o, dict)},
    }


def recorded_view(doc: dict[str, Any], recordable: Any) -> dict[str, Any]:
    """What a dumped session showed under the rules it was dumped under, read from the document alone (those
    rules may no longer exist): its state and path, and the recommendations, alerts, proposals, data
    requests and option statuses its last evaluation's firings recorded. ``recordable(field)`` lists the
    fields asked for when ``field`` is missing (a computed field's inputs), under the current rules."""
    items: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
    options: dict[str, str] = {}
    items["alerts"] += [w for w in doc.get("warnings") or [] if isinstance(w, dict)]
    for entry in doc.get("current") or []:
        rule = entry.get("rule")
        for name in entry.get("missing") or []:
            items["data_required"] += [{"field": f} for f in recordable(name)]
        for eff in entry.get("effects") or []:
            kind = eff.get("kind")
            if kind in ("recommend", "dose"):
                rec = {"rule": rule, "kind": eff.get("rec_kind"), "text": eff.get("text")}
                if eff.get("medication"):
                    rec["medication"] = eff["medication"]
                items["recommendations"].append(rec)
            elif kind == "alert":
                items["alerts"].append({"rule": rule, "level": eff.get("level"), "text": eff.get("text")})
            elif kind == "propose":
                items["proposals"].append({"rule": rule, "to": eff.get("to"), "text": eff.get("text")})
            elif kind == "require":
                items["data_required"] += [{"field": f} for name in eff.get("fields") or [] for f in recordable(name)]
            elif kind == "offer":
                status = offer_status(eff)
                old = options.get(eff.get("option"))
                if old is None or STATUS_ORDER.get(status, 0) > STATUS_ORDER.get(old, 0):
                    options[eff.get("option")] = status
    return {"state": doc.get("state"), "path": list(doc.get("path") or []), **_sections(items),
            "options": dict(sorted(options.items(), key=lambda kv: str(kv[0])))}
