"""Every diagnostic and check code, in one registry: code, the kind of input it is about, title, meaning.

Codes are stable: a code keeps its meaning across versions (new problems get new codes). The
tables in README.md and docs/codes.md are generated from this registry (``pathway codes``), and a
test checks that every code the package emits is registered here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Code", "CODES", "KINDS", "code", "codes_markdown", "codes_inline", "codes_document"]

Kind = Literal["pathway", "rule file", "engine limit", "input", "session", "stored session", "check"]

#: Kinds in the order the tables list them, with what raises them.
KINDS: dict[str, str] = {
    "pathway": "finding the pathway (DefinitionError)",
    "rule file": "reading and resolving rule, pathway, fields, sources and profile files (DefinitionError)",
    "engine limit": "compiling to durable_rules (EngineLimitError, a DefinitionError)",
    "input": "a case, patient or event (InputError; nothing is applied)",
    "session": "applying an event (TransitionRefused, EngineError; nothing is applied)",
    "stored session": "restoring a dumped or stored session, and saving one (SessionError; nothing is restored "
                      "or saved)",
    "check": "the static checks of `pathway check` (findings)",
}


@dataclass(frozen=True)
class Code:
    code: str
    kind: Kind
    title: str
    meaning: str = ""
    severity: Literal["error", "warning"] = "error"
    #: why the code is no longer raised (a retired code keeps its number and meaning; it is never reused)
    retired: str = ""


_ALL = [
    Code("PW001", "pathway", "no such pathway",
         "The name is not a shipped pathway and the path is not a folder with a pathway.yaml."),
    Code("PW002", "pathway", "file not found", "A file that pathway.yaml names is not in the pathway folder."),
    Code("PW100", "rule file", "YAML syntax",
         "The file is not valid YAML, not UTF-8, holds a control character (even inside a comment), or uses a YAML "
         "tag (of any kind, on a value, a list or a mapping)."),
    Code("PW101", "rule file", "duplicate key", "A mapping has the same key twice (YAML would silently keep the last)."),
    Code("PW110", "rule file", "unknown key or operator",
         "A key, effect or condition operator that the file kind does not have; the hint names the closest one allowed there."),
    Code("PW111", "rule file", "missing key", "A required key is absent."),
    Code("PW112", "rule file", "wrong type or value", "A value of the wrong type, out of its allowed set, or badly formed."),
    Code("PW120", "rule file", "file too large",
         "A rule file larger than 1,000,000 bytes or holding more than 100,000 values, or a pathway whose files "
         "together exceed 8,000,000 bytes, 500 files or 100,000 values."),
    Code("PW121", "rule file", "nesting too deep", "Mappings and lists nested more than 64 levels deep."),
    Code("PW122", "rule file", "alias limit",
         "More than 1,000 aliases in a file, an alias that refers to the value containing it (a recursive alias), "
         "or aliases that expand to more than 100,000 values or deeper than 64 levels (a 'billion laughs' file)."),
    Code("PW123", "rule file", "text too long", "One text or key longer than 20,000 characters."),
    Code("PW124", "rule file", "number not finite",
         "`.nan`, `.inf` or `-.inf` (or a literal too large for a floating-point number) in a rule file or a "
         "parameter override: numbers are finite."),
    Code("PW125", "rule file", "number out of range",
         "A number whose magnitude is above 1e12 or, other than 0, below 1e-12, or a number literal longer than 100 "
         "characters: every number within the range reaches the engine in a form it reads exactly."),
    Code("PW126", "rule file", "dose, step, count or rank that is not positive",
         "A dose (mg/kg, mg/kg/day, a maximum per dose, a medication's fixed dose), a rounding step, a number of "
         "administrations a day or a titration target that is 0 or negative, a titration's change fraction outside "
         "(0, 1], a score's rounding step that is not positive, or a negative option rank: written in the rule or "
         "given by a parameter, a site profile or an override."),
    Code("PW127", "rule file", "range out of order",
         "A range whose low end is above its high end: a field's plausible range, the target range of a dose or "
         "a medication, or the bounds of a 'between' test."),
    Code("PW129", "rule file", "the loader failed on this file",
         "An unexpected failure while reading or resolving the file: a bug of the loader, reported at the file "
         "it was reading instead of a traceback. Please report it with the file."),
    Code("PW201", "rule file", "unknown state", "A rule or transition names a state the pathway does not declare."),
    Code("PW202", "rule file", "unknown field or derived fact",
         "A condition or text names a field, built-in or derived fact that does not exist."),
    Code("PW203", "rule file", "unknown parameter",
         "A `$name` that is not a parameter of the pathway, or a parameter override of the wrong kind."),
    Code("PW204", "rule file", "unknown source", "Evidence cites a source id missing from the sources file."),
    Code("PW205", "rule file", "duplicate rule id", "Two rules share an id."),
    Code("PW206", "rule file", "transition that is not an edge",
         "A rule moves the patient along a transition the graph does not have."),
    Code("PW207", "rule file", "terminal state with a way out", "A terminal state has an outgoing transition."),
    Code("PW208", "rule file", "not exactly one start state", "The pathway must have exactly one state of kind `start`."),
    Code("PW209", "rule file", "number comparison on a non-number",
         "A comparison such as `gt` on a boolean, enum or text field."),
    Code("PW210", "rule file", "absence test on a derived fact",
         "Derived facts are asserted by rules; test their value, not their absence."),
    Code("PW211", "rule file", "unknown profile", "The site profile named does not exist in `profiles/`."),
    Code("PW212", "rule file", "condition on a derived fact no rule derives", "The condition can never hold."),
    Code("PW213", "rule file", "score uses a value the rule does not require",
         "A score's terms must be listed under the rule's `requires`."),
    Code("PW214", "rule file", "'if_missing' with a requirement its 'then' does not compute with",
         "A rule with 'if_missing' may require only the values its 'then' effects compute with (a score's "
         "inputs, a dose's weight), so that it either computes or is missing, never both."),
    Code("PW215", "rule file", "decision tested where it never counts",
         "A rule tests a decision field in a state that its 'decision: in' does not list; test days_since_<state> "
         "to ask whether a treatment was given."),
    Code("PW216", "rule file", "ambiguity band outside the plausible range",
         "A field's `ambiguous` band holds values outside the field's plausible range, or values whose reading "
         "in the band's unit falls outside it; a band holds only bare numbers plausible in both units."),
    Code("PW217", "rule file", "unit the field does not convert",
         "A unit named on a field (an `ambiguous` band's `unit`) that the field's quantity does not convert, "
         "or that reads a number as the same value as the canonical unit."),
    Code("PW218", "rule file", "computed inputs that depend on each other in a cycle",
         "A field under `compute:` is computed, directly or through other computed inputs, from itself."),
    Code("PW219", "rule file", "computed input that is not true/false",
         "Only a boolean field can be computed from a condition (true, false or unknown)."),
    Code("PW220", "rule file", "computed input that tests a derived fact, built-in or state-counted field",
         "A computation tests input fields only; the engine makes derived facts, the clock and the fields counted "
         "from when a state was entered (an aggregate with `since`, `until` or `counted_from`) after the inputs."),
    Code("PW221", "rule file", "unknown decision point",
         "A rule's `decision` names no entry under `decision_points:` in pathway.yaml."),
    Code("PW222", "rule file", "kept fact derived outside its decision point",
         "A derived fact kept by a decision point is derived by a rule of another decision point or of none; "
         "that rule would fire beside the kept value."),
    Code("PW223", "rule file", "rule that reads a proposal and derives, scores, moves or proposes",
         "A rule that tests a built-in `proposed_<state>` field may only advise (recommend, dose, alert, require, "
         "offer): the session evaluates again with the proposals of the first pass, which must not change them."),
    Code("PW230", "rule file", "unknown rule named as a hazard mitigation",
         "A hazard of the hazards file lists under 'mitigations: rules' a rule id that no rule file defines."),
    Code("PW231", "rule file", "unknown parameter named as a hazard mitigation",
         "A hazard lists under 'mitigations: parameters' a name that is not a parameter of pathway.yaml."),
    Code("PW232", "rule file", "unknown input field named as a hazard mitigation",
         "A hazard lists under 'mitigations: fields' a name that is not a field of the fields file."),
    Code("PW233", "rule file", "watchdog named as a hazard mitigation that the pathway does not have",
         "A hazard lists under 'mitigations: watchdogs' a state that does not exist or has no 'overdue' watchdog."),
    Code("PW234", "rule file", "unknown invariant named as a hazard verification",
         "A hazard lists under 'verification: invariants' an id that the invariants file does not define."),
    Code("PW235", "rule file", "risk rating that does not match the risk matrix",
         "A hazard states an 'initial_risk' (or a residual 'risk') other than the one the DCB0129 risk matrix gives "
         "for its severity and likelihood."),
    Code("PW236", "rule file", "residual risk above the initial risk, or below it without a mitigation",
         "Mitigation cannot raise a risk, and a risk is not reduced without a control: a hazard that names no "
         "mitigation keeps its initial risk."),
    Code("PW237", "rule file", "verified evidence whose sources are all non-authoritative",
         "Evidence marked 'status: verified' (of a rule, computed input, watchdog or ambiguity band) cites only "
         "sources marked 'authoritative: false' (such as an AI answer page); mark it unverified or cite an "
         "authoritative source."),
    Code("PW238", "rule file", "rule sign-off incomplete or due before it was given",
         "A rule's sign-off needs 'reviewed_by' and 'reviewed_on' together; 'review_due' needs 'reviewed_on' and "
         "must fall after it."),
    Code("PW239", "rule file", "invariant naming an unknown hazard",
         "An invariant of the invariants file lists under 'hazards' an id that the hazard log does not define."),
    Code("PW240", "rule file", "file path outside the pathway folder",
         "A file named in pathway.yaml (rule_files, fields_file, sources_file, hazards_file, invariants_file) that "
         "is an absolute path, has a '..' part or a control character: every file a pathway reads lies inside its "
         "folder."),
    Code("PW241", "rule file", "symbolic link out of the pathway folder",
         "A file of the pathway (or a folder on its way) is a symbolic link that leads outside the pathway folder; "
         "the file is not opened."),
    Code("PW242", "rule file", "file cannot be read",
         "A file of the pathway exists but cannot be read: permission denied, not a regular file, or a name the "
         "file system refuses (too long)."),
    Code("PW301", "engine limit", "rule too large", "One rule compiles to more alternatives than durable_rules can hold."),
    Code("PW302", "engine limit", "too many rules in one ruleset", "More engine rules in a state group than the measured limit."),
    Code("PW303", "engine limit", "too many rules on one condition",
         "More engine rules on an identical condition than the measured limit."),
    Code("PW304", "engine limit", "alpha network too deep",
         "Rules diverging under one node would overflow durable_rules' alpha-walk stack."),
    Code("PW305", "engine limit", "condition too large for one engine rule",
         "A rule's condition (its 'when', negated for 'otherwise', or its 'if_missing' test) compiles into more "
         "nested 'and'/'or' groups on one fact than durable_rules registers (15; error 113); derive an "
         "intermediate fact from part of it."),
    Code("PW306", "engine limit", "ruleset refused by durable_rules",
         "durable_rules refused a compiled ruleset when the pathway was loaded (an error code of its C core that "
         "no check of the compiler foresaw): reported at each rule it refuses alone, or naming the state and the "
         "rules of the ruleset; nothing stays registered."),
    Code("PW400", "input", "not a case, patient or event",
         "The case file is missing or not a mapping with `patient` and `events`; a patient without an id; "
         "an event without `day` or `time`."),
    Code("PW401", "input", "unknown or misplaced key",
         "An unknown field or case key, a computed field given as input, or a patient field in an event (and the reverse)."),
    Code("PW402", "input", "wrong type",
         "A value of the wrong type for its field (text for a number, an unknown enum value, a malformed quantity)."),
    Code("PW403", "input", "implausible value", "A value outside the field's plausible range (often a unit mix-up)."),
    Code("PW404", "input", "unknown unit", "A `{value, unit}` quantity in a unit the field does not accept."),
    Code("PW405", "input", "bad time", "`day` out of range, `time` not ISO 8601, or both given; a `time` after events "
                                       "given by `day` with no `admission_time`."),
    Code("PW406", "input", "events out of order", "An event earlier than the one before it.",
         retired="since 0.2.0 an event earlier than the latest one is placed at its time in the timeline"),
    Code("PW407", "input", "decision not due",
         "A decision (e.g. rescue_choice) recorded in a state where it does not count; record it when the pathway "
         "asks for it. Once the pathway has ended (a discharge, a colectomy) it never asks again: the refusal says so, "
         "and what to do instead (a new course for a readmission, or correct the event that ended it)."),
    Code("PW408", "input", "bare number whose unit is ambiguous",
         "A bare number inside a `refuse` band of its field (plausible in two units, read differently by the "
         "pathway), or any bare number of a field with `unit_required`; give it as `{value, unit}`."),
    Code("PW409", "input", "inconsistent values in one event",
         "Two values given together break a `consistency:` check of the fields file (e.g. more bloody stools "
         "than stools); the message names both fields and values."),
    Code("PW410", "input", "number that is not finite or too large",
         "NaN, an infinity, or a number beyond ±1e15, given bare, inside `{value, unit}` or inside a free-form "
         "value such as `note`; the message names the field."),
    Code("PW411", "input", "value that strict JSON cannot hold",
         "A free-form value (`note`, an event `id`) that is not strict JSON (a set, bytes, a date, an object, a "
         "mapping key that is not text), or text that is not valid Unicode (a lone surrogate) in a note, a text "
         "field or a patient id."),
    Code("PW412", "input", "value too large or too deeply nested",
         "A free-form value nested deeper than 32 levels or longer than 100,000 characters, a text field longer than "
         "10,000 characters, or a patient id longer than 200 characters."),
    Code("PW413", "input", "event id seen before with other values",
         "An event carries the id of an event already recorded but other values (the same id with the same "
         "values is a duplicate and changes nothing), or an amendment gives another id; amend the event to "
         "change it."),
    Code("PW414", "input", "no event with that id",
         "`Session.amend` or `Session.retract` names an id that no recorded event carries."),
    Code("PW415", "input", "course cannot be evaluated again",
         "A late, amended or retracted event changes the course so that a later event is refused (its input no "
         "longer valid); the later diagnostics say which; nothing changes. A later decision the new course does "
         "not take is not refused: it is kept, not acted on, and said aloud."),
    Code("PW416", "input", "event id names more than one event",
         "Over HTTP an event is named by a URL segment, in which the number 7 and the text \"7\" read the same: when "
         "both are recorded ids the request is refused (409); amend or retract through the library, which tells "
         "them apart."),
    Code("PW430", "input", "not FHIR input the pathway reads",
         "FHIR input is a resource or a Bundle (a JSON object) of type collection, transaction, batch or searchset, "
         "nested at most 64 levels and holding at most 2,000,000 values."),
    Code("PW431", "input", "malformed FHIR resource",
         "A resource that the FHIR R4 model refuses (an unknown element, a value of the wrong type, a number written "
         "as text such as \"NaN\", a bad date); the location names the resource and the element."),
    Code("PW432", "input", "no clinical time",
         "An Observation without effectiveDateTime (or effectivePeriod.start, effectiveInstant), an order without "
         "authoredOn, an administration or procedure without its time, or a time given as a date alone or without "
         "its offset."),
    Code("PW433", "input", "unit not accepted",
         "A valueQuantity whose unit is not UCUM (another system), has no unit, or is a UCUM unit that the codes file "
         "does not accept for the Observation's code; the message lists the accepted UCUM codes. Also a display "
         "unit that names another known unit than the UCUM code (unit mg/L, code mg/dL): neither is read."),
    Code("PW434", "input", "resource of another patient",
         "A resource whose subject is not the session's patient (or the patient the input is for, such as a CDS "
         "Hooks call's context.patientId, or the input's Patient wherever it stands in a Bundle), a second Patient, "
         "or input that names no patient at all; nothing of it is recorded."),
    Code("PW435", "input", "value of the wrong kind for its field",
         "An Observation value that does not fit its field (a valueString for a number, a coded answer that is not "
         "a value of the enum, a bound such as '<5' for a number)."),
    Code("PW436", "input", "two values for one field at one moment",
         "Two resources of the same clinical time give one field different values; correct or withdraw one."),
    Code("PW437", "input", "FHIR input unavailable",
         "The pathway has no codes file ('codes_file' in pathway.yaml), or the optional 'fhir' extra "
         "(fhir.resources) is not installed."),
    Code("PW450", "input", "malformed draft order",
         "A CDS Hooks draft order that is not a MedicationRequest object, or whose medication, dosage or dose is not "
         "of the FHIR R4 shape (a dose that is not a number); the location names the order and the element."),
    Code("PW451", "input", "feedback on an unknown card",
         "CDS Hooks feedback names a card uuid this service never issued (or issued for another service); nothing "
         "of the feedback is recorded."),
    Code("PW452", "input", "malformed feedback",
         "CDS Hooks feedback that is not of the 2.0 shape: no 'feedback' list, an outcome other than accepted or "
         "overridden, an accepted suggestion the card did not offer, an override reason that is not a Coding; "
         "nothing of it is recorded."),
    Code("PW501", "session", "transition refused",
         "A rule asked for a move that is not an edge of the graph; nothing was applied."),
    Code("PW520", "stored session", "not a session document",
         "The dump or stored row is not a JSON object: a truncated or corrupt row, text that is not JSON, NaN or "
         "Infinity, or nesting too deep to read; or the store's log rows after a session's snapshot are not whole "
         "(a row lost, edited, moved or not JSON: they do not hash to the chain the row records)."),
    Code("PW521", "stored session", "malformed session document",
         "A key is missing, unknown, or of the wrong type or range; the message names the key (`state`, "
         "`events[3].day`)."),
    Code("PW522", "stored session", "session of another pathway or format",
         "The document names another pathway, or a format this version does not read."),
    Code("PW523", "stored session", "session dumped under other rules",
         "The document's pathway version, profile or fingerprint (the contents of every file the load read, the "
         "profile and the parameter values) differs from the loaded pathway's, or it carries no fingerprint. "
         "`Pathway.restore(doc, replay=True)` (or `SessionStore.load(..., replay=True)`) re-runs its patient and "
         "events under the loaded rules, deliberately, and lists what changed."),
    Code("PW524", "stored session", "recorded input refused",
         "The patient or an event recorded in the document is refused by the pathway's input validation, or its "
         "checksum does not match the recorded patient and events (an edited or corrupt input)."),
    Code("PW525", "stored session", "recorded outcome differs from its events",
         "Replaying the document's patient and events does not give the state, path, trace, facts, derived or "
         "kept values it records (tampered or corrupt): nothing in a dump is trusted that its events do not "
         "produce. For a stored session, also when its logged events do not give what it showed when saved."),
    Code("PW526", "stored session", "stored row of another patient or pathway",
         "The document in a store row names another patient or pathway than the row it is stored under."),
    Code("PW527", "stored session", "save conflict",
         "`SessionStore.save`: the stored session changed (or was created or deleted) since this one was loaded; "
         "nothing was saved. Load it again, apply the event again, and save (SessionConflict)."),
    Code("PW600", "check", "the pathway does not load", "The loader's diagnostics are listed."),
    Code("PW601", "check", "state unreachable from the start state"),
    Code("PW602", "check", "non-terminal state with no way out (dead end)"),
    Code("PW603", "check", "terminal state with a way out"),
    Code("PW604", "check", "no terminal state reachable from a state"),
    Code("PW605", "check", "transition used by no rule", severity="warning"),
    Code("PW606", "check", "rule transition that is not an edge of the graph"),
    Code("PW607", "check", "terminal state entered automatically while emergency rules could still apply"),
    Code("PW610", "check", "overlap: two rules of equal priority send the same input to different states"),
    Code("PW611", "check", "gap: a complete input on which no rule leaves a decision state", severity="warning"),
    Code("PW612", "check", "shadowed rule: a higher-priority rule always moves the patient first", severity="warning"),
    Code("PW613", "check", "parameter used without a source", severity="warning"),
    Code("PW614", "check", "rule branch that can never fire", severity="warning"),
    Code("PW615", "check", "conflicting derivations: two rules derive different values on the same input"),
    Code("PW616", "check", "state with decisions to make and no overdue watchdog", severity="warning"),
    Code("PW617", "check", "text longer than a card's summary without a short 'summary'", severity="warning"),
    Code("PW620", "check", "open or accepted hazard without a mitigation", severity="warning"),
    Code("PW621", "check", "open or accepted hazard without a verification", severity="warning"),
    Code("PW622", "check", "hazard marked mitigated or closed without a mitigation"),
    Code("PW623", "check", "hazard marked mitigated or closed without a verification"),
    Code("PW624", "check", "verifying scenario that fails"),
    Code("PW625", "check", "unknown scenario named as a hazard verification"),
    Code("PW626", "check", "hazard accepted, mitigated or closed at an unacceptable residual risk (4 or 5)"),
    Code("PW627", "check", "threshold mutant that no scenario notices ('pathway test --mutate')", severity="warning"),
    Code("PW690", "check", "invalid entry under 'checks:' in pathway.yaml"),
    Code("PW691", "check", "entry under 'checks:' that matches no finding", severity="warning"),
]

#: code -> entry, in code order
CODES: dict[str, Code] = {c.code: c for c in sorted(_ALL, key=lambda c: c.code)}


def code(value: str) -> Code:
    """The registry entry of a code (KeyError for a code that is not registered)."""
    return CODES[value]


def codes_markdown() -> str:
    """The code tables (Markdown), one per kind, as README.md and docs/codes.md show them."""
    out: list[str] = []
    for kind, raised in KINDS.items():
        entries = [c for c in CODES.values() if c.kind == kind]
        out += [f"**{kind[0].upper()}{kind[1:]}** — {raised}", "", "| code | title | meaning |", "|---|---|---|"]
        for c in entries:
            title = c.title + (" (warning)" if c.severity == "warning" else "")
            meaning = f"*Retired: {c.retired}.* {c.meaning}" if c.retired else c.meaning
            out.append(f"| {c.code} | {title} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def codes_inline() -> str:
    """All codes on a few lines (``PW100 YAML syntax · PW101 duplicate key · ...``), as the README lists them."""
    return " ·\n".join(f"{c.code} {c.title}" + (" (retired)" if c.retired else "") for c in CODES.values()) + "\n"


def codes_document() -> str:
    """docs/codes.md: the full tables."""
    return ("# Diagnostic and check codes\n\n"
            "Generated from `pathway/core/codes.py` by `pathway codes -o docs/codes.md`; a test keeps it current.\n"
            "Every problem is reported as `file:line:col: message (did you mean ...?) [CODE]`; codes are stable.\n\n"
            + codes_markdown())
