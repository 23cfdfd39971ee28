"""The diff diagram: two versions of a pathway drawn as one graph, changes coloured."""

from __future__ import annotations

from pathway.analysis.diff import PathwayDiff, criteria_changes, edges_of
from pathway.definition.pathway import PathwayDef
from pathway.render.diagram import STYLE, Diagram, DiagramEdge, DiagramNode, dot_text, wrap

__all__ = ["build_diff_diagram", "CRITERIA_EDGE"]

#: A transition in both versions whose criteria changed (a rule moving along it added or removed, or
#: its condition, due, priority or a parameter its conditions read changed): violet, apart from the
#: other changes (orange), added (green) and removed (red, dashed) transitions.
CRITERIA_EDGE = {"color": "#7c3aed", "fontcolor": "#5b21b6", "penwidth": "3", "style": "bold"}


def build_diff_diagram(diff: PathwayDiff, old: PathwayDef, new: PathwayDef) -> Diagram:
    """Both versions as one graph: added (green), removed (red, dashed), changed (orange), unchanged
    (grey); a transition whose criteria changed violet."""
    title = f"Changes: {dot_text(old.spec.title)} {dot_text(old.version)} -> {dot_text(new.version)}"
    if old.profile != new.profile:
        title += f" (profile {dot_text(old.profile or '-')} -> {dot_text(new.profile or '-')})"
    d = Diagram(new.id, title)
    states = {c.key: c.kind for c in diff.of("state")}
    rules = {c.key: c.kind for c in diff.of("rule")}
    params = {c.key for c in diff.of("parameter")}
    for r in new.rules:  # a rule whose parameter changed behaves differently: drawn as changed
        if r.id not in rules and params & set(r.params):
            rules[r.id] = "changed"
    rule_states: dict[str, set[str]] = {}
    for r in old.rules + new.rules:
        if r.id in rules:
            for s in r.states:
                rule_states.setdefault(s, set()).add(r.id)
    order = list(new.spec.states) + [s for s in old.spec.states if s not in new.spec.states]
    for sid in order:
        spec = new.spec.states.get(sid) or old.spec.states[sid]
        kind = states.get(sid) or ("changed" if rule_states.get(sid) else "unchanged")
        label = f"{wrap(spec.title)}\\n[{dot_text(sid)}]"
        marks = sorted(rule_states.get(sid, set()))
        if marks and kind != "added" and kind != "removed":
            label += f"\\nrules changed: {len(marks)}"
        d.nodes.append(DiagramNode(sid, label, {**STYLE[spec.kind], **STYLE[kind]}))
    old_e, new_e = edges_of(old), edges_of(new)
    criteria = criteria_changes(old, new)
    edges = list(new_e) + [e for e in old_e if e not in new_e]
    for edge in edges:
        a, b = old_e.get(edge), new_e.get(edge)
        names = sorted(set((a or {}).get("rules", [])) | set((b or {}).get("rules", [])))
        parts = []
        for r in names:
            if b is None or r not in b["rules"]:
                parts.append(f"-{dot_text(r)}")
            elif a is None or r not in a["rules"]:
                parts.append(f"+{dot_text(r)}")
            elif rules.get(r) == "changed":
                parts.append(f"~{dot_text(r)}")
            else:
                parts.append(dot_text(r))
        if a is None:
            kind = "added"
        elif b is None:
            kind = "removed"
        elif edge in criteria:
            kind = "criteria"
        elif a != b or any(p[0] in "+-~" for p in parts):
            kind = "changed"
        else:
            kind = "unchanged"
        style = CRITERIA_EDGE if kind == "criteria" else STYLE[f"{kind}_edge"]
        d.edges.append(DiagramEdge(edge[0], edge[1], "\\n".join(parts) or "(no rule)", dict(style)))
    d.legend = [("added", "node", {**STYLE["active"], **STYLE["added"]}),
                ("removed", "node", {**STYLE["active"], **STYLE["removed"]}),
                ("changed (or its rules, or their parameters)", "node", {**STYLE["active"], **STYLE["changed"]}),
                ("unchanged", "node", {**STYLE["active"], **STYLE["unchanged"]}),
                ("added transition", "edge", dict(STYLE["added_edge"])),
                ("removed transition", "edge", dict(STYLE["removed_edge"])),
                ("criteria changed: a rule taking it added or removed, or its condition, due, priority or a "
                 "parameter it reads", "edge", dict(CRITERIA_EDGE)),
                ("other change: title, or texts or evidence of its rules", "edge", dict(STYLE["changed_edge"])),
                ("unchanged transition", "edge", dict(STYLE["unchanged_edge"]))]
    return d
