"""The measured limits and hazards of durable-rules 2.0.28 are pinned here, with the engine's answer to each."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import durable_rules_engine
import pytest
from cases import ADMIT, DAY3_FAIL, patient, to_rescue
from durable import engine as durable_engine

from pathway import EngineError, EngineLimitError, load_pathway
from pathway.loading.loader import load_definition
from pathway.runtime.compile import (
    MAX_ALPHA_STACK,
    MAX_IDENTICAL_CONDITIONS,
    MAX_PATTERN_EXPRESSIONS,
    MAX_RULES_PER_RULESET,
    alpha_stack_bound,
    compile_pathway,
    pattern_expressions,
)


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


def test_durable_never_retracts_from_a_state_an_action_ran_on(rules_copy, monkeypatch):
    """durable_rules' retraction writes past a frame on a state where an action ran (the engine module notes): such a
    state is deleted whole after its evaluation, and retraction goes only to a state no action ever ran on."""
    from pathway.runtime import engine as engine_module

    core = engine_module._core
    acted: set[object] = set()  # handles whose state ran an action and was not deleted since
    seen = {"acted": 0, "deleted": 0}

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(core, name)

        def start_action_for_state(self, handle: object, state: object) -> object:
            started = core.start_action_for_state(handle, state)
            if started:
                acted.add(handle)
                seen["acted"] += 1
            return started

        def retract_facts(self, handle: object, text: str) -> object:
            assert handle not in acted, "a retraction was sent to a state an action ran on"
            return core.retract_facts(handle, text)

        def delete_state(self, handle: object, sid: str) -> object:
            assert handle in acted, "a state no action ran on was deleted (its action context was never set)"
            acted.discard(handle)
            seen["deleted"] += 1
            return core.delete_state(handle, sid)

    monkeypatch.setattr(engine_module, "_core", Spy())
    pw = load_pathway(rules_copy, cache=False)
    s = pw.start(patient(id="no-retract"))
    for event in to_rescue()["events"]:
        s.observe(event)
        assert not acted  # every state an action ran on was deleted with its evaluation
    assert s.result()["state"] == "rescue_selection"
    assert seen["acted"] == seen["deleted"] > 0
    for name in pw.compiled.rulesets:  # the next evaluation finds the sid empty all the same
        assert _facts(pw, name) == []
    assert pw.engine.retired_sids == 0
    pw.close()


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


def _groups(n: int, kind: str = "case") -> dict:
    """One pattern of ``n`` nested 'and'/'or' groups: an '$and' holding n - 1 '$or's."""
    return {"$and": [{"_k": kind}] + [{"$or": [{f"a{i}": 1}, {f"b{i}": 2}]} for i in range(n - 1)]}


def _registers(ruleset: dict) -> str:
    try:
        handle = durable_rules_engine.create_ruleset("limit", json.dumps(ruleset))
    except Exception as exc:  # durable_rules_engine.error
        return str(exc)
    durable_rules_engine.delete_ruleset(handle)
    return "ok"


def test_durable_expression_limit_is_what_the_compiler_assumes():
    # Each '$and'/'$or' of one pattern takes two of its 31 expression entries (MAX_SEQUENCE_EXPRESSIONS 32 in
    # rete.h): 15 groups register, the 16th fails with error 113; a test of another pattern's value takes one.
    assert MAX_PATTERN_EXPRESSIONS == 31
    for n, ok in ((15, True), (16, False)):
        assert pattern_expressions(_groups(n)) == 2 * n
        assert (_registers({"r": {"all": [{"m": _groups(n)}]}}) == "ok") is ok
    nested = {"x": 1}
    for _ in range(16):
        nested = {"$and": [nested]}
    assert pattern_expressions(nested) == 32 and "error code: 113" in _registers({"r": {"all": [{"m": nested}]}})
    # the limit is per pattern (per fact joined), not per rule or per ruleset
    assert _registers({"r": {"all": [{"m": _groups(15)}, {"d0": _groups(15, "derived")}]},
                       "s": {"all": [{"m": _groups(15)}]}}) == "ok"
    joins = [{"$gt": {f"y{j}": {"first": "z"}}} for j in range(4)]
    for k, ok in ((3, True), (4, False)):
        pattern = {"$and": _groups(14)["$and"] + joins[:k]}
        assert pattern_expressions(pattern) == 28 + k
        assert (_registers({"r": {"all": [{"first": {"_k": "x"}}, {"m": pattern}]}}) == "ok") is ok


def _big_any(folder: Path, alternatives: int) -> int:
    """Add to steroids.yaml a rule whose 'when' is an 'any' of ``alternatives`` 'all' blocks; its 'then' branch
    compiles into one pattern of ``alternatives + 2`` groups. Returns the line of the rule."""
    path = folder / "steroids.yaml"
    text = path.read_text(encoding="utf-8")
    lines = ["", "  - id: big_any", "    title: A rule with a large any", "    in: iv_steroids", "    when:", "      any:"]
    for i in range(alternatives):
        lines += ["        - all:", f"            - stool_freq_24h: {{gt: {i}}}", f"            - crp_mg_l: {{lt: {100 + i}}}"]
    lines += ["    then:", "      - recommend: {kind: advice, text: The large rule fired.}",
              "    evidence: {sources: [Turner-2007], strength: M, status: verified}", ""]
    path.write_text(text + "\n".join(lines), encoding="utf-8")
    return text.count("\n") + 2


def test_a_condition_too_large_for_durable_is_refused_at_its_rule(rules_copy):
    line = _big_any(rules_copy, 14)  # 16 groups
    with pytest.raises(EngineLimitError) as info:
        load_pathway(rules_copy, cache=False)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.file, diag.line, diag.col) == ("PW305", str(rules_copy / "steroids.yaml"), line, 5)
    assert "rule 'big_any'" in diag.message and "16 'and'/'or' groups" in diag.message
    assert "at most 15" in diag.message and "error 113" in diag.message and "derive" in diag.message


def test_a_condition_just_under_the_limit_loads_and_runs(rules_copy):
    _big_any(rules_copy, 13)  # 15 groups
    pw = load_pathway(rules_copy, cache=False)
    (name,) = [n for n in pw.compiled.bindings if n.startswith("big_any.")]
    (ruleset,) = [rs for rs in pw.compiled.rulesets.values() if name in rs]
    assert max(pattern_expressions(next(iter(p.values()))) for p in ruleset[name]["all"]) == MAX_PATTERN_EXPRESSIONS - 1
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    result = s.observe({"day": 1, "stool_freq_24h": 5, "crp_mg_l": 50})
    assert "big_any" in [r["rule"] for r in result["recommendations"]]


def _wide_rule(tmp_path: Path, when: str, effects: str) -> Path:
    folder = _synthetic(tmp_path, 1)
    (folder / "rules.yaml").write_text(
        "rules:\n  - id: wide\n    title: Wide\n    in: s0\n    requires: [x]\n    when:\n" + when + effects
        + "    evidence: {sources: [SRC], strength: G, status: verified}\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("size, ok", [(14, False), (13, True)])
def test_the_otherwise_branch_is_counted_too(tmp_path, size, ok):
    # 'otherwise' negates 'when': an 'all' of n 'any's (n + 1 groups) becomes an 'any' of n 'all's (n + 2)
    when = "      all:\n" + "".join(f"        - any: [{{x: {{gte: {i}}}}}, {{x: {{lt: -{i}}}}}]\n" for i in range(size))
    folder = _wide_rule(tmp_path, when, "    then: [{recommend: {text: wide}}]\n    otherwise: [{recommend: {text: no}}]\n")
    if ok:
        pw = load_pathway(folder, cache=False)
        assert pw.start({"id": "x"}).observe({"day": 0, "x": 0.5})["recommendations"][0]["text"] == "no"
        return
    with pytest.raises(EngineLimitError) as info:
        load_pathway(folder, cache=False)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.line) == ("PW305", 2)
    assert "'otherwise'" in diag.message and f"{size + 2} 'and'/'or' groups" in diag.message


def test_the_if_missing_branch_is_counted_too(tmp_path):
    # 'if_missing' reads each test as "this, or missing": 15 tests in an 'all' take one group in 'then', 16 here
    when = "      all:\n" + "".join(f"        - x: {{gte: {i}}}\n" for i in range(15))
    folder = _wide_rule(tmp_path, when, "    then: [{score: {name: flag, terms: [{field: x}]}}]\n"
                                        "    if_missing: [{recommend: {text: missing}}]\n")
    spec = folder / "pathway.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("flag: {title: Flag}", "flag: {title: Flag, type: number}"),
                    encoding="utf-8")
    with pytest.raises(EngineLimitError) as info:
        load_pathway(folder, cache=False)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.line) == ("PW305", 2)
    assert "'if_missing'" in diag.message and "16 'and'/'or' groups" in diag.message


def test_validate_and_check_report_the_located_code(rules_copy, capsys):
    from pathway.analysis.check import check_pathway
    from pathway.cli.main import main

    line = _big_any(rules_copy, 14)
    assert main(["validate", str(rules_copy)]) == 2
    err = capsys.readouterr().err
    assert f"steroids.yaml:{line}:5: rule 'big_any'" in err and "[PW305]" in err and "Traceback" not in err
    report = check_pathway(rules_copy)
    assert report.exit_code() == 1
    assert [(f.line, f.col) for f in report.findings if "[PW305]" in f.message] == [(line, 5)]


def _counting(monkeypatch, refuse=lambda name, text: False):
    """Wrap durable's ruleset creation and deletion: the handles created, and those of them not deleted since;
    ``refuse(name, text)`` makes a creation fail."""
    created: list[int] = []
    live: set[int] = set()
    create, delete = durable_rules_engine.create_ruleset, durable_rules_engine.delete_ruleset

    def counted_create(name, text):
        if refuse(name, text):
            raise durable_rules_engine.error("Could not create ruleset, error code: 106")
        handle = create(name, text)
        created.append(handle)
        live.add(handle)
        return handle

    def counted_delete(handle):
        live.discard(handle)  # (the rulesets of engines collected earlier are freed here too)
        return delete(handle)

    monkeypatch.setattr(durable_rules_engine, "create_ruleset", counted_create)
    monkeypatch.setattr(durable_rules_engine, "delete_ruleset", counted_delete)
    return created, live


def test_a_rule_durable_refuses_at_registration_is_a_located_error_and_nothing_stays_registered(
        rules_copy, monkeypatch, capsys):
    # The compiler's check turned off: durable's own refusal (error 113) is what is reported, at the rule.
    import pathway.runtime.compile as comp

    line = _big_any(rules_copy, 14)
    monkeypatch.setattr(comp, "MAX_PATTERN_EXPRESSIONS", 10 ** 6)
    created, live = _counting(monkeypatch)
    with pytest.raises(EngineLimitError) as info:
        load_pathway(rules_copy, cache=False)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.file, diag.line, diag.col) == ("PW306", str(rules_copy / "steroids.yaml"), line, 5)
    assert "rule 'big_any' of state 'iv_steroids'" in diag.message and "error code: 113" in diag.message
    assert len(created) > 1 and not live  # the rulesets registered before it were freed, and the probes
    from pathway.cli.main import main

    assert main(["validate", str(rules_copy)]) == 2
    err = capsys.readouterr().err
    assert f"steroids.yaml:{line}:5: rule 'big_any' of state 'iv_steroids'" in err and "[PW306]" in err
    assert "Traceback" not in err


def test_a_ruleset_durable_refuses_as_a_whole_names_its_state_and_rules(rules_copy, monkeypatch):
    created, live = _counting(monkeypatch, lambda name, text: name == "asuc.rescue_selection")
    with pytest.raises(EngineLimitError) as info:
        load_pathway(rules_copy, cache=False)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.file, diag.line) == ("PW306", str(rules_copy / "pathway.yaml"), 1)
    assert "state 'rescue_selection'" in diag.message and "ruleset 'asuc.rescue_selection'" in diag.message
    assert "error code: 106" in diag.message and "avoid_drugs" in diag.message
    assert len(created) > 1 and not live



def test_validate_asks_durable_to_take_each_profile_s_own_rulesets(rules_copy, monkeypatch, capsys):
    # The default profile's tacrolimus ruleset is taken; the ones the other profiles compile for themselves (their
    # tacrolimus rules differ) are refused: `pathway validate` reports it at the ruleset, naming the profile (PW306),
    # where before it compiled the other profiles without registering them. A ruleset a profile shares with the
    # default is not registered again.
    from pathway.cli.main import main

    names: list[str] = []

    def refuse(name, text):
        names.append(name)
        return name == "asuc.rescue_tacrolimus" and names.count(name) > 1  # taken the first time only

    default = len(compile_pathway(load_definition(rules_copy)).rulesets)  # the default profile's own rulesets
    created, live = _counting(monkeypatch, refuse)
    assert main(["validate", str(rules_copy)]) == 2
    err = capsys.readouterr().err
    assert "[PW306]" in err and "ruleset 'asuc.rescue_tacrolimus'" in err and "Traceback" not in err
    assert "profile 'tac_high_start'" in err and "profile 'nice'" in err
    # the rulesets registered to check the profiles were freed: those left are the default's engine's (freed when
    # that pathway is collected)
    assert default >= 20 and len(live) == default and len(created) > default + 10
    assert names.count("asuc.iv_steroids") == 1  # shared with the default: not registered again
    assert names.count("asuc.rescue_tacrolimus") == 3  # the default's, then each profile's own
