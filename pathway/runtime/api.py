"""The public facade: load a pathway, start or resume patient sessions, run a case."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pathway.core.errors import Diagnostic, InputError
from pathway.core.yamlsafe import Located
from pathway.definition import conditions as C
from pathway.definition.case import case_problem
from pathway.definition.clock import PROPOSED_PREFIX, days_since, is_proposed, proposed
from pathway.definition.effects import Derive
from pathway.definition.model import FieldDef, Validity
from pathway.definition.pathway import BUILTIN_NAMES, PathwayDef, Rule
from pathway.definition.timeline import validity
from pathway.loading import stored
from pathway.loading.loader import DEFAULT_PATHWAY, load_definition, resolve_pathway_dir
from pathway.runtime.compile import CompiledPathway, compile_kept
from pathway.runtime.engine import Engine

if TYPE_CHECKING:
    import networkx as nx

    from pathway.runtime.session import Session

__all__ = ["Pathway", "load_pathway", "run_case", "LOAD_CACHE_SIZE"]


class Pathway:
    """A loaded, compiled pathway with its own engine host. Thread-safe; sessions are isolated.

    The engine's rulesets are freed when the pathway is garbage collected (no session or caller
    holds it any more) or at once by :meth:`close`.
    """

    def __init__(self, definition: PathwayDef):
        self.definition = definition
        self.compiled: CompiledPathway = compile_kept(definition, keep=False)
        # Rulesets durable_rules took before (the cache of loaded pathways says so) are registered at the first
        # evaluation; others now, where a refusal is a load error (PW306), and then kept as taken.
        taken = stored.registered_before(definition)
        self.engine = Engine(self.compiled, on_first_use=taken)
        if not taken:
            stored.keep_compiled(definition, self.compiled, registered=True)
        self.builtins = (set(BUILTIN_NAMES) | {"state"} | {days_since(s) for s in definition.spec.states}
                         | {proposed(s) for s in definition.spec.states})
        #: the ``proposed_<state>`` fields some rule tests (false in the snapshots of the states that read one, true
        #: where a rule of the evaluation proposes the move: see session._step), and the states whose rules test one
        #: (the loader refuses a field of a state the pathway does not have)
        read: set[str] = set()
        readers: set[str] = set()
        for r in definition.rules:
            tested = {c.field for cond in (r.due, r.when) for c in C.fields_of(cond) if is_proposed(c.field)}
            if tested:
                read |= tested
                readers.update(r.states)
        self.proposals_read = {name.removeprefix(PROPOSED_PREFIX): name for name in sorted(read)}
        self.reads_proposals = frozenset(readers)
        #: computed fields (``aggregate:`` in fields.yaml), filled by the session from recorded values
        self.aggregates = {n: f for n, f in definition.fields.items() if f is not None and f.aggregate is not None}
        self.builtins |= set(self.aggregates)
        #: the computed fields as (name, aggregate, the field whose recorded values it needs to have any value);
        #: that field is None where it may have one with nothing recorded (``ever`` and ``count`` do, or one with
        #: ``or_else``); the session skips the others, without working out their window, while nothing of that
        #: field is recorded. Fixed by the definition, so sorted out once here: those whose window depends on the
        #: states entered (computed per state, see facts.snapshot), and the others (once per event, values_now)
        specs = [(n, f.aggregate, None if f.aggregate.fn in ("ever", "count") or f.aggregate.or_else is not None
                  else f.aggregate.of) for n, f in self.aggregates.items() if f.aggregate is not None]
        self.state_aggregates = tuple(spec for spec in specs if spec[1].states)
        self.event_aggregates = tuple(spec for spec in specs if not spec[1].states)
        #: display precision of the fields that declare one: texts show their values rounded to it
        self.display = {n: f.display for n, f in definition.fields.items() if f is not None and f.display is not None}
        self._rules = {r.id: r for r in definition.rules}
        #: per decision point, the facts it keeps that a rule of it derives when its inputs are missing
        #: (``if_missing: derive``): (fact, value, rule, the rule's states). When an evaluation comes after
        #: the window and none came inside it, these are what the point would have kept (nothing recorded).
        #: A rule that reads nothing recorded (no ``requires``) and whose ``when`` holds on an empty record
        #: gives its ``then`` derivations too ("unknown" when an item is not recorded): (fact, value, rule,
        #: the rule's states, branch).
        self.missed_defaults: dict[str, list[tuple[str, Any, str, tuple[str, ...], str]]] = {}
        for r in definition.rules:
            if r.decision_point is None:
                continue
            effects = [(eff, "missing") for eff in r.if_missing]
            if not r.requires and C.evaluate(r.when, {}) is True:
                effects += [(eff, "then") for eff in r.then]
            for eff, branch in effects:
                if isinstance(eff, Derive):
                    for name, value in eff.values.items():
                        if definition.kept.get(name) == r.decision_point:
                            self.missed_defaults.setdefault(r.decision_point, []).append(
                                (name, value, r.id, r.states, branch))
        self._order = {r.id: i for i, r in enumerate(definition.rules)}
        #: each field's validity (``timeline.validity``), worked out once: the facts read it at every event
        self.validities = _Validities(definition.fields)
        #: the provisional values of each field that has some (FieldDef.provisional; SessionState.values)
        self.provisional_values: dict[str, tuple[Any, ...]] = {
            name: tuple(definition.fields[name].provisional) for name in sorted(definition.provisional)}
        self._rules_in: dict[str, tuple[Rule, ...]] = {}
        self._producers: dict[str, dict[str, list[str]]] = {}
        #: what this pathway decides with (files, profile, parameters; ``PathwayDef.fingerprint``), taken
        #: once at load: every dump carries it and a restore refuses a session dumped under another
        self.fingerprint: str = definition.fingerprint()

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def version(self) -> str:
        return self.definition.version

    @property
    def graph(self) -> nx.DiGraph:
        return self.definition.graph

    def close(self) -> None:
        """Unload: free the engine's rulesets now and drop the pathway from the load cache.

        Sessions of a closed pathway cannot observe events any more (``EngineError``); their dumps
        restore into a freshly loaded pathway. Closing twice does nothing.
        """
        with _cache_lock:
            for key, entry in list(_cache.items()):
                if entry.pathway is self:
                    del _cache[key]
        self.engine.close()

    @property
    def closed(self) -> bool:
        return self.engine.closed

    def __enter__(self) -> Pathway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rule(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def rule_order(self, rule_id: str) -> int:
        return self._order[rule_id]

    def rules_in(self, state: str) -> tuple[Rule, ...]:
        """The rules of ``state`` in file order (the loaded rules never change: worked out once per state)."""
        rules = self._rules_in.get(state)
        if rules is None:
            rules = self._rules_in[state] = tuple(self.definition.rules_in(state))
        return rules

    def producers_in(self, state: str) -> dict[str, list[str]]:
        """Derived fact -> the rules of ``state`` whose ``then`` or ``otherwise`` derives it (read only)."""
        producers = self._producers.get(state)
        if producers is None:
            producers = {}
            for rule in self.rules_in(state):
                for effect in rule.then + rule.otherwise:
                    if isinstance(effect, Derive):
                        for name in effect.values:
                            producers.setdefault(name, []).append(rule.id)
            self._producers[state] = producers
        return producers

    def start(self, patient: dict[str, Any]) -> Session:
        """Open a session for one patient (``id`` plus patient fields such as ``weight_kg``)."""
        from pathway.runtime.session import start_session  # on first use: loading or validating opens none

        return start_session(self, patient)

    def restore(self, doc: dict[str, Any], *, replay: bool = False) -> Session:
        """Resume a session from :meth:`Session.dump` output.

        Nothing in the document is trusted that its events do not produce: it must be of this pathway,
        version, profile and fingerprint (rule files and parameters), its recorded patient and events are
        replayed through the engine, and every recorded state, path, trace, fact and derived value must be
        what the replay gives. Anything else raises SessionError naming the key; the session returned is
        the replay's.

        With ``replay=True`` a document dumped under another version, profile or rule files is replayed
        under this pathway instead of refused, and the session's ``migration`` lists the differences
        (state, path, recommendations, alerts, proposals, data requests and options) between what the
        patient showed under the old rules and what these give; the replay is kept in ``revisions``.
        """
        from pathway.runtime.restore import restore  # its document models are built on first use

        return restore(self, doc, replay=replay)

    def replay(self, doc: dict[str, Any]) -> Session:
        """A new session from the patient and events recorded in a session document, run under this
        pathway whatever version, profile or rule files it was dumped under (to move a session to new rules
        deliberately); SessionError when its patient or events are refused."""
        from pathway.runtime.restore import replay

        return replay(self, doc)

    def run_course(self, case: dict[str, Any], doc: Located | None = None) -> tuple[Session, list[dict[str, Any]]]:
        """Run a whole case (``patient`` and ``events``) through a fresh session: the session and
        the result after each event.

        An InputError names the refused event (``.event``); with ``doc`` (the case file it was
        read from) its diagnostics point at the line and column of the bad value.
        """
        return self._course(case, doc, results=True)

    def _course(self, case: dict[str, Any], doc: Located | None, results: bool) -> tuple[Session, list[dict[str, Any]]]:
        problem = case_problem(case)
        if problem is not None:
            path, code, message = problem
            raise InputError([Diagnostic(".".join(("case", *path)), 0, 0, code, message)])
        index: int | None = None
        out: list[dict[str, Any]] = []
        try:
            session = self.start(case["patient"])
            for i, event in enumerate(case["events"]):
                index = i  # names the refused event in the handler below
                if results:
                    out.append(session.observe(event))
                else:  # the same evaluation; no result is built for the events before the last
                    session.receive(event)
        except InputError as exc:
            located = InputError(doc.locate(exc.diagnostics)) if doc is not None else exc
            located.event = index
            raise located from None
        return session, out

    def start_fhir(self, data: Any, *, doc: Located | None = None,
                   patient_id: str | None = None) -> tuple[Session, dict[str, Any]]:
        """A new session from a FHIR R4 Bundle (Patient, Encounter, Observations, orders; see
        :mod:`pathway.runtime.fhir`): the session and the result, with the ``fhir`` report of what was
        applied, recognised as a duplicate, withdrawn or ignored. ``patient_id``: the patient the data must
        be of (a resource of another one is refused, PW434, and nothing is recorded). Feed later resources
        with :func:`pathway.observe_fhir`."""
        from pathway.runtime.fhir import start_fhir  # loads fhir.resources on first use
        return start_fhir(self, data, doc=doc, patient_id=patient_id)

    def run_fhir(self, data: Any) -> dict[str, Any]:
        """Run a FHIR R4 Bundle of a whole course; return the final result (with its ``fhir`` report)."""
        return self.start_fhir(data)[1]

    def run_case(self, case: dict[str, Any]) -> dict[str, Any]:
        """Run a whole case (``patient`` and ``events``); return the final result."""
        session, _ = self._course(case, None, results=False)
        return session.result()


class _Validities(dict[str, Validity]):
    """Field -> its validity, filled on first use (the fields of a loaded pathway never change)."""

    def __init__(self, fields: dict[str, FieldDef]):
        super().__init__()
        self._fields = fields

    def __missing__(self, name: str) -> Validity:
        value = self[name] = validity(self._fields[name])
        return value


@dataclass(frozen=True)
class _Cached:
    pathway: Pathway
    files: tuple[str, ...]  # every file the load read (rule files in sub-folders and the profile included)
    digest: str


#: Loaded pathways kept for reuse by :func:`load_pathway`, least recently used dropped first. Each
#: holds a compiled engine (about 5 MB for the ASUC pathway), so the cache stays under ~40 MB
#: however many folders, profiles and parameter overrides a process loads.
LOAD_CACHE_SIZE = 8

_cache: OrderedDict[tuple[Any, ...], _Cached] = OrderedDict()
_cache_lock = threading.RLock()


def _digest(files: tuple[str, ...]) -> str:
    """A hash of the names and contents of ``files`` (a missing file hashes as missing)."""
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode("utf-8", "surrogateescape") + b"\0")
        try:
            h.update(Path(name).read_bytes())
        except OSError:
            h.update(b"\0missing\0")
        h.update(b"\0")
    return h.hexdigest()


def load_pathway(name_or_path: str | os.PathLike[str] = DEFAULT_PATHWAY, *, profile: str | None = None,
                 parameters: dict[str, Any] | None = None, cache: bool = True) -> Pathway:
    """Load a pathway by name (``"asuc"``) or folder path, under a site profile, optionally overriding parameters.

    Loaded pathways are cached per folder, profile and overrides, and reused while the contents of
    every file the load read are unchanged, so repeated loads reuse one engine host instead of
    registering new rulesets. The cache keeps the :data:`LOAD_CACHE_SIZE` most recently used
    pathways; one that is replaced (its files changed) or dropped is freed, its engine rulesets
    included, once no caller or session holds it, so a reload loop stays flat.
    """
    root = resolve_pathway_dir(name_or_path).resolve()
    key = (str(root), profile, tuple(sorted((parameters or {}).items())))
    with _cache_lock:
        entry = _cache.get(key) if cache else None
        if entry is not None and _digest(entry.files) == entry.digest and not entry.pathway.closed:
            _cache.move_to_end(key)
            return entry.pathway
        if entry is not None:
            del _cache[key]  # stale: dropped before the new load, so the two are never both cached
            entry = None
        definition = load_definition(root, parameters, profile)
        pathway = Pathway(definition)
        if cache:
            files = tuple(definition.files)
            _cache[key] = _Cached(pathway, files, _digest(files))
            while len(_cache) > LOAD_CACHE_SIZE:
                _cache.popitem(last=False)
        return pathway


def run_case(case: dict[str, Any], pathway: str | os.PathLike[str] = DEFAULT_PATHWAY) -> dict[str, Any]:
    return load_pathway(pathway).run_case(case)
