"""What the operations of the document are made of: their security requirement and 401/403
answers (from the access rules :mod:`fhirnet.web.auth` enforces), query, header and path
parameters (the format parameters from :mod:`fhirnet.web.fhir_http`), and FHIR responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirnet.access import Permission
from fhirnet.web import auth
from fhirnet.web.fhir_http import BODY_MEDIA_TYPES, FHIR_JSON, FORMAT_PARAMETERS, FORMAT_VALUES

BEARER = "bearer"
BEARER_SCHEME = {
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

#: Logical ids of FHIR R4 (``id`` datatype).
FHIR_ID_PATTERN = "^[A-Za-z0-9\\-.]{1,64}$"
#: Page sizes and offsets: up to nine digits.
WHOLE_NUMBER = {"type": "integer", "minimum": 0, "maximum": 999_999_999}
STRING = {"type": "string"}


def security(endpoint: str, **view_args: str) -> list[dict[str, list[str]]]:
    """The security requirement of ``endpoint`` called with these URL variables: what
    :func:`fhirnet.web.auth.required_permission` enforces (none, any token, or a SMART scope)."""
    if auth.is_public(endpoint, view_args):
        return []
    needed = auth.required_permission(endpoint, view_args)
    return [{BEARER: [str(needed)] if isinstance(needed, Permission) else []}]


def secured(
    operation: dict[str, Any],
    endpoint: str,
    render: Callable[[str], dict[str, Any]] | None = None,
    **view_args: str,
) -> dict[str, Any]:
    """``operation`` with the security requirement of ``endpoint`` and, when that needs a token,
    the 401 and 403 answers (rendered by ``render``; default: an OperationOutcome)."""
    requirement = security(endpoint, **view_args)
    if requirement:
        errors = auth_errors(outcome if render is None else render)
        operation["responses"] = {**operation["responses"], **errors}
    return {**operation, "security": requirement}


def auth_errors(render: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
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


def fhir_content(schema: str | dict[str, Any]) -> dict[str, Any]:
    return {FHIR_JSON: {"schema": schema}}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required request body in any of the media types a FHIR body may have."""
    return {
        "required": True,
        "content": {media_type: {"schema": schema} for media_type in BODY_MEDIA_TYPES},
    }


def fhir_response(
    description: str, schema: str | dict[str, Any], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers is not None:
        response["headers"] = headers
    response["content"] = fhir_content(schema)
    return response


def outcome(description: str) -> dict[str, Any]:
    return fhir_response(description, "OperationOutcome")


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def search(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A search parameter: given with an empty value, it is ignored (FHIR R4 search §3.1.1.1)."""
    return {
        **query(name, f"{description} An empty value is ignored.", schema),
        "allowEmptyValue": True,
    }


def prefer(description: str) -> dict[str, Any]:
    return {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def path_id(schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "schema": schema}


_FORMATS = {
    # Shortest first: json, application/json, application/fhir+json.
    "_format": query(
        "_format",
        "Overrides Accept; only JSON is served.",
        {"type": "string", "enum": sorted(FORMAT_VALUES, key=lambda value: (len(value), value))},
    ),
    "_pretty": query("_pretty", "Indent the JSON.", {"type": "string", "enum": ["true", "false"]}),
}
#: The parameters every FHIR interaction takes (:data:`fhirnet.web.fhir_http.FORMAT_PARAMETERS`).
FORMATS = [_FORMATS[name] for name in FORMAT_PARAMETERS]

PREFER = prefer("'handling=lenient' ignores unknown parameters instead of answering 400.")
NOT_ACCEPTABLE = outcome("The client accepts neither application/fhir+json nor JSON.")
