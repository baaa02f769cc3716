"""The registered bulk clients (fhirnet.adapters.bulk_clients): a file fhirnet cannot use stops
the start with an error naming the file and the client; keys come inline or from a JWKS URL
(fetched from a real local HTTP server here, cached, fetched again for a new kid)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from fhirnet.adapters.bulk_clients import UrlKeys, load_bulk_clients
from fhirnet.authorization import KeysUnavailableError
from fhirnet.config import ConfigError
from tests.bulk_clients import ClientKey, ec_key, rsa_key, write_clients
from tests.jwks_server import JwksServer
from tests.servers import free_port

RSA_KEY, EC_KEY = rsa_key(), ec_key()


def entry(**changes: Any) -> dict[str, Any]:
    return {"client_id": "registry", "jwks": RSA_KEY.jwks(), "scope": "system/*.rs"} | changes


def test_clients_are_read_by_client_id_with_their_keys_scopes_and_study(tmp_path: Path) -> None:
    path = write_clients(
        tmp_path / "clients.json",
        [
            entry(),
            {
                "client_id": "trial-cro",
                "jwks_url": "https://cro.example.org/jwks.json",
                "scope": "system/DiagnosticReport.rs system/Observation.read",
                "pseudonymized_study": "NET-01",
            },
        ],
    )

    clients = load_bulk_clients(path)

    assert list(clients) == ["registry", "trial-cro"]
    registry, cro = clients["registry"], clients["trial-cro"]
    assert (registry.scopes, registry.jwks_url, registry.pseudonymized_study) == (
        ("system/*.rs",),
        None,
        None,
    )
    found = registry.keys.key(RSA_KEY.kid)
    assert found is not None
    assert found.key_type == "RSA"
    assert registry.keys.key("no-such-kid") is None
    assert cro.jwks_url == "https://cro.example.org/jwks.json"
    assert cro.pseudonymized_study == "NET-01"
    assert cro.scopes == ("system/DiagnosticReport.rs", "system/Observation.read")


def _private_jwk(key: ClientKey) -> dict[str, Any]:
    assert isinstance(key.private, rsa.RSAPrivateKey)
    return {**json.loads(RSAAlgorithm.to_jwk(key.private)), "kid": key.kid}


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ({"client_id": "x"}, "JSON list"),
        (["not an object"], "client 1 is not a JSON object"),
        ([entry(client_id="")], "client 1 needs a client_id"),
        ([entry(client_id=7)], "client 1 needs a client_id"),
        ([entry(), entry()], "client 2 repeats the client_id 'registry'"),
        ([entry(jwks_uri="https://x")], "'registry'.*unknown fields \\['jwks_uri'\\]"),
        ([entry(jwks_url="https://x.example.org/jwks")], "exactly one of jwks"),
        ([{"client_id": "registry", "scope": "system/*.rs"}], "exactly one of jwks"),
        ([entry(jwks=None, jwks_url="ftp://x.example.org")], "http\\(s\\) URL"),
        ([entry(jwks={"kty": "RSA"})], "JWK Set"),
        ([entry(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]})], "symmetric"),
        ([entry(jwks={"keys": [_private_jwk(RSA_KEY)]})], "private key"),
        ([entry(jwks={"keys": [{**RSA_KEY.public_jwk(), "kid": None}]})], "no kid"),
        ([entry(jwks={"keys": [{"kty": "RSA", "kid": "k", "n": "!", "e": "AQAB"}]})], "jwks"),
        ([entry(scope="")], "needs a scope"),
        ([entry(scope="patient/*.read")], "patient/\\*.read is not a SMART system scope"),
        ([entry(scope="system/*.rs system/Observation.write")], "not read-only"),
        ([entry(scope="system/*.cruds")], "not read-only"),
        ([entry(pseudonymized_study=1)], "pseudonymized_study must be a study id or null"),
        ([entry(pseudonymized_study="")], "pseudonymized_study"),
    ],
    ids=[
        "not a list",
        "not an object",
        "empty client_id",
        "client_id not a string",
        "repeated client_id",
        "unknown field",
        "jwks and jwks_url",
        "neither",
        "jwks_url not http",
        "jwks not a set",
        "symmetric key",
        "private key",
        "key without kid",
        "unusable key",
        "empty scope",
        "patient scope",
        "write scope",
        "all interactions",
        "study not a string",
        "empty study",
    ],
)
def test_an_unusable_registration_stops_the_start_naming_the_file_and_client(
    tmp_path: Path, clients: Any, message: str
) -> None:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(clients))

    with pytest.raises(ConfigError, match=message) as raised:
        load_bulk_clients(path)

    assert f"FHIRNET_BULK_CLIENTS_FILE {path}" in str(raised.value)


@pytest.mark.parametrize("content", ["{", ""], ids=["broken JSON", "empty"])
def test_a_file_that_is_not_json_stops_the_start(tmp_path: Path, content: str) -> None:
    path = tmp_path / "clients.json"
    path.write_text(content)

    with pytest.raises(ConfigError, match=str(path)):
        load_bulk_clients(path)


def test_a_missing_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unusable"):
        load_bulk_clients(tmp_path / "missing.json")


# --- keys at a JWKS URL ---


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def url_client(tmp_path: Path, url: str) -> Any:
    path = write_clients(
        tmp_path / "clients.json",
        [{"client_id": "cro", "jwks_url": url, "scope": "system/*.rs"}],
    )
    return load_bulk_clients(path)["cro"]


def test_keys_at_a_url_are_fetched_on_first_use_and_cached(
    tmp_path: Path, jwks_server: JwksServer
) -> None:
    jwks_server.keys = [EC_KEY.public_jwk()]
    client = url_client(tmp_path, jwks_server.url)
    assert jwks_server.fetches == 0  # nothing fetched at start

    found = client.keys.key(EC_KEY.kid)
    assert found is not None
    assert found.key_type == "EC"
    assert client.keys.key(EC_KEY.kid) is not None
    assert jwks_server.fetches == 1  # cached


def test_an_unknown_kid_fetches_again_but_not_within_the_cooldown(
    jwks_server: JwksServer,
) -> None:
    jwks_server.keys = [EC_KEY.public_jwk()]
    rotating = UrlKeys(jwks_server.url, cooldown=0)
    patient = UrlKeys(jwks_server.url)
    assert rotating.key(EC_KEY.kid) is not None
    assert patient.key(EC_KEY.kid) is not None
    fetches = jwks_server.fetches

    jwks_server.keys.append(ClientKey(RSA_KEY.private, "RS384", "rotated").public_jwk())

    assert rotating.key("rotated") is not None  # the client rotated its keys: fetched again
    assert jwks_server.fetches == fetches + 1
    assert patient.key("rotated") is None  # just fetched: made-up kids fetch nothing
    assert patient.key("made-up") is None
    assert jwks_server.fetches == fetches + 1


def test_a_jwks_url_that_cannot_be_fetched_leaves_the_keys_unavailable(tmp_path: Path) -> None:
    client = url_client(tmp_path, f"http://127.0.0.1:{free_port()}/jwks.json")

    with pytest.raises(KeysUnavailableError):
        client.keys.key("any")
