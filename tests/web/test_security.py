"""The smaller web findings of the security review, each replayed as the attack it was
(docs/security.md lists them): a JWT whose algorithm does not fit its key, a separator-only
search value, bodies in UTF-16/UTF-32 or with a BOM, an identity a JWT could borrow, a forged
``Host``, missing ``no-store``/``nosniff``, and a 403 log line with the raw path."""

from __future__ import annotations

import codecs
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhirnet.access import Authenticator
from fhirnet.config import Settings
from fhirnet.fhir import audit
from fhirnet.web.app import create_app
from fhirnet.web.logs import JsonFormatter
from tests.submissions import NOW, RECIST, SUBMIT, form

ISSUER = "https://auth.example.org"
AUDIENCE = "https://fhirnet.example.org/fhir"
FULL_KEY = "security-full-key-0123456789"
#: May search DiagnosticReports only: refused everything else.
NARROW_KEY = "security-narrow-key-0123456789"
PUBLIC_URL = "https://fhirnet.example.org"


@pytest.fixture(scope="module")
def signing() -> dict[str, Any]:
    """An RSA and an EC P-256 key, and a JWKS naming neither's algorithm (so only the key type
    tells which algorithms fit)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            {**json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa"},
            {**json.loads(ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec"},
        ]
    }
    return {"rsa": rsa_key, "ec": ec_key, "jwks": jwks}


@pytest.fixture
def settings(tmp_path: Path, signing: dict[str, Any]) -> Settings:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(signing["jwks"]))
    return Settings(
        data_dir=tmp_path / "data",
        api_keys=((FULL_KEY, ()), (NARROW_KEY, ("system/DiagnosticReport.s",))),
        jwks_file=jwks_file,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_algorithms=("RS256", "PS256", "ES256"),
    )


@pytest.fixture
def app(settings: Settings) -> Flask:
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    return app


def token(signing: dict[str, Any], *, key: str, algorithm: str, kid: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ehr", "exp": now + 300, "scope": ""}
    payload = {k: v for k, v in (payload | claims).items() if v is not None}
    return jwt.encode(payload, signing[key], algorithm=algorithm, headers={"kid": kid})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# -- 4a: a JWT whose alg does not fit its kid's key ---------------------------------------------


@pytest.mark.parametrize(
    ("key", "algorithm", "kid"),
    [("ec", "ES256", "rsa"), ("rsa", "RS256", "ec"), ("rsa", "PS256", "ec")],
    ids=["ES256-with-an-RSA-kid", "RS256-with-an-EC-kid", "PS256-with-an-EC-kid"],
)
def test_a_jwt_whose_algorithm_does_not_fit_its_key_is_401_not_500(
    client: FlaskClient, signing: dict[str, Any], key: str, algorithm: str, kid: str
) -> None:
    forged = token(signing, key=key, algorithm=algorithm, kid=kid, scope="system/*.rs")

    response = client.get("/fhir/DiagnosticReport", headers=bearer(forged))

    assert response.status_code == 401
    assert "does not match its key" in response.get_json(force=True)["issue"][0]["diagnostics"]


# -- 4d: identities namespaced by how the caller authenticated ---------------------------------


def test_a_jwt_cannot_take_an_api_keys_identity_with_client_id(
    settings: Settings, signing: dict[str, Any]
) -> None:
    authenticator = Authenticator(settings)
    key_holder = authenticator.authenticate(FULL_KEY)

    borrowed = token(signing, key="rsa", algorithm="RS256", kid="rsa", client_id=key_holder.subject)
    impostor = authenticator.authenticate(borrowed)

    assert impostor.subject != key_holder.subject
    assert impostor.subject == f"jwt:{ISSUER}|ehr"
    assert key_holder.subject == "key:1"


def test_a_jwt_without_a_subject_is_refused(client: FlaskClient, signing: dict[str, Any]) -> None:
    anonymous = token(
        signing,
        key="rsa",
        algorithm="RS256",
        kid="rsa",
        sub=None,
        client_id="ehr",
        scope="system/*.rs",
    )

    response = client.get("/fhir/DiagnosticReport", headers=bearer(anonymous))

    assert response.status_code == 401
    assert "sub" in response.get_json(force=True)["issue"][0]["diagnostics"]


# -- 4b: a separator-only search value --------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["subject=,", "subject=,,", "code=,", "date=,", "status=,", "identifier=,"],
)
def test_a_separator_only_search_value_is_a_plain_400(client: FlaskClient, query: str) -> None:
    resource_type = "Observation"
    response = client.get(f"/fhir/{resource_type}?{query}", headers=bearer(FULL_KEY))

    assert response.status_code == 400
    text = response.get_data(as_text=True).lower()
    assert "Retry-After" not in response.headers
    for leak in ("sql", "syntax", "near", "select", "operationalerror"):
        assert leak not in text


# -- 4c: FHIR bodies must be UTF-8 without a BOM ------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-16-le"),
        lambda text: text.encode("utf-16-be"),
        lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
        lambda text: text.encode("utf-32-le"),
        lambda text: codecs.BOM_UTF32_BE + text.encode("utf-32-be"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    ],
    ids=["utf-16-le", "utf-16-be", "utf-16-bom", "utf-32-le", "utf-32-bom", "utf-8-bom"],
)
@pytest.mark.parametrize("url", [SUBMIT, f"{SUBMIT}/$validate", "/fhir"])
def test_a_body_not_in_plain_utf8_is_refused_with_415(
    client: FlaskClient, url: str, encode: Callable[[str], bytes]
) -> None:
    body = encode(json.dumps(form(RECIST, 1)))

    response = client.post(
        url, data=body, content_type="application/fhir+json", headers=bearer(FULL_KEY)
    )

    assert response.status_code == 415
    (issue,) = response.get_json(force=True)["issue"]
    assert issue["code"] == "not-supported"
    assert "UTF-8" in issue["diagnostics"]


# -- 4e: absolute URLs from the configured public base URL, not the Host header ----------------


def test_the_public_base_url_is_used_for_every_absolute_url_whatever_the_host(
    settings: Settings,
) -> None:
    app = create_app(replace(settings, public_base_url=PUBLIC_URL), clock=lambda: NOW)
    client = app.test_client()
    forged = {"Host": "evil.example", **bearer(FULL_KEY)}

    created = client.post(SUBMIT, json=form(RECIST, 1), headers=forged)
    found = client.get("/fhir/DiagnosticReport?_count=1", headers=forged)
    metadata = client.get("/fhir/metadata", headers=forged)

    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{PUBLIC_URL}/fhir/QuestionnaireResponse/")
    bundle = found.get_json(force=True)
    urls = [link["url"] for link in bundle["link"]] + [e["fullUrl"] for e in bundle["entry"]]
    assert urls
    assert all(url.startswith(f"{PUBLIC_URL}/fhir/") for url in urls)
    assert metadata.get_json(force=True)["implementation"]["url"] == f"{PUBLIC_URL}/fhir"
    everything = created.get_data(as_text=True) + found.get_data(as_text=True)
    assert "evil.example" not in everything


def test_without_a_public_base_url_the_host_header_is_used_as_before(client: FlaskClient) -> None:
    response = client.get("/fhir/metadata", headers={"Host": "demo.local:8080"})

    assert response.get_json(force=True)["implementation"]["url"] == "http://demo.local:8080/fhir"


# -- 4f: no-store and nosniff -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("GET", "/fhir/DiagnosticReport", FULL_KEY),
        ("GET", "/fhir/DiagnosticReport/unknown", FULL_KEY),
        ("GET", "/fhir/QuestionnaireResponse?subject=,", FULL_KEY),
        ("POST", SUBMIT, FULL_KEY),
        ("GET", "/fhir/Observation", NARROW_KEY),  # 403
        ("GET", "/fhir/Observation", None),  # 401
        ("POST", "/api/v1/assessments", FULL_KEY),
        ("GET", "/fhir/metadata", None),
        ("GET", "/health", None),
        ("GET", "/no-such-page", FULL_KEY),
    ],
)
def test_every_answer_is_nosniff_and_not_stored(
    client: FlaskClient, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else bearer(key)
    data = form(RECIST, 1) if path == SUBMIT else {}

    response = client.open(
        path, method=method, json=data if method == "POST" else None, headers=headers
    )

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


# -- 4g: the AuditEvent of a search is bounded ------------------------------------------------


def test_a_search_audit_event_names_at_most_the_bounded_number_of_patients() -> None:
    disclosed = [
        {"resourceType": "Observation", "id": f"o{n}", "subject": {"reference": f"Patient/p{n}"}}
        for n in range(audit.MAX_PATIENTS_PER_EVENT + 150)
    ]

    entities = audit.search_disclosure("Observation", "code=x", disclosed)

    (query, *patients) = entities
    assert len(patients) == audit.MAX_PATIENTS_PER_EVENT
    details = dict(query.details)
    assert details["disclosed"] == details["disclosed Observation"] == str(len(disclosed))
    assert details["patients"] == str(len(disclosed))
    assert details["patients not named"] == "150"


# -- 4h: the 403 log line ---------------------------------------------------------------------


def test_a_refused_request_is_logged_with_its_url_rule_not_its_path(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    report_id = "patient-4711-report"

    with caplog.at_level(logging.INFO, logger="fhirnet"):
        response = client.get(f"/fhir/Observation/{report_id}", headers=bearer(NARROW_KEY))
        # Formatted as the service writes them: inside the request, which the formatter reads.
        with client.application.test_request_context(f"/fhir/Observation/{report_id}"):
            lines = [JsonFormatter().format(record) for record in caplog.records]

    assert response.status_code == 403
    assert any("lacks system/Observation.r" in line for line in lines)
    assert not [line for line in lines if report_id in line]
