"""Search of the embedded store: query parameters parsed into a :class:`Query` (strictly: what the
store cannot honour is refused, never ignored) and run as SQL over the ``search_index`` table.

Semantics (R4 search.html), and where the store deviates:

* A parameter given several times is AND; comma-separated values are OR; ``\\,``, ``\\|``,
  ``\\$`` and ``\\\\`` escape. An empty value is ignored (R4 §3.1.1.1).
* token ``[system]|[code]``: ``code`` (any system), ``|code`` (no system), ``system|code``,
  ``system|`` (any code of the system). reference: ``Type/id``, ``id``, or an absolute URL ending
  in ``Type/id`` (its base is not compared). canonical: ``url`` (any version) or
  ``url|version``. date: prefixes ``eq ne gt lt ge le sa eb`` with R4's range semantics
  (:mod:`fhirnet.adapters.store.dates`); ``ap`` is not supported.
* ``_sort``: comma-separated keys among the type's date parameters, ``_lastUpdated`` and ``_id``,
  ``-`` for descending; ascending sorts by a value's earliest instant, descending by its latest
  (R4 §3.1.1.5.10); resources without the value come last either way; ties are broken by
  ascending ``_id``. Without ``_sort`` the order is ``_id``.
* ``_count``: page size, default :data:`DEFAULT_COUNT`, at most :data:`MAX_COUNT` (larger values
  are lowered, as R4 allows); ``_count=0`` returns the total only. A page also ends before its
  matches exceed :data:`MAX_PAGE_BYTES` of JSON (the ``next`` link goes on from there).
* ``_include=<Type>:<reference parameter>[:<target type>]`` of the searched type; included
  resources do not count towards ``_count`` or the total. ``:iterate`` and ``*`` are not
  supported.
* ``_total`` is accepted and ignored: the total is always given, exactly.
* Paging uses an opaque ``_cursor`` (keyset pagination on the sort keys and ``_id``) rather than
  an offset: a resource created or deleted while a client pages can neither repeat nor push
  another one off a page. A cursor is bound to its search and refused with any other.
* ``_summary`` and ``_elements`` are checked (:mod:`fhirnet.fhir.subsetting`) and the matches
  paged whole: the caller subsets them; ``_summary=count`` is a page of none with the total.
* Modifiers, chaining, ``_has`` and unknown parameters are refused
  with :class:`SearchParameterError` (400, ``not-supported``), as the FHIR endpoint's
  conformance-resource search does; ``_format`` and ``_pretty`` belong to the HTTP layer, which
  removes them before calling the store.

SQL is composed from constant fragments and ``?`` marks only; every value is a bound parameter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from fhirnet.adapters.store.clauses import sort_columns, where
from fhirnet.adapters.store.cursor import after_cursor, next_cursor
from fhirnet.adapters.store.query import (
    Query,
)
from fhirnet.adapters.store.versions import load_many
from fhirnet.ports import Json

__all__ = ["MAX_PAGE_BYTES", "SearchPage", "matching_ids", "run"]

#: Most bytes of stored JSON the matches of one page may hold (at least one match is always
#: given): ``_count`` alone let one page of large resources (AuditEvents) reach tens of MB.
MAX_PAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class SearchPage:
    """One page of a search: what the web layer needs for a ``searchset`` Bundle.

    :ivar matches: the page's resources (``search.mode`` match), in sort order.
    :ivar included: resources ``_include`` added (``search.mode`` include), without matches.
    :ivar total: how many resources match, over all pages.
    :ivar next_cursor: the ``_cursor`` value of the next page, ``None`` on the last one.
    """

    resource_type: str
    matches: list[Json]
    included: list[Json]
    total: int
    next_cursor: str | None


def run(
    connection: sqlite3.Connection, query: Query, *, max_bytes: int = MAX_PAGE_BYTES
) -> SearchPage:
    """Run ``query`` on a connection inside a read (or write) transaction.

    :param max_bytes: the page ends before its matches' JSON exceeds this (one match at least).
    :raises SearchParameterError: the query's cursor is malformed or belongs to another search.
    """
    filters, filter_params = where(query)
    total = connection.execute(
        f"SELECT count(*) FROM resources r WHERE {filters}",  # noqa: S608 -- constant fragments
        filter_params,
    ).fetchone()[0]
    if query.count == 0:
        return SearchPage(
            resource_type=query.resource_type,
            matches=[],
            included=[],
            total=total,
            next_cursor=None,
        )
    columns = sort_columns(query)
    select = ", ".join(f"{sql} AS k{i}" for i, (sql, _, _) in enumerate(columns))
    select_params = [p for _, _, params in columns for p in params]
    order = ", ".join(f"k{i} {'DESC' if desc else 'ASC'}" for i, (_, desc, _) in enumerate(columns))
    after, after_params = after_cursor(query, columns)
    rows = connection.execute(
        f"SELECT rid, {', '.join(f'k{i}' for i in range(len(columns)))} FROM"  # noqa: S608
        f" (SELECT r.rid AS rid, {select} FROM resources r WHERE {filters})"
        f" WHERE {after} ORDER BY {order} LIMIT ?",
        [*select_params, *filter_params, *after_params, query.count + 1],
    ).fetchall()
    page, more = rows[: query.count], len(rows) > query.count
    within = _within_bytes(connection, [row[0] for row in page], max_bytes)
    if within < len(page):
        page, more = page[:within], True
    contents = load_many(connection, [row[0] for row in page])
    matches = [contents[row[0]] for row in page]
    return SearchPage(
        resource_type=query.resource_type,
        matches=matches,
        included=_included(connection, query, [row[0] for row in page]),
        total=total,
        next_cursor=next_cursor(query, list(page[-1][1:])) if more and page else None,
    )


def _within_bytes(connection: sqlite3.Connection, rids: Sequence[int], max_bytes: int) -> int:
    """How many of ``rids``, in order, fit in ``max_bytes`` of stored JSON (at least one)."""
    sizes = dict(
        connection.execute(
            "SELECT r.rid, length(h.content) FROM resources r"
            " JOIN history h ON h.rid = r.rid AND h.version = r.version"
            " WHERE r.rid IN (SELECT value FROM json_each(?))",
            (json.dumps(list(rids)),),
        ).fetchall()
    )
    used = 0
    for index, rid in enumerate(rids):
        used += sizes.get(rid) or 0
        if used > max_bytes and index > 0:
            return index
    return len(rids)


def matching_ids(connection: sqlite3.Connection, query: Query, *, limit: int) -> list[str]:
    """The logical ids of up to ``limit`` matches (conditional interactions need 0, 1 or more)."""
    filters, params = where(query)
    rows = connection.execute(
        f"SELECT r.id FROM resources r WHERE {filters} ORDER BY r.id LIMIT ?",  # noqa: S608
        [*params, limit],
    )
    return [row[0] for row in rows]


def _included(connection: sqlite3.Connection, query: Query, rids: Sequence[int]) -> list[Json]:
    if not query.includes or not rids:
        return []
    found: set[int] = set()
    for include in query.includes:
        target_sql, target_params = (
            ("", [])
            if include.target is None
            else (
                " AND s.system = ?",
                [include.target],
            )
        )
        rows = connection.execute(
            "SELECT t.rid FROM search_index s"  # noqa: S608 -- constant fragments only
            " JOIN resources t ON t.type = s.system AND t.id = s.code AND t.deleted = 0"
            f" WHERE s.rid IN (SELECT value FROM json_each(?)) AND s.param = ?{target_sql}",
            [json.dumps(list(rids)), include.param, *target_params],
        )
        found.update(row[0] for row in rows)
    found.difference_update(rids)
    contents = load_many(connection, found)
    return sorted(contents.values(), key=lambda r: (r["resourceType"], r["id"]))
