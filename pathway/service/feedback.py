"""The CDS Hooks feedback log: which cards were issued, which were accepted or overridden, and why, per rule.

    log = FeedbackLog("sessions.db")                  # the same locations as SessionStore (SQLite)
    log.issued("asuc-patient-view", cards)            # remember uuid -> rule, kind, patient
    log.record("asuc-patient-view", body)             # the CDS Hooks 2.0 feedback body
    log.summary()                                     # {rule: {issued, accepted, overridden, override_reasons}}

A card is known by the uuid it was issued with (deterministic: :func:`pathway.service.cards.card_uuid`, so
issuing the same state twice remembers it once). Feedback is validated whole before anything is stored: a
card uuid the service never issued (PW451) or an entry not of the CDS Hooks 2.0 shape (PW452) refuses the
whole body with a located diagnostic (``feedback[2].card``), and nothing of it is recorded. The same
feedback entry sent again (card, outcome and timestamp) is recorded once.

The tables (``cds_cards``, ``cds_feedback``) live beside the session store's in a SQLite file, or in their own
file; a ``postgresql://`` location is refused for now (the PostgreSQL driver is reserved to the runtime's
store module by the import contracts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import datetime
from typing import Any

from pathway.core.errors import Diagnostic, InputError
from pathway.core.text import one_line
from pathway.runtime.storebase import StoreUnavailable
from pathway.service.cards import EXTENSION, OVERRIDE_REASONS

__all__ = ["FeedbackLog", "OUTCOMES", "empty_summary"]

#: the outcomes of CDS Hooks 2.0 feedback
OUTCOMES = ("accepted", "overridden")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cds_cards (
        service  TEXT NOT NULL,
        uuid     TEXT NOT NULL,
        rule     TEXT NOT NULL,
        kind     TEXT NOT NULL,
        pathway  TEXT NOT NULL,
        patient  TEXT NOT NULL,
        suggestions TEXT NOT NULL,
        PRIMARY KEY (service, uuid)
    )""",
    """CREATE TABLE IF NOT EXISTS cds_feedback (
        service   TEXT NOT NULL,
        uuid      TEXT NOT NULL,
        outcome   TEXT NOT NULL,
        accepted  TEXT NOT NULL,
        reason_system TEXT,
        reason_code   TEXT,
        comment   TEXT,
        at        TEXT NOT NULL,
        PRIMARY KEY (service, uuid, outcome, at)
    )""",
)

_REASONS = {(r["system"], r["code"]) for r in OVERRIDE_REASONS}


def empty_summary() -> dict[str, Any]:
    """The summary entry of a rule with no card issued."""
    return {"issued": 0, "accepted": 0, "overridden": 0, "override_reasons": {}}


def _bad(where: str, message: str, code: str = "PW452") -> Diagnostic:
    return Diagnostic(where, 0, 0, code, message)


class FeedbackLog:
    """Cards issued and the feedback on them, in a SQLite file (``":memory:"`` by default); thread-safe."""

    def __init__(self, location: str | os.PathLike[str] = ":memory:"):
        name = os.fspath(location)
        if name.startswith(("postgresql://", "postgres://")):
            raise StoreUnavailable("the feedback log keeps its tables in SQLite: give a file path (the session "
                                   "store's file may be used); PostgreSQL is not supported for it yet")
        self._name = os.path.basename(name) or name
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
            with self._lock:
                if name != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the feedback log {self._name} cannot be opened: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------------

    def issued(self, service_id: str, cards: list[dict[str, Any]]) -> int:
        """Remember the cards a service returned (uuid -> rule, kind, pathway, patient, suggestion uuids);
        a card issued before is kept once. Cards without a uuid or this package's extension are skipped.
        Returns how many cards were new."""
        rows = []
        for card in cards:
            ext = (card.get("extension") or {}).get(EXTENSION) if isinstance(card, dict) else None
            if not isinstance(ext, dict) or not isinstance(card.get("uuid"), str):
                continue
            suggestions = [s["uuid"] for s in card.get("suggestions") or [] if isinstance(s, dict) and "uuid" in s]
            rows.append((service_id, card["uuid"], str(ext.get("rule", "")), str(ext.get("kind", "")),
                         str(ext.get("pathway", "")), str(ext.get("patient", "")), json.dumps(suggestions)))
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO cds_cards (service, uuid, rule, kind, pathway, patient, "
                                     "suggestions) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def record(self, service_id: str, feedback: Any) -> int:
        """Store a CDS Hooks 2.0 feedback body (``{"feedback": [...]}``) for ``service_id``: validated whole
        first (InputError PW451/PW452, located, nothing stored), then stored in one transaction. Returns how
        many entries were new (an entry sent again is stored once)."""
        if not isinstance(feedback, dict) or not isinstance(feedback.get("feedback"), list):
            raise InputError([_bad("feedback", "a feedback body is a JSON object with a 'feedback' list")])
        entries = feedback["feedback"]
        diags: list[Diagnostic] = []
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            for i, entry in enumerate(entries):
                row = self._check(service_id, entry, f"feedback[{i}]", diags)
                if row is not None:
                    rows.append(row)
            if diags:
                raise InputError(diags)
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO cds_feedback (service, uuid, outcome, accepted, "
                                     "reason_system, reason_code, comment, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def _check(self, service_id: str, entry: Any, where: str, diags: list[Diagnostic]) -> tuple[Any, ...] | None:
        if not isinstance(entry, dict):
            diags.append(_bad(where, "a feedback entry is a JSON object"))
            return None
        card = entry.get("card")
        if not isinstance(card, str):
            diags.append(_bad(f"{where}.card", "the card's uuid (text) is required"))
            return None
        row = self._db.execute("SELECT suggestions FROM cds_cards WHERE service = ? AND uuid = ?",
                               (service_id, card)).fetchone()
        if row is None:
            diags.append(_bad(f"{where}.card", f"no card {one_line(card)[:60]!r} was issued by service "
                                               f"{one_line(service_id)[:60]!r}", "PW451"))
            return None
        offered = set(json.loads(row[0]))
        outcome = entry.get("outcome")
        if outcome not in OUTCOMES:
            diags.append(_bad(f"{where}.outcome", f"the outcome is accepted or overridden, not {one_line(repr(outcome))[:60]}"))
            return None
        at = entry.get("outcomeTimestamp")
        try:
            if not isinstance(at, str):
                raise ValueError
            datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            diags.append(_bad(f"{where}.outcomeTimestamp", "outcomeTimestamp is required: an ISO 8601 date-time "
                                                          "(2026-03-05T08:00:00Z)"))
            return None
        accepted: list[str] = []
        chosen = entry.get("acceptedSuggestions")
        if chosen is not None:
            if outcome != "accepted":
                diags.append(_bad(f"{where}.acceptedSuggestions", "accepted suggestions come with outcome accepted"))
                return None
            if not isinstance(chosen, list):
                diags.append(_bad(f"{where}.acceptedSuggestions", "acceptedSuggestions is a list of {\"id\": ...}"))
                return None
            for k, s in enumerate(chosen):
                sid = s.get("id") if isinstance(s, dict) else None
                if not isinstance(sid, str) or sid not in offered:
                    diags.append(_bad(f"{where}.acceptedSuggestions[{k}].id",
                                      f"{one_line(repr(sid))[:60]} is not a suggestion of card {one_line(card)[:60]}"))
                    return None
                accepted.append(sid)
        reason_system = reason_code = comment = None
        override = entry.get("overrideReason")
        if override is not None:
            if outcome != "overridden":
                diags.append(_bad(f"{where}.overrideReason", "an override reason comes with outcome overridden"))
                return None
            if not isinstance(override, dict):
                diags.append(_bad(f"{where}.overrideReason", "overrideReason is a JSON object (reason, userComment)"))
                return None
            reason = override.get("reason")
            if reason is not None:
                if not isinstance(reason, dict) or (reason.get("system"), reason.get("code")) not in _REASONS:
                    codes = ", ".join(r["code"] for r in OVERRIDE_REASONS)
                    diags.append(_bad(f"{where}.overrideReason.reason",
                                      f"the reason is one of the card's overrideReasons Codings ({codes})"))
                    return None
                reason_system, reason_code = str(reason["system"]), str(reason["code"])
            text = override.get("userComment")
            if text is not None and not isinstance(text, str):
                diags.append(_bad(f"{where}.overrideReason.userComment", "userComment is text"))
                return None
            comment = text
        return (service_id, card, outcome, json.dumps(accepted), reason_system, reason_code, comment, at)

    # -- reading -------------------------------------------------------------------------------------------

    def summary(self, service_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Per rule (sorted): cards ``issued``, feedback entries ``accepted`` and ``overridden``, and the
        ``override_reasons`` given (reason code -> count; ``unstated`` for an override without a reason).
        Plain data: the HTML report shows it (``pathway report --feedback LOCATION``)."""
        where, args = ("WHERE service = ?", (service_id,)) if service_id is not None else ("", ())
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for rule, n in self._db.execute(f"SELECT rule, COUNT(*) FROM cds_cards {where} GROUP BY rule", args):
                out.setdefault(rule, empty_summary())["issued"] = int(n)
            on = "c.service = f.service AND c.uuid = f.uuid"
            fwhere = "WHERE f.service = ?" if service_id is not None else ""
            rows = self._db.execute(f"SELECT c.rule, f.outcome, f.reason_code, COUNT(*) FROM cds_feedback f "
                                    f"JOIN cds_cards c ON {on} {fwhere} GROUP BY c.rule, f.outcome, f.reason_code", args)
            for rule, outcome, reason, n in rows:
                entry = out.setdefault(rule, empty_summary())
                entry[outcome] += int(n)
                if outcome == "overridden":
                    key = reason or "unstated"
                    entry["override_reasons"][key] = entry["override_reasons"].get(key, 0) + int(n)
        for entry in out.values():
            entry["override_reasons"] = dict(sorted(entry["override_reasons"].items()))
        return dict(sorted(out.items()))
