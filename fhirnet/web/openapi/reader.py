"""The reader's workstation API in the OpenAPI document: the live assessment of a form being
typed and a patient's timeline (:mod:`fhirnet.web.reader_views`), described from the marshmallow
schemas that answer them, with the scopes :mod:`fhirnet.web.auth` enforces (both need read on
what they disclose besides their own scope: all are listed)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.web import auth
from fhirnet.web.fhir_http import BODY_MEDIA_TYPES
from fhirnet.web.openapi.operations import BEARER, secured
from fhirnet.web.reader_schemas import (
    MAX_STREAM_LENGTH,
    LiveAssessmentSchema,
    PatientTimelineSchema,
)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": "Errors"}}}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(endpoint: str, operation: dict[str, Any]) -> dict[str, Any]:
    found = secured(operation, endpoint, _error)
    also = auth.ALSO_NEEDED.get(endpoint, ())
    if found["security"] and also:
        scopes = found["security"][0][BEARER] + [str(p) for p in also]
        found["security"] = [{BEARER: scopes}]
    return found


_STORE_ERRORS = {
    "502": _error("The FHIR server refused a read or the audit record; nothing is disclosed."),
    "503": _error("The FHIR server is unavailable; retry."),
}
#: What the body must be, as far as the view checks it itself (the rest is the dry run's answer).
_FORM = {
    "type": "object",
    "required": ["resourceType", "questionnaire"],
    "properties": {
        "resourceType": {"const": "QuestionnaireResponse"},
        "questionnaire": {
            "type": "string",
            "description": f"{QUESTIONNAIRE_URL}, with or without |version.",
        },
    },
    "additionalProperties": True,
}


def add_reader(spec: APISpec) -> None:
    """The live assessment and the timeline."""
    spec.components.schema("LiveAssessment", schema=LiveAssessmentSchema)
    spec.components.schema("PatientTimeline", schema=PatientTimelineSchema)
    assess = {
        "operationId": "assessForm",
        "summary": "What fhirnet would compute for a form being typed: a dry run of its "
        "submission, nothing written (audited as $extract is)",
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": _FORM} for media_type in BODY_MEDIA_TYPES},
        },
        "responses": {
            "200": _json(
                "LiveAssessment",
                "The figures and categories, or (assessable false) what is still missing and "
                "what a submission would be refused for.",
            ),
            "413": _error("The body is larger than the configured limit."),
            "415": _error("The Content-Type is not JSON (application/json or fhir+json)."),
            "422": _error(
                "Not JSON, over the JSON limits, or not a QuestionnaireResponse of the imaging "
                "CRF; every offending field is named."
            ),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path="/api/v1/forms/assessment", operations={"post": _operation("reader.assess", assess)}
    )
    timeline = {
        "operationId": "patientTimeline",
        "summary": "A patient's exams of one read stream with the chart's baseline, nadir and "
        "PR/PD lines, and links to the FHIR resources (audited as a read)",
        "parameters": [
            {
                "name": "patientId",
                "in": "path",
                "required": True,
                "description": "The Patient's id.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
            },
            {
                "name": "stream",
                "in": "query",
                "required": False,
                "description": "site (the default), or a central reader: Practitioner/<id> or "
                "the study's label for them.",
                "schema": {"type": "string", "maxLength": MAX_STREAM_LENGTH},
            },
        ],
        "responses": {
            "200": _json("PatientTimeline", "The timeline (no exams for an unknown patient)."),
            "422": _error("Not a valid Patient id, or a stream too long."),
            **_STORE_ERRORS,
        },
    }
    spec.path(
        path="/api/v1/patients/{patientId}/timeline",
        operations={"get": _operation("reader.timeline", timeline)},
    )
