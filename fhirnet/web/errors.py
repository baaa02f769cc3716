"""The one place where errors become HTTP responses (style P7): views never catch anything.

Every error body is ``{"errors": {"<json path>": ["message", ...]}}``, the contract's envelope
(``assessment-api.md`` "Errors"); problems with the request as a whole sit under ``"$"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, json, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response

from fhirnet.errors import FieldError, InvalidInputError, json_path

INTERNAL_ERROR_MESSAGE = "Internal server error; the details are in the service log."


def error_body(problems: Iterable[FieldError]) -> dict[str, dict[str, list[str]]]:
    """Group problems by JSON path into the contract's error body; shared by the API and CLI.

    :param problems: e.g. :attr:`InvalidInputError.errors`.
    :returns: ``{"errors": {"$.timepoints[0].date": ["..."], ...}}``, paths in first-seen order.
    """
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(json_path(problem.path), []).append(problem.message)
    return {"errors": errors}


def register_error_handlers(app: Flask) -> None:
    """Map fhirnet's error hierarchy and werkzeug's HTTP errors to JSON responses on ``app``.

    FHIR-shaped routes, when they exist, will answer with an OperationOutcome from here too.
    """
    app.register_error_handler(InvalidInputError, _invalid_input)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _invalid_input(error: InvalidInputError) -> tuple[dict[str, Any], int]:
    return error_body(error.errors), 422


def _http_error(error: HTTPException) -> Response:
    # Start from werkzeug's own response to keep its headers (e.g. Allow on 405).
    response = error.get_response()
    response.set_data(json.dumps(error_body([FieldError(path=(), message=_describe(error))])))
    response.content_type = "application/json"
    return response


def _describe(error: HTTPException) -> str:
    if isinstance(error, RequestEntityTooLarge) and request.max_content_length is not None:
        return f"Request body is larger than the limit of {request.max_content_length} bytes."
    return error.description or error.name


def _unexpected(error: Exception) -> tuple[dict[str, Any], int]:
    # A bug, never bad input: log the traceback for us, tell the client nothing about internals.
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    return error_body([FieldError(path=(), message=INTERNAL_ERROR_MESSAGE)]), 500
