"""The plain-JSON assessment API (``assessment-api.md``): ``POST /api/v1/assessments``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import UnsupportedMediaType

from fhirnet.criteria import assess
from fhirnet.web import web_state
from fhirnet.web.bodies import body_within_limit
from fhirnet.web.schemas import dump_assessment, load_request, parse_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")

JSON_MEDIA_TYPE = "application/json"


def assess_document(raw: bytes | str) -> dict[str, Any]:
    """Run one assessment from a JSON request body to a JSON-ready response body.

    The single path from body to body, shared by the endpoint and ``fhirnet assess``, so both
    validate, compute and render identically.

    :param raw: the request body.
    :returns: the response body of the contract.
    :raises InvalidInputError: malformed JSON, a structural problem or a violated criteria rule.
    """
    return dump_assessment(assess(load_request(parse_json(raw))))


@bp.post("/assessments")
def create_assessment() -> dict[str, Any]:
    """Assess the timepoints in the body under the requested criteria."""
    return assess_document(_json_body())


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of this API, generated from the request and response schemas."""
    return web_state().openapi


def _json_body() -> bytes:
    """The raw body of a JSON request; 415 for any other media type, 413 when over the limit."""
    if request.mimetype != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"Content-Type must be {JSON_MEDIA_TYPE}.")
    return body_within_limit()
