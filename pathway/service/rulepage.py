"""The page a card's ``source.url`` opens: one rule with its criteria in clinical words, its evidence (each
source's title and reference) and its sign-off, from the evidence listing auditors read
(:func:`pathway.audit.evidence.evidence`). JSON for a program, HTML for a browser (every text escaped)."""

from __future__ import annotations

import html
from datetime import date
from typing import Any

from pathway.audit.evidence import evidence, signoff_text
from pathway.core.text import one_line
from pathway.runtime.api import Pathway

__all__ = ["rule_document", "rule_html"]


def rule_document(pathway: Pathway, rule_id: str, as_of: date | None = None) -> dict[str, Any] | None:
    """The rule's entry of the evidence listing with the sources it cites; None when there is no such rule."""
    listing = evidence(pathway, as_of)
    rule = next((r for r in listing["rules"] if r["id"] == rule_id), None)
    if rule is None:
        return None
    rule = {k: v for k, v in rule.items() if k != "location"}  # a path on the server is no one's business
    return {"pathway": listing["pathway"], "version": listing["version"], "profile": listing["profile"],
            "as_of": listing["as_of"], "rule": rule,
            "sources": {s: listing["sources"][s] for s in rule["sources"] if s in listing["sources"]}}


def _e(text: Any) -> str:
    """One line (control characters shown as escapes), HTML-escaped."""
    return html.escape(one_line(text))


def rule_html(pathway: Pathway, doc: dict[str, Any]) -> str:
    e = _e
    rule = doc["rule"]
    rows = [("Criteria", rule["when"]), ("Due", rule["due"] or "whenever the patient is in its states"),
            ("States", ", ".join(rule["states"])), ("Evidence", f"strength {rule['strength']}, {rule['status']}"),
            ("Sign-off", signoff_text(rule["signoff"]))]
    if rule["note"]:
        rows.append(("Note", rule["note"]))
    missing = "".join(f"<li>{e(m)}</li>" for m in rule["missing"])
    sources = "".join(
        f"<li><strong>{e(sid)}</strong>: {e(src['title'])}" + (f" ({e(src['ref'])})" if src.get("ref") else "")
        + ("" if src.get("authoritative", True) else " <em>(not authoritative)</em>") + "</li>"
        for sid, src in doc["sources"].items())
    title = f"{pathway.definition.spec.title} {doc['version']}: {rule['title']}"
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(title)}</title></head><body>\n"
            f"<h1>{e(rule['title'])}</h1>\n<p>Rule <code>{e(rule['id'])}</code> of {e(pathway.definition.spec.title)} "
            f"{e(doc['version'])} (profile {e(str(doc['profile']))}), as of {e(doc['as_of'])}.</p>\n<table>"
            + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows) + "</table>\n"
            + (f"<h2>When a value is missing</h2><ul>{missing}</ul>\n" if missing else "")
            + f"<h2>Sources</h2><ul>{sources}</ul>\n</body></html>\n")
