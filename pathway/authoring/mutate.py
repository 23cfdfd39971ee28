"""Threshold mutation testing: does the scenario library notice when a threshold moves?

Each mutant is the pathway with one change a slip of an author's hand could make: a numeric
parameter moved one step up or down (``$oxford_crp_mg_l`` 45 -> 46), or one comparison's
strictness flipped (``crp_mg_l gt 45`` -> ``gte 45``). The scenario library is rerun against
every mutant; a mutant is

- **killed** when a scenario fails (the scenarios pin that threshold down),
- **refused** when the pathway no longer loads (a consistency check of the loader notices it),
- **survived** when every scenario still passes: the threshold could move and nothing would say so;
- **explained** when it survived but ``checks:`` in pathway.yaml explains it (code PW627 with a ``note``
  saying why no scenario can or should notice): ``parameter: P`` alone explains P's one-step mutants;
  ``rule: R`` (or ``state: S`` for a watchdog), optionally with ``parameter: P``, explains the flipped
  comparisons written in that rule (with P).

A scenario that pins a parameter (its own ``parameters:``) keeps the pinned value. Mutants run in
worker processes; each stops at the first scenario that fails, trying first the scenarios that fired
the rules the mutant touches. A worker that dies (a crash loses the mutant it was running) or returns
nothing for ``stall_seconds`` (stuck: a mutant normally takes seconds) stops the workers, and the
mutants not yet reported run again in fresh ones, up to ``MAX_RESTARTS`` times, after which the run
fails and names the mutant it waited for.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pathway.authoring.scenario import LoadedScenario, load_scenarios, run_scenario
from pathway.core.errors import DefinitionError, display_path
from pathway.core.yamlsafe import Located
from pathway.definition.mutation import STRICTNESS_FLIP, Mutation, Site
from pathway.definition.pathway import PathwayDef
from pathway.loading.loader import load_definition, resolve_pathway_dir
from pathway.runtime.api import Pathway

__all__ = ["MutantOutcome", "MutationReport", "mutants", "decision_parameters", "explanation", "run_mutation"]

Status = Literal["killed", "refused", "survived", "explained"]

#: seconds without any mutant reported after which the workers are taken as stuck
STALL_SECONDS = 600.0
#: how many times stuck or dead workers are replaced before the run fails
MAX_RESTARTS = 2
#: seconds between looks for a dead worker while a result is awaited
POLL_SECONDS = 1.0

_T = TypeVar("_T")
_R = TypeVar("_R")


def decision_parameters(definition: PathwayDef) -> set[str]:
    """Parameters a condition compares with (thresholds, days, counts), as opposed to doses, ranks and texts."""
    return {s.param for s in definition.sites if s.param}


def _mutable_sites(definition: PathwayDef) -> list[Site]:
    """Comparison sites of the rules, fields and states (not of the invariants, which scenarios do not run)."""
    skip = set()
    if definition.spec.invariants_file:
        skip.add(display_path(definition.root / definition.spec.invariants_file))
    return [s for s in definition.sites if s.file not in skip and s.op in STRICTNESS_FLIP]


def mutants(definition: PathwayDef, kinds: Iterable[str] = ("parameter", "operator")) -> list[Mutation]:
    """Every threshold mutant of a pathway: each numeric parameter one step each way, each comparison flipped."""
    out: list[Mutation] = []
    if "parameter" in kinds:
        for name, value in definition.params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            out.extend(Mutation("parameter", parameter=name, direction=d) for d in (-1, 1))
    if "operator" in kinds:
        out.extend(Mutation("operator", site=s) for s in _mutable_sites(definition))
    return out


@dataclass
class MutantOutcome:
    mutation: Mutation
    description: str
    status: Status
    #: the scenario that failed (killed), or the loader's first problem (refused)
    by: str = ""
    #: a parameter compared by a condition, or any comparison site
    decision: bool = True
    scenarios_run: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.mutation.id, "kind": self.mutation.kind, "mutation": self.description,
                "status": self.status, "by": self.by, "decision": self.decision, "scenarios_run": self.scenarios_run}


@dataclass
class MutationReport:
    pathway: str
    #: ``PathwayDef.fingerprint()`` of the pathway mutated (default profile): a saved report is stale
    #: once the rule files change
    fingerprint: str = ""
    scenarios: int = 0
    outcomes: list[MutantOutcome] = field(default_factory=list)

    def count(self, status: Status, *, kind: str | None = None, decision: bool | None = None) -> int:
        return len(self.select(status, kind=kind, decision=decision))

    def select(self, status: Status, *, kind: str | None = None, decision: bool | None = None) -> list[MutantOutcome]:
        return [o for o in self.outcomes if o.status == status and (kind is None or o.mutation.kind == kind)
                and (decision is None or o.decision == decision)]

    @property
    def survivors(self) -> list[MutantOutcome]:
        """Survivors nobody has explained (``explained`` ones are listed apart)."""
        return self.select("survived")

    def summary(self) -> str:
        n = len(self.outcomes)
        lines = [f"mutation testing of {self.pathway} against {self.scenarios} scenarios: {n} mutants, "
                 f"{self.count('killed')} killed by a scenario, "
                 f"{self.count('refused')} refused when the pathway loads, {self.count('survived')} survived"
                 + (f", {self.count('explained')} explained in pathway.yaml" if self.count("explained") else "")]
        for kind, label in (("parameter", "parameters (one step each way)"), ("operator", "comparisons (strictness flipped)")):
            total = [o for o in self.outcomes if o.mutation.kind == kind]
            if not total:
                continue
            survived = [o for o in total if o.status == "survived"]
            line = f"  {label}: {len(total)} mutants, {len(survived)} survived"
            if kind == "parameter":
                line += f" ({sum(1 for o in survived if o.decision)} of parameters used in a decision)"
            lines.append(line)
        return "\n".join(lines)

    def text(self) -> str:
        lines = [self.summary()]
        for o in self.select("explained"):
            lines.append(f"  explained: {o.description}: {o.by}")
        if self.survivors:
            lines.append("survivors (no scenario notices the change):")
            for o in self.survivors:
                tag = "" if o.mutation.kind == "operator" or o.decision else "  [not used in a decision]"
                lines.append(f"  {o.description}{tag}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pathway": self.pathway,
            "fingerprint": self.fingerprint,
            "scenarios": self.scenarios,
            "mutants": len(self.outcomes),
            "killed": self.count("killed"),
            "refused": self.count("refused"),
            "survived": self.count("survived"),
            "explained": self.count("explained"),
            "decision_parameter_survivors": self.count("survived", kind="parameter", decision=True),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


# -- running -----------------------------------------------------------------------------------

@dataclass
class _Job:
    root: str
    scenarios: list[LoadedScenario]
    #: scenario index -> the rules it fired unmutated (to try the likeliest scenarios first)
    fired: list[set[str]]
    yaml_cache: dict[str, Located] = field(default_factory=dict)
    base: PathwayDef | None = None


_job: _Job | None = None


def _init(root: str, files: list[str], fired: list[set[str]]) -> None:
    global _job
    scenarios = [ls for f in files for ls in load_scenarios(f)]
    _job = _Job(root, scenarios, fired)


def _touched_rules(definition: PathwayDef, m: Mutation) -> set[str]:
    if m.kind == "parameter":
        return {r.id for r in definition.rules if m.parameter in r.params}
    assert m.site is not None
    best: dict[str, int] = {}
    for r in definition.rules:
        if r.file == m.site.file and r.line <= m.site.line:
            best[r.id] = r.line
    if not best:
        return set()
    line = max(best.values())
    return {rid for rid, ln in best.items() if ln == line}


def explanation(definition: PathwayDef, m: Mutation) -> str | None:
    """The note of a PW627 entry under ``checks:`` that explains a surviving mutant, if any."""
    owner = m.site.owner if m.site is not None else ""
    for entry in definition.spec.checks:
        if entry.code != "PW627" or entry.disable or entry.profile is not None:
            continue
        if m.kind == "parameter":
            if entry.rule is None and entry.state is None and entry.parameter == m.parameter:
                return entry.note
            continue
        assert m.site is not None
        if entry.rule is None and entry.state is None:  # a comparison is explained where it is written
            continue
        if ((entry.rule is None or entry.rule == owner) and (entry.state is None or owner == f"state {entry.state}")
                and (entry.parameter is None or entry.parameter == m.site.param)):
            return entry.note
    return None


def _run_one(m: Mutation) -> MutantOutcome:
    assert _job is not None
    job = _job
    pathways: dict[Any, Pathway] = {}
    ran = 0
    order = list(range(len(job.scenarios)))
    if job.base is None:
        job.base = load_definition(job.root, yaml_cache=job.yaml_cache)
    base = job.base
    description = m.describe(base.params)
    decision = m.kind == "operator" or m.parameter in decision_parameters(base)
    touched = _touched_rules(base, m)
    order.sort(key=lambda i: 0 if job.fired[i] & touched else 1)
    for i in order:
        ls = job.scenarios[i]
        sc = ls.scenario
        name = ls.pathway or job.root
        if Path(resolve_pathway_dir(name)).resolve() != Path(job.root).resolve():
            continue
        key = (str(name), sc.profile, tuple(sorted(sc.parameters.items())))
        if key not in pathways:
            try:
                definition = load_definition(job.root, dict(sc.parameters) or None, sc.profile, mutation=m,
                                             yaml_cache=job.yaml_cache)
            except DefinitionError as exc:
                first = exc.diagnostics[0] if exc.diagnostics else None
                return MutantOutcome(m, description, "refused", str(first) if first else str(exc), decision, ran)
            pathways[key] = Pathway(definition)
        ran += 1
        outcome = run_scenario(ls, name, pathways)
        if not outcome.passed:
            return MutantOutcome(m, description, "killed", f"{sc.id} ({ls.location})", decision, ran)
    note = explanation(base, m)
    if note is not None:
        return MutantOutcome(m, description, "explained", note, decision, ran)
    return MutantOutcome(m, description, "survived", "", decision, ran)


def run_mutation(pathway: str | os.PathLike[str], files: list[Path], *, kinds: Iterable[str] = ("parameter", "operator"),
                 parameters: Iterable[str] | None = None, jobs: int | None = None,
                 progress: Callable[[MutantOutcome], None] | None = None,
                 stall_seconds: float = STALL_SECONDS) -> MutationReport:
    """Run every threshold mutant of ``pathway`` against the scenarios in ``files``.

    ``parameters`` narrows the run to the mutants of those parameters and of the comparisons with them.

    The unmutated library must pass first (a failing scenario would kill every mutant); raise
    ``ValueError`` naming the failures otherwise.
    """
    root = str(resolve_pathway_dir(pathway).resolve())
    scenarios = [ls for f in files for ls in load_scenarios(f)]
    cache: dict[Any, Pathway] = {}
    fired: list[set[str]] = []
    failing: list[str] = []
    for ls in scenarios:
        o = run_scenario(ls, ls.pathway or root, cache)
        fired.append(set(o.rules_fired))
        if not o.passed:
            failing.append(f"{o.id} ({ls.location})")
    if failing:
        raise ValueError("the scenarios must pass before mutation testing; failing: " + ", ".join(failing))
    definition = load_definition(root)
    todo = mutants(definition, kinds)
    if parameters is not None:
        wanted = set(parameters)
        unknown = sorted(wanted - set(definition.params))
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        todo = [m for m in todo if (m.parameter if m.kind == "parameter" else m.site and m.site.param) in wanted]
    report = MutationReport(definition.id, definition.fingerprint(), len(scenarios))
    str_files = [os.fspath(f) for f in files]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    if workers == 1:
        _init(root, str_files, fired)
        results: Iterable[MutantOutcome] = map(_run_one, todo)
        for outcome in results:
            report.outcomes.append(outcome)
            if progress:
                progress(outcome)
        return report
    # A fresh worker every few dozen mutants: each loaded mutant keeps its compiled rulesets in the engine.
    for outcome in pooled(_run_one, todo, workers, _init, (root, str_files, fired), stall_seconds=stall_seconds,
                          describe=lambda m: m.describe(definition.params)):
        report.outcomes.append(outcome)
        if progress:
            progress(outcome)
    return report


class _WatchedPool(multiprocessing.pool.Pool):
    """A pool that keeps every worker process it starts, so that a worker's death can be seen.

    ``multiprocessing.Pool`` replaces a dead worker but loses the task it was running, and its results
    wait for that task for ever; the pool also forgets the dead process, so its exit code is kept here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.started: list[Any] = []
        super().__init__(*args, **kwargs)

    def Process(self, ctx: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # noqa: N802
        # Pool calls self.Process(ctx, ...) to start each worker; bound here to keep what it starts
        process = ctx.Process(*args, **kwargs)
        self.started.append(process)
        return process

    def died(self) -> str | None:
        """How the first worker that exited abnormally ended ("killed by SIGSEGV", "exit status 1"), or None."""
        for process in self.started:
            code = process.exitcode
            if code is not None and code != 0:
                if code < 0:
                    try:
                        return f"killed by {signal.Signals(-code).name}"
                    except ValueError:
                        return f"killed by signal {-code}"
                return f"exit status {code}"
        return None


def pooled(function: Callable[[_T], _R], items: list[_T], workers: int, initializer: Callable[..., None],
           initargs: tuple[Any, ...], *, stall_seconds: float = STALL_SECONDS, restarts: int = MAX_RESTARTS,
           describe: Callable[[_T], str] = repr, tasks_per_child: int = 40,
           poll_seconds: float = POLL_SECONDS) -> Iterable[_R]:
    """``function`` of each item in fresh ``spawn`` worker processes, results in the items' order.

    When a worker dies (a crash loses the item it was running), or no result arrives for ``stall_seconds``,
    the workers are stopped and the items not yet returned run again in new workers; after ``restarts``
    such restarts a RuntimeError names the item waited for and what happened. Deaths are looked for every
    ``poll_seconds`` while a result is awaited."""
    ctx = multiprocessing.get_context("spawn")
    done = 0
    stalls = 0
    while done < len(items):
        rest = items[done:]
        with _WatchedPool(workers, initializer=initializer, initargs=initargs, maxtasksperchild=tasks_per_child,
                          context=ctx) as pool:
            results = pool.imap(function, rest)
            waited_since = time.monotonic()
            while done < len(items):
                try:
                    result = results.next(timeout=poll_seconds)
                except multiprocessing.TimeoutError:
                    died = pool.died()
                    waited = time.monotonic() - waited_since
                    if died is None and waited < stall_seconds:
                        continue
                    stalls += 1
                    if stalls > restarts:
                        what = (f"a worker died ({died}) while running {describe(items[done])} or an item after it"
                                if died else f"no result for {stall_seconds:g} s while running {describe(items[done])}")
                        raise RuntimeError(f"{what} (workers replaced {restarts} times): stopped") from None
                    break
                done += 1
                waited_since = time.monotonic()
                yield result
            # leaving the block stops every worker of this pool, the stuck one included
