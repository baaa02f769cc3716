"""The interactions of Bundle entries against the store, by :class:`Processor`: which resource a
POST or PUT writes (:class:`Plan`, conditional criteria evaluated under the write lock), the
write with its references resolved, DELETE and GET (read, vread), each answered as a
:class:`Result`. The order of the entries and the all-or-nothing rule belong to
:mod:`~fhirnet.adapters.store.transaction`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

from fhirnet.adapters.store import versions
from fhirnet.adapters.store.entries import EntryError, Request
from fhirnet.adapters.store.parameters import DraftRows, draft_rows
from fhirnet.adapters.store.parser import parse_query
from fhirnet.adapters.store.query import Query, SearchParameterError
from fhirnet.adapters.store.resources import (
    ReferenceDraft,
    Target,
    content_key,
    is_id,
    is_resource_type,
)
from fhirnet.adapters.store.search import matching_ids
from fhirnet.adapters.store.versions import Current
from fhirnet.fhir.outcome import IssueType
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
_CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)")
#: How often a fresh id is drawn when the id factory returns one in use.
_ID_ATTEMPTS = 5


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


@dataclass(kw_only=True)
class Draft:
    """A POST or PUT resource made ready before the write lock: its private copy with the
    references to resolve marked, and its index rows as far as they are final (``None`` for a
    resource nested too deeply to copy, refused when it is written, in its turn)."""

    references: ReferenceDraft
    rows: DraftRows | None


class Preparation:
    """The work on a Bundle's entries that does not depend on the database, done before the store
    takes its write lock so that the lock is held for look-ups, ids and INSERTs only: each POST
    and PUT resource copied for reference rewriting, with the index rows no rewriting changes;
    each conditional URL (``ifNoneExist``, conditional update and delete) parsed into a query.

    :param full_urls: the Bundle's ``fullUrl``\\ s (empty for a batch: nothing resolves there).
    """

    def __init__(self, requests: list[Request], full_urls: set[str]) -> None:
        def needs(reference: str) -> bool:
            # Every reference Processor._resolve may change; it returns the others unchanged.
            return (
                reference in full_urls
                or reference.startswith(("urn:uuid:", "urn:oid:"))
                or "?" in reference
            )

        self.drafts: dict[int, Draft] = {}
        self.queries: dict[tuple[str, str], Query | EntryError] = {}
        for request in requests:
            if request.resource is not None:
                self.drafts[request.index] = _draft(request.resource, needs)
            for criteria in (request.criteria, request.if_none_exist):
                if criteria is not None:
                    key = (request.resource_type, criteria)
                    self.queries[key] = _conditional_query(*key)


def _draft(resource: Json, needs: Callable[[str], bool]) -> Draft:
    references = ReferenceDraft(resource, needs)
    if references.too_deep:
        return Draft(references=references, rows=None)
    try:
        # Computed on the copy, so that the Reference objects it keeps are the ones resolved.
        rows = draft_rows(references.value, needs)
    except RecursionError:
        rows = None
    return Draft(references=references, rows=rows)


def _conditional_query(resource_type: str, criteria: str) -> Query | EntryError:
    """The query of conditional criteria, or the error refusing them (raised when used)."""
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(criteria, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    try:
        query = parse_query(resource_type, params, conditional=True)
    except SearchParameterError as error:
        return EntryError(400, error.code, f"conditional criteria: {error}")
    if not query.criteria:
        return EntryError(
            400, IssueType.INVALID, "conditional criteria must name at least one value"
        )
    return query


class Processor:
    """The interactions of entries against one connection at one instant.

    :param prepared: the entries' work done before the write lock; what it lacks is done here.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        now: datetime,
        new_id: Callable[[], str],
        prepared: Preparation | None = None,
    ) -> None:
        self._prepared = prepared or Preparation([], set())
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
        draft = self._prepared.drafts.get(request.index)
        if draft is None:  # not prepared: do it now
            draft = _draft(request.resource or {}, lambda reference: True)
        try:
            draft.references.resolve(lambda ref: self._resolve(ref, mapping))
            resource = draft.references.value
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
                rows=draft.rows,
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
        key = (resource_type, criteria)
        query = self._prepared.queries.get(key)
        if query is None:  # a conditional reference, or not prepared
            query = self._prepared.queries[key] = _conditional_query(resource_type, criteria)
        if isinstance(query, EntryError):
            raise EntryError(query.status, query.code, query.message)
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
