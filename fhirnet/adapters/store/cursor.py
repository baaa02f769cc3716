"""The opaque paging cursor of a search: keyset pagination on the sort columns and ``_id``.

A cursor holds the sort values of the last match of a page and the fingerprint of its search, as
URL-safe base64 JSON; it is refused with any other search, so a client cannot splice pages.
"""

from __future__ import annotations

import base64
import binascii
import json

from fhirnet.adapters.store.clauses import Column
from fhirnet.adapters.store.query import CURSOR, Query, SearchParameterError
from fhirnet.fhir.outcome import IssueType

_CURSOR_VERSION = 1
_SQLITE_MIN, _SQLITE_MAX = -(2**63), 2**63 - 1


def after_cursor(query: Query, columns: list[Column]) -> tuple[str, list[object]]:
    """The keyset condition "after the cursor's row" over the columns ``k0, k1, ...``."""
    if query.cursor is None:
        return "1", []
    values = _read_cursor(query, query.cursor, columns)
    sql, params = "", []
    # Built from the last column back: (k0 > v0) OR (k0 = v0 AND ((k1 > v1) OR (k1 = v1 ...))).
    for index in reversed(range(len(columns))):
        beyond = f"k{index} {'<' if columns[index][1] else '>'} ?"
        if not sql:
            sql, params = beyond, [values[index]]
        else:
            sql = f"({beyond} OR (k{index} = ? AND {sql}))"
            params = [values[index], values[index], *params]
    return sql, params


def next_cursor(query: Query, values: list[object]) -> str:
    """The cursor of the page after the row whose sort values are ``values``."""
    body = {"v": _CURSOR_VERSION, "q": query.fingerprint, "k": values}
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(query: Query, cursor: str, columns: list[Column]) -> list[object]:
    """The sort values in ``cursor``, checked against ``query`` and its ``columns``."""
    invalid = SearchParameterError(
        f"{CURSOR} is not a cursor of this search; start again without it", code=IssueType.INVALID
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
        raise invalid
    values = body.get("k")
    if body.get("q") != query.fingerprint or not isinstance(values, list):
        raise invalid
    if len(values) != len(columns):
        raise invalid
    for (sql, _, _), value in zip(columns, values, strict=True):
        expected: type = str if sql == "r.id" else int
        if type(value) is not expected:  # bool is an int subclass; reject it too
            raise invalid
        if isinstance(value, int) and not _SQLITE_MIN <= value <= _SQLITE_MAX:
            raise invalid  # SQLite would refuse to bind it
    return values
