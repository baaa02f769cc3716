"""Bundle entries checked and parsed into requests (:class:`Request`; R4
http.html#transaction): the method and url, the conditions (``ifNoneExist``, ``ifMatch``) and the
resource a POST or PUT carries. A malformed or unsupported entry raises :class:`EntryError` with
the status it answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhirnet.adapters.store.resources import is_id, is_resource_type
from fhirnet.errors import FhirnetError
from fhirnet.fhir.outcome import IssueType
from fhirnet.ports import Json

_UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_ETAG = re.compile(r'(?:W/)?"(?P<version>[1-9][0-9]{0,8})"')
_UNSUPPORTED_REQUEST_ELEMENTS = ("ifNoneMatch", "ifModifiedSince")


class EntryError(FhirnetError):
    """One entry cannot be processed: the HTTP status and issue type it answers with."""

    def __init__(self, status: int, code: IssueType, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        #: Set when the entry cannot even be parsed, so no Request names it.
        self.label: str | None = None
        super().__init__(message)


@dataclass(kw_only=True)
class Request:
    """One parsed ``Bundle.entry``."""

    index: int
    method: str
    resource_type: str
    resource_id: str | None = None
    version: int | None = None  # GET .../_history/<version>
    criteria: str | None = None  # conditional update/delete query
    if_none_exist: str | None = None
    if_match: int | None = None
    full_url: str | None = None
    resource: Json | None = None

    @property
    def label(self) -> str:
        """The entry as messages name it: no ids or criteria (they may identify a patient)."""
        conditional = " (conditional)" if self.criteria or self.if_none_exist else ""
        return f"Bundle.entry[{self.index}] ({self.method} {self.resource_type}{conditional})"


def parse_entry(index: int, entry: Any) -> Request:
    """Check one ``Bundle.entry`` and parse its ``request``.

    :raises EntryError: the entry is malformed or asks for something unsupported; its ``label``
        names the entry.
    """
    try:
        return _parse_entry(index, entry)
    except EntryError as error:
        error.label = f"Bundle.entry[{index}]"
        raise


def _parse_entry(index: int, entry: Any) -> Request:
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise EntryError(400, IssueType.STRUCTURE, "an entry needs a request object")
    request = entry["request"]
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not isinstance(url, str) or not url:
        raise EntryError(400, IssueType.REQUIRED, "request.method and request.url are required")
    if method in ("PATCH", "HEAD"):
        raise EntryError(405, IssueType.NOT_SUPPORTED, f"{method} is not supported")
    if method not in ("GET", "POST", "PUT", "DELETE"):
        raise EntryError(400, IssueType.VALUE, f"request.method {method!r} is not an HTTP verb")
    for name in _UNSUPPORTED_REQUEST_ELEMENTS:
        if name in request:
            raise EntryError(400, IssueType.NOT_SUPPORTED, f"request.{name} is not supported")
    full_url = entry.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise EntryError(400, IssueType.STRUCTURE, "fullUrl must be a string")
    uuid_urn = isinstance(full_url, str) and full_url.startswith("urn:uuid:")
    if uuid_urn and not _UUID_URN.fullmatch(str(full_url)):
        raise EntryError(400, IssueType.VALUE, "fullUrl is not a valid urn:uuid")
    path, question, criteria = url.lstrip("/").partition("?")
    if "://" in path:
        raise EntryError(400, IssueType.VALUE, "request.url must be relative to the server base")
    parsed = Request(
        index=index, method=method, resource_type=path.split("/", 1)[0], full_url=full_url
    )
    segments = path.split("/")
    if not is_resource_type(segments[0]):
        raise EntryError(
            400, IssueType.NOT_SUPPORTED, "request.url does not start with an R4 resource type"
        )
    _parse_target(parsed, method, segments, criteria if question else None)
    _parse_conditions(parsed, request)
    resource = entry.get("resource")
    if method in ("POST", "PUT"):
        parsed.resource = _checked_resource(parsed, resource)
    elif resource is not None:
        raise EntryError(400, IssueType.INVALID, f"a {method} entry takes no resource")
    return parsed


def _parse_target(parsed: Request, method: str, segments: list[str], criteria: str | None) -> None:
    by_id = len(segments) == 2 and criteria is None
    by_criteria = len(segments) == 1 and criteria is not None
    if len(segments) >= 2 and not is_id(segments[1]):
        raise EntryError(400, IssueType.VALUE, "request.url has an invalid resource id")
    if method == "POST":
        if len(segments) != 1 or criteria is not None:
            raise EntryError(
                400,
                IssueType.VALUE,
                "a POST's url is the resource type alone (conditional create: ifNoneExist)",
            )
    elif method == "GET":
        history = (
            criteria is None
            and len(segments) == 4
            and segments[2] == "_history"
            and _VERSION.fullmatch(segments[3]) is not None
        )
        if not by_id and not history:
            raise EntryError(
                400, IssueType.NOT_SUPPORTED, "GET entries support read and vread only"
            )
        parsed.resource_id = segments[1]
        parsed.version = int(segments[3]) if history else None
    elif by_id:
        parsed.resource_id = segments[1]
    elif by_criteria:
        if not criteria:
            raise EntryError(400, IssueType.INVALID, "conditional criteria must not be empty")
        parsed.criteria = criteria
    else:
        raise EntryError(400, IssueType.VALUE, f"a {method}'s url is Type/id or Type?criteria")


def _parse_conditions(parsed: Request, request: dict[str, Any]) -> None:
    if_none_exist = request.get("ifNoneExist")
    if if_none_exist is not None:
        if parsed.method != "POST" or not isinstance(if_none_exist, str):
            raise EntryError(400, IssueType.INVALID, "ifNoneExist is a string, on POST only")
        # R4 wants the query alone; "Type?query" and "?query" are tolerated.
        prefix, question, query = if_none_exist.partition("?")
        if question and prefix not in ("", parsed.resource_type):
            raise EntryError(400, IssueType.VALUE, "ifNoneExist names another resource type")
        parsed.if_none_exist = query if question else if_none_exist
    if_match = request.get("ifMatch")
    if if_match is not None:
        matched = _ETAG.fullmatch(if_match) if isinstance(if_match, str) else None
        if parsed.method not in ("PUT", "DELETE") or matched is None:
            raise EntryError(
                400, IssueType.INVALID, 'ifMatch is an ETag (W/"<version>"), on PUT or DELETE'
            )
        parsed.if_match = int(matched["version"])


def _checked_resource(parsed: Request, value: Any) -> Json:
    if not isinstance(value, dict):
        raise EntryError(400, IssueType.REQUIRED, f"a {parsed.method} entry needs a resource")
    resource: Json = value
    if resource.get("resourceType") != parsed.resource_type:
        raise EntryError(
            400,
            IssueType.INVALID,
            "resource.resourceType is not the resource type of request.url",
        )
    meta = resource.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise EntryError(400, IssueType.STRUCTURE, "resource.meta must be an object")
    given = resource.get("id")
    if parsed.method == "PUT":
        if given is not None and not is_id(given):
            raise EntryError(400, IssueType.VALUE, "resource.id is not a valid FHIR id")
        if parsed.resource_id is not None and given != parsed.resource_id:
            # R4 update: the id is required and must equal the id in the url.
            raise EntryError(400, IssueType.INVALID, "resource.id must equal the id in the url")
    elif "id" in resource:
        # R4 create: a client's id is ignored; the server assigns one.
        resource = {k: v for k, v in resource.items() if k != "id"}
    return resource
