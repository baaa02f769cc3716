"""fhirnet's own token endpoint for bulk clients: SMART Backend Services, a ``client_credentials``
grant authenticated by a signed JWT assertion (SMART App Launch 2.x, client-confidential-
asymmetric.html and backend-services.html; RFC 7523 §2.2, RFC 6749 §5).

A registered client (:class:`BulkClient`, loaded by :mod:`fhirnet.adapters.bulk_clients`) signs
an assertion with its private key (RS384 or ES384); :meth:`TokenIssuer.issue` checks it against
the client's public keys, narrows the scopes asked for to read access the client is registered
for, remembers the assertion's ``jti`` until it expires (:class:`UsedAssertions`, so it cannot
be replayed on any worker) and answers with an access token signed by fhirnet's own key, which
:class:`fhirnet.access.Authenticator` accepts. No Flask here: the view only reads the form and
writes the answer (:mod:`fhirnet.web.token_views`).

Bulk clients read: every scope that asks for create, update or delete (SMART v2 ``c``/``u``/``d``,
v1 ``write`` and ``*``) is refused with ``invalid_scope`` rather than silently narrowed, as the
bulk data test suite expects.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

import jwt

from fhirnet.access import (
    ISSUED_ALGORITHM,
    ISSUED_TYPE,
    ISSUER,
    KEY_ID,
    LEEWAY_SECONDS,
    MAX_TOKEN_LENGTH,
    Grant,
    grants_of,
    parse_scope,
)
from fhirnet.errors import FhirnetError

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The algorithms a client may sign its assertion with: the two SMART requires servers to
#: support (client-confidential-asymmetric.html, "Signature Algorithms").
ASSERTION_ALGORITHMS = ("RS384", "ES384")
#: Longest an assertion may be valid for: SMART says ``exp`` no more than five minutes ahead.
MAX_ASSERTION_SECONDS = 300
#: Longest ``jti`` remembered (a longer one is refused: it would only fill the cache).
MAX_JTI_LENGTH = 256
#: What a bulk client may do: read and search, nothing else.
READ_INTERACTIONS = frozenset("rs")
#: The form parameters of a token request, all required.
REQUIRED_PARAMETERS = ("grant_type", "client_assertion_type", "client_assertion", "scope")

_KEY_TYPES = {"RS": "RSA", "ES": "EC"}
#: RFC 6749 §5.2: ``invalid_client`` is answered with 401, every other error with 400.
_STATUS = {"invalid_client": 401}


class TokenRequestError(FhirnetError):
    """A refused token request, as RFC 6749 §5.2 names it: ``invalid_request``,
    ``invalid_client``, ``invalid_grant``, ``unsupported_grant_type`` or ``invalid_scope``."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")

    @property
    def status(self) -> int:
        """The HTTP status of the answer."""
        return _STATUS.get(self.error, 400)

    def body(self) -> dict[str, str]:
        """The JSON error answer (RFC 6749 §5.2)."""
        return {"error": self.error, "error_description": self.description}


class TokenServiceUnavailableError(FhirnetError):
    """The token endpoint cannot check assertions for replay now (its store is unavailable):
    answered 503, never with a token whose assertion could have been replayed."""


class KeysUnavailableError(FhirnetError):
    """A client's JWKS URL could not be fetched: its assertion cannot be verified."""


class ClientKeys(Protocol):
    """The public keys of one registered client (inline JWKS or JWKS URL)."""

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The client's key with this ``kid``; ``None`` when it has none.

        :raises KeysUnavailableError: the keys could not be fetched.
        """
        ...


class UsedAssertions(Protocol):
    """The assertion ids (``jti``) already used, shared by every worker process."""

    def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); ``False`` when it was recorded
        already and has not expired: the assertion is replayed.

        :raises TokenServiceUnavailableError: the record cannot be read or written.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class BulkClient:
    """A client registered in ``FHIRNET_BULK_CLIENTS_FILE``."""

    client_id: str
    keys: ClientKeys
    #: The registered JWKS URL: the only ``jku`` its assertions may name (``None``: inline JWKS,
    #: so no ``jku`` at all).
    jwks_url: str | None
    #: The scopes it is registered for: the most it is ever granted.
    scopes: tuple[str, ...]
    #: Registered as pseudonymized: its tokens carry this study, and open only bulk export.
    pseudonymized_study: str | None = None

    @property
    def grants(self) -> tuple[Grant, ...]:
        """What the registered scopes allow."""
        return grants_of(self.scopes)


def is_read_only(grant: Grant) -> bool:
    """Whether ``grant`` allows reading and searching only."""
    return grant.interactions <= READ_INTERACTIONS


class TokenIssuer:
    """Answers token requests of the registered bulk clients.

    :param clients: by ``client_id``.
    :param key: fhirnet's token key (:mod:`fhirnet.token_key`).
    :param used: where used assertion ids are kept (shared by the worker processes).
    :param resource_types: the FHIR resource types a scope may name; any other is refused.
    :param lifetime: seconds an issued token is valid (``FHIRNET_TOKEN_LIFETIME``).
    """

    def __init__(
        self,
        *,
        clients: Mapping[str, BulkClient],
        key: bytes,
        used: UsedAssertions,
        resource_types: Collection[str],
        lifetime: int,
    ) -> None:
        self._clients = dict(clients)
        self._key = key
        self._used = used
        self._resource_types = frozenset(resource_types)
        self._lifetime = lifetime

    def issue(
        self,
        form: Mapping[str, Sequence[str]],
        *,
        token_url: str,
        now: int,
        new_id: Callable[[], str],
    ) -> dict[str, Any]:
        """The token answer to a token request.

        :param form: the request's form parameters, each with all its values.
        :param token_url: the URL the request was posted to: the assertion's ``aud``.
        :param now: the current time, epoch seconds.
        :param new_id: makes the issued token's ``jti``.
        :returns: ``access_token``, ``token_type``, ``expires_in``, ``scope`` (RFC 6749 §5.1).
        :raises TokenRequestError: the request is refused (its ``error`` says why, as OAuth
            names it).
        :raises TokenServiceUnavailableError: replays cannot be checked now.
        """
        parameters = _parameters(form)
        client, claims = self._authenticate(parameters, token_url=token_url, now=now)
        scopes = self._granted(client, parameters["scope"])
        jti = f"{client.client_id}|{claims['jti']}"
        if not self._used.first_use(jti, expires_at=int(claims["exp"]) + LEEWAY_SECONDS, now=now):
            raise TokenRequestError("invalid_client", "The client assertion was used before (jti).")
        scope = " ".join(scopes)
        token_claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": client.client_id,
            "client_id": client.client_id,
            "scope": scope,
            "iat": now,
            "exp": now + self._lifetime,
            "jti": new_id(),
        }
        if client.pseudonymized_study is not None:
            token_claims["pseudonymized_study"] = client.pseudonymized_study
        token = jwt.encode(
            token_claims,
            self._key,
            algorithm=ISSUED_ALGORITHM,
            headers={"kid": KEY_ID, "typ": ISSUED_TYPE},
        )
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self._lifetime,
            "scope": scope,
        }

    def _authenticate(
        self, parameters: Mapping[str, str], *, token_url: str, now: int
    ) -> tuple[BulkClient, dict[str, Any]]:
        """The client the assertion authenticates, and the assertion's claims (SMART
        client-confidential-asymmetric.html, "Signature Verification"): any failure is
        ``invalid_client``."""
        if parameters["client_assertion_type"] != ASSERTION_TYPE:
            raise _invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}.")
        assertion = parameters["client_assertion"]
        if len(assertion) > MAX_TOKEN_LENGTH or assertion.count(".") != 2:
            raise _invalid_client("The client assertion is not a signed JWT.")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _invalid_client("The client assertion is not a signed JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in ASSERTION_ALGORITHMS:
            raise _invalid_client(
                f"The client assertion must be signed with {' or '.join(ASSERTION_ALGORITHMS)}."
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid_client("The client assertion names no key (kid header).")
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or unverified.get("sub") != client_id:
            raise _invalid_client("The client assertion's iss and sub must both be the client_id.")
        client = self._clients.get(client_id)
        if client is None:
            raise _invalid_client("Unknown client_id.")
        if parameters.get("client_id", client_id) != client_id:
            raise _invalid_client("client_id differs from the client assertion's iss.")
        jku = header.get("jku")
        if jku is not None and (client.jwks_url is None or jku != client.jwks_url):
            raise _invalid_client("The jku header is not the JWKS URL registered for the client.")
        try:
            key = client.keys.key(kid)
        except KeysUnavailableError:
            raise _invalid_client("The client's registered JWKS URL cannot be fetched.") from None
        if key is None:
            raise _invalid_client("The client has no registered key with this kid.")
        if key.key_type != _KEY_TYPES[algorithm[:2]] or key._jwk_data.get("alg", algorithm) != (
            algorithm
        ):
            raise _invalid_client("The client assertion's algorithm does not match its key.")
        claims = _verified(assertion, key, algorithm=algorithm, token_url=token_url)
        _check_times(claims, now=now)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise _invalid_client(
                f"The client assertion's jti must be 1 to {MAX_JTI_LENGTH} chars."
            )
        return client, claims

    def _granted(self, client: BulkClient, scope: str) -> list[str]:
        """The scopes granted for ``scope``: each requested one narrowed to what the client is
        registered for (SMART lets a server grant less than asked)."""
        requested = scope.split()
        if not requested:
            raise TokenRequestError("invalid_scope", "The scope is empty.")
        granted: dict[str, None] = {}
        for name in requested:
            grant = self._requested_grant(name)
            narrowed = [
                found for found in (_narrow(grant, held) for held in client.grants) if found
            ]
            if grant in narrowed:
                granted.setdefault(name)  # as asked: keep the client's own spelling (v1 or v2)
                continue
            for found in narrowed:
                granted.setdefault(_scope_name(found))
        if not granted:
            raise TokenRequestError(
                "invalid_scope",
                "The client is not registered for any of the requested scopes (registered: "
                + " ".join(client.scopes)
                + ").",
            )
        return list(granted)

    def _requested_grant(self, name: str) -> Grant:
        grant = parse_scope(name)
        if grant is None:
            raise TokenRequestError(
                "invalid_scope",
                f"{name} is not a SMART system scope fhirnet grants "
                "(system/<Type|*>.<rs|read>, v2 or v1).",
            )
        if grant.resource_type != "*" and grant.resource_type not in self._resource_types:
            raise TokenRequestError(
                "invalid_scope", f"{name} names an unknown resource type {grant.resource_type}."
            )
        if not is_read_only(grant):
            raise TokenRequestError(
                "invalid_scope",
                f"{name} asks to create, update or delete: bulk clients may only read "
                "(system/<Type|*>.rs or .read).",
            )
        return grant


def _parameters(form: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The form's parameters, each once (RFC 6749 §3.2: none may be repeated)."""
    repeated = sorted(name for name, values in form.items() if len(values) > 1)
    if repeated:
        raise TokenRequestError("invalid_request", f"Repeated parameters: {', '.join(repeated)}.")
    parameters = {name: values[0] for name, values in form.items() if values}
    missing = [name for name in REQUIRED_PARAMETERS if name not in parameters]
    if missing:
        raise TokenRequestError("invalid_request", f"Missing parameters: {', '.join(missing)}.")
    if parameters["grant_type"] != GRANT_TYPE:
        raise TokenRequestError(
            "unsupported_grant_type", f"fhirnet grants {GRANT_TYPE} only (SMART Backend Services)."
        )
    return parameters


def _verified(assertion: str, key: jwt.PyJWK, *, algorithm: str, token_url: str) -> dict[str, Any]:
    """The assertion's claims once its signature, ``aud`` and ``iss`` check out; the times are
    checked against the caller's clock (:func:`_check_times`)."""
    try:
        return jwt.decode(
            assertion,
            key.key,
            algorithms=[algorithm],
            audience=token_url,
            options={
                "require": ["iss", "sub", "aud", "exp", "jti"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise _invalid_client("The client assertion's signature is invalid.") from None
    except jwt.InvalidAudienceError:
        raise _invalid_client(f"The client assertion's aud must be {token_url}.") from None
    except jwt.MissingRequiredClaimError as error:
        raise _invalid_client(f"The client assertion lacks the {error.claim} claim.") from None
    except jwt.PyJWTError:
        raise _invalid_client("The client assertion is not a valid JWT.") from None
    except (TypeError, ValueError):
        # What the crypto backend raises for a key it cannot use with the algorithm.
        raise _invalid_client("The client assertion's algorithm does not match its key.") from None


def _check_times(claims: Mapping[str, Any], *, now: int) -> None:
    expires = claims.get("exp")
    if not _is_number(expires):
        raise _invalid_client("The client assertion's exp is not a number.")
    if expires <= now - LEEWAY_SECONDS:
        raise _invalid_client("The client assertion has expired.")
    if expires > now + MAX_ASSERTION_SECONDS + LEEWAY_SECONDS:
        raise _invalid_client("The client assertion's exp is more than five minutes ahead.")
    not_before = claims.get("nbf")
    if not_before is not None and (not _is_number(not_before) or not_before > now + LEEWAY_SECONDS):
        raise _invalid_client("The client assertion is not valid yet (nbf).")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _narrow(requested: Grant, held: Grant) -> Grant | None:
    """What of ``requested`` the registered ``held`` allows (``None``: nothing)."""
    if held.resource_type == "*":
        resource_type = requested.resource_type
    elif requested.resource_type in ("*", held.resource_type):
        resource_type = held.resource_type
    else:
        return None
    interactions = requested.interactions & held.interactions
    if not interactions:
        return None
    return Grant(resource_type=resource_type, interactions=interactions)


def _scope_name(grant: Grant) -> str:
    """A grant as a SMART v2 scope (interactions in ``cruds`` order)."""
    letters = "".join(letter for letter in "cruds" if letter in grant.interactions)
    return f"system/{grant.resource_type}.{letters}"


def _invalid_client(description: str) -> TokenRequestError:
    return TokenRequestError("invalid_client", description)
