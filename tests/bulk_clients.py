"""Bulk clients for the token endpoint tests: real RS384 and ES384 key pairs, their JWK Sets,
and the client assertions and token request forms a SMART Backend Services client sends."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class ClientKey:
    """A client's key pair, the algorithm it signs with and its ``kid``."""

    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def rsa_key(kid: str = "rsa-384") -> ClientKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ClientKey(private=private, algorithm="RS384", kid=kid)


def ec_key(kid: str = "ec-384") -> ClientKey:
    return ClientKey(private=ec.generate_private_key(ec.SECP384R1()), algorithm="ES384", kid=kid)


def assertion(
    key: ClientKey,
    *,
    client_id: str,
    aud: str,
    now: int | None = None,
    expires_in: int = 300,
    headers: dict[str, Any] | None = None,
    algorithm: str | None = None,
    **claims: Any,
) -> str:
    """A signed client assertion (SMART client-confidential-asymmetric); a claim or header
    given as ``None`` is left out."""
    now = int(time.time()) if now is None else now
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
    } | claims
    header = {"kid": key.kid, "typ": "JWT"} | (headers or {})
    return jwt.encode(
        {name: value for name, value in payload.items() if value is not None},
        key.private,
        algorithm=algorithm or key.algorithm,
        headers={name: value for name, value in header.items() if value is not None},
    )


def token_form(signed: str, scope: str = "system/*.rs", **overrides: Any) -> dict[str, Any]:
    """The form of a token request with the client assertion ``signed``; a parameter given as
    ``None`` is left out."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        "scope": scope,
    } | overrides
    return {name: value for name, value in form.items() if value is not None}


def write_clients(path: Path, clients: list[dict[str, Any]]) -> Path:
    """``clients`` as a ``FHIRNET_BULK_CLIENTS_FILE``."""
    path.write_text(json.dumps(clients), encoding="utf-8")
    return path
