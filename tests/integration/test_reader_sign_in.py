"""A reader signs in as the /crf page does, against a running ``fhirnet serve`` and a real
authorization server the test starts (``python -m tests.oauth_server``), and submits a form:
discovery names the server, the authorization-code flow with PKCE S256 (GET authorize, the login
form posted, the redirect with the code, the code exchanged with the verifier) gives an access
token with ``user/`` scopes and ``fhirUser``, fhirnet verifies it through the server's JWKS and
stores the RECIST example form authored by that reader; another author is 422, no token 401; an
EHR launch puts the patient in the token response.

This needs no FHIR server (the embedded store), so it is not marked ``integration``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from fhirnet.config import DEFAULT_READER_SCOPE
from tests.oauth_server import fhirnet_environment, site_config
from tests.servers import free_port, serving
from tests.submissions import RECIST, form

CLIENT_ID = "crf"
READER = "reader-nuclear-radiology"  # the author of the RECIST example forms
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Site:
    """fhirnet and the readers' authorization server, both running."""

    fhirnet: str
    authorization_server: str

    @property
    def fhir_base(self) -> str:
        return f"{self.fhirnet}/fhir"

    @property
    def redirect_uri(self) -> str:
        return f"{self.fhirnet}/crf"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("reader-sign-in")
    port, as_port = free_port(), free_port()
    fhirnet, issuer = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{as_port}"
    config = directory / "authorization-server.json"
    users = ((READER, "Dr Nuclear"), ("reader-2", "Dr Two"))
    config.write_text(
        json.dumps(site_config(fhirnet, client_id=CLIENT_ID, users=users, patients=[RECIST]))
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env = clean | fhirnet_environment(issuer, fhirnet, CLIENT_ID)
    env |= {"FHIRNET_PORT": str(port), "FHIRNET_DATA_DIR": str(directory / "data")}
    as_command = [sys.executable, "-m", "tests.oauth_server", "--port", str(as_port)]
    as_command += ["--config", str(config)]
    serve = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
    with (
        serving(as_command, port=as_port, env=clean, log_path=directory / "as.log"),
        serving(serve, port=port, env=env, log_path=directory / "serve.log", startup_seconds=60),
    ):
        yield Site(fhirnet=fhirnet, authorization_server=issuer)


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge, as the page makes them (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_in(site: Site, *, launch: str | None = None, user: str = READER) -> dict[str, Any]:
    """The page's flow, scripted: discovery, authorize, the login form, the code for tokens."""
    config = requests.get(f"{site.fhirnet}/crf/config.json", timeout=30).json()
    discovered = requests.get(
        f"{site.fhir_base}/.well-known/smart-configuration", timeout=30
    ).json()
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": config["client_id"],
        "redirect_uri": site.redirect_uri,
        "scope": config["scope"] + (" launch" if launch else ""),
        "state": state,
        "aud": config["fhir_base"],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | ({"launch": launch} if launch else {})
    page = requests.get(
        discovered["authorization_endpoint"], params=query, allow_redirects=False, timeout=30
    )
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert request_id is not None
    login = {"request": request_id[1], "user": user, "action": "sign-in"}
    if '<select name="patient">' in page.text:
        login["patient"] = RECIST
    action = urllib.parse.urljoin(page.url, "authorize")
    signed = requests.post(action, data=login, allow_redirects=False, timeout=30)
    assert signed.status_code == 302, signed.text
    location = urllib.parse.urlsplit(signed.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == site.redirect_uri
    redirected = dict(urllib.parse.parse_qsl(location.query))
    assert redirected["state"] == state
    answer = requests.post(
        discovered["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": redirected["code"],
            "redirect_uri": site.redirect_uri,
            "client_id": config["client_id"],
            "code_verifier": verifier,
        },
        headers={"Origin": site.fhirnet},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == site.fhirnet
    tokens: dict[str, Any] = answer.json()
    return tokens


def submit(site: Site, resource: dict[str, Any], token: str | None) -> requests.Response:
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"{site.fhir_base}/QuestionnaireResponse",
        data=json.dumps(resource),
        headers=headers,
        timeout=120,
    )


def test_the_page_s_settings_and_discovery_name_the_authorization_server(site: Site) -> None:
    config = requests.get(f"{site.fhirnet}/crf/config.json", timeout=30).json()
    discovered = requests.get(f"{site.fhirnet}/.well-known/smart-configuration", timeout=30)

    assert config["auth"] == "smart"
    assert config["scope"] == DEFAULT_READER_SCOPE
    assert discovered.json()["authorization_endpoint"] == f"{site.authorization_server}/authorize"
    assert discovered.json()["token_endpoint"] == f"{site.authorization_server}/token"
    assert discovered.json()["code_challenge_methods_supported"] == ["S256"]


def test_a_signed_in_reader_s_form_is_stored_with_the_reader_as_author(site: Site) -> None:
    tokens = sign_in(site)
    baseline = form(RECIST, 1)
    del baseline["author"]  # the server, not the page, says who signed

    response = submit(site, baseline, tokens["access_token"])

    assert response.status_code == 201, response.text
    assert response.json()["author"] == {"reference": f"Practitioner/{READER}"}
    stored = requests.get(
        response.headers["Location"],
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": FHIR_JSON},
        timeout=30,
    )
    assert stored.status_code == 200
    assert stored.json()["author"] == {"reference": f"Practitioner/{READER}"}


def test_a_form_naming_another_author_is_refused_at_author(site: Site) -> None:
    tokens = sign_in(site, user="reader-2")

    response = submit(site, form(RECIST, 2), tokens["access_token"])  # by READER, not reader-2

    assert response.status_code == 422, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["QuestionnaireResponse.author"]
    assert "Practitioner/reader-2" in issue["diagnostics"]


def test_without_a_token_the_form_is_refused(site: Site) -> None:
    response = submit(site, form(RECIST, 1), None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_ehr_launch_gives_the_patient_in_the_token_response(site: Site) -> None:
    launched = requests.post(
        f"{site.authorization_server}/launch", json={"patient": RECIST}, timeout=30
    )

    tokens = sign_in(site, launch=launched.json()["launch"])

    assert tokens["patient"] == RECIST
    assert "launch/patient" in tokens["scope"].split()
    assert "id_token" in tokens


def test_the_code_cannot_be_redeemed_without_the_page_s_verifier(site: Site) -> None:
    """PKCE end to end: a code intercepted on its way to the page is worthless."""
    _, challenge = pkce()
    page = requests.get(
        f"{site.authorization_server}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": site.redirect_uri,
            "scope": "openid fhirUser user/QuestionnaireResponse.crs",
            "state": "s",
            "aud": site.fhir_base,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        timeout=30,
    )
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert request_id is not None
    signed = requests.post(
        f"{site.authorization_server}/authorize",
        data={"request": request_id[1], "user": READER},
        allow_redirects=False,
        timeout=30,
    )
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed.headers["Location"]).query))

    answer = requests.post(
        f"{site.authorization_server}/token",
        data={
            "grant_type": "authorization_code",
            "code": code["code"],
            "redirect_uri": site.redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": secrets.token_urlsafe(48),
        },
        timeout=30,
    )

    assert answer.json()["error"] == "invalid_grant"


def test_a_token_of_the_reader_reads_what_its_user_scopes_allow(site: Site) -> None:
    token = sign_in(site)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}

    reports = requests.get(f"{site.fhir_base}/DiagnosticReport", headers=headers, timeout=30)
    audits = requests.get(f"{site.fhir_base}/AuditEvent", headers=headers, timeout=30)

    assert reports.status_code == 200, reports.text
    assert audits.status_code == 403  # no user/AuditEvent scope was asked for
