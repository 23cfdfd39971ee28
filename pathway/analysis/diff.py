"""Compare two versions of a pathway: ``pathway diff OLD NEW [-o FILE.svg]``.

OLD and NEW are pathway folders or names, each optionally under a site profile
(``--old-profile`` / ``--new-profile``). The comparison covers states, transitions, rules,
computed inputs, consistency checks and parameters: added, removed and changed, with old -> new
for every changed property (a rule's or computed input's conditions in words with each side's
values, via :mod:`pathway.definition.prose`, so a parameter a profile changes shows in the rules
that use it; its effects and evidence; a parameter's effective value, unit and sources). The text
lists every change; the diagram draws both versions as one graph, coloured by change, with a legend.

Exit code: 0 when the versions are the same, 1 when they differ, 2 on bad input.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from pathway.analysis.evaluate import format_value
from pathway.core.errors import display_path
from pathway.core.text import md_code, md_inline
from pathway.definition import conditions as C
from pathway.definition import prose
from pathway.definition.effects import Alert, Derive, Dose, Offer, Recommend, Require, Score, Transition
from pathway.definition.pathway import ComputedInput, Consistency, PathwayDef, Rule
from pathway.loading.loader import load_definition

__all__ = ["Change", "PathwayDiff", "diff_definitions", "diff_pathways", "effect_text", "edges_of",
           "criteria_changes", "rule_criteria_changes", "DiffSection", "VersionDiff", "diff_markdown"]

SECTIONS = ("state", "transition", "rule", "computed input", "consistency check", "parameter")


@dataclass(frozen=True)
class Change:
    """One added, removed or changed state, transition, rule, computed input, consistency check or parameter."""

    section: str
    kind: str  # added | removed | changed
    key: str
    details: tuple[str, ...] = ()
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"section": self.section, "kind": self.kind, "key": self.key, "details": list(self.details),
                "where": self.where}


@dataclass
class PathwayDiff:
    """Every change from one pathway version to another, in a stable order."""

    old: dict[str, Any]
    new: dict[str, Any]
    changes: list[Change] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """True when nothing changed."""
        return not self.changes

    def of(self, section: str, kind: str | None = None) -> list[Change]:
        """The changes of one section (see :data:`SECTIONS`), optionally of one kind."""
        return [c for c in self.changes if c.section == section and (kind is None or c.kind == kind)]

    def counts(self) -> dict[str, int]:
        """Number of added, removed and changed items."""
        return {k: sum(1 for c in self.changes if c.kind == k) for k in ("added", "removed", "changed")}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``pathway diff --json``)."""
        return {"old": self.old, "new": self.new, "same": self.same, "counts": self.counts(),
                "changes": [c.to_dict() for c in self.changes]}

    def text(self) -> str:
        """Readable report: one line per change (``+`` added, ``-`` removed, ``~`` changed), details indented."""
        def name(v: dict[str, Any]) -> str:
            return f"{v['id']} {v['version']}" + (f" (profile {v['profile']})" if v.get("profile") else "") + f" [{v['root']}]"

        lines = [f"diff {name(self.old)} -> {name(self.new)}"]
        mark = {"added": "+", "removed": "-", "changed": "~"}
        for section in SECTIONS:
            items = self.of(section)
            counts = {k: sum(1 for c in items if c.kind == k) for k in ("added", "removed", "changed")}
            lines.append(f"{section}s: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed")
            for c in items:
                lines.append(f"  {mark[c.kind]} {section} {c.key}" + (f"  ({c.where})" if c.where else ""))
                lines.extend(f"      {d}" for d in c.details)
        n = self.counts()
        lines.append("same" if self.same else f"{n['added']} added, {n['removed']} removed, {n['changed']} changed")
        return "\n".join(lines)


# -- summaries ----------------------------------------------------------------------------

def _plain(value: Any, d: PathwayDef | None = None) -> Any:
    """JSON-ready form of an effect's field (conditions in words when the pathway is given)."""
    if isinstance(value, (C.Cmp, C.And, C.Or, C.Always, C.AtLeast)):
        return prose.condition_text(value, d) if d is not None else C.describe(value)
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k), d) for k in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), d) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v, d) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, d) for k, v in value.items()}
    return value


def effect_text(effect: Any, d: PathwayDef | None = None) -> str:
    """One effect in one line (used by the diff and the audit report); with the pathway ``d``, the
    conditions inside it (score items) read in words under its profile."""
    if isinstance(effect, Transition):
        return f"transition -> {effect.to}"
    if isinstance(effect, Recommend):
        med = f" [{effect.medication.name}]" if effect.medication else ""
        return f"recommend ({effect.kind}){med}: {effect.text}"
    if isinstance(effect, Dose):
        per = (f"{format_value(effect.mg_per_kg_per_day)} mg/kg/day" if effect.mg_per_kg_per_day is not None
               else f"{format_value(effect.mg_per_kg)} mg/kg")
        return f"dose {effect.name} {effect.route} {per}, {format_value(effect.times_per_day)}x/day"
    if isinstance(effect, Alert):
        return f"alert ({effect.level}): {effect.text}"
    if isinstance(effect, Require):
        return f"require {', '.join(effect.fields)}" + (f": {effect.text}" if effect.text else "")
    if isinstance(effect, Derive):
        return "derive " + ", ".join(f"{k} = {format_value(v)}" for k, v in effect.values.items())
    if isinstance(effect, Offer):
        return f"offer {effect.option} ({effect.status})" + (
            f": {effect.text}" if effect.text else "")
    if isinstance(effect, Score):
        parts = [f"{format_value(i.points)} if {_plain(i.when, d)}" for i in effect.items]
        parts += [f"{format_value(t.factor)} x {t.field}" for t in effect.terms]
        return f"score {effect.name} = " + " + ".join(parts) + (f" / {effect.divide_by}" if effect.divide_by else "")
    kind = type(effect).__name__.lower()
    return f"{kind} " + json.dumps(_plain(effect, d), sort_keys=True, ensure_ascii=False, default=str)


def _rule_view(rule: Rule, d: PathwayDef) -> dict[str, Any]:
    ev = rule.evidence
    words = prose.rule_text(rule, d)
    return {
        "title": rule.title,
        "in": ", ".join(rule.states),
        "priority": str(rule.priority),
        "due": words.due or "-",
        "requires": ", ".join(rule.requires) or "-",
        "when": words.when,
        "then": [effect_text(e, d) for e in rule.then],
        "otherwise": [effect_text(e, d) for e in rule.otherwise],
        "if_missing": [effect_text(e, d) for e in getattr(rule, "if_missing", ())],
        "evidence": f"sources {', '.join(ev.sources)}; strength {ev.strength}; {ev.status}" + (f"; {ev.note}" if ev.note else ""),
        "note": rule.note,
    }


def _computed_view(c: ComputedInput, d: PathwayDef) -> dict[str, Any]:
    ev = c.evidence
    evidence = f"sources {', '.join(ev.sources)}; strength {ev.strength}; {ev.status}" + (f"; {ev.note}" if ev.note else "")
    return {"when": prose.computed_text(c, d), "inputs": ", ".join(c.inputs),
            "recorded value": prose.computed_recorded_text(c), "evidence": evidence}


def _check_view(c: Consistency) -> dict[str, Any]:
    return {"must hold": c.must_hold(), "title": c.title}


def _compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in old:
        a, b = old[key], new[key]
        if a == b:
            continue
        if isinstance(a, list):
            out += [f"{key}: - {x}" for x in a if x not in b] + [f"{key}: + {x}" for x in b if x not in a]
            if not [x for x in a if x not in b] and not [x for x in b if x not in a]:
                out.append(f"{key}: order changed")
        else:
            out.append(f"{key}: {a or '-'} -> {b or '-'}")
    return out


def _param_view(d: PathwayDef, name: str) -> dict[str, Any]:
    p = d.spec.parameters[name]
    value = d.params.get(name, p.value)
    return {"value": f"{format_value(value)}" + (f" {p.unit}" if p.unit else ""), "title": p.title,
            "sources": ", ".join(p.sources) or "-", "choices": ", ".join(format_value(c) for c in p.choices) or "-",
            "note": p.note}


def edges_of(d: PathwayDef) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a, b): {"title": data.get("title", ""), "rules": list(data.get("rules", []))}
            for a, b, data in d.graph.edges(data=True)}


def _side(d: PathwayDef) -> dict[str, Any]:
    return {"id": d.id, "version": d.version, "profile": d.profile, "root": display_path(d.root)}


def diff_definitions(old: PathwayDef, new: PathwayDef) -> PathwayDiff:
    """Every difference between two loaded pathway definitions."""
    out = PathwayDiff(_side(old), _side(new))
    add = out.changes.append
    # states
    for sid, s in new.spec.states.items():
        if sid not in old.spec.states:
            add(Change("state", "added", sid, (f"{s.kind}: {s.title}",)))
        else:
            o = old.spec.states[sid]
            details = _compare({"kind": o.kind, "title": o.title, "description": o.description},
                               {"kind": s.kind, "title": s.title, "description": s.description})
            if details:
                add(Change("state", "changed", sid, tuple(details)))
    for sid, s in old.spec.states.items():
        if sid not in new.spec.states:
            add(Change("state", "removed", sid, (f"{s.kind}: {s.title}",)))
    # transitions
    old_e, new_e = edges_of(old), edges_of(new)
    for edge in new_e:
        key = f"{edge[0]} -> {edge[1]}"
        if edge not in old_e:
            add(Change("transition", "added", key, (f"rules: {', '.join(new_e[edge]['rules']) or '(none)'}",)))
        else:
            a, b = old_e[edge], new_e[edge]
            details = []
            if a["title"] != b["title"]:
                details.append(f"title: {a['title'] or '-'} -> {b['title'] or '-'}")
            gone = [r for r in a["rules"] if r not in b["rules"]]
            came = [r for r in b["rules"] if r not in a["rules"]]
            if gone or came:
                details.append("rules: " + ", ".join([f"+{r}" for r in came] + [f"-{r}" for r in gone]))
            if details:
                add(Change("transition", "changed", key, tuple(details)))
    for edge in old_e:
        if edge not in new_e:
            add(Change("transition", "removed", f"{edge[0]} -> {edge[1]}",
                       (f"rules: {', '.join(old_e[edge]['rules']) or '(none)'}",)))
    # rules
    old_r = {r.id: r for r in old.rules}
    new_r = {r.id: r for r in new.rules}
    for rid, r in new_r.items():
        if rid not in old_r:
            add(Change("rule", "added", rid, (f"in {', '.join(r.states)}: {r.title}",
                                              f"when: {prose.rule_text(r, new).when}"), r.location))
        else:
            details = _compare(_rule_view(old_r[rid], old), _rule_view(r, new))
            if details:
                add(Change("rule", "changed", rid, tuple(details), r.location))
    for rid, r in old_r.items():
        if rid not in new_r:
            add(Change("rule", "removed", rid, (f"in {', '.join(r.states)}: {r.title}",), r.location))
    # computed inputs and consistency checks
    for name, c in new.computed.items():
        if name not in old.computed:
            add(Change("computed input", "added", name, (f"when: {prose.computed_text(c, new)}",), c.location))
        else:
            details = _compare(_computed_view(old.computed[name], old), _computed_view(c, new))
            if details:
                add(Change("computed input", "changed", name, tuple(details), c.location))
    for name, c in old.computed.items():
        if name not in new.computed:
            add(Change("computed input", "removed", name, (f"when: {prose.computed_text(c, old)}",), c.location))
    old_k, new_k = {c.id: c for c in old.consistency}, {c.id: c for c in new.consistency}
    for cid, k in new_k.items():
        if cid not in old_k:
            add(Change("consistency check", "added", cid, (f"must hold: {_check_view(k)['must hold']}",), f"{k.file}:{k.line}"))
        else:
            details = _compare(_check_view(old_k[cid]), _check_view(k))
            if details:
                add(Change("consistency check", "changed", cid, tuple(details), f"{k.file}:{k.line}"))
    for cid, k in old_k.items():
        if cid not in new_k:
            add(Change("consistency check", "removed", cid, (f"must hold: {_check_view(k)['must hold']}",)))
    # parameters (effective values, under each side's profile)
    users: dict[str, list[str]] = {}
    for r in new.rules + old.rules:
        for p in r.params:
            if r.id not in users.setdefault(p, []):
                users[p].append(r.id)
    for c in [*new.computed.values(), *old.computed.values()]:
        for p in c.params:
            if f"{c.field} (computed)" not in users.setdefault(p, []):
                users[p].append(f"{c.field} (computed)")
    for name in new.spec.parameters:
        used = f"used by {', '.join(sorted(users[name]))}" if users.get(name) else "used by no rule"
        if name not in old.spec.parameters:
            add(Change("parameter", "added", name, (f"value: {_param_view(new, name)['value']}", used)))
        else:
            details = _compare(_param_view(old, name), _param_view(new, name))
            if details:
                add(Change("parameter", "changed", name, tuple(details) + (used,)))
    for name in old.spec.parameters:
        if name not in new.spec.parameters:
            add(Change("parameter", "removed", name, (f"value: {_param_view(old, name)['value']}",)))
    return out


def diff_pathways(old: str | Path, new: str | Path, *, old_profile: str | None = None,
                  new_profile: str | None = None) -> tuple[PathwayDiff, PathwayDef, PathwayDef]:
    """Load two pathway versions (folders or names, each under an optional profile) and compare them."""
    a = load_definition(old, profile=old_profile)
    b = load_definition(new, profile=new_profile)
    return diff_definitions(a, b), a, b


# -- criteria of transitions ----------------------------------------------------------------
# What moves a patient along a transition: the conditions of the rules that take it. The diff
# diagram colours a transition whose criteria changed apart from one whose only change is a title
# or the texts and evidence of its rules.

def _shape(cond: C.Cond) -> Any:
    """A condition as a comparable value: parameters resolved, positions in the file dropped."""
    if isinstance(cond, C.Cmp):
        value = tuple(cond.value) if isinstance(cond.value, list) else cond.value
        return ("cmp", cond.field, cond.op, value, cond.derived)
    if isinstance(cond, C.AtLeast):
        return ("at least", cond.n, tuple(_shape(c) for c in cond.items))
    if isinstance(cond, (C.And, C.Or)):
        return (type(cond).__name__, tuple(_shape(c) for c in cond.items))
    return ("always",)


def _condition_params(cond: C.Cond) -> set[str]:
    """The parameters a condition compares with (``$name`` as a threshold or a count)."""
    if isinstance(cond, C.Cmp):
        return {cond.param} if cond.param else set()
    if isinstance(cond, (C.And, C.Or, C.AtLeast)):
        out = {cond.param} if isinstance(cond, C.AtLeast) and cond.param else set()
        for item in cond.items:
            out |= _condition_params(item)
        return out
    return set()


def rule_criteria_changes(old: Rule, new: Rule, old_def: PathwayDef, new_def: PathwayDef) -> list[str]:
    """What changed in when a rule fires (its condition, ``due``, priority, required data, or the
    value of a parameter it compares with), one short phrase each; empty when only texts, effects
    or evidence changed."""
    out: list[str] = []
    for part, a, b in (("condition", old.when, new.when), ("due", old.due, new.due)):
        if _shape(a) == _shape(b):
            continue
        params = sorted(p for p in _condition_params(a) | _condition_params(b)
                        if old_def.params.get(p) != new_def.params.get(p))
        if params and C.describe(a) == C.describe(b):  # the same words: only parameter values moved
            out += [f"{part}: parameter {p} {format_value(old_def.params.get(p))} -> {format_value(new_def.params.get(p))}"
                    for p in params]
        else:
            out.append(f"{part} changed")
    if old.priority != new.priority:
        out.append(f"priority {old.priority} -> {new.priority}")
    if set(old.requires) != set(new.requires):
        out.append("data required changed")
    return out


def criteria_changes(old: PathwayDef, new: PathwayDef) -> dict[tuple[str, str], list[str]]:
    """For each transition of both versions whose criteria changed: the reasons, each naming the rule
    (a rule moving along it added or removed, or its condition, ``due``, priority, required data or a
    parameter its conditions compare with changed). Transitions added or removed are not included."""
    old_e, new_e = edges_of(old), edges_of(new)
    old_r, new_r = {r.id: r for r in old.rules}, {r.id: r for r in new.rules}
    out: dict[tuple[str, str], list[str]] = {}
    for edge, b in new_e.items():
        a = old_e.get(edge)
        if a is None:
            continue
        reasons: list[str] = []
        for rid in sorted(set(a["rules"]) | set(b["rules"])):
            if rid not in a["rules"]:
                reasons.append(f"{rid}: added")
            elif rid not in b["rules"]:
                reasons.append(f"{rid}: removed")
            elif rid in old_r and rid in new_r:
                reasons += [f"{rid}: {why}" for why in rule_criteria_changes(old_r[rid], new_r[rid], old, new)]
        if reasons:
            out[edge] = reasons
    return out


# -- the whole comparison: the definitions and further sections ------------------------------
# ``pathway diff`` compares the definitions (PathwayDiff above) and, on request, what the change
# does to patients (pathway.audit.patients). A further part, such as the decision-table rows that
# changed, is one more DiffSection: VersionDiff prints, counts and serialises every section the
# same way, so a new one needs no change here or in the command's output code.

@runtime_checkable
class DiffSection(Protocol):
    """One further part of a version comparison, beside the definitions."""

    #: its key in the JSON document (``patients``)
    key: str

    @property
    def changed(self) -> bool:
        """True when the section found a difference (the command then exits 1)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stable keys)."""
        ...

    def text(self) -> str:
        """Plain text, one item per line."""
        ...

    def markdown(self) -> str:
        """Markdown, starting with a ``##`` heading."""
        ...


@dataclass
class VersionDiff:
    """The definitions' diff and any further sections (patients, ...) as one document."""

    definitions: PathwayDiff
    sections: list[DiffSection] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the definitions differ or a section found a difference."""
        return not self.definitions.same or any(s.changed for s in self.sections)

    def to_dict(self) -> dict[str, Any]:
        """The definitions' JSON (as ``pathway diff --json`` always printed it) with one key per section."""
        out = self.definitions.to_dict()
        for s in self.sections:
            out[s.key] = s.to_dict()
        return out

    def text(self) -> str:
        return "\n\n".join([self.definitions.text(), *(s.text() for s in self.sections)])

    def markdown(self) -> str:
        return "\n".join([diff_markdown(self.definitions), *(s.markdown() for s in self.sections)])


def _md_side(v: dict[str, Any]) -> str:
    profile = f" (profile {md_inline(v['profile'])})" if v.get("profile") else ""
    return f"{md_inline(v['id'])} {md_inline(v['version'])}{profile}, {md_inline(v['root'])}"


def diff_markdown(diff: PathwayDiff) -> str:
    """The definitions' changes as Markdown: a summary table and, per section, each change with its details."""
    mark = {"added": "added", "removed": "removed", "changed": "changed"}
    lines = [f"# Changes from {_md_side(diff.old)} to {_md_side(diff.new)}", "",
             "## Changes to the rules", "", "| | added | removed | changed |", "|---|---:|---:|---:|"]
    for section in SECTIONS:
        items = diff.of(section)
        counts = [sum(1 for c in items if c.kind == k) for k in ("added", "removed", "changed")]
        lines.append(f"| {section}s | " + " | ".join(str(n) for n in counts) + " |")
    lines.append("")
    if diff.same:
        lines += ["The two versions are the same.", ""]
    for section in SECTIONS:
        items = diff.of(section)
        if not items:
            continue
        lines += [f"### {section[:1].upper() + section[1:]}s", ""]
        for c in items:
            where = f" ({md_inline(c.where)})" if c.where else ""
            lines.append(f"- {mark[c.kind]}: {md_code(c.key)}{where}")
            lines.extend(f"  - {md_inline(d)}" for d in c.details)
        lines.append("")
    return "\n".join(lines)
