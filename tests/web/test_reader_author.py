"""A reader signed in with SMART App Launch submits forms as that reader: the token's
``fhirUser`` decides who signed, not the form. A form without ``author`` is authored by the
reader; a form naming another author is refused with 422 at ``author``; tokens without
``fhirUser`` (systems, API keys) submit forms as before."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from jwt.algorithms import RSAAlgorithm

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.submissions import RECIST, SUBMIT, body, bundle_of, form, issues_of, post

ISSUER = "https://auth.example.org"
AUDIENCE = "https://fhirnet.example.org/fhir"
KID = "readers-1"
READER = "Practitioner/reader-nuclear-radiology"  # the author of the RECIST example forms
READER_SCOPE = "openid fhirUser user/QuestionnaireResponse.crs user/*.rs"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    """fhirnet verifying the JWTs of the readers' authorization server."""
    jwks = tmp_path / "jwks.json"
    public = json.loads(RSAAlgorithm.to_jwk(_KEY.public_key()))
    jwks.write_text(json.dumps({"keys": [{**public, "kid": KID}]}))
    settings = Settings(
        data_dir=tmp_path / "data", jwks_file=jwks, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    return app.test_client()


def bearer(fhir_user: str | None, scope: str = READER_SCOPE) -> dict[str, str]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "r-1", "exp": now + 60}
    claims |= {"scope": scope} | ({"fhirUser": fhir_user} if fhir_user else {})
    token = jwt.encode(claims, _KEY, algorithm="RS256", headers={"kid": KID})
    return {"Authorization": f"Bearer {token}"}


def baseline(author: Any = ...) -> dict[str, Any]:
    resource = form(RECIST, 1)
    if author is None:
        del resource["author"]
    elif author is not ...:
        resource["author"] = author
    return resource


@pytest.mark.parametrize(
    "author",
    [
        {"reference": READER},
        # absolute on fhirnet's own base (references to other servers are refused anyway)
        {"reference": f"http://localhost/fhir/{READER}", "display": "Dr Reader"},
        {"reference": f"{READER}/_history/3"},
    ],
)
def test_a_form_naming_the_signed_in_reader_is_stored_as_sent(
    client: FlaskClient, author: dict[str, str]
) -> None:
    response = post(client, baseline(author), SUBMIT, **bearer(READER))

    assert response.status_code == 201, response.get_data(as_text=True)
    assert body(response)["author"] == author


def test_a_form_without_an_author_is_authored_by_the_signed_in_reader(
    client: FlaskClient,
) -> None:
    response = post(client, baseline(None), SUBMIT, **bearer(READER))

    assert response.status_code == 201, response.get_data(as_text=True)
    assert body(response)["author"] == {"reference": READER}
    stored = client.get(response.headers["Location"], headers=bearer(READER))
    assert body(stored)["author"] == {"reference": READER}


def test_the_reader_of_an_absolute_fhir_user_signs_with_the_relative_reference(
    client: FlaskClient,
) -> None:
    signed_in = bearer(f"https://ehr.example.org/fhir/{READER}")

    response = post(client, baseline(None), SUBMIT, **signed_in)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert body(response)["author"] == {"reference": READER}


@pytest.mark.parametrize(
    "author",
    [
        {"reference": "Practitioner/another-reader"},
        {"reference": "PractitionerRole/reader-nuclear-radiology"},
        {"display": "Dr Reader"},  # no reference: not the reader either
    ],
)
@pytest.mark.parametrize("url", [SUBMIT, f"{SUBMIT}/$submit", f"{SUBMIT}/$extract"])
def test_a_form_naming_another_author_is_refused_at_author(
    client: FlaskClient, author: dict[str, str], url: str
) -> None:
    issues = issues_of(post(client, baseline(author), url, **bearer(READER)), 422)

    assert [issue["expression"] for issue in issues] == [["QuestionnaireResponse.author"]]
    assert READER in issues[0]["diagnostics"]


def test_a_form_in_a_bundle_naming_another_author_is_refused_at_its_entry(
    client: FlaskClient,
) -> None:
    bundle = bundle_of(baseline({"reference": "Practitioner/another-reader"}))

    issues = issues_of(post(client, bundle, "/fhir", **bearer(READER)), 422)

    assert issues[0]["expression"] == ["Bundle.entry[0].resource.author"]


def test_a_form_in_a_bundle_without_an_author_is_authored_by_the_reader(
    client: FlaskClient,
) -> None:
    response = post(client, bundle_of(baseline(None)), "/fhir", **bearer(READER))

    assert response.status_code == 200, response.get_data(as_text=True)
    location = body(response)["entry"][0]["response"]["location"]
    stored = client.get(location, headers=bearer(READER))
    assert body(stored)["author"] == {"reference": READER}


def test_a_signed_in_user_who_is_not_a_practitioner_cannot_author_a_form(
    client: FlaskClient,
) -> None:
    issues = issues_of(post(client, baseline(), SUBMIT, **bearer("Patient/p-1")), 422)

    assert issues[0]["expression"] == ["QuestionnaireResponse.author"]
    assert "Patient/p-1" in issues[0]["diagnostics"]


def test_a_token_without_fhir_user_submits_forms_as_they_are(client: FlaskClient) -> None:
    system = bearer(None, scope="system/QuestionnaireResponse.c system/*.rs")
    other = baseline({"reference": "Practitioner/another-reader"})

    response = post(client, other, SUBMIT, **system)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert body(response)["author"] == {"reference": "Practitioner/another-reader"}


def test_without_a_token_the_form_is_refused_before_its_author_is_looked_at(
    client: FlaskClient,
) -> None:
    assert post(client, baseline(), SUBMIT).status_code == 401
