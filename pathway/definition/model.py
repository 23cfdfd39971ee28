"""The rule-file vocabulary, as pydantic v2 models (``extra="forbid"`` throughout).

A pathway folder holds:

- ``pathway.yaml``: id, version, title, states, transitions, parameters, derived facts, sources;
- ``fields.yaml``: every input field (name, type, canonical unit, plausible range, meaning);
- any number of rule files (``*.yaml`` listed under ``rule_files``), each a list of rules.

Conditions (``when``/``due``) and effects (``then``/``otherwise``) are kept as plain data here
and parsed with positions by :mod:`pathway.conditions` and :mod:`pathway.effects`, so errors
inside them can point at the exact line and column.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue

from pathway.core.errors import suggest
from pathway.definition.clock import MAX_DAY

__all__ = [
    "ANY_ACTIVE",
    "StateDef",
    "PhaseDef",
    "Watchdog",
    "TransitionDef",
    "ParameterDef",
    "SourceDef",
    "DerivedDef",
    "DecisionDef",
    "FieldDef",
    "AmbiguityBand",
    "Display",
    "Window",
    "Validity",
    "LATCHES",
    "Aggregate",
    "DecisionSpec",
    "Computation",
    "ConsistencyCheck",
    "CheckSetting",
    "PathwayFile",
    "FieldsFile",
    "SourcesFile",
    "Evidence",
    "RuleDef",
    "RuleFile",
    "ProfileFile",
    "SEVERITIES",
    "LIKELIHOODS",
    "RISK_MATRIX",
    "RISK_MEANINGS",
    "risk_rating",
    "Risk",
    "Mitigations",
    "Verification",
    "HazardDef",
    "HazardsFile",
    "InvariantsFile",
    "InvariantDef",
    "DoseRange",
    "CodesFile",
    "ObservationCode",
    "OrderCode",
    "AnswerCode",
]

ANY_ACTIVE = "any_active"
_ID = r"^[a-z][a-z0-9_]*$"
ID_PATTERN = _ID
_SOURCE_ID = r"^[A-Za-z][A-Za-z0-9_.\-]*$"
SOURCE_ID_PATTERN = _SOURCE_ID


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, strict=False, allow_inf_nan=False)


class Evidence(_Model):
    """Where a rule comes from: source ids, strength of evidence and verification status."""

    sources: list[str] = Field(min_length=1)
    strength: Literal["G", "T", "M", "O", "S", "Label", "expert"]
    status: Literal["verified", "unverified"]
    note: str = ""


class Watchdog(_Model):
    """When the decision of a state is overdue: past ``when`` (a condition, typically on ``day`` or
    ``days_in_state``) with the patient still in the state, every result carries a critical alert
    with ``text`` and the data still missing."""

    when: Any
    text: str
    #: a short form of ``text`` for a card's one-line summary (the alert's summary adds how many values are
    #: still needed); the text stays whole in the alert
    summary: str = ""
    evidence: Evidence


class StateDef(_Model):
    """One state of the pathway graph. ``terminal`` means the pathway is over for this admission
    (discharged, colectomy done); a patient who responded stays in an active state until discharge."""

    kind: Literal["start", "active", "terminal"]
    title: str
    description: str = ""
    overdue: Watchdog | None = None
    #: the phase of care the state belongs to (an id under ``phases:``); diagrams group states by it
    phase: str | None = None


class PhaseDef(_Model):
    """A phase of care (admission, IV steroids, rescue, ...): diagrams drawn with ``--clusters`` group
    the states of one phase in a box with this title, in the order the phases are listed."""

    title: str
    description: str = ""


class TransitionDef(_Model):
    """An edge of the graph. ``from: any_active`` expands to every start/active state."""

    from_: str | list[str] = Field(alias="from")
    to: str
    title: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True, allow_inf_nan=False)


class ParameterDef(_Model):
    """A named, sourced threshold or dose that rules refer to as ``$name``."""

    value: float | int | bool | str
    unit: str = ""
    title: str = ""
    sources: list[str] = Field(default_factory=list)
    note: str = ""
    choices: list[float | int | bool | str] = Field(default_factory=list)


class SourceDef(_Model):
    """One entry of the evidence source list.

    ``authoritative: false`` marks a source that cannot by itself support verified evidence (an AI
    answer page, a code library's documentation): evidence citing only such sources must stay
    ``status: unverified`` (PW237).
    """

    title: str
    tag: str
    ref: str = ""
    authoritative: bool = True


class DerivedDef(_Model):
    """A named fact that rules derive and other rules test (forward chaining)."""

    type: Literal["boolean", "number", "string"] = "boolean"
    title: str
    values: list[str] = Field(default_factory=list)
    #: How criteria in words name the fact (``Oxford index positive``); default: the title.
    short: str = ""
    #: A boolean fact: how criteria in words say it is false (``no complete response``); default: ``<name>: no``.
    short_false: str = ""


class DecisionDef(_Model):
    """A decision point: a window of clinical days in which its rules (``decision_point: <id>``) derive
    facts that are then kept, with provenance, for the rest of the stay.

    The window runs from ``from_day`` up to, not including, ``before_day`` (numbers or
    ``$parameters``). Inside it the rules re-derive their facts from the current values at every
    evaluation (the last derivation counts); from ``before_day`` on they no longer fire, and every
    evaluation sees the kept values instead.

    Days count from admission (the clinical ``day``) unless ``counted_from`` names a state: then from
    the patient's first entry into it (day 3 of IV steroids for a patient diagnosed on day 2 is
    admission day 5). The point's rules must all be in that state alone, and the state must not be
    entered twice (on no cycle of the graph), so in its rules the window is ``days_in_state``.
    """

    title: str
    from_day: float | str
    before_day: float | str
    counted_from: str | None = None
    note: str = ""


class Window(_Model):
    """A span of time back from now: ``{hours: 72}`` or ``{days: 1}``, its far end excluded unless
    ``end: inclusive`` (a value exactly 72 h old is outside ``{hours: 72}`` and inside
    ``{hours: 72, end: inclusive}``). Ages are counted in hours from clock times when events give
    ``time``, else from day numbers (one day = 24 h)."""

    hours: float | None = Field(default=None, gt=0)
    days: float | None = Field(default=None, gt=0)
    end: Literal["exclusive", "inclusive"] = "exclusive"

    @property
    def span_hours(self) -> float | None:
        """The length of the window in hours (None when neither hours nor days is given)."""
        if self.hours is not None:
            return self.hours
        return None if self.days is None else self.days * 24

    def holds(self, age_hours: float) -> bool:
        """True when a value recorded ``age_hours`` ago lies inside the window."""
        span = self.span_hours
        if span is None:
            return True
        return age_hours <= span if self.end == "inclusive" else age_hours < span


#: How a latched value holds: ``superseded``, until a newer value of the field is recorded (an
#: observation that is repeated, such as a film); ``stay``, for the whole stay (history, results,
#: decisions). Neither expires; a newer value of the same field always replaces the older one.
LATCHES = ("superseded", "stay")


class Validity(Window):
    """How long an event value stays current: a window (``{hours: 72}``, ``{days: 1}``, with
    ``end: inclusive`` where the pathway means "within 72 h") or a latch (``until: superseded`` or
    ``until: stay``; the plain words ``superseded`` and ``stay`` are short for these)."""

    until: Literal["superseded", "stay"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``superseded`` / ``stay`` stand for ``{until: ...}``; any other word is an error."""
        if isinstance(data, str):
            if data in LATCHES:
                return {"until": data}
            hint = suggest(data, LATCHES)
            raise ValueError(f"'{data}' is not a validity: write {{hours: N}}, {{days: N}}, superseded or stay"
                             + (f" (did you mean '{hint}'?)" if hint else ""))
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        return {"anyOf": [schema, {"enum": list(LATCHES), "description": "Short for {until: superseded} or {until: stay}."}]}


class Aggregate(_Model):
    """A field computed from the recorded values of another field (its history).

    Values are taken per clinical day (the last value recorded on each day counts), within
    clinical days ``from_day``..``to_day`` (day 3 runs from 72 h to 96 h after admission),
    optionally only those recorded ``within`` a window back from now and/or ``since`` a state was
    first entered. ``ever`` is true when a value was recorded in the window and false when none
    was; ``count`` is 0 then; the others are not recorded (None) when the window holds no value.

    ``since`` and ``until`` take a state or a list of states; with a list, the one of them the patient
    entered last counts (a second rescue agent starts a new window). ``until`` keeps only the values
    recorded up to the end of the clinical day on which the patient entered that state: the values at
    the start of a treatment, a result of that day that arrives after the decision included.
    ``after_entry``: with ``since`` naming the current state, only values recorded in events after
    the one that moved the patient into it (a judgement made before the team chose the treatment does
    not count as one made on it).
    ``since_change_of``: only values recorded in the event in which another field last took a new
    value (differing from the one recorded before it), or later: a trough on the dose given now, not
    on an earlier dose (a value of that field recorded again unchanged, or its first value, is no
    change). ``settled`` (with ``since_change_of``): only values recorded at least that long after the event in
    which that field last changed (a trough at steady state on the dose given now, not one drawn while the level is
    still rising); with no change, none is left out.
    ``confirmed_by`` (with ``fn: last``, and no window of its own): the value last confirmed, where another
    field, a yes/no, records a confirmation: the last value recorded in or before the last event that recorded
    that field, when that recording is true, among the values recorded by the time it was recorded (a value
    recorded or amended afterwards and placed before it in the timeline is not confirmed by it: the session's
    order of arrival); the first value ever recorded when it was never recorded or its
    last recording is false (a confirmation withdrawn). Each recording counts, not only the last of its day
    (the weight the team last confirmed, or the admission weight, as the baseline of a new weight).
    ``values``: only values among these count (an untreated latent TB result ever recorded: ``of: latent_tb,
    fn: ever, values: [untreated]``), each recording of one, not only the last of its day.
    ``per``: the value divided by the latest recorded value of another number field (a daily dose per kg of the
    weight: ``per: weight_kg``); not recorded while that field has none (or it is 0). Not with a baseline.
    ``counted_from``: ``from_day`` and ``to_day`` count from the patient's first entry into this state
    instead of from admission (days 1-3 of IV steroids; no value before the state is entered).
    ``from_day`` and ``to_day`` may name a parameter (``from_day: $tac_low_target_after_day``): the window then
    follows the parameter under every profile and override.
    ``min_days``: fewer clinical days with a value in the window than this gives no value (not
    recorded), so "on each of the last 2 days" is unknown, not false, while a day is missing.
    ``or_else`` is used when the window holds no value (e.g. the first value on a treatment when none
    was recorded before it). ``fall_from`` gives, instead of the value, how
    far it has fallen from another aggregate (a baseline): ``fall_from`` minus the value, positive
    when it fell; ``rise_from`` how far it has risen (the value minus the baseline); with
    ``percent``, as a percentage of the baseline. Not recorded when either value is not (or the
    baseline is 0 for a percentage).
    """

    of: str
    fn: Literal["mean", "first", "last", "min", "max", "count", "ever"]
    #: a number, or a ``$parameter`` as written; a loaded definition holds the number (the loader resolves it)
    from_day: float | str = 0
    to_day: float | str = MAX_DAY
    within: Window | None = None
    since: str | list[str] | None = None
    until: str | list[str] | None = None
    fall_from: Aggregate | None = None
    rise_from: Aggregate | None = None
    percent: bool = False
    or_else: Aggregate | None = None
    min_days: int = Field(default=1, ge=1)
    after_entry: bool = False
    since_change_of: str | None = None
    settled: Window | None = None
    confirmed_by: str | None = None
    per: str | None = None
    counted_from: str | None = None
    values: list[bool | int | float | str] | None = None

    @property
    def baseline(self) -> Aggregate | None:
        """The aggregate a fall or rise is measured from (None: the value itself is given)."""
        return self.fall_from if self.fall_from is not None else self.rise_from

    @property
    def states(self) -> list[str]:
        """The states the window depends on (``since``, ``until``, and those of the baseline)."""
        out: list[str] = [self.counted_from] if self.counted_from is not None else []
        for ref in (self.since, self.until):
            out += [ref] if isinstance(ref, str) else list(ref or [])
        for part in (self.baseline, self.or_else):
            out += part.states if part is not None else []
        return out


class DecisionSpec(_Model):
    """A field that records a clinical decision taken by the team (``rescue_choice``, ``decision``).

    A decision counts only in the states listed under ``in`` and only from the event that records
    it until the patient leaves the state: a choice recorded before it is due is refused, and a
    choice does not carry over into a later state. A decision that counts but moves nothing is
    said aloud in the result (a critical alert naming why it cannot be acted on).
    """

    in_: str | list[str] = Field(alias="in")

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True, allow_inf_nan=False)


class AmbiguityBand(_Model):
    """Bare numbers of a field that read plausibly both in its canonical unit and, as the same
    number, in another unit the field accepts (``unit``).

    ``range`` is inclusive at both ends and holds bare values (the number as typed). A bare number
    inside it is refused (``action: refuse``, code PW408) or accepted in the canonical unit with a
    warning alert naming both readings (``action: warn``). A value given as ``{value, unit}`` is never
    ambiguous. ``evidence`` cites the conversion and the thresholds that make the two readings differ.
    """

    unit: str
    range: tuple[float, float]
    action: Literal["refuse", "warn"]
    evidence: Evidence


class Display(_Model):
    """How texts show a field's value: rounded to ``decimals`` places or to a multiple of ``step``
    (exactly one), half away from zero, trailing zeros dropped. Decisions use the unrounded value."""

    decimals: int | None = Field(default=None, ge=0, le=6)
    step: float | None = Field(default=None, gt=0)


class Computation(_Model):
    """How a true/false input is computed from other inputs when its value is not recorded.

    ``when`` is a condition on input fields (the rule condition language, ``$parameters``
    included): the field is true when the condition is definitely true, false when it is
    definitely false, and has no value (unknown) otherwise. A value recorded for the field wins
    over the computed one when it was recorded in the same event as, or a later event than, the
    newest input value the condition used; otherwise the computed value wins.

    ``recorded_true_stands``: a true recorded for the field stands until a false is recorded for it;
    input values recorded later do not replace it (a team's own hold stands until the team lifts it,
    whatever else is recorded since). A recorded false is replaced as above.
    """

    when: Any
    evidence: Evidence
    recorded_true_stands: bool = False


class FieldDef(_Model):
    """One input field of a case or event (with ``aggregate``, computed from one; with ``compute``,
    computed from other inputs unless recorded)."""

    type: Literal["number", "integer", "boolean", "enum", "string"]
    title: str
    unit: str = ""
    range: tuple[float, float] | None = None
    values: list[str] = Field(default_factory=list)
    quantity: str | None = None
    scope: Literal["patient", "event", "both"] = "event"
    #: How long an event value stays current (see :class:`Validity`); a value given in the patient
    #: record counts as recorded on admission. None: for the whole stay.
    valid_for: Validity | None = None
    #: The older spelling of ``valid_for: {days: N}``, kept for compatibility (a value recorded on
    #: day 2 with ``valid_for_days: 1`` is no longer current on day 3). None: forever.
    valid_for_days: float | None = None
    aggregate: Aggregate | None = None
    #: a decision recorded by the team (see DecisionSpec); the loader resolves the states
    decision: DecisionSpec | None = None
    compute: Computation | None = None
    description: str = ""
    #: Bare numbers that are plausible in two units (see AmbiguityBand).
    ambiguous: list[AmbiguityBand] = Field(default_factory=list)
    #: Every bare number is refused: the value must come as ``{value, unit}``.
    unit_required: bool = False
    #: Rounding of the value where texts show it (``{field}``).
    display: Display | None = None
    #: How criteria in words name the field (``CRP``, ``visible blood``); default: the title. An integer
    #: count with a per-period unit (``/24 h``) reads after the number: ``≥ 6 bloody stools in 24 h``.
    short: str = ""
    #: A boolean field: how criteria in words say it is false (``no visible blood``); default: ``<name>: no``.
    short_false: str = ""
    #: An enum field: values that only stand until the result (``pending``). Once another value is recorded
    #: for the field, a provisional one never replaces it as the current value, whatever their times: a
    #: positive result sampled on day 1 that arrives after a day-3 'pending' is the current value (FHIR
    #: Observation.status: a final result supersedes a preliminary one). It is still kept in the history.
    provisional: list[str] = Field(default_factory=list)


class ConsistencyCheck(_Model):
    """Values given in the same event that contradict each other: the event is refused.

    Two number fields: ``{id: stools_include_bloody, field: stool_freq_24h, gte: bloody_stools_24h}``:
    when both are given in one event (or both in the patient record), ``stool_freq_24h >=
    bloody_stools_24h`` must hold. Exactly one of ``gt``, ``gte``, ``lt``, ``lte`` names the other field.

    Any fields: ``forbid:`` a condition (the rule condition language, on input fields) that the values
    given together must not definitely meet: ``{all: [{bloody_stools_24h: {gt: 0}}, {visible_blood:
    false}]}``. A field not given in the event leaves it unknown, so nothing is refused for it.
    """

    id: str = Field(pattern=_ID)
    title: str
    field: str | None = None
    forbid: Any = None
    gt: str | None = None
    gte: str | None = None
    lt: str | None = None
    lte: str | None = None


class CheckSetting(_Model):
    """One entry of ``checks:`` in pathway.yaml: a static check (``pathway check``) explained or switched off.

    Findings with this ``code`` (narrowed to a ``state``, a ``rule`` and/or a site ``profile``
    when given) are reported as explained by ``note`` instead of counting as warnings;
    ``disable: true`` does not run the check at all. Only warning checks may be explained or
    disabled here.
    """

    code: str = Field(pattern=r"^PW\d{3}$")
    note: str = Field(min_length=1)
    state: str | None = None
    rule: str | None = None
    profile: str | None = None
    #: PW627 only: the parameter whose one-step mutants are explained
    parameter: str | None = None
    disable: bool = False


class PathwayFile(_Model):
    id: str = Field(pattern=_ID)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.\-]+)?$")
    title: str
    description: str = ""
    #: Phases of care (id -> phase), in the order diagrams draw them; states name one under ``phase``.
    phases: dict[str, PhaseDef] = Field(default_factory=dict)
    states: dict[str, StateDef]
    transitions: list[TransitionDef]
    parameters: dict[str, ParameterDef] = Field(default_factory=dict)
    derived: dict[str, DerivedDef] = Field(default_factory=dict)
    #: Decision points whose derived facts are kept once their window has passed.
    decision_points: dict[str, DecisionDef] = Field(default_factory=dict)
    sources: dict[str, SourceDef] = Field(default_factory=dict)
    sources_file: str | None = None
    fields_file: str = "fields.yaml"
    rule_files: list[str]
    #: The hazard log (clinical risk management file); optional.
    hazards_file: str | None = None
    invariants_file: str | None = None
    #: The FHIR terminology map (LOINC and other codes -> input fields); optional.
    codes_file: str | None = None
    #: Site profiles live in ``profiles/<id>.yaml``; this one applies when none is asked for.
    default_profile: str | None = None
    #: Explained or disabled static checks (``pathway check``), each with a note saying why.
    checks: list[CheckSetting] = Field(default_factory=list)

    # Ids of states, parameters and derived facts are checked by the loader, which can point at
    # the offending key (see ID_PATTERN).


class SourcesFile(_Model):
    sources: dict[str, SourceDef]


class FieldsFile(_Model):
    fields: dict[str, FieldDef]
    #: Checks between the values of one event; a violation refuses the event (PW409).
    consistency: list[ConsistencyCheck] = Field(default_factory=list)


class RuleDef(_Model):
    """One rule. ``when``/``due`` are conditions; ``then``/``otherwise`` are effect lists."""

    id: str = Field(pattern=_ID)
    title: str
    in_: str | list[str] = Field(alias="in")
    priority: int = 0
    due: Any = None
    requires: list[str] = Field(default_factory=list)
    when: Any = None
    then: list[Any] = Field(default_factory=list)
    otherwise: list[Any] = Field(default_factory=list)
    #: effects when ``due`` holds but a ``requires`` field is missing (besides data_required)
    if_missing: list[Any] = Field(default_factory=list)
    #: a decision point (``decision_points:`` in pathway.yaml): the rule fires only inside its window and
    #: the facts it derives are kept afterwards
    decision_point: str | None = None
    evidence: Evidence
    note: str = ""
    #: Clinical sign-off: who reviewed the rule, when, and when it is due for review again.
    reviewed_by: str | None = Field(default=None, min_length=1)
    reviewed_on: date | None = None
    review_due: date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True, allow_inf_nan=False)


class ProfileFile(_Model):
    """A site profile: named parameter values for the points where guidelines disagree."""

    id: str = Field(pattern=_ID)
    title: str
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    parameters: dict[str, float | int | bool | str] = Field(default_factory=dict)


class RuleFile(_Model):
    title: str = ""
    rules: list[RuleDef]


# -- the hazard log (clinical risk management file) -------------------------------------------

#: DCB0129's severity (consequence) categories, least to most severe.
SEVERITIES: tuple[str, ...] = ("minor", "significant", "considerable", "major", "catastrophic")
#: DCB0129's likelihood categories, least to most likely.
LIKELIHOODS: tuple[str, ...] = ("very low", "low", "medium", "high", "very high")
Severity = Literal["minor", "significant", "considerable", "major", "catastrophic"]
Likelihood = Literal["very low", "low", "medium", "high", "very high"]

#: The DCB0129 clinical risk matrix: likelihood -> the risk rating (1-5) for each severity, in
#: the order of :data:`SEVERITIES`.
RISK_MATRIX: dict[str, tuple[int, int, int, int, int]] = {
    "very high": (3, 4, 4, 5, 5),
    "high": (2, 3, 3, 4, 5),
    "medium": (2, 2, 3, 3, 4),
    "low": (1, 2, 2, 3, 4),
    "very low": (1, 1, 2, 2, 3),
}

#: What each risk rating means.
RISK_MEANINGS: dict[int, str] = {
    1: "acceptable, no further action required",
    2: "acceptable where the cost of further reduction outweighs the benefit",
    3: "undesirable: acceptable only when further reduction is impractical",
    4: "mandatory elimination or control to reduce the risk to an acceptable level",
    5: "unacceptable",
}


def risk_rating(severity: str, likelihood: str) -> int:
    """The risk rating (1-5) the DCB0129 matrix gives a severity and a likelihood."""
    if severity not in SEVERITIES or likelihood not in RISK_MATRIX:
        raise ValueError(f"no risk rating for severity {severity!r} and likelihood {likelihood!r}")
    return RISK_MATRIX[likelihood][SEVERITIES.index(severity)]


class Risk(_Model):
    """A risk after mitigation: the severity and likelihood of harm, and the rating the matrix gives
    them (``risk``: computed when left out, checked when given)."""

    severity: Severity
    likelihood: Likelihood
    risk: int | None = Field(default=None, ge=1, le=5)


class Mitigations(_Model):
    """The controls of the pathway that mitigate a hazard today: rules, parameters, input fields
    (their plausible range, units and ambiguity bands, validity, computation or decision states) and
    the overdue watchdogs of states."""

    rules: list[str] = Field(default_factory=list)
    parameters: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)
    watchdogs: list[str] = Field(default_factory=list)


class Verification(_Model):
    """What shows that the mitigations work: scenario ids (from the pathway's ``scenarios/``) and,
    reserved for later, invariant ids."""

    scenarios: list[str] = Field(default_factory=list)
    invariants: list[str] = Field(default_factory=list)


class HazardDef(_Model):
    """One hazard of the hazard log: what could harm a patient, why, how badly and how likely, what
    controls it today and what verifies the controls."""

    id: str = Field(pattern=_SOURCE_ID)
    title: str = Field(min_length=1)
    cause: str = Field(min_length=1)
    effect: str = Field(min_length=1)
    severity: Severity
    likelihood: Likelihood
    initial_risk: int | None = Field(default=None, ge=1, le=5)
    mitigations: Mitigations = Field(default_factory=Mitigations)
    verification: Verification = Field(default_factory=Verification)
    residual_risk: Risk
    status: Literal["open", "mitigated", "accepted", "closed"]
    open_questions: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    note: str = ""


class HazardsFile(_Model):
    """The hazard log of a pathway (``hazards_file`` in pathway.yaml)."""

    title: str = ""
    description: str = ""
    hazards: list[HazardDef]


class DoseRange(_Model):
    """A label range per kg for one medicine: per administration or per day (one of the two)."""

    mg_per_kg: tuple[float, float] | None = None
    mg_per_kg_per_day: tuple[float, float] | None = None


class InvariantDef(_Model):
    """One safety invariant (see :mod:`pathway.definition.invariants`): a condition with what the
    result must show, or a built-in property."""

    id: str = Field(pattern=_SOURCE_ID)
    title: str = Field(min_length=1)
    hazards: list[str] = Field(default_factory=list)
    description: str = ""
    builtin: str | None = None
    when: Any = None
    expect: dict[str, Any] | None = None
    #: a course operator: ``at: end`` checks only the last result of a course
    at: Literal["every_event", "end"] = "every_event"
    #: a course operator: once a result shows ``after`` (and ``when`` holds), some result within
    #: ``within_days`` clinical days (a number or ``$parameter``) must show ``expect``
    after: dict[str, Any] | None = None
    within_days: int | str | None = None
    dose_ranges: dict[str, DoseRange] = Field(default_factory=dict)
    monotone: dict[str, list[bool | str]] = Field(default_factory=dict)
    drug_classes: dict[str, list[str]] = Field(default_factory=dict)


class InvariantsFile(_Model):
    """The safety invariants of a pathway (``invariants_file`` in pathway.yaml)."""

    title: str = ""
    description: str = ""
    invariants: list[InvariantDef] = Field(min_length=1)


# -- the FHIR terminology map (codes_file) --------------------------------------------------------

_CODE_TEXT = r"^[^\s]([^\r\n]*[^\s])?$"


class _Coded(_Model):
    system: str = Field(min_length=1, description="A code system: an alias under 'systems' (loinc, snomed, rxnorm, "
                                                  "local) or a full URI.")
    code: str = Field(pattern=_CODE_TEXT, max_length=200, description="The code in that system, as sent.")
    display: str = Field(default="", description="What the code means, as the code system names it (for readers).")
    verified: bool = Field(default=True, description="false: the code's meaning could not be confirmed against the "
                                                     "code system; review before use (the mapping table says so).")
    note: str = Field(default="", description="Anything a reviewer should know about this mapping.")


class ObservationCode(_Coded):
    """An Observation code and the input field its value records."""

    field: str = Field(pattern=_ID, description="The input field (fields file) the Observation's value records.")
    units: list[str] | None = Field(default=None, description="UCUM codes accepted for this code (each under 'units'); "
                                                              "default: every UCUM code of 'units' the field accepts.")


class AnswerCode(_Coded):
    """A coded answer (valueCodeableConcept) and the value it gives a true/false or enum field."""

    value: bool | str = Field(description="The field value: true/false for a true/false field, an enum value for an "
                                          "enum field.")


class OrderCode(_Coded):
    """A medicine (MedicationRequest, MedicationAdministration) or procedure (Procedure) and what it records."""

    resources: list[Literal["MedicationRequest", "MedicationAdministration", "Procedure"]] = Field(
        min_length=1, description="The resource types this code is read from.")
    records: list[dict[str, bool | str]] = Field(
        default_factory=list,
        description="Decisions it records, in order of preference: the first whose field is due in the patient's "
                    "state is recorded (e.g. rescue_choice, else sequential_rescue_choice); none due: none recorded, "
                    "and the resource is reported.")
    daily_dose: str | None = Field(default=None, pattern=_ID,
                                   description="A MedicationRequest's total daily dose (dose x frequency / period, in "
                                               "mg) records this field (unit mg/day).")
    agent: str | None = Field(default=None, pattern=_ID,
                              description="The pathway's name for this medicine: an option of a decision or the name of "
                                          "a computed dose (tacrolimus). Order checks (CDS Hooks order-select and "
                                          "order-sign) map a draft order to it; default: the value it records.")
    names: list[str] = Field(default_factory=list,
                             description="Names that identify the medicine in a draft order's free text when no code "
                                         "of this file is given (generic and brand names, matched as whole words, "
                                         "case-insensitive).")
    avoid: str | None = Field(default=None, pattern=_ID,
                              description="A rule whose 'avoid' recommendation names this medicine (avoid_drugs: "
                                          "opioids, NSAIDs, antidiarrhoeals): a draft order of it while that rule "
                                          "applies gets a warning card with the rule's text and evidence.")


class CodesFile(_Model):
    """How FHIR R4 resources map to input fields (``codes_file`` in pathway.yaml): pathway data."""

    title: str = Field(default="", description="What the map is for.")
    description: str = Field(default="", description="More about the map, for readers.")
    systems: dict[str, str] = Field(default_factory=dict,
                                    description="Alias -> code system URI (loinc: http://loinc.org).")
    local_system: str | None = Field(default=None, min_length=1,
                                     description="A code system whose codes are the pathway's field names: an "
                                                 "Observation coded in it records that field (any field the codes do "
                                                 "not cover). Its answer codes are enum values.")
    units: dict[str, str] = Field(default_factory=dict,
                                  description="UCUM code as hospitals send it -> the pathway's unit (fields file and "
                                              "unit conversions): Cel -> °C, [lb_av] -> lb.")
    answers: list[AnswerCode] = Field(default_factory=list,
                                      description="Coded answers (valueCodeableConcept) -> field values.")
    observations: list[ObservationCode] = Field(default_factory=list,
                                                description="Observation codes -> input fields.")
    orders: list[OrderCode] = Field(default_factory=list,
                                    description="Medicines and procedures -> recorded decisions and daily doses.")
