"""SMART Backend Services credentials and the signed JWT that authenticates fhirnet to a token
endpoint (http://hl7.org/fhir/smart-app-launch/backend-services.html, "Protocol details").

No network here: :class:`fhirnet.adapters.fhir_client.FhirClient` posts the assertion through its
own session,
so ``requests`` stays in one module (``style.md`` P1) and this module is testable offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2).
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: The spec caps ``exp`` at five minutes in the future; staying a minute under it leaves room for
#: clock skew between fhirnet and the authorisation server, which checks against its own clock.
ASSERTION_LIFETIME_SECONDS = 240

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, kw_only=True)
class SmartCredentials:
    """What fhirnet registered with the FHIR server's authorisation server, as plain values.

    The key is parsed at construction so that a wrong key file fails at start-up, not at the
    first write. The spec requires RS384 or ES384: an RSA key signs with RS384, an EC key on
    P-384 with ES384; other keys are refused.

    :param client_id: the registered client id; ``iss`` and ``sub`` of every assertion.
    :param private_key_pem: the PEM (PKCS#1, PKCS#8 or SEC1) private key, unencrypted.
    :param scope: the scopes to request, e.g. ``"system/Observation.cu system/*.rs"``.
    :param token_url: the token endpoint; ``None`` discovers it from the FHIR server's
        ``.well-known/smart-configuration``.
    :param key_id: ``kid`` of the public key in the registered JWK Set; ``None`` uses the key's
        RFC 7638 thumbprint, which is what most JWKS tools name keys by.
    :raises ValueError: the key cannot be read or is of an unsupported type.
    """

    client_id: str
    private_key_pem: bytes = field(repr=False)
    scope: str
    token_url: str | None = None
    key_id: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id or not self.scope.strip():
            raise ValueError("SMART client_id and scope must not be empty")
        _ = self._key  # fail fast on an unusable key

    @cached_property
    def _key(self) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(f"SMART private key cannot be read: {error}") from None
        if isinstance(key, rsa.RSAPrivateKey):
            return key
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
            return key
        raise ValueError("SMART private key must be RSA (RS384) or EC on P-384 (ES384)")

    @property
    def algorithm(self) -> str:
        """``RS384`` or ``ES384``, the two algorithms the spec allows."""
        return "RS384" if isinstance(self._key, rsa.RSAPrivateKey) else "ES384"

    @cached_property
    def kid(self) -> str:
        """The configured key id, or the RFC 7638 SHA-256 thumbprint of the public key."""
        return self.key_id or _thumbprint(self._key)

    def client_assertion(self, *, audience: str, now: float, jti: str) -> str:
        """A signed ``client_assertion`` for one token request.

        :param audience: the token endpoint URL (``aud``).
        :param now: the current time, seconds since the epoch; ``exp`` is derived from it.
        :param jti: a value never used before; the server rejects replays.
        :returns: the compact JWS.
        """
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "exp": int(now) + ASSERTION_LIFETIME_SECONDS,
            "jti": jti,
        }
        headers = {"typ": "JWT", "kid": self.kid}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)


def _thumbprint(key: SigningKey) -> str:
    """RFC 7638: SHA-256 over the required public JWK members, sorted, without whitespace."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        members = {name: jwk[name] for name in ("e", "kty", "n")}
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
