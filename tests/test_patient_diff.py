"""`pathway diff OLD NEW --cases DIR --scenarios`: every case replayed under both versions, the
patients whose course changes listed side by side with the day the courses diverge.

The expectations come from the rule files: raising the Truelove & Witts pulse threshold
(``tw_pulse_bpm``, "pulse above 90/min", diagnosis.yaml) to 100/min changes the diagnosis of a
patient whose only systemic sign is a pulse of 91-100/min (no longer acute severe UC:
``tw_not_met``), and the count of systemic criteria (``tw_extra_criteria``) of an admitted
patient with such a pulse and another sign; a pulse above 100/min or at most 90/min changes
nothing. The NICE profile ranks infliximab second (``rank_infliximab`` 2) and adds the
ciclosporin-first reason against it (``nice_infliximab_second_line``): only patients shown the
rescue options change, and only in the infliximab option.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway import load_pathway
from pathway.analysis.diff import criteria_changes, diff_pathways
from pathway.audit import patients as P
from pathway.authoring.scenario import discover, load_scenarios
from pathway.cli.main import main
from pathway.core.errors import InputError
from pathway.core.text import one_line
from pathway.render.diagram import diagram_to_dot, diagram_to_mermaid, render_svg
from pathway.render.diff import build_diff_diagram
from pathway.runtime import api

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"
_STATES = yaml.safe_load((ROOT / "rules" / "asuc" / "pathway.yaml").read_text(encoding="utf-8"))["states"]
IV_STEROIDS, NOT_ASUC = _STATES["iv_steroids"]["title"], _STATES["not_asuc"]["title"]

PATIENT = {"weight_kg": 70, "age_years": 40, "prior_anti_tnf_failure": False, "prior_thiopurine_failure": False,
           "latent_tb": "negative", "hbv_status": "negative", "nyha_class": 0, "tpmt_status": "normal",
           "hiv_uncontrolled": False, "demyelinating_disease": False, "malignancy_current": False,
           "immunodeficiency": False}


def _admission(pulse: float, crp: float) -> dict[str, Any]:
    """Day 0: 8 bloody stools; temperature 37.0 °C and Hb 12 g/dL (neither a T&W sign); pulse and CRP as given."""
    return {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": pulse, "temp_c": 37.0, "hb_g_dl": 12.0, "crp_mg_l": crp}


#: name -> (events, changed by tw_pulse_bpm 90 -> 100 and the pulse range 20-250 -> 20-180)
CASES: dict[str, tuple[list[dict[str, Any]], bool]] = {
    "pulse-91-only": ([_admission(91, 20)], True),      # just past the old threshold: ASUC -> not ASUC
    "pulse-95-only": ([_admission(95, 20)], True),
    "pulse-100-only": ([_admission(100, 20)], True),    # 100 > 90, but not > 100
    "pulse-95-crp-60": ([_admission(95, 60)], True),    # ASUC under both (CRP > 30): 2 -> 1 systemic criteria
    "pulse-101-only": ([_admission(101, 20)], False),   # just past the new threshold: ASUC under both
    "pulse-104-crp-60": ([_admission(104, 60)], False),
    "pulse-88-crp-60": ([_admission(88, 60)], False),
    # admitted under both on day 0 (pulse 104 and CRP 60); on day 1 a pulse of 200/min, outside the new range
    "pulse-200-day-1": ([_admission(104, 60), {"day": 1, "pulse_bpm": 200, "stool_freq_24h": 7}], True),
}


def _write_cases(folder: Path, names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (events, _) in CASES.items():
        if names is None or name in names:
            case = {"patient": {"id": name, **PATIENT}, "events": events}
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(case, sort_keys=False), encoding="utf-8")
    return folder


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def pulse_versions(rules_copy: Path, tmp_path: Path) -> tuple[Path, Path]:
    """OLD: the shipped rules; NEW: the T&W pulse threshold raised to 100/min and the plausible pulse
    range narrowed to 20-180/min."""
    new = tmp_path / "new"
    shutil.copytree(rules_copy, new)
    _replace(new / "pathway.yaml", "  tw_pulse_bpm:\n    value: 90\n", "  tw_pulse_bpm:\n    value: 100\n")
    _replace(new / "fields.yaml", "    unit: /min\n    range: [20, 250]\n    valid_for: {hours: 24}\n    description: >-\n"
             "      Vital signs", "    unit: /min\n    range: [20, 180]\n    valid_for: {hours: 24}\n    description: >-\n"
             "      Vital signs")
    return rules_copy, new


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["patient"]: c for c in doc["patients"]["changed"]}


def test_raising_the_pulse_threshold_changes_exactly_the_patients_just_past_it(pulse_versions, tmp_path, capsys):
    old, new = pulse_versions
    cases = _write_cases(tmp_path / "cases")
    code, out, _ = _cli(capsys, "diff", str(old), str(new), "--cases", str(cases), "--json")
    assert code == 1
    doc = json.loads(out)
    changed = _by_id(doc)
    assert set(changed) == {name for name, (_, hit) in CASES.items() if hit}
    assert doc["patients"]["counts"] == {"cases": 8, "changed": 5, "unchanged": 3, "failing": 1}

    # the only systemic sign was the pulse: not acute severe UC any more, from the admission on
    for name in ("pulse-91-only", "pulse-95-only", "pulse-100-only"):
        c = changed[name]
        assert c["diverges"] == {"event": 0, "day": 0}
        assert (c["old"]["state"], c["new"]["state"]) == ("iv_steroids", "not_asuc")
        rows = {(r["aspect"], r["key"]): (r["old"], r["new"]) for r in c["final"]}
        assert rows[("state", "state")] == (f"iv_steroids ({IV_STEROIDS})", f"not_asuc ({NOT_ASUC})")
        assert rows[("path", "path")] == ("suspected_asuc -> iv_steroids", "suspected_asuc -> not_asuc")
        confirmed, not_met = rows[("recommendation", "tw_asuc_confirmed")], rows[("recommendation", "tw_not_met")]
        assert confirmed[0].startswith("(advice) Acute severe UC by Truelove & Witts (8 bloody stools") and confirmed[1] is None
        assert not_met[0] is None and not_met[1].startswith("(advice) Truelove & Witts criteria for acute severe UC are not met")
        assert rows[("dose", "methylprednisolone")] == ("methylprednisolone 60 mg iv once a day", None)
        assert c["first_difference"] == []  # one event: the divergence is the end

    # admitted under both (CRP 60 > 30): only the count of systemic criteria at diagnosis changes
    c = changed["pulse-95-crp-60"]
    assert c["diverges"] == {"event": 0, "day": 0} and c["old"]["state"] == c["new"]["state"] == "iv_steroids"
    [row] = c["final"]
    assert (row["aspect"], row["key"]) == ("recommendation", "tw_extra_criteria")
    assert row["old"].startswith("(advice) 2 Truelove & Witts systemic criteria met at diagnosis")
    assert row["new"].startswith("(advice) 1 Truelove & Witts systemic criteria met at diagnosis")

    # refused under the new plausible range on day 1, not a traceback
    c = changed["pulse-200-day-1"]
    assert c["diverges"] == {"event": 1, "day": 1}
    assert c["old"]["status"] == "ran" and c["old"]["events_run"] == 2 and c["old"]["state"] == "iv_steroids"
    assert c["new"]["status"] == "refused" and c["new"]["event"] == 1 and c["new"]["events_run"] == 1
    assert c["new"]["state"] is None
    [problem] = c["new"]["problems"]
    assert problem.startswith("events[1].pulse_bpm: implausible pulse_bpm = 200 /min") and problem.endswith("[PW403]")
    assert "20–180 /min" in problem
    [row] = c["final"]
    assert row["aspect"] == "course" and row["old"] == f"ran: ends in iv_steroids ({IV_STEROIDS})"
    assert row["new"] == f"refused at events[1]: {problem}"


def test_text_and_markdown_show_old_and_new_side_by_side(pulse_versions, tmp_path, capsys):
    old, new = pulse_versions
    cases = _write_cases(tmp_path / "cases", ["pulse-95-only", "pulse-104-crp-60", "pulse-200-day-1"])
    code, out, _ = _cli(capsys, "diff", str(old), str(new), "--cases", str(cases))
    assert code == 1
    text = out.split("\npatients: ", 1)[1]
    lines = text.splitlines()
    assert lines[0] == "3 case(s) replayed under both versions: 2 changed (1 not run to the end under a version), 1 unchanged"
    assert lines[1] == f"  from: {cases}"
    head = next(line for line in lines if "pulse-95-only.yaml" in line)
    assert head == f"  ~ {cases / 'pulse-95-only.yaml'} (case file) patient pulse-95-only: " \
                   "diverges on day 0 (events[0])"
    assert "      path: suspected_asuc -> iv_steroids | suspected_asuc -> not_asuc" in lines
    assert any(re.fullmatch(r"      state: iv_steroids \(.+\) \| not_asuc \(.+\)", line) for line in lines)
    assert "      dose methylprednisolone: methylprednisolone 60 mg iv once a day | (none)" in lines
    assert any(line.startswith("  ! ") and "pulse-200-day-1" in line for line in lines)
    assert any(line.startswith("      course: ran: ends in iv_steroids") and "| refused at events[1]: " in line
               for line in lines)

    code, md, _ = _cli(capsys, "diff", str(old), str(new), "--cases", str(cases), "--markdown")
    assert code == 1
    assert md.startswith("# Changes from asuc 0.1.0")
    part = md.split("\n## What changes for patients\n", 1)[1]
    assert "3 case(s) replayed under both versions: 2 changed (1 not run to the end under a version), 1 unchanged." in part
    assert f"### {cases / 'pulse-95-only.yaml'}" in part
    assert "| path | suspected\\_asuc -> iv\\_steroids | suspected\\_asuc -> not\\_asuc |" not in part  # ids keep their _
    assert "| path | suspected_asuc -> iv_steroids | suspected_asuc -> not_asuc |" in part
    assert "| dose methylprednisolone | methylprednisolone 60 mg iv once a day | *(none)* |" in part
    lines = part.splitlines()
    start = lines.index("| what differs | cases |")
    end = lines.index("", start)
    counts = lines[start + 2:end]  # one case of each difference
    assert {"| state | 1 |", "| path | 1 |", "| dose methylprednisolone | 1 |", "| course | 1 |"} <= set(counts)
    assert all(_pipes(line) == 3 and line.endswith(" | 1 |") for line in counts)
    for line in lines[end:]:  # the tables of the cases: three cells each
        if line.startswith("|"):
            assert _pipes(line) == 4, line


def test_identical_versions_change_no_patient(rules_copy, tmp_path, capsys):
    cases = _write_cases(tmp_path / "cases", ["pulse-95-only", "pulse-200-day-1"])
    code, out, _ = _cli(capsys, "diff", "asuc", str(rules_copy), "--cases", str(cases), "--cases", str(DEMO), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["same"] and doc["patients"]["counts"] == {"cases": 3, "changed": 0, "unchanged": 3, "failing": 0}
    code, out, _ = _cli(capsys, "diff", "asuc", "asuc", "--cases", str(DEMO))
    assert code == 0
    *_, same, blank, tables, blank2, summary, source = out.splitlines()
    assert (same, blank, blank2) == ("same", "", "") and tables.endswith(": no row changes")
    assert summary == "patients: 1 case(s) replayed under both versions: 0 changed, 1 unchanged"
    assert source.startswith("  from: ") and source.endswith("demo.yaml")


def test_a_profile_against_no_profile(rules_copy, tmp_path, capsys):
    """No profile (the default) against NICE: the demo patient is shown the rescue options on day 3
    (events[2]) and chooses tacrolimus at once; only the infliximab option differs, and only then."""
    cases = _write_cases(tmp_path / "cases", ["pulse-104-crp-60"])
    code, out, _ = _cli(capsys, "diff", str(rules_copy), str(rules_copy), "--new-profile", "nice", "--cases", str(cases),
                        "--cases", str(DEMO), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["patients"]["counts"]["changed"] == 1
    [c] = doc["patients"]["changed"]
    assert c["patient"] == "demo-001" and c["diverges"] == {"event": 2, "day": 3}
    assert c["old"]["profile"] == "default" and c["new"]["profile"] == "nice"
    assert c["old"]["state"] == c["new"]["state"] == "maintenance_thiopurine" and c["final"] == []
    [row] = c["first_difference"]
    assert (row["aspect"], row["key"]) == ("option", "infliximab")
    assert row["old"] == "caution, rank 1"
    assert row["new"] == ("caution, rank 2; against: Ciclosporin-first policy (NICE TA163): infliximab only when "
                          "ciclosporin is contraindicated or clinically inappropriate.")


def test_a_scenario_profile_runs_unless_the_command_names_one(rules_copy, tmp_path):
    """A scenario pinned to NICE runs under NICE on both sides when the command names no profile,
    and under the command's profiles when it names them."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    case = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    doc = {"scenarios": [{"id": "demo_nice", "purpose": "the demo at a NICE site", "profile": "nice",
                          "case": {"patient": case["patient"], "events": case["events"]}, "expect": {}}]}
    (folder / "demo.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    cases = P.collect_cases([folder])
    assert [(c.id, c.origin, c.profile) for c in cases] == [("demo_nice", "scenario", "nice")]
    diff, a, b = diff_pathways(rules_copy, rules_copy)
    same = P.patient_diff(a, b, cases, ["x"])
    assert same.counts()["changed"] == 0
    diff, a, b = diff_pathways(rules_copy, rules_copy, old_profile="nice", new_profile="default")
    moved = P.patient_diff(a, b, cases, ["x"], old_profile="nice", new_profile="default")
    [c] = moved.changes
    assert (c.old.profile, c.new.profile) == ("nice", "default")
    assert c.event == 2 and c.first[0].key == "infliximab" and "rank 2" in (c.first[0].old or "")


def test_two_versions_with_the_same_id_run_side_by_side(pulse_versions):
    """Both loaded through the load cache: two pathways with the id 'asuc', each its own engine host;
    sessions of both advance in turn and each answers by its own rules, also after the other closes."""
    old_dir, new_dir = pulse_versions
    old, new = load_pathway(old_dir), load_pathway(new_dir)
    assert old is not new and old.id == new.id == "asuc" and old.engine is not new.engine
    a, b = old.start({"id": "a", **PATIENT}), new.start({"id": "b", **PATIENT})
    assert a.observe(_admission(95, 20))["state"] == "iv_steroids"
    assert b.observe(_admission(95, 20))["state"] == "not_asuc"
    a2, b2 = new.start({"id": "a2", **PATIENT}), old.start({"id": "b2", **PATIENT})
    assert a2.observe(_admission(95, 20))["state"] == "not_asuc"
    assert b2.observe(_admission(95, 20))["state"] == "iv_steroids"
    old.close()
    assert new.start({"id": "c", **PATIENT}).observe(_admission(95, 20))["state"] == "not_asuc"
    assert load_pathway(new_dir) is new
    new.close()


def test_the_replay_frees_its_pathways_and_leaves_the_load_cache_alone(pulse_versions, tmp_path):
    old_dir, new_dir = pulse_versions
    before = list(api._cache)
    _, a, b = diff_pathways(old_dir, new_dir)
    result = P.patient_diff(a, b, P.collect_cases([_write_cases(tmp_path / "c", ["pulse-95-only"])]), ["c"])
    assert result.counts()["changed"] == 1
    assert list(api._cache) == before
    versions = [P._Version(a, None), P._Version(b, None)]
    pathways = [v.pathway(P.collect_cases([tmp_path / "c"])[0]) for v in versions]
    for v in versions:
        v.close()
    assert all(not isinstance(pw, str) and pw.closed for pw in pathways)


def test_a_case_that_cannot_run_under_either_version_is_reported_not_raised(pulse_versions, tmp_path):
    old, new = pulse_versions
    _, a, b = diff_pathways(old, new)
    refused = P.ReplayCase("bad", "case file", "bad.yaml", {"patient": {"id": "x", "weight_kg": -3}, "events": [
        _admission(95, 20)]})
    missing_profile = P.ReplayCase("s", "scenario", "s.yaml:1", {"patient": {"id": "y", **PATIENT},
                                                                "events": [_admission(95, 20)]}, profile="nowhere")
    out = P.patient_diff(a, b, [refused, missing_profile], ["x"])
    # the same refusal under both versions is no change; a profile neither folder has fails under each, in words
    # that name each folder: listed, as not run to the end
    assert [c.case.id for c in out.changes] == ["s"] and out.counts()["unchanged"] == 1
    [c] = out.changes
    assert c.old.status == c.new.status == "failed" and c.failed and c.event is None
    for course, folder in ((c.old, old), (c.new, new)):
        [problem] = course.problems
        assert problem == f"the pathway could not be loaded (profile nowhere): {folder / 'pathway.yaml'}:6:1: unknown " \
                          "profile 'nowhere' [PW211]"
    assert c.final == [P.Row("course", "course", f"failed at the patient record: {c.old.problems[0]}",
                             f"failed at the patient record: {c.new.problems[0]}")]
    text = out.text().splitlines()
    assert text[2:4] == ["  what differs (number of cases): course 1",
                         "  ! s (scenario, s.yaml:1) patient y: diverges at the patient record"]


def test_a_file_that_is_not_a_case_is_bad_input(tmp_path, capsys):
    (tmp_path / "notes.yaml").write_text("title: not a case\n", encoding="utf-8")
    code, out, err = _cli(capsys, "diff", "asuc", "asuc", "--cases", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith(f"{tmp_path / 'notes.yaml'}:") and "[PW400]" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(capsys, "diff", "asuc", "asuc", "--cases", str(empty))
    assert code == 2 and err == f"error: no case or scenario files found in {empty}\n"
    code, _, _ = _cli(capsys, "diff", "asuc", "asuc", "--json", "--markdown")
    assert code == 2


def test_json_has_stable_keys(pulse_versions, tmp_path, capsys):
    old, new = pulse_versions
    cases = _write_cases(tmp_path / "cases", ["pulse-95-crp-60", "pulse-88-crp-60"])
    code, out, _ = _cli(capsys, "diff", str(old), str(new), "--cases", str(cases), "--json")
    doc = json.loads(out)
    assert code == 1
    assert set(doc) == {"old", "new", "same", "counts", "changes", "tables", "patients"}
    assert set(doc["patients"]) == {"sources", "counts", "differences", "changed"}
    assert doc["patients"]["differences"] == [{"what": "recommendation tw_extra_criteria", "cases": 1}]
    assert doc["patients"]["sources"] == [str(cases)]
    [c] = doc["patients"]["changed"]
    assert set(c) == {"id", "origin", "location", "patient", "diverges", "old", "new", "final", "first_difference"}
    assert set(c["old"]) == set(c["new"]) == {"status", "profile", "events_run", "event", "problems", "state"}
    assert set(c["final"][0]) == {"aspect", "key", "old", "new"}
    assert c["origin"] == "case file" and c["id"] == c["location"] == str(cases / "pulse-95-crp-60.yaml")
    code, again, _ = _cli(capsys, "diff", str(old), str(new), "--cases", str(cases), "--json")
    assert again == out  # deterministic


def _pipes(line: str) -> int:
    """Table cell boundaries: '|' not escaped by a backslash."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count


def _html_tags(md: str) -> list[str]:
    from markdown_it import MarkdownIt

    html_text = MarkdownIt("commonmark").enable("table").render(md)
    return re.findall(r"<([a-z][a-z0-9]*)", html_text)


def test_hostile_case_names_and_patient_ids_are_escaped_in_markdown(pulse_versions, tmp_path):
    old, new = pulse_versions
    hostile = "x | y `z` *em* <script>alert(1)</script> [a](javascript:1)\n| forged | row |"
    outputs = {}
    _, a, b = diff_pathways(old, new)
    for label, name, patient in (("benign", "case.yaml", "p1"), ("hostile", "evil | `name` *x* <b>.yaml", hostile)):
        folder = tmp_path / label
        folder.mkdir()
        case = {"patient": {"id": patient, **PATIENT}, "events": [_admission(95, 20)]}
        (folder / name).write_text(yaml.safe_dump(case), encoding="utf-8")
        report = P.patient_diff(a, b, P.collect_cases([folder]), [str(folder)])
        outputs[label] = (report.markdown(), report.text())
    (md, text), (benign_md, benign_text) = outputs["hostile"], outputs["benign"]
    assert md.count("\n") == benign_md.count("\n") and text.count("\n") == benign_text.count("\n")
    for line, ref in zip(md.splitlines(), benign_md.splitlines(), strict=True):
        assert _pipes(line) == _pipes(ref), line  # no table row gains a cell
        assert line[:1] == ref[:1], line
    assert sorted(_html_tags(md)) == sorted(_html_tags(benign_md))  # no script, link, emphasis or bold from a value
    heading = next(line for line in md.splitlines() if line.startswith("### "))
    assert heading == "### " + str(tmp_path / "hostile" / "evil \\| \\`name\\` \\*x\\* &lt;b>.yaml")
    assert one_line(hostile) in text  # the text output shows it on one line


def test_the_diagram_colours_edges_whose_criteria_changed(pulse_versions):
    old, new = pulse_versions
    diff, a, b = diff_pathways(old, new)
    changes = criteria_changes(a, b)
    # every transition taken by a rule comparing with tw_pulse_bpm, and none other
    expected = {(s, t) for s, t, data in b.graph.edges(data=True)
                for r in b.rules if r.id in data.get("rules", []) and "tw_pulse_bpm" in r.params}
    assert expected == {("suspected_asuc", "iv_steroids"), ("not_asuc", "iv_steroids"), ("suspected_asuc", "not_asuc")}
    assert set(changes) == expected
    assert changes[("suspected_asuc", "not_asuc")] == ["tw_not_met: condition: parameter tw_pulse_bpm 90 -> 100"]
    dot = diagram_to_dot(build_diff_diagram(diff, a, b))
    edges = dict(re.findall(r"^\t(\w+ -> \w+) \[(.*)\]$", dot, re.M))
    violet = 'color="#7c3aed"'
    for s, t in expected:
        assert violet in edges[f"{s} -> {t}"], (s, t)
    assert sum(violet in attrs for attrs in edges.values()) == len(expected)
    assert "criteria changed: a rule taking it added or removed, or its condition, due, priority or a " \
           "parameter it reads" in dot
    assert "other change: title, or texts or evidence of its rules" in dot
    svg = render_svg(dot)
    assert svg.count("#7c3aed") >= len(expected)
    assert "linkStyle" in diagram_to_mermaid(build_diff_diagram(diff, a, b))


@pytest.mark.slow
def test_default_against_nice_over_the_whole_scenario_library(capsys):
    """The committee's question: which scenarios' rescue options change under NICE? Exactly those
    that are shown the options with infliximab (the default run lists an infliximab option after
    some event), and in nothing but the infliximab option."""
    started = time.perf_counter()
    code, out, _ = _cli(capsys, "diff", "asuc", "asuc", "--old-profile", "default", "--new-profile", "nice",
                        "--scenarios", "--json")
    seconds = time.perf_counter() - started
    assert code == 1
    doc = json.loads(out)
    scenarios = [ls.scenario for f in discover([ROOT / "rules" / "asuc" / "scenarios"]) for ls in load_scenarios(f)]
    assert doc["patients"]["counts"]["cases"] == len(scenarios) > 400
    expected = set()
    for sc in scenarios:
        pw = load_pathway("asuc", profile="default", parameters=dict(sc.parameters) or None)
        try:
            session = pw.start(dict(sc.case.patient))
            for event in sc.case.events:
                if any(o["option"] == "infliximab" for o in session.observe(dict(event))["options"]):
                    expected.add(sc.id)
        except InputError:  # a scenario expected to be refused stops here
            pass
    changed = {c["id"]: c for c in doc["patients"]["changed"]}
    assert set(changed) == expected
    for c in changed.values():
        assert c["old"]["state"] == c["new"]["state"]
        for row in c["final"] + c["first_difference"]:
            assert (row["aspect"], row["key"]) == ("option", "infliximab"), (c["id"], row)
            assert row["old"].endswith("rank 1") and ", rank 2" in row["new"]
    print(f"\n{len(scenarios)} scenarios replayed under both versions in {seconds:.1f} s")


def test_two_scenario_libraries_are_merged_patient_by_patient(rules_copy, tmp_path):
    """A scenario only one library has is replayed all the same; one whose case differs between the
    libraries is replayed twice, named after its library; the rest once."""
    new = tmp_path / "new"
    shutil.copytree(rules_copy, new)
    _replace(new / "scenarios" / "diagnosis.yaml", "- id: tw_met_by_pulse\n", "- id: tw_met_by_pulse\n  profile: nice\n")
    (new / "scenarios" / "extra.yaml").write_text(yaml.safe_dump({"scenarios": [
        {"id": "extra_one", "purpose": "new", "case": {"patient": {"id": "e", **PATIENT}, "events": [_admission(95, 20)]},
         "expect": {}}]}), encoding="utf-8")
    (rules_copy / "scenarios" / "gone.yaml").write_text(yaml.safe_dump({"scenarios": [
        {"id": "gone_one", "purpose": "old", "case": {"patient": {"id": "g", **PATIENT}, "events": [_admission(95, 20)]},
         "expect": {}}]}), encoding="utf-8")
    merged = P.scenario_library(rules_copy, new)
    shipped = len(P.scenario_library(ROOT / "rules" / "asuc", ROOT / "rules" / "asuc"))
    ids = [c.id for c in merged]
    assert len(ids) == shipped + 3 and len(set(ids)) == len(ids)
    assert "tw_met_by_pulse" not in ids
    old_pulse, new_pulse = (next(c for c in merged if c.id == f"tw_met_by_pulse ({side} library)") for side in ("old", "new"))
    assert old_pulse.profile is None and new_pulse.profile == "nice" and old_pulse.case == new_pulse.case
    assert old_pulse.location.startswith(str(rules_copy / "scenarios" / "diagnosis.yaml"))
    assert {"extra_one", "gone_one"} <= set(ids)


def test_raising_the_oxford_crp_threshold_moves_no_patient(rules_copy, tmp_path, capsys):
    """Oxford (steroids.yaml): 3-8 stools with CRP above ``oxford_crp_mg_l`` on day 3. Raised from 45 to
    50 mg/L, a patient with 3-8 stools and a CRP of 46-50 mg/L is no longer Oxford positive; but the
    Lindgren index (stools + 0.14 x CRP above 8, day3_indices.yaml) is above 9 for every one of them, so
    each still has a positive day-3 index: nobody moves differently. Only the alert of a complete
    responder, which names each index, reads 'Oxford no' instead of 'Oxford yes'."""
    new = tmp_path / "new"
    shutil.copytree(rules_copy, new)
    _replace(new / "pathway.yaml", "  oxford_crp_mg_l:\n    value: 45\n", "  oxford_crp_mg_l:\n    value: 50\n")
    folder = tmp_path / "cases"
    folder.mkdir()
    day3 = {"responder-crp-48": {"stool_freq_24h": 3, "visible_blood": False, "crp_mg_l": 48},
            "failure-crp-48": {"stool_freq_24h": 5, "visible_blood": True, "crp_mg_l": 48},
            "responder-crp-44": {"stool_freq_24h": 3, "visible_blood": False, "crp_mg_l": 44}}
    for name, values in day3.items():
        case = {"patient": {"id": name, **PATIENT},
                "events": [_admission(104, 60), {"day": 3, "albumin_g_l": 35, **values}]}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(case), encoding="utf-8")
    code, out, _ = _cli(capsys, "diff", str(rules_copy), str(new), "--cases", str(folder), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["patients"]["counts"]["changed"] == 1
    [c] = doc["patients"]["changed"]
    assert c["patient"] == "responder-crp-48" and c["diverges"] == {"event": 1, "day": 3}
    assert c["old"]["state"] == c["new"]["state"] == "iv_steroids"
    [row] = c["final"]
    assert (row["aspect"], row["key"]) == ("alert", "day3_index_with_complete_response")
    assert "(Oxford yes, Lindgren high," in row["old"] and "(Oxford no, Lindgren high," in row["new"]
    assert row["old"].replace("Oxford yes", "Oxford no") == row["new"]
