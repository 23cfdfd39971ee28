"""The CDS Hooks bearer check: a JWT signed by an allowed issuer's key (its JWK Set served on loopback or read
from a file), for this service, short-lived; everything else is a 401 problem and nothing is applied."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from servicekit import PROBLEM, client, hook_body, served

from pathway import SessionStore, load_pathway
from pathway.service.app import Settings, create_app
from pathway.service.auth import parse_issuer

ISS = "https://ehr.example.org"
KID = "ehr-key-1"


@pytest.fixture(scope="module")
def pw():
    return load_pathway("asuc")


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*keys: tuple[Any, str]) -> dict[str, Any]:
    out = []
    for private, kid in keys:
        if isinstance(private, rsa.RSAPrivateKey):
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        else:
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
        out.append({**jwk, "kid": kid, "use": "sig"})
    return {"keys": out}


@pytest.fixture(scope="module")
def jwks_url(key) -> Iterator[str]:
    """The issuer's JWK Set on a loopback HTTP server."""
    body = json.dumps(jwks((key, KID))).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if self.path == "/jwks.json" else b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def service(pw, jwks_url) -> Iterator[tuple[str, Any]]:
    store = SessionStore(":memory:")
    settings = Settings(token_issuers={ISS: (jwks_url,)})
    app_holder: dict[str, Any] = {}
    # the audience is the service's URL, known once it listens: the settings are read per request
    with served(_late(app_holder, pw, store, settings)) as base:
        settings.base_url = base
        app_holder["app"] = create_app(pw, store, settings)
        yield base, store
    store.close()


def _late(holder: dict[str, Any], pw: Any, store: Any, settings: Settings) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)
    return app


def token(private: Any, aud: str, *, iss: str = ISS, alg: str = "RS384", kid: str | None = KID, lifetime: int = 300,
          iat_offset: int = 0, **headers: Any) -> str:
    now = int(time.time()) + iat_offset
    claims = {"iss": iss, "sub": "ehr-client", "aud": aud, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    head = {**({"kid": kid} if kid else {}), **headers}
    return jwt.encode(claims, private, algorithm=alg, headers=head)


def call(base: str, bearer: str | None, path: str = "/cds-services/asuc-patient-view") -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    with client(base) as http:
        return http.post(path, json=hook_body("patient-view", "p-auth"), headers=headers)


def refused(reply: Any, words: str) -> None:
    assert reply.status_code == 401, reply.text
    assert reply.headers["content-type"] == PROBLEM and reply.headers["www-authenticate"].startswith("Bearer")
    assert words in reply.json()["detail"], reply.json()["detail"]


def test_a_token_signed_by_an_allowed_issuer_for_this_service_is_accepted(service, key):
    base, _store = service
    endpoint = base + "/cds-services/asuc-patient-view"
    assert call(base, token(key, endpoint)).status_code == 200
    assert call(base, token(key, base)).status_code == 200  # the service's base URL as the audience
    with client(base) as http:  # discovery and health stay open
        assert http.get("/cds-services").status_code == 200
        assert http.get("/health").status_code == 200


def test_the_json_api_needs_the_token_too(service, key):
    base, store = service
    with client(base) as http:
        assert http.post("/sessions", json={"id": "nope"}).status_code == 401
        good = http.post("/sessions", json={"id": "yes"}, headers={"Authorization": f"Bearer {token(key, base)}"})
    assert good.status_code == 201
    assert store.patients("asuc") == ["yes"]


def test_missing_malformed_and_foreign_tokens_are_refused(service, key, jwks_url):
    base, _store = service
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(call(base, None), "needs a bearer token")
    refused(call(base, "not-a-jwt"), "not a JWT")
    refused(call(base, token(key, "https://other-service.example")), "Audience")
    refused(call(base, token(key, base, iss="https://evil.example")), "issuer (iss) is not on the service's allow-list")
    refused(call(base, token(other, base)), "Signature verification failed")  # the issuer's kid, another key
    refused(call(base, token(other, base, kid="unknown-kid")), "no key of the issuer verifies the token")
    refused(call(base, token(key, base, lifetime=-120)), "expired")
    refused(call(base, token(key, base, iat_offset=600)), "not yet valid")
    refused(call(base, token(key, base, lifetime=3600)), "lives longer than 300 seconds")
    # the token cannot send the service to a key set of its own choosing
    refused(call(base, token(other, base, jku="https://evil.example/jwks.json")), "jku header")
    assert call(base, token(key, base, jku=jwks_url)).status_code == 200  # the issuer's own key set


def test_a_token_is_used_once(service, key):
    base, _store = service
    once = token(key, base)
    assert call(base, once).status_code == 200
    refused(call(base, once), "used before")
    now = int(time.time())
    no_jti = jwt.encode({"iss": ISS, "aud": base, "iat": now, "exp": now + 60}, key, algorithm="RS384",
                        headers={"kid": KID})
    refused(call(base, no_jti), '"jti"')


def test_tokens_signed_with_a_shared_secret_or_none_are_refused(service, key):
    base, _store = service
    now = int(time.time())
    claims = {"iss": ISS, "aud": base, "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, None, algorithm="none")
    refused(call(base, unsigned), "algorithm 'none' is not accepted")
    secret = jwt.encode(claims, "a-shared-secret-that-is-long-enough-for-hs256", algorithm="HS256", headers={"kid": KID})
    refused(call(base, secret), "algorithm 'HS256' is not accepted")


def test_an_ec_key_set_read_from_a_file_verifies_es384_tokens(pw, tmp_path: Path):
    private = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks((private, "ec-1"))), encoding="utf-8")
    settings = Settings(token_issuers={ISS: (path.as_uri(),)}, base_url="https://cds.example.org")
    with served(create_app(pw, SessionStore(":memory:"), settings)) as base:
        ok = call(base, token(private, "https://cds.example.org/cds-services/asuc-patient-view", alg="ES384", kid="ec-1"))
        wrong_aud = call(base, token(private, base, alg="ES384", kid="ec-1"))  # the URL the EHR should not use
    assert ok.status_code == 200, ok.text
    refused(wrong_aud, "Audience")


def test_an_unreachable_key_set_is_a_503_not_an_acceptance(pw, key):
    settings = Settings(token_issuers={ISS: ("http://127.0.0.1:9/jwks.json",)}, base_url="https://cds.example.org")
    with served(create_app(pw, SessionStore(":memory:"), settings)) as base:
        reply = call(base, token(key, "https://cds.example.org"))
    assert reply.status_code == 503 and reply.headers["content-type"] == PROBLEM


def test_issuer_options_parse_and_refuse_what_is_not_a_url():
    assert parse_issuer("https://ehr.example.org=https://ehr.example.org/jwks.json") == (
        "https://ehr.example.org", "https://ehr.example.org/jwks.json")
    assert parse_issuer("urn:ehr=1=file:///etc/keys.json") == ("urn:ehr=1", "file:///etc/keys.json")
    for bad in ("https://ehr.example.org", "iss=ftp://x", "=https://x"):
        with pytest.raises(ValueError):
            parse_issuer(bad)


def test_the_token_is_checked_before_the_body_so_a_stranger_learns_nothing_of_its_shape(service, key):
    base, _store = service
    with client(base) as http:
        stranger = http.post("/sessions", json={"not": "a patient"})
        member = http.post("/sessions", json={"not": "a patient"}, headers={"Authorization": f"Bearer {token(key, base)}"})
    refused(stranger, "needs a bearer token")
    assert member.status_code == 422 and member.headers["x-request-id"]
