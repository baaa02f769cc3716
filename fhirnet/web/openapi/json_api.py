"""The operations outside the FHIR endpoint: ``POST /api/v1/assessments``, described from the
marshmallow schemas that validate it, and the public service endpoints ``/health``,
``/api/v1/openapi.json`` and the ``/crf`` page."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.web.assessment_schemas import AssessmentRequestSchema, AssessmentSchema
from fhirnet.web.endpoint_schemas import SubjectEndpointsSchema, SubjectRequestSchema
from fhirnet.web.openapi.components import const
from fhirnet.web.openapi.operations import secured
from fhirnet.web.schema_fields import ErrorsSchema


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


#: A request of ``POST /api/v1/endpoints`` (docs/trials.md): confirmed PR, later progression.
ENDPOINTS_EXAMPLE: dict[str, Any] = {
    "criteria": "recist-1.1",
    "referenceDate": "2025-01-15",
    "options": {"confirmationRequired": True, "confirmationMinDays": 28, "sdMinDays": 42},
    "schedule": [
        {"visit": "WEEK 8", "day": 57, "windowDays": 7},
        {"visit": "WEEK 16", "day": 113, "windowDays": 7},
        {"visit": "WEEK 24", "day": 169, "windowDays": 7},
    ],
    "visits": [
        {"date": "2025-01-10", "overallResponse": None},
        {"date": "2025-03-12", "overallResponse": "PR"},
        {"date": "2025-05-07", "overallResponse": "PR"},
        {"date": "2025-07-02", "overallResponse": "PD"},
    ],
}


def add_endpoints(spec: APISpec) -> None:
    """``POST /api/v1/endpoints``: one subject's trial endpoints (docs/trials.md)."""
    spec.components.schema("EndpointsRequest", schema=SubjectRequestSchema)
    spec.components.schema("SubjectEndpoints", schema=SubjectEndpointsSchema)
    operation = {
        "operationId": "createEndpoints",
        "summary": "Derive one subject's trial endpoints from its per-visit overall responses",
        "description": "Study days and protocol visits, best overall response (unconfirmed and "
        "confirmed), first response, duration of response, progression, PFS and clinical "
        "benefit, each explained in reasons. Definitions: docs/trials.md.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": "EndpointsRequest",
                    "examples": {"confirmedPartialResponse": {"value": ENDPOINTS_EXAMPLE}},
                }
            },
        },
        "responses": {
            "200": {
                "description": "The subject's endpoints.",
                "content": {"application/json": {"schema": "SubjectEndpoints"}},
            },
            "413": _error("The body is larger than the configured limit."),
            "415": _error("The Content-Type is not application/json."),
            "422": _error(
                "Malformed JSON, a structural problem, an overall response code the criteria "
                "does not use, a duplicate date or an option out of range; every offending "
                "field is named."
            ),
        },
    }
    spec.path(
        path="/api/v1/endpoints",
        operations={"post": secured(operation, "api.create_endpoints", _error)},
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
    timeline = {
        "operationId": "crfTimelinePage",
        "summary": "A patient's timeline in the browser: the page and its script; the data comes "
        "from GET /api/v1/patients/{patientId}/timeline with the reader's token",
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": {"type": "string"},
            }
            for name, description in (
                ("patient", "The patient's id (the page asks when it is missing)."),
                ("stream", "The read stream: site (default), a reader reference or label."),
            )
        ],
        "responses": {"200": {"description": "The page.", "content": html}},
    }
    spec.path(path="/crf/timeline", operations={"get": secured(timeline, "crf.timeline_page")})
    nullable = {"type": ["string", "null"]}
    config = {
        "operationId": "crfConfig",
        "summary": "How the /crf page signs readers in: the authorization server, the page's "
        "public client id and scopes, the FHIR base (no secret: the page uses PKCE)",
        "responses": {
            "200": {
                "description": "The sign-in settings.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["auth", "fhir_base"],
                            "properties": {
                                "auth": {"enum": ["none", "smart"]},
                                "authorize_url": nullable,
                                "token_url": nullable,
                                "client_id": nullable,
                                "scope": {"type": "string"},
                                "fhir_base": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
    }
    spec.path(path="/crf/config.json", operations={"get": secured(config, "crf.crf_config")})
