"""Who may call fhirnet: bearer tokens (static API keys, JWT access tokens verified against a
JWKS, or the access tokens fhirnet issued itself to its bulk clients) and the SMART v2 system
scopes they carry; JWTs of the configured issuer may also carry ``user/`` scopes and the reader's
``fhirUser`` (SMART App Launch: a reader signed in at the /crf page; docs/auth.md).

The tokens fhirnet issues (:mod:`fhirnet.authorization`) are HS256 JWTs signed with fhirnet's
own secret key (:mod:`fhirnet.token_key`). They name :data:`ISSUER` and :data:`KEY_ID`; a token
that names either is verified with that key and HS256 only, and every other JWT with the JWKS
and its asymmetric algorithms only: no external JWT is ever checked against the secret key
(which would let anyone who guessed the algorithm forge one), and no token claiming to be
fhirnet's is ever checked against a JWKS.

No Flask here: :mod:`fhirnet.web.auth` maps requests to the :class:`Permission` they need and
calls :meth:`Authenticator.authenticate`. SMART scope syntax:
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from fhirnet.config import ConfigError, Settings, auth_methods
from fhirnet.errors import AuthenticationError
from fhirnet.token_key import load_token_key, token_key_path

#: SMART v2 interactions, in the order scopes must list them.
INTERACTIONS = "cruds"
#: SMART v1 permissions and what they mean in v2 (accepted for compatibility).
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
#: Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
LEEWAY_SECONDS = 30
#: Longest bearer token looked at; longer ones are refused unparsed.
MAX_TOKEN_LENGTH = 8192
#: Seconds a JWKS fetched from a URL is reused before it is fetched again.
JWKS_CACHE_SECONDS = 300
JWKS_FETCH_TIMEOUT_SECONDS = 10

#: The ``iss`` of every access token fhirnet issues, and the ``kid`` of the key that signs it:
#: fixed names of its own, which no external issuer or JWKS can take.
ISSUER = "urn:fhirnet:token-endpoint"
KEY_ID = "fhirnet-token-key"
#: The one algorithm of the tokens fhirnet issues (the key is secret and never leaves fhirnet).
ISSUED_ALGORITHM = "HS256"
#: The ``typ`` header of those tokens (RFC 9068 §2.1), so a token fhirnet issued can never pass
#: for a client's assertion, nor an assertion for an access token.
ISSUED_TYPE = "at+jwt"
#: The JWK key type (``kty``) each family of accepted algorithms needs (RFC 7518 §3.1).
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}

_SCOPE = re.compile(
    r"(?P<level>system|user)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\."
    r"(?P<permissions>read|write|\*|[a-z]+)"
)
#: ``fhirUser`` as SMART puts it in a token: a relative or absolute reference to a FHIR
#: resource (``Practitioner/123``, ``https://ehr.example.org/fhir/Practitioner/123``).
_FHIR_USER = re.compile(r"(?:https?://[^\s]+/)?[A-Z][A-Za-z]{0,63}/[A-Za-z0-9\-.]{1,64}")
MAX_FHIR_USER_LENGTH = 1024
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")


@dataclass(frozen=True)
class Permission:
    """One SMART v2 interaction on one resource type, e.g. ``system/Observation.s``."""

    resource_type: str
    interaction: str

    def __str__(self) -> str:
        return f"system/{self.resource_type}.{self.interaction}"


@dataclass(frozen=True)
class Grant:
    """What one scope allows: interactions on one resource type (``*``: every type)."""

    resource_type: str
    interactions: frozenset[str]

    def allows(self, permission: Permission) -> bool:
        """Whether this grant covers ``permission``."""
        return (
            self.resource_type in ("*", permission.resource_type)
            and permission.interaction in self.interactions
        )


def is_resource_type(name: str) -> bool:
    """Whether ``name`` has the shape of a FHIR resource type (and is safe in a header)."""
    return _RESOURCE_TYPE.fullmatch(name) is not None


def parse_scope(scope: str, *, user: bool = False) -> Grant | None:
    """The grant of one ``system/`` scope (with ``user``, also of one ``user/`` scope);
    ``None`` for every other scope.

    A ``user/`` scope grants what the same ``system/`` scope does: fhirnet keeps no per-user
    partitions of its data, so what a user may do on a type is that interaction on the type. It
    is honoured only in the JWTs of the configured issuer (``user``): API keys and bulk clients
    are systems, not users. ``patient/`` scopes, and v2 scopes narrowed by a query
    (``?category=...``), grant nothing: fhirnet cannot enforce a patient compartment or a
    search filter, so it refuses them rather than widening them. Permissions must be in
    ``cruds`` order (SMART v2); v1 ``read``/``write``/``*`` are accepted.
    """
    match = _SCOPE.fullmatch(scope)
    if match is None or (match["level"] == "user" and not user):
        return None
    permissions = V1_PERMISSIONS.get(match["permissions"], match["permissions"])
    if not _in_order(permissions):
        return None
    return Grant(resource_type=match["type"], interactions=frozenset(permissions))


def _in_order(permissions: str) -> bool:
    positions = [INTERACTIONS.find(letter) for letter in permissions]
    return -1 not in positions and positions == sorted(set(positions))


FULL_ACCESS = (Grant(resource_type="*", interactions=frozenset(INTERACTIONS)),)


#: How a caller's identity (:attr:`Principal.subject`) starts, by how it authenticated: an API
#: key is ``key:<its number in FHIRNET_API_KEYS>``, a JWT ``jwt:<iss>|<sub>``. So no JWT can
#: claim an API key's identity or another issuer's subject, and the outbox's owner check
#: (``GET /fhir/_submission/<id>``) and the AuditEvents compare identities, not free text.
KEY_PREFIX = "key:"
JWT_PREFIX = "jwt:"
#: A bulk client holding a token fhirnet issued is ``client:<client_id>``.
CLIENT_PREFIX = "client:"


@dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated caller: who (namespaced, see :data:`KEY_PREFIX`; for the audit trail,
    the outbox and the log) and what its scopes grant."""

    subject: str
    grants: tuple[Grant, ...]
    #: The registered bulk client (SMART Backend Services) a token fhirnet issued stands for.
    client_id: str | None = None
    #: Set for a bulk client registered as pseudonymized: its data may leave only through bulk
    #: export, pseudonymized for this study (docs/auth.md).
    pseudonymized_study: str | None = None
    #: The signed-in user a JWT names in its ``fhirUser`` claim (SMART App Launch), e.g.
    #: ``Practitioner/123``: the reader whose forms this caller submits (docs/auth.md).
    fhir_user: str | None = None

    def allows(self, permission: Permission) -> bool:
        """Whether any of the caller's scopes covers ``permission``."""
        return any(grant.allows(permission) for grant in self.grants)


def grants_of(scopes: Iterable[str], *, user: bool = False) -> tuple[Grant, ...]:
    """The grants of the scopes that grant something (others are ignored); ``user``: ``user/``
    scopes count too (:func:`parse_scope`)."""
    grants = (parse_scope(scope, user=user) for scope in scopes)
    return tuple(grant for grant in grants if grant is not None)


class Authenticator:
    """Turns a bearer token into a :class:`Principal`, by the methods ``settings`` enable.

    Built once per application, so a bad key list or JWKS file stops the start.

    :param settings: ``api_keys``, ``jwks_url``/``jwks_file``, ``jwt_*``.
    :raises ConfigError: the settings are inconsistent (:func:`fhirnet.config.auth_methods`),
        an API key lists a scope that grants nothing, or the JWKS file is unusable.
    """

    def __init__(self, settings: Settings) -> None:
        self.methods = auth_methods(settings)
        self._keys: list[tuple[bytes, Principal]] = []
        for number, (key, scopes) in enumerate(settings.api_keys, start=1):
            unusable = [scope for scope in scopes if parse_scope(scope) is None]
            if unusable:
                raise ConfigError(
                    f"FHIRNET_API_KEYS: key {number} lists scopes that grant nothing: "
                    f"{' '.join(unusable)} (system/<Type|*>.<cruds>)"
                )
            principal = Principal(
                subject=f"{KEY_PREFIX}{number}", grants=grants_of(scopes) if scopes else FULL_ACCESS
            )
            self._keys.append((_digest(key), principal))
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwks: jwt.PyJWKSet | None = None
        self._own_key: bytes | None = None
        if "issued" in self.methods:
            self._own_key = load_token_key(token_key_path(settings))
        self._jwks_client: jwt.PyJWKClient | None = None
        if settings.jwks_file is not None:
            self._jwks = _load_jwks_file(settings.jwks_file)
        elif settings.jwks_url is not None:
            self._jwks_client = jwt.PyJWKClient(
                settings.jwks_url,
                cache_keys=True,
                lifespan=JWKS_CACHE_SECONDS,
                timeout=JWKS_FETCH_TIMEOUT_SECONDS,
            )

    @property
    def open(self) -> bool:
        """Whether access is open (``FHIRNET_AUTH=none``): no token is needed or looked at."""
        return not self.methods

    def authenticate(self, token: str) -> Principal:
        """The caller a bearer token stands for.

        A token shaped like a JWT (three dot-separated parts) is verified as one when JWTs are
        enabled; anything else is looked up among the API keys.

        :raises AuthenticationError: the token is unknown, malformed, badly signed, expired, not
            yet valid, or for another issuer or audience.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError("The access token is too long.")
        if token.count(".") == 2 and _claims_to_be_ours(token):
            if self._own_key is None:  # never through the JWKS, whatever it holds
                raise AuthenticationError("This fhirnet issues no tokens.")
            return self._verify_issued(token, self._own_key)
        if "jwt" in self.methods and token.count(".") == 2:
            return self._verify_jwt(token)
        if "keys" in self.methods:
            return self._look_up_key(token)
        raise AuthenticationError("The access token is not a JWT.")

    def _verify_issued(self, token: str, key: bytes) -> Principal:
        """A token fhirnet issued: its own key, HS256, its own issuer, nothing else."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != KEY_ID or header.get("typ") != ISSUED_TYPE:
                raise AuthenticationError("The access token is not one fhirnet issued.")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ISSUED_ALGORITHM],
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "sub", "jti"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The access token has expired.") from None
        except jwt.PyJWTError:
            raise AuthenticationError("The access token is not a valid token of fhirnet.") from None
        client_id = claims.get("sub")
        study = claims.get("pseudonymized_study")
        if not isinstance(client_id, str) or not client_id:
            raise AuthenticationError("The access token lacks the sub claim.")
        if study is not None and not isinstance(study, str):
            raise AuthenticationError("The access token is not a valid token of fhirnet.")
        return Principal(
            subject=f"{CLIENT_PREFIX}{client_id}",
            grants=grants_of(_scopes(claims)),
            client_id=client_id,
            pseudonymized_study=study,
        )

    def _look_up_key(self, token: str) -> Principal:
        # Compare digests in constant time, and every key, so timing tells nothing.
        digest = _digest(token)
        found = None
        for key_digest, principal in self._keys:
            if hmac.compare_digest(key_digest, digest):
                found = principal
        if found is None:
            raise AuthenticationError("Unknown API key.")
        return found

    def _verify_jwt(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in self._algorithms:
                raise AuthenticationError(f"The token's algorithm {algorithm!r} is not accepted.")
            key = self._signing_key(token, header)
            # A key that names its algorithm verifies that one only (RFC 7517 §4.4).
            if key._jwk_data.get("alg", algorithm) != algorithm:
                raise AuthenticationError("The token's algorithm does not match its key.")
            # An RSA key with ES256 (or an EC key with RS256) makes PyJWT raise TypeError, a 500
            # before anyone is authenticated: refuse it as what it is, a token that cannot verify.
            if _KEY_TYPES.get(algorithm[:2]) != key.key_type:
                raise AuthenticationError("The token's algorithm does not match its key.")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The access token has expired.") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("The access token is for another audience.") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("The access token is from another issuer.") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("The access token's signature is invalid.") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationError(f"The access token lacks the {error.claim} claim.") from None
        except jwt.PyJWKClientError:
            raise AuthenticationError("No key to verify the access token with.") from None
        except jwt.PyJWTError:
            raise AuthenticationError("The access token is not a valid JWT.") from None
        except (TypeError, ValueError):
            # What else the crypto backend raises for a key it cannot use with the algorithm.
            raise AuthenticationError("The token's algorithm does not match its key.") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("The access token lacks the sub claim.")
        # Namespaced by issuer: a subject is unique per issuer only (RFC 7519 §4.1.2), and
        # client_id or azp are the client's own claims, not an identity fhirnet may trust.
        return Principal(
            subject=f"{JWT_PREFIX}{claims['iss']}|{subject}",
            grants=grants_of(_scopes(claims), user=True),
            fhir_user=_fhir_user(claims),
        )

    def _signing_key(self, token: str, header: Mapping[str, Any]) -> jwt.PyJWK:
        if self._jwks_client is not None:
            return self._jwks_client.get_signing_key_from_jwt(token)
        assert self._jwks is not None  # noqa: S101 - jwt is enabled, so one of the two is set
        kid = header.get("kid")
        candidates = [key for key in self._jwks.keys if kid is None or key.key_id == kid]
        if kid is None and len(candidates) != 1:
            raise AuthenticationError("The access token names no key (kid).")
        if not candidates:
            raise AuthenticationError("The access token's key (kid) is unknown.")
        return candidates[0]


def _claims_to_be_ours(token: str) -> bool:
    """Whether a JWT names fhirnet's key or fhirnet as its issuer (read unverified: this only
    chooses the one key it may be verified with)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return header.get("kid") == KEY_ID or claims.get("iss") == ISSUER


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _fhir_user(claims: Mapping[str, Any]) -> str | None:
    """The token's ``fhirUser`` (SMART App Launch), a reference to a FHIR resource.

    :raises AuthenticationError: it is there but not such a reference: a token that cannot say
        who signed must not sign anything.
    """
    value = claims.get("fhirUser")
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_FHIR_USER_LENGTH
        or _FHIR_USER.fullmatch(value) is None
    ):
        raise AuthenticationError("The access token's fhirUser is not a FHIR reference.")
    return value


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    """SMART puts scopes space-separated in ``scope``; some servers send a list."""
    scope = claims.get("scope", "")
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [item for item in scope if isinstance(item, str)]
    return []


def _load_jwks_file(path: Any) -> jwt.PyJWKSet:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        jwks = jwt.PyJWKSet.from_dict(data)
    except (OSError, ValueError, jwt.PyJWTError) as error:
        raise ConfigError(f"FHIRNET_JWKS_FILE {path} is not a usable JWK Set: {error}") from None
    if any(key.key_type == "oct" for key in jwks.keys):
        raise ConfigError(f"FHIRNET_JWKS_FILE {path} holds a symmetric (oct) key: refused")
    return jwks
