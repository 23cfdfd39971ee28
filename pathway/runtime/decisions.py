"""Recorded decisions: refused when recorded where they are not due, said aloud when they cannot
be acted on (see :class:`pathway.definition.model.DecisionSpec`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathway.core.errors import Diagnostic, InputError
from pathway.definition import conditions as C
from pathway.definition import prose
from pathway.definition.clock import DAYS_SINCE_PREFIX
from pathway.definition.effects import Alert, Transition, derived_by
from pathway.definition.pathway import Rule
from pathway.definition.timeline import day_text
from pathway.runtime.facts import decision_counts, recordable
from pathway.runtime.state import SessionState

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway
    from pathway.runtime.engine import Firing

__all__ = ["refuse_untimely", "untimely", "unacted_records", "blocked_records", "acting_fields", "standing",
           "overruled_item", "overruled_records", "in_effect"]


def untimely(pathway: Pathway, recorded: dict[str, Any], passed: list[str]) -> list[str]:
    """The decisions recorded in this event that count in none of the states the event passed through."""
    decisions = pathway.definition.decisions
    return [name for name in recorded
            if name in decisions and not any(s in decisions[name] for s in passed)]


def refuse_untimely(pathway: Pathway, recorded: dict[str, Any], passed: list[str], where: str) -> None:
    """InputError (nothing applied) for a decision recorded in this event that counts in none of
    the states the event passed through."""
    problems = []
    for name in untimely(pathway, recorded, passed):
        accepted = pathway.definition.decisions[name]
        problems.append(Diagnostic(
            f"{where}.{name}", 0, 0, "PW407",
            f"'{name}' is a decision taken in {_states_named(pathway, accepted)}; the patient is in "
            f"{_state_named(pathway, passed[-1])}, so it is not due: " + _instead(pathway, accepted, passed[-1])))
    if problems:
        raise InputError(problems)


#: the states a refusal names one by one; beyond, it counts the others
_NAMED_STATES = 4


def _state_named(pathway: Pathway, state: str) -> str:
    """``'Day-3 assessment' (day3_assessment)``: a state as a clinician and a rule author read it."""
    return f"'{pathway.definition.spec.states[state].title}' ({state})"


def _states_named(pathway: Pathway, states: frozenset[str]) -> str:
    """The states that take a decision, in the pathway's order, the first few by title and the rest counted."""
    ordered = [s for s in pathway.definition.spec.states if s in states]
    shown = ", ".join(_state_named(pathway, s) for s in ordered[:_NAMED_STATES])
    rest = len(ordered) - _NAMED_STATES
    return shown if rest <= 0 else f"{shown} and {rest} other state{'s' if rest > 1 else ''}"


def _instead(pathway: Pathway, accepted: frozenset[str], state: str) -> str:
    """What to do with a decision refused in ``state``: record it when the pathway asks for it while a state
    that takes it can still be reached; where none can (the pathway has ended), say so and what to do instead."""
    graph = pathway.graph
    seen, todo = {state}, [state]
    while todo:  # the states the pathway can still reach from here
        for after in graph.successors(todo.pop()):
            if after in accepted:
                return "record it when the pathway asks for it"
            if after not in seen:
                seen.add(after)
                todo.append(after)
    spec = pathway.definition.spec.states[state]
    if spec.kind == "terminal":
        return (f"the pathway ended with '{spec.title}' and takes no decision after it, so nothing was recorded. "
                "A readmission is a new admission on the pathway: start a new course for it and record the "
                f"decision there. If '{spec.title}' was reached through an event recorded late or in error, correct "
                "that event (amend or retract it) so that the pathway can take the decision")
    return (f"no state in which it is taken can be reached from '{spec.title}', so the pathway will not ask for it "
            "in this course and nothing was recorded. If an earlier event was recorded late or in error, correct "
            "it (amend or retract it) so that the pathway can take the decision")


def _acting_rules(pathway: Pathway, state: str, name: str, value: Any) -> list[Rule]:
    """Rules of ``state`` that would move the patient on this decision value."""
    out = []
    for rule in pathway.rules_in(state):
        tests = [c for c in C.fields_of(rule.when) if c.field == name]
        moves = [e for e in rule.then if isinstance(e, Transition)]
        if tests and moves and all(c.holds({name: value}) is not False for c in tests):
            out.append(rule)
    return out


def _word(pathway: Pathway, cmp: C.Cmp, facts: dict[str, Any]) -> str:
    actual = facts.get(cmp.field)
    d = pathway.definition
    entered = cmp.field[len(DAYS_SINCE_PREFIX):]
    if cmp.field.startswith(DAYS_SINCE_PREFIX) and entered in d.spec.states:
        # a clock of the states entered: said as the state and when (the field's name beside it)
        if actual is None:
            return f"{prose.state_name(entered, d)} was not entered ({cmp.field})"
        days = prose.number_text(actual)
        return f"{prose.state_name(entered, d)} was entered {days} day{'' if days == '1' else 's'} ago ({cmp.field} is {days})"
    if actual is None:
        return f"{cmp.field} is not known"
    shown = str(actual).lower() if isinstance(actual, bool) else actual
    return f"{cmp.field} is {shown}"


def _false_tests(cond: C.Cond, facts: dict[str, Any]) -> list[C.Cmp]:
    """The tests that make ``cond`` false: an ``all`` is false through its false items, an ``any`` through
    every item (a test inside an ``any`` that holds through another item is not a reason)."""
    if C.evaluate(cond, facts) is not False:
        return []
    if isinstance(cond, C.Cmp):
        return [cond]
    if isinstance(cond, (C.And, C.Or)):
        return [test for item in cond.items for test in _false_tests(item, facts)]
    return list(C.fields_of(cond))


def _true_tests(cond: C.Cond, facts: dict[str, Any]) -> list[C.Cmp]:
    """The tests that make ``cond`` true: an ``any`` is true through its true items, an ``all`` through
    every item (a test inside an ``all`` that fails with it is not a reason)."""
    if C.evaluate(cond, facts) is not True:
        return []
    if isinstance(cond, C.Cmp):
        return [cond]
    if isinstance(cond, (C.And, C.Or)):
        return [test for item in cond.items for test in _true_tests(item, facts)]
    return list(C.fields_of(cond))


def _why(pathway: Pathway, rule: Rule, facts: dict[str, Any], firings: list[Firing], waiting: dict[str, tuple[str, ...]],
         producers: dict[str, list[str]]) -> tuple[str, list[str]]:
    """Why ``rule`` did not act: the tests that fail (with what settled the derived facts among them, :func:`_because`),
    or what it waits for (and the fields to record: a value computed from the record by the fields it is computed
    from)."""
    if C.evaluate(rule.due, facts) is not True:
        return f"'{rule.title}' is not due yet", []
    failing = _false_tests(rule.when, facts)
    if failing:
        return (f"'{rule.title}' does not hold: " + "; ".join(dict.fromkeys(_word(pathway, c, facts) for c in failing))
                + _because(pathway, rule, facts, firings), [])
    missing: list[str] = []
    for c in C.fields_of(rule.when):
        if c.holds(facts) is not None:
            continue
        if not c.derived:
            missing.append(c.field)
            continue
        for producer in producers.get(c.field, []):
            missing += waiting.get(producer, ())
    missing = list(dict.fromkeys(asked for name in missing for asked in recordable(pathway, name)))
    if missing:
        return f"'{rule.title}' cannot be decided until these are recorded: {', '.join(missing)}", missing
    return f"'{rule.title}' cannot be decided yet", []


def blocked_records(pathway: Pathway, st: SessionState, snapshot: dict[str, Any], derived: dict[str, Any],
                    firings: list[Firing]) -> list[dict[str, Any]]:
    """A critical alert for each decision that counts in the current state but moved nothing,
    naming why; none where a rule acting on the decision already raised an alert of its own."""
    d = pathway.definition
    out: list[dict[str, Any]] = []
    if not any(st.facts.get(name) is not None for name in d.decisions):
        return out
    waiting = {f.rule: f.missing for f in firings if f.branch == "missing"}
    fired = {f.rule for f in firings}
    producers = pathway.producers_in(st.state)
    facts = {k: v for k, v in snapshot.items() if v is not None}
    facts.update(derived)
    for name in d.decisions:
        value = st.facts.get(name)
        if value is None or not decision_counts(pathway, st, name):
            continue
        said = [r for r in pathway.rules_in(st.state) if r.id in fired
                and any(c.field == name for c in C.fields_of(r.when))
                and any(isinstance(e, Alert) for e in r.effects("then"))]
        if said:
            continue
        rules = _acting_rules(pathway, st.state, name, value)
        whys = [_why(pathway, r, facts, firings, waiting, producers) for r in rules]
        reasons = [text for text, _ in whys] or [f"no rule acts on it in '{d.spec.states[st.state].title}'"]
        missing = list(dict.fromkeys(f for _, fields in whys for f in fields))
        shown = str(value).lower() if isinstance(value, bool) else value
        text = f"Decision recorded ({name}: {shown}) but not acted on: " + "; ".join(reasons) + "."
        sources = sorted({s for r in rules for s in r.evidence.sources})
        status = "unverified" if any(r.evidence.status == "unverified" for r in rules) else "verified"
        item = {"rule": f"decision.{name}", "branch": "then", "synthetic": True,
                "title": f"Recorded decision not acted on ({name})",
                "evidence": {"sources": sources, "strength": "expert", "status": status},
                "effects": [{"kind": "alert", "level": "critical", "text": text}]}
        if missing:  # what it waits for is asked for (data required)
            item["missing"] = missing
        out.append(item)
    return out


def unacted_records(pathway: Pathway, st: SessionState) -> list[dict[str, Any]]:
    """A critical alert for each decision the course holds but never acted on because it fell, once the
    course was evaluated again (an event placed earlier, amended or retracted), in a state where it is not
    taken (``st.unacted``); shown for the rest of the course (until that event is amended or retracted)."""
    d = pathway.definition
    out: list[dict[str, Any]] = []
    for item in st.unacted:
        name, value = item["field"], item["value"]
        shown = str(value).lower() if isinstance(value, bool) else value
        accepted = ", ".join(f"'{d.spec.states[s].title}'" for s in sorted(d.decisions.get(name, ())))
        when = _when(st, item["event"], item["day"])
        text = (f"Decision recorded on {when} ({name}: {shown}) was not acted on: once the course "
                f"was evaluated again (an event recorded late, amended or retracted), the patient was then in "
                f"'{d.spec.states[item['state']].title}', where it is not taken (it is a decision of {accepted}). ")
        before = next((a for a in st.acted if a["recorded"] == item["event"] and a["field"] == name
                       and a["to"] in d.spec.states), None)
        if before is not None:  # the course acted on it before it was evaluated again
            target = d.spec.states[before["to"]]
            text += (f"It had been acted on before that (the patient moved to '{target.title}' on "
                     f"{_when(st, before['event'], before['day'])}), so it may already have been carried out. ")
            if target.kind == "terminal":  # the course had ended: the patient may have left (a discharge)
                text += (f"The course had ended there: the advice below is for a patient still on the pathway; if "
                         f"'{target.title}' was carried out, contact the patient, or the team now caring for them, "
                         f"today. ")
        text += "It stays in the record: review it with the team."
        out.append({"rule": f"decision.{name}", "branch": "then", "synthetic": True,
                    "title": f"Recorded decision not acted on ({name})",
                    "evidence": {"sources": [], "strength": "expert", "status": "verified"},
                    "effects": [{"kind": "alert", "level": "critical", "text": text}]})
    return out


def _when(st: SessionState, event: int, day: Any) -> str:
    """``day 4`` or ``day 4 at <the event's clock time>``."""
    entry = st.events[event] if event < len(st.events) else {}
    return day_text(day, entry.get("time"))


def acting_fields(pathway: Pathway, rule_id: str) -> list[str]:
    """The recorded decisions a rule's conditions test (a move it takes acts on them)."""
    d = pathway.definition
    return list(dict.fromkeys(c.field for c in C.fields_of(pathway.rule(rule_id).when) if c.field in d.decisions))


def standing(pathway: Pathway, st: SessionState, event: int) -> dict[str, Any] | None:
    """The move on a decision taken before at ``event`` from the current state (``st.acted``), which stands
    though the rules do not take it now; None when there is none (or it is not a move of these rules)."""
    for entry in st.acted:
        if (entry["event"] == event and entry["from"] == st.state and entry["to"] != st.state
                and st.facts.get(entry["field"]) == entry["value"] and st.recorded_event.get(entry["field"]) == entry["recorded"]
                and pathway.graph.has_edge(st.state, entry["to"]) and _known(pathway, entry["rule"])):
            return entry
    return None


def in_effect(st: SessionState, name: str, event: int) -> bool:
    """Whether the decision ``name`` recorded in ``event``, which the current state does not take, was acted
    on before and the patient is where it led (a colectomy decided, then an emergency charted before it took
    the patient to colectomy first): then it is in effect, not overtaken."""
    return any(a["recorded"] == event and a["field"] == name and a["to"] == st.state for a in st.acted)


def _known(pathway: Pathway, rule_id: Any) -> bool:
    try:
        pathway.rule(rule_id)
    except (KeyError, TypeError):
        return False
    return True


def _because(pathway: Pathway, rule: Rule, facts: dict[str, Any], firings: list[Firing]) -> str:
    """What makes the derived facts that fail ``rule`` what they are: for each, the rule that derived it
    and the recorded values that settled it (`` ('Infliximab eligibility': latent TB screening: untreated)``); empty
    when no derived fact fails it."""
    d = pathway.definition
    because = []
    for c in _false_tests(rule.when, facts):
        if not c.derived:
            continue
        for f in firings:
            if f.branch == "missing" or c.field not in derived_by(f.effects):
                continue
            source = pathway.rule(f.rule)
            tests = _true_tests(source.when, facts) if f.branch == "then" else _false_tests(source.when, facts)
            held = [prose.recorded_value(x.field, facts.get(x.field), d) for x in tests]
            if held:
                because.append(f"'{source.title}': " + ", ".join(dict.fromkeys(held)))
    return " (" + "; ".join(dict.fromkeys(because)) + ")" if because else ""


def overruled_item(pathway: Pathway, st: SessionState, entry: dict[str, Any], snapshot: dict[str, Any],
                   derived: dict[str, Any], firings: list[Firing]) -> dict[str, Any]:
    """What is said of a move on a decision that stands (``entry``, from ``st.acted``) although the rules,
    on what is recorded now, would not take it: the decision, the move, and why the rules would not."""
    d = pathway.definition
    rule = pathway.rule(entry["rule"])
    name, value = entry["field"], entry["value"]
    facts = {k: v for k, v in snapshot.items() if v is not None}
    facts.update(derived)
    waiting = {f.rule: f.missing for f in firings if f.branch == "missing"}
    why, _ = _why(pathway, rule, facts, firings, waiting, pathway.producers_in(st.state))
    shown = str(value).lower() if isinstance(value, bool) else value
    moved = _when(st, entry["event"], entry["day"])
    recorded = entry["recorded"]
    when = moved if recorded is None or recorded >= len(st.events) else _when(st, recorded, st.events[recorded]["day"])
    text = (f"The decision recorded on {when} ({name}: {shown}) was acted on: the patient moved to "
            f"'{d.spec.states[entry['to']].title}' on {moved}. The record has changed since (an event recorded "
            f"late, amended or withdrawn), and on what it holds now the rules would not take it: {why}. The move "
            "stands, as the decision may already have been carried out (a treatment given, a discharge): review "
            "the patient and the decision with the team today.")
    return {"field": name, "value": value, "event": entry["event"], "day": entry["day"], "from": entry["from"],
            "to": entry["to"], "rule": entry["rule"], "text": text, "sources": sorted(rule.evidence.sources),
            "status": rule.evidence.status}


def overruled_records(st: SessionState) -> list[dict[str, Any]]:
    """A critical alert for each move on a decision that stands although the rules would not now take it
    (``st.overruled``); shown for the rest of the course (until that event is amended or retracted)."""
    return [{"rule": f"decision.{item['field']}", "branch": "then", "synthetic": True,
             "title": f"Decision acted on that the rules would not take now ({item['field']})",
             "evidence": {"sources": item["sources"], "strength": "expert", "status": item["status"]},
             "effects": [{"kind": "alert", "level": "critical", "text": item["text"]}]}
            for item in st.overruled]
