"""Scenario files: cases with the outcome an author expects, run as tests.

A scenario file (YAML) holds one or more scenarios::

    scenarios:
      - id: tac_start_dose_72kg
        purpose: Tacrolimus starts at 0.05 mg/kg/day in two doses, rounded to 0.5 mg
        profile: default            # optional site profile
        parameters: {}              # optional parameter overrides
        case:
          patient: {id: s1, weight_kg: 72}
          events: [{day: 0, bloody_stools_24h: 9, pulse_bpm: 104}, ...]
        expect:
          state: rescue_tacrolimus
          path: [suspected_asuc, iv_steroids, rescue_selection, rescue_tacrolimus]
          recommendations:
            present: [{rule: tac_start_dose}, {kind: monitoring}]
            absent: [{rule: tac_trough_low}]
          doses: [{name: tacrolimus, dose_mg: 2, times_per_day: 2}]
          data_required: [weight_kg]

Expectations (all optional): ``state``, ``path`` (exact), ``path_contains`` (in order),
``recommendations``/``alerts``/``options`` with ``present``/``absent`` matchers,
``doses`` (each ``name`` with ``dose_mg``/``daily_mg``/``times_per_day``/``route``, for a scheduled
infusion ``administration_days``/``next_day``,
``tolerance`` in mg), ``data_required`` (exactly these fields), ``data_required_includes``,
``data_required_excludes``,
``derived`` (fact: value), ``computed`` (computed input: ``value``, ``source`` derived or recorded,
``inputs``), ``frozen`` (kept decision fact: value), ``recheck`` (fields listed as rechecks of expired
values), ``fired`` / ``not_fired`` (rule ids anywhere in the trace), and
``refused`` (``code``, optional ``event`` index) for cases that must be rejected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pathway.core.errors import DefinitionError, Diagnostic, InputError, PathwayError, display_path, suggest
from pathway.core.yamlsafe import Located, YamlProblem, load_yaml_file, validation_diagnostics
from pathway.runtime.api import Pathway, load_pathway

__all__ = [
    "Matcher",
    "DoseExpectation",
    "ComputedExpectation",
    "Expectation",
    "Scenario",
    "ScenarioFile",
    "ScenarioOutcome",
    "load_scenarios",
    "is_scenario_file",
    "run_scenario",
    "run_scenarios",
    "Coverage",
    "discover",
]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matcher(_M):
    """Matches a recommendation, alert or option when every given key matches."""

    rule: str | None = Field(default=None, description="the rule that gave the item (options: one of the rules that "
                                                          "made the option, its reasons for and against included)")
    kind: str | None = None
    medication: str | None = Field(default=None, description="medication name (recommendations)")
    level: str | None = None
    option: str | None = None
    to: str | None = Field(default=None, description="the proposed state (proposals)")
    available: bool | None = None
    status: Literal["available", "caution", "pending", "unavailable"] | None = Field(
        default=None, description="option status (options)")
    rank: float | None = Field(default=None, description="option rank (options; a lower rank is listed first)")
    text_contains: str | None = None


class MatchList(_M):
    present: list[Matcher] = Field(default_factory=list)
    absent: list[Matcher] = Field(default_factory=list)


class DoseExpectation(_M):
    name: str
    dose_mg: float | None = None
    daily_mg: float | None = None
    times_per_day: float | None = None
    route: str | None = None
    tolerance: float = 0.0
    administration_days: list[float] | None = Field(
        default=None, description="a scheduled infusion: the days of the admission it is given on")
    next_day: float | None = Field(default=None, description="a scheduled infusion: the next day it is due")


class ComputedExpectation(_M):
    """A computed input at the end of the case: its value, whether it was recorded or derived, and from which inputs."""

    value: bool | None = None
    source: Literal["derived", "recorded"] | None = None
    inputs: list[str] | None = Field(default=None, description="the input fields the derivation used (any order)")


class Refusal(_M):
    code: str
    event: int | None = None
    message_contains: str | None = None


class Expectation(_M):
    state: str | None = None
    path: list[str] | None = None
    path_contains: list[str] | None = None
    recommendations: MatchList | None = None
    alerts: MatchList | None = None
    options: MatchList | None = None
    proposals: MatchList | None = None
    doses: list[DoseExpectation] = Field(default_factory=list)
    data_required: list[str] | None = None
    data_required_includes: list[str] = Field(default_factory=list)
    data_required_excludes: list[str] = Field(default_factory=list)
    derived: dict[str, bool | float | int | str] = Field(default_factory=dict)
    computed: dict[str, ComputedExpectation] = Field(default_factory=dict)
    frozen: dict[str, bool | float | int | str] = Field(
        default_factory=dict, description="kept decision facts (the result's 'frozen') -> value")
    recheck: list[str] = Field(
        default_factory=list, description="fields listed under data_required as a recheck of an expired value")
    fired: list[str] = Field(default_factory=list)
    not_fired: list[str] = Field(default_factory=list)
    refused: Refusal | None = None


class CaseModel(_M):
    patient: dict[str, Any]
    events: list[dict[str, Any]]


class Scenario(_M):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    purpose: str = Field(min_length=1)
    profile: str | None = None
    parameters: dict[str, float | int | bool | str] = Field(default_factory=dict)
    case: CaseModel
    expect: Expectation


class ScenarioFile(_M):
    pathway: str | None = None
    scenarios: list[Scenario] = Field(min_length=1)


@dataclass
class LoadedScenario:
    scenario: Scenario
    file: str
    line: int
    doc: Located
    index: int
    pathway: str | None

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def pos(self, *path: Any) -> int:
        return self.doc.pos(("scenarios", self.index) + tuple(path))[0]


@dataclass
class ScenarioOutcome:
    scenario: LoadedScenario
    passed: bool
    failures: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    rules_fired: set[str] = field(default_factory=set)
    edges_taken: set[tuple[str, str]] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.scenario.scenario.id

    def report(self) -> str:
        """Readable expected-vs-actual, each line naming the scenario file and line."""
        return "\n".join(self.failures)


def load_scenarios(path: str | os.PathLike[str]) -> list[LoadedScenario]:
    """Parse and validate one scenario file; raise DefinitionError with located problems."""
    shown = display_path(path)
    try:
        doc = load_yaml_file(os.fspath(path), shown)
    except YamlProblem as exc:
        raise DefinitionError([exc.diagnostic]) from None
    if not isinstance(doc.data, dict):
        raise DefinitionError([doc.diag((), "PW112", "a scenario file holds a mapping with 'scenarios'")])
    try:
        parsed = ScenarioFile.model_validate(doc.data)
    except ValidationError as exc:
        raise DefinitionError(validation_diagnostics(doc, (), exc, ScenarioFile)) from None
    seen: dict[str, int] = {}
    problems: list[Diagnostic] = []
    out = []
    for i, sc in enumerate(parsed.scenarios):
        line = doc.pos(("scenarios", i))[0]
        if sc.id in seen:
            problems.append(doc.diag(("scenarios", i, "id"), "PW205",
                                     f"duplicate scenario id '{sc.id}' (first at line {seen[sc.id]})"))
        seen[sc.id] = line
        out.append(LoadedScenario(sc, shown, line, doc, i, parsed.pathway))
    if problems:
        raise DefinitionError(problems)
    return out


def discover(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Scenario files among ``paths`` (folders are searched for ``*.yaml`` holding ``scenarios:``)."""
    files: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*.yaml")):
                if is_scenario_file(f):
                    files.append(f)
        else:
            files.append(p)
    return files


def is_scenario_file(path: Path) -> bool:
    """Whether a YAML file holds scenarios (a line starting with ``scenarios:``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return any(line.startswith("scenarios:") for line in fh)
    except (OSError, UnicodeDecodeError):
        return False


def _matches(item: dict[str, Any], m: Matcher) -> bool:
    rules = item.get("rules")
    if m.rule is not None and "rule" not in item and isinstance(rules, list):  # an option: the rules that made it
        if m.rule not in rules:
            return False
        m = m.model_copy(update={"rule": None})
    checks = {
        "rule": item.get("rule"),
        "kind": item.get("kind"),
        "medication": (item.get("medication") or {}).get("name"),
        "level": item.get("level"),
        "option": item.get("option"),
        "to": item.get("to"),
        "available": item.get("available"),
        "status": item.get("status"),
        "rank": item.get("rank"),
    }
    for key, actual in checks.items():
        wanted = getattr(m, key)
        if wanted is not None and wanted != actual:
            return False
    if m.text_contains is not None and m.text_contains not in item.get("text", ""):
        return False
    return True


def _describe(m: Matcher) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in m.model_dump(exclude_none=True).items()) + "}"


def _summary(items: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    parts = []
    for item in items:
        bits = [str(item.get(k)) for k in keys if item.get(k) is not None]
        if item.get("medication"):
            med = item["medication"]
            bits.append(f"{med.get('name')} {med.get('dose_mg', '')}".strip())
        parts.append("/".join(bits))
    return "[" + ", ".join(parts) + "]" if parts else "[]"


def _pathway_for(ls: LoadedScenario, default: str | os.PathLike[str], cache: dict[Any, Pathway]) -> Pathway:
    sc = ls.scenario
    name = ls.pathway or default
    key = (str(name), sc.profile, tuple(sorted(sc.parameters.items())))
    if key not in cache:
        cache[key] = load_pathway(name, profile=sc.profile, parameters=dict(sc.parameters) or None)
    return cache[key]


def _with_hint(name: str, known: Any) -> str:
    """``name`` followed by the closest of ``known`` (a name the pathway does not have, as a failure shows it)."""
    hint = suggest(name, known)
    return name + (f" (did you mean '{hint}'?)" if hint else "")


def run_scenario(ls: LoadedScenario, pathway: str | os.PathLike[str] = "asuc",
                 cache: dict[Any, Pathway] | None = None) -> ScenarioOutcome:
    """Run one scenario and compare; failures name the scenario file and the expectation's line."""
    sc, exp = ls.scenario, ls.scenario.expect
    outcome = ScenarioOutcome(ls, passed=True)
    fail = outcome.failures

    def bad(line_path: tuple[Any, ...], what: str, expected: Any, actual: Any) -> None:
        fail.append(f"{ls.file}:{ls.pos(*line_path)}: scenario '{sc.id}': {what}\n"
                    f"    expected: {expected}\n    actual:   {actual}")

    try:
        pw = _pathway_for(ls, pathway, cache if cache is not None else {})
    except PathwayError as exc:
        fail.append(f"{ls.location}: scenario '{sc.id}': pathway could not be loaded: {exc}")
        outcome.passed = False
        return outcome
    session = None
    refused: InputError | None = None
    refused_at: int | None = None
    try:
        session, _ = pw.run_course({"patient": sc.case.patient, "events": sc.case.events})
    except InputError as exc:
        refused, refused_at = exc, exc.event
    except PathwayError as exc:
        fail.append(f"{ls.location}: scenario '{sc.id}': the engine failed: {exc}")
        outcome.passed = False
        return outcome

    if exp.refused is not None:
        codes = [d.code for d in refused.diagnostics] if refused else []
        if refused is None:
            bad(("expect", "refused"), "the case should have been refused", f"refused with {exp.refused.code}", "accepted")
        else:
            if exp.refused.code not in codes:
                bad(("expect", "refused", "code"), "refusal code", exp.refused.code, ", ".join(codes))
            if exp.refused.event is not None and refused_at != exp.refused.event:
                bad(("expect", "refused", "event"), "refused event index", exp.refused.event,
                    "the patient" if refused_at is None else refused_at)
            if exp.refused.message_contains and not any(exp.refused.message_contains in d.message for d in refused.diagnostics):
                bad(("expect", "refused", "message_contains"), "refusal message", exp.refused.message_contains,
                    "; ".join(d.message for d in refused.diagnostics))
        outcome.passed = not fail
        if session is not None:
            outcome.result = session.result()
        return outcome
    if refused is not None:
        fail.append(f"{ls.location}: scenario '{sc.id}': case refused unexpectedly: {refused}")
        outcome.passed = False
        return outcome

    assert session is not None
    result = session.result()
    outcome.result = result
    rule_ids = {r.id for r in pw.definition.rules}

    def no_rule(name: str) -> str | None:
        """``name`` with the closest rule when it names no rule of the pathway; None for a rule or an engine entry
        (named with a dot: ``input.<field>``, ``decision.<field>``, ``overdue.<state>``)."""
        return None if "." in name or name in rule_ids else _with_hint(name, rule_ids)
    outcome.rules_fired = {t["rule"] for t in result["trace"]}
    outcome.edges_taken = {(t["from"], t["to"]) for t in result["trace"] if "to" in t}
    if exp.state is not None and result["state"] != exp.state:
        bad(("expect", "state"), "final state", exp.state, result["state"])
    if exp.path is not None and result["path"] != exp.path:
        bad(("expect", "path"), "path", " -> ".join(exp.path), " -> ".join(result["path"]))
    if exp.path_contains is not None:
        it = iter(result["path"])
        if not all(any(s == p for p in it) for s in exp.path_contains):
            bad(("expect", "path_contains"), "path contains (in order)", " -> ".join(exp.path_contains),
                " -> ".join(result["path"]))
    for key, keys in (("recommendations", ("rule", "kind")), ("alerts", ("rule", "level")), ("options", ("option", "status")),
                      ("proposals", ("rule", "to"))):
        ml: MatchList | None = getattr(exp, key)
        if ml is None:
            continue
        for kind in ("present", "absent"):  # a rule the pathway does not have: "absent" would pass whatever happens
            for j, m in enumerate(getattr(ml, kind)):
                if m.rule is not None and (unknown := no_rule(m.rule)):
                    bad(("expect", key, kind, j, "rule"), f"{key}: names no rule of the pathway", "a rule of the pathway",
                        unknown)
        items = result[key]
        for j, m in enumerate(ml.present):
            if not any(_matches(x, m) for x in items):
                bad(("expect", key, "present", j), f"{key}: missing {_describe(m)}", _describe(m), _summary(items, keys))
        for j, m in enumerate(ml.absent):
            hits = [x for x in items if _matches(x, m)]
            if hits:
                bad(("expect", key, "absent", j), f"{key}: should be absent {_describe(m)}", "absent", _summary(hits, keys))
    meds = [r["medication"] for r in result["recommendations"] if r.get("medication")]
    for j, d in enumerate(exp.doses):
        cands = [m for m in meds if m.get("name") == d.name]
        if not cands:
            bad(("expect", "doses", j), f"dose of {d.name}", d.model_dump(exclude_none=True, exclude={"tolerance"}),
                _summary([{"medication": m} for m in meds], ()))
            continue
        med = cands[0]
        for attr in ("dose_mg", "daily_mg", "times_per_day"):
            want = getattr(d, attr)
            if want is not None and (med.get(attr) is None or abs(float(med[attr]) - want) > d.tolerance + 1e-9):
                bad(("expect", "doses", j, attr), f"{d.name} {attr}",
                    f"{want:g}" + (f" ± {d.tolerance:g}" if d.tolerance else ""), med.get(attr))
        if d.route is not None and med.get("route") != d.route:
            bad(("expect", "doses", j, "route"), f"{d.name} route", d.route, med.get("route"))
        days = [a["day"] for a in med.get("administrations", [])]
        if d.administration_days is not None and days != d.administration_days:
            bad(("expect", "doses", j, "administration_days"), f"{d.name} administration days", d.administration_days, days)
        if d.next_day is not None and med.get("next_day") != d.next_day:
            bad(("expect", "doses", j, "next_day"), f"{d.name} next day", d.next_day, med.get("next_day"))
    required = [x["field"] for x in result["data_required"]]
    if exp.data_required is not None and sorted(required) != sorted(exp.data_required):
        bad(("expect", "data_required"), "data required", sorted(exp.data_required), sorted(required))
    for j, name in enumerate(exp.data_required_includes):
        if name not in required:
            bad(("expect", "data_required_includes", j), "data required includes", name, sorted(required))
    fields = pw.definition.fields
    for j, name in enumerate(exp.data_required_excludes):
        if name not in fields:  # a field the pathway does not have is never required: would hold whatever happens
            bad(("expect", "data_required_excludes", j), "data_required_excludes: names no field of the pathway",
                "a field of the pathway", _with_hint(name, fields))
        elif name in required:
            bad(("expect", "data_required_excludes", j), "data required should not include", name, sorted(required))
    for name, value in exp.derived.items():
        if result["derived"].get(name) != value:
            bad(("expect", "derived", name), f"derived fact {name}", json.dumps(value), json.dumps(result["derived"].get(name)))
    for name, want in exp.computed.items():
        got = result.get("computed", {}).get(name)
        if got is None:
            bad(("expect", "computed", name), f"computed input {name}", want.model_dump(exclude_none=True), "no value")
            continue
        if want.value is not None and got["value"] != want.value:
            bad(("expect", "computed", name, "value"), f"computed input {name} value", json.dumps(want.value),
                json.dumps(got["value"]))
        if want.source is not None and got["source"] != want.source:
            bad(("expect", "computed", name, "source"), f"computed input {name} source", want.source, got["source"])
        if want.inputs is not None and sorted(got["inputs"]) != sorted(want.inputs):
            bad(("expect", "computed", name, "inputs"), f"computed input {name} inputs", sorted(want.inputs),
                sorted(got["inputs"]))
    for name, value in exp.frozen.items():
        kept = result["frozen"].get(name)
        if kept is None or kept["value"] != value:
            bad(("expect", "frozen", name), f"kept fact {name}", json.dumps(value),
                json.dumps(kept["value"]) if kept else "not kept")
    rechecks = sorted(x["field"] for x in result["data_required"] if x.get("recheck"))
    for j, name in enumerate(exp.recheck):
        if name not in rechecks:
            bad(("expect", "recheck", j), "recheck of an expired value", name, rechecks)
    for j, rule in enumerate(exp.fired):
        if rule not in outcome.rules_fired:
            bad(("expect", "fired", j), "rule fired", rule, "never fired")
    for j, rule in enumerate(exp.not_fired):
        if unknown := no_rule(rule):  # would hold whatever happens
            bad(("expect", "not_fired", j), "not_fired: names no rule of the pathway", "a rule of the pathway", unknown)
        elif rule in outcome.rules_fired:
            bad(("expect", "not_fired", j), "rule should not fire", rule, "fired")
    outcome.passed = not fail
    return outcome


@dataclass
class Coverage:
    """Rules fired and edges taken across scenarios, against everything the pathway defines."""

    rules: dict[str, int]
    edges: dict[tuple[str, str], int]

    @property
    def rules_never(self) -> list[str]:
        return sorted(r for r, n in self.rules.items() if n == 0)

    @property
    def edges_never(self) -> list[tuple[str, str]]:
        return sorted(e for e, n in self.edges.items() if n == 0)

    def percent(self) -> tuple[float, float]:
        r = 100.0 * sum(1 for n in self.rules.values() if n) / max(1, len(self.rules))
        e = 100.0 * sum(1 for n in self.edges.values() if n) / max(1, len(self.edges))
        return round(r, 1), round(e, 1)

    def to_dict(self) -> dict[str, Any]:
        r, e = self.percent()
        return {
            "rules_percent": r,
            "edges_percent": e,
            "rules": dict(sorted(self.rules.items())),
            "edges": {f"{a}->{b}": n for (a, b), n in sorted(self.edges.items())},
            "rules_never_fired": self.rules_never,
            "edges_never_taken": [f"{a}->{b}" for a, b in self.edges_never],
        }


def run_scenarios(files: list[Path], pathway: str | os.PathLike[str] = "asuc") -> tuple[list[ScenarioOutcome], Coverage]:
    cache: dict[Any, Pathway] = {}
    outcomes: list[ScenarioOutcome] = []
    for f in files:
        for ls in load_scenarios(f):
            outcomes.append(run_scenario(ls, pathway, cache))
    base = load_pathway(pathway)
    rules = {r.id: 0 for r in base.definition.rules}
    edges = {(a, b): 0 for a, b in base.graph.edges}
    for o in outcomes:
        for r in o.rules_fired:
            if r in rules:
                rules[r] += 1
        for e in o.edges_taken:
            if e in edges:
                edges[e] += 1
    return outcomes, Coverage(rules, edges)
