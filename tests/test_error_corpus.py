"""The error corpus: every broken file yields its declared diagnostic, at its line.

Each file under ``tests/corpus/<folder>/`` starts with
``# expect: PWxxx line N [hint=NAME] [schema=reject|accept]`` (see tests/corpus/README.md):
the diagnostics located in that file must be exactly the declared ones, the "did you mean"
hint must match, and the JSON Schema must reject the file when the mistake is structural.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT
from jsonschema import Draft7Validator

from pathway.authoring.scenario import load_scenarios
from pathway.core.errors import DefinitionError, Diagnostic
from pathway.core.yamlsafe import load_yaml_file
from pathway.loading.loader import load_definition

CORPUS = ROOT / "tests" / "corpus"
SCHEMA_DIR = ROOT / "rules" / "schema"
EXPECT = re.compile(r"^# expect: (PW\d{3}) line (\d+)((?: [a-z]+=\S+)*)\s*$")
ALSO = re.compile(r"^# also: (PW\d{3}) line (\d+)\s*$")

#: folder -> where the broken file goes in a copy of tests/corpus/base (None: see _diagnostics)
TARGET = {"rules": "rules.yaml", "pathway": "pathway.yaml", "fields": "fields.yaml", "sources": "sources.yaml",
          "profiles": "profiles/site.yaml", "hazards": "hazards.yaml", "asuc-rules": None, "scenarios": None}
SCHEMA = {"asuc-rules": "rules.schema.json", "rules": "rules.schema.json", "pathway": "pathway.schema.json",
          "fields": "fields.schema.json", "sources": "sources.schema.json", "profiles": "profile.schema.json",
          "hazards": "hazards.schema.json", "scenarios": "scenario.schema.json"}


@dataclass
class Case:
    path: Path
    code: str
    line: int
    hint: str | None = None
    schema: str | None = None
    also: list[tuple[str, int]] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return self.path.parent.name

    @property
    def name(self) -> str:
        return f"{self.folder}/{self.path.stem}"


def _parse(path: Path) -> Case:
    lines = path.read_text(encoding="utf-8").splitlines()
    m = EXPECT.match(lines[0])
    assert m, f"{path}: the first line must be '# expect: PWxxx line N [hint=NAME] [schema=reject|accept]'"
    options = dict(opt.split("=", 1) for opt in m.group(3).split())
    assert set(options) <= {"hint", "schema"} and options.get("schema") in (None, "reject", "accept"), path
    also = [(a.group(1), int(a.group(2))) for a in map(ALSO.match, lines[1:]) if a]
    return Case(path, m.group(1), int(m.group(2)), options.get("hint"), options.get("schema"), also)


CASES = [_parse(p) for p in sorted(CORPUS.glob("*/*.yaml")) if p.parent.name != "base"]


def _append_rule_file(pathway_yaml: Path, name: str) -> None:
    """Add ``name`` as the last entry of the block list ``rule_files:``."""
    lines = pathway_yaml.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("rule_files:")), None)
    assert start is not None and lines[start].strip() == "rule_files:", "rule_files must be a block list"
    end = start + 1
    while end < len(lines) and lines[end].startswith("  - "):
        end += 1
    lines.insert(end, f"  - {name}\n")
    pathway_yaml.write_text("".join(lines), encoding="utf-8")


def _diagnostics(case: Case, tmp_path: Path) -> tuple[list[Diagnostic], Path]:
    """Load the broken file where it belongs; return the diagnostics and where the file sits."""
    with pytest.raises(DefinitionError) as info:
        if case.folder == "scenarios":
            placed = case.path
            load_scenarios(placed)
        elif case.folder == "asuc-rules":
            root = tmp_path / "asuc"
            shutil.copytree(ROOT / "rules" / "asuc", root)
            placed = root / f"corpus_{case.path.stem}.yaml"
            shutil.copyfile(case.path, placed)
            _append_rule_file(root / "pathway.yaml", placed.name)
            load_definition(root)
        else:
            root = with_hazards(tmp_path) if case.folder == "hazards" else _copy_base(tmp_path)
            placed = root / TARGET[case.folder]
            shutil.copyfile(case.path, placed)
            load_definition(root, profile="site" if case.folder == "profiles" else None)
    return info.value.diagnostics, placed


def _copy_base(tmp_path: Path) -> Path:
    root = tmp_path / "mini"
    shutil.copytree(CORPUS / "base", root)
    return root


def with_hazards(tmp_path: Path) -> Path:
    """A copy of the base pathway whose pathway.yaml names its hazard log (base/hazards.yaml)."""
    root = _copy_base(tmp_path)
    path = root / "pathway.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("fields_file: fields.yaml\n") == 1
    path.write_text(text.replace("fields_file: fields.yaml\n", "fields_file: fields.yaml\nhazards_file: hazards.yaml\n"),
                    encoding="utf-8")
    return root


def _in(diags: list[Diagnostic], placed: Path) -> list[Diagnostic]:
    return [d for d in diags if Path(d.file).resolve() == placed.resolve()]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_file_gives_its_diagnostic(case: Case, tmp_path: Path) -> None:
    diags, placed = _diagnostics(case, tmp_path)
    mine = _in(diags, placed)
    got = sorted((d.code, d.line) for d in mine)
    assert got == sorted([(case.code, case.line), *case.also]), "\n".join(map(str, diags))
    d = next(d for d in mine if (d.code, d.line) == (case.code, case.line))
    assert d.col >= 1
    assert d.hint == case.hint, str(d)
    text = str(d)
    assert text.startswith(f"{d.file}:{d.line}:{d.col}: ") and text.endswith(f"[{case.code}]")
    if case.hint:
        assert f"(did you mean '{case.hint}'?)" in text
    if case.folder == "asuc-rules":
        assert mine == diags, "a rule file dropped into the shipped pathway must break nothing else"


@pytest.mark.parametrize("case", [c for c in CASES if c.schema], ids=[c.name for c in CASES if c.schema])
def test_json_schema_rejects_structural_mistakes(case: Case) -> None:
    schema = json.loads((SCHEMA_DIR / SCHEMA[case.folder]).read_text(encoding="utf-8"))
    data = load_yaml_file(str(case.path), case.path.name).data
    errors = list(Draft7Validator(schema).iter_errors(data))
    if case.schema == "reject":
        assert errors, f"{case.name}: the schema accepts a structural mistake ({case.code})"
    else:
        assert not errors, f"{case.name}: the schema rejects a file that is structurally right: {errors[0].message}"


def test_every_case_says_what_the_schema_does() -> None:
    for case in CASES:
        if case.code in ("PW100", "PW101"):  # not loadable as data, so no schema verdict
            assert case.schema is None, case.name
        else:
            assert case.schema is not None, f"{case.name}: add schema=reject or schema=accept"
        if case.code == "PW110":  # unknown keys and operators are structural: the schema knows every key
            assert case.schema == "reject", case.name


def test_corpus_covers_the_kinds_of_mistake() -> None:
    assert len(CASES) >= 25
    assert {c.folder for c in CASES} == set(TARGET)
    codes = {c.code for c in CASES}
    assert {"PW100", "PW101", "PW110", "PW111", "PW112", "PW201", "PW202", "PW203", "PW204", "PW205", "PW206",
            "PW207", "PW208", "PW209", "PW210", "PW211", "PW212"} <= codes
    hints = {c.hint for c in CASES}
    assert {"crp_mg_l", "albumin_g_l", "iv_steroids", "pulse_bpm"} <= hints  # unit and name typos
    assert {c.schema for c in CASES} == {"reject", "accept", None}


def test_base_pathway_is_valid_and_matches_the_schemas(tmp_path: Path) -> None:
    base = CORPUS / "base"
    definition = load_definition(base)
    assert [r.id for r in definition.rules][:2] == ["flare_severity", "start_treatment"]
    assert definition.hazards == () and [h.id for h in load_definition(with_hazards(tmp_path)).hazards] == ["HZ-1", "HZ-2"]
    assert load_definition(base, profile="site").params["steroid_mg_kg_day"] == 1.5
    for rel, name in [("pathway.yaml", "pathway"), ("fields.yaml", "fields"), ("sources.yaml", "sources"),
                      ("rules.yaml", "rules"), ("profiles/site.yaml", "profile"), ("hazards.yaml", "hazards")]:
        schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
        data = load_yaml_file(str(base / rel), rel).data
        assert not list(Draft7Validator(schema).iter_errors(data)), rel


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_pw212_points_at_every_test_of_the_underived_fact(tmp_path: Path) -> None:
    root = tmp_path / "mini"
    shutil.copytree(CORPUS / "base", root)
    _edit(root / "rules.yaml", "      - derive: {severe_flare: true}\n", "      - alert: {text: Severe flare.}\n")
    _edit(root / "rules.yaml", "      - derive: {severe_flare: false}\n", "      - alert: {text: Not severe.}\n")
    _edit(root / "rules.yaml", "    when: {visible_blood: false}\n",
          "    when:\n      all:\n        - visible_blood: false\n        - severe_flare: false\n")
    with pytest.raises(DefinitionError) as info:
        load_definition(root)
    found = [(d.code, d.line) for d in info.value.diagnostics]
    text = (root / "rules.yaml").read_text(encoding="utf-8").splitlines()
    lines = [i + 1 for i, line in enumerate(text) if "severe_flare:" in line and "derive" not in line]
    assert found == [("PW212", n) for n in lines] and len(lines) == 2
    assert "no rule derives it" in info.value.diagnostics[0].message


def test_pw212_waits_for_other_errors_to_be_fixed(tmp_path: Path) -> None:
    """With a broken rule the set of derivations is incomplete, so PW212 would be noise."""
    root = tmp_path / "mini"
    shutil.copytree(CORPUS / "base", root)
    _edit(root / "rules.yaml", "      - derive: {severe_flare: true}\n", "      - derive: {severe_flare: true}\n"
          "      - alarm: {text: x}\n")
    with pytest.raises(DefinitionError) as info:
        load_definition(root)
    assert [d.code for d in info.value.diagnostics] == ["PW110"]


def test_pw212_on_the_shipped_pathway(rules_copy: Path) -> None:
    """Removing the only derivation of colonic_dilatation flags the rule that tests it."""
    _edit(rules_copy / "emergency.yaml", "      - derive: {colonic_dilatation: true}\n", "")
    with pytest.raises(DefinitionError) as info:
        load_definition(rules_copy)
    diags = info.value.diagnostics
    assert len(diags) == 2  # toxic_megacolon and toxicity_with_old_film both test it
    for d in diags:
        line = (rules_copy / "emergency.yaml").read_text(encoding="utf-8").splitlines()[d.line - 1]
        assert d.code == "PW212" and d.file.endswith("emergency.yaml") and line.strip().startswith("- colonic_dilatation:")
