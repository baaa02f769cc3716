"""QuestionnaireResponse → domain: one filled CRF as an :class:`ExamForm`, a patient's forms as an
:class:`~fhirnet.criteria.AssessmentRequest`, and the code tables between the two.

The form's items are those of ``shared/spec/crf.md`` "Items" with the linkIds of the Questionnaire
(``fsh/README.md`` "The Questionnaire item tree"): inside the ``non-target-lesion`` and
``new-lesion`` groups the repeated items carry the group's linkId and a dot as a prefix
(``non-target-lesion.lesion-id``), which is stripped on reading (``fsh/README.md`` "What in crf.md
was wrong", 1). Answers are read as the assessment API reads the same values
(``assessment-api.md`` "Request"), so that a patient's forms and the JSON request with the same
measurements give the same assessment: numbers become exact ``Decimal`` s of their shortest repr
(as ``fhirnet.web.schema_fields.JsonNumber`` does), codes become the domain enums below.

The input is a QuestionnaireResponse that :func:`fhirnet.fhir.questionnaire.validate_response`
accepted; what validation guarantees (types, value sets, required items) is not checked again,
but a form this module cannot read still raises :class:`~fhirnet.errors.InvalidInputError` with
every problem rather than producing a wrong timepoint.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, TypeVar

from fhirnet.criteria import (
    AssessmentRequest,
    Criteria,
    Differentiation,
    FunctionalStatus,
    IntratumoralNodules,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    PetReference,
    PrimarySite,
    Response,
    RiskFactors,
    Syndrome,
    TargetLesion,
    TimePoint,
    TimePointRole,
)
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.crf_codes import (
    ASSESSMENT_TYPE_SYSTEM,
    CRITERIA,
    LESION_SITES,
    MEN1,
    MODALITIES,
    NODAL_LOCATIONS,
    RESPONSE_CATEGORIES,
    AssessmentType,
)
from fhirnet.fhir.datatypes import SNOMED, Coding, project_system
from fhirnet.fhir.identifiers import Identifier
from fhirnet.fhir.questionnaire_answers import answers_by_link_id

__all__ = ["ExamForm", "assessment_request", "extract_form"]

E = TypeVar("E", bound=StrEnum)


_NON_TARGET_STATUS: Final = project_system("non-target-status")
_INTRATUMORAL_NODULES: Final = project_system("intratumoral-nodules")
_PRIMARY_SITE: Final = project_system("primary-site")
_FUNCTIONAL_STATUS: Final = project_system("functional-status")
_SYNDROME: Final = project_system("functioning-syndrome")
_DIFFERENTIATION: Final = project_system("differentiation")

_BY_CODING: Final[Mapping[str, Mapping[tuple[str, str], StrEnum]]] = {
    "criteria": {(c.system, c.code): value for value, c in CRITERIA.items()},
    "response": {(c.system, c.code): value for value, c in RESPONSE_CATEGORIES.items()},
    "modality": {(c.system, c.code): value for value, c in MODALITIES.items()},
}

_GROUPS: Final = ("target-lesion", "non-target-lesion", "new-lesion", "pet-reference", "risk")


@dataclass(frozen=True, kw_only=True)
class ExamForm:
    """One filled CRF: its header, the exam's timepoint data, the reader's conclusion, the risk
    group. Lesions are the domain's own dataclasses; ``locations`` keeps each target's
    ``lesion-location`` Coding as answered (the domain's ``site`` is coarser: all lymph nodes are
    one site), and ``response`` the QuestionnaireResponse itself, to be written as received."""

    response_id: str | None
    identifier: Identifier | None
    subject: str | None
    questionnaire: str | None
    status: str
    authored: str | None
    author: str | None
    imaging_date: dt.date
    assessment_type: AssessmentType
    baseline_date: dt.date | None
    nadir_date: dt.date | None
    criteria: Criteria
    modalities: tuple[Modality, ...]
    targets: tuple[TargetLesion, ...]
    non_targets: tuple[NonTargetLesion, ...]
    new_lesions: tuple[NewLesion, ...]
    pet: PetReference | None
    intratumoral_nodules: IntratumoralNodules | None
    response_vs_baseline: Response | None
    response_vs_nadir: Response | None
    risk: RiskFactors | None
    locations: tuple[tuple[str, Coding], ...] = ()
    response: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def location(self, lesion_id: str) -> Coding | None:
        """The ``lesion-location`` Coding answered for target ``lesion_id``."""
        return dict(self.locations).get(lesion_id)

    @property
    def pre_baseline(self) -> bool:
        """A pre-treatment scan: stored and used for the TGR, never assessed as an exam."""
        return self.assessment_type is AssessmentType.PRE_BASELINE

    def timepoint(self) -> TimePoint:
        """The exam as the domain's timepoint (``assessment-api.md`` timepoint fields); a
        pre-baseline form is a timepoint with ``role: pre-baseline``."""
        return TimePoint(
            date=self.imaging_date,
            role=TimePointRole.PRE_BASELINE if self.pre_baseline else TimePointRole.ASSESSMENT,
            modalities=self.modalities,
            targets=self.targets,
            non_targets=self.non_targets,
            new_lesions=self.new_lesions,
            pet=self.pet,
            intratumoral_nodules=self.intratumoral_nodules,
        )


def assessment_request(
    forms: Sequence[ExamForm], criteria: Criteria, *, options: Options | None = None
) -> AssessmentRequest:
    """One patient's timeline: each form is a timepoint, a pre-baseline form one with the role
    ``pre-baseline`` (``assessment-api.md`` "Request").

    :param forms: the patient's forms in any order (the domain sorts them by imaging date).
    :param criteria: the criteria to assess with; the caller chooses when forms disagree.
    :param options: best-overall-response options; the domain's defaults when ``None``.
    :returns: the request :func:`fhirnet.criteria.assess` takes.
    """
    return AssessmentRequest(
        criteria=criteria,
        timepoints=tuple(form.timepoint() for form in forms),
        options=options if options is not None else Options(),
    )


def extract_form(response: Mapping[str, Any]) -> ExamForm:
    """Read a validated CRF QuestionnaireResponse (``crf.md`` "Items").

    :param response: the QuestionnaireResponse as JSON; kept, not modified, in ``response``.
    :returns: the form's values as domain values.
    :raises InvalidInputError: with every item that cannot be read (a response that
        :func:`~fhirnet.fhir.questionnaire.validate_response` accepts has none).
    """
    reader = _Reader()
    items = response.get("item")
    top = answers_by_link_id(items)
    groups = {name: list(_groups(items, name)) for name in _GROUPS}
    imaging_date = reader.date(top, "imaging-date", required=True)
    assessment_type = reader.enum(top, "assessment-type", AssessmentType, ASSESSMENT_TYPE_SYSTEM)
    criteria = reader.table(top, "response-criteria", "criteria")
    targets, locations = _targets(reader, groups["target-lesion"])
    form = ExamForm(
        response_id=_string(response.get("id")),
        identifier=_identifier(response.get("identifier")),
        subject=_reference(response.get("subject")),
        questionnaire=_string(response.get("questionnaire")),
        status=str(response.get("status", "")),
        authored=_string(response.get("authored")),
        author=_reference(response.get("author")),
        imaging_date=imaging_date or dt.date.min,
        assessment_type=assessment_type or AssessmentType.BASELINE,
        baseline_date=reader.date(top, "baseline-date"),
        nadir_date=reader.date(top, "nadir-date"),
        criteria=criteria or Criteria.RECIST_1_1,
        modalities=tuple(
            m
            for answer in top.get("imaging-procedure", [])
            if (m := reader.coded(answer, "imaging-procedure", "modality")) is not None
        ),
        targets=targets,
        non_targets=tuple(_non_target(reader, a) for a in groups["non-target-lesion"]),
        new_lesions=tuple(_new_lesion(reader, a) for a in groups["new-lesion"]),
        pet=_pet(reader, groups["pet-reference"]),
        intratumoral_nodules=reader.enum(
            top, "intratumoral-nodules", IntratumoralNodules, _INTRATUMORAL_NODULES
        ),
        response_vs_baseline=reader.table(top, "response-vs-baseline", "response"),
        response_vs_nadir=reader.table(top, "response-vs-nadir", "response"),
        risk=_risk(reader, groups["risk"][0]) if groups["risk"] else None,
        locations=locations,
        response=response,
    )
    if reader.problems:
        raise InvalidInputError(reader.problems)
    return form


# -- reading answers --------------------------------------------------------------------------

Answers = dict[str, list[Any]]


class _Reader:
    """Reads answers into domain values and collects what it cannot read."""

    def __init__(self) -> None:
        self.problems: list[FieldError] = []

    def problem(self, link_id: str, message: str) -> None:
        self.problems.append(FieldError(path=("item", link_id), message=message))

    def one(self, answers: Answers, link_id: str, *, required: bool = False) -> Any:
        values = answers.get(link_id, [])
        if not values:
            if required:
                self.problem(link_id, f"{link_id!r} has no answer")
            return None
        if len(values) > 1:
            self.problem(link_id, f"{link_id!r} takes one answer, not {len(values)}")
        return values[0]

    def date(self, answers: Answers, link_id: str, *, required: bool = False) -> dt.date | None:
        value = self.one(answers, link_id, required=required)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            self.problem(link_id, f"{link_id!r} is not a full date (YYYY-MM-DD): {value!r}")
            return None

    def number(self, answers: Answers, link_id: str) -> Decimal | None:
        value = self.one(answers, link_id)
        if value is None:
            return None
        number = _decimal(value)
        if number is None:
            self.problem(link_id, f"{link_id!r} is not a finite number: {value!r}")
        return number

    def boolean(self, answers: Answers, link_id: str) -> bool | None:
        value = self.one(answers, link_id)
        if value is None or isinstance(value, bool):
            return value
        self.problem(link_id, f"{link_id!r} is not a boolean: {value!r}")
        return None

    def text(self, answers: Answers, link_id: str) -> str:
        value = self.one(answers, link_id, required=True)
        if isinstance(value, str) and value:
            return value
        if value is not None:
            self.problem(link_id, f"{link_id!r} is not a string: {value!r}")
        return ""

    def coding(self, answers: Answers, link_id: str, *, required: bool = False) -> Coding | None:
        value = self.one(answers, link_id, required=required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(link_id, f"{link_id!r} is not a Coding: {value!r}")
            return None
        return Coding.of(value)

    def coded(self, value: Any, link_id: str, table: str) -> Any:
        """The domain value of a Coding answer through one of the tables of this module."""
        coding = Coding.of(value) if isinstance(value, Mapping) else None
        found = None if coding is None else _BY_CODING[table].get((coding.system, coding.code))
        if found is None:
            self.problem(link_id, f"{link_id!r}: {_shown(value)} is not a known {table} code")
        return found

    def table(self, answers: Answers, link_id: str, table: str) -> Any:
        value = self.one(answers, link_id)
        return None if value is None else self.coded(value, link_id, table)

    def enum(self, answers: Answers, link_id: str, enum: type[E], system: str) -> E | None:
        """A Coding of a project CodeSystem whose codes are the enum's values."""
        coding = self.coding(answers, link_id)
        return None if coding is None else self.member(coding, link_id, enum, system)

    def member(self, coding: Coding, link_id: str, enum: type[E], system: str) -> E | None:
        if coding.system == system and coding.code in enum._value2member_map_:
            return enum(coding.code)
        self.problem(link_id, f"{link_id!r}: {coding.system}#{coding.code} is not in {system}")
        return None


def _groups(items: object, link_id: str) -> Iterator[Answers]:
    """The answers of each occurrence of a group, keyed by linkId without the group's prefix."""
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("linkId") == link_id:
            answers = answers_by_link_id(item.get("item"))
            yield {key.removeprefix(f"{link_id}."): values for key, values in answers.items()}


def _lesion(reader: _Reader, answers: Answers) -> tuple[str, Coding | None, str, bool]:
    """``lesion-id``, the location Coding, the API site and whether nodal, of one lesion group."""
    lesion_id = reader.text(answers, "lesion-id")
    location = reader.coding(answers, "lesion-location", required=True)
    site = ""
    if location is not None:
        site = LESION_SITES.get(location.code, "") if location.system == SNOMED else ""
        if not site:
            reader.problem("lesion-location", f"{_shown(location.json())} is not a lesion location")
    nodal = reader.boolean(answers, "lesion-nodal")
    if nodal is None:
        nodal = location is not None and location.code in NODAL_LOCATIONS
    return lesion_id, location, site, nodal


def _targets(
    reader: _Reader, groups: Sequence[Answers]
) -> tuple[tuple[TargetLesion, ...], tuple[tuple[str, Coding], ...]]:
    targets, locations = [], []
    for answers in groups:
        lesion_id, location, site, nodal = _lesion(reader, answers)
        targets.append(
            TargetLesion(
                id=lesion_id,
                site=site,
                nodal=nodal,
                diameter_mm=reader.number(answers, "lesion-size"),
                too_small_to_measure=reader.boolean(answers, "lesion-too-small") or False,
                density_hu=reader.number(answers, "lesion-density"),
                sul_peak=reader.number(answers, "lesion-sul-peak"),
                suv_max=reader.number(answers, "lesion-suv-max"),
            )
        )
        if location is not None:
            locations.append((lesion_id, location))
    return tuple(targets), tuple(locations)


def _non_target(reader: _Reader, answers: Answers) -> NonTargetLesion:
    lesion_id, _, site, nodal = _lesion(reader, answers)
    status = reader.enum(answers, "lesion-status", NonTargetStatus, _NON_TARGET_STATUS)
    return NonTargetLesion(
        id=lesion_id, site=site, nodal=nodal, status=status or NonTargetStatus.PRESENT
    )


def _new_lesion(reader: _Reader, answers: Answers) -> NewLesion:
    lesion_id, _, site, nodal = _lesion(reader, answers)
    modality = reader.table(answers, "lesion-modality", "modality")
    return NewLesion(
        id=lesion_id,
        site=site,
        modality=modality,
        equivocal=reader.boolean(answers, "lesion-equivocal") or False,
        diameter_mm=reader.number(answers, "lesion-size"),
        nodal=nodal,
    )


def _pet(reader: _Reader, groups: Sequence[Answers]) -> PetReference | None:
    """The PET reference regions; ``None`` when the group is absent or left empty (the API's
    ``pet`` is then absent too, as in the examples)."""
    if not groups or not any(groups[0].values()):
        return None
    answers = groups[0]
    return PetReference(
        liver_sul_mean=reader.number(answers, "liver-sul-mean"),
        liver_sul_sd=reader.number(answers, "liver-sul-sd"),
        blood_pool_sul_mean=reader.number(answers, "blood-pool-sul-mean"),
        blood_pool_sul_sd=reader.number(answers, "blood-pool-sul-sd"),
        uptake_time_min=reader.number(answers, "uptake-time"),
    )


def _risk(reader: _Reader, answers: Answers) -> RiskFactors:
    """The ``risk`` group (``crf.md`` "Risk stratification"); every item is optional."""
    men1 = reader.coding(answers, "men1")
    men1_status = None if men1 is None else MEN1.get((men1.system, men1.code))
    if men1 is not None and men1_status is None:
        reader.problem("men1", f"{_shown(men1.json())} is not a MEN1 status")
    score = reader.one(answers, "krenning-score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
        reader.problem("krenning-score", f"'krenning-score' is not an integer: {score!r}")
        score = None
    syndromes = []
    for value in answers.get("syndrome", []):
        coding = Coding.of(value) if isinstance(value, Mapping) else Coding(system="", code="")
        syndrome = reader.member(coding, "syndrome", Syndrome, _SYNDROME)
        if syndrome is not None:
            syndromes.append(syndrome)
    return RiskFactors(
        primary_site=reader.enum(answers, "primary-site", PrimarySite, _PRIMARY_SITE),
        functional_status=reader.enum(
            answers, "functional-status", FunctionalStatus, _FUNCTIONAL_STATUS
        ),
        syndromes=tuple(syndromes),
        men1=men1_status,
        differentiation=reader.enum(answers, "differentiation", Differentiation, _DIFFERENTIATION),
        ki67_pct=reader.number(answers, "ki67"),
        mitoses_per_2mm2=reader.number(answers, "mitotic-count"),
        krenning_score=score,
        fdg_avid=reader.boolean(answers, "fdg-avid"),
    )


def _decimal(value: object) -> Decimal | None:
    """A JSON number as the assessment API reads it: a float becomes the Decimal of its shortest
    repr (``9.8`` → ``Decimal('9.8')``), a zero loses its sign; anything else is ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            return None
        number = value
    else:
        return None
    return number.copy_abs() if number.is_zero() else number


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _reference(value: object) -> str | None:
    return _string(value.get("reference")) if isinstance(value, Mapping) else None


def _identifier(value: object) -> Identifier | None:
    if not isinstance(value, Mapping):
        return None
    system, text = value.get("system"), value.get("value")
    if isinstance(system, str) and isinstance(text, str) and system and text:
        return Identifier(system=system, value=text)
    return None


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return f"{value.get('system')}#{value.get('code')}"
    return repr(value)
