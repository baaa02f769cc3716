"""A parsed search of the embedded store: the :class:`Query` that
:mod:`~fhirnet.adapters.store.parser` makes of search parameters, the values of its criteria,
the limits of a search, and :class:`SearchParameterError`, which refuses what the store cannot
honour.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum

from fhirnet.adapters.store.dates import Range
from fhirnet.adapters.store.parameters import Kind
from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome

DEFAULT_COUNT = 50
MAX_COUNT = 1000
#: Most values (over all parameters) one search may have; keeps the SQL small.
MAX_VALUES = 100
#: The parameter carrying the paging cursor of a ``next`` link.
CURSOR = "_cursor"
#: Result parameters the store honours (besides the search parameters of each type).
RESULT_PARAMETERS = ("_count", "_sort", "_include", "_total", "_summary", "_elements", CURSOR)


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
