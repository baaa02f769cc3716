"""Limits on decoded JSON request bodies, checked before any expensive work (style P7: they raise,
:mod:`fhirnet.web.errors` answers).

The body size is capped before decoding (:mod:`fhirnet.web.bodies`); a body under that cap can
still be costly to validate, map and store: thousands of items, a string of megabytes, nesting a
recursive walker would choke on. :func:`check_json` walks the decoded value iteratively (no
recursion, whatever the depth) and refuses the first limit it finds exceeded. Both body readers
(the FHIR endpoint and the JSON API) use it, with the limits of the service's settings.

It runs on every POST, so a cheap pass answers first and the precise walk, which locates the
error, runs only for a body the cheap pass is not sure of (about 0.3x the precise walk's CPU on
the example bodies: ``python -m bench.limits_bench``).

Python's own decoder refuses nesting deeper than the interpreter's recursion limit with a
``RecursionError``; :func:`too_deep` is the error both readers answer that with. Both decode with
:func:`no_duplicate_keys`, so a body never means something other than what its author sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fhirnet.config import Settings
from fhirnet.errors import Path
from fhirnet.fhir.outcome import IssueType
from fhirnet.web.errors import JsonLimitError

#: Keys whose list elements count as items and answers of a QuestionnaireResponse (also of any
#: other resource, e.g. a contained Questionnaire: each resource is counted on its own).
_ITEM_KEYS = frozenset({"item", "answer"})
#: FHIR R4 ``id`` datatype: at most 64 characters (datatypes.html#id).
MAX_RESOURCE_ID_LENGTH = 64
#: The characters a FHIR string may not hold (R4 datatypes: below U+0020 but tab, CR and LF);
#: NUL also cannot be stored in PostgreSQL's jsonb (the outbox with FHIRNET_DATABASE_URL).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: The same characters as UTF-8 bytes (each is one byte, which no longer sequence contains).
_CONTROL_BYTES = bytes(code for code in range(0x20) if chr(code) not in "\t\n\r")
#: What the precise walk takes for strings and containers, subclasses included.
_WALKED = (str, dict, list)
#: The scalars :func:`json.loads` makes, which no limit concerns.
_SCALARS = frozenset({int, float, bool, type(None)})


@dataclass(frozen=True, kw_only=True)
class JsonLimits:
    """What one JSON body may hold; defaults as :class:`~fhirnet.config.Settings`."""

    #: Containers nested in each other: ``[[1]]`` has depth 2, a scalar 0.
    max_depth: int = 64
    #: JSON values in all (objects, arrays, scalars; keys not counted).
    max_values: int = 200_000
    #: Characters (code points) per string, object keys included.
    max_string_length: int = 10_000
    #: ``item`` and ``answer`` elements per resource.
    max_items: int = 2_000
    #: ``entry`` elements per Bundle.
    max_bundle_entries: int = 100


def limits_of(settings: Settings) -> JsonLimits:
    """The limits configured in ``settings`` (``FHIRNET_MAX_JSON_DEPTH`` and so on)."""
    return JsonLimits(
        max_depth=settings.max_json_depth,
        max_values=settings.max_json_values,
        max_string_length=settings.max_string_length,
        max_items=settings.max_items,
        max_bundle_entries=settings.max_bundle_entries,
    )


def too_deep(limits: JsonLimits) -> JsonLimitError:
    """The error for a body the decoder itself refused as nested too deeply."""
    return JsonLimitError(
        400, IssueType.STRUCTURE, f"The JSON is nested more than {limits.max_depth} levels deep."
    )


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` ``object_pairs_hook`` refusing an object that repeats a key.

    Called for every object of every body: the dict is built first (in C) and a repeated key
    shows as fewer entries than pairs, so only a refused object pays for finding which key.

    :raises ValueError: a key is repeated (the readers turn it into their own error).
    """
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


class _Node:
    """A container being walked; its path is kept as parent links, built only for an error."""

    __slots__ = ("depth", "items", "key", "parent", "resource", "value")

    def __init__(
        self,
        value: dict[str, Any] | list[Any],
        depth: int,
        parent: _Node | None,
        key: str | int | None,
        resource: _Node | None,
        items: list[int],
    ) -> None:
        self.value = value
        #: Containers enclosing this one (0 for the body itself).
        self.depth = depth
        self.parent = parent
        self.key = key
        #: The enclosing resource and its running count of items and answers (shared list).
        self.resource = resource
        self.items = items

    def path(self) -> Path:
        keys: list[str | int] = []
        node: _Node | None = self
        while node is not None and node.key is not None:
            keys.append(node.key)
            node = node.parent
        return tuple(reversed(keys))


def check_json(value: Any, limits: JsonLimits) -> None:
    """Refuse a decoded JSON body that exceeds ``limits`` or holds text that is not Unicode.

    A cheap pass (:func:`_fits`) answers first; only a body it is not sure of is walked again by
    the precise walk, which finds and locates the error. The cheap pass is conservative (it
    answers ``True`` only for a body the precise walk accepts), so what this function raises is
    what the precise walk alone raises, by construction. Only containers are put on either
    walk's stack, and only after the value count allows them, so each costs at most
    ``max_values`` steps.

    :param value: the decoded body.
    :param limits: what it may hold.
    :raises JsonLimitError: 400 ``structure`` for nesting deeper than ``max_depth``, a control
        character (below U+0020 but tab, CR and LF) or a lone surrogate (``"\\ud800"``; not
        representable in UTF-8); 413 ``too-long`` for more values, items and answers, or Bundle
        entries than allowed; 422 ``too-long`` for a string longer than ``max_string_length`` or
        a resource ``id`` over 64 characters.
    """
    if not _fits(value, limits):
        _check_precisely(value, limits)


def _fits(value: Any, limits: JsonLimits) -> bool:
    """Whether ``value`` is certainly within ``limits`` (``False``: it is not, or may not be).

    The precise walk builds an object and a generator per container and makes three or four
    calls per string, so that it can say where a limit is exceeded; none of that is needed to
    learn that none is. This walk keeps a tuple per container on its stack, tells types apart
    with ``type(x) is`` and gathers the strings, keys included, to check them all at once
    (:func:`_all_text`). A subclass of ``dict``, ``list`` or ``str`` in the value makes it
    unsure (the precise walk takes those by ``isinstance``); other scalars are ignored, as by
    the precise walk; keys are taken as the strings :func:`json.loads` makes them (one that is
    no ``str`` makes it unsure).
    """
    max_length = limits.max_string_length
    kind = type(value)
    if kind is str:
        return _all_text([value], max_length)
    if kind is not dict and kind is not list:
        return not isinstance(value, _WALKED)
    max_depth, max_items = limits.max_depth, limits.max_items
    values_left = limits.max_values - 1
    #: Items and answers each resource may still hold, by its number in the walk (-1: outside
    #: any resource, not counted).
    items_left: list[int] = []
    strings: list[str] = []
    add_string, add_keys = strings.append, strings.extend
    stack: list[tuple[Any, int, int]] = [(value, 0, -1)]
    pop, push = stack.pop, stack.append
    while stack:
        container, depth, resource = pop()
        values_left -= len(container)
        if depth >= max_depth or values_left < 0:
            return False
        depth += 1
        if type(container) is list:
            for child in container:
                kind = type(child)
                if kind is str:
                    add_string(child)
                elif kind is dict or kind is list:
                    push((child, depth, resource))
                elif kind not in _SCALARS and isinstance(child, _WALKED):
                    return False
            continue
        add_keys(container)
        resource_type = container.get("resourceType")
        if type(resource_type) is str:
            if _resource_problem(container, limits) is not None:
                return False
            resource = len(items_left)
            items_left.append(max_items)
        for key, child in container.items():
            kind = type(child)
            if kind is str:
                add_string(child)
            elif kind is dict:
                push((child, depth, resource))
            elif kind is list:
                if resource >= 0 and key in _ITEM_KEYS:
                    items_left[resource] -= len(child)
                    if items_left[resource] < 0:
                        return False
                push((child, depth, resource))
            elif kind not in _SCALARS and isinstance(child, _WALKED):
                return False
    return _all_text(strings, max_length)


def _all_text(strings: list[str], max_length: int) -> bool:
    """Whether each of ``strings`` has at most ``max_length`` characters, no control character
    and no lone surrogate, learnt from their concatenation with a few calls in all.

    Strict UTF-8 encoding refuses every code point from U+D800 to U+DFFF, and in a decoded
    ``str`` each is a lone surrogate (JSON's escaped pairs decode to one astral code point);
    a ``str`` holds code points, so concatenating never pairs two of them: the concatenation
    encodes exactly when each string does. A control character is one byte in UTF-8 that no
    longer sequence contains (their bytes are 0x80 and up), so deleting those bytes shortens
    the UTF-8 exactly when one is there. The sum of the lengths bounds each length.
    """
    try:
        text = "".join(strings)
        data = text.encode("utf-8")
    except (TypeError, UnicodeEncodeError):  # a key that is no string; a lone surrogate
        return False
    return (len(text) <= max_length or max(map(len, strings)) <= max_length) and len(
        data.translate(None, _CONTROL_BYTES)
    ) == len(data)


def _check_precisely(value: Any, limits: JsonLimits) -> None:
    """The walk that locates the first limit exceeded (see :func:`check_json`)."""
    if isinstance(value, str):
        _check_string(None, None, value, limits)
    if not isinstance(value, dict | list):
        return
    count = 1
    stack = [_Node(value, 0, None, None, None, [0])]
    while stack:
        node = stack.pop()
        if node.depth >= limits.max_depth:
            raise _error(
                node,
                None,
                400,
                f"The JSON is nested more than {limits.max_depth} levels deep.",
                code=IssueType.STRUCTURE,
            )
        count += len(node.value)
        if count > limits.max_values:
            raise _error(node, None, 413, f"The body holds more than {limits.max_values} values.")
        stack.extend(_children(node, limits))


def _children(node: _Node, limits: JsonLimits) -> Iterator[_Node]:
    """The containers in a container, checking its strings and what only it knows."""
    value = node.value
    resource, items = node.resource, node.items
    pairs: Iterable[tuple[str | int, Any]]
    if isinstance(value, list):
        pairs = enumerate(value)
    else:
        if isinstance(value.get("resourceType"), str):  # a (nested) resource: counted on its own
            resource, items = node, [0]
            _check_resource(node, value, limits)
        pairs = value.items()
    for key, child in pairs:
        if isinstance(key, str):
            _check_string(node, key, key, limits, what="key")
            if key in _ITEM_KEYS and isinstance(child, list) and resource is not None:
                items[0] += len(child)
                if items[0] > limits.max_items:
                    message = f"A resource has more than {limits.max_items} items and answers."
                    raise _error(resource, None, 413, message)
        if isinstance(child, str):
            _check_string(node, key, child, limits)
        elif isinstance(child, dict | list):
            yield _Node(child, node.depth + 1, node, key, resource, items)


def _check_resource(node: _Node, resource: dict[str, Any], limits: JsonLimits) -> None:
    problem = _resource_problem(resource, limits)
    if problem is not None:
        key, status, message = problem
        raise _error(node, key, status, message)


def _resource_problem(resource: dict[str, Any], limits: JsonLimits) -> tuple[str, int, str] | None:
    """The limit a resource's own elements exceed, as ``(element, status, message)``; ``None``
    when there is none. Both walks ask it: the cheap pass only whether there is one."""
    identifier = resource.get("id")
    if isinstance(identifier, str) and len(identifier) > MAX_RESOURCE_ID_LENGTH:
        return "id", 422, f"A resource id has at most {MAX_RESOURCE_ID_LENGTH} characters."
    entries = resource.get("entry")
    if (
        resource["resourceType"] == "Bundle"
        and isinstance(entries, list)
        and len(entries) > limits.max_bundle_entries
    ):
        message = (
            f"A Bundle holds at most {limits.max_bundle_entries} entries, this one {len(entries)}."
        )
        return "entry", 413, message
    return None


def _check_string(
    node: _Node | None,
    key: str | int | None,
    text: str,
    limits: JsonLimits,
    *,
    what: str = "string",
) -> None:
    if len(text) > limits.max_string_length:
        message = f"A {what} has more than {limits.max_string_length} characters."
        raise _error(node, key, 422, message)
    if _CONTROL.search(text) is not None:
        message = (
            f"A {what} holds a control character (below U+0020 other than tab, carriage return "
            "and line feed), which a FHIR string may not (R4 datatypes, string)."
        )
        raise _error(node, key, 400, message, code=IssueType.STRUCTURE)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            message = f"A {what} holds a lone surrogate (U+D800 to U+DFFF), which is not text."
            raise _error(node, key, 400, message, code=IssueType.STRUCTURE) from None


def _error(
    node: _Node | None,
    key: str | int | None,
    status: int,
    message: str,
    *,
    code: IssueType = IssueType.TOO_LONG,
) -> JsonLimitError:
    """The error at ``node``'s ``key`` (``None``: the node itself), with a FHIRPath expression
    when the body is a resource (``QuestionnaireResponse.item[3].answer[0]``); the API renders
    the path as a JSON path."""
    path = (node.path() if node is not None else ()) + ((key,) if key is not None else ())
    root = node
    while root is not None and root.parent is not None:
        root = root.parent
    expression = None
    if root is not None and isinstance(root.value, dict):
        resource_type = root.value.get("resourceType")
        if isinstance(resource_type, str):
            expression = resource_type + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in path
            )
    return JsonLimitError(status, code, message, path=path, expression=expression)
