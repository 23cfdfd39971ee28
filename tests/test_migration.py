"""Moving a stored session to other rules on purpose: ``Pathway.restore(doc, replay=True)`` and
``SessionStore.load(..., replay=True)`` replay the recorded course under the new rules and say what
changed for the patient; without ``replay`` a session of other rules is refused (PW523)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import pathway
from pathway import SessionError, SessionStore

ROOT = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((ROOT / "rules" / "asuc" / "cases" / "demo.yaml").read_text(encoding="utf-8"))
# the demo patient's last trough (13 ng/mL) with the dose given, so that a change of the target changes the advice
# (a trough recorded alone after one with its dose asks for the dose first: tac_dose_with_trough_needed)
DEMO["events"][-1] = {**DEMO["events"][-1], "tacrolimus_daily_dose_mg": 6}


def _narrower_trough_target(rules: Path, high: int) -> pathway.Pathway:
    """The rules with the tacrolimus induction trough target's upper bound lowered (a guideline edit)."""
    text = (rules / "pathway.yaml").read_text(encoding="utf-8")
    old = "  tac_trough_high_ng_ml:\n    value: 15\n"
    assert old in text
    (rules / "pathway.yaml").write_text(text.replace(old, f"  tac_trough_high_ng_ml:\n    value: {high}\n"), encoding="utf-8")
    return pathway.load_pathway(rules)


@pytest.fixture(scope="module")
def demo_doc(pw):
    session, _ = pw.run_course(copy.deepcopy(DEMO))
    return session.dump()


def test_a_session_of_other_rules_is_refused_unless_replayed_and_the_replay_says_what_changed(pw, demo_doc, rules_copy):
    # The demo patient's last tacrolimus trough is 13 ng/mL. Under a 10-15 ng/mL induction target that is in
    # range (continue); under 10-12 it is above the target, so the new rules advise reducing the dose.
    new = _narrower_trough_target(rules_copy, 12)
    with pytest.raises(SessionError) as info:
        new.restore(copy.deepcopy(demo_doc))
    assert [(d.file, d.code) for d in info.value.diagnostics] == [("fingerprint", "PW523")]

    moved = new.restore(copy.deepcopy(demo_doc), replay=True)
    m = moved.migration
    assert m["from"] == {"version": pw.version, "profile": pw.definition.profile, "fingerprint": pw.fingerprint}
    assert m["to"]["fingerprint"] == new.fingerprint != pw.fingerprint and m["events"] == len(DEMO["events"])
    went = [d for d in m["differences"] if d["section"] == "recommendations" and d["change"] == "went"]
    came = [d for d in m["differences"] if d["section"] == "recommendations" and d["change"] == "appeared"]
    assert [d["rule"] for d in went] == ["tac_trough_in_range"] and "continue the current dose" in went[0]["text"]
    assert [d["rule"] for d in came] == ["tac_trough_high"] and "13 ng/mL" in came[0]["text"]
    # the moved session is exactly the course run from scratch under the new rules
    fresh, _ = new.run_course(copy.deepcopy(DEMO))
    assert {k: v for k, v in moved.result().items() if k != "changes"} == {k: v for k, v in fresh.result().items()
                                                                           if k != "changes"}
    # the replay is in the record, and the moved session now belongs to the new rules
    last = moved.dump()["revisions"][-1]
    assert last["op"] == "replay" and last["replayed"]["from"]["fingerprint"] == pw.fingerprint
    assert last["replayed"]["differences"] == m["differences"]
    again = new.restore(moved.dump())
    assert again.migration is None and again.dump() == moved.dump()
    with pytest.raises(SessionError) as info:
        pw.restore(moved.dump())  # and the old rules refuse it in turn
    assert info.value.diagnostics[0].code == "PW523"


def test_replay_of_a_session_of_these_rules_is_a_plain_restore(pw, demo_doc):
    session = pw.restore(copy.deepcopy(demo_doc), replay=True)
    assert session.migration is None and session.dump() == demo_doc


def test_the_same_course_under_a_profile_that_changes_nothing_for_it_lists_no_difference(demo_doc):
    nice = pathway.load_pathway("asuc", profile="nice")
    moved = nice.restore(copy.deepcopy(demo_doc), replay=True)
    assert moved.migration["from"]["profile"] == "default" and moved.migration["to"]["profile"] == "nice"
    assert moved.migration["differences"] == []


def test_replay_still_trusts_only_the_recorded_inputs(demo_doc, rules_copy):
    new = _narrower_trough_target(rules_copy, 12)
    edited = copy.deepcopy(demo_doc)
    edited["events"][-1]["tacrolimus_trough_ng_ml"] = 11  # an input changed after it was recorded
    with pytest.raises(SessionError) as info:
        new.restore(edited, replay=True)
    assert [(d.file, d.code) for d in info.value.diagnostics] == [("checksum", "PW524")]
    other = copy.deepcopy(demo_doc)
    other["pathway"] = "crohns"
    with pytest.raises(SessionError) as info:
        new.restore(other, replay=True)
    assert info.value.diagnostics[0].code == "PW522"  # another pathway is never replayed


def test_a_stored_session_is_moved_to_new_rules_only_when_asked(pw, rules_copy, tmp_path):
    new = _narrower_trough_target(rules_copy, 12)
    with SessionStore(tmp_path / "s.db") as store:
        session, _ = pw.run_course(copy.deepcopy(DEMO))
        store.save(session)
        with pytest.raises(SessionError) as info:
            store.load(new, "demo-001")
        assert info.value.diagnostics[0].code == "PW523"
        moved = store.load(new, "demo-001", replay=True)
        assert [d["rule"] for d in moved.migration["differences"]
                if d["section"] == "recommendations" and d["change"] == "appeared"] == ["tac_trough_high"]
        with pytest.raises(SessionError):  # loading it once did not make the old row pass under the new rules
            store.load(new, "demo-001")
        store.save(moved)
        assert store.load(new, "demo-001").state == moved.state
        with pytest.raises(SessionError):
            store.load(pw, "demo-001")
