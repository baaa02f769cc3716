"""Properties of the FHIR endpoints for QuestionnaireResponses generated from the Questionnaire.

``tests/questionnaire_forms.py`` builds forms from ``profiles/`` (item tree, types, answer value
sets, bounds, repeats, enableWhen): valid ones, valid ones with one rule broken, and valid
baselines that also keep the baseline rules of the assessment. Each is posted to ``$validate``,
``$extract`` and ``POST /fhir/QuestionnaireResponse`` of an in-process app on the embedded store.
Whatever the form:

* never a server error, and every refusal is an OperationOutcome with an error issue;
* a form built to the Questionnaire is valid: ``$validate`` answers 200 without error issues;
* a form with one rule broken is refused by all three endpoints: 422, nothing written;
* a baseline that also keeps the assessment's baseline rules is written: ``$extract`` 200, the
  submission 201, the same form again 200 (nothing new), and its report can be read.

Why a valid form is not simply expected to be written: ``$extract`` and the submission also
apply the rules of the assessment, across items and across the patient's forms (a baseline target
needs a measured diameter, a follow-up needs the patient's baseline on file, a follow-up target
must be a baseline target, Choi needs densities...). The Questionnaire cannot express them and
the general generator does not model them, so for its forms the property is that both endpoints
agree (``$extract`` is the submission without the write): 200 from ``$extract`` means the
submission is accepted (201/200), 422 that it is refused the same way, never 400 or 5xx.

The number of examples run, per endpoint and kind of form and per rule broken, is printed in the
terminal summary (``tests/conftest.py``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.conftest import ExampleCounts
from tests.questionnaire_forms import (
    PERTURBATIONS,
    assessable_baselines,
    load_crf,
    perturbed_responses,
    valid_responses,
)
from tests.submissions import NOW

SECTION = "questionnaire properties"
VALIDATE = "/fhir/QuestionnaireResponse/$validate"
EXTRACT = "/fhir/QuestionnaireResponse/$extract"
#: The submission answered with the DiagnosticReport (the create answers the form).
SUBMIT = "/fhir/QuestionnaireResponse/$submit"
#: The validator's "today": the UTC date of the app's clock.
TODAY = NOW.astimezone(dt.UTC).date()
CRF = load_crf()

PROPERTIES = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # the same examples on every run; explore with --hypothesis-seed=N
    database=None,
    # One app per test function, shared by its examples: the store only grows, which is fine.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,  # some rules find nothing to break in a small form
    ],
)
#: Patients and submissions are numbered, so no two examples write about the same patient.
_numbers = itertools.count(1)


@pytest.fixture
def form_client(settings: Settings) -> FlaskClient:
    """An app on the embedded store in a temporary directory, open access, a fixed clock."""
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    return app.test_client()


def post(
    client: FlaskClient, url: str, form: dict[str, Any], counts: ExampleCounts, kind: str
) -> tuple[int, dict[str, Any] | None]:
    """Post ``form``, count the answer, and check the promises of every answer: no 5xx, and a
    refusal is an OperationOutcome with an error issue; return the status and the body."""
    response = client.post(url, data=json.dumps(form), content_type="application/fhir+json")
    counts.section(SECTION)[(f"POST {url} ({kind})", response.status_code)] += 1
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    body = response.get_json(silent=True)
    if response.status_code >= 400:
        assert body is not None
        assert body["resourceType"] == "OperationOutcome"
        assert errors(body), body
    return response.status_code, body


def errors(outcome: dict[str, Any] | None) -> list[dict[str, Any]]:
    issues = (outcome or {}).get("issue", [])
    return [issue for issue in issues if issue["severity"] in ("error", "fatal")]


@PROPERTIES
@given(form=valid_responses(CRF, TODAY))
def test_a_form_built_to_the_questionnaire_is_valid_and_extract_and_submission_agree(
    form_client: FlaskClient, example_counts: ExampleCounts, form: dict[str, Any]
) -> None:
    status, outcome = post(form_client, VALIDATE, form, example_counts, "valid")
    assert (status, errors(outcome)) == (200, [])

    extracted, _ = post(form_client, EXTRACT, form, example_counts, "valid")
    submitted, answer = post(form_client, SUBMIT, form, example_counts, "valid")
    assert extracted in (200, 422)
    assert submitted in ((200, 201) if extracted == 200 else (422,)), answer


@PROPERTIES
@given(form=assessable_baselines(CRF, TODAY))
def test_a_baseline_that_keeps_the_assessment_rules_is_written_once_and_readable(
    form_client: FlaskClient, example_counts: ExampleCounts, form: dict[str, Any]
) -> None:
    number = next(_numbers)
    form["subject"] = {"reference": f"Patient/generated-{number}"}
    form["identifier"]["value"] = f"generated-{number}"

    assert post(form_client, VALIDATE, form, example_counts, "assessable baseline")[0] == 200
    assert post(form_client, EXTRACT, form, example_counts, "assessable baseline")[0] == 200
    status, report = post(form_client, SUBMIT, form, example_counts, "assessable baseline")
    assert status == 201, report
    again, same = post(form_client, SUBMIT, form, example_counts, "assessable baseline again")
    assert again == 200
    assert report is not None
    assert same is not None
    assert same["id"] == report["id"]
    read = form_client.get(f"/fhir/DiagnosticReport/{report['id']}")
    assert read.status_code == 200
    assert read.get_json()["subject"] == form["subject"]


@pytest.mark.parametrize("rule", sorted(PERTURBATIONS))
@settings(PROPERTIES, max_examples=12)
@given(data=st.data())
def test_a_form_with_one_rule_broken_is_refused_by_every_endpoint(
    form_client: FlaskClient, example_counts: ExampleCounts, rule: str, data: st.DataObject
) -> None:
    form = data.draw(perturbed_responses(CRF, TODAY, rule), label="form")
    for url in (VALIDATE, EXTRACT, SUBMIT):
        status, outcome = post(form_client, url, form, example_counts, "one rule broken")
        assert status == 422, (url, outcome)
    # Each example is three requests: count it once more, by the rule it breaks.
    example_counts.section(f"{SECTION}, by rule broken", "examples")[(rule, 422)] += 1
