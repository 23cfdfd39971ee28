"""JSON Schemas: generated from the models, committed in rules/schema, and true to the loader.

- the committed schemas are exactly what ``pathway schema`` generates (drift fails the test);
- every shipped YAML file validates against its schema and names it in its first line;
- the rule schema describes conditions and effects (structural mistakes are rejected);
- the case schema agrees with the engine's own input checks, value by value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from jsonschema import Draft7Validator

from pathway import InputError, load_pathway
from pathway.authoring.schema import (
    DESCRIPTIONS,
    HEADER_PREFIX,
    add_headers,
    check_headers,
    header_for,
    model_schemas,
    pathway_schemas,
    render,
    schema_for_file,
    schemas,
)
from pathway.cli.main import main
from pathway.core.yamlsafe import load_yaml_file
from pathway.definition import effects as E
from pathway.loading.loader import load_definition

SCHEMA_DIR = ROOT / "rules" / "schema"
ASUC = ROOT / "rules" / "asuc"


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    return schemas("asuc")


def _committed(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def _shipped_pathways() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "rules").glob("*/pathway.yaml"))


def _yaml_files(root: Path) -> list[Path]:
    return sorted({*root.rglob("*.yaml"), *root.rglob("*.yml")})


# -- drift ------------------------------------------------------------------------------------

def test_committed_schemas_are_current() -> None:
    expected: dict[str, str] = {}
    for root in _shipped_pathways():
        for name, schema in schemas(root).items():
            expected[name] = render(schema)
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(committed) == sorted(expected), "rules/schema has missing or extra files: run 'pathway schema asuc'"
    stale = [name for name in expected if committed[name] != expected[name]]
    assert not stale, f"stale schemas {stale}: run 'pathway schema asuc'"


def test_output_is_deterministic_json(generated: dict[str, dict[str, Any]]) -> None:
    again = schemas("asuc")
    for name, schema in generated.items():
        text = render(schema)
        assert text == render(again[name])
        assert text.endswith("}\n") and not text.endswith("\n\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert "°C" in render(generated["asuc.case.schema.json"])  # UTF-8 kept, not escaped


def _refs_with_siblings(node: Any) -> int:
    if isinstance(node, dict):
        return int("$ref" in node and len(node) > 1) + sum(_refs_with_siblings(v) for v in node.values())
    if isinstance(node, list):
        return sum(_refs_with_siblings(v) for v in node)
    return 0


def test_every_schema_is_a_valid_draft_7_schema(generated: dict[str, dict[str, Any]]) -> None:
    assert set(generated) == {"pathway.schema.json", "fields.schema.json", "sources.schema.json", "rules.schema.json",
                              "hazards.schema.json", "invariants.schema.json", "codes.schema.json",
                              "profile.schema.json", "scenario.schema.json", "asuc.case.schema.json",
                              "asuc.scenario.schema.json"}
    for name, schema in generated.items():
        Draft7Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#", name
        assert schema["title"] and schema["description"], name
        assert "prefixItems" not in render(schema), f"{name}: keep to draft-7 keywords, which editors read"
        assert _refs_with_siblings(schema) == 0, f"{name}: draft 7 ignores keywords beside $ref"


# -- shipped files ----------------------------------------------------------------------------

@pytest.mark.parametrize("file", _yaml_files(ASUC), ids=lambda p: p.relative_to(ASUC).as_posix())
def test_shipped_file_validates_against_its_schema(file: Path) -> None:
    name = schema_for_file(ASUC, file)
    assert name is not None, f"{file}: no schema is known for this kind of file"
    data = load_yaml_file(str(file), file.name).data
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft7Validator(_committed(name)).iter_errors(data)]
    assert not errors, "\n".join(errors[:5])


def test_every_shipped_file_names_its_schema_on_the_first_line() -> None:
    problems = [p for root in _shipped_pathways() for p in check_headers(root)]
    assert not problems, "run 'pathway schema asuc --add-headers':\n" + "\n".join(problems)
    first = (ASUC / "pathway.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/pathway.schema.json"
    for file in _yaml_files(ASUC):
        target = file.parent / file.read_text(encoding="utf-8").splitlines()[0][len(HEADER_PREFIX):]
        assert target.resolve().is_file(), f"{file}: the header points at a missing file"


def test_file_kinds() -> None:
    kinds = {f.relative_to(ASUC).as_posix(): schema_for_file(ASUC, f) for f in _yaml_files(ASUC)}
    assert kinds["pathway.yaml"] == "pathway.schema.json"
    assert kinds["fields.yaml"] == "fields.schema.json"
    assert kinds["sources.yaml"] == "sources.schema.json"
    assert kinds["steroids.yaml"] == "rules.schema.json"
    assert kinds["cases/demo.yaml"] == "asuc.case.schema.json"
    assert {v for k, v in kinds.items() if k.startswith("scenarios/")} == {"asuc.scenario.schema.json"}
    assert {v for k, v in kinds.items() if k.startswith("profiles/")} <= {"profile.schema.json"}


# -- the rule-file schema ---------------------------------------------------------------------

_RULE = {"id": "r", "title": "t", "in": "iv_steroids", "evidence": {"sources": ["A"], "strength": "G", "status": "verified"},
         "then": [{"transition": "colectomy"}]}

RULE_SAMPLES = [
    ("plain", {}, True),
    ("priority_word", {"priority": "high"}, False),
    ("unknown_key", {"requirez": ["crp_mg_l"]}, False),
    ("missing_evidence", {"evidence": None}, False),
    ("equality", {"when": {"visible_blood": False}}, True),
    ("always", {"when": True}, True),
    ("never_false", {"when": False}, False),
    ("list_is_all", {"when": [{"a": 1}, {"b": {"lt": 2}}]}, True),
    ("nested", {"when": {"all": [{"any": [{"a": 1}, {"not": {"b": True}}]}, {"c": {"in": ["x", "y"]}}]}}, True),
    ("several_ops", {"when": {"crp_mg_l": {"gt": 5, "lte": 100}}}, True),
    ("parameter", {"when": {"crp_mg_l": {"gt": "$oxford_crp_mg_l"}}}, True),
    ("parameter_upper_case", {"when": {"crp_mg_l": {"gt": "$Oxford"}}}, False),
    ("number_op_on_text", {"when": {"crp_mg_l": {"gt": "high"}}}, False),
    ("between_params", {"when": {"stool_freq_24h": {"between": ["$oxford_stool_lower", 8]}}}, True),
    ("between_one_bound", {"when": {"stool_freq_24h": {"between": [3]}}}, False),
    ("unknown_operator", {"when": {"crp_mg_l": {"greater": 3}}}, False),
    ("in_empty", {"when": {"rescue_choice": {"in": []}}}, False),
    ("present_not_bool", {"when": {"crp_mg_l": {"present": "yes"}}}, False),
    ("all_not_a_list", {"when": {"all": {"a": 1}}}, False),
    ("empty_mapping", {"when": {}}, False),
    ("field_name_upper", {"when": {"CRP": 5}}, False),
    ("due", {"due": {"day": {"gte": "$assessment_day"}}}, True),
    ("unknown_effect", {"then": [{"alarm": {"text": "x"}}]}, False),
    ("two_keys_in_effect", {"then": [{"alert": {"text": "x"}, "transition": "colectomy"}]}, False),
    ("transition_not_text", {"then": [{"transition": 3}]}, False),
    ("derive", {"then": [{"derive": {"oxford_high_risk": True}}]}, True),
    ("derive_empty", {"then": [{"derive": {}}]}, False),
    ("recommend_kind", {"then": [{"recommend": {"kind": "hint", "text": "x"}}]}, False),
    ("dose_parameter", {"then": [{"dose": {"name": "t", "route": "oral", "mg_per_kg_per_day": "$tac_start_mg_kg_day"}}]}, True),
    ("dose_name_without_dollar", {"then": [{"dose": {"name": "t", "route": "oral", "mg_per_kg_per_day": "tac"}}]}, False),
    ("dose_targets", {"then": [{"dose": {"name": "t", "route": "oral", "mg_per_kg": 5,
                                         "targets": {"x_ng_ml": ["$low", 15]}}}]}, True),
    ("otherwise", {"when": {"a": 1}, "otherwise": [{"alert": {"level": "info", "text": "x"}}]}, True),
]


@pytest.mark.parametrize("name,change,valid", RULE_SAMPLES, ids=[s[0] for s in RULE_SAMPLES])
def test_rule_schema(generated: dict[str, dict[str, Any]], name: str, change: dict[str, Any], valid: bool) -> None:
    rule = {**_RULE, **change}
    errors = list(Draft7Validator(generated["rules.schema.json"]).iter_errors({"rules": [rule]}))
    assert (not errors) == valid, errors[0].message if errors else "accepted"


def test_effects_are_the_effect_models(generated: dict[str, dict[str, Any]]) -> None:
    schema = generated["rules.schema.json"]
    effect = schema["$defs"]["Effect"]
    assert sorted(effect["properties"]) == sorted(E.EFFECT_KINDS)
    assert (effect["minProperties"], effect["maxProperties"], effect["additionalProperties"]) == (1, 1, False)
    for kind, model in E.EFFECT_KINDS.items():
        body = effect["properties"][kind]
        if kind in ("transition", "derive"):
            assert "$ref" not in body
            continue
        assert body["allOf"] == [{"$ref": f"#/$defs/{model.__name__}"}] and body["description"]
        keys = {info.alias or name for name, info in model.model_fields.items()}
        assert set(schema["$defs"][model.__name__]["properties"]) == keys, kind
    rule = schema["$defs"]["RuleDef"]["properties"]
    assert rule["then"]["allOf"] == rule["otherwise"]["allOf"] == [{"$ref": "#/$defs/Effects"}]
    assert rule["when"]["allOf"] == rule["due"]["allOf"] == [{"$ref": "#/$defs/Condition"}]
    ops = schema["$defs"]["Operators"]["properties"]
    assert sorted(ops) == sorted(["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between", "present"])


def _unconstrained(node: Any, where: str) -> list[str]:
    """Property schemas that say nothing about their value (an undescribed ``Any``)."""
    found = []
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            if isinstance(sub, dict) and not ({"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"} & set(sub)):
                found.append(f"{where}.{key}")
        for key, sub in node.items():
            if isinstance(sub, dict):
                found += _unconstrained(sub, f"{where}.{key}")
            elif isinstance(sub, list):
                for i, item in enumerate(sub):
                    found += _unconstrained(item, f"{where}.{key}[{i}]")
    return found


def test_rule_and_pathway_schemas_leave_no_value_undescribed(generated: dict[str, dict[str, Any]]) -> None:
    for name in ("rules.schema.json", "pathway.schema.json", "fields.schema.json", "profile.schema.json"):
        assert _unconstrained(generated[name], name) == []


def test_descriptions_name_real_keys_and_cover_every_effect_argument() -> None:
    classes = {m.__name__: m for m in (*E.EFFECT_KINDS.values(), E.Medication, E.ScoreItem, E.ScoreTerm)}
    for model_name, texts in DESCRIPTIONS.items():
        schema_text = render(model_schemas())
        assert f'"{model_name}"' in schema_text or model_name in {"PathwayFile", "FieldsFile", "ProfileFile",
                                                                                "HazardsFile", "InvariantsFile"}, model_name
        for key in texts:
            assert f'"{key}"' in schema_text, f"DESCRIPTIONS[{model_name!r}] names a key '{key}' no model has"
    for model in classes.values():
        if model in (E.Transition, E.Derive):
            continue
        keys = {info.alias or name for name, info in model.model_fields.items()}
        missing = keys - set(DESCRIPTIONS.get(model.__name__, {}))
        assert not missing, f"describe {model.__name__} arguments {sorted(missing)} in pathway.schema.DESCRIPTIONS"


def test_pathway_schema_checks_ids(generated: dict[str, dict[str, Any]]) -> None:
    v = Draft7Validator(generated["pathway.schema.json"])
    good = load_yaml_file(str(ASUC / "pathway.yaml"), "pathway.yaml").data
    assert not list(v.iter_errors(good))
    bad = json.loads(json.dumps(good))
    bad["states"]["Colectomy"] = bad["states"].pop("colectomy")
    assert list(v.iter_errors(bad))
    bad = json.loads(json.dumps(good))
    bad["version"] = "1.0"
    assert list(v.iter_errors(bad))


# -- the case schema agrees with the engine --------------------------------------------------

PATIENTS = [
    ({"id": "p1"}, True),
    ({"id": 7}, True),
    ({}, False),
    ({"id": ""}, False),
    ({"id": True}, False),
    ({"id": "p1", "weight_kg": 72}, True),
    ({"id": "p1", "weight_kg": {"value": 160, "unit": "lb"}}, True),
    ({"id": "p1", "weight_kg": {"value": 160, "unit": "stone"}}, False),
    ({"id": "p1", "weight_kg": 3}, False),
    ({"id": "p1", "age_years": 34}, True),
    ({"id": "p1", "age_years": 34.5}, False),
    ({"id": "p1", "crp_mg_l": 5}, False),
    ({"id": "p1", "day": 0}, False),
    ({"id": "p1", "weight": 72}, False),
    ({"id": "p1", "prior_anti_tnf_failure": "yes"}, False),
    ({"id": "p1", "latent_tb": "negative", "note": "x"}, True),
    ({"id": "p1", "latent_tb": "positive"}, False),
    ({"id": "p1", "weight_kg": None}, True),
]

EVENTS = [
    ({"day": 0, "crp_mg_l": 50}, True),
    ({"day": 0, "crp_mg_l": {"value": 5.2, "unit": "mg/dL"}}, True),
    ({"day": 0, "crp_mg_l": {"value": 5.2, "unit": "mmol/L"}}, False),
    ({"day": 0, "crp_mg_l": {"value": 5.2}}, False),
    ({"day": 0, "crp_mg_l": 9000}, False),
    ({"day": 0, "crp_mg_l": "high"}, False),
    ({"day": 0, "pulse_bpm": -5}, False),
    ({"day": 0, "visible_blood": "yes"}, False),
    ({"day": 0, "visible_blood": True}, True),
    ({"day": 0, "crp": 5}, False),
    ({"crp_mg_l": 5}, False),
    ({"day": 0, "time": "2026-03-02T08:00"}, False),
    ({"time": "2026-03-02T08:00", "crp_mg_l": 5}, True),
    ({"day": 0, "age_years": 40}, False),
    ({"day": 0, "days_in_state": 2}, False),
    ({"day": 0, "state": "iv_steroids"}, False),
    ({"day": 0, "cdiff_result": "unknown"}, False),
    ({"day": 0, "cdiff_result": "negative"}, True),
    ({"day": 0, "temp_c": {"value": 100.2, "unit": "°F"}}, True),
    ({"day": 0, "bloody_stools_24h": 2.5}, False),
    ({"day": -1}, False),
    ({"day": 3651}, False),
    ({"day": 0, "note": "admission", "id": "e1", "crp_mg_l": None}, True),
    ({"day": 0, "weight_kg": 70}, True),
]


def _engine_accepts_patient(patient: dict[str, Any]) -> bool:
    try:
        load_pathway("asuc").start(patient)
    except InputError:
        return False
    return True


def _engine_accepts_event(event: dict[str, Any]) -> bool:
    session = load_pathway("asuc").start({"id": "p1"})
    try:
        session.observe(event)
    except InputError:
        return False
    return True


@pytest.mark.parametrize("patient,valid", PATIENTS, ids=[json.dumps(p, ensure_ascii=False) for p, _ in PATIENTS])
def test_case_schema_agrees_with_the_engine_on_patients(generated: dict[str, dict[str, Any]], patient: dict[str, Any],
                                                        valid: bool) -> None:
    schema = generated["asuc.case.schema.json"]
    ok = not list(Draft7Validator(schema).iter_errors({"patient": patient, "events": []}))
    assert (ok, _engine_accepts_patient(patient)) == (valid, valid)


@pytest.mark.parametrize("event,valid", EVENTS, ids=[json.dumps(e, ensure_ascii=False) for e, _ in EVENTS])
def test_case_schema_agrees_with_the_engine_on_events(generated: dict[str, dict[str, Any]], event: dict[str, Any],
                                                      valid: bool) -> None:
    schema = generated["asuc.case.schema.json"]
    ok = not list(Draft7Validator(schema).iter_errors({"patient": {"id": "p1"}, "events": [event]}))
    assert (ok, _engine_accepts_event(event)) == (valid, valid)


def test_case_schema_lists_every_input_field(generated: dict[str, dict[str, Any]]) -> None:
    defs = generated["asuc.case.schema.json"]["$defs"]
    fields = {n: f for n, f in load_definition("asuc").fields.items() if f is not None}
    from pathway.authoring.schema import authored_fields

    authored = {n: f for n, f in authored_fields(load_definition("asuc")).items() if f.aggregate is None}
    for name, f in authored.items():
        where = {"patient": ["Patient"], "event": ["Event"], "both": ["Patient", "Event"]}[f.scope]
        for d in where:
            prop = defs[d]["properties"][name]
            assert prop["title"] == f.title and f.title in prop["description"]
    assert set(defs["Patient"]["properties"]) | set(defs["Event"]["properties"]) <= set(authored) | {
        "id", "note", "admission_time", "day", "time", "sources"}
    assert "days_in_state" in fields and "days_in_state" not in defs["Event"]["properties"]
    crp = defs["Event"]["properties"]["crp_mg_l"]
    assert crp["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 800}
    assert crp["anyOf"][1]["properties"]["unit"]["enum"] == ["mg/L", "mg/dL"]


def test_scenario_schema_checks_cases_except_refusals(generated: dict[str, dict[str, Any]]) -> None:
    def scenario(event: dict[str, Any], expect: dict[str, Any]) -> dict[str, Any]:
        return {"scenarios": [{"id": "s", "purpose": "p", "case": {"patient": {"id": "p"}, "events": [event]},
                               "expect": expect}]}

    strict = Draft7Validator(generated["asuc.scenario.schema.json"])
    loose = Draft7Validator(generated["scenario.schema.json"])
    good, bad = {"day": 0, "pulse_bpm": 104}, {"day": 0, "pulse_bpm": -5}
    assert not list(strict.iter_errors(scenario(good, {"state": "iv_steroids"})))
    assert list(strict.iter_errors(scenario(bad, {"state": "iv_steroids"})))
    assert not list(strict.iter_errors(scenario(bad, {"refused": {"code": "PW403", "event": 0}})))
    assert not list(loose.iter_errors(scenario(bad, {"state": "iv_steroids"})))
    assert list(loose.iter_errors(scenario(good, {"stat": "iv_steroids"})))


def test_pathway_schemas_follow_the_fields_file(rules_copy: Path) -> None:
    fields = rules_copy / "fields.yaml"
    fields.write_text(fields.read_text(encoding="utf-8") + "\n  lactate_mmol_l:\n    type: number\n    title: Lactate\n"
                      "    unit: mmol/L\n    range: [0, 30]\n    valid_for_days: 1\n", encoding="utf-8")
    case = pathway_schemas(load_definition(rules_copy))["asuc.case.schema.json"]
    assert case["$defs"]["Event"]["properties"]["lactate_mmol_l"]["anyOf"][0] == {"type": "number", "minimum": 0, "maximum": 30}
    assert "lactate_mmol_l" not in case["$defs"]["Patient"]["properties"]


# -- the command and the headers --------------------------------------------------------------

def test_command_writes_the_committed_schemas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "asuc", "-o", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    for path in tmp_path.iterdir():
        assert path.read_text(encoding="utf-8") == (SCHEMA_DIR / path.name).read_text(encoding="utf-8"), path.name
    assert len(list(tmp_path.iterdir())) == 11


def test_command_check(rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = rules_copy.parent / "schema"
    assert main(["schema", str(rules_copy), "--check"]) == 1  # nothing written yet
    assert "stale or missing" in capsys.readouterr().err
    assert main(["schema", str(rules_copy)]) == 0
    assert main(["schema", str(rules_copy), "--check"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("every file has its header")
    (out / "rules.schema.json").write_text("{}\n", encoding="utf-8")
    assert main(["schema", str(rules_copy), "--check"]) == 1
    assert "rules.schema.json: stale or missing" in capsys.readouterr().err


def test_add_headers_inserts_only_the_first_line(rules_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    originals = {f: f.read_bytes() for f in _yaml_files(rules_copy)}
    for f, data in originals.items():  # strip the headers, as in a file someone just created
        text = data.decode("utf-8")
        assert text.startswith(HEADER_PREFIX)
        f.write_text(text.split("\n", 1)[1], encoding="utf-8")
    problems = check_headers(rules_copy)
    assert len(problems) == len(originals) and all(":1: first line should be" in p for p in problems)
    assert main(["schema", str(rules_copy), "--add-headers"]) == 0
    out = capsys.readouterr().out
    assert out.count("added header: ") == len(originals)
    assert {f: f.read_bytes() for f in originals} == originals  # byte for byte what was shipped
    assert check_headers(rules_copy) == []
    assert add_headers(rules_copy) == []  # nothing left to do


def test_add_headers_fixes_a_wrong_header_and_keeps_line_endings(rules_copy: Path) -> None:
    demo = rules_copy / "cases" / "demo.yaml"
    body = demo.read_text(encoding="utf-8").split("\n", 1)[1]
    demo.write_bytes(("# yaml-language-server: $schema=../schema/old.json\r\n" + body.replace("\n", "\r\n")).encode("utf-8"))
    assert add_headers(rules_copy) == [(demo, "fixed")]
    text = demo.read_bytes().decode("utf-8")
    assert text == header_for(demo, rules_copy.parent / "schema", "asuc.case.schema.json") + "\r\n" + body.replace("\n", "\r\n")
    assert text.startswith("# yaml-language-server: $schema=../../schema/asuc.case.schema.json\r\n")


def test_files_of_no_known_kind_are_reported(rules_copy: Path) -> None:
    (rules_copy / "notes.yaml").write_text("a: 1\n", encoding="utf-8")
    (rules_copy / "scenarios" / "new.yaml").write_text("scenarios: []\n", encoding="utf-8")
    problems = check_headers(rules_copy)
    assert any("notes.yaml: no schema is known" in p for p in problems)
    assert any("new.yaml:1: first line should be '# yaml-language-server: $schema=../../schema/asuc.scenario.schema.json'"
               in p for p in problems)
    assert (rules_copy / "notes.yaml", "added") not in add_headers(rules_copy)
    assert (rules_copy / "notes.yaml").read_text(encoding="utf-8") == "a: 1\n"


def test_a_decision_outside_its_states_is_a_schema_valid_event_the_engine_refuses(generated):
    """The schema checks an event's shape; when a decision counts depends on the patient's state,
    which only the engine knows (PW407)."""
    event = {"day": 0, "rescue_choice": "tacrolimus"}
    assert not list(Draft7Validator(generated["asuc.case.schema.json"]).iter_errors({"patient": {"id": "p1"}, "events": [event]}))
    with pytest.raises(InputError) as info:
        load_pathway("asuc").start({"id": "p1"}).observe(event)
    assert info.value.codes == ["PW407"]
