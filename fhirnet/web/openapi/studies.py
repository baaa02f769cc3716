"""The study API in the OpenAPI document: ``/api/v1/studies/{studyId}`` and its
``subjects/{subjectId}`` (``docs/trials.md`` "Studies and enrolment"), described from the
marshmallow schemas that validate and answer them, with the scopes :mod:`fhirnet.web.auth`
enforces (a PUT needs ``c`` and ``u``: both are listed)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.fhir.studies import ID_PATTERN
from fhirnet.web import auth
from fhirnet.web.openapi.operations import BEARER, secured
from fhirnet.web.study_endpoint_schemas import (
    AdjudicationAnswerSchema,
    AdjudicationRequestSchema,
    StudyEndpointsAnswerSchema,
)
from fhirnet.web.study_schemas import (
    StudyAnswerSchema,
    StudyRequestSchema,
    SubjectAnswerSchema,
    SubjectRequestSchema,
)
from fhirnet.web.study_views import PLOT_NAMES

#: A request of ``PUT /api/v1/studies/{studyId}``.
STUDY_EXAMPLE: dict[str, Any] = {
    "title": "Lutetium versus octreotide in midgut NET",
    "criteria": "recist-1.1",
    "options": {"confirmationRequired": True, "confirmationMinDays": 28, "sdMinDays": 42},
    "arms": [{"code": "A", "name": "177Lu-DOTATATE"}, {"code": "B", "name": "Octreotide LAR"}],
    "sites": [{"id": "001", "name": "Uppsala University Hospital"}],
    "readers": [
        {"reference": "Practitioner/reader-1", "role": "central", "label": "RADIOLOGIST 1"},
        {"reference": "Practitioner/reader-2", "role": "central", "label": "RADIOLOGIST 2"},
    ],
    "schedule": [
        {"visit": "WEEK 8", "day": 57, "windowDays": 7},
        {"visit": "WEEK 16", "day": 113, "windowDays": 7},
    ],
}
#: A request of ``PUT /api/v1/studies/{studyId}/subjects/{subjectId}``.
SUBJECT_EXAMPLE: dict[str, Any] = {
    "patient": "Patient/small-bowel-net-prrt",
    "site": "001",
    "arm": "A",
    "referenceDate": "2025-01-14",
    "status": "on-study",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": "Errors"}}}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _id_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
    }


_STUDY_ID = _id_parameter("studyId", "The study's id (its ResearchStudy.identifier value).")
_SUBJECT_ID = _id_parameter("subjectId", "The trial's subject number (never a hospital id).")
_STORE_ERRORS = {
    "502": _error("The FHIR server refused the write; nothing was written."),
    "503": _error("The FHIR server is unavailable, or the study is busy; retry."),
}
_BODY_ERRORS = {
    "413": _error("The body is larger than the configured limit."),
    "415": _error("The Content-Type is not application/json."),
}


def _operation(endpoint: str, operation: dict[str, Any]) -> dict[str, Any]:
    found = secured(operation, endpoint, _error)
    also = auth.ALSO_NEEDED.get(endpoint, ())
    if found["security"] and also:
        scopes = found["security"][0][BEARER] + [str(p) for p in also]
        found["security"] = [{BEARER: scopes}]
    return found


def add_studies(spec: APISpec) -> None:
    """The operations of the study API: studies, subjects, endpoints, adjudication."""
    spec.components.schema("StudyRequest", schema=StudyRequestSchema)
    spec.components.schema("Study", schema=StudyAnswerSchema)
    spec.components.schema("SubjectRequest", schema=SubjectRequestSchema)
    spec.components.schema("Subject", schema=SubjectAnswerSchema)
    study_path = "/api/v1/studies/{studyId}"
    put_study = {
        "operationId": "putStudy",
        "summary": "Define or update a study (a ResearchStudy with its enrolment Group)",
        "parameters": [_STUDY_ID],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": "StudyRequest",
                    "examples": {"twoArms": {"value": STUDY_EXAMPLE}},
                }
            },
        },
        "responses": {
            "201": _json("Study", "Created."),
            "200": _json("Study", "Updated, or already stored as sent (nothing written)."),
            "409": _error("An arm or site that enrolled subjects use is left out."),
            "422": _error("A structural problem; every offending field is named."),
            **_BODY_ERRORS,
            **_STORE_ERRORS,
        },
    }
    get_study = {
        "operationId": "getStudy",
        "summary": "A study's definition",
        "parameters": [_STUDY_ID],
        "responses": {
            "200": _json("Study", "The study."),
            "404": _error("No such study."),
            "422": _error("Not a valid study id."),
            **_STORE_ERRORS,
        },
    }
    delete_study = {
        "operationId": "deleteStudy",
        "summary": "Delete a study without subjects, with its enrolment Group",
        "parameters": [_STUDY_ID],
        "responses": {
            "204": {"description": "Deleted."},
            "404": _error("No such study."),
            "409": _error("The study has subjects (withdrawn ones included)."),
            "422": _error("Not a valid study id."),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path=study_path,
        operations={
            "put": _operation("studies.put_study_view", put_study),
            "get": _operation("studies.get_study_view", get_study),
            "delete": _operation("studies.delete_study_view", delete_study),
        },
    )
    put_subject = {
        "operationId": "putSubject",
        "summary": "Enrol a subject (a ResearchSubject, and its patient in the enrolment Group)",
        "parameters": [_STUDY_ID, _SUBJECT_ID],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": "SubjectRequest",
                    "examples": {"onStudy": {"value": SUBJECT_EXAMPLE}},
                }
            },
        },
        "responses": {
            "201": _json("Subject", "Enrolled."),
            "200": _json("Subject", "Updated, or already stored as sent."),
            "404": _error("No such study."),
            "409": _error(
                "The subject number is another patient's, or the patient is enrolled in the "
                "study under another number."
            ),
            "422": _error(
                "A structural problem, an arm or site not in the study, a reference date after "
                "a stored follow-up form of the patient; every offending field is named."
            ),
            **_BODY_ERRORS,
            **_STORE_ERRORS,
        },
    }
    get_subject = {
        "operationId": "getSubject",
        "summary": "A subject's enrolment (audited: it names the patient)",
        "parameters": [_STUDY_ID, _SUBJECT_ID],
        "responses": {
            "200": _json("Subject", "The subject."),
            "404": _error("No such study or subject."),
            "422": _error("Not a valid study or subject id."),
            **_STORE_ERRORS,
        },
    }
    withdraw = {
        "operationId": "withdrawSubject",
        "summary": "Withdraw a subject: status withdrawn, period.end the withdrawal date; "
        "everything recorded is kept",
        "parameters": [
            _STUDY_ID,
            _SUBJECT_ID,
            {
                "name": "date",
                "in": "query",
                "required": False,
                "description": "The withdrawal date (YYYY-MM-DD); default today (UTC).",
                "schema": {"type": "string", "format": "date"},
            },
        ],
        "responses": {
            "200": _json("Subject", "Withdrawn."),
            "404": _error("No such study or subject."),
            "422": _error("Not a valid date, or before the subject's reference date."),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path=study_path + "/subjects/{subjectId}",
        operations={
            "put": _operation("studies.put_subject_view", put_subject),
            "get": _operation("studies.get_subject_view", get_subject),
            "delete": _operation("studies.withdraw_view", withdraw),
        },
    )
    add_study_endpoints(spec)
    add_sdtm(spec)
    add_study_plots(spec)


#: A request of ``PUT .../adjudication``.
ADJUDICATION_EXAMPLE: dict[str, Any] = {"accept": "RADIOLOGIST 2", "by": "Practitioner/adj-1"}


def add_study_endpoints(spec: APISpec) -> None:
    """``GET /api/v1/studies/{studyId}/endpoints`` and ``PUT .../adjudication``."""
    spec.components.schema("StudyEndpoints", schema=StudyEndpointsAnswerSchema)
    spec.components.schema("AdjudicationRequest", schema=AdjudicationRequestSchema)
    spec.components.schema("AdjudicationAnswer", schema=AdjudicationAnswerSchema)
    endpoints = {
        "operationId": "getStudyEndpoints",
        "summary": "A study's trial endpoints per subject and evaluator (investigator, each "
        "central reader, central) and ORR/DCR per arm and evaluator, derived from the subjects' "
        "stored DiagnosticReports (audited; derived numbers only, no resource)",
        "parameters": [_STUDY_ID],
        "responses": {
            "200": _json("StudyEndpoints", "The endpoints."),
            "404": _error("No such study."),
            "409": _error("A stored report contradicts the study (named by subject)."),
            "422": _error("Not a valid study id."),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path="/api/v1/studies/{studyId}/endpoints",
        operations={"get": _operation("studies.study_endpoints_view", endpoints)},
    )
    adjudication = {
        "operationId": "putAdjudication",
        "summary": "Record which central reader's read counts for a subject whose central "
        "readers disagree (kept on the ResearchSubject; audited)",
        "parameters": [_STUDY_ID, _SUBJECT_ID],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": "AdjudicationRequest",
                    "examples": {"acceptReader2": {"value": ADJUDICATION_EXAMPLE}},
                }
            },
        },
        "responses": {
            "200": _json("AdjudicationAnswer", "Recorded, or already recorded as sent."),
            "404": _error("No such study or subject."),
            "409": _error("A stored report or the stored subject cannot be read."),
            "422": _error(
                "A structural problem; the label is not a central reader of the study or has "
                "not read the subject; the subject needs no adjudication; ``by`` is not an "
                "adjudicator of the study."
            ),
            **_BODY_ERRORS,
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path="/api/v1/studies/{studyId}/subjects/{subjectId}/adjudication",
        operations={"put": _operation("studies.adjudication_view", adjudication)},
    )


def add_sdtm(spec: APISpec) -> None:
    """``GET /api/v1/studies/{studyId}/sdtm/{domain}``: one SDTM domain of the study."""
    sdtm = {
        "operationId": "getStudySdtm",
        "summary": "One CDISC SDTM domain of the study (TU, TR, RS or DM) from its subjects' "
        "stored forms and reports, as Dataset-JSON v1.1, SAS XPORT v5 or CSV (audited per "
        "subject; subject numbers only, no hospital identifiers; pseudonymized — dates "
        "shifted per subject or given as study days only — when the study has a regime in "
        "FHIRNET_STUDY_SECRETS_FILE)",
        "parameters": [
            _STUDY_ID,
            {
                "name": "domain",
                "in": "path",
                "required": True,
                "description": "The SDTM domain.",
                "schema": {"type": "string", "enum": ["TU", "TR", "RS", "DM"]},
            },
            {
                "name": "format",
                "in": "query",
                "required": False,
                "description": "json (Dataset-JSON v1.1, the default), xpt (SAS XPORT v5) or csv.",
                "schema": {"type": "string", "enum": ["json", "xpt", "csv"], "default": "json"},
            },
        ],
        "responses": {
            "200": {
                "description": "The dataset.",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/x-sas-xport": {"schema": {"type": "string", "format": "binary"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "404": _error("No such study."),
            "409": _error("A stored report contradicts the study (named by subject)."),
            "422": _error("Not a valid study id, domain or format."),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path="/api/v1/studies/{studyId}/sdtm/{domain}",
        operations={"get": _operation("studies.sdtm_view", sdtm)},
    )


def add_study_plots(spec: APISpec) -> None:
    """``GET /api/v1/studies/{studyId}/plots/{plot}``: waterfall, spider and swimmer plots as
    SVG or PNG, and the data behind each as JSON (``docs/trials.md`` "Plots")."""
    plot = {
        "operationId": "getStudyPlot",
        "summary": "A study's waterfall, spider or swimmer plot for one evaluator (and arm), "
        "drawn server-side as SVG or PNG, or the data behind it as JSON (audited; derived "
        "numbers only, no resource)",
        "parameters": [
            _STUDY_ID,
            {
                "name": "plot",
                "in": "path",
                "required": True,
                "description": "The plot and its format.",
                "schema": {"type": "string", "enum": list(PLOT_NAMES)},
            },
            {
                "name": "arm",
                "in": "query",
                "required": False,
                "description": "Only the subjects of this arm (its code); default: every arm.",
                "schema": {"type": "string"},
            },
            {
                "name": "evaluator",
                "in": "query",
                "required": False,
                "description": "INVESTIGATOR (default), CENTRAL, or a central reader's label.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "The plot (``.svg``, ``.png``) or its data (``.json``): bars, "
                "lines or lanes, the caption, the subjects not drawn.",
                "content": {
                    "image/svg+xml": {"schema": {"type": "string"}},
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "404": _error("No such study, or no such plot."),
            "409": _error("A stored report contradicts the study (named by subject)."),
            "422": _error("Not a valid study id; not an arm or evaluator of the study."),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path="/api/v1/studies/{studyId}/plots/{plot}",
        operations={"get": _operation("studies.study_plot_view", plot)},
    )
