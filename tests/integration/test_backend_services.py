"""SMART Backend Services against a running ``fhirnet serve`` (two worker processes), configured
with bulk clients only: a client registered by inline JWKS signing with a real RS384 key, one
registered by JWKS URL (served by a small local HTTP server) signing with a real ES384 key. Each
gets a token at ``POST /auth/token`` and reads ``/fhir/DiagnosticReport`` with it (403 where its
scopes do not reach); every failure the bulk data test suite checks is refused with its OAuth
error and status; an assertion is accepted once, whichever worker the replays reach.

This needs no FHIR server (the embedded store), so it is not marked ``integration``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.bulk_clients import ClientKey, assertion, ec_key, rsa_key, token_form, write_clients
from tests.jwks_server import JwksServer
from tests.servers import free_port, serving

WORKERS, THREADS = 2, 4
RSA_KEY, EC_KEY = rsa_key("registry-rs384"), ec_key("cro-es384")
#: Signs with the registry's kid, but is not its key.
IMPOSTOR = ClientKey(rsa_key().private, "RS384", RSA_KEY.kid)


@dataclass(frozen=True)
class Served:
    base: str
    jwks_url: str

    @property
    def token_url(self) -> str:
        return f"{self.base}/auth/token"

    def post_token(self, data: Any, **kwargs: Any) -> requests.Response:
        # A new connection each time (no session): gunicorn hands it to either worker.
        return requests.post(self.token_url, data=data, timeout=30, **kwargs)

    def token(self, key: ClientKey, client_id: str, scope: str) -> str:
        signed = assertion(key, client_id=client_id, aud=self.token_url)
        response = self.post_token(token_form(signed, scope))
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def get(self, path: str, token: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        return requests.get(self.base + path, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """The ES384 client's JWK Set, served over HTTP on the loopback interface."""
    with JwksServer(EC_KEY.jwks()["keys"]) as server:
        yield server.url


@pytest.fixture(scope="module")
def served(jwks_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``fhirnet serve`` with bulk clients as its only authentication."""
    directory = tmp_path_factory.mktemp("backend-services")
    clients = write_clients(
        directory / "clients.json",
        [
            {
                "client_id": "registry",
                "jwks": RSA_KEY.jwks(),
                "scope": "system/DiagnosticReport.rs",
            },
            {"client_id": "cro", "jwks_url": jwks_url, "scope": "system/*.rs"},
        ],
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_DATA_DIR": str(directory / "data"),
        "FHIRNET_BULK_CLIENTS_FILE": str(clients),
        "FHIRNET_WORKERS": str(WORKERS),
        "FHIRNET_THREADS": str(THREADS),
    }
    command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
    with serving(command, port=port, env=env, log_path=directory / "serve.log", startup_seconds=60):
        yield Served(base=f"http://127.0.0.1:{port}", jwks_url=jwks_url)


def test_discovery_names_the_token_endpoint_the_clients_post_to(served: Served) -> None:
    document = requests.get(f"{served.base}/.well-known/smart-configuration", timeout=30).json()

    assert document["token_endpoint"] == served.token_url
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]


@pytest.mark.parametrize(
    ("client_id", "scope", "observations"),
    [
        ("registry", "system/DiagnosticReport.rs", 403),  # inline JWKS, RS384
        ("cro", "system/*.read", 200),  # JWKS URL, ES384, v1 scope
        ("cro", "system/*.rs", 200),  # v2 scope
    ],
)
def test_a_client_s_token_reads_what_its_scopes_allow(
    served: Served, client_id: str, scope: str, observations: int
) -> None:
    key = RSA_KEY if client_id == "registry" else EC_KEY
    token = served.token(key, client_id, scope)

    reports = served.get("/fhir/DiagnosticReport", token)
    assert reports.status_code == 200, reports.text
    assert reports.json()["type"] == "searchset"
    assert served.get("/fhir/Observation", token).status_code == observations


def test_without_a_token_fhir_reads_are_refused(served: Served) -> None:
    response = requests.get(f"{served.base}/fhir/DiagnosticReport", timeout=30)

    assert response.status_code == 401


@pytest.mark.parametrize(
    "case",
    [
        "bad signature",
        "wrong aud",
        "unknown client",
        "iss is not sub",
        "bad jku",
        "jku of another client",
        "exp too far ahead",
        "expired",
        "empty scope",
        "unknown resource scope",
        "unknown action scope",
        "write scope",
        "v2 mutation scope",
        "no grant_type",
        "wrong grant_type",
        "wrong client_assertion_type",
        "not form-encoded",
    ],
)
def test_every_failure_is_refused_with_its_oauth_error(served: Served, case: str) -> None:
    aud = served.token_url
    good = assertion(RSA_KEY, client_id="registry", aud=aud)
    scope = "system/DiagnosticReport.rs"
    forms: dict[str, tuple[dict[str, Any], int, str]] = {
        "bad signature": (
            token_form(assertion(IMPOSTOR, client_id="registry", aud=aud), scope),
            401,
            "invalid_client",
        ),
        "wrong aud": (
            token_form(assertion(RSA_KEY, client_id="registry", aud=f"{aud}/x"), scope),
            401,
            "invalid_client",
        ),
        "unknown client": (
            token_form(assertion(RSA_KEY, client_id="nobody", aud=aud), scope),
            401,
            "invalid_client",
        ),
        "iss is not sub": (
            token_form(assertion(RSA_KEY, client_id="registry", aud=aud, sub="cro"), scope),
            401,
            "invalid_client",
        ),
        "bad jku": (
            token_form(
                assertion(
                    EC_KEY, client_id="cro", aud=aud, headers={"jku": "https://evil.example"}
                ),
                scope,
            ),
            401,
            "invalid_client",
        ),
        "jku of another client": (
            token_form(
                assertion(RSA_KEY, client_id="registry", aud=aud, headers={"jku": served.jwks_url}),
                scope,
            ),
            401,
            "invalid_client",
        ),
        "exp too far ahead": (
            token_form(assertion(RSA_KEY, client_id="registry", aud=aud, expires_in=900), scope),
            401,
            "invalid_client",
        ),
        "expired": (
            token_form(assertion(RSA_KEY, client_id="registry", aud=aud, expires_in=-300), scope),
            401,
            "invalid_client",
        ),
        "empty scope": (token_form(good, ""), 400, "invalid_scope"),
        "unknown resource scope": (
            token_form(good, "system/UnknownResource.read"),
            400,
            "invalid_scope",
        ),
        "unknown action scope": (
            token_form(good, "system/DiagnosticReport.unknownAction"),
            400,
            "invalid_scope",
        ),
        "write scope": (token_form(good, "system/*.write"), 400, "invalid_scope"),
        "v2 mutation scope": (
            token_form(good, "system/DiagnosticReport.cud"),
            400,
            "invalid_scope",
        ),
        "no grant_type": (token_form(good, scope, grant_type=None), 400, "invalid_request"),
        "wrong grant_type": (
            token_form(good, scope, grant_type="authorization_code"),
            400,
            "unsupported_grant_type",
        ),
        "wrong client_assertion_type": (
            token_form(good, scope, client_assertion_type="urn:x"),
            401,
            "invalid_client",
        ),
    }
    if case == "not form-encoded":
        response = served.post_token(None, json=token_form(good, scope))
        status, error = 400, "invalid_request"
    else:
        form, status, error = forms[case]
        response = served.post_token(form)

    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def test_a_replayed_assertion_is_refused_by_every_worker(served: Served) -> None:
    signed = assertion(RSA_KEY, client_id="registry", aud=served.token_url)
    form = token_form(signed, "system/DiagnosticReport.rs")

    # The same assertion sent at once on many connections, over both worker processes: one
    # token, every other answer invalid_client.
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: served.post_token(form), range(32)))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [401] * 31, [answer.text for answer in answers]
    refused = [answer.json() for answer in answers if answer.status_code == 401]
    assert {body["error"] for body in refused} == {"invalid_client"}
    # And later, on fresh connections, still refused.
    for _ in range(2 * WORKERS):
        assert served.post_token(form).status_code == 401


def test_two_hosts_on_one_database_accept_an_assertion_once_and_each_others_tokens(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """Two ``fhirnet serve`` processes as two hosts behind one address: a data directory each,
    one PostgreSQL database (``FHIRNET_DATABASE_URL``), one token key file. The same assertion
    sent to both at once gets one token; a token issued by one host opens the other."""
    public = "https://fhirnet.example.org"  # the proxy's URL: every assertion's aud names it
    clients = write_clients(
        tmp_path / "clients.json",
        [{"client_id": "registry", "jwks": RSA_KEY.jwks(), "scope": "system/DiagnosticReport.rs"}],
    )
    key_file = tmp_path / "token-key"
    key_file.write_text("5a" * 32 + "\n")
    key_file.chmod(0o600)
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as hosts:
        for number, port in enumerate(ports):
            env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
            env |= {
                "FHIRNET_PORT": str(port),
                "FHIRNET_DATA_DIR": str(tmp_path / f"host-{number}"),
                "FHIRNET_DATABASE_URL": fresh_database_url,
                "FHIRNET_PUBLIC_BASE_URL": public,
                "FHIRNET_BULK_CLIENTS_FILE": str(clients),
                "FHIRNET_TOKEN_KEY_FILE": str(key_file),
                "FHIRNET_WORKERS": "2",
                "FHIRNET_THREADS": str(THREADS),
            }
            command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
            log = tmp_path / f"serve-{number}.log"
            hosts.enter_context(
                serving(command, port=port, env=env, log_path=log, startup_seconds=60)
            )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        form = token_form(
            assertion(RSA_KEY, client_id="registry", aud=f"{public}/auth/token"),
            "system/DiagnosticReport.rs",
        )

        def post(number: int) -> requests.Response:
            return requests.post(f"{urls[number % 2]}/auth/token", data=form, timeout=30)

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(post, range(32)))

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] + [401] * 31, [answer.text for answer in answers]
        [issued] = [answer for answer in answers if answer.status_code == 200]
        headers = {
            "Authorization": f"Bearer {issued.json()['access_token']}",
            "Accept": "application/fhir+json",
        }
        for url in urls:
            read = requests.get(f"{url}/fhir/DiagnosticReport", headers=headers, timeout=30)
            assert read.status_code == 200, read.text
