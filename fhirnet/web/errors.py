"""The one place where errors become HTTP responses (style P7): views never catch anything.

On the JSON API every error body is ``{"errors": {"<json path>": ["message", ...]}}``, the
contract's envelope (``assessment-api.md`` "Errors"); problems with the request as a whole sit
under ``"$"``. On FHIR routes (``/fhir/...``) every error, including werkzeug's own 404/405/413 and
unexpected 500s, is an OperationOutcome served as ``application/fhir+json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.wrappers import Response

from fhirnet.adapters.export_jobs import ExportJobsUnavailableError
from fhirnet.adapters.store import SearchParameterError
from fhirnet.errors import (
    AuthenticationError,
    AuthorizationError,
    FhirnetError,
    FhirServerError,
    FhirServerRejectedError,
    FhirServerUnavailableError,
    FieldError,
    InvalidInputError,
    OutboxUnavailableError,
    PatientBusyError,
    ProfileNotFoundError,
    json_path,
)
from fhirnet.fhir.outcome import (
    Issue,
    IssueType,
    MalformedRequestError,
    OutcomeError,
    operation_outcome,
)

INTERNAL_ERROR_MESSAGE = "Internal server error; the details are in the service log."

FHIR_PREFIX = "/fhir"
#: The media type of every FHIR response. The charset parameter is optional for
#: application/fhir+json and, when present, must be UTF-8 (IANA registration); it is sent so that
#: clients which sniff text encodings need not guess.
FHIR_JSON_CONTENT_TYPE = "application/fhir+json; charset=utf-8"

#: OperationOutcome issue type of an HTTP error that carries no more specific one.
_ISSUE_TYPE_BY_STATUS = {
    400: IssueType.INVALID,
    401: IssueType.LOGIN,
    403: IssueType.FORBIDDEN,
    404: IssueType.NOT_FOUND,
    405: IssueType.NOT_SUPPORTED,
    406: IssueType.NOT_SUPPORTED,
    408: IssueType.TRANSIENT,
    413: IssueType.TOO_LONG,
    414: IssueType.TOO_LONG,
    415: IssueType.NOT_SUPPORTED,
    422: IssueType.PROCESSING,
    429: IssueType.TRANSIENT,
    431: IssueType.TOO_LONG,
}


class FhirRequestError(FhirnetError):
    """A FHIR request refused as a whole (bad media type, body, parameter, ...).

    Rendered as an OperationOutcome with one error issue of type ``code`` and HTTP ``status``.
    """

    def __init__(
        self, status: int, code: IssueType, message: str, *, expression: str | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.expression = expression
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class ErrorAnswer:
    """How a FHIR route answers an error: status, OperationOutcome and extra headers."""

    status: int
    outcome: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status_line(self) -> str:
        """``"422 Unprocessable Entity"``: a Bundle entry's ``response.status``."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def fhir_error_answer(error: FhirnetError) -> ErrorAnswer | None:
    """The answer of a FHIR route to a fhirnet error; ``None`` for errors that are bugs.

    Also used for the entries of a ``batch`` answer, so an entry fails exactly as the same form
    sent on its own would.
    """
    if isinstance(error, OutcomeError):
        status = 400 if isinstance(error, MalformedRequestError) else 422
        return ErrorAnswer(status=status, outcome=operation_outcome(error.issues))
    if isinstance(error, FhirRequestError):
        issue = Issue.error(error.code, error.message, expression=error.expression)
        return ErrorAnswer(status=error.status, outcome=operation_outcome([issue]))
    if isinstance(error, SearchParameterError):
        return ErrorAnswer(
            status=400, outcome=operation_outcome([Issue.error(error.code, str(error))])
        )
    if isinstance(error, InvalidInputError):
        issues = [
            Issue.error(IssueType.INVALID, f"{json_path(problem.path)}: {problem.message}")
            for problem in error.errors
        ]
        return ErrorAnswer(status=422, outcome=operation_outcome(issues))
    if isinstance(error, ProfileNotFoundError):
        issue = Issue.error(IssueType.NOT_FOUND, f"Not found: {error.canonical}.")
        return ErrorAnswer(status=404, outcome=operation_outcome([issue]))
    if isinstance(error, FhirServerError | PatientBusyError):
        return _unavailable_or_refused(error)
    if isinstance(error, OutboxUnavailableError):
        current_app.logger.error("Outbox unavailable", exc_info=error)
        message = (
            "fhirnet cannot use its outbox right now (it cannot be written); send the form "
            "again later: a resubmission never writes anything twice."
        )
        issue = Issue.error(IssueType.TRANSIENT, message)
        return ErrorAnswer(status=503, outcome=operation_outcome([issue]), headers={})
    if isinstance(error, ExportJobsUnavailableError):
        current_app.logger.error("Export jobs unavailable", exc_info=error)
        message = (
            "fhirnet cannot keep bulk export jobs right now (their database or files cannot be "
            "written); kick the export off again later."
        )
        issue = Issue.error(IssueType.TRANSIENT, message)
        return ErrorAnswer(status=503, outcome=operation_outcome([issue]), headers={})
    return None


def _unavailable_or_refused(error: FhirServerError | PatientBusyError) -> ErrorAnswer:
    """502 when the FHIR server refused or answered nonsense, 503 when it (or the patient's lock)
    is unavailable, with ``Retry-After`` when known. Never partial (one transaction), but after
    a timeout the server may have committed: the messages claim only what holds either way."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, PatientBusyError):
        issue = Issue.error(IssueType.TRANSIENT, f"Busy: {error}. Nothing was written; retry.")
        return ErrorAnswer(status=503, outcome=operation_outcome([issue]), headers=headers)
    if isinstance(error, FhirServerUnavailableError):
        # After a timeout nobody knows whether the server committed: say what holds either way.
        message = (
            f"The FHIR server is unavailable: {error}. Its transaction is all or nothing, never "
            "partial; send the form again later: a resubmission never writes anything twice."
        )
        issue = Issue.error(IssueType.TRANSIENT, message)
        return ErrorAnswer(status=503, outcome=operation_outcome([issue]), headers=headers)
    if isinstance(error, FhirServerRejectedError):
        message = (
            f"The FHIR server refused fhirnet's request: {error}. A refused transaction is not "
            "applied (all or nothing); the server's issues follow."
        )
    else:
        message = (
            f"The FHIR server answered unexpectedly: {error}. Its transaction is all or nothing, "
            "never partial; a resubmission never writes anything twice."
        )
    outcome = operation_outcome([Issue.error(IssueType.EXCEPTION, message)])
    theirs = error.outcome.get("issue") if isinstance(error.outcome, Mapping) else None
    if isinstance(theirs, list):  # the server's own issues, as it sent them
        outcome["issue"] += [issue for issue in theirs if isinstance(issue, Mapping)]
    return ErrorAnswer(status=502, outcome=outcome, headers=headers)


def error_body(problems: Iterable[FieldError]) -> dict[str, dict[str, list[str]]]:
    """Group problems by JSON path into the contract's error body; shared by the API and CLI.

    :param problems: e.g. :attr:`InvalidInputError.errors`.
    :returns: ``{"errors": {"$.timepoints[0].date": ["..."], ...}}``, paths in first-seen order.
    """
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(json_path(problem.path), []).append(problem.message)
    return {"errors": errors}


def fhir_json_response(
    body: Mapping[str, Any], status: int = 200, *, pretty: bool = False
) -> Response:
    """A FHIR JSON response: ``body`` in the app's key order, with the FHIR media type.

    :param body: a JSON-ready resource.
    :param status: the HTTP status.
    :param pretty: indent the JSON (``_pretty=true``).
    """
    text = json.dumps(body, indent=2 if pretty else None)
    return Response(text + "\n", status=status, content_type=FHIR_JSON_CONTENT_TYPE)


def is_fhir_request() -> bool:
    """Whether the current request is addressed to the FHIR endpoint (matched or not)."""
    return request.path == FHIR_PREFIX or request.path.startswith(FHIR_PREFIX + "/")


def register_error_handlers(app: Flask) -> None:
    """Map fhirnet's error hierarchy and werkzeug's HTTP errors to responses on ``app``.

    JSON API routes answer with the ``{"errors": ...}`` envelope, FHIR routes with an
    OperationOutcome.
    """
    app.register_error_handler(InvalidInputError, _invalid_input)
    app.register_error_handler(ProfileNotFoundError, _profile_not_found)
    app.register_error_handler(FhirRequestError, _fhirnet_error)
    app.register_error_handler(JsonLimitError, _json_limit)
    app.register_error_handler(OutcomeError, _fhirnet_error)
    app.register_error_handler(FhirServerError, _fhirnet_error)
    app.register_error_handler(PatientBusyError, _fhirnet_error)
    app.register_error_handler(OutboxUnavailableError, _fhirnet_error)
    app.register_error_handler(ExportJobsUnavailableError, _fhirnet_error)
    app.register_error_handler(AuthenticationError, _unauthenticated)
    app.register_error_handler(AuthorizationError, _forbidden)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _outcome_response(issues: Iterable[Issue], status: int) -> Response:
    return fhir_json_response(operation_outcome(issues), status)


def _invalid_input(error: InvalidInputError) -> tuple[dict[str, Any], int] | Response:
    if is_fhir_request():
        return _fhirnet_error(error)
    return error_body(error.errors), 422


def _profile_not_found(error: ProfileNotFoundError) -> tuple[dict[str, Any], int] | Response:
    if is_fhir_request():
        return _fhirnet_error(error)
    return error_body([FieldError(path=(), message=f"Not found: {error.canonical}.")]), 404


def _fhirnet_error(error: FhirnetError) -> tuple[dict[str, Any], int] | Response:
    # Raised on the FHIR routes only (the JSON API never reaches a store or a form).
    answer = fhir_error_answer(error)
    if answer is None:
        return _unexpected(error)
    response = fhir_json_response(answer.outcome, answer.status)
    response.headers.update(answer.headers)
    return response


#: The operations fhirnet offers (its own and SDC's), named in the answer to any other one.
SUPPORTED_OPERATIONS = (
    "QuestionnaireResponse/$validate",
    "QuestionnaireResponse/$submit",
    "QuestionnaireResponse/$extract",
)
#: The operations served with GET or POST: SDC $populate and Bulk Data's $export (then the
#: URLs of an export's status and files).
READ_OPERATIONS = (
    "Questionnaire/$populate",
    "Questionnaire/[id]/$populate",
    "$export",
    "Patient/$export",
    "Group/[id]/$export",
)
_BULK_URLS = ("$export-status", "$export-file")
#: FHIR interactions by the HTTP method that asks for them on a resource's or a type's URL.
_INTERACTIONS = {"PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}


def unsupported_interaction(path: str) -> FhirRequestError | None:
    """The answer to a FHIR URL naming an interaction fhirnet does not offer, or ``None``.

    * **history** at any level (``[base]/_history``, ``[base]/[type]/_history``,
      ``[base]/[type]/[id]/_history``): fhirnet serves ``vread`` of a version it wrote (the
      ``Location`` of a submission), not version lists;
    * **operations** other than :data:`SUPPORTED_OPERATIONS`, at the system, type or instance
      level (``$expand``, ``$lookup``, ``$translate``, ``$everything``, ``$meta``, ...).

    Both are **400** ``not-supported``, as HAPI answers them: the request asks for something this
    server does not do, which a 404 (``not-found``) would misreport as a missing resource.

    :param path: the request path, e.g. ``/fhir/ValueSet/$expand``.
    """
    if not (path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")):
        return None
    segments = [s for s in path[len(FHIR_PREFIX) :].split("/") if s]
    operation = next((s for s in segments if s.startswith("$")), None)
    if operation is not None:
        before = segments[: segments.index(operation)]
        # The operation's place with an instance id as ``[id]``: ``Group/[id]/$export``.
        place = "/".join([*before[:1], *("[id]" for _ in before[1:2]), operation])
        if place in (*SUPPORTED_OPERATIONS, *READ_OPERATIONS, *_BULK_URLS):
            return None  # offered, with another method: 405 with Allow
        where = "/".join(before) or "the system level"
        return FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            f"Operation {operation} is not supported on {where}; fhirnet offers "
            f"{', '.join(SUPPORTED_OPERATIONS)} (POST) and {', '.join(READ_OPERATIONS)} "
            "(GET or POST) only (see /fhir/metadata).",
        )
    if segments[-1:] == ["_history"]:
        return FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            "The history interaction is not supported; a version fhirnet wrote is read with "
            "vread ([type]/[id]/_history/[vid], the Location of a submission).",
        )
    return None


def _http_error(error: HTTPException) -> Response | tuple[dict[str, Any], int]:
    # Start from werkzeug's own response to keep its headers (e.g. Allow on 405).
    if isinstance(error, NotFound | MethodNotAllowed):
        unsupported = unsupported_interaction(request.path)
        if unsupported is not None:
            return _fhirnet_error(unsupported)
    response = error.get_response()
    if is_fhir_request():
        status = response.status_code
        code = _ISSUE_TYPE_BY_STATUS.get(
            status, IssueType.EXCEPTION if status >= 500 else IssueType.INVALID
        )
        body = operation_outcome([Issue.error(code, _describe(error))])
        response.set_data(json.dumps(body) + "\n")
        response.content_type = FHIR_JSON_CONTENT_TYPE
        return response
    response.set_data(json.dumps(error_body([FieldError(path=(), message=_describe(error))])))
    response.content_type = "application/json"
    return response


def _describe(error: HTTPException) -> str:
    if isinstance(error, RequestEntityTooLarge) and request.max_content_length is not None:
        return f"Request body is larger than the limit of {request.max_content_length} bytes."
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        # HEAD and OPTIONS come with every route; name what the URL is for.
        methods = [m for m in error.valid_methods if m not in ("HEAD", "OPTIONS")]
        interaction = _INTERACTIONS.get(request.method)
        if methods and interaction is not None and is_fhir_request():
            return (
                f"The {interaction} interaction ({request.method}) is not supported at this "
                f"URL, which takes {', '.join(methods)} only (see /fhir/metadata)."
            )
        if methods:
            return f"Method not allowed: this URL takes {', '.join(methods)} only."
    if isinstance(error, NotFound) and is_fhir_request():
        return "No FHIR interaction of this server has this URL (see /fhir/metadata)."
    return error.description or error.name


def _unexpected(error: Exception) -> tuple[dict[str, Any], int] | Response:
    # A bug, never bad input: log the traceback for us, tell the client nothing about internals.
    # Not the raw path (ids) nor the message (may echo input): the request log's formatter adds
    # the method, URL rule and request id, and only the traceback's code locations.
    current_app.logger.exception("Unhandled error")
    if is_fhir_request():
        return _outcome_response([Issue.error(IssueType.EXCEPTION, INTERNAL_ERROR_MESSAGE)], 500)
    return error_body([FieldError(path=(), message=INTERNAL_ERROR_MESSAGE)]), 500


class JsonLimitError(FhirRequestError):
    """A JSON body over one of the limits of :mod:`fhirnet.web.limits` (depth, values, items,
    Bundle entries, string length): an OperationOutcome on FHIR routes, the ``{"errors": ...}``
    envelope at ``path`` on the JSON API, with ``status`` (400, 413 or 422) either way."""

    def __init__(
        self,
        status: int,
        code: IssueType,
        message: str,
        *,
        path: tuple[str | int, ...] = (),
        expression: str | None = None,
    ) -> None:
        super().__init__(status, code, message, expression=expression)
        self.path = path


def _json_limit(error: JsonLimitError) -> tuple[dict[str, Any], int] | Response:
    if is_fhir_request():
        return _fhirnet_error(error)
    # The JSON API's contract answers bad input with 413 or 422, never 400.
    status = 422 if error.status == 400 else error.status
    return error_body([FieldError(path=error.path, message=error.message)]), status


#: The ``realm`` of fhirnet's ``WWW-Authenticate`` challenges (RFC 6750 §3).
AUTH_REALM = "fhirnet"


def _unauthenticated(error: AuthenticationError) -> Response:
    # RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
    challenge = {"realm": AUTH_REALM}
    if error.error is not None:
        challenge |= {"error": error.error, "error_description": error.description}
    return _auth_error(401, IssueType.LOGIN, error.description, challenge)


def _forbidden(error: AuthorizationError) -> Response:
    challenge = {
        "realm": AUTH_REALM,
        "error": "insufficient_scope",
        "error_description": str(error),
        "scope": error.scope,
    }
    return _auth_error(403, IssueType.FORBIDDEN, str(error), challenge)


def _auth_error(
    status: int, code: IssueType, message: str, challenge: Mapping[str, str]
) -> Response:
    response = (
        _outcome_response([Issue.error(code, message)], status)
        if is_fhir_request()
        else Response(
            json.dumps(error_body([FieldError(path=(), message=message)])),
            status,
            content_type="application/json",
        )
    )
    # Quoted strings may not hold '"' or '\\' (RFC 6750 §3: error_description is %x20-21 /
    # %x23-5B / %x5D-7E): drop them, and anything else outside printable ASCII.
    parameters = ", ".join(
        f'{name}="{"".join(c for c in value if " " <= c <= "~" and c not in chr(34) + chr(92))}"'
        for name, value in challenge.items()
    )
    response.headers["WWW-Authenticate"] = f"Bearer {parameters}"
    response.headers["Cache-Control"] = "no-store"
    return response
