"""The OpenAPI piece of SDC ``$populate`` (:mod:`fhirnet.web.populate_views`): GET and POST, at
the type and the instance level, each secured as :mod:`fhirnet.web.auth` secures
``populate.populate``."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from fhirnet.web import auth
from fhirnet.web.openapi.components import const
from fhirnet.web.openapi.operations import (
    BEARER,
    FORMATS,
    NOT_ACCEPTABLE,
    PREFER,
    body,
    fhir_response,
    outcome,
    query,
    secured,
)
from fhirnet.web.populate_views import QUESTIONNAIRE_ID

__all__ = ["add_populate"]

ENDPOINT = "populate.populate"
TYPE_PATH = "/fhir/Questionnaire/$populate"
INSTANCE_PATH = "/fhir/Questionnaire/{questionnaire_id}/$populate"

_REFERENCE = {
    "type": "object",
    "required": ["reference"],
    "properties": {"reference": {"type": "string"}},
}
_PARAMETER = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "enum": ["subject", "local", "canonical", "context", "author"]},
        "valueReference": _REFERENCE,
        "valueString": {"type": "string"},
        "valueBoolean": {"type": "boolean"},
        "valueCanonical": {"type": "string"},
        "part": {"type": "array", "items": {"type": "object"}},
    },
}
_IN = {
    "type": "object",
    "required": ["resourceType", "parameter"],
    "properties": {
        "resourceType": const("Parameters"),
        "parameter": {"type": "array", "items": _PARAMETER},
    },
}
_OUT = {
    "type": "object",
    "required": ["resourceType", "parameter"],
    "properties": {
        "resourceType": const("Parameters"),
        "parameter": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "resource"],
                "properties": {
                    "name": {"type": "string", "enum": ["response", "issues"]},
                    "resource": {"type": "object", "required": ["resourceType"]},
                },
            },
        },
    },
}
_QUERY = [
    query("subject", "The Patient: Patient/<id> (required).", {"type": "string"}),
    query(
        "stream",
        "The read stream: 'site' or a central reader (Practitioner/<id>, or the study's label "
        "for them); default: the author's, when a central reader of the patient, else the "
        "site's.",
        {"type": "string"},
    ),
    query("author", "The reader filling the form in (Practitioner/<id>).", {"type": "string"}),
    query("canonical", "The form's canonical URL (type level; any version).", {"type": "string"}),
    query("local", "Accepted and ignored: fhirnet always reads its own data.", {"type": "string"}),
]
_ERRORS = {
    "400": outcome(
        "No subject, or one that is not a Patient; an author that is not a reader; an "
        "overlong stream; an unknown or repeated parameter; a body that is not a Parameters "
        "resource."
    ),
    "422": outcome("The stream names none of the patient's readers (nor 'site')."),
    "404": outcome("Another Questionnaire than the CRF."),
    "406": NOT_ACCEPTABLE,
    "502": outcome("The FHIR server refused a read or the audit record; nothing is disclosed."),
    "503": outcome("The FHIR server is unavailable; retry."),
}
_BODY_ERRORS = {
    **_ERRORS,
    "413": outcome("The body is larger than the configured limit."),
    "415": outcome("The Content-Type is not application/fhir+json or JSON."),
}
_DESCRIPTION = (
    "SDC $populate of the CRF: the patient's next follow-up, pre-filled from the forms on "
    "file (baseline targets with label, location and nodal flag, non-targets, baseline and "
    "nadir dates, criteria, therapy type, modalities, new lesions already counted; sizes and "
    "statuses left empty), as an in-progress QuestionnaireResponse in the 'response' "
    "parameter; a blank baseline for a patient with no form. 'issues' lists what could not be "
    "filled. The read is audited."
)


def _secured(operation: dict[str, Any]) -> dict[str, Any]:
    """``operation`` with the scopes :mod:`fhirnet.web.auth` checks: its permission and every
    one it also needs (read on the forms, the reports and the Observations), all required."""
    found = secured(operation, ENDPOINT)
    also = [str(p) for p in auth.ALSO_NEEDED.get(ENDPOINT, ())]
    if found["security"] and also:
        found["security"] = [{BEARER: found["security"][0][BEARER] + also}]
    return found


def add_populate(spec: APISpec) -> None:
    """``GET`` and ``POST`` of ``$populate`` at both levels."""
    instance = {
        "name": "questionnaire_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
        "description": f"The Questionnaire's id: {QUESTIONNAIRE_ID}.",
    }
    for path, level, extra in (
        (TYPE_PATH, "Type", []),
        (INSTANCE_PATH, "Instance", [instance]),
    ):
        operations: dict[str, Any] = {
            "get": _secured(
                {
                    "operationId": f"fhirPopulate{level}Get",
                    "summary": "A patient's next form, pre-filled (SDC $populate)",
                    "description": _DESCRIPTION,
                    "tags": ["FHIR"],
                    "parameters": [*extra, *_QUERY, *FORMATS, PREFER],
                    "responses": {
                        "200": fhir_response("The pre-filled form.", _OUT),
                        **_ERRORS,
                    },
                },
            ),
            "post": _secured(
                {
                    "operationId": f"fhirPopulate{level}Post",
                    "summary": "A patient's next form, pre-filled (SDC $populate)",
                    "description": _DESCRIPTION,
                    "tags": ["FHIR"],
                    "parameters": [*extra, *FORMATS, PREFER],
                    "requestBody": body(_IN),
                    "responses": {
                        "200": fhir_response("The pre-filled form.", _OUT),
                        **_BODY_ERRORS,
                    },
                },
            ),
        }
        spec.path(path=path, operations=operations)
