"""``pathway verify``: search patient courses for one that breaks a safety invariant.

Courses are generated with Hypothesis from the pathway's own definition: every numeric field takes
values around each threshold the rules, computed inputs, watchdogs and invariants compare it with
(one step below, at, one step above), its range ends, or no value; events come at irregular gaps,
so values expire; decisions are recorded at right and wrong times. Backbones (admission only, severe
only on a later day, to rescue selection, to a rescue agent) get courses deep into the pathway before the
random events.

Each course runs through the engine; after every event each invariant of ``invariants.yaml`` is
checked (see :mod:`pathway.definition.invariants`). A refused event must leave the session as it
was; an engine error is a violation too. The first violation found is shrunk by Hypothesis to a
shortest course and returned with a ready-to-paste scenario. The search is deterministic for a seed.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from pathway.core.errors import InputError, PathwayError
from pathway.definition import conditions as C
from pathway.definition.invariants import Expect, Invariant, describe_expect, expect_holds
from pathway.definition.model import FieldDef
from pathway.definition.units import from_canonical, units_for
from pathway.runtime.session import observed_form

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from pathway.runtime.api import Pathway

__all__ = ["Violation", "VerifyReport", "verify", "check_course", "candidate_values", "scenario_yaml"]


@dataclass
class Violation:
    """An invariant broken by a course, after event ``event`` (an index into the course's events)."""

    invariant: str
    title: str
    hazards: tuple[str, ...]
    event: int
    detail: str
    case: dict[str, Any]
    state_before: str
    result: dict[str, Any] = field(default_factory=dict)
    #: the state the invariant requires, when it names one (the scenario's expectation)
    required_state: str | None = None


@dataclass
class VerifyReport:
    pathway: str
    profile: str
    seed: int
    budget: int
    courses: int = 0
    events: int = 0
    refused: int = 0
    checks: dict[str, int] = field(default_factory=dict)  # invariant -> times it applied
    seconds: float = 0.0
    violation: Violation | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in ("pathway", "profile", "seed", "budget", "courses", "events",
                                                          "refused", "checks", "seconds")}
        if self.violation is not None:
            v = self.violation
            out["violation"] = {"invariant": v.invariant, "title": v.title, "hazards": list(v.hazards), "event": v.event,
                                "detail": v.detail, "case": v.case, "scenario": scenario_yaml(v)}
        return out


# -- values --------------------------------------------------------------------------------------

def _step(value: float, ftype: str) -> float:
    if ftype == "integer":
        return 1
    magnitude = abs(value)
    return 1.0 if magnitude >= 20 else 0.1 if magnitude >= 1 else 0.01


def candidate_values(pathway: Pathway) -> dict[str, list[Any]]:
    """Per input field, the values courses draw from: around every threshold compared with it, the
    range ends, every enum value, true and false."""
    d = pathway.definition
    thresholds: dict[str, set[float]] = {}
    conds: list[C.Cond] = []
    for rule in d.rules:
        conds += [rule.due, rule.when]
    conds += list(d.watchdogs.values()) + [c.when for c in d.computed.values()]
    conds += [i.when for i in d.invariants if i.when is not None]
    for cond in conds:
        for cmp in C.fields_of(cond):
            values = cmp.value if isinstance(cmp.value, (list, tuple)) else [cmp.value]
            for v in values:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    thresholds.setdefault(cmp.field, set()).add(float(v))
    out: dict[str, list[Any]] = {}
    for name, f in d.fields.items():
        if f is None or f.aggregate is not None or name in d.decisions:
            continue
        out[name] = _field_values(f, thresholds.get(name, set()))
    return out


def _field_values(f: FieldDef, around: set[float]) -> list[Any]:
    if f.type == "boolean":
        return [True, False]
    if f.type == "enum":
        return list(f.values)
    if f.type not in ("number", "integer"):
        return []
    low, high = (f.range if f.range is not None else (0.0, 1000.0))
    vals: set[float] = {float(low), float(high)}
    for t in around:
        s = _step(t, f.type)
        vals |= {t - s, t, t + s}
    out = []
    for v in sorted(vals):
        if low <= v <= high:
            v = round(v, 4)
            out.append(int(v) if f.type == "integer" or float(v).is_integer() else v)
    if f.type == "integer":
        out = sorted({int(round(v)) for v in out})
    return out


# -- courses -------------------------------------------------------------------------------------

#: A screened patient and the first days of a typical course (used as backbones).
_SCREENED = {"weight_kg": 70, "age_years": 40, "prior_anti_tnf_failure": False, "prior_thiopurine_failure": False,
             "latent_tb": "negative", "hbv_status": "negative", "nyha_class": 0, "tpmt_status": "normal",
             "hiv_uncontrolled": False, "demyelinating_disease": False, "malignancy_current": False,
             "immunodeficiency": False}
_ADMIT = {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60,
          "albumin_g_l": 32}
#: Not acute severe on admission (Truelove & Witts not met): a backbone meets it on a later day.
_MILD = {"day": 0, "bloody_stools_24h": 4, "pulse_bpm": 80, "temp_c": 37.0, "hb_g_dl": 12.5, "crp_mg_l": 20,
         "albumin_g_l": 36}
_DAY3 = {"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80, "albumin_g_l": 30}
#: The inputs of the day-3 indices (Oxford, Lindgren, CRP/albumin ratio, Ho).
_DAY3_FIELDS = ("stool_freq_24h", "visible_blood", "crp_mg_l", "albumin_g_l", "transverse_colon_cm")
#: A plain abdominal film, and the signs of systemic toxicity (Jalan), for the toxic megacolon backbone.
_FILM_FIELDS = ("transverse_colon_cm", "caecum_cm")
_TOXICITY_FIELDS = ("temp_c", "pulse_bpm", "neutrophils_10e9_l", "hb_g_dl", "dehydration", "altered_consciousness",
                    "potassium_mmol_l", "systolic_bp_mmhg")
_LABS = {"day": 3, "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70,
         "active_serious_infection": False, "bp_uncontrolled": False, "cdiff_result": "negative",
         "cmv_biopsy_result": "negative"}


def courses(pathway: Pathway) -> SearchStrategy[dict[str, Any]]:
    """The Hypothesis strategy of patient courses (``{"patient": ..., "events": [...]}``)."""
    from hypothesis import strategies as st

    d = pathway.definition
    values = candidate_values(pathway)
    patient_fields = sorted(n for n, f in d.fields.items() if f is not None and f.scope in ("patient", "both")
                            and n in values and values[n])
    event_fields = sorted(n for n, f in d.fields.items() if f is not None and f.scope in ("event", "both")
                          and n in values and values[n])
    decisions: list[tuple[str, Any]] = []
    for name in sorted(d.decisions):
        f = d.fields[name]
        options = list(f.values) if f.type == "enum" else [True]
        decisions += [(name, v) for v in options]
    choices = [v for n, v in decisions if n == "rescue_choice"]
    chart = [n for n in ("stool_freq_24h", "visible_blood", "crp_mg_l") if n in values]
    # fields a value may be given for in another unit ({value, unit}): the engine converts it back
    other_units = {n: [u for u in units_for(f.quantity) if u != f.unit] for n, f in d.fields.items()
                   if f is not None and f.quantity and f.type == "number"}

    def maybe_in_another_unit(draw: Any, name: str, value: Any) -> Any:
        units = other_units.get(name)
        if not units or isinstance(value, bool) or not isinstance(value, (int, float)) or draw(st.integers(0, 3)):
            return value
        unit = draw(st.sampled_from(units))
        return {"value": from_canonical(d.fields[name].quantity, float(value), unit), "unit": unit}

    @st.composite
    def course(draw: Any) -> dict[str, Any]:
        patient: dict[str, Any] = {"id": "verify"}
        base = draw(st.sampled_from(["screened", "screened", "sparse"]))
        if base == "screened":
            patient.update(_SCREENED)
        for name in draw(st.lists(st.sampled_from(patient_fields), max_size=4, unique=True)):
            value = draw(st.one_of(st.none(), st.sampled_from(values[name])))
            if value is None:
                patient.pop(name, None)
            else:
                patient[name] = value
        backbone = draw(st.sampled_from(["none", "admitted", "day3", "selection", "rescue", "rescue_course", "late",
                                              "responded", "film"]))
        events: list[dict[str, Any]] = []
        if backbone == "late":
            # severe only on reassessment: IV steroids (and their day count) start after admission
            events += [dict(_MILD), dict(_ADMIT, day=draw(st.sampled_from([0.5, 1, 2])))]
        elif backbone != "none":
            events.append(dict(_ADMIT))
        if backbone == "day3":
            # a day-3 assessment drawn around every index threshold (Oxford, Lindgren, CRP/albumin, Ho)
            events.append({"day": 3, **{n: draw(st.sampled_from(values[n])) for n in _DAY3_FIELDS if n in values}})
        if backbone == "responded":
            # a complete response on day 3 (steroid response): what follows may be a relapse
            events.append({"day": 3, "stool_freq_24h": 2, "visible_blood": False, "crp_mg_l": 10})
            relapse: dict[str, Any] = {n: draw(st.sampled_from(values[n]))
                                       for n in ("bloody_stools_24h", "pulse_bpm", "temp_c")
                                       if n in values and draw(st.booleans())}
            if relapse:
                events.append({"day": draw(st.sampled_from([4, 5, 6])), **relapse})
        if backbone == "film" and "transverse_colon_cm" in values:
            # toxic megacolon and its parts (INV-001, INV-001b): a plain film drawn around the dilatation thresholds,
            # then systemic toxicity, recorded or drawn from its signs, the same day or later (the film then older)
            film_day = draw(st.sampled_from([1, 2, 3]))
            film = {n: draw(st.sampled_from(values[n])) for n in _FILM_FIELDS if n in values and draw(st.booleans())}
            if not film:
                film = {"transverse_colon_cm": draw(st.sampled_from(values["transverse_colon_cm"]))}
            events.append({"day": film_day, **film})
            later: dict[str, Any] = {"day": film_day + draw(st.sampled_from([0, 0.5, 1, 2, 3]))}
            if draw(st.booleans()):
                later["systemic_toxicity"] = draw(st.booleans())
            else:
                later.update({n: draw(st.sampled_from(values[n])) for n in _TOXICITY_FIELDS if n in values})
            events.append(later)
        if backbone in ("selection", "rescue", "rescue_course"):
            events += [dict(_DAY3), dict(_LABS)]
        if backbone in ("rescue", "rescue_course") and choices:
            events.append({"day": 3, "rescue_choice": draw(st.sampled_from(choices))})
        if backbone == "rescue_course":
            # daily charts on the agent: stools and CRP drifting from the start, better or worse
            stools, crp = 9, 80.0
            for k in range(1, draw(st.integers(min_value=2, max_value=16)) + 1):
                stools = max(0, stools + draw(st.sampled_from([-3, -2, -1, -1, 0, 1, 2])))
                crp = max(1.0, round(crp * draw(st.sampled_from([0.5, 0.7, 0.75, 0.76, 0.9, 1.0, 1.2])), 1))
                events.append({"day": 3 + k, "stool_freq_24h": stools, "visible_blood": draw(st.booleans()),
                               "crp_mg_l": maybe_in_another_unit(draw, "crp_mg_l", crp)})
        day = float(events[-1]["day"]) if events else 0.0
        for _ in range(draw(st.integers(min_value=1, max_value=6))):
            day += draw(st.sampled_from([0, 0.5, 1, 1, 1, 2, 3, 4]))
            event: dict[str, Any] = {"day": int(day) if float(day).is_integer() else day}
            if chart and draw(st.booleans()):  # the daily chart: stools, blood and CRP together
                for name in chart:
                    event[name] = maybe_in_another_unit(draw, name, draw(st.sampled_from(values[name])))
            for name in draw(st.lists(st.sampled_from(event_fields), min_size=1, max_size=4, unique=True)):
                event[name] = maybe_in_another_unit(draw, name, draw(st.sampled_from(values[name])))
            if decisions and draw(st.integers(min_value=0, max_value=4)) == 0:
                name, value = draw(st.sampled_from(decisions))
                event[name] = value
            events.append(event)
        return {"patient": patient, "events": events}

    result: SearchStrategy[dict[str, Any]] = course()
    return result


# -- checking ------------------------------------------------------------------------------------

def _dump(session: Any) -> str:
    return json.dumps(session.dump(), sort_keys=True, default=str)


def check_course(pathway: Pathway, case: dict[str, Any], stats: VerifyReport | None = None) -> Violation | None:
    """Run one course; the first invariant it breaks (after which event), or None."""
    d = pathway.definition
    invariants = d.invariants
    builtins = {i.builtin: i for i in invariants if i.builtin}
    try:
        session = pathway.start(dict(case["patient"]))
    except InputError:
        return None  # a patient record the input refuses: nothing to run
    session.keep_evaluations("last")  # read after every event
    applied: list[dict[str, Any]] = []
    #: open 'within_days' obligations: invariant id -> (event index that opened it, deadline day)
    pending: dict[str, list[tuple[int, float]]] = {}
    last: tuple[int, dict[str, Any], dict[str, Any], str] | None = None  # index, facts, result, state before
    late = False
    for index, event in enumerate(case["events"]):
        before_state = session.state
        before = _dump(session) if "refused_event_changes_nothing" in builtins else ""
        try:
            result = session.observe(dict(event))
        except InputError as err:
            if stats is not None:
                stats.refused += 1
            inv = builtins.get("refused_event_changes_nothing")
            if inv is not None:
                _count(stats, inv)
            if inv is not None and _dump(session) != before:
                return _violation(inv, index, f"event refused ({err}) but the session changed", case, before_state, {})
            continue
        except PathwayError as err:
            return Violation("engine", "The engine fails on a valid event", (), index, f"{type(err).__name__}: {err}",
                             case, before_state)
        applied.append(event)
        if stats is not None:
            stats.events += 1
        if (result.get("changes") or {}).get("reevaluated_from") is not None:
            # A late event: the course was evaluated again from its place, and what an invariant judges
            # (the move an event made, the values it saw) happened at the events re-evaluated, not at the
            # last one. The arrival order gives the same course as the timeline (a tested property; only a
            # confirmation, confirmed_by, reads the arrival order), so the course is checked event by event in
            # timeline order at the end.
            late = True
            continue
        evaluations = session.last_event_evaluations()
        facts = dict(evaluations[0]["facts"]) if evaluations else {}
        for ev in evaluations:
            facts.update(ev.get("frozen", {}))
            facts.update(ev["derived"])
        # a decision recorded in this event counts for the invariants, whichever state it was due in
        facts.update({k: v for k, v in event.items() if k in d.decisions})
        for inv in invariants:
            if inv.at_end:
                continue
            if inv.after is not None:
                problem = _within(inv, pending.setdefault(inv.id, []), index, facts, result, before_state, stats)
            else:
                problem = _check(pathway, inv, facts, result, before_state, event, evaluations, stats)
            if problem is None and inv.builtin == "monotone_risk_indices":
                problem = _monotone(pathway, inv, case, applied, facts, evaluations, stats)
            if problem is not None:
                return _violation(inv, index, problem, case, before_state, result)
        last = (index, facts, result, before_state)
    if late:
        in_order = {"patient": case["patient"], "events": [observed_form(e) for e in session.recorded_events()]}
        # a violation found so is reported with that course: the same events, in the order they happened
        return check_course(pathway, in_order, stats)
    if last is not None:
        index, facts, result, before_state = last
        for inv in invariants:
            if inv.at_end:
                problem = _check(pathway, inv, facts, result, before_state, {}, [], stats)
                if problem is not None:
                    return _violation(inv, index, "at the end of the course: " + problem, case, before_state, result)
    return None


def _within(inv: Invariant, open_: list[tuple[int, float]], index: int, facts: dict[str, Any], result: dict[str, Any],
            before: str, stats: VerifyReport | None) -> str | None:
    """``after`` ... ``within_days``: an open obligation broken by the first event past its deadline;
    discharged by a result showing ``expect``; opened by a result showing ``after`` (``when`` holding)."""
    assert inv.after is not None and inv.expect is not None and inv.within_days is not None and inv.when is not None
    day = float(result.get("day") or 0)
    late = [(i, deadline) for i, deadline in open_ if day > deadline]
    if late and not expect_holds(inv.expect, result, before):
        opened, deadline = late[0]
        return (f"after event {opened} showed {describe_expect(inv.after)}, expected {describe_expect(inv.expect)} "
                f"by day {deadline:g}; on day {day:g} still not: {_summary(result)}")
    if expect_holds(inv.expect, result, before):
        open_.clear()
        return None
    open_[:] = [(i, deadline) for i, deadline in open_ if day <= deadline]
    if C.evaluate(inv.when, facts) is True and expect_holds(inv.after, result, before):
        _count(stats, inv)
        open_.append((index, day + inv.within_days))
    return None


#: One step worse for each input a risk index grows with (or falls with: albumin).
_WORSE = {"stool_freq_24h": 1, "crp_mg_l": 10, "albumin_g_l": -1}


def _monotone(pathway: Pathway, inv: Invariant, case: dict[str, Any], applied: list[dict[str, Any]],
              facts: dict[str, Any], evaluations: list[dict[str, Any]], stats: VerifyReport | None) -> str | None:
    """Re-run the course with the last event one step worse in each input: no positive index may turn negative.
    Only indices decided by this event count (a kept index from an earlier day does not change)."""
    kept = evaluations[0].get("frozen", {}) if evaluations else {}
    positive = {k: facts[k] for k, good in inv.monotone.items()
                if k in facts and facts[k] in good and k not in kept}
    event = applied[-1]
    worse_inputs = [k for k in _WORSE if isinstance(event.get(k), (int, float)) and not isinstance(event.get(k), bool)]
    if not positive or not worse_inputs:
        return None
    _count(stats, inv)
    for name in worse_inputs:
        changed = dict(event)
        changed[name] = event[name] + _WORSE[name]
        try:
            session = pathway.start(dict(case["patient"]))
            session.keep_evaluations("last")
            for earlier in applied[:-1]:
                session.observe(dict(earlier))
            session.observe(changed)
        except PathwayError:
            continue  # the worse value is refused (out of range): nothing to compare
        seen: dict[str, Any] = {}
        for ev in session.last_event_evaluations():
            seen.update(ev.get("frozen", {}))
            seen.update(ev["derived"])
        for index_name, value in positive.items():
            if seen.get(index_name) not in inv.monotone[index_name]:
                return (f"{index_name} is {json.dumps(value)} with {name}={event[name]} but "
                        f"{json.dumps(seen.get(index_name))} with {name}={changed[name]} (a worse value)")
    return None


def _violation(inv: Invariant, index: int, detail: str, case: dict[str, Any], before: str,
               result: dict[str, Any]) -> Violation:
    course = {"patient": case["patient"], "events": case["events"][: index + 1]}
    return Violation(inv.id, inv.title, inv.hazards, index, detail, course, before, result,
                     _required_state(inv.expect) if inv.expect is not None else None)


def _required_state(e: Expect) -> str | None:
    """The first state an expectation requires (``moves_to`` or ``state``), outside any ``not``."""
    if e.kind in ("moves_to", "state"):
        return str(e.arg if e.kind == "moves_to" else e.arg[0])
    if e.kind in ("any", "all"):
        for part in e.parts:
            found = _required_state(part)
            if found is not None:
                return found
    return None


def _count(stats: VerifyReport | None, inv: Invariant) -> None:
    if stats is not None:
        stats.checks[inv.id] = stats.checks.get(inv.id, 0) + 1


def _check(pathway: Pathway, inv: Invariant, facts: dict[str, Any], result: dict[str, Any], before: str,
           event: dict[str, Any], evaluations: list[dict[str, Any]], stats: VerifyReport | None) -> str | None:
    d = pathway.definition
    if inv.builtin is None:
        assert inv.when is not None and inv.expect is not None
        if C.evaluate(inv.when, facts) is not True:
            return None
        _count(stats, inv)
        if expect_holds(inv.expect, result, before):
            return None
        return (f"in '{before}' with {_shown(inv.when, facts)}, expected {describe_expect(inv.expect)}; "
                f"the result: {_summary(result)}")
    moved = result["state"] != before
    if inv.builtin == "recorded_decision_acted_on_or_alerted":
        for name in (n for n in event if n in d.decisions):
            if before not in d.decisions[name]:
                continue
            _count(stats, inv)
            testing = {r.id for r in d.rules_in(before) if any(c.field == name for c in C.fields_of(r.when))}
            said = [a for a in result["alerts"] if a["level"] == "critical"
                    and (a["rule"] == f"decision.{name}" or a["rule"] in testing)]
            if not moved and not said and not result.get("proposals"):
                return f"'{name}: {event[name]}' recorded in '{before}': no move and no alert; {_summary(result)}"
        return None
    if inv.builtin == "no_stall":
        final = evaluations[-1] if evaluations else None
        cond = d.watchdogs.get(result["state"])
        if final is None or cond is None:
            return None
        known = {**final["facts"], **final["derived"]}
        if C.evaluate(cond, known) is not True:
            return None
        _count(stats, inv)
        critical = any(a["level"] == "critical" for a in result["alerts"])
        if moved or result.get("proposals") or result["data_required"] or critical:
            return None
        return f"decision overdue in '{result['state']}' and nothing said: {_summary(result)}"
    if inv.builtin == "doses_within_label":
        for rec in result["recommendations"]:
            med = rec.get("medication") or {}
            rng = inv.dose_ranges.get(med.get("name", ""))
            weight = (med.get("basis") or {}).get("weight_kg")
            if not rng or not weight:
                continue
            _count(stats, inv)
            for kind, (low, high) in rng.items():
                amount = med.get("dose_mg") if kind == "mg_per_kg" else med.get("daily_mg")
                if amount is None:
                    continue
                per_kg = float(amount) / float(weight)
                if not low <= per_kg <= high:
                    return (f"{med['name']} {amount} mg for {weight} kg is {per_kg:.3g} {kind.replace('_', '/')}, "
                            f"outside {low:g}-{high:g} (rule {rec['rule']})")
        return None
    if inv.builtin == "no_recommendation_of_an_avoided_drug":
        avoid_texts = [r["text"].lower() for r in result["recommendations"] if r["kind"] == "avoid"]
        avoid_texts += [a["text"].lower() for a in result["alerts"] if "avoid" in a["text"].lower()]
        avoided = [c for c in inv.drug_classes if any(c in t for t in avoid_texts)]
        if not avoided:
            return None
        _count(stats, inv)
        for rec in result["recommendations"]:
            if rec["kind"] != "medication":
                continue
            name = str((rec.get("medication") or {}).get("name", "")).lower()
            text = rec["text"].lower()
            for cls in avoided:
                members = (cls, *inv.drug_classes[cls])
                if name in members or any(m in text for m in members):
                    return (f"'{rec['rule']}' recommends {name or 'a medicine'} ({rec['text'][:80]}) while the "
                            f"result says to avoid {cls}")
        return None
    return None  # refused_event_changes_nothing is checked where the event is refused


def _shown(cond: C.Cond, facts: dict[str, Any]) -> str:
    names = dict.fromkeys(c.field for c in C.fields_of(cond))
    return ", ".join(f"{n}={json.dumps(facts[n])}" for n in names if n in facts) or "no values"


def _summary(result: dict[str, Any]) -> str:
    alerts = [f"{a['rule']}/{a['level']}" for a in result["alerts"]]
    recs = [r["rule"] for r in result["recommendations"]]
    props = [f"{p['rule']}->{p['to']}" for p in result.get("proposals", [])]
    return (f"state {result['state']}, proposals {props or 'none'}, alerts {alerts or 'none'}, "
            f"recommendations {recs or 'none'}")


# -- search --------------------------------------------------------------------------------------

def verify(pathway: Pathway, budget: int = 1000, seed: int = 0) -> VerifyReport:
    """Search ``budget`` generated courses for an invariant violation; shrink the first one found."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    d = pathway.definition
    report = VerifyReport(d.id, d.profile or "default", seed, budget)
    started = time.perf_counter()
    found: list[Violation] = []

    def broken(case: dict[str, Any]) -> bool:
        if not found:
            report.courses += 1
        v = check_course(pathway, case, None if found else report)
        if v is not None:
            found.append(v)
        return v is not None

    conf = settings(max_examples=budget, database=None, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    try:
        minimal = find(courses(pathway), broken, settings=conf, random=random.Random(seed))
    except NoSuchExample:
        minimal = None
    if minimal is not None:
        minimal = _reduced(pathway, minimal)
        report.violation = check_course(pathway, minimal)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _reduced(pathway: Pathway, case: dict[str, Any]) -> dict[str, Any]:
    """``case`` without every event and then every event value whose removal keeps the course breaking
    the same invariant.

    Hypothesis shrinks within a time limit, so under load its counterexample may keep events that do not
    matter; this pass makes the printed scenario as small whatever time the shrinking had (one check per
    event and per value)."""
    first = check_course(pathway, case)
    if first is None:
        return case

    def breaks(events: list[dict[str, Any]]) -> bool:  # the same invariant broken the same way, not another
        v = check_course(pathway, {**case, "events": events}) if events else None
        return v is not None and (v.invariant, v.detail) == (first.invariant, first.detail)

    events = [dict(e) for e in case["events"]]
    i = 0
    while i < len(events):
        if breaks(events[:i] + events[i + 1:]):
            del events[i]
        else:
            i += 1
    for i, event in enumerate(events):
        for key in [k for k in event if k not in ("day", "time")]:
            trial = {k: v for k, v in events[i].items() if k != key}
            if len(trial) > 1 and breaks(events[:i] + [trial] + events[i + 1:]):
                events[i] = trial
    return {**case, "events": events}


def scenario_yaml(v: Violation) -> str:
    """The counterexample as a scenario to paste into the library (its expectation is what the
    invariant requires; the comment says what the engine did)."""
    if v.required_state is not None:
        expect: dict[str, Any] = {"state": v.required_state}
        note = f"the engine ended in '{v.result.get('state', v.state_before)}'"
    elif v.result:
        expect = {"state": v.result["state"]}
        note = "'expect' holds what the engine did: edit it to the safe outcome"
    else:
        expect, note = {"refused": {"code": "PW400"}}, "edit 'expect' to the refusal the event should give"
    doc = {"scenarios": [{
        "id": f"verify-{v.invariant.lower()}-counterexample",
        "purpose": f"Counterexample to {v.invariant} ({', '.join(v.hazards) or 'no hazard'}): {v.title}",
        "case": v.case,
        "expect": expect,
    }]}
    head = f"# {v.invariant} broken after event {v.event}: {v.detail}\n# {note}.\n"
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)

