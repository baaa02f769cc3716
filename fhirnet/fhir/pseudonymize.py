"""Pseudonymization of the FHIR resources a study export sends off site: keyed ids, shifted dates,
no names and no free text.

**Regime.** A study that shares data has a :class:`Regime`: its id, a secret (at least 32 bytes,
kept on site, ``FHIRNET_STUDY_SECRETS_FILE``) and a date regime. Everything keyed below is
HMAC-SHA256 under that secret of a domain-separated message that also names the study, so the
same patient gets the same pseudonym in every export of a study (stable) and unrelated ones in
two studies (even if two studies were given the same secret). Pseudonymized is not anonymous
(GDPR recital 26): whoever holds the secret can re-link; it never leaves the site, never appears
in an output, a ``repr``, an error or a log.

**Rules** (after the Microsoft FHIR anonymizer's methods, ``docs/FHIR-anonymization.md``:
``cryptoHash``, ``dateShift``, ``redact``; and cumulus-etl's allow-list).
:meth:`Pseudonymizer.resource` walks the JSON once; every element gets the first rule that
matches, and the tables below (:data:`DATE_KEYS`, :data:`KEPT_STRING_KEYS`,
:data:`PERSON_TYPES`, ...) are those rules as data:

=====================================  =========================================================
element                                what happens
=====================================  =========================================================
resource ``id``                        ``cryptoHash``: Patient → :meth:`Regime.pseudonym`, other
                                       types → keyed per type (:meth:`Regime.resource_id`), so
                                       the exported set still resolves; contained ids stay
``reference`` ``Type/id``,             the id part → the same keyed id (absolute URLs lose their
``…/Type/id/_history/v``               base: the export is one relative set); ``urn:uuid:`` and
                                       ``#`` stay; any other shape (conditional) is removed
``Reference.display``,                 removed (names and MRNs ride there); only the CRF lesion
``Reference.identifier``               label on ``Observation.focus`` stays, as a lesion hash.
                                       A logical reference (no ``reference``) keeps its
                                       identifier, hashed as below
``identifier.value``                   keyed hash of system + value (keeps form ↔ result
                                       linkage, hides accession numbers, MRNs and the patient id
                                       inside fhirnet's own identifiers). Kept in clear: the
                                       study, site, subject-number and enrolment systems
                                       (:data:`CLEAR_IDENTIFIER_SYSTEMS`): trial numbers, the
                                       same the SDTM ``USUBJID`` shows
CRF lesion labels (``lesion-id``       keyed per patient (:meth:`Regime.lesion_id`): a lesion
answers, ``crf-lesion-id``             links across exams, its label says nothing
identifiers)
dates (:data:`DATE_KEYS`, any          ``dateShift`` by the patient's one offset (time and zone
``…Date``/``…DateTime``/``…Instant``)  kept, so every interval is exact); year or year-month
                                       only: removed (as the MS tool); ``meta.lastUpdated`` is
                                       shifted too, because a real storage time next to a
                                       shifted exam date would give the offset away. A
                                       resource without a patient (ResearchStudy) keeps no date;
                                       a Group member's dates take that member's offset
``text`` (narrative, CodeableConcept   removed: narratives repeat names and unshifted dates
text), ``note``, ``conclusion``,
``comment``, ``valueString``,
``valueMarkdown``, any string under
a key not in :data:`KEPT_STRING_KEYS`
``display``                            kept on a Coding (it has ``code`` or ``system``: the code
                                       system's wording), removed elsewhere
Patient, Practitioner, ... (           name, telecom, address, contact, photo, identifier,
:data:`PERSON_TYPES`)                  qualification removed; ``birthDate`` → year (study-day:
                                       removed)
extensions, modifierExtensions         kept only under fhirnet's or HL7's URLs, and walked by the
                                       same rules (dates inside are shifted); fhirnet's study
                                       labels (reader label, visit name, accepted read) are
                                       labels the study defined, kept
study-level resources                  ResearchStudy and Group keep ``title``, ``name``,
(``patient_id`` None)                  ``description`` (the study's title, its arms): no
                                       patient's data
``meta.security``                      PSEUDED (v3-ObservationValue) added, existing labels kept
numbers, booleans                      kept (measurements are the point of the export)
=====================================  =========================================================

The allow-list is the safety net: a string under a key the tables do not name is removed, so a
shape fhirnet did not foresee (an unknown element, an extension's free text) does not leak.
Empty objects and arrays left behind are removed too.

**Dates.** :class:`DateRegime` ``shift``: each patient's dates move by one offset derived from
the secret (non-zero, ±30…395 days), so all intervals of that patient (RECIST confirmation,
PFS) are unchanged. ``study-day``: the offset moves the subject's reference date (study day 1,
``ResearchSubject.period.start``) onto :data:`STUDY_DAY_ANCHOR`, so a date reads as its study
day (``2000-01-01`` = day 1, ``1999-12-31`` = day -1) and no real date is left.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from fhirnet.errors import FhirnetError
from fhirnet.fhir.identifiers import CRF_LESION_ID, SID_BASE
from fhirnet.fhir.profiles import CANONICAL_BASE

#: Study day 1 under the study-day regime: FHIR dates need a calendar, this one is obviously
#: not a real exam date (fhirnet's forms start in 2025).
STUDY_DAY_ANCHOR: Final = dt.date(2000, 1, 1)
#: Shortest secret accepted: 32 bytes, the HMAC-SHA256 block-size half cumulus-etl also uses.
MIN_SECRET_BYTES: Final = 32
#: Range of the shift regime's offsets in days (both signs): never zero, at least a month, so a
#: date cannot be guessed from a near one; at most about a year and a month.
SHIFT_MIN_DAYS: Final = 30
SHIFT_MAX_DAYS: Final = 395

#: The security label every exported resource carries (HL7 v3 ObservationValue, "pseudonymized").
PSEUDED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}

#: Types whose resources describe a person: every direct identifier of them goes.
PERSON_TYPES: Final = frozenset(
    {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person", "Organization"}
)
#: Elements of those removed whole (HIPAA §164.514(b)(2) A to R as far as FHIR holds them).
PERSON_REMOVED: Final = frozenset(
    {"name", "telecom", "address", "contact", "photo", "identifier", "qualification", "alias"}
)
#: Elements removed wherever they are: narratives and free text.
FREE_TEXT_KEYS: Final = frozenset(
    {"text", "note", "conclusion", "comment", "valueString", "valueMarkdown", "div"}
)
#: Elements holding a date, dateTime or instant whatever their name (names ending in ``Date``,
#: ``DateTime`` or ``Instant`` are dates too: ``effectiveDateTime``, ``valueDate``, ...).
# fmt: off
DATE_KEYS: Final = frozenset({
    "date", "issued", "authored", "recorded", "start", "end", "lastUpdated", "created",
    "timestamp", "birthDate",
})
# fmt: on
#: Keys whose string values are kept as they are: structure and terminology, no free text.
# fmt: off
KEPT_STRING_KEYS: Final = frozenset({
    "resourceType", "system", "code", "version", "unit", "status", "linkId", "profile",
    "questionnaire", "use", "type", "gender", "intent", "valueCode", "language", "comparator",
    "contentType", "versionId", "valueCanonical", "role", "mode", "kind", "priority",
    "severity", "criticality", "assignedArm", "actualArm",
})
# fmt: on
#: Further keys kept in study-level resources (no patient): the study's title and its arms.
STUDY_STRING_KEYS: Final = frozenset({"title", "name", "description"})
#: Strings kept by (the key of the enclosing element, key): the software that produced a result
#: (``Provenance.contained`` Device: its name and version, which FHIR requires).
KEPT_NESTED_STRINGS: Final = frozenset({("deviceName", "name"), ("version", "value")})
#: The types those are kept in (with ``patient_id`` None); a Location or Device keeps no name.
STUDY_TYPES: Final = frozenset({"ResearchStudy", "Group"})
#: Identifier systems kept in clear: trial numbers, not hospital identifiers (``docs/trials.md``).
CLEAR_IDENTIFIER_SYSTEMS: Final = (
    f"{SID_BASE}/research-study",  # the study id, and .../<study>/site, .../<study>/subject
    f"{SID_BASE}/enrolment-group",
)
#: CRF answers that hold a lesion label (``fhirnet.fhir.extract``: repeated items carry their
#: group's linkId as a prefix).
LESION_LINK_IDS: Final = frozenset(
    {"lesion-id", "non-target-lesion.lesion-id", "new-lesion.lesion-id"}
)
#: Extension URLs kept (cumulus-etl drops every other one: unknown extensions are unknown shapes).
KEPT_EXTENSION_PREFIXES: Final = (
    f"{CANONICAL_BASE}/",
    "http://hl7.org/",
    "https://hl7.org/",
    "http://terminology.hl7.org/",
)
#: Sub-extensions of fhirnet's study extensions whose ``valueString`` is a label the study
#: defined (``RADIOLOGIST 1``, ``WEEK 8``), not free text (``fhirnet.fhir.studies``).
KEPT_LABEL_EXTENSIONS: Final = frozenset(
    {
        (f"{CANONICAL_BASE}/StructureDefinition/study-reader", "label"),
        (f"{CANONICAL_BASE}/StructureDefinition/study-visit", "visit"),
        (f"{CANONICAL_BASE}/StructureDefinition/research-subject-adjudication", "accepted"),
    }
)
_LABELS: Final = frozenset(f"{url}#{sub}" for url, sub in KEPT_LABEL_EXTENSIONS)
#: What the manifest says is removed.
REMOVED: Final = (
    "names, telecom, addresses, photos and identifiers of patients and practitioners",
    "hospital identifiers (identifier values are keyed hashes; trial numbers stay)",
    "Reference.display and Reference.identifier (reader names, MRNs)",
    "narratives, notes, conclusions, comments and free-text answers",
    "extensions other than fhirnet's and HL7's",
    "year-only and year-month dates",
)

#: A full date, optionally with a time and zone: the values that can be shifted exactly.
_FULL_DATE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})((?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?)?)"
)
_REFERENCE: Final = re.compile(
    r"(?:https?://\S+/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?"
)
_PATIENT_REFERENCE: Final = re.compile(_REFERENCE.pattern.replace("([A-Z][A-Za-z]+)", "(Patient)"))


class PseudonymizationError(FhirnetError, ValueError):
    """A resource or regime cannot be pseudonymized as asked; the message never holds the secret."""


class DateRegime(StrEnum):
    """How dates leave the site."""

    SHIFT = "shift"  # one offset per patient, derived from the secret
    STUDY_DAY = "study-day"  # the subject's reference date becomes STUDY_DAY_ANCHOR


@dataclass(frozen=True, kw_only=True)
class Regime:
    """One study's pseudonymization: its secret and date regime. ``repr`` leaves the secret out."""

    study_id: str
    secret: bytes = field(repr=False)
    dates: DateRegime

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_BYTES:
            raise PseudonymizationError(
                f"the secret of study {self.study_id} is shorter than {MIN_SECRET_BYTES} bytes"
            )

    def _hash(self, purpose: str, *parts: str) -> str:
        """HMAC-SHA256 hex of ``purpose``, the study and ``parts``, NUL-separated (domain
        separation: a patient id and a lesion label never give the same message)."""
        message = "\0".join(("fhirnet", purpose, self.study_id, *parts)).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def pseudonym(self, patient_id: str) -> str:
        """The patient's id in exports: 64 hex digits, a valid FHIR id, stable per study.

        :param patient_id: the real ``Patient`` id
        """
        return self._hash("patient", patient_id)

    def resource_id(self, resource_type: str, resource_id: str) -> str:
        """The exported id of a resource of another type (Patient: :meth:`pseudonym`)."""
        if resource_type == "Patient":
            return self.pseudonym(resource_id)
        return self._hash("resource", resource_type, resource_id)

    def identifier_value(self, system: str, value: str) -> str:
        """The keyed hash an identifier's value becomes (same system and value → same hash)."""
        return self._hash("identifier", system, value)

    def lesion_id(self, patient_id: str, lesion_id: str) -> str:
        """A CRF lesion label, keyed per patient: ``L-`` and 16 hex digits (64 bits, plenty
        among one patient's lesions), short enough for an SDTM link id."""
        return "L-" + self._hash("lesion", patient_id, lesion_id)[:16]

    def date_offset(self, patient_id: str, reference_date: dt.date | None) -> int:
        """Days added to every date of the patient.

        :param patient_id: the real ``Patient`` id
        :param reference_date: the subject's study day 1 (needed for ``study-day`` only)
        :returns: ``shift``: a keyed value in ±[:data:`SHIFT_MIN_DAYS`, :data:`SHIFT_MAX_DAYS`];
            ``study-day``: the days from the reference date to :data:`STUDY_DAY_ANCHOR`
        :raises PseudonymizationError: ``study-day`` without a reference date (a ValueError)
        """
        if self.dates is DateRegime.STUDY_DAY:
            if reference_date is None:
                raise PseudonymizationError(
                    f"study {self.study_id} gives dates as study days, "
                    "and a subject has no reference date"
                )
            return (STUDY_DAY_ANCHOR - reference_date).days
        digest = int(self._hash("date-offset", patient_id)[:16], 16)
        span = SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1
        magnitude = SHIFT_MIN_DAYS + (digest >> 1) % span
        return magnitude if digest & 1 else -magnitude

    def statement(self) -> dict[str, Any]:
        """The regime as an export manifest states it; nothing derived from the secret."""
        dates = (
            "each patient's dates shifted by one keyed offset of 30 to 395 days, intervals exact"
            if self.dates is DateRegime.SHIFT
            else f"study days: the subject's reference date is {STUDY_DAY_ANCHOR.isoformat()}"
        )
        return {
            "regime": "pseudonymized",
            "study": self.study_id,
            "pseudonyms": "HMAC-SHA256 keyed per study; the key stays on site",
            "subjects": "USUBJID = STUDYID-SITEID-SUBJID (trial numbers, no hospital identifier)",
            "dates": self.dates.value,
            "dateRule": dates,
            "removed": list(REMOVED),
            "securityLabel": "PSEUDED",
        }


def shift_date(value: str, days: int) -> str | None:
    """A FHIR date, dateTime or instant moved by ``days``, time and zone unchanged.

    :returns: the shifted value; None for a year or year-month only value or anything that is
        not a full date (the MS anonymizer redacts those: they cannot be shifted exactly)
    """
    match = _FULL_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return (day + dt.timedelta(days=days)).isoformat() + (match[4] or "")


def reference_dates(subjects: Iterable[Mapping[str, Any]]) -> dict[str, dt.date]:
    """Real patient id → study day 1, from a study's ResearchSubjects (``individual`` and
    ``period.start``): what :class:`Pseudonymizer` needs under the study-day regime.

    Subjects without a Patient or a full start date are left out (their export then fails
    under ``study-day``, rather than guessing a day 1).
    """
    found: dict[str, dt.date] = {}
    for subject in subjects:
        individual = subject.get("individual")
        period = subject.get("period")
        if not isinstance(individual, Mapping) or not isinstance(period, Mapping):
            continue
        patient = _PATIENT_REFERENCE.fullmatch(str(individual.get("reference", "")))
        start = _FULL_DATE.fullmatch(str(period.get("start", "")))
        if patient is None or start is None:
            continue
        try:
            found[patient[2]] = dt.date(int(start[1]), int(start[2]), int(start[3]))
        except ValueError:
            continue
    return found


def _is_date_key(key: str) -> bool:
    return key in DATE_KEYS or key.endswith(("Date", "DateTime", "Instant"))


@dataclass(frozen=True, kw_only=True)
class _Scope:
    """Where the walk is: whose data, which resource, what the enclosing elements say."""

    patient_id: str | None
    resource_type: str
    lesion: bool = False  # inside the answers of a lesion-id item
    parent: str = ""  # the key the current element sits under
    extension_url: str | None = None  # the enclosing fhirnet/HL7 extension


class Pseudonymizer:
    """Pseudonymizes the FHIR resources of one export under one Regime."""

    def __init__(self, regime: Regime, reference_dates: Mapping[str, dt.date]) -> None:
        """:param reference_dates: real patient id → the subject's reference date (study day 1)"""
        self.regime = regime
        self._reference_dates = dict(reference_dates)
        self._offsets: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Pseudonymizer({self.regime!r})"

    def offset(self, patient_id: str) -> int:
        """The days every date of the patient moves (cached per export)."""
        if patient_id not in self._offsets:
            self._offsets[patient_id] = self.regime.date_offset(
                patient_id, self._reference_dates.get(patient_id)
            )
        return self._offsets[patient_id]

    def resource(self, resource: Mapping[str, Any], patient_id: str | None) -> dict[str, Any]:
        """A pseudonymized deep copy of ``resource`` (the input is untouched).

        :param patient_id: the real patient whose data this is; None for study-level resources
            (ResearchStudy, the enrolment Group, whose members each take their own patient)
        :raises PseudonymizationError: under ``study-day``, a dated resource of a patient
            without a reference date
        """
        resource_type = str(resource.get("resourceType", ""))
        scope = _Scope(patient_id=patient_id, resource_type=resource_type)
        source = copy.deepcopy(dict(resource))
        birth = source.pop("birthDate", None) if resource_type == "Patient" else None
        out = self._object(source, scope, top=True)
        year = str(birth)[:4]
        if birth is not None and self.regime.dates is DateRegime.SHIFT and year.isdigit():
            out["birthDate"] = year  # year only (HIPAA Safe Harbor keeps the year)
        meta = out.setdefault("meta", {})
        security = meta.get("security")
        labels = [
            s
            for s in (security if isinstance(security, list) else [])
            if isinstance(s, dict) and s.get("code") != PSEUDED["code"]
        ]
        meta["security"] = [*labels, dict(PSEUDED)]
        return out

    # -- the walk ---------------------------------------------------------------------------

    def _object(self, node: dict[str, Any], scope: _Scope, *, top: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node.get("linkId") in LESION_LINK_IDS:
            scope = replace(scope, lesion=True)
        if scope.resource_type == "Group" and isinstance(node.get("entity"), dict):
            member = _PATIENT_REFERENCE.fullmatch(str(node["entity"].get("reference", "")))
            scope = replace(scope, patient_id=member[2] if member else None)
        is_coding = "code" in node or "system" in node
        is_reference = "reference" in node and isinstance(node.get("reference"), str)
        for key, value in node.items():
            kept = self._element(node, key, value, scope, top=top, coding=is_coding)
            if kept is not None and kept != {} and kept != []:
                out[key] = kept
        if is_reference and "reference" not in out:
            return {}  # a reference of an unknown shape: nothing of it is safe to keep
        return out

    def _element(
        self,
        node: dict[str, Any],
        key: str,
        value: Any,
        scope: _Scope,
        *,
        top: bool,
        coding: bool,
    ) -> Any:
        """The exported value of ``node[key]``, or None to drop it."""
        if key == "valueString" and isinstance(value, str):
            if scope.lesion:
                return self._lesion(value, scope)
            return value if self._label(scope) else None
        if key in FREE_TEXT_KEYS:
            return None
        if top and scope.resource_type in PERSON_TYPES and key in PERSON_REMOVED:
            return None
        if key == "id":
            if top and isinstance(value, str):
                return self.regime.resource_id(scope.resource_type, value)
            return value if isinstance(value, str) and scope.resource_type == "#contained" else None
        if key == "reference" and isinstance(value, str):
            return self._reference(value)
        if key == "display":
            return value if coding and isinstance(value, str) else None
        if key in {"extension", "modifierExtension"} and isinstance(value, list):
            kept = [self._extension(e, scope) for e in value if _kept_extension(e, scope)]
            return [e for e in kept if e]
        if key == "contained" and isinstance(value, list):
            return [self._contained(r, scope) for r in value if isinstance(r, dict)]
        if key == "identifier" or key.endswith("Identifier"):
            if "reference" in node and not self._lesion_identifier(value):
                return None  # Reference.identifier: where MRNs ride
            return self._identifiers(value, scope)
        if _is_date_key(key):
            return self._date(value, scope) if isinstance(value, str) else None
        return self._value(key, value, scope)

    def _value(self, key: str, value: Any, scope: _Scope) -> Any:
        if isinstance(value, dict):
            return self._object(value, replace(scope, parent=key))
        if isinstance(value, list):
            items = [self._value(key, v, scope) for v in value]
            return [v for v in items if v is not None and v != {} and v != []]
        if isinstance(value, str):
            if key in KEPT_STRING_KEYS or (scope.parent, key) in KEPT_NESTED_STRINGS:
                return value
            study = scope.patient_id is None and scope.resource_type in STUDY_TYPES
            return value if study and key in STUDY_STRING_KEYS else None
        return value  # numbers, booleans

    def _label(self, scope: _Scope) -> bool:
        return scope.extension_url in _LABELS

    def _extension(self, extension: dict[str, Any], scope: _Scope) -> dict[str, Any]:
        url = str(extension.get("url", ""))
        parent = scope.extension_url
        # a sub-extension's url is relative ("label"): remember it under its parent's
        inner = f"{parent.split('#')[0]}#{url}" if parent and "://" not in url else url
        rest = self._object(
            {k: v for k, v in extension.items() if k != "url"},
            replace(scope, extension_url=inner),
        )
        return {"url": url, **rest} if rest else {}

    def _contained(self, resource: dict[str, Any], scope: _Scope) -> dict[str, Any]:
        inner = _Scope(patient_id=scope.patient_id, resource_type="#contained")
        out = self._object(resource, inner)
        if resource.get("resourceType") in PERSON_TYPES:
            out = {k: v for k, v in out.items() if k not in PERSON_REMOVED}
        return out

    def _reference(self, value: str) -> str | None:
        if value.startswith(("urn:uuid:", "#")):
            return value
        match = _REFERENCE.fullmatch(value)
        if match is None:
            return None
        kind, rid, history = match[1], match[2], match[3] or ""
        return f"{kind}/{self.regime.resource_id(kind, rid)}{history}"

    def _identifiers(self, value: Any, scope: _Scope) -> Any:
        if isinstance(value, list):
            items = [self._identifiers(v, scope) for v in value]
            return [v for v in items if v]
        if not isinstance(value, dict):
            return None
        out = self._object({k: v for k, v in value.items() if k != "value"}, scope)
        raw, system = value.get("value"), str(value.get("system", ""))
        if isinstance(raw, str):
            if system == CRF_LESION_ID:
                lesion = self._lesion(raw, scope)
                if lesion is None:
                    return {}  # a lesion label without its patient: nothing left to link
                out["value"] = lesion
            elif system.startswith(CLEAR_IDENTIFIER_SYSTEMS):
                out["value"] = raw
            else:
                out["value"] = self.regime.identifier_value(system, raw)
        return out

    @staticmethod
    def _lesion_identifier(value: Any) -> bool:
        return isinstance(value, dict) and value.get("system") == CRF_LESION_ID

    def _lesion(self, label: str, scope: _Scope) -> str | None:
        if scope.patient_id is None:
            return None
        return self.regime.lesion_id(scope.patient_id, label)

    def _date(self, value: str, scope: _Scope) -> str | None:
        if scope.patient_id is None:
            return None  # no patient, no offset: a study-level date is not exported
        return shift_date(value, self.offset(scope.patient_id))


def _kept_extension(extension: Any, scope: _Scope) -> bool:
    if not isinstance(extension, dict):
        return False
    url = str(extension.get("url", ""))
    if scope.extension_url is not None and "://" not in url:
        return True  # a sub-extension of a kept extension: its url is a local name
    return url.startswith(KEPT_EXTENSION_PREFIXES)
