"""Decision tables (``pathway table``): rows written from the rule files, the engine's conditions read
back from every row, alternatives expanded, parameters under a profile, the findings of the checks on
the rows, and every output format with hostile text inert."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from pathway.analysis.check import check_pathway
from pathway.analysis.evaluate import branch_conditions, field_candidates, truth
from pathway.analysis.tables import HIT_POLICY, DecisionTable, Row, decision_table, decision_tables
from pathway.cli.main import main
from pathway.core.errors import InputError
from pathway.definition import conditions as C
from pathway.definition.waiting import waiting_for
from pathway.loading.loader import load_definition, resolve_pathway_dir
from pathway.render.tables import tables_csv, tables_html, tables_html_page, tables_markdown, tables_text
from pathway.runtime.compile import CompiledPathway, compile_pathway

FIXTURES = ROOT / "tests" / "fixtures" / "checks"
BASE = ROOT / "tests" / "corpus" / "base"


def _compiled(name: str | Path = "asuc", profile: str | None = None, **params: Any) -> CompiledPathway:
    return compile_pathway(load_definition(resolve_pathway_dir(name), params or None, profile))


@pytest.fixture(scope="module")
def asuc() -> CompiledPathway:
    return _compiled()


@pytest.fixture(scope="module")
def asuc_checked(asuc: CompiledPathway) -> dict[str, DecisionTable]:
    tables = decision_tables(asuc, checks=check_pathway("asuc"))
    return {t.id: t for t in tables}


def _rows(table: DecisionTable, rule: str, branch: str | None = None) -> list[Row]:
    return [r for r in table.rows if r.rule == rule and (branch is None or r.branch == branch)]


def _cells(rows: list[Row]) -> list[dict[str, str]]:
    return [dict(r.cells) for r in rows]


# -- rows written from the rule files ---------------------------------------------------------------

def test_the_iv_steroids_table_has_the_day3_decision_as_written(asuc_checked: dict[str, DecisionTable]):
    t = asuc_checked["iv_steroids"]
    assert (t.kind, t.title, t.states) == ("state", "IV corticosteroids", ("iv_steroids",))
    assert t.hit_policy == HIT_POLICY and "highest priority wins" in t.hit_policy
    labels = {c.name: c.label for c in t.columns}
    assert labels["crp_mg_l"] == "C-reactive protein (mg/L)"
    assert labels["stool_freq_24h"] == "Stool frequency in the last 24 hours (/24 h)"
    # the clock first: days of IV steroids (days in this state), also for a patient diagnosed after admission
    assert labels["days_in_state"] == "Days in this state" and t.columns[0].name == "days_in_state"
    assert labels["oxford_high_risk"].startswith("Oxford (Travis) day-3 criteria positive")
    # steroid failure on day 3: any of the four indices positive, without a complete response (steroids.yaml)
    failure = _rows(t, "steroid_failure_day3", "then")
    assert [r.label for r in failure] == ["then 1/4", "then 2/4", "then 3/4", "then 4/4"]
    assert _cells(failure) == [
        {"days_in_state": "≥ 3", "oxford_high_risk": "true", "complete_response": "false"},
        {"days_in_state": "≥ 3", "lindgren_risk": "high", "complete_response": "false"},
        {"days_in_state": "≥ 3", "car_risk": "high", "complete_response": "false"},
        {"days_in_state": "≥ 3", "ho_risk": "high", "complete_response": "false"}]
    assert {(r.priority, r.moves, r.section) for r in failure} == {(20, ("Rescue therapy selection",), "move")}
    assert failure[0].advice[0].startswith("referral: Steroid failure predicted by the day-3 indices")  # $ resolved
    response = _rows(t, "steroid_response_day3", "then")
    assert _cells(response) == [{"days_in_state": "≥ 3", "complete_response": "true", "oxford_high_risk": "false",
                                 "lindgren_risk": "≠ high", "car_risk": "≠ high", "ho_risk": "≠ high"}]
    assert response[0].priority == 10 and response[0].moves == ("Responded to IV steroids",)
    assert _cells(_rows(t, "incomplete_response_final_day")) == [{"days_in_state": "≥ 7", "complete_response": "false"}]
    assert _cells(_rows(t, "no_improvement_after_assessment")) == [{"days_in_state": "≥ 4", "stool_freq_24h": "> 8"}]
    # Travis: at most 3 stools without visible blood; 'otherwise' needs both recorded
    assert _cells([r for r in _rows(t, "complete_response") if r.branch != "if missing"]) == [
        {"days_in_state": "≥ 3", "stool_freq_24h": "≤ 3", "visible_blood": "false"},
        {"days_in_state": "≥ 3", "stool_freq_24h": "> 3", "visible_blood": "recorded"},
        {"days_in_state": "≥ 3", "stool_freq_24h": "recorded", "visible_blood": "true"}]
    # the moves part is in priority order: emergencies (100) first
    moves = [r for r in t.rows if r.section == "move" and r.rule]
    assert moves[0].rule == "toxic_megacolon" and moves[0].priority == 100
    assert [r.priority for r in moves] == sorted((r.priority or 0 for r in moves), reverse=True)
    # the gap that pathway.yaml explains is a row of its own, with the witness input
    gap = [r for r in t.rows if r.branch == "gap"]
    assert len(gap) == 1 and gap[0].cells["days_in_state"] == "3" and gap[0].cells["stool_freq_24h"] == "3"
    assert gap[0].marks[0].code == "PW611" and gap[0].marks[0].level == "explained"
    assert "continue_steroids" in gap[0].marks[0].explained
    assert "Days in this state = 3" in gap[0].note and "Stool frequency in the last 24 hours = 3 /24 h" in gap[0].note
    assert any("[a..b] means from a to b" in n for n in t.notes)
    assert any(n.startswith("Decided at 'Day-3 predictive indices") and "Ho index band on day 3" in n for n in t.notes)


def test_the_day3_assessment_is_a_table_of_its_indices(asuc: CompiledPathway):
    t = decision_table(asuc, "day3_assessment")
    assert (t.kind, t.states) == ("decision point", ("iv_steroids",))
    assert t.title == "Day-3 predictive indices (Oxford, Lindgren, CRP/albumin ratio, Ho)"
    assert {r.rule for r in t.rows} == {r.id for r in asuc.definition.rules if r.decision_point == "day3_assessment"}
    assert t.notes[0] == ("The rules of this decision point fire from day 3 to before day 4 (days counted from the "
                          "first day in 'IV corticosteroids'), in IV corticosteroids; what they derive is kept.")
    window = "≥ 3 and < 4"
    # Oxford (Travis): more than 8 stools, or 3-8 stools with CRP above 45 mg/L
    assert _cells(_rows(t, "oxford_index", "then")) == [
        {"days_in_state": window, "stool_freq_24h": "> 8"},
        {"days_in_state": window, "stool_freq_24h": "[3..8]", "crp_mg_l": "> 45"}]
    assert _cells(_rows(t, "oxford_index", "otherwise")) == [
        {"days_in_state": window, "stool_freq_24h": "< 3", "crp_mg_l": "recorded"},
        {"days_in_state": window, "stool_freq_24h": "≤ 8", "crp_mg_l": "≤ 45"}]
    # Lindgren above 8; CRP/albumin ratio above 0.85 with more than 3 stools; Ho 4 or more
    assert _cells(_rows(t, "lindgren_risk", "then")) == [{"days_in_state": window, "lindgren_index": "> 8"}]
    assert _cells(_rows(t, "car_risk", "then")) == [{"days_in_state": window, "car": "> 0.85", "stool_freq_24h": "> 3"}]
    assert _cells(_rows(t, "ho_high")) == [{"days_in_state": window, "ho_score": "≥ 4"}]
    assert _cells(_rows(t, "ho_intermediate")) == [{"days_in_state": window, "ho_score": "[2..3]"}]
    assert _rows(t, "lindgren_risk", "then")[0].derives == ("Lindgren index risk on day 3 = high",)
    # missing data: the index is 'unknown' and the value is asked for, one row per value
    missing = _rows(t, "lindgren_index", "if missing")
    assert _cells(missing) == [{"days_in_state": window, "stool_freq_24h": "not recorded"},
                               {"days_in_state": window, "crp_mg_l": "not recorded"}]
    assert missing[1].derives == ("Lindgren index risk on day 3 = unknown",)
    assert missing[1].data == ("C-reactive protein (mg/L)",)
    assert [s[0] for s in t.sections()] == ["derive", "missing"]
    doc = json.loads(json.dumps(t.to_dict()))
    assert doc["kind"] == "decision point" and len(doc["rows"]) == len(t.rows)
    assert doc["rows"][1]["cells"] == {"days_in_state": window, "stool_freq_24h": "[3..8]", "crp_mg_l": "> 45"}


def test_truelove_and_witts_rows_one_per_sign(asuc_checked: dict[str, DecisionTable]):
    t = asuc_checked["suspected_asuc"]
    confirmed = _rows(t, "tw_asuc_confirmed", "then")
    assert _cells(confirmed) == [{"bloody_stools_24h": "≥ 6", name: test} for name, test in
                                 (("pulse_bpm", "> 90"), ("temp_c", "> 37.8"), ("hb_g_dl", "< 10.5"), ("esr_mm_h", "> 30"),
                                  ("crp_mg_l", "> 30"))]
    assert confirmed[0].moves == ("IV corticosteroids",) and confirmed[0].priority == 10
    # not met: fewer than 6 bloody stools, or every sign normal with ESR or CRP (the other may be missing)
    assert _cells(_rows(t, "tw_not_met", "then")) == [
        {"bloody_stools_24h": "< 6"},
        {"pulse_bpm": "≤ 90", "temp_c": "≤ 37.8", "hb_g_dl": "≥ 10.5", "esr_mm_h": "≤ 30", "crp_mg_l": "≤ 30 or not recorded"},
        {"pulse_bpm": "≤ 90", "temp_c": "≤ 37.8", "hb_g_dl": "≥ 10.5", "esr_mm_h": "≤ 30 or not recorded", "crp_mg_l": "≤ 30"}]
    # the data requests while a value is missing (while the condition can still hold)
    asks = _rows(t, "tw_asuc_confirmed", "if missing")
    assert _cells(asks) == [{name: "not recorded"} for name in ("bloody_stools_24h", "pulse_bpm", "temp_c", "hb_g_dl",
                                                                  "esr_mm_h", "crp_mg_l")]
    assert asks[0].data == ("Bloody stools in the last 24 hours (/24 h)",)
    assert asks[0].note == asks[1].note == "while its condition can still hold"
    # the ESR-only variant never fires under the default profile: marked, and explained in pathway.yaml
    never = _rows(t, "tw_signs_needed_esr")
    assert len(never) == 1 and never[0].never and never[0].cells == {}
    assert [(m.code, m.level) for m in never[0].marks] == [("PW614", "explained")]


def test_rescue_selection_rows_and_profiles(asuc_checked: dict[str, DecisionTable]):
    t = asuc_checked["rescue_selection"]
    choose = {r.rule: r for r in t.rows if r.rule.startswith("choose_")}
    assert choose["choose_ciclosporin"].cells == {"rescue_choice": "ciclosporin", "ciclosporin_excluded": "false"}
    assert choose["choose_ciclosporin"].moves == ("Rescue with ciclosporin",)
    assert choose["choose_colectomy"].cells == {"rescue_choice": "colectomy"}
    proposal = _rows(t, "no_eligible_rescue")
    assert proposal[0].cells == {"tacrolimus_excluded": "true", "ciclosporin_excluded": "true",
                                 "infliximab_excluded": "true"}
    assert proposal[0].proposals == ("Colectomy (waits for the recorded decision)",) and proposal[0].moves == ()
    # ciclosporin eligibility: one row per hard exclusion; the 'second agent' case does not apply in this state
    excluded = _rows(t, "ciclosporin_eligibility", "then")
    assert _cells(excluded) == [{"creatinine_umol_l": "> 130"}, {"active_serious_infection": "true"},
                                {"bp_uncontrolled": "true"}, {"malignancy_current": "true"}, {"immunodeficiency": "true"}]
    eligible = _rows(t, "ciclosporin_eligibility", "otherwise")
    assert len(eligible) == 1 and eligible[0].cells["cholesterol_mmol_l"] == "recorded"
    assert "option ciclosporin: available, rank 1" in eligible[0].advice
    assert len(_rows(t, "ciclosporin_eligibility", "if missing")) == 7
    hbv = _rows(t, "infliximab_eligibility", "otherwise")
    assert {r.cells["hbv_status"] for r in hbv} == {"neither positive_untreated nor positive_on_antiviral",
                                                   "≠ positive_untreated"}
    second_line = _rows(t, "nice_infliximab_second_line")
    assert second_line[0].never and second_line[0].marks[0].code == "PW614"
    # under the NICE profile the ciclosporin-first rule is live and infliximab comes second
    nice = decision_table(_compiled(profile="nice"), "rescue_selection")
    live = _rows(nice, "nice_infliximab_second_line")
    # while no exclusion of ciclosporin is known: known eligible, or a result it needs still pending
    assert not live[0].never and live[0].cells == {
        "infliximab_excluded": "false", "creatinine_umol_l": "≤ 130 or not recorded",
        "active_serious_infection": "false or not recorded", "bp_uncontrolled": "false or not recorded",
        "malignancy_current": "false or not recorded", "immunodeficiency": "false or not recorded"}
    assert "option infliximab: caution, rank 2" in live[0].advice  # cautioned by the policy (TA163)
    assert "option infliximab: available, rank 2" in _rows(nice, "infliximab_eligibility", "otherwise")[0].advice
    assert any("under profile 'nice'" in n and "Rescue agent policy = ciclosporin_first" in n for n in nice.notes)


def test_parameters_resolved_under_a_profile_or_override_change_the_cells(asuc: CompiledPathway):
    default = decision_table(asuc, "day3_assessment")
    lower4 = decision_table(_compiled(oxford_stool_lower=4, oxford_crp_mg_l=50), "day3_assessment")
    assert _rows(default, "oxford_index", "then")[1].cells["stool_freq_24h"] == "[3..8]"
    changed = _rows(lower4, "oxford_index", "then")[1].cells
    assert changed["stool_freq_24h"] == "[4..8]" and changed["crp_mg_l"] == "> 50"
    assert any("Oxford CRP with 3-8 stools (above) = 50 mg/L" in n for n in lower4.notes)
    # the ESR-only rule of Truelove & Witts replaces the CRP one when CRP may not stand in for ESR
    esr = decision_table(_compiled(tw_use_crp_for_esr=False), "suspected_asuc")
    assert len(_rows(esr, "tw_asuc_confirmed", "then")) == 4
    assert "crp_mg_l" not in _rows(esr, "tw_not_met", "then")[1].cells
    assert not _rows(esr, "tw_signs_needed_esr")[0].never and _rows(esr, "tw_signs_needed")[0].never


# -- every row read back, and every firing covered by a row --------------------------------------------

_COMPARE = {"≥": lambda v, t: v >= t, ">": lambda v, t: v > t, "≤": lambda v, t: v <= t, "<": lambda v, t: v < t,
            "=": lambda v, t: v == t, "≠": lambda v, t: v != t}


def _predicate(cell: str, ftype: str, states: dict[str, str]) -> Callable[[Any], bool]:
    """The cell's test as a predicate on a value (None: not recorded), read from its text alone."""
    def value(text: str) -> Any:
        if ftype in ("number", "integer"):
            return float(text)
        if ftype == "boolean":
            return {"true": True, "false": False}[text]
        return states.get(text, text)

    if cell == "-":
        return lambda v: True
    if cell == "not recorded":
        return lambda v: v is None
    if cell in ("recorded", "known"):
        return lambda v: v is not None
    if cell.endswith(" or not recorded"):
        inner = _predicate(cell[: -len(" or not recorded")], ftype, states)
        return lambda v: v is None or inner(v)
    if " and " in cell:
        parts = [_predicate(p, ftype, states) for p in cell.split(" and ")]
        return lambda v: all(p(v) for p in parts)
    if m := re.fullmatch(r"\[(.+)\.\.(.+)\]", cell):
        lo, hi = float(m.group(1)), float(m.group(2))
        return lambda v: v is not None and lo <= v <= hi
    if m := re.fullmatch(r"(≥|>|≤|<|=|≠) (.+)", cell):
        op, target = _COMPARE[m.group(1)], value(m.group(2))
        return lambda v: v is not None and op(v, target)
    if m := re.fullmatch(r"neither (.+) nor (.+)", cell):
        banned = {value(m.group(1)), value(m.group(2))}
        return lambda v: v is not None and v not in banned
    if " or " in cell:
        allowed = {value(x) for x in cell.split(" or ")}
        return lambda v: v in allowed
    target = value(cell)
    return lambda v: v is not None and v == target


class _Space:
    """Candidate values of every column of a table (boundary values of the thresholds, and missing)."""

    def __init__(self, compiled: CompiledPathway, table: DecisionTable):
        d = compiled.definition
        self.conds = branch_conditions(compiled)
        self.types: dict[str, str] = {}
        self.values: dict[str, list[Any]] = {}
        atoms = [c for r in d.rules if set(r.states) & set(table.states)
                 for cond in self.conds.get(r.id, {}).values() for c in C.fields_of(cond)]
        self.states = {s.title: sid for sid, s in d.spec.states.items()}
        for col in table.columns:
            if col.name in d.spec.derived:
                dd = d.spec.derived[col.name]
                ftype, enum, rng = dd.type, list(dd.values), None
            else:
                f = d.fields[col.name]
                ftype, enum, rng = f.type, list(f.values), f.range
            if ftype == "string" and enum:
                ftype = "enum"
            mine = [a for a in atoms if a.field == col.name]
            self.types[col.name] = ftype
            self.values[col.name] = field_candidates(col.name, ftype, mine, values=enum, value_range=rng) + [None]

    def predicate(self, name: str, cell: str) -> Callable[[Any], bool]:
        return _predicate(cell, self.types[name], self.states)


def _env(table: DecisionTable, values: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in values.items() if v is not None}
    env["state"] = table.states[0]
    return env


@pytest.mark.parametrize("profile", [None, "nice"])
def test_every_row_read_back_fires_its_branch_and_every_firing_has_a_row(profile: str | None):
    """Both directions, for every table of the pathway: a row's cells, read back as an input, make the
    engine's condition of its branch true; and on random inputs around every threshold, each branch
    whose condition is true matches one of its rows (the expansion leaves no alternative out)."""
    compiled = _compiled(profile=profile)
    d = compiled.definition
    rules = {r.id: r for r in d.rules}
    names = frozenset(d.spec.derived)
    rng = random.Random(15)
    keys = {"then": "then", "otherwise": "else", "if missing": "missing"}
    checked = 0
    for table in decision_tables(compiled):
        space = _Space(compiled, table)
        labels = {c.name: c.label for c in table.columns}
        kinds = {c.name: c.kind for c in table.columns}
        by_branch: dict[tuple[str, str], list[Row]] = {}
        for row in table.rows:
            if not row.rule or row.never:
                continue
            assert not row.note.startswith("condition with too many"), row.rule
            by_branch.setdefault((row.rule, keys[row.branch]), []).append(row)
            chosen = {}
            for name, cell in row.cells.items():
                test = space.predicate(name, cell)
                fits = [v for v in space.values[name] if test(v)]
                assert fits, f"{table.id} {row.rule} {row.label}: no value passes {name} {cell!r}"
                chosen[name] = fits[0]
            env = _env(table, chosen)
            rule = rules[row.rule]
            if row.branch == "if missing" and "missing" not in space.conds[row.rule]:
                # a rule that waits: on some input matching the row, it is due, takes no branch and lists the value
                assert truth(rule.due, env) is True
                fitting = {n: [v for v in vs if space.predicate(n, row.cell(n))(v)] for n, vs in space.values.items()}
                # (random inputs: a rule with many guards may wait on about 1 input in 300)
                for _ in range(4000):
                    trial = {n: rng.choice(vs) for n, vs in fitting.items()}
                    trial_env = _env(table, trial)
                    if (not any(truth(c, trial_env) is True for c in space.conds[row.rule].values())
                            and row.data[0] in {labels[n] for n in waiting_for(rule, trial_env, names) if n in labels}):
                        break
                else:
                    pytest.fail(f"{table.id} {row.rule} {row.label}: no input matching the row asks for {row.data[0]}")
            else:
                assert truth(space.conds[row.rule][keys[row.branch]], env) is True, (table.id, row.rule, row.label, env)
            checked += 1
        # the other way: random inputs
        for _ in range(150):
            values = {n: rng.choice(vs) for n, vs in space.values.items()}
            env = _env(table, values)
            for (rid, branch), rows in by_branch.items():
                if branch == "missing" or truth(space.conds[rid][branch], env) is not True:
                    continue
                assert any(all(space.predicate(n, c)(values.get(n)) for n, c in r.cells.items()) for r in rows), \
                    (table.id, rid, branch, {k: v for k, v in values.items() if v is not None})
            for rid in {r for r, _ in by_branch}:
                rule = rules[rid]
                if any(truth(c, env) is True for c in space.conds[rid].values()) or truth(rule.due, env) is not True:
                    continue
                waiting = by_branch.get((rid, "missing"), [])
                for name in waiting_for(rule, env, names):
                    if kinds.get(name) != "input":
                        continue  # the clock is never asked for (a day since a state never entered has no value)
                    assert any(r.data[0] == labels[name] and all(space.predicate(n, c)(values.get(n))
                                                                 for n, c in r.cells.items()) for r in waiting), \
                        (table.id, rid, name, {k: v for k, v in values.items() if v is not None})
    assert checked > 500


# -- at least N of: one row per choice -----------------------------------------------------------------

_COUNT_RULES = """\
title: at_least in a table
rules:
  - id: flare_severity
    title: Severe flare when two of three signs hold
    in: assessment
    when:
      at_least:
        n: 2
        of:
          - crp_mg_l: {gt: $crp_limit_mg_l}
          - stool_freq_24h: {gte: 6}
          - visible_blood: true
    then:
      - derive: {severe_flare: true}
    otherwise:
      - derive: {severe_flare: false}
    evidence: {sources: [Guide-2020], strength: G, status: verified}
  - id: start_treatment
    title: Severe flare or perforation
    in: assessment
    when: {any: [{severe_flare: true}, {perforation: true}]}
    then:
      - transition: treatment
    evidence: {sources: [Guide-2020], strength: G, status: verified}
"""


def test_at_least_n_of_is_one_row_per_choice(tmp_path: Path):
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    (root / "rules.yaml").write_text(_COUNT_RULES, encoding="utf-8")
    t = decision_table(_compiled(root), "assessment")
    assert _cells(_rows(t, "flare_severity", "then")) == [
        {"crp_mg_l": "> 30", "stool_freq_24h": "≥ 6"}, {"crp_mg_l": "> 30", "visible_blood": "true"},
        {"stool_freq_24h": "≥ 6", "visible_blood": "true"}]
    # not severe: at least 2 of the 3 signs definitely absent
    assert _cells(_rows(t, "flare_severity", "otherwise")) == [
        {"crp_mg_l": "≤ 30", "stool_freq_24h": "< 6"}, {"crp_mg_l": "≤ 30", "visible_blood": "false"},
        {"stool_freq_24h": "< 6", "visible_blood": "false"}]
    assert [r.label for r in _rows(t, "start_treatment")] == ["then 1/2", "then 2/2"]
    assert any(n.startswith("A rule whose condition has alternatives (any of, at least N of") for n in t.notes)
    for up in (_compiled(root, crp_limit_mg_l=45),):
        assert _rows(decision_table(up, "assessment"), "flare_severity", "then")[0].cells["crp_mg_l"] == "> 45"


# -- findings of pathway check on the rows ------------------------------------------------------------

def test_an_overlap_marks_both_rows_and_the_command_exits_1(capsys):
    folder = FIXTURES / "overlap"
    t = decision_table(_compiled(folder), "treat", checks=check_pathway(folder))
    low, raised = _rows(t, "low_level")[0], _rows(t, "raised_level")[0]
    assert low.cells == {"level": "≤ 10"} and raised.cells == {"level": "≥ 5"}
    for row, other in ((low, "raised_level"), (raised, "low_level")):
        assert [(m.code, m.level) for m in row.marks] == [("PW610", "error")]
        assert f"overlap with {other}" in row.marks[0].text and "e.g. on Level = 5 mg/L" in row.marks[0].text
    assert main(["table", str(folder), "--state", "treat"]) == 1
    out = capsys.readouterr().out
    assert "overlap with raised_level" in out and "[PW610]" in out
    assert main(["table", str(folder), "--state", "treat", "--no-checks"]) == 0
    out = capsys.readouterr().out
    assert "[PW610]" not in out and "The findings of pathway check were not computed for this table." in out


def test_a_gap_is_a_row_with_its_witness_input(capsys):
    folder = FIXTURES / "gap"
    t = decision_table(_compiled(folder), "treat", checks=check_pathway(folder))
    rows = [r for r in t.rows if r.section == "move"]
    assert [(r.rule, r.cells) for r in rows] == [("low_level", {"level": "≤ 10"}), ("high_level", {"level": "> 20"}),
                                                ("", {"level": "11"})]
    gap = rows[-1]
    assert gap.branch == "gap" and gap.moves == ("none: stays in Treatment",)
    assert [(m.code, m.level) for m in gap.marks] == [("PW611", "warning")]
    assert gap.note == "witness input: Level = 11 mg/L"
    assert main(["table", str(folder), "--state", "treat", "--format", "markdown"]) == 0  # a warning: exit 0
    out = capsys.readouterr().out
    assert "| (gap) |   | gap | 11 | none: stays in Treatment |" in out


def test_shadowed_and_dead_branches_are_marked():
    shadowed = decision_table(_compiled(FIXTURES / "shadowed"), "treat", checks=check_pathway(FIXTURES / "shadowed"))
    low = _rows(shadowed, "low_level")[0]
    assert [m.code for m in low.marks] == ["PW612"] and "escalate moves the patient first" in low.marks[0].text
    dead = decision_table(_compiled(FIXTURES / "never_fires"), "treat", checks=check_pathway(FIXTURES / "never_fires"))
    row = _rows(dead, "impossible_alert")[0]
    assert [m.code for m in row.marks] == ["PW614"] and row.marks[0].text == "this branch never fires"
    assert all(not r.marks for r in dead.rows if r.rule != "impossible_alert")


# -- formats ---------------------------------------------------------------------------------------

def _pipes(line: str) -> int:
    """Markdown table cell boundaries: '|' not escaped by a backslash."""
    return len(re.findall(r"(?<!\\)\|", line.replace("\\\\", "")))


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.bad: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag in ("script", "img", "iframe") or any(k.startswith("on") for k, _ in attrs):
            self.bad.append(tag)
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_text_markdown_csv_and_html_show_the_same_rows(asuc_checked: dict[str, DecisionTable]):
    tables = [asuc_checked["iv_steroids"], asuc_checked["rescue_selection"]]
    rows = sum(len(x.rows) for x in tables)
    # CSV: one header and one line per row, the inputs headed by title and unit
    parsed = list(csv.reader(io.StringIO(tables_csv(tables))))
    header, body = parsed[0], parsed[1:]
    assert len(body) == rows and all(len(line) == len(header) for line in body)
    col = {name: i for i, name in enumerate(header)}
    assert "C-reactive protein (mg/L)" in col and "Move to" in col and "Checks" in col
    failure = [line for line in body if line[col["Rule"]] == "steroid_failure_day3"]
    assert [line[col["Alternative"]] for line in failure] == ["1/4", "2/4", "3/4", "4/4"]
    assert failure[0][col["Days in this state"]] == "≥ 3" and failure[0][col["Move to"]] == "Rescue therapy selection"
    assert failure[0][col["C-reactive protein (mg/L)"]] == "-"
    selection = [line for line in body if line[col["Table"]] == "rescue_selection"]
    assert all(line[col["Erythrocyte sedimentation rate (mm/h)"]] == "" for line in selection)  # not an input of that table
    assert {line[col["Part"]] for line in body} == {"Moves and proposals", "Facts derived", "Advice, alerts and options",
                                                    "Missing data"}
    # text: a grid per part, every line of a grid as wide as its border
    text = tables_text(tables)
    assert text.count("Decision table: ") == 2 and "Hit policy: Every rule whose row matches fires" in text
    widths: list[int] = []
    for line in text.splitlines():
        if line.startswith("+"):
            widths.append(len(line))
        elif line.startswith("|"):
            assert len(line) == widths[-1], line
    assert "| steroid_failure_day3" in text and "≥ 3" in text
    # Markdown: a table per part, as many cells in every row as in its header
    md = tables_markdown(tables)
    assert md.count("### Moves and proposals") == 2 and md.startswith("# Decision tables: asuc 0.1.0, profile default")
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| Rule |"):
            k = i + 2
            while k < len(lines) and lines[k].startswith("|"):
                assert _pipes(lines[k]) == _pipes(line), lines[k][:120]
                k += 1
    # HTML: one table per part, the same cells
    page = _Html()
    page.feed(tables_html_page(tables))
    assert page.tags["table"] == sum(len(x.sections()) for x in tables) and not page.bad
    assert page.tags["tr"] == rows + page.tags["table"]  # a header row per table
    assert "Rescue therapy selection" in page.cells and "≥ 3" in page.cells
    # the four alternatives of the day-3 failure share one cell for each output, title and rule
    html = tables_html(tables)
    assert '<td class="dt-out dt-first-out" rowspan=4>Rescue therapy selection</td>' in html
    assert '<td class="dt-rule" rowspan=4><code>steroid_failure_day3</code></td>' in html


_HOSTILE = '=HYPERLINK("http://evil.example") | <script>alert(1)</script> *x* [a](javascript:b)\n| forged | row |'


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_hostile_titles_are_inert_in_every_format(tmp_path: Path):
    folder = tmp_path / "gap"
    shutil.copytree(FIXTURES / "gap", folder)
    _edit(folder / "fields.yaml", lambda d: d["fields"]["level"].update(title="@SUM(A1) <b>Level</b> |"))
    _edit(folder / "rules.yaml", lambda d: d["rules"][2].update(title=_HOSTILE))
    _edit(folder / "pathway.yaml", lambda d: d["states"]["out"].update(title="+1 -> <i>out</i>"))
    tables = decision_tables(_compiled(folder), ["treat"], checks=check_pathway(folder))
    row = _rows(tables[0], "high_level")[0]
    assert row.title == _HOSTILE and row.moves == ("+1 -> <i>out</i>",)
    # CSV: no cell a spreadsheet would run; the values kept after the quote
    parsed = list(csv.reader(io.StringIO(tables_csv(tables))))
    assert all(not cell.startswith(("=", "+", "@")) and (cell == "-" or not cell.startswith("-"))
               for line in parsed for cell in line)
    cells = {c for line in parsed for c in line}
    assert "'@SUM(A1) <b>Level</b> | (mg/L)" in cells and "'+1 -> <i>out</i>" in cells
    assert "'" + _HOSTILE.replace("\n", " ") in cells
    assert len(parsed) == 1 + len(tables[0].rows) and len({len(line) for line in parsed}) == 1
    # Markdown: the title is one escaped cell
    md = tables_markdown(tables)
    assert "<script>" not in md and "<b>" not in md and "\\| forged \\| row \\|" in md
    lines = md.splitlines()
    head = next(line for line in lines if line.startswith("| Rule |") and "Checks" in line)
    hostile_line = next(line for line in lines if line.startswith("| high_level |"))
    assert _pipes(hostile_line) == _pipes(head) == 8
    # HTML: text, not elements
    page = _Html()
    page.feed(tables_html_page(tables))
    assert not page.bad and page.tags["b"] == 1 and "i" not in page.tags  # <b>Hit policy.</b> alone
    assert any(_HOSTILE.replace("\n", " ") in c for c in page.cells)
    # text: one line
    text = tables_text(tables)
    assert "\n| forged | row |" not in text and "forged" in text


# -- the command and the report ----------------------------------------------------------------------

def test_the_command_writes_every_format_and_refuses_an_unknown_state(tmp_path: Path, capsys):
    for fmt, check in (("text", "Decision table: IV corticosteroids (state iv_steroids)"),
                       ("markdown", "## IV corticosteroids (state iv_steroids)"),
                       ("csv", "Table,Part,Rule,Priority,Branch,Alternative,Days in this state"),
                       ("html", '<section class="dt-table" id="dt-iv_steroids">')):
        out = tmp_path / f"iv.{fmt}"
        assert main(["table", "asuc", "--state", "iv_steroids", "--format", fmt, "-o", str(out), "--no-checks"]) == 0
        assert check in out.read_text(encoding="utf-8")
        assert capsys.readouterr().out.startswith("wrote ")
    assert main(["table", "asuc", "--state", "iv_steroid", "--no-checks"]) == 2
    err = capsys.readouterr().err
    assert err == ("--state: 'iv_steroid' is not a state or decision point of pathway 'asuc' (did you mean "
                   "'iv_steroids'?) [PW201]\n")
    assert main(["table", "asuc", "--state", "rescue_selection", "--profile", "nowhere"]) == 2
    with pytest.raises(InputError):
        decision_tables(_compiled(), ["nowhere"])


def test_without_a_state_every_decision_state_has_a_table(asuc_checked: dict[str, DecisionTable], asuc: CompiledPathway):
    d = asuc.definition
    expected = [s for s in d.spec.states if d.rules_in(s)]
    # a terminal state has a table when a rule applies there (supportive care once colectomy is decided, §2;
    # what is recorded after the discharge)
    assert list(asuc_checked) == expected and "colectomy" in asuc_checked and "discharged" in asuc_checked
    for t in asuc_checked.values():
        assert t.checked and {r.rule for r in t.rows if r.rule} == {r.id for r in d.rules_in(t.id)}
        for r in t.rows:  # no parameter name or operator in a cell
            assert all("$" not in c and not re.search(r"\b(gte|lte|gt|lt|not_in|eq|ne)\b", c) for c in r.cells.values())
    assert {r.rule for r in asuc_checked["colectomy"].rows if r.rule} == {
        "vte_prophylaxis", "vte_prophylaxis_with_massive_haemorrhage", "hypokalaemia", "hyperkalaemia",
        "hyperkalaemia_severe", "potassium_not_rechecked", "hypomagnesaemia", "transfusion_threshold", "cdiff_positive",
        "emergency_colectomy_reminder",
        # a calcineurin inhibitor stopped before the operation: its toxicity outlasts the stop
        "tac_toxic_trough_after_stop", "tac_renal_after_stop", "csa_renal_after_stop"}
    assert {r.rule for r in asuc_checked["discharged"].rows if r.rule} == {
        "emergency_after_discharge", "dilated_colon_after_discharge", "deterioration_after_discharge",
        "deterioration_after_discharge_not_reassessed", "ifx_infusions_beside_emergency_after_discharge",
        "discharged_before_the_criterion",
        "discharged_without_the_criterion", "response_not_held_after_discharge", "discharged_before_tpmt",
        "thiopurine_avoid_absent_tpmt",
        "cdiff_positive_after_discharge", "cmv_positive_after_discharge", "ifx_infection", "ifx_contraindication_found",
        "ifx_heart_failure_found", "ifx_demyelination_found",
        "ifx_hbv_dna_needed",
        # the thiopurine maintenance goes on at home: its dose by TPMT, once TPMT is known (a result back in clinic)
        "thiopurine_dose", "thiopurine_dose_low_tpmt",
        # the calcineurin-inhibitor checks go on while the drug may be given at home
        "csa_adverse_effects", "csa_infection", "csa_creatinine_rise", "cni_hyperkalaemia", "csa_beyond_six_months",
        "csa_neurotoxicity", "tac_trough_toxic", "tac_creatinine_rise", "tac_creatinine_high", "tac_hypomagnesaemia",
        "tac_hyperglycaemia", "tac_infection", "tac_beyond_six_months",
        # and the bridge's own checks and its stop: blood pressure, tremor or headache, an overdue trough, the
        # 5-10 ng/mL target, the ciclosporin monitoring reminder and the plan to stop it from about 12 weeks
        "tac_hypertension", "tac_tremor_or_headache", "tac_trough_overdue", "tac_target_lowered",
        "csa_oral_monitoring", "csa_stop_plan", "tac_stop_plan",
        # a bridge with no trough ever recorded: the first trough is asked for at a clinic visit; a toxic trough, or a
        # high one with a raised creatinine, never rechecked stays critical there
        "tac_first_trough_due", "tac_toxic_trough_not_rechecked", "tac_renal_withhold_not_rechecked",
        # a raised creatinine (and on ciclosporin a low magnesium or an uncontrolled blood pressure) never rechecked
        "tac_creatinine_not_rechecked", "csa_toxicity_not_rechecked",
        # a calcineurin inhibitor recorded stopped before about 12 weeks: an informational note; tacrolimus toxicity
        # after the stop, and a high potassium whatever the drug
        "csa_stopped_before_bridge", "tac_stopped_before_bridge", "tac_toxic_trough_after_stop", "tac_renal_after_stop",
        "csa_renal_after_stop",
        "hyperkalaemia", "hyperkalaemia_severe", "hypokalaemia",
        # tacrolimus titrated at clinic visits (a bridge to the thiopurine), infliximab infusions still due
        "tac_trough_low", "tac_trough_far_below", "tac_trough_undetectable", "tac_trough_high", "tac_trough_in_range",
        "tac_restart_after_toxic_trough", "tac_maint_trough_low", "tac_maint_trough_high",
        "tac_maint_restart_after_toxic_trough", "tac_trough_before_dose_change", "tac_dose_outside_range",
        "tac_dose_with_trough_needed", "tac_trough_before_steady_state",
        "infliximab_maintenance",
        "infliximab_every_8_weeks",
        # a new weight far from the previous one, while the infliximab infusions go on at home
        "weight_change_to_confirm",
        "tac_high_trough_creatinine", "tac_low_trough_after_creatinine_raised",
        "latent_tb_result_contradicted", "hbv_result_contradicted"}


def test_a_state_where_no_rule_applies_has_an_empty_table(rules_copy: Path):
    moved = 0
    for path in sorted(rules_copy.glob("*.yaml")):  # every rule of 'discharged' to another state
        text = path.read_text(encoding="utf-8")
        n = text.count("    in: discharged\n") + text.count(", discharged]")
        if n:
            moved += n
            path.write_text(text.replace("    in: discharged\n", "    in: colectomy\n").replace(", discharged]", "]"),
                            encoding="utf-8")
    assert moved >= 3
    terminal = decision_table(compile_pathway(load_definition(rules_copy)), "discharged")
    assert terminal.rows == () and terminal.notes[0] == "No rule fires here."


def test_the_report_has_a_decision_table_per_state(tmp_path: Path):
    from pathway.audit.report import build_report

    folder = tmp_path / "overlap"
    shutil.copytree(FIXTURES / "overlap", folder)
    html, problems = build_report(folder, scenario_dir=tmp_path / "none")
    assert problems == 1
    assert '<h2 id="decision-tables">Decision tables</h2>' in html
    assert html.count('<section class="dt-table"') == 2  # start and treat
    assert '<a href="#rule-low_level"><code>low_level</code></a>' in html
    assert 'class="dt-mark dt-mark-error">PW610</span>' in html
    assert html.index('id="rules"') < html.index('id="decision-tables"') < html.index('id="scenarios"')
    assert ".dt-table" in html[: html.index("</style>")]
    plain = re.sub(r'<a href="#rule-\w+">(<code>\w+</code>)</a>', r"\1", html)
    # the report prints each state's decisions: the rows that move or propose, and the columns they test
    from pathway.audit.report import _decisions_only

    full = decision_tables(_compiled(folder), checks=check_pathway(folder))
    assert tables_html([_decisions_only(t) for t in full]) in plain
    assert all(r.section == "move" for t in full for r in _decisions_only(t).rows)
