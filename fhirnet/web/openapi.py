"""The OpenAPI document of the service: the JSON API, generated from the marshmallow schemas that
validate it, the FHIR endpoint, described from the tables that drive its views
(:mod:`fhirnet.fhir.capability`), the health probe, this document and the ``/crf`` page; with the
bearer token and SMART scope each operation needs (:mod:`fhirnet.web.auth`).

``tests/web/test_schemathesis.py`` runs schemathesis on every operation of it, so the document
is held to what the service answers: documented statuses, media types and bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from fhirnet import __version__
from fhirnet.access import Permission
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.fhir.capability import READABLE_TYPES, SEARCH_PARAMETERS
from fhirnet.store import CURSOR
from fhirnet.store.parameters import COMMON, parameters_of
from fhirnet.store.search import MAX_COUNT
from fhirnet.web.schemas import AssessmentRequestSchema, AssessmentSchema, ErrorsSchema

OPENAPI_VERSION = "3.1.0"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": "Errors"}},
    }


def build_openapi_document() -> dict[str, Any]:
    """Describe ``POST /api/v1/assessments`` (request, 200 response and 413/415/422 errors) and
    the FHIR endpoint under ``/fhir`` (every path, its parameters, bodies and responses).

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
    spec.components.security_scheme(BEARER, _BEARER_SCHEME)
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
                    **_auth_errors(_error),
                },
                # Any valid token: the calculator reads and writes no FHIR data.
                "security": [{BEARER: []}],
            }
        },
    )
    _add_service_endpoints(spec)
    _add_fhir_endpoint(spec)
    return spec.to_dict()


BEARER = "bearer"
_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A static API key (FHIRNET_API_KEYS) or a JWT verified against the configured "
    "JWKS, carrying SMART v2 system scopes (system/<Type>.<cruds>); an operation's security "
    "requirement lists the scope it needs (docs/auth.md). Not needed with FHIRNET_AUTH=none.",
}
_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "Bearer challenge (RFC 6750 §3), with error and scope when known.",
        "schema": {"type": "string"},
    }
}


def _auth_errors(render: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The 401 and 403 answers of an operation that needs a token, rendered by ``render``."""
    return {
        "401": {
            **render("No bearer token, or one that is invalid, expired or for another audience."),
            "headers": _CHALLENGE,
        },
        "403": {
            **render("The token lacks the SMART scope the operation needs."),
            "headers": _CHALLENGE,
        },
    }


def _scoped(scope: str) -> list[dict[str, list[str]]]:
    """The security requirement of an operation that needs the SMART v2 ``scope``."""
    return [{BEARER: [scope]}]


#: The security requirement of a public operation: no token needed.
PUBLIC: list[dict[str, list[str]]] = []


def _add_service_endpoints(spec: APISpec) -> None:
    """``/health``, this document and the ``/crf`` page: public, outside the APIs proper."""
    spec.path(
        path="/health",
        operations={
            "get": {
                "operationId": "health",
                "summary": "Liveness probe: answers as soon as the app can serve requests",
                "responses": {
                    "503": {
                        "description": "Durable delivery's outbox cannot be used: nothing can "
                        "be accepted.",
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
                                        "status": _const("ok"),
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
                "security": PUBLIC,
            }
        },
    )
    spec.path(
        path="/api/v1/openapi.json",
        operations={
            "get": {
                "operationId": "openapiDocument",
                "summary": "This OpenAPI document",
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 description of every endpoint.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["openapi", "info", "paths"],
                                }
                            }
                        },
                    }
                },
                "security": PUBLIC,
            }
        },
    )
    html = {"text/html": {"schema": {"type": "string"}}}
    spec.path(
        path="/crf",
        operations={
            "get": {
                "operationId": "crfPage",
                "summary": "The case-report form in the browser (LHC-Forms), with a Validate "
                "button (docs/crf-page.md)",
                "responses": {
                    "200": {"description": "The page.", "content": html},
                    "503": {
                        "description": "LHC-Forms is not installed on this server "
                        "(tools/browser/install.sh); the page says how to install it.",
                        "content": html,
                    },
                },
                "security": PUBLIC,
            }
        },
    )


FHIR_JSON = "application/fhir+json"
#: Logical ids of FHIR R4 (``id`` datatype).
FHIR_ID_PATTERN = "^[A-Za-z0-9\\-.]{1,64}$"


def _fhir_content(schema: str | dict[str, Any]) -> dict[str, Any]:
    return {FHIR_JSON: {"schema": schema}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {FHIR_JSON: {"schema": schema}, "application/json": {"schema": schema}},
    }


def _fhir_response(
    description: str, schema: str | dict[str, Any], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers is not None:
        response["headers"] = headers
    response["content"] = _fhir_content(schema)
    return response


def _outcome(description: str) -> dict[str, Any]:
    return _fhir_response(description, "OperationOutcome")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _const(value: str) -> dict[str, Any]:
    return {"type": "string", "const": value}


def _array_of(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """An array of objects with these ``required`` and ``properties``."""
    items = {"type": "object", "required": required, "properties": properties}
    return {"type": "array", "items": items}


def _resource_schema(resource_type: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"A FHIR R4 {resource_type} (only the elements the service relies on are "
        "listed; every other element of the resource may appear).",
        "required": ["resourceType", *required],
        "properties": {
            "resourceType": _const(resource_type),
            "id": {"type": "string", "pattern": FHIR_ID_PATTERN},
        },
    }


def _listed_resource(
    resource_type: str,
    required: tuple[str, ...],
    properties: dict[str, Any],
    description: str | None = None,
) -> dict[str, Any]:
    """A resource schema whose properties are ``resourceType`` and these (no ``id``)."""
    schema = _resource_schema(resource_type, required)
    if description is not None:
        schema["description"] = description
    schema["properties"] = {"resourceType": _const(resource_type), **properties}
    return schema


def _fhir_components(spec: APISpec) -> None:
    spec.components.schema(
        "OperationOutcome",
        component=_listed_resource(
            "OperationOutcome",
            ("issue",),
            {
                "issue": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["severity", "code"],
                        "properties": {
                            "severity": {
                                "type": "string",
                                "enum": ["fatal", "error", "warning", "information"],
                            },
                            "code": {"type": "string"},
                            "diagnostics": {"type": "string"},
                            "details": {"type": "object"},
                            "expression": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        ),
    )
    for resource_type in READABLE_TYPES:
        schema = _resource_schema(resource_type, ("id", "url"))
        schema["properties"] |= {"url": {"type": "string"}, "version": {"type": "string"}}
        spec.components.schema(resource_type, component=schema)
    spec.components.schema(
        "CapabilityStatement",
        component=_resource_schema("CapabilityStatement", ("status", "kind", "fhirVersion")),
    )
    match_modes = {"mode": {"type": "string", "enum": ["match", "include"]}}
    spec.components.schema(
        "SearchsetBundle",
        component=_listed_resource(
            "Bundle",
            ("type", "total"),
            {
                "type": _const("searchset"),
                "total": {"type": "integer", "minimum": 0},
                "link": _array_of(
                    ["relation", "url"],
                    {"relation": {"type": "string"}, "url": {"type": "string"}},
                ),
                "entry": _array_of(
                    ["fullUrl", "resource", "search"],
                    {
                        "fullUrl": {"type": "string"},
                        "resource": {"type": "object", "required": ["resourceType", "id"]},
                        "search": {"type": "object", "properties": match_modes},
                    },
                ),
            },
        ),
    )
    spec.components.schema(
        "QuestionnaireResponse", component=_resource_schema("QuestionnaireResponse")
    )
    for resource_type in STORED_TYPES:
        if resource_type != "QuestionnaireResponse":
            spec.components.schema(resource_type, component=_resource_schema(resource_type))
    request = {
        "type": "object",
        "required": ["method", "url"],
        "properties": {"method": _const("POST"), "url": _const("QuestionnaireResponse")},
    }
    transaction = _listed_resource(
        "Bundle",
        ("type",),
        {
            "type": _const("transaction"),
            "entry": _array_of(
                ["resource", "request"],
                {
                    "fullUrl": {"type": "string"},
                    "resource": _ref("QuestionnaireResponse"),
                    "request": request,
                },
            ),
        },
        "A transaction: every entry must POST a QuestionnaireResponse, or nothing is done (400).",
    )
    batch = _listed_resource(
        "Bundle",
        ("type",),
        {
            "type": _const("batch"),
            "entry": {
                "type": "array",
                # FHIR batch semantics (R4 http.html#brules): each entry succeeds or fails on
                # its own, so an entry that is not a POST of a QuestionnaireResponse does not
                # make the request invalid: it is answered with its own 400 in the response.
                "items": {
                    "description": "Should POST a QuestionnaireResponse, as a transaction's "
                    "entries must; any other entry is answered with its own 400 response.",
                },
            },
        },
        "A batch: each entry on its own; failures are answered per entry.",
    )
    spec.components.schema(
        "SubmissionBundle",
        component={
            "description": "A transaction or batch Bundle of forms: each entry a "
            "QuestionnaireResponse POST.",
            "oneOf": [transaction, batch],
        },
    )
    response = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string"},
            "location": {"type": "string"},
            "etag": {"type": "string"},
            "lastModified": {"type": "string"},
            "outcome": _ref("OperationOutcome"),
        },
    }
    spec.components.schema(
        "ResponseBundle",
        component=_listed_resource(
            "Bundle",
            ("type",),
            {
                "type": {"type": "string", "enum": ["transaction-response", "batch-response"]},
                "entry": _array_of(
                    ["response"], {"resource": _ref("DiagnosticReport"), "response": response}
                ),
            },
            "The answer to a submission Bundle: one entry per entry sent, in order. "
            "response.status is '201 Created' or '200 OK' with response.location = the "
            "DiagnosticReport, or (batch) the error status with response.outcome.",
        ),
    )
    spec.components.schema(
        "TransactionBundle",
        component=_listed_resource(
            "Bundle",
            ("type", "entry"),
            {
                "type": _const("transaction"),
                "entry": {"type": "array", "items": {"type": "object"}},
            },
            "The transaction a form gives: the form, its BodyStructures, Observations, "
            "DiagnosticReport and Provenance, and the re-assessed later exams; each entry a "
            "conditional update (PUT Type?identifier=...) or PUT Type/id.",
        ),
    )
    spec.components.schema(
        "ExtractParameters",
        component=_listed_resource(
            "Parameters",
            ("parameter",),
            {
                "parameter": _array_of(
                    ["name", "resource"],
                    {
                        "name": _const("questionnaire-response"),
                        "resource": _ref("QuestionnaireResponse"),
                    },
                ),
            },
            "The $extract in-parameter 'questionnaire-response' (the form).",
        ),
    )
    spec.components.schema(
        "ValidateParameters",
        component=_listed_resource(
            "Parameters",
            ("parameter",),
            {
                "parameter": _array_of(
                    ["name"],
                    {
                        "name": {"type": "string", "enum": ["resource", "mode"]},
                        "resource": _ref("QuestionnaireResponse"),
                        "valueCode": {"type": "string", "enum": ["create", "update", "profile"]},
                    },
                ),
            },
            "The $validate in-parameters: 'resource' (exactly one, the QuestionnaireResponse) "
            "and optionally 'mode' (create, update or profile).",
        ),
    )


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _search(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A search parameter: given with an empty value, it is ignored (FHIR R4 search §3.1.1.1)."""
    return {
        **_query(name, f"{description} An empty value is ignored.", schema),
        "allowEmptyValue": True,
    }


#: Page sizes and offsets: up to nine digits.
_WHOLE_NUMBER = {"type": "integer", "minimum": 0, "maximum": 999_999_999}


_FORMAT_PARAMETERS = [
    _query(
        "_format",
        "Overrides Accept; only JSON is served.",
        {"type": "string", "enum": ["json", "application/json", FHIR_JSON]},
    ),
    _query("_pretty", "Indent the JSON.", {"type": "string", "enum": ["true", "false"]}),
]


def _prefer(description: str) -> dict[str, Any]:
    return {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _id(schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "schema": schema}


_PREFER = _prefer("'handling=lenient' ignores unknown parameters instead of answering 400.")
_NOT_ACCEPTABLE = _outcome("The client accepts neither application/fhir+json nor JSON.")


def _add_fhir_endpoint(spec: APISpec) -> None:
    _fhir_components(spec)
    spec.path(
        path="/fhir/metadata",
        operations={
            "get": {
                "operationId": "fhirCapabilities",
                "summary": "The CapabilityStatement of the FHIR endpoint",
                "tags": ["FHIR"],
                "parameters": [
                    *_FORMAT_PARAMETERS,
                    _query("mode", "Only 'full' is served.", {"type": "string", "enum": ["full"]}),
                    _PREFER,
                ],
                "responses": {
                    "200": _fhir_response("What this server serves.", "CapabilityStatement"),
                    "400": _outcome("An unsupported parameter or mode."),
                    "406": _NOT_ACCEPTABLE,
                },
                "security": PUBLIC,
            }
        },
    )
    for resource_type in READABLE_TYPES:
        search_parameters = [
            _search(p.name, p.documentation, {"type": "string"})
            for p in SEARCH_PARAMETERS[resource_type]
        ]
        spec.path(
            path=f"/fhir/{resource_type}",
            operations={
                "get": {
                    "operationId": f"fhirSearch{resource_type}",
                    "summary": f"Search {resource_type} resources (no parameter: all of them)",
                    "tags": ["FHIR"],
                    "parameters": [
                        *search_parameters,
                        _search("_count", "Page size.", _WHOLE_NUMBER),
                        _search(
                            "_offset",
                            "Index of the first match to return (next links).",
                            _WHOLE_NUMBER,
                        ),
                        *_FORMAT_PARAMETERS,
                        _PREFER,
                    ],
                    "responses": {
                        "200": _fhir_response(
                            "A searchset Bundle of the matches.", "SearchsetBundle"
                        ),
                        "400": _outcome(
                            "An unknown search parameter, a modifier, or a bad _count/_offset."
                        ),
                        "406": _NOT_ACCEPTABLE,
                    },
                    "security": PUBLIC,  # conformance resources hold no patient data
                }
            },
        )
        served = (
            " Served with its answer ValueSets contained and pre-expanded."
            if resource_type == "Questionnaire"
            else ""
        )
        spec.path(
            path=f"/fhir/{resource_type}/{{id}}",
            operations={
                "get": {
                    "operationId": f"fhirRead{resource_type}",
                    "summary": f"Read a {resource_type} by id.{served}",
                    "tags": ["FHIR"],
                    "parameters": [
                        _id({"type": "string", "pattern": FHIR_ID_PATTERN}),
                        *_FORMAT_PARAMETERS,
                        _PREFER,
                    ],
                    "responses": {
                        "200": _fhir_response(f"The {resource_type}.", resource_type),
                        "400": _outcome("An unsupported parameter."),
                        "404": _outcome(f"No {resource_type} with that id."),
                        "406": _NOT_ACCEPTABLE,
                    },
                    "security": PUBLIC,
                }
            },
        )
    body_schema = {"oneOf": [_ref("QuestionnaireResponse"), _ref("ValidateParameters")]}
    spec.path(
        path="/fhir/QuestionnaireResponse/$validate",
        operations={
            "post": {
                "operationId": "fhirValidateQuestionnaireResponse",
                "summary": "Validate a QuestionnaireResponse against the case-report form",
                "tags": ["FHIR"],
                "parameters": [
                    *_FORMAT_PARAMETERS,
                    _query(
                        "mode",
                        "create, update and profile all check content only.",
                        {"type": "string", "enum": ["create", "update", "profile"]},
                    ),
                    _PREFER,
                ],
                "requestBody": _body(body_schema),
                "responses": {
                    "200": _outcome("Valid: no error issues (information or warnings only)."),
                    "400": _outcome(
                        "Not JSON, not a QuestionnaireResponse or Parameters, or an unsupported "
                        "parameter."
                    ),
                    "406": _NOT_ACCEPTABLE,
                    "413": _outcome("The body is larger than the configured limit."),
                    "415": _outcome("The Content-Type is not application/fhir+json or JSON."),
                    "422": _outcome("Invalid: every problem found, each an error issue."),
                    **_auth_errors(_outcome),
                },
                # The dry run of a submission needs what the submission needs.
                "security": _SUBMIT,
            }
        },
    )

    _add_submission_endpoints(spec)
    _add_stored_types(spec)


#: Submitting a form, and its dry runs $validate and $extract, need create on
#: QuestionnaireResponse only (fhirnet writes the results with its own credentials).
_SUBMIT = _scoped(str(Permission("QuestionnaireResponse", "c")))
_PREFER_RETURN = _prefer(
    "'return=representation' (default): the DiagnosticReport; 'return=OperationOutcome': what "
    "was done and every warning (e.g. a discordant reader conclusion, a missing modality); "
    "'return=minimal': no body. 'respond-async' (with an external FHIR server): 202 at once, "
    "delivered in the background (docs/delivery.md)."
)
_BODY_ERRORS = {
    "400": _outcome("Not JSON, or not the resource the interaction takes."),
    "406": _NOT_ACCEPTABLE,
    "413": _outcome("The body is larger than the configured limit."),
    "415": _outcome("The Content-Type is not application/fhir+json or JSON."),
    "422": _outcome(
        "The form is invalid (expressions as $validate gives them), its status is not "
        "completed or amended, or it breaks a rule of the assessment (e.g. a follow-up target "
        "that is not a baseline target, no baseline form on file); nothing was written."
    ),
    "502": _outcome(
        "The FHIR server refused the transaction (its issues follow ours); nothing was written."
    ),
    "503": {
        **_outcome(
            "The FHIR server is unavailable, or another submission about the patient took too "
            "long; nothing was written. Retry (after Retry-After, when given)."
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
}
_WRITTEN_HEADERS = {
    "Location": {
        "description": "The absolute URL of the exam's DiagnosticReport.",
        "schema": {"type": "string"},
    },
    "ETag": {"description": 'W/"<versionId>" of the report.', "schema": {"type": "string"}},
}
_REPORT_BODY = {"oneOf": [_ref("DiagnosticReport"), _ref("OperationOutcome")]}
_STATUS_HEADER = {
    "Content-Location": {
        "description": "[base]/_submission/{id}: the submission's status.",
        "schema": {"type": "string"},
    }
}
_ACCEPTED = _fhir_response(
    "With an external FHIR server that cannot take it now (down, slow, 5xx), or with Prefer: "
    "respond-async: the submission is kept in the durable outbox and will be delivered in "
    "order per patient; the OperationOutcome says why, Content-Location where its status is.",
    "OperationOutcome",
    _STATUS_HEADER,
)


def _add_submission_endpoints(spec: APISpec) -> None:
    form = _ref("QuestionnaireResponse")
    spec.path(
        path="/fhir/QuestionnaireResponse",
        operations={
            "post": {
                "operationId": "fhirSubmitQuestionnaireResponse",
                "summary": "Submit a filled form: assess it and write form and results",
                "description": "Validates the form, finds the patient's earlier forms, assesses "
                "the timeline with the form's criteria and writes, in one FHIR transaction, the "
                "form, the lesion, sum and response Observations, the risk Observations, the "
                "DiagnosticReport and a Provenance. An identical resubmission writes nothing "
                "(200); an amended form replaces the earlier results and re-assesses later exams.",
                "tags": ["FHIR"],
                "parameters": [*_FORMAT_PARAMETERS, _PREFER_RETURN],
                "requestBody": _body(form),
                "responses": {
                    "201": _fhir_response(
                        "Results written; the body is the DiagnosticReport (or what Prefer asks "
                        "for).",
                        _REPORT_BODY,
                        _WRITTEN_HEADERS,
                    ),
                    "200": _fhir_response(
                        "Nothing new created (the same form again, or the report updated); the "
                        "body is the DiagnosticReport (or what Prefer asks for).",
                        _REPORT_BODY,
                        _WRITTEN_HEADERS,
                    ),
                    "202": _ACCEPTED,
                    **_BODY_ERRORS,
                    **_auth_errors(_outcome),
                },
                "security": _SUBMIT,
            }
        },
    )
    spec.path(
        path="/fhir/_submission/{id}",
        operations={
            "get": {
                "operationId": "fhirSubmissionStatus",
                "summary": "The status of a submission answered 202 Accepted",
                "description": "FHIR asynchronous pattern: 202 while it is queued (X-Progress, "
                "Retry-After), then 200 with a batch-response Bundle whose single entry is the "
                "answer to the original request: delivered (201/200, the DiagnosticReport's "
                "location) or failed (status and OperationOutcome, the FHIR server's issues "
                "included). Only for the client that submitted it.",
                "tags": ["FHIR"],
                "parameters": [_id({"type": "string"}), *_FORMAT_PARAMETERS],
                "responses": {
                    "200": _fhir_response("The submission is finished.", "ResponseBundle"),
                    "202": _fhir_response(
                        "Still queued; an OperationOutcome with the attempts made.",
                        "OperationOutcome",
                        {
                            "X-Progress": {
                                "description": "queued; the attempts, the last error, the next "
                                "attempt.",
                                "schema": {"type": "string"},
                            },
                            "Retry-After": {
                                "description": "Seconds until the next attempt.",
                                "schema": {"type": "string"},
                            },
                        },
                    ),
                    "404": _outcome(
                        "No such submission for this client (or no durable delivery: the "
                        "embedded store)."
                    ),
                    "406": _NOT_ACCEPTABLE,
                    "400": _outcome("An unknown parameter."),
                    **_auth_errors(_outcome),
                },
                "security": _SUBMIT,
            }
        },
    )
    spec.path(
        path="/fhir",
        operations={
            "post": {
                "operationId": "fhirSubmitBundle",
                "summary": "Submit several forms in a transaction or batch Bundle",
                "description": "transaction: every form is validated first, then all results "
                "are written in one FHIR transaction (any problem: 422, nothing written). batch: "
                "each form on its own, failures answered per entry.",
                "tags": ["FHIR"],
                "parameters": [*_FORMAT_PARAMETERS, _PREFER_RETURN],
                "requestBody": _body(_ref("SubmissionBundle")),
                "responses": {
                    "200": _fhir_response("One response entry per entry sent.", "ResponseBundle"),
                    "202": _ACCEPTED,
                    **_BODY_ERRORS,
                    **_auth_errors(_outcome),
                },
                "security": _SUBMIT,
            }
        },
    )
    spec.path(
        path="/fhir/QuestionnaireResponse/$extract",
        operations={
            "post": {
                "operationId": "fhirExtractQuestionnaireResponse",
                "summary": "The transaction Bundle a submission would write, without writing it",
                "tags": ["FHIR"],
                "parameters": [*_FORMAT_PARAMETERS],
                "requestBody": _body({"oneOf": [form, _ref("ExtractParameters")]}),
                "responses": {
                    "200": _fhir_response(
                        "The transaction Bundle (SDC $extract); nothing written.",
                        "TransactionBundle",
                    ),
                    **{code: r for code, r in _BODY_ERRORS.items() if code != "502"},
                    **_auth_errors(_outcome),
                },
                "security": _SUBMIT,
            }
        },
    )


def _add_stored_types(spec: APISpec) -> None:
    """read and search of what the embedded store holds; 404 with an external FHIR server."""
    elsewhere = "With an external FHIR server (FHIRNET_FHIR_BASE_URL) these are read there: 404."
    for resource_type in STORED_TYPES:
        names = [*COMMON, *parameters_of(resource_type)]
        spec.path(
            path=f"/fhir/{resource_type}",
            operations={
                "get": {
                    "operationId": f"fhirSearch{resource_type}",
                    "summary": f"Search the {resource_type} resources fhirnet wrote (embedded "
                    "store)",
                    "description": elsewhere,
                    "tags": ["FHIR"],
                    "parameters": [
                        *(
                            _search(name, "FHIR R4 search parameter.", {"type": "string"})
                            for name in names
                        ),
                        _search(
                            "_count",
                            f"Page size (larger values are lowered to {MAX_COUNT}).",
                            _WHOLE_NUMBER,
                        ),
                        _search(
                            "_sort",
                            "date, _lastUpdated or _id; '-' for descending.",
                            {"type": "string"},
                        ),
                        _search("_include", "e.g. DiagnosticReport:result.", {"type": "string"}),
                        _search(
                            "_total",
                            "Accepted and ignored: the total is always given.",
                            {"type": "string"},
                        ),
                        _search(CURSOR, "The page a next link points at.", {"type": "string"}),
                        *_FORMAT_PARAMETERS,
                        _PREFER,
                    ],
                    "responses": {
                        "200": _fhir_response(
                            "A searchset Bundle of one page, with a next link.", "SearchsetBundle"
                        ),
                        "400": _outcome("An unsupported parameter, modifier or value."),
                        "404": _outcome(elsewhere),
                        "406": _NOT_ACCEPTABLE,
                        **_auth_errors(_outcome),
                    },
                    "security": _scoped(str(Permission(resource_type, "s"))),
                }
            },
        )
        spec.path(
            path=f"/fhir/{resource_type}/{{id}}",
            operations={
                "get": {
                    "operationId": f"fhirRead{resource_type}",
                    "summary": f"Read a {resource_type} fhirnet wrote (embedded store)",
                    "description": elsewhere,
                    "tags": ["FHIR"],
                    "parameters": [
                        _id({"type": "string"}),
                        *_FORMAT_PARAMETERS,
                        _PREFER,
                    ],
                    "responses": {
                        "200": _fhir_response(
                            f"The {resource_type}.",
                            resource_type,
                            {"ETag": {"schema": {"type": "string"}}},
                        ),
                        "400": _outcome("An unsupported parameter."),
                        "404": _outcome(f"No such {resource_type}. " + elsewhere),
                        "406": _NOT_ACCEPTABLE,
                        **_auth_errors(_outcome),
                    },
                    "security": _scoped(str(Permission(resource_type, "r"))),
                }
            },
        )
