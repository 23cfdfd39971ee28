"""One patient's course through a pathway: events in, a result out (JSON-ready dicts).

A session is isolated (its own facts, state and trace) and deterministic: the same patient
and events give byte-identical JSON. An event is validated first and applied to copies; the
session changes only when the whole event has been evaluated without error.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from pathway.definition.effects import Alert, Dose, Medication, Offer, Recommend, Require, Titrate, Transition, fill_text
from pathway.runtime.engine import Firing
from pathway.core.errors import EngineError, TransitionRefused
from pathway.definition.inputs import validate_event, validate_patient

if TYPE_CHECKING:
    from pathway.runtime.api import Pathway

__all__ = ["Session", "RESULT_KEYS", "SESSION_FORMAT"]

RESULT_KEYS = ("pathway", "version", "patient_id", "state", "path", "recommendations", "options",
               "data_required", "alerts", "trace")
SESSION_FORMAT = 1


def _round(value: float, step: float, rounding: str = ROUND_HALF_UP) -> float:
    """Round to a multiple of ``step`` (half up by default: deterministic, no banker's rounding)."""
    q = (Decimal(str(value)) / Decimal(str(step))).quantize(Decimal(1), rounding=rounding)
    result = float(q * Decimal(str(step)))
    return int(result) if result.is_integer() else round(result, 6)


def _copy_trace(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy callers may change freely (entries hold scalars, a facts dict and a missing list)."""
    out = []
    for entry in trace:
        item = dict(entry)
        item["facts"] = dict(entry["facts"])
        if "missing" in entry:
            item["missing"] = list(entry["missing"])
        out.append(item)
    return out


def _num(value: float) -> float | int:
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value


class Session:
    """A patient's session. Create with :meth:`Pathway.start`; feed with :meth:`observe`."""

    def __init__(self, pathway: "Pathway", patient_id: str, patient: dict[str, Any], facts: dict[str, Any],
                 admission: datetime | None):
        self._pathway = pathway
        self.patient_id = patient_id
        self._patient = patient
        self._admission = admission
        self._facts = facts
        self._state = pathway.definition.start_state
        self._path = [self._state]
        self._entered_day: float = 0
        self._day: float | None = None
        self._events: list[dict[str, Any]] = []
        self._trace: list[dict[str, Any]] = []
        # What each evaluation saw (inputs and derived facts), so every clause of every rule can
        # be explained later without running the engine again.
        self._evaluations: list[dict[str, Any]] = []
        self._current: list[dict[str, Any]] = []  # firings that make up "now"
        self._derived: dict[str, Any] = {}
        self._seen: dict[str, float] = {}  # field -> day recorded (event values only)
        self._history: dict[str, list[list[Any]]] = {}  # field -> [[day, value], ...] (event values)
        self._entered: dict[str, float] = {self._state: 0}  # state -> day first entered

    # -- public API --------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def path(self) -> list[str]:
        return list(self._path)

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        """Every evaluation so far: ``event``, ``day``, ``state``, the ``facts`` it saw and the ``derived`` facts."""
        return copy.deepcopy(self._evaluations)

    def observe(self, event: dict[str, Any]) -> dict[str, Any]:
        """Apply one event (``day`` or ``time`` plus field values); return the result after it.

        Raises InputError (bad event), TransitionRefused or EngineError; in every case the
        session is left exactly as it was.
        """
        where = f"events[{len(self._events)}]"
        d = self._pathway.definition
        day, values, admission = validate_event(event, d.fields, self._pathway.builtins, where=where,
                                                admission=self._admission, last_day=self._day)
        work = self._copy()
        work._admission = admission
        work._apply(day, values, event, len(self._events))
        self.__dict__.update(work.__dict__)
        return self.result()

    def result(self) -> dict[str, Any]:
        """The current result (the contract of DESIGN §2); a fresh JSON-ready dict."""
        d = self._pathway.definition
        recs: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        options: dict[str, dict[str, Any]] = {}
        required: dict[str, dict[str, Any]] = {}
        for item in self._current:
            rule = self._pathway.rule(item["rule"])
            evidence = {"sources": list(rule.evidence.sources), "strength": rule.evidence.strength,
                        "status": rule.evidence.status}
            for f in item.get("missing", []):
                self._need(required, f, rule.id, f"needed for '{rule.title}'")
            for eff in item["effects"]:
                kind = eff["kind"]
                if kind == "recommend" or kind == "dose":
                    rec = {"rule": rule.id, "kind": eff["rec_kind"], "text": eff["text"], "evidence": evidence}
                    if eff.get("medication"):
                        rec["medication"] = eff["medication"]
                    recs.append(rec)
                elif kind == "alert":
                    alerts.append({"rule": rule.id, "level": eff["level"], "text": eff["text"], "evidence": evidence})
                elif kind == "require":
                    for f in eff["fields"]:
                        self._need(required, f, rule.id, eff["text"] or f"needed for '{rule.title}'")
                elif kind == "offer":
                    opt = options.setdefault(eff["option"], {"option": eff["option"], "available": True, "rank": eff["rank"],
                                                             "text": "", "for": [], "against": [], "rules": []})
                    opt["available"] = opt["available"] and eff["available"]
                    opt["rank"] = min(opt["rank"], eff["rank"])
                    opt["text"] = opt["text"] or eff["text"]
                    for key in ("for", "against"):
                        opt[key].extend(x for x in eff[key] if x not in opt[key])
                    if rule.id not in opt["rules"]:
                        opt["rules"].append(rule.id)
        ranked = sorted(options.values(), key=lambda o: (o["rank"], o["option"]))
        for name, entry in required.items():
            spec = d.fields.get(name)
            entry.update({"title": spec.title if spec else name, "unit": spec.unit if spec else ""})
        state_def = d.spec.states[self._state]
        return {
            "pathway": d.id,
            "version": d.version,
            "profile": d.profile,
            "patient_id": self.patient_id,
            "day": self._day,
            "state": self._state,
            "state_title": state_def.title,
            "state_kind": state_def.kind,
            "path": list(self._path),
            "recommendations": recs,
            "options": ranked,
            "data_required": list(required.values()),
            "alerts": alerts,
            "derived": dict(sorted(self._derived.items())),  # derived during the last event
            "unverified_rules": sorted({item["rule"] for item in self._current
                                        if self._pathway.rule(item["rule"]).evidence.status == "unverified"}),
            "trace": _copy_trace(self._trace),
        }

    def to_json(self) -> str:
        """Deterministic JSON of the current result (sorted keys)."""
        return json.dumps(self.result(), sort_keys=True, ensure_ascii=False, indent=2)

    # -- persistence -------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Everything needed to resume this session later (JSON-ready)."""
        d = self._pathway.definition
        return {
            "format": SESSION_FORMAT,
            "pathway": d.id,
            "version": d.version,
            "profile": d.profile,
            "patient": copy.deepcopy(self._patient),
            "events": copy.deepcopy(self._events),
            "state": self._state,
            "path": list(self._path),
            "entered_day": self._entered_day,
            "day": self._day,
            "facts": dict(self._facts),
            "seen": dict(self._seen),
            "history": copy.deepcopy(self._history),
            "entered": dict(self._entered),
            "derived": dict(self._derived),
            "trace": copy.deepcopy(self._trace),
            "evaluations": copy.deepcopy(self._evaluations),
            "current": copy.deepcopy(self._current),
            "admission": self._admission.isoformat() if self._admission else None,
        }

    @classmethod
    def load(cls, pathway: "Pathway", doc: dict[str, Any]) -> "Session":
        d = pathway.definition
        if doc.get("format") != SESSION_FORMAT or doc.get("pathway") != d.id:
            raise EngineError(f"stored session is for pathway {doc.get('pathway')!r} format {doc.get('format')!r}")
        if doc.get("version") != d.version:
            raise EngineError(f"stored session ran under {d.id} {doc.get('version')}; this is {d.version}: replay its events instead")
        s = cls(pathway, str(doc["patient"]["id"]), copy.deepcopy(doc["patient"]), dict(doc["facts"]),
                datetime.fromisoformat(doc["admission"]) if doc.get("admission") else None)
        s._events = copy.deepcopy(doc["events"])
        s._state = doc["state"]
        s._path = list(doc["path"])
        s._entered_day = doc["entered_day"]
        s._day = doc["day"]
        s._derived = dict(doc["derived"])
        s._seen = dict(doc["seen"])
        s._history = copy.deepcopy(doc["history"])
        s._entered = dict(doc["entered"])
        s._trace = copy.deepcopy(doc["trace"])
        s._evaluations = copy.deepcopy(doc["evaluations"])
        s._current = copy.deepcopy(doc["current"])
        return s

    # -- internals ---------------------------------------------------------------------
    @staticmethod
    def _need(required: dict[str, dict[str, Any]], name: str, rule: str, text: str) -> None:
        entry = required.setdefault(name, {"field": name, "rules": [], "text": text})
        if rule not in entry["rules"]:
            entry["rules"].append(rule)

    def _copy(self) -> "Session":
        new = object.__new__(Session)
        new.__dict__.update(self.__dict__)
        new._facts = dict(self._facts)
        new._seen = dict(self._seen)
        new._history = {k: list(v) for k, v in self._history.items()}
        new._entered = dict(self._entered)
        new._path = list(self._path)
        new._events = list(self._events)
        new._trace = list(self._trace)
        new._evaluations = list(self._evaluations)
        return new

    def _snapshot(self, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the rules see: current values, computed fields and the clock of the current state.

        ``base`` (the values part, which only an event changes) is reused across the states one
        event passes through.
        """
        snap = dict(base) if base is not None else self._values_now()
        snap["day"] = self._day
        snap["days_in_state"] = _num(self._day - self._entered_day) if self._day is not None else None
        if self._day is not None:
            for state, entered in self._entered.items():
                snap[f"days_since_{state}"] = _num(self._day - entered)
        snap["state"] = self._state
        return snap

    def _values_now(self) -> dict[str, Any]:
        """Values still current on this day (see ``valid_for_days``) and the computed fields."""
        fields = self._pathway.definition.fields
        snap: dict[str, Any] = {}
        for name, value in self._facts.items():
            seen = self._seen.get(name)
            valid = fields[name].valid_for_days
            if seen is None or valid is None or self._day - seen < valid:  # type: ignore[operator]
                snap[name] = value
        for name, spec in self._pathway.aggregates.items():
            value = self._aggregate(spec.aggregate)  # type: ignore[arg-type]
            if value is not None:
                snap[name] = value
        return snap

    def _aggregate(self, agg: Any) -> Any:
        """mean/first/last/min/max/count of a field's recorded values in a window of days (last value of each day)."""
        per_day: dict[float, Any] = {}
        for day, value in self._history.get(agg.of, []):
            if agg.from_day <= day <= agg.to_day and day <= (self._day if self._day is not None else day):
                per_day[day] = value
        if not per_day:
            return None
        values = [per_day[d] for d in sorted(per_day)]
        if agg.fn == "count":
            return len(values)
        if agg.fn == "first":
            return values[0]
        if agg.fn == "last":
            return values[-1]
        if agg.fn == "min":
            return min(values)
        if agg.fn == "max":
            return max(values)
        return _num(sum(values) / len(values))

    def _apply(self, day: float, values: dict[str, Any], raw_event: dict[str, Any], index: int) -> None:
        pw = self._pathway
        d = pw.definition
        self._day = day
        self._facts.update(values)
        self._seen.update({name: day for name in values})
        for name, value in values.items():
            self._history.setdefault(name, []).append([day, value])
        self._events.append({"day": day, **values} if "note" not in raw_event else {"day": day, **values, "note": raw_event["note"]})
        taken: list[dict[str, Any]] = []
        event_derived: dict[str, Any] = {}
        values_now = self._values_now()
        for _hop in range(len(d.spec.states) + 1):
            snapshot = self._snapshot(values_now)
            firings, derived = pw.engine.evaluate(self._state, snapshot)
            self._derived = derived
            event_derived.update(derived)
            self._evaluations.append({"event": index, "day": day, "state": self._state,
                                      "facts": {k: v for k, v in snapshot.items() if v is not None},
                                      "derived": dict(derived)})
            chosen = self._choose(firings)
            for f in firings:
                entry = {"event": index, "day": day, "state": self._state, "rule": f.rule, "branch": f.branch,
                         "facts": f.facts}
                if f.missing:
                    entry["missing"] = list(f.missing)
                if chosen is not None and f is chosen[0]:
                    entry["from"], entry["to"] = self._state, chosen[1]
                self._trace.append(entry)
            if chosen is None:
                # Only what makes up "now" is rendered: the moves taken and the final state's firings.
                values = self._values(snapshot)
                self._current = taken + [self._record(f, snapshot, values) for f in firings]
                # The result shows every fact derived during this event, in every state it passed.
                self._derived = event_derived
                return
            firing, target = chosen
            if not pw.graph.has_edge(self._state, target):
                raise TransitionRefused(firing.rule, self._state, target)
            taken.append(self._record(firing, snapshot, self._values(snapshot)))
            self._state = target
            self._entered_day = day
            self._entered.setdefault(target, day)
            self._path.append(target)
        raise EngineError(f"more than {len(d.spec.states)} transitions in one event: the rules loop")

    def _choose(self, firings: list[Firing]) -> tuple[Firing, str] | None:
        moves = [(f, e.to) for f in firings for e in f.effects if isinstance(e, Transition)]
        if not moves:
            return None
        rules = self._pathway
        best = max(rules.rule(f.rule).priority for f, _ in moves)
        top = [(f, t) for f, t in moves if rules.rule(f.rule).priority == best]
        targets = sorted({t for _, t in top})
        if len(targets) > 1:
            names = ", ".join(f"{f.rule} -> {t}" for f, t in top)
            raise EngineError(f"conflicting transitions at the same priority in state '{self._state}': {names}; "
                              "give one rule a higher priority; nothing was applied")
        top.sort(key=lambda ft: rules.rule_order(ft[0].rule))
        return top[0]

    def _values(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """Names a text may use: parameters, then current values, then derived facts."""
        values = dict(self._pathway.definition.params)
        values.update({k: v for k, v in snapshot.items() if v is not None})
        values.update(self._derived)
        return values

    def _record(self, firing: Firing, snapshot: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """Effects of one firing, rendered against the snapshot (texts filled, doses computed)."""
        effects: list[dict[str, Any]] = []
        for eff in firing.effects:
            if isinstance(eff, Recommend):
                item: dict[str, Any] = {"kind": "recommend", "rec_kind": eff.kind, "text": fill_text(eff.text, values)}
                if eff.medication is not None:
                    item["medication"] = self._medication(eff.medication)
                effects.append(item)
            elif isinstance(eff, Dose):
                med, text = self._dose(eff, snapshot, values)
                effects.append({"kind": "dose", "rec_kind": "medication", "text": text, "medication": med})
            elif isinstance(eff, Titrate):
                med, text = self._titrate(eff, snapshot, values)
                effects.append({"kind": "dose", "rec_kind": "medication", "text": text, "medication": med})
            elif isinstance(eff, Alert):
                effects.append({"kind": "alert", "level": eff.level, "text": fill_text(eff.text, values)})
            elif isinstance(eff, Require):
                missing = [f for f in eff.fields if snapshot.get(f) is None]
                if missing:
                    effects.append({"kind": "require", "fields": missing, "text": fill_text(eff.text, values)})
            elif isinstance(eff, Offer):
                effects.append({"kind": "offer", "option": eff.option, "available": eff.available, "rank": _num(float(eff.rank)),
                                "text": fill_text(eff.text, values), "for": [fill_text(x, values) for x in eff.for_],
                                "against": [fill_text(x, values) for x in eff.against]})
        out: dict[str, Any] = {"rule": firing.rule, "branch": firing.branch, "effects": effects}
        if firing.missing:
            out["missing"] = list(firing.missing)
        return out

    @staticmethod
    def _medication(med: Medication) -> dict[str, Any]:
        data = med.model_dump(exclude_defaults=True)
        if "targets" in data:
            data["targets"] = {k: [_num(v[0]), _num(v[1])] for k, v in data["targets"].items()}
        return data

    @staticmethod
    def _titrate(eff: Titrate, snapshot: dict[str, Any], values: dict[str, Any]) -> tuple[dict[str, Any], str]:
        current = float(snapshot[eff.current_daily_mg])
        measured = float(snapshot[eff.measured])
        target = float(eff.target)  # type: ignore[arg-type]
        times = float(eff.times_per_day)  # type: ignore[arg-type]
        step = float(eff.round_to_mg)  # type: ignore[arg-type]
        proposed = current * target / measured if measured > 0 else current * 2
        limited = False
        if eff.max_change_fraction is not None:
            frac = float(eff.max_change_fraction)  # type: ignore[arg-type]
            low, high = current * (1 - frac), current * (1 + frac)
            if not low <= proposed <= high:
                proposed, limited = min(max(proposed, low), high), True
        if limited:
            # At the limit, round toward the current dose so the step never exceeds the limit.
            rounding = ROUND_FLOOR if proposed > current else ROUND_CEILING
            dose = _round(proposed / times, step, rounding)
        else:
            dose = _round(proposed / times, step)
        if dose <= 0:
            dose = _num(step)
        med: dict[str, Any] = {"name": eff.name, "dose_mg": dose, "times_per_day": _num(times), "route": eff.route,
                               "daily_mg": _num(dose * times),
                               "basis": {eff.current_daily_mg: _num(current), eff.measured: _num(measured),
                                         "target": _num(target)},
                               "calculated_mg": _num(proposed / times)}
        if limited:
            med["change_limited"] = True
        change = round(100 * (dose * times - current) / current) if current else 0
        filled = dict(values, dose_mg=dose, times_per_day=_num(times), new_daily_mg=med["daily_mg"], change_percent=change)
        default = f"{eff.name} {dose:g} mg {eff.route} {_num(times)} times a day"
        return med, fill_text(eff.text, filled) if eff.text else default

    @staticmethod
    def _dose(eff: Dose, snapshot: dict[str, Any], values: dict[str, Any]) -> tuple[dict[str, Any], str]:
        weight = float(snapshot["weight_kg"])  # guaranteed: dose rules require weight_kg
        times = float(eff.times_per_day)  # type: ignore[arg-type]
        step = float(eff.round_to_mg)  # type: ignore[arg-type]
        if eff.mg_per_kg_per_day is not None:
            per_kg_day = float(eff.mg_per_kg_per_day)  # type: ignore[arg-type]
            raw = weight * per_kg_day / times
        else:
            per_kg_day = None
            raw = weight * float(eff.mg_per_kg)  # type: ignore[arg-type]
        dose = _round(raw, step)
        capped = False
        if eff.max_mg_per_dose is not None and dose > float(eff.max_mg_per_dose):  # type: ignore[arg-type]
            dose, capped = _num(float(eff.max_mg_per_dose)), True  # type: ignore[arg-type]
        med: dict[str, Any] = {"name": eff.name, "dose_mg": dose, "times_per_day": _num(times), "route": eff.route,
                               "daily_mg": _num(dose * times), "basis": {"weight_kg": _num(weight)},
                               "calculated_mg": _num(raw)}
        if per_kg_day is not None:
            med["mg_per_kg_per_day"] = _num(per_kg_day)
        else:
            med["mg_per_kg"] = _num(float(eff.mg_per_kg))  # type: ignore[arg-type]
        if capped:
            med["capped_at_max"] = True
        for key in ("frequency", "duration", "schedule"):
            if getattr(eff, key):
                med[key] = getattr(eff, key)
        if eff.targets:
            med["targets"] = {k: [_num(float(v[0])), _num(float(v[1]))] for k, v in eff.targets.items()}  # type: ignore[arg-type]
        filled = dict(values, dose_mg=dose, times_per_day=_num(times), daily_mg=med["daily_mg"],
                      mg_per_kg_per_day=med.get("mg_per_kg_per_day"), mg_per_kg=med.get("mg_per_kg"))
        default = f"{eff.name} {dose:g} mg {eff.route}" + (f" {_num(times)} times a day" if times != 1 else "")
        return med, fill_text(eff.text, filled) if eff.text else default


def start_session(pathway: "Pathway", patient: dict[str, Any]) -> Session:
    d = pathway.definition
    pid, values, admission = validate_patient(patient, d.fields, pathway.builtins)
    return Session(pathway, pid, copy.deepcopy(patient), values, admission)
