"""Three-valued (Kleene) rule semantics: a rule decides on what is known, and asks only for what
can still change its answer. The engine (durable_rules) and the Python evaluator agree."""

from __future__ import annotations

import random

import pytest
from cases import patient

from pathway import load_pathway
from pathway.analysis.check import StateSpace
from pathway.analysis.evaluate import branch_conditions, evaluate_state
from pathway.definition import conditions as C
from pathway.definition.waiting import relevant_unknowns

TEN_THOUSAND = 10_000


def test_engine_and_evaluator_agree_on_ten_thousand_snapshots_with_missing_values(pw):
    """Random snapshots from every state's boundary space, each field missing half the time and,
    after a decision window, random kept facts: the same rules fire in the same branch, the same
    facts are derived and waiting rules list the same missing values."""
    conds = branch_conditions(pw.compiled)
    rng = random.Random(20261201)
    spaces = {}
    for state in pw.definition.spec.states:
        space = StateSpace(pw.compiled, state, conditions=conds)
        names = sorted({n for r in space.rules for n in space.inputs[r.id]})
        if names:
            spaces[state] = (space, names)
    compared = refused = missing_seen = frozen_seen = 0
    states = sorted(spaces)
    while compared + refused < TEN_THOUSAND:
        state = states[(compared + refused) % len(states)]
        space, names = spaces[state]
        time = rng.choice(space.times)
        facts = dict(time)
        for n in names:
            facts[n] = rng.choice(space.candidates(n, complete=rng.random() < 0.3))
        # after a decision window, the kept facts are given (or absent: no evaluation in the window)
        frozen = {n: v for n in space.kept_at(time) if (v := rng.choice(space.candidates(n, complete=False))) is not None}
        frozen_seen += bool(frozen)
        mine = evaluate_state(pw.compiled, state, facts, conditions=conds, frozen=frozen)
        snapshot = {k: v for k, v in facts.items() if v is not None}
        snapshot["state"] = state
        try:
            firings, derived = pw.engine.evaluate(state, snapshot, frozen)
        except Exception:  # noqa: BLE001 - the engine refuses conflicting derivations
            assert mine.conflicts, (state, facts)
            refused += 1
            continue
        assert sorted((f.rule, f.branch) for f in firings) == sorted(mine.fired.items()), (state, facts)
        assert derived == mine.derived, (state, facts)
        waiting = {f.rule: f.missing for f in firings if f.branch == "missing"}
        assert waiting == mine.waiting, (state, facts)
        missing_seen += len(waiting)
        compared += 1
    assert compared > 9_000 and missing_seen > 1_000 and frozen_seen > 200


def test_relevant_unknowns_are_the_values_that_can_still_decide():
    a, b, c = (C.Cmp(n, "gt", 1) for n in "abc")
    assert relevant_unknowns(C.Or((a, b)), {"a": 2}) == []  # already true
    assert relevant_unknowns(C.And((a, b)), {"a": 0}) == []  # already false
    assert relevant_unknowns(C.And((a, C.Or((b, c)))), {"a": 2}) == ["b", "c"]
    assert relevant_unknowns(C.And((a, C.Or((b, c)))), {"a": 2, "b": 0}) == ["c"]
    assert relevant_unknowns(C.Or((C.And((a, b)), c)), {"a": 0}) == ["c"]  # a and b is already false


# -- on the shipped pathway: decisions on what is known ----------------------------------------

def _day3(pw, **day3):
    s = pw.start(patient())
    s.observe({"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "crp_mg_l": 60})
    return s.observe({"day": 3, **day3})


def test_more_than_eight_stools_on_day_3_is_oxford_positive_without_a_crp(pw):
    # Travis: > 8 stools on day 3, or 3-8 with CRP > 45; the first alone is enough
    r = _day3(pw, stool_freq_24h=12, visible_blood=True)
    assert r["derived"]["oxford_high_risk"] is True
    assert r["state"] == "rescue_selection"


def test_three_to_eight_stools_without_a_crp_asks_for_the_crp(pw):
    r = _day3(pw, stool_freq_24h=5, visible_blood=True)
    assert r["state"] == "iv_steroids"
    need = {d["field"]: d["rules"] for d in r["data_required"]}
    assert "oxford_index" in need["crp_mg_l"]


def test_a_known_contraindication_excludes_while_unrelated_screening_is_missing(pw):
    # creatinine 190 excludes ciclosporin whatever the cholesterol, Mg, BP and infection status
    s = pw.start(patient())
    s.observe({"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "crp_mg_l": 60})
    r = s.observe({"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80, "creatinine_umol_l": 190})
    assert r["state"] == "rescue_selection"
    assert r["derived"]["ciclosporin_excluded"] is True
    need = {d["field"]: d["rules"] for d in r["data_required"]}
    # nothing more is asked for ciclosporin: its answer cannot change
    assert not any("ciclosporin_eligibility" in rules for rules in need.values())


def test_eligibility_still_needs_every_item_known_to_be_fine(pw):
    s = pw.start(patient())
    s.observe({"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "crp_mg_l": 60})
    r = s.observe({"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80, "creatinine_umol_l": 70})
    assert "ciclosporin_excluded" not in r["derived"]
    need = {d["field"] for d in r["data_required"] if "ciclosporin_eligibility" in d["rules"]}
    assert need == {"cholesterol_mmol_l", "magnesium_mmol_l", "active_serious_infection", "bp_uncontrolled"}


@pytest.mark.parametrize("text_field", ["crp_mg_l"])
def test_a_value_a_text_names_but_that_is_not_recorded_reads_not_recorded(pw, text_field):
    r = _day3(pw, stool_freq_24h=12, visible_blood=True)
    text = next(rec["text"] for rec in r["recommendations"] if rec["rule"] == "steroid_failure_day3")
    assert "CRP not recorded" in text and "{" not in text


def test_the_cache_free_pathway_gives_the_same_answers(pw):
    fresh = load_pathway("asuc", cache=False)
    case = {"patient": patient(), "events": [{"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100},
                                              {"day": 3, "stool_freq_24h": 12, "visible_blood": True}]}
    got, shared = fresh.run_case(case), pw.run_case(case)
    assert got == shared, _first_difference(got, shared)


def _first_difference(a: object, b: object, path: str = "") -> str:
    """Where two results first differ, and how (a failure names the value, not a truncated repr)."""
    if type(a) is not type(b):
        return f"{path or 'result'}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'the cache-free result' if key in a else 'the shared one'}"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} != {b!r}"


def _candidates(cmp: C.Cmp) -> list[object]:
    """Values that put ``cmp`` on each side of its test, a missing value, and one of another type."""
    value = cmp.value
    out: list[object] = [None, "other"]
    if isinstance(value, bool) or cmp.op == "present":
        out += [True, False]
    elif isinstance(value, (int, float)):
        out += [value - 1, value, value + 0.5]
    elif isinstance(value, (list, tuple)):
        out += list(value)[:3]
    else:
        out.append(value)
    return out


def test_the_compiled_conditions_give_what_the_walk_gives_on_every_condition_of_the_pathway(pw):
    """``conditions.evaluate`` runs each condition compiled to closures (an ``all`` stops at a false item, an
    ``any`` at a true one): the same three values as walking it, on 40 random fact sets per condition."""
    d = pw.definition
    conds = [c for r in d.rules for c in (r.when, r.due)] + [comp.when for comp in d.computed.values()]
    rng = random.Random(7)
    checked = 0
    for cond in conds:
        tests = C.fields_of(cond)
        for _ in range(40):
            facts: dict[str, object] = {}
            for cmp in tests:
                facts[cmp.field] = rng.choice(_candidates(cmp))
            try:
                walked = C._interpreted(cond, facts)
            except TypeError:
                continue  # a value of another type that does not compare: refused at input, never seen here
            assert C.evaluate(cond, facts) is walked, (cond, facts)
            checked += 1
    assert checked > 10_000
