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
* Modifiers, chaining, ``_has``, ``_summary``, ``_elements`` and unknown parameters are refused
  with :class:`SearchParameterError` (400, ``not-supported``), as the FHIR endpoint's
  conformance-resource search does; ``_format`` and ``_pretty`` belong to the HTTP layer, which
  removes them before calling the store.

SQL is composed from constant fragments and ``?`` marks only; every value is a bound parameter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhirnet.adapters.store.dates import OPEN_HIGH, OPEN_LOW, Range, parse_range
from fhirnet.adapters.store.parameters import (
    COMMON,
    ID,
    LAST_UPDATED,
    Kind,
    Parameter,
    parameters_of,
)
from fhirnet.adapters.store.resources import RESOURCE_TYPES, is_id, parse_reference
from fhirnet.adapters.store.versions import load_many
from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.ports import Json, SearchParams

DEFAULT_COUNT = 50
MAX_COUNT = 1000
#: Most bytes of stored JSON the matches of one page may hold (at least one match is always
#: given): ``_count`` alone let one page of large resources (AuditEvents) reach tens of MB.
MAX_PAGE_BYTES = 4 * 1024 * 1024
#: Most values (over all parameters) one search may have; keeps the SQL small.
MAX_VALUES = 100
#: The parameter carrying the paging cursor of a ``next`` link.
CURSOR = "_cursor"
#: Result parameters the store honours (besides the search parameters of each type).
RESULT_PARAMETERS = ("_count", "_sort", "_include", "_total", CURSOR)
_TOTAL_MODES = ("none", "estimate", "accurate")
_CURSOR_VERSION = 1
_SQLITE_MIN, _SQLITE_MAX = -(2**63), 2**63 - 1


class SearchParameterError(FhirServerRejectedError):
    """A search the store cannot run as asked: an unknown or unsupported parameter, modifier or
    prefix (``not-supported``), or a malformed value or cursor (``invalid``).

    It is a :class:`~fhirnet.errors.FhirServerRejectedError` with status 400 and an
    OperationOutcome, like a remote server's refusal, so callers of the ``FhirStore`` port see the
    same error from both stores; the web layer can map it to its own 400.
    """

    def __init__(self, message: str, *, code: IssueType = IssueType.NOT_SUPPORTED) -> None:
        issue = Issue.error(code, message)
        super().__init__(message, status=400, outcome=operation_outcome([issue]))
        self.code = code


class Prefix(StrEnum):
    """Comparison prefixes of date parameters (R4 search.html#prefix)."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    LT = "lt"
    GE = "ge"
    LE = "le"
    SA = "sa"
    EB = "eb"


@dataclass(frozen=True, kw_only=True)
class TokenValue:
    """``system|code``; ``any_system`` for a bare code, ``code=None`` for ``system|``."""

    system: str | None
    code: str | None
    any_system: bool = False


@dataclass(frozen=True, kw_only=True)
class ReferenceValue:
    """A reference search value; ``type`` is ``None`` for a bare id."""

    type: str | None
    id: str


@dataclass(frozen=True, kw_only=True)
class CanonicalValue:
    """``url`` or ``url|version``."""

    url: str
    version: str | None


@dataclass(frozen=True, kw_only=True)
class DateValue:
    """A date search value: a prefix and the range its precision implies."""

    prefix: Prefix
    range: Range


Value = TokenValue | ReferenceValue | CanonicalValue | DateValue | str


@dataclass(frozen=True, kw_only=True)
class Criterion:
    """One occurrence of a search parameter: its values are OR-ed; criteria are AND-ed."""

    name: str
    kind: Kind
    values: tuple[Value, ...]
    raw: str


@dataclass(frozen=True, kw_only=True)
class SortKey:
    """One ``_sort`` key."""

    name: str
    descending: bool


@dataclass(frozen=True, kw_only=True)
class Include:
    """One ``_include``: follow ``param`` of the matches, to ``target`` resources only if set."""

    param: str
    target: str | None


@dataclass(frozen=True, kw_only=True)
class Query:
    """A parsed search of one resource type."""

    resource_type: str
    criteria: tuple[Criterion, ...]
    sort: tuple[SortKey, ...] = ()
    count: int = DEFAULT_COUNT
    includes: tuple[Include, ...] = ()
    cursor: str | None = None

    @property
    def fingerprint(self) -> str:
        """What a cursor is bound to: the type, the criteria (in any order) and the sort."""
        criteria = sorted([c.name, c.raw] for c in self.criteria)
        sort = [[key.name, key.descending] for key in self.sort]
        text = json.dumps([self.resource_type, criteria, sort], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


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


def parse_query(resource_type: str, params: SearchParams, *, conditional: bool = False) -> Query:
    """Parse search parameters; strict: anything the store cannot honour raises.

    :param conditional: parse the criteria of a conditional interaction (``ifNoneExist``, a
        conditional update or delete URL), where result parameters have no place.
    :raises SearchParameterError: an unsupported parameter, modifier or prefix, or a bad value.
    """
    if resource_type not in RESOURCE_TYPES:
        raise SearchParameterError(f"{resource_type!r} is not a FHIR R4 resource type")
    known = parameters_of(resource_type)
    criteria: list[Criterion] = []
    result: dict[str, list[str]] = {}
    for name, value in _pairs(params):
        if not value:
            continue  # R4 §3.1.1.1: an empty parameter value is ignored
        if name in RESULT_PARAMETERS and not conditional:
            result.setdefault(name, []).append(value)
            continue
        criteria.append(_criterion(resource_type, known, name, value, conditional))
    if sum(len(c.values) for c in criteria) > MAX_VALUES:
        raise SearchParameterError(
            f"a search may have at most {MAX_VALUES} values", code=IssueType.INVALID
        )
    _check_total(result.get("_total", []))
    return Query(
        resource_type=resource_type,
        criteria=tuple(criteria),
        sort=_sort(resource_type, known, result.get("_sort", [])),
        count=_count(result.get("_count", [])),
        includes=_includes(resource_type, known, result.get("_include", [])),
        cursor=_single(CURSOR, result.get(CURSOR, [])),
    )


def run(
    connection: sqlite3.Connection, query: Query, *, max_bytes: int = MAX_PAGE_BYTES
) -> SearchPage:
    """Run ``query`` on a connection inside a read (or write) transaction.

    :param max_bytes: the page ends before its matches' JSON exceeds this (one match at least).
    :raises SearchParameterError: the query's cursor is malformed or belongs to another search.
    """
    filters, filter_params = _filters(query)
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
    columns = _columns(query)
    select = ", ".join(f"{sql} AS k{i}" for i, (sql, _, _) in enumerate(columns))
    select_params = [p for _, _, params in columns for p in params]
    order = ", ".join(f"k{i} {'DESC' if desc else 'ASC'}" for i, (_, desc, _) in enumerate(columns))
    after, after_params = _after(query, columns)
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
        next_cursor=_cursor(query, list(page[-1][1:])) if more and page else None,
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
    filters, params = _filters(query)
    rows = connection.execute(
        f"SELECT r.id FROM resources r WHERE {filters} ORDER BY r.id LIMIT ?",  # noqa: S608
        [*params, limit],
    )
    return [row[0] for row in rows]


# -- parsing ---------------------------------------------------------------------------------


def _pairs(params: SearchParams) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if not isinstance(name, str) or not isinstance(item, str):
                raise SearchParameterError(
                    "search parameter names and values must be strings", code=IssueType.INVALID
                )
            if not _is_text(name) or not _is_text(item):
                raise SearchParameterError(
                    "search parameters must be valid Unicode text", code=IssueType.INVALID
                )
            pairs.append((name, item))
    return pairs


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _criterion(
    resource_type: str,
    known: Mapping[str, Parameter],
    name: str,
    value: str,
    conditional: bool,
) -> Criterion:
    base, colon, modifier = name.partition(":")
    if base in known or base in COMMON:
        if colon:
            raise SearchParameterError(
                f"search modifier :{modifier} is not supported (parameter {base})"
            )
    else:
        supported = sorted([*COMMON, *known] + ([] if conditional else list(RESULT_PARAMETERS)))
        kind = "conditional criteria" if conditional and name in RESULT_PARAMETERS else "search"
        raise SearchParameterError(
            f"{kind} parameter {name!r} is not supported for {resource_type}; supported: "
            f"{', '.join(supported)}"
        )
    parts = _split(value, ",")
    if not parts:
        # Only separators (``subject=,``): no value to match, and no SQL to build from none.
        raise SearchParameterError(
            f"search parameter {base} has no value, only separators", code=IssueType.INVALID
        )
    values: tuple[Value, ...]
    if base == ID:
        values = tuple(_unescape(part) for part in parts)
        return Criterion(name=ID, kind=Kind.TOKEN, values=values, raw=value)
    if base == LAST_UPDATED:
        values = tuple(_date(LAST_UPDATED, part) for part in parts)
        return Criterion(name=LAST_UPDATED, kind=Kind.DATE, values=values, raw=value)
    parameter = known[base]
    values = tuple(_value(parameter, part) for part in parts)
    return Criterion(name=base, kind=parameter.kind, values=values, raw=value)


def _value(parameter: Parameter, text: str) -> Value:
    if parameter.kind is Kind.TOKEN:
        head, bar, tail = _partition(text, "|")
        if not bar:
            return TokenValue(system=None, code=_unescape(head), any_system=True)
        return TokenValue(system=_unescape(head) or None, code=_unescape(tail) or None)
    if parameter.kind is Kind.REFERENCE:
        return _reference(parameter, _unescape(text))
    if parameter.kind is Kind.CANONICAL:
        url, bar, version = _partition(text, "|")
        return CanonicalValue(url=_unescape(url), version=_unescape(version) if bar else None)
    return _date(parameter.name, text)


def _reference(parameter: Parameter, text: str) -> ReferenceValue:
    if is_id(text):
        return ReferenceValue(type=None, id=text)
    target = parse_reference(text)
    if target is None:
        raise SearchParameterError(
            f"{parameter.name}: {text!r} is not a reference (Type/id, id or an absolute URL)",
            code=IssueType.INVALID,
        )
    if parameter.targets and target.type not in parameter.targets:
        raise SearchParameterError(
            f"{parameter.name} refers to {' or '.join(parameter.targets)} only, not {target.type}",
            code=IssueType.INVALID,
        )
    return ReferenceValue(type=target.type, id=target.id)


def _date(name: str, text: str) -> DateValue:
    text = _unescape(text)
    prefix = Prefix.EQ
    if text[:2].isalpha():
        if text[:2] == "ap":
            raise SearchParameterError(f"{name}: the date prefix 'ap' is not supported")
        try:
            prefix = Prefix(text[:2])
        except ValueError:
            raise SearchParameterError(
                f"{name}: unknown date prefix {text[:2]!r}; use one of "
                f"{', '.join(p.value for p in Prefix)}",
                code=IssueType.INVALID,
            ) from None
        text = text[2:]
    # A "+" of a timezone arrives as a space when a client did not percent-encode it.
    found = parse_range(text.replace(" ", "+"))
    if found is None:
        raise SearchParameterError(
            f"{name}: {text!r} is not a FHIR date, dateTime or instant", code=IssueType.INVALID
        )
    return DateValue(prefix=prefix, range=found)


def _sort(
    resource_type: str, known: Mapping[str, Parameter], values: list[str]
) -> tuple[SortKey, ...]:
    text = _single("_sort", values)
    if text is None:
        return ()
    allowed = [LAST_UPDATED, ID, *(p.name for p in known.values() if p.kind is Kind.DATE)]
    keys: list[SortKey] = []
    for item in text.split(","):
        descending = item.startswith("-")
        name = item[1:] if descending else item
        if name not in allowed:
            raise SearchParameterError(
                f"_sort by {name!r} is not supported for {resource_type}; sort by "
                f"{', '.join(allowed)} (prefix '-' for descending)"
            )
        if any(key.name == name for key in keys):
            raise SearchParameterError(f"_sort names {name} twice", code=IssueType.INVALID)
        keys.append(SortKey(name=name, descending=descending))
        if name == ID:
            break  # ids are unique: later keys could never decide anything
    return tuple(keys)


def _count(values: list[str]) -> int:
    text = _single("_count", values)
    if text is None:
        return DEFAULT_COUNT
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise SearchParameterError("_count must be a whole number from 0", code=IssueType.INVALID)
    return min(int(text), MAX_COUNT)


def _includes(
    resource_type: str, known: Mapping[str, Parameter], values: list[str]
) -> tuple[Include, ...]:
    includes: list[Include] = []
    for text in values:
        source, _, rest = text.partition(":")
        param, _, target = rest.partition(":")
        parameter = known.get(param) if source == resource_type else None
        if parameter is None or parameter.kind is not Kind.REFERENCE:
            references = [p.name for p in known.values() if p.kind is Kind.REFERENCE]
            raise SearchParameterError(
                f"_include={text} is not supported; supported: "
                + (", ".join(f"{resource_type}:{name}" for name in references) or "none")
            )
        if target and (
            target not in RESOURCE_TYPES or (parameter.targets and target not in parameter.targets)
        ):
            raise SearchParameterError(
                f"_include={text}: {param} cannot refer to {target!r}", code=IssueType.INVALID
            )
        include = Include(param=param, target=target or None)
        if include not in includes:
            includes.append(include)
    return tuple(includes)


def _check_total(values: list[str]) -> None:
    text = _single("_total", values)
    if text is not None and text not in _TOTAL_MODES:
        raise SearchParameterError(
            f"_total must be one of {', '.join(_TOTAL_MODES)}", code=IssueType.INVALID
        )


def _single(name: str, values: list[str]) -> str | None:
    if len(values) > 1:
        raise SearchParameterError(f"{name} may be given only once", code=IssueType.INVALID)
    return values[0] if values else None


def _split(text: str, separator: str) -> list[str]:
    """Split at unescaped ``separator``s, keeping escapes for a later :func:`_unescape`."""
    parts: list[str] = []
    start = 0
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return [part for part in parts if part]


def _partition(text: str, separator: str) -> tuple[str, str, str]:
    """``str.partition`` at the first unescaped ``separator``."""
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            return text[:index], separator, text[index + 1 :]
        index += 1
    return text, "", ""


def _unescape(text: str) -> str:
    r"""Undo R4's search escapes ``\,`` ``\|`` ``\$`` ``\\``; other backslashes stay."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in ",|$\\":
            out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


# -- SQL -------------------------------------------------------------------------------------

#: How selective a criterion usually is, most first: the first one present drives the query
#: through an index; the others are checked per candidate.
_SELECTIVITY = (Kind.REFERENCE, Kind.CANONICAL, Kind.TOKEN, Kind.DATE)
#: Token parameters that split resources into few large groups; they drive the query last.
_BROAD_TOKENS = frozenset({"status"})


def _filters(query: Query) -> tuple[str, list[object]]:
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
                clauses.append(
                    "r.rid IN (SELECT s.rid FROM search_index s"  # noqa: S608 -- see module doc
                    f" WHERE s.type = ? AND s.param = ? AND {ors})"
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


_Column = tuple[str, bool, list[object]]  # (SQL expression, descending, its parameters)


def _columns(query: Query) -> list[_Column]:
    """The ORDER BY columns: the ``_sort`` keys, then ``_id`` unless it is a key already."""
    columns: list[_Column] = []
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


def _after(query: Query, columns: list[_Column]) -> tuple[str, list[object]]:
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


def _cursor(query: Query, values: list[object]) -> str:
    body = {"v": _CURSOR_VERSION, "q": query.fingerprint, "k": values}
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(query: Query, cursor: str, columns: list[_Column]) -> list[object]:
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
