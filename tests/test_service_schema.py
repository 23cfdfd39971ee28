"""schemathesis against the OpenAPI the service serves: generated requests to every operation, over real HTTP,
never get a server error (5xx); every error is problem+json. A few examples per operation (the machine is shared):
about 30 s in all."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servicekit import PROBLEM, client, served

from pathway import SessionStore, load_pathway
from pathway.service.app import Settings, create_app

#: examples per operation
EXAMPLES = 25
SERVICES = ["asuc-patient-view", "asuc-order-select", "asuc-order-sign"]


@pytest.fixture(scope="module")
def base():
    pw = load_pathway("asuc")
    store = SessionStore(":memory:")
    with served(create_app(pw, store, Settings())) as url:
        with client(url) as http:  # a session to find, so the generated calls reach the pathway as well
            http.post("/sessions", json={"id": "p1", "weight_kg": 70})
            http.post("/sessions/p1/events", json={"id": "e1", "day": 0, "bloody_stools_24h": 8, "pulse_bpm": 104})
        yield url
    store.close()


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(base):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # from schemathesis' own dependencies
        import schemathesis
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 9
    seen: dict[str, set[int]] = {}
    for operation in operations:
        run_operation(base, operation, seen)
    assert set(seen) == {f"{op.method.upper()} {op.path}" for op in operations}
    # the generated requests reached the operations, not only the body checks in front of them
    assert any(code < 300 for codes in seen.values() for code in codes)
    assert 200 in seen["POST /cds-services/{service}"] and 200 in seen["POST /sessions/{patient_id}/events"]
    assert all(code < 500 for codes in seen.values() for code in codes)


def run_operation(base, operation, seen):
    """EXAMPLES generated calls of one operation; the status codes seen go into ``seen``."""
    from schemathesis.checks import not_a_server_error, response_schema_conformance
    label = f"{operation.method.upper()} {operation.path}"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), known=st.booleans(), service=st.sampled_from(SERVICES))
    def check(case, known, service):
        params = case.path_parameters or {}
        if known:  # a patient, event and service that exist, so the call gets past the 404
            for name, value in (("patient_id", "p1"), ("event_id", "e1"), ("service", service)):
                if name in params:
                    params[name] = value
            if isinstance(case.body, dict) and "hook" in case.body:
                case.body["hook"] = service.removeprefix("asuc-")
        response = case.call(base_url=base, timeout=60)
        seen.setdefault(label, set()).add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        if response.status_code >= 400:
            ctype = response.headers.get("content-type")
            assert (ctype[0] if isinstance(ctype, list) else ctype) == PROBLEM, (label, response.status_code)

    check()
