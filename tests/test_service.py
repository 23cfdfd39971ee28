"""The HTTP service on a real loopback port, driven over HTTP: CDS Hooks discovery, both hooks and feedback,
the JSON API's round trip against Pathway.run_case, the event feed over HTTP, and the error shapes."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import pytest
from cases import without_clock
from servicekit import DEMO, PROBLEM, client, demo_bundle, hook_body, prefetch_of, served, split_bundle

from pathway import SessionStore, StoreUnavailable, load_pathway
from pathway.core.yamlsafe import load_yaml_file
from pathway.runtime.store import PostgresSessionStore, SqliteSessionStore
from pathway.service.app import SUMMARY_KEYS, Settings, create_app
from pathway.service.feedback import FeedbackLog

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TACROLIMUS = {"system": RXNORM, "code": "42316", "display": "tacrolimus"}
INFLIXIMAB = {"system": RXNORM, "code": "191831", "display": "infliximab"}
#: what a clinician reads in a result (a FHIR course's trace names other event indices by construction)
CLINICAL = ("state", "path", "recommendations", "options", "proposals", "data_required", "alerts", "frozen",
            "unverified_rules", "day", "state_title", "patient_id", "computed")


@pytest.fixture(scope="module")
def pw():
    return load_pathway("asuc")


@pytest.fixture(scope="module")
def demo_case() -> dict[str, Any]:
    return load_yaml_file(str(DEMO), "demo.yaml").data


@pytest.fixture()
def service(pw, tmp_path):
    """A served app over a SQLite store; yields (base URL, store, feedback log location)."""
    store = SessionStore(str(tmp_path / "sessions.db"))
    settings = Settings(feedback=str(tmp_path / "sessions.db"), clock=None)
    with served(create_app(pw, store, settings)) as base:
        settings.base_url = base
        yield base, store
    store.close()


def case_events(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": f"ev-{i}", **event} for i, event in enumerate(case["events"])]


def assert_problem(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == PROBLEM
    body = reply.json()
    assert body["status"] == status and body["type"].startswith("/problems/") and body["title"]
    assert isinstance(body["diagnostics"], list)
    for d in body["diagnostics"]:
        assert set(d) >= {"code", "file", "line", "path", "message"}
    return body


# -- discovery and health ------------------------------------------------------------------------------

def test_discovery_lists_one_service_per_hook_with_prefetch_templates(service, pw):
    base, _store = service
    with client(base) as http:
        services = http.get("/cds-services").json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("asuc-patient-view", "patient-view"), ("asuc-order-select", "order-select"), ("asuc-order-sign", "order-sign")]
    for s in services:
        assert s["title"].startswith("Acute severe ulcerative colitis") and s["description"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "http://loinc.org|1988-5" in s["prefetch"]["observations"]  # CRP


def test_health_names_the_pathway_its_fingerprint_and_the_store(service, pw):
    base, _store = service
    with client(base) as http:
        reply = http.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "pathway": "asuc", "version": pw.version, "profile": "default",
                            "fingerprint": pw.fingerprint, "engine_version": reply.json()["engine_version"],
                            "store": "reachable"}


def test_health_says_503_when_the_store_cannot_be_reached(pw, tmp_path):
    store = SessionStore(str(tmp_path / "s.db"))
    with served(create_app(pw, store, Settings(clock=None))) as base, client(base) as http:
        store.close()  # a closed database: every call fails as an unreachable one would
        reply = http.get("/health")
    assert reply.status_code == 503 and reply.json()["store"] == "unreachable"


# -- the JSON API -------------------------------------------------------------------------------------

def test_a_case_posted_event_by_event_gives_the_result_of_run_case(service, pw, demo_case):
    base, store = service
    expected = pw.run_case({"patient": demo_case["patient"], "events": case_events(demo_case)})
    with client(base) as http:
        reply = http.post("/sessions", json=demo_case["patient"])
        assert reply.status_code == 201, reply.text
        assert reply.json()["id"] == "demo-001" and reply.headers["location"] == "/sessions/demo-001"
        for event in case_events(demo_case):
            reply = http.post("/sessions/demo-001/events", json=event)
            assert reply.status_code == 200, reply.text
            assert reply.json()["changes"]["operation"] == "append"
        got = http.get("/sessions/demo-001")
        final = got.json()
        brief = http.get("/sessions/demo-001", params={"detail": "summary"}).json()
    assert got.headers["cache-control"] == "no-store" and got.headers["x-content-type-options"] == "nosniff"
    assert final == expected
    assert final["state"] == "maintenance_thiopurine"
    assert brief == {k: expected[k] for k in SUMMARY_KEYS}
    assert "trace" not in brief
    assert store.load(pw, "demo-001").result() == expected  # saved in the store


def test_the_demo_fhir_bundle_and_a_whole_case_give_the_state_of_run_case(service, pw, demo_case):
    base, _store = service
    expected = pw.run_case(demo_case)
    case = copy.deepcopy(demo_case)
    case["patient"]["id"] = "case-001"
    with client(base) as http:
        reply = http.post("/sessions", json=demo_bundle())
        assert reply.status_code == 201, reply.text
        assert reply.json()["result"]["fhir"]["applied"]
        from_fhir = http.get("/sessions/demo-001").json()
        assert http.post("/sessions", json=case).status_code == 201
        from_case = http.get("/sessions/case-001").json()
    assert {k: without_clock(from_fhir)[k] for k in CLINICAL} == {k: expected[k] for k in CLINICAL}
    assert {k: from_case[k] for k in CLINICAL if k != "patient_id"} == {
        k: expected[k] for k in CLINICAL if k != "patient_id"}


def test_fhir_resources_posted_later_feed_the_session_and_a_resend_is_a_duplicate(service, pw, demo_case):
    base, _store = service
    header, rest = split_bundle(demo_bundle(), "2026-03-03T08:00:00Z")  # days 0 and 1 first, then the rest
    with client(base) as http:
        assert http.post("/sessions", json=header).status_code == 201
        reply = http.post("/sessions/demo-001/events", json=rest)
        assert reply.status_code == 200, reply.text
        assert reply.json()["state"] == "maintenance_thiopurine"
        again = http.post("/sessions/demo-001/events", json=rest).json()
    assert again["changes"]["operation"] == "duplicate" and again["changes"]["items"] == []
    assert {k: without_clock(again)[k] for k in CLINICAL} == {k: pw.run_case(demo_case)[k] for k in CLINICAL}


def test_the_event_feed_over_http_duplicates_late_events_amend_and_retract(service):
    base, _store = service
    with client(base) as http:
        http.post("/sessions", json={"id": "p9", "weight_kg": 70})
        admit = {"id": "adm", "day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104}
        assert http.post("/sessions/p9/events", json=admit).json()["state"] == "iv_steroids"
        assert http.post("/sessions/p9/events", json=admit).json()["changes"]["operation"] == "duplicate"
        http.post("/sessions/p9/events", json={"id": "d4", "day": 4, "stool_freq_24h": 2, "visible_blood": False})
        late = http.post("/sessions/p9/events", json={"id": "crp3", "day": 3, "stool_freq_24h": 5,
                                                          "visible_blood": True, "crp_mg_l": 60}).json()
        assert late["changes"]["operation"] == "insert" and late["changes"]["event"] == 1
        amended = http.put("/sessions/p9/events/crp3", json={"day": 3, "stool_freq_24h": 5, "visible_blood": True,
                                                             "crp_mg_l": 20})
        assert amended.status_code == 200, amended.text
        assert amended.json()["changes"]["operation"] == "amend"
        retracted = http.delete("/sessions/p9/events/crp3", params={"reason": "wrong patient"})
        assert retracted.status_code == 200 and retracted.json()["changes"]["operation"] == "retract"
        events = [e.get("id") for e in http.get("/sessions/p9").json()["trace"]]
        assert events  # the course was evaluated
        missing = http.delete("/sessions/p9/events/nope")
    body = assert_problem(missing, 404)
    assert body["diagnostics"][0]["code"] == "PW414"


def test_detail_summary_answers_every_change_without_the_trace(service, pw, demo_case):
    base, store = service
    events = case_events(demo_case)
    expected = pw.run_case({"patient": demo_case["patient"], "events": events})
    with client(base) as http:
        http.post("/sessions", json=demo_case["patient"])
        for event in events[:-1]:
            reply = http.post("/sessions/demo-001/events", json=event, params={"detail": "summary"})
            assert reply.status_code == 200, reply.text
            assert "trace" not in reply.json() and reply.json()["changes"]["operation"] == "append"
        last = http.post("/sessions/demo-001/events", json=events[-1], params={"detail": "summary"}).json()
        amended = http.put(f"/sessions/demo-001/events/{events[-1]['id']}", json=events[-1],
                           params={"detail": "summary"})
        listed = http.post("/sessions/demo-001/events", params={"detail": "summary"},
                           json=[{"day": events[-1]["day"], "note": "seen"}])
        retracted = http.delete("/sessions/demo-001/events/ev-0", params={"detail": "full"})
        wrong = http.post("/sessions/demo-001/events", json=events[-1], params={"detail": "brief"})
    assert last == {k: v for k, v in expected.items() if k != "trace"} | {"changes": last["changes"]}
    for reply in (amended, listed):
        assert reply.status_code == 200, reply.text
        assert "trace" not in reply.json()
    assert retracted.status_code == 200 and retracted.json()["trace"]  # a full answer keeps it
    assert_problem(wrong, 422)
    assert store.load(pw, "demo-001").result()["state"] == retracted.json()["state"]  # 'brief' changed nothing


def test_a_list_of_events_is_applied_whole_or_not_at_all(service, pw):
    base, store = service
    with client(base) as http:
        http.post("/sessions", json={"id": "p2", "weight_kg": 70})
        reply = http.post("/sessions/p2/events", json=[{"id": "a", "day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104},
                                                       {"id": "b", "day": 1, "crp_mg_l": "high"}])
        body = assert_problem(reply, 422)
        after = http.get("/sessions/p2").json()
        assert store.load(pw, "p2").recorded_events() == []
        both = http.post("/sessions/p2/events", json=[{"id": "a", "day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104},
                                                      {"id": "b", "day": 1, "crp_mg_l": 40}]).json()
    assert body["diagnostics"][0]["code"] == "PW402" and body["diagnostics"][0]["path"] == "events[1].crp_mg_l"
    assert after["state"] == "suspected_asuc" and after["path"] == ["suspected_asuc"]  # nothing half-applied
    assert both["state"] == "iv_steroids" and [o["operation"] for o in both["changes"]["operations"]] == ["append", "append"]
    assert both["changes"]["items"][0] == {"section": "state", "change": "changed", "from": "suspected_asuc",
                                           "to": "iv_steroids"}


# -- errors ---------------------------------------------------------------------------------------------

def test_refused_input_is_a_located_422_and_changes_nothing(service, pw):
    base, store = service
    with client(base) as http:
        http.post("/sessions", json={"id": "p3", "weight_kg": 70})
        bad = http.post("/sessions/p3/events", json={"day": 0, "crp_mg_l": 9000})
        bad_fhir = http.post("/sessions", json={"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "f1", "birthDate": "not a date"}}]})
        shape = http.post("/sessions/p3/events", json={"day": 0, "id": {"a": 1}})
        no_patient = http.post("/sessions", json={"weight_kg": 70})
    body = assert_problem(bad, 422)
    assert [(d["code"], d["path"]) for d in body["diagnostics"]] == [("PW403", "events[0].crp_mg_l")]
    assert "9000" in body["detail"]
    fhir = assert_problem(bad_fhir, 422)
    assert fhir["diagnostics"][0]["code"] == "PW431" and "Bundle.entry[0]" in fhir["diagnostics"][0]["path"]
    assert assert_problem(shape, 422)["diagnostics"][0]["path"].startswith("body")
    assert assert_problem(no_patient, 422)["diagnostics"][0]["path"] == "body.patient.id"
    assert store.load(pw, "p3").recorded_events() == []
    assert store.patients("asuc") == ["p3"]


def test_unknown_sessions_and_routes_are_404_problems_and_a_second_start_is_409(service):
    base, _store = service
    with client(base) as http:
        assert_problem(http.get("/sessions/nobody"), 404)
        assert_problem(http.post("/sessions/nobody/events", json={"day": 0}), 404)
        assert_problem(http.get("/no/such/route"), 404)
        assert_problem(http.post("/cds-services/other-service", json=hook_body("patient-view", "x")), 404)
        assert_problem(http.post("/cds-services/other-service", json={"not": "a hook"}), 404)  # not 422 first
        assert_problem(http.post("/cds-services/other-service/feedback", json=[1]), 404)
        assert http.post("/sessions", json={"id": "twice"}).status_code == 201
        again = assert_problem(http.post("/sessions", json={"id": "twice"}), 409)
    assert again["diagnostics"][0]["code"] == "PW527"


def test_the_documentation_pages_escape_the_pathways_title(rules_copy, tmp_path):
    # The title comes from the rule files (a guideline author's text): it is text on the pages, never markup.
    spec = rules_copy / "pathway.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "title: Acute severe ulcerative colitis", "title: \"ASUC</title><script>alert(1)</script>\"", 1), encoding="utf-8")
    hostile = load_pathway(str(rules_copy))
    store = SessionStore(str(tmp_path / "s.db"))
    with served(create_app(hostile, store, Settings(clock=None))) as base, client(base) as http:
        pages = {path: http.get(path) for path in ("/docs", "/redoc", "/docs/oauth2-redirect")}
        schema = http.get("/openapi.json").json()
    store.close()
    for path, page in pages.items():
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        assert "<script>alert(1)" not in page.text, path
    for path in ("/docs", "/redoc"):
        assert "ASUC&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in pages[path].text
        assert "/openapi.json" in pages[path].text
    assert schema["info"]["title"].startswith("ASUC</title><script>")  # JSON keeps the text as it is


def test_a_body_with_a_key_twice_is_refused_and_records_nothing(service, pw):
    base, store = service
    with client(base) as http:
        assert http.post("/sessions", json={"id": "p-dup", "weight_kg": 70}).status_code == 201
        before = store.load(pw, "p-dup").dump()
        raw = b'{"day": 0, "crp_mg_l": 20, "crp_mg_l": 200}'
        reply = http.post("/sessions/p-dup/events", content=raw, headers={"content-type": "application/json"})
        start = http.post("/sessions", content=b'{"id": "p-a", "id": "p-b"}', headers={"content-type": "application/json"})
    body = assert_problem(reply, 400)
    assert body["diagnostics"][0]["code"] == "PW400" and "duplicate key 'crp_mg_l'" in body["detail"]
    assert "duplicate key 'id'" in assert_problem(start, 400)["detail"]
    assert store.load(pw, "p-dup").dump() == before
    assert store.patients("asuc") == ["p-dup"]


def test_event_ids_that_read_the_same_in_a_url_are_not_confused(service, pw):
    # The number 7 and the text "7" are two ids to the library; in a URL both are "7". Amending "7" must not
    # silently pick one of them.
    base, store = service
    with client(base) as http:
        assert http.post("/sessions", json={"id": "p-ids"}).status_code == 201
        assert http.post("/sessions/p-ids/events", json=[{"id": 7, "day": 0, "stool_freq_24h": 8},
                                                          {"id": "7", "day": 1, "stool_freq_24h": 7}]).status_code == 200
        before = store.load(pw, "p-ids").dump()
        amend = http.put("/sessions/p-ids/events/7", json={"id": 7, "day": 0, "stool_freq_24h": 9})
        retract = http.delete("/sessions/p-ids/events/7")
        assert http.post("/sessions/p-ids/events", json={"id": 8, "day": 2, "stool_freq_24h": 6}).status_code == 200
        one = http.delete("/sessions/p-ids/events/8")
    for reply in (amend, retract):
        body = assert_problem(reply, 409)
        assert body["diagnostics"][0]["code"] == "PW416", body
    assert one.status_code == 200, one.text
    after = store.load(pw, "p-ids").dump()
    assert [e["id"] for e in after["events"]] == [e["id"] for e in before["events"]] == [7, "7"]


def test_a_body_of_no_accepted_shape_says_which_shapes_are_accepted(service):
    base, store = service
    with client(base) as http:
        replies = [http.post("/sessions", json=body) for body in ([1], "x", 5)]
        assert http.post("/sessions", json={"id": "p-shape"}).status_code == 201
        replies.append(http.post("/sessions/p-shape/events", json="x"))
    for reply in replies:
        body = assert_problem(reply, 422)
        message = body["diagnostics"][0]["message"]
        assert body["diagnostics"][0]["path"] == "body" and "discriminator" not in message, message
        assert message.startswith("a JSON object (a patient record") and "not " in message
    assert store.patients("asuc") == ["p-shape"]


def test_a_patient_id_that_no_url_can_name_is_refused_at_the_start(service):
    base, store = service
    with client(base) as http:
        slash = http.post("/sessions", json={"id": "ward-3/bed-12"})
        dots = http.post("/sessions", json={"patient": {"id": ".."}, "events": []})
    assert assert_problem(slash, 422)["diagnostics"][0]["path"] == "body.id"
    assert assert_problem(dots, 422)["diagnostics"][0]["path"] == "body.patient.id"
    assert store.patients("asuc") == []


def test_a_body_over_the_limit_is_413_and_too_deep_is_422_before_any_model(service):
    base, _store = service
    deep: Any = 1
    for _ in range(65):
        deep = [deep]
    with client(base) as http:
        large = http.post("/sessions", content=b'{"id": "x", "note": "' + b"a" * 1_000_001 + b'"}',
                          headers={"content-type": "application/json"})
        too_deep = http.post("/sessions/x/events", json={"day": 0, "note": deep})
        not_json = http.post("/sessions", content=b'{"id": NaN}', headers={"content-type": "application/json"})
        just_deep_enough: Any = 1
        for _ in range(63):
            just_deep_enough = [just_deep_enough]
        fine = http.put("/sessions/x/events/e1", json={"day": 0, "deep": just_deep_enough})
    assert assert_problem(large, 413)["diagnostics"][0]["code"] == "PW412"
    assert assert_problem(too_deep, 422)["diagnostics"][0]["code"] == "PW412"
    assert "64 levels" in too_deep.json()["detail"]
    assert assert_problem(not_json, 400)["diagnostics"][0]["code"] == "PW400"
    assert fine.status_code == 404  # past the limits: the session does not exist


def test_a_body_limit_is_kept_whatever_content_length_says(pw):
    with served(create_app(pw, SessionStore(":memory:"), Settings(max_body=100, clock=None))) as base, client(base) as http:
        def chunks():
            yield b'{"id": "x", "note": "'
            yield b"a" * 200
            yield b'"}'
        reply = http.post("/sessions", content=chunks(), headers={"content-type": "application/json"})
    assert_problem(reply, 413)


class _Gate:
    """A store whose loads wait for each other: two writers both load the same revision before either saves."""

    barrier: threading.Barrier | None = None

    def load(self, pathway, patient_id):
        session = super().load(pathway, patient_id)  # type: ignore[misc]
        if self.barrier is not None:
            self.barrier.wait(30)
        return session


def _gated(location: str) -> Any:
    base = PostgresSessionStore if location.startswith("postgresql://") else SqliteSessionStore
    return type("GatedStore", (_Gate, base), {})(location)


def test_two_workers_writing_one_patient_at_once_get_one_save_and_one_409(pw, backend):
    first, second = _gated(backend.location), _gated(backend.location)
    with served(create_app(pw, first, Settings(clock=None))) as a, served(create_app(pw, second, Settings(clock=None))) as b:
        with client(a) as http:
            assert http.post("/sessions", json={"id": "p5", "weight_kg": 70}).status_code == 201
        barrier = threading.Barrier(2)
        first.barrier = second.barrier = barrier
        replies: dict[str, Any] = {}

        def write(base: str, event: dict[str, Any]) -> None:
            with client(base) as http:
                replies[event["id"]] = http.post("/sessions/p5/events", json=event)

        threads = [threading.Thread(target=write, args=(a, {"id": "from-a", "day": 0, "bloody_stools_24h": 8})),
                   threading.Thread(target=write, args=(b, {"id": "from-b", "day": 0, "pulse_bpm": 104}))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        first.barrier = second.barrier = None
        statuses = sorted(r.status_code for r in replies.values())
        assert statuses == [200, 409]
        lost = next(k for k, r in replies.items() if r.status_code == 409)
        assert assert_problem(replies[lost], 409)["diagnostics"][0]["code"] == "PW527"
        with client(b) as http:  # the writer told 409 sends its event again: nothing is lost
            again = {"id": lost, "day": 0, **({"bloody_stools_24h": 8} if lost == "from-a" else {"pulse_bpm": 104})}
            assert http.post("/sessions/p5/events", json=again).status_code == 200
    ids = {e["id"] for e in backend.open().load(pw, "p5").recorded_events()}
    assert ids == {"from-a", "from-b"}
    first.close()
    second.close()


# -- CDS Hooks ------------------------------------------------------------------------------------------

def test_patient_view_starts_the_session_from_the_prefetch_and_a_second_call_changes_nothing(service, pw, demo_case):
    base, store = service
    prefetch = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")  # up to the day-3 assessment
    prefetch["medications"]["entry"] = []  # the rescue agent is not chosen yet
    with client(base) as http:
        first = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001", prefetch))
        assert first.status_code == 200, first.text
        saved = store.load(pw, "demo-001").dump()
        second = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001", prefetch))
    cards = first.json()["cards"]
    assert first.json()["systemActions"] == []
    assert cards and all(len(c["summary"]) < 140 and c["indicator"] in ("info", "warning", "critical") for c in cards)
    assert store.load(pw, "demo-001").dump() == saved  # the same prefetch again records nothing new
    assert [c["uuid"] for c in second.json()["cards"]] == [c["uuid"] for c in cards]
    assert saved["state"] == "rescue_selection"
    assert any(c["indicator"] in ("warning", "critical") for c in cards)


def test_patient_view_with_prefetch_missing_answers_what_it_has_and_says_what_is_required(service, pw):
    base, _store = service
    with client(base) as http:
        http.post("/sessions", json={"id": "p6", "weight_kg": 70})
        http.post("/sessions/p6/events", json={"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104})
        reply = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "p6"))
        unknown = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "nobody-yet"))
    assert reply.status_code == 200, reply.text
    cards = reply.json()["cards"]
    required = [c for c in cards if c["summary"].startswith("Data required: the EHR sent no")]
    assert len(required) == 1 and "observations" in required[0]["summary"]
    assert len(cards) > 1  # the pathway's own cards for the stored session
    assert unknown.status_code == 200
    assert any(c["summary"] == "No pathway data for patient nobody-yet" for c in unknown.json()["cards"])


def test_refused_prefetch_is_a_card_not_an_error_and_records_nothing(service, pw):
    base, store = service
    prefetch = prefetch_of(demo_bundle(), upto="2026-03-03T08:00:00Z")
    prefetch["observations"]["entry"][0]["resource"]["valueQuantity"]["value"] = 99999
    with client(base) as http:
        reply = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001", prefetch))
    assert reply.status_code == 200, reply.text
    refused = [c for c in reply.json()["cards"] if c["summary"].startswith("Some of the EHR's data was refused")]
    assert len(refused) == 1 and "PW403" in refused[0]["detail"]
    assert store.patients("asuc") == []


def test_another_patients_prefetched_data_is_refused_whatever_the_order_of_the_keys(service, pw):
    # The prefetch keys are read in sorted order, so "encounter" and "observations" come before "patient". The
    # Patient is demo-001 (the call's context.patientId) but every result is someone-else's: none of it may be
    # recorded as demo-001's. And a prefetch all of another patient than the context's is refused too.
    base, store = service
    prefetch = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")
    for res in [prefetch["encounter"]] + [e["resource"] for key in ("observations", "medications")
                                          for e in prefetch[key]["entry"]]:
        res["subject"] = {"reference": "Patient/someone-else"}
    whole = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")
    with client(base) as http:
        mixed = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001", prefetch))
        other = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "p-77", whole))
    for reply, pid in [(mixed, "demo-001"), (other, "p-77")]:
        assert reply.status_code == 200, reply.text
        cards = reply.json()["cards"]
        refused = [c for c in cards if c["summary"].startswith("Some of the EHR's data was refused")]
        assert len(refused) == 1 and "PW434" in refused[0]["detail"], cards
        assert any(c["summary"] == f"No pathway data for patient {pid}" for c in cards)
    assert store.patients("asuc") == []


def _order(concept: dict[str, Any], order_id: str, mg: float | None = None, per_day: int = 1) -> dict[str, Any]:
    order: dict[str, Any] = {"resourceType": "MedicationRequest", "id": order_id, "status": "draft", "intent": "order",
                             "medicationCodeableConcept": {"coding": [concept]}, "subject": {"reference": "Patient/demo-001"}}
    if mg is not None:
        order["dosageInstruction"] = [{"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                                       "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "code": "mg",
                                                                         "system": "http://unitsofmeasure.org"}}]}]
    return order


def test_order_select_and_order_sign_check_the_draft_orders(service, pw):
    base, _store = service
    prefetch = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")
    prefetch["medications"]["entry"] = []  # the rescue agent is not chosen yet
    drafts = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _order(INFLIXIMAB, "mr-ifx", mg=360)}, {"resource": _order(TACROLIMUS, "mr-tac", mg=20, per_day=2)}]}
    with client(base) as http:
        select = http.post("/cds-services/asuc-order-select", json=hook_body(
            "order-select", "demo-001", prefetch, draftOrders=drafts, selections=["MedicationRequest/mr-ifx"]))
        sign = http.post("/cds-services/asuc-order-sign", json=hook_body(
            "order-sign", "demo-001", prefetch, draftOrders=drafts))
        no_drafts = http.post("/cds-services/asuc-order-sign", json=hook_body("order-sign", "demo-001", prefetch))
        wrong_hook = http.post("/cds-services/asuc-order-sign", json=hook_body("patient-view", "demo-001", prefetch))
    assert select.status_code == 200, select.text
    kinds = {c["extension"]["asuc-pathway"]["kind"]: c for c in select.json()["cards"] if "extension" in c}
    ifx = kinds["order-caution"]
    assert ifx["indicator"] == "warning" and "anti-TNF" in ifx["summary"]  # cautioned: previous anti-TNF failure
    # infliximab selected with tacrolimus already drafted: two rescue agents at once (§5.1), critical; the
    # tacrolimus order itself is not checked on this call (not selected)
    assert kinds["order-together"]["indicator"] == "critical" and "order-dose" not in kinds
    sign_cards = sign.json()["cards"]
    dose = [c for c in sign_cards if "acrolimus dose" in c["summary"]]
    assert len(dose) == 1 and dose[0]["suggestions"][0]["actions"][0]["type"] == "update"
    assert any("nfliximab" in c["summary"] for c in sign_cards)
    assert sum(c.get("extension", {}).get("asuc-pathway", {}).get("kind") == "order-together" for c in sign_cards) == 1
    assert_problem(no_drafts, 422)
    assert_problem(wrong_hook, 422)


def test_feedback_on_issued_cards_is_recorded_per_rule_and_unknown_cards_are_refused(pw, tmp_path):
    location = str(tmp_path / "s.db")
    store = SessionStore(location)
    with served(create_app(pw, store, Settings(feedback=location, clock=None))) as base, client(base) as http:
        prefetch = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")
        cards = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001", prefetch)).json()["cards"]
        card = next(c for c in cards if c.get("extension"))
        rule = next(iter(card["extension"].values()))["rule"]
        ok = http.post("/cds-services/asuc-patient-view/feedback", json={"feedback": [
            {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-03-05T09:00:00Z"}]})
        unknown = http.post("/cds-services/asuc-patient-view/feedback", json={"feedback": [
            {"card": "9b0f4d0e-1b9b-4f8f-9d46-1d1d2c2f0b11", "outcome": "accepted",
             "outcomeTimestamp": "2026-03-05T09:00:00Z"}]})
    assert ok.status_code == 200, ok.text
    body = assert_problem(unknown, 422)
    assert body["diagnostics"][0]["path"] == "feedback[0].card"
    with FeedbackLog(location) as log:
        summary = log.summary()
    assert summary[rule]["accepted"] == 1
    store.close()


def test_cors_is_off_by_default_and_on_for_the_origins_given(pw):
    preflight = {"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"}
    with served(create_app(pw, SessionStore(":memory:"), Settings(clock=None))) as base, client(base) as http:
        off = http.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
        off_pre = http.options("/cds-services/asuc-patient-view", headers=preflight)
    # a body just over a small limit: a client still sending megabytes when the 413 comes back may see the
    # connection reset instead of the answer
    settings = Settings(cors_origins=("https://ehr.example.org",), max_body=1000, clock=None)
    with served(create_app(pw, SessionStore(":memory:"), settings)) as base, client(base) as http:
        on = http.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
        other = http.get("/cds-services", headers={"Origin": "https://evil.example"})
        too_large = http.post("/sessions", content=b"[" * 5000, headers={"Origin": "https://ehr.example.org",
                                                                               "content-type": "application/json"})
    assert "access-control-allow-origin" not in off.headers and "access-control-allow-origin" not in off_pre.headers
    assert on.headers["access-control-allow-origin"] == "https://ehr.example.org"
    assert "access-control-allow-origin" not in other.headers
    assert too_large.status_code == 413 and too_large.headers["access-control-allow-origin"] == "https://ehr.example.org"


def test_every_request_is_logged_as_json_with_rule_ids_and_no_patient_values(pw, caplog):
    import logging
    store = SessionStore(":memory:")
    with caplog.at_level(logging.INFO, logger="pathway.service"):
        with served(create_app(pw, store, Settings(clock=None))) as base, client(base) as http:
            http.post("/sessions", json={"id": "SECRET-PATIENT-4711", "weight_kg": 71.3})
            http.post("/sessions/SECRET-PATIENT-4711/events",
                      json={"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 117, "note": "SECRET-NOTE"})
            http.post("/sessions/SECRET-PATIENT-4711/events", json={"day": 1, "crp_mg_l": 98765})
            # a request is logged once its response has gone: the last line may follow the reply by a moment
            deadline = time.monotonic() + 30
            while sum(r.name == "pathway.service" for r in caplog.records) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
    records = [r for r in caplog.records if r.name == "pathway.service"]
    fields = [r.fields for r in records]
    assert [f["route"] for f in fields] == ["/sessions", "/sessions/{patient_id}/events", "/sessions/{patient_id}/events"]
    assert [f["status"] for f in fields] == [201, 200, 422]
    assert "tw_asuc_confirmed" in fields[1]["rules"]
    # the random request id and the timing are left out: a hex id or a duration may hold "117" by chance
    kept = [{k: v for k, v in f.items() if k not in ("request_id", "ms")} for f in fields]
    assert all(len(f["request_id"]) == 36 and isinstance(f["ms"], float) for f in fields)
    text = json.dumps(kept) + " ".join(r.getMessage() for r in records)
    for value in ("SECRET-PATIENT-4711", "SECRET-NOTE", "98765", "117", "71.3"):
        assert value not in text


def test_a_cards_source_url_opens_the_rule_with_its_evidence(service, pw):
    base, _store = service
    prefetch = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")
    with client(base) as http:
        cards = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001", prefetch)).json()["cards"]
        url = next(c["source"]["url"] for c in cards if c["source"].get("url"))
        assert url.startswith(base + "/pathways/asuc/rules/")
        doc = http.get(url).json()
        page = http.get(url, headers={"Accept": "text/html,application/xhtml+xml"})
        missing = http.get("/pathways/asuc/rules/no_such_rule")
    rule = doc["rule"]
    assert url.endswith("/" + rule["id"]) and rule["title"] == pw.rule(rule["id"]).title
    assert rule["sources"] and set(doc["sources"]) == set(rule["sources"]) and "location" not in rule
    assert page.headers["content-type"].startswith("text/html")
    assert f"<code>{rule['id']}</code>" in page.text and "<h2>Sources</h2>" in page.text
    assert_problem(missing, 404)


def test_missing_prefetch_is_read_back_from_the_ehrs_fhir_server_when_allowed(pw, tmp_path):
    import http.server
    import urllib.parse

    prefetch = prefetch_of(demo_bundle(), upto="2026-03-05T08:00:00Z")
    seen: list[tuple[str, str | None]] = []

    class Fhir(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append((urllib.parse.unquote(self.path), self.headers.get("Authorization")))
            path = urllib.parse.urlparse(self.path).path
            body = (prefetch["patient"] if path.endswith("/Patient/demo-001") else
                    prefetch["observations"] if path.endswith("/Observation") else None)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/fhir+json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {"resourceType": "OperationOutcome"}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    fhir = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fhir)
    threading.Thread(target=fhir.serve_forever, daemon=True).start()
    fhir_url = f"http://127.0.0.1:{fhir.server_address[1]}/fhir"
    body = hook_body("patient-view", "demo-001")
    body.update(fhirServer=fhir_url, fhirAuthorization={"access_token": "tok-123", "token_type": "Bearer",
                                                        "expires_in": 300, "scope": "patient/*.read", "subject": "cds"})
    store = SessionStore(":memory:")
    try:
        with served(create_app(pw, store, Settings(clock=None))) as base, client(base) as http_:
            without = http_.post("/cds-services/asuc-patient-view", json=body).json()["cards"]
        assert seen == []  # read-back is off unless asked for
        assert store.patients("asuc") == []
        with served(create_app(pw, store, Settings(fhir_read_back=True, clock=None))) as base, client(base) as http_:
            cards = http_.post("/cds-services/asuc-patient-view", json=body).json()["cards"]
    finally:
        fhir.shutdown()
        fhir.server_close()
    assert any(c["summary"].startswith("No pathway data") for c in without)
    assert ("/fhir/Patient/demo-001", "Bearer tok-123") in seen
    assert any(p.startswith("/fhir/Observation?patient=demo-001&code=http://loinc.org|") for p, _ in seen)
    assert store.load(pw, "demo-001").state == "rescue_selection"
    (required,) = [c for c in cards if c["summary"].startswith("Data required")]
    assert "observations-local" in required["summary"] or "medications" in required["summary"]
    assert "observations," not in required["summary"] and not required["summary"].endswith(" observations")


class _Down(SqliteSessionStore):
    """A store whose database went away after the service started (a PostgreSQL server restarting)."""

    down = False

    def _read(self, pathway_id, patient_id):
        if self.down:
            raise StoreUnavailable("the PostgreSQL server closed the connection and cannot be reached")
        return super()._read(pathway_id, patient_id)

    def count(self):
        if self.down:
            raise StoreUnavailable("cannot be reached")
        return super().count()


def test_a_store_that_cannot_be_reached_is_a_503_and_health_says_so(pw):
    store = _Down(":memory:")
    with served(create_app(pw, store, Settings(clock=None))) as base, client(base) as http:
        assert http.post("/sessions", json={"id": "p7"}).status_code == 201
        store.down = True
        reply = http.post("/sessions/p7/events", json={"day": 0, "pulse_bpm": 104})
        health = http.get("/health")
        store.down = False
        after = http.get("/sessions/p7").json()
    body = assert_problem(reply, 503)
    assert reply.headers["retry-after"] == "5" and "cannot be reached" in body["detail"]
    assert health.status_code == 503 and health.json()["store"] == "unreachable"
    assert after["path"] == ["suspected_asuc"]


def test_a_course_seen_through_patient_view_calls_alone_ends_where_run_case_does(service, pw, demo_case):
    """The EHR calls patient-view each day with what it has so far: the stored session grows by the new
    resources only, and ends in the clinical result of the case file."""
    base, store = service
    bundle = demo_bundle()
    days = ["2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z", "2026-03-05T08:00:00Z", "2026-03-08T08:00:00Z",
            "2026-03-11T08:00:00Z", "2026-03-13T08:00:00Z"]
    states = []
    with client(base) as http:
        for upto in days:
            reply = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "demo-001",
                                                                                prefetch_of(bundle, upto=upto)))
            assert reply.status_code == 200, reply.text
            assert not any(c["summary"].startswith("Some of the EHR's data was refused") for c in reply.json()["cards"])
            states.append(store.load(pw, "demo-001").state)
        final = http.get("/sessions/demo-001").json()
    assert states[0] == "iv_steroids" and states[-1] == "maintenance_thiopurine"
    assert {k: without_clock(final)[k] for k in CLINICAL} == {k: pw.run_case(demo_case)[k] for k in CLINICAL}


def test_a_session_stored_under_other_rules_is_a_card_for_a_hook_and_a_409_for_the_api(pw, tmp_path):
    location = str(tmp_path / "s.db")
    other = load_pathway("asuc", parameters={"oxford_crp_mg_l": 60})  # other parameter values: another fingerprint
    with SessionStore(location) as store:
        store.save(other.start({"id": "p8", "weight_kg": 70}))
    store = SessionStore(location)
    with served(create_app(pw, store, Settings(clock=None))) as base, client(base) as http:
        hook = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "p8"))
        api = http.get("/sessions/p8")
    assert hook.status_code == 200
    (card,) = [c for c in hook.json()["cards"] if c["summary"].startswith("The pathway's stored session")]
    assert card["indicator"] == "warning" and "PW523" in card["detail"]
    assert assert_problem(api, 409)["diagnostics"][0]["code"] == "PW523"
    store.close()


# -- cards for the time of the call -------------------------------------------------------------------

STALLED = {"id": "stalled-1", "admission_time": "2026-03-02T08:00", "weight_kg": 70, "age_years": 40}
ADMISSION_DAY = {"id": "adm", "time": "2026-03-02T09:00", "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4,
                 "hb_g_dl": 11.5, "crp_mg_l": {"value": 60, "unit": "mg/L"}, "albumin_g_l": 32}


def _at(when: str) -> Any:
    from datetime import datetime
    return lambda: datetime.fromisoformat(when)


def _stored_admission(base: str) -> None:
    with client(base) as http:
        assert http.post("/sessions", json=STALLED).status_code == 201
        assert http.post("/sessions/stalled-1/events", json=ADMISSION_DAY).status_code == 200


def test_patient_view_on_day_5_says_the_day3_assessment_was_never_made_though_nothing_new_came(pw, tmp_path):
    # Admitted with ASUC on IV steroids, nothing recorded since. The guidelines decide on day 3 (evidence §4.1):
    # a clinician opening the chart on day 5 must be told the assessment is missing, not shown day-0 cards.
    store = SessionStore(str(tmp_path / "s.db"))
    settings = Settings(clock=_at("2026-03-07T09:30+00:00"))
    with served(create_app(pw, store, settings)) as base:
        _stored_admission(base)
        with client(base) as http:
            reply = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "stalled-1", {}))
            stored = http.get("/sessions/stalled-1").json()
    assert reply.status_code == 200, reply.text
    cards = reply.json()["cards"]
    incomplete = [c for c in cards if c.get("extension", {}).get("asuc-pathway", {}).get("rule") == "day3_assessment_incomplete"
                  and c["indicator"] == "critical"]
    assert incomplete, [c["summary"] for c in cards]
    assert not any(c["summary"].startswith("These cards are as of the last recorded event") for c in cards)
    # nothing of that evaluation was kept: the stored course is still the admission alone
    assert stored["day"] < 1 and len(store.load(pw, "stalled-1").recorded_events()) == 1
    store.close()


def test_patient_view_at_a_time_before_the_last_event_says_the_cards_are_of_the_last_event(pw, tmp_path):
    store = SessionStore(str(tmp_path / "s.db"))
    with served(create_app(pw, store, Settings(clock=_at("2026-03-02T08:30+00:00")))) as base:
        _stored_admission(base)
        with client(base) as http:
            cards = http.post("/cds-services/asuc-patient-view", json=hook_body("patient-view", "stalled-1", {})).json()["cards"]
    (note,) = [c for c in cards if c["summary"] == "These cards are as of the last recorded event, not now"]
    assert note["indicator"] == "warning" and "before the last recorded event" in note["detail"]
    assert "(day 0)" in note["detail"]
    assert not any(c.get("extension", {}).get("asuc-pathway", {}).get("rule") == "day3_assessment_incomplete"
                   for c in cards)
    store.close()
