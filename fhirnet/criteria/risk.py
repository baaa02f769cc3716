"""Risk stratification of a GEP-NET: WHO grade, embryologic origin, imaging and PRRT screen.

The four derivations ``crf.md`` ("What the service derives") asks of the form's ``risk`` group, as
pure functions that return each result with its reasons; :func:`derive_risk` runs them at once.
Sources: the WHO 2019 classification of digestive neuroendocrine neoplasms, as ``crf.md`` states
it, and the review the form comes from (``shared/seeds/000_3abf9d9c5b9d5913.txt``): section I
(risk stratification: embryology, grade), Table 2 (imaging modalities per row: midgut, foregut,
hindgut, insulinoma, gastrinoma, poorly differentiated) and section V (PRRT selection).

Each derivation has its module: the form's values in ``risk_factors.py``, then ``who_grade.py``,
``embryologic_origin.py``, ``imaging_recommendation.py`` (Table 2) and ``prrt_screen.py``.
Where the sources are silent or disagree, their function docstrings name the reading chosen as a
**decision**. A result that cannot be derived is ``None`` with the reason (the FHIR layer writes
a ``dataAbsentReason``), except for the PRRT screen, whose CodeSystem has ``undetermined``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhirnet.criteria.embryologic_origin import OriginAssessment, origin_of
from fhirnet.criteria.imaging_recommendation import ImagingRecommendation, imaging_for
from fhirnet.criteria.prrt_screen import PrrtScreen, prrt_for
from fhirnet.criteria.risk_factors import RiskFactors, validate_risk_factors
from fhirnet.criteria.who_grade import GradeAssessment, grade_of


@dataclass(frozen=True, kw_only=True)
class RiskAssessment:
    """The four risk derivations of one form."""

    grade: GradeAssessment
    origin: OriginAssessment
    imaging: ImagingRecommendation
    prrt: PrrtScreen


def derive_risk(factors: RiskFactors) -> RiskAssessment:
    """Derive the WHO grade, the origin, the imaging recommendation and the PRRT screen at once.

    :param factors: the form's ``risk`` group.
    :returns: the four results, each with its reasons, as the functions below give them.
    :raises fhirnet.errors.InvalidInputError: with every out-of-range value (see
        :func:`validate_risk_factors`).
    """
    validate_risk_factors(factors)
    grade = grade_of(factors)
    origin = origin_of(factors)
    return RiskAssessment(
        grade=grade,
        origin=origin,
        imaging=imaging_for(factors, grade.grade, origin.origin),
        prrt=prrt_for(factors, grade.grade),
    )
