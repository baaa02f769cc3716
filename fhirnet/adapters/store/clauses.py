"""The SQL of a parsed search over ``resources r`` and ``search_index s``: the WHERE clause
selecting its matches (:func:`where`) and the ORDER BY columns of its sort (:func:`sort_columns`),
with R4's date-prefix semantics as range conditions.

SQL is composed from constant fragments and ``?`` marks only; every value is a bound parameter.
"""

from __future__ import annotations

from typing import Any

from fhirnet.adapters.store.dates import OPEN_HIGH, OPEN_LOW
from fhirnet.adapters.store.parameters import COMMON, ID, LAST_UPDATED, Kind
from fhirnet.adapters.store.query import (
    CanonicalValue,
    Criterion,
    DateValue,
    Prefix,
    Query,
    ReferenceValue,
    TokenValue,
    Value,
)
from fhirnet.adapters.store.sqlite import DATE_ROWS, VALUE_ROWS

#: How selective a criterion usually is, most first: the first one present drives the query
#: through an index; the others are checked per candidate.
_SELECTIVITY = (Kind.REFERENCE, Kind.CANONICAL, Kind.TOKEN, Kind.DATE)
#: Token parameters that split resources into few large groups; they drive the query last.
_BROAD_TOKENS = frozenset({"status"})


def where(query: Query) -> tuple[str, list[object]]:
    """The WHERE clause (over ``resources r``) selecting the live matches of ``query``."""
    clauses = ["r.deleted = 0"]
    params: list[object] = []
    indexed = [c for c in query.criteria if c.name not in COMMON]
    driver = min(indexed, key=_rank, default=None)
    if driver is None:
        clauses.insert(0, "r.type = ?")
    else:
        # "+r.type" keeps SQLite from scanning the type index instead of following the driver.
        clauses.insert(0, "+r.type = ?")
    params.append(query.resource_type)
    for criterion in query.criteria:
        if criterion.name == ID:
            clauses.append(f"r.id IN ({', '.join('?' * len(criterion.values))})")
            params.extend(criterion.values)
        elif criterion.name == LAST_UPDATED:
            ors, ors_params = _any_of(criterion, _last_updated)
            clauses.append(ors)
            params.extend(ors_params)
        else:
            ors, ors_params = _any_of(criterion, _indexed)
            if criterion is driver:
                # Naming the rows of the parameter's kind lets SQLite use the partial index
                # that holds them (sqlite.MIGRATIONS, 3); every row of the parameter is of it.
                rows = DATE_ROWS if criterion.kind is Kind.DATE else VALUE_ROWS
                clauses.append(
                    "r.rid IN (SELECT s.rid FROM search_index s"  # noqa: S608 -- see module doc
                    f" WHERE s.type = ? AND s.param = ? AND s.{rows} AND {ors})"
                )
                params.extend([query.resource_type, criterion.name, *ors_params])
            else:
                clauses.append(
                    "EXISTS (SELECT 1 FROM search_index s"  # noqa: S608 -- see module doc
                    f" WHERE s.rid = r.rid AND s.param = ? AND {ors})"
                )
                params.extend([criterion.name, *ors_params])
    return " AND ".join(clauses), params


def _rank(criterion: Criterion) -> int:
    if criterion.name in _BROAD_TOKENS:
        return len(_SELECTIVITY)
    return _SELECTIVITY.index(criterion.kind)


def _any_of(criterion: Criterion, condition: Any) -> tuple[str, list[object]]:
    sqls: list[str] = []
    params: list[object] = []
    for value in criterion.values:
        sql, value_params = condition(value)
        sqls.append(sql)
        params.extend(value_params)
    return "(" + " OR ".join(sqls) + ")", params


def _indexed(value: Value) -> tuple[str, list[object]]:
    """The condition on one ``search_index s`` row for one search value."""
    if isinstance(value, TokenValue):
        if value.code is None:
            return "s.system = ?", [value.system]
        if value.any_system:
            return "s.code = ?", [value.code]
        if value.system is None:
            return "(s.code = ? AND s.system IS NULL)", [value.code]
        return "(s.code = ? AND s.system = ?)", [value.code, value.system]
    if isinstance(value, ReferenceValue):
        if value.type is None:
            return "s.code = ?", [value.id]
        return "(s.code = ? AND s.system = ?)", [value.id, value.type]
    if isinstance(value, CanonicalValue):
        if value.version is None:
            return "s.code = ?", [value.url]
        return "(s.code = ? AND s.system = ?)", [value.url, value.version]
    if isinstance(value, DateValue):
        return _date_condition(value, "s.low", "s.high")
    raise TypeError(f"not an indexed search value: {value!r}")


def _last_updated(value: Value) -> tuple[str, list[object]]:
    if isinstance(value, DateValue):
        # meta.lastUpdated is kept to the microsecond, so its range is [t, t + 1).
        return _date_condition(value, "r.last_updated", None)
    raise TypeError(f"not a date search value: {value!r}")


def _date_condition(value: DateValue, low: str, high: str | None) -> tuple[str, list[object]]:
    """R4 prefix semantics between the search range ``[sl, sh)`` and a target ``[tl, th)``.

    ``high=None`` means a one-microsecond target, where ``th > x`` is ``tl >= x`` and
    ``th <= x`` is ``tl < x`` (which lets SQLite use an index on the column).
    """
    sl, sh = value.range.low, value.range.high

    def high_above(bound: int) -> tuple[str, list[object]]:  # th > bound
        return (f"{high} > ?", [bound]) if high else (f"{low} >= ?", [bound])

    def high_within(bound: int) -> tuple[str, list[object]]:  # th <= bound
        return (f"{high} <= ?", [bound]) if high else (f"{low} < ?", [bound])

    def both(left: tuple[str, list[object]], joint: str, right: tuple[str, list[object]]) -> Any:
        return f"({left[0]} {joint} {right[0]})", [*left[1], *right[1]]

    contained = both((f"{low} >= ?", [sl]), "AND", high_within(sh))
    conditions: dict[Prefix, tuple[str, list[object]]] = {
        Prefix.EQ: contained,
        Prefix.NE: (f"NOT {contained[0]}", contained[1]),
        Prefix.GT: high_above(sh),
        Prefix.LT: (f"{low} < ?", [sl]),
        Prefix.GE: both(high_above(sh), "OR", (f"{low} >= ?", [sl])),
        Prefix.LE: both((f"{low} < ?", [sl]), "OR", high_within(sh)),
        Prefix.SA: (f"{low} >= ?", [sh]),
        Prefix.EB: high_within(sl),
    }
    return conditions[value.prefix]


#: One ORDER BY column: its SQL expression, whether descending, and its parameters.
Column = tuple[str, bool, list[object]]


def sort_columns(query: Query) -> list[Column]:
    """The ORDER BY columns: the ``_sort`` keys, then ``_id`` unless it is a key already."""
    columns: list[Column] = []
    for key in query.sort:
        if key.name == ID:
            columns.append(("r.id", key.descending, []))
        elif key.name == LAST_UPDATED:
            columns.append(("r.last_updated", key.descending, []))
        elif key.descending:
            # Latest instant first; resources without the value last (below any real value).
            columns.append(
                (
                    "coalesce((SELECT max(s.high) FROM search_index s"
                    " WHERE s.rid = r.rid AND s.param = ?), ?)",
                    True,
                    [key.name, OPEN_LOW - 1],
                )
            )
        else:
            columns.append(
                (
                    "coalesce((SELECT min(s.low) FROM search_index s"
                    " WHERE s.rid = r.rid AND s.param = ?), ?)",
                    False,
                    [key.name, OPEN_HIGH + 1],
                )
            )
    if not any(key.name == ID for key in query.sort):
        columns.append(("r.id", False, []))
    return columns
