"""marshmallow schemas of the reader's workstation API (issue 15): what ``POST
/api/v1/forms/assessment`` takes (a QuestionnaireResponse of the CRF, checked only as far as
telling it apart from anything else: the form's own rules are the dry run's answer, not a 422)
and what it and ``GET /api/v1/patients/{patientId}/timeline`` answer.

The answers keep the snake_case keys the workstation's contract fixes (``sum_mm``,
``change_from_baseline_pct``), unlike the camelCase assessment API; numbers are JSON numbers
(:class:`~fhirnet.web.schema_fields.JsonNumber`), categories their published codes. The OpenAPI
document is generated from these classes (:mod:`fhirnet.web.openapi.reader`).
"""

from __future__ import annotations

import re
from typing import Any, Final

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from fhirnet.criteria.models import Criteria, Response
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.services.live_assessment import LiveAssessment
from fhirnet.services.patient_timeline import PatientTimeline
from fhirnet.web.schema_fields import JsonNumber, field_errors, shared

__all__ = [
    "AssessmentFormSchema",
    "LiveAssessmentSchema",
    "PatientTimelineSchema",
    "check_patient_id",
    "check_stream",
    "dump_live_assessment",
    "dump_timeline",
    "load_assessment_form",
]

#: A FHIR ``id``: what a Patient's id may be.
PATIENT_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: A stream is ``site``, a reader reference or a study's label for a reader.
MAX_STREAM_LENGTH: Final = 200


def _is_crf(value: str) -> None:
    """Validator: the canonical URL of the CRF, with or without its version."""
    if value != QUESTIONNAIRE_URL and not value.startswith(f"{QUESTIONNAIRE_URL}|"):
        raise ValidationError(f"Not the imaging CRF: expected {QUESTIONNAIRE_URL} (|version).")


class AssessmentFormSchema(Schema):
    """A QuestionnaireResponse of the CRF, as far as the live assessment checks it itself: the
    rest of the resource is the validator's, whose errors are the answer's ``problems``."""

    class Meta:
        unknown = INCLUDE

    resourceType = fields.String(  # noqa: N815 (the FHIR element's name)
        required=True,
        validate=validate.Equal("QuestionnaireResponse", error="Must be QuestionnaireResponse."),
    )
    questionnaire = fields.String(required=True, validate=_is_crf)
    status = fields.String()
    subject = fields.Dict()
    item = fields.List(fields.Dict())


def load_assessment_form(document: Any) -> dict[str, Any]:
    """The decoded body as the QuestionnaireResponse to dry-run.

    :raises InvalidInputError: not a QuestionnaireResponse of the CRF (every field named).
    """
    if not isinstance(document, dict):
        raise InvalidInputError([FieldError(path=(), message="Expected a JSON object.")])
    try:
        shared(AssessmentFormSchema).load(document)
    except ValidationError as error:
        raise InvalidInputError(field_errors(error.messages)) from None
    return document


def check_patient_id(patient_id: str) -> None:
    """:raises InvalidInputError: not a FHIR id (at ``patientId``)."""
    if not PATIENT_ID.fullmatch(patient_id):
        message = "Not a Patient id: 1-64 letters, digits, '-' or '.'."
        raise InvalidInputError([FieldError(path=("patientId",), message=message)])


def check_stream(stream: str | None) -> None:
    """:raises InvalidInputError: a ``stream`` longer than a reader's reference or label."""
    if stream is not None and len(stream) > MAX_STREAM_LENGTH:
        message = f"At most {MAX_STREAM_LENGTH} characters."
        raise InvalidInputError([FieldError(path=("stream",), message=message)])


def _code(enum: Any, **kwargs: Any) -> fields.Enum[Any]:
    return fields.Enum(enum, by_value=fields.String, **kwargs)


def _number() -> JsonNumber:
    return JsonNumber(allow_none=True)


class LiveFormProblemSchema(Schema):
    item = fields.String(
        metadata={
            "description": "linkIds, a group's with its occurrence: target-lesion[1].lesion-size"
        }
    )
    expression = fields.String(metadata={"description": "FHIRPath of the item (or its parent)."})
    message = fields.String()


class ReaderConclusionSchema(Schema):
    overall = _code(
        Response,
        allow_none=True,
        metadata={"description": "response-vs-baseline, else response-vs-nadir."},
    )
    response_vs_baseline = _code(Response, allow_none=True)
    response_vs_nadir = _code(Response, allow_none=True)


class ReaderDiscordanceSchema(Schema):
    item = fields.String(metadata={"description": "The conclusion item's linkId."})
    reader = _code(Response)
    computed = _code(Response)


class _Figures(Schema):
    """What an exam's assessment gives, in the live answer and on the timeline alike."""

    criteria = _code(Criteria, allow_none=True)
    assessment_type = fields.String(allow_none=True)
    sum_mm = _number()
    baseline_sum_mm = _number()
    nadir_sum_mm = _number()
    change_from_baseline_pct = _number()
    change_from_nadir_pct = _number()
    target_response = _code(Response, allow_none=True)
    non_target_response = _code(Response, allow_none=True)
    new_lesion_response = fields.String(
        allow_none=True, metadata={"description": "present or absent (new lesions counted)."}
    )
    overall = _code(Response, allow_none=True)
    reasons = fields.List(fields.String())
    warnings = fields.List(fields.String())
    reader = fields.Nested(ReaderConclusionSchema)
    discordances = fields.List(fields.Nested(ReaderDiscordanceSchema))


class LiveAssessmentSchema(_Figures):
    """The answer of ``POST /api/v1/forms/assessment``."""

    assessable = fields.Boolean()
    missing = fields.List(
        fields.Nested(LiveFormProblemSchema),
        metadata={"description": "What the assessment waits for (not assessable until none)."},
    )
    problems = fields.List(
        fields.Nested(LiveFormProblemSchema),
        metadata={"description": "What a submission of the form would be refused for."},
    )


class TimelineLesionSchema(Schema):
    id = fields.String()
    role = fields.String(metadata={"description": "target, non-target or new."})
    size_mm = _number()
    too_small_to_measure = fields.Boolean()
    status = fields.String(allow_none=True, metadata={"description": "A non-target's status."})


class TimelineExamSchema(_Figures):
    date = fields.Date()
    baseline_date = fields.Date()
    nadir_date = fields.Date(allow_none=True)
    lesions = fields.List(fields.Nested(TimelineLesionSchema))
    questionnaire_response_url = fields.String(allow_none=True, attribute="questionnaire_response")
    diagnostic_report_url = fields.String(allow_none=True, attribute="diagnostic_report")
    report_overall = _code(
        Response,
        allow_none=True,
        metadata={"description": "The category the stored DiagnosticReport concludes."},
    )


class TimelineThresholdsSchema(Schema):
    partial_response_mm = _number()
    progression_mm = _number()
    basis = fields.String()


class PatientTimelineSchema(Schema):
    """The answer of ``GET /api/v1/patients/{patientId}/timeline``."""

    patient = fields.String()
    stream = fields.String()
    streams = fields.List(fields.String())
    criteria = _code(Criteria, allow_none=True)
    baseline_date = fields.Date(allow_none=True)
    baseline_sum_mm = _number()
    nadir_date = fields.Date(allow_none=True)
    nadir_sum_mm = _number()
    thresholds = fields.Nested(TimelineThresholdsSchema, allow_none=True)
    exams = fields.List(fields.Nested(TimelineExamSchema))
    warnings = fields.List(fields.String())


def dump_live_assessment(found: LiveAssessment) -> dict[str, Any]:
    """The live assessment as JSON, ``assessable`` and what is missing first (the contract's
    order: what a page looks at before the figures)."""
    body: dict[str, Any] = shared(LiveAssessmentSchema).dump(found)
    first = ("assessable", "missing", "problems")
    return {key: body[key] for key in first} | {k: v for k, v in body.items() if k not in first}


def dump_timeline(timeline: PatientTimeline) -> dict[str, Any]:
    """The timeline as JSON; its resource references are made URLs by the caller."""
    body: dict[str, Any] = shared(PatientTimelineSchema).dump(timeline)
    return body
