"""marshmallow schemas of a study's derived results: the adjudication body and answer, and the
answer of ``GET /api/v1/studies/{studyId}/endpoints`` — derived numbers per subject, evaluator
and arm, never a resource or a patient id (``docs/trials.md``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from fhirnet.errors import InvalidInputError
from fhirnet.fhir.studies import (
    Adjudication,
    Enrolment,
)
from fhirnet.services.study_endpoints import StudyEndpoints, endpoint_options
from fhirnet.trials import Proportion
from fhirnet.web.endpoint_schemas import (
    SubjectEndpointsSchema,
    dump_endpoints,
)
from fhirnet.web.schema_fields import (
    CamelCaseSchema,
    field_errors,
    shared,
)
from fhirnet.web.study_schemas import MAX_NAME, READER_REFERENCE, text_field


class AdjudicationRequestSchema(CamelCaseSchema):
    """Body of ``PUT /api/v1/studies/{studyId}/subjects/{subjectId}/adjudication``."""

    accept = text_field(
        MAX_NAME, metadata={"description": "The label of the central reader whose read counts."}
    )
    by = fields.String(
        required=True,
        validate=validate.Regexp(
            READER_REFERENCE, error="Must be Practitioner/<id> or PractitionerRole/<id>."
        ),
        metadata={"description": "The adjudicator who decided."},
    )


def load_adjudication(document: Any) -> tuple[str, str]:
    """``accept`` and ``by`` of an adjudication body.

    :raises InvalidInputError: every offending field.
    """
    try:
        data: dict[str, Any] = shared(AdjudicationRequestSchema).load(document)
    except ValidationError as error:
        raise InvalidInputError(field_errors(error.messages)) from None
    return str(data["accept"]), str(data["by"])


class AdjudicationSchema(CamelCaseSchema):
    """A recorded adjudication: the accepted central reader's label, who decided and when."""

    accepted = fields.String(required=True)
    reader = fields.String(required=True, metadata={"description": "The accepted reader."})
    by = fields.String(required=True)
    recorded = fields.String(required=True, metadata={"description": "FHIR dateTime."})


class AdjudicationAnswerSchema(AdjudicationSchema):
    """Answer of an adjudication ``PUT``."""

    study_id = fields.String(required=True)
    subject_id = fields.String(required=True)
    research_subject = fields.String(
        required=True, metadata={"description": "ResearchSubject/<id>"}
    )


class EvaluationSchema(CamelCaseSchema):
    """One evaluator's endpoints of one subject."""

    evaluator = fields.String(
        required=True,
        metadata={"description": "INVESTIGATOR, a central reader's label, or CENTRAL."},
    )
    basis = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "CENTRAL only: AGREEMENT, SINGLE READER or ADJUDICATION."},
    )
    read_by = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "CENTRAL only: the central reader whose read it is."},
    )
    endpoints = fields.Nested(SubjectEndpointsSchema, required=True)


class SubjectEndpointsAnswerSchema(CamelCaseSchema):
    """One subject of the study: its enrolment (no patient id), evaluations, adjudication."""

    subject_id = fields.String(required=True)
    site = fields.String(required=True)
    arm = fields.String(required=True)
    status = fields.String(required=True)
    reference_date = fields.Date(required=True)
    withdrawal_date = fields.Date(required=True, allow_none=True)
    adjudication_needed = fields.Boolean(required=True)
    adjudication = fields.Nested(AdjudicationSchema, required=True, allow_none=True)
    notes = fields.List(fields.String(), required=True)
    evaluations = fields.List(fields.Nested(EvaluationSchema), required=True)


class ProportionSchema(CamelCaseSchema):
    """``count`` of ``n`` with its exact two-sided interval (``null``s when n = 0)."""

    count = fields.Integer(required=True)
    n = fields.Integer(required=True)
    rate = fields.Float(required=True, allow_none=True)
    lower = fields.Float(required=True, allow_none=True)
    upper = fields.Float(required=True, allow_none=True)
    confidence = fields.Float(required=True)


class ArmSummarySchema(CamelCaseSchema):
    """ORR and DCR of one arm as read by one evaluator."""

    arm = fields.String(required=True)
    evaluator = fields.String(required=True)
    n = fields.Integer(required=True)
    objective_response = fields.Nested(ProportionSchema, required=True)
    disease_control = fields.Nested(ProportionSchema, required=True)


class StudyEndpointsAnswerSchema(CamelCaseSchema):
    """Answer of ``GET /api/v1/studies/{studyId}/endpoints``: derived numbers only."""

    study_id = fields.String(required=True)
    criteria = fields.String(required=True)
    confirmation_required = fields.Boolean(required=True)
    subjects = fields.List(fields.Nested(SubjectEndpointsAnswerSchema), required=True)
    summaries = fields.List(fields.Nested(ArmSummarySchema), required=True)


def _adjudication(adjudication: Adjudication | None) -> dict[str, Any] | None:
    if adjudication is None:
        return None
    return {
        "accepted": adjudication.label,
        "reader": adjudication.reader,
        "by": adjudication.by,
        "recorded": adjudication.recorded.isoformat(),
    }


def dump_adjudication(enrolment: Enrolment, *, reference: str) -> dict[str, Any]:
    """The answer body of an adjudication ``PUT``."""
    recorded = _adjudication(enrolment.adjudication) or {}
    return {
        "studyId": enrolment.study_id,
        "subjectId": enrolment.subject_id,
        **recorded,
        "researchSubject": reference,
    }


def _proportion(proportion: Proportion) -> dict[str, Any]:
    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "count": proportion.count,
        "n": proportion.n,
        "rate": number(proportion.rate),
        "lower": number(proportion.lower),
        "upper": number(proportion.upper),
        "confidence": float(proportion.confidence),
    }


def dump_study_endpoints(found: StudyEndpoints) -> dict[str, Any]:
    """The answer body of a study's endpoints."""
    options = endpoint_options(found.study)
    return {
        "studyId": found.study.study_id,
        "criteria": found.study.criteria.value,
        "confirmationRequired": options.confirmation_required,
        "subjects": [
            {
                "subjectId": result.enrolment.subject_id,
                "site": result.enrolment.site,
                "arm": result.enrolment.arm,
                "status": result.enrolment.status.value,
                "referenceDate": result.enrolment.reference_date.isoformat(),
                "withdrawalDate": _iso(result.enrolment.withdrawal_date),
                "adjudicationNeeded": result.adjudication_needed,
                "adjudication": _adjudication(result.adjudication),
                "notes": list(result.notes),
                "evaluations": [
                    {
                        "evaluator": evaluation.evaluator,
                        "basis": evaluation.basis,
                        "readBy": evaluation.read_by,
                        "endpoints": dump_endpoints(evaluation.endpoints),
                    }
                    for evaluation in result.evaluations
                ],
            }
            for result in found.subjects
        ],
        "summaries": [
            {
                "arm": summary.arm,
                "evaluator": summary.evaluator,
                "n": summary.n,
                "objectiveResponse": _proportion(summary.objective_response),
                "diseaseControl": _proportion(summary.disease_control),
            }
            for summary in found.summaries
        ],
    }


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()
