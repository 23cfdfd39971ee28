"""Safety invariants: what must hold after every event of any patient course (``invariants.yaml``).

An invariant is either a condition with an expectation, or a built-in property::

    invariants:
      - id: INV-001
        title: An emergency gives emergency colectomy in the same evaluation
        hazards: [HAZ-003]
        when:                       # the rule condition language, on what the event was evaluated with
          any: [{perforation: true}, {massive_haemorrhage: true}, {toxic_megacolon: true}]
        expect:                     # what the result after the event must show
          any: [{moves_to: colectomy}, {recommends: {kind: procedure}}]
      - id: INV-010
        title: A refused event changes nothing
        builtin: refused_event_changes_nothing

``when`` is evaluated (three-valued) on the facts of the event's first evaluation (inputs, built-ins
such as ``state`` and ``days_in_state`` before any move) together with every fact derived during the
event; the invariant applies only when it is definitely true. ``expect`` is a tree of result checks:

- ``moves_to: <state>``: the event moved the patient into that state;
- ``state: <state or list>``: the state after the event;
- ``proposes: <state>``: a proposal to move there (waiting for a recorded decision);
- ``recommends``, ``alerts``, ``offers``: an item matching every key given (``rule``, ``kind``,
  ``level``, ``option``, ``status``, ``text_contains``);
- ``dose: <medicine>``: a medication with that name;
- ``data_required: true``: something is asked for;
- ``any``, ``all`` (lists) and ``not``.

Course operators say *when* the expectation is checked (default: after every event):

- ``at: end``: only on the last result of a course (``when`` on that event's facts);
- ``after: <expectation>`` with ``within_days: N`` (a number or ``$parameter``): once a result shows
  ``after`` (and ``when`` holds on its event), ``expect`` is due within ``N`` clinical days. The
  engine speaks only when an event arrives, so the obligation is broken by a result more than ``N``
  days later that still does not show ``expect`` when no result since did; a course that ends
  before the deadline has not broken it.

Built-in properties (``builtin:``) check what a condition cannot say: see :data:`BUILTINS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pathway.core.errors import Diagnostic, suggest
from pathway.core.yamlsafe import Located
from pathway.definition import conditions as C

__all__ = ["BUILTINS", "EXPECT_KEYS", "Expect", "Invariant", "parse_expect", "expect_holds", "describe_expect"]

#: Built-in invariants, checked by the verifier itself.
BUILTINS = {
    "refused_event_changes_nothing": "an event refused as invalid leaves the session exactly as it was",
    "recorded_decision_acted_on_or_alerted": (
        "a decision recorded where it is due moves the patient, or the same result says aloud why it cannot"),
    "no_stall": (
        "once a state's decision is overdue, every result carries a move, a proposal, data required or a "
        "critical alert"),
    "doses_within_label": "every weight-based dose lies within its label range per kg (``dose_ranges``)",
    "no_recommendation_of_an_avoided_drug": (
        "no medication recommended in a result that also says to avoid its class (``drug_classes``: class -> "
        "the medicines in it)"),
    "monotone_risk_indices": (
        "more stools, a higher CRP or a lower albumin in the event never turn a positive risk index negative "
        "(``monotone``: derived fact -> its positive values)"),
}

EXPECT_KEYS = ("moves_to", "state", "proposes", "recommends", "alerts", "offers", "dose", "data_required",
               "any", "all", "not")
_MATCH_KEYS = {"recommends": ("rule", "kind", "text_contains"),
               "alerts": ("rule", "level", "text_contains"),
               "offers": ("option", "status", "text_contains")}


@dataclass(frozen=True)
class Expect:
    """One node of an expectation tree."""

    kind: str
    arg: Any = None
    parts: tuple[Expect, ...] = ()


@dataclass(frozen=True)
class Invariant:
    """One invariant, resolved."""

    id: str
    title: str
    file: str
    line: int
    col: int
    hazards: tuple[str, ...] = ()
    description: str = ""
    builtin: str | None = None
    when: C.Cond | None = None
    expect: Expect | None = None
    #: course operators: checked on the last result only, or ``expect`` due within ``within_days``
    #: clinical days of a result showing ``after``
    at_end: bool = False
    after: Expect | None = None
    within_days: int | None = None
    #: medicine -> {"mg_per_kg": (low, high)} or {"mg_per_kg_per_day": (low, high)} (doses_within_label)
    dose_ranges: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    #: derived fact -> its positive values (monotone_risk_indices)
    monotone: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: drug class -> the medicines in it (no_recommendation_of_an_avoided_drug)
    drug_classes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def parse_expect(doc: Located, data: Any, path: tuple[Any, ...], states: list[str],
                 out: list[Diagnostic]) -> Expect | None:
    """An expectation tree from YAML data, with located errors (PW112, PW201)."""
    if not isinstance(data, dict) or len(data) != 1:
        out.append(doc.diag(path, "PW112", "an expectation is a one-key mapping such as 'moves_to: colectomy' "
                                           f"(keys: {', '.join(EXPECT_KEYS)})"))
        return None
    (key, arg), = data.items()
    here = path + (key,)
    if key not in EXPECT_KEYS:
        out.append(doc.diag(here, "PW110", f"unknown expectation '{key}'", suggest(str(key), EXPECT_KEYS), key=True))
        return None
    if key in ("any", "all"):
        if not isinstance(arg, list) or not arg:
            out.append(doc.diag(here, "PW112", f"'{key}' takes a non-empty list of expectations"))
            return None
        parts = [parse_expect(doc, item, here + (i,), states, out) for i, item in enumerate(arg)]
        return None if any(p is None for p in parts) else Expect(key, parts=tuple(p for p in parts if p))
    if key == "not":
        inner = parse_expect(doc, arg, here, states, out)
        return None if inner is None else Expect("not", parts=(inner,))
    if key in ("moves_to", "proposes", "state"):
        names = arg if isinstance(arg, list) and key == "state" else [arg]
        for i, name in enumerate(names):
            if name not in states:
                at = here + ((i,) if isinstance(arg, list) else ())
                out.append(doc.diag(at, "PW201", f"unknown state '{name}'", suggest(str(name), states)))
                return None
        return Expect(key, tuple(names) if key == "state" else arg)
    if key in _MATCH_KEYS:
        if not isinstance(arg, dict) or not arg:
            out.append(doc.diag(here, "PW112", f"'{key}' takes a mapping of {', '.join(_MATCH_KEYS[key])}"))
            return None
        for k in arg:
            if k not in _MATCH_KEYS[key]:
                out.append(doc.diag(here + (k,), "PW110", f"unknown key '{k}' for '{key}'",
                                    suggest(str(k), _MATCH_KEYS[key]), key=True))
                return None
        return Expect(key, dict(arg))
    if key == "dose":
        if not isinstance(arg, str):
            out.append(doc.diag(here, "PW112", "'dose' takes a medicine name"))
            return None
        return Expect(key, arg)
    if arg is not True:  # data_required
        out.append(doc.diag(here, "PW112", "'data_required' takes 'true'"))
        return None
    return Expect(key, True)


def _match(item: dict[str, Any], want: dict[str, Any]) -> bool:
    for k, v in want.items():
        if k == "text_contains":
            if str(v) not in item.get("text", ""):
                return False
        elif item.get(k) != v:
            return False
    return True


def expect_holds(e: Expect, result: dict[str, Any], before: str) -> bool:
    """Whether the result after an event (the patient was in state ``before``) shows ``e``."""
    if e.kind == "any":
        return any(expect_holds(p, result, before) for p in e.parts)
    if e.kind == "all":
        return all(expect_holds(p, result, before) for p in e.parts)
    if e.kind == "not":
        return not expect_holds(e.parts[0], result, before)
    if e.kind == "moves_to":
        return bool(result["state"] != before and e.arg in _moved_through(result, before))
    if e.kind == "state":
        return bool(result["state"] in e.arg)
    if e.kind == "proposes":
        return any(p.get("to") == e.arg for p in result.get("proposals", []))
    if e.kind == "recommends":
        return any(_match(r, e.arg) for r in result["recommendations"])
    if e.kind == "alerts":
        return any(_match(a, e.arg) for a in result["alerts"])
    if e.kind == "offers":
        return any(_match(o, e.arg) for o in result["options"])
    if e.kind == "dose":
        return any((r.get("medication") or {}).get("name") == e.arg for r in result["recommendations"])
    return bool(result["data_required"])


def _moved_through(result: dict[str, Any], before: str) -> list[str]:
    """The states entered during the last event: the end of the path after the last ``before``."""
    path = list(result["path"])
    last = len(path) - 1 - path[::-1].index(before) if before in path else len(path) - 1
    return path[last + 1:]


def describe_expect(e: Expect) -> str:
    """``any of (moves to colectomy; a recommendation kind=procedure)``, for reports."""
    if e.kind in ("any", "all"):
        return f"{e.kind} of (" + "; ".join(describe_expect(p) for p in e.parts) + ")"
    if e.kind == "not":
        return "not " + describe_expect(e.parts[0])
    if e.kind in _MATCH_KEYS:
        return f"{e.kind} " + ", ".join(f"{k}={v}" for k, v in e.arg.items())
    if e.kind == "state":
        return "state in " + ", ".join(e.arg)
    return f"{e.kind.replace('_', ' ')} {e.arg}"
