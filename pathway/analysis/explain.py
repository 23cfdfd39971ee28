"""Why a patient is where they are: ``pathway explain CASE [--rule ID]``.

For the final state of a case, and every rule that could move the patient out of it, the
explanation says *why* a rule fired (each clause with the value it saw) or *why not* (the first
clause that failed, with the value and the threshold), and which single data changes would change
the decision. For a terminal state it explains the move that brought the patient there.

Nothing is run through the engine again: the session keeps what every evaluation saw
(:attr:`pathway.session.Session.evaluations`: facts and derived facts) and the trace says what
fired; the clauses are re-read from the rules and evaluated with the same three-valued logic
(:mod:`pathway.evaluate`), and "what if" questions use the static evaluator of the state's rules.

API: :func:`explain` returns a JSON-ready dict; :func:`explain_text` renders it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pathway.analysis.check import StateSpace
from pathway.analysis.evaluate import (
    TIME_FIELDS,
    branch_conditions,
    branch_effects,
    evaluate_state,
    format_facts,
    format_value,
    step_of,
    truth,
)
from pathway.core.errors import Diagnostic, InputError
from pathway.core.text import inert
from pathway.definition import conditions as C
from pathway.definition import prose
from pathway.definition.clock import is_days_since
from pathway.definition.effects import Propose, Transition
from pathway.definition.pathway import PathwayDef, Rule

if TYPE_CHECKING:  # explanations read a session; they never run the engine themselves
    from pathway.runtime.api import Pathway
    from pathway.runtime.session import Session

__all__ = ["explain", "explain_text"]

_BRANCH_WORDS = {"then": "fired", "else": "fired its 'otherwise' branch", "missing": "is waiting for data"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


# -- clause trees ---------------------------------------------------------------------------

def _tree(cond: C.Cond, env: dict[str, Any], d: PathwayDef) -> dict[str, Any]:
    """A condition with the value each test saw and the three-valued result of every node; each
    test's ``text`` is the clause in words (:mod:`pathway.definition.prose`) and ``saw_text`` the
    value it saw in words."""
    result = truth(cond, env)
    if isinstance(cond, C.Always):
        return {"kind": "always", "result": True, "text": prose.WORDS["always"]}
    if isinstance(cond, C.Cmp):
        saw = env.get(cond.field)
        node: dict[str, Any] = {"kind": "test", "field": cond.field, "op": cond.op, "value": _jsonable(cond.value),
                                "param": cond.param, "derived": cond.derived, "saw": saw,
                                "result": result, "text": prose.condition_text(cond, d),
                                "saw_text": None if saw is None else prose.seen_text(cond.field, saw, d)}
        return node
    if isinstance(cond, C.AtLeast):
        return {"kind": "at_least", "n": cond.n, "param": cond.param, "result": result,
                "items": [_tree(c, env, d) for c in cond.items]}
    kind = "all" if isinstance(cond, C.And) else "any"
    return {"kind": kind, "result": result, "items": [_tree(c, env, d) for c in cond.items]}


def _first_failed(node: dict[str, Any]) -> dict[str, Any] | None:
    """The first test that kept a condition from holding (None when it holds)."""
    if node["result"] is True:
        return None
    if node["kind"] == "test":
        return node
    for item in node.get("items", []):
        if item["result"] is not True:
            return _first_failed(item)
    return None


def _test_text(node: dict[str, Any]) -> str:
    """``CRP > 45 mg/L: saw 30 mg/L`` (the clause in words, with the value it saw)."""
    text = node["text"]
    if node["op"] == "present":
        return f"{text}: {'recorded' if node['saw'] is not None else 'not recorded'}"
    if node["saw"] is None:
        return f"{text}: " + ("not derived" if node["derived"] else "not recorded")
    return f"{text}: saw {node.get('saw_text') or format_value(node['saw'])}"


# -- explanation --------------------------------------------------------------------------

class _Context:
    def __init__(self, pathway: Pathway, session: Session):
        self.pathway = pathway
        self.definition = pathway.definition
        self.compiled = pathway.compiled
        self.conds = branch_conditions(pathway.compiled)
        self.session = session
        self.result = session.result()
        self.evaluations = session.evaluations
        self.trace = self.result["trace"]
        self._spaces: dict[str, StateSpace] = {}

    def space(self, state: str) -> StateSpace:
        if state not in self._spaces:
            self._spaces[state] = StateSpace(self.compiled, state, conditions=self.conds)
        return self._spaces[state]

    def firings(self, ev: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {t["rule"]: t for t in self.trace if t["event"] == ev["event"] and t["state"] == ev["state"]}

    def moving_branches(self, rule: Rule) -> dict[str, str]:
        """Branch -> the state it moves the patient to, or proposes (the move then waits for a
        recorded decision)."""
        out = {}
        for branch in ("then", "else"):
            for effect in branch_effects(rule, branch):
                if isinstance(effect, (Transition, Propose)):
                    out[branch] = effect.to
        return out

    def proposing_branches(self, rule: Rule) -> set[str]:
        return {b for b in ("then", "else") if any(isinstance(e, Propose) for e in branch_effects(rule, b))}

    def describe_rule(self, rule: Rule, ev: dict[str, Any], *, counterfactuals: bool = True) -> dict[str, Any]:
        env = {**ev["facts"], **ev["derived"]}
        fired = self.firings(ev).get(rule.id)
        branch = fired["branch"] if fired else None
        due = _tree(rule.due, env, self.definition)
        requires: list[dict[str, Any]] = [{"field": f, "recorded": env.get(f) is not None, "value": env.get(f),
                                           "name": prose.field_name(f, self.definition)} for f in rule.requires]
        when = _tree(rule.when, env, self.definition)
        moves = self.moving_branches(rule)
        if branch in ("then", "else"):
            outcome = "fired" if branch == "then" else "fired_otherwise"
        elif branch == "missing":
            outcome = "waiting_for_data"
        elif due["result"] is not True:
            outcome = "not_due"
        elif when["result"] is None:
            outcome = "undecided"
        else:
            outcome = "condition_false" if when["result"] is False else "did_not_fire"
        failed = None
        if outcome != "fired":
            if due["result"] is not True:
                failed = {"part": "due", **(_first_failed(due) or {})}
            elif any(not r["recorded"] for r in requires):
                missing = [r["field"] for r in requires if not r["recorded"]]
                failed = {"part": "requires", "kind": "missing", "fields": missing,
                          "text": "not recorded: " + ", ".join(r["name"] for r in requires if not r["recorded"])}
            elif when["result"] is not True:
                failed = {"part": "when", **(_first_failed(when) or {})}
        out: dict[str, Any] = {
            "rule": rule.id, "title": rule.title, "location": rule.location, "priority": rule.priority,
            "moves": moves, "proposes": sorted(self.proposing_branches(rule)), "outcome": outcome, "branch": branch,
            "due": due, "requires": requires, "when": when,
            "failed": failed, "evidence": {"sources": list(rule.evidence.sources), "strength": rule.evidence.strength,
                                           "status": rule.evidence.status},
        }
        if fired and "to" in fired:
            out["took"] = {"from": fired["from"], "to": fired["to"]}
        if counterfactuals and moves and outcome not in ("fired", "fired_otherwise"):
            out["would_fire_if"] = self.rule_changes(rule, ev, moves)
        return out

    # -- what if ---------------------------------------------------------------------------
    def _variants(self, ev: dict[str, Any], names: list[str]) -> list[tuple[str, Any, dict[str, Any]]]:
        """(field, new value, facts) for every single-field change worth trying, nearest first."""
        facts = {k: v for k, v in ev["facts"].items() if k != "state"}
        space = self.space(ev["state"])
        out: list[tuple[str, Any, dict[str, Any]]] = []
        for name in names:
            was = facts.get(name)
            values = [v for v in space.values(name) if not _same(v, was)]
            if isinstance(was, (int, float)) and not isinstance(was, bool):
                values.sort(key=lambda v: (abs(float(v) - float(was)), float(v)) if isinstance(v, (int, float)) else (0, 0))
            for value in values:
                out.append((name, value, {**facts, name: value}))
        day = facts.get("day")
        if isinstance(day, (int, float)):
            shifts = sorted({float(p["day"]) - float(day) for p in space.times}
                            | {float(p["days_in_state"]) - float(facts.get("days_in_state") or 0) for p in space.times})
            for delta in (d for d in shifts if d > 0):
                moved = dict(facts)
                for key in list(moved):
                    if key in TIME_FIELDS or is_days_since(key):
                        if isinstance(moved[key], (int, float)):
                            moved[key] = _tidy(moved[key] + delta)
                out.append(("day", moved["day"], moved))
        return out

    def _relevant_inputs(self, state: str, rule_ids: set[str]) -> list[str]:
        """Fields whose change is tried: the inputs the rules read, except computed fields (history
        such as the widest film of days 0-3), which no single recorded value sets."""
        space = self.space(state)
        ids = space.ancestors(rule_ids)
        fields = self.definition.fields
        return sorted({n for rid in ids for n in space.inputs[rid]
                       if fields.get(n) is None or fields[n].aggregate is None})

    def _refine(self, ev: dict[str, Any], name: str, value: Any, facts: dict[str, Any],
                outcome: Any, probe: Any) -> tuple[Any, dict[str, Any]]:
        """For a number, the value closest to the one seen that still gives ``outcome`` (bisection)."""
        was = ev["facts"].get(name)
        if name == "day" or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (was, value)):
            return value, facts
        fdef = self.definition.fields.get(name)
        step = 1.0 if fdef is not None and fdef.type == "integer" else min(
            [0.1] + [_step(v) for v in self.space(ev["state"]).values(name) if isinstance(v, (int, float))])
        lo, hi = float(was), float(value)
        for _ in range(60):
            mid = round(round((lo + hi) / 2 / step) * step, 9)
            if mid in (lo, hi):
                break
            trial = {**facts, name: _tidy(mid)}
            if probe(trial) == outcome:
                hi = mid
            else:
                lo = mid
        best = _tidy(hi)
        return best, {**facts, name: best}

    def rule_changes(self, rule: Rule, ev: dict[str, Any], moves: dict[str, str]) -> list[dict[str, Any]]:
        """Single data changes with which this rule would take its move (the value nearest to the one seen)."""
        state = ev["state"]
        names = self._relevant_inputs(state, {rule.id})
        found: dict[str, dict[str, Any]] = {}

        def probe(facts: dict[str, Any]) -> str | None:
            branch = evaluate_state(self.compiled, state, facts, conditions=self.conds,
                                    frozen=ev.get("frozen")).fired.get(rule.id)
            return branch if branch in moves else None

        for name, value, facts in self._variants(ev, names):
            if name in found:
                continue
            branch = probe(facts)
            if branch is not None:
                value, facts = self._refine(ev, name, value, facts, branch, probe)
                found[name] = {"field": name, "was": ev["facts"].get(name), "value": value, "branch": branch,
                               "to": moves[branch]}
        return [found[k] for k in sorted(found)]

    def decision_changes(self, ev: dict[str, Any]) -> list[dict[str, Any]]:
        """Single data changes that would change the decision taken at this evaluation."""
        state = ev["state"]
        space = self.space(state)
        actual = evaluate_state(self.compiled, state, {k: v for k, v in ev["facts"].items() if k != "state"},
                                conditions=self.conds, frozen=ev.get("frozen"))
        now = actual.decision()
        names = self._relevant_inputs(state, {m.rule for m in space.moves})
        seen: set[tuple[str, Any]] = set()
        out = []

        def probe(facts: dict[str, Any]) -> Any:
            check = evaluate_state(self.compiled, state, facts, conditions=self.conds, frozen=ev.get("frozen"))
            if check.move_conflict:
                return "conflict"
            new = check.decision()
            return (new.rule, new.target) if new else None

        current = (now.rule, now.target) if now else None
        for name, value, facts in self._variants(ev, names):
            outcome = probe(facts)
            if outcome == current or (name, outcome) in seen:
                continue
            seen.add((name, outcome))
            value, facts = self._refine(ev, name, value, facts, outcome, probe)
            check = evaluate_state(self.compiled, state, facts, conditions=self.conds, frozen=ev.get("frozen"))
            entry: dict[str, Any] = {"field": name, "was": ev["facts"].get(name), "value": value}
            if outcome == "conflict":
                entry["decision"] = "conflict"
                entry["rules"] = sorted({m.rule for m in check.top()})
            elif outcome is None:
                entry["decision"] = "stay"
            else:
                entry["decision"] = {"rule": outcome[0], "to": outcome[1]}
            out.append(entry)
        return sorted(out, key=lambda e: (e["field"], json.dumps(e["decision"], sort_keys=True)))


def _step(value: float) -> float:
    return max(step_of(value), 0.001)


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _tidy(value: float) -> float | int:
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value


def explain(pathway: Pathway, session_or_case: Session | dict[str, Any], rule: str | None = None) -> dict[str, Any]:
    """Explain a patient's final state (or one rule) from what the session saw.

    ``pathway``: a loaded :class:`Pathway`; ``session_or_case``: a session or a case dict
    (``patient``, ``events``), which is run first. With ``rule``, only that rule is
    explained, at the evaluation where it last fired (else the last one in one of its states).
    Raises InputError for an unknown rule or a rule that was never evaluated.
    """
    pw = pathway
    session = pw.run_course(session_or_case)[0] if isinstance(session_or_case, dict) else session_or_case
    ctx = _Context(pw, session)
    result = ctx.result
    d = pw.definition
    state = result["state"]
    out: dict[str, Any] = {
        "pathway": d.id, "version": d.version, "profile": d.profile, "patient_id": result["patient_id"],
        "day": result["day"], "state": state, "state_title": result["state_title"], "state_kind": result["state_kind"],
        "path": result["path"], "notes": [],
    }
    if rule is not None:
        try:
            target = pw.rule(rule)
        except KeyError:
            raise InputError([Diagnostic("--rule", 0, 0, "PW402", f"unknown rule '{rule}'")]) from None
        hits = [t for t in ctx.trace if t["rule"] == rule and t["branch"] != "missing"]
        ev = None
        if hits:
            last = hits[-1]
            ev = next((e for e in ctx.evaluations if e["event"] == last["event"] and e["state"] == last["state"]), None)
        if ev is None:
            ev = next((e for e in reversed(ctx.evaluations) if e["state"] in target.states), None)
        if ev is None:
            raise InputError([Diagnostic("--rule", 0, 0, "PW402",
                                         f"rule '{rule}' was never evaluated: the patient was never in "
                                         f"{', '.join(target.states)}")])
        out["evaluation"] = _evaluation(ev)
        out["rules"] = [ctx.describe_rule(target, ev)]
        return out
    ev = next((e for e in reversed(ctx.evaluations) if e["state"] == state), None)
    if ev is None:
        out["notes"].append("no evaluation yet in this state (no event recorded)")
        out["rules"] = []
        return out
    out["evaluation"] = _evaluation(ev)
    leaving = [r for r in d.rules_in(state) if ctx.moving_branches(r)]
    out["rules"] = [ctx.describe_rule(r, ev) for r in leaving]
    if leaving:
        out["changes"] = ctx.decision_changes(ev)
    moves = [t for t in ctx.trace if "to" in t]
    if moves and moves[-1]["to"] == state:
        last = moves[-1]
        prev = next((e for e in ctx.evaluations if e["event"] == last["event"] and e["state"] == last["from"]), None)
        if last["rule"].startswith("decision."):  # no rule took it now: a move on a decision that stands
            out["notes"].append(f"arrived by a move on a recorded decision that stands ({last['rule']}): the rules "
                                "would not take it on what is recorded now; the result's alert says why")
        elif prev is not None:
            arrived = ctx.describe_rule(pw.rule(last["rule"]), prev, counterfactuals=False)
            arrived["evaluation"] = _evaluation(prev)
            out["arrived_by"] = arrived
    static = evaluate_state(pw.compiled, state, {k: v for k, v in ev["facts"].items() if k != "state"},
                            conditions=ctx.conds, frozen=ev.get("frozen"))
    if static.derived != ev["derived"]:
        out["notes"].append(f"the static evaluator derives {static.derived}, the engine derived {ev['derived']}")
    return out


def _evaluation(ev: dict[str, Any]) -> dict[str, Any]:
    return {"event": ev["event"], "day": ev["day"], "state": ev["state"], "facts": dict(sorted(ev["facts"].items())),
            "derived": dict(sorted(ev["derived"].items())),
            "computed": {k: dict(v) for k, v in sorted(ev.get("computed", {}).items())},
            "frozen": dict(sorted(ev.get("frozen", {}).items()))}


def _computed_text(name: str, entry: dict[str, Any]) -> str:
    """``visible_blood=false (computed from bloody_stools_24h=0)`` or the recorded value with what it overrode."""
    inputs = format_facts(entry["inputs"]) or "no input"
    if entry["source"] == "derived":
        text = f"{name}={format_value(entry['value'])} (computed from {inputs}"
        if entry.get("recorded") is not None:
            text += f"; replaces the older recorded value {format_value(entry['recorded'])}"
        return text + ")"
    text = f"{name}={format_value(entry['value'])} (recorded"
    if entry.get("derived") is not None and entry["derived"] != entry["value"]:
        text += f"; overrides {format_value(entry['derived'])} computed from {inputs}"
    return text + ")"


# -- text -------------------------------------------------------------------------------------

_MARK = {True: "[yes]", False: "[no] ", None: "[?]  "}


def _tree_lines(node: dict[str, Any], indent: str) -> list[str]:
    if node["kind"] == "always":
        return [f"{indent}{_MARK[True]} always"]
    if node["kind"] == "test":
        return [f"{indent}{_MARK[node['result']]} {_test_text(node)}"]
    if node["kind"] == "at_least":
        word = f"at least {node['n']} of"
    elif node["kind"] == "any" and not node["items"]:
        return [f"{indent}{_MARK[node['result']]} {prose.WORDS['never']}"]
    else:
        word = "all of" if node["kind"] == "all" else "any of"
    lines = [f"{indent}{_MARK[node['result']]} {word}:"]
    for item in node["items"]:
        lines.extend(_tree_lines(item, indent + "    "))
    return lines


def _rule_lines(item: dict[str, Any], indent: str = "  ") -> list[str]:
    moves = ", ".join(f"{'then' if b == 'then' else 'otherwise'} {'proposes' if b in item.get('proposes', []) else '->'} {t}"
                      for b, t in item["moves"].items())
    head = f"{indent}{item['rule']} (priority {item['priority']}{'; ' + moves if moves else ''}) at {item['location']}"
    words = {"fired": "fired", "fired_otherwise": "fired its 'otherwise' branch", "waiting_for_data": "is waiting for data",
             "not_due": "did not fire: not due", "undecided": "did not fire: a value it needs is unknown",
             "condition_false": "did not fire: its condition is false", "did_not_fire": "did not fire"}
    lines = [head, f"{indent}  {words[item['outcome']]}" + (f" ({item['took']['from']} -> {item['took']['to']})"
                                                             if item.get("took") else "")]
    if not (item["due"]["kind"] == "always"):
        lines.append(f"{indent}  due:")
        lines.extend(_tree_lines(item["due"], indent + "    "))
    if item["requires"]:
        lines.append(f"{indent}  requires: " + ", ".join(
            f"{r.get('name') or r['field']} ({'recorded' if r['recorded'] else 'not recorded'})" for r in item["requires"]))
    lines.append(f"{indent}  when:")
    lines.extend(_tree_lines(item["when"], indent + "    "))
    failed = item.get("failed")
    if failed:
        if failed.get("kind") == "missing":
            lines.append(f"{indent}  first failed: {failed['text']}")
        elif failed.get("kind") == "test":
            lines.append(f"{indent}  first failed ({failed['part']}): {_test_text(failed)}")
    for change in item.get("would_fire_if", []):
        lines.append(f"{indent}  would fire with {change['field']} = {format_value(change['value'])} "
                     f"(was {format_value(change['was'])}) -> {change['to']}")
    return lines


def explain_text(doc: dict[str, Any]) -> str:
    """Plain-text rendering of :func:`explain`'s result (every text one line: no value can fake a line)."""
    doc = inert(doc)
    lines = [f"{doc['pathway']} {doc['version']}" + (f" (profile {doc['profile']})" if doc.get("profile") else "")
             + f" - patient {doc['patient_id']} - day {format_value(doc['day'])}",
             f"state: {doc['state']} ({doc['state_title']}), {doc['state_kind']}",
             "path: " + " -> ".join(doc["path"])]
    ev = doc.get("evaluation")
    if ev:
        lines.append(f"evaluated on day {format_value(ev['day'])} (event {ev['event']}) in {ev['state']} with: "
                     + format_facts({k: v for k, v in ev["facts"].items()}))
        if ev["derived"]:
            lines.append("derived: " + format_facts(ev["derived"]))
        if ev.get("computed"):
            lines.append("computed inputs: " + "; ".join(_computed_text(n, e) for n, e in ev["computed"].items()))
        if ev.get("frozen"):
            lines.append("of which kept from a decision point (not derived again): " + format_facts(ev["frozen"]))
    arrived = doc.get("arrived_by")
    if arrived:
        lines.append("")
        lines.append(f"arrived by rule {arrived['rule']} on day {format_value(arrived['evaluation']['day'])} "
                     f"(event {arrived['evaluation']['event']}):")
        lines.extend(_rule_lines(arrived))
    if doc["state_kind"] == "terminal" and not doc.get("rules"):
        lines.append("")
        lines.append(f"{doc['state']} is terminal: no rule can leave it.")
    elif doc.get("rules"):
        lines.append("")
        lines.append("rules explained:" if len(doc["rules"]) == 1 and "changes" not in doc
                     else f"rules that could leave {doc['state']}:")
        for item in doc["rules"]:
            lines.extend(_rule_lines(item))
    if doc.get("changes"):
        lines.append("")
        lines.append("data that would change the decision (one value at a time, other values as seen):")
        for c in doc["changes"]:
            dec = c["decision"]
            if dec == "stay":
                what = f"stay in {doc['state']}"
            elif dec == "conflict":
                what = "conflict between " + ", ".join(c["rules"]) + " (refused by the engine)"
            else:
                what = f"-> {dec['to']} by {dec['rule']}"
            lines.append(f"  {c['field']} = {format_value(c['value'])} (was {format_value(c['was'])}): {what}")
    for note in doc.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


# -- command --------------------------------------------------------------------------------
