"""The reads of the FHIR endpoint (:mod:`fhirnet.web.fhir_views`): ``/fhir/metadata``, read and
search of the conformance resources, ``$validate``, and read and search of what the embedded
store holds. Generated from the tables the views use: the conformance types and their search
parameters (:mod:`fhirnet.fhir.capability`), the store's own description of its search
(:func:`fhirnet.adapters.store.search_support`), the ``$validate`` modes."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.adapters.store import SearchSupport, search_support
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.fhir.capability import READABLE_TYPES, RESULT_PARAMETERS, SEARCH_PARAMETERS
from fhirnet.web.fhir_views import VALIDATE_MODES
from fhirnet.web.openapi.components import FHIR_ID_PATTERN, ref
from fhirnet.web.openapi.operations import (
    FORMATS,
    NOT_ACCEPTABLE,
    PREFER,
    STRING,
    WHOLE_NUMBER,
    body,
    fhir_response,
    outcome,
    path_id,
    query,
    search,
    secured,
)

#: The result parameters of a conformance search (:data:`~fhirnet.fhir.capability.
#: RESULT_PARAMETERS`); a new one without a row here fails the document's build.
_CONFORMANCE_RESULTS = {
    "_count": "Page size.",
    "_offset": "Index of the first match to return (next links).",
    "_summary": "true, text, data, count (the total only) or false; subsets are tagged SUBSETTED.",
    "_elements": "Comma-separated top-level elements to return (with id, meta, mandatory ones).",
}


def add_metadata(spec: APISpec) -> None:
    """``GET /fhir/metadata``: the CapabilityStatement."""
    operation = {
        "operationId": "fhirCapabilities",
        "summary": "The CapabilityStatement of the FHIR endpoint",
        "tags": ["FHIR"],
        "parameters": [
            *FORMATS,
            query("mode", "Only 'full' is served.", {"type": "string", "enum": ["full"]}),
            PREFER,
        ],
        "responses": {
            "200": fhir_response("What this server serves.", "CapabilityStatement"),
            "400": outcome("An unsupported parameter or mode."),
            "406": NOT_ACCEPTABLE,
        },
    }
    spec.path(path="/fhir/metadata", operations={"get": secured(operation, "fhir.metadata")})


def add_smart_configuration(spec: APISpec) -> None:
    """``GET /.well-known/smart-configuration`` and its copy at the FHIR base (public)."""
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        operation = {
            "operationId": "smartConfiguration"
            + ("AtFhirBase" if path.startswith("/fhir") else ""),
            "summary": "SMART App Launch 2.x discovery: grant types, scopes, capabilities",
            "tags": ["FHIR"],
            "responses": {
                "200": {
                    "description": "The SMART configuration (JSON).",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
        spec.path(
            path=path, operations={"get": secured(operation, "discovery.smart_configuration")}
        )


def add_conformance_types(spec: APISpec) -> None:
    """Search and read of each of :data:`~fhirnet.fhir.capability.READABLE_TYPES`."""
    for resource_type in READABLE_TYPES:
        search_operation = {
            "operationId": f"fhirSearch{resource_type}",
            "summary": f"Search {resource_type} resources (no parameter: all of them)",
            "tags": ["FHIR"],
            "parameters": [
                *(
                    search(p.name, p.documentation, STRING)
                    for p in SEARCH_PARAMETERS[resource_type]
                ),
                *(
                    search(
                        name,
                        _CONFORMANCE_RESULTS[name],
                        WHOLE_NUMBER if name in ("_count", "_offset") else STRING,
                    )
                    for name in RESULT_PARAMETERS
                ),
                *FORMATS,
                PREFER,
            ],
            "responses": {
                "200": fhir_response("A searchset Bundle of the matches.", "SearchsetBundle"),
                "400": outcome("An unknown search parameter, a modifier, or a bad _count/_offset."),
                "406": NOT_ACCEPTABLE,
            },
        }
        spec.path(
            path=f"/fhir/{resource_type}",
            operations={
                "get": secured(search_operation, "fhir.search", resource_type=resource_type)
            },
        )
        served = (
            " Served with its answer ValueSets contained and pre-expanded."
            if resource_type == "Questionnaire"
            else ""
        )
        read_operation = {
            "operationId": f"fhirRead{resource_type}",
            "summary": f"Read a {resource_type} by id.{served}",
            "tags": ["FHIR"],
            "parameters": [
                path_id({"type": "string", "pattern": FHIR_ID_PATTERN}),
                *FORMATS,
                PREFER,
            ],
            "responses": {
                "200": fhir_response(f"The {resource_type}.", resource_type),
                "400": outcome("An unsupported parameter."),
                "404": outcome(f"No {resource_type} with that id."),
                "406": NOT_ACCEPTABLE,
            },
        }
        spec.path(
            path=f"/fhir/{resource_type}/{{id}}",
            operations={"get": secured(read_operation, "fhir.read", resource_type=resource_type)},
        )


def add_validate(spec: APISpec) -> None:
    """``POST /fhir/QuestionnaireResponse/$validate``."""
    operation = {
        "operationId": "fhirValidateQuestionnaireResponse",
        "summary": "Validate a QuestionnaireResponse against the case-report form",
        "tags": ["FHIR"],
        "parameters": [
            *FORMATS,
            query(
                "mode",
                "create, update and profile all check content only.",
                {"type": "string", "enum": list(VALIDATE_MODES)},
            ),
            PREFER,
        ],
        "requestBody": body({"oneOf": [ref("QuestionnaireResponse"), ref("ValidateParameters")]}),
        "responses": {
            "200": outcome("Valid: no error issues (information or warnings only)."),
            "400": outcome(
                "Not JSON, not a QuestionnaireResponse or Parameters, or an unsupported parameter."
            ),
            "406": NOT_ACCEPTABLE,
            "413": outcome("The body is larger than the configured limit."),
            "415": outcome("The Content-Type is not application/fhir+json or JSON."),
            "422": outcome("Invalid: every problem found, each an error issue."),
        },
    }
    spec.path(
        path="/fhir/QuestionnaireResponse/$validate",
        operations={"post": secured(operation, "fhir.validate")},
    )


_ELSEWHERE = "With an external FHIR server (FHIRNET_FHIR_BASE_URL) these are read there: 404."


def add_stored_types(spec: APISpec) -> None:
    """Read and search of what the embedded store holds; 404 with an external FHIR server."""
    for resource_type in STORED_TYPES:
        spec.path(
            path=f"/fhir/{resource_type}",
            operations={"get": _stored_search(search_support(resource_type))},
        )
        read_operation = {
            "operationId": f"fhirRead{resource_type}",
            "summary": f"Read a {resource_type} fhirnet wrote (embedded store)",
            "description": _ELSEWHERE,
            "tags": ["FHIR"],
            "parameters": [path_id({"type": "string"}), *FORMATS, PREFER],
            "responses": {
                "200": fhir_response(
                    f"The {resource_type}.",
                    resource_type,
                    {"ETag": {"schema": {"type": "string"}}},
                ),
                "400": outcome("An unsupported parameter."),
                "404": outcome(f"No such {resource_type}. " + _ELSEWHERE),
                "406": NOT_ACCEPTABLE,
            },
        }
        spec.path(
            path=f"/fhir/{resource_type}/{{id}}",
            operations={"get": secured(read_operation, "fhir.read", resource_type=resource_type)},
        )
        vread_operation = {
            "operationId": f"fhirVread{resource_type}",
            "summary": f"Read one version of a {resource_type} fhirnet wrote (embedded store)",
            "description": "What the Location of a submission points at. " + _ELSEWHERE,
            "tags": ["FHIR"],
            "parameters": [
                path_id({"type": "string"}),
                {"name": "vid", "in": "path", "required": True, "schema": {"type": "string"}},
                *FORMATS,
                PREFER,
            ],
            "responses": {
                "200": fhir_response(
                    f"That version of the {resource_type}.",
                    resource_type,
                    {"ETag": {"schema": {"type": "string"}}},
                ),
                "400": outcome("An unsupported parameter."),
                "404": outcome(f"No such {resource_type} or version. " + _ELSEWHERE),
                "406": NOT_ACCEPTABLE,
            },
        }
        spec.path(
            path=f"/fhir/{resource_type}/{{id}}/_history/{{vid}}",
            operations={"get": secured(vread_operation, "fhir.vread", resource_type=resource_type)},
        )


def _stored_search(support: SearchSupport) -> dict[str, Any]:
    """The search of one stored type: every parameter and result parameter the store takes."""
    resource_type = support.resource_type
    operation = {
        "operationId": f"fhirSearch{resource_type}",
        "summary": f"Search the {resource_type} resources fhirnet wrote (embedded store)",
        "description": _ELSEWHERE,
        "tags": ["FHIR"],
        "parameters": [
            *(search(p.name, "FHIR R4 search parameter.", STRING) for p in support.parameters),
            *(
                search(p.name, p.documentation, WHOLE_NUMBER if p.type == "number" else STRING)
                for p in support.result_parameters
            ),
            *FORMATS,
            PREFER,
        ],
        "responses": {
            "200": fhir_response(
                "A searchset Bundle of one page, with a next link.", "SearchsetBundle"
            ),
            "400": outcome("An unsupported parameter, modifier or value."),
            "404": outcome(_ELSEWHERE),
            "406": NOT_ACCEPTABLE,
        },
    }
    return secured(operation, "fhir.search", resource_type=resource_type)
