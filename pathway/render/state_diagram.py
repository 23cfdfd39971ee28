"""One state of the pathway, up close: the decision-point diagram (``pathway diagram PATHWAY --state S``).

The state in the middle, the states that lead to it above and the states it leads to below (each
move labelled with the titles of its rules, as on the pathway diagram), and two tables under them:

- **Options** (when the state's rules offer any): each option in rank order with its text, then
  every rule that sets its status: the status, when (the rule's condition in words, or its
  negation for an ``otherwise`` branch) and the rule with its evidence badge. Pending (a rule that
  decides the option waits for data) is listed for each such rule.
- **Rules in this state**: every rule that applies here, once, in priority order within groups
  (moves and proposals, options, recommendations and doses, alerts, data, derived facts): badge,
  title and id, when it fires, and its outcome by kind.

Every text is escaped as in :mod:`pathway.render.diagram` (rich labels through
:func:`pathway.render.labels.table_html`).
"""

from __future__ import annotations

from typing import Any

from pathway.core.errors import PathwayError, suggest
from pathway.core.text import one_line
from pathway.definition.effects import (
    Alert,
    Derive,
    Dose,
    Offer,
    Propose,
    Recommend,
    Require,
    Score,
    Titrate,
    Transition,
)
from pathway.definition.pathway import Branch, PathwayDef, Rule
from pathway.definition.waiting import asks_for_data
from pathway.render.diagram import (
    STYLE,
    Diagram,
    DiagramEdge,
    DiagramNode,
    dot_text,
    offered_options,
    pathway_legend,
    rules_label,
    rules_plain,
    rules_tooltip,
    shared_rules,
    state_table,
)
from pathway.render.labels import (
    BRANCH_WORDS,
    Cell,
    Run,
    Table,
    badge_cell,
    criterion_words,
    effect_groups,
    effect_text,
    effect_words,
    wrap_lines,
)

__all__ = ["build_state_diagram", "state_rules", "option_rows", "options_table", "rules_table", "STATUS_COLOURS",
           "UnknownState"]

#: Colour of each option status (as the result lists them).
STATUS_COLOURS = {"available": "#166534", "caution": "#a16207", "pending": "#475569", "unavailable": "#b91c1c"}
_MUTED = "#64748b"
#: Characters per line of a condition in a table.
WHEN_WIDTH = 58
#: Order of the groups of rules in the rules table, by the first kind of effect a rule has.
_GROUPS = ("moves", "proposes", "option", "recommends", "alert", "asks for", "derives")


class UnknownState(PathwayError):
    """The state asked for is not a state of the pathway."""


def _group(rule: Rule) -> int:
    kinds = set()
    for _branch, effects in effect_groups(rule):
        for eff in effects:
            if isinstance(eff, Transition):
                kinds.add("moves")
            elif isinstance(eff, Propose):
                kinds.add("proposes")
            elif isinstance(eff, Offer):
                kinds.add("option")
            elif isinstance(eff, (Recommend, Dose, Titrate)):
                kinds.add("recommends")
            elif isinstance(eff, Alert):
                kinds.add("alert")
            elif isinstance(eff, Require):
                kinds.add("asks for")
            elif isinstance(eff, (Derive, Score)):
                kinds.add("derives")
    return min((_GROUPS.index(k) for k in kinds), default=len(_GROUPS))


def state_rules(d: PathwayDef, state: str) -> list[Rule]:
    """The rules of a state in the order the diagram lists them: by group (moves, proposals,
    options, recommendations, alerts, data, derived facts), then by priority (highest first), then id."""
    return sorted(d.rules_in(state), key=lambda r: (_group(r), -r.priority, r.id))


def _outcome_lines(rule: Rule, d: PathwayDef) -> list[tuple[str, str]]:
    """(kind, words) of every effect of the rule, with the branch when it is not ``then``."""
    out = []
    for branch, effects in effect_groups(rule):
        prefix = "" if branch == "then" else f"{BRANCH_WORDS[branch]}: "
        for eff in effects:
            kind, words = effect_words(eff, d)
            out.append((prefix + kind, effect_text(words, d)))
    return out


def _when_cell(rule: Rule, d: PathwayDef, branches: list[Branch]) -> Cell:
    lines: list[tuple[Run, ...]] = []
    for branch in branches:
        for text in criterion_words(rule, d, branch):
            lines += [(Run(line),) for line in wrap_lines(text, WHEN_WIDTH)]
    return Cell(tuple(lines))


def _title_cell(rule: Rule, width: int = 34) -> Cell:
    lines = tuple((Run(line, bold=True),) for line in wrap_lines(rule.title, width))
    return Cell(lines + ((Run(rule.id, small=True, colour=_MUTED),),
                         (Run(f"priority {rule.priority}", small=True, colour=_MUTED),)))


def _header(*titles: str) -> list[Cell]:
    return [Cell(((Run(t, bold=True, colour="#ffffff"),),), bg="#334155") for t in titles]


def rules_table(d: PathwayDef, state: str) -> Table:
    """Every rule of the state, once: badge, title and id, when it fires, its outcome by kind."""
    rows = [_header("", "rule", "when it fires", "outcome")]
    for rule in state_rules(d, state):
        branches: list[Branch] = [b for b, _ in effect_groups(rule)] or ["then"]
        outcome = tuple((Run(f"{kind}: ", bold=True, colour=_MUTED), Run(line if i == 0 else line))
                        if i == 0 else (Run("    " + line),)
                        for kind, words in _outcome_lines(rule, d)
                        for i, line in enumerate(wrap_lines(words, 52)))
        rows.append([badge_cell(rule.evidence), _title_cell(rule), _when_cell(rule, d, branches),
                     Cell(outcome or ((Run("(no effect)", colour=_MUTED),),))])
    return Table(rows, cellborder=True, bg="#ffffff", border_colour="#94a3b8")


def option_rows(d: PathwayDef, state: str) -> dict[str, list[tuple[str, Branch, Rule, Offer]]]:
    """Per option offered in the state (rank order): (status, branch, rule, offer) for every rule
    branch that sets it, and ``pending`` for each rule that decides it and waits for data."""
    rules = state_rules(d, state)
    out: dict[str, list[tuple[str, Branch, Rule, Offer]]] = {o: [] for o in offered_options(rules)}
    order = {"available": 0, "caution": 1, "pending": 2, "unavailable": 3}
    for rule in rules:
        for branch, effects in effect_groups(rule):
            for eff in effects:
                if isinstance(eff, Offer):
                    out[eff.option].append((eff.status, branch, rule, eff))
        if asks_for_data(rule):  # while it waits for data, the options it decides are pending
            for eff in rule.then + rule.otherwise:
                if isinstance(eff, Offer) and not any(r is rule and s == "pending" for s, _, r, _ in out[eff.option]):
                    out[eff.option].append(("pending", "missing", rule, eff))
    for option in out:
        out[option].sort(key=lambda row: (order[row[0]], row[2].id))
    return out


def options_table(d: PathwayDef, state: str) -> Table | None:
    """The options the state offers, each with every rule that sets its status (None: no option)."""
    options = option_rows(d, state)
    if not options:
        return None
    rows = [_header("status", "when", "rule", "")]
    for option, entries in options.items():
        text = next((e.text for _, _, _, e in entries if e.text), "")
        rank = min((float(e.rank) for _, _, _, e in entries if not isinstance(e.rank, str)), default=100.0)
        head = [Run(option, bold=True, size="11"), Run(f"   rank {rank:g}", small=True, colour=_MUTED)]
        lines: tuple[tuple[Run, ...], ...] = (tuple(head),)
        if text:
            lines += tuple((Run(line, small=True),) for line in wrap_lines(effect_text(text, d), 90))
        rows.append([Cell(lines, bg="#ede9fe", colspan=4)])
        for status, branch, rule, eff in entries:
            status_cell = Cell(((Run(status, bold=True, colour=STATUS_COLOURS.get(status, "#000000")),),))
            needs = ", ".join(rule.requires + rule.computes_with("then")) or "a value it tests"
            when = [f"while not recorded: {needs}"] if status == "pending" else criterion_words(rule, d, branch)
            when_lines = [(Run(line),) for text in when for line in wrap_lines(text, WHEN_WIDTH)]
            for reason in eff.against if status != "pending" else []:
                when_lines += [(Run(line, small=True, colour=_MUTED),)
                               for line in wrap_lines("against: " + effect_text(reason, d), 70)]
            rule_cell = Cell(tuple((Run(line),) for line in wrap_lines(rule.title, 34))
                             + ((Run(rule.id, small=True, colour=_MUTED),),))
            rows.append([status_cell, Cell(tuple(when_lines)), rule_cell, badge_cell(rule.evidence)])
    rows.append([Cell(tuple((Run(line, small=True, colour=_MUTED),) for line in wrap_lines(
        "An option's status is the strongest its firing rules give (unavailable, then pending, then caution, then "
        "available); pending while a rule that decides it waits for data. The team records the choice.", 110)),
        colspan=4)])
    return Table(rows, cellborder=True, bg="#ffffff", border_colour="#94a3b8")


def build_state_diagram(d: PathwayDef, state: str) -> Diagram:
    """The decision-point diagram of ``state`` (see the module docstring)."""
    if state not in d.graph:
        hint = suggest(state, list(d.graph.nodes))
        raise UnknownState(f"unknown state '{one_line(state)}' of pathway '{d.id}'"
                           + (f" (did you mean '{hint}'?)" if hint else ""))
    graph = d.graph
    data = graph.nodes[state]
    rules = {r.id: r for r in d.rules}
    shared = shared_rules(d)
    here = d.rules_in(state)
    options = offered_options(here)
    title = f"{graph.graph.get('title', d.id)} (version {d.version}" + (f", profile {d.profile}" if d.profile else "") \
        + f"): {data['title']} [{state}]"
    out = Diagram(d.id, dot_text(title))
    out.graph_attrs.update({"rankdir": "TB", "nodesep": "0.3", "ranksep": "0.35"})
    out.node_attrs.update({"fontsize": "12", "margin": "0.12,0.06"})
    kind = "decision" if options and data["kind"] == "active" else data["kind"]
    spec = d.spec.states[state]
    focus = state_table(state, data["title"], options, size="15")
    if spec.description:
        focus.rows.append([Cell(tuple((Run(line, small=True),) for line in wrap_lines(spec.description, 60)), align="center")])
    if spec.overdue is not None:
        focus.rows.append([Cell(tuple((Run(line, small=True, colour=STYLE["emergency_edge"]["color"]),)
                                      for line in wrap_lines("overdue: " + effect_text(spec.overdue.text, d), 60)),
                                align="center")])
    out.nodes.append(DiagramNode(state, f"{data['title']} [{state}]", {**STYLE[kind], "penwidth": "2.5"}, table=focus,
                                 tooltip=f"{one_line(data['title'])} [{state}]: {len(here)} rule(s)"))
    used: dict[str, set[str]] = {}
    neighbours: list[str] = []
    everywhere: list[Rule] = []

    def add_edges(source: str, target: str, edge: dict[str, Any]) -> None:
        groups = [("move", [rules[r] for r in edge.get("rules", []) if r in rules and r not in shared]),
                  ("proposal", [rules[r] for r in edge.get("proposals", []) if r in rules])]
        shared_here = [rules[r] for r in edge.get("rules", []) if r in shared]
        if target == state and shared_here:  # into this state from everywhere: drawn once, below
            everywhere.extend(r for r in shared_here if r not in everywhere)
        elif shared_here:
            groups.append(("emergency", shared_here))
        for kind_, members in groups:
            if not members:
                continue
            for r in members:
                used.setdefault(r.evidence.strength, set()).add(r.evidence.status)
            style = {"move": "move_edge", "proposal": "proposal_edge", "emergency": "emergency_edge"}[kind_]
            out.edges.append(DiagramEdge(source, target, dot_text(rules_plain(kind_, members)), dict(STYLE[style]),
                                         table=rules_label(kind_, members),
                                         tooltip=rules_tooltip(members, d, target, "shared" if kind_ == "emergency" else kind_)))
        if not any(m for _, m in groups) and not shared_here:
            out.edges.append(DiagramEdge(source, target, "(no rule)", dict(STYLE["move_edge"]),
                                         tooltip="no rule takes this transition"))

    for source, _, edge in graph.in_edges(state, data=True):
        add_edges(source, state, edge)
    for _, target, edge in graph.out_edges(state, data=True):
        add_edges(state, target, edge)
    for e in out.edges:  # the states a drawn move comes from or goes to
        for node in (e.source, e.target):
            if node != state and node not in neighbours:
                neighbours.append(node)
    for node in neighbours:
        ndata = graph.nodes[node]
        nkind = "decision" if offered_options(d.rules_in(node)) and ndata["kind"] == "active" else ndata["kind"]
        out.nodes.append(DiagramNode(node, f"{ndata['title']} [{node}]", dict(STYLE[nkind]),
                                     table=state_table(node, ndata["title"])))
    if everywhere:
        out.nodes.append(DiagramNode("any_active", "Any active state", dict(STYLE["any_active"])))
        for r in everywhere:
            used.setdefault(r.evidence.strength, set()).add(r.evidence.status)
        out.edges.append(DiagramEdge("any_active", state, dot_text(rules_plain("shared", everywhere)),
                                     dict(STYLE["emergency_edge"]), table=rules_label("shared", everywhere),
                                     tooltip=rules_tooltip(everywhere, d, state, "shared")))
    below = [("options", options_table(d, state)), ("rules", rules_table(d, state) if here else None)]
    above = state  # the tables one under the other, under the moves out
    for name, table in below:
        if table is None:
            continue
        for rule in d.rules_in(state):
            used.setdefault(rule.evidence.strength, set()).add(rule.evidence.status)
        node_id = f"table_{name}"
        while node_id in graph:
            node_id += "_"
        heading = "Options at this decision" if name == "options" else f"Rules in this state ({len(here)})"
        table.rows.insert(0, [Cell(((Run(heading, bold=True, size="13"),),), colspan=len(table.rows[0]))])
        out.nodes.append(DiagramNode(node_id, heading, {"shape": "plaintext", "margin": "0"}, table=table))
        out.edges.append(DiagramEdge(above, node_id, "", {"style": "invis", "weight": "20",
                                                          "minlen": "2" if above == state else "1"}))
        above = node_id
    out.legend = pathway_legend(used, bool(everywhere) or any(e.attrs.get("style") == "dashed" for e in out.edges))
    out.legend_place = "strip"
    return out
