"""The forward-chaining engine: durable_rules behind our own interface.

durable-rules 2.0.28 hazards this module owns (measured, see the project notes):

- a ruleset holds at most 1,024 live sessions (sids): patient sessions do not hold a sid.
  A sid is the working memory of *one* evaluation: the case snapshot is asserted, rules fire
  and derive facts (which fire further rules), then every asserted fact is retracted and the
  sid is verified empty before it is used again. Open patient sessions are plain objects
  (and rows in the store), so any number can be open at once;
- ``delete_state`` segfaults on a sid that still holds facts: it is never called; a sid
  that cannot be verified empty is retired and a fresh one used (bounded, see MAX_RETIRED);
- creating and deleting a ruleset per patient leaks: rulesets are registered once per
  loaded pathway, on a host of its own (names are per host, so two pathways never clash);
- ``set_rulesets`` mutates its argument: it gets a deep copy;
- a message no rule matches raises ``MessageNotHandledException``: caught (it means "no rule
  matched" and the message was not stored);
- exceptions inside actions are swallowed into session state: our actions catch everything
  themselves, and the evaluation raises :class:`EngineError` afterwards;
- the host's wall-clock dispatch threads are never started (clinical time comes from data,
  and no second thread ever touches the engine); evaluations are serialised by a lock.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from durable import engine as durable_engine
from durable.engine import MessageNotHandledException

from . import conditions as C
from .compile import Binding, CompiledPathway
from .effects import Derive, Effect
from .errors import EngineError

__all__ = ["Firing", "Engine", "MAX_RETIRED_SIDS"]

#: Live sids per ruleset are bounded by durable_rules at 1,024; we use one at a time and
#: retire one only if it could not be verified empty, which must stay rare.
MAX_RETIRED_SIDS = 512


@dataclass
class Firing:
    """One rule that fired in one evaluation: which branch, on which facts, with which effects."""

    rule: str
    branch: str  # then | else | missing
    facts: dict[str, Any]
    effects: tuple[Effect, ...]
    missing: tuple[str, ...] = ()
    binding: Binding | None = field(default=None, repr=False, compare=False)


@dataclass
class _Context:
    sid: str
    ruleset: str
    snapshot: dict[str, Any]
    firings: list[Firing] = field(default_factory=list)
    fired: set[tuple[str, str]] = field(default_factory=set)
    derived: dict[str, Any] = field(default_factory=dict)
    asserted: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Host(durable_engine.Host):
    """A durable_rules host whose actions are the engine's generic handlers, bound by name."""

    def __init__(self, owner: "Engine"):
        self._owner = owner
        super().__init__()

    def _run(self) -> None:  # no wall-clock dispatch or timer threads
        return None

    def get_action(self, action_name: str):  # noqa: ANN201 - durable's protocol
        return self._owner._make_action(action_name)


class Engine:
    """Evaluates one state's rules on one snapshot at a time, with real forward chaining."""

    def __init__(self, compiled: CompiledPathway):
        self.compiled = compiled
        self._lock = threading.Lock()
        self._ctx: _Context | None = None
        self._host = _Host(self)
        self._host.set_rulesets(copy.deepcopy(compiled.rulesets))
        self._sids: dict[str, int] = {name: 0 for name in compiled.rulesets}
        self.retired_sids = 0
        self.evaluations = 0

    # -- actions -----------------------------------------------------------------------
    def _make_action(self, name: str):  # noqa: ANN202
        binding = self.compiled.bindings[name]

        def action(c: Any) -> None:
            ctx = self._ctx
            if ctx is None:  # never expected: nothing runs outside evaluate()
                return
            try:
                self._fire(ctx, binding, c)
            except BaseException as exc:  # noqa: BLE001 - durable would swallow it; we re-raise later
                ctx.errors.append(f"rule '{binding.rule.id}' ({binding.branch}): {type(exc).__name__}: {exc}")

        return action

    def _fire(self, ctx: _Context, binding: Binding, c: Any) -> None:
        rule = binding.rule
        key = (rule.id, binding.branch)
        if key in ctx.fired:  # refraction: one firing per rule and branch per evaluation
            return
        ctx.fired.add(key)
        matched: dict[str, Any] = c._m  # pattern name -> message
        snapshot = matched["m"]
        facts: dict[str, Any] = {}
        for clause in binding.clauses:
            for cmp in C.fields_of(clause):
                if cmp.derived:
                    facts[cmp.field] = ctx.derived.get(cmp.field)
                else:
                    facts[cmp.field] = snapshot.get(cmp.field)
        missing: tuple[str, ...] = ()
        if binding.branch == "missing":
            missing = tuple(f for f in rule.requires if snapshot.get(f) is None)
            effects: tuple[Effect, ...] = ()
        else:
            effects = rule.then if binding.branch == "then" else rule.otherwise
        ctx.firings.append(Firing(rule.id, binding.branch, facts, effects, missing, binding))
        for effect in effects:
            if isinstance(effect, Derive):
                for fact_name, value in effect.values.items():
                    self._derive(ctx, c, rule.id, fact_name, value)

    def _derive(self, ctx: _Context, c: Any, rule_id: str, name: str, value: Any) -> None:
        if name in ctx.derived:
            if ctx.derived[name] != value:
                ctx.errors.append(
                    f"rule '{rule_id}' derives {name} = {value!r}, but it was already derived as {ctx.derived[name]!r}"
                )
            return
        ctx.derived[name] = value
        message = {"_k": "derived", "name": name, "value": value, "sid": ctx.sid}
        try:
            c.assert_fact(message)  # triggers the rules that test this fact, inside the engine
        except MessageNotHandledException:
            return  # no rule of this state tests it: not stored
        ctx.asserted.append(message)

    # -- evaluation --------------------------------------------------------------------
    def evaluate(self, state: str, snapshot: dict[str, Any]) -> tuple[list[Firing], dict[str, Any]]:
        """Run the rules of ``state`` on ``snapshot``; return the firings and the derived facts."""
        names = self.compiled.state_rulesets.get(state)
        if not names:
            return [], {}
        firings: list[Firing] = []
        derived: dict[str, Any] = {}
        errors: list[str] = []
        with self._lock:
            self.evaluations += 1
            for ruleset in names:  # groups share no derived fact (see compile._components)
                ctx = self._run_one(ruleset, snapshot)
                firings.extend(ctx.firings)
                derived.update(ctx.derived)
                errors.extend(ctx.errors)
        if errors:
            raise EngineError(f"evaluation of state '{state}' failed; nothing was applied: " + "; ".join(errors))
        return firings, derived

    def _run_one(self, ruleset: str, snapshot: dict[str, Any]) -> _Context:
        sid = f"{self._sids[ruleset]}"
        fact = {k: v for k, v in snapshot.items() if v is not None}
        fact["_k"] = "case"
        fact["sid"] = sid
        ctx = _Context(sid, ruleset, fact)
        self._ctx = ctx
        try:
            try:
                self._host.assert_fact(ruleset, fact)
                ctx.asserted.insert(0, fact)
            except MessageNotHandledException:
                pass  # no rule of this ruleset matched: nothing stored
        except Exception as exc:  # noqa: BLE001
            ctx.errors.append(f"engine failure in ruleset '{ruleset}': {type(exc).__name__}: {exc}")
        finally:
            self._ctx = None
            self._release(ctx)
        return ctx

    def _release(self, ctx: _Context) -> None:
        """Retract everything this evaluation asserted and check the sid is empty."""
        clean = True
        if ctx.asserted:
            try:
                self._host.retract_facts(ctx.ruleset, list(reversed(ctx.asserted)))
            except MessageNotHandledException:
                clean = False
            except Exception:  # noqa: BLE001
                clean = False
        if clean:
            try:
                clean = not self._host.get_facts(ctx.ruleset, ctx.sid)
            except Exception:  # noqa: BLE001
                clean = False
        if not clean:
            # Never delete_state a sid that may hold facts (segfault): retire it instead.
            self.retired_sids += 1
            self._sids[ctx.ruleset] += 1
            if self.retired_sids > MAX_RETIRED_SIDS:
                raise EngineError("too many engine sessions could not be cleaned; reload the pathway")
