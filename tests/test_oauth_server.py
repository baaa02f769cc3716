"""The test authorization server (tests/oauth_server.py) behaves as a real one: the
authorization-code flow with PKCE S256 over HTTP, its refusals (PKCE mismatch, reused or
expired code, wrong redirect_uri, wrong aud, no PKCE), EHR launch with a patient, the standalone
patient picker, RS256 tokens verifiable with its JWKS, CORS for the /crf origin, and running as a
process."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tests.oauth_server import OAuthServer, s256
from tests.servers import free_port, serving

FHIR_BASE = "http://127.0.0.1:8000/fhir"
AUDIENCE = "https://fhirnet.example.org/fhir"
CLIENT = "crf"
REDIRECT = "http://127.0.0.1:8000/crf"
ORIGIN = "http://127.0.0.1:8000"
SCOPE = "openid fhirUser launch/patient user/QuestionnaireResponse.crs user/Observation.rs"
CONFIG: dict[str, Any] = {
    "fhir_base": FHIR_BASE,
    "audience": AUDIENCE,
    "clients": [{"client_id": CLIENT, "redirect_uris": [REDIRECT]}],
    "users": [
        {"id": "reader-nuclear-radiology", "name": "Dr Nuclear"},
        {"id": "reader-2", "name": "Dr Two"},
    ],
    "patients": ["small-bowel-net-prrt", "g3-nec-immunotherapy"],
    "cors_origins": [ORIGIN],
}


@pytest.fixture(scope="module")
def server() -> Iterator[OAuthServer]:
    with OAuthServer(CONFIG) as running:
        yield running


def authorize(server: OAuthServer, verifier: str, **overrides: str | None) -> requests.Response:
    """``GET /authorize`` as the /crf page sends the browser there."""
    query = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "state-42",
        "aud": FHIR_BASE,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    } | overrides
    sent = {name: value for name, value in query.items() if value is not None}
    return requests.get(
        f"{server.base_url}/authorize", params=sent, allow_redirects=False, timeout=10
    )


def sign_in(
    server: OAuthServer, page: requests.Response, user: str = "reader-2", **extra: str
) -> dict[str, str]:
    """Pick ``user`` on the login page and press "Sign in": the redirect's query."""
    assert page.status_code == 200, page.text
    match = re.search(r'name="request" value="([^"]+)"', page.text)
    assert match is not None
    assert "Sign in</button>" in page.text
    answer = requests.post(
        f"{server.base_url}/authorize",
        data={"request": match[1], "user": user, "action": "sign-in"} | extra,
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def token(server: OAuthServer, code: str, verifier: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT,
        "code_verifier": verifier,
    } | overrides
    return requests.post(f"{server.base_url}/token", data=form, timeout=10)


def code_for(server: OAuthServer, verifier: str, **overrides: str) -> str:
    redirected = sign_in(server, authorize(server, verifier, **overrides))
    assert redirected["state"] == "state-42"
    return redirected["code"]


def verified(server: OAuthServer, token_value: str, audience: str) -> dict[str, Any]:
    keys = requests.get(f"{server.base_url}/jwks", timeout=10).json()
    key = jwt.PyJWKSet.from_dict(keys).keys[0]
    claims: dict[str, Any] = jwt.decode(
        token_value, key.key, algorithms=["RS256"], audience=audience, issuer=server.base_url
    )
    return claims


def test_the_code_flow_with_pkce_gives_an_access_token_for_fhirnet_and_an_id_token(
    server: OAuthServer,
) -> None:
    verifier = secrets.token_urlsafe(48)

    answer = token(server, code_for(server, verifier), verifier)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"  # noqa: S105 - a token type, not a secret
    assert set(body["scope"].split()) == {
        "openid",
        "fhirUser",
        "user/QuestionnaireResponse.crs",
        "user/Observation.rs",
    }  # launch/patient without a patient is not granted
    access = verified(server, body["access_token"], AUDIENCE)
    assert access["sub"] == "reader-2"
    assert access["fhirUser"] == "Practitioner/reader-2"
    assert access["scope"] == "user/QuestionnaireResponse.crs user/Observation.rs"
    assert access["exp"] > access["iat"]
    identity = verified(server, body["id_token"], CLIENT)
    assert identity["fhirUser"] == "Practitioner/reader-2"
    assert "patient" not in body


def test_a_verifier_that_does_not_match_the_challenge_is_invalid_grant(
    server: OAuthServer,
) -> None:
    code = code_for(server, "the-verifier-the-page-kept-" + "x" * 20)

    answer = token(server, code, "another-verifier-" + "y" * 30)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_a_code_is_exchanged_once(server: OAuthServer) -> None:
    verifier = secrets.token_urlsafe(48)
    code = code_for(server, verifier)

    assert token(server, code, verifier).status_code == 200
    again = token(server, code, verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused() -> None:
    with OAuthServer(CONFIG | {"code_seconds": -1}) as short:
        verifier = secrets.token_urlsafe(48)
        answer = token(short, code_for(short, verifier), verifier)

    assert answer.json()["error"] == "invalid_grant"


def test_a_redirect_uri_other_than_the_client_s_is_refused_without_a_redirect(
    server: OAuthServer,
) -> None:
    page = authorize(server, "v" * 43, redirect_uri="https://attacker.example.org/crf")

    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "redirect_uri" in page.text


def test_the_token_request_s_redirect_uri_must_be_the_authorization_s(
    server: OAuthServer,
) -> None:
    verifier = secrets.token_urlsafe(48)

    answer = token(server, code_for(server, verifier), verifier, redirect_uri=REDIRECT + "/x")

    assert answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"aud": "https://another-fhir.example.org/fhir"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"launch": "no-such-launch"}, "invalid_request"),
    ],
)
def test_a_bad_request_of_a_known_client_is_answered_at_its_redirect_uri(
    server: OAuthServer, overrides: dict[str, str | None], error: str
) -> None:
    answer = authorize(server, "v" * 43, **overrides)

    assert answer.status_code == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["Location"]).query))
    assert query["error"] == error
    assert query["state"] == "state-42"


def test_an_ehr_launch_puts_the_patient_in_the_token_response(server: OAuthServer) -> None:
    launched = requests.post(
        f"{server.base_url}/launch", json={"patient": "small-bowel-net-prrt"}, timeout=10
    )
    assert launched.status_code == 201
    verifier = secrets.token_urlsafe(48)
    scope = "launch openid fhirUser launch/patient user/QuestionnaireResponse.crs"

    code = code_for(server, verifier, launch=launched.json()["launch"], scope=scope)
    body = token(server, code, verifier).json()

    assert body["patient"] == "small-bowel-net-prrt"
    assert "launch/patient" in body["scope"].split()


def test_a_standalone_launch_asks_for_the_patient_on_the_login_page(server: OAuthServer) -> None:
    verifier = secrets.token_urlsafe(48)
    page = authorize(server, verifier)
    assert '<select name="patient">' in page.text

    code = sign_in(server, page, patient="g3-nec-immunotherapy")["code"]

    assert token(server, code, verifier).json()["patient"] == "g3-nec-immunotherapy"


def test_cancel_on_the_login_page_is_access_denied_at_the_redirect_uri(
    server: OAuthServer,
) -> None:
    page = authorize(server, "v" * 43)
    match = re.search(r'name="request" value="([^"]+)"', page.text)
    assert match is not None

    answer = requests.post(
        f"{server.base_url}/authorize",
        data={"request": match[1], "action": "deny"},
        allow_redirects=False,
        timeout=10,
    )

    assert "error=access_denied" in answer.headers["Location"]


def test_token_and_discovery_allow_the_crf_origin_only(server: OAuthServer) -> None:
    preflight = requests.options(
        f"{server.base_url}/token",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    other = requests.get(
        f"{server.base_url}/.well-known/smart-configuration",
        headers={"Origin": "https://elsewhere.example.org"},
        timeout=10,
    )
    refused = requests.post(
        f"{server.base_url}/token", data={}, headers={"Origin": ORIGIN}, timeout=10
    )

    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Origin" not in other.headers
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.json()["error"] == "unsupported_grant_type"


def test_discovery_names_its_endpoints_and_smart_capabilities(server: OAuthServer) -> None:
    smart = requests.get(f"{server.base_url}/.well-known/smart-configuration", timeout=10).json()
    openid = requests.get(f"{server.base_url}/.well-known/openid-configuration", timeout=10)

    assert smart["authorization_endpoint"] == f"{server.base_url}/authorize"
    assert smart["token_endpoint"] == f"{server.base_url}/token"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-ehr", "launch-standalone", "client-public"} <= set(smart["capabilities"])
    assert openid.json()["jwks_uri"] == f"{server.base_url}/jwks"


def test_it_runs_as_a_process(tmp_path: Path) -> None:
    config = tmp_path / "as.json"
    config.write_text(json.dumps(CONFIG))
    port = free_port()
    command = [sys.executable, "-m", "tests.oauth_server", "--port", str(port)]
    command += ["--config", str(config)]

    with serving(command, port=port, env=dict(os.environ), log_path=tmp_path / "as.log"):
        smart = requests.get(f"http://127.0.0.1:{port}/.well-known/smart-configuration", timeout=10)

    assert smart.json()["issuer"] == f"http://127.0.0.1:{port}"


def test_the_id_token_carries_the_nonce_of_the_request(server: OAuthServer) -> None:
    verifier = secrets.token_urlsafe(48)

    body = token(server, code_for(server, verifier, nonce="nonce-7"), verifier).json()

    assert verified(server, body["id_token"], CLIENT)["nonce"] == "nonce-7"


def test_a_launch_with_a_patient_that_is_not_a_string_is_refused(server: OAuthServer) -> None:
    answer = requests.post(f"{server.base_url}/launch", json={"patient": 7}, timeout=10)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
