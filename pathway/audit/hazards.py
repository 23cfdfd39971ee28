"""The hazard log, with the verdict of every verifying scenario: ``pathway hazards PATHWAY``.

A pathway's hazards file (``hazards_file`` in pathway.yaml) is its clinical risk management file,
in the spirit of NHS DCB0129 and ISO 14971: each hazard with its cause and effect, its risk before
and after mitigation (rated by the DCB0129 matrix, :data:`pathway.definition.model.RISK_MATRIX`), the
rules, parameters, fields and watchdogs that mitigate it today, and the scenarios that verify them.
The loader checks every name but the scenario ids; this module runs the scenarios named (through the
scenario runner of :mod:`pathway.authoring.scenario`) and turns what it finds into check findings:

- PW620 / PW621 (warnings): a hazard still ``open`` (or ``accepted``) that names no mitigation / no
  verification, as it honestly should while nothing controls it;
- PW622 / PW623 (errors): a hazard marked ``mitigated`` or ``closed`` without a mitigation / verification;
- PW624: a verifying scenario that fails; PW625: a scenario id no scenario file defines;
- PW626: a hazard accepted, mitigated or closed at a residual risk of 4 or 5 (unacceptable).

``pathway check`` reports these beside the static checks (:func:`hazard_check` is passed to
:func:`pathway.analysis.check.check_pathway`), and the audit report shows the log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pathway.analysis.check import CHECKS, Finding
from pathway.authoring.scenario import LoadedScenario, ScenarioOutcome, discover, load_scenarios, run_scenario
from pathway.core.errors import DefinitionError, display_path, suggest
from pathway.core.text import inert, md_code, md_inline
from pathway.definition.model import LIKELIHOODS, RISK_MATRIX, RISK_MEANINGS, SEVERITIES
from pathway.definition.pathway import Hazard, PathwayDef
from pathway.runtime.api import Pathway, load_pathway

__all__ = ["ScenarioVerdict", "HazardEntry", "HazardLog", "hazard_log", "hazard_check", "render_text",
           "render_markdown", "STATUSES"]

#: Hazard statuses, in the order the log counts them.
STATUSES = ("open", "accepted", "mitigated", "closed")
#: Statuses that claim the hazard is controlled (no mitigation or verification is then an error).
_CONTROLLED = ("mitigated", "closed")
#: Statuses that accept the residual risk (a rating of 4 or 5 cannot be accepted).
_ACCEPTING = ("accepted", "mitigated", "closed")


@dataclass
class ScenarioVerdict:
    """A verifying scenario: where it is and whether it passes (``passed`` is None when no scenario
    file defines the id)."""

    id: str
    line: int
    col: int
    location: str | None = None
    passed: bool | None = None
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "location": self.location, "passed": self.passed, "failures": list(self.failures)}


@dataclass
class HazardEntry:
    """One hazard and the verdicts of its verifying scenarios."""

    hazard: Hazard
    scenarios: list[ScenarioVerdict] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """Every verifying scenario exists and passes (and there is at least one)."""
        return bool(self.scenarios) and all(v.passed for v in self.scenarios)

    def to_dict(self) -> dict[str, Any]:
        h = self.hazard
        return {
            "id": h.id,
            "title": h.title,
            "status": h.status,
            "cause": h.cause,
            "effect": h.effect,
            "severity": h.severity,
            "likelihood": h.likelihood,
            "initial_risk": h.initial_risk,
            "residual_risk": {"severity": h.residual_severity, "likelihood": h.residual_likelihood,
                              "risk": h.residual_risk},
            "mitigations": {"rules": list(h.rules), "parameters": list(h.parameters), "fields": list(h.fields),
                            "watchdogs": list(h.watchdogs)},
            "verification": {"scenarios": [v.to_dict() for v in self.scenarios], "invariants": list(h.invariants)},
            "verified": self.verified,
            "open_questions": list(h.open_questions),
            "sources": list(h.sources),
            "note": h.note,
            "location": h.location,
        }


@dataclass
class HazardLog:
    """The hazard log of one pathway, with the scenario verdicts and the findings about it."""

    pathway: str
    version: str
    file: str | None
    entries: list[HazardEntry] = field(default_factory=list)
    #: scenario files that could not be read (their scenarios count as unknown)
    problems: list[str] = field(default_factory=list)
    #: every scenario id of the pathway's scenarios/ folder (for "did you mean")
    scenario_ids: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        """PW620-PW626 for every hazard, in file order."""
        out: list[Finding] = []
        for entry in self.entries:
            h = entry.hazard
            name = f"hazard '{h.id}' ({h.title})"

            def add(code: str, where: tuple[int, int], message: str, hint: str | None = None, h: Hazard = h) -> None:
                out.append(Finding(code, CHECKS[code].severity, h.file, where[0], where[1], message, states=h.watchdogs,
                                   rules=h.rules, hint=hint))

            mitigated, verified = bool(h.mitigated_by), bool(h.verified_by)
            if h.status in _CONTROLLED:
                if not mitigated:
                    add("PW622", h.mitigations_at, f"{name} is marked {h.status} but names no mitigation")
                if not verified:
                    add("PW623", h.verification_at, f"{name} is marked {h.status} but names no verification")
            else:
                if not mitigated:
                    add("PW620", h.mitigations_at, f"{name} is {h.status} and names no mitigation: nothing in the "
                                                   "pathway controls it yet")
                if not verified:
                    add("PW621", h.verification_at, f"{name} is {h.status} and names no verification")
            if h.status in _ACCEPTING and h.residual_risk >= 4:
                add("PW626", (h.line, h.col), f"{name} is marked {h.status} at residual risk {h.residual_risk} "
                                              f"({RISK_MEANINGS[h.residual_risk]}): reduce the risk or keep it open")
            for v in entry.scenarios:
                if v.passed is None:
                    unread = f" ({len(self.problems)} scenario file(s) could not be read)" if self.problems else ""
                    add("PW625", (v.line, v.col), f"unknown scenario '{v.id}' verifying {name}: no scenario file of "
                                                  f"the pathway defines it{unread}", suggest(v.id, self.scenario_ids))
                elif not v.passed:
                    first = " ".join(part.strip() for part in v.failures[0].splitlines()) if v.failures else v.location
                    add("PW624", (v.line, v.col), f"scenario '{v.id}' verifying {name} fails: {first}")
        return out

    def summary(self) -> dict[str, Any]:
        verdicts = [v for e in self.entries for v in e.scenarios]
        return {
            "hazards": len(self.entries),
            "by_status": {s: sum(1 for e in self.entries if e.hazard.status == s) for s in STATUSES},
            "initial_risk": {str(r): sum(1 for e in self.entries if e.hazard.initial_risk == r) for r in range(5, 0, -1)},
            "residual_risk": {str(r): sum(1 for e in self.entries if e.hazard.residual_risk == r) for r in range(5, 0, -1)},
            "scenarios": {"total": len(verdicts), "pass": sum(1 for v in verdicts if v.passed),
                          "fail": sum(1 for v in verdicts if v.passed is False),
                          "unknown": sum(1 for v in verdicts if v.passed is None)},
        }

    def exit_code(self) -> int:
        """1 when a finding is an error (a verifying scenario fails or is unknown, a hazard claims a
        control it does not name, or accepts an unacceptable risk), else 0."""
        return 1 if any(f.severity == "error" for f in self.findings()) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pathway": self.pathway,
            "version": self.version,
            "file": self.file,
            "summary": self.summary(),
            "risk_matrix": {"severities": list(SEVERITIES), "likelihoods": list(LIKELIHOODS),
                            "ratings": {lk: list(RISK_MATRIX[lk]) for lk in LIKELIHOODS},
                            "meanings": {str(k): v for k, v in RISK_MEANINGS.items()}},
            "hazards": [e.to_dict() for e in self.entries],
            "findings": [f.to_dict() for f in self.findings()],
            "problems": list(self.problems),
        }


def _scenario_index(root: Path) -> tuple[dict[str, list[LoadedScenario]], list[str]]:
    """Every scenario of the pathway's ``scenarios/`` folder by id, and the files that could not be read."""
    folder = root / "scenarios"
    index: dict[str, list[LoadedScenario]] = {}
    problems: list[str] = []
    for f in discover([folder]) if folder.is_dir() else []:
        try:
            loaded = load_scenarios(f)
        except DefinitionError as exc:
            problems.extend(str(d) for d in exc.diagnostics)
            continue
        for ls in loaded:
            index.setdefault(ls.scenario.id, []).append(ls)
    return index, problems


def hazard_log(pathway: Pathway | PathwayDef | str | os.PathLike[str], *,
               outcomes: list[ScenarioOutcome] | None = None) -> HazardLog:
    """The hazard log of a pathway with a verdict for every verifying scenario.

    Only the scenarios the log names are run (through the scenario runner, each under its own
    profile, as ``pathway test`` runs them); ``outcomes`` of an earlier run of the pathway's
    scenarios are reused instead when given.
    """
    if isinstance(pathway, Pathway):
        definition = pathway.definition
    elif isinstance(pathway, PathwayDef):
        definition = pathway
    else:
        definition = load_pathway(pathway).definition
    root = definition.root
    file = display_path(root / definition.spec.hazards_file) if definition.spec.hazards_file else None
    log = HazardLog(definition.id, definition.version, file)
    if not definition.hazards:
        return log
    index, log.problems = _scenario_index(root)
    log.scenario_ids = sorted(index)
    done: dict[tuple[str, int], ScenarioOutcome] = {}
    for o in outcomes or []:
        done[(o.scenario.file, o.scenario.line)] = o
    cache: dict[Any, Pathway] = {}
    for h in definition.hazards:
        entry = HazardEntry(h)
        for ref in h.scenarios:
            found = index.get(ref.id, [])
            if not found:
                entry.scenarios.append(ScenarioVerdict(ref.id, ref.line, ref.col))
                continue
            for ls in found:
                outcome = done.get((ls.file, ls.line))
                if outcome is None:
                    outcome = done[(ls.file, ls.line)] = run_scenario(ls, str(root), cache)
                entry.scenarios.append(ScenarioVerdict(ref.id, ref.line, ref.col, ls.location, outcome.passed,
                                                       list(outcome.failures)))
        log.entries.append(entry)
    return log


def hazard_check(definition: PathwayDef) -> list[Finding]:
    """The hazard log's findings (PW620-PW626), as an extra check of ``pathway check``."""
    return hazard_log(definition).findings()


# -- rendering --------------------------------------------------------------------------------

def _risk(severity: str, likelihood: str, risk: int) -> str:
    return f"{risk} ({severity}, {likelihood} likelihood)"


def _controls(h: dict[str, Any]) -> list[str]:
    m = h["mitigations"]
    return [f"{kind} {', '.join(m[key])}" for kind, key in (("rules", "rules"), ("parameters", "parameters"),
                                                            ("fields", "fields"), ("watchdogs of", "watchdogs")) if m[key]]


def _verdict(v: dict[str, Any]) -> str:
    word = "PASS" if v["passed"] else ("FAIL" if v["passed"] is False else "UNKNOWN")
    where = f"  ({v['location']})" if v["location"] else "  (no scenario has this id)"
    return f"{word:<7} {v['id']}{where}"


def render_text(data: dict[str, Any]) -> str:
    """The log as plain text: a summary, then each hazard with its controls and scenario verdicts
    (every text one line)."""
    data = inert(data)
    s = data["summary"]
    counts = ", ".join(f"{n} {k}" for k, n in s["by_status"].items() if n)
    sc = s["scenarios"]
    lines = [f"Hazard log of {data['pathway']} {data['version']}" + (f" ({data['file']})" if data["file"] else "")
             + f": {s['hazards']} hazard(s)" + (f": {counts}" if counts else ""),
             f"verifying scenarios: {sc['pass']} pass, {sc['fail']} fail, {sc['unknown']} unknown (of {sc['total']})",
             "risk (DCB0129, 1 acceptable ... 5 unacceptable) before -> after mitigation: "
             + " ".join(f"{r}:{s['initial_risk'][r]}->{s['residual_risk'][r]}" for r in ("5", "4", "3", "2", "1"))]
    for h in data["hazards"]:
        r = h["residual_risk"]
        lines += ["", f"{h['id']}  [{h['status']}]  risk {h['initial_risk']} -> {r['risk']}  {h['title']}",
                  f"  at {h['location']}",
                  f"  cause: {h['cause']}",
                  f"  effect: {h['effect']}",
                  f"  initial risk: {_risk(h['severity'], h['likelihood'], h['initial_risk'])}; "
                  f"residual risk: {_risk(r['severity'], r['likelihood'], r['risk'])}"]
        controls = _controls(h)
        lines.append("  mitigations: " + ("; ".join(controls) if controls else "none"))
        verdicts = h["verification"]["scenarios"]
        if verdicts or h["verification"]["invariants"]:
            lines.append("  verification:")
            lines += [f"    {_verdict(v)}" for v in verdicts]
            lines += [f"    invariant {i}" for i in h["verification"]["invariants"]]
        else:
            lines.append("  verification: none")
        if h["open_questions"]:
            lines.append("  open questions:")
            lines += [f"    - {q}" for q in h["open_questions"]]
        if h["sources"]:
            lines.append(f"  sources: {', '.join(h['sources'])}")
        if h["note"]:
            lines.append(f"  note: {h['note']}")
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    warnings = [f for f in data["findings"] if f["severity"] == "warning"]
    lines.append("")
    for f in errors:
        hint = f" (did you mean '{f['hint']}'?)" if f["hint"] else ""
        lines.append(f"{f['file']}:{f['line']}:{f['col']}: error: {f['message']}{hint} [{f['code']}]")
    for p in data["problems"]:
        lines.append(f"note: scenario file not read: {p}")
    lines.append(f"{data['pathway']} {data['version']}: {len(errors)} error(s), {len(warnings)} warning(s) "
                 "(open hazards without mitigation or verification; 'pathway check' lists them)")
    return "\n".join(lines)


def _md(text: Any) -> str:
    """Text for Markdown (a table cell, a heading, a list item): one line, nothing read as Markdown or HTML."""
    return md_inline(" ".join(str(text).split()))


def render_markdown(data: dict[str, Any]) -> str:
    """The log as Markdown: a summary table, then a section per hazard."""
    s = data["summary"]
    sc = s["scenarios"]
    out = [f"# Hazard log: {_md(data['pathway'])} {_md(data['version'])}", "",
           f"{s['hazards']} hazard(s): " + ", ".join(f"{n} {k}" for k, n in s["by_status"].items()) + ". "
           f"Verifying scenarios: {sc['pass']} pass, {sc['fail']} fail, {sc['unknown']} unknown.", "",
           "Risk ratings follow the DCB0129 matrix: " + "; ".join(f"{k} {v}" for k, v in data["risk_matrix"]["meanings"].items())
           + ".", "",
           "| hazard | title | status | initial risk | residual risk | mitigations | scenarios passing |",
           "|---|---|---|---|---|---|---|"]
    for h in data["hazards"]:
        v = h["verification"]["scenarios"]
        n = sum(len(h["mitigations"][k]) for k in ("rules", "parameters", "fields", "watchdogs"))
        out.append(f"| {_md(h['id'])} | {_md(h['title'])} | {_md(h['status'])} | {h['initial_risk']} | "
                   f"{h['residual_risk']['risk']} | {n} | {sum(1 for x in v if x['passed'])}/{len(v)} |")
    for h in data["hazards"]:
        r = h["residual_risk"]
        out += ["", f"## {_md(h['id'])}: {_md(h['title'])}", "",
                f"- **status**: {_md(h['status'])}",
                f"- **cause**: {_md(h['cause'])}",
                f"- **effect**: {_md(h['effect'])}",
                f"- **initial risk**: {_md(_risk(h['severity'], h['likelihood'], h['initial_risk']))}",
                f"- **residual risk**: {_md(_risk(r['severity'], r['likelihood'], r['risk']))}",
                "- **mitigations**: " + (_md("; ".join(_controls(h))) if _controls(h) else "none")]
        verdicts = h["verification"]["scenarios"]
        out.append("- **verification**: " + (", ".join(
            f"{md_code(x['id'])} ({'pass' if x['passed'] else 'FAIL' if x['passed'] is False else 'unknown'})" for x in verdicts)
            if verdicts else "none"))
        for q in h["open_questions"]:
            out.append(f"- **open question**: {_md(q)}")
        if h["sources"]:
            out.append(f"- **sources**: {', '.join(_md(x) for x in h['sources'])}")
        if h["note"]:
            out.append(f"- **note**: {_md(h['note'])}")
    return "\n".join(out) + "\n"
