"""Access control (docs/auth.md): every endpoint of the app's URL map by {no token, bad signature,
expired, wrong audience, missing scope, right scope, unknown / unscoped / full API key}, then the
pieces: SMART scope grammar, JWT verification details, a JWKS served over HTTP, open access with
``FHIRNET_AUTH=none``, and the configurations that must stop the start.

The expected access of each endpoint is written out here, independently of
:mod:`fhirnet.web.auth`; a route missing from :data:`EXPECTED` fails the table, so a new endpoint
cannot ship without a decision about who may call it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhirnet.access import ISSUER as ISSUED_BY_FHIRNET
from fhirnet.access import KEY_ID as FHIRNET_KEY_ID
from fhirnet.access import Permission, parse_scope
from fhirnet.config import ConfigError, Settings, load_settings
from fhirnet.fhir.capability import READABLE_TYPES
from fhirnet.fhir.identifiers import WRITTEN_TYPES
from fhirnet.token_key import load_token_key, token_key_path
from fhirnet.web.app import create_app
from fhirnet.web.auth import check_routes
from tests.jwks_server import JwksServer
from tests.submissions import RECIST, form

ISSUER = "https://auth.example.org"
AUDIENCE = "https://fhirnet.example.org/fhir"
RSA_KID = "rsa-1"
EC_KID = "ec-1"
FULL_KEY = "full-access-key-0123456789"
#: A key whose only scope grants nothing any endpoint needs.
NARROW_KEY = "narrow-scope-key-0123456789"
#: Scopes that grant nothing here: an unrelated type, and patient/user scopes fhirnet refuses.
# patient/ scopes grant nothing (no compartment enforcement); user/ scopes grant like system/.
IRRELEVANT_SCOPES = "system/Basic.cruds patient/*.cruds user/Basic.cruds launch openid"

PUBLIC = "public"
ANY_SCOPE = "any valid token"


# --- the expected access of every endpoint, written out independently of fhirnet.web.auth ---


def _read_search(interaction: str) -> Callable[[str | None], str]:
    def expected(resource_type: str | None) -> str:
        assert resource_type is not None
        if resource_type in READABLE_TYPES:
            return PUBLIC  # conformance resources: no patient data, the CRF page needs them
        if not re.fullmatch(r"[A-Z][A-Za-z]*", resource_type):
            return ANY_SCOPE
        return f"system/{resource_type}.{interaction}"

    return expected


EXPECTED: dict[str, Callable[[str | None], str]] = {
    "health": lambda _: PUBLIC,
    "static": lambda _: PUBLIC,
    "crf.crf_page": lambda _: PUBLIC,
    "crf.timeline_page": lambda _: PUBLIC,
    "crf.crf_config": lambda _: PUBLIC,
    "crf.static": lambda _: PUBLIC,
    "fhir.metadata": lambda _: PUBLIC,
    "discovery.smart_configuration": lambda _: PUBLIC,
    "discovery.fhir_smart_configuration": lambda _: PUBLIC,
    "api.openapi_document": lambda _: PUBLIC,
    "api.create_assessment": lambda _: ANY_SCOPE,  # a calculator: no FHIR data in or out
    "api.create_endpoints": lambda _: ANY_SCOPE,  # trial endpoints: computed from the body only
    # The bulk clients' token endpoint: how to get a token, so it cannot need one.
    "token.token": lambda _: PUBLIC,
    # Bulk export: any valid token gets in, the views check read on each type exported.
    "bulk.kickoff_system": lambda _: ANY_SCOPE,
    "bulk.kickoff_patient": lambda _: ANY_SCOPE,
    "bulk.kickoff_group": lambda _: ANY_SCOPE,
    "bulk.status": lambda _: ANY_SCOPE,
    "bulk.cancel": lambda _: ANY_SCOPE,
    "bulk.download": lambda _: ANY_SCOPE,
    "fhir.read": _read_search("r"),
    "fhir.vread": _read_search("r"),
    "fhir.search": _read_search("s"),
    "fhir.create": lambda _: "system/QuestionnaireResponse.c",
    "fhir.submit_form": lambda _: "system/QuestionnaireResponse.c",  # $submit: the same create
    "fhir.transaction": lambda _: "system/QuestionnaireResponse.c",
    "fhir.validate": lambda _: "system/QuestionnaireResponse.c",
    # $extract answers with what the form derives from the patient's stored forms: read on
    # every type its Bundle can hold too (finding 2 of the security review).
    "fhir.extract_resources": lambda _: " ".join(
        ["system/QuestionnaireResponse.c", *(f"system/{t}.r" for t in WRITTEN_TYPES)]
    ),
    # A submission's status: for its submitter, who needed create to submit it.
    "fhir.submission_status": lambda _: "system/QuestionnaireResponse.c",
    # Studies: a PUT creates or updates (SMART v2 `cu`), a withdrawal updates the subject.
    "studies.put_study_view": lambda _: "system/ResearchStudy.c system/ResearchStudy.u",
    "studies.get_study_view": lambda _: "system/ResearchStudy.r",
    "studies.delete_study_view": lambda _: "system/ResearchStudy.d",
    "studies.put_subject_view": lambda _: "system/ResearchSubject.c system/ResearchSubject.u",
    "studies.get_subject_view": lambda _: "system/ResearchSubject.r",
    "studies.withdraw_view": lambda _: "system/ResearchSubject.u",
    # A statistician's endpoints: the study, its subjects and their reports; no form.
    "studies.study_endpoints_view": lambda _: (
        "system/ResearchStudy.r system/ResearchSubject.r system/DiagnosticReport.r"
    ),
    "studies.adjudication_view": lambda _: "system/ResearchSubject.u",
    # Its plots: the same derived numbers, drawn; the same scopes.
    "studies.study_plot_view": lambda _: (
        "system/ResearchStudy.r system/ResearchSubject.r system/DiagnosticReport.r"
    ),
    # SDTM domains: lesions from the forms, sums and responses from the reports' Observations.
    "studies.sdtm_view": lambda _: (
        "system/ResearchStudy.r system/ResearchSubject.r system/QuestionnaireResponse.r "
        "system/DiagnosticReport.r system/Observation.r"
    ),
    # The live assessment: a dry run of a submission that answers what the form derives from the
    # patient's stored forms (as $extract): create, and read on every type it could disclose.
    "reader.assess": lambda _: " ".join(
        ["system/QuestionnaireResponse.c", *(f"system/{t}.r" for t in WRITTEN_TYPES)]
    ),
    # The reader's timeline: the patient's reports, forms and the results derived from them.
    "reader.timeline": lambda _: (
        "system/DiagnosticReport.r system/QuestionnaireResponse.r system/Observation.r"
    ),
    # $populate pre-fills a follow-up from the patient's forms and the results derived from
    # them (the nadir, the new lesions counted): read on all three.
    "populate.populate": lambda _: (
        "system/QuestionnaireResponse.r system/DiagnosticReport.r system/Observation.r"
    ),
}

#: Types the generic read/search routes are called with: what fhirnet writes, the conformance
#: types, a type it has nothing of, and a name that is no type.
RESOURCE_TYPES = (*WRITTEN_TYPES, *READABLE_TYPES, "Patient", "not-a-type")


@dataclass(frozen=True)
class Call:
    endpoint: str
    method: str
    path: str
    resource_type: str | None

    @property
    def expected(self) -> str:
        rule = EXPECTED.get(self.endpoint)
        if rule is None:
            pytest.fail(f"{self.endpoint} ({self.method} {self.path}) has no expected access")
        return rule(self.resource_type)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def calls_of(app: Flask) -> list[Call]:
    """One call per route and method of ``app``, the generic routes once per resource type."""
    calls = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            types: tuple[str | None, ...] = (
                RESOURCE_TYPES if "resource_type" in rule.arguments else (None,)
            )
            for resource_type in types:
                path = rule.rule.replace("<resource_type>", resource_type or "")
                path = re.sub(r"<(?:\w+:)?resource_id>", "some-id", path)
                path = path.replace("<submission_id>", "0" * 32)
                path = path.replace("<version_id>", "1")
                path = path.replace("<study_id>", "NET-01").replace("<subject_id>", "001-0001")
                path = path.replace("<path:filename>", "crf.js")
                path = path.replace("<plot>", "waterfall.svg")
                path = path.replace("<domain>", "TU")
                path = path.replace("<group_id>", "cohort-1").replace("<job_id>", "0" * 32)
                path = path.replace("<file_name>", "Observation-1.ndjson")
                path = path.replace("<patient_id>", "some-patient")
                path = path.replace("<questionnaire_id>", "gep-net-imaging-crf")
                assert "<" not in path, f"fill in the variables of {rule.rule}"
                calls.append(Call(rule.endpoint, method, path, resource_type))
    return calls


# --- keys, tokens and the app under test ---


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    other_key: rsa.RSAPrivateKey  # signs the "bad signature" tokens
    jwks: dict[str, Any]

    def token(
        self,
        scope: str = "",
        *,
        key: str = "rsa",
        algorithm: str | None = None,
        kid: str | None = RSA_KID,
        expires_in: int = 300,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "ehr-client",
            "iat": now,
            "exp": now + expires_in,
            "scope": scope,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        signing_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = {
            "rsa": self.rsa_key,
            "other": self.other_key,
        }.get(key, self.ec_key)
        default = "ES256" if key == "ec" else "RS256"
        headers = {} if kid is None else {"kid": EC_KID if key == "ec" else kid}
        return jwt.encode(payload, signing_key, algorithm=algorithm or default, headers=headers)


@pytest.fixture(scope="module")
def keys() -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    jwks = {
        "keys": [
            {**rsa_jwk, "kid": RSA_KID, "use": "sig"},
            {**ec_jwk, "kid": EC_KID, "use": "sig", "alg": "ES256"},
        ]
    }
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(rsa_key=rsa_key, ec_key=ec_key, other_key=other, jwks=jwks)


@pytest.fixture(scope="module")
def jwks_file(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(keys.jwks))
    return path


def protected_settings(data_dir: Path, jwks_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_keys": ((FULL_KEY, ()), (NARROW_KEY, ("system/Basic.cruds",))),
        "jwks_file": jwks_file,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    }
    return Settings(**(values | overrides))


@pytest.fixture(scope="module")
def protected_app(jwks_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    app = create_app(protected_settings(tmp_path_factory.mktemp("data"), jwks_file))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def protected(protected_app: Flask) -> FlaskClient:
    return protected_app.test_client()


def send(client: FlaskClient, call: Call, token: str | None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if call.method == "POST":
        response = client.post(call.path, json={}, headers=headers)
    else:
        response = client.open(call.path, method=call.method, headers=headers)
    response.get_data()  # buffer it, so that closing a static file's stream keeps the body
    response.close()
    return response


def assert_challenge(
    response: Any, status: int, error: str | None, *, scope: str | None = None
) -> None:
    """``status`` with an RFC 6750 challenge and fhirnet's error body for the route."""
    assert response.status_code == status, response.get_data(as_text=True)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="fhirnet"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
        assert 'error_description="' in challenge
    if scope is not None:
        assert f'scope="{scope}"' in challenge
    body = response.get_json(force=True)
    if response.request.path.startswith("/fhir"):
        assert response.content_type.startswith("application/fhir+json")
        assert body["resourceType"] == "OperationOutcome"
        [issue] = body["issue"]
        assert (issue["severity"], issue["code"]) == (
            "error",
            "login" if status == 401 else "forbidden",
        )
        assert issue["diagnostics"]
    else:
        assert response.content_type == "application/json"
        assert list(body) == ["errors"]
        assert list(body["errors"]) == ["$"]


# --- the table: every endpoint by every kind of credential ---

CREDENTIALS = (
    "no token",
    "bad signature",
    "expired",
    "wrong audience",
    "missing scope",
    "right scope",
    "unknown api key",
    "api key without the scope",
    "api key with full access",
)


def _table() -> list[Any]:
    # Built from a throw-away open app: the URL map does not depend on the settings.
    app = create_app(Settings(auth="none", data_dir=Path("/nonexistent-never-opened")))
    return [
        pytest.param(call, credential, id=f"{call}-{credential}")
        for call in calls_of(app)
        for credential in CREDENTIALS
    ]


def token_for(keys: Keys, credential: str, needed: str) -> str | None:
    scope = needed if needed.startswith("system/") else "system/Basic.r"
    return {
        "no token": None,
        "bad signature": keys.token(scope, key="other"),  # same kid, another key
        "expired": keys.token(scope, expires_in=-600),  # well beyond the leeway
        "wrong audience": keys.token(scope, aud="https://other.example.org"),
        "missing scope": keys.token(IRRELEVANT_SCOPES),
        "right scope": keys.token(scope),
        "unknown api key": "no-such-api-key-0123456789",
        "api key without the scope": NARROW_KEY,
        "api key with full access": FULL_KEY,
    }[credential]


@pytest.mark.parametrize(("call", "credential"), _table())
def test_every_endpoint_answers_each_kind_of_credential_as_its_access_rule_says(
    protected: FlaskClient, keys: Keys, call: Call, credential: str
) -> None:
    needed = call.expected
    response = send(protected, call, token_for(keys, credential, needed))

    if needed == PUBLIC:
        # Public endpoints never look at the token, good or bad.
        assert response.status_code not in (401, 403)
        assert "WWW-Authenticate" not in response.headers
    elif credential == "no token":
        assert_challenge(response, 401, None)
    elif credential in ("bad signature", "expired", "wrong audience", "unknown api key"):
        assert_challenge(response, 401, "invalid_token")
    elif credential in ("missing scope", "api key without the scope") and needed != ANY_SCOPE:
        assert_challenge(response, 403, "insufficient_scope", scope=needed.split()[0])
    else:  # right scope, full access, or an endpoint any valid token may call
        assert response.status_code not in (401, 403), response.get_data(as_text=True)
        assert "WWW-Authenticate" not in response.headers


def test_the_table_covers_every_route_of_the_app(protected_app: Flask) -> None:
    routes = {rule.endpoint for rule in protected_app.url_map.iter_rules()}

    assert routes == set(EXPECTED), "a route without an access decision (here and in auth.py)"


#: The endpoints a pseudonymized bulk client's token opens: bulk export, nothing else.
BULK_ENDPOINTS = {endpoint for endpoint in EXPECTED if endpoint.startswith("bulk.")}


@pytest.fixture(scope="module")
def pseudonymized_app(jwks_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    directory = tmp_path_factory.mktemp("pseudonymized")
    clients = directory / "clients.json"
    clients.write_text("[]")  # the token is minted below: no client needs to ask for it
    app = create_app(protected_settings(directory / "data", jwks_file, bulk_clients_file=clients))
    app.config["TESTING"] = True
    return app


def pseudonymized_token(app: Flask) -> str:
    """A token as fhirnet's token endpoint issues it to a client registered as pseudonymized,
    with read on every type."""
    settings = app.extensions["fhirnet"].settings
    now = int(time.time())
    claims = {
        "iss": ISSUED_BY_FHIRNET,
        "sub": "cro",
        "client_id": "cro",
        "scope": "system/*.rs",
        "iat": now,
        "exp": now + 300,
        "jti": "pseudonymized-1",
        "pseudonymized_study": "NET-01",
    }
    return jwt.encode(
        claims,
        load_token_key(token_key_path(settings)),
        algorithm="HS256",
        headers={"kid": FHIRNET_KEY_ID, "typ": "at+jwt"},
    )


def _non_public_calls() -> list[Any]:
    app = create_app(Settings(auth="none", data_dir=Path("/nonexistent-never-opened")))
    return [
        pytest.param(call, id=str(call))
        for call in calls_of(app)
        if call.endpoint not in EXPECTED or EXPECTED[call.endpoint](call.resource_type) != PUBLIC
    ]


@pytest.mark.parametrize("call", _non_public_calls())
def test_a_pseudonymized_client_s_token_opens_bulk_export_and_nothing_else(
    pseudonymized_app: Flask, call: Call
) -> None:
    response = send(pseudonymized_app.test_client(), call, pseudonymized_token(pseudonymized_app))

    if call.endpoint in BULK_ENDPOINTS:
        # Let through to the view, which decides for itself (it may refuse too: no
        # pseudonymization regime is configured for the study here).
        assert response.status_code != 401, response.get_data(as_text=True)
        assert "opens bulk export only" not in response.get_data(as_text=True)
    else:
        assert_challenge(response, 403, "insufficient_scope")
        text = response.get_data(as_text=True)
        assert "pseudonymized" in text
        assert "bulk export" in text


def test_an_app_with_a_route_without_an_access_rule_does_not_start(settings: Settings) -> None:
    app = create_app(settings)
    app.add_url_rule("/unguarded", endpoint="unguarded", view_func=lambda: "open?")

    with pytest.raises(RuntimeError, match="unguarded"):
        check_routes(app)


EXTRACT = "/fhir/QuestionnaireResponse/$extract"
EXTRACT_READS = [f"system/{t}.r" for t in WRITTEN_TYPES]


@pytest.mark.parametrize(
    ("scopes", "missing"),
    [
        pytest.param(["system/QuestionnaireResponse.c"], EXTRACT_READS[0], id="create only"),
        *(
            pytest.param(
                ["system/QuestionnaireResponse.c", *(r for r in EXTRACT_READS if r != left_out)],
                left_out,
                id=f"all but {left_out}",
            )
            for left_out in EXTRACT_READS
        ),
        pytest.param(["system/QuestionnaireResponse.c", *EXTRACT_READS], None, id="all"),
    ],
)
def test_extract_needs_read_on_every_type_its_bundle_can_hold(
    protected: FlaskClient, keys: Keys, scopes: list[str], missing: str | None
) -> None:
    response = protected.post(
        EXTRACT,
        json=form(RECIST, 1),
        headers={"Authorization": f"Bearer {keys.token(' '.join(scopes))}"},
    )

    if missing is None:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        assert_challenge(response, 403, "insufficient_scope", scope=missing)


POPULATE = f"/fhir/Questionnaire/gep-net-imaging-crf/$populate?subject=Patient/{RECIST}"
POPULATE_READS = [
    "system/QuestionnaireResponse.r",
    "system/DiagnosticReport.r",
    "system/Observation.r",
]


@pytest.mark.parametrize(
    ("scopes", "missing"),
    [
        pytest.param(POPULATE_READS[:1], POPULATE_READS[1], id="QuestionnaireResponse.r only"),
        pytest.param(POPULATE_READS[:2], POPULATE_READS[2], id="without Observation.r"),
        pytest.param(POPULATE_READS[1:], POPULATE_READS[0], id="without QuestionnaireResponse.r"),
        pytest.param(POPULATE_READS, None, id="all three"),
        pytest.param(["system/*.r"], None, id="read on everything"),
    ],
)
def test_populate_needs_read_on_the_forms_and_the_results_derived_from_them(
    protected: FlaskClient, keys: Keys, scopes: list[str], missing: str | None
) -> None:
    response = protected.get(
        POPULATE, headers={"Authorization": f"Bearer {keys.token(' '.join(scopes))}"}
    )

    if missing is None:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json(force=True)["resourceType"] == "Parameters"
    else:
        assert_challenge(response, 403, "insufficient_scope", scope=missing)


def test_populate_makes_the_signed_in_reader_the_author(protected: FlaskClient, keys: Keys) -> None:
    token = keys.token(
        " ".join(POPULATE_READS), fhirUser="https://ehr.example/fhir/Practitioner/r-9"
    )

    response = protected.get(POPULATE, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.get_data(as_text=True)
    (answer,) = response.get_json(force=True)["parameter"]
    assert answer["resource"]["author"] == {"reference": "Practitioner/r-9"}


def test_the_right_scope_really_reaches_the_view(protected: FlaskClient, keys: Keys) -> None:
    token = keys.token("system/QuestionnaireResponse.s")

    response = protected.get(
        "/fhir/QuestionnaireResponse", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert response.get_json(force=True)["type"] == "searchset"


def test_read_needs_r_and_search_needs_s(protected: FlaskClient, keys: Keys) -> None:
    read_only = {"Authorization": f"Bearer {keys.token('system/DiagnosticReport.r')}"}

    assert protected.get("/fhir/DiagnosticReport/x", headers=read_only).status_code == 404
    assert protected.get("/fhir/DiagnosticReport", headers=read_only).status_code == 403


@pytest.mark.parametrize(
    "scope",
    [
        "system/DiagnosticReport.rs",
        "system/DiagnosticReport.cruds",
        "system/*.rs",
        "system/*.*",
        "system/DiagnosticReport.read",  # SMART v1
        "system/*.read",
        "openid system/Basic.r system/DiagnosticReport.s",
    ],
)
def test_search_is_granted_by_v2_v1_and_wildcard_scopes(
    protected: FlaskClient, keys: Keys, scope: str
) -> None:
    headers = {"Authorization": f"Bearer {keys.token(scope)}"}

    assert protected.get("/fhir/DiagnosticReport", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "scope",
    [
        "patient/DiagnosticReport.rs",  # a patient compartment fhirnet cannot enforce
        "user/DiagnosticReport.rs?category=LAB",  # a filter fhirnet cannot enforce
        "system/DiagnosticReport.rs?category=LAB",  # a filter fhirnet cannot enforce
        "system/DiagnosticReport.sr",  # v2 letters out of order
        "system/DiagnosticReport.write",  # v1 write is c, u, d
        "system/Observation.rs",
        "",
    ],
)
def test_search_is_refused_to_scopes_that_do_not_grant_it(
    protected: FlaskClient, keys: Keys, scope: str
) -> None:
    headers = {"Authorization": f"Bearer {keys.token(scope)}"}

    response = protected.get("/fhir/DiagnosticReport", headers=headers)

    assert_challenge(response, 403, "insufficient_scope", scope="system/DiagnosticReport.s")


@pytest.mark.parametrize(
    ("scope", "include", "status", "needed"),
    [
        ("system/DiagnosticReport.s", "DiagnosticReport:result", 403, "system/Observation.r"),
        ("system/DiagnosticReport.s system/Observation.r", "DiagnosticReport:result", 200, None),
        (
            "system/DiagnosticReport.s system/Observation.s",
            "DiagnosticReport:result",
            403,
            "system/Observation.r",
        ),  # searching Observations is not reading them
        ("system/DiagnosticReport.s system/Observation.r", "*", 403, None),
        ("system/DiagnosticReport.s system/*.r", "*", 400, None),  # allowed; the store lacks it
    ],
)
def test_a_search_with_include_needs_read_on_every_type_it_can_include(
    protected: FlaskClient, keys: Keys, scope: str, include: str, status: int, needed: str | None
) -> None:
    headers = {"Authorization": f"Bearer {keys.token(scope)}"}

    response = protected.get(f"/fhir/DiagnosticReport?_include={include}", headers=headers)

    assert response.status_code == status
    if status == 403:
        assert_challenge(response, 403, "insufficient_scope", scope=needed)


@pytest.mark.parametrize(
    ("scope", "grants"),
    [
        ("system/Observation.rs", {("Observation", "r"), ("Observation", "s")}),
        ("system/*.c", {("Observation", "c"), ("Patient", "c")}),
        ("system/Observation.read", {("Observation", "r"), ("Observation", "s")}),
        ("system/Observation.write", {("Observation", c) for c in "cud"}),
        ("system/Observation.*", {("Observation", c) for c in "cruds"}),
        ("system/*.*", {(t, c) for t in ("Observation", "Patient") for c in "cruds"}),
    ],
)
def test_a_scope_grants_exactly_its_interactions(scope: str, grants: set[tuple[str, str]]) -> None:
    grant = parse_scope(scope)

    assert grant is not None
    for resource_type in ("Observation", "Patient"):
        for interaction in "cruds":
            allowed = grant.allows(Permission(resource_type, interaction))
            assert allowed == ((resource_type, interaction) in grants), (resource_type, interaction)


# --- the bearer token itself ---


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SEARCH = "/fhir/DiagnosticReport"
SCOPE = "system/DiagnosticReport.s"


def test_an_ec_signed_token_is_accepted(protected: FlaskClient, keys: Keys) -> None:
    response = protected.get(SEARCH, headers=bearer(keys.token(SCOPE, key="ec")))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("make_token", "why"),
    [
        (lambda k: k.token(SCOPE, iss="https://evil.example.org"), "another issuer"),
        (lambda k: k.token(SCOPE, exp=None), "no exp"),
        (lambda k: k.token(SCOPE, iss=None), "no iss"),
        (lambda k: k.token(SCOPE, aud=None), "no aud"),
        (lambda k: k.token(SCOPE, nbf=int(time.time()) + 3600), "not yet valid"),
        (lambda k: k.token(SCOPE, kid="unknown-kid"), "unknown kid"),
        (lambda k: k.token(SCOPE, algorithm="RS512"), "algorithm not allowed"),
        (lambda k: k.token(SCOPE, algorithm="PS256"), "RSA key, another algorithm family"),
        (lambda k: k.token(SCOPE, kid=EC_KID), "RS256 naming the ES256 key"),
        (lambda k: _unsigned(SCOPE), "alg none"),
        (lambda k: _hmac_with_public_key(k, SCOPE), "HS256 keyed with the public key"),
        (lambda k: k.token(SCOPE)[:-4] + "AAAA", "tampered signature"),
        (lambda k: "a.b.c", "not a JWT"),
        (lambda k: "x" * 10_000, "too long"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_token_that_does_not_verify_is_refused(
    protected: FlaskClient, keys: Keys, make_token: Callable[[Keys], str], why: str
) -> None:
    response = protected.get(SEARCH, headers=bearer(make_token(keys)))

    assert_challenge(response, 401, "invalid_token")


def _unsigned(scope: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "scope": scope}
    return jwt.encode(claims, "", algorithm="none", headers={"kid": RSA_KID})


def _hmac_with_public_key(keys: Keys, scope: str) -> str:
    # The classic key-confusion attack: HMAC keyed with the verifier's public key. PyJWT refuses
    # to sign with a PEM public key, so the signature is computed by hand.
    import base64
    import hashlib
    import hmac

    pem = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "scope": scope}
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer   "],
)
def test_an_authorization_header_without_a_bearer_token_is_401(
    protected: FlaskClient, authorization: str
) -> None:
    response = protected.get(SEARCH, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="fhirnet"')


def test_a_url_that_matches_no_route_needs_a_token_before_it_is_a_404(
    protected: FlaskClient,
) -> None:
    assert_challenge(protected.get("/fhir/Patient/1/_history"), 401, None)
    assert_challenge(protected.get("/api/v1/nothing"), 401, None)
    assert protected.get("/api/v1/nothing", headers=bearer(FULL_KEY)).status_code == 404


def test_a_method_a_route_does_not_take_needs_a_token_before_it_is_a_405(
    protected: FlaskClient,
) -> None:
    assert_challenge(protected.delete("/fhir/Observation/1"), 401, None)
    assert protected.delete("/fhir/Observation/1", headers=bearer(FULL_KEY)).status_code == 405


def test_options_is_answered_without_a_token(protected: FlaskClient) -> None:
    response = protected.options("/fhir/QuestionnaireResponse")

    assert response.status_code == 200
    assert "POST" in response.headers["Allow"]


# --- JWKS from a URL ---


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[tuple[str, list[str]]]:
    """A JWKS on a local HTTP server; also the list of paths it was asked for."""
    with JwksServer(keys.jwks["keys"], path="/.well-known/jwks.json") as server:
        yield server.url, server.asked


def test_tokens_verify_against_a_jwks_fetched_from_a_url_once(
    jwks_server: tuple[str, list[str]], keys: Keys, tmp_path: Path
) -> None:
    url, asked = jwks_server
    settings = Settings(
        data_dir=tmp_path / "data",
        jwks_url=url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    client = create_app(settings).test_client()

    first = client.get(SEARCH, headers=bearer(keys.token(SCOPE)))
    second = client.get(SEARCH, headers=bearer(keys.token(SCOPE, key="ec")))
    forged = client.get(SEARCH, headers=bearer(keys.token(SCOPE, key="other")))

    assert (first.status_code, second.status_code) == (200, 200)
    assert_challenge(forged, 401, "invalid_token")
    assert asked == ["/.well-known/jwks.json"]  # cached


def test_an_unreachable_jwks_url_is_a_401_not_a_crash(keys: Keys, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        jwks_url="http://127.0.0.1:9/jwks.json",  # discard port: nothing listens
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    client = create_app(settings).test_client()

    assert_challenge(client.get(SEARCH, headers=bearer(keys.token(SCOPE))), 401, "invalid_token")


# --- open access, and configurations that must not start ---


def test_open_access_must_be_explicit_and_is_logged_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        client = create_app(Settings(data_dir=tmp_path / "data", auth="none")).test_client()

    assert "authentication disabled (FHIRNET_AUTH=none): every endpoint is open" in caplog.text
    assert client.get(SEARCH).status_code == 200


def test_a_protected_app_logs_no_open_access_warning(
    jwks_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(protected_settings(tmp_path / "data", jwks_file))

    assert "authentication disabled" not in caplog.text


def test_without_any_auth_settings_the_service_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FHIRNET_AUTH=none"):
        load_settings({})
    with pytest.raises(ConfigError, match="no authentication is configured"):
        create_app(Settings(data_dir=tmp_path / "data"))


def test_the_demo_default_opens_access_only_when_nothing_is_configured() -> None:
    assert load_settings({}, default_auth="none").auth == "none"
    configured = load_settings({"FHIRNET_API_KEYS": FULL_KEY}, default_auth="none")
    assert configured.auth is None
    assert configured.api_keys == ((FULL_KEY, ()),)


def test_api_keys_are_read_with_their_scopes_and_never_shown() -> None:
    settings = load_settings(
        {"FHIRNET_API_KEYS": f" {FULL_KEY} , {NARROW_KEY}:system/Basic.cruds system/*.rs "}
    )

    assert settings.api_keys == (
        (FULL_KEY, ()),
        (NARROW_KEY, ("system/Basic.cruds", "system/*.rs")),
    )
    assert FULL_KEY not in repr(settings)
    assert NARROW_KEY not in repr(settings)


def test_jwt_settings_are_read_with_the_fhirnet_prefix(jwks_file: Path) -> None:
    settings = load_settings(
        {
            "FHIRNET_AUTH": "jwt",
            "FHIRNET_JWKS_FILE": str(jwks_file),
            "FHIRNET_JWT_ISSUER": ISSUER,
            "FHIRNET_JWT_AUDIENCE": AUDIENCE,
            "FHIRNET_JWT_ALGORITHMS": "RS384, ES384",
        }
    )

    assert (settings.auth, settings.jwks_file) == ("jwt", jwks_file)
    assert (settings.jwt_issuer, settings.jwt_audience) == (ISSUER, AUDIENCE)
    assert settings.jwt_algorithms == ("RS384", "ES384")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FHIRNET_AUTH": "sometimes"}, "FHIRNET_AUTH"),
        ({"FHIRNET_AUTH": "none", "FHIRNET_API_KEYS": FULL_KEY}, "FHIRNET_AUTH=none"),
        ({"FHIRNET_AUTH": "keys"}, "FHIRNET_API_KEYS"),
        ({"FHIRNET_AUTH": "jwt", "FHIRNET_API_KEYS": FULL_KEY}, "FHIRNET_API_KEYS"),
        ({"FHIRNET_API_KEYS": "short"}, "at least 16"),
        ({"FHIRNET_API_KEYS": f"{FULL_KEY},{FULL_KEY}"}, "repeats"),
        ({"FHIRNET_JWKS_URL": "https://auth.example.org/jwks"}, "FHIRNET_JWT_ISSUER"),
        (
            {"FHIRNET_JWKS_URL": "https://a/jwks", "FHIRNET_JWKS_FILE": "/j.json"},
            "exclusive",
        ),
        ({"FHIRNET_JWKS_URL": "file:///etc/jwks.json"}, "FHIRNET_JWKS_URL"),
        ({"FHIRNET_JWT_ALGORITHMS": "HS256"}, "FHIRNET_JWT_ALGORITHMS"),
        ({"FHIRNET_JWT_ALGORITHMS": "none"}, "FHIRNET_JWT_ALGORITHMS"),
        ({"FHIRNET_API_KEYS": FULL_KEY, "FHIRNET_JWT_ISSUER": ISSUER}, "ignores"),
    ],
    ids=[
        "unknown mode",
        "none with keys",
        "keys without keys",
        "keys ignored",
        "short key",
        "repeated key",
        "jwks without issuer",
        "url and file",
        "jwks url not http",
        "hmac",
        "alg none",
        "jwt settings ignored",
    ],
)
def test_auth_settings_that_cannot_work_stop_the_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_an_api_key_scope_that_grants_nothing_stops_the_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_keys=((FULL_KEY, ("patient/*.read",)),))

    with pytest.raises(ConfigError, match="key 1 lists scopes that grant nothing"):
        create_app(settings)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not json", "not JSON"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "a symmetric key"),
    ],
)
def test_an_unusable_jwks_file_stops_the_start(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    settings = Settings(data_dir=tmp_path, jwks_file=path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)

    with pytest.raises(ConfigError, match="FHIRNET_JWKS_FILE"):
        create_app(settings)
