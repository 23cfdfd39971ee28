"""Event fuzzing: random events, patient records and cases against sessions all along the ASUC course.

Every input is either applied or refused with an :class:`InputError` whose codes are registered
input codes and whose diagnostics name the event (and the field). A refused event leaves the
session byte-identical. Every result and every dump of an applied event is strict JSON (no NaN or
Infinity, text that encodes as UTF-8), restores to the same document, keeps ``day`` within the
clinical clock and every recorded value finite and inside its field's plausible range; no engine
session is retired.

The events are drawn by a seeded ``random.Random`` from every field of fields.yaml, with values of
every kind: valid values and their boundaries, values in other units, huge and tiny numbers,
NaN/±inf (bare and inside ``{value, unit}``), text, nested and non-JSON objects, odd units, odd
``day``/``time``, unknown keys and recorded decisions. The budget is ``PATHWAY_FUZZ_BUDGET`` events
(default 6,000, about half a minute here) and the seed ``PATHWAY_FUZZ_SEED``.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from cases import ADMIT, DAY3_FAIL, RESCUE_RESPONSE, patient, rescue, to_rescue

from pathway import InputError, load_pathway
from pathway.core.codes import CODES
from pathway.definition.clock import MAX_DAY
from pathway.definition.units import from_canonical, units_for

BUDGET = int(os.environ.get("PATHWAY_FUZZ_BUDGET", "6000"))
SEED = int(os.environ.get("PATHWAY_FUZZ_SEED", "20260314"))
#: patient records and whole cases: a tenth of the event budget each
SMALL_BUDGET = max(200, BUDGET // 10)

ADMISSION = datetime(2026, 3, 2, 8, 0)


def _deep(depth: int, mapping: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value} if mapping else [value]
    return value


class _Odd:
    """An object that is not JSON."""

    def __repr__(self) -> str:
        return "<odd>"


class _Float(float):
    """A float subclass (as numpy's float64 is)."""


class _Int(int):
    """An int subclass (as an IntEnum is)."""


NUMBERS: list[Any] = [
    0, -0.0, 1, -1, 0.5, 7.2, 5e-05, -5e-05, 1e-05, 1e-07, 1e-320, -1e-320, 5e-324, 0.1 + 0.2, 2 ** 53 + 1,
    999_999_999_999_999, 1e15, 1e16, 1e300, 1.7976931348623157e308, 10 ** 15, 10 ** 16, 10 ** 20, 10 ** 400,
    -10 ** 400, 10 ** 5000, math.nan, math.inf, -math.inf, -1e308, _Float(3.5), _Float("nan"), _Int(2), _Int(10 ** 30),
]
OTHERS: list[Any] = [
    "", "5", "high", "nan", "Infinity", "\x00", "\ud800", "é\u2028", "x" * 20_000, None, True, False, [], [1], {},
    {"a": 1}, (1, 2), {1, 2}, b"5", bytearray(b"1"), _Odd(), complex(1, 2), Decimal("1.5"), Decimal("NaN"),
    Fraction(1, 3), ADMISSION, _deep(3000, False), _deep(3000, True), {(1, 2): 3}, {1: "a"}, {None: 1},
    {"value": 1}, {"unit": "mg/L"}, {"value": 1, "unit": "mg/L", "x": 1},
]
UNITS: list[Any] = ["", "mg/l", "MG/L", " mg/L", "°F", "degF", "µmol/L", "x" * 5000, "\ud800", "\x00", None, 5, True,
                    ["mg/L"], {"u": 1}, math.nan]
TIMES: list[Any] = [
    "9999-12-31T23:59:59", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+23:59", "0001-01-01", "2026-03-02", "2026-13-01T00:00", "2026-03-02T08:00:00+25:00",
    "2026-03-02T08:00Z", "20260302T0800", "garbage", "", "\ud800", "x" * 20_000, 20260302, 2026.5, None, True,
    ADMISSION, [], {"t": 1}, _Odd(),
]
DAYS: list[Any] = [-1, -1e-9, -0.0, 0, MAX_DAY, float(MAX_DAY), MAX_DAY + 1e-9, MAX_DAY + 1, 10 ** 400, -10 ** 400, 1e308,
                   math.nan, math.inf, -math.inf, 1e-320, 5e-324, 5e-05, 1e-07, "3", True, False, None, [3], {"d": 3},
                   Decimal(3), _Odd()]
NOTES: list[Any] = ["admission", "", "é\u2028\x00", {"by": "ward", "tags": ["a", 1, 2.5, None, True]}, [1, [2, [3]]],
                    math.nan, math.inf, {1, 2}, b"x", _Odd(), {(1, 2): 3}, {1: "a"}, "\ud800", {"a": "\udfff"},
                    10 ** 400, 10 ** 5000, _deep(5000, False), _deep(5000, True), _deep(40, True), "n" * 200_000,
                    ["x"] * 100_000, (1, 2), ADMISSION, Decimal("1.5"), complex(1, 1)]


def _text(value: Any) -> str:
    try:
        return repr(value)[:200]
    except Exception as exc:  # noqa: BLE001 - a huge int or a deep structure
        return f"<{type(value).__name__}: {type(exc).__name__}>"


class Generator:
    """Random events, patient records and cases for one pathway."""

    def __init__(self, pw: Any, rng: random.Random):
        self.rng = rng
        d = pw.definition
        self.inputs = {n: f for n, f in d.fields.items() if f is not None and n not in pw.builtins}
        self.event_fields = sorted(n for n, f in self.inputs.items() if f.scope in ("event", "both"))
        self.patient_fields = sorted(n for n, f in self.inputs.items() if f.scope in ("patient", "both"))
        self.decisions = sorted(d.decisions)
        self.unknown = sorted({"crp_mg_L", "crp", "day_in_state", "days_in_state", "state", "stool_freq_change",
                               *sorted(pw.builtins)[:5], *sorted(d.spec.derived)[:3]} - set(self.inputs))

    # -- values ----------------------------------------------------------------------------
    def valid(self, name: str) -> Any:
        spec, rng = self.inputs[name], self.rng
        if spec.type == "boolean":
            return rng.random() < 0.5
        if spec.type == "enum":
            return rng.choice(spec.values)
        if spec.type == "string":
            return rng.choice(["", "text", "é" * rng.randint(1, 50)])
        low, high = spec.range if spec.range is not None else (0.0, 1000.0)
        pick = rng.random()
        if spec.type == "integer":
            value: float = rng.choice([int(low), int(high)]) if pick < 0.2 else rng.randint(int(low), int(high))
        else:
            value = rng.choice([low, high]) if pick < 0.2 else round(rng.uniform(low, high), rng.choice([0, 1, 2, 6, 12]))
        units = units_for(spec.quantity)
        if units and rng.random() < 0.25:
            unit = rng.choice(units)
            return {"value": from_canonical(spec.quantity, value, unit), "unit": unit}
        return value

    def odd(self, name: str) -> Any:
        spec, rng = self.inputs[name], self.rng
        pick = rng.random()
        if pick < 0.35:
            return rng.choice(NUMBERS)
        if pick < 0.55:
            return rng.choice(OTHERS)
        if pick < 0.65 and spec.range is not None:  # just outside the plausible range
            low, high = spec.range
            return rng.choice([low - 1e-9, high + 1e-9, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)])
        units = units_for(spec.quantity) or ["mg/L"]
        value = rng.choice(NUMBERS + OTHERS[:12]) if rng.random() < 0.7 else self.number_of(name)
        unit = rng.choice(units) if rng.random() < 0.6 else rng.choice(UNITS)
        return {"value": value, "unit": unit}

    def number_of(self, name: str) -> Any:
        value = self.valid(name)
        return value["value"] if isinstance(value, dict) else value

    def value(self, name: str) -> Any:
        return self.valid(name) if self.rng.random() < 0.6 else self.odd(name)

    def free(self) -> Any:
        return self.rng.choice(NOTES)

    def key(self) -> Any:
        rng = self.rng
        return rng.choice([*self.unknown, "age_years", "admission_time", 1, None, (1, 2), True, 1.5, 10 ** 5000,
                           "x" * 10_000, "\ud800", "", "note "])

    # -- clock -------------------------------------------------------------------------------
    def clock(self, event: dict[str, Any], day: float | None, timed: bool) -> None:
        rng = self.rng
        now = min(day, MAX_DAY) if day is not None else 0.0
        pick = rng.random()
        if pick < 0.72:
            later = now + rng.choice([0, 0, 0, 0.5, 1, 1, 1, 2, 3, rng.uniform(0, 5), rng.uniform(0, 400)])
            if timed:
                event["time"] = (ADMISSION + timedelta(days=later)).isoformat(timespec=rng.choice(["minutes", "seconds"]))
            else:
                event["day"] = round(later, rng.choice([0, 0, 1, 3, 9]))
        elif pick < 0.86:
            event["day"] = rng.choice(DAYS)
        elif pick < 0.95:
            edge = ADMISSION + timedelta(days=MAX_DAY, seconds=rng.choice([-1, 0, 1, 86400]))
            event["time"] = rng.choice([*TIMES, edge.isoformat(), (ADMISSION - timedelta(seconds=1)).isoformat()])
        elif pick < 0.98:
            event["day"], event["time"] = now, ADMISSION.isoformat()
        # else: neither

    # -- events, patients, cases -------------------------------------------------------------
    def event(self, day: float | None, timed: bool) -> Any:
        rng = self.rng
        if rng.random() < 0.02:
            return rng.choice([None, [], "event", 5, [{"day": 1}], ADMIT])
        event: dict[Any, Any] = {}
        self.clock(event, day, timed)
        names = rng.sample(self.event_fields, rng.choice([0, 1, 1, 2, 3, 4, 8]))
        if rng.random() < 0.25:
            names.append(rng.choice(self.decisions))
        odd = 0.0 if rng.random() < 0.5 else rng.choice([0.2, 0.5, 1.0])  # half the events only valid values
        for name in names:
            event[name] = self.odd(name) if rng.random() < odd else self.valid(name)
        if rng.random() < 0.15:
            event["note"] = self.free()
        if rng.random() < 0.05:
            event["id"] = self.free() if rng.random() < 0.5 else rng.choice(["e1", 7])
        if rng.random() < 0.08:
            event[self.key()] = self.value(rng.choice(self.event_fields))
        return event

    def patient(self) -> Any:
        rng = self.rng
        if rng.random() < 0.03:
            return rng.choice([None, [], "p", 5])
        record: dict[Any, Any] = patient()
        pick = rng.random()
        if pick < 0.2:
            record["id"] = rng.choice(["", " ", "p\ud800", "x" * 5000, 10 ** 30, 10 ** 5000, -1, True, 1.5, None,
                                       [1], {"a": 1}, _Odd()])
        elif pick < 0.3:
            del record["id"]
        if rng.random() < 0.3:
            record["admission_time"] = rng.choice([ADMISSION.isoformat(), *TIMES])
        for name in rng.sample(self.patient_fields, rng.choice([0, 1, 2, 4])):
            record[name] = self.value(name)
        if rng.random() < 0.2:
            record["note"] = self.free()
        if rng.random() < 0.1:
            record[self.key()] = 1
        return record

    def case(self) -> Any:
        rng = self.rng
        if rng.random() < 0.05:
            return rng.choice([None, [], {"patient": [], "events": []}, {"patient": {"id": "p"}, "events": {}}])
        case: dict[Any, Any] = {"patient": self.patient() if rng.random() < 0.3 else patient(), "events": []}
        day: float = 0
        for _ in range(rng.randint(0, 5)):
            event = self.event(day, False)
            case["events"].append(event)
            given = event.get("day") if isinstance(event, dict) else None
            if isinstance(given, (int, float)) and not isinstance(given, bool) and 0 <= given <= MAX_DAY:
                day = given
        if rng.random() < 0.1:
            case[rng.choice(["title", "expect", "unknown", 1, None])] = "x"
        return case


# -- oracles ---------------------------------------------------------------------------------

@dataclass
class Stats:
    events: int = 0
    applied: int = 0
    refused: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)  # where the applied events left their sessions
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str, value: Any, detail: str) -> None:
        self.failures.append(f"{what}: {_text(value)}: {detail}")

    def refusal(self, exc: InputError) -> None:
        self.refused += 1
        for code in exc.codes:
            self.codes[code] = self.codes.get(code, 0) + 1


def strict(value: Any) -> str:
    """JSON as a store writes it: sorted keys, no NaN/Infinity, UTF-8."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    return text


def _input_codes(exc: InputError) -> str | None:
    """What is wrong with a refusal's diagnostics (None: nothing)."""
    if not exc.diagnostics:
        return "no diagnostics"
    for d in exc.diagnostics:
        if d.code not in CODES or CODES[d.code].kind != "input":
            return f"code {d.code} is not a registered input code"
    return None


def _check_values(pw: Any, doc: dict[str, Any]) -> str | None:
    """Accepted but wrong: a clock past its cap, or a recorded value not finite or outside its range."""
    day = doc.get("day")
    if day is not None and not 0 <= day <= MAX_DAY:
        return f"day {day} outside 0..{MAX_DAY}"
    fields = pw.definition.fields
    for name, value in doc.get("facts", {}).items():
        spec = fields.get(name)
        if spec is None or spec.type not in ("number", "integer"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{name} = {value!r} is not a finite number"
        if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
            return f"{name} = {value!r} outside {spec.range}"
    return None


def observe_checked(pw: Any, session: Any, event: Any, stats: Stats, before: str | None = None) -> str | None:
    """Apply one event with every oracle; the session's dump (strict JSON text) after it, or None
    when the session can no longer be dumped (a finding already counted).

    ``before``: the session's dump when the caller has it already."""
    stats.events += 1
    before = strict(session.dump()) if before is None else before
    index = len(json.loads(before)["events"])
    retired = pw.engine.retired_sids
    try:
        result = session.observe(event)
    except InputError as exc:
        stats.refusal(exc)
        problem = _input_codes(exc)
        where = f"events[{index}]"
        if problem is None and "PW415" in exc.codes:
            # a late event placed earlier in the timeline strands a later one: named where it went, then the
            # refused later event's own diagnostics
            if len(exc.diagnostics) < 2 or not all(d.file.startswith("events[") for d in exc.diagnostics):
                problem = f"a re-evaluation refusal without its reasons: {exc}"
        elif problem is None and not all(d.file == where or d.file.startswith(where + ".") for d in exc.diagnostics):
            problem = f"a diagnostic does not name {where}: {exc}"
        if problem is None and strict(session.dump()) != before:
            problem = "the refused event changed the session"
        if problem is None and exc.event != index:
            problem = f"InputError.event is {exc.event!r}, not {index}"
        if problem is not None:
            stats.fail("refused event", event, problem)
        return before
    except Exception as exc:  # noqa: BLE001 - the finding
        stats.fail("event", event, f"{type(exc).__name__}: {str(exc)[:300]}")
        try:
            if strict(session.dump()) != before:
                stats.fail("event", event, "and the session changed")
        except Exception as exc2:  # noqa: BLE001
            stats.fail("event", event, f"and the dump fails: {type(exc2).__name__}")
            return None
        return before
    stats.applied += 1
    text = None
    try:
        strict(result)
        text = strict(session.dump())
        doc = json.loads(text)
        stats.states[doc["state"]] = stats.states.get(doc["state"], 0) + 1
        problem = _check_values(pw, doc)
        if problem is None and strict(pw.restore(doc).dump()) != text:
            problem = "the dump does not restore to itself"
        if problem is None and pw.engine.retired_sids != retired:
            problem = "an engine session was retired"
    except Exception as exc:  # noqa: BLE001
        problem = f"applied, then {type(exc).__name__}: {str(exc)[:300]}"
    if problem is not None:
        stats.fail("applied event", event, problem)
    return text


def bases(pw: Any) -> list[tuple[str, dict[str, Any], bool]]:
    """Sessions at several points of the ASUC course: (name, dump, events give clock times)."""
    timed = pw.start(patient(admission_time=ADMISSION.isoformat()))
    timed.observe({"time": ADMISSION.isoformat(), **{k: v for k, v in ADMIT.items() if k != "day"}})
    courses = {
        "start": {"patient": patient(), "events": []},
        "iv_steroids": {"patient": patient(), "events": [dict(ADMIT)]},
        "rescue_selection": to_rescue(),
        "rescue_tacrolimus": rescue("tacrolimus", {"day": 6, "tacrolimus_trough_ng_ml": 7.2,
                                                   "tacrolimus_daily_dose_mg": 7}),
        "rescue_ciclosporin": rescue("ciclosporin"),
        "rescue_infliximab": rescue("infliximab"),
        "maintenance": rescue("tacrolimus", *RESCUE_RESPONSE),
        "steroid_response": {"patient": patient(), "events": [dict(ADMIT), {"day": 3, "stool_freq_24h": 2,
                                                                             "visible_blood": False, "crp_mg_l": 12}]},
        "day3_fail": {"patient": patient(), "events": [dict(ADMIT), dict(DAY3_FAIL)]},
    }
    out = [("timed", timed.dump(), True)]
    for name, case in courses.items():
        session, _ = pw.run_course(case)
        out.append((name, session.dump(), False))
    return out


def fuzz_events(pw: Any, budget: int, seed: int) -> Stats:
    rng = random.Random(seed)
    gen = Generator(pw, rng)
    stats = Stats()
    points = bases(pw)
    while stats.events < budget:
        _name, doc, timed = rng.choice(points)
        session = pw.restore(doc)
        text: str | None = strict(doc)
        for _ in range(rng.randint(1, 6)):
            if text is None:
                break  # the session can no longer be dumped (already reported)
            day = json.loads(text).get("day")
            text = observe_checked(pw, session, gen.event(day, timed), stats, text)
    return stats


def fuzz_patients(pw: Any, budget: int, seed: int) -> Stats:
    gen = Generator(pw, random.Random(seed))
    stats = Stats()
    for _ in range(budget):
        record = gen.patient()
        stats.events += 1
        try:
            session = pw.start(record)
        except InputError as exc:
            stats.refusal(exc)
            problem = _input_codes(exc)
            if problem is None and not all(d.file == "patient" or d.file.startswith("patient.") for d in exc.diagnostics):
                problem = f"a diagnostic does not name the patient: {exc}"
            if problem is not None:
                stats.fail("refused patient", record, problem)
            continue
        except Exception as exc:  # noqa: BLE001
            stats.fail("patient", record, f"{type(exc).__name__}: {str(exc)[:300]}")
            continue
        stats.applied += 1
        try:
            strict(session.result())
            text = strict(session.dump())
            problem = _check_values(pw, json.loads(text))
            if problem is None and strict(pw.restore(json.loads(text)).dump()) != text:
                problem = "the dump does not restore to itself"
            if problem is None:  # the session goes on from the record
                observe_checked(pw, session, dict(ADMIT), stats)
        except Exception as exc:  # noqa: BLE001
            problem = f"accepted, then {type(exc).__name__}: {str(exc)[:300]}"
        if problem is not None:
            stats.fail("accepted patient", record, problem)
    return stats


def fuzz_cases(pw: Any, budget: int, seed: int) -> Stats:
    gen = Generator(pw, random.Random(seed))
    stats = Stats()
    for _ in range(budget):
        case = gen.case()
        stats.events += 1
        try:
            session, results = pw.run_course(case)
        except InputError as exc:
            stats.refusal(exc)
            problem = _input_codes(exc)
            if problem is None and exc.event is not None and "PW415" not in exc.codes and not all(
                    d.file.startswith(f"events[{exc.event}]") for d in exc.diagnostics):
                problem = f"the diagnostics do not name events[{exc.event}]: {exc}"
            if problem is not None:
                stats.fail("refused case", case, problem)
            continue
        except Exception as exc:  # noqa: BLE001
            stats.fail("case", case, f"{type(exc).__name__}: {str(exc)[:300]}")
            continue
        stats.applied += 1
        try:
            for result in results:
                strict(result)
            problem = _check_values(pw, json.loads(strict(session.dump())))
        except Exception as exc:  # noqa: BLE001
            problem = f"accepted, then {type(exc).__name__}: {str(exc)[:300]}"
        if problem is not None:
            stats.fail("accepted case", case, problem)
    return stats


# -- the tests -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fresh():
    """A pathway of its own: retired engine sessions are counted per pathway."""
    return load_pathway("asuc", cache=False)


def test_random_events_are_applied_or_refused_with_a_located_input_error(fresh):
    stats = fuzz_events(fresh, BUDGET, SEED)
    assert stats.failures == []
    assert stats.events >= BUDGET
    # the fuzzer exercises both paths and most refusals
    assert stats.applied >= BUDGET // 5 and stats.refused >= BUDGET // 5
    assert {"PW401", "PW402", "PW403", "PW404", "PW405", "PW410", "PW411"} <= set(stats.codes)


def test_random_patient_records_are_accepted_or_refused_with_a_located_input_error(fresh):
    stats = fuzz_patients(fresh, SMALL_BUDGET, SEED + 1)
    assert stats.failures == []
    assert stats.applied >= SMALL_BUDGET // 10 and stats.refused >= SMALL_BUDGET // 10


def test_random_cases_run_or_are_refused_with_a_located_input_error(fresh):
    stats = fuzz_cases(fresh, SMALL_BUDGET, SEED + 2)
    assert stats.failures == []
    assert stats.applied >= SMALL_BUDGET // 10 and stats.refused >= SMALL_BUDGET // 10
