"""``pathway evidence PATHWAY [--format text|json|markdown]``: every rule with its evidence.

Lists each rule (id, title, states, sources, strength, verified/unverified, note), the
verified/unverified split, every computed input with its condition and evidence, every parameter
with its sources, and the full source list.
"""

from __future__ import annotations

from typing import Any

from pathway.definition import conditions as C
from pathway.runtime.api import Pathway

__all__ = ["evidence", "render_text", "render_markdown"]


def evidence(pathway: Pathway) -> dict[str, Any]:
    """The evidence listing as data (deterministic order: rule files, then rules as written)."""
    d = pathway.definition
    rules: list[dict[str, Any]] = [{
        "id": r.id,
        "title": r.title,
        "states": list(r.states),
        "sources": list(r.evidence.sources),
        "strength": r.evidence.strength,
        "status": r.evidence.status,
        "note": r.evidence.note,
        "location": r.location,
    } for r in d.rules]
    computed: list[dict[str, Any]] = [{
        "field": c.field,
        "when": C.describe(c.when),
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
        },
        "rules": rules,
        "computed": computed,
        "parameters": {name: {"value": d.params[name], "unit": p.unit, "sources": list(p.sources), "note": p.note}
                       for name, p in d.spec.parameters.items()},
        "sources": {sid: {"title": d.spec.sources[sid].title, "tag": d.spec.sources[sid].tag, "ref": d.spec.sources[sid].ref}
                    for sid in cited if sid in d.spec.sources},
        "uncited_sources": sorted(set(d.spec.sources) - set(cited)),
    }


def render_text(data: dict[str, Any]) -> str:
    s = data["summary"]
    lines = [f"{data['pathway']} {data['version']} (profile {data['profile']}): {s['rules']} rules, "
             f"{s['verified']} verified, {s['unverified']} unverified; strength "
             + ", ".join(f"{k} {v}" for k, v in s["by_strength"].items()), ""]
    for status in ("verified", "unverified"):
        lines.append(f"{status.upper()} RULES")
        for r in data["rules"]:
            if r["status"] == status:
                note = f" - {r['note']}" if r["note"] else ""
                lines.append(f"  {r['id']} [{r['strength']}] {', '.join(r['sources'])}: {r['title']}{note}")
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
        lines.append(f"  {sid} ({src['tag']}): {src['title']} - {src['ref']}")
    return "\n".join(lines)


def render_markdown(data: dict[str, Any]) -> str:
    s = data["summary"]
    out = [f"# Evidence: {data['pathway']} {data['version']} (profile {data['profile']})", "",
           f"{s['rules']} rules: **{s['verified']} verified**, **{s['unverified']} unverified**.", "",
           "| rule | title | states | sources | strength | status |", "|---|---|---|---|---|---|"]
    for r in data["rules"]:
        out.append(f"| `{r['id']}` | {r['title']} | {', '.join(r['states'])} | {', '.join(r['sources'])} | "
                   f"{r['strength']} | {r['status']} |")
    if data.get("computed"):
        out += ["", "## Computed inputs", "", "| field | true when | sources | strength | status |", "|---|---|---|---|---|"]
        for c in data["computed"]:
            out.append(f"| `{c['field']}` | {c['when']} | {', '.join(c['sources'])} | {c['strength']} | {c['status']} |")
    out += ["", "## Sources", "", "| id | tag | reference |", "|---|---|---|"]
    for sid, src in data["sources"].items():
        out.append(f"| {sid} | {src['tag']} | {src['title']} ({src['ref']}) |")
    return "\n".join(out) + "\n"
