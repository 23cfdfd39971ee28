"""The forward-chaining engine: durable_rules behind our own interface.

durable-rules 2.0.28 hazards this module owns (measured, see the project notes):

- a ruleset holds at most 1,024 live sessions (sids): patient sessions do not hold a sid.
  A sid is the working memory of *one* evaluation: the case snapshot is asserted, rules fire
  and derive facts (which fire further rules), then the sid is left empty for the next evaluation
  (its state deleted, or its facts retracted: see the next item). Open patient sessions are plain objects
  (and rows in the store), so any number can be open at once;
- its retraction corrupts the heap on a state where an action ran: completing an action frees the action's frame
  but leaves it flagged as dispatching and listed under each of its facts; retracting such a fact later finds the
  flag, takes the frame for one being dispatched and clears the fact out of it with a loop bounded by a count it
  never lowers, which runs past the frame's 16 slots and writes zeros into whatever memory follows (found with a
  build of the core that checks its bounds: the first scenario of the library does it; the crashes seen before,
  frees of pointers whose low 32 bits were zero, fit it). So a state on which an action ran is never retracted
  from: it is deleted whole after its evaluation (``delete_state`` frees its pools without that walk)
  and made afresh by the next one. Retraction is used only on a state no action ever ran on (nothing was ever
  dispatched in it), and the sid is then checked empty;
- ``delete_state`` frees the state's action context, which the core never initialises for a new state: it is
  called only on a state where an action started (the context is set, and cleared when the agenda empties);
- a sid that cannot be left empty so (a core call failed, or an action was left started) is retired, never
  touched again, and a fresh one is used (bounded, see MAX_RETIRED_SIDS);
- creating and deleting a ruleset per patient leaks: rulesets are registered once per
  loaded pathway, on a host of its own (names are per host, so two pathways never clash);
- ``set_rulesets`` mutates its argument: it gets a deep copy;
- every ruleset of a host is registered before the host's first evaluation (at load, or at the first evaluation
  of a pathway taken from the cache of loaded pathways), never one after others of the same host have run: a
  version that registered each state's rulesets when a patient first reached it crashed a course of two patients
  (a segfault in 3 runs, a hang in 1) on a loaded machine; the crash was not seen again in 30 later runs of that
  version (the retraction fault above is the likely cause), and rulesets are only ever created in the order the
  eager load creates them;
- its C core refuses a ruleset it cannot build with an error code (113: a pattern with more than 15
  ``$and``/``$or`` groups, which the compiler refuses first, PW305): rulesets are registered one at a
  time, a refusal frees the ones registered before it and raises :class:`EngineLimitError` (PW306)
  at the rules durable refuses alone, or naming the state and the rules of the ruleset;
- a message no rule matches raises ``MessageNotHandledException`` (status 1 of the core call):
  read as "no rule matched", the message was not stored;
- the Host swallows exceptions inside actions into session state: the engine runs actions
  itself, collects every exception, and raises :class:`EngineError` once the engine is quiet;
- its JSON reader refuses a number written with an exponent but no decimal point (error 204:
  ``5e-05``, ``1e-320``, ``1e+16``, which is how Python writes floats below 1e-4 or from 1e16) and
  reads ``5.0e-05`` exactly: every message is written through :func:`message_text`, so any finite
  value evaluates (NaN and infinities never reach the engine: inputs refuse them, PW410);
- the host's wall-clock dispatch threads are never started (clinical time comes from data,
  and no second thread ever touches the engine); evaluations are serialised by a lock;
- a ruleset lives in the C core until ``delete_ruleset`` (the Python objects do not free it; each
  load of the ASUC pathway kept ~5 MB). :meth:`Engine.close`, or the engine being garbage collected (a
  ``weakref.finalize``, so only once nothing can evaluate any more), deletes every ruleset. Deletion never runs
  inside the collector: it runs wherever Python allocates, inside another engine's evaluation too (between starting
  and completing an action), so the finalizer queues the rulesets and they are freed at the next registration,
  evaluation or close, under the lock every call into the core holds. A state left in a ruleset never ran an
  action, so it is not deleted (a small leak, not a crash), and a ruleset that retired a sid is not touched at
  all. Mutation testing runs in worker processes that are replaced when one stops reporting.
"""

from __future__ import annotations

import copy
import json
import threading
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import durable_rules_engine as _core
from durable import engine as durable_engine

from pathway.core.errors import Diagnostic, EngineError, EngineLimitError, PathwayError
from pathway.definition import conditions as C
from pathway.definition.effects import Derive, Effect, Score, compute_score
from pathway.definition.pathway import Rule
from pathway.definition.waiting import asks_for_data, waiting_for
from pathway.runtime.compile import Binding, CompiledPathway

__all__ = ["Firing", "Engine", "MAX_RETIRED_SIDS", "message_text"]

#: Live sids per ruleset are bounded by durable_rules at 1,024; we use one at a time and
#: retire one only if it could not be verified empty, which must stay rare.
MAX_RETIRED_SIDS = 512
#: activations one evaluation may take per engine rule of its ruleset (the scenarios take at most about one)
ACTIVATIONS_PER_RULE = 8


@dataclass(slots=True)
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
    asserted: list[str] = field(default_factory=list)  # JSON of each message stored in the engine
    errors: list[str] = field(default_factory=list)
    #: an action was left started (the agenda did not settle, or a core call failed): the sid is not reused
    broken: bool = False
    #: an action started on the sid's state in this evaluation: the state is deleted, never retracted
    acted: bool = False


def _durable_float(value: float) -> str:
    """A float as durable_rules reads it: Python's shortest form, with ``.0`` before a bare exponent."""
    text = repr(value)
    mantissa, exp, power = text.partition("e")
    return f"{mantissa}.0e{power}" if exp and "." not in mantissa else text


def _encode(value: Any) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} cannot be sent to the engine")
        return _durable_float(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_encode(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def message_text(message: dict[str, Any]) -> str:
    """The JSON text of an engine message, every number in a form durable_rules reads.

    Messages are flat (field or fact name -> scalar): the usual case is one ``json.dumps``; a float
    that Python would write with a bare exponent (below 1e-4 or from 1e16 in magnitude) takes the
    slower writer. NaN and infinities raise ``ValueError``.
    """
    for value in message.values():
        if isinstance(value, float) and value != 0.0 and not 1e-4 <= abs(value) < 1e16:
            return _encode(message)
        if isinstance(value, (dict, list, tuple)):
            return _encode(message)
    return _ENCODE(message)


#: ``json.dumps(message, ensure_ascii=False, allow_nan=False)`` without a new encoder per call
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
#: derived-fact messages kept encoded (their values come from rule files and scores: few distinct)
_DERIVED_TEXTS = 4096


def _action_name(pending: str) -> str:
    """The engine rule name of an activation ``{"<name>": {...matched messages...}}``.

    Engine rule names are ``<rule id>.<branch>.<k>`` (letters, digits, '_' and '.'), so the
    name is the first JSON string; the rest of the message is not needed.
    """
    if pending.startswith('{"'):
        end = pending.find('"', 2)
        if end > 2:
            return pending[2:end]
    name: str
    (name, _), = json.loads(pending).items()
    return name


class _Host(durable_engine.Host):  # type: ignore[misc]  # durable_rules is untyped (Host is Any)
    """A durable_rules host used to register rulesets; actions are dispatched by the Engine.

    It knows the bindings, not the engine: no reference cycle, so an engine nobody holds is freed
    (and its rulesets deleted) at once.
    """

    def __init__(self, bindings: dict[str, Binding]):
        self._bindings = bindings
        super().__init__()

    def _run(self) -> None:  # no wall-clock dispatch or timer threads
        return None

    def get_action(self, action_name: str) -> Callable[[Any], None]:  # durable's protocol
        if action_name not in self._bindings:
            raise EngineError(f"no binding for engine rule '{action_name}'")
        return _never_called


def _never_called(c: Any) -> None:  # pragma: no cover - the Engine runs actions itself
    raise EngineError("durable_rules' own action dispatch is not used by this engine")


#: held around every call into durable_rules' C core (registering rulesets, an evaluation, freeing rulesets): the
#: core keeps process-wide tables, so no engine's rulesets are freed while another engine is inside an evaluation
_CORE = threading.Lock()
#: the rulesets of engines the garbage collector took, waiting to be freed at the next safe point
#: (:func:`_free_collected`); a collection runs wherever Python allocates, inside another engine's evaluation too
#: (between starting and completing an action), so the finalizer only queues them
_COLLECTED: list[tuple[dict[str, Any], dict[str, int]]] = []


def _collected(handles: dict[str, Any], retired: dict[str, int]) -> None:
    """An engine's finalizer: queue its rulesets for :func:`_free_collected` (no call into the core here)."""
    _COLLECTED.append((handles, retired))


def _free_collected() -> None:
    """Free the queued rulesets of collected or closed engines (the caller holds ``_CORE``)."""
    while _COLLECTED:
        _delete_rulesets(*_COLLECTED.pop())


def pending_rulesets() -> int:
    """How many engines' rulesets wait to be freed (at the next evaluation, registration or close)."""
    return len(_COLLECTED)


def _delete_rulesets(handles: dict[str, Any], retired: dict[str, int]) -> None:
    """Free the C core's rulesets of an engine (never a ruleset with a retired sid: see the module notes). A state
    left in one never ran an action (those are deleted after their evaluation), so it is not deleted: its action
    context was never set."""
    for name, handle in handles.items():
        if retired.get(name, 0) != 0:
            continue
        try:
            _core.delete_ruleset(handle)
        except Exception:  # noqa: BLE001 - freeing memory must not fail a caller (or the collector)
            pass
    handles.clear()


def _for_durable(rulesets: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rulesets as durable_rules' Host may keep and change them: registering a ruleset deletes
    each rule's ``run`` and changes nothing else, so each rule is copied (not the tests inside it); a
    statechart or flowchart (``$state``, ``$flow`` in its name, which an id never holds) is
    rewritten whole, so it would be copied whole."""
    if any("$" in name for name in rulesets):
        return copy.deepcopy(rulesets)
    return {name: {rule: dict(body) for rule, body in ruleset.items()} for name, ruleset in rulesets.items()}


def _register(host: _Host, compiled: CompiledPathway, names: Collection[str] | None = None) -> dict[str, Any]:
    """Register the rulesets of ``compiled`` (those of ``names`` only, when given) on ``host`` one at a time; their
    handles (the caller holds ``_CORE``).

    A ruleset durable_rules refuses (an error code of its C core) raises :class:`EngineLimitError` (PW306) once
    every ruleset was tried; the rulesets registered are freed first, so nothing stays in the core.
    """
    handles: dict[str, Any] = {}
    refused: dict[str, str] = {}
    chosen = compiled.rulesets if names is None else {n: r for n, r in compiled.rulesets.items() if n in names}
    try:
        for name, ruleset in _for_durable(chosen).items():
            try:
                host.set_rulesets({name: ruleset})
            except PathwayError:
                raise
            except Exception as exc:  # noqa: BLE001 - durable_rules_engine.error, or its Python layer's own
                refused[name] = str(exc) or type(exc).__name__
                continue
            handles[name] = host.get_ruleset(name)._handle
    except BaseException:
        _delete_rulesets(handles, {})
        raise
    if refused:
        _delete_rulesets(handles, {})
        raise EngineLimitError(_refusals(compiled, refused))
    return handles


def check_registration(compiled: CompiledPathway, names: Collection[str]) -> None:
    """Register the rulesets ``names`` of ``compiled`` on a host of their own and free them again: durable_rules takes
    them, or :class:`EngineLimitError` (PW306) says where it refuses (``pathway validate`` checks each profile's own
    rulesets so, without keeping an engine for it)."""
    with _CORE:
        _free_collected()
        _delete_rulesets(_register(_Host(compiled.bindings), compiled, names), {})


def _register_taken(host: _Host, compiled: CompiledPathway) -> dict[str, Any]:
    """Register every ruleset of ``compiled``, which durable_rules took before (an engine that registers on first
    use, see :class:`Engine`); their handles. A refusal all the same raises :class:`EngineError` naming the rules,
    and frees those registered (the caller holds ``_CORE``)."""
    try:
        return _register(host, compiled)
    except EngineLimitError as exc:
        found = "; ".join(d.message for d in exc.diagnostics)
        raise EngineError(f"durable_rules refused a ruleset it took before under these rules: {found}") from None


def _refused_alone(name: str, ruleset: dict[str, Any]) -> dict[str, str]:
    """The rules of a ruleset that durable_rules refuses when each is registered alone (and why); each one it
    takes is freed at once."""
    refused: dict[str, str] = {}
    for rule_name, body in ruleset.items():
        text = json.dumps({rule_name: {k: v for k, v in body.items() if k != "run"}}, ensure_ascii=False)
        try:
            handle = _core.create_ruleset(f"{name}#alone", text)
        except Exception as exc:  # noqa: BLE001 - durable_rules_engine.error
            refused[rule_name] = str(exc) or type(exc).__name__
        else:
            _core.delete_ruleset(handle)
    return refused


def _refusals(compiled: CompiledPathway, refused: dict[str, str]) -> list[Diagnostic]:
    """PW306 for each refused ruleset: at each pathway rule whose engine rules durable_rules refuses alone, or,
    when it takes every rule alone, at pathway.yaml naming the state and the rules of the ruleset."""
    state_of = {name: state for state, names in compiled.state_rulesets.items() for name in names}
    diags: list[Diagnostic] = []
    for name, error in refused.items():
        state = state_of.get(name, "?")
        alone: dict[str, tuple[Rule, str, str]] = {}
        for engine_rule, why in _refused_alone(name, compiled.rulesets[name]).items():
            rule = compiled.bindings[engine_rule].rule
            alone.setdefault(rule.id, (rule, engine_rule, why))
        for rule, engine_rule, why in alone.values():
            diags.append(Diagnostic(rule.file, rule.line, rule.col, "PW306",
                                    f"rule '{rule.id}' of state '{state}' was refused by durable_rules when the "
                                    f"pathway was loaded (engine rule '{engine_rule}': {why}); no check of the "
                                    "compiler foresaw it: simplify or split the rule"))
        if not alone:
            rules = ", ".join(dict.fromkeys(compiled.bindings[r].rule.id for r in compiled.rulesets[name]))
            diags.append(Diagnostic(str(compiled.definition.root / "pathway.yaml"), 1, 1, "PW306",
                                    f"state '{state}': durable_rules refused its ruleset '{name}' when the pathway "
                                    f"was loaded ({error}), though it takes each of its rules alone; the rules of "
                                    f"that ruleset: {rules}; split the state"))
    return diags


class Engine:
    """Evaluates one state's rules on one snapshot at a time, with real forward chaining.

    Rulesets are registered through durable_rules' Host; evaluation talks to its C core
    (``durable_rules_engine``, the module the Host itself uses): assert the snapshot, then
    take each activated action in the engine's agenda order, run the generic handler bound
    to its rule name, and complete it, until the agenda is empty. Our handlers never change
    durable's session state, so the Host's per-action state round trip is skipped.
    """

    def __init__(self, compiled: CompiledPathway, *, on_first_use: bool = False):
        self.compiled = compiled
        self._lock = threading.Lock()
        self._host = _Host(compiled.bindings)
        #: each ruleset's handle in the C core; with ``on_first_use`` (rulesets durable_rules took before, in a
        #: process of this code: Pathway knows it from the cache of loaded pathways) they are all registered at the
        #: first evaluation, so a start that evaluates nothing (``pathway validate``) registers none. All at once,
        #: never a state's rulesets when a patient first reaches it: see the module notes
        self._handles: dict[str, Any] = {}
        if not on_first_use:
            with _CORE:
                _free_collected()
                self._handles.update(_register(self._host, compiled))
        self._sids: dict[str, int] = {name: 0 for name in compiled.rulesets}
        # Queues the rulesets for freeing when this engine is closed or collected (freed at once by close, else at
        # the next safe point: _free_collected); it holds the handles (the engine's own dict: a ruleset registered
        # later is freed too) and the sid counters (never the engine), so it does not keep the engine alive.
        self._release_rulesets = weakref.finalize(self, _collected, self._handles, self._sids)
        self._release_rulesets.atexit = False  # the process frees everything at exit anyway
        self._fields = {name: b.fields for name, b in compiled.bindings.items()}
        # The effects an action must apply inside the engine (derived facts and scores).
        self._chaining = {name: tuple(e for e in b.rule.effects(b.branch) if isinstance(e, (Derive, Score)))
                          for name, b in compiled.bindings.items()}
        #: per engine rule name, what a firing of it needs: (rule id, branch), the fields it matched
        #: (name, derived?), its effects, the effects applied inside the engine, and its binding
        self._actions = {name: ((b.rule.id, b.branch), self._fields[name], b.rule.effects(b.branch),
                                self._chaining[name], b)
                         for name, b in compiled.bindings.items()}
        # Each ruleset is sent only the case fields its rules test: smaller messages to encode,
        # parse and carry through every activation.
        self._tested: dict[str, frozenset[str]] = {
            name: frozenset(f for rule in ruleset for f, is_derived in self._fields[rule] if not is_derived)
            for name, ruleset in compiled.rulesets.items()
        }
        # The derived facts each ruleset's rules test (kept facts are asserted only where tested).
        self._tested_derived: dict[str, frozenset[str]] = {
            name: frozenset(f for rule in ruleset for f, is_derived in self._fields[rule] if is_derived)
            for name, ruleset in compiled.rulesets.items()
        }
        self._rules = {r.id: r for r in compiled.definition.rules}
        # Each engine rule fires at most once per evaluation (refraction), so an agenda that offers far more
        # activations than a ruleset has rules is not settling: the evaluation stops with an error.
        self._activation_bound = {name: ACTIVATIONS_PER_RULE * (len(rules) + 8) for name, rules in compiled.rulesets.items()}
        self._derived_names = frozenset(compiled.definition.spec.derived)
        #: (name, type, value, sid) -> the derived-fact message's text (see _derived_text)
        self._derived_texts: dict[tuple[str, type, Any, str], str] = {}
        self._asking_in: dict[str, tuple[tuple[Rule, tuple[str, ...]], ...]] = {}
        self.retired_sids = 0
        self.evaluations = 0

    @property
    def registered(self) -> list[str]:
        """The rulesets registered in durable_rules' core now (all of them, unless they are registered on first use)."""
        return sorted(self._handles)

    @property
    def closed(self) -> bool:
        return not self._release_rulesets.alive

    def close(self) -> None:
        """Delete this engine's rulesets from durable_rules' core (idempotent); evaluating afterwards
        raises :class:`EngineError`."""
        with self._lock, _CORE:
            self._release_rulesets()
            _free_collected()

    # -- evaluation --------------------------------------------------------------------
    def evaluate(self, state: str, snapshot: dict[str, Any],
                 frozen: dict[str, Any] | None = None) -> tuple[list[Firing], dict[str, Any]]:
        """Run the rules of ``state`` on ``snapshot``; return the firings and the derived facts.

        ``frozen``: facts kept by decision points whose window has passed; they are asserted as
        derived-fact messages before any rule fires (so the rules testing them join as usual), and
        are part of the derived facts returned. The rules that derive them are due only inside
        their window, so they never fire beside a kept value.
        """
        names = self.compiled.state_rulesets.get(state)
        if not names:
            return [], dict(frozen or {})
        firings: list[Firing] = []
        derived: dict[str, Any] = dict(frozen or {})
        errors: list[str] = []
        with self._lock, _CORE:
            if self.closed:
                raise EngineError("this pathway was closed (its engine rulesets are deleted); load it again")
            _free_collected()  # a safe point: no engine is inside an evaluation
            self.evaluations += 1
            for ruleset in names:  # groups share no derived fact (see compile._components)
                ctx = self._run_one(ruleset, snapshot, frozen or {})
                firings.extend(ctx.firings)
                derived.update(ctx.derived)
                errors.extend(ctx.errors)
        if errors:
            raise EngineError(f"evaluation of state '{state}' failed; nothing was applied: " + "; ".join(errors))
        return self._with_waiting(state, snapshot, firings, derived), derived

    def _with_waiting(self, state: str, snapshot: dict[str, Any], firings: list[Firing],
                      derived: dict[str, Any]) -> list[Firing]:
        """Add the rules that are due but took no branch and are waiting for data (see
        :mod:`pathway.definition.waiting`), and set what every waiting rule lists as missing."""
        known = {k: v for k, v in snapshot.items() if v is not None}
        known.update(derived)
        names = self._derived_names
        fired = {f.rule for f in firings}
        for f in firings:
            if f.branch == "missing":
                f.missing = waiting_for(self._rules[f.rule], known, names)
        for rule, tested in self._asking(state):
            if rule.id in fired or C.evaluate(rule.due, known) is not True:
                continue
            missing = waiting_for(rule, known, names)
            if missing:
                facts = {name: known.get(name) for name in tested}
                firings.append(Firing(rule.id, "missing", facts, (), missing))
        return firings

    def _asking(self, state: str) -> tuple[tuple[Rule, tuple[str, ...]], ...]:
        """The rules of ``state`` that list missing data while they wait, each with the fields it tests
        (worked out once per state)."""
        asking = self._asking_in.get(state)
        if asking is None:
            asking = self._asking_in[state] = tuple(
                (rule, tuple(dict.fromkeys([c.field for c in C.fields_of(rule.when)] + list(rule.requires))))
                for rule in self.compiled.definition.rules_in(state) if asks_for_data(rule))
        return asking

    def _derived_text(self, name: str, value: Any, sid: str) -> str:
        """The text of a derived-fact message, encoded once per name, value and sid."""
        key = (name, type(value), value, sid)
        text = self._derived_texts.get(key)
        if text is None:
            if len(self._derived_texts) >= _DERIVED_TEXTS:
                self._derived_texts.clear()
            text = self._derived_texts[key] = message_text({"_k": "derived", "name": name, "value": value, "sid": sid})
        return text

    def _assert(self, ctx: _Context, handle: Any, message: dict[str, Any] | str) -> Any:
        """Assert one message (a dict, or its text); return durable's state handle, or None when no rule
        matched it."""
        text = message if isinstance(message, str) else message_text(message)
        result = _core.assert_fact(handle, text)
        if result[0] == 1:  # MessageNotHandled: no rule matched; the message was not stored
            return None
        ctx.asserted.append(text)  # the same text retracts it (durable matches messages by content)
        return result[1]

    def _run_one(self, ruleset: str, snapshot: dict[str, Any], frozen: dict[str, Any]) -> _Context:
        sid = f"{self._sids[ruleset]}"
        handle = self._handles.get(ruleset)
        if handle is None:  # the first evaluation of an engine that registers on first use (the caller holds _CORE)
            self._handles.update(_register_taken(self._host, self.compiled))
            handle = self._handles[ruleset]
        tested = self._tested[ruleset]
        fact = {k: v for k, v in snapshot.items() if v is not None and k in tested}
        fact["_k"] = "case"
        fact["sid"] = sid
        ctx = _Context(sid, ruleset, fact)
        try:
            state_handle = self._assert(ctx, handle, fact)
            for name in sorted(frozen):
                if name not in self._tested_derived[ruleset]:
                    continue
                ctx.derived[name] = frozen[name]
                kept = self._assert(ctx, handle, self._derived_text(name, frozen[name], sid))
                state_handle = state_handle if state_handle is not None else kept
            if state_handle is not None:
                started = _core.start_action_for_state(handle, state_handle)
                pending = started[1] if started else None
                ctx.acted = bool(pending)
                left = self._activation_bound[ruleset]
                while pending:
                    left -= 1
                    if left < 0:
                        ctx.errors.append(f"ruleset '{ruleset}' did not settle: more than {self._activation_bound[ruleset]} "
                                          "activations in one evaluation")
                        ctx.broken = True
                        break
                    name = _action_name(pending)
                    try:
                        self._fire(ctx, handle, name)
                    except Exception as exc:  # noqa: BLE001 - reported after the engine is quiet
                        binding = self.compiled.bindings.get(name)
                        rule = binding.rule.id if binding else name
                        ctx.errors.append(f"rule '{rule}' ({binding.branch if binding else '?'}): {type(exc).__name__}: {exc}")
                    pending = _core.complete_and_start_action(handle, state_handle)
        except Exception as exc:  # noqa: BLE001
            ctx.errors.append(f"engine failure in ruleset '{ruleset}': {type(exc).__name__}: {exc}")
            ctx.broken = True
        finally:
            self._release(ctx, handle)
        return ctx

    def _fire(self, ctx: _Context, handle: Any, name: str) -> None:
        key, fields, effects, chaining, binding = self._actions[name]
        if key in ctx.fired:  # refraction: one firing per rule and branch per evaluation
            return
        ctx.fired.add(key)
        rule_id = key[0]
        # The matched messages are the snapshot and derived facts this evaluation asserted
        # itself, so they are read from the context rather than parsed back from the engine.
        snapshot = ctx.snapshot
        derived = ctx.derived
        facts = {f: (derived.get(f) if is_derived else snapshot.get(f)) for f, is_derived in fields}
        # what a 'missing' firing waits for is set once the engine is quiet (see _with_waiting)
        ctx.firings.append(Firing(rule_id, key[1], facts, effects, (), binding))
        for effect in chaining:
            if isinstance(effect, Derive):
                for fact_name, value in effect.values.items():
                    self._derive(ctx, handle, rule_id, fact_name, value)
            elif isinstance(effect, Score):
                value = compute_score(effect, snapshot)
                facts[effect.name] = value
                self._derive(ctx, handle, rule_id, effect.name, value)

    def _derive(self, ctx: _Context, handle: Any, rule_id: str, name: str, value: Any) -> None:
        if name in ctx.derived:
            if ctx.derived[name] != value:
                ctx.errors.append(
                    f"rule '{rule_id}' derives {name} = {value!r}, but it was already derived as {ctx.derived[name]!r}"
                )
            return
        ctx.derived[name] = value
        # Asserted into the same engine session: activates the rules that test this fact,
        # whose actions join the agenda of the running evaluation (forward chaining). A fact no
        # rule of the ruleset tests would match nothing (durable would not store it): not sent.
        if name in self._tested_derived[ctx.ruleset]:
            self._assert(ctx, handle, self._derived_text(name, value, ctx.sid))

    def _release(self, ctx: _Context, handle: Any) -> None:
        """Leave the sid empty for the next evaluation: its state deleted whole where an action ran on it, else
        everything this evaluation asserted retracted and the sid checked empty (see the module notes); a sid that
        cannot be left so is retired, never touched again."""
        if ctx.broken:  # an action may be left started, or a core call failed half way: the state is not touched
            self._retire(ctx)
            return
        if ctx.acted:  # durable_rules' retraction is unsafe on it: the state is deleted, and made afresh next time
            try:
                _core.delete_state(handle, ctx.sid)
            except Exception:  # noqa: BLE001
                self._retire(ctx)
            return
        clean = True
        if ctx.asserted:
            try:
                result = _core.retract_facts(handle, "[" + ",".join(reversed(ctx.asserted)) + "]")
                clean = clean and result[0] != 1
            except Exception:  # noqa: BLE001
                clean = False
        if clean:
            try:
                clean = _core.get_facts(handle, ctx.sid) == "[]"
            except Exception:  # noqa: BLE001
                clean = False
        if not clean:
            self._retire(ctx)

    def _retire(self, ctx: _Context) -> None:
        """Never use this sid again (its state is left as it is: deleting it could free what was never set)."""
        self.retired_sids += 1
        self._sids[ctx.ruleset] += 1
        if self.retired_sids > MAX_RETIRED_SIDS:
            raise EngineError("too many engine sessions could not be cleaned; reload the pathway")
