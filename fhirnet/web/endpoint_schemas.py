"""marshmallow schemas of ``POST /api/v1/endpoints``: one subject's visits → its trial endpoints.

The request schemas check the structure (types, ISO dates, option ranges, list limits, no unknown
fields) and build :class:`fhirnet.trials.SubjectRequest`; the rules that need the criteria (which
response codes it uses, unique dates, a withdrawal not before the reference date) are the
domain's (:func:`fhirnet.trials.endpoints.validate`), reported with the same field paths. The
response schemas dump :class:`fhirnet.trials.SubjectEndpoints` with camelCase keys, as the
assessment API does. ``docs/trials.md`` defines every field.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from fhirnet.criteria.models import Criteria, Response
from fhirnet.errors import InvalidInputError
from fhirnet.trials import (
    CensoringReason,
    EndpointOptions,
    ScheduledVisit,
    SubjectEndpoints,
    SubjectRequest,
    VisitResponse,
    VisitRole,
)
from fhirnet.web.schema_fields import (
    BoundedList,
    CamelCaseSchema,
    IsoDate,
    ModelSchema,
    StrictBoolean,
    field_errors,
    shared,
)

#: At most this many assessments per subject (as ``assessment-api.md`` bounds timepoints).
MAX_VISITS = 200
MAX_SCHEDULE = 100
MAX_VISIT_NAME = 40  # SDTM VISIT is $200, but a protocol visit label is short
#: A confirmation or SD interval beyond a year is not a protocol value but a typo.
MAX_INTERVAL_DAYS = 365
MAX_NE_BETWEEN = 10
MAX_STUDY_DAY = 3650  # ten years either side of the reference date


def _code(enum: Any, **kwargs: Any) -> fields.Enum[Any]:
    return fields.Enum(enum, by_value=fields.String, **kwargs)


def _days(maximum: int, description: str) -> fields.Integer:
    return fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=maximum),
        metadata={"description": description},
    )


def _out(field: fields.Field[Any]) -> fields.Field[Any]:
    field.required = True
    return field


def load_endpoints_request(document: Any) -> SubjectRequest:
    """Validate a decoded request body and build the domain request.

    :raises InvalidInputError: every structural problem, with its path in the body.
    """
    try:
        request: SubjectRequest = shared(SubjectRequestSchema).load(document)
    except ValidationError as error:
        raise InvalidInputError(field_errors(error.messages)) from None
    return request


def dump_endpoints(endpoints: SubjectEndpoints) -> dict[str, Any]:
    """Render one subject's endpoints as the response body."""
    body: dict[str, Any] = shared(SubjectEndpointsSchema).dump(endpoints)
    return body


class EndpointOptionsSchema(ModelSchema):
    """Confirmation and stable-disease options (``docs/trials.md``)."""

    model = EndpointOptions

    confirmation_required = StrictBoolean(
        metadata={"description": "ORR, first response and DoR use the confirmed BOR."}
    )
    confirmation_min_days = _days(
        MAX_INTERVAL_DAYS, "Days from a CR/PR to the assessment that confirms it (28)."
    )
    sd_min_days = _days(
        MAX_INTERVAL_DAYS, "Days after the reference date from which SD counts (42)."
    )
    max_ne_between = _days(
        MAX_NE_BETWEEN, "NE assessments allowed between a response and its confirmation (1)."
    )
    accept_sd_between = StrictBoolean(
        metadata={"description": "One SD may lie between a PR and its confirmation (false)."}
    )


class ScheduledVisitSchema(ModelSchema):
    """A protocol visit: name, target study day and window."""

    model = ScheduledVisit

    visit = fields.String(required=True, validate=validate.Length(min=1, max=MAX_VISIT_NAME))
    day = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=-MAX_STUDY_DAY, max=MAX_STUDY_DAY),
        metadata={"description": "Target study day (day 1 = reference date; no day 0)."},
    )
    window_days = _days(MAX_STUDY_DAY, "Days either side of the target day.")
    window_days.required = True


class VisitResponseSchema(ModelSchema):
    """One assessment: its date and the evaluator's overall response."""

    model = VisitResponse

    date = IsoDate(required=True)
    overall_response = _code(
        Response,
        required=True,
        allow_none=True,
        metadata={
            "description": "An overall response code of the criteria; null only on or before "
            "the reference date."
        },
    )


class SubjectRequestSchema(ModelSchema):
    """Body of ``POST /api/v1/endpoints``."""

    model = SubjectRequest

    criteria = _code(Criteria, required=True)
    reference_date = IsoDate(
        required=True,
        metadata={"description": "Treatment start or randomization: study day 1."},
    )
    options = fields.Nested(EndpointOptionsSchema)
    schedule = BoundedList(fields.Nested(ScheduledVisitSchema), max_length=MAX_SCHEDULE)
    withdrawal_date = IsoDate(allow_none=True)
    visits = BoundedList(fields.Nested(VisitResponseSchema), required=True, max_length=MAX_VISITS)


class VisitResultSchema(CamelCaseSchema):
    """An assessment with its study day, protocol visit and role."""

    date = _out(fields.Date())
    study_day = _out(fields.Integer())
    visit = _out(fields.String(metadata={"description": "Schedule visit name or UNSCHEDULED."}))
    role = _out(_code(VisitRole))
    overall_response = _out(_code(Response, allow_none=True))


class DatedResponseSchema(CamelCaseSchema):
    """A best overall response and the date of the assessment that gave it."""

    response = _out(_code(Response))
    date = _out(fields.Date(allow_none=True))


class TimeToEventSchema(CamelCaseSchema):
    """An event or censoring; ``days`` = date - startDate + 1."""

    start_date = _out(fields.Date())
    date = _out(fields.Date())
    days = _out(fields.Integer())
    event = _out(fields.Boolean())
    censoring_reason = _out(_code(CensoringReason, allow_none=True))


class SubjectEndpointsSchema(CamelCaseSchema):
    """Body of a ``200`` response of ``POST /api/v1/endpoints``."""

    criteria = _out(_code(Criteria))
    reference_date = _out(fields.Date())
    baseline_date = _out(fields.Date(allow_none=True))
    visits = _out(fields.List(fields.Nested(VisitResultSchema)))
    best_overall_response = _out(fields.Nested(DatedResponseSchema))
    confirmed_best_overall_response = _out(fields.Nested(DatedResponseSchema))
    first_response_date = _out(fields.Date(allow_none=True))
    duration_of_response = _out(fields.Nested(TimeToEventSchema, allow_none=True))
    progression_date = _out(fields.Date(allow_none=True))
    progression_study_day = _out(fields.Integer(allow_none=True))
    progression_free_survival = _out(fields.Nested(TimeToEventSchema))
    objective_response = _out(fields.Boolean())
    disease_control = _out(fields.Boolean())
    clinical_benefit = _out(fields.Boolean())
    reasons = _out(fields.List(fields.String()))
