"""Bundle processing of the embedded store: ``transaction`` (all or nothing) and ``batch``
(entry by entry), following R4 http.html#transaction, inside a write transaction the caller holds.

Transaction processing, in R4's order (step 1 and the database-independent part of the writes,
:func:`prepare_transaction`, before the caller takes the write lock; the rest,
:func:`process_transaction`, under it):

1. parse and check every entry; ``fullUrl``\\ s must be unique; copy the POST/PUT resources for
   step 4 with their index rows that no rewriting changes, parse the conditional URLs;
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

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhirnet.adapters.store.entries import EntryError, Request, parse_entry
from fhirnet.adapters.store.interactions import Plan, Preparation, Processor, Result
from fhirnet.adapters.store.resources import Target
from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.ports import Json


@dataclass(kw_only=True)
class Prepared:
    """A Bundle's entries parsed and made ready before the store takes its write lock
    (:class:`~fhirnet.adapters.store.interactions.Preparation`); for a batch, an entry that does
    not parse is kept as its error, answered in its turn."""

    requests: list[Request | EntryError]
    preparation: Preparation


def prepare_transaction(bundle: Json) -> Prepared:
    """Step 1 of a transaction, which needs no database: parse and check every entry, and
    prepare the writes.

    :raises FhirServerRejectedError: an entry is malformed, or two share a ``fullUrl``.
    """
    entries = _entries(bundle)
    try:
        requests = [parse_entry(index, entry) for index, entry in enumerate(entries)]
        _check_full_urls(requests)
    except EntryError as error:
        raise _rejected(error.label or "Bundle.entry", error) from None
    full_urls = {request.full_url for request in requests if request.full_url is not None}
    return Prepared(requests=list(requests), preparation=Preparation(requests, full_urls))


def process_transaction(
    connection: sqlite3.Connection, prepared: Prepared, *, now: datetime, new_id: Callable[[], str]
) -> Json:
    """Process a prepared ``transaction`` Bundle; returns the ``transaction-response`` Bundle.

    :param connection: a ``sqlite3.Connection`` inside a write transaction.
    :raises FhirServerRejectedError: an entry failed; the caller must roll back.
    """
    requests = [request for request in prepared.requests if isinstance(request, Request)]
    processor = Processor(connection, now=now, new_id=new_id, prepared=prepared.preparation)
    current: Request | None = None
    try:
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


def prepare_batch(bundle: Json) -> Prepared:
    """What of a batch needs no database: each entry parsed (or its error kept), the writes
    prepared.

    :raises FhirServerRejectedError: the Bundle itself is malformed.
    """
    parsed: list[Request | EntryError] = []
    for index, entry in enumerate(_entries(bundle)):
        try:
            parsed.append(parse_entry(index, entry))
        except EntryError as error:
            parsed.append(error)
    requests = [request for request in parsed if isinstance(request, Request)]
    # Entries of a batch must not depend on each other (R4): no fullUrl resolves.
    return Prepared(requests=parsed, preparation=Preparation(requests, set()))


def process_batch(
    connection: sqlite3.Connection, prepared: Prepared, *, now: datetime, new_id: Callable[[], str]
) -> Json:
    """Process a prepared ``batch`` Bundle entry by entry, each in its own savepoint; returns the
    ``batch-response`` Bundle, failed entries answered with their status and OperationOutcome.

    Entries of a batch must not depend on each other (R4), so a ``urn:uuid:`` reference fails
    its entry.

    :param connection: a ``sqlite3.Connection`` inside a write transaction.
    """
    processor = Processor(connection, now=now, new_id=new_id, prepared=prepared.preparation)
    answers: list[Json] = []
    for index, parsed in enumerate(prepared.requests):
        connection.execute("SAVEPOINT entry")
        request: Request | None = None
        try:
            if isinstance(parsed, EntryError):
                raise parsed
            request = parsed
            result = processor.single(request)
        except EntryError as error:
            connection.execute("ROLLBACK TO entry")
            label = error.label or (request.label if request else f"Bundle.entry[{index}]")
            result = Result(status=error.status, outcome=_outcome(label, error))
        connection.execute("RELEASE entry")
        answers.append(result.entry())
    return _response("batch-response", answers)


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
