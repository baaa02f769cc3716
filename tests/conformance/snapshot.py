"""The snapshot of a profile as a tree of elements, with its slicings and invariants compiled
once: what the validator walks (see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models

from fhirnet.fhir.outcome import Severity
from fhirnet.fhir.profiles import CANONICAL_BASE

FHIRPATH_MODEL: Final = fhirpath_models["r4"]
CORE_SD: Final = "http://hl7.org/fhir/StructureDefinition/"
OURS: Final = CANONICAL_BASE + "/"

# Base-resource invariants worth their cost (see the module docstring); dom-3 is native.
_BASE_INVARIANTS: Final = frozenset({"dom-2", "dom-4", "dom-5", "obs-3", "obs-6", "obs-7"})
_CORE_KEY: Final = re.compile(r"^[a-z]{2,5}-\d+$")
RELATIVE_REFERENCE: Final = re.compile(
    r"^([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$"
)
ABSOLUTE_REFERENCE: Final = re.compile(
    r"/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def _resource_types() -> frozenset[str]:
    """The R4 resource types, from fhirpathpy's R4 model (type → parent type)."""
    parents: Mapping[str, str] = FHIRPATH_MODEL["type2Parent"]

    def is_resource(name: str) -> bool:
        seen = 0
        while name and seen < 10:  # the hierarchy is at most 3 deep; guard against cycles
            if name == "Resource":
                return True
            name, seen = parents.get(name, ""), seen + 1
        return False

    return frozenset(name for name in parents if is_resource(name)) | {"Resource"}


RESOURCE_TYPES: Final = _resource_types()


@dataclass(frozen=True)
class _Type:
    code: str
    profiles: tuple[str, ...]
    target_profiles: tuple[str, ...]

    @property
    def suffix(self) -> str:
        """How the type ends a choice element's JSON name: ``dateTime`` → ``valueDateTime``."""
        return self.code[:1].upper() + self.code[1:]


@dataclass(frozen=True)
class _Invariant:
    key: str
    severity: Severity
    human: str
    expression: str


@dataclass(frozen=True)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]  # (type, path)
    rules: str
    ordered: bool


@dataclass(eq=False)
class Element:
    """One ElementDefinition of a snapshot with its children and its slices."""

    id: str
    path: str
    name: str  # last path segment, e.g. "component" or "value[x]"
    min: int
    max: int | None  # None: unbounded
    types: tuple[_Type, ...]
    fixed: tuple[str, Any] | None  # (type suffix, value), e.g. ("Uri", "https://...")
    pattern: tuple[str, Any] | None
    limits: tuple[tuple[str, str, Any], ...]  # ("min"|"max", type suffix, value)
    max_length: int | None
    binding: tuple[str, str] | None  # (strength, ValueSet canonical)
    invariants: tuple[_Invariant, ...]
    native_dom3: bool
    slicing: Slicing | None
    content_reference: str | None
    children: list[Element] = field(default_factory=list)
    slices: list[Element] = field(default_factory=list)
    slice_name: str | None = None

    @property
    def is_choice(self) -> bool:
        return self.name.endswith("[x]")

    @property
    def fhirpath_name(self) -> str:
        return self.name.removesuffix("[x]")


@dataclass(frozen=True)
class Profile:
    url: str
    id: str
    kind: str
    type: str
    root: Element
    by_id: Mapping[str, Element]
    contexts: tuple[tuple[str, str], ...]  # extensions: (type, expression)


def _suffixed(raw: Mapping[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, value in raw.items():
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper():
            return key[len(prefix) :], value
    return None


def _is_ours(constraint: Mapping[str, Any]) -> bool:
    source = constraint.get("source")
    if isinstance(source, str):
        return source.startswith(OURS)
    # R4 leaves `source` out on some core constraints (obs-6, obs-7); core keys look like obs-6.
    return not _CORE_KEY.match(str(constraint.get("key", "")))


def _element(raw: Mapping[str, Any]) -> Element:
    path: str = raw["path"]
    element_id: str = raw.get("id", path)
    last = element_id.rsplit(".", 1)[-1]
    types = tuple(
        _Type(
            code=t.get("code", ""),
            profiles=tuple(t.get("profile", ())),
            target_profiles=tuple(t.get("targetProfile", ())),
        )
        for t in raw.get("type", ())
    )
    invariants = tuple(
        _Invariant(
            key=c["key"],
            severity=Severity.WARNING if c.get("severity") == "warning" else Severity.ERROR,
            human=c.get("human", ""),
            expression=c["expression"],
        )
        for c in raw.get("constraint", ())
        if c.get("expression") and (_is_ours(c) or c.get("key") in _BASE_INVARIANTS)
    )
    limits = tuple(
        (bound, found[0], found[1])
        for bound in ("min", "max")
        if (found := _suffixed(raw, f"{bound}Value")) is not None
    )
    slicing = raw.get("slicing")
    binding = raw.get("binding")
    max_raw = raw.get("max", "*")
    return Element(
        id=element_id,
        path=path,
        name=path.rsplit(".", 1)[-1],
        min=int(raw.get("min", 0)),
        max=None if max_raw == "*" else int(max_raw),
        types=types,
        fixed=_suffixed(raw, "fixed"),
        pattern=_suffixed(raw, "pattern"),
        limits=limits,
        max_length=raw.get("maxLength"),
        binding=(binding["strength"], binding["valueSet"])
        if binding and binding.get("valueSet")
        else None,
        invariants=invariants,
        native_dom3=any(c.get("key") == "dom-3" for c in raw.get("constraint", ())),
        slicing=Slicing(
            discriminators=tuple((d["type"], d["path"]) for d in slicing.get("discriminator", ())),
            rules=slicing.get("rules", "open"),
            ordered=bool(slicing.get("ordered", False)),
        )
        if slicing
        else None,
        content_reference=raw.get("contentReference"),
        slice_name=last.partition(":")[2] or None,
    )


def parse_profile(sd: Mapping[str, Any]) -> Profile:
    """The snapshot of ``sd`` as a tree: children by ``id`` prefix, slices under their element."""
    by_id: dict[str, Element] = {}
    root: Element | None = None
    for raw in sd["snapshot"]["element"]:
        element = _element(raw)
        by_id[element.id] = element
        if root is None:
            root = element
            continue
        parent_id, _, last = element.id.rpartition(".")
        name, _, slice_name = last.partition(":")
        if slice_name:
            sliced = by_id.get(f"{parent_id}.{name}")
            if sliced is not None:
                sliced.slices.append(element)
        elif (parent := by_id.get(parent_id)) is not None:
            parent.children.append(element)
    if root is None:
        raise ValueError(f"{sd.get('url')} has an empty snapshot")
    return Profile(
        url=sd["url"],
        id=sd.get("id", sd["url"]),
        kind=sd.get("kind", "resource"),
        type=sd["type"],
        root=root,
        by_id=by_id,
        contexts=tuple((c.get("type", ""), c.get("expression", "")) for c in sd.get("context", ())),
    )


# fhirpathpy's node factory gives nested values their FHIR type, so `value.ofType(X)` works.
typed_node: Callable[[Any, str], Any] = ResourceNode.create_node


def ignore_trace(*_: object) -> None:
    """Swallow ``trace()`` output of core invariants (fhirpathpy prints it by default)."""
