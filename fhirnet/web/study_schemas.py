"""marshmallow schemas of the study API (``docs/trials.md`` "Studies and enrolment"): the bodies of
``PUT /api/v1/studies/{studyId}`` and ``PUT /api/v1/studies/{studyId}/subjects/{subjectId}``,
loaded into :mod:`fhirnet.fhir.studies` values, and the answers. Structure only (types, codes,
lengths, references, unique codes and ids); what needs the store (an arm or site of the study, a
patient enrolled twice) is the use case's (:mod:`fhirnet.services.studies`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from fhirnet.criteria.models import Criteria
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.studies import (
    ID_PATTERN,
    Arm,
    Enrolment,
    Reader,
    ReaderRole,
    Site,
    Study,
    SubjectStatus,
    Visit,
)
from fhirnet.web.endpoint_schemas import (
    EndpointOptionsSchema,
    ScheduledVisitSchema,
)
from fhirnet.web.schema_fields import (
    BoundedList,
    CamelCaseSchema,
    IsoDate,
    ModelSchema,
    field_errors,
    shared,
)

MAX_ARMS = 20
MAX_SITES = 500
MAX_READERS = 50
MAX_SCHEDULE = 100
MAX_TITLE = 500
MAX_NAME = 200
_ID = re.compile(ID_PATTERN)
READER_REFERENCE = re.compile(r"(Practitioner|PractitionerRole)/[A-Za-z0-9\-.]{1,64}")
_PATIENT = re.compile(r"Patient/[A-Za-z0-9\-.]{1,64}")
#: Evaluator names of the study endpoints (``fhirnet.services.study_endpoints``): no reader's.
RESERVED_LABELS = ("INVESTIGATOR", "CENTRAL")


def check_id(value: str, name: str) -> None:
    """A study or subject id of the URL: FHIR ``id`` characters, 1-64 of them.

    :raises InvalidInputError: at ``$.<name>``.
    """
    if not _ID.fullmatch(value):
        raise InvalidInputError(
            [FieldError(path=(name,), message="Letters, digits, '-' and '.' only; 1-64 of them.")]
        )


def _id(**kwargs: Any) -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Regexp(_ID, error="Letters, digits, '-' and '.' only."),
        **kwargs,
    )


def text_field(maximum: int, **kwargs: Any) -> fields.String:
    """A required string of 1 to ``maximum`` characters (or the ``validate`` given)."""
    kwargs.setdefault("validate", validate.Length(min=1, max=maximum))
    return fields.String(required=True, **kwargs)


def _unique(attribute: str, label: str) -> Any:
    def check(values: Sequence[Any]) -> None:
        seen = [getattr(value, attribute) for value in values]
        duplicates = sorted({str(v) for v in seen if seen.count(v) > 1})
        if duplicates:
            raise ValidationError(f"{label} listed more than once: {', '.join(duplicates)}.")

    return check


class ArmSchema(ModelSchema):
    """An arm: its code (SDTM ARMCD, what a subject's ``arm`` names) and its name (ARM)."""

    model = Arm
    code = text_field(20)
    name = text_field(MAX_NAME)


class SiteSchema(ModelSchema):
    """A site of the study: its id in the study and its name."""

    model = Site
    id = _id()
    name = text_field(MAX_NAME)


class ReaderSchema(ModelSchema):
    """A reader: a Practitioner or PractitionerRole reference, the reading role, a label."""

    model = Reader
    reference = fields.String(
        required=True,
        validate=validate.Regexp(
            READER_REFERENCE, error="Must be Practitioner/<id> or PractitionerRole/<id>."
        ),
    )
    role = fields.Enum(ReaderRole, by_value=fields.String, required=True)
    label = text_field(
        MAX_NAME,
        validate=[
            validate.Length(min=1, max=MAX_NAME),
            validate.NoneOf(
                RESERVED_LABELS, error="INVESTIGATOR and CENTRAL name the study's evaluations."
            ),
        ],
    )


class StudyOptionsSchema(EndpointOptionsSchema):
    """The endpoint options the study fixes (``docs/trials.md``), kept as given."""

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        names = {field.attribute or name: field.data_key for name, field in self.fields.items()}
        return {names[key] or key: value for key, value in data.items()}


class StudyVisitSchema(ScheduledVisitSchema):
    """A protocol visit: name, target study day, window."""

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return Visit(**data)


class StudyRequestSchema(CamelCaseSchema):
    """Body of ``PUT /api/v1/studies/{studyId}``."""

    title = text_field(MAX_TITLE)
    criteria = fields.Enum(Criteria, by_value=fields.String, required=True)
    options = fields.Nested(StudyOptionsSchema)
    arms = BoundedList(
        fields.Nested(ArmSchema),
        required=True,
        min_length=1,
        max_length=MAX_ARMS,
        validate_items=_unique("code", "Arm code"),
    )
    sites = BoundedList(
        fields.Nested(SiteSchema),
        required=True,
        min_length=1,
        max_length=MAX_SITES,
        validate_items=_unique("id", "Site id"),
    )
    readers = BoundedList(
        fields.Nested(ReaderSchema),
        max_length=MAX_READERS,
        validate_items=_unique("label", "Reader label"),
    )
    schedule = BoundedList(
        fields.Nested(StudyVisitSchema),
        max_length=MAX_SCHEDULE,
        validate_items=_unique("visit", "Visit"),
    )


class SubjectRequestSchema(CamelCaseSchema):
    """Body of ``PUT /api/v1/studies/{studyId}/subjects/{subjectId}``."""

    patient = fields.String(
        required=True, validate=validate.Regexp(_PATIENT, error="Must be Patient/<id>.")
    )
    site = _id()
    arm = text_field(20)
    reference_date = IsoDate(
        required=True, metadata={"description": "Treatment start or randomization: study day 1."}
    )
    status = fields.Enum(
        SubjectStatus,
        by_value=fields.String,
        load_default=SubjectStatus.ON_STUDY,
        metadata={"description": "R4 research-subject-status; withdraw with DELETE."},
    )

    @validates_schema
    def _not_withdrawn(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("status") is SubjectStatus.WITHDRAWN:
            raise ValidationError(
                "Withdraw with DELETE, which records the withdrawal date.", "status"
            )


def load_study(study_id: str, document: Any) -> Study:
    """Validate a study body and build the :class:`Study`.

    :raises InvalidInputError: every problem, with its path in the body (``$.studyId`` for the
        URL's id).
    """
    check_id(study_id, "studyId")
    try:
        data: dict[str, Any] = shared(StudyRequestSchema).load(document)
    except ValidationError as error:
        raise InvalidInputError(field_errors(error.messages)) from None
    return Study(study_id=study_id, **{k: v for k, v in data.items() if v is not None})


def load_subject(study_id: str, subject_id: str, document: Any) -> Enrolment:
    """Validate a subject body and build the :class:`Enrolment`.

    :raises InvalidInputError: every problem, with its path in the body.
    """
    check_id(study_id, "studyId")
    check_id(subject_id, "subjectId")
    try:
        data: dict[str, Any] = shared(SubjectRequestSchema).load(document)
    except ValidationError as error:
        raise InvalidInputError(field_errors(error.messages)) from None
    patient = str(data.pop("patient")).removeprefix("Patient/")
    return Enrolment(study_id=study_id, subject_id=subject_id, patient=patient, **data)


# --- answers ---


class StudyAnswerSchema(CamelCaseSchema):
    """A stored study: the definition as sent, its id, and its FHIR resources."""

    study_id = fields.String(required=True)
    title = fields.String(required=True)
    criteria = fields.String(required=True)
    options = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    arms = fields.List(fields.Dict(), required=True)
    sites = fields.List(fields.Dict(), required=True)
    readers = fields.List(fields.Dict(), required=True)
    schedule = fields.List(fields.Dict(), required=True)
    research_study = fields.String(required=True, metadata={"description": "ResearchStudy/<id>"})
    group = fields.String(required=True, metadata={"description": "The enrolment Group/<id>"})


class SubjectAnswerSchema(CamelCaseSchema):
    """A stored subject: the enrolment as sent, its status and withdrawal date, its FHIR id."""

    study_id = fields.String(required=True)
    subject_id = fields.String(required=True)
    patient = fields.String(required=True)
    site = fields.String(required=True)
    arm = fields.String(required=True)
    reference_date = fields.String(required=True)
    status = fields.Enum(SubjectStatus, by_value=fields.String, required=True)
    withdrawal_date = fields.String(required=True, allow_none=True)
    research_subject = fields.String(
        required=True, metadata={"description": "ResearchSubject/<id>"}
    )


def dump_study(study: Study, *, reference: str, group: str) -> dict[str, Any]:
    """The answer body of a study."""
    return {
        "studyId": study.study_id,
        "title": study.title,
        "criteria": study.criteria.value,
        "options": dict(study.options),
        "arms": [{"code": arm.code, "name": arm.name} for arm in study.arms],
        "sites": [{"id": site.id, "name": site.name} for site in study.sites],
        "readers": [
            {"reference": r.reference, "role": r.role.value, "label": r.label}
            for r in study.readers
        ],
        "schedule": [
            {"visit": v.visit, "day": v.day, "windowDays": v.window_days} for v in study.schedule
        ],
        "researchStudy": reference,
        "group": group,
    }


def dump_subject(enrolment: Enrolment, *, reference: str) -> dict[str, Any]:
    """The answer body of a subject."""
    withdrawal = enrolment.withdrawal_date
    return {
        "studyId": enrolment.study_id,
        "subjectId": enrolment.subject_id,
        "patient": f"Patient/{enrolment.patient}",
        "site": enrolment.site,
        "arm": enrolment.arm,
        "referenceDate": enrolment.reference_date.isoformat(),
        "status": enrolment.status.value,
        "withdrawalDate": None if withdrawal is None else withdrawal.isoformat(),
        "researchSubject": reference,
    }
