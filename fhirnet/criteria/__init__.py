"""Pure domain core: response criteria from lesion measurements over time.

Standard library only: no Flask, no HTTP, no FHIR models. ``assess`` takes an
:class:`AssessmentRequest` and returns an :class:`Assessment`, or raises
:class:`fhirnet.errors.InvalidInputError` listing every problem of the input. ``derive_risk``
takes the form's :class:`RiskFactors` and returns the WHO grade, embryologic origin, imaging
recommendation and PRRT screen as a :class:`RiskAssessment`.
"""

from fhirnet.criteria.assessment import assess
from fhirnet.criteria.embryologic_origin import (
    EmbryologicOrigin,
    OriginAssessment,
    derive_embryologic_origin,
)
from fhirnet.criteria.imaging_recommendation import ImagingRecommendation, recommend_imaging
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
from fhirnet.criteria.prrt_screen import PrrtEligibility, PrrtScreen, screen_prrt
from fhirnet.criteria.risk import RiskAssessment, derive_risk
from fhirnet.criteria.risk_factors import (
    Differentiation,
    FunctionalStatus,
    Men1Status,
    PrimarySite,
    RiskFactors,
    Syndrome,
    validate_risk_factors,
)
from fhirnet.criteria.who_grade import GradeAssessment, WhoGrade, derive_who_grade

__all__ = [
    "Assessment",
    "AssessmentRequest",
    "BestOverallResponse",
    "ChoiFigures",
    "Criteria",
    "Differentiation",
    "EmbryologicOrigin",
    "FunctionalStatus",
    "GradeAssessment",
    "ImagingRecommendation",
    "IntratumoralNodules",
    "IrecistFigures",
    "Men1Status",
    "Modality",
    "NewLesion",
    "NonTargetLesion",
    "NonTargetStatus",
    "Options",
    "OriginAssessment",
    "PercistFigures",
    "PetReference",
    "PrimarySite",
    "PrrtEligibility",
    "PrrtScreen",
    "Response",
    "RiskAssessment",
    "RiskFactors",
    "Syndrome",
    "TargetLesion",
    "TimePoint",
    "TimePointAssessment",
    "TimePointRole",
    "TumorGrowthRate",
    "WhoGrade",
    "assess",
    "derive_embryologic_origin",
    "derive_risk",
    "derive_who_grade",
    "recommend_imaging",
    "screen_prrt",
    "validate_risk_factors",
]
