"""The submissions of the FHIR endpoint (:mod:`fhirnet.web.fhir_submissions`): a form, a
transaction or batch Bundle of forms, ``$extract`` (the dry run), and the status of a
submission answered 202 Accepted. Each needs create on QuestionnaireResponse, as
:mod:`fhirnet.web.auth` enforces: fhirnet writes the results with its own credentials."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.web.openapi.components import ref
from fhirnet.web.openapi.operations import (
    FORMATS,
    NOT_ACCEPTABLE,
    body,
    fhir_response,
    outcome,
    path_id,
    prefer,
    secured,
)

_ASYNC = (
    " 'respond-async' (with an external FHIR server): 202 at once, delivered in the background "
    "(docs/delivery.md)."
)
_PREFER_RETURN = prefer(
    "'return=representation' (default): the stored form (in a Bundle: each entry's resource); "
    "'return=OperationOutcome': what was done, the computed category, every warning (e.g. a "
    "discordant reader conclusion, a missing modality) and the DiagnosticReport's URL; "
    "'return=minimal': no body." + _ASYNC
)
_PREFER_REPORT = prefer(
    "'return=representation' (default): the DiagnosticReport; 'return=OperationOutcome': what "
    "was done, the category and every warning; 'return=minimal': no body." + _ASYNC
)
_BODY_ERRORS = {
    "400": outcome("Not JSON, or not the resource the interaction takes."),
    "406": NOT_ACCEPTABLE,
    "413": outcome("The body is larger than the configured limit."),
    "415": outcome("The Content-Type is not application/fhir+json or JSON."),
    "422": outcome(
        "The form is invalid (expressions as $validate gives them), its status is not "
        "completed or amended, or it breaks a rule of the assessment (e.g. a follow-up target "
        "that is not a baseline target, no baseline form on file); nothing was written."
    ),
    "502": outcome(
        "The FHIR server refused the transaction (its issues follow ours); nothing was written."
    ),
    "503": {
        **outcome(
            "The FHIR server is unavailable, or another submission about the patient took too "
            "long; nothing was written. Retry (after Retry-After, when given)."
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
}
_LAST_MODIFIED = {"description": "When it was written (HTTP date).", "schema": {"type": "string"}}
_CREATED_HEADERS = {
    "Location": {
        "description": "[base]/QuestionnaireResponse/{id}/_history/{vid}: the stored form.",
        "schema": {"type": "string"},
    },
    "ETag": {"description": 'W/"<versionId>" of the form.', "schema": {"type": "string"}},
    "Last-Modified": _LAST_MODIFIED,
}
_REPORT_HEADERS = {
    "Location": {
        "description": "The absolute URL of the exam's DiagnosticReport.",
        "schema": {"type": "string"},
    },
    "ETag": {"description": 'W/"<versionId>" of the report.', "schema": {"type": "string"}},
    "Last-Modified": _LAST_MODIFIED,
}
_FORM_BODY = {"oneOf": [ref("QuestionnaireResponse"), ref("OperationOutcome")]}
_REPORT_BODY = {"oneOf": [ref("DiagnosticReport"), ref("OperationOutcome")]}
_PROGRESS_HEADERS = {
    "X-Progress": {
        "description": "queued; the attempts, the last error, the next attempt.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds until the next attempt.",
        "schema": {"type": "string"},
    },
}
_STATUS_HEADER = {
    "Content-Location": {
        "description": "[base]/_submission/{id}: the submission's status.",
        "schema": {"type": "string"},
    },
    **_PROGRESS_HEADERS,
}
_ACCEPTED = fhir_response(
    "With an external FHIR server that cannot take it now (down, slow, 5xx), or with Prefer: "
    "respond-async: the submission is kept in the durable outbox and will be delivered in "
    "order per patient; the OperationOutcome says why, Content-Location where its status is.",
    "OperationOutcome",
    _STATUS_HEADER,
)


def add_submissions(spec: APISpec) -> None:
    """The four submission operations, in the order the document lists them."""
    form = ref("QuestionnaireResponse")
    _add(
        spec,
        "/fhir/QuestionnaireResponse",
        "post",
        "fhir.create",
        {
            "operationId": "fhirSubmitQuestionnaireResponse",
            "summary": "Submit a filled form (FHIR create): assess it and write form and results",
            "description": "Validates the form, finds the patient's earlier forms, assesses "
            "the timeline with the form's criteria and writes, in one FHIR transaction, the "
            "form, the lesion, sum and response Observations, the risk Observations, the "
            "DiagnosticReport and a Provenance naming the form. Answered as a FHIR create, "
            "about the form. Its results: GET /fhir/Provenance?entity=QuestionnaireResponse/{id}"
            "&_include=Provenance:target:DiagnosticReport, or POST "
            "/fhir/QuestionnaireResponse/$submit instead. An identical resubmission writes "
            "nothing (200); an amended form replaces the earlier results and re-assesses later "
            "exams (200).",
            "tags": ["FHIR"],
            "parameters": [*FORMATS, _PREFER_RETURN],
            "requestBody": body(form),
            "responses": {
                "201": _no_body_or(
                    "The form was new: form and results written; the body is the stored form "
                    "(or what Prefer asks for).",
                    _FORM_BODY,
                    _CREATED_HEADERS,
                ),
                "200": _no_body_or(
                    "The form was there already: an identical resubmission (nothing written) "
                    "or an amendment (updated); the body is the stored form (or what Prefer "
                    "asks for).",
                    _FORM_BODY,
                    _CREATED_HEADERS,
                ),
                "202": _ACCEPTED,
                **_BODY_ERRORS,
            },
        },
    )
    _add(
        spec,
        "/fhir/QuestionnaireResponse/$submit",
        "post",
        "fhir.submit_form",
        {
            "operationId": "fhirSubmitQuestionnaireResponseForReport",
            "summary": "Submit a filled form and get its DiagnosticReport back",
            "description": "The same submission as the create (POST /fhir/QuestionnaireResponse),"
            " answered with the exam's DiagnosticReport: Location, ETag and Last-Modified of "
            "the report. For EHRs that relied on the report being the answer of the create.",
            "tags": ["FHIR"],
            "parameters": [*FORMATS, _PREFER_REPORT],
            "requestBody": body(form),
            "responses": {
                "201": _no_body_or(
                    "The form was new: results written; the body is the DiagnosticReport (or "
                    "what Prefer asks for).",
                    _REPORT_BODY,
                    _REPORT_HEADERS,
                ),
                "200": _no_body_or(
                    "The form was there already (the same form again, or an amendment); the "
                    "body is the DiagnosticReport (or what Prefer asks for).",
                    _REPORT_BODY,
                    _REPORT_HEADERS,
                ),
                "202": _ACCEPTED,
                **_BODY_ERRORS,
            },
        },
    )
    _add(
        spec,
        "/fhir/_submission/{id}",
        "get",
        "fhir.submission_status",
        {
            "operationId": "fhirSubmissionStatus",
            "summary": "The status of a submission answered 202 Accepted",
            "description": "FHIR asynchronous pattern: 202 while it is queued (X-Progress, "
            "Retry-After), then 200 with a batch-response Bundle whose single entry is the "
            "answer to the original request: delivered (201/200, the form's versioned "
            "location; the DiagnosticReport's URL in the OperationOutcome) or failed (status "
            "and OperationOutcome, the FHIR server's issues included). Only for the client "
            "that submitted it.",
            "tags": ["FHIR"],
            "parameters": [path_id({"type": "string"}), *FORMATS],
            "responses": {
                "200": fhir_response("The submission is finished.", "ResponseBundle"),
                "202": fhir_response(
                    "Still queued; an OperationOutcome with the attempts made.",
                    "OperationOutcome",
                    _PROGRESS_HEADERS,
                ),
                "404": outcome(
                    "No such submission for this client (or no durable delivery: the "
                    "embedded store)."
                ),
                "406": NOT_ACCEPTABLE,
                "400": outcome("An unknown parameter."),
            },
        },
    )
    _add(
        spec,
        "/fhir",
        "post",
        "fhir.transaction",
        {
            "operationId": "fhirSubmitBundle",
            "summary": "Submit several forms in a transaction or batch Bundle",
            "description": "transaction: every form is validated first, then all results "
            "are written in one FHIR transaction (any problem: 422, nothing written). batch: "
            "each form on its own, failures answered per entry.",
            "tags": ["FHIR"],
            "parameters": [*FORMATS, _PREFER_RETURN],
            "requestBody": body(ref("SubmissionBundle")),
            "responses": {
                "200": fhir_response("One response entry per entry sent.", "ResponseBundle"),
                "202": _ACCEPTED,
                **_BODY_ERRORS,
            },
        },
    )
    _add(
        spec,
        "/fhir/QuestionnaireResponse/$extract",
        "post",
        "fhir.extract_resources",
        {
            "operationId": "fhirExtractQuestionnaireResponse",
            "summary": "The transaction Bundle a submission would write, without writing it",
            "tags": ["FHIR"],
            "parameters": [*FORMATS],
            "requestBody": body({"oneOf": [form, ref("ExtractParameters")]}),
            "responses": {
                "200": fhir_response(
                    "The transaction Bundle (SDC $extract); nothing written.",
                    "TransactionBundle",
                ),
                **{code: r for code, r in _BODY_ERRORS.items() if code != "502"},
            },
        },
    )


def _no_body_or(
    description: str, schema: dict[str, Any], headers: dict[str, Any]
) -> dict[str, Any]:
    """A written answer: ``schema`` in FHIR JSON, or no body at all (``Prefer: return=minimal``,
    which OpenAPI expresses by the content being optional)."""
    return fhir_response(description + " No body with Prefer: return=minimal.", schema, headers)


def _add(spec: APISpec, path: str, method: str, endpoint: str, operation: dict[str, Any]) -> None:
    """Add ``operation`` at ``path``, secured as :mod:`fhirnet.web.auth` secures ``endpoint``."""
    spec.path(path=path, operations={method: secured(operation, endpoint)})
