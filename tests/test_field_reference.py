"""The field reference (docs/fields-<id>.md) is generated, complete, and never stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from pathway.authoring.fieldref import collect_usage, field_reference
from pathway.authoring.schema import authored_fields
from pathway.cli.main import main
from pathway.definition import effects as E
from pathway.loading.loader import load_definition

COMMITTED = ROOT / "docs" / "fields-asuc.md"
BASE = ROOT / "tests" / "corpus" / "base"  # a small valid pathway with a site profile


def _row(page: str, name: str) -> list[str]:
    """The cells of the first table row whose first cell is `name`."""
    line = next(line for line in page.splitlines() if line.startswith(f"| `{name}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_committed_page_is_current() -> None:
    fresh = field_reference(load_definition("asuc"))
    assert COMMITTED.is_file(), "docs/fields-asuc.md is missing: run 'pathway fields asuc'"
    assert COMMITTED.read_text(encoding="utf-8") == fresh, "docs/fields-asuc.md is stale: run 'pathway fields asuc'"


def test_every_name_of_the_shipped_pathway_is_listed() -> None:
    definition = load_definition("asuc")
    page = field_reference(definition)
    assert page == field_reference(load_definition("asuc"))  # deterministic
    for name, field in authored_fields(definition).items():
        row = _row(page, name)
        assert row[1].startswith(field.type) and field.title in row[9]
    for name in definition.spec.derived:
        _row(page, name)
    for name, p in definition.spec.parameters.items():
        row = _row(page, name)
        assert row[1] == (f"{p.value:g}" if isinstance(p.value, float) else str(p.value).lower()
                          if isinstance(p.value, bool) else str(p.value))
    for name in ("day", "days_in_state", "state"):
        _row(page, name)
    for kind in E.EFFECT_KINDS:
        assert f"### `{kind}`" in page
    usage = collect_usage(definition)
    for rule in definition.rules:  # every rule that tests a field shows up in that field's row
        for name in rule.requires:
            if name in authored_fields(definition):
                assert f"`{rule.id}`" in _row(page, name)[10], (rule.id, name)
    assert usage.used_by("crp_mg_l")


def test_rows_of_a_small_pathway() -> None:
    page = field_reference(load_definition(BASE))
    assert page.startswith("# Field reference: Minimal pathway for the error corpus (`mini` 1.0.0)\n")
    assert _row(page, "crp_mg_l") == ["`crp_mg_l`", "number", "mg/L", "0–800", "mg/dL", "—", "—", "1 day", "events",
                                      "C-reactive protein", "`flare_severity`"]
    assert _row(page, "weight_kg") == ["`weight_kg`", "number", "kg", "25–300", "g, lb", "—", "—", "until replaced",
                                       "patient or events", "Body weight", "`steroid_dose`"]  # a dose requires the weight
    assert _row(page, "perforation")[-1] == "`perforation_surgery`"
    assert _row(page, "severe_flare") == ["`severe_flare`", "boolean", "true / false", "Severe flare by CRP and stool count",
                                          "`flare_severity` (false / true)", "`start_treatment`"]
    assert _row(page, "steroid_mg_kg_day") == ["`steroid_mg_kg_day`", "1", "mg/kg/day", "Steroid dose", "1, 1.5",
                                               "Guide-2020, Trial-2018", "site: 1.5", "`steroid_dose`"]
    assert _row(page, "crp_limit_mg_l")[-2:] == ["—", "`flare_severity`"]  # no profile sets it
    assert _row(page, "day") == ["`day`", "number", "day", "Clinical day (0 = admission and first IV steroid dose)", "—"]
    assert "| `mg_per_kg_per_day` | number or `$parameter` | optional |" in page
    assert "| `route` | one of `oral`, `iv`, `sc`, `im`, `rectal`, `iv_infusion` | required |" in page


def test_every_effect_argument_has_a_meaning() -> None:
    page = field_reference(load_definition(BASE))
    section = page.split("## Effects", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows), [r for r in rows if r.endswith("|  |")]


def test_page_follows_the_rule_files(tmp_path: Path) -> None:
    root = tmp_path / "mini"
    shutil.copytree(BASE, root)
    (root / "fields.yaml").write_text((root / "fields.yaml").read_text(encoding="utf-8")
                                      + "  albumin_g_l:\n    type: number\n    title: Serum albumin\n    unit: g/L\n"
                                        "    quantity: albumin\n    range: [5, 70]\n    valid_for_days: 2\n", encoding="utf-8")
    rules = root / "rules.yaml"
    old = "        - stool_freq_24h: {gte: 6}\n"
    rules.write_text(rules.read_text(encoding="utf-8").replace(old, old + "        - albumin_g_l: {lt: 30}\n"), encoding="utf-8")
    page = field_reference(load_definition(root))
    assert _row(page, "albumin_g_l") == ["`albumin_g_l`", "number", "g/L", "5–70", "g/dL", "—", "—", "2 days", "events",
                                         "Serum albumin", "`flare_severity`"]


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "fields.md"
    assert main(["fields", "asuc", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")
    assert main(["fields", "asuc", "-o", str(target), "--check"]) == 0
    target.write_text("old\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["fields", "asuc", "-o", str(target), "--check"]) == 1
    assert "stale or missing" in capsys.readouterr().err
    assert main(["fields", str(BASE), "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Field reference: Minimal pathway")
    assert main(["fields", "nope"]) == 2
