"""The measured limits and hazards of durable-rules 2.0.28 are pinned here, with the engine's answer to each."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from cases import ADMIT, DAY3_FAIL, patient, to_rescue
from durable import engine as durable_engine

from pathway import EngineError, EngineLimitError, load_pathway
from pathway.runtime.compile import MAX_ALPHA_STACK, MAX_IDENTICAL_CONDITIONS, MAX_RULES_PER_RULESET, alpha_stack_bound


class _QuietHost(durable_engine.Host):
    def _run(self):
        return None

    def get_action(self, name):
        return lambda c: None


def _diverging(n: int) -> dict:
    return {f"r{i}": {"all": [{"m": {"$and": [{"_k": "case"}, {"$gte": {"x": i}}]}}], "run": f"r{i}"} for i in range(n)}


# durable's own action dispatch (its Closure, which the engine never uses: it dispatches actions itself) calls
# datetime.utcfromtimestamp, deprecated since CPython 3.12; this test drives that dispatch on purpose.
@pytest.mark.filterwarnings(r"ignore:datetime\.datetime\.utcfromtimestamp\(\) is deprecated:DeprecationWarning")
def test_durable_alpha_stack_limit_is_what_the_compiler_assumes():
    # 64 rules matched by one fact under one node pass; the 65th fails with error 303.
    for n, ok in ((64, True), (65, False)):
        host = _QuietHost()
        host.set_rulesets({"r": _diverging(n)})
        if ok:
            host.assert_fact("r", {"sid": "1", "_k": "case", "x": 1000})
        else:
            with pytest.raises(Exception, match="303"):
                host.assert_fact("r", {"sid": "1", "_k": "case", "x": 1000})
        assert alpha_stack_bound(_diverging(n)) == n
    assert MAX_ALPHA_STACK < 64


def test_durable_set_rulesets_mutates_its_argument_so_the_engine_copies(pw):
    definition = _diverging(2)
    _QuietHost().set_rulesets({"r": definition})
    assert "run" not in definition["r0"]  # the hazard
    assert all("run" in rule for rs in pw.compiled.rulesets.values() for rule in rs.values())  # ours are intact


def _synthetic(tmp_path: Path, n: int, *, shared_derived: bool = False, identical: bool = False) -> Path:
    folder = tmp_path / f"synthetic_{n}"
    folder.mkdir()
    (folder / "pathway.yaml").write_text(
        "id: synthetic\nversion: 1.0.0\ntitle: Synthetic\nstates:\n"
        "  s0: {kind: start, title: Start}\n  done: {kind: terminal, title: Done}\n"
        "transitions:\n  - {from: s0, to: done}\n"
        "derived:\n  flag: {title: Flag}\n"
        "sources:\n  SRC: {title: A source, tag: G}\nrule_files: [rules.yaml]\n", encoding="utf-8")
    (folder / "fields.yaml").write_text("fields:\n  x: {type: number, title: X, range: [0, 100000]}\n", encoding="utf-8")
    lines = ["rules:"]
    for i in range(n):
        when = "{x: {gte: 0}}" if identical else f"{{x: {{gte: {i}}}}}"
        effect = "derive: {flag: true}" if shared_derived else f"recommend: {{text: rule {i}}}"
        lines += [f"  - id: r{i}", f"    title: Rule {i}", "    in: s0", f"    when: {when}", f"    then: [{effect}]",
                  "    evidence: {sources: [SRC], strength: G, status: verified}"]
    (folder / "rules.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_large_state_is_split_into_rulesets_and_every_rule_still_fires(tmp_path):
    pw = load_pathway(_synthetic(tmp_path, 150), cache=False)
    names = pw.compiled.state_rulesets["s0"]
    assert len(names) >= 3
    assert all(alpha_stack_bound(pw.compiled.rulesets[n]) <= MAX_ALPHA_STACK for n in names)
    result = pw.start({"id": "x"}).observe({"day": 0, "x": 100000})
    assert len(result["recommendations"]) == 150  # one fact activates all 150 rules, without error 303


def test_a_group_joined_by_one_derived_fact_cannot_be_split(tmp_path):
    with pytest.raises(EngineLimitError) as info:
        load_pathway(_synthetic(tmp_path, 80, shared_derived=True), cache=False)
    assert info.value.codes == ["PW304"]
    assert "durable_rules fails beyond 64 (error 303)" in str(info.value)


def test_identical_conditions_are_capped(tmp_path):
    with pytest.raises(EngineLimitError) as info:
        load_pathway(_synthetic(tmp_path, MAX_IDENTICAL_CONDITIONS + 1, identical=True), cache=False)
    assert "PW303" in info.value.codes


def test_shipped_pathway_is_within_every_limit(pw):
    for name, ruleset in pw.compiled.rulesets.items():
        assert len(ruleset) <= MAX_RULES_PER_RULESET
        assert alpha_stack_bound(ruleset) <= MAX_ALPHA_STACK, name
        same = {}
        for rule in ruleset.values():
            key = json.dumps(rule["all"], sort_keys=True)
            same[key] = same.get(key, 0) + 1
        assert max(same.values()) <= MAX_IDENTICAL_CONDITIONS


def test_no_wall_clock_threads_are_started():
    before = threading.active_count()
    load_pathway("asuc", cache=False)
    assert threading.active_count() == before


def _facts(pw, name: str) -> list:
    try:
        return pw.engine._host.get_facts(name, str(pw.engine._sids[name]))
    except Exception as exc:  # error 309: no session state yet (the ruleset was never used)
        assert "309" in str(exc)
        return []


def test_engine_sessions_are_empty_after_every_evaluation(pw):
    s = pw.start(patient(id="empty-check"))
    for event in to_rescue()["events"]:
        s.observe(event)
    used = set()
    for name in pw.compiled.rulesets:
        assert _facts(pw, name) == []
        if name.startswith(("asuc.iv_steroids", "asuc.rescue_selection")):
            used.add(name.split(".")[1])
    assert used == {"iv_steroids", "rescue_selection"}
    assert pw.engine.retired_sids == 0


def test_an_exception_inside_an_action_is_raised_and_nothing_is_applied(rules_copy, monkeypatch):
    pw = load_pathway(rules_copy, cache=False)
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    before = json.dumps(s.dump(), sort_keys=True)
    original = pw.engine._fire

    def broken(ctx, handle, name):
        if name.startswith("oxford_index."):
            raise RuntimeError("boom")
        return original(ctx, handle, name)

    monkeypatch.setattr(pw.engine, "_fire", broken)
    with pytest.raises(EngineError, match="rule 'oxford_index' .*RuntimeError: boom"):
        s.observe(dict(DAY3_FAIL))
    assert json.dumps(s.dump(), sort_keys=True) == before
    for name in pw.compiled.rulesets:  # the engine session was cleaned all the same
        assert _facts(pw, name) == []
    monkeypatch.setattr(pw.engine, "_fire", original)
    assert s.observe(dict(DAY3_FAIL))["state"] == "rescue_selection"


def test_an_evaluation_that_does_not_settle_stops_with_an_error_and_nothing_is_applied(rules_copy, monkeypatch):
    """Each engine rule fires at most once per evaluation: an agenda offering far more activations than its
    ruleset has rules is stopped (EngineError, the session unchanged, the engine session cleaned)."""
    pw = load_pathway(rules_copy, cache=False)
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    before = json.dumps(s.dump(), sort_keys=True)
    bounds = dict(pw.engine._activation_bound)
    assert all(bound >= 8 * len(pw.compiled.rulesets[name]) for name, bound in bounds.items())
    monkeypatch.setattr(pw.engine, "_activation_bound", {name: 2 for name in bounds})
    with pytest.raises(EngineError, match=r"ruleset 'asuc\.iv_steroids[^']*' did not settle: more than 2 activations"):
        s.observe(dict(DAY3_FAIL))
    assert json.dumps(s.dump(), sort_keys=True) == before
    for name in pw.compiled.rulesets:
        assert _facts(pw, name) == []
    assert pw.engine.retired_sids == 1  # an action was left started on it: the next evaluation takes a new sid
    monkeypatch.setattr(pw.engine, "_activation_bound", bounds)
    assert s.observe(dict(DAY3_FAIL))["state"] == "rescue_selection"


def test_conflicting_moves_at_equal_priority_are_an_error(rules_copy):
    path = rules_copy / "steroids.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("    priority: 20\n    when: {clinical_deterioration: true}",
                        "    priority: 10\n    when: {clinical_deterioration: true}")
    text = text.replace("  - id: steroid_response_day3\n    title: Complete response from day 3\n    in: iv_steroids\n"
                        "    priority: 10\n    due: {day: {gte: $assessment_day}}\n"
                        "    when:\n      all:\n        - complete_response: true\n        - oxford_high_risk: false",
                        "  - id: steroid_response_day3\n    title: Complete response from day 3\n    in: iv_steroids\n"
                        "    priority: 10\n    due: {day: {gte: $assessment_day}}\n"
                        "    when:\n      all:\n        - complete_response: true")
    path.write_text(text, encoding="utf-8")
    pw = load_pathway(rules_copy, cache=False)
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    with pytest.raises(EngineError, match="conflicting transitions at the same priority"):
        s.observe({"day": 3, "stool_freq_24h": 2, "visible_blood": False, "crp_mg_l": 5, "clinical_deterioration": True})
    assert s.state == "iv_steroids"


def test_loads_are_cached_so_rulesets_are_registered_once():
    assert load_pathway("asuc") is load_pathway("asuc")
    assert load_pathway("asuc") is not load_pathway("asuc", parameters={"oxford_crp_mg_l": 50})
