"""The plain-JSON assessment API (``assessment-api.md``): ``POST /api/v1/assessments``."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import UnsupportedMediaType

from fhirnet.criteria import assess
from fhirnet.trials import derive_endpoints
from fhirnet.web import web_state
from fhirnet.web.assessment_schemas import dump_assessment, load_request
from fhirnet.web.bodies import NOT_PLAIN_UTF8, body_within_limit, is_plain_utf8
from fhirnet.web.endpoint_schemas import dump_endpoints, load_endpoints_request
from fhirnet.web.limits import JsonLimits, check_json, limits_of
from fhirnet.web.schema_fields import parse_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")

JSON_MEDIA_TYPE = "application/json"


def assess_document(raw: bytes | str, limits: JsonLimits | None = None) -> dict[str, Any]:
    """Run one assessment from a JSON request body to a JSON-ready response body.

    The single path from body to body, shared by the endpoint and ``fhirnet assess``, so both
    validate, compute and render identically.

    :param raw: the request body.
    :param limits: what the decoded body may hold, checked before the schemas run (the endpoint
        passes the settings' limits); ``None``, for the offline command: not checked.
    :returns: the response body of the contract.
    :raises InvalidInputError: malformed JSON, a structural problem or a violated criteria rule.
    :raises JsonLimitError: the body exceeds ``limits``.
    """
    body = parse_json(raw)
    if limits is not None:
        check_json(body, limits)
    return dump_assessment(assess(load_request(body)))


@bp.post("/assessments")
def create_assessment() -> dict[str, Any]:
    """Assess the timepoints in the body under the requested criteria."""
    # The schemas bound every list before reading its items, with the contract's field-precise
    # 422s; a count of all values would pre-empt them with a vaguer 413, so it is left out here.
    limits = dataclasses.replace(limits_of(web_state().settings), max_values=sys.maxsize)
    return assess_document(_json_body(), limits)


def endpoints_document(raw: bytes | str, limits: JsonLimits | None = None) -> dict[str, Any]:
    """Derive one subject's trial endpoints from a JSON request body (``docs/trials.md``).

    The single path shared by ``POST /api/v1/endpoints`` and ``fhirnet endpoints``.

    :raises InvalidInputError: malformed JSON, a structural problem or a rule of the request.
    :raises JsonLimitError: the body exceeds ``limits``.
    """
    body = parse_json(raw)
    if limits is not None:
        check_json(body, limits)
    return dump_endpoints(derive_endpoints(load_endpoints_request(body)))


@bp.post("/endpoints")
def create_endpoints() -> dict[str, Any]:
    """Derive the trial endpoints of one subject's visits (it reads no stored data)."""
    limits = dataclasses.replace(limits_of(web_state().settings), max_values=sys.maxsize)
    return endpoints_document(_json_body(), limits)


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of this API, generated from the request and response schemas."""
    return web_state().openapi


def _json_body() -> bytes:
    """The raw body of a JSON request; 415 for any other media type (or a charset other than
    UTF-8, the only one JSON has, RFC 8259 §8.1) and for a body in UTF-16 or UTF-32 or with a
    byte order mark (:func:`~fhirnet.web.bodies.is_plain_utf8`, as on the FHIR routes), 413
    when over the limit."""
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if request.mimetype != JSON_MEDIA_TYPE or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"Content-Type must be {JSON_MEDIA_TYPE} (UTF-8).")
    raw = body_within_limit()
    if not is_plain_utf8(raw):
        raise UnsupportedMediaType(NOT_PLAIN_UTF8)
    return raw
