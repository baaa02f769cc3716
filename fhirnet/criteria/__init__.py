"""Pure domain core: response criteria from lesion measurements over time.

Standard library only: no Flask, no HTTP, no FHIR models. ``assess`` takes an
:class:`AssessmentRequest` and returns an :class:`Assessment`, or raises
:class:`fhirnet.errors.InvalidInputError` listing every problem of the input. ``derive_risk``
takes the form's :class:`RiskFactors` and returns the WHO grade, embryologic origin, imaging
recommendation and PRRT screen as a :class:`RiskAssessment`.

Modules, one job each:

- ``assessment``: ``assess``, the entry point: validate, order, then assess with one criteria.
- ``models``: the domain values that go in (timepoints, lesions) and come out (assessments).
- ``thresholds``: the named, cited cut-offs and the exact ways to compare them.
- ``validation``: the input rules the criteria need before they can assess (§1).
- ``timeline``: the exams in order: lesion values, sums of diameters, nadir.
- ``new_lesions``: which new lesions count at a follow-up, and backdating (§2.3).
- ``response_history``: what earlier follow-ups mean now: continuing PR, a prior CR (§2.1, §2.4).
- ``recist``: RECIST 1.1 target, non-target, new-lesion and overall responses (§2).
- ``irecist``: the iRECIST episode state machine, iUPD to iCPD or reset (§3).
- ``irecist_new_lesions``: iRECIST new-lesion targets and non-targets, and their sums (§3.1).
- ``choi``: Choi, size or CT density change (§4).
- ``percist``: PERCIST 1.0, SULpeak of the hottest target; CMR, PMR, SMD, PMD (§5).
- ``percist_scans``: each PET scan's reference region, and its reference and quality warnings.
- ``figures``: lengths, SUL values, changes and sum fields as every criteria prints them.
- ``assembly``: the whole assessment: progression date, best overall response, growth rate.
- ``best_response``: best overall response with and without confirmation (§6).
- ``growth_rate``: tumour growth rate and hyperprogression (§7).
- ``warnings``: warnings shared by every criteria (§8).
- ``risk``: ``derive_risk``, the four risk derivations of the form at once.
- ``risk_factors``: the form's ``risk`` group, its coded answers and the check of its ranges.
- ``who_grade``: WHO 2019 grade from differentiation, Ki-67 and mitotic count.
- ``embryologic_origin``: foregut, midgut or hindgut from the primary site.
- ``imaging_recommendation``: imaging modalities ranked by the review's Table 2.
- ``prrt_screen``: PRRT eligibility on grade and Krenning score.
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
