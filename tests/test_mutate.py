"""Threshold mutation testing: a parameter nudged one step or a comparison's strictness flipped
changes what the engine does, and ``pathway test --mutate`` reports the mutants no scenario notices."""

from __future__ import annotations

import json
import textwrap

import pytest

from pathway import DefinitionError
from pathway.authoring.mutate import decision_parameters, mutants, run_mutation
from pathway.cli.main import main
from pathway.definition.mutation import Mutation, nudge, step_of
from pathway.loading.loader import load_definition
from pathway.runtime.api import Pathway

ADMISSION = {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60,
             "albumin_g_l": 32}


def _oxford(definition, stools: int, crp: float) -> bool | None:
    """The day-3 Oxford index for a patient with ``stools`` and ``crp`` on day 3."""
    session, _ = Pathway(definition).run_course({"patient": {"id": "m", "weight_kg": 70}, "events": [
        ADMISSION, {"day": 3, "stool_freq_24h": stools, "visible_blood": True, "crp_mg_l": crp, "albumin_g_l": 30}]})
    return session.result()["derived"].get("oxford_high_risk")


@pytest.mark.parametrize(("value", "down", "up"), [
    (45, 44, 46), (37.8, 37.7, 37.9), (0.05, 0.04, 0.06), (3.0, 2.9, 3.1), (0.85, 0.84, 0.86), (1.0, 0.9, 1.1),
    (12.5, 12.4, 12.6),
])
def test_one_step_is_one_unit_of_the_last_written_digit(value, down, up) -> None:
    assert (nudge(value, -1), nudge(value, +1)) == (down, up)
    assert isinstance(step_of(45), int) and step_of(0.05) == 0.01


def test_a_parameter_mutant_moves_the_threshold_and_the_engine_follows() -> None:
    base = load_definition("asuc")
    up = load_definition("asuc", mutation=Mutation("parameter", parameter="oxford_crp_mg_l", direction=+1))
    down = load_definition("asuc", mutation=Mutation("parameter", parameter="oxford_crp_mg_l", direction=-1))
    assert (base.params["oxford_crp_mg_l"], up.params["oxford_crp_mg_l"], down.params["oxford_crp_mg_l"]) == (45, 46, 44)
    # Travis: 3-8 stools and CRP > 45 on day 3 (asuc-evidence §4.2)
    assert _oxford(base, 5, 46) is True and _oxford(base, 5, 45) is False
    assert _oxford(up, 5, 46) is False
    assert _oxford(down, 5, 45) is True
    # a value the caller pins (a scenario's own parameters) is left as pinned
    pinned = load_definition("asuc", {"oxford_crp_mg_l": 50},
                             mutation=Mutation("parameter", parameter="oxford_crp_mg_l", direction=+1))
    assert pinned.params["oxford_crp_mg_l"] == 50


def test_an_operator_mutant_flips_only_the_comparison_at_its_site() -> None:
    base = load_definition("asuc")
    site = next(s for s in base.sites if s.field == "crp_mg_l" and s.param == "oxford_crp_mg_l")
    assert site.file.endswith("steroids.yaml") and site.op == "gt"
    flipped = load_definition("asuc", mutation=Mutation("operator", site=site))
    assert _oxford(flipped, 5, 45) is True      # CRP >= 45 now counts
    assert _oxford(flipped, 5, 44) is False
    # the other comparisons with CRP are untouched: Truelove & Witts still needs CRP > 30
    tw = next(s for s in base.sites if s.param == "tw_crp_mg_l")
    assert any(s.where == tw.where and s.op == tw.op for s in flipped.sites)


def test_at_least_n_flipped_means_more_than_n() -> None:
    base = load_definition("asuc")
    site = next(s for s in base.sites if s.param == "jalan_min_signs")
    assert site.op == "gte"
    flipped = Pathway(load_definition("asuc", mutation=Mutation("operator", site=site)))
    # dilatation plus exactly three Jalan signs (temperature > 38, pulse > 120, Hb < 10.5) and dehydration is
    # toxic megacolon (Jalan: three of the four, and one of the others)
    course = {"patient": {"id": "j", "weight_kg": 70}, "events": [
        ADMISSION, {"day": 1, "transverse_colon_cm": 6.5, "temp_c": 38.5, "pulse_bpm": 130, "hb_g_dl": 9.5,
                                    "dehydration": True}]}
    base_result = Pathway(base).run_course(course)[0].result()
    mutant_result = flipped.run_course(course)[0].result()
    assert base_result["state"] == "colectomy"
    assert mutant_result["state"] != "colectomy"


def test_a_mutant_the_loader_rejects_is_refused_not_survived() -> None:
    # a nudged parameter that breaks a consistency check of the loader never reaches a patient
    definition = load_definition("asuc")
    with pytest.raises(DefinitionError):
        load_definition("asuc", mutation=Mutation("parameter", parameter="assessment_day", direction=+1),
                        overrides={"assessment_window_end_day": 3})
    assert "oxford_crp_mg_l" in decision_parameters(definition)
    assert "tac_start_mg_kg_day" not in decision_parameters(definition)   # a dose, not a threshold
    kinds = {m.kind for m in mutants(definition)}
    assert kinds == {"parameter", "operator"}
    assert not any(m.site and m.site.file.endswith("invariants.yaml") for m in mutants(definition))


SCENARIO = """\
scenarios:
- id: oxford-positive-on-crp
  purpose: 5 stools and CRP 60 on day 3 is Oxford-positive (3-8 stools and CRP > 45; Travis, §4.2)
  case:
    patient: {{id: o, weight_kg: 70}}
    events:
    - {admission}
    - {{day: 3, stool_freq_24h: 5, visible_blood: true, crp_mg_l: 60, albumin_g_l: 30}}
  expect:
    derived: {{oxford_high_risk: true}}
"""

BOUNDARIES = """\
- id: oxford-crp-at-the-threshold-is-negative
  purpose: CRP exactly 45 is not above 45 (Travis, §4.2)
  case:
    patient: {{id: o, weight_kg: 70}}
    events:
    - {admission}
    - {{day: 3, stool_freq_24h: 5, visible_blood: true, crp_mg_l: 45, albumin_g_l: 30}}
  expect:
    derived: {{oxford_high_risk: false}}
- id: oxford-crp-one-above-the-threshold-is-positive
  purpose: CRP 46 is above 45 (Travis, §4.2)
  case:
    patient: {{id: o, weight_kg: 70}}
    events:
    - {admission}
    - {{day: 3, stool_freq_24h: 5, visible_blood: true, crp_mg_l: 46, albumin_g_l: 30}}
  expect:
    derived: {{oxford_high_risk: true}}
"""


def test_survivors_are_listed_until_boundary_scenarios_pin_the_threshold(tmp_path, capsys) -> None:
    admission = json.dumps(ADMISSION).replace('"', "")
    scenarios = tmp_path / "oxford.yaml"
    scenarios.write_text(SCENARIO.format(admission=admission), encoding="utf-8")
    report = run_mutation("asuc", [scenarios], parameters=["oxford_crp_mg_l"], jobs=1)
    # CRP 60 is far from 45: moving the threshold either way, or flipping > to >=, goes unnoticed
    assert [o.status for o in report.outcomes] == ["survived"] * 3
    assert {o.description for o in report.survivors} >= {"$oxford_crp_mg_l 45 -> 46", "$oxford_crp_mg_l 45 -> 44"}

    scenarios.write_text(SCENARIO.format(admission=admission) + BOUNDARIES.format(admission=admission), encoding="utf-8")
    code = main(["test", "asuc", str(scenarios), "--mutate", "--param", "oxford_crp_mg_l", "--jobs", "1",
                 "--json", str(tmp_path / "m.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 mutants, 3 killed by a scenario" in out
    doc = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert doc["survived"] == 0 and doc["decision_parameter_survivors"] == 0
    killers = {o["mutation"]: o["by"].split(" ")[0] for o in doc["outcomes"]}
    assert killers["$oxford_crp_mg_l 45 -> 46"] == "oxford-crp-one-above-the-threshold-is-positive"
    assert killers["$oxford_crp_mg_l 45 -> 44"] == "oxford-crp-at-the-threshold-is-negative"


def test_mutation_needs_a_passing_library(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""\
        scenarios:
        - id: wrong
          purpose: deliberately wrong expectation
          case:
            patient: {id: o, weight_kg: 70}
            events: [{day: 0, bloody_stools_24h: 2}]
          expect: {state: colectomy}
        """), encoding="utf-8")
    assert main(["test", "asuc", str(bad), "--mutate", "--jobs", "1"]) == 1
    assert "must pass before mutation testing" in capsys.readouterr().err


def test_a_survivor_can_be_explained_in_pathway_yaml_and_is_then_not_a_failure(rules_copy, tmp_path, capsys) -> None:
    pathway_yaml = rules_copy / "pathway.yaml"
    pathway_yaml.write_text(pathway_yaml.read_text(encoding="utf-8").replace("rule_files:\n", """\
  - code: PW627
    parameter: oxford_crp_mg_l
    note: Explained for this test only.
rule_files:
""", 1), encoding="utf-8")
    admission = json.dumps(ADMISSION).replace('"', "")
    scenarios = tmp_path / "oxford.yaml"
    scenarios.write_text(SCENARIO.format(admission=admission), encoding="utf-8")
    report = run_mutation(rules_copy, [scenarios], parameters=["oxford_crp_mg_l"], jobs=1)
    by_kind = {(o.mutation.kind, o.status) for o in report.outcomes}
    # the parameter's two mutants are explained; the flipped comparison (no entry names its rule) is not
    assert by_kind == {("parameter", "explained"), ("operator", "survived")}
    assert "explained: $oxford_crp_mg_l 45 -> 46: Explained for this test only." in report.text()
    # 'pathway check' does not run mutants, so the entry is not reported as explaining nothing
    assert main(["check", str(rules_copy), "--budget", "20"]) == 0, capsys.readouterr().out


def test_parameter_in_checks_narrows_only_pw627(rules_copy, capsys) -> None:
    pathway_yaml = rules_copy / "pathway.yaml"
    pathway_yaml.write_text(pathway_yaml.read_text(encoding="utf-8").replace("rule_files:\n", """\
  - code: PW611
    parameter: oxford_crp_mg_l
    note: wrong
  - code: PW627
    parameter: oxford_crp
    note: unknown parameter
rule_files:
""", 1), encoding="utf-8")
    main(["check", str(rules_copy), "--budget", "20"])
    out = capsys.readouterr().out
    assert "'parameter' narrows only PW627" in out and "unknown parameter 'oxford_crp'" in out


@pytest.mark.once
def test_the_library_notices_every_threshold_mutant() -> None:
    """Every numeric parameter one step each way and every comparison flipped, against the whole
    scenario library: no mutant survives unexplained (one is explained in pathway.yaml)."""
    from conftest import ROOT

    from pathway.authoring.scenario import discover

    report = run_mutation("asuc", discover([ROOT / "rules" / "asuc" / "scenarios"]), jobs=2)
    assert not report.survivors, report.text()
    assert report.count("survived", kind="parameter", decision=True) == 0
    assert len(report.outcomes) > 350 and report.count("explained") <= 1, report.text()


def test_a_stuck_worker_is_replaced_and_the_items_not_yet_returned_run_again(tmp_path) -> None:
    """A worker that returns nothing for the stall time (stuck, or killed: a pool loses a dead worker's task)
    is stopped with its pool; every item still comes back once, in order; an item that stalls every time fails
    the run, named, after the restarts allowed."""
    import stalling

    from pathway.authoring.mutate import pooled

    items = [1, 2, -3, 4, 5, -106, 7]
    got = list(pooled(stalling.square_stalling_once, items, 2, stalling.init, (str(tmp_path),), stall_seconds=4,
                      restarts=2))
    assert got == [n * n for n in items]
    with pytest.raises(RuntimeError, match=r"no result for 2 s while running item -99 \(workers replaced 1 times\)"):
        list(pooled(stalling.square_stalling_once, [1, -99, 2], 2, stalling.init, (str(tmp_path),), stall_seconds=2,
                    restarts=1, describe=lambda n: f"item {n}"))


def test_a_dead_worker_is_seen_at_once_not_after_the_stall_time(tmp_path) -> None:
    """A worker killed by a signal loses its item: the pool is replaced when the death is seen, not after
    the stall time; a worker that dies every time fails the run, saying how it died (not that it waited)."""
    import stalling

    from pathway.authoring.mutate import pooled

    items = [1, -106, 3, 4]
    got = list(pooled(stalling.square_stalling_once, items, 2, stalling.init, (str(tmp_path),), stall_seconds=60,
                      restarts=1, poll_seconds=0.2))
    assert got == [n * n for n in items]
    (tmp_path / "again").mkdir()
    # the dying item comes first: an item before it may return after the death is seen (a race under load)
    with pytest.raises(RuntimeError, match=r"a worker died \(killed by SIGKILL\) while running item -107 or an item "
                                           r"after it \(workers replaced 0 times\)"):
        list(pooled(stalling.square_stalling_once, [-107, 2, 5], 2, stalling.init, (str(tmp_path / "again"),),
                    stall_seconds=60, restarts=0, poll_seconds=0.2, describe=lambda n: f"item {n}"))
