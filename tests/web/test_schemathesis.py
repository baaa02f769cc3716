"""Property: every operation of fhirnet's own OpenAPI document, driven by schemathesis.

The document is the one the app serves at ``/api/v1/openapi.json`` (loaded in-process over WSGI
from an app the factory builds), so this holds the service to what it publishes. For every
operation schemathesis runs its phases (the documented examples, the coverage cases at the
boundaries of every schema, and fuzzing) with schema-valid and schema-violating requests, and
every answer must:

* never be a server error (5xx) — the only 5xx the document admits is ``GET /crf``'s 503 when
  LHC-Forms is not installed, accepted only then;
* have a documented status code, media type, headers and body (``status_code_conformance``,
  ``content_type_conformance``, ``response_headers_conformance``,
  ``response_schema_conformance``);
* reject what violates the schema (``negative_data_rejection``), list the allowed methods in a 405
  and ``Allow`` (``unsupported_method``, ``allow_header_conformance``).

Left out, each for a reason:

* ``positive_data_acceptance`` (a schema-valid request must get 2xx): the document describes the
  *shape* of what an operation takes, not the rules of FHIR and of the assessment (a
  QuestionnaireResponse with the right shape but no answers is a 422, a search value such as
  ``date=foo`` is a 400), and cannot: those rules are what ``$validate`` and the search parser
  are for.
* ``ignored_auth`` (a request without a token must get 401): the app under test runs with open
  access (``FHIRNET_AUTH=none``), as every web test but ``tests/web/test_auth.py`` does, which
  tests every endpoint with and without tokens and scopes. For the same reason the generator does
  not treat the bearer token as a required header (``with-security-parameters = false``).

The app is shared by all operations and seeded with the example forms of one patient, so searches,
``_include`` and reads find something. Deterministic: ``derandomize`` and a fixed seed. The number
of examples run per operation, with their statuses, is printed in the terminal summary
(``tests/conftest.py``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from fhirnet.web.crf_views import lforms_installed
from tests.conftest import ExampleCounts
from tests.submissions import NOW, RECIST, form, form_paths

OPENAPI_PATH = "/api/v1/openapi.json"
SECTION = "schemathesis"
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260101,
        "generation": {"mode": "all", "with-security-parameters": False},
    }
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]


def _load_schema() -> schemathesis.BaseSchema:
    """The document as the app serves it. Loaded at collection, so each operation is a test of
    its own; the app that serves it is built in a directory that is gone afterwards (it writes
    nothing there: the store opens on first use), the operations run against ``served_app``."""
    with tempfile.TemporaryDirectory() as directory:
        loader = create_app(Settings(data_dir=Path(directory), auth="none"))
        return schemathesis.openapi.from_wsgi(OPENAPI_PATH, loader, config=CONFIG)


schema = _load_schema()


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """One app for every operation, with the embedded store in a temporary directory, open
    access, and the forms of one patient submitted (its reports, Observations, AuditEvents...)."""
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    app = create_app(Settings(data_dir=data_dir, auth="none"), clock=lambda: NOW)
    app.config["TESTING"] = True
    client = app.test_client()
    for number in range(1, len(form_paths(RECIST)) + 1):
        response = client.post("/fhir/QuestionnaireResponse", json=form(RECIST, number))
        assert response.status_code == 201, response.get_data(as_text=True)
    return app


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run; explore with a larger max_examples
    database=None,
    # One app for every example of every operation: it only grows, which is what a server does.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(
    served_app: Flask, example_counts: ExampleCounts, case: schemathesis.Case[Any]
) -> None:
    response = case.call(app=served_app)
    example_counts.section(SECTION)[(case.operation.label, response.status_code)] += 1
    checks = CHECKS
    if case.operation.path == "/crf" and not lforms_installed():
        # Documented: without LHC-Forms the page explains how to install it, with a 503.
        assert response.status_code == 503
        checks = [check for check in CHECKS if check is not not_a_server_error]
    case.validate_response(response, checks=checks)
