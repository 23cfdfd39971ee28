"""How a YAML value is read: YAML 1.2's booleans and numbers, so no value is silently another number."""

from __future__ import annotations

import math

import pytest

from pathway.core.yamlparse import DOCUMENT_LIMITS, _load, _StrictLoader, load_yaml_text
from pathway.loading.cases import load_case_text


@pytest.mark.parametrize("text,value", [
    # YAML 1.1 reads these as other numbers (1:30 as 90, 017 as 15, 1_000 as 1000, 0b101 as 5)
    ("1:30", "1:30"), ("8:30", "8:30"), ("-1:30:00", "-1:30:00"), ("1_000", "1_000"), ("0b101", "0b101"),
    ("017", 17), ("08", 8), ("0o17", 15), ("0x1F", 31), ("+12", 12), ("-0", 0),
    ("1e5", 100000.0), ("1.5e-3", 0.0015), ("+.5", 0.5), ("1.", 1.0), ("3.0", 3.0),
    ("true", True), ("false", False), ("yes", "yes"), ("off", "off"), ("~", None), ("2026-01-01", "2026-01-01"),
])
def test_scalars_read_as_yaml_1_2_with_either_parser(text, value):
    fast = load_yaml_text(f"a: {text}", "f.yaml").data["a"]
    pure = _load(_StrictLoader, f"a: {text}", "f.yaml", DOCUMENT_LIMITS).data["a"]
    assert fast == value and type(fast) is type(value)
    assert pure == value and type(pure) is type(value)


@pytest.mark.parametrize("text", [".inf", "-.Inf", ".NaN"])
def test_infinities_and_nan_are_still_numbers_for_the_checks_that_refuse_them(text):
    assert not math.isfinite(load_yaml_text(f"a: {text}", "f.yaml").data["a"])


def test_a_zero_padded_value_in_a_case_file_is_its_decimal_value():
    _, case = load_case_text("patient: {id: p, weight_kg: 070}\nevents:\n  - {day: 0, crp_mg_l: 017}\n", "c.yaml")
    assert case["patient"]["weight_kg"] == 70
    assert case["events"][0]["crp_mg_l"] == 17
