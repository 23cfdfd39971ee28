"""Units in the shipped ASUC pathway: converted values shown rounded, haemoglobin in mmol/L,
and the ambiguity bands chosen for its fields."""

from __future__ import annotations

from typing import Any

import pytest
from cases import ADMIT, DAY3_FAIL, patient

from pathway.definition.units import units_for


def _options(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["option"]: o for o in result["options"]}


def test_every_converted_field_declares_its_display_precision(pw: Any) -> None:
    for name, field in pw.definition.fields.items():
        if field is not None and units_for(field.quantity) and field.aggregate is None:
            assert field.display is not None, f"{name} converts units but declares no display precision"


def test_reasons_against_ciclosporin_show_converted_labs_rounded(pw: Any) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe(dict(DAY3_FAIL))
    r = s.observe({"day": 3, "cholesterol_mmol_l": {"value": 110, "unit": "mg/dL"},
                   "magnesium_mmol_l": {"value": 1.1, "unit": "mg/dL"},
                   "creatinine_umol_l": {"value": 1.6, "unit": "mg/dL"},
                   "active_serious_infection": False, "bp_uncontrolled": False})
    csa = _options(r)["ciclosporin"]
    assert csa["available"] is False
    assert csa["against"] == ["Cholesterol 2.84 mmol/L is below 3 mmol/L (seizure risk).",
                              "Magnesium 0.45 mmol/L is below 0.5 mmol/L (seizure risk); correct it or consider oral "
                              "therapy.",
                              "Creatinine 141 µmol/L is above 130 µmol/L (renal impairment)."]
    facts = s.dump()["facts"]  # decisions keep the full value
    assert facts["cholesterol_mmol_l"] == pytest.approx(2.844582)
    assert facts["magnesium_mmol_l"] == pytest.approx(0.452489)
    assert facts["creatinine_umol_l"] == pytest.approx(141.44)


@pytest.mark.parametrize("mmol_l, g_dl", [(6.0, 9.668063), (6.5, 10.473735), (4.6, 7.412182)])
def test_haemoglobin_in_mmol_l_is_converted(pw: Any, mmol_l: float, g_dl: float) -> None:
    s = pw.start(patient())
    s.observe({"day": 0, "hb_g_dl": {"value": mmol_l, "unit": "mmol/L"}})
    assert s.dump()["facts"]["hb_g_dl"] == pytest.approx(g_dl, abs=1e-6)
    assert "mmol/L" in units_for(pw.definition.fields["hb_g_dl"].quantity)
