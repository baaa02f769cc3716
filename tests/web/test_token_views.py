"""``POST /auth/token`` over HTTP (Flask's test client): the token endpoint of the bulk clients
answers as RFC 6749 and SMART Backend Services say, and the tokens it issues open the FHIR API
with their scopes; a pseudonymized client's token opens bulk export only."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.config import ConfigError, Settings
from fhirnet.web.app import create_app
from tests.bulk_clients import ClientKey, assertion, ec_key, rsa_key, token_form, write_clients

TOKEN_URL = "http://localhost/auth/token"  # noqa: S105 - the test client's host, not a secret
RSA_KEY, EC_KEY = rsa_key(), ec_key()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    clients = write_clients(
        tmp_path / "clients.json",
        [
            {"client_id": "registry", "jwks": RSA_KEY.jwks(), "scope": "system/*.rs"},
            {"client_id": "reports", "jwks": EC_KEY.jwks(), "scope": "system/DiagnosticReport.rs"},
            {
                "client_id": "cro",
                "jwks": EC_KEY.jwks(),
                "scope": "system/*.rs",
                "pseudonymized_study": "NET-01",
            },
        ],
    )
    return Settings(data_dir=tmp_path / "data", bulk_clients_file=clients)


def request_token(
    client: FlaskClient,
    key: ClientKey = RSA_KEY,
    client_id: str = "registry",
    scope: str = "system/*.rs",
    **changes: Any,
) -> Any:
    signed = assertion(key, **({"client_id": client_id, "aud": TOKEN_URL} | changes))
    return client.post("/auth/token", data=token_form(signed, scope))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_registered_client_gets_a_token_that_opens_what_its_scopes_allow(
    client: FlaskClient,
) -> None:
    response = request_token(client, EC_KEY, "reports", "system/DiagnosticReport.read")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    answer = response.get_json()
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert (answer["token_type"], answer["expires_in"]) == ("bearer", 300)
    headers = bearer(answer["access_token"])

    reports = client.get("/fhir/DiagnosticReport", headers=headers)
    assert reports.status_code == 200
    assert reports.get_json(force=True)["type"] == "searchset"
    assert client.get("/fhir/Observation", headers=headers).status_code == 403
    assert client.post("/fhir/QuestionnaireResponse", json={}, headers=headers).status_code == 403


def test_a_client_with_read_on_every_type_reads_every_type(client: FlaskClient) -> None:
    headers = bearer(request_token(client).get_json()["access_token"])

    for resource_type in ("DiagnosticReport", "Observation", "ResearchSubject"):
        assert client.get(f"/fhir/{resource_type}", headers=headers).status_code == 200


def test_the_token_of_a_pseudonymized_client_opens_bulk_export_only(client: FlaskClient) -> None:
    answer = request_token(client, EC_KEY, "cro").get_json()
    headers = bearer(answer["access_token"])

    refused = client.get("/fhir/DiagnosticReport", headers=headers)
    assert refused.status_code == 403
    [issue] = refused.get_json(force=True)["issue"]
    assert issue["code"] == "forbidden"
    assert "pseudonymized" in issue["diagnostics"]
    assert "bulk export" in issue["diagnostics"]
    assert client.get("/api/v1/studies/NET-01", headers=headers).status_code == 403

    kickoff = client.get(
        "/fhir/$export",
        headers=headers | {"Accept": "application/fhir+json", "Prefer": "respond-async"},
    )
    # Let through to the export, which decides for itself (without a pseudonymization
    # regime for the study it refuses too, but with its own reason).
    assert kickoff.status_code != 401
    assert "opens bulk export only" not in kickoff.get_data(as_text=True)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", '{"grant_type": "client_credentials"}'),
        ("text/plain", "grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", "--x--"),
    ],
)
def test_only_form_encoded_requests_are_taken(
    client: FlaskClient, content_type: str, body: str
) -> None:
    response = client.post("/auth/token", data=body, content_type=content_type)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_get_is_not_a_token_request(client: FlaskClient) -> None:
    response = client.get("/auth/token")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("changes", "scope", "status", "error"),
    [
        ({"aud": "https://elsewhere.example.org/auth/token"}, "system/*.rs", 401, "invalid_client"),
        ({"iss": "test-iss-value"}, "system/*.rs", 401, "invalid_client"),
        ({"client_id": "test-bad-client-id"}, "system/*.rs", 401, "invalid_client"),
        ({"headers": {"jku": "test-bad-jku"}}, "system/*.rs", 401, "invalid_client"),
        ({"expires_in": 3600}, "system/*.rs", 401, "invalid_client"),
        ({}, "", 400, "invalid_scope"),
        ({}, "system/*.write", 400, "invalid_scope"),
        ({}, "system/Observation.cud", 400, "invalid_scope"),
        ({}, "system/UnknownResource.read", 400, "invalid_scope"),
    ],
    ids=["aud", "iss", "unknown client", "jku", "exp", "empty scope", "write", "cud", "type"],
)
def test_refusals_are_oauth_errors_with_their_status(
    client: FlaskClient, changes: dict[str, Any], scope: str, status: int, error: str
) -> None:
    client_id = changes.pop("client_id", "registry")
    response = request_token(client, RSA_KEY, client_id, scope, **changes)

    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == error
    assert body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in response.headers  # no bearer challenge: an OAuth client


def test_a_replayed_assertion_is_refused(client: FlaskClient) -> None:
    signed = assertion(RSA_KEY, client_id="registry", aud=TOKEN_URL)

    assert client.post("/auth/token", data=token_form(signed)).status_code == 200
    replayed = client.post("/auth/token", data=token_form(signed))

    assert replayed.status_code == 401
    assert replayed.get_json()["error"] == "invalid_client"


def test_with_a_public_base_url_the_assertion_must_be_for_that_url(settings: Settings) -> None:
    public = dataclasses.replace(settings, public_base_url="https://fhirnet.example.org")
    client = create_app(public).test_client()
    local = assertion(RSA_KEY, client_id="registry", aud=TOKEN_URL)
    published = assertion(
        RSA_KEY, client_id="registry", aud="https://fhirnet.example.org/auth/token"
    )

    assert client.post("/auth/token", data=token_form(local)).status_code == 401
    assert client.post("/auth/token", data=token_form(published)).status_code == 200


def test_without_bulk_clients_fhirnet_issues_no_tokens(tmp_path: Path) -> None:
    client = create_app(Settings(data_dir=tmp_path, auth="none")).test_client()
    signed = assertion(RSA_KEY, client_id="registry", aud=TOKEN_URL)

    response = client.post("/auth/token", data=token_form(signed))

    assert response.status_code == 404
    assert "no bulk client" in response.get_json()["error_description"]


def test_an_unusable_clients_file_stops_the_start(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    clients.write_text('[{"client_id": "x", "scope": "system/*.rs"}]')

    with pytest.raises(ConfigError, match="FHIRNET_BULK_CLIENTS_FILE"):
        create_app(Settings(data_dir=tmp_path, bulk_clients_file=clients))


def test_when_replays_cannot_be_checked_no_token_is_issued(app: Flask, settings: Settings) -> None:
    # The used-assertion store cannot be opened: a directory where its file should be.
    (settings.data_dir / "used-assertions.sqlite3").mkdir(parents=True)

    response = request_token(app.test_client())

    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"]


def test_an_oversized_token_request_is_refused_unread(client: FlaskClient) -> None:
    response = client.post(
        "/auth/token",
        data="scope=" + "x" * 40_000,
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 413
    assert response.get_json()["error"] == "invalid_request"


# -- several hosts on one PostgreSQL (FHIRNET_DATABASE_URL) -----------------------------------


def two_hosts(settings: Settings, database_url: str, tmp_path: Path) -> list[Flask]:
    """Two fhirnet apps as two hosts: a data directory each, one database, one key file."""
    key_file = tmp_path / "shared" / "token-key"
    key_file.parent.mkdir()
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(0o600)
    return [
        create_app(
            dataclasses.replace(
                settings,
                data_dir=tmp_path / f"host-{n}",
                database_url=database_url,
                token_key_file=key_file,
            )
        )
        for n in range(2)
    ]


def test_an_assertion_replayed_to_another_host_at_once_is_accepted_once(
    settings: Settings, fresh_database_url: str, tmp_path: Path
) -> None:
    hosts = two_hosts(settings, fresh_database_url, tmp_path)
    signed = assertion(RSA_KEY, client_id="registry", aud=TOKEN_URL)
    form = token_form(signed, "system/*.rs")
    start = threading.Barrier(8)

    def replay(number: int) -> tuple[int, Any]:
        client = hosts[number % 2].test_client()
        start.wait()
        answer = client.post("/auth/token", data=form)
        return answer.status_code, answer.get_json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(replay, range(8)))

    assert sorted(status for status, _ in answers) == [200] + [401] * 7
    refusals = [body for status, body in answers if status == 401]
    assert {body["error"] for body in refusals} == {"invalid_client"}


def test_a_token_issued_by_one_host_opens_the_other(
    settings: Settings, fresh_database_url: str, tmp_path: Path
) -> None:
    one, other = two_hosts(settings, fresh_database_url, tmp_path)
    token = request_token(one.test_client()).get_json()["access_token"]

    answer = other.test_client().get("/fhir/DiagnosticReport", headers=bearer(token))

    assert answer.status_code == 200
    assert answer.get_json()["type"] == "searchset"


def test_a_host_on_postgresql_without_a_shared_token_key_does_not_start(
    settings: Settings,
) -> None:
    several = dataclasses.replace(
        settings, database_url="postgresql://fhirnet:s3cret@127.0.0.1:1/fhirnet"
    )

    with pytest.raises(ConfigError, match="FHIRNET_TOKEN_KEY_FILE") as raised:
        create_app(several)

    assert "s3cret" not in str(raised.value)
    assert not (settings.data_dir / "token-key").exists()


def test_an_unreachable_database_answers_503_and_issues_no_token(
    settings: Settings, tmp_path: Path
) -> None:
    key_file = tmp_path / "token-key"
    key_file.write_text("cd" * 32 + "\n")
    app = create_app(
        dataclasses.replace(
            settings,
            database_url="postgresql://fhirnet:s3cret@127.0.0.1:1/fhirnet",
            token_key_file=key_file,
        )
    )

    answer = request_token(app.test_client())

    assert answer.status_code == 503
    assert answer.get_json()["error"] == "temporarily_unavailable"
    assert "s3cret" not in answer.get_data(as_text=True)
