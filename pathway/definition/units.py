"""Unit conversions to canonical units (asuc-evidence §13).

Keyed by *quantity* (the analyte), because the same unit converts differently for
different analytes (mg/dL of CRP is ×10 to mg/L; mg/dL of cholesterol is ÷38.67 to mmol/L).
A conversion is ``canonical = (value + offset) * factor``.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["CONVERSIONS", "convert", "units_for"]

# quantity -> canonical unit -> {other unit: (offset, factor)}
CONVERSIONS: dict[str, tuple[str, dict[str, tuple[float, Fraction]]]] = {
    "haemoglobin": ("g/dL", {"g/L": (0, Fraction(1, 10))}),
    "crp": ("mg/L", {"mg/dL": (0, Fraction(10))}),
    "albumin": ("g/L", {"g/dL": (0, Fraction(10))}),
    "temperature": ("°C", {"°F": (-32, Fraction(5, 9)), "degF": (-32, Fraction(5, 9)), "degC": (0, Fraction(1))}),
    "cholesterol": ("mmol/L", {"mg/dL": (0, 1 / Fraction("38.67"))}),
    "magnesium": ("mmol/L", {"mg/dL": (0, 1 / Fraction("2.431"))}),
    "creatinine": ("µmol/L", {"mg/dL": (0, Fraction("88.4")), "umol/L": (0, Fraction(1))}),
    "glucose": ("mmol/L", {"mg/dL": (0, 1 / Fraction(18))}),
    "drug_level": ("ng/mL", {"µg/L": (0, Fraction(1)), "ug/L": (0, Fraction(1))}),
    "weight": ("kg", {"g": (0, Fraction(1, 1000)), "lb": (0, Fraction("0.45359237"))}),
    "length": ("cm", {"mm": (0, Fraction(1, 10))}),
    "cell_count": ("10^9/L", {"10^3/µL": (0, Fraction(1)), "10^3/uL": (0, Fraction(1)), "/µL": (0, Fraction(1, 1000)),
                              "/uL": (0, Fraction(1, 1000)), "/mm3": (0, Fraction(1, 1000)), "G/L": (0, Fraction(1))}),
}


def units_for(quantity: str | None) -> list[str]:
    if quantity is None or quantity not in CONVERSIONS:
        return []
    canonical, others = CONVERSIONS[quantity]
    return [canonical, *others]


def convert(quantity: str | None, value: float, unit: str) -> float | None:
    """Value in the canonical unit of ``quantity``, or None when the unit is not known for it."""
    if quantity is None or quantity not in CONVERSIONS:
        return None
    canonical, others = CONVERSIONS[quantity]
    if unit == canonical:
        return float(value)
    if unit not in others:
        return None
    offset, factor = others[unit]
    # Round away binary noise (e.g. 100.04 °F -> 37.8 °C exactly) without losing real precision.
    return round(float((Fraction(str(value)) + Fraction(offset)) * factor), 6)
