"""Tests of the embedded FHIR store (:mod:`fhirnet.adapters.store`), and the helpers its modules
share:
a clock on a non-UTC offset (``style.md`` P13), Bundle entry builders and response readers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from fhirnet.ports import Json

#: The clock's timezone: not UTC, so that a missing conversion shows.
CEST = timezone(timedelta(hours=2))
SYSTEM = "urn:fhirnet:test"
LOINC = "http://loinc.org"


class Clock:
    """A clock that moves one second each time it is read, starting 2025-01-13 11:30 CEST."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 13, 11, 30, tzinfo=CEST)

    def __call__(self) -> datetime:
        now = self.now
        self.now += timedelta(seconds=1)
        return now


class Ids:
    """Predictable resource ids: ``id-1``, ``id-2``, ..."""

    def __init__(self) -> None:
        self.issued = 0

    def __call__(self) -> str:
        self.issued += 1
        return f"id-{self.issued}"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def transaction(*entries: Json) -> Json:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def batch(*entries: Json) -> Json:
    return {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}


def post(resource: Json, *, full_url: str | None = None, if_none_exist: str | None = None) -> Json:
    request: Json = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist is not None:
        request["ifNoneExist"] = if_none_exist
    entry: Json = {"resource": resource, "request": request}
    if full_url is not None:
        entry["fullUrl"] = full_url
    return entry


def put(
    url: str, resource: Json, *, full_url: str | None = None, if_match: str | None = None
) -> Json:
    request: Json = {"method": "PUT", "url": url}
    if if_match is not None:
        request["ifMatch"] = if_match
    entry: Json = {"resource": resource, "request": request}
    if full_url is not None:
        entry["fullUrl"] = full_url
    return entry


def delete(url: str) -> Json:
    return {"request": {"method": "DELETE", "url": url}}


def get(url: str) -> Json:
    return {"request": {"method": "GET", "url": url}}


def observation(**elements: Any) -> Json:
    """A final Observation; ``elements`` add to or replace its elements."""
    resource: Json = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "21907-1"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-01-13",
    }
    resource.update(elements)
    return resource


def identifier(value: str) -> list[Json]:
    return [{"system": SYSTEM, "value": value}]


def located(entry: Json) -> tuple[str, str, str]:
    """``(type, id, version)`` from a response entry's ``location``."""
    path, _, version = entry["response"]["location"].partition("/_history/")
    resource_type, resource_id = path.split("/")
    return resource_type, resource_id, version


def status(entry: Json) -> int:
    return int(entry["response"]["status"].split()[0])


def statuses(response: Json) -> list[int]:
    return [status(entry) for entry in response.get("entry", [])]
