"""Units in the shipped ASUC pathway: converted values shown rounded, haemoglobin in mmol/L,
and the ambiguity bands chosen for its fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cases import ADMIT, DAY3_FAIL, patient

from pathway import InputError
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
                   "active_serious_infection": False, "bp_uncontrolled": False,
                   "cdiff_result": "negative", "cmv_biopsy_result": "negative"})
    csa = _options(r)["ciclosporin"]
    assert csa["available"] is False  # creatinine 141 > 130 excludes it
    assert csa["against"] == ["Cholesterol 2.84 mmol/L is below 3 mmol/L: seizure risk with IV ciclosporin; oral "
                              "ciclosporin is suggested as an alternative.",
                              "Magnesium 0.45 mmol/L is below 0.5 mmol/L: seizure risk with IV ciclosporin; correct it "
                              "and recheck, or consider oral therapy.",
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


# -- the ambiguity bands of the shipped fields -----------------------------------------------------

#: field -> (other unit, band, action), as chosen in rules/asuc/fields.yaml
BANDS = {
    "crp_mg_l": [("mg/dL", (0.5, 80), "warn")],
    "magnesium_mmol_l": [("mg/dL", (1.0, 3.0), "refuse")],
    "glucose_mmol_l": [("mg/dL", (20, 60), "refuse")],
    "albumin_g_l": [("g/dL", (5, 7), "refuse")],
    "creatinine_umol_l": [("mg/dL", (10, 22.6), "refuse")],
    "cholesterol_mmol_l": [("mg/dL", (19.4, 20), "refuse")],
    "hb_g_dl": [("g/L", (20, 25), "refuse"), ("mmol/L", (5.0, 10.5), "warn")],
    "tacrolimus_trough_ng_ml": [("mg/L", (0.001, 0.1), "refuse")],
}


def test_the_shipped_bands(pw: Any) -> None:
    declared = {name: [(b.unit, b.range, b.action) for b in f.ambiguous]
                for name, f in pw.definition.fields.items() if f is not None and f.ambiguous}
    assert declared == BANDS
    for name in BANDS:  # each choice is explained where the band is declared
        assert "refused" in pw.definition.fields[name].description or "warning" in pw.definition.fields[name].description
    assert not [n for n, f in pw.definition.fields.items() if f is not None and f.unit_required]


def _bare(pw: Any, field: str, value: float) -> tuple[str, dict[str, Any] | None]:
    """'refused', 'warned' or 'accepted' for a bare number of an event field on day 0."""
    s = pw.start(patient())
    try:
        r = s.observe({"day": 0, field: value})
    except InputError as exc:
        assert [d.code for d in exc.diagnostics] == ["PW408"], exc
        return "refused", None
    warnings = [a for a in r["alerts"] if a["rule"] == f"input.{field}"]
    return ("warned", warnings[0]) if warnings else ("accepted", None)


@pytest.mark.parametrize("field, below, low, high, above", [
    ("magnesium_mmol_l", 0.99, 1.0, 3.0, None),  # 3.0 is also the top of the plausible range
    ("glucose_mmol_l", 19.9, 20, 60, None),
    ("albumin_g_l", None, 5, 7, 7.1),  # 5 is the bottom of the plausible range
    ("creatinine_umol_l", None, 10, 22.6, 22.7),
    ("cholesterol_mmol_l", 19.3, 19.4, 20, None),
    ("crp_mg_l", 0.49, 0.5, 80, 80.1),
    ("tacrolimus_trough_ng_ml", 0, 0.001, 0.1, 0.11),  # 0: nothing measured, read as ng/mL
])
def test_band_edges_of_the_shipped_fields(pw: Any, field: str, below: float | None, low: float, high: float,
                                          above: float | None) -> None:
    inside = "warned" if BANDS[field][0][2] == "warn" else "refused"
    assert _bare(pw, field, low)[0] == inside and _bare(pw, field, high)[0] == inside
    for outside in (below, above):
        if outside is not None:
            assert _bare(pw, field, outside)[0] == "accepted", outside


@pytest.mark.parametrize("value, outcome", [(4.9, "accepted"), (5.0, "warned"), (9.0, "warned"), (10.5, "warned"),
                                            (10.6, "accepted"), (19.9, "accepted"), (20, "refused"), (25, "refused")])
def test_haemoglobin_bands(pw: Any, value: float, outcome: str) -> None:
    assert _bare(pw, "hb_g_dl", value)[0] == outcome


def test_the_unit_traps(pw: Any) -> None:
    """Mg 1.1 meant as mg/dL, CRP 5.2 meant as mg/dL, glucose 50 meant as mg/dL."""
    s = pw.start(patient())
    with pytest.raises(InputError) as info:
        s.observe({"day": 0, "magnesium_mmol_l": 1.1})
    assert info.value.diagnostics[0].message == ("magnesium_mmol_l = 1.1 is ambiguous: 1.1 mmol/L, or 1.1 mg/dL = "
                                                 "0.45 mmol/L; give {value, unit}")
    with pytest.raises(InputError) as info:
        s.observe({"day": 0, "glucose_mmol_l": 50})
    assert info.value.diagnostics[0].message == ("glucose_mmol_l = 50 is ambiguous: 50 mmol/L, or 50 mg/dL = "
                                                 "2.8 mmol/L; give {value, unit}")
    outcome, alert = _bare(pw, "crp_mg_l", 5.2)
    assert outcome == "warned" and alert is not None and "if it was 5.2 mg/dL, it is 52 mg/L" in alert["text"]
    assert alert["evidence"]["sources"][:3] == ["ECCO-2017", "Travis-1996", "BSG-2019-T5"]


@pytest.mark.parametrize("field, unit", [("magnesium_mmol_l", "mmol/L"), ("glucose_mmol_l", "mmol/L"),
                                         ("albumin_g_l", "g/L"), ("creatinine_umol_l", "µmol/L"),
                                         ("crp_mg_l", "mg/L"), ("hb_g_dl", "g/dL")])
def test_the_canonical_unit_said_out_loud_is_never_ambiguous(pw: Any, field: str, unit: str) -> None:
    band = pw.definition.fields[field].ambiguous[0]
    s = pw.start(patient())
    r = s.observe({"day": 0, field: {"value": band.range[0], "unit": unit}})
    assert s.dump()["facts"][field] == band.range[0]
    assert not [a for a in r["alerts"] if a["rule"].startswith("input.")]


def test_refused_rescue_labs_leave_the_session_byte_identical(pw: Any) -> None:
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 3, "stool_freq_24h": 5, "visible_blood": True, "crp_mg_l": 5.2})  # a warning
    before, result = json.dumps(s.dump(), sort_keys=True), s.result()
    with pytest.raises(InputError):
        s.observe({"day": 3, "crp_mg_l": 6.0, "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 1.1,
                   "creatinine_umol_l": 70})
    assert json.dumps(s.dump(), sort_keys=True) == before and s.result() == result
    assert [a["rule"] for a in result["alerts"] if a["rule"].startswith("input.")] == ["input.crp_mg_l"]
