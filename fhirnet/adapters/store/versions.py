"""Reading and writing resource versions in the store's tables, inside a transaction the caller
holds (:meth:`fhirnet.adapters.store.sqlite.Database.writing` or ``reading``).

Every write adds a row to ``history`` (the version kept for good), moves the ``resources`` row to
that version and replaces the resource's ``search_index`` rows. A deletion is a version without
content: the resource reads as gone and leaves the index, and its history stays.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fhirnet.adapters.store.dates import format_instant, instant_us
from fhirnet.adapters.store.parameters import DraftRows, index_rows
from fhirnet.adapters.store.resources import to_json
from fhirnet.ports import Json


@dataclass(frozen=True, kw_only=True)
class Current:
    """The ``resources`` row of a resource: its latest version, which may be a deletion."""

    rid: int
    type: str
    id: str
    version: int
    deleted: bool


def current(connection: sqlite3.Connection, resource_type: str, resource_id: str) -> Current | None:
    """The latest version of ``resource_type/resource_id``, deleted or not; ``None`` if the store
    has never held it."""
    row = connection.execute(
        "SELECT rid, version, deleted FROM resources WHERE type = ? AND id = ?",
        (resource_type, resource_id),
    ).fetchone()
    if row is None:
        return None
    return Current(
        rid=row[0], type=resource_type, id=resource_id, version=row[1], deleted=bool(row[2])
    )


def load(connection: sqlite3.Connection, resource_type: str, resource_id: str) -> Json | None:
    """The current content of a resource; ``None`` if it does not exist or is deleted."""
    row = connection.execute(
        "SELECT h.content FROM resources r"
        " JOIN history h ON h.rid = r.rid AND h.version = r.version"
        " WHERE r.type = ? AND r.id = ? AND r.deleted = 0",
        (resource_type, resource_id),
    ).fetchone()
    return None if row is None else _parse(row[0])


def load_version(
    connection: sqlite3.Connection, resource_type: str, resource_id: str, version: int
) -> Json | None:
    """One version of a resource; ``None`` if there is no such version or it is a deletion."""
    row = connection.execute(
        "SELECT h.content FROM resources r JOIN history h ON h.rid = r.rid"
        " WHERE r.type = ? AND r.id = ? AND h.version = ? AND h.deleted = 0",
        (resource_type, resource_id, version),
    ).fetchone()
    return None if row is None else _parse(row[0])


def load_many(connection: sqlite3.Connection, rids: Iterable[int]) -> dict[int, Json]:
    """The current content of the live resources among ``rids``, by rid."""
    wanted = list(rids)
    if not wanted:
        return {}
    # One JSON array parameter instead of one "?" per rid: no SQL text is built from input.
    rows = connection.execute(
        "SELECT r.rid, h.content FROM resources r"
        " JOIN history h ON h.rid = r.rid AND h.version = r.version"
        " WHERE r.rid IN (SELECT value FROM json_each(?)) AND r.deleted = 0",
        (json.dumps(wanted),),
    )
    return {rid: _parse(content) for rid, content in rows}


def save(
    connection: sqlite3.Connection,
    resource: Json,
    *,
    resource_id: str,
    existing: Current | None,
    now: datetime,
    rows: DraftRows | None = None,
) -> Json:
    """Store ``resource`` as the next version of ``resource_id`` (version 1 if ``existing`` is
    ``None``) and return it as stored, with ``id`` and ``meta.versionId``/``meta.lastUpdated``.

    :param rows: the resource's index rows as far as computed before the write lock, on the
        objects of ``resource`` (:func:`~fhirnet.adapters.store.parameters.draft_rows`).
    :raises ValueError: the resource is not representable as FHIR JSON.
    """
    resource_type = str(resource["resourceType"])
    version = 1 if existing is None else existing.version + 1
    meta = resource.get("meta")
    stored: Json = {
        "resourceType": resource_type,
        "id": resource_id,
        "meta": {
            **(meta if isinstance(meta, dict) else {}),
            "versionId": str(version),
            "lastUpdated": format_instant(now),
        },
        **{k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")},
    }
    content = to_json(stored)
    updated = instant_us(now)
    if existing is None:
        cursor = connection.execute(
            "INSERT INTO resources (type, id, version, last_updated) VALUES (?, ?, ?, ?)",
            (resource_type, resource_id, version, updated),
        )
        if cursor.lastrowid is None:  # never: an INSERT into a rowid table sets it
            raise RuntimeError("SQLite assigned no rowid")
        rid = cursor.lastrowid
    else:
        rid = existing.rid
        connection.execute(
            "UPDATE resources SET version = ?, last_updated = ?, deleted = 0 WHERE rid = ?",
            (version, updated, rid),
        )
    connection.execute(
        "INSERT INTO history (rid, version, last_updated, deleted, content) VALUES (?, ?, ?, 0, ?)",
        (rid, version, updated, content),
    )
    # A new rid has no index rows yet (rids are never reused: ``resources`` rows are never
    # deleted, and a rolled-back insert takes its index rows with it).
    _index(connection, rid, stored, fresh=existing is None, draft=rows)
    return stored


def reindex(connection: sqlite3.Connection, resource_types: Iterable[str]) -> int:
    """Rebuild the ``search_index`` rows of every live resource of ``resource_types`` from its
    current content: what a schema migration runs when the indexed parameters of a type change
    (rows written before then lack the new parameters). Returns how many resources it indexed.
    """
    count = 0
    for resource_type in resource_types:
        rows = connection.execute(
            "SELECT r.rid, h.content FROM resources r"
            " JOIN history h ON h.rid = r.rid AND h.version = r.version"
            " WHERE r.type = ? AND r.deleted = 0",
            (resource_type,),
        ).fetchall()
        for rid, content in rows:
            _index(connection, rid, _parse(content))
        count += len(rows)
    return count


def _index(
    connection: sqlite3.Connection,
    rid: int,
    stored: Json,
    *,
    fresh: bool = False,
    draft: DraftRows | None = None,
) -> None:
    """Replace the ``search_index`` rows of ``rid`` with those of ``stored``; ``fresh``: ``rid``
    was just inserted, so there are no rows to delete (one statement less under the lock)."""
    if not fresh:
        connection.execute("DELETE FROM search_index WHERE rid = ?", (rid,))
    connection.executemany(
        "INSERT INTO search_index (rid, type, param, system, code, low, high)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (rid, stored["resourceType"], row.param, row.system, row.code, row.low, row.high)
            for row in index_rows(stored, draft=draft)
        ],
    )


def delete(connection: sqlite3.Connection, existing: Current, *, now: datetime) -> int:
    """Record the deletion of a live resource as its next version; returns that version."""
    version = existing.version + 1
    updated = instant_us(now)
    connection.execute(
        "UPDATE resources SET version = ?, last_updated = ?, deleted = 1 WHERE rid = ?",
        (version, updated, existing.rid),
    )
    connection.execute(
        "INSERT INTO history (rid, version, last_updated, deleted, content)"
        " VALUES (?, ?, ?, 1, NULL)",
        (existing.rid, version, updated),
    )
    connection.execute("DELETE FROM search_index WHERE rid = ?", (existing.rid,))
    return version


def _parse(content: str) -> Json:
    resource: Json = json.loads(content)
    return resource
