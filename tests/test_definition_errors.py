"""Each class of authoring error is reported as file:line:col with a code, all problems together."""

from __future__ import annotations

from pathlib import Path

import pytest

from pathway.core.errors import DefinitionError
from pathway.loading.loader import load_definition


def _edit(folder: Path, file: str, old: str, new: str, at: str | None = None) -> int:
    """Replace ``old`` by ``new`` (exactly once) in a rules file.

    Returns the 1-based line of ``at`` within the new text (default: its first line).
    """
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {file}"
    start = text.index(old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    offset = new.index(at) if at else 0
    return text[:start].count("\n") + new[:offset].count("\n") + 1


def _errors(folder: Path) -> list:
    with pytest.raises(DefinitionError) as info:
        load_definition(folder)
    return info.value.diagnostics


# (id, file, old text, new text, code, message fragment, hint[, text on the expected line])
BROKEN = [
    ("yaml_syntax", "steroids.yaml", "    title: Oxford (Travis) criteria on day 3\n",
     "    title: Oxford: criteria on day 3\n", "PW100", "YAML syntax error: mapping values are not allowed here", None),
    ("unknown_key", "steroids.yaml", "    requires: [stool_freq_24h, crp_mg_l]\n",
     "    requirez: [stool_freq_24h, crp_mg_l]\n", "PW110", "unknown key 'requirez'", "requires"),
    ("wrong_type", "tacrolimus.yaml", "    priority: 20\n    due: {days_in_state: {gte: $tac_final_day}}\n",
     "    priority: high\n    due: {days_in_state: {gte: $tac_final_day}}\n", "PW112", "priority", None),
    ("unknown_state_in", "ciclosporin.yaml",
     "  - id: csa_response\n    title: Response to ciclosporin - thiopurine maintenance\n    in: rescue_ciclosporin\n",
     "  - id: csa_response\n    title: Response to ciclosporin - thiopurine maintenance\n    in: rescue_ciclosporine\n", "PW201",
     "unknown state 'rescue_ciclosporine'", "rescue_ciclosporin", "in: rescue"),
    ("infusion_schedule_out_of_order", "infliximab.yaml", "          at_days: [0, 14, 42]\n          then_every_days: 56\n"
     "          from_state: rescue_infliximab\n          text: >-\n"
     "            Infliximab {dose_mg} mg IV ({mg_per_kg} mg/kg) over",
     "          at_days: [0, 42, 14]\n          then_every_days: 56\n"
     "          from_state: rescue_infliximab\n          text: >-\n"
     "            Infliximab {dose_mg} mg IV ({mg_per_kg} mg/kg) over",
     "PW112", "'at_days' lists days after the first dose", None, "at_days"),
    ("infusion_schedule_unknown_state", "infliximab.yaml", "          from_state: rescue_infliximab\n          text: >-\n"
     "            Infliximab {dose_mg} mg IV ({mg_per_kg} mg/kg) over",
     "          from_state: rescue_infliximb\n          text: >-\n"
     "            Infliximab {dose_mg} mg IV ({mg_per_kg} mg/kg) over",
     "PW201", "unknown state 'rescue_infliximb'", "rescue_infliximab", "from_state"),
    ("unknown_state_transition", "steroids.yaml",
     "    when: {complete_response: true}\n    then:\n      - transition: steroid_response\n",
     "    when: {complete_response: true}\n    then:\n      - transition: steroid_responder\n", "PW201",
     "unknown state 'steroid_responder'", "steroid_response", "- transition"),
    ("unknown_field", "diagnosis.yaml", "            - pulse_bpm: {gt: $tw_pulse_bpm}\n",
     "            - pulse: {gt: $tw_pulse_bpm}\n", "PW202", "unknown field or derived fact 'pulse'", None),
    ("unknown_field_typo", "steroids.yaml", "    requires: [stool_freq_24h, crp_mg_l]\n",
     "    requires: [stool_freq_24h, crp_mgl]\n", "PW202", "unknown field 'crp_mgl'", "crp_mg_l"),
    ("unknown_derived_fact", "emergency.yaml", "      - derive: {colonic_dilatation: true}\n",
     "      - derive: {colonic_dilation: true}\n", "PW202", "unknown derived fact 'colonic_dilation'", "colonic_dilatation"),
    ("unknown_parameter", "steroids.yaml", "            - crp_mg_l: {gt: $oxford_crp_mg_l}\n",
     "            - crp_mg_l: {gt: $oxford_crp}\n", "PW203", "unknown parameter 'oxford_crp'", "oxford_crp_mg_l"),
    ("unknown_source", "infliximab.yaml", "    evidence: {sources: [Chen-2016, Toronto-2012], strength: G, status: verified}\n",
     "    evidence: {sources: [Chen-2061, Toronto-2012], strength: G, status: verified}\n", "PW204",
     "unknown source 'Chen-2061'", "Chen-2016"),
    ("duplicate_rule_id", "ciclosporin.yaml", "  - id: csa_no_response\n", "  - id: csa_response\n", "PW205",
     "duplicate rule id 'csa_response'", None),
    ("not_an_edge", "infliximab.yaml", "      - transition: maintenance_infliximab\n",
     "      - transition: maintenance_thiopurine\n", "PW206",
     "transition rescue_infliximab -> maintenance_thiopurine is not an edge", None),
    ("duplicate_key", "steroids.yaml", "    title: Oxford (Travis) criteria on day 3\n",
     "    title: Oxford (Travis) criteria on day 3\n    title: again\n", "PW101", "duplicate key 'title'", None,
     "title: again"),
    ("implicit_yes_is_not_boolean", "steroids.yaml", "        - visible_blood: false\n",
     "        - visible_blood: no\n", "PW112", "'visible_blood' is true/false; 'no' is not", None),
    ("numeric_op_on_boolean", "steroids.yaml", "        - visible_blood: false\n",
     "        - visible_blood: {gt: 1}\n", "PW209", "'gt' needs a number", None),
    ("unknown_operator", "steroids.yaml", "        - stool_freq_24h: {gt: $oxford_stool_high}\n",
     "        - stool_freq_24h: {greater: $oxford_stool_high}\n", "PW110", "unknown operator 'greater'", None),
    ("unknown_effect", "tacrolimus.yaml", "      - alert: {level: warning, text: \"Glucose",
     "      - alarm: {level: warning, text: \"Glucose", "PW110", "unknown effect 'alarm'", "alert"),
    ("bad_enum_value", "rescue_selection.yaml", "    when: {rescue_choice: colectomy}\n",
     "    when: {rescue_choice: surgery}\n", "PW112", "'surgery' is not a value of 'rescue_choice'", None),
    ("provisional_not_a_value", "fields.yaml",
     "    short: C. difficile toxin\n    values: [pending, negative, positive]\n    provisional: [pending]\n",
     "    short: C. difficile toxin\n    values: [pending, negative, positive]\n    provisional: [pendng]\n",
     "PW112", "'pendng' is not one of the values of 'cdiff_result'", "pending", "provisional"),
    ("provisional_every_value", "fields.yaml",
     "    short: C. difficile toxin\n    values: [pending, negative, positive]\n    provisional: [pending]\n",
     "    short: C. difficile toxin\n    values: [pending, negative, positive]\n    provisional: [pending, negative, positive]\n",
     "PW112", "every value of 'cdiff_result' is provisional", None, "provisional"),
    ("missing_evidence", "maintenance.yaml",
     "    evidence: {sources: [VDZ-CsA-2025], strength: O, status: unverified}\n", "", "PW111",
     "missing required key 'evidence'", None),
    ("confirmed_by_with_a_window", "fields.yaml",
     "      rise_from: {of: weight_kg, fn: last, confirmed_by: weight_confirmed}\n",
     "      rise_from: {of: weight_kg, fn: last, confirmed_by: weight_confirmed, within: {hours: 24}}\n",
     "PW112", "'confirmed_by' gives the value last confirmed: it takes fn: last and no window (remove within)", None),
    ("confirmed_by_not_yes_no", "fields.yaml",
     "    aggregate: {of: weight_kg, fn: last, confirmed_by: weight_confirmed}\n",
     "    aggregate: {of: weight_kg, fn: last, confirmed_by: crp_mg_l}\n",
     "PW112", "'confirmed_by' names a yes/no field; 'crp_mg_l' is number", None),
    ("confirmed_by_unknown_field", "fields.yaml",
     "    aggregate: {of: weight_kg, fn: last, confirmed_by: weight_confirmed}\n",
     "    aggregate: {of: weight_kg, fn: last, confirmed_by: weight_confirmd}\n",
     "PW202", "unknown field 'weight_confirmd'", "weight_confirmed"),
    ("per_unknown_field", "fields.yaml",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: weight_kg}\n",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: weight_kgs}\n",
     "PW202", "unknown field 'weight_kgs'", "weight_kg"),
    ("per_not_a_number", "fields.yaml",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: weight_kg}\n",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: visible_blood}\n",
     "PW112", "'per' divides by a recorded number field; 'visible_blood' is boolean", None),
    ("per_of_a_computed_field", "fields.yaml",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: weight_kg}\n",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: weight_confirmed_kg}\n",
     "PW112", "'per' divides by a recorded number field; 'weight_confirmed_kg' is a computed field", None),
    ("per_of_a_count", "fields.yaml",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: last, per: weight_kg}\n",
     "    aggregate: {of: tacrolimus_daily_dose_mg, fn: count, per: weight_kg}\n",
     "PW112", "'per' gives a number per unit of another field", None),
    ("cap_text_without_a_ceiling", "tacrolimus.yaml",
     "          max_change_fraction: $tac_max_change_fraction_far_below\n"
     "          max_mg_per_kg_per_day: $tac_dose_max_mg_kg_day\n          cap_text: >-\n",
     "          max_change_fraction: $tac_max_change_fraction_far_below\n          cap_text: >-\n",
     "PW112", "'cap_text' says why an increase stopped at 'max_mg_per_kg_per_day'; give that too", None, "cap_text"),
    ("ceiling_unknown_parameter", "tacrolimus.yaml",
     "          max_change_fraction: $tac_max_change_fraction_far_below\n"
     "          max_mg_per_kg_per_day: $tac_dose_max_mg_kg_day\n",
     "          max_change_fraction: $tac_max_change_fraction_far_below\n          max_mg_per_kg_per_day: $tac_dose_max\n",
     "PW203", "unknown parameter 'tac_dose_max'", "tac_dose_max_mg_kg_day", "max_mg_per_kg_per_day"),
    ("aggregate_day_unknown_parameter", "fields.yaml", "                from_day: $tac_low_target_after_day}\n",
     "                from_day: $tac_low_target_after}\n",
     "PW203", "unknown parameter 'tac_low_target_after'", "tac_low_target_after_day", "from_day"),
    ("aggregate_day_parameter_not_a_day", "fields.yaml", "                from_day: $tac_low_target_after_day}\n",
     "                from_day: $tw_use_crp_for_esr}\n",
     "PW112", "'from_day' is a day from 0 to 3650; parameter 'tw_use_crp_for_esr' is True", None, "from_day"),
]


# a rule that reads a proposal only advises: the session evaluates again with the proposals of the first pass
BROKEN += [
    ("proposal_read_by_a_move", "infliximab.yaml",
     "    when: {rescue_response: true}\n    then:\n      - transition: maintenance_infliximab\n",
     "    when: {rescue_response: true, proposed_colectomy: false}\n    then:\n      - transition: maintenance_infliximab\n",
     "PW223", "rule 'ifx_response' tests 'proposed_colectomy' and also has transition effects",
     "move the derivation, move or proposal into a rule that does not read the proposal"),
    ("proposal_field_authored", "fields.yaml", "  decision:\n    type: enum\n",
     "  proposed_colectomy:\n    type: boolean\n    title: Colectomy proposed\n  decision:\n    type: enum\n",
     "PW112", "'proposed_colectomy' is a built-in field and cannot be redefined", None),
]
BROKEN = [b if len(b) == 8 else (*b, None) for b in BROKEN]


@pytest.mark.parametrize("name,file,old,new,code,fragment,hint,at", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_rule_file_names_the_line(rules_copy, name, file, old, new, code, fragment, hint, at):
    line = _edit(rules_copy, file, old, new, at) if new else None
    if not new:
        text = (rules_copy / file).read_text(encoding="utf-8")
        before = text[: text.index(old)]
        (rules_copy / file).write_text(text.replace(old, ""), encoding="utf-8")
    diags = _errors(rules_copy)
    match = [d for d in diags if d.code == code and fragment in d.message]
    assert match, f"no {code} with {fragment!r} in:\n" + "\n".join(map(str, diags))
    d = match[0]
    assert d.file.endswith(f"asuc/{file}")
    if line is not None:
        assert d.line == line, str(d)
    else:
        # the rule whose evidence was removed: the error points into that rule
        assert d.line <= before.count("\n") + 1
    assert d.col >= 1
    if hint:
        assert d.hint == hint
    text = str(d)
    assert text.startswith(f"{d.file}:{d.line}:{d.col}: ") and text.endswith(f"[{code}]")


def test_all_problems_are_reported_together(rules_copy):
    _edit(rules_copy, "steroids.yaml", "    when: {complete_response: true}\n    then:\n      - transition: steroid_response\n",
          "    when: {complete_response: true}\n    then:\n      - transition: nowhere\n")
    _edit(rules_copy, "infliximab.yaml", "  - id: ifx_response\n", "  - id: ifx_induction\n")
    _edit(rules_copy, "diagnosis.yaml", "            - temp_c: {gt: $tw_temp_c}\n", "            - temp_c: {gt: $tw_temp}\n")
    codes = {d.code for d in _errors(rules_copy)}
    assert {"PW201", "PW205", "PW203"} <= codes


def test_terminal_state_with_way_out_in_pathway_file(rules_copy):
    line = _edit(rules_copy, "pathway.yaml", "  - {from: iv_steroids, to: steroid_response, title: Response}\n",
                 "  - {from: iv_steroids, to: steroid_response, title: Response}\n  - {from: colectomy, to: iv_steroids}\n")
    diags = [d for d in _errors(rules_copy) if d.code == "PW207"]
    assert diags and diags[0].file.endswith("pathway.yaml") and diags[0].line == line + 1


def test_unknown_state_in_pathway_transition(rules_copy):
    line = _edit(rules_copy, "pathway.yaml", "  - {from: suspected_asuc, to: not_asuc, title: Truelove & Witts not met}\n",
                 "  - {from: suspected_asuc, to: not_asc, title: Truelove & Witts not met}\n")
    d = next(d for d in _errors(rules_copy) if d.code == "PW201")
    assert (d.line, d.hint) == (line, "not_asuc")


def test_unknown_pathway_name():
    with pytest.raises(DefinitionError) as info:
        load_definition("asucc")
    assert info.value.diagnostics[0].code == "PW001"
    assert info.value.diagnostics[0].hint == "asuc"


def test_missing_rule_file_points_at_its_entry_in_the_pathway_file(rules_copy):
    (rules_copy / "sequential.yaml").unlink()
    text = (rules_copy / "pathway.yaml").read_text(encoding="utf-8")
    line = text.splitlines().index("  - sequential.yaml") + 1
    (d,) = [d for d in _errors(rules_copy) if d.code == "PW002"]
    assert d.file.endswith("asuc/pathway.yaml") and (d.line, d.col) == (line, 5)
    assert "file 'sequential.yaml' not found" in d.message


def test_second_start_state_points_at_its_kind(rules_copy):
    line = _edit(rules_copy, "pathway.yaml", "  iv_steroids:\n    kind: active\n", "  iv_steroids:\n    kind: start\n", "kind")
    (d,) = [d for d in _errors(rules_copy) if d.code == "PW208"]
    assert (d.line, d.col) == (line, 11) and "second start state 'iv_steroids'" in d.message


@pytest.mark.parametrize("file, old, new, key, hint", [
    # a state's keys are kind, title, description: 'purpse' is close to no state key (it is a
    # scenario key, 'purpose', which has no place here)
    ("pathway.yaml", "    title: Suspected acute severe UC\n",
     "    title: Suspected acute severe UC\n    purpse: x\n", "purpse", None),
    ("pathway.yaml", "    description: Admission assessment against Truelove & Witts.\n",
     "    descripton: Admission assessment against Truelove & Witts.\n", "descripton", "description"),
    # a rule key next to a rule's keys; an evidence key next to the evidence keys
    ("steroids.yaml", "    requires: [stool_freq_24h, crp_mg_l]\n",
     "    requirez: [stool_freq_24h, crp_mg_l]\n", "requirez", "requires"),
    ("steroids.yaml", "    evidence: {sources: [Turner-2007, AGA-2020, Islam-2012], strength: M, status: verified}\n",
     "    evidence: {sources: [Turner-2007, AGA-2020, Islam-2012], strength: M, statsu: verified}\n", "statsu", "status"),
])
def test_unknown_key_hint_comes_from_the_model_at_that_place(rules_copy, file, old, new, key, hint):
    _edit(rules_copy, file, old, new)
    match = [d for d in _errors(rules_copy) if d.code == "PW110" and f"'{key}'" in d.message]
    assert match, key
    assert match[0].hint == hint
