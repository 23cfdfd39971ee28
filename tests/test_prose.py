"""Conditions in words (:mod:`pathway.definition.prose`): every rule, computed input, watchdog and
invariant of every shipped pathway and test fixture reads as clinical prose under every profile,
with the values and units in effect; specific rules read as their rule files say; what a rule does
when a value is not recorded is what the engine does."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from pathway import load_pathway
from pathway.core.errors import DefinitionError
from pathway.definition import conditions as C
from pathway.definition import prose as P
from pathway.definition.pathway import PathwayDef
from pathway.loading.loader import load_definition, load_every_profile

ASUC = ROOT / "rules" / "asuc"


def _fixture_pathways() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "tests" / "fixtures").rglob("pathway.yaml"))


def _every_definition() -> list[tuple[str, PathwayDef]]:
    out: list[tuple[str, PathwayDef]] = []
    for root in [ASUC, *_fixture_pathways()]:
        try:
            loaded = load_every_profile(root)
        except DefinitionError:
            continue  # a fixture that is meant not to load
        seen: list[PathwayDef] = []
        for profile, d in loaded.items():
            if any(d is other for other in seen):
                continue  # the default profile under its own name: loaded once
            seen.append(d)
            out.append((f"{root.relative_to(ROOT)}:{d.profile or profile or 'default'}", d))
    return out


DEFINITIONS = _every_definition()

#: Code that must never reach a reader: parameter references, operator names, the old renderer's
#: words, Python values, placeholders.
_CODE = re.compile(r"\$|\b(gt|gte|lt|lte|eq|ne|not_in|present|is missing|None|True|False)\b|\bin \(|"
                   r"\b(always|never) (and|or)\b|\((always|never)\b|[{}]")
#: A snake_case id (a field, fact or state id written raw).
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")


def _texts(d: PathwayDef) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for r in d.rules:
        t = P.rule_text(r, d)
        out += [(f"{r.id} when", t.when), (f"{r.id} then", t.then)]
        out += [(f"{r.id} due", t.due)] if t.due else []
        out += [(f"{r.id} missing", m) for m in t.missing]
        out += [(f"{r.id} otherwise", t.otherwise)] if t.otherwise else []
        out += [(f"{r.id} outline", line) for _, line in t.when_outline]
    out += [(f"computed {n}", P.computed_text(c, d)) for n, c in d.computed.items()]
    out += [(f"overdue {s}", P.overdue_text(s, d) or "") for s in d.watchdogs]
    out += [(f"invariant {i.id}", P.invariant_text(i, d)) for i in d.invariants]
    return out


def test_the_pathways_cover_every_profile() -> None:
    names = [name for name, _ in DEFINITIONS]
    assert {"rules/asuc:default", "rules/asuc:nice", "rules/asuc:tac_high_start"} <= set(names)
    assert sum(1 for n in names if n.startswith("tests/fixtures")) >= 20


@pytest.mark.parametrize("name,d", DEFINITIONS, ids=[n for n, _ in DEFINITIONS])
def test_no_code_in_any_condition(name: str, d: PathwayDef) -> None:
    """Every rule (criteria, timing, missing-data behaviour, 'otherwise'), computed input, watchdog
    and invariant: no '$', no operator name, no raw id, one line."""
    ids = set(d.fields) | set(d.spec.derived) | set(d.spec.states) | set(d.params)
    rule_ids = {r.id for r in d.rules}
    for where, text in _texts(d):
        assert text and "\n" not in text, (where, text)
        if " then" in where or " otherwise" in where:
            # effects quote the rule file's own texts; their conditions-free words are checked elsewhere
            text = re.sub(r"(recommends|alerts|asks for [^:]*|offers [^:]*)\s*(\([^)]*\))?: .*?(; (?=[a-z])|$)", "", text)
        assert not _CODE.search(text), (where, text)
        raw = [w for w in _SNAKE.findall(text) if w in ids and w not in rule_ids]
        assert not raw, (where, raw, text)


def test_every_rule_of_every_profile_is_rendered() -> None:
    asuc = [(n, d) for n, d in DEFINITIONS if n.startswith("rules/asuc")]
    count = sum(len(d.rules) for _, d in asuc)
    assert len(asuc) == 3 and count == 3 * len(asuc[0][1].rules) and count > 400


# -- specific rules, as their rule files say ------------------------------------------------

@pytest.fixture(scope="module")
def d() -> PathwayDef:
    return load_definition("asuc")


def _rule(d: PathwayDef, rid: str):  # type: ignore[no-untyped-def]
    return next(r for r in d.rules if r.id == rid)


def test_truelove_and_witts(d: PathwayDef) -> None:
    t = P.rule_text(_rule(d, "tw_asuc_confirmed"), d)
    # diagnosis.yaml: bloody_stools_24h >= $tw_min_bloody_stools (6), any of pulse > 90, temp > 37.8,
    # Hb < 10.5, ESR > 30, or CRP > 30 where the profile uses CRP in place of ESR (it does)
    assert t.when == ("≥ 6 bloody stools in 24 h and at least one of: pulse > 90/min, temperature > 37.8 °C, "
                      "Hb < 10.5 g/dL, ESR > 30 mm/h, CRP > 30 mg/L")
    assert t.due is None and t.otherwise is None and not t.switched_off
    assert t.missing == ["if bloody stools in 24 h, pulse, temperature, Hb, ESR or CRP is not recorded and could "
                         "change the answer: asks for it"]
    assert t.then.startswith("moves to 'IV corticosteroids'; recommends (advice): Acute severe UC by Truelove & Witts "
                             "([bloody stools in 24 h] bloody stools in 24 h")
    assert t.when_outline == [(0, "all of:"), (1, "≥ 6 bloody stools in 24 h"), (1, "at least one of:"),
                              (2, "pulse > 90/min"), (2, "temperature > 37.8 °C"), (2, "Hb < 10.5 g/dL"),
                              (2, "ESR > 30 mm/h"), (2, "CRP > 30 mg/L")]


def test_truelove_and_witts_not_met(d: PathwayDef) -> None:
    # diagnosis.yaml: fewer than 6 bloody stools, or every sign normal with ESR and CRP normal or not
    # measured (CRP stands in for ESR) and at least one of them measured
    assert P.rule_text(_rule(d, "tw_not_met"), d).when == (
        "< 6 bloody stools in 24 h or (pulse ≤ 90/min and temperature ≤ 37.8 °C and Hb ≥ 10.5 g/dL and ESR ≤ 30 mm/h "
        "(or not recorded) and CRP ≤ 30 mg/L (or not recorded) and (ESR or CRP is recorded))")


def test_a_parameter_test_is_settled_by_the_profile() -> None:
    esr_only = load_definition("asuc", overrides={"tw_use_crp_for_esr": False})
    t = P.rule_text(_rule(esr_only, "tw_asuc_confirmed"), esr_only)
    assert t.when == ("≥ 6 bloody stools in 24 h and at least one of: pulse > 90/min, temperature > 37.8 °C, "
                      "Hb < 10.5 g/dL, ESR > 30 mm/h")
    assert P.rule_text(_rule(esr_only, "tw_signs_needed"), esr_only).when == (
        "never applies under this profile (Use CRP in place of ESR for the Truelove & Witts inflammatory criterion: no)")
    assert P.rule_text(_rule(esr_only, "tw_signs_needed"), esr_only).switched_off
    on = P.rule_text(_rule(esr_only, "tw_signs_needed_esr"), esr_only)
    assert on.when == ("≥ 6 bloody stools in 24 h and pulse ≤ 90/min (or not recorded) and temperature ≤ 37.8 °C "
                       "(or not recorded) and Hb ≥ 10.5 g/dL (or not recorded) and ESR ≤ 30 mm/h (or not recorded)")
    assert P.computed_text(esr_only.computed["tw_inflammation_raised"], esr_only) == "ESR > 30 mm/h"


def test_a_rule_switched_off_names_the_setting(d: PathwayDef) -> None:
    t = P.rule_text(_rule(d, "nice_infliximab_second_line"), d)
    assert t.switched_off and t.when == "never applies under this profile (Rescue agent policy: equal)"
    assert t.missing == [] and t.otherwise is None
    nice = load_definition("asuc", profile="nice")
    t = P.rule_text(_rule(nice, "nice_infliximab_second_line"), nice)
    assert not t.switched_off and t.when == (
        "infliximab not contraindicated and creatinine ≤ 130 µmol/L (or not recorded) and no active serious infection "
        "(or not recorded) and no uncontrolled hypertension (or not recorded) and no current malignancy (or not "
        "recorded) and no immunodeficiency (or not recorded)")


def test_values_follow_the_profile() -> None:
    lowered = load_definition("asuc", overrides={"tw_pulse_bpm": 100, "tw_crp_mg_l": 45})
    when = P.rule_text(_rule(lowered, "tw_asuc_confirmed"), lowered).when
    assert "pulse > 100/min" in when and when.endswith("CRP > 45 mg/L")


def test_the_day_3_indices(d: PathwayDef) -> None:
    # day3_indices.yaml: decision point day3_assessment (day 3 to before day 4 of IV steroids, the rules'
    # state: days_in_state); Oxford: more than 8
    # stools, or 3-8 stools (inclusive) with CRP above 45 mg/L
    t = P.rule_text(_rule(d, "oxford_index"), d)
    assert t.due == "on day 3 of the current state"
    assert t.when == "> 8 stools in 24 h or (≥ 3 and ≤ 8 stools in 24 h and CRP > 45 mg/L)"
    assert t.then == "sets Oxford index positive to yes"
    assert t.otherwise == "if definitely not met (with stools in 24 h and CRP recorded): sets Oxford index positive to no"
    assert t.missing == ["if stools in 24 h or CRP is not recorded and could change the answer: asks for it"]
    later = load_definition("asuc", overrides={"assessment_day": 5, "assessment_window_end_day": 8})
    assert P.rule_text(_rule(later, "oxford_index"), later).due == "on days 5 to 7 of the current state"
    steroid = P.rule_text(_rule(d, "steroid_failure_day3"), d)
    assert steroid.due == "from day 3 of the current state"
    assert steroid.when == ("(at least one of: Oxford index positive, Lindgren risk is high, CRP/albumin ratio risk is "
                            "high, Ho index band is high) and no complete response")


def test_a_rule_with_if_missing(d: PathwayDef) -> None:
    # day3_indices.yaml: the Lindgren index needs stools and CRP; without them the risk is 'unknown'
    t = P.rule_text(_rule(d, "lindgren_index"), d)
    assert t.when == "always" and t.due == "on day 3 of the current state"
    assert t.then == "computes Lindgren index"
    assert t.missing == [
        "computes Lindgren index only with stools in 24 h and CRP recorded: if not recorded, asks for it",
        "while stools in 24 h or CRP is not recorded: sets Lindgren risk to unknown",
    ]


def test_tacrolimus_troughs(d: PathwayDef) -> None:
    # tacrolimus.yaml: before tacrolimus day 14, trough 10-15 ng/mL (inclusive) with creatinine not
    # raised (or not measured) is in range, unless a trough above the target on this dose came with a raised
    # creatinine on it (withheld)
    t = P.rule_text(_rule(d, "tac_trough_in_range"), d)
    assert t.when == ("before day 14 after first entering 'Rescue with tacrolimus' and a trough on the current tacrolimus "
                      "dose and highest trough on the current tacrolimus dose ≤ 20 ng/mL and (highest trough on the "
                      "current tacrolimus dose ≤ 15 ng/mL or (highest creatinine on the current tacrolimus dose ≤ 130 "
                      "µmol/L (or not recorded) and largest creatinine rise on the current tacrolimus dose < 25% (or not "
                      "recorded))) and tacrolimus trough ≥ 10 and ≤ 15 ng/mL and (creatinine is not recorded or "
                      "(creatinine ≤ 130 µmol/L and creatinine rise on tacrolimus < 25% (or not recorded)))")
    low = P.rule_text(_rule(d, "tac_trough_low"), d)
    assert low.due == ("tacrolimus trough is recorded and has never entered 'Maintenance with infliximab' and tacrolimus "
                       "dose within the doses seen per kg (or not recorded) and (the tacrolimus dose recorded with the "
                       "trough or no tacrolimus dose recorded yet) and tacrolimus not stopped (or not recorded)")
    assert "tacrolimus trough ≥ 5 and < 10 ng/mL" in low.when
    assert "recalculates the tacrolimus dose from tacrolimus trough only with tacrolimus daily dose and weight " \
           "recorded: if not recorded, asks for it" in low.missing  # weight: the increase stops at a dose per kg
    assert P.rule_text(_rule(d, "tac_stop_plan"), d).when == "on days 90 to 179 after first entering 'Rescue with tacrolimus'"
    dose = P.rule_text(_rule(d, "tac_start_dose"), d)
    assert dose.when == "no tacrolimus dose recorded yet and no tacrolimus trough recorded yet"
    assert dose.then == "doses tacrolimus: 0.05 mg/kg/day oral"
    high = load_definition("asuc", profile="tac_high_start")
    assert P.rule_text(_rule(high, "tac_start_dose"), high).then == "doses tacrolimus: 0.1 mg/kg/day oral"


def test_states_decisions_and_the_clock(d: PathwayDef) -> None:
    t = P.rule_text(_rule(d, "rescue_worsening"), d)
    assert t.due == ("(in 'Rescue with tacrolimus' and on days 1 to 13 of the current state) or ((in 'Rescue with "
                     "ciclosporin' or 'Rescue with infliximab') and on days 1 to 6 of the current state)")
    t = P.rule_text(_rule(d, "rescue_improving_at_deadline"), d)
    assert t.due == ("at least one of: (in 'Rescue with tacrolimus' and on days 14 to 16 of the current state and "
                     "tacrolimus not stopped (or not recorded)), (in 'Rescue with ciclosporin' and on days 7 to 9 of the "
                     "current state and ciclosporin not stopped (or not recorded)), (in 'Rescue with infliximab' and on "
                     "days 7 to 9 of the current state)")
    assert P.rule_text(_rule(d, "choose_tacrolimus"), d).when == "rescue choice is tacrolimus and tacrolimus not contraindicated"
    assert P.rule_text(_rule(d, "tw_extra_criteria"), d).due == "before day 1 of the current state"
    assert P.overdue_text("rescue_selection", d) == "from day 1 of the current state"
    assert P.overdue_text("iv_steroids", d) == "from day 7 of the current state"
    assert P.overdue_text("colectomy", d) is None
    inv = next(i for i in d.invariants if i.id == "INV-002")
    assert P.invariant_text(inv, d) == ("when in 'Rescue therapy selection' and ciclosporin contraindicated: all of: "
                                        "does not offer ciclosporin as available; does not move to 'Rescue with ciclosporin'")
    inv = next(i for i in d.invariants if i.id == "INV-001")
    assert P.invariant_text(inv, d).startswith("when in neither 'Discharged' nor 'Colectomy' and at least one of: "
                                               "perforation, massive haemorrhage, (colonic dilatation and systemic toxicity and "
                                               "(widest transverse colon in the last 48 h > 5.5 cm")


def test_comparisons_for_table_cells(d: PathwayDef) -> None:
    def cmp(field: str, op: str, value: object) -> tuple[str, str]:
        derived = field in d.spec.derived
        return P.comparison_text(C.Cmp(field, op, value, derived), d)

    assert cmp("crp_mg_l", "gt", 30) == ("CRP", "> 30 mg/L")
    assert cmp("visible_blood", "eq", False) == ("visible blood", "no")
    assert cmp("tpmt_status", "ne", "absent") == ("TPMT activity", "is not absent")
    assert cmp("hbv_status", "in", ("positive_untreated", "positive_on_antiviral")) == (
        "hepatitis B status", "is one of: positive untreated, positive on antiviral")
    assert cmp("latent_tb", "not_in", ("untreated",)) == ("latent TB screening", "is none of: untreated")
    assert cmp("esr_mm_h", "present", False) == ("ESR", "is not recorded")
    assert cmp("day", "gte", 3) == ("day", "from day 3")
    assert cmp("bloody_stools_24h", "gte", 6) == ("bloody stools in 24 h", "≥ 6")
    assert cmp("neutrophils_10e9_l", "gt", 10.5) == ("neutrophils", "> 10.5×10⁹/L")
    assert cmp("lindgren_risk", "eq", "high") == ("Lindgren risk", "is high")
    assert P.condition_text(C.Cmp("visible_blood", "eq", True), d) == "visible blood"
    assert P.condition_text(C.Cmp("visible_blood", "ne", True), d) == "no visible blood"
    assert P.condition_text(C.Or(()), d) == "never under this profile"
    assert P.condition_text(C.Always(), d) == "always"


def test_a_short_condition_is_one_outline_line(d: PathwayDef) -> None:
    assert P.condition_outline(_rule(d, "hypokalaemia").when, d) == [(0, "potassium < 3.5 mmol/L")]


def test_simplify_keeps_three_valued_meaning() -> None:
    x, y = C.Cmp("x", "gt", 1), C.Cmp("y", "lt", 2)
    assert P.simplify(C.And((C.Always(), x))) == x
    assert P.simplify(C.Or((C.Or(()), C.And((x, y))))) == C.And((x, y))
    assert P.simplify(C.And((C.Or(()), x))) == C.Or(())
    assert P.simplify(C.AtLeast(2, (C.Always(), x, y))) == C.Or((x, y))
    assert P.simplify(C.AtLeast(2, (C.Or(()), x, y))) == C.And((x, y))
    for facts in ({}, {"x": 2}, {"x": 0}, {"y": 1}, {"x": 2, "y": 3}, {"x": 0, "y": 1}):
        for cond in (C.AtLeast(2, (C.Always(), x, y)), C.Or((C.Or(()), C.And((x, C.Always()))))):
            assert C.evaluate(P.simplify(cond), facts) is C.evaluate(cond, facts), (cond, facts)


# -- missing data: the words say what the engine does ---------------------------------------

def test_asks_for_data_as_the_engine_does(pw) -> None:  # type: ignore[no-untyped-def]
    d = pw.definition
    # 5 stools on day 3 and no CRP: the Oxford rule asks for the CRP ("asks for it")
    firings, _ = pw.engine.evaluate("iv_steroids", {"state": "iv_steroids", "day": 3, "days_in_state": 3,
                                                    "stool_freq_24h": 5}, {})
    waiting = {f.rule: f.missing for f in firings if f.branch == "missing"}
    assert "crp_mg_l" in waiting["oxford_index"]
    assert any("asks for it" in m and "CRP" in m for m in P.rule_text(_rule(d, "oxford_index"), d).missing)
    # no potassium: the hypokalaemia alert waits and asks for nothing ("does not ask for it")
    assert "hypokalaemia" not in waiting
    assert P.rule_text(_rule(d, "hypokalaemia"), d).missing == ["if potassium is not recorded: does not ask for it"]
    # Lindgren without CRP: the if_missing branch sets the risk to unknown
    assert "lindgren_index" in waiting and "crp_mg_l" in waiting["lindgren_index"]


def test_every_rule_that_asks_says_so(d: PathwayDef) -> None:
    from pathway.definition.waiting import asks_for_data

    for r in d.rules:
        t = P.rule_text(r, d)
        if t.switched_off:
            continue
        says = any("asks for it" in m for m in t.missing)
        assert says == (asks_for_data(r) and bool(P._inputs_tested(r.when, d) or r.computes_with("then")
                                                   or (r.requires and r.otherwise))), r.id
        assert any("does not ask for it" in m for m in t.missing) <= (not asks_for_data(r)), r.id


# -- hostile titles --------------------------------------------------------------------------

def test_hostile_titles_stay_on_one_line_and_inert(tmp_path: Path) -> None:
    root = tmp_path / "asuc"
    shutil.copytree(ASUC, root)
    fields = (root / "fields.yaml").read_text(encoding="utf-8")
    fields = fields.replace("    short: CRP\n", '    short: "<b>CRP</b>\\n| evil $x \\u001b[31m"\n', 1)
    (root / "fields.yaml").write_text(fields, encoding="utf-8")
    d = load_definition(root)
    when = P.rule_text(_rule(d, "tw_asuc_confirmed"), d).when
    assert when.endswith("<b>CRP</b> | evil $x \\x1b[31m > 30 mg/L")  # one line; the escape is visible
    assert "\n" not in when and "\x1b" not in when
    from datetime import date

    from pathway.audit.report import _section_rules

    html = _section_rules(load_pathway(root).definition, date(2026, 1, 1))
    assert "<b>CRP</b>" not in html and "&lt;b&gt;CRP&lt;/b&gt;" in html


def _tests_of(name: str, ftype: str, values: list[str]) -> list[C.Cmp]:
    """Every operator the parser accepts on a field of this type, with a value of the type."""
    out = [C.Cmp(name, "present", True), C.Cmp(name, "present", False)]
    if ftype in ("number", "integer"):
        out += [C.Cmp(name, op, 7 if ftype == "integer" else 7.25) for op in ("eq", "ne", "gt", "gte", "lt", "lte")]
        out += [C.Cmp(name, "in", (1, 2)), C.Cmp(name, "not_in", (3,))]
    elif ftype == "boolean":
        out += [C.Cmp(name, op, v) for op in ("eq", "ne") for v in (True, False)]
    else:
        vals = values or ["some_value", "other_value"]
        out += [C.Cmp(name, "eq", vals[0]), C.Cmp(name, "ne", vals[-1]), C.Cmp(name, "in", tuple(vals)),
                C.Cmp(name, "not_in", (vals[0],))]
    return out


def test_every_operator_on_every_field_reads_as_words(d: PathwayDef) -> None:
    """Each field, built-in, clock and derived fact of the pathway under each operator: alone, as a
    table cell, and combined into windows, ranges and 'or not recorded' phrases."""
    names: list[tuple[str, str, list[str], bool]] = [(n, f.type, list(f.values), False) for n, f in d.fields.items()]
    names += [(n, f.type, list(f.values), True) for n, f in d.spec.derived.items()]
    names.append(("state", "enum", list(d.spec.states), False))
    ids = set(d.fields) | set(d.spec.derived) | set(d.spec.states)
    seen = 0
    for name, ftype, values, derived in names:
        tests = [C.Cmp(c.field, c.op, c.value, derived) for c in _tests_of(name, ftype, values)]
        combos: list[C.Cond] = [*tests, C.And(tuple(tests[2:4])), C.Or((tests[1], tests[-1])), C.And((tests[0], tests[-1]))]
        combos.append(C.AtLeast(2, tuple(tests[:3])))
        for cond in combos:
            for text in [P.condition_text(cond, d), *(line for _, line in P.condition_outline(cond, d, width=10))]:
                assert text and "\n" not in text and not _CODE.search(text), (name, cond, text)
                assert not [w for w in _SNAKE.findall(text) if w in ids], (name, cond, text)
                seen += 1
        for cmp in tests:
            subject, cell = P.comparison_text(cmp, d)
            assert subject and cell and not _CODE.search(subject + " " + cell), (cmp, subject, cell)
    assert seen > 1000


# -- the same words in the decision tables and the diagrams ---------------------------------

@pytest.mark.parametrize("profile", [None, "nice", "tac_high_start"])
def test_no_code_in_decision_table_cells_or_diagram_tooltips(profile: str | None) -> None:
    import html

    from pathway import load_pathway
    from pathway.analysis.tables import decision_tables
    from pathway.render.diagram import to_dot

    pw = load_pathway("asuc", profile=profile)
    d = pw.definition
    cells = 0
    for table in decision_tables(pw.compiled):
        for row in table.rows:
            for column, text in row.cells.items():
                cells += 1
                assert not _CODE.search(text), (table.id, row.rule, column, text)
    assert cells > 500
    tooltips = [html.unescape(t) for t in re.findall(r'tooltip="([^"]*)"', to_dot(pw.graph, d))]
    assert len(tooltips) > 30
    for text in tooltips:
        assert not _CODE.search(text), text


def test_a_recorded_value_in_words() -> None:
    from pathway.definition.prose import recorded_value

    d = load_pathway("asuc").definition
    assert recorded_value("active_serious_infection", True, d) == "active serious infection: yes"
    assert recorded_value("systemic_toxicity", False, d) == "no systemic toxicity"
    assert recorded_value("crp_mg_l", 45, d) == "CRP: 45"
    assert recorded_value("no_such_field", 3, d) == "no_such_field is 3"
