"""Restore trusts nothing its events do not produce, under the rules they ran under; a SQLite store file
written before saves were conditional still opens (the store on every backend: tests/test_store.py)."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cases import ADMIT, DAY3_FAIL, patient, rescue

import pathway
import pathway.errors
from pathway import PathwayError, SessionConflict, SessionError, SessionStore, load_pathway


def _doc(pw: Any, case: dict[str, Any]) -> dict[str, Any]:
    s = pw.start(case["patient"])
    for event in case["events"]:
        s.observe(event)
    return json.loads(json.dumps(s.dump()))


def _refused(pw: Any, doc: Any) -> tuple[str, str, str]:
    with pytest.raises(SessionError) as info:
        pw.restore(doc)
    d = info.value.diagnostics[0]
    return d.file, d.code, d.message


def test_session_errors_are_exported_where_the_other_errors_are():
    assert pathway.SessionError is pathway.errors.SessionError is SessionError
    assert issubclass(SessionError, PathwayError) and issubclass(SessionConflict, SessionError)
    assert {"SessionError", "SessionConflict"} <= set(pathway.__all__) & set(pathway.errors.__all__)


def test_a_dump_carries_the_fingerprint_and_a_checksum_and_restores_to_the_same_session(pw):
    doc = _doc(pw, rescue("tacrolimus"))
    assert doc["format"] == 5 and doc["fingerprint"] == pw.fingerprint == pw.definition.fingerprint()
    assert len(doc["checksum"]) == 32
    restored = pw.restore(copy.deepcopy(doc))
    assert restored.dump() == doc


def test_a_session_of_another_profile_is_refused_and_can_be_replayed_deliberately(pw):
    nice = load_pathway("asuc", profile="nice")
    doc = _doc(nice, rescue("tacrolimus"))
    assert nice.restore(copy.deepcopy(doc)).state == "rescue_tacrolimus"
    file, code, message = _refused(pw, copy.deepcopy(doc))
    assert (file, code) == ("profile", "PW523") and "nice" in message
    doc["profile"] = pw.definition.profile  # the profile's name edited: its fingerprint still differs
    file, code, message = _refused(pw, copy.deepcopy(doc))
    assert (file, code) == ("fingerprint", "PW523") and "Pathway.restore(doc, replay=True)" in message
    moved = pw.replay(doc)
    assert moved.dump()["fingerprint"] == pw.fingerprint and moved.state == "rescue_tacrolimus"


def test_a_session_dumped_under_edited_rule_files_or_other_parameters_is_refused(rules_copy):
    before = load_pathway(rules_copy, cache=False)
    doc = _doc(before, rescue("tacrolimus"))
    path = rules_copy / "pathway.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  tw_min_bloody_stools:\n    value: 6\n",
                                                             "  tw_min_bloody_stools:\n    value: 7\n"), encoding="utf-8")
    assert _refused(load_pathway(rules_copy, cache=False), copy.deepcopy(doc))[:2] == ("fingerprint", "PW523")
    other = load_pathway("asuc", parameters={"tac_start_mg_kg_day": 0.1})
    assert _refused(other, _doc(load_pathway("asuc"), rescue("tacrolimus")))[:2] == ("fingerprint", "PW523")


def test_a_document_without_a_fingerprint_is_refused(pw):
    doc = _doc(pw, rescue("tacrolimus"))
    del doc["fingerprint"]
    file, code, message = _refused(pw, doc)
    assert (file, code) == ("fingerprint", "PW523") and "no pathway fingerprint" in message
    assert pw.replay(doc).state == "rescue_tacrolimus"


@pytest.mark.parametrize("doc,code", [
    (None, "PW520"), ([], "PW520"), ("{}", "PW520"), ({}, "PW522"),
])
def test_what_is_not_a_session_document_is_refused(pw, doc, code):
    assert _refused(pw, doc)[1] == code


@pytest.mark.parametrize("bad_id", [1.5, True, None, ["x"]])
def test_a_bad_patient_id_is_one_message_at_its_key(pw, bad_id):
    doc = _doc(pw, rescue("tacrolimus"))
    doc["patient"]["id"] = bad_id
    with pytest.raises(SessionError) as info:
        pw.restore(doc)
    assert [(d.file, d.code) for d in info.value.diagnostics] == [("patient.id", "PW521")]
    assert "text or a whole number" in info.value.diagnostics[0].message
    # a key is not a place in a file: no ":0:0" after it
    assert str(info.value).startswith("patient.id: ")


def test_a_document_nested_too_deeply_is_refused(pw):
    doc = _doc(pw, rescue("tacrolimus"))
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    doc["trace"][0]["facts"]["deep"] = deep
    assert _refused(pw, doc)[1] in ("PW520", "PW525")


def test_recorded_derived_values_are_not_trusted_even_an_optional_key(pw):
    # a bare CRP in its warn band gives an input warning; a document without it restores with it
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    s.observe({"day": 1, "crp_mg_l": 40})
    doc = json.loads(json.dumps(s.dump()))
    assert [w["rule"] for w in doc["warnings"]] == ["input.crp_mg_l"]
    del doc["warnings"]
    assert pw.restore(doc).result() == s.result()
    doc["warnings"] = [{"rule": "input.crp_mg_l", "level": "warning", "text": "give 500 mg", "evidence": {}}]
    assert _refused(pw, doc)[:2] == ("warnings[0].text", "PW525")


def test_quantities_replay_as_they_were_given(pw):
    # 0.6 g/dL is 6 g/L: as a bare number, 6 falls in albumin's refuse band (g/L or g/dL?)
    s = pw.start(patient())
    s.observe(dict(ADMIT, albumin_g_l={"value": 0.6, "unit": "g/dL"}))
    doc = json.loads(json.dumps(s.dump()))
    assert doc["events"][0]["given"] == {"albumin_g_l": {"value": 0.6, "unit": "g/dL"}}
    assert pw.restore(copy.deepcopy(doc)).result() == s.result()
    del doc["events"][0]["given"]
    file, code, message = _refused(pw, doc)
    assert (file, code) == ("events[0].albumin_g_l", "PW524") and "ambiguous" in message


def _late_weight(pw: Any) -> dict[str, Any]:
    """A dump whose events did not arrive in timeline order: 154 kg confirmed, then 200 kg dated before the
    confirmation (events 5 and 6 arrived the other way round)."""
    return _doc(pw, rescue("infliximab", {"day": 4, "weight_kg": 154}, {"day": 4.5, "weight_confirmed": True},
                           {"day": 4.2, "weight_kg": 200}))


def test_the_order_events_arrived_in_is_an_input_checked_by_the_checksum(pw):
    doc = _late_weight(pw)
    assert doc["arrived"] == [0, 1, 2, 3, 4, 6, 5]
    restored = pw.restore(copy.deepcopy(doc))
    assert restored.dump() == doc and restored.result()["computed"]["weight_to_confirm"]["value"] is True
    # edited to say 200 kg arrived before the confirmation (which would then confirm it): refused
    edited = copy.deepcopy(doc)
    edited["arrived"] = [0, 1, 2, 3, 5, 4, 6]
    assert _refused(pw, edited)[:2] == ("checksum", "PW524")
    del edited["arrived"]  # or left out
    assert _refused(pw, edited)[:2] == ("checksum", "PW524")
    # a document whose events arrived in timeline order has no such key, and never had
    assert "arrived" not in _doc(pw, rescue("infliximab", {"day": 4, "weight_kg": 154}))


@pytest.mark.parametrize("arrived,where,fragment", [
    ([0, 1], "arrived", "has 2 entries; the document has 7 events"),
    ([0, 1, 2, 3, 4, 6, 6], "arrived[6]", "one of 0 to 6, each once"),
    ([0, 1, 2, 3, 4, 7, 5], "arrived[5]", "one of 0 to 6, each once"),
    ([0, 1, 2, 3, 4, 5, 6], "arrived", "is the timeline order"),  # written as no key
    ([0, 1, 2, 3, 4, -1, 5], "arrived[5]", "greater than or equal to 0"),
    ([0, 1, 2, 3, 4, 6.0, 5], "arrived[5]", "valid integer"),
    ([0, 1, 2, 3, 4, True, 5], "arrived[5]", "valid integer"),
    (["0", 1, 2, 3, 4, 6, 5], "arrived[0]", "valid integer"),
    ({"0": 0}, "arrived", "valid list"),
    (None, "arrived", "valid list"),
])
def test_a_malformed_arrival_order_is_refused_at_its_key(pw, arrived, where, fragment):
    doc = _late_weight(pw)
    doc["arrived"] = arrived
    file, code, message = _refused(pw, doc)
    assert (file, code) == (where, "PW521") and fragment in message


def test_session_load_is_restore(pw):
    doc = _doc(pw, rescue("tacrolimus"))
    assert pathway.Session.load(pw, copy.deepcopy(doc)).dump() == doc
    doc["state"] = "colectomy"
    with pytest.raises(SessionError):
        pathway.Session.load(pw, doc)


# -- the store (the rest, on every backend: tests/test_store.py) ------------------------------------------

@pytest.fixture
def open_store(tmp_path: Any) -> Iterator[Callable[[], SessionStore]]:
    """Opens SessionStore(tmp_path / "s.db") (each call another connection); every one is closed when the test
    ends, as an application must: CPython 3.13 warns of a sqlite3 connection left to the garbage collector."""
    opened: list[SessionStore] = []

    def open_() -> SessionStore:
        opened.append(SessionStore(tmp_path / "s.db"))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def test_a_store_written_before_saves_were_conditional_opens_and_saves(pw, tmp_path, open_store):
    s = pw.start(patient())
    s.observe(dict(ADMIT))
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute("CREATE TABLE sessions (pathway TEXT NOT NULL, patient_id TEXT NOT NULL, version TEXT NOT NULL, "
                "state TEXT NOT NULL, events INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (pathway, patient_id))")
    con.execute("INSERT INTO sessions VALUES ('asuc', 'p-1', ?, ?, 1, ?)", (pw.version, s.state, json.dumps(s.dump())))
    con.commit()
    con.close()
    store = open_store()
    loaded = store.load(pw, "p-1")
    loaded.observe(dict(DAY3_FAIL))
    store.save(loaded)
    assert open_store().load(pw, "p-1").state == "rescue_selection"


def test_a_value_recorded_just_before_the_admission_time_restores() -> None:
    """Bloods taken in the emergency department a second before the admission time count from -0.0003 h:
    an honest dump of such a session restores to the same session."""
    pw = load_pathway("asuc")
    s = pw.start({**patient(), "admission_time": "2026-03-02T08:00:00"})
    s.observe({"time": "2026-03-02T07:59:59", "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4,
               "hb_g_dl": 11.5, "crp_mg_l": 60, "albumin_g_l": 32})
    doc = s.dump()
    again = pw.restore(json.loads(json.dumps(doc)))
    assert json.dumps(again.dump(), sort_keys=True) == json.dumps(doc, sort_keys=True)
