"""The schemas under ``components``: the FHIR resources the endpoint reads and answers (the
readable conformance types of :data:`~fhirnet.fhir.capability.READABLE_TYPES` and what the
embedded store holds, :data:`~fhirnet.fhir.audit.STORED_TYPES`), its Bundles and the
``Parameters`` bodies of ``$validate`` and ``$extract``. Only the elements the service relies on
are listed; every other element of a resource may appear."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.fhir.capability import READABLE_TYPES
from fhirnet.web.fhir_views import VALIDATE_MODES

#: Logical ids of FHIR R4 (``id`` datatype).
FHIR_ID_PATTERN = "^[A-Za-z0-9\\-.]{1,64}$"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def const(value: str) -> dict[str, Any]:
    return {"type": "string", "const": value}


def array_of(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """An array of objects with these ``required`` and ``properties``."""
    items = {"type": "object", "required": required, "properties": properties}
    return {"type": "array", "items": items}


def resource_schema(resource_type: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"A FHIR R4 {resource_type} (only the elements the service relies on are "
        "listed; every other element of the resource may appear).",
        "required": ["resourceType", *required],
        "properties": {
            "resourceType": const(resource_type),
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
    schema = resource_schema(resource_type, required)
    if description is not None:
        schema["description"] = description
    schema["properties"] = {"resourceType": const(resource_type), **properties}
    return schema


def add_fhir_components(spec: APISpec) -> None:
    """Every FHIR schema the operations refer to, by name."""
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
        schema = resource_schema(resource_type, ("id", "url"))
        schema["properties"] |= {"url": {"type": "string"}, "version": {"type": "string"}}
        spec.components.schema(resource_type, component=schema)
    spec.components.schema(
        "CapabilityStatement",
        component=resource_schema("CapabilityStatement", ("status", "kind", "fhirVersion")),
    )
    match_modes = {"mode": {"type": "string", "enum": ["match", "include"]}}
    spec.components.schema(
        "SearchsetBundle",
        component=_listed_resource(
            "Bundle",
            ("type", "total"),
            {
                "type": const("searchset"),
                "total": {"type": "integer", "minimum": 0},
                "link": array_of(
                    ["relation", "url"],
                    {"relation": {"type": "string"}, "url": {"type": "string"}},
                ),
                "entry": array_of(
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
        "QuestionnaireResponse", component=resource_schema("QuestionnaireResponse")
    )
    for resource_type in STORED_TYPES:
        if resource_type != "QuestionnaireResponse":
            spec.components.schema(resource_type, component=resource_schema(resource_type))
    _add_submission_bodies(spec)


def _add_submission_bodies(spec: APISpec) -> None:
    """The Bundles and Parameters a submission, $validate and $extract take and answer."""
    request = {
        "type": "object",
        "required": ["method", "url"],
        "properties": {"method": const("POST"), "url": const("QuestionnaireResponse")},
    }
    transaction = _listed_resource(
        "Bundle",
        ("type",),
        {
            "type": const("transaction"),
            "entry": array_of(
                ["resource", "request"],
                {
                    "fullUrl": {"type": "string"},
                    "resource": ref("QuestionnaireResponse"),
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
            "type": const("batch"),
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
            "outcome": ref("OperationOutcome"),
        },
    }
    spec.components.schema(
        "ResponseBundle",
        component=_listed_resource(
            "Bundle",
            ("type",),
            {
                "type": {"type": "string", "enum": ["transaction-response", "batch-response"]},
                "entry": array_of(
                    ["response"], {"resource": ref("DiagnosticReport"), "response": response}
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
                "type": const("transaction"),
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
                "parameter": array_of(
                    ["name", "resource"],
                    {
                        "name": const("questionnaire-response"),
                        "resource": ref("QuestionnaireResponse"),
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
                "parameter": array_of(
                    ["name"],
                    {
                        "name": {"type": "string", "enum": ["resource", "mode"]},
                        "resource": ref("QuestionnaireResponse"),
                        "valueCode": {"type": "string", "enum": list(VALIDATE_MODES)},
                    },
                ),
            },
            "The $validate in-parameters: 'resource' (exactly one, the QuestionnaireResponse) "
            "and optionally 'mode' (create, update or profile).",
        ),
    )
