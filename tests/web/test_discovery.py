"""What a SMART Backend Services client discovers (``/.well-known/smart-configuration`` and the
CapabilityStatement's ``rest.security``) with and without bulk clients: fhirnet's own token
endpoint, absolute, with the assertion algorithms and scopes it takes, only when it issues
tokens; and, when readers sign in at /crf, the SMART App Launch flow of their authorization
server, whose token endpoint is then the document's one."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from fhirnet.web.discovery import OAUTH_URIS, rest_security, with_token_endpoint

URLS = ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
LOCAL_TOKEN_URL = "http://localhost/auth/token"  # noqa: S105 - a URL, not a secret
PUBLIC_TOKEN_URL = "https://fhirnet.example.org/auth/token"  # noqa: S105 - a URL


@pytest.fixture
def bulk_settings(tmp_path: Path) -> Settings:
    clients = tmp_path / "clients.json"
    clients.write_text("[]")
    return Settings(data_dir=tmp_path / "data", bulk_clients_file=clients)


def document(client: FlaskClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize("url", URLS)
def test_with_bulk_clients_the_document_names_fhirnet_s_token_endpoint(
    bulk_settings: Settings, url: str
) -> None:
    found = document(create_app(bulk_settings).test_client(), url)

    assert found["token_endpoint"] == LOCAL_TOKEN_URL
    assert found["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert found["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert found["grant_types_supported"] == ["client_credentials"]
    assert {"system/*.read", "system/*.rs"} <= set(found["scopes_supported"])
    assert "client-confidential-asymmetric" in found["capabilities"]


def test_the_token_endpoint_is_on_the_public_base_url_when_set(bulk_settings: Settings) -> None:
    public = dataclasses.replace(bulk_settings, public_base_url="https://fhirnet.example.org")

    found = document(create_app(public).test_client(), URLS[0])

    assert found["token_endpoint"] == PUBLIC_TOKEN_URL


@pytest.mark.parametrize("url", URLS)
def test_without_bulk_clients_no_token_endpoint_is_published(client: FlaskClient, url: str) -> None:
    found = document(client, url)

    assert "token_endpoint" not in found
    assert "system/*.read" not in found["scopes_supported"]


def test_rest_security_names_the_token_url_when_fhirnet_issues_tokens(
    bulk_settings: Settings,
) -> None:
    public = dataclasses.replace(bulk_settings, public_base_url="https://fhirnet.example.org")

    security = rest_security(public)

    assert security["extension"] == [
        {
            "url": OAUTH_URIS,
            "extension": [{"url": "token", "valueUri": "https://fhirnet.example.org/auth/token"}],
        }
    ]
    assert "/auth/token" in security["description"]
    assert OAUTH_URIS == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def test_rest_security_says_fhirnet_issues_no_tokens_without_bulk_clients(
    settings: Settings,
) -> None:
    security = rest_security(settings)

    assert "extension" not in security
    assert "issues no tokens" in security["description"]


@pytest.mark.parametrize(
    ("public_base_url", "expected"),
    [(None, LOCAL_TOKEN_URL), ("https://fhirnet.example.org", PUBLIC_TOKEN_URL)],
)
def test_the_metadata_of_a_fhirnet_that_issues_tokens_names_its_token_url(
    bulk_settings: Settings, public_base_url: str | None, expected: str
) -> None:
    configured = dataclasses.replace(bulk_settings, public_base_url=public_base_url)
    client = create_app(configured).test_client()

    statement = client.get("/fhir/metadata").get_json(force=True)

    [extension] = statement["rest"][0]["security"]["extension"]
    assert extension["url"] == OAUTH_URIS
    assert extension["extension"] == [{"url": "token", "valueUri": expected}]
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    ]


@pytest.mark.parametrize(
    ("public_base_url", "expected"),
    [(None, LOCAL_TOKEN_URL), ("https://fhirnet.example.org", PUBLIC_TOKEN_URL)],
)
def test_the_statement_can_name_the_token_url_of_the_request(
    bulk_settings: Settings, public_base_url: str | None, expected: str
) -> None:
    app = create_app(dataclasses.replace(bulk_settings, public_base_url=public_base_url))

    with app.test_request_context("/fhir/metadata"):
        statement = with_token_endpoint(app.extensions["fhirnet"].capability)

    [extension] = statement["rest"][0]["security"]["extension"]  # replaced, never doubled
    assert extension == {"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": expected}]}


def test_without_bulk_clients_the_statement_names_no_token_url(app: Flask) -> None:
    with app.test_request_context("/fhir/metadata"):
        statement = with_token_endpoint(app.extensions["fhirnet"].capability)

    assert "extension" not in statement["rest"][0]["security"]


# --- readers signing in at /crf: SMART App Launch ---

AUTHORIZE_URL = "https://login.hospital.example.org/oauth2/authorize"
READER_TOKEN_URL = "https://login.hospital.example.org/oauth2/token"  # noqa: S105 - a URL


def with_readers(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        authorize_url=AUTHORIZE_URL,
        reader_token_url=READER_TOKEN_URL,
        reader_client_id="crf",
    )


@pytest.mark.parametrize("url", URLS)
def test_with_readers_sign_in_the_document_publishes_the_app_launch_flow(
    settings: Settings, url: str
) -> None:
    found = document(create_app(with_readers(settings)).test_client(), url)

    assert found["authorization_endpoint"] == AUTHORIZE_URL
    assert found["token_endpoint"] == READER_TOKEN_URL
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert found["response_types_supported"] == ["code"]
    assert "authorization_code" in found["grant_types_supported"]
    assert {
        "launch-ehr",
        "launch-standalone",
        "client-public",
        "context-ehr-patient",
        "context-standalone-patient",
        "sso-openid-connect",
        "permission-v2",
        "permission-v1",
    } <= set(found["capabilities"])
    assert {
        "openid",
        "fhirUser",
        "launch",
        "launch/patient",
        "user/QuestionnaireResponse.c",
        "user/DiagnosticReport.rs",
    } <= set(found["scopes_supported"])
    assert not any(scope.startswith("patient/") for scope in found["scopes_supported"])


def test_with_readers_and_bulk_clients_the_token_endpoint_is_the_readers_server_s(
    bulk_settings: Settings,
) -> None:
    """The rule: the document's one token_endpoint redeems the codes of its
    authorization_endpoint; fhirnet's own stays in the CapabilityStatement's oauth-uris."""
    client = create_app(with_readers(bulk_settings)).test_client()

    found = document(client, URLS[0])
    statement = client.get("/fhir/metadata").get_json(force=True)

    assert found["authorization_endpoint"] == AUTHORIZE_URL
    assert found["token_endpoint"] == READER_TOKEN_URL
    assert {"authorization_code", "client_credentials"} == set(found["grant_types_supported"])
    assert "client-confidential-asymmetric" in found["capabilities"]
    assert {"system/*.rs", "system/*.read"} <= set(found["scopes_supported"])
    [extension] = statement["rest"][0]["security"]["extension"]
    assert extension == {
        "url": OAUTH_URIS,
        "extension": [{"url": "token", "valueUri": LOCAL_TOKEN_URL}],
    }
    assert AUTHORIZE_URL in statement["rest"][0]["security"]["description"]


@pytest.mark.parametrize(
    ("authorize_url", "reader_token_url"),
    [(AUTHORIZE_URL, None), (None, READER_TOKEN_URL), (None, None)],
)
def test_without_both_reader_endpoints_no_app_launch_is_published(
    settings: Settings, authorize_url: str | None, reader_token_url: str | None
) -> None:
    configured = dataclasses.replace(
        settings, authorize_url=authorize_url, reader_token_url=reader_token_url
    )
    client = create_app(configured).test_client()

    found = document(client, URLS[0])

    assert "authorization_endpoint" not in found
    assert "token_endpoint" not in found
    assert "code_challenge_methods_supported" not in found
    assert "launch-ehr" not in found["capabilities"]


def test_without_readers_bulk_clients_keep_fhirnet_s_token_endpoint(
    bulk_settings: Settings,
) -> None:
    found = document(create_app(bulk_settings).test_client(), URLS[0])

    assert found["token_endpoint"] == LOCAL_TOKEN_URL
    assert "authorization_endpoint" not in found
    assert found["grant_types_supported"] == ["client_credentials"]
