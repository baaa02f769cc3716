"""FHIR R4 datatypes as JSON: the code systems fhirnet writes, Coding, CodeableConcept, Quantity.

The values fhirnet writes are plain JSON (``dict``/``list``/``str``/``int``/``float``/``bool``)
so that any JSON encoder sends them unchanged (``FhirClient.transaction`` uses ``json.dumps``).
Domain numbers are ``Decimal``; :func:`number` turns them into the JSON number with the same
digits (``Decimal("41.0")`` → ``41.0``, ``Decimal("96")`` → ``96``), so a figure keeps the
precision the domain rounded it to (FHIR R4 datatypes, decimal: the precision is significant).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fhirnet.fhir.profiles import CANONICAL_BASE

Json = dict[str, Any]

#: Code systems (``fsh/README.md`` "Codes: verified and project-local").
NCIT: Final = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
V2_0136: Final = "http://terminology.hl7.org/CodeSystem/v2-0136"
V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
PROVENANCE_PARTICIPANT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"


def project_system(name: str) -> str:
    """The canonical URL of one of the project's CodeSystems, e.g. ``imaging-procedure``."""
    return f"{CANONICAL_BASE}/CodeSystem/{name}"


def profile_url(profile_id: str) -> str:
    """The canonical URL of one of the project's StructureDefinitions."""
    return f"{CANONICAL_BASE}/StructureDefinition/{profile_id}"


#: The project's ``observation-codes`` CodeSystem: Observation/component codes with no standard.
OBSERVATION_CODES: Final = project_system("observation-codes")


@dataclass(frozen=True, kw_only=True)
class Coding:
    """A FHIR Coding; ``display`` is the one the CodeSystem, ValueSet or ConceptMap gives."""

    system: str
    code: str
    display: str | None = None

    def json(self) -> Json:
        coding: Json = {"system": self.system, "code": self.code}
        if self.display is not None:
            coding["display"] = self.display
        return coding

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Coding:
        """The Coding of a JSON object as received (a ``valueCoding``)."""
        display = raw.get("display")
        return cls(
            system=str(raw.get("system", "")),
            code=str(raw.get("code", "")),
            display=display if isinstance(display, str) else None,
        )


def concept(*codings: Coding) -> Json:
    """A CodeableConcept of the codings: the first is the code, the others its translations."""
    return {"coding": [coding.json() for coding in codings]}


def code(system: str, value: str) -> Json:
    """A CodeableConcept with one coding and no display (``code`` and component codes, as the
    profiles' patterns fix system and code only)."""
    return {"coding": [{"system": system, "code": value}]}


def number(value: Decimal | int) -> int | float:
    """A JSON number with the digits of ``value``: integral values without a decimal point stay
    ``int``, others become the ``float`` that prints as the same digits (``Decimal('3.69')`` →
    ``3.69``); the figures fhirnet writes have at most a few significant digits."""
    if isinstance(value, int):
        return value
    if value.is_zero():
        value = value.copy_abs()  # no "-0.0" in FHIR JSON
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(value)
    return float(value)


def quantity(value: Decimal, unit_code: str, unit: str | None = None) -> Json:
    """A UCUM Quantity; ``unit`` is the human-readable unit (defaults to the UCUM code)."""
    return {
        "value": number(value),
        "unit": unit if unit is not None else unit_code,
        "system": UCUM,
        "code": unit_code,
    }


def reference(target: str) -> Json:
    return {"reference": target}


def date_time(value: dt.date) -> str:
    """A FHIR ``dateTime`` at day precision (``2025-03-20``), as the CRF's dates are."""
    return value.isoformat()


def instant(value: dt.datetime) -> str:
    """A FHIR ``instant``: a timezone is required (R4 datatypes, instant).

    :raises ValueError: ``value`` is naive.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"an instant needs a timezone: {value!r}")
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def data_absent(reason: str) -> Json:
    """``dataAbsentReason`` with a code of the R4 data-absent-reason CodeSystem."""
    return code(DATA_ABSENT_REASON, reason)


def as_json(value: Any) -> Any:
    """A deep copy of a JSON-like value with every ``Decimal`` turned into a JSON number (a
    QuestionnaireResponse read with ``parse_float=Decimal`` is written back unchanged)."""
    # Leaves (most of a form) are kept here rather than in a call each, and the cheap type tests
    # come before the Mapping ABC's: every submission copies its form with this.
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict | Mapping):
        return {
            str(key): item if isinstance(item, _LEAVES) else as_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [item if isinstance(item, _LEAVES) else as_json(item) for item in value]
    if isinstance(value, Decimal):
        return number(value)
    return value


#: What :func:`as_json` returns as it is (and their subclasses: ``bool``, string enums).
_LEAVES = (str, int, float, type(None))
