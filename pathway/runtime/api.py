"""The public facade: load a pathway, start or resume patient sessions, run a case."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import networkx as nx

from pathway.runtime.compile import CompiledPathway, compile_pathway
from pathway.runtime.engine import Engine
from pathway.core.errors import Diagnostic, InputError
from pathway.core.yamlsafe import Located
from pathway.definition.case import case_problem
from pathway.definition.pathway import BUILTIN_FIELDS, PathwayDef, Rule
from pathway.loading.loader import load_definition, resolve_pathway_dir
from pathway.runtime.session import Session, start_session
from pathway.definition.clock import days_since

__all__ = ["Pathway", "load_pathway", "run_case"]


class Pathway:
    """A loaded, compiled pathway with its own engine host. Thread-safe; sessions are isolated."""

    def __init__(self, definition: PathwayDef):
        self.definition = definition
        self.compiled: CompiledPathway = compile_pathway(definition)
        self.engine = Engine(self.compiled)
        self.builtins = set(BUILTIN_FIELDS) | {"state"} | {days_since(s) for s in definition.spec.states}
        #: computed fields (``aggregate:`` in fields.yaml), filled by the session from recorded values
        self.aggregates = {n: f for n, f in definition.fields.items() if f is not None and f.aggregate is not None}
        self.builtins |= set(self.aggregates)
        self._rules = {r.id: r for r in definition.rules}
        self._order = {r.id: i for i, r in enumerate(definition.rules)}

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def version(self) -> str:
        return self.definition.version

    @property
    def graph(self) -> nx.DiGraph:
        return self.definition.graph

    def rule(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def rule_order(self, rule_id: str) -> int:
        return self._order[rule_id]

    def start(self, patient: dict[str, Any]) -> Session:
        """Open a session for one patient (``id`` plus patient fields such as ``weight_kg``)."""
        return start_session(self, patient)

    def restore(self, doc: dict[str, Any]) -> Session:
        """Resume a session from :meth:`Session.dump` output."""
        return Session.load(self, doc)

    def run_course(self, case: dict[str, Any], doc: Located | None = None) -> tuple[Session, list[dict[str, Any]]]:
        """Run a whole case (``patient`` and ``events``) through a fresh session: the session and
        the result after each event.

        An InputError names the refused event (``.event``); with ``doc`` (the case file it was
        read from) its diagnostics point at the line and column of the bad value.
        """
        problem = case_problem(case)
        if problem is not None:
            path, code, message = problem
            raise InputError([Diagnostic(".".join(("case", *path)), 0, 0, code, message)])
        index: int | None = None
        try:
            session = self.start(case["patient"])
            results = []
            for index, event in enumerate(case["events"]):
                results.append(session.observe(event))
        except InputError as exc:
            located = InputError(doc.locate(exc.diagnostics)) if doc is not None else exc
            located.event = index
            raise located from None
        return session, results

    def run_case(self, case: dict[str, Any]) -> dict[str, Any]:
        """Run a whole case (``patient`` and ``events``); return the final result."""
        session, _ = self.run_course(case)
        return session.result()


_cache: dict[tuple[Any, ...], Pathway] = {}
_cache_lock = threading.Lock()


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    files = [*root.glob("*.yaml"), *root.glob("profiles/*.yaml")]
    return tuple(sorted((str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size) for p in files))


def load_pathway(name_or_path: str | os.PathLike[str] = "asuc", *, profile: str | None = None,
                 parameters: dict[str, Any] | None = None, cache: bool = True) -> Pathway:
    """Load a pathway by name (``"asuc"``) or folder path, under a site profile, optionally overriding parameters.

    Loaded pathways are cached per folder, file state and overrides, so repeated loads reuse
    one engine host instead of registering new rulesets.
    """
    root = resolve_pathway_dir(name_or_path).resolve()
    key = (str(root), _signature(root), profile, tuple(sorted((parameters or {}).items())))
    with _cache_lock:
        if cache and key in _cache:
            return _cache[key]
        pathway = Pathway(load_definition(root, parameters, profile))
        if cache:
            _cache[key] = pathway
        return pathway


def run_case(case: dict[str, Any], pathway: str | os.PathLike[str] = "asuc") -> dict[str, Any]:
    return load_pathway(pathway).run_case(case)
