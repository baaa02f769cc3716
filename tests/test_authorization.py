"""The token endpoint's decisions (fhirnet.authorization), without HTTP: what SMART Backend
Services (client-confidential-asymmetric) and the bulk data test suite's "Token endpoint" tests
require of a token request, each refusal with the OAuth error RFC 6749 §5.2 names.

Real keys (RS384, ES384), real registrations read from a clients file, the real used-assertion
store in a temporary directory; time is a parameter (a fixed instant)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import jwt
import pytest

from fhirnet.access import ISSUER, KEY_ID, Grant, grants_of
from fhirnet.adapters.bulk_clients import load_bulk_clients
from fhirnet.adapters.replay_cache import ReplayCache
from fhirnet.adapters.store.resources import RESOURCE_TYPES
from fhirnet.authorization import TokenIssuer, TokenRequestError
from tests.bulk_clients import ClientKey, assertion, ec_key, rsa_key, token_form, write_clients

NOW = 1_800_000_000
TOKEN_URL = "https://fhirnet.example.org/auth/token"  # noqa: S105 - a URL
KEY = bytes(range(32))
LIFETIME = 300
JWKS_URL = "https://client.example.org/jwks.json"


RSA_KEY, EC_KEY = rsa_key(), ec_key()
#: Not registered: signs with the RSA client's kid, so only the signature can tell.
STRANGER = ClientKey(rsa_key().private, "RS384", RSA_KEY.kid)


@pytest.fixture
def rsa() -> ClientKey:
    return RSA_KEY


@pytest.fixture
def ec() -> ClientKey:
    return EC_KEY


@pytest.fixture
def stranger() -> ClientKey:
    return STRANGER


@pytest.fixture
def issuer(tmp_path: Path, rsa: ClientKey, ec: ClientKey) -> TokenIssuer:
    clients = write_clients(
        tmp_path / "clients.json",
        [
            {"client_id": "rsa-client", "jwks": rsa.jwks(), "scope": "system/*.rs"},
            {
                "client_id": "ec-client",
                "jwks": ec.jwks(),
                "scope": "system/*.read",
                "pseudonymized_study": "NET-01",
            },
            {
                "client_id": "reports-only",
                "jwks": rsa.jwks(),
                "scope": "system/DiagnosticReport.rs system/Observation.r",
            },
            # Its JWKS URL is never fetched here: only its jku is checked.
            {"client_id": "url-client", "jwks_url": JWKS_URL, "scope": "system/*.rs"},
        ],
    )
    return TokenIssuer(
        clients=load_bulk_clients(clients),
        key=KEY,
        used=ReplayCache(tmp_path / "used.sqlite3"),
        resource_types=RESOURCE_TYPES,
        lifetime=LIFETIME,
    )


_ids = itertools.count()


def issue(issuer: TokenIssuer, form: dict[str, Any], *, now: int = NOW) -> dict[str, Any]:
    return issuer.issue(
        {name: [value] for name, value in form.items()},
        token_url=TOKEN_URL,
        now=now,
        new_id=lambda: f"token-{next(_ids)}",
    )


def refused(issuer: TokenIssuer, form: dict[str, Any], *, now: int = NOW) -> TokenRequestError:
    with pytest.raises(TokenRequestError) as raised:
        issue(issuer, form, now=now)
    return raised.value


def rsa_assertion(rsa: ClientKey, **changes: Any) -> str:
    arguments: dict[str, Any] = {"client_id": "rsa-client", "aud": TOKEN_URL, "now": NOW}
    return assertion(rsa, **(arguments | changes))


# --- what is granted ---


@pytest.mark.parametrize("key_name", ["rsa", "ec"])
def test_a_registered_client_with_a_valid_assertion_gets_a_token_of_fhirnet(
    issuer: TokenIssuer, key_name: str, request: pytest.FixtureRequest
) -> None:
    key: ClientKey = request.getfixturevalue(key_name)
    client_id = f"{key_name}-client"
    signed = assertion(key, client_id=client_id, aud=TOKEN_URL, now=NOW)

    answer = issue(issuer, token_form(signed, "system/*.read"))

    assert answer["token_type"] == "bearer"  # noqa: S105 - RFC 6750's token type
    assert answer["expires_in"] == LIFETIME
    assert answer["scope"] == "system/*.read"
    header = jwt.get_unverified_header(answer["access_token"])
    assert (header["alg"], header["kid"], header["typ"]) == ("HS256", KEY_ID, "at+jwt")
    claims = jwt.decode(
        answer["access_token"],
        KEY,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == ISSUER
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == "system/*.read"
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + LIFETIME)
    assert claims["jti"].startswith("token-")
    if key_name == "ec":  # registered as pseudonymized: its token says for which study
        assert claims["pseudonymized_study"] == "NET-01"
    else:
        assert "pseudonymized_study" not in claims


@pytest.mark.parametrize(
    ("client_id", "requested", "granted"),
    [
        ("rsa-client", "system/*.read", "system/*.read"),  # v1
        ("rsa-client", "system/*.rs", "system/*.rs"),  # v2
        ("rsa-client", "system/Patient.read system/Observation.rs", None),  # mixed, as asked
        ("rsa-client", "system/DiagnosticReport.r", "system/DiagnosticReport.r"),
        # Less than asked: what the registration allows of it.
        ("reports-only", "system/*.rs", "system/DiagnosticReport.rs system/Observation.r"),
        (
            "reports-only",
            "system/*.read system/Patient.rs",
            "system/DiagnosticReport.rs system/Observation.r",
        ),
        ("ec-client", "system/Observation.rs", "system/Observation.rs"),
    ],
    ids=[
        "v1",
        "v2",
        "mixed v1 and v2",
        "one type",
        "narrowed",
        "narrowed, unregistered dropped",
        "wildcard registration",
    ],
)
def test_the_granted_scopes_are_the_requested_ones_within_the_registration(
    issuer: TokenIssuer,
    rsa: ClientKey,
    ec: ClientKey,
    client_id: str,
    requested: str,
    granted: str | None,
) -> None:
    key = ec if client_id == "ec-client" else rsa
    signed = assertion(key, client_id=client_id, aud=TOKEN_URL, now=NOW)

    answer = issue(issuer, token_form(signed, requested))

    assert answer["scope"] == (granted or requested)


@pytest.mark.parametrize(
    "scope",
    [
        "",
        "   ",
        "launch fhirUser",
        "patient/*.read",
        "user/Observation.rs",
        "system/Patient.unknownAction",
        "system/Patient.sr",  # v2 letters out of order
        "system/UnknownResource.read",
        "system/UnknownResource.rs",
        "system/Observation.rs?category=laboratory",  # a filter fhirnet cannot enforce
        # Mutations: bulk clients read.
        "system/*.write",
        "system/*.*",
        "system/Patient.write",
        "system/Patient.*",
        "system/*.cruds",
        "system/Observation.c",
        "system/Observation.rsu",
        "system/Observation.d",
        "system/*.rs system/Observation.u",  # one bad scope spoils the request
    ],
)
def test_scopes_that_are_empty_unknown_or_mutating_are_refused_with_invalid_scope(
    issuer: TokenIssuer, rsa: ClientKey, scope: str
) -> None:
    error = refused(issuer, token_form(rsa_assertion(rsa), scope))

    assert (error.error, error.status) == ("invalid_scope", 400)
    assert error.description


def test_a_scope_outside_the_registration_is_refused_with_invalid_scope(
    issuer: TokenIssuer, rsa: ClientKey
) -> None:
    signed = assertion(rsa, client_id="reports-only", aud=TOKEN_URL, now=NOW)

    error = refused(issuer, token_form(signed, "system/Patient.rs"))

    assert error.error == "invalid_scope"
    assert "system/DiagnosticReport.rs" in error.description  # says what it may ask for


# --- the request ---


@pytest.mark.parametrize(
    "missing", ["grant_type", "client_assertion_type", "client_assertion", "scope"]
)
def test_each_parameter_must_be_present(issuer: TokenIssuer, rsa: ClientKey, missing: str) -> None:
    left_out: dict[str, Any] = {missing: None}
    error = refused(issuer, token_form(rsa_assertion(rsa), **left_out))

    assert (error.error, error.status) == ("invalid_request", 400)
    assert missing in error.description


@pytest.mark.parametrize(
    ("parameter", "error_code", "status"),
    [
        ("grant_type", "unsupported_grant_type", 400),
        ("client_assertion_type", "invalid_client", 401),
        ("client_assertion", "invalid_client", 401),
        ("scope", "invalid_scope", 400),
    ],
)
def test_each_parameter_must_be_valid(
    issuer: TokenIssuer, rsa: ClientKey, parameter: str, error_code: str, status: int
) -> None:
    error = refused(issuer, token_form(rsa_assertion(rsa), **{parameter: "invalid test value"}))

    assert (error.error, error.status) == (error_code, status)


def test_a_repeated_parameter_is_an_invalid_request(issuer: TokenIssuer, rsa: ClientKey) -> None:
    form = {name: [value] for name, value in token_form(rsa_assertion(rsa)).items()}
    form["scope"] = ["system/*.rs", "system/*.read"]

    with pytest.raises(TokenRequestError) as raised:
        issuer.issue(form, token_url=TOKEN_URL, now=NOW, new_id=lambda: "x")

    assert raised.value.error == "invalid_request"


# --- the assertion: every failure is invalid_client (401) ---


def _invalid_assertions(rsa: ClientKey, stranger: ClientKey) -> dict[str, Any]:
    return {
        "bad signature": assertion(stranger, client_id="rsa-client", aud=TOKEN_URL, now=NOW),
        "wrong aud": rsa_assertion(rsa, aud="test-bad-aud-value"),
        "aud of another fhirnet": rsa_assertion(rsa, aud="https://other.example.org/auth/token"),
        "iss is not the client": rsa_assertion(rsa, iss="test-iss-value"),
        "sub is not the client": rsa_assertion(rsa, sub="someone-else"),
        "unknown client": assertion(rsa, client_id="test-bad-client-id", aud=TOKEN_URL, now=NOW),
        "unknown kid": rsa_assertion(rsa, headers={"kid": "no-such-key"}),
        "no kid": rsa_assertion(rsa, headers={"kid": None}),
        "RS256": rsa_assertion(rsa, algorithm="RS256"),
        "PS384": rsa_assertion(rsa, algorithm="PS384"),
        "alg none": jwt.encode(
            {
                "iss": "rsa-client",
                "sub": "rsa-client",
                "aud": TOKEN_URL,
                "exp": NOW + 60,
                "jti": "n",
            },
            key="",
            algorithm="none",
            headers={"kid": rsa.kid},
        ),
        "HS384 with the public key": jwt.encode(
            {
                "iss": "rsa-client",
                "sub": "rsa-client",
                "aud": TOKEN_URL,
                "exp": NOW + 60,
                "jti": "h",
            },
            key=b"x" * 48,
            algorithm="HS384",
            headers={"kid": rsa.kid},
        ),
        "bad jku": rsa_assertion(rsa, headers={"jku": "test-bad-jku"}),
        "jku for an inline JWKS": rsa_assertion(rsa, headers={"jku": JWKS_URL}),
        "exp more than five minutes ahead": rsa_assertion(rsa, expires_in=600),
        "expired": rsa_assertion(rsa, expires_in=-120),
        "no exp": rsa_assertion(rsa, exp=None),
        "no jti": rsa_assertion(rsa, jti=None),
        "empty jti": rsa_assertion(rsa, jti=""),
        "not yet valid": rsa_assertion(rsa, nbf=NOW + 120),
        "not a JWT": "not-a-jwt",
        "two parts": "abc.def",
    }


INVALID_ASSERTIONS = list(_invalid_assertions(RSA_KEY, STRANGER))


@pytest.mark.parametrize("case", INVALID_ASSERTIONS)
def test_an_assertion_that_does_not_authenticate_the_client_is_invalid_client(
    issuer: TokenIssuer, rsa: ClientKey, stranger: ClientKey, case: str
) -> None:
    signed = _invalid_assertions(rsa, stranger)[case]

    error = refused(issuer, token_form(signed))

    assert (error.error, error.status) == ("invalid_client", 401)
    assert error.body() == {"error": "invalid_client", "error_description": error.description}


def test_the_registered_jku_is_accepted_and_any_other_refused(
    issuer: TokenIssuer, rsa: ClientKey
) -> None:
    # The url client's keys are not fetched before the jku is checked: a bad jku never
    # makes fhirnet fetch anything.
    signed = assertion(
        rsa,
        client_id="url-client",
        aud=TOKEN_URL,
        now=NOW,
        headers={"jku": "https://evil.example.org/jwks"},
    )

    assert refused(issuer, token_form(signed)).error == "invalid_client"


def test_an_assertion_within_the_clock_leeway_is_accepted(
    issuer: TokenIssuer, rsa: ClientKey
) -> None:
    # A client whose clock is a few seconds ahead still means "five minutes".
    answer = issue(issuer, token_form(rsa_assertion(rsa, expires_in=310)))

    assert answer["access_token"]


def test_a_client_id_parameter_must_name_the_assertion_s_client(
    issuer: TokenIssuer, rsa: ClientKey
) -> None:
    error = refused(issuer, token_form(rsa_assertion(rsa), client_id="ec-client"))

    assert error.error == "invalid_client"
    assert issue(issuer, token_form(rsa_assertion(rsa), client_id="rsa-client"))["access_token"]


def test_an_assertion_is_accepted_once_until_it_expires(
    issuer: TokenIssuer, rsa: ClientKey
) -> None:
    signed = rsa_assertion(rsa, expires_in=60)

    assert issue(issuer, token_form(signed))["access_token"]
    error = refused(issuer, token_form(signed))

    assert (error.error, error.status) == ("invalid_client", 401)
    assert "jti" in error.description


def test_the_same_jti_of_two_clients_are_two_assertions(
    issuer: TokenIssuer, rsa: ClientKey, ec: ClientKey
) -> None:
    first = rsa_assertion(rsa, jti="shared")
    second = assertion(ec, client_id="ec-client", aud=TOKEN_URL, now=NOW, jti="shared")

    assert issue(issuer, token_form(first))["access_token"]
    assert issue(issuer, token_form(second, "system/*.read"))["access_token"]


def test_a_refused_scope_does_not_use_up_the_assertion(issuer: TokenIssuer, rsa: ClientKey) -> None:
    signed = rsa_assertion(rsa)

    assert refused(issuer, token_form(signed, "system/*.write")).error == "invalid_scope"
    assert issue(issuer, token_form(signed))["access_token"]


def test_a_v1_scope_asked_for_is_granted_as_asked_and_means_read_and_search(
    issuer: TokenIssuer, rsa: ClientKey
) -> None:
    signed = assertion(rsa, client_id="reports-only", aud=TOKEN_URL, now=NOW)
    claims = jwt.decode(
        issue(issuer, token_form(signed, "system/DiagnosticReport.read"))["access_token"],
        KEY,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_iat": False},
    )

    assert claims["scope"] == "system/DiagnosticReport.read"
    assert grants_of(claims["scope"].split()) == (Grant("DiagnosticReport", frozenset("rs")),)
