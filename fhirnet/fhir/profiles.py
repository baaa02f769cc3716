"""The project's conformance resources (``profiles/``), indexed by canonical URL and by id.

``profiles/`` is a FHIR NPM package generated from ``fsh/`` by SUSHI; the service reads it once at
start-up and never needs Node. ValueSets bound by the Questionnaire are expandable offline: they
either enumerate their concepts or include a whole project CodeSystem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from fhirnet.errors import ProfileNotFoundError

CANONICAL_BASE = "https://fhirnet.dev/fhir"
QUESTIONNAIRE_URL = f"{CANONICAL_BASE}/Questionnaire/gep-net-imaging-crf"

Resource = Mapping[str, Any]

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class Concept:
    """One member of a ValueSet expansion."""

    system: str
    code: str
    display: str | None = None

    def coding(self) -> dict[str, str]:
        coding = {"system": self.system, "code": self.code}
        if self.display:
            coding["display"] = self.display
        return coding


@dataclass(frozen=True)
class Catalog:
    """Conformance resources keyed by canonical URL (``url`` and ``url|version``) and by id.

    What is built from them once (the Questionnaire's index, the profile validator) is held by
    the catalog itself, see :meth:`derived`, so it lives as long as the catalog and no longer.
    """

    package: Resource
    resources: tuple[Resource, ...]
    _by_url: dict[str, Resource] = field(default_factory=dict, repr=False)
    _by_id: dict[tuple[str, str], Resource] = field(default_factory=dict, repr=False)
    _derived: dict[Callable[[Catalog], Any], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for resource in self.resources:
            self._by_id[(resource["resourceType"], resource["id"])] = resource
            url = resource.get("url")
            if url:
                self._by_url.setdefault(url, resource)
                if resource.get("version"):
                    self._by_url[f"{url}|{resource['version']}"] = resource

    @property
    def version(self) -> str:
        """The package version, which every resource of it shares."""
        return str(self.package["version"])

    def by_url(self, canonical: str) -> Resource | None:
        """The resource with that canonical URL, optionally ``url|version``; ``None`` if unknown."""
        return self._by_url.get(canonical)

    def by_id(self, resource_type: str, resource_id: str) -> Resource | None:
        return self._by_id.get((resource_type, resource_id))

    def of_type(self, resource_type: str) -> Iterator[Resource]:
        return (r for r in self.resources if r["resourceType"] == resource_type)

    def questionnaire(self) -> Resource:
        """The CRF Questionnaire as authored (answerValueSets are canonical URLs)."""
        found = self.by_url(QUESTIONNAIRE_URL)
        if found is None:
            raise ProfileNotFoundError(QUESTIONNAIRE_URL)
        return found

    def derived(self, build: Callable[[Catalog], _T]) -> _T:
        """``build(self)``, built on first use and then kept: one result per ``build``.

        A catalog never changes, so what is derived from it never goes stale; keeping it here
        rather than in a module-level cache ties its lifetime to the catalog's (style P3).
        Should two threads build at once, both get the first result stored.

        :param build: makes the derived object from a catalog, e.g. ``ProfileValidator``.
        :returns: the object ``build`` made for this catalog, the same one on every call.
        """
        if build not in self._derived:
            self._derived.setdefault(build, build(self))
        return cast(_T, self._derived[build])

    def expand(self, value_set_url: str) -> tuple[Concept, ...]:
        """Expand one of our ValueSets offline.

        :raises ProfileNotFoundError: the ValueSet, or a CodeSystem it includes whole, is unknown.
        :raises ValueError: the ValueSet uses a filter, which needs a terminology server.
        """
        value_set = self.by_url(value_set_url)
        if value_set is None:
            raise ProfileNotFoundError(value_set_url)
        concepts: list[Concept] = []
        for include in value_set.get("compose", {}).get("include", []):
            if include.get("filter") or include.get("valueSet"):
                raise ValueError(f"{value_set_url} cannot be expanded without a terminology server")
            system = include["system"]
            if "concept" in include:
                concepts += [
                    Concept(system=system, code=c["code"], display=c.get("display"))
                    for c in include["concept"]
                ]
                continue
            code_system = self.by_url(system)
            if code_system is None:
                raise ProfileNotFoundError(system)
            concepts += [
                Concept(system=system, code=code, display=display)
                for code, display in _walk(code_system.get("concept", []))
            ]
        return tuple(concepts)


def _walk(concepts: list[Mapping[str, Any]]) -> Iterator[tuple[str, str | None]]:
    for concept in concepts:
        yield concept["code"], concept.get("display")
        yield from _walk(concept.get("concept", []))


def load_catalog(directory: Path) -> Catalog:
    """Read the package in ``directory``: ``package.json`` and every resource file beside it.

    Examples (``example/``) are not conformance resources and are not loaded.

    :raises ProfileNotFoundError: ``directory`` holds no ``package.json``.
    """
    manifest = directory / "package.json"
    if not manifest.is_file():
        raise ProfileNotFoundError(str(manifest))
    resources = tuple(
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
        if not path.name.startswith((".", "package"))
    )
    return Catalog(json.loads(manifest.read_text(encoding="utf-8")), resources)
