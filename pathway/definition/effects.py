"""The closed set of effects a rule may have (``then`` / ``otherwise``).

Each list item is a one-key mapping::

    then:
      - transition: rescue_selection
      - propose: {to: colectomy, record: {decision: colectomy}, text: "No response: colectomy is proposed"}
      - derive: {oxford_high_risk: true}
      - recommend: {kind: advice, text: "Discuss rescue therapy and surgery today"}
      - dose: {name: tacrolimus, route: oral, mg_per_kg_per_day: $tac_start_mg_kg_day, times_per_day: 2,
               round_to_mg: 0.5, targets: {tacrolimus_trough_ng_ml: [10, 15]}}
      - alert: {level: warning, text: "Magnesium {magnesium_mmol_l} mmol/L is low"}
      - require: {fields: [weight_kg], text: "Weight is needed for the dose"}
      - offer: {option: infliximab, status: caution, against: ["prior anti-TNF failure"]}
      - score: {name: lindgren_index, terms: [{field: stool_freq_24h}, {field: crp_mg_l, factor: 0.14}]}
      - titrate: {name: tacrolimus, current_daily_mg: tacrolimus_daily_dose_mg,
                  measured: tacrolimus_trough_ng_ml, target: 12.5, times_per_day: 2}

Texts may name fields, derived facts and parameters in braces (``{crp_mg_l}``); they are
filled with plain string substitution, never evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pathway.core.errors import Diagnostic, suggest
from pathway.core.yamlsafe import Located, validation_diagnostics
from pathway.definition import conditions as C
from pathway.definition.model import Display
from pathway.definition.units import shown

__all__ = [
    "Transition",
    "Propose",
    "Recommend",
    "Medication",
    "Dose",
    "Alert",
    "Require",
    "Derive",
    "Offer",
    "OPTION_STATUSES",
    "OptionStatus",
    "Score",
    "ScoreItem",
    "ScoreTerm",
    "Titrate",
    "Effect",
    "EFFECT_KINDS",
    "parse_effects",
    "derived_by",
    "fill_text",
    "TEMPLATE_RE",
    "CARD_SUMMARY_MAX",
]

TEMPLATE_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")

#: the longest one-line summary a card carries (CDS Hooks 2.0: "<140 characters"); a longer text is cut there
CARD_SUMMARY_MAX = 139


class _E(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)


class Transition(_E):
    to: str


class Propose(_E):
    """A clinical choice put to the team: shown under ``proposals`` with its reasons; the patient
    moves to ``to`` only when the team records ``record`` (a decision field and its value)."""

    to: str
    record: dict[str, str] = Field(min_length=1, max_length=1)
    text: str
    #: a short form of ``text`` for a card's one-line summary (CDS Hooks: under 140 characters once filled),
    #: keeping its action; the text stays whole in the result and in the card's detail
    summary: str = ""
    for_: list[str] = Field(default_factory=list, alias="for")
    against: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True, allow_inf_nan=False)

    @property
    def decision(self) -> tuple[str, str]:
        """(decision field, value) that enacts the proposal."""
        return next(iter(self.record.items()))


class Medication(_E):
    name: str
    dose_mg: float | None = None
    times_per_day: float | None = None
    route: Literal["oral", "iv", "sc", "im", "rectal", "iv_infusion"] | None = None
    frequency: str = ""
    duration: str = ""
    schedule: str = ""
    targets: dict[str, tuple[float, float]] = Field(default_factory=dict)


class Recommend(_E):
    kind: Literal["order", "medication", "advice", "monitoring", "referral", "procedure", "avoid"] = "advice"
    text: str
    #: a short form of ``text`` for a card's one-line summary (CDS Hooks: under 140 characters once filled),
    #: keeping its action; the text stays whole in the result and in the card's detail
    summary: str = ""
    medication: Medication | None = None


class Dose(_E):
    """A weight-based dose; needs ``weight_kg`` (added to the rule's requirements).

    A scheduled infusion (``at_days``: the days of the course after the first dose, e.g. weeks 0, 2
    and 6 as ``[0, 14, 42]``; ``then_every_days``: the interval afterwards) is counted from the day
    the patient first entered ``from_state``; its medication lists dated administrations instead
    of a daily amount.
    """

    name: str
    route: Literal["oral", "iv", "sc", "im", "rectal", "iv_infusion"]
    mg_per_kg_per_day: float | str | None = None
    mg_per_kg: float | str | None = None
    times_per_day: float | str = 1
    round_to_mg: float | str = 1
    max_mg_per_dose: float | str | None = None
    text: str = ""
    #: a short form of ``text`` for a card's one-line summary (CDS Hooks: under 140 characters once filled),
    #: keeping its action; the text stays whole in the result and in the card's detail
    summary: str = ""
    frequency: str = ""
    duration: str = ""
    schedule: str = ""
    targets: dict[str, tuple[float | str, float | str]] = Field(default_factory=dict)
    at_days: list[float] = Field(default_factory=list)
    then_every_days: float | None = Field(default=None, gt=0)
    from_state: str | None = None
    #: a dose a specialist may choose instead of the standard one (accelerated infliximab): shown, never a
    #: one-click order, and an order of it is said to be this alternative rather than a dose error
    alternative: bool = False


class Alert(_E):
    level: Literal["info", "warning", "critical"] = "warning"
    text: str
    #: a short form of ``text`` for a card's one-line summary (CDS Hooks: under 140 characters once filled),
    #: keeping its action; the text stays whole in the result and in the card's detail
    summary: str = ""


class Require(_E):
    fields: list[str] = Field(min_length=1)
    text: str = ""


class Derive(_E):
    values: dict[str, bool | float | int | str]


#: How an option stands, from choosable to ruled out. In a result an option may also be
#: ``pending``: a rule that decides it is waiting for data (see :mod:`pathway.definition.waiting`).
OPTION_STATUSES = ("available", "caution", "unavailable")
OptionStatus = Literal["available", "caution", "unavailable"]


class Offer(_E):
    """An option at a decision point. ``status``: ``available``; ``caution`` (reasons against,
    still choosable); ``unavailable`` (a hard reason against). ``available: false`` is the 0.1.0
    spelling of ``status: unavailable``."""

    option: str
    status: OptionStatus = "available"
    #: the 0.1.0 spelling: ``available: false`` means ``status: unavailable``
    available_: bool | None = Field(default=None, alias="available")
    #: options are listed by rank (lowest first), then by name; a parameter may set it
    rank: float | str = 100
    text: str = ""
    for_: list[str] = Field(default_factory=list, alias="for")
    against: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _available_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "available" in data:
            data = dict(data)
            available = data["available"]
            if not isinstance(available, bool):
                raise ValueError("'available' is true or false (or use 'status')")
            if "status" in data and (data["status"] == "unavailable") == available:
                raise ValueError(f"'available: {str(available).lower()}' contradicts 'status: {data['status']}'")
            data.setdefault("status", "available" if available else "unavailable")
        return data

    @property
    def available(self) -> bool:
        """Choosable (available, or with caution)."""
        return self.status != "unavailable"


class ScoreItem(_E):
    when: Any
    points: float


class ScoreTerm(_E):
    field: str
    factor: float | str = 1


class Score(_E):
    """A number derived from the case: points of the items whose condition holds, plus
    ``factor x field`` terms, optionally divided by a field; every field used must be in the
    rule's ``requires`` (so the score is never computed on missing data)."""

    name: str
    items: list[ScoreItem] = Field(default_factory=list)
    terms: list[ScoreTerm] = Field(default_factory=list)
    divide_by: str | None = None
    round_to: float | None = None


class Titrate(_E):
    """A level-guided dose: ``current daily dose x target / measured level``, rounded to a dose
    step and limited to a fraction of change; both fields become required."""

    name: str
    route: Literal["oral", "iv", "sc", "im", "rectal", "iv_infusion"]
    current_daily_mg: str
    measured: str
    target: float | str
    times_per_day: float | str = 1
    round_to_mg: float | str = 1
    max_change_fraction: float | str | None = None
    #: an increase stops at this daily dose per kg of ``weight_kg`` (which then becomes required); the text's
    #: ``{capped}`` reads ``cap_text`` when it did, and nothing otherwise
    max_mg_per_kg_per_day: float | str | None = None
    #: what ``{capped}`` says when the increase stopped at the limit (``{max_mg_per_kg_per_day}``, ``{max_daily_mg}``)
    cap_text: str = ""
    #: the text instead of ``text`` (and ``summary``) when the dose is already at the limit: no increase is possible
    limit_text: str = ""
    text: str = ""
    #: a short form of ``text`` for a card's one-line summary (see :class:`Recommend`)
    summary: str = ""


Effect = Transition | Propose | Recommend | Dose | Alert | Require | Derive | Offer | Score | Titrate

EFFECT_KINDS: dict[str, type[Effect]] = {
    "transition": Transition,
    "propose": Propose,
    "recommend": Recommend,
    "dose": Dose,
    "alert": Alert,
    "require": Require,
    "derive": Derive,
    "offer": Offer,
    "score": Score,
    "titrate": Titrate,
}


def derived_by(effects: tuple[Effect, ...] | list[Effect]) -> list[str]:
    """Names of the facts a list of effects derives (``derive`` values and ``score`` names)."""
    names: list[str] = []
    for effect in effects:
        if isinstance(effect, Derive):
            names += list(effect.values)
        elif isinstance(effect, Score):
            names.append(effect.name)
    return list(dict.fromkeys(names))


def fill_text(template: str, values: dict[str, Any], display: Mapping[str, Display] | None = None) -> str:
    """Replace ``{name}`` by the value; a value that is not recorded reads "not recorded" (a rule
    may fire on what is known, see ``waiting``).

    A field with a ``display`` precision is shown rounded to it (:func:`pathway.definition.units.shown`);
    the clocks (``day``, ``days_in_state``, ``days_since_<state>``) as whole clinical days (day 7 runs
    from 168 h to 192 h, so 7.08 days reads "7"); other numbers without trailing zeros, to 4
    significant digits. The values themselves are not changed.
    """

    # A text depends only on the values (and display precisions) of the names it reads: each
    # rendering is kept, keyed on those, so the same recommendation for the next patient is not
    # rendered again (most texts repeat across patients and events).
    names = _TEMPLATE_NAMES.get(template)
    if names is None:
        names = tuple(dict.fromkeys(TEMPLATE_RE.findall(template)))
        if len(_TEMPLATE_NAMES) < _CACHE_SIZE:
            _TEMPLATE_NAMES[template] = names
    if not names:
        return template
    key: list[Any] = [template]
    for name in names:
        value = values.get(name)
        precision = display.get(name) if display else None
        if type(value) is float and value == 0:
            value = repr(value)  # 0.0 and -0.0 are equal keys but may read differently
        key += (type(value), value, None if precision is None else (precision.decimals, precision.step))
    try:
        text = _RENDERED.get(tuple(key))
    except TypeError:  # a value that cannot be a key (not a scalar): rendered every time
        return _fill(template, values, display)
    if text is None:
        if len(_RENDERED) >= _CACHE_SIZE:
            _RENDERED.clear()
        text = _RENDERED[tuple(key)] = _fill(template, values, display)
    return text


#: template -> the names it reads, and (template, values and display of those names) -> the text
_TEMPLATE_NAMES: dict[str, tuple[str, ...]] = {}
_RENDERED: dict[tuple[Any, ...], str] = {}
_CACHE_SIZE = 16384


def _fill(template: str, values: dict[str, Any], display: Mapping[str, Display] | None) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None:
            return "not recorded"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (int, float)) and (name in ("day", "days_in_state") or name.startswith("days_since_")):
            return str(math.floor(value))
        if isinstance(value, (int, float)):
            return shown(value, display.get(name) if display else None)
        return str(value)

    return TEMPLATE_RE.sub(one, template)


def parse_effects(doc: Located, items: list[Any], path: tuple[Any, ...], out: list[Diagnostic]) -> list[tuple[int, Effect]]:
    """Validate a ``then``/``otherwise`` list into (index, effect) pairs (names are checked later)."""
    effects: list[tuple[int, Effect]] = []
    for i, item in enumerate(items):
        ipath = path + (i,)
        if not isinstance(item, dict) or len(item) != 1:
            out.append(doc.diag(ipath, "PW112", "an effect is a one-key mapping such as 'transition: <state>'"))
            continue
        (kind, body), = item.items()
        model = EFFECT_KINDS.get(kind)
        if model is None:
            out.append(doc.diag(ipath + (kind,), "PW110", f"unknown effect '{kind}'", suggest(str(kind), EFFECT_KINDS), key=True))
            continue
        if model is Transition:
            body = {"to": body}
        elif model is Derive:
            body = {"values": body}
        sub = ipath + (kind,)
        if model is Transition and not isinstance(body["to"], str):
            out.append(doc.diag(sub, "PW112", "'transition' takes a state id"))
            continue
        try:
            effects.append((i, model.model_validate(body)))
        except ValidationError as exc:
            if model in (Transition, Derive):
                # Errors are about the body itself, not a 'to'/'values' key the author never wrote.
                out.append(doc.diag(sub, "PW112",
                                    f"'{kind}' takes {'a state id' if model is Transition else 'a mapping of fact: value'}"))
            else:
                out.extend(validation_diagnostics(doc, sub, exc, model))
    return effects


def compute_score(effect: Score, values: dict[str, Any]) -> float | int:
    """Points of the items that hold, plus factor x value terms, optionally divided; rounded."""
    total = 0.0
    for item in effect.items:
        if C.evaluate(item.when, values) is True:
            total += item.points
    for term in effect.terms:
        total += float(term.factor) * float(values[term.field])
    if effect.divide_by is not None:
        total /= float(values[effect.divide_by])
    total = round(total / effect.round_to) * effect.round_to if effect.round_to else round(total, 6)
    return int(total) if float(total).is_integer() else total
