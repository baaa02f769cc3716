"""The OpenAPI document of the JSON API, generated from the marshmallow schemas that validate it."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from fhirnet import __version__
from fhirnet.web.schemas import AssessmentRequestSchema, AssessmentSchema, ErrorsSchema

OPENAPI_VERSION = "3.1.0"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": "Errors"}},
    }


def build_openapi_document() -> dict[str, Any]:
    """Describe ``POST /api/v1/assessments``: request, 200 response and 413/415/422 errors.

    :returns: the OpenAPI document as plain JSON-ready data.
    """
    spec = APISpec(
        title="fhirnet assessment API",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Tumour response categories (RECIST 1.1, iRECIST, Choi, PERCIST 1.0) "
            "from lesion measurements over time.",
        },
    )
    spec.components.schema("AssessmentRequest", schema=AssessmentRequestSchema)
    spec.components.schema("Assessment", schema=AssessmentSchema)
    spec.components.schema("Errors", schema=ErrorsSchema)
    spec.path(
        path="/api/v1/assessments",
        operations={
            "post": {
                "operationId": "createAssessment",
                "summary": "Assess timepoints under one response criteria",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "AssessmentRequest"}},
                },
                "responses": {
                    "200": {
                        "description": "The assessment of every follow-up timepoint.",
                        "content": {"application/json": {"schema": "Assessment"}},
                    },
                    "413": _error("The body is larger than the configured limit."),
                    "415": _error("The Content-Type is not application/json."),
                    "422": _error(
                        "Malformed JSON, a structural problem or a violated criteria rule; "
                        "every offending field is named."
                    ),
                },
            }
        },
    )
    return spec.to_dict()
