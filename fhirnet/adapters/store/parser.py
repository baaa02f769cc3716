"""Search parameters parsed into a :class:`~fhirnet.adapters.store.query.Query`, strictly: an
unknown parameter, a modifier, an unsupported prefix or a malformed value raises
:class:`~fhirnet.adapters.store.query.SearchParameterError` (the semantics:
:mod:`fhirnet.adapters.store.search`). Values are split at unescaped commas and bars, then
unescaped (R4 search.html#escaping).
"""

from __future__ import annotations

from collections.abc import Mapping

from fhirnet.adapters.store.dates import parse_range
from fhirnet.adapters.store.parameters import (
    COMMON,
    ID,
    LAST_UPDATED,
    Kind,
    Parameter,
    parameters_of,
)
from fhirnet.adapters.store.query import (
    CURSOR,
    DEFAULT_COUNT,
    MAX_COUNT,
    MAX_VALUES,
    RESULT_PARAMETERS,
    CanonicalValue,
    Criterion,
    DateValue,
    Include,
    Prefix,
    Query,
    ReferenceValue,
    SearchParameterError,
    SortKey,
    TokenValue,
    Value,
)
from fhirnet.adapters.store.resources import RESOURCE_TYPES, is_id, parse_reference
from fhirnet.fhir.outcome import IssueType, MalformedRequestError
from fhirnet.fhir.subsetting import ELEMENTS, SUMMARY, Subsetting, Summary, subsetting
from fhirnet.ports import SearchParams

_TOTAL_MODES = ("none", "estimate", "accurate")


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
    count = _count(result.get("_count", []))
    if _subsetting(resource_type, result).summary is Summary.COUNT:
        count = 0  # the total only (R4 search.html#summary)
    return Query(
        resource_type=resource_type,
        criteria=tuple(criteria),
        sort=_sort(resource_type, known, result.get("_sort", [])),
        count=count,
        includes=_includes(resource_type, known, result.get("_include", [])),
        cursor=_single(CURSOR, result.get(CURSOR, [])),
    )


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


def _subsetting(resource_type: str, result: Mapping[str, list[str]]) -> Subsetting:
    """``_summary`` and ``_elements``, checked: the store pages the matches whole (the caller
    subsets them, :mod:`fhirnet.fhir.subsetting`); ``_summary=count`` is a page of none."""
    try:
        return subsetting(resource_type, result.get(SUMMARY, []), result.get(ELEMENTS, []))
    except MalformedRequestError as error:
        (issue,) = error.issues
        raise SearchParameterError(issue.message, code=issue.code) from None


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
    if "\\" not in text:  # no escape (nearly every value): str.split does the same, in C
        return [part for part in text.split(separator) if part]
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
    if "\\" not in text:
        return text.partition(separator)
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
    if "\\" not in text:
        return text
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
