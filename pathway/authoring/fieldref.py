"""The field reference: a generated Markdown page of every name a rule author can use.

``pathway fields PATHWAY [-o FILE] [--check]`` writes it (default ``docs/fields-<id>.md``;
``-o -`` prints it). The page lists, from the loaded pathway:

- input fields: type, canonical unit, plausible range, other accepted units (from
  :mod:`pathway.units`), how long a value stays current, where it is given, meaning, and the
  rules that use it (in conditions, ``requires``, effects or texts);
- computed inputs: each condition in plain words, the inputs it reads and its evidence; and the
  consistency checks between values of one event;
- derived facts: which rules derive them (and the values they give) and which rules test them;
- built-ins computed by the engine (``day``, ``days_in_state``, ``state`` ...);
- parameters: value, unit, meaning, choices, sources, site-profile values, rules using them;
- effects and their arguments, read from the effect models;
- the clinical sign-off keys of a rule and the rules that carry a sign-off.

The output is deterministic (pathway order for fields and parameters, sorted rule ids), so a
test regenerates the committed page and compares.
"""

from __future__ import annotations

import re
import types
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pathway.authoring.schema import DESCRIPTIONS, authored_fields
from pathway.core.errors import DefinitionError, Diagnostic, display_path
from pathway.core.text import md_inline, one_line
from pathway.core.yamlsafe import RULE_FILE_LIMITS, YamlProblem, load_yaml_file, validation_diagnostics
from pathway.definition import conditions as C
from pathway.definition import effects as E
from pathway.definition import prose
from pathway.definition.clock import MAX_DAY, days_since, proposed
from pathway.definition.model import Aggregate, FieldDef, ProfileFile, RuleDef
from pathway.definition.pathway import BUILTIN_NAMES, CHECK_SYMBOLS, PathwayDef, Rule, builtin_fields
from pathway.definition.timeline import hours_text, validity_text
from pathway.definition.units import units_for

__all__ = ["Usage", "collect_usage", "field_reference", "default_output", ]

_EFFECT_NOTES: dict[str, str] = {
    "transition": "Takes a state id: `- transition: rescue_selection`. The move must be an edge of the graph; "
                  "when several rules ask for moves, the highest `priority` wins.",
    "derive": "Takes a mapping of derived fact to value: `- derive: {oxford_high_risk: true}`. The fact is asserted "
              "in the engine and triggers the rules that test it.",
}


class Usage:
    """Which rules use each name, and how."""

    def __init__(self) -> None:
        self.tested: dict[str, set[str]] = defaultdict(set)
        self.required: dict[str, set[str]] = defaultdict(set)
        self.mentioned: dict[str, set[str]] = defaultdict(set)
        self.derived_by: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.params: dict[str, set[str]] = defaultdict(set)
        #: input or parameter -> the computed inputs whose condition uses it
        self.computes: dict[str, set[str]] = defaultdict(set)

    def used_by(self, name: str) -> list[str]:
        return sorted(self.tested[name] | self.required[name] | self.mentioned[name])


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _strings(getattr(obj, name))
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _strings(value)


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def collect_usage(definition: PathwayDef) -> Usage:
    """Index every rule of the pathway by the fields, facts and parameters it uses."""
    usage = Usage()
    for rule in definition.rules:
        _rule_usage(rule, usage)
    for name, comp in definition.computed.items():
        for used in (*comp.inputs, *comp.params):
            usage.computes[used].add(name)
    return usage


def _rule_usage(rule: Rule, usage: Usage) -> None:
    for cond in (rule.due, rule.when):
        for cmp in C.fields_of(cond):
            usage.tested[cmp.field].add(rule.id)
    for name in rule.requires:
        usage.required[name].add(rule.id)
    for name in rule.params:
        usage.params[name].add(rule.id)
    for effect in (*rule.then, *rule.otherwise, *getattr(rule, "if_missing", ())):
        for text in _strings(effect):
            for name in E.TEMPLATE_RE.findall(text):
                usage.mentioned[name].add(rule.id)
        if isinstance(effect, E.Derive):
            for name, value in effect.values.items():
                usage.derived_by[name][rule.id].add(_value_text(value))
        elif isinstance(effect, E.Require):
            for name in effect.fields:
                usage.required[name].add(rule.id)
        elif isinstance(effect, E.Dose):
            for name in effect.targets:
                usage.mentioned[name].add(rule.id)
        elif isinstance(effect, E.Score):
            usage.derived_by[effect.name][rule.id].add("score")
            for item in effect.items:
                if isinstance(item.when, (C.Cmp, C.And, C.Or, C.Always, C.AtLeast)):
                    for cmp in C.fields_of(item.when):
                        usage.tested[cmp.field].add(rule.id)
            for term in effect.terms:
                usage.mentioned[term.field].add(rule.id)
            if effect.divide_by:
                usage.mentioned[effect.divide_by].add(rule.id)
        elif isinstance(effect, E.Titrate):
            for name in (effect.current_daily_mg, effect.measured):
                usage.required[name].add(rule.id)


# -- Markdown helpers -------------------------------------------------------------------------

def _cell(text: Any) -> str:
    """A table cell: one line, every '|' escaped (a '|' a text escaped already stays as it is)."""
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(one_line(text).split()))


def _t(text: Any) -> str:
    """Text from the rule files as Markdown that renders as itself (no HTML, link or emphasis)."""
    return md_inline(" ".join(str(text).split()))


def _code(name: str) -> str:
    return f"`{name}`"


def _rules(ids: list[str] | set[str]) -> str:
    return ", ".join(_code(r) for r in sorted(ids)) if ids else "—"


def _users(rules: list[str] | set[str], computes: set[str]) -> str:
    """The rules using a name, then the computed inputs computed from it."""
    text = _rules(rules)
    if computes:
        text = ("" if text == "—" else text + "; ") + "computes " + ", ".join(_code(c) for c in sorted(computes))
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _day(day: float | str) -> str:
    """A window's day as written: a number, or its ``$parameter`` (the parameters are listed with their values)."""
    return f"`{day}`" if isinstance(day, str) else f"{day:g}"


def aggregate_text(agg: Aggregate) -> str:
    """``max of `transverse_colon_cm` over days 0–3`` (with ``within`` and ``since`` when given)."""
    what = {"ever": "whether any", "count": "number of days with"}.get(agg.fn, agg.fn + " of")
    first, last = _day(agg.from_day), _day(agg.to_day)
    days = "" if (agg.from_day, agg.to_day) == (0, MAX_DAY) else (
        f" on day {first}" if agg.from_day == agg.to_day else
        f" over days {first}–{last}" if agg.to_day != MAX_DAY else f" from day {first}")
    if days and agg.counted_from is not None:
        days += f" counted from the first entry into `{agg.counted_from}`"
    out = f"{what} `{agg.of}`{days}"
    if agg.values is not None:
        out += " equal to " + " or ".join(f"`{v}`" for v in agg.values)
    if agg.within is not None and agg.within.span_hours is not None:
        out += f", recorded within the last {hours_text(agg.within.span_hours)}"
        out += " (end included)" if agg.within.end == "inclusive" else ""
    for key, words in (("since", "since"), ("until", "up to the end of the day")):
        ref = getattr(agg, key)
        if isinstance(ref, str):
            out += f", {words} `{ref}` was entered"
        elif ref:
            out += f", {words} the last entered of " + ", ".join(f"`{r}`" for r in ref) + " was entered"
    if agg.fn not in ("ever",):
        out += " (last value of each day)"
    if agg.after_entry:
        out += ", recorded after the move into it"
    if agg.since_change_of is not None:
        out += f", recorded since `{agg.since_change_of}` last changed"
        if agg.settled is not None and agg.settled.span_hours is not None:
            out += f" and at least {hours_text(agg.settled.span_hours)} after it"
    if agg.confirmed_by is not None:
        out += (f", the last confirmed by `{agg.confirmed_by}` (the first recorded while none is confirmed, or the"
                " last confirmation was withdrawn)")
    if agg.min_days > 1:
        out += f", only with a value on at least {agg.min_days} days"
    if agg.or_else is not None:
        out += f"; when there is none, the {aggregate_text(agg.or_else)}"
    if agg.per is not None:
        out += f", divided by the last recorded `{agg.per}` (none while it has none)"
    if agg.baseline is not None:
        kind = "fall" if agg.fall_from is not None else "rise"
        unit = " in % of the baseline" if agg.percent else ""
        past = "fell" if kind == "fall" else "rose"
        out = f"{kind}{unit} of the {out}, from the {aggregate_text(agg.baseline)} (positive: it {past})"
    return out


def _field_row(name: str, field: FieldDef, usage: Usage) -> list[str]:
    aggregate = getattr(field, "aggregate", None)
    ftype = field.type + (f" ({', '.join(_t(v) for v in field.values)})" if field.type == "enum" and field.values else "")
    rng = f"{field.range[0]:g}–{field.range[1]:g}" if field.range is not None else "—"
    others = [u for u in units_for(field.quantity) if u != field.unit]
    if aggregate is not None:
        current = "computed: " + aggregate_text(aggregate)
        given = "computed"
    else:
        current = validity_text(field)
        given = {"patient": "patient", "event": "events", "both": "patient or events"}[field.scope]
        if field.scope == "patient" and field.valid_for is None and field.valid_for_days is None:
            current = "always (patient record)"
        if field.compute is not None:
            given += "; else computed (see Computed inputs)"
    named = ""
    if field.short or field.short_false:
        false = f"; false: {field.short_false}" if field.short_false else ""
        named = f" (in criteria: {field.short or field.title}{false})"
    meaning = _t(field.title + named + (f". {field.description}" if field.description else ""))
    return [_code(name), ftype, _t(field.unit or "—"), rng, ", ".join(others) or "—", _bare_text(field), _display_text(field),
            current, given, meaning, _users(usage.used_by(name), usage.computes.get(name, set()))]


def _bare_text(field: FieldDef) -> str:
    """What happens to a bare number (no unit): unit required, ambiguity bands, or nothing special."""
    if field.unit_required:
        return "refused: give `{value, unit}`"
    bands = [f"{b.range[0]:g}–{b.range[1]:g} could be {b.unit}: " + ("refused" if b.action == "refuse" else "warning")
             + f" ({', '.join(b.evidence.sources)})" for b in field.ambiguous]
    return "; ".join(bands) or "—"


def _display_text(field: FieldDef) -> str:
    d = field.display
    if d is None:
        return "—"
    if d.decimals is not None:
        return f"{d.decimals} decimal" + ("" if d.decimals == 1 else "s")
    return f"step {d.step:g}" if d.step is not None else "—"


def _type_text(annotation: Any, nested: list[type[BaseModel]]) -> str:
    """Readable type of an effect argument; nested models are collected for their own tables."""
    if annotation is Any:
        return "condition"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(_code(str(a)) for a in args)
    if origin in (Union, types.UnionType):
        parts = [a for a in args if a is not type(None)]
        if str in parts and any(p in (float, int) for p in parts):
            return "number or `$parameter`"
        return " or ".join(_type_text(p, nested) for p in parts)
    if origin is list:
        return "list of " + _type_text(args[0], nested)
    if origin is tuple:
        return "[" + ", ".join(_type_text(a, nested) for a in args) + "]"
    if origin is dict:
        return "mapping of name to " + _type_text(args[1], nested)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in nested:
            nested.append(annotation)
        return f"mapping ({annotation.__name__}, below)"
    return {bool: "true/false", float: "number", int: "whole number", str: "text",
            date: "date (YYYY-MM-DD)"}.get(annotation, str(annotation))


def _default_text(info: Any) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "optional"
    if default == "":
        return 'default ""'
    return "default " + _value_text(default)


def _model_table(model: type[BaseModel], nested: list[type[BaseModel]]) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        meaning = info.description or DESCRIPTIONS.get(model.__name__, {}).get(key, "")
        rows.append([_code(key), _type_text(info.annotation, nested), _default_text(info), meaning])
    return _table(["argument", "type", "required / default", "meaning"], rows)


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").replace("``", "`").split())


# -- the page ---------------------------------------------------------------------------------

def _profiles(root: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "profiles").glob("*.yaml")):
        if not path.resolve().is_relative_to(root.resolve()):  # never read (or quote) a file outside the folder
            raise DefinitionError([Diagnostic(display_path(path), 1, 1, "PW241",
                                              f"profile '{path.name}' is a symbolic link that leads outside the pathway "
                                              "folder; it is not read")])
        try:
            doc = load_yaml_file(str(path), display_path(path), RULE_FILE_LIMITS)
        except YamlProblem as exc:
            raise DefinitionError([exc.diagnostic]) from None
        try:
            out[path.stem] = dict(ProfileFile.model_validate(doc.data).parameters)
        except ValidationError as exc:
            raise DefinitionError(validation_diagnostics(doc, (), exc, ProfileFile)) from None
    return out


def field_reference(definition: PathwayDef) -> str:
    """The Markdown field reference of a loaded pathway."""
    spec = definition.spec
    usage = collect_usage(definition)
    authored = authored_fields(definition)
    lines = [
        f"# Field reference: {_t(spec.title)} (`{spec.id}` {spec.version})",
        "",
        f"<!-- Generated by `pathway fields {spec.id}` from the rule files; do not edit by hand. -->",
        "",
        "Every name a rule may test, require or show in a text, with the rules that use it. Values are given in the",
        "canonical unit carried by the field name, or as `{value, unit}` in one of the other accepted units. A bare",
        "number inside an ambiguity band (\"bare number\") is plausible in two units: it is refused, or accepted in the",
        "canonical unit with a warning naming both readings; a `{value, unit}` quantity is never ambiguous. Texts show",
        "a value rounded as \"shown to\" says; decisions use the full value. An event value stays current for the",
        "time shown, its end excluded unless marked (in hours from clock times when events give `time`, else 24 h a",
        "day), then counts as missing (so a day-0 CRP is not the day-3 CRP); a rule waiting for it asks for a recheck",
        "with the last value. A value in the patient record counts from admission.",
        "See [authoring.md](authoring.md) for how rules, scenarios and schemas fit together.",
        "",
        "## Input fields",
        "",
    ]
    rows = [_field_row(name, field, usage) for name, field in authored.items()]
    lines += _table(["field", "type", "unit", "plausible range", "other units", "bare number", "shown to", "current for",
                     "given in", "meaning", "used by rules"], rows)

    if definition.computed:
        lines += ["", "## Computed inputs", "",
                  "A true/false input computed from other inputs (`compute:` in the fields file) when it is not recorded:",
                  "true when the condition is definitely true, false when it is definitely false, no value while it is",
                  "unknown. A value recorded for the field wins when it was recorded in the same event as, or a later",
                  "event than, the newest input value the condition used; otherwise the computed value wins (a field may",
                  "keep a recorded true until a false is recorded: `recorded_true_stands`). Rules test",
                  "the field like any other input; the result's `computed` says which value was used and from which",
                  "inputs. Conditions are in words, with the values of the default profile.", ""]
        rows = []
        for name, comp in definition.computed.items():
            ev = comp.evidence
            evidence = _t(f"{', '.join(ev.sources)}; {ev.strength}; {ev.status}" + (f". {ev.note}" if ev.note else ""))
            rows.append([_code(name), _t(prose.computed_text(comp, definition)), ", ".join(_code(i) for i in comp.inputs),
                         _t(prose.computed_recorded_text(comp)), evidence])
        lines += _table(["field", "true when (false when definitely not)", "computed from", "a recorded value",
                         "evidence"], rows)
    if definition.consistency:
        lines += ["", "## Consistency checks", "",
                  "Values given together in one event (or in the patient record) must compare this way, or must not",
                  "make the forbidden combination; otherwise the event is refused (PW409) and nothing is applied.", ""]
        rows = [[_code(c.id),
                 (f"not ({_t(prose.condition_text(c.forbid, definition))})" if c.forbid is not None
                  else f"`{c.field}` {CHECK_SYMBOLS[str(c.op)]} `{c.other}`"),
                 _t(c.title)] for c in definition.consistency]
        lines += _table(["check", "must hold", "meaning"], rows)

    lines += ["", "## Derived facts", "",
              "Asserted by a rule's `derive` (or `score`) effect inside the engine; asserting one triggers the rules that",
              "test it. A derived fact cannot be tested for absence (`present: false`): derive an explicit false instead.",
              ""]
    rows = []
    for name, d in spec.derived.items():
        by = usage.derived_by.get(name, {})
        derived = ", ".join(f"`{r}` ({' / '.join(sorted(v))})" for r, v in sorted(by.items())) or "— (no rule)"
        values = ", ".join(_t(v) for v in d.values) if d.values else ("true / false" if d.type == "boolean" else "—")
        row = [_code(name), d.type, values, _t(d.title), derived]
        if definition.decision_points:
            row.append(f"at `{definition.kept[name]}`" if name in definition.kept else "—")
        rows.append(row + [_rules(usage.tested.get(name, set()))])
    header = ["fact", "type", "values", "meaning", "derived by"] + (["kept"] if definition.decision_points else [])
    lines += _table(header + ["tested by"], rows)

    if definition.decision_points:
        lines += ["", "## Decision points", "",
                  "Rules with `decision_point: <id>` fire only inside the window (`from_day` up to, not including,",
                  "`before_day`); the facts they derive are kept with their provenance (value, day, rule, the facts it",
                  "matched) and, once the window has passed, every evaluation sees the kept values (the result's",
                  "`frozen`) instead of deriving them again from later data.", ""]
        rows = []
        for name, point in definition.decision_points.items():
            start = f"{point.from_day:g}" + (f" (`${point.from_param}`)" if point.from_param else "")
            if point.counted_from is not None:
                start += f", counted from the first entry into `{point.counted_from}`"
            end = f"{point.before_day:g}" + (f" (`${point.before_param}`)" if point.before_param else "")
            rules = sorted(r.id for r in definition.rules if r.decision_point == name)
            facts = sorted(f for f, p in definition.kept.items() if p == name)
            meaning = _t(point.title + (f". {point.note}" if point.note else ""))
            rows.append([_code(name), start, end, meaning, ", ".join(map(_code, facts)) or "—", _rules(rules)])
        lines += _table(["decision point", "from day", "before day", "meaning", "keeps", "rules"], rows)

    lines += ["", "## Built-ins", "", "Computed by the engine for every evaluation; a case cannot give them.", ""]
    rows = []
    for name, field in builtin_fields().items():
        rows.append([_code(name), field.type, field.unit or "—", field.title, _rules(usage.tested.get(name, set()))])
    rows.append([_code("state"), "enum (" + ", ".join(spec.states) + ")", "—", "The current state of the pathway",
                 _rules(usage.tested.get("state", set()))])
    per_state = [days_since(s) for s in spec.states if days_since(s) in definition.fields]
    if per_state:
        testers = set().union(*(usage.tested.get(n, set()) for n in per_state))
        meaning = f"Days since the state was first entered (one per state, e.g. `{per_state[0]}`)"
        rows.append([_code(days_since("<state>")), "number", "day", meaning, _rules(testers)])
    per_proposal = [proposed(s) for s in spec.states if proposed(s) in definition.fields]
    if per_proposal:
        testers = set().union(*(usage.tested.get(n, set()) for n in per_proposal))
        meaning = ("True while a rule of the same evaluation proposes moving to the state (one per state, e.g. "
                   f"`{per_proposal[0]}`; false otherwise): set after the rules that propose have run, read only by "
                   "rules that advise")
        rows.append([_code(proposed("<state>")), "boolean", "—", meaning, _rules(testers)])
    extra = [n for n, f in definition.fields.items()
             if f is not None and n not in authored and n not in BUILTIN_NAMES and n not in per_state
             and n not in per_proposal]
    for name in extra:
        field = definition.fields[name]
        rows.append([_code(name), field.type, _t(field.unit or "—"), _t(field.title), _rules(usage.tested.get(name, set()))])
    lines += _table(["name", "type", "unit", "meaning", "tested by"], rows)

    profiles = _profiles(definition.root)
    lines += ["", "## Parameters", "",
              "Rules refer to a parameter as `$name`; the value below is the pathway's own, which a site profile",
              "(`profiles/<id>.yaml`) or an override (`--parameter NAME=VALUE`) may replace.", ""]
    header = ["parameter", "value", "unit", "meaning", "choices", "sources"]
    if profiles:
        header.append("profiles")
    header.append("used by rules")
    rows = []
    for name, p in spec.parameters.items():
        meaning = _t(p.title + (f". {p.note}" if p.note else ""))
        row = [_code(name), _t(_value_text(p.value)), _t(p.unit or "—"), meaning,
               ", ".join(_t(_value_text(c)) for c in p.choices) or "—", ", ".join(_t(x) for x in p.sources) or "—"]
        if profiles:
            row.append(", ".join(f"{pid}: {_value_text(values[name])}" for pid, values in profiles.items()
                                 if name in values) or "—")
        row.append(_users(usage.params.get(name, set()), usage.computes.get(name, set())))
        rows.append(row)
    lines += _table(header, rows)

    lines += ["", "## Effects", "",
              "`then`, `otherwise` (and `if_missing`) are lists of one-key mappings, the key naming the effect. Texts may",
              "name fields, derived facts and parameters in braces (`{crp_mg_l}`); they are filled by plain substitution",
              "(a field's value rounded as its \"shown to\" column says).",
              "Where the type says `$parameter`, a number may be replaced by a parameter reference.", ""]
    for kind, model in E.EFFECT_KINDS.items():
        lines += [f"### `{kind}`", ""]
        note = _EFFECT_NOTES.get(kind) if model in (E.Transition, E.Derive) else _doc(model)
        if note:
            lines += [note, ""]
        if model in (E.Transition, E.Derive):
            continue
        nested: list[type[BaseModel]] = []
        lines += _model_table(model, nested)
        done: set[type[BaseModel]] = set()
        while nested:
            sub = nested.pop(0)
            if sub in done:
                continue
            done.add(sub)
            lines += ["", f"`{sub.__name__}`" + (f": {_doc(sub)}" if _doc(sub) else ""), ""]
            lines += _model_table(sub, nested)
        lines.append("")
    lines += ["", "## Rule sign-off", "",
              "A rule may carry its clinical sign-off. `pathway evidence` and the audit report show each rule as signed off,",
              "review overdue (after `review_due`) or not reviewed; the engine never reads it, so no result changes.", ""]
    rows = [[_code(key), _type_text(RuleDef.model_fields[key].annotation, []), "optional",
             DESCRIPTIONS["RuleDef"][key]] for key in ("reviewed_by", "reviewed_on", "review_due")]
    lines += _table(["key", "type", "required / default", "meaning"], rows)
    signed = [r for r in definition.rules if r.reviewed_by]
    lines.append("")
    if signed:
        rows = [[_code(r.id), _t(r.reviewed_by), r.reviewed_on.isoformat() if r.reviewed_on else "—",
                 r.review_due.isoformat() if r.review_due else "—"] for r in signed]
        lines += _table(["rule", "reviewed by", "reviewed on", "review due"], rows)
    else:
        lines.append("No rule of this pathway carries a sign-off yet.")
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def default_output(pathway_id: str) -> Path:
    return Path("docs") / f"fields-{pathway_id}.md"
