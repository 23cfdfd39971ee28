"""The result contract: what ``Session.observe`` and ``Session.result`` return (JSON-ready)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from pathway.definition import conditions as C
from pathway.definition.effects import Derive, fill_text
from pathway.definition.timeline import day_text, hours_text
from pathway.runtime.facts import expired, recordable, values_now
from pathway.runtime.state import SessionState, entry_dict, json_copy, kept_get, unpack

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["RESULT_KEYS", "build_result", "copy_trace"]

#: Keys every result has (the stable part of the contract; later keys are additions).
RESULT_KEYS = ("pathway", "version", "patient_id", "state", "path", "recommendations", "options",
               "data_required", "alerts", "trace")


def copy_trace(trace: list[Any]) -> list[dict[str, Any]]:
    """A copy callers may change freely (entries hold scalars, a facts dict and a missing list):
    :func:`entry_dict` with ``copy_facts``, the compact entries read inline."""
    out: list[dict[str, Any]] = []
    append = out.append
    for item in trace:
        if type(item) is not tuple:
            append(entry_dict(item, copy_facts=True))
            continue
        (state, rule, branch, keys, missing, source, target), event, day = item[0], item[1], item[2]
        entry = {"event": event, "day": day, "state": state, "rule": rule, "branch": branch,
                 "facts": dict(zip(keys, item[3:], strict=True)) if keys is not None else unpack(item[3])}
        if missing is not None:
            entry["missing"] = list(missing)
        if target is not None:
            entry["from"] = source
            entry["to"] = target
        append(entry)
    return out


#: How an option's statuses combine: the strongest reason wins (a known hard exclusion stands
#: even while other data is pending).
STATUS_ORDER = {"available": 0, "caution": 1, "pending": 2, "unavailable": 3}


def offer_status(effect: dict[str, Any]) -> str:
    """The status a rendered ``offer`` effect gives its option (``available: false`` is the 0.1.0 form)."""
    return str(effect.get("status") or ("available" if effect.get("available", True) else "unavailable"))


def _computed(pathway: Pathway, st: SessionState) -> dict[str, dict[str, Any]]:
    """Where each computed input's value came from at the last evaluation (a fresh copy); worked out again
    for a state read from a document (the same values: they depend on the recorded values and the clock,
    not on the state)."""
    if not st.events:
        return {}
    latest = st.computed
    if latest is None:
        latest = st.computed = values_now(pathway, st)[1]
    return {name: {**entry, "inputs": dict(entry["inputs"])} for name, entry in sorted(latest.items())}


def _need(required: dict[str, dict[str, Any]], name: str, rule: str, text: str) -> None:
    entry = required.setdefault(name, {"field": name, "rules": [], "text": text})
    if rule not in entry["rules"]:
        entry["rules"].append(rule)


def _unverified_basis(pathway: Pathway, st: SessionState) -> dict[str, list[str]]:
    """Per rule of the current evaluation, the unverified rules whose derived facts its decision rests
    on (directly or through other derived facts), including kept decision facts: a verified rule
    acting on an unverified exclusion is only as sure as that exclusion. Worked out once per pathway
    for each combination of the rules and branches it depends on (read only: shared between results)."""
    values = dict(st.derived)
    values.update((name, kept_get(kept, "value")) for name, kept in st.frozen.items())
    fired = [(item["rule"], item["branch"]) for item in st.current if not item.get("synthetic")]
    fired += [(kept_get(kept, "rule"), kept_get(kept, "branch")) for kept in st.frozen.values()]
    # what each rule's decision rests on: the derived facts of the tests that gave its branch (Kleene)
    relied = {rule: _relied_on(pathway, rule, branch, values) for rule, branch in fired}
    key = (tuple((item["rule"], item["branch"]) for item in st.current if not item.get("synthetic")),
           tuple((name, kept_get(kept, "rule")) for name, kept in st.frozen.items()),
           tuple(sorted(relied.items())))
    known = _BASIS.get(pathway)
    if known is None:
        known = _BASIS.setdefault(pathway, {})
    basis = known.get(key)
    if basis is None:
        if len(known) >= _BASIS_MAX:
            known.clear()
        basis = known[key] = _worked_out_basis(pathway, st, relied)
    return basis


def _relied_on(pathway: Pathway, rule_id: str, branch: str, values: dict[str, Any]) -> frozenset[str]:
    """The derived facts a rule's branch rests on: those of its ``due`` tests that hold or are unknown, and
    of its ``when`` tests whose value gave the branch (true for ``then``, false for ``else``) or is unknown.
    The conditions are monotone (all / any / at least), so a test that did not give the branch changes
    nothing: with latent TB untreated, an exclusion that also reads "a negative after an untreated result"
    does not rest on the rule that found no such contradiction."""
    due, when, names = _derived_tests(pathway, rule_id)
    table = _RELIED.get(pathway)
    if table is None:
        table = _RELIED.setdefault(pathway, {})
    # keyed by the values and their types (1, 1.0 and True are equal keys, but a test may tell them apart)
    key: tuple[Any, ...] | None = (rule_id, branch, *((type(v), v) for v in (values.get(name, _ABSENT) for name in names)))
    try:
        known = table.get(key)
    except TypeError:  # a value that cannot be a key: worked out, not kept
        known, key = None, None
    if known is not None:
        return known
    out = {c.field for c in due if c.holds(values) is not False}
    if branch == "missing":
        out.update(c.field for c in when)
    else:
        gave = branch == "then"
        out.update(c.field for c in when if c.holds(values) in (gave, None))
    relied = frozenset(out)
    if key is not None:
        if len(table) >= _BASIS_MAX:
            table.clear()
        table[key] = relied
    return relied


#: a fact absent from the values (a key part distinct from every value, None included)
_ABSENT = ("absent",)
#: per loaded pathway (weakly held), :func:`_relied_on` by rule, branch and the values of the derived facts it tests
#: (cleared when full)
_RELIED: weakref.WeakKeyDictionary[Pathway, dict[Any, frozenset[str]]] = weakref.WeakKeyDictionary()


def _derived_tests(pathway: Pathway, rule_id: str) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[str, ...]]:
    """A rule's tests of derived facts in ``due`` and in ``when``, and the names of those facts."""
    table = _static(pathway)
    tests = table.get((rule_id, "tests"))
    if tests is None:
        rule = pathway.rule(rule_id)
        due, when = (tuple(c for c in C.fields_of(cond) if c.derived) for cond in (rule.due, rule.when))
        tests = table[(rule_id, "tests")] = (due, when, tuple(dict.fromkeys(c.field for c in due + when)))
    return tests


#: per loaded pathway (weakly held), :func:`_unverified_basis` by the rules it depends on (cleared when full)
_BASIS: weakref.WeakKeyDictionary[Pathway, dict[Any, dict[str, list[str]]]] = weakref.WeakKeyDictionary()
_BASIS_MAX = 4096


def _worked_out_basis(pathway: Pathway, st: SessionState, relied: dict[str, frozenset[str]]) -> dict[str, list[str]]:
    producers: dict[str, set[str]] = {}
    for item in st.current:
        if item.get("synthetic"):
            continue
        for name in _derives(pathway, item["rule"], item["branch"]):
            producers.setdefault(name, set()).add(item["rule"])
    for name, kept in st.frozen.items():
        producers.setdefault(name, set()).add(kept_get(kept, "rule"))
    if not producers:
        return {}

    def tested(rule_id: str) -> frozenset[str]:
        return relied.get(rule_id, _tested_derived(pathway, rule_id))

    out: dict[str, list[str]] = {}
    for item in st.current:
        if item.get("synthetic"):
            continue
        seen: set[str] = set()
        todo = list(tested(item["rule"]))
        while todo:
            name = todo.pop()
            for producer in producers.get(name, ()):
                if producer not in seen and producer != item["rule"]:
                    seen.add(producer)
                    todo += tested(producer)
        weak = sorted(r for r in seen if pathway.rule(r).evidence.status == "unverified")
        if weak:
            out[item["rule"]] = weak
    return out


#: per loaded pathway (weakly held), what each rule branch derives and the derived facts each rule tests
_STATIC: weakref.WeakKeyDictionary[Pathway, dict[tuple[str, str], Any]] = weakref.WeakKeyDictionary()


def _static(pathway: Pathway) -> dict[tuple[str, str], Any]:
    table = _STATIC.get(pathway)
    if table is None:
        table = _STATIC.setdefault(pathway, {})
    return table


def _derives(pathway: Pathway, rule_id: str, branch: str) -> tuple[str, ...]:
    table = _static(pathway)
    names = table.get((rule_id, branch))
    if names is None:
        rule = pathway.rule(rule_id)
        names = table[(rule_id, branch)] = tuple(
            name for eff in rule.effects(branch) if isinstance(eff, Derive) for name in eff.values)  # type: ignore[arg-type]
    return names


def _tested_derived(pathway: Pathway, rule_id: str) -> frozenset[str]:
    table = _static(pathway)
    names = table.get((rule_id, ""))
    if names is None:
        rule = pathway.rule(rule_id)
        names = table[(rule_id, "")] = frozenset(
            c.field for cond in (rule.when, rule.due) for c in C.fields_of(cond) if c.derived)
    return names


def build_result(pathway: Pathway, st: SessionState, trace: bool = True) -> dict[str, Any]:
    """The result of a session in state ``st``: a fresh dict the caller may change (without ``trace``
    when ``trace`` is false)."""
    d = pathway.definition
    recs: list[dict[str, Any]] = []
    # Input warnings of the last event (a bare number read in one of two plausible units) come first.
    alerts: list[dict[str, Any]] = [dict(w, evidence=dict(w["evidence"], sources=list(w["evidence"]["sources"])))
                                    for w in st.warnings]
    options: dict[str, dict[str, Any]] = {}
    required: dict[str, dict[str, Any]] = {}
    proposals: list[dict[str, Any]] = []
    basis = _unverified_basis(pathway, st)
    for item in st.current:
        if item.get("synthetic"):  # said by the engine itself (e.g. a recorded decision not acted on)
            rule_id, title, evidence = item["rule"], item["title"], json_copy(item["evidence"])
        else:
            rule = pathway.rule(item["rule"])
            rule_id, title = rule.id, rule.title
            evidence = {"sources": list(rule.evidence.sources), "strength": rule.evidence.strength,
                        "status": rule.evidence.status}
            if rule_id in basis:  # the facts it acts on come from unverified rules
                evidence["rests_on_unverified"] = list(basis[rule_id])
        for f in item.get("missing", []):
            for asked in recordable(pathway, f):  # a computed field: the inputs it is computed from
                _need(required, asked, rule_id, f"needed for '{title}'")
        for eff in item["effects"]:
            kind = eff["kind"]
            if kind == "recommend" or kind == "dose":
                rec = {"rule": rule_id, "kind": eff["rec_kind"], "text": eff["text"], "evidence": evidence}
                if eff.get("medication"):
                    rec["medication"] = json_copy(eff["medication"])  # the session keeps its own
                if eff.get("summary"):
                    rec["summary"] = eff["summary"]
                recs.append(rec)
            elif kind == "alert":
                alert = {"rule": rule_id, "level": eff["level"], "text": eff["text"], "evidence": evidence}
                if eff.get("summary"):
                    alert["summary"] = eff["summary"]
                alerts.append(alert)
            elif kind == "require":
                for f in eff["fields"]:
                    for asked in recordable(pathway, f):  # a computed field: the inputs it is computed from
                        _need(required, asked, rule_id, eff["text"] or f"needed for '{title}'")
            elif kind == "offer":
                opt = options.setdefault(eff["option"], {"option": eff["option"], "status": "available", "rank": eff["rank"],
                                                         "text": "", "for": [], "against": [], "pending": [], "rules": [],
                                                         "because": []})
                status = offer_status(eff)
                if STATUS_ORDER[status] > STATUS_ORDER[opt["status"]]:
                    opt["status"] = status
                    opt["because"] = []
                if status == opt["status"] and status in ("caution", "unavailable"):
                    # the reasons of the offers that set the status (a caution's or exclusion's own reasons,
                    # not the option's general cons listed by its eligibility rule)
                    opt["because"].extend(x for x in eff.get("against", []) if x not in opt["because"])
                opt["rank"] = min(opt["rank"], eff["rank"])
                opt["text"] = opt["text"] or eff["text"]
                for key in ("for", "against", "pending"):
                    opt[key].extend(x for x in eff.get(key, []) if x not in opt[key])
                if rule_id not in opt["rules"]:
                    opt["rules"].append(rule_id)
            elif kind == "propose":
                proposal = {"rule": rule_id, "to": eff["to"], "to_title": d.spec.states[eff["to"]].title,
                            "record": dict(eff["record"]), "text": eff["text"], "for": list(eff["for"]),
                            "against": list(eff["against"]), "evidence": evidence}
                if eff.get("summary"):
                    proposal["summary"] = eff["summary"]
                proposals.append(proposal)
    for opt in options.values():
        opt["available"] = opt["status"] in ("available", "caution")  # choosable now (the 0.1.0 key)
    ranked = sorted(options.values(), key=lambda o: (o["rank"], o["option"]))
    for name, entry in required.items():
        spec = d.fields.get(name)
        entry.update({"title": spec.title if spec else name, "unit": spec.unit if spec else ""})
        if name in d.computed:  # recording these inputs would give it a value as well
            entry["computed_from"] = list(d.computed[name].inputs)
        stale = expired(pathway, st, name)
        if stale is not None:
            entry.update(recheck=True, **stale)
            entry["text"] = f"{recheck_text(entry['title'], entry['unit'], stale)}: {entry['text']}"
    state_def = d.spec.states[st.state]
    result = {
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
        "proposals": proposals,
        "data_required": list(required.values()),
        "alerts": alerts,
        "derived": dict(sorted(st.derived.items())),  # derived during the last event
        # computed inputs at the last event: the value used, recorded or derived, and from which inputs
        "computed": _computed(pathway, st),
        "frozen": {name: _frozen_entry(kept) for name, kept in sorted(st.frozen.items())},
        "unverified_rules": sorted({item["rule"] for item in st.current if not item.get("synthetic")
                                    and pathway.rule(item["rule"]).evidence.status == "unverified"}
                                   | {r for weak in basis.values() for r in weak}),
    }
    if trace:
        result["trace"] = copy_trace(st.trace)
    return result


def recheck_text(title: str, unit: str, stale: dict[str, Any]) -> str:
    """``recheck serum magnesium (last 0.8 mmol/L on day 0, 74 h ago)``."""
    value = fill_text("{v}", {"v": stale["last_value"]})
    when = day_text(stale["recorded_day"], stale.get("recorded_time"))
    name = title[:1].lower() + title[1:] if title[1:2].islower() or len(title) == 1 else title
    age = hours_text(round(stale["age_hours"], 1))
    return f"recheck {name} (last {value}{' ' + unit if unit else ''} on {when}, {age} ago)"


def _frozen_entry(kept: Any) -> dict[str, Any]:
    """A kept decision fact as the result shows it (a copy the caller may change)."""
    out = {key: kept_get(kept, key) for key in ("value", "day", "decision_point", "rule", "facts", "recorded")}
    if kept_get(kept, "missed"):  # no evaluation inside the window: what its rules keep when nothing is recorded
        out["missed"] = True
    return out
