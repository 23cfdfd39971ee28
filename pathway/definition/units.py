"""Unit conversions to canonical units (asuc-evidence §13), and how texts show a number.

Keyed by *quantity* (the analyte), because the same unit converts differently for
different analytes (mg/dL of CRP is ×10 to mg/L; mg/dL of cholesterol is ÷38.67 to mmol/L).
A conversion is ``canonical = (value + offset) * factor``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model needs pydantic; this module stays importable without it
    from pathway.definition.model import Display

__all__ = ["CONVERSIONS", "convert", "from_canonical", "units_for", "shown"]

# quantity -> canonical unit -> {other unit: (offset, factor)}
CONVERSIONS: dict[str, tuple[str, dict[str, tuple[float, Fraction]]]] = {
    # mmol/L (per haem, "Fe4" convention): mmol/L = g/dL x 0.6206, so g/dL = mmol/L / 0.6206 (x 1.611)
    "haemoglobin": ("g/dL", {"g/L": (0, Fraction(1, 10)), "mmol/L": (0, 1 / Fraction("0.6206"))}),
    "crp": ("mg/L", {"mg/dL": (0, Fraction(10))}),
    "albumin": ("g/L", {"g/dL": (0, Fraction(10))}),
    "temperature": ("°C", {"°F": (-32, Fraction(5, 9)), "degF": (-32, Fraction(5, 9)), "degC": (0, Fraction(1))}),
    "cholesterol": ("mmol/L", {"mg/dL": (0, 1 / Fraction("38.67"))}),
    # mEq/L: magnesium is divalent, so 1 mmol = 2 mEq
    "magnesium": ("mmol/L", {"mg/dL": (0, 1 / Fraction("2.431")), "mEq/L": (0, Fraction(1, 2))}),
    "potassium": ("mmol/L", {"mEq/L": (0, Fraction(1))}),
    "creatinine": ("µmol/L", {"mg/dL": (0, Fraction("88.4")), "umol/L": (0, Fraction(1))}),
    "glucose": ("mmol/L", {"mg/dL": (0, 1 / Fraction(18))}),
    # 1 mg/L = 1 µg/mL = 1000 µg/L = 1000 ng/mL
    "drug_level": ("ng/mL", {"µg/L": (0, Fraction(1)), "ug/L": (0, Fraction(1)), "mg/L": (0, Fraction(1000)),
                             "µg/mL": (0, Fraction(1000)), "ug/mL": (0, Fraction(1000))}),
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


def from_canonical(quantity: str | None, value: float, unit: str) -> float:
    """``value`` (in the canonical unit of ``quantity``) written in ``unit``: the inverse of
    :func:`convert`, rounded so that converting it back gives ``value`` again to the
    precision :func:`convert` keeps (9 decimals). Raise ``ValueError`` for a unit not known for the quantity."""
    if quantity is None or quantity not in CONVERSIONS:
        raise ValueError(f"no conversions for quantity {quantity!r}")
    canonical, others = CONVERSIONS[quantity]
    if unit == canonical:
        return float(value)
    if unit not in others:
        raise ValueError(f"unit {unit!r} is not known for {quantity}")
    offset, factor = others[unit]
    return round(float(Fraction(str(value)) / factor - Fraction(offset)), 9)


def shown(value: float, display: Display | None = None) -> str:
    """A number as texts show it.

    With a field's ``display``: rounded half away from zero to ``decimals`` places, or to the nearest
    multiple of ``step``, with trailing zeros dropped (0.4525 at 2 decimals -> ``0.45``, 0.8 -> ``0.8``,
    69.853 at step 0.5 -> ``70``). The decimal digits of the number are rounded, not its binary float,
    so 0.125 at 2 decimals is ``0.13``. Without: whole numbers as they are, others to 4 significant
    digits. Only the text is rounded; decisions use the stored value.
    """
    if display is None or (display.decimals is None and display.step is None):
        if isinstance(value, int):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    exact = Decimal(str(value))
    if display.decimals is not None:
        rounded = exact.quantize(Decimal(1).scaleb(-display.decimals), rounding=ROUND_HALF_UP)
    else:
        step = Decimal(str(display.step))
        rounded = (exact / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    return "0" if rounded == 0 else format(rounded.normalize(), "f")
