"""The FHIR mapping table of a pathway, generated from its codes file (docs/integrating.md, drift-tested)."""

from __future__ import annotations

from pathway.core.text import md_code, md_inline
from pathway.definition.pathway import PathwayDef

__all__ = ["mapping_markdown", "BEGIN", "END"]

BEGIN = "<!-- fhir-mapping:begin (generated from rules/asuc/codes.yaml by pathway.authoring.fhirmap) -->"
END = "<!-- fhir-mapping:end -->"


def _system(definition: PathwayDef, uri: str) -> str:
    codes = definition.codes
    alias = next((a for a, u in codes.systems.items() if u == uri), None) if codes else None
    return {"loinc": "LOINC", "snomed": "SNOMED CT", "rxnorm": "RxNorm", "local": "pathway field"}.get(alias or "", uri)


def mapping_markdown(definition: PathwayDef) -> str:
    """Markdown tables: Observation codes -> field, canonical unit and accepted UCUM units; orders ->
    decisions and daily dose; coded answers; and the UCUM table."""
    codes = definition.codes
    if codes is None:
        return f"Pathway {md_inline(definition.id)} has no codes file: it reads no FHIR.\n"
    lines = ["| code | system | meaning | field | unit | UCUM units accepted |", "|---|---|---|---|---|---|"]
    for omap in codes.observations.values():
        fdef = definition.fields[omap.field]
        units = ", ".join(md_code(u) for u in omap.units) or "-"
        flag = "" if omap.verified else " (unverified)"
        lines.append(f"| {md_code(omap.code)} | {_system(definition, omap.system)} | {md_inline(omap.display)}{flag} "
                     f"| {md_code(omap.field)} | {md_inline(fdef.unit or '-')} | {units} |")
    lines += ["", "| code | system | meaning | read from | records (first one due) | daily dose | order checks as |",
              "|---|---|---|---|---|---|---|"]
    for order in codes.orders.values():
        records = "; ".join(md_code(f"{name}: {str(value).lower() if isinstance(value, bool) else value}")
                            for name, value in order.records) or "-"
        agent = (md_code(order.agent) if order.agent else
                 f"to avoid ({md_code(order.avoid)})" if order.avoid else "-")
        if (order.agent or order.avoid) and order.names:
            agent += " (" + ", ".join(md_inline(n) for n in order.names) + ")"
        lines.append(f"| {md_code(order.code)} | {_system(definition, order.system)} | {md_inline(order.display)} "
                     f"| {', '.join(order.resources)} | {records} | {md_code(order.daily_dose) if order.daily_dose else '-'} "
                     f"| {agent} |")
    lines += ["", "| answer code | system | value |", "|---|---|---|"]
    for (system, code), value in codes.answers.items():
        shown = str(value).lower() if isinstance(value, bool) else value
        lines.append(f"| {md_code(code)} | {_system(definition, system)} | {md_code(shown)} |")
    lines += ["", "| UCUM code | read as |", "|---|---|"]
    lines += [f"| {md_code(ucum)} | {md_inline(unit)} |" for ucum, unit in codes.units.items()]
    if codes.local_system:
        lines += ["", f"Any other field: an Observation coded {md_code(codes.local_system)} with the field's name as "
                      "its code (a coded answer in that system gives an enum value by name)."]
    return "\n".join(lines) + "\n"
