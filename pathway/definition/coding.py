"""The FHIR terminology map of a pathway, resolved (``codes_file`` in pathway.yaml).

The loader checks the codes file against the fields file and builds a :class:`Terminology`:
which Observation code records which field in which UCUM units, which coded answers give which
values, and which medicine or procedure records which decision or daily dose. The conversion of
resources (:mod:`pathway.loading.fhir`) only looks codes up here; it knows no code itself.

A UCUM unit is read through ``units:`` into the pathway's own spelling (``Cel`` -> ``°C``), which
the field's quantity converts (:mod:`pathway.definition.units`); every pair is checked at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["UCUM_SYSTEM", "ObservationMap", "OrderMap", "Terminology"]

#: The code system of UCUM units in a FHIR Quantity.
UCUM_SYSTEM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class ObservationMap:
    """An Observation code: the field it records and the UCUM units accepted (UCUM -> pathway unit)."""

    system: str
    code: str
    display: str
    field: str
    units: dict[str, str]
    verified: bool = True
    note: str = ""


@dataclass(frozen=True)
class OrderMap:
    """A medicine or procedure code: the resource types read, the decisions it records in order of
    preference, and the field its daily dose records."""

    system: str
    code: str
    display: str
    resources: tuple[str, ...]
    records: tuple[tuple[str, Any], ...]
    daily_dose: str | None = None
    verified: bool = True
    note: str = ""
    #: the pathway's name for the medicine (an option or a computed dose's name), for order checks
    agent: str | None = None
    #: names that identify it in a draft order's free text (whole words, case-insensitive)
    names: tuple[str, ...] = ()
    #: a rule whose 'avoid' recommendation names it: an order of it while the rule applies is flagged
    avoid: str | None = None


@dataclass(frozen=True)
class Terminology:
    """Look-ups by ``(system URI, code)``."""

    observations: dict[tuple[str, str], ObservationMap] = field(default_factory=dict)
    orders: dict[tuple[str, str], OrderMap] = field(default_factory=dict)
    #: (system, code) -> value of a coded answer
    answers: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: UCUM code -> the pathway's unit
    units: dict[str, str] = field(default_factory=dict)
    #: a code system whose codes are field names (and whose answer codes are enum values)
    local_system: str | None = None
    #: alias -> URI, as the codes file names systems
    systems: dict[str, str] = field(default_factory=dict)

    def observation(self, system: str, code: str) -> ObservationMap | None:
        return self.observations.get((system, code))

    def order(self, system: str, code: str) -> OrderMap | None:
        return self.orders.get((system, code))

    def agents(self) -> dict[str, list[OrderMap]]:
        """The medicines order checks know: agent -> its codes (MedicationRequest codes, in file order)."""
        out: dict[str, list[OrderMap]] = {}
        for omap in self.orders.values():
            if "MedicationRequest" in omap.resources and omap.agent is not None:
                out.setdefault(omap.agent, []).append(omap)
        return out
