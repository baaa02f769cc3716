"""The operations outside the FHIR endpoint: ``POST /api/v1/assessments``, described from the
marshmallow schemas that validate it, and the public service endpoints ``/health``,
``/api/v1/openapi.json`` and the ``/crf`` page."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.web.openapi.components import const
from fhirnet.web.openapi.operations import secured
from fhirnet.web.schemas import AssessmentRequestSchema, AssessmentSchema, ErrorsSchema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": "Errors"}},
    }


def add_assessments(spec: APISpec) -> None:
    """``POST /api/v1/assessments``: request, 200 response, 413/415/422 errors."""
    spec.components.schema("AssessmentRequest", schema=AssessmentRequestSchema)
    spec.components.schema("Assessment", schema=AssessmentSchema)
    spec.components.schema("Errors", schema=ErrorsSchema)
    operation = {
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
    spec.path(
        path="/api/v1/assessments",
        operations={"post": secured(operation, "api.create_assessment", _error)},
    )


def add_service_endpoints(spec: APISpec) -> None:
    """``/health``, this document and the ``/crf`` page: public, outside the APIs proper."""
    health = {
        "operationId": "health",
        "summary": "Liveness probe: answers as soon as the app can serve requests",
        "responses": {
            "503": {
                "description": "Durable delivery's outbox cannot be used: nothing can be accepted.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "200": {
                "description": "Up.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "version"],
                            "properties": {
                                "status": const("ok"),
                                "version": {"type": "string"},
                                "outbox": {
                                    "description": "With durable delivery: how many "
                                    "submissions are in each state.",
                                    "type": "object",
                                    "required": ["queued", "delivered", "failed"],
                                    "properties": {
                                        state: {"type": "integer", "minimum": 0}
                                        for state in ("queued", "delivered", "failed")
                                    },
                                },
                            },
                        }
                    }
                },
            },
        },
    }
    spec.path(path="/health", operations={"get": secured(health, "health")})
    document = {
        "operationId": "openapiDocument",
        "summary": "This OpenAPI document",
        "responses": {
            "200": {
                "description": "The OpenAPI 3.1 description of every endpoint.",
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "required": ["openapi", "info", "paths"]}
                    }
                },
            }
        },
    }
    spec.path(
        path="/api/v1/openapi.json",
        operations={"get": secured(document, "api.openapi_document")},
    )
    html = {"text/html": {"schema": {"type": "string"}}}
    page = {
        "operationId": "crfPage",
        "summary": "The case-report form in the browser (LHC-Forms), with a Validate button "
        "(docs/crf-page.md)",
        "responses": {
            "200": {"description": "The page.", "content": html},
            "503": {
                "description": "LHC-Forms is not installed on this server "
                "(tools/browser/install.sh); the page says how to install it.",
                "content": html,
            },
        },
    }
    spec.path(path="/crf", operations={"get": secured(page, "crf.crf_page")})
