"""The bearer check of CDS Hooks 2.0: the EHR signs a JWT for every call and the service checks it.

With ``--token-issuer ISS=JWKS_URL`` (one or more), every call except discovery, health and the OpenAPI
document needs ``Authorization: Bearer <JWT>`` with:

- an asymmetric signature (RS/PS/ES 256-512; never ``none`` nor a shared secret) by a key of the issuer's
  JWK Set, fetched from the URL configured for that issuer (``https://``, ``http://`` or ``file://``), never
  from a URL the token names: a ``jku`` header is accepted only when it is one of the issuer's configured URLs;
- ``iss`` on the allow-list; ``aud`` the service's URL (its base URL, ``/cds-services``, or the very endpoint
  called); ``exp`` and ``iat`` present, ``iat`` not in the future and ``exp`` within ``max_lifetime`` seconds
  of it (CDS Hooks: five minutes), each with ``leeway`` seconds of clock skew; ``jti`` present and not seen
  before from that issuer (a token is used once: a replay is refused).

A refused token is a 401 problem (``WWW-Authenticate: Bearer``) that says why without echoing the token; keys
that cannot be fetched are a 503.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from pathway.service.problems import Problem

__all__ = ["TokenPolicy", "ALGORITHMS", "parse_issuer"]

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


def parse_issuer(text: str) -> tuple[str, str]:
    """``ISS=JWKS_URL`` (the issuer may itself hold ``=``: the URL is after the last one that starts it)."""
    iss, sep, url = text.rpartition("=")
    while iss and not url.startswith(("https://", "http://", "file://")) and "=" in iss:
        iss, _, head = iss.rpartition("=")
        url = head + "=" + url
    if not sep or not iss or not url.startswith(("https://", "http://", "file://")):
        raise ValueError(f"--token-issuer takes ISS=JWKS_URL (an https://, http:// or file:// URL), not {text!r}")
    return iss, url


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "The bearer token is refused", detail,
                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


@dataclass
class TokenPolicy:
    """The issuers allowed (``iss`` -> the URLs of its JWK Set; the first is fetched when the token names
    none) and the service's URL (``aud``)."""

    issuers: dict[str, tuple[str, ...]]
    audience: str
    leeway: int = 30
    max_lifetime: int = 300
    timeout: float = 5.0
    _clients: dict[str, jwt.PyJWKClient] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: (iss, jti) -> exp of the tokens accepted and not yet expired
    _seen: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)

    def _client(self, url: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=self.timeout)
                self._clients[url] = client
            return client

    def _key(self, url: str, kid: Any) -> Any:
        """The key of ``url``'s JWK Set with id ``kid`` (the only signing key when the token names none)."""
        if url.startswith("file://"):
            try:
                text = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)).read_text(encoding="utf-8")
                keys = jwt.PyJWKSet.from_dict(json.loads(text)).keys
            except (OSError, ValueError) as exc:
                raise jwt.PyJWKClientConnectionError(f"cannot read the key set file: {exc}") from None
            signing = [k for k in keys if k.public_key_use in ("sig", None)]
        else:
            client = self._client(url)
            if kid is not None:
                return client.get_signing_key(str(kid)).key
            signing = client.get_signing_keys()
        if kid is not None:
            signing = [k for k in signing if k.key_id == str(kid)]
            if not signing:
                raise jwt.PyJWKClientError(f"no key of the key set has the id {str(kid)[:40]!r}")
        if len(signing) != 1:
            raise jwt.PyJWKClientError("the token names no key (kid) and its issuer's key set has several")
        return signing[0].key

    def audiences(self, path: str) -> list[str]:
        base = self.audience.rstrip("/")
        return [base, base + "/", base + "/cds-services", base + path]

    def check(self, authorization: str | None, path: str) -> dict[str, Any]:
        """The claims of the request's token; :class:`Problem` 401 (or 503) when it is refused."""
        if not authorization:
            raise _unauthorized("this service needs a bearer token (Authorization: Bearer <JWT>)")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header is not 'Bearer <JWT>'")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"not a JWT: {exc}") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _unauthorized(f"the signature algorithm {str(alg)[:20]!r} is not accepted (one of {', '.join(ALGORITHMS)})")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self.issuers:
            raise _unauthorized("the token's issuer (iss) is not on the service's allow-list")
        urls = self.issuers[iss]
        jku = header.get("jku")
        if jku is not None and jku not in urls:
            raise _unauthorized("the token's jku header names a key set that is not allowed for its issuer")
        url = jku if isinstance(jku, str) else urls[0]
        try:
            key = self._key(url, header.get("kid"))
        except jwt.PyJWKClientConnectionError as exc:
            raise Problem(503, "keys-unavailable", "The issuer's keys cannot be fetched",
                          f"the key set of the token's issuer could not be fetched: {str(exc)[:200]}") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"no key of the issuer verifies the token: {str(exc)[:200]}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=self.audiences(path), issuer=iss, leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "jti"]})
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the token is refused: {str(exc)[:200]}") from None
        if float(claims["exp"]) - float(claims["iat"]) > self.max_lifetime + self.leeway:
            raise _unauthorized(f"the token lives longer than {self.max_lifetime} seconds (exp - iat)")
        self._first_use(iss, claims)
        return claims

    def _first_use(self, iss: str, claims: dict[str, Any]) -> None:
        """Refuse a token whose ``jti`` this service has already accepted from its issuer (a replay); ids are
        remembered until their token expires."""
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise _unauthorized("the token's jti is not a non-empty text")
        now = time.time()
        with self._lock:
            for key in [k for k, exp in self._seen.items() if exp + self.leeway < now]:
                del self._seen[key]
            if (iss, jti) in self._seen:
                raise _unauthorized("the token was used before (its jti is not new): a CDS Client signs a new one "
                                    "for every call")
            self._seen[(iss, jti)] = float(claims["exp"])
