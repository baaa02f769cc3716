"""HTTP plumbing of the FHIR endpoint: the ``/fhir`` blueprint, content negotiation, request
bodies, ``Prefer`` and the shape of every answer.

The views (:mod:`fhirnet.web.fhir_views` for reads, searches and ``$validate``;
:mod:`fhirnet.web.fhir_submissions` for submissions and their status) register on :data:`bp` and
use only these helpers to read the request and write the response, so every FHIR route
negotiates, decodes and answers the same way (FHIR R4 http.html).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from flask import Blueprint, g, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from fhirnet.fhir.audit import ANONYMOUS
from fhirnet.fhir.outcome import IssueType
from fhirnet.fhir.subsetting import ELEMENTS, SUMMARY, Subsetting, Summary, subsetting
from fhirnet.ports import Json
from fhirnet.services.audits import AuditTrail
from fhirnet.web import public_root, web_state
from fhirnet.web.bodies import NOT_PLAIN_UTF8, body_within_limit, is_plain_utf8
from fhirnet.web.errors import FhirRequestError, fhir_json_response
from fhirnet.web.limits import JsonLimits, check_json, limits_of, no_duplicate_keys, too_deep

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

FHIR_JSON = "application/fhir+json"
#: Media types a request body may have.
BODY_MEDIA_TYPES = (FHIR_JSON, "application/json")
#: ``charset`` values a body may declare: FHIR JSON is UTF-8 (R4 http §3.1.0.1.1).
UTF_8_NAMES = frozenset({"utf-8", "utf8"})
#: ``_format`` values meaning JSON (FHIR R4 http §3.1.0.1.8).
FORMAT_VALUES = frozenset({"json", "application/json", FHIR_JSON})
#: Parameters every FHIR interaction takes.
FORMAT_PARAMETERS = ("_format", "_pretty")


class LogicalIdConverter(BaseConverter):
    """The ``id`` segment of a read: anything but a segment starting with ``$``, which names an
    operation (``/QuestionnaireResponse/$validate``), or with ``_`` (``_history``, ``_search``:
    no FHIR id starts with one). So a read never matches an operation's URL,
    and ``OPTIONS`` or a 405 there lists the operation's methods only (``Allow: POST``), not GET.
    """

    regex = r"[^/$_][^/]*"


@bp.record_once
def _register_converters(state: BlueprintSetupState) -> None:
    """Before the views' routes are added, which use it."""
    state.app.url_map.converters["logical_id"] = LogicalIdConverter


@bp.before_request
def negotiate() -> None:
    """Refuse, with 406, a request that does not accept JSON; check ``_pretty`` (every blueprint
    serving under ``/fhir`` installs it).

    ``_format`` overrides ``Accept`` (FHIR R4 http §3.1.0.1.8), so a browser can ask for
    ``?_format=json``.
    """
    formats = request.args.getlist("_format")
    accepted = (
        all(_media_type(value) in FORMAT_VALUES for value in formats)
        if formats
        else _accepts_json(request.headers.get("Accept", ""))
    )
    versions = _fhir_versions(request.headers.get("Accept", ""))
    if not formats and versions and not any(v in SERVED_FHIR_VERSIONS for v in versions):
        raise FhirRequestError(
            406,
            IssueType.NOT_SUPPORTED,
            f"Only FHIR R4 is served (fhirVersion=4.0); asked for {', '.join(sorted(versions))}.",
        )
    if not accepted:
        raise FhirRequestError(
            406,
            IssueType.NOT_SUPPORTED,
            "Only JSON is served (application/fhir+json, _format=json); XML and Turtle are not.",
        )
    if request.args.get("_pretty", "false") not in ("true", "false"):
        raise FhirRequestError(400, IssueType.INVALID, "_pretty must be true or false.")


@bp.after_request
def options_without_body(response: Response) -> Response:
    """``OPTIONS`` on a FHIR URL: ``200`` with ``Allow`` and no body. Flask's automatic answer
    labels its empty body ``text/html``, the only non-FHIR media type the endpoint would send."""
    if request.method == "OPTIONS" and response.status_code == 200 and not response.data:
        del response.headers["Content-Type"]
        response.headers["Content-Length"] = "0"
    return response


def respond(body: Mapping[str, Any], status: int = 200) -> Response:
    """A FHIR JSON answer, pretty-printed when the client asked for ``_pretty=true``."""
    return fhir_json_response(body, status, pretty=request.args.get("_pretty") == "true")


def base_url() -> str:
    """The FHIR base URL, e.g. ``https://fhirnet.example.org/fhir`` (:func:`public_root`)."""
    return public_root() + (bp.url_prefix or "")


def audit_trail() -> AuditTrail:
    """The audit trail of the current request: its authenticated client, or ``anonymous``."""
    principal = getattr(g, "fhirnet_principal", None)
    return AuditTrail(requester=ANONYMOUS if principal is None else principal.subject)


def preferences() -> dict[str, str]:
    """``Prefer`` header preferences (RFC 7240), names and values lower-cased."""
    found = {}
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.strip().lower()] = value.strip().strip('"').lower()
    return found


def return_preference() -> str:
    """The ``Prefer: return=`` value, lower-cased; ``representation`` when not given."""
    return preferences().get("return", "representation")


def respond_async() -> bool:
    """Whether the client asked for ``Prefer: respond-async`` (R4 async.html): 202 at once."""
    return "respond-async" in preferences()


def lenient() -> bool:
    """Whether the client sent ``Prefer: handling=lenient`` (ignore unknown parameters)."""
    return preferences().get("handling") == "lenient"


#: Parameters every read takes besides :data:`FORMAT_PARAMETERS` (:func:`requested_subset`).
SUBSET_PARAMETERS = (SUMMARY, ELEMENTS)


def requested_subset(resource_type: str | None, *, search: bool) -> Subsetting:
    """The ``_summary``/``_elements`` of the request (:mod:`fhirnet.fhir.subsetting`); 400 for a
    bad value, and for ``_summary=count`` on a read (a count is a search's)."""
    found = subsetting(resource_type, request.args.getlist(SUMMARY), request.args.getlist(ELEMENTS))
    if found.summary is Summary.COUNT and not search:
        raise FhirRequestError(
            400, IssueType.INVALID, "_summary=count applies to searches only, not to a read."
        )
    return found


def check_parameters(allowed: Collection[str]) -> None:
    """400 for a query parameter outside ``allowed``, unless the client prefers lenient handling."""
    if lenient():
        return
    unknown = sorted({name for name in request.args if name not in allowed})
    if unknown:
        raise FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            f"Parameter(s) not supported here: {', '.join(unknown)}. "
            f"Supported: {', '.join(allowed)}.",
        )


def resource_of(body: Any, resource_type: str, *, parameter: str | None = None) -> Json:
    """The resource of type ``resource_type`` a body holds: the body itself, or (when
    ``parameter`` is given) the resource of that parameter of a ``Parameters`` body."""
    _require_resource(body, "The body")
    if parameter is not None and body["resourceType"] == "Parameters":
        body = parameter_resource(parameters(body), parameter, resource_type)
    if body.get("resourceType") != resource_type:
        also = " (or a Parameters resource holding one)" if parameter else ""
        raise FhirRequestError(
            400,
            IssueType.INVALID,
            f"Expected a {resource_type}{also}, got {body.get('resourceType')!r}.",
        )
    resource: Json = body
    return resource


def parameters(body: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """The entries of a ``Parameters`` body by name, in order: the one unwrapper of operation
    bodies (``$validate``, ``$extract``)."""
    entries = body.get("parameter", [])
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in entries
    ):
        raise FhirRequestError(
            400, IssueType.STRUCTURE, "Parameters.parameter must be a list of objects with a name."
        )
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_name.setdefault(entry["name"], []).append(entry)
    return by_name


def parameter_resource(
    by_name: Mapping[str, list[Mapping[str, Any]]], name: str, resource_type: str
) -> Json:
    """The resource of the one parameter ``name`` (400 when there is none, or several)."""
    found = [entry.get("resource") for entry in by_name.get(name, [])]
    if len(found) != 1 or not isinstance(found[0], dict):
        raise FhirRequestError(
            400,
            IssueType.REQUIRED,
            f"A Parameters body needs exactly one {name!r} parameter holding the "
            f"{resource_type} as its resource.",
            expression="Parameters.parameter",
        )
    _require_resource(found[0], f"The {name!r} parameter")
    resource: Json = found[0]
    return resource


def _require_resource(body: Any, what: str) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirRequestError(
            400,
            IssueType.STRUCTURE,
            f"{what} must be a FHIR resource: an object with resourceType.",
        )


def json_body() -> Any:
    """The decoded JSON request body: 415 for other media types (or a charset other than UTF-8),
    413 over the size limit, 400 if not strict JSON, 400/413/422 over the JSON limits
    (:mod:`fhirnet.web.limits`), all before any other work on it."""
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if request.mimetype not in BODY_MEDIA_TYPES or charset not in UTF_8_NAMES:
        raise FhirRequestError(
            415,
            IssueType.NOT_SUPPORTED,
            f"Content-Type must be {' or '.join(BODY_MEDIA_TYPES)} (UTF-8), got "
            f"{request.mimetype or 'none'}.",
        )
    limits = limits_of(web_state().settings)
    body = _parse_json(_utf8_text(body_within_limit()), limits)
    check_json(body, limits)
    return body


def _utf8_text(raw: bytes) -> str:
    """The body decoded as UTF-8, the only encoding FHIR JSON has (R4 json.html; RFC 8259 §8.1).

    A body that :func:`~fhirnet.web.bodies.is_plain_utf8` refuses (a byte order mark, UTF-8's
    included, or a NUL byte: UTF-16/UTF-32) is **415**, as on the JSON API: the representation,
    not its content, is the problem, and the client can fix it by re-encoding. Bytes that are no
    UTF-8 at all are malformed content: **400**.
    """
    if not is_plain_utf8(raw):
        raise FhirRequestError(415, IssueType.NOT_SUPPORTED, NOT_PLAIN_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FhirRequestError(
            400, IssueType.STRUCTURE, "The body is not valid UTF-8 text."
        ) from None


def _parse_json(raw: str, limits: JsonLimits) -> Any:
    """Decode strict JSON: no duplicate keys, no NaN/Infinity, no number too large for a float
    (FHIR JSON has none of these)."""
    try:
        return json.loads(
            raw,
            object_pairs_hook=no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise too_deep(limits) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        message = str(error)
    raise FhirRequestError(400, IssueType.STRUCTURE, f"The body is not valid JSON: {message}.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e999, which float() reads as inf
        raise ValueError("a number is too large")
    return value


#: ``fhirVersion`` values of the FHIR media type this server answers (R4 http.html#version-
#: parameter: the major.minor version).
SERVED_FHIR_VERSIONS = frozenset({"4.0", "4.0.1"})


def _fhir_versions(header: str) -> set[str]:
    """The ``fhirVersion`` parameters of an ``Accept`` header's media ranges."""
    found = set()
    for part in header.split(","):
        for field in part.split(";")[1:]:
            name, _, value = field.partition("=")
            if name.strip().lower() == "fhirversion":
                found.add(value.strip().strip('"'))
    return found


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(header: str) -> bool:
    """Whether an ``Accept`` header admits FHIR JSON or plain JSON (RFC 9110 §12.5.1).

    Each candidate gets the quality of the most specific range that matches it, so
    ``application/fhir+json;q=0, */*`` refuses FHIR JSON but still admits ``application/json``.
    Media type parameters other than ``q`` (e.g. ``fhirVersion=4.0``) are ignored.
    """
    if not header.strip():
        return True
    return any(_quality(header, candidate) > 0 for candidate in BODY_MEDIA_TYPES)


def _quality(header: str, media_type: str) -> float:
    kind = media_type.split("/", 1)[0]
    best = (-1, 0.0)  # (specificity, quality)
    for part in header.split(","):
        fields = part.split(";")
        media_range = fields[0].strip().lower()
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range)
        if specificity is None or specificity <= best[0]:
            continue
        quality = 1.0
        for field in fields[1:]:
            name, _, value = field.partition("=")
            if name.strip().lower() == "q" and re.fullmatch(r"\s*[01](\.[0-9]{0,3})?\s*", value):
                quality = float(value)
        best = (specificity, quality)
    return best[1]
