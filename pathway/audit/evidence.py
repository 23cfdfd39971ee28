"""``pathway evidence PATHWAY [--format text|json|markdown] [--as-of DATE]``: every rule with its evidence.

Lists each rule (id, title, its criteria in words under the profile, states, sources, strength,
verified/unverified, note, and its clinical sign-off: signed off, review overdue or not reviewed, as
of a date the caller gives or today), the
verified/unverified split, every computed input with its condition and evidence, every parameter
with its sources, and the full source list (non-authoritative sources marked).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pathway.core.text import inert, md_code, md_inline
from pathway.definition import prose
from pathway.definition.pathway import SIGNOFF_TEXT, PathwayDef, Rule
from pathway.runtime.api import Pathway

__all__ = ["evidence", "signoff", "signoff_text", "render_text", "render_markdown"]


def signoff(rule: Rule, as_of: date) -> dict[str, Any]:
    """A rule's sign-off as data: ``status`` (signed_off, review_overdue, not_reviewed) on ``as_of``,
    and who reviewed it, when, and when it is due (ISO dates or None)."""
    return {"status": rule.signoff(as_of), "reviewed_by": rule.reviewed_by or None,
            "reviewed_on": rule.reviewed_on.isoformat() if rule.reviewed_on else None,
            "review_due": rule.review_due.isoformat() if rule.review_due else None}


def signoff_text(data: dict[str, Any]) -> str:
    """``signed off by Dr A on 2026-11-30, review due 2027-11-30``, ``review overdue since ...`` or ``not reviewed``."""
    status = data["status"]
    if status == "not_reviewed":
        return SIGNOFF_TEXT[status]
    who = f"by {data['reviewed_by']} on {data['reviewed_on']}"
    if status == "review_overdue":
        return f"review overdue since {data['review_due']} (signed off {who})"
    return f"signed off {who}" + (f", review due {data['review_due']}" if data["review_due"] else "")


def _criteria(rule: Rule, d: PathwayDef) -> dict[str, Any]:
    """A rule's criteria in words under the loaded profile: ``when``, ``due`` (None: whenever the
    patient is in its states) and ``missing`` (what it does while a value is not recorded)."""
    words = prose.rule_text(rule, d)
    return {"when": words.when, "due": words.due, "missing": list(words.missing)}


def evidence(pathway: Pathway, as_of: date | None = None) -> dict[str, Any]:
    """The evidence listing as data (deterministic order: rule files, then rules as written).

    Sign-off statuses are as of ``as_of`` (default: today); the date is part of the listing.
    """
    d = pathway.definition
    day = as_of or date.today()
    rules: list[dict[str, Any]] = [{
        "id": r.id,
        "title": r.title,
        "states": list(r.states),
        "sources": list(r.evidence.sources),
        "strength": r.evidence.strength,
        "status": r.evidence.status,
        "note": r.evidence.note,
        "location": r.location,
        "signoff": signoff(r, day),
        **_criteria(r, d),
    } for r in d.rules]
    computed: list[dict[str, Any]] = [{
        "field": c.field,
        "when": prose.computed_text(c, d),
        "inputs": list(c.inputs),
        "sources": list(c.evidence.sources),
        "strength": c.evidence.strength,
        "status": c.evidence.status,
        "note": c.evidence.note,
        "location": c.location,
    } for c in d.computed.values()]
    cited = sorted({s for r in d.rules for s in r.evidence.sources} | {s for p in d.spec.parameters.values() for s in p.sources}
                   | {s for c in computed for s in c["sources"]})
    return {
        "pathway": d.id,
        "version": d.version,
        "profile": d.profile,
        "summary": {
            "rules": len(rules),
            "verified": sum(1 for r in rules if r["status"] == "verified"),
            "unverified": sum(1 for r in rules if r["status"] == "unverified"),
            "by_strength": {k: sum(1 for r in rules if r["strength"] == k) for k in sorted({r["strength"] for r in rules})},
            "signoff": {k: sum(1 for r in rules if r["signoff"]["status"] == k) for k in SIGNOFF_TEXT},
        },
        "as_of": day.isoformat(),
        "rules": rules,
        "computed": computed,
        "parameters": {name: {"value": d.params[name], "unit": p.unit, "sources": list(p.sources), "note": p.note}
                       for name, p in d.spec.parameters.items()},
        "sources": {sid: {"title": d.spec.sources[sid].title, "tag": d.spec.sources[sid].tag, "ref": d.spec.sources[sid].ref,
                          "authoritative": d.spec.sources[sid].authoritative}
                    for sid in cited if sid in d.spec.sources},
        "uncited_sources": sorted(set(d.spec.sources) - set(cited)),
    }


def render_text(data: dict[str, Any]) -> str:
    """The listing as plain text, one line per rule, input, parameter and source (every text one line)."""
    data = inert(data)
    s = data["summary"]
    lines = [f"{data['pathway']} {data['version']} (profile {data['profile']}): {s['rules']} rules, "
             f"{s['verified']} verified, {s['unverified']} unverified; strength "
             + ", ".join(f"{k} {v}" for k, v in s["by_strength"].items()),
             f"sign-off as of {data['as_of']}: " + ", ".join(f"{n} {SIGNOFF_TEXT[k]}" for k, n in s["signoff"].items()), ""]
    for status in ("verified", "unverified"):
        lines.append(f"{status.upper()} RULES")
        for r in data["rules"]:
            if r["status"] == status:
                note = f" - {r['note']}" if r["note"] else ""
                lines.append(f"  {r['id']} [{r['strength']}] {', '.join(r['sources'])}: {r['title']}{note} "
                             f"[{signoff_text(r['signoff'])}]")
                if r.get("when"):
                    lines.append(f"      when {r['when']}" + (f"; due {r['due']}" if r.get("due") else ""))
        lines.append("")
    if data.get("computed"):
        lines.append("COMPUTED INPUTS (a recorded value wins when recorded with or after the newest input used)")
        for c in data["computed"]:
            note = f" - {c['note']}" if c["note"] else ""
            lines.append(f"  {c['field']} [{c['strength']}, {c['status']}] {', '.join(c['sources'])}: "
                         f"true when {c['when']}{note}")
        lines.append("")
    lines.append("PARAMETERS")
    for name, p in data["parameters"].items():
        lines.append(f"  {name} = {p['value']} {p['unit']} [{', '.join(p['sources']) or 'NO SOURCE'}]")
    lines.append("")
    lines.append("SOURCES")
    for sid, src in data["sources"].items():
        weak = "" if src.get("authoritative", True) else " [not authoritative]"
        lines.append(f"  {sid} ({src['tag']}){weak}: {src['title']} - {src['ref']}")
    return "\n".join(lines)


def _md_list(items: list[Any]) -> str:
    return ", ".join(md_inline(i) for i in items)


def render_markdown(data: dict[str, Any]) -> str:
    """The listing as Markdown tables; every text from the rule files is escaped (:func:`md_inline`)."""
    s = data["summary"]
    out = [f"# Evidence: {md_inline(data['pathway'])} {md_inline(data['version'])} (profile {md_inline(data['profile'])})", "",
           f"{s['rules']} rules: **{s['verified']} verified**, **{s['unverified']} unverified**. Sign-off as of "
           f"{md_inline(data['as_of'])}: " + ", ".join(f"{n} {SIGNOFF_TEXT[k]}" for k, n in s["signoff"].items()) + ".", "",
           "| rule | title | criteria | states | sources | strength | status | sign-off |",
           "|---|---|---|---|---|---|---|---|"]
    for r in data["rules"]:
        criteria = f"when {r['when']}" + (f"; due {r['due']}" if r.get("due") else "") if r.get("when") else ""
        out.append(f"| {md_code(r['id'])} | {md_inline(r['title'])} | {md_inline(criteria)} | {_md_list(r['states'])} | "
                   f"{_md_list(r['sources'])} | "
                   f"{md_inline(r['strength'])} | {md_inline(r['status'])} | {md_inline(signoff_text(r['signoff']))} |")
    if data.get("computed"):
        out += ["", "## Computed inputs", "", "| field | true when | sources | strength | status |", "|---|---|---|---|---|"]
        for c in data["computed"]:
            out.append(f"| {md_code(c['field'])} | {md_inline(c['when'])} | {_md_list(c['sources'])} | "
                       f"{md_inline(c['strength'])} | {md_inline(c['status'])} |")
    out += ["", "## Sources", "", "| id | tag | reference |", "|---|---|---|"]
    for sid, src in data["sources"].items():
        weak = "" if src.get("authoritative", True) else " (not authoritative)"
        out.append(f"| {md_inline(sid)} | {md_inline(src['tag'])}{weak} | {md_inline(src['title'])} ({md_inline(src['ref'])}) |")
    return "\n".join(out) + "\n"
