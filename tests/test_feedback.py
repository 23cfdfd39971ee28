"""The CDS Hooks feedback log: cards issued, accepted or overridden per rule, and the report's acceptance section."""

from __future__ import annotations

import io
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from cases import RESCUE_LABS, rescue, to_rescue

from pathway.cli.main import main
from pathway.core.errors import InputError
from pathway.runtime.storebase import StoreUnavailable
from pathway.service.cards import EXTENSION, OVERRIDE_SYSTEM, patient_view_cards
from pathway.service.feedback import FeedbackLog

SERVICE = "asuc-patient-view"
WHEN = "2026-03-05T09:00:00Z"


def _session(pw: Any, case: dict[str, Any]) -> Any:
    session = pw.start(case["patient"])
    for event in case["events"]:
        session.observe(event)
    return session


def _by_rule(cards: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    return next(c for c in cards if c["extension"][EXTENSION]["rule"] == rule)


def _reason(code: str) -> dict[str, Any]:
    return {"reason": {"system": OVERRIDE_SYSTEM, "code": code}, "userComment": "discussed on the ward round"}


@pytest.fixture
def issued(pw: Any, backend: Any) -> Iterator[tuple[FeedbackLog, list[dict[str, Any]], list[dict[str, Any]]]]:
    """A log on each store backend (SQLite; PostgreSQL when PATHWAY_TEST_POSTGRES is set) with cards issued."""
    log = FeedbackLog(backend.location)
    no_agent = to_rescue()
    no_agent["events"][2] = dict(RESCUE_LABS, active_serious_infection=True)
    proposal_cards = patient_view_cards(pw, _session(pw, no_agent))
    dose_cards = patient_view_cards(pw, _session(pw, rescue("tacrolimus")))
    assert log.issued(SERVICE, proposal_cards) == len(proposal_cards)
    assert log.issued(SERVICE, dose_cards) == len(dose_cards)
    assert log.issued(SERVICE, dose_cards) == 0  # the same state issued again is remembered once
    yield log, proposal_cards, dose_cards
    log.close()


def test_the_summary_counts_cards_issued_accepted_and_overridden_per_rule_with_the_reasons(issued):
    log, proposals, doses = issued
    proposal = _by_rule(proposals, "no_eligible_rescue")
    proposal = next(c for c in proposals if c["extension"][EXTENSION]["kind"] == "proposal")
    dose = _by_rule(doses, "tac_start_dose")
    body = {"feedback": [
        {"card": dose["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": dose["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": WHEN},
        {"card": proposal["uuid"], "outcome": "overridden", "overrideReason": _reason("patient-declined"),
         "outcomeTimestamp": WHEN},
        {"card": proposal["uuid"], "outcome": "overridden", "overrideReason": _reason("clinical-judgement"),
         "outcomeTimestamp": "2026-03-05T10:00:00Z"},
        {"card": proposal["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-05T11:00:00+00:00"},
    ]}
    assert log.record(SERVICE, body) == 4
    assert log.record(SERVICE, body) == 0  # sent again: recorded once
    summary = log.summary()
    assert summary["tac_start_dose"] == {"issued": 1, "accepted": 1, "overridden": 0, "override_reasons": {}}
    assert summary["no_eligible_rescue"]["issued"] == 2  # its alert and its proposal
    assert summary["no_eligible_rescue"]["accepted"] == 0 and summary["no_eligible_rescue"]["overridden"] == 3
    assert summary["no_eligible_rescue"]["override_reasons"] == {"clinical-judgement": 1, "patient-declined": 1,
                                                                  "unstated": 1}
    issued_total = len({c["uuid"] for c in proposals + doses})
    assert sum(e["issued"] for e in summary.values()) == issued_total
    assert log.summary("another-service") == {}


def test_feedback_on_a_card_never_issued_is_refused_whole_and_located(issued):
    log, _proposals, doses = issued
    dose = _by_rule(doses, "tac_start_dose")
    body = {"feedback": [{"card": dose["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN},
                         {"card": "00000000-0000-5000-8000-000000000000", "outcome": "accepted",
                          "outcomeTimestamp": WHEN}]}
    with pytest.raises(InputError) as exc:
        log.record(SERVICE, body)
    assert [(d.file, d.code) for d in exc.value.diagnostics] == [("feedback[1].card", "PW451")]
    assert log.summary()["tac_start_dose"]["accepted"] == 0  # nothing half-applied
    with pytest.raises(InputError) as exc:  # a card of another service
        log.record("another-service", {"feedback": body["feedback"][:1]})
    assert exc.value.diagnostics[0].code == "PW451"


@pytest.mark.parametrize(("entry", "where"), [
    ({"outcome": "accepted", "outcomeTimestamp": WHEN}, "feedback[0].card"),
    ({"card": "DOSE", "outcome": "ignored", "outcomeTimestamp": WHEN}, "feedback[0].outcome"),
    ({"card": "DOSE", "outcome": "accepted"}, "feedback[0].outcomeTimestamp"),
    ({"card": "DOSE", "outcome": "accepted", "outcomeTimestamp": "yesterday"}, "feedback[0].outcomeTimestamp"),
    ({"card": "DOSE", "outcome": "accepted", "acceptedSuggestions": [{"id": "not-offered"}], "outcomeTimestamp": WHEN},
     "feedback[0].acceptedSuggestions[0].id"),
    ({"card": "DOSE", "outcome": "overridden", "overrideReason": {"reason": {"system": "x", "code": "because"}},
      "outcomeTimestamp": WHEN}, "feedback[0].overrideReason.reason"),
    ({"card": "DOSE", "outcome": "accepted", "overrideReason": _reason("patient-declined"), "outcomeTimestamp": WHEN},
     "feedback[0].overrideReason"),
    ("accepted", "feedback[0]"),
])
def test_malformed_feedback_is_a_located_error_and_records_nothing(issued, entry, where):
    log, _proposals, doses = issued
    dose = _by_rule(doses, "tac_start_dose")
    if isinstance(entry, dict) and entry.get("card") == "DOSE":
        entry = dict(entry, card=dose["uuid"])
    with pytest.raises(InputError) as exc:
        log.record(SERVICE, {"feedback": [entry]})
    assert [(d.file, d.code) for d in exc.value.diagnostics] == [(where, "PW452")]
    with pytest.raises(InputError):
        log.record(SERVICE, {"cards": []})
    assert all(e["accepted"] == e["overridden"] == 0 for e in log.summary().values())


def test_the_log_lives_beside_the_session_store_in_its_sqlite_file(pw, tmp_path: Path):
    from pathway import SessionStore

    db = tmp_path / "service.db"
    session = _session(pw, rescue("tacrolimus"))
    with SessionStore(db) as store:
        store.save(session)
    cards = patient_view_cards(pw, session)
    with FeedbackLog(db) as log:
        log.issued(SERVICE, cards)
        dose = _by_rule(cards, "tac_start_dose")
        log.record(SERVICE, {"feedback": [{"card": dose["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN}]})
    with FeedbackLog(str(db)) as log:  # opened again: kept
        assert log.summary()["tac_start_dose"]["accepted"] == 1
    with SessionStore(db) as store:
        assert store.load(pw, "p-1").state == "rescue_tacrolimus"
    with closing(sqlite3.connect(db)) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "cds_cards", "cds_feedback"} <= tables


def test_several_workers_share_one_log_on_the_store_database(issued, backend):
    # another worker (another connection to the same database) records feedback on a card the first issued,
    # and both read the same summary
    log, _proposals, doses = issued
    dose = _by_rule(doses, "tac_start_dose")
    with FeedbackLog(backend.location) as other:
        assert other.record(SERVICE, {"feedback": [{"card": dose["uuid"], "outcome": "accepted",
                                                    "outcomeTimestamp": WHEN}]}) == 1
        assert other.summary() == log.summary()
    assert log.summary()["tac_start_dose"]["accepted"] == 1


def test_an_unreachable_postgresql_log_is_store_unavailable(tmp_path: Path):
    with pytest.raises(StoreUnavailable, match="feedback log"):
        FeedbackLog(f"postgresql://nobody@/pathway?host={tmp_path}&port=1&connect_timeout=2")


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_pathway_report_with_feedback_shows_acceptance_per_rule_escaped(pw, tmp_path: Path):
    db = tmp_path / "feedback.db"
    cards = patient_view_cards(pw, _session(pw, rescue("tacrolimus")))
    dose = _by_rule(cards, "tac_start_dose")
    hostile = dict(cards[0])
    hostile["uuid"] = "11111111-1111-5111-8111-111111111111"
    hostile["extension"] = {EXTENSION: {"rule": "<script>alert(1)</script>", "kind": "alert"}}
    with FeedbackLog(db) as log:
        log.issued(SERVICE, [*cards, hostile])
        log.record(SERVICE, {"feedback": [
            {"card": dose["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN},
            {"card": hostile["uuid"], "outcome": "overridden", "overrideReason": _reason("data-out-of-date"),
             "outcomeTimestamp": WHEN}]})
    empty = tmp_path / "no-scenarios"
    empty.mkdir()
    out = tmp_path / "report.html"
    code, printed, _ = _cli("report", "asuc", "-o", str(out), "--scenarios", str(empty), "--feedback", str(db),
                            "--as-of", "2026-03-05")
    assert code in (0, 1) and "wrote" in printed
    html_text = out.read_text(encoding="utf-8")
    section = html_text[html_text.index('<h2 id="feedback">'):]
    section = section[:section.index("</section>")]
    row = re.search(r"<tr><td><code>tac_start_dose</code></td><td>Tacrolimus starting dose</td>"
                    r"<td>1</td><td>1</td><td>0</td><td>100%</td>", section)
    assert row, section[:2000]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>alert" not in html_text
    assert "not a rule of this version" in section and "data-out-of-date: 1" in section
    assert f"{len(cards) + 1} cards issued" in section
    # a feedback log that does not exist is a usage error (exit 2), and nothing is written
    code, _, err = _cli("report", "asuc", "-o", str(tmp_path / "other.html"), "--feedback", str(tmp_path / "none.db"))
    assert code == 2 and "no feedback log" in err and not (tmp_path / "other.html").exists()
