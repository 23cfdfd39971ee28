"""What a change to the rules does to patients: ``pathway diff OLD NEW --cases DIR --scenarios``.

Every case (case files, and the scenario library of each version) is replayed event by event under
both versions, each loaded side by side in this process (each ``Pathway`` has its own engine host,
so two versions with the same pathway id never share a ruleset). After every event the patient's
outcome is taken as a clinician sees it:

- the state and the path of states;
- the recommendations (rule, kind, text) and, for medicines, the dose (agent, mg per
  administration, how often or on which days, route);
- the alerts; the options at a decision (status, rank, reasons for and against, data awaited) and
  the decisions due (proposals);
- the data required to decide.

A case is *changed* when the outcome after any event differs between the versions; the report lists
it with the first event (and its day) at which the two courses diverge and, side by side (old |
new), what differs at the end of the case (or, when the ends agree, at the divergence). A case that
one version refuses (a value outside a new plausible range, say) or cannot run is listed with the
refusal, never as a traceback. Unchanged cases are counted, not listed.

Which profile a case runs under: the profile named on the command line for that version
(``--old-profile`` / ``--new-profile``) when one is named; otherwise the scenario's own ``profile``
(case files have none), otherwise the pathway's default. A scenario's ``parameters`` overrides always
apply, on both sides: they are part of the scenario. A case file's own ``pathway`` key is ignored:
the case runs under OLD and NEW.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pathway.analysis.evaluate import format_value
from pathway.authoring.scenario import is_scenario_file, load_scenarios
from pathway.core.errors import Diagnostic, InputError, PathwayError, display_path
from pathway.core.text import md_inline, one_line
from pathway.definition.case import case_problem
from pathway.definition.pathway import PathwayDef
from pathway.loading.cases import load_case_file
from pathway.runtime.api import Pathway, load_pathway

__all__ = ["ReplayCase", "Course", "CaseChange", "PatientDiff", "ASPECTS", "collect_cases", "scenario_library",
           "outcome", "replay", "compare_courses", "patient_diff"]

#: What is compared after every event, in the order reports list it (JSON ``aspect`` values).
ASPECTS = ("state", "path", "recommendation", "dose", "alert", "option", "decision due", "data required")

#: File names read as case or scenario files in a folder given to ``--cases``.
_CASE_SUFFIXES = (".yaml", ".yml", ".json")

Status = Literal["ran", "refused", "failed"]


# -- the cases ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ReplayCase:
    """One patient to replay: a case file or a scenario (its expectations are not used here)."""

    id: str
    origin: str  # "scenario" | "case file"
    location: str  # file:line of a scenario, the file of a case
    case: dict[str, Any]
    profile: str | None = None
    parameters: tuple[tuple[str, Any], ...] = ()

    @property
    def patient(self) -> str:
        pid = self.case.get("patient", {}).get("id") if isinstance(self.case.get("patient"), dict) else None
        return "" if pid is None else str(pid)

    def setup(self) -> tuple[Any, ...]:
        """What the case runs with (events, profile, parameters): two library entries with the same
        setup are one patient."""
        return (self.case, self.profile, self.parameters)


def _scenario_cases(path: Path) -> list[tuple[str, ReplayCase]]:
    """The scenarios of one file, each with its key in the library (file name and scenario id)."""
    out = []
    for ls in load_scenarios(path):
        sc = ls.scenario
        case = {"patient": dict(sc.case.patient), "events": [dict(e) for e in sc.case.events]}
        out.append((sc.id, ReplayCase(sc.id, "scenario", ls.location, case, sc.profile,
                                      tuple(sorted(sc.parameters.items())))))
    return out


def _files(item: Path) -> list[Path]:
    if item.is_dir():
        return sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in _CASE_SUFFIXES
                      and not any(part.startswith(".") for part in p.relative_to(item).parts))
    return [item]


def collect_cases(paths: Sequence[str | os.PathLike[str]]) -> list[ReplayCase]:
    """The cases in ``paths``: case files (JSON or YAML), scenario files, or folders of them (searched
    recursively for ``.yaml``, ``.yml`` and ``.json`` files). A file that is neither raises InputError
    (PW400) with its location, as ``pathway run`` does; a scenario file with a problem, DefinitionError."""
    out: list[ReplayCase] = []
    seen: set[str] = set()
    for item in paths:
        for f in _files(Path(item)):
            key = str(f.resolve()) if f.exists() else str(f)
            if key in seen:
                continue
            seen.add(key)
            if f.suffix.lower() != ".json" and is_scenario_file(f):
                out += [c for _, c in _scenario_cases(f)]
                continue
            _, case = load_case_file(f)
            out.append(ReplayCase(display_path(f), "case file", display_path(f), case))
    return out


def scenario_library(old_root: Path, new_root: Path) -> list[ReplayCase]:
    """The scenarios of both versions (``<folder>/scenarios``), each patient once.

    A scenario is known by its file (relative to ``scenarios/``) and id. One in only one library is
    replayed all the same (a patient the change may concern); one whose case, profile or parameters
    differ between the libraries is replayed twice, as ``<id> (old library)`` and ``<id> (new library)``.
    """
    def library(root: Path) -> dict[tuple[str, str], ReplayCase]:
        folder = root / "scenarios"
        out: dict[tuple[str, str], ReplayCase] = {}
        if not folder.is_dir():
            return out
        for f in _files(folder):
            if f.suffix.lower() == ".json" or not is_scenario_file(f):
                continue
            rel = f.relative_to(folder).as_posix()
            for sid, case in _scenario_cases(f):
                out[(rel, sid)] = case
        return out

    new = library(new_root)
    if old_root.resolve() == new_root.resolve():
        return list(new.values())
    old = library(old_root)
    merged: list[ReplayCase] = []
    for key, case in new.items():
        before = old.get(key)
        if before is None or before.setup() == case.setup():
            merged.append(case)
        else:
            merged.append(_renamed(before, f"{before.id} (old library)"))
            merged.append(_renamed(case, f"{case.id} (new library)"))
    merged += [case for key, case in old.items() if key not in new]
    return merged


def _renamed(case: ReplayCase, name: str) -> ReplayCase:
    return ReplayCase(name, case.origin, case.location, case.case, case.profile, case.parameters)


# -- one course ----------------------------------------------------------------------------------

#: One thing a clinician sees, keyed by its rule, agent, option or field, as one or more parts: the
#: main text first, then further parts (an option's reasons) that a side-by-side row shows only
#: where they differ. E.g. ("infliximab", ("available, rank 1", "against: Needs TB screening.")).
Item = tuple[str, tuple[str, ...]]


def _n(value: Any) -> str:
    return format_value(value)


def dose_text(med: dict[str, Any]) -> str:
    """A medication as a line: ``tacrolimus 2 mg oral 2 times a day (4 mg/day)``."""
    parts = [str(med.get("name", "?"))]
    if med.get("dose_mg") is not None:
        parts.append(f"{_n(med['dose_mg'])} mg")
    if med.get("route"):
        parts.append(str(med["route"]))
    if med.get("administrations"):
        parts.append("on day " + ", ".join(_n(a.get("day")) for a in med["administrations"]))
        if med.get("then_every_days") is not None:
            parts.append(f"then every {_n(med['then_every_days'])} days")
        if med.get("next_day") is not None:
            parts.append(f"(next on day {_n(med['next_day'])})")
    elif med.get("times_per_day") is not None:
        times = med["times_per_day"]
        parts.append("once a day" if times == 1 else f"{_n(times)} times a day")
        if med.get("daily_mg") is not None and times != 1:
            parts.append(f"({_n(med['daily_mg'])} mg/day)")
    for key in ("frequency", "schedule", "duration"):
        if med.get(key):
            parts.append(str(med[key]))
    if med.get("targets"):
        parts.append("targets " + ", ".join(f"{k} {_n(v[0])}-{_n(v[1])}" for k, v in sorted(med["targets"].items())))
    return " ".join(parts)


def _option_parts(opt: dict[str, Any]) -> tuple[str, ...]:
    parts = [f"{opt.get('status')}, rank {_n(opt.get('rank'))}"]
    for key, word in (("for", "for"), ("against", "against"), ("pending", "waiting for")):
        parts += [f"{word}: {x}" for x in opt.get(key) or []]
    return tuple(parts)


def outcome(result: dict[str, Any]) -> dict[str, list[Item]]:
    """What a clinician sees in one result, aspect by aspect (see :data:`ASPECTS`), as (key, text) items."""
    meds = [r for r in result.get("recommendations", []) if r.get("medication")]
    return {
        "state": [("state", (f"{result.get('state')} ({result.get('state_title', '')})",))],
        "path": [("path", (" -> ".join(str(s) for s in result.get("path", [])),))],
        "recommendation": [(str(r.get("rule")), (f"({r.get('kind')}) {r.get('text')}",))
                           for r in result.get("recommendations", [])],
        "dose": [(str(r["medication"].get("name")), (dose_text(r["medication"]),)) for r in meds],
        "alert": [(str(a.get("rule")), (f"({a.get('level')}) {a.get('text')}",)) for a in result.get("alerts", [])],
        "option": [(str(o.get("option")), _option_parts(o)) for o in result.get("options", [])],
        "decision due": [(str(p.get("rule")), (f"to {p.get('to')} ({p.get('to_title', '')}): {p.get('text', '')}",))
                         for p in result.get("proposals", [])],
        "data required": [(str(d.get("field")), (("recheck " if d.get("recheck") else "") + f"{d.get('title')}: "
                                                  f"{d.get('text')}",)) for d in result.get("data_required", [])],
    }


@dataclass
class Course:
    """One case under one version: the outcome after each event that ran, and how it ended."""

    status: Status
    profile: str | None = None
    outcomes: list[dict[str, list[Item]]] = field(default_factory=list)
    days: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    #: the refused event (index into the case's events; None: the patient record or the case itself)
    event: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def final(self) -> dict[str, list[Item]] | None:
        return self.outcomes[-1] if self.status == "ran" and self.outcomes else None

    def summary(self) -> str:
        """One line: how the course ended."""
        if self.status == "ran":
            final = self.final
            return f"ran: ends in {final['state'][0][1][0]}" if final else "ran: no events"
        where = "the patient record" if self.event is None else f"events[{self.event}]"
        verb = "refused at" if self.status == "refused" else "failed at"
        return f"{verb} {where}: " + "; ".join(self.problems)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "profile": self.profile, "events_run": len(self.outcomes),
                               "event": self.event, "problems": list(self.problems)}
        out["state"] = self.states[-1] if self.status == "ran" and self.states else None
        return out


def _problem(d: Diagnostic) -> str:
    where = f"{d.file}: " if d.file else ""
    return one_line(f"{where}{d.message} [{d.code}]")


def replay(pathway: Pathway, case: dict[str, Any]) -> Course:
    """Run ``case`` event by event through a fresh session of ``pathway``; a refused case or event
    (InputError) or an engine failure ends the course with its problems, never an exception."""
    course = Course("ran", profile=pathway.definition.profile)
    problem = case_problem(case)
    if problem is not None:
        path, code, message = problem
        course.status, course.problems = "refused", [_problem(Diagnostic(".".join(("case", *path)), 0, 0, code, message))]
        return course
    index: int | None = None
    try:
        session = pathway.start(case["patient"])
        for i, event in enumerate(case["events"]):
            index = i
            result = session.observe(event)
            course.outcomes.append(outcome(result))
            course.days.append(result["day"])
            course.states.append(str(result.get("state")))
    except InputError as exc:
        course.status, course.event = "refused", exc.event if exc.event is not None else index
        course.problems = [_problem(d) for d in exc.diagnostics]
    except PathwayError as exc:
        course.status, course.event, course.problems = "failed", index, [one_line(f"the engine failed: {exc}")]
    except Exception as exc:  # noqa: BLE001 - one case's crash is reported with the case, the others still run
        course.status, course.event = "failed", index
        course.problems = [one_line(f"{type(exc).__name__}: {exc}")]
    return course


# -- comparing two courses -------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One difference, side by side: an aspect, the item's key, its text under each version (None: absent)."""

    aspect: str
    key: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"aspect": self.aspect, "key": self.key, "old": self.old, "new": self.new}


def _group(items: list[Item]) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for key, parts in items:
        out.setdefault(key, []).append(parts)
    return out


def _shown(parts: tuple[str, ...] | None, other: tuple[str, ...] | None) -> str | None:
    """An item's text beside its counterpart: the main part, and the further parts the other lacks."""
    if parts is None:
        return None
    if other is None:
        return "; ".join(parts)
    return "; ".join([parts[0], *(p for p in parts[1:] if p not in other[1:])])


def outcome_rows(old: dict[str, list[Item]], new: dict[str, list[Item]]) -> list[Row]:
    """The differences between two outcomes, aspect by aspect; items paired by key (rule, agent,
    option or field), so a changed text is one row, an item of one version only is a row with the
    other side empty, and a new order of the same items is one row."""
    rows: list[Row] = []
    for aspect in ASPECTS:
        a, b = old.get(aspect, []), new.get(aspect, [])
        if a == b:
            continue
        ga, gb = _group(a), _group(b)
        found = False
        for key in list(dict.fromkeys([k for k, _ in a] + [k for k, _ in b])):
            xs, ys = ga.get(key, []), gb.get(key, [])
            for i in range(max(len(xs), len(ys))):
                x = xs[i] if i < len(xs) else None
                y = ys[i] if i < len(ys) else None
                if x != y:
                    rows.append(Row(aspect, key, _shown(x, y), _shown(y, x)))
                    found = True
        if not found:  # the same items in another order (options are ranked)
            rows.append(Row(aspect, "order", ", ".join(k for k, _ in a), ", ".join(k for k, _ in b)))
    return rows


@dataclass
class CaseChange:
    """A case whose course differs between the versions."""

    case: ReplayCase
    old: Course
    new: Course
    #: the first event after which the outcomes differ (None: at the patient record, before any event)
    event: int | None
    day: float | None
    #: differences at the end of the case (both ran), else the two endings
    final: list[Row]
    #: differences after the first diverging event, when the ends agree or one version stopped
    first: list[Row]

    @property
    def failed(self) -> bool:
        """True when the case stops under one version (refused or failed) and not the same way under the other."""
        return (self.old.status != "ran" or self.new.status != "ran") and _ending(self.old) != _ending(self.new)

    def where(self) -> str:
        if self.event is None:
            return "at the patient record"
        if self.day is None:
            return f"at events[{self.event}]"
        return f"on day {_n(self.day)} (events[{self.event}])"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.case.id, "origin": self.case.origin, "location": self.case.location,
                "patient": self.case.patient, "diverges": {"event": self.event, "day": self.day},
                "old": self.old.to_dict(), "new": self.new.to_dict(),
                "final": [r.to_dict() for r in self.final], "first_difference": [r.to_dict() for r in self.first]}


def _event_day(case: dict[str, Any], index: int) -> float | None:
    events = case.get("events")
    if isinstance(events, list) and index < len(events) and isinstance(events[index], dict):
        day = events[index].get("day")
        if isinstance(day, (int, float)) and not isinstance(day, bool):
            return day
    return None


def _ending(c: Course) -> tuple[Any, ...]:
    return c.status, c.event, c.problems, len(c.outcomes)


def compare_courses(case: ReplayCase, old: Course, new: Course) -> CaseChange | None:
    """The change of one case between two courses; None when every event's outcome and the ending agree."""
    n = min(len(old.outcomes), len(new.outcomes))
    first = next((i for i in range(n) if old.outcomes[i] != new.outcomes[i]), None)
    same_end = _ending(old) == _ending(new)
    if first is None and same_end:
        return None
    event: int | None
    if first is not None:
        event = first
    elif len(old.outcomes) != len(new.outcomes):
        event = n  # one version stopped at this event, the other went on
    else:  # both stopped at the same event, differently
        event = old.event if old.event is not None else new.event
    day: float | None = None
    if event is not None:
        days = old.days if event < len(old.days) else new.days
        day = days[event] if event < len(days) else _event_day(case.case, event)
    if old.status == "ran" and new.status == "ran":
        final = outcome_rows(old.outcomes[-1], new.outcomes[-1]) if n else []
    elif same_end:  # stopped the same way under both (and differed before)
        final = []
    else:
        final = [Row("course", "course", old.summary(), new.summary())]
    at = outcome_rows(old.outcomes[first], new.outcomes[first]) if first is not None else []
    if at == final:  # diverged at the last event: the end says it
        at = []
    return CaseChange(case, old, new, event, day, final, at)


# -- the section -----------------------------------------------------------------------------------

@dataclass
class PatientDiff:
    """Every case replayed under two versions: the changed ones listed, the others counted."""

    sources: list[str]
    total: int = 0
    changes: list[CaseChange] = field(default_factory=list)
    key: str = "patients"

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        failed = sum(1 for c in self.changes if c.failed)
        return {"cases": self.total, "changed": len(self.changes), "unchanged": self.total - len(self.changes),
                "failing": failed}

    def differences(self) -> list[tuple[str, int]]:
        """What differs (an aspect and its key: ``option infliximab``, ``state``), with the number of
        changed cases showing it at the end or at the divergence; most frequent first."""
        seen: dict[str, int] = {}
        for c in self.changes:
            for label in dict.fromkeys(_label(r) for r in c.final + c.first):
                seen[label] = seen.get(label, 0) + 1
        return sorted(seen.items(), key=lambda item: (-item[1], item[0]))

    def to_dict(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "counts": self.counts(),
                "differences": [{"what": what, "cases": n} for what, n in self.differences()],
                "changed": [c.to_dict() for c in self.changes]}

    def _summary(self) -> str:
        n = self.counts()
        failing = f" ({n['failing']} not run to the end under a version)" if n["failing"] else ""
        return (f"{n['cases']} case(s) replayed under both versions: {n['changed']} changed{failing}, "
                f"{n['unchanged']} unchanged")

    def text(self) -> str:
        """Plain text: a summary, then each changed case with its rows ``aspect key: old | new``."""
        lines = ["patients: " + self._summary(), "  from: " + ", ".join(one_line(s) for s in self.sources)]
        differences = self.differences()
        if differences:
            lines.append("  what differs (number of cases): " + "; ".join(f"{one_line(w)} {n}" for w, n in differences))
        for c in self.changes:
            patient = f" patient {one_line(c.case.patient)}" if c.case.patient else ""
            where = "" if c.case.location == c.case.id else f", {one_line(c.case.location)}"
            lines.append(f"  {'!' if c.failed else '~'} {one_line(c.case.id)} ({c.case.origin}{where}){patient}: "
                         f"diverges {c.where()}")
            if c.first and not c.final:
                lines.append("      at the end: the same outcome" + _both(c, one_line))
            else:
                lines += _text_rows(c.final, "at the end" if c.first else "")
            if c.first:
                lines += _text_rows(c.first, c.where())
        return "\n".join(lines)

    def markdown(self) -> str:
        """Markdown: a heading, the summary, and a table (old | new) per changed case."""
        lines = ["## What changes for patients", "", md_inline(self._summary()) + ".", "",
                 "Cases from: " + ", ".join(md_inline(s) for s in self.sources) + ".", ""]
        differences = self.differences()
        if differences:
            lines += ["| what differs | cases |", "|---|---:|"]
            lines += [f"| {md_inline(w)} | {n} |" for w, n in differences]
            lines.append("")
        for c in self.changes:
            mark = "does not run to the end under a version" if c.failed else "changed"
            patient = f", patient {md_inline(c.case.patient)}" if c.case.patient else ""
            where = "" if c.case.location == c.case.id else f" {md_inline(c.case.location)}"
            lines += [f"### {md_inline(c.case.id)}", "",
                      f"{md_inline(c.case.origin[:1].upper() + c.case.origin[1:])}{where}{patient}: {mark}; the "
                      f"courses diverge {md_inline(c.where())}.", ""]
            if c.first and not c.final:
                lines += ["At the end: the same outcome" + _both(c, md_inline) + ".", ""]
            else:
                lines += _md_table(c.final, "At the end" if c.first else "")
            if c.first:
                lines += _md_table(c.first, c.where()[:1].upper() + c.where()[1:])
        return "\n".join(lines)


def _both(c: CaseChange, escape: Callable[[Any], str]) -> str:
    return "" if c.old.status == "ran" else f" under both versions ({escape(c.old.summary())})"


def _label(r: Row) -> str:
    return r.aspect if r.key in (r.aspect, "course") else f"{r.aspect} {r.key}"


def _text_rows(rows: list[Row], heading: str) -> list[str]:
    out = [f"      {heading}:"] if heading else []
    indent = "        " if heading else "      "
    for r in rows:
        out.append(f"{indent}{one_line(_label(r))}: {one_line(r.old) if r.old is not None else '(none)'} | "
                   f"{one_line(r.new) if r.new is not None else '(none)'}")
    return out


def _md_table(rows: list[Row], heading: str) -> list[str]:
    out = [f"{md_inline(heading)}:", ""] if heading else []
    out += ["| | old | new |", "|---|---|---|"]
    for r in rows:
        old = md_inline(r.old) if r.old is not None else "*(none)*"
        new = md_inline(r.new) if r.new is not None else "*(none)*"
        out.append(f"| {md_inline(_label(r))} | {old} | {new} |")
    out.append("")
    return out


# -- running both versions ---------------------------------------------------------------------------

class _Version:
    """One version's pathways: the one the command loaded and one per other profile or parameter
    overrides a scenario asks for, loaded on first use (a failed load is remembered and reported
    with each case that needs it)."""

    def __init__(self, definition: PathwayDef, profile: str | None):
        self.root = definition.root
        self.profile = profile  # named on the command line (None: each case's own, else the default)
        self._base = Pathway(definition)
        self._loaded: dict[tuple[Any, ...], Pathway | str] = {}

    def pathway(self, case: ReplayCase) -> Pathway | str:
        profile = self.profile if self.profile is not None else case.profile
        if profile == self.profile and not case.parameters:
            return self._base
        key = (profile, case.parameters)
        if key not in self._loaded:
            try:
                self._loaded[key] = load_pathway(self.root, profile=profile, parameters=dict(case.parameters) or None,
                                                 cache=False)
            except PathwayError as exc:
                self._loaded[key] = one_line(f"the pathway could not be loaded (profile {profile or 'default'}): {exc}")
        return self._loaded[key]

    def run(self, case: ReplayCase) -> Course:
        pw = self.pathway(case)
        if isinstance(pw, str):
            return Course("failed", profile=self.profile or case.profile, problems=[pw])
        return replay(pw, case.case)

    def close(self) -> None:
        for pw in [self._base, *self._loaded.values()]:
            if isinstance(pw, Pathway):
                pw.close()


def patient_diff(old: PathwayDef, new: PathwayDef, cases: Sequence[ReplayCase], sources: Sequence[str], *,
                 old_profile: str | None = None, new_profile: str | None = None) -> PatientDiff:
    """Replay ``cases`` under both versions (each loaded in this process beside the other, freed at
    the end) and collect the cases whose course changes. ``old_profile``/``new_profile`` are the
    profiles named on the command line (they win over a scenario's own)."""
    a, b = _Version(old, old_profile), _Version(new, new_profile)
    out = PatientDiff(list(sources), total=len(cases))
    try:
        for case in cases:
            change = compare_courses(case, a.run(case), b.run(case))
            if change is not None:
                out.changes.append(change)
    finally:
        a.close()
        b.close()
    return out
