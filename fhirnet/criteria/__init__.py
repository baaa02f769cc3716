"""Pure domain core: response criteria from lesion measurements over time.

Standard library only: no Flask, no HTTP, no FHIR models. ``assess`` takes an
:class:`AssessmentRequest` and returns an :class:`Assessment`, or raises
:class:`fhirnet.errors.InvalidInputError` listing every problem of the input.
"""

from fhirnet.criteria.assessment import assess
from fhirnet.criteria.models import (
    Assessment,
    AssessmentRequest,
    BestOverallResponse,
    ChoiFigures,
    Criteria,
    IntratumoralNodules,
    IrecistFigures,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    PercistFigures,
    PetReference,
    Response,
    TargetLesion,
    TimePoint,
    TimePointAssessment,
    TimePointRole,
    TumorGrowthRate,
)

__all__ = [
    "Assessment",
    "AssessmentRequest",
    "BestOverallResponse",
    "ChoiFigures",
    "Criteria",
    "IntratumoralNodules",
    "IrecistFigures",
    "Modality",
    "NewLesion",
    "NonTargetLesion",
    "NonTargetStatus",
    "Options",
    "PercistFigures",
    "PetReference",
    "Response",
    "TargetLesion",
    "TimePoint",
    "TimePointAssessment",
    "TimePointRole",
    "TumorGrowthRate",
    "assess",
]
