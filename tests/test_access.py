"""The access tokens fhirnet issues to its bulk clients, as the Authenticator accepts them: with
fhirnet's own key only, and never mixed up with the JWTs of the configured issuer (no algorithm
confusion either way); the configurations with bulk clients (``auth_methods``); and the JWTs of
readers signed in at the /crf page: ``user/`` scopes and ``fhirUser``."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from fhirnet.access import (
    ISSUED_TYPE,
    ISSUER,
    KEY_ID,
    Authenticator,
    Grant,
    Permission,
    parse_scope,
)
from fhirnet.config import ConfigError, Settings, auth_methods
from fhirnet.errors import AuthenticationError
from fhirnet.token_key import load_token_key

EXTERNAL_ISSUER = "https://auth.example.org"
AUDIENCE = "https://fhirnet.example.org/fhir"
EXTERNAL_KID = "external-1"
API_KEY = "an-api-key-of-fhirnet-0123456789"

_EXTERNAL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    clients = tmp_path / "clients.json"
    clients.write_text("[]")
    jwks = tmp_path / "jwks.json"
    public = json.loads(RSAAlgorithm.to_jwk(_EXTERNAL_KEY.public_key()))
    jwks.write_text(json.dumps({"keys": [{**public, "kid": EXTERNAL_KID}]}))
    return Settings(
        data_dir=tmp_path / "data",
        bulk_clients_file=clients,
        api_keys=((API_KEY, ()),),
        jwks_file=jwks,
        jwt_issuer=EXTERNAL_ISSUER,
        jwt_audience=AUDIENCE,
    )


@pytest.fixture
def authenticator(settings: Settings) -> Authenticator:
    return Authenticator(settings)


@pytest.fixture
def own_key(settings: Settings, authenticator: Authenticator) -> bytes:
    # The Authenticator created it (data_dir/token-key); read it as the token endpoint does.
    return load_token_key(settings.data_dir / "token-key")


def issued(key: bytes, *, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token as fhirnet's token endpoint issues it, changed by ``claims``/``headers``."""
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": "registry",
        "client_id": "registry",
        "scope": "system/DiagnosticReport.rs",
        "iat": now,
        "exp": now + 300,
        "jti": "t-1",
    } | claims
    header = {"kid": KEY_ID, "typ": ISSUED_TYPE} | (headers or {})
    return jwt.encode(
        {name: value for name, value in payload.items() if value is not None},
        key,
        algorithm="HS256",
        headers={name: value for name, value in header.items() if value is not None},
    )


def test_a_token_fhirnet_issued_stands_for_its_bulk_client(
    authenticator: Authenticator, own_key: bytes
) -> None:
    principal = authenticator.authenticate(issued(own_key, pseudonymized_study="NET-01"))

    assert principal.subject == "client:registry"
    assert principal.client_id == "registry"
    assert principal.pseudonymized_study == "NET-01"
    assert principal.grants == (Grant("DiagnosticReport", frozenset("rs")),)
    assert principal.allows(Permission("DiagnosticReport", "s"))
    assert not principal.allows(Permission("Observation", "r"))


def test_an_identified_client_s_token_carries_no_study(
    authenticator: Authenticator, own_key: bytes
) -> None:
    assert authenticator.authenticate(issued(own_key)).pseudonymized_study is None


@pytest.mark.parametrize(
    "change",
    [
        "expired",
        "another secret key",
        "another issuer with fhirnet's kid",
        "fhirnet's issuer without its kid",
        "no typ",
        "HS384",
        "no jti",
        "study not a string",
    ],
)
def test_a_token_claiming_to_be_fhirnet_s_is_verified_with_fhirnet_s_key_only(
    authenticator: Authenticator, own_key: bytes, change: str
) -> None:
    now = int(time.time())
    token = {
        "expired": lambda: issued(own_key, iat=now - 900, exp=now - 600),
        "another secret key": lambda: issued(bytes(32)),
        "another issuer with fhirnet's kid": lambda: issued(own_key, iss=EXTERNAL_ISSUER),
        "fhirnet's issuer without its kid": lambda: issued(own_key, headers={"kid": None}),
        "no typ": lambda: issued(own_key, headers={"typ": None}),
        "HS384": lambda: _hs384(own_key, now),
        "no jti": lambda: issued(own_key, jti=None),
        "study not a string": lambda: issued(own_key, pseudonymized_study=7),
    }[change]()

    with pytest.raises(AuthenticationError):
        authenticator.authenticate(token)


def _hs384(key: bytes, now: int) -> str:
    """fhirnet's key, fhirnet's names, but not fhirnet's algorithm."""
    with warnings.catch_warnings():  # the key is short for HS384: that is not the point here
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(
            {"iss": ISSUER, "sub": "registry", "exp": now + 60, "iat": now, "jti": "x"},
            key,
            algorithm="HS384",
            headers={"kid": KEY_ID, "typ": ISSUED_TYPE},
        )


def test_an_external_jwt_is_never_verified_with_fhirnet_s_key(
    authenticator: Authenticator, own_key: bytes
) -> None:
    # Signed with fhirnet's own secret but naming the external issuer and its kid: the JWKS
    # path takes it, and HMAC is no algorithm of that path.
    now = int(time.time())
    forged = jwt.encode(
        {"iss": EXTERNAL_ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60},
        own_key,
        algorithm="HS256",
        headers={"kid": EXTERNAL_KID},
    )

    with pytest.raises(AuthenticationError, match="algorithm"):
        authenticator.authenticate(forged)


def test_a_token_claiming_fhirnet_s_issuer_is_never_verified_with_the_jwks(
    authenticator: Authenticator,
) -> None:
    # Validly signed by the external issuer's key, but claiming to be fhirnet's token: refused
    # (only fhirnet's key may verify it), not accepted through the JWKS.
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60, "scope": "system/*.rs"},
        _EXTERNAL_KEY,
        algorithm="RS256",
        headers={"kid": EXTERNAL_KID},
    )

    with pytest.raises(AuthenticationError):
        authenticator.authenticate(token)


def test_the_public_key_of_the_jwks_used_as_an_hmac_secret_is_refused(
    authenticator: Authenticator,
) -> None:
    # The classic confusion: HS256 keyed with the issuer's public key (PEM), fhirnet's kid.
    pem = _EXTERNAL_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "x", "iat": now, "exp": now + 60, "jti": "c"}
    headers = {"kid": KEY_ID, "typ": ISSUED_TYPE}
    token = _hs256_with_raw_secret(payload, pem, headers)

    with pytest.raises(AuthenticationError):
        authenticator.authenticate(token)


def _hs256_with_raw_secret(payload: dict[str, Any], secret: bytes, headers: dict[str, Any]) -> str:
    """HS256 by hand: PyJWT refuses to use a PEM public key as an HMAC secret."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT", **headers}).encode())
    body = part(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


def test_api_keys_and_external_jwts_still_work_beside_issued_tokens(
    authenticator: Authenticator,
) -> None:
    now = int(time.time())
    external = jwt.encode(
        {
            "iss": EXTERNAL_ISSUER,
            "aud": AUDIENCE,
            "sub": "ehr",
            "exp": now + 60,
            "scope": "system/*.rs",
        },
        _EXTERNAL_KEY,
        algorithm="RS256",
        headers={"kid": EXTERNAL_KID},
    )

    assert authenticator.authenticate(API_KEY).subject == "key:1"
    assert authenticator.authenticate(external).subject == f"jwt:{EXTERNAL_ISSUER}|ehr"
    assert authenticator.authenticate(external).client_id is None


# --- configurations with bulk clients ---


def test_bulk_clients_alone_are_a_configured_authentication(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bulk_clients_file=tmp_path / "clients.json")

    assert auth_methods(settings) == {"issued"}


def test_bulk_clients_add_the_issued_tokens_to_the_other_methods(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        bulk_clients_file=tmp_path / "clients.json",
        api_keys=((API_KEY, ()),),
        auth="keys",
    )

    assert auth_methods(settings) == {"keys", "issued"}


def test_open_access_with_bulk_clients_does_not_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bulk_clients_file=tmp_path / "clients.json", auth="none")

    with pytest.raises(ConfigError, match="FHIRNET_BULK_CLIENTS_FILE"):
        auth_methods(settings)


def test_without_bulk_clients_fhirnet_reads_no_token_key(tmp_path: Path) -> None:
    Authenticator(Settings(data_dir=tmp_path, api_keys=((API_KEY, ()),)))

    assert not (tmp_path / "token-key").exists()


def test_without_bulk_clients_a_token_claiming_to_be_fhirnet_s_is_refused(
    settings: Settings, own_key: bytes
) -> None:
    # Even were the JWKS to hold a key with fhirnet's kid: such a token never goes there.
    without = Authenticator(dataclasses.replace(settings, bulk_clients_file=None))

    with pytest.raises(AuthenticationError, match="issues no tokens"):
        without.authenticate(issued(own_key))


# --- readers signed in at the /crf page (SMART App Launch): user/ scopes and fhirUser ---


def external(**claims: Any) -> str:
    """A JWT of the configured issuer, as the readers' authorization server signs it."""
    now = int(time.time())
    payload = {"iss": EXTERNAL_ISSUER, "aud": AUDIENCE, "sub": "reader-1", "exp": now + 60}
    return jwt.encode(
        {name: value for name, value in (payload | claims).items() if value is not None},
        _EXTERNAL_KEY,
        algorithm="RS256",
        headers={"kid": EXTERNAL_KID},
    )


@pytest.mark.parametrize(
    ("scope", "granted", "refused"),
    [
        ("user/QuestionnaireResponse.crs", ("QuestionnaireResponse", "c"), ("Observation", "r")),
        ("user/Observation.rs", ("Observation", "s"), ("Observation", "c")),
        ("user/Observation.read", ("Observation", "r"), ("Observation", "c")),  # SMART v1
        ("user/*.write", ("QuestionnaireResponse", "c"), ("Observation", "r")),
        ("user/*.cruds", ("DiagnosticReport", "d"), ("DiagnosticReport", "x")),
    ],
)
def test_a_user_scope_in_a_jwt_grants_what_the_same_system_scope_grants(
    authenticator: Authenticator,
    scope: str,
    granted: tuple[str, str],
    refused: tuple[str, str],
) -> None:
    principal = authenticator.authenticate(external(scope=scope))

    assert principal.allows(Permission(*granted))
    assert not principal.allows(Permission(*refused))


@pytest.mark.parametrize(
    "scope",
    [
        "patient/QuestionnaireResponse.crs",  # a patient compartment fhirnet cannot enforce
        "patient/*.read",
        "user/QuestionnaireResponse.rc",  # v2 letters out of order
        "user/Observation.rs?category=laboratory",  # a filter fhirnet cannot enforce
        "openid fhirUser launch launch/patient",
    ],
)
def test_patient_scopes_and_malformed_user_scopes_grant_nothing(
    authenticator: Authenticator, scope: str
) -> None:
    assert authenticator.authenticate(external(scope=scope)).grants == ()


def test_user_scopes_are_refused_in_api_keys_and_bulk_clients_which_are_systems() -> None:
    assert parse_scope("user/Observation.rs") is None
    assert parse_scope("user/Observation.rs", user=True) == Grant("Observation", frozenset("rs"))


def test_a_tokens_user_scope_does_not_count_in_a_token_fhirnet_issued(
    authenticator: Authenticator, own_key: bytes
) -> None:
    principal = authenticator.authenticate(issued(own_key, scope="user/*.cruds"))

    assert principal.grants == ()


def test_an_api_key_listing_a_user_scope_stops_the_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="grant nothing"):
        Authenticator(dataclasses.replace(settings, api_keys=((API_KEY, ("user/*.rs",)),)))


@pytest.mark.parametrize(
    "fhir_user",
    ["Practitioner/reader-1", "https://ehr.example.org/fhir/Practitioner/reader-1", None],
)
def test_the_principal_keeps_the_token_s_fhir_user(
    authenticator: Authenticator, fhir_user: str | None
) -> None:
    principal = authenticator.authenticate(external(fhirUser=fhir_user))

    assert principal.fhir_user == fhir_user
    assert principal.subject == f"jwt:{EXTERNAL_ISSUER}|reader-1"


@pytest.mark.parametrize("fhir_user", [7, "", "reader-1", "Practitioner/", "Practitioner/a b"])
def test_a_token_whose_fhir_user_is_not_a_reference_is_refused(
    authenticator: Authenticator, fhir_user: object
) -> None:
    with pytest.raises(AuthenticationError, match="fhirUser"):
        authenticator.authenticate(external(fhirUser=fhir_user))
