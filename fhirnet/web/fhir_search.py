"""FHIR search of the conformance resources: the query string as a :class:`SearchQuery`, which
matches resources and writes the links of its pages (FHIR R4 search §3.1.1)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from fhirnet.fhir.capability import RESULT_PARAMETERS, SEARCH_PARAMETERS
from fhirnet.fhir.outcome import IssueType
from fhirnet.fhir.profiles import Resource
from fhirnet.web.errors import FhirRequestError

_DIGITS = re.compile(r"^[0-9]{1,9}$")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


@dataclass(frozen=True, kw_only=True)
class SearchQuery:
    """A parsed search: AND of ``(parameter, OR-values)`` criteria, then the page to return."""

    criteria: tuple[tuple[str, tuple[str, ...]], ...]
    count: int | None
    offset: int

    def matches(self, resource: Resource) -> bool:
        return all(
            any(_match(name, value, resource) for value in values) for name, values in self.criteria
        )

    def link(self, base: str, resource_type: str, offset: int) -> str:
        pairs = [(name, ",".join(v.replace(",", r"\,") for v in vs)) for name, vs in self.criteria]
        if self.count is not None:
            pairs.append(("_count", str(self.count)))
        if offset:
            pairs.append(("_offset", str(offset)))
        return f"{base}/{resource_type}" + (f"?{urlencode(pairs, safe=':/')}" if pairs else "")


def _match(name: str, value: str, resource: Resource) -> bool:
    if name == "_id":
        return bool(resource.get("id") == value)
    if name == "version":
        return bool(resource.get("version") == value)
    # url: exact canonical, optionally "|version" (FHIR R4 search §3.1.1.4.12, canonical URLs).
    url, bar, version = value.partition("|")
    return resource.get("url") == url and (not bar or resource.get("version") == version)


def search_query(
    resource_type: str, args: MultiDict[str, str], *, lenient: bool, ignored: Collection[str]
) -> SearchQuery:
    """Parse the query string of a search; 400 for what the server cannot honour.

    :param resource_type: a type of :data:`~fhirnet.fhir.capability.SEARCH_PARAMETERS`.
    :param args: the query string.
    :param lenient: skip unknown parameters and modifiers (``Prefer: handling=lenient``).
    :param ignored: parameters that are not search criteria (``_format``, ``_pretty``).
    :raises FhirRequestError: an unsupported parameter or modifier, or a bad ``_count`` or
        ``_offset``.
    """
    supported = {parameter.name for parameter in SEARCH_PARAMETERS[resource_type]}
    criteria: list[tuple[str, tuple[str, ...]]] = []
    for name, value in args.items(multi=True):
        if name in ignored or name in RESULT_PARAMETERS:
            continue
        base_name, colon, modifier = name.partition(":")
        if base_name in supported and colon and not lenient:
            raise FhirRequestError(
                400,
                IssueType.NOT_SUPPORTED,
                f"Search modifier :{modifier} is not supported (parameter {base_name}).",
            )
        if name not in supported:
            if lenient:
                continue
            raise FhirRequestError(
                400,
                IssueType.NOT_SUPPORTED,
                f"Search parameter {name!r} is not supported for {resource_type}; supported: "
                f"{', '.join(sorted(supported | set(RESULT_PARAMETERS)))} (see /fhir/metadata).",
            )
        values = tuple(v.replace(r"\,", ",") for v in _UNESCAPED_COMMA.split(value) if v)
        if values:  # an empty parameter is ignored (FHIR R4 search §3.1.1.1)
            criteria.append((name, values))
    count = _non_negative(args, "_count")
    offset = _non_negative(args, "_offset")
    return SearchQuery(criteria=tuple(criteria), count=count, offset=offset or 0)


def _non_negative(args: MultiDict[str, str], name: str) -> int | None:
    values = [value for value in args.getlist(name) if value]  # R4 §3.1.1.1: empty is ignored
    if not values:
        return None
    if len(values) > 1 or not _DIGITS.match(values[0]):
        raise FhirRequestError(
            400, IssueType.INVALID, f"{name} must be given once, as a whole number from 0."
        )
    return int(values[0])
