"""The CRF Questionnaire as fhirnet serves it: every answer ValueSet contained and pre-expanded.

Form renderers without a terminology server (LHC-Forms, ``shared/reference/tooling.md`` §4) cannot
resolve an ``answerValueSet`` canonical URL; they can read ``answerValueSet: "#<id>"`` pointing at a
ValueSet in ``Questionnaire.contained`` that carries its ``expansion``. The served Questionnaire
is otherwise the authored one (same ``url``, ``version`` and item tree), so a QuestionnaireResponse
to either validates the same way.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir.profiles import Catalog, Resource

#: Expansion timestamp of a package whose ``package.json`` has no ``date``. An expansion is a pure
#: function of the package, so any fixed value is truthful; the clock would make the served
#: Questionnaire differ between two starts of the same release. Replaced by the package's own
#: ``date`` as soon as ``package.json`` carries one.
UNDATED_PACKAGE_TIMESTAMP = "2025-11-21T00:00:00Z"

#: Namespace of the expansion identifiers (uuid5 of the ValueSet and package coordinates).
_EXPANSION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fhirnet.dev/fhir/expansion")

# Elements a contained resource must not carry (R4 dom-2 nested contained, dom-4 meta.versionId /
# lastUpdated, dom-5 security labels) or need not carry (narrative of a copy).
_NOT_IN_CONTAINED = frozenset({"contained", "meta", "text"})

_NPM_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2}))?$")


def package_timestamp(package: Mapping[str, Any]) -> str:
    """The FHIR ``dateTime`` of a package's publication, without looking at the clock.

    FHIR NPM packages may carry ``date`` as ``YYYYMMDDHHmmss`` (the IG publisher's form), which is
    read as UTC; an ISO ``dateTime`` is taken as it is.

    :param package: the ``package.json`` manifest.
    :returns: e.g. ``2025-11-21T00:00:00Z``; :data:`UNDATED_PACKAGE_TIMESTAMP` without a date.
    """
    date = str(package.get("date") or "").strip()
    match = _NPM_DATE.match(date)
    if match:
        year, month, day, hour, minute, second = (part or "00" for part in match.groups())
        return f"{year}-{month}-{day}T{hour}:{minute}:{second}Z"
    return date or UNDATED_PACKAGE_TIMESTAMP


def served_questionnaire(catalog: Catalog) -> dict[str, Any]:
    """Build the Questionnaire to serve from the authored one in ``catalog``.

    Each ``answerValueSet`` canonical (optionally ``url|version``) becomes ``#<ValueSet id>``, and
    one copy of each distinct ValueSet, with an ``expansion`` (``identifier``, ``timestamp``,
    ``total``, ``contains`` of system/code/display) from :meth:`Catalog.expand`, is appended to
    ``contained`` in first-use order. Local references (``#...``) already present and contained
    resources of the authored Questionnaire are kept. The catalog is not modified.

    :param catalog: the loaded conformance package.
    :returns: a new JSON-ready Questionnaire; equal for equal catalogs (no clock, no randomness).
    :raises ProfileNotFoundError: the Questionnaire or one of its answer ValueSets (or a
        CodeSystem one includes whole) is not in the package.
    :raises ValueError: a ValueSet needs a terminology server to expand, or its id collides with
        a resource the Questionnaire already contains.
    """
    questionnaire = copy.deepcopy(dict(catalog.questionnaire()))
    authored_contained: list[dict[str, Any]] = questionnaire.pop("contained", [])
    taken = {resource.get("id") for resource in authored_contained}
    added: dict[str, dict[str, Any]] = {}  # contained id -> expanded ValueSet copy
    timestamp = package_timestamp(catalog.package)

    for item in _items(questionnaire.get("item", [])):
        canonical = item.get("answerValueSet")
        if not canonical or canonical.startswith("#"):
            continue
        value_set = catalog.by_url(canonical)
        if value_set is None or value_set["resourceType"] != "ValueSet":
            raise ProfileNotFoundError(canonical)
        local_id = value_set["id"]
        if local_id not in added:
            if local_id in taken:
                raise ValueError(f"contained id {local_id!r} is already used in the Questionnaire")
            added[local_id] = _expanded_copy(catalog, value_set, timestamp)
        item["answerValueSet"] = f"#{local_id}"

    contained = authored_contained + list(added.values())
    if not contained:
        return questionnaire
    # Place ``contained`` where FHIR's JSON order has it (after id/meta/text), for readers.
    served: dict[str, Any] = {}
    for key, value in questionnaire.items():
        served[key] = value
        if key == "id":
            served["contained"] = contained
    served.setdefault("contained", contained)
    return served


def _items(items: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every item of an item tree, depth first in document order."""
    for item in items:
        yield item
        yield from _items(item.get("item", []))


def _expanded_copy(catalog: Catalog, value_set: Resource, timestamp: str) -> dict[str, Any]:
    url = value_set["url"]
    concepts = catalog.expand(url)
    copied = {k: copy.deepcopy(v) for k, v in value_set.items() if k not in _NOT_IN_CONTAINED}
    coordinates = (
        f"{url}|{value_set.get('version', '')}"
        f"@{catalog.package.get('name', '')}#{catalog.package.get('version', '')}"
    )
    copied["expansion"] = {
        "identifier": uuid.uuid5(_EXPANSION_NAMESPACE, coordinates).urn,
        "timestamp": timestamp,
        "total": len(concepts),
        "contains": [concept.coding() for concept in concepts],
    }
    return copied
