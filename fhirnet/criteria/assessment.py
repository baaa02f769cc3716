"""The single entry point of the domain core: validate, order, then assess with one criteria."""

from __future__ import annotations

from collections.abc import Callable

from fhirnet.criteria.choi import assess_choi
from fhirnet.criteria.irecist import assess_irecist
from fhirnet.criteria.models import Assessment, AssessmentRequest, Criteria, Options
from fhirnet.criteria.percist import assess_percist
from fhirnet.criteria.recist import assess_recist
from fhirnet.criteria.timeline import Timeline, build_timeline
from fhirnet.criteria.validation import validate

ASSESSORS: dict[Criteria, Callable[[Timeline, Options], Assessment]] = {
    Criteria.RECIST_1_1: assess_recist,
    Criteria.IRECIST: assess_irecist,
    Criteria.CHOI: assess_choi,
    Criteria.PERCIST_1_0: assess_percist,
}


def assess(request: AssessmentRequest) -> Assessment:
    """Assess a patient's timepoints with the requested criteria.

    :param request: timepoints in any order; the earliest that is not pre-baseline is the baseline.
    :returns: one :class:`~fhirnet.criteria.models.TimePointAssessment` per follow-up, the best
        overall response, the progression date, the growth rate and the warnings.
    :raises fhirnet.errors.InvalidInputError: with every violation of ``criteria.md`` §1.
    """
    validate(request)
    return ASSESSORS[request.criteria](build_timeline(request.timepoints), request.options)
