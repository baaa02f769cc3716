"""Property: every operation of fhirnet's own OpenAPI document, driven by schemathesis.

The document is the one the app serves at ``/api/v1/openapi.json`` (loaded in-process over WSGI
from an app the factory builds), so this holds the service to what it publishes. For every
operation schemathesis runs its phases (the documented examples, the coverage cases at the
boundaries of every schema, and fuzzing) with schema-valid and schema-violating requests, and
every answer must:

* never be a server error (5xx) — the only 5xx the document admits is ``GET /crf``'s 503 when
  LHC-Forms is not installed, so the ``/crf`` operation runs with LHC-Forms installed (the
  ``lforms`` fixture of ``tests/web/conftest.py``; the 503 page is tested in
  ``test_crf_page.py``);
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
import time
from collections.abc import Iterator
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

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.errors import FhirServerUnavailableError
from fhirnet.ports import Json, State
from fhirnet.web.app import create_app
from tests.conftest import ExampleCounts
from tests.submissions import CHOI, NOW, RECIST, RecordingStore, form, form_paths

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
    served_app: Flask,
    example_counts: ExampleCounts,
    case: schemathesis.Case[Any],
    request: pytest.FixtureRequest,
) -> None:
    if case.operation.path == "/crf":
        request.getfixturevalue("lforms")  # installed once per session, or skipped/failed
    response = case.call(app=served_app)
    example_counts.section(SECTION)[(case.operation.label, response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)


# -- durable delivery: the same operations when the FHIR server is down ---------------------------

#: The operations whose answers change with durable delivery (202 and the status).
DURABLE = schema.include(path_regex=r"^/fhir(/QuestionnaireResponse|/_submission/\{id\})?$")


class DownServer(RecordingStore):
    """An external FHIR server that can be read but, while ``down``, takes no transaction: every
    submission is kept in the outbox and answered 202."""

    down = True

    def transaction(self, bundle: Json) -> Json:
        if self.down:
            raise FhirServerUnavailableError("injected: the server is down", status=503)
        return super().transaction(bundle)


@pytest.fixture(scope="module")
def durable_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app with durable delivery in front of a server that is down."""
    directory = tmp_path_factory.mktemp("schemathesis-durable")
    with EmbeddedStore.open(directory / "server") as inner:
        app = create_app(
            Settings(
                data_dir=directory / "data",
                auth="none",
                delivery_backoff=0.05,
                delivery_max_backoff=0.2,
            ),
            store=DownServer(inner),  # the real clock: the delivery thread's pause must end
            durable=True,
        )
        app.config["TESTING"] = True
        yield app
        deliveries = app.extensions["fhirnet"].deliveries
        deliveries.stop()


@DURABLE.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_with_the_fhir_server_down_submissions_answer_202_as_documented(
    durable_app: Flask, example_counts: ExampleCounts, case: schemathesis.Case[Any]
) -> None:
    response = case.call(app=durable_app)
    example_counts.section(f"{SECTION}, FHIR server down")[
        (case.operation.label, response.status_code)
    ] += 1
    case.validate_response(response, checks=CHECKS)


def test_the_202_answers_and_the_status_of_real_forms_are_as_documented(
    durable_app: Flask,
) -> None:
    """Generated forms are never valid enough to be kept, so the example forms are sent too, each
    answer and the status of each checked against the document like a generated case."""
    submit = schema["/fhir/QuestionnaireResponse"]["POST"]
    status = schema["/fhir/_submission/{id}"]["GET"]
    ids: list[str] = []
    for number in range(1, len(form_paths(CHOI)) + 1):
        case = submit.Case(body=form(CHOI, number), media_type="application/fhir+json")
        response = case.call(app=durable_app)
        assert response.status_code == 202, response.text
        case.validate_response(response, checks=CHECKS)
        headers = {name.lower(): values for name, values in response.headers.items()}
        submission_id = headers["content-location"][0].rsplit("/", 1)[1]
        polled = status.Case(path_parameters={"id": submission_id})
        answer = polled.call(app=durable_app)
        assert answer.status_code == 202, answer.text
        polled.validate_response(answer, checks=CHECKS)
        ids.append(submission_id)

    state = durable_app.extensions["fhirnet"]
    state.backend.store().down = False
    with durable_app.app_context():
        outbox = state.deliveries.current().outbox
    outbox.reschedule(before=0, at=0)  # due now: the delivery thread takes them after its pause
    deadline = time.monotonic() + 30
    while outbox.counts()[State.QUEUED]:
        assert time.monotonic() < deadline, outbox.counts()
        time.sleep(0.05)
    for submission_id in ids:
        polled = status.Case(path_parameters={"id": submission_id})
        answer = polled.call(app=durable_app)
        assert answer.status_code == 200, answer.text
        polled.validate_response(answer, checks=CHECKS)
