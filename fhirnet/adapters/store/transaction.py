"""Bundle processing of the embedded store: ``transaction`` (all or nothing) and ``batch``
(entry by entry), following R4 http.html#transaction, inside a write transaction the caller holds.

Transaction processing, in R4's order:

1. parse and check every entry; ``fullUrl``\\ s must be unique;
2. DELETEs (``Type/id``, or conditional ``Type?criteria``: 0 matches → nothing, 1 → deleted,
   more → 412);
3. the identities of POSTs and PUTs, conditional matches evaluated now, under the write lock:
   ``ifNoneExist`` (0 → create, 1 → no-op answering the existing resource with 200, more → 412)
   and conditional update ``PUT Type?criteria`` (0 → create with the resource's id or a new one,
   1 → update it (400 if the resource names another id), more → 412). Two entries changing the
   same resource fail the transaction (R4: identities must not overlap);
4. references rewritten in every POST/PUT resource: a reference equal to an entry's ``fullUrl``
   becomes that entry's ``Type/id``; an unresolved ``urn:uuid:``/``urn:oid:`` reference fails;
   a conditional reference ``Type?criteria`` becomes its single match (412 otherwise);
5. POSTs, then PUTs, are written; then GETs (read, vread) are answered.

Any failure raises :class:`~fhirnet.errors.FhirServerRejectedError` with the failing entry's
status and an OperationOutcome naming it (``Bundle.entry[i]``); the caller's write transaction
then rolls everything back. Messages name the entry by index, method and type only: conditional
URLs carry patient identifiers, and messages end up in logs.

Decisions where R4 leaves a choice:

* An update whose content equals the current version (ignoring ``meta.versionId`` and
  ``meta.lastUpdated``) creates **no new version** and answers 200 with the current one, so a
  retried transaction of conditional updates writes nothing (as HAPI FHIR does).
* Update-as-create is allowed (``PUT Type/id`` of a new id, with the client's id); a deleted
  resource is recreated by a PUT, with the next version number.
* A conditional match does not see this Bundle's own POSTs/PUTs: criteria are evaluated against
  the database after the Bundle's DELETEs.
* ``ifMatch`` (``W/"v"``) is honoured on PUT and DELETE: another current version, or no live
  resource, is 412. ``ifNoneMatch``, ``ifModifiedSince``, PATCH, HEAD and GET searches are not
  supported; references to resources outside the Bundle are not checked for existence (the
  Patient may live in another system).
* The response always carries the resource (``Prefer: return=representation``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fhirnet.adapters.store import versions
from fhirnet.adapters.store.parser import parse_query
from fhirnet.adapters.store.query import SearchParameterError
from fhirnet.adapters.store.resources import (
    Target,
    content_key,
    is_id,
    is_resource_type,
    rewrite_references,
)
from fhirnet.adapters.store.search import matching_ids
from fhirnet.adapters.store.versions import Current
from fhirnet.errors import FhirnetError, FhirServerRejectedError
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.ports import Json

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
}
_UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_ETAG = re.compile(r'(?:W/)?"(?P<version>[1-9][0-9]{0,8})"')
_UNSUPPORTED_REQUEST_ELEMENTS = ("ifNoneMatch", "ifModifiedSince")
#: How often a fresh id is drawn when the id factory returns one in use.
_ID_ATTEMPTS = 5


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


@dataclass(kw_only=True)
class Plan:
    """What a POST or PUT will do to which resource."""

    target: Target
    existing: Current | None
    no_op: bool = False  # a conditional create that matched


@dataclass(kw_only=True)
class Result:
    """The ``response`` (and resource) of one processed entry."""

    status: int
    resource: Json | None = None
    outcome: Json | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def entry(self) -> Json:
        response: Json = {"status": f"{self.status} {_REASONS.get(self.status, '')}".rstrip()}
        if self.resource is not None:
            meta = self.resource["meta"]
            response["location"] = (
                f"{self.resource['resourceType']}/{self.resource['id']}"
                f"/_history/{meta['versionId']}"
            )
            response["etag"] = f'W/"{meta["versionId"]}"'
            response["lastModified"] = meta["lastUpdated"]
        if self.outcome is not None:
            response["outcome"] = self.outcome
        entry: Json = {"response": response}
        if self.resource is not None:
            entry = {"resource": self.resource, **entry}
        return entry


def process_transaction(
    connection: sqlite3.Connection, bundle: Json, *, now: datetime, new_id: Callable[[], str]
) -> Json:
    """Process a ``transaction`` Bundle; returns the ``transaction-response`` Bundle.

    :param connection: a ``sqlite3.Connection`` inside a write transaction.
    :raises FhirServerRejectedError: an entry failed; the caller must roll back.
    """
    entries = _entries(bundle)
    processor = Processor(connection, now=now, new_id=new_id)
    current: Request | None = None
    try:
        requests = [parse_entry(index, entry) for index, entry in enumerate(entries)]
        _check_full_urls(requests)
        results: dict[int, Result] = {}
        for current in _of(requests, "DELETE"):
            results[current.index] = processor.delete(current)
        writes = [*_of(requests, "POST"), *_of(requests, "PUT")]
        plans: dict[int, Plan] = {}
        for current in writes:
            plans[current.index] = processor.plan(current)
        current = None
        _check_overlaps(processor.deleted, plans)
        mapping = {
            request.full_url: str(plans[request.index].target)
            for request in writes
            if request.full_url is not None
        }
        for current in writes:
            results[current.index] = processor.write(current, plans[current.index], mapping)
        for current in _of(requests, "GET"):
            results[current.index] = processor.get(current)
    except EntryError as error:
        label = error.label or (current.label if current else "Bundle.entry")
        raise _rejected(label, error) from None
    return _response("transaction-response", [results[r.index].entry() for r in requests])


def process_batch(
    connection: sqlite3.Connection, bundle: Json, *, now: datetime, new_id: Callable[[], str]
) -> Json:
    """Process a ``batch`` Bundle entry by entry, each in its own savepoint; returns the
    ``batch-response`` Bundle, failed entries answered with their status and OperationOutcome.

    Entries of a batch must not depend on each other (R4), so a ``urn:uuid:`` reference fails
    its entry.

    :param connection: a ``sqlite3.Connection`` inside a write transaction.
    :raises FhirServerRejectedError: the Bundle itself is malformed (no entry is processed).
    """
    entries = _entries(bundle)
    processor = Processor(connection, now=now, new_id=new_id)
    answers: list[Json] = []
    for index, entry in enumerate(entries):
        connection.execute("SAVEPOINT entry")
        request: Request | None = None
        try:
            request = parse_entry(index, entry)
            result = processor.single(request)
        except EntryError as error:
            connection.execute("ROLLBACK TO entry")
            label = error.label or (request.label if request else f"Bundle.entry[{index}]")
            result = Result(status=error.status, outcome=_outcome(label, error))
        connection.execute("RELEASE entry")
        answers.append(result.entry())
    return _response("batch-response", answers)


class Processor:
    """The interactions of entries against one connection at one instant."""

    def __init__(
        self, connection: sqlite3.Connection, *, now: datetime, new_id: Callable[[], str]
    ) -> None:
        self._connection = connection
        self._now = now
        self._new_id = new_id
        self._assigned: set[Target] = set()
        self._conditional_references: dict[str, str] = {}
        #: Resources this processor deleted, with the index of the entry that did it.
        self.deleted: dict[Target, int] = {}

    def single(self, request: Request) -> Result:
        """Process one entry on its own (batch): no other entry's fullUrl resolves."""
        if request.method == "DELETE":
            return self.delete(request)
        if request.method == "GET":
            return self.get(request)
        return self.write(request, self.plan(request), {})

    def delete(self, request: Request) -> Result:
        """DELETE ``Type/id`` or ``Type?criteria``; deleting nothing is a success (204)."""
        if request.criteria is not None:
            found = self._matches(request.resource_type, request.criteria, limit=2)
            if len(found) > 1:
                raise EntryError(
                    412, IssueType.PROCESSING, "the conditional delete matches several resources"
                )
            resource_id = found[0] if found else None
        else:
            resource_id = request.resource_id
        existing = (
            versions.current(self._connection, request.resource_type, resource_id)
            if resource_id
            else None
        )
        live = existing is not None and not existing.deleted
        self._check_if_match(request, existing if live else None)
        if existing is not None and not existing.deleted:
            versions.delete(self._connection, existing, now=self._now)
            self.deleted[Target(type=existing.type, id=existing.id)] = request.index
        return Result(status=204)

    def plan(self, request: Request) -> Plan:
        """Decide which resource a POST or PUT writes (evaluating conditional criteria now)."""
        kind = request.resource_type
        if request.method == "POST":
            if request.if_none_exist is not None:
                found = self._matches(kind, request.if_none_exist, limit=2)
                if len(found) > 1:
                    raise EntryError(
                        412, IssueType.PROCESSING, "ifNoneExist matches several resources"
                    )
                if found:
                    existing = versions.current(self._connection, kind, found[0])
                    return Plan(
                        target=Target(type=kind, id=found[0]), existing=existing, no_op=True
                    )
            return Plan(target=self._fresh(kind), existing=None)
        resource = request.resource or {}
        resource_id = request.resource_id
        if request.criteria is not None:
            found = self._matches(kind, request.criteria, limit=2)
            if len(found) > 1:
                raise EntryError(
                    412, IssueType.PROCESSING, "the conditional update matches several resources"
                )
            given = resource.get("id")
            if found and given is not None and given != found[0]:
                raise EntryError(
                    400,
                    IssueType.INVALID,
                    "the resource's id is not the id of the resource the criteria match",
                )
            # No match and an id given: update as create, with the client's id.
            resource_id = found[0] if found else given
        if resource_id is None:
            return Plan(target=self._fresh(kind), existing=None)
        target = Target(type=kind, id=resource_id)
        self._assigned.add(target)
        return Plan(target=target, existing=versions.current(self._connection, kind, resource_id))

    def write(self, request: Request, plan: Plan, mapping: dict[str, str]) -> Result:
        """Write a planned POST or PUT with its references resolved through ``mapping``."""
        kind, resource_id = plan.target.type, plan.target.id
        if plan.no_op:
            existing = versions.load(self._connection, kind, resource_id)
            return Result(status=200, resource=existing)
        live = plan.existing is not None and not plan.existing.deleted
        self._check_if_match(request, plan.existing if live else None)
        try:
            resource = rewrite_references(request.resource, lambda ref: self._resolve(ref, mapping))
            resource["id"] = resource_id
            if live:
                stored = versions.load(self._connection, kind, resource_id)
                if stored is not None and content_key(stored) == content_key(resource):
                    return Result(status=200, resource=stored)
            saved = versions.save(
                self._connection,
                resource,
                resource_id=resource_id,
                existing=plan.existing,
                now=self._now,
            )
        except ValueError as error:
            raise EntryError(400, IssueType.STRUCTURE, str(error)) from None
        except RecursionError:
            raise EntryError(
                400, IssueType.STRUCTURE, "the resource is nested too deeply"
            ) from None
        return Result(status=200 if live else 201, resource=saved)

    def get(self, request: Request) -> Result:
        """GET ``Type/id`` (read) or ``Type/id/_history/v`` (vread)."""
        kind, resource_id = request.resource_type, request.resource_id or ""
        if request.version is None:
            found = versions.load(self._connection, kind, resource_id)
        else:
            found = versions.load_version(self._connection, kind, resource_id, request.version)
        if found is None:
            raise EntryError(404, IssueType.NOT_FOUND, "the resource does not exist")
        return Result(status=200, resource=found)

    def _fresh(self, resource_type: str) -> Target:
        for _ in range(_ID_ATTEMPTS):
            target = Target(type=resource_type, id=self._new_id())
            if not is_id(target.id):
                raise ValueError(f"the id factory returned an invalid FHIR id: {target.id!r}")
            taken = versions.current(self._connection, resource_type, target.id) is not None
            if target not in self._assigned and not taken:
                self._assigned.add(target)
                return target
        raise RuntimeError(f"the id factory returned {_ID_ATTEMPTS} ids already in use")

    def _matches(self, resource_type: str, criteria: str, *, limit: int) -> list[str]:
        params: dict[str, list[str]] = {}
        for name, value in parse_qsl(criteria, keep_blank_values=True):
            params.setdefault(name, []).append(value)
        try:
            query = parse_query(resource_type, params, conditional=True)
        except SearchParameterError as error:
            raise EntryError(400, error.code, f"conditional criteria: {error}") from None
        if not query.criteria:
            raise EntryError(
                400, IssueType.INVALID, "conditional criteria must name at least one value"
            )
        return matching_ids(self._connection, query, limit=limit)

    def _resolve(self, reference: str, mapping: dict[str, str]) -> str:
        if reference in mapping:
            return mapping[reference]
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            raise EntryError(
                400,
                IssueType.NOT_FOUND,
                f"the reference {reference} is not the fullUrl of an entry of this Bundle",
            )
        conditional = _CONDITIONAL_REFERENCE.fullmatch(reference)
        if conditional is None or not is_resource_type(conditional["type"]):
            return reference
        if reference not in self._conditional_references:
            found = self._matches(conditional["type"], conditional["query"], limit=2)
            if len(found) != 1:
                how_many = "no resource" if not found else "several resources"
                raise EntryError(
                    412, IssueType.PROCESSING, f"a conditional reference matches {how_many}"
                )
            self._conditional_references[reference] = f"{conditional['type']}/{found[0]}"
        return self._conditional_references[reference]

    def _check_if_match(self, request: Request, live: Current | None) -> None:
        if request.if_match is None:
            return
        if live is None or live.version != request.if_match:
            raise EntryError(
                412,
                IssueType.PROCESSING,
                f"ifMatch names version {request.if_match}, but the current version is "
                + (str(live.version) if live else "none (no such resource)"),
            )


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


def _entries(bundle: Json) -> list[Any]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise _rejected(
            "Bundle.entry", EntryError(400, IssueType.STRUCTURE, "Bundle.entry must be a list")
        )
    return entries


def _of(requests: list[Request], method: str) -> list[Request]:
    return [request for request in requests if request.method == method]


def _check_full_urls(requests: list[Request]) -> None:
    seen: dict[str, int] = {}
    for request in requests:
        if request.full_url is None:
            continue
        if request.full_url in seen:
            raise EntryError(
                400,
                IssueType.INVALID,
                f"Bundle.entry[{request.index}] repeats the fullUrl of "
                f"Bundle.entry[{seen[request.full_url]}]",
            )
        seen[request.full_url] = request.index


def _check_overlaps(deleted: dict[Target, int], plans: dict[int, Plan]) -> None:
    """R4: resource identities changed by DELETE, POST and PUT entries must not overlap."""
    changed: dict[Target, int] = dict(deleted)
    for index, plan in sorted(plans.items()):
        if plan.no_op:
            continue
        if plan.target in changed:
            raise EntryError(
                400,
                IssueType.INVALID,
                f"Bundle.entry[{changed[plan.target]}] and Bundle.entry[{index}] change the "
                "same resource",
            )
        changed[plan.target] = index


def _outcome(label: str, error: EntryError) -> Json:
    issue = Issue.error(error.code, f"{label}: {error.message}", expression=label.split(" ", 1)[0])
    return operation_outcome([issue])


def _rejected(label: str, error: EntryError) -> FhirServerRejectedError:
    return FhirServerRejectedError(
        f"transaction refused ({error.status}): {label}: {error.message}",
        status=error.status,
        outcome=_outcome(label, error),
    )


def _response(kind: str, entries: list[Json]) -> Json:
    bundle: Json = {"resourceType": "Bundle", "type": kind}
    if entries:
        bundle["entry"] = entries
    return bundle
