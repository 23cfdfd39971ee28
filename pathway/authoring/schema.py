"""JSON Schemas for every file an author writes, generated from the pydantic models.

``pathway schema PATHWAY [-o DIR] [--check] [--add-headers]`` writes them (default: the
``schema`` folder beside the pathway folder, i.e. ``rules/schema/`` for the shipped rules):

- ``pathway``, ``fields``, ``sources``, ``rules``, ``hazards``, ``invariants``, ``profile``, ``scenario``: one per
  file kind,
  from :mod:`pathway.model`, :mod:`pathway.effects` and :mod:`pathway.scenario`;
- ``<id>.case`` and ``<id>.scenario``: per pathway, from its ``fields.yaml`` (field names, types,
  enum values, plausible ranges, ``{value, unit}`` quantities with the accepted units).

The models keep conditions and effects as plain data (they are parsed later with positions),
so the generator describes them itself: in a rule-file model a bare ``Any`` field is a
condition (recursive: ``all``/``any`` lists, ``not``, ``at_least``, ``{field: value}``,
``{field: {op: value}}``) and a ``list[Any]`` field is an effect list (one-key objects whose
bodies are the effect models of :data:`pathway.effects.EFFECT_KINDS`). Wherever a rule may give
a number or a ``$parameter``, the schema says exactly that.

Output is deterministic: sorted keys, indent 2, UTF-8, trailing newline. The schemas are JSON
Schema draft 7, the draft the YAML language server validates with: definitions live under
``$defs`` (plain JSON-pointer references), pairs are ``items`` with a length, and a ``$ref`` that
carries a description is wrapped in ``allOf`` (draft 7 ignores keywords beside ``$ref``).

Every shipped YAML file starts with ``# yaml-language-server: $schema=<relative path>``, the
modeline the YAML language server reads (VS Code's YAML extension, Neovim's yamlls); :func:`add_headers`
inserts the line into files that lack it and never touches the rest of a file.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, cast, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pathway.core.errors import DefinitionError, display_path
from pathway.core.yamlsafe import RULE_FILE_LIMITS, YamlProblem, load_yaml_file, validation_diagnostics
from pathway.definition import effects as E
from pathway.definition import model as M
from pathway.definition.clock import MAX_DAY
from pathway.definition.inputs import EVENT_META, PATIENT_META
from pathway.definition.pathway import PathwayDef
from pathway.definition.timeline import validity, validity_text
from pathway.definition.units import CONVERSIONS, units_for
from pathway.loading.loader import load_definition

__all__ = [
    "DIALECT",
    "HEADER_PREFIX",
    "PARAMETER_REF",
    "model_schemas",
    "pathway_schemas",
    "schemas",
    "render",
    "write_schemas",
    "stale_schemas",
    "default_schema_dir",
    "authored_fields",
    "schema_for_file",
    "header_for",
    "check_headers",
    "add_headers",

]

DIALECT = "http://json-schema.org/draft-07/schema#"
HEADER_PREFIX = "# yaml-language-server: $schema="
ID_PATTERN = r"^[a-z][a-z0-9_]*$"
PARAMETER_REF = r"^\$[a-z][a-z0-9_]*$"

_REF = "#/$defs/{model}"
#: Effects whose body is not a mapping of the model's keys (mirrors ``parse_effects``).
_EFFECT_BODY_FIELD: dict[type[BaseModel], str] = {E.Transition: "to", E.Derive: "values"}
#: Condition operators and what they take ("number": a number or a $parameter).
_OPERATORS: dict[str, tuple[str, str]] = {
    "eq": ("value", "equal to"),
    "ne": ("value", "not equal to (a missing value is unknown, not unequal)"),
    "gt": ("number", "greater than"),
    "gte": ("number", "greater than or equal to"),
    "lt": ("number", "less than"),
    "lte": ("number", "less than or equal to"),
    "in": ("values", "one of the listed values"),
    "not_in": ("values", "none of the listed values (and recorded)"),
    "between": ("range", "within [low, high], both inclusive"),
    "present": ("boolean", "true: the value is recorded; false: it is missing (not allowed on derived facts)"),
}

#: Hover texts for keys the models leave undescribed: {model name: {key: text}}.
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "PathwayFile": {
        "id": "Pathway id: lower case letters, digits and '_', starting with a letter.",
        "version": "Semantic version of the pathway, e.g. 0.1.0.",
        "title": "Human title of the pathway.",
        "states": "State id -> state. Exactly one state has kind 'start'; terminal states have no way out.",
        "transitions": "The edges of the state graph. A rule may only take a transition listed here; "
                       "'from: any_active' means every start or active state.",
        "parameters": "Named thresholds and doses (value, unit, sources). Rules refer to them as '$name'.",
        "derived": "Named facts that rules derive ('derive' effect) and other rules test.",
        "sources": "Evidence sources listed inline (id -> source); usually kept in sources_file instead.",
        "sources_file": "File with the evidence source list (sources.schema.json).",
        "fields_file": "File with the input fields (fields.schema.json).",
        "rule_files": "Rule files, in load order (rules.schema.json).",
        "default_profile": "Site profile (profiles/<id>.yaml) used when none is asked for.",
        "decision_points": "Decision points: windows of clinical days whose rules' derived facts are kept afterwards.",
        "phases": "Phases of care (id -> title, description), in the order diagrams draw them; a state names its "
                  "phase under 'phase', and 'pathway diagram --clusters' draws each phase as a box.",
        "hazards_file": "File with the hazard log, the clinical risk management file (hazards.schema.json); optional.",
        "codes_file": "File with the FHIR terminology map: LOINC and other codes and UCUM units -> input fields, "
                      "medicines and procedures -> decisions (codes.schema.json); optional.",
        "invariants_file": "File with the safety invariants that 'pathway verify' checks (invariants.schema.json); "
                           "optional.",
    },
    "TransitionDef": {
        "from": "Source state id(s), or 'any_active' for every start or active state.",
        "to": "Target state id.",
    },
    "ParameterDef": {
        "value": "The value rules use (a profile or an override may replace it).",
        "unit": "Unit of the value, e.g. mg/L or mg/kg/day.",
        "sources": "Source ids supporting the value (from the sources list).",
        "choices": "The values guidelines support; a profile may only pick one of these.",
    },
    "FieldDef": {
        "type": "number, integer, boolean, enum (with 'values') or string.",
        "unit": "Canonical unit; it is also part of the field name (crp_mg_l is in mg/L).",
        "range": "Plausible range [low, high] in the canonical unit; a value outside is refused.",
        "values": "The allowed values of an enum field.",
        "quantity": "Analyte for unit conversion, so {value, unit} in another unit is accepted. Known: "
                    + ", ".join(sorted(CONVERSIONS)) + ".",
        "scope": "Where a value is given: the patient record, events, or both.",
        "valid_for": "How long an event value stays current: {hours: N} or {days: N} (end excluded unless "
                     "end: inclusive), superseded (until a newer value) or stay (the whole stay). An expired value "
                     "is missing to the rules, and a rule waiting for it asks for a recheck with the last value.",
        "valid_for_days": "Older spelling of valid_for: {days: N} (give one of the two).",
        "decision": "A decision recorded by the team: it counts only in the states listed under 'in', from the "
                    "event that records it until the patient leaves the state; recorded elsewhere it is refused "
                    "(PW407); if it cannot be acted on, the result says why in a critical alert.",
        "ambiguous": "Ambiguity bands: bare numbers that are plausible both in the canonical unit and, as the same "
                     "number, in another accepted unit; each is refused or accepted with a warning.",
        "unit_required": "true: every bare number is refused; values must come as {value, unit}. For fields whose "
                         "common units overlap so much that no band can separate them.",
        "short": "How criteria in words name the field (CRP, visible blood); default: the title. An integer count "
                 "with a per-period unit (/24 h) reads after the number: '≥ 6 bloody stools in 24 h'.",
        "short_false": "A true/false field: how criteria in words say it is false (no visible blood); default: "
                       "'<name>: no'.",
        "display": "How texts show the value: {decimals: N} or {step: S}; decisions use the unrounded value.",
        "aggregate": "Computed from the record of another field (its history); never given in a case.",
        "compute": "A true/false field computed from other inputs by a condition when it is not recorded; a value "
                   "recorded in the same event as, or after, the newest input used wins.",
        "description": "More about the field, for readers and the field reference.",
    },
    "Watchdog": {
        "when": "Condition (typically on day or days_in_state) past which the state's decision is overdue.",
        "text": "The alert's text; may name values in braces. The fields still needed are appended.",
        "summary": ("A short form of the text for a card's one-line summary; the number of values still needed "
                    "is appended."),
        "evidence": "Why the decision is due by then: source ids, strength and status.",
    },
    "DecisionSpec": {
        "in": "State id(s) where the decision counts, or 'any_active'.",
    },
    "AmbiguityBand": {
        "unit": "The other unit the same bare number may be in (one the field's quantity converts).",
        "range": "Bare numbers [low, high], both inclusive, inside the plausible range and plausible when read "
                 "in 'unit' too.",
        "action": "refuse: the bare number is refused naming both readings (PW408); warn: accepted in the "
                  "canonical unit, with a warning alert naming both readings.",
        "evidence": "Sources for the conversion and the thresholds that make the two readings differ.",
    },
    "Display": {
        "decimals": "Decimal places shown (0-6).",
        "step": "Shown as a multiple of this step, e.g. 0.5.",
    },
    "FieldsFile": {
        "fields": "Field name -> field. The name carries the canonical unit (crp_mg_l is in mg/L).",
        "consistency": "Checks between two number fields given together in one event; a violation refuses the event.",
    },
    "Computation": {
        "when": "Condition on input fields ($parameters allowed): true gives true, definitely false gives false, "
                "unknown gives no value. " + "It may not test derived facts or built-ins.",
        "evidence": "Where the computation comes from: source ids, strength and verification status.",
    },
    "ConsistencyCheck": {
        "id": "Check id, unique in the fields file.",
        "title": "What the check means, shown in the refusal message.",
        "field": "A number field.",
        "gt": "The other number field: 'field' must be greater than it.",
        "gte": "The other number field: 'field' must be at least it.",
        "lt": "The other number field: 'field' must be less than it.",
        "lte": "The other number field: 'field' must be at most it.",
    },
    "Aggregate": {
        "of": "The field whose recorded values are aggregated.",
        "fn": "mean, first, last, min, max, count (days with a value; 0 when none) or ever (true when a value was "
              "recorded, false when none was).",
        "from_day": "First clinical day of the window (day 3 runs from 72 h to 96 h after admission); a number or "
                    "$parameter.",
        "to_day": "Last clinical day of the window (included); a number or $parameter.",
        "within": "Only values recorded within this span back from now ({hours: N} or {days: N}).",
        "since": "Only values recorded since this state was first entered (a list: the last entered of them).",
        "until": "Only values recorded up to the moment this state was first entered, the event that moved the "
                 "patient included: the values at the start of a treatment (a list: the last entered of them).",
        "fall_from": "Give how far the value has fallen from this baseline aggregate (baseline minus value, "
                     "positive when it fell) instead of the value.",
        "rise_from": "Give how far the value has risen from this baseline aggregate (value minus baseline, "
                     "positive when it rose) instead of the value.",
        "percent": "Give the fall or rise as a percentage of the baseline.",
        "or_else": "The aggregate used when this one's window holds no value (same field).",
        "after_entry": "With 'since' naming the current state: only values recorded after the event that moved "
                       "the patient into it.",
        "min_days": "Fewer days with a value in the window than this give no value (unknown), e.g. 2 for "
                    "'on each of the last 2 days'.",
        "since_change_of": "Only values recorded in the event in which this other field last changed, or later.",
        "settled": "With since_change_of: only values recorded at least this long after that change (a trough at "
                   "steady state on the dose given now).",
        "confirmed_by": "The value last confirmed: the last value recorded in or before the last event that recorded this "
                        "yes/no field, when that is true (among the values recorded by then, not one recorded or "
                        "amended afterwards); else the first value recorded (fn: last, no window).",
        "values": "Only these values count (e.g. [untreated] with fn ever: whether one was ever recorded).",
        "per": ("The value divided by the latest recorded value of this number field (a daily dose per kg: "
                "per: weight_kg); not recorded while that field has none. Not with fall_from or rise_from."),
        "counted_from": "from_day and to_day count from the first entry into this state (days of IV steroids), "
                        "not from admission; no value before the state is entered.",
    },
    "Window": {
        "hours": "Length of the window in hours.",
        "days": "Length of the window in days (24 h each).",
        "end": "exclusive (default): a value exactly that old is outside; inclusive: it is inside.",
    },
    "Validity": {
        "hours": "Current for less than this many hours (or up to and including it with end: inclusive).",
        "days": "Current for less than this many days of 24 h (or up to and including it with end: inclusive).",
        "end": "exclusive (default) or inclusive: whether a value exactly as old as the window is still current.",
        "until": "A latch instead of a window: superseded (until a newer value of the field) or stay (the whole stay).",
    },
    "DecisionDef": {
        "from_day": "First clinical day of the window (a number or $parameter).",
        "before_day": "The window ends before this day (a number or $parameter); from then on the kept facts stand.",
        "counted_from": "Count the window's days from the first entry into this state instead of from admission; "
                        "the point's rules must all be in that state alone, and it must be on no cycle.",
    },
    "RuleDef": {
        "id": "Rule id, unique across the pathway.",
        "in": "State id(s) where the rule applies, or 'any_active'.",
        "priority": "When several rules ask for moves, the highest priority wins; equal priorities asking "
                    "for different states are an error.",
        "requires": "Fields the 'otherwise' branch needs recorded, and that the rule asks for while it waits "
                    "(only those that can still change its answer). 'then' fires as soon as 'when' is "
                    "definitely true.",
        "decision_point": "A decision point (decision_points: in pathway.yaml): the rule fires only inside its window "
                          "and the facts it derives are kept afterwards.",
        "evidence": "Where the rule comes from: source ids, strength and verification status.",
        "reviewed_by": "Clinical sign-off: who reviewed the rule (with reviewed_on). Shown by 'pathway evidence' and "
                       "the audit report; never read by the engine.",
        "reviewed_on": "Date of the sign-off, YYYY-MM-DD (with reviewed_by).",
        "review_due": "Date the rule is due for review again, YYYY-MM-DD, after reviewed_on; once it has passed the "
                      "rule shows as 'review overdue'.",
    },
    "StateDef": {
        "kind": "start (exactly one), active, or terminal: the pathway is over for this admission (no way out).",
        "description": "What happens in this state, for readers and diagrams.",
        "overdue": "When the state's decision is overdue: past 'when' with the patient still here, every result "
                   "carries a critical alert naming what is still needed.",
        "phase": "The phase of care the state belongs to: an id under 'phases:' (diagrams group states by it).",
    },
    "DerivedDef": {
        "type": "boolean (default), number or string.",
        "values": "The allowed values of a string fact.",
        "short": "How criteria in words name the fact (Oxford index positive); default: the title.",
        "short_false": "A true/false fact: how criteria in words say it is false (no complete response); default: "
                       "'<name>: no'.",
    },
    "SourceDef": {
        "tag": "Kind of evidence: G guideline, T trial, M meta-analysis, O observational, S secondary summary, Label.",
        "ref": "Where to find it (URL, PMID).",
        "authoritative": "false for a source that cannot support verified evidence on its own (an AI answer page, "
                         "a code library's documentation): evidence citing only such sources must be unverified.",
    },
    "InvariantsFile": {
        "title": "Title of the invariants file.",
        "description": "What the invariants cover.",
        "invariants": "The safety invariants: what must hold after every event of any patient course.",
    },
    "InvariantDef": {
        "id": "Invariant id, unique in the file (letters, digits, '.', '_', '-'), e.g. INV-001.",
        "title": "What must never happen (or always happen), in a few words.",
        "hazards": "Ids of the hazards of the hazard log this invariant verifies.",
        "description": "Longer explanation: the exceptions and why.",
        "builtin": "A built-in property instead of when/expect: refused_event_changes_nothing, "
                   "recorded_decision_acted_on_or_alerted, no_stall, doses_within_label, monotone_risk_indices or "
                   "no_recommendation_of_an_avoided_drug.",
        "when": "When the invariant applies: a condition (the rule condition language) on what the event was "
                "evaluated with (state before any move, inputs, built-ins, derived facts).",
        "expect": "What the result after the event must show: moves_to, state, proposes, recommends, alerts, "
                  "offers, dose, data_required, combined with any, all and not.",
        "at": "Course operator: 'end' checks the expectation on the last result of a course only (default "
              "every_event: after every event).",
        "after": "Course operator, with within_days: once a result shows this (same vocabulary as expect) and "
                 "'when' holds, 'expect' is due within within_days clinical days.",
        "within_days": "Course operator, with after: days (a number or $parameter) within which 'expect' must be "
                       "shown once a result shows 'after'.",
        "dose_ranges": "For doses_within_label: medicine -> label range per kg (mg_per_kg or mg_per_kg_per_day).",
        "monotone": "For monotone_risk_indices: derived fact -> its positive values, which a worse input may not undo.",
        "drug_classes": "For no_recommendation_of_an_avoided_drug: drug class (as texts name it) -> its medicines.",
    },
    "DoseRange": {
        "mg_per_kg": "[low, high] mg/kg per administration.",
        "mg_per_kg_per_day": "[low, high] mg/kg per day.",
    },
    "HazardsFile": {
        "title": "Title of the hazard log.",
        "description": "What the log covers and how its ratings were made.",
        "hazards": "The hazards, each with its risk before and after mitigation, controls and verification.",
    },
    "HazardDef": {
        "id": "Hazard id, unique in the log (letters, digits, '.', '_', '-'), e.g. HAZ-001.",
        "title": "The hazard in a few words.",
        "cause": "What in the pathway (a rule, a value, a missing check) could lead to harm.",
        "effect": "The harm to the patient if the cause is not caught.",
        "severity": "DCB0129 severity of the harm: minor, significant, considerable, major or catastrophic.",
        "likelihood": "DCB0129 likelihood of the harm before mitigation: very low, low, medium, high or very high.",
        "initial_risk": "Risk rating 1-5 from the DCB0129 matrix (computed from severity and likelihood; a stated "
                        "value must match it).",
        "mitigations": "The controls that mitigate the hazard today (rules, parameters, fields, watchdogs); leave empty "
                       "when nothing does.",
        "verification": "What shows the controls work: scenario ids (and invariant ids, reserved).",
        "residual_risk": "Severity, likelihood and risk rating after the mitigations; equal to the initial risk when "
                         "nothing mitigates the hazard.",
        "status": "open (work remains), mitigated, accepted (residual risk accepted as it is) or closed.",
        "open_questions": "What is still to be decided or checked, in words.",
        "sources": "Source ids (from the sources list) behind the hazard or its controls.",
        "note": "Anything else a reviewer should know.",
    },
    "Risk": {
        "severity": "DCB0129 severity after mitigation.",
        "likelihood": "DCB0129 likelihood after mitigation.",
        "risk": "Risk rating 1-5 from the DCB0129 matrix (computed when left out; a stated value must match it).",
    },
    "Mitigations": {
        "rules": "Rule ids whose effects control the hazard.",
        "parameters": "Parameter names whose values control the hazard.",
        "fields": "Input fields whose definition controls the hazard (plausible range, units and ambiguity bands, "
                  "validity, computation, decision states).",
        "watchdogs": "States whose overdue watchdog controls the hazard.",
    },
    "Verification": {
        "scenarios": "Scenario ids from the pathway's scenarios/ folder; 'pathway check' runs them (PW624, PW625).",
        "invariants": "Ids of the safety invariants (invariants file) that verify the hazard; 'pathway verify' checks them.",
    },
    "Evidence": {
        "sources": "Source ids (from the sources list); at least one.",
        "strength": "G guideline, T trial, M meta-analysis, O observational, S secondary, Label drug label, expert.",
        "status": "verified: checked against the source; unverified: still to be checked.",
    },
    "Recommend": {
        "kind": "What sort of recommendation: order, medication, advice, monitoring, referral, procedure or avoid.",
        "text": "The recommendation as shown; may name values in braces, e.g. {crp_mg_l}.",
        "summary": ("A short form of the text for a card's one-line summary (under 140 characters filled), "
                    "keeping the action; braces as in the text."),
        "medication": "A structured medicine (name, dose, route, targets) for a medication recommendation.",
    },
    "Medication": {
        "name": "Medicine name.",
        "dose_mg": "Dose per administration in mg.",
        "times_per_day": "Administrations a day.",
        "route": "Route of administration.",
        "frequency": "Frequency in words, e.g. 'weeks 0, 2 and 6'.",
        "duration": "How long, in words.",
        "schedule": "Schedule in words.",
        "targets": "Target ranges: field -> [low, high], e.g. a trough level.",
    },
    "Dose": {
        "name": "Medicine name.",
        "route": "Route of administration.",
        "mg_per_kg_per_day": "Daily dose per kg, split into times_per_day doses (give this or mg_per_kg).",
        "mg_per_kg": "Dose per administration per kg (give this or mg_per_kg_per_day).",
        "times_per_day": "Administrations a day.",
        "round_to_mg": "Each dose is rounded to this step, e.g. the smallest capsule.",
        "max_mg_per_dose": "Upper limit of one dose in mg.",
        "text": "Text shown with the dose; {dose_mg}, {daily_mg}, {times_per_day} and field values may be named.",
        "summary": ("A short form of the text for a card's one-line summary (under 140 characters filled), "
                    "keeping the action; braces as in the text."),
        "frequency": "Frequency in words.",
        "duration": "How long, in words.",
        "schedule": "Schedule in words.",
        "targets": "Target ranges: field -> [low, high] (numbers or $parameters).",
        "at_days": "A scheduled infusion: the days after the first dose (e.g. [0, 14, 42] for weeks 0, 2 and 6); the "
                   "medication then lists dated administrations, with no daily amount.",
        "then_every_days": "Interval in days after the last scheduled administration.",
        "from_state": "The state whose first entry is day 0 of the schedule (default: the current state).",
        "alternative": "true: a dose a specialist may choose instead of the standard one (accelerated "
                       "infliximab); shown with its evidence, never offered as a one-click order, and an order of "
                       "it is a warning naming it rather than a dose error.",
    },
    "Alert": {
        "level": "info, warning or critical.",
        "text": "The alert as shown; may name values in braces.",
        "summary": ("A short form of the text for a card's one-line summary (under 140 characters filled), "
                    "keeping the action; braces as in the text."),
    },
    "Require": {
        "fields": "Fields to record; listed under data_required.",
        "text": "Why they are needed.",
    },
    "Propose": {
        "to": "The state the proposal leads to (an edge from each of the rule's states).",
        "record": "The decision that enacts it, as {decision field: value}; the patient moves only when the "
                  "team records it.",
        "text": "The proposal as shown.",
        "summary": ("A short form of the text for a card's one-line summary (under 140 characters filled), "
                    "keeping the action; braces as in the text."),
        "for": "Reasons for it.",
        "against": "Reasons against it.",
    },
    "Offer": {
        "option": "The option's name, e.g. infliximab; offers of one option from several rules are merged "
                  "(the strongest status wins: unavailable, then pending, caution, available).",
        "status": "available; caution (reasons against, still choosable, e.g. a correctable or soft "
                  "contraindication); unavailable (a hard contraindication). A rule that decides the option and is "
                  "waiting for data shows it as pending.",
        "available": "The 0.1.0 spelling: false means status: unavailable.",
        "rank": "Options are listed by rank (lowest first), then by name.",
        "text": "The option as shown.",
        "for": "Reasons for the option.",
        "against": "Reasons against the option.",
    },
    "Score": {
        "name": "The number derived fact (declared under 'derived:') that receives the score.",
        "items": "Points added when a condition on case fields holds.",
        "terms": "factor x field, added to the score.",
        "divide_by": "A field the sum is divided by.",
        "round_to": "Round the score to this step.",
    },
    "ScoreItem": {
        "when": "Condition on case fields.",
        "points": "Points added when it holds.",
    },
    "ScoreTerm": {
        "field": "A number field (listed in the rule's requires).",
        "factor": "Multiplier of the field's value.",
    },
    "Titrate": {
        "name": "Medicine name.",
        "route": "Route of administration.",
        "current_daily_mg": "Field holding the current daily dose in mg.",
        "measured": "Field holding the measured level.",
        "target": "Target level; new daily dose = current x target / measured.",
        "times_per_day": "Administrations a day.",
        "round_to_mg": "Each dose is rounded to this step.",
        "max_change_fraction": "Largest change of the daily dose, as a fraction (0.5 = at most 50%).",
        "max_mg_per_kg_per_day": "An increase stops at this daily dose per kg of weight_kg (then required).",
        "cap_text": ("What {capped} says in the text when an increase stopped at max_mg_per_kg_per_day; "
                     "{max_mg_per_kg_per_day} and {max_daily_mg} may be named."),
        "limit_text": ("The text instead of text and summary when the dose is already at max_mg_per_kg_per_day: "
                       "no increase is possible; braces as in cap_text."),
        "text": "Text shown; {new_daily_mg}, {change_percent}, {capped} and field values may be named.",
        "summary": ("A short form of the text for a card's one-line summary (under 140 characters filled), "
                    "keeping the action; braces as in the text."),
    },
    "Scenario": {
        "id": "Scenario id, unique in the file; the pytest test name.",
        "purpose": "What the scenario checks, in one sentence.",
        "profile": "Site profile to load the pathway with.",
        "parameters": "Parameter overrides for this scenario.",
        "case": "The patient and the events, in time order.",
        "expect": "The expected outcome; every key is optional.",
    },
    "Expectation": {
        "state": "Final state.",
        "path": "Visited states, exactly.",
        "path_contains": "States visited in this order (others may come between).",
        "recommendations": "Recommendations that must be present or absent.",
        "alerts": "Alerts that must be present or absent.",
        "options": "Options that must be present or absent.",
        "doses": "Doses of named medicines (dose_mg, daily_mg, times_per_day, route; tolerance in mg).",
        "data_required": "Exactly these fields are required.",
        "data_required_includes": "These fields are among those required.",
        "derived": "Derived fact -> expected value.",
        "computed": "Computed input -> its value, source (derived or recorded) and the inputs it was derived from.",
        "fired": "Rules that fired at some point.",
        "not_fired": "Rules that never fired.",
        "refused": "The case must be refused with this code (and at this event).",
    },
    "ProfileFile": {
        "id": "Profile id; must equal the file name (profiles/<id>.yaml).",
        "sources": "Source ids behind the profile's choices.",
        "parameters": "Parameter name -> value; each must fit the pathway parameter's type and choices.",
    },
}
_EFFECT_TEXT: dict[str, str] = {
    "recommend": "A recommendation for the team: kind, text and, for a medicine, a structured medication.",
    "alert": "An alert (info, warning or critical) listed under alerts.",
    "require": "Fields to record before deciding; listed under data_required.",
    "offer": "An option at a decision, with reasons for and against; listed under options.",
}
_CONDITION_TEXT = ("A condition: 'true', a list (all must hold), or a mapping of 'all'/'any' lists, "
                   "'not', 'at_least' {n, of}, and field tests '{field: value}' or '{field: {op: value}}'.")
_EFFECTS_TEXT = "Effects: a list of one-key objects such as '- transition: <state>' or '- recommend: {...}'."
_KEY_TEXT: dict[str, str] = {
    "due": "Condition saying when the decision is due, e.g. {day: {gte: $assessment_day}}. " + _CONDITION_TEXT,
    "when": "Condition tested once the rule is due and its required fields are recorded. " + _CONDITION_TEXT,
    "then": "Effects when 'when' holds. " + _EFFECTS_TEXT,
    "otherwise": "Effects when 'when' is definitely false (never on missing data). " + _EFFECTS_TEXT,
    "if_missing": "Effects when the rule is due but a required field is missing. " + _EFFECTS_TEXT,
}


# -- helpers on schema dicts ------------------------------------------------------------------

def _models_in(*modules: Any) -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                out[obj.__name__] = obj
    return out


_SUB_MAPS = ("properties", "patternProperties", "$defs")
_SUB_ONE = ("items", "additionalProperties", "not", "propertyNames", "contains", "if", "then", "else")
_SUB_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")


def _walk(node: Any, fn: Any) -> Any:
    """Apply ``fn`` to every subschema bottom-up (keys of ``properties`` are names, not schemas)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUB_MAPS and isinstance(value, dict):
            out[key] = {name: _walk(sub, fn) for name, sub in value.items()}
        elif key in _SUB_ONE and isinstance(value, dict):
            out[key] = _walk(value, fn)
        elif key in _SUB_LIST and isinstance(value, list):
            out[key] = [_walk(sub, fn) for sub in value]
        else:
            out[key] = value
    return fn(out)


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles; turn pairs (``prefixItems`` of one schema) into ``items``."""
    node.pop("title", None)
    if isinstance(node.get("description"), str):
        node["description"] = " ".join(node["description"].replace("``", "`").split())
    prefix = node.get("prefixItems")
    if isinstance(prefix, list) and prefix and all(p == prefix[0] for p in prefix):
        del node["prefixItems"]
        node["items"] = prefix[0]
    return node


def _parameter_refs(node: dict[str, Any]) -> dict[str, Any]:
    """In rule files a ``number | str`` value is a number or a ``$parameter`` reference."""
    alts = node.get("anyOf")
    if isinstance(alts, list):
        types = [a.get("type") for a in alts]
        if "number" in types and "string" in types and set(types) <= {"number", "string", "null"}:
            node["anyOf"] = [{"$ref": _REF.format(model="ParameterRef")} if a.get("type") == "string" else a for a in alts]
    return node


def _wrap_refs(node: dict[str, Any]) -> dict[str, Any]:
    """``{$ref, description}`` -> ``{allOf: [{$ref}], description}``, read alike by every draft."""
    if "$ref" in node and len(node) > 1:
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {"allOf": [{"$ref": node["$ref"]}], **rest}
    return node


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return cast(dict[str, Any], _walk(model.model_json_schema(ref_template=_REF), _tidy))  # a dict in, _tidy's dict out


def _merge_defs(target: dict[str, Any], defs: dict[str, Any]) -> None:
    for name, schema in defs.items():
        if name in target and target[name] != schema:
            raise ValueError(f"two different models are both named '{name}'")
        target[name] = schema


def _describe(schema: dict[str, Any], classes: dict[str, type[BaseModel]]) -> None:
    """Fill in descriptions from :data:`DESCRIPTIONS`, and describe conditions and effect lists."""
    targets = [(name, sub) for name, sub in schema.get("$defs", {}).items()]
    root_name = schema.get("x-model")
    if root_name:
        targets.append((root_name, schema))
    for name, sub in targets:
        props = sub.get("properties", {})
        for key, text in DESCRIPTIONS.get(name, {}).items():
            if key in props and "description" not in props[key]:
                props[key]["description"] = text
        cls = classes.get(name)
        if cls is None:
            continue
        for fname, info in cls.model_fields.items():
            key = info.alias or fname
            if key not in props:
                continue
            text = DESCRIPTIONS.get(name, {}).get(key) or _KEY_TEXT.get(key, "")
            if info.annotation is Any:
                props[key] = {"$ref": _REF.format(model="Condition"), "description": text or _CONDITION_TEXT}
            elif get_origin(info.annotation) is list and get_args(info.annotation) == (Any,):
                props[key] = {"$ref": _REF.format(model="Effects"), "description": text or _EFFECTS_TEXT}


def _finish(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    schema.pop("x-model", None)
    schema = _walk(schema, _wrap_refs)
    out = {"$schema": DIALECT, "title": title}
    out.update({k: v for k, v in schema.items() if k not in ("$schema", "title")})
    out["description"] = description
    return out


def _file_schema(model: type[BaseModel], classes: dict[str, type[BaseModel]]) -> dict[str, Any]:
    schema = _model_schema(model)
    schema["x-model"] = model.__name__
    _describe(schema, classes)
    return schema


# -- condition and effect vocabulary ----------------------------------------------------------

def _condition_defs() -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": _REF.format(model=name)}

    ops: dict[str, Any] = {}
    for op, (kind, text) in _OPERATORS.items():
        body: dict[str, Any]
        if kind == "value":
            body = ref("Value")
        elif kind == "number":
            body = ref("Number")
        elif kind == "values":
            body = {"type": "array", "minItems": 1, "items": ref("Value")}
        elif kind == "range":
            body = {"type": "array", "minItems": 2, "maxItems": 2, "items": ref("Number")}
        else:
            body = {"type": "boolean"}
        ops[op] = {**body, "description": text}
    return {
        "ParameterRef": {
            "type": "string",
            "pattern": PARAMETER_REF,
            "description": "A named parameter of the pathway: '$' followed by its name, e.g. $assessment_day.",
        },
        "Number": {"anyOf": [{"type": "number"}, ref("ParameterRef")], "description": "A number or a $parameter."},
        "Value": {
            "anyOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string"}],
            "description": "A value of the field's type (true/false, a number, an enum value or text), or a $parameter.",
        },
        "Operators": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": ops,
            "description": "Comparisons on one field; several operators all apply.",
        },
        "FieldTest": {
            "anyOf": [ref("Value"), ref("Operators")],
            "description": "'value' tests equality; '{op: value}' uses an operator: " + ", ".join(_OPERATORS) + ".",
        },
        "ConditionMapping": {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "all": {"type": "array", "minItems": 1, "items": ref("Condition"), "description": "Every condition holds."},
                "any": {"type": "array", "minItems": 1, "items": ref("Condition"), "description": "At least one holds."},
                "not": {**ref("Condition"), "description": "The condition does not hold."},
                "at_least": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["n", "of"],
                    "properties": {
                        "n": {**ref("Number"), "description": "How many of the conditions must hold (a whole number)."},
                        "of": {"type": "array", "minItems": 2, "items": ref("Condition"), "description": "The conditions."},
                    },
                    "description": "At least n of the conditions hold: unknown while n could still be reached.",
                },
            },
            "patternProperties": {
                r"^(?!(all|any|not|at_least)$)[a-z][a-z0-9_]*$": ref("FieldTest"),
                r"^\$[a-z][a-z0-9_]*$": {**ref("FieldTest"),
                                           "description": "A test on a pathway parameter, settled when the pathway loads."},
            },
            "additionalProperties": False,
            "description": "Keys are 'all', 'any', 'not', 'at_least', field / derived-fact names or $parameters; "
                           "several keys all hold.",
        },
        "Condition": {
            "anyOf": [
                {"const": True, "description": "Always holds."},
                {"type": "array", "minItems": 1, "items": ref("Condition"), "description": "Every condition holds."},
                ref("ConditionMapping"),
            ],
            "description": _CONDITION_TEXT,
        },
    }


def _effect_defs(defs: dict[str, Any], classes: dict[str, type[BaseModel]]) -> dict[str, Any]:
    """Effect models into ``defs``; returns the ``Effect`` and ``Effects`` definitions."""
    bodies: dict[str, Any] = {}
    for kind, model in E.EFFECT_KINDS.items():
        schema = _model_schema(model)
        _merge_defs(defs, schema.pop("$defs", {}))
        schema.pop("$schema", None)
        body_field = _EFFECT_BODY_FIELD.get(model)
        if body_field is None:
            _merge_defs(defs, {model.__name__: schema})
            bodies[kind] = {"$ref": _REF.format(model=model.__name__)}
            continue
        body = copy.deepcopy(schema["properties"][body_field])
        if model is E.Transition:
            body.update({"pattern": ID_PATTERN, "description": "The state to move to; the move must be an edge of the graph."})
        elif body.get("type") == "object":
            body.update({"minProperties": 1, "propertyNames": {"pattern": ID_PATTERN},
                         "description": "Derived fact -> value; asserted in the engine, where it triggers the rules "
                                        "that test it."})
        bodies[kind] = body
    for name, sub in list(defs.items()):
        if name in classes:
            _describe({"$defs": {name: sub}}, classes)
    for kind, body in bodies.items():
        if "$ref" in body:
            doc = " ".join((E.EFFECT_KINDS[kind].__doc__ or "").replace("``", "`").split())
            body["description"] = doc or _EFFECT_TEXT.get(kind, f"The '{kind}' effect.")
    return {
        "Effect": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": bodies,
            "description": "One effect: a one-key object, the key naming the effect (" + ", ".join(E.EFFECT_KINDS) + ").",
        },
        "Effects": {"type": "array", "items": {"$ref": _REF.format(model="Effect")}, "description": _EFFECTS_TEXT},
    }


# -- the schemas ------------------------------------------------------------------------------

def model_schemas() -> dict[str, dict[str, Any]]:
    """The schemas of the file kinds every pathway shares, keyed by file name."""
    from pathway.authoring import scenario as S  # local: the scenario runner pulls in the engine

    classes = {**_models_in(S), **_models_in(E), **_models_in(M)}
    out: dict[str, dict[str, Any]] = {}

    pathway = _file_schema(M.PathwayFile, classes)
    for key in ("states", "parameters", "derived"):
        pathway["properties"][key]["propertyNames"] = {"pattern": ID_PATTERN}
    pathway.setdefault("$defs", {}).update(_condition_defs())  # a state's 'overdue: when' is a condition
    pathway = _walk(pathway, _parameter_refs)
    out["pathway.schema.json"] = _finish(pathway, "Pathway file (pathway.yaml)",
                                         "States, transitions, parameters, derived facts and the list of rule files.")
    fields = _file_schema(M.FieldsFile, classes)
    fields.setdefault("$defs", {}).update(_condition_defs())
    fields = _walk(fields, _parameter_refs)  # an aggregate's days: a number or a $parameter
    out["fields.schema.json"] = _finish(fields, "Fields file (fields.yaml)",
                                        "Every input field of a case or event: type, canonical unit, plausible range, "
                                        "how a computed input is computed, and checks between values of one event.")
    out["sources.schema.json"] = _finish(_file_schema(M.SourcesFile, classes), "Sources file (sources.yaml)",
                                         "The evidence source list that rules, parameters and profiles cite.")

    rules = _file_schema(M.RuleFile, classes)
    defs = rules.setdefault("$defs", {})
    defs.update(_effect_defs(defs, classes))
    defs.update(_condition_defs())
    _describe(rules, classes)
    rules = _walk(rules, _parameter_refs)
    out["rules.schema.json"] = _finish(rules, "Rule file", "A list of rules: where they apply, when they are due, "
                                       "what they test, their effects and their evidence.")

    out["hazards.schema.json"] = _finish(_file_schema(M.HazardsFile, classes), "Hazard log (hazards.yaml)",
                                         "The clinical risk management file: each hazard with its cause, effect, DCB0129 "
                                         "risk before and after mitigation, the controls that mitigate it and the "
                                         "scenarios that verify them.")
    invariants = _file_schema(M.InvariantsFile, classes)
    invariants.setdefault("$defs", {}).update(_condition_defs())
    _describe(invariants, classes)
    invariants = _walk(invariants, _parameter_refs)
    out["invariants.schema.json"] = _finish(invariants, "Safety invariants (invariants.yaml)",
                                            "What must hold after every event of any patient course: conditions with "
                                            "the result they require, or built-in properties, each naming the hazards "
                                            "it verifies.")
    out["codes.schema.json"] = _finish(_file_schema(M.CodesFile, classes), "FHIR codes file (codes.yaml)",
                                       "How FHIR R4 resources map to input fields: Observation codes with their UCUM "
                                       "units, coded answers, and medicines and procedures that record decisions.")
    out["profile.schema.json"] = _finish(_file_schema(M.ProfileFile, classes), "Site profile (profiles/<id>.yaml)",
                                         "Named parameter values for the points where guidelines disagree.")
    out["scenario.schema.json"] = _finish(_file_schema(S.ScenarioFile, classes), "Scenario file",
                                          "Cases with the outcome an author expects, run by 'pathway test' and pytest.")
    return out


def authored_fields(definition: PathwayDef) -> dict[str, M.FieldDef]:
    """The fields of the pathway's fields file, in file order (without built-ins)."""
    path = definition.root / definition.spec.fields_file
    doc = load_yaml_file(str(path), display_path(path), RULE_FILE_LIMITS)
    try:
        return dict(M.FieldsFile.model_validate(doc.data).fields)
    except ValidationError as exc:  # load_definition succeeded, so this only happens on a race
        raise DefinitionError(validation_diagnostics(doc, (), exc, M.FieldsFile)) from None


def _field_text(field: M.FieldDef) -> str:
    bits = [field.title]
    if field.unit:
        bits.append(f"unit {field.unit}")
    if field.range is not None:
        bits.append(f"plausible {field.range[0]:g} to {field.range[1]:g}" + (f" {field.unit}" if field.unit else ""))
    others = [u for u in units_for(field.quantity) if u != field.unit]
    if others:
        bits.append("also accepted as {value, unit} in " + ", ".join(others))
    if field.unit_required:
        bits.append("a bare number is refused: give {value, unit}")
    for band in field.ambiguous:
        bits.append(f"a bare {band.range[0]:g} to {band.range[1]:g} could be {band.unit} and is "
                    + ("refused" if band.action == "refuse" else "accepted with a warning") + ": give {value, unit}")
    if field.valid_for is not None or field.valid_for_days is not None:
        bits.append(f"current {validity_text(field)}" if validity(field).until is None else validity_text(field))
    text = "; ".join(bits) + "."
    return text + (" " + " ".join(field.description.split()) if field.description else "")


def _field_value(field: M.FieldDef) -> dict[str, Any]:
    alts: list[dict[str, Any]] = []
    if field.type in ("number", "integer"):
        plain: dict[str, Any] = {"type": field.type}
        if field.range is not None:
            plain["minimum"], plain["maximum"] = field.range
        refused = [b for b in field.ambiguous if b.action == "refuse"]
        if refused:  # a bare number inside a refuse band is refused (PW408)
            outside = [{"not": {"minimum": b.range[0], "maximum": b.range[1]}} for b in refused]
            plain.update(outside[0] if len(outside) == 1 else {"allOf": outside})
        if not field.unit_required:
            alts.append(plain)
        units = units_for(field.quantity) or ([field.unit] if field.unit else [])
        if units:
            alts.append({
                "type": "object",
                "additionalProperties": False,
                "required": ["value", "unit"],
                "properties": {"value": {"type": "number"}, "unit": {"enum": units}},
                "description": "A quantity in one of the accepted units, converted to " + (field.unit or units[0]) + ".",
            })
    elif field.type == "boolean":
        alts.append({"type": "boolean"})
    elif field.type == "enum":
        alts.append({"type": "string", "enum": list(field.values)})
    else:
        alts.append({"type": "string"})
    alts.append({"type": "null", "description": "Not recorded (ignored)."})
    return {"anyOf": alts, "title": field.title, "description": _field_text(field)}


def _case_defs(definition: PathwayDef) -> dict[str, Any]:
    fields = {n: f for n, f in authored_fields(definition).items() if getattr(f, "aggregate", None) is None}
    patient: dict[str, Any] = {
        "id": {"anyOf": [{"type": "string", "pattern": r"\S"}, {"type": "integer"}],
               "description": "Patient id (text or number)."},
        "admission_time": {"type": "string", "description": "ISO 8601 admission time, e.g. 2026-03-02T08:00; "
                                                             "event times count days from it."},
        "note": {"type": "string", "description": "Free text, ignored by the engine."},
    }
    event: dict[str, Any] = {
        "day": {"type": "number", "minimum": 0, "maximum": MAX_DAY,
                "description": "Clinical day: 0 = admission and first IV steroid dose, 3 = 72 h later."},
        "time": {"type": "string", "description": "ISO 8601 time (instead of 'day'), counted from admission_time "
                                                   "or else from the first event."},
        "note": {"type": "string", "description": "Free text, ignored by the engine."},
        "id": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "Event id, ignored by the engine."},
        "sources": {"type": "array", "description": "Where the values came from (e.g. the FHIR resources of this "
                                                    "moment, each with what it gave); kept with the event, ignored by "
                                                    "the engine."},
    }
    assert set(patient) == PATIENT_META and set(event) == EVENT_META, "case metadata keys changed in pathway.inputs"
    for name, field in sorted(fields.items()):
        if field.scope in ("patient", "both"):
            patient[name] = _field_value(field)
        if field.scope in ("event", "both"):
            event[name] = _field_value(field)
    return {
        "Patient": {"type": "object", "additionalProperties": False, "required": ["id"], "properties": patient,
                    "description": "The patient: id, admission time, history and baseline values."},
        "Event": {"type": "object", "additionalProperties": False, "properties": event,
                  "oneOf": [{"required": ["day"]}, {"required": ["time"]}],
                  "description": "One event: 'day' or 'time' (not both), then observations and recorded decisions."},
    }


def pathway_schemas(definition: PathwayDef, generic: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The case and scenario schemas of one pathway, from its fields file."""
    generic = generic or model_schemas()
    pid, title = definition.spec.id, definition.spec.title
    defs = _case_defs(definition)
    case = {
        "$schema": DIALECT,
        "title": f"Case file for pathway '{pid}' ({title})",
        "type": "object",
        "additionalProperties": False,
        "required": ["patient", "events"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "pathway": {"type": "string", "description": "Pathway name or folder (default: asuc)."},
            "patient": {"$ref": _REF.format(model="Patient")},
            "events": {"type": "array", "items": {"$ref": _REF.format(model="Event")},
                       "description": "Events in time order."},
            "expect": {"type": "object", "description": "Ignored when a case is run; scenario files hold expectations."},
        },
        "$defs": defs,
        "description": f"A patient and the events of their course, in the fields of pathway '{pid}'.",
    }
    scenario = copy.deepcopy(generic["scenario.schema.json"])
    scenario["title"] = f"Scenario file for pathway '{pid}' ({title})"
    scenario["$defs"].update(copy.deepcopy(defs))
    scenario["$defs"]["Case"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["patient", "events"],
        "properties": {"patient": {"$ref": _REF.format(model="Patient")},
                       "events": {"type": "array", "items": {"$ref": _REF.format(model="Event")}}},
        "description": f"The case in the fields of pathway '{pid}'.",
    }
    # A scenario that expects a refusal holds a bad case on purpose: only the others are checked
    # against the pathway's fields.
    scenario["$defs"]["Scenario"].update({
        "if": {"required": ["expect"], "properties": {"expect": {"required": ["refused"]}}},
        "else": {"properties": {"case": {"$ref": _REF.format(model="Case")}}},
    })
    return {f"{pid}.case.schema.json": _walk(case, _wrap_refs), f"{pid}.scenario.schema.json": _walk(scenario, _wrap_refs)}


def schemas(pathway: str | os.PathLike[str] | PathwayDef = "asuc") -> dict[str, dict[str, Any]]:
    """Every schema for ``pathway`` (name, folder or loaded definition), keyed by file name."""
    definition = pathway if isinstance(pathway, PathwayDef) else load_definition(pathway)
    generic = model_schemas()
    return {**generic, **pathway_schemas(definition, generic)}


def render(schema: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, indent 2, UTF-8 characters kept, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def default_schema_dir(pathway_root: Path) -> Path:
    """``schema/`` beside the pathway folder (``rules/schema`` for ``rules/asuc``)."""
    return pathway_root.resolve().parent / "schema"


def write_schemas(all_schemas: dict[str, dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in sorted(all_schemas.items()):
        path = out_dir / name
        path.write_text(render(schema), encoding="utf-8", newline="\n")
        written.append(path)
    return written


def stale_schemas(all_schemas: dict[str, dict[str, Any]], out_dir: Path) -> list[str]:
    """File names whose committed text differs from the generated one (or that are missing)."""
    stale = []
    for name, schema in sorted(all_schemas.items()):
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(schema):
            stale.append(name)
    return stale


# -- editor headers ---------------------------------------------------------------------------

def _spec_of(root: Path) -> M.PathwayFile:
    path = root / "pathway.yaml"
    try:
        doc = load_yaml_file(str(path), display_path(path), RULE_FILE_LIMITS)
    except YamlProblem as exc:
        raise DefinitionError([exc.diagnostic]) from None
    try:
        return M.PathwayFile.model_validate(doc.data)
    except ValidationError as exc:
        raise DefinitionError(validation_diagnostics(doc, (), exc, M.PathwayFile)) from None


def _yaml_files(root: Path) -> list[Path]:
    return sorted({*root.rglob("*.yaml"), *root.rglob("*.yml")})


def schema_for_file(root: Path, file: Path, spec: M.PathwayFile | None = None) -> str | None:
    """The schema file name for a YAML file of a pathway folder, or None for a file of no known kind."""
    spec = spec or _spec_of(root)
    rel = file.resolve().relative_to(root.resolve()).as_posix()
    if rel == "pathway.yaml":
        return "pathway.schema.json"
    if rel == Path(spec.fields_file).as_posix():
        return "fields.schema.json"
    if spec.sources_file and rel == Path(spec.sources_file).as_posix():
        return "sources.schema.json"
    if spec.hazards_file and rel == Path(spec.hazards_file).as_posix():
        return "hazards.schema.json"
    if spec.invariants_file and rel == Path(spec.invariants_file).as_posix():
        return "invariants.schema.json"
    if spec.codes_file and rel == Path(spec.codes_file).as_posix():
        return "codes.schema.json"
    if rel in {Path(r).as_posix() for r in spec.rule_files}:
        return "rules.schema.json"
    folder = rel.split("/", 1)[0] if "/" in rel else ""
    return {
        "profiles": "profile.schema.json",
        "scenarios": f"{spec.id}.scenario.schema.json",
        "cases": f"{spec.id}.case.schema.json",
    }.get(folder)


def header_for(file: Path, schema_dir: Path, schema_name: str) -> str:
    """The modeline for ``file``: the schema's path relative to the file's folder."""
    rel = os.path.relpath(schema_dir.resolve() / schema_name, file.resolve().parent)
    return HEADER_PREFIX + Path(rel).as_posix()


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.readline().rstrip("\r\n")


def check_headers(root: Path, schema_dir: Path | None = None) -> list[str]:
    """Problems with the editor headers of a pathway folder's YAML files (empty when all are right)."""
    root = Path(root)
    schema_dir = schema_dir or default_schema_dir(root)
    spec = _spec_of(root)
    problems = []
    for file in _yaml_files(root):
        name = schema_for_file(root, file, spec)
        shown = display_path(file)
        if name is None:
            problems.append(f"{shown}: no schema is known for this file (not a rule, profile, scenario or case file)")
            continue
        want = header_for(file, schema_dir, name)
        first = _first_line(file)
        if first != want:
            was = f", not '{first}'" if first.startswith(HEADER_PREFIX) else ""
            problems.append(f"{shown}:1: first line should be '{want}'{was}")
    return problems


def add_headers(root: Path, schema_dir: Path | None = None) -> list[tuple[Path, str]]:
    """Insert the modeline as the first line of every YAML file that lacks it.

    A file whose first line is already a modeline pointing elsewhere gets that one line
    replaced; nothing else in any file changes. Returns (file, "added" | "fixed") pairs.
    """
    root = Path(root)
    schema_dir = schema_dir or default_schema_dir(root)
    spec = _spec_of(root)
    changed: list[tuple[Path, str]] = []
    for file in _yaml_files(root):
        name = schema_for_file(root, file, spec)
        if name is None:
            continue
        want = header_for(file, schema_dir, name)
        with open(file, encoding="utf-8", newline="") as fh:
            text = fh.read()
        newline = "\r\n" if "\r\n" in text else "\n"
        first, sep, rest = text.partition("\n")
        first = first.rstrip("\r")
        if first == want:
            continue
        if first.startswith(HEADER_PREFIX):
            text, action = want + newline + rest if sep else want + newline, "fixed"
        else:
            text, action = want + newline + text, "added"
        with open(file, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        changed.append((file, action))
    return changed


# -- the command ------------------------------------------------------------------------------
