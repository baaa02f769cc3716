"""The validator: every rule of the package docstring, applied to a resource against a profile
snapshot; :func:`validate_resource` also checks base structure and Bundle entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fhirpathpy import compile as fhirpath_compile

from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir.outcome import Issue, IssueType, Severity
from fhirnet.fhir.profiles import Catalog
from tests.conformance.instances import (
    Item,
    as_list,
    base_structure_issues,
    bundle_types,
    codes_of,
    contains_pattern,
    discriminates,
    is_number,
    items_at,
    references_in,
    render,
    same_unit,
    same_value,
    unique,
)
from tests.conformance.snapshot import (
    ABSOLUTE_REFERENCE,
    CORE_SD,
    FHIRPATH_MODEL,
    OURS,
    RELATIVE_REFERENCE,
    RESOURCE_TYPES,
    Element,
    Profile,
    Slicing,
    ignore_trace,
    parse_profile,
    typed_node,
)


class ProfileValidator:
    """Validates resources against the profiles of one :class:`Catalog`.

    Snapshots are turned into trees, FHIRPath invariants compiled and ValueSets expanded once,
    on first use; an instance is safe to share between threads (the caches only grow).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._profiles: dict[str, Profile] = {}
        self._expansions: dict[str, frozenset[tuple[str, str]] | None] = {}
        self._fhirpaths: dict[str, Callable[..., list[Any]]] = {}
        self._code_systems: dict[str, frozenset[str]] = {
            cs["url"]: frozenset(codes_of(cs.get("concept", [])))
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
        run = _Run(self, resource, bundle_types(resource))
        run.issues += base_structure_issues(resource)
        run.scan(resource, resource_type, resource_type)
        self._claimed_profiles(run, resource, resource_type)
        return unique(run.issues)

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
        run = _Run(self, resource, bundle_types(resource))
        run.scan(resource, str(root_expr), str(root_expr))
        run.check_profile(profile, resource, str(root_expr))
        return unique(run.issues)

    # -- internals ------------------------------------------------------------------------------

    def _profile(self, url: str) -> Profile | None:
        found = self._profiles.get(url)
        if found is None:
            sd = self.catalog.by_url(url)
            if sd is None or sd.get("resourceType") != "StructureDefinition":
                return None
            if not sd.get("snapshot", {}).get("element"):
                return None
            found = self._profiles[url] = parse_profile(sd)
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
                expression, FHIRPATH_MODEL, {"traceFn": ignore_trace}
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
            elif url.startswith(OURS):
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
        for i, contained in enumerate(as_list(resource.get("contained"))):
            if isinstance(contained, Mapping):
                self._claimed_profiles(run, contained, f"{expr}.contained[{i}]", resource)
        if resource.get("resourceType") == "Bundle":
            for i, entry in enumerate(as_list(resource.get("entry"))):
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
        self, profile: Profile, data: Any, expr: str, *, container: Mapping[str, Any] | None = None
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
            self._check_value(profile, profile.root, Item(profile.type, data, expr))
        finally:
            self.resource, self.container = previous

    def _check_children(self, profile: Profile, element: Element, data: Any, expr: str) -> None:
        if not isinstance(data, Mapping):
            return
        children = element.children
        if element.content_reference and not children:
            target = profile.by_id.get(element.content_reference.lstrip("#"))
            children = target.children if target is not None else []
        siblings = {child.name for child in children}
        for child in children:
            self._check_element(profile, child, items_at(child, data, siblings, expr), expr)

    def _check_element(
        self, profile: Profile, element: Element, items: list[Item], parent_expr: str
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
        self, profile: Profile, element: Element, items: Sequence[Item], where: str, label: str
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

    def _check_value(self, profile: Profile, element: Element, item: Item) -> None:
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
        if (
            fixed
            and (not element.is_choice or fixed[0] == suffix)
            and not same_value(value, fixed[1])
        ):
            self.add(
                Severity.ERROR,
                IssueType.VALUE,
                item.expr,
                f"must be exactly {render(fixed[1])} (profile {profile.id}), found {render(value)}",
            )
        if (
            pattern
            and (not element.is_choice or pattern[0] == suffix)
            and not contains_pattern(value, pattern[1])
        ):
            self.add(
                Severity.ERROR,
                IssueType.VALUE,
                item.expr,
                f"must match {render(pattern[1])} (profile {profile.id}), found {render(value)}",
            )
        self._check_limits(profile, element, item, suffix)
        self._check_binding(profile, element, item, suffix)
        if suffix == "Reference" and isinstance(value, Mapping):
            self._check_reference(profile, element, item)
        self._check_children(profile, element, value, item.expr)
        self._check_invariants(profile, element, item)

    @staticmethod
    def _type_suffix(element: Element, item: Item) -> str:
        if element.is_choice:
            return item.key[len(element.fhirpath_name) :]
        return element.types[0].suffix if len(element.types) == 1 else ""

    # -- slicing --------------------------------------------------------------------------------

    def _check_slices(
        self,
        profile: Profile,
        element: Element,
        slicing: Slicing,
        items: list[Item],
        where: str,
    ) -> None:
        matched: dict[str, list[Item]] = {s.id: [] for s in element.slices}
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
        profile: Profile,
        slice_: Element,
        slicing: Slicing,
        element: Element,
        item: Item,
    ) -> bool:
        for kind, path in slicing.discriminators:
            if kind in ("value", "pattern"):
                if not discriminates(slice_, path, item.value):
                    return False
            elif kind == "type" and path == "$this":
                if self._type_suffix(element, item) not in {t.suffix for t in slice_.types}:
                    return False
            else:  # "exists", "profile", "type" on a path: not used by our package
                return False
        return True

    # -- terminology ----------------------------------------------------------------------------

    def _check_binding(self, profile: Profile, element: Element, item: Item, kind: str) -> None:
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
            codings = [c for c in as_list(value.get("coding")) if isinstance(c, Mapping)]
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

    def _check_limits(self, profile: Profile, element: Element, item: Item, kind: str) -> None:
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
                if not same_unit(value, limit):
                    continue
                number, limit = value.get("value"), limit.get("value")
            elif limit_kind not in ("Integer", "Decimal", "PositiveInt", "UnsignedInt"):
                continue  # dates, times: not checked
            if not is_number(number) or not is_number(limit):
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

    def _check_reference(self, profile: Profile, element: Element, item: Item) -> None:
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

    def _target_types(self, element: Element) -> frozenset[str] | None:
        """Resource types the element may refer to; ``None``: unconstrained or not known."""
        targets = [p for t in element.types if t.code == "Reference" for p in t.target_profiles]
        if not targets:
            return None
        types: set[str] = set()
        for target in targets:
            canonical = target.split("|", 1)[0]
            if canonical.startswith(CORE_SD):
                types.add(canonical.removeprefix(CORE_SD))
            elif (ours := self.validator._profile(canonical)) is not None:
                types.add(ours.type)
            else:
                return None
        return frozenset(types)

    def _reference_type(self, reference: str, where: str) -> str | None:
        if reference.startswith("#"):
            if reference == "#":
                return str(self.container.get("resourceType"))
            for contained in as_list(self.container.get("contained")):
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
            match = RELATIVE_REFERENCE.match(reference)
            if match is None:
                self.add(
                    Severity.ERROR,
                    IssueType.STRUCTURE,
                    where,
                    f"{reference!r} is not a reference of the form Type/id",
                )
                return None
            return match.group(1)
        match = ABSOLUTE_REFERENCE.search(reference)
        return match.group(1) if match and match.group(1) in RESOURCE_TYPES else None

    # -- invariants -----------------------------------------------------------------------------

    def _check_invariants(self, profile: Profile, element: Element, item: Item) -> None:
        if element.native_dom3 and isinstance(item.value, Mapping):
            self._check_dom3(item.value, item.expr)
        if not element.invariants:
            return
        is_root = element is profile.root
        subject: Any
        if is_root and profile.kind == "resource":
            subject = item.value
        else:
            subject = typed_node(item.value, element.path)
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
        contained = [c for c in as_list(resource.get("contained")) if isinstance(c, Mapping)]
        if not contained:
            return
        references = set(references_in(resource))
        for i, inner in enumerate(contained):
            if f"#{inner.get('id')}" not in references and "#" not in set(references_in(inner)):
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
            if url.startswith(OURS):
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
            and all(e.split(".", 1)[0] in RESOURCE_TYPES for e in element_contexts)
            and parent_path not in element_contexts
        ):
            self.add(
                Severity.ERROR,
                IssueType.STRUCTURE,
                expr,
                f"extension {profile.id} may be used on {', '.join(element_contexts)}, "
                f"not on {parent_path}",
            )


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
