"""The sharing endpoints: FHIR Bulk Data export (:mod:`fhirnet.web.bulk_views`: kick-off at
system, Patient and Group level, status, cancel, files) and the token endpoint of the bulk clients
(:mod:`fhirnet.web.token_views`, SMART Backend Services). Their parameters come from
:mod:`fhirnet.fhir.bulk_parameters`, their security from :mod:`fhirnet.web.auth`."""

from __future__ import annotations

from apispec import APISpec

from fhirnet.fhir.bulk_parameters import (
    ASSOCIATED_DATA,
    ELEMENTS,
    EXPORTABLE_TYPES,
    INCLUDE_ASSOCIATED,
    NDJSON,
    OUTPUT_FORMAT,
    OUTPUT_FORMATS,
    SINCE,
    TYPE,
    TYPE_FILTER,
)
from fhirnet.web.openapi.operations import (
    FHIR_ID_PATTERN,
    STRING,
    fhir_content,
    outcome,
    query,
    secured,
)

_TAGS = ["FHIR Bulk Data"]
_KICK_OFF_HEADERS = [
    {
        "name": "Accept",
        "in": "header",
        "required": True,
        "description": "application/fhir+json (Bulk Data: the client SHOULD send it; fhirnet "
        "requires it, 400 otherwise).",
        "schema": {"type": "string", "enum": ["application/fhir+json"]},
    },
    {
        "name": "Prefer",
        "in": "header",
        "required": True,
        "description": "respond-async, optionally with handling=lenient (unknown types and "
        "associated data are then left out and reported in the manifest's error files).",
        "schema": {
            "type": "string",
            "enum": ["respond-async", "respond-async, handling=lenient"],
        },
    },
]
_KICK_OFF_QUERY = [
    query(
        OUTPUT_FORMAT,
        "NDJSON only (any of its three names).",
        {"type": "string", "enum": sorted(OUTPUT_FORMATS)},
    ),
    query(SINCE, "Only resources changed after this instant (not in the future).", STRING),
    query(
        TYPE,
        "Comma-separated types to export (default: every type the token may read). "
        f"Exportable: {', '.join(EXPORTABLE_TYPES)}.",
        STRING,
    ),
    query(TYPE_FILTER, "A search per type, e.g. DiagnosticReport?status=final (OR-ed).", STRING),
    query(ELEMENTS, "Only these elements (plus the mandatory ones), tagged SUBSETTED.", STRING),
    query(
        INCLUDE_ASSOCIATED,
        f"Associated data: {', '.join(sorted(ASSOCIATED_DATA))} (Provenance is exported anyway).",
        STRING,
    ),
]
_PARAMETERS_BODY = {
    "required": True,
    "content": {
        "application/fhir+json": {
            "schema": {
                "type": "object",
                "required": ["resourceType"],
                "properties": {"resourceType": {"const": "Parameters"}},
            }
        }
    },
}
_ACCEPTED = {
    "description": "The export has started: poll the URL in Content-Location.",
    "headers": {
        "Content-Location": {
            "description": "The absolute status URL of the export.",
            "schema": {"type": "string"},
        }
    },
    "content": fhir_content("OperationOutcome"),
}
_LEVELS = {
    "/fhir/$export": ("bulk.kickoff_system", "bulkExportSystem", "every patient's data"),
    "/fhir/Patient/$export": (
        "bulk.kickoff_patient",
        "bulkExportPatients",
        "the data of every patient (or of those in the POST body's patient parameters)",
    ),
    "/fhir/Group/{id}/$export": (
        "bulk.kickoff_group",
        "bulkExportGroup",
        "the data of the Group's members (a study's enrolment Group: exactly its subjects)",
    ),
}
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
_MANIFEST = {
    "type": "object",
    "required": ["transactionTime", "request", "requiresAccessToken", "output", "error"],
    "properties": {
        "transactionTime": {"type": "string"},
        "request": {"type": "string"},
        "requiresAccessToken": {"const": True},
        "output": {"type": "array", "items": {"type": "object"}},
        "error": {"type": "array", "items": {"type": "object"}},
        "deleted": {"type": "array", "items": {"type": "object"}},
        "extension": {"type": "object"},
    },
}
_OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def add_bulk_export(spec: APISpec) -> None:
    """The three kick-offs (GET and POST), the status URL (GET, DELETE) and the files."""
    for path, (endpoint, operation_id, what) in _LEVELS.items():
        group = path.startswith("/fhir/Group")
        path_parameters = (
            [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": FHIR_ID_PATTERN},
                }
            ]
            if group
            else []
        )
        responses = {
            "202": _ACCEPTED,
            "400": outcome("Missing Accept/Prefer headers or a bad parameter."),
            **({"404": outcome("No Group with this id.")} if group else {}),
            "503": outcome("fhirnet cannot keep export jobs right now; try again later."),
        }
        get = {
            "operationId": operation_id,
            "summary": f"Kick off an asynchronous export of {what} as NDJSON files",
            "tags": _TAGS,
            "parameters": [*path_parameters, *_KICK_OFF_HEADERS, *_KICK_OFF_QUERY],
            "responses": dict(responses),
        }
        post = {
            "operationId": f"{operation_id}Post",
            "summary": f"Kick off an export of {what}, parameters in a Parameters body",
            "tags": _TAGS,
            "parameters": [*path_parameters, *_KICK_OFF_HEADERS],
            "requestBody": _PARAMETERS_BODY,
            "responses": {**responses, "415": outcome("The body is not FHIR JSON.")},
        }
        spec.path(
            path=path,
            operations={
                "get": secured(get, endpoint),
                "post": secured(post, endpoint),
            },
        )
    gone = outcome("No such export: never started, cancelled or expired.")
    status = {
        "operationId": "bulkExportStatus",
        "summary": "Poll an export: 202 while it runs, the manifest when it is done",
        "tags": _TAGS,
        "parameters": [_JOB_ID],
        "responses": {
            "200": {
                "description": "Done: the manifest (Bulk Data 2.0).",
                "headers": {"Expires": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": _MANIFEST}},
            },
            "202": {
                "description": "Still running.",
                "headers": {
                    "X-Progress": {"schema": {"type": "string"}},
                    "Retry-After": {"schema": {"type": "string"}},
                },
            },
            "404": gone,
            "500": outcome("The export failed."),
            "503": outcome("The export failed for a transient reason; kick it off again."),
        },
    }
    cancel = {
        "operationId": "bulkExportCancel",
        "summary": "Cancel an export (running or done): its files are deleted",
        "tags": _TAGS,
        "parameters": [_JOB_ID],
        "responses": {"202": outcome("Cancelled."), "404": gone},
    }
    spec.path(
        path="/fhir/$export-status/{job_id}",
        operations={
            "get": secured(status, "bulk.status", job_id="x"),
            "delete": secured(cancel, "bulk.cancel", job_id="x"),
        },
    )
    download = {
        "operationId": "bulkExportFile",
        "summary": "One NDJSON file of a finished export (gzip when accepted)",
        "tags": _TAGS,
        "parameters": [
            _JOB_ID,
            {
                "name": "file_name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
            },
        ],
        "responses": {
            "200": {
                "description": "One resource per line, all of one type.",
                "content": {NDJSON: {"schema": {"type": "string"}}},
            },
            "404": outcome("No such file: never listed, cancelled or expired."),
        },
    }
    spec.path(
        path="/fhir/$export-file/{job_id}/{file_name}",
        operations={"get": secured(download, "bulk.download", job_id="x", file_name="x")},
    )


def add_token_endpoint(spec: APISpec) -> None:
    """``POST /auth/token``: SMART Backend Services for the registered bulk clients (public)."""
    json_error = {"content": {"application/json": {"schema": _OAUTH_ERROR}}}
    operation = {
        "operationId": "token",
        "summary": "An access token for a registered bulk client (SMART Backend Services: "
        "client_credentials with an RS384/ES384 JWT assertion)",
        "tags": _TAGS,
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": [
                            "grant_type",
                            "client_assertion_type",
                            "client_assertion",
                            "scope",
                        ],
                        "properties": {
                            "grant_type": {"const": "client_credentials"},
                            "client_assertion_type": {
                                "const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                            },
                            "client_assertion": {"type": "string"},
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "The access token (bearer, read-only system scopes).",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["access_token", "token_type", "expires_in", "scope"],
                            "properties": {
                                "access_token": {"type": "string"},
                                "token_type": {"const": "bearer"},
                                "expires_in": {"type": "integer"},
                                "scope": {"type": "string"},
                            },
                        }
                    }
                },
            },
            **{
                status: {"description": description, **json_error}
                for status, description in (
                    ("400", "An OAuth error: invalid_request, invalid_grant, invalid_scope, ..."),
                    ("401", "invalid_client: unknown client, bad signature, aud, jti replayed"),
                    ("404", "This fhirnet issues no tokens (no bulk client is registered)."),
                    ("405", "Only POST."),
                    ("413", "The token request is too large."),
                    ("503", "The token endpoint cannot check assertions now."),
                )
            },
        },
    }
    wrong_method = {
        "operationId": "tokenByGet",
        "summary": "Not served: the token endpoint takes POST only",
        "tags": _TAGS,
        "responses": {"405": {"description": "Only POST (Allow: POST).", **json_error}},
    }
    spec.path(
        path="/auth/token",
        operations={
            "get": secured(wrong_method, "token.token"),
            "post": secured(operation, "token.token"),
        },
    )
