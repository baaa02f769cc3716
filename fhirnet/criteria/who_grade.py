"""WHO 2019 grade of a GEP neuroendocrine neoplasm from differentiation, Ki-67 and mitotic count.

WHO 2019 classification of digestive neuroendocrine neoplasms, as ``crf.md`` ("What the service
derives") states it, and review section I "Grade". The grade also feeds the imaging
recommendation and the PRRT screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from fhirnet.criteria.risk_factors import (
    Differentiation,
    RiskFactors,
    as_written,
    validate_risk_factors,
)
from fhirnet.criteria.thresholds import at_most, less_than

# WHO 2019 classification of gastroenteropancreatic neuroendocrine neoplasms (crf.md "What the
# service derives"; review section I "Grade", refs 25-27). Mitoses are counted per 2 mm².
WHO_G2_KI67_MIN_PCT = Decimal("3")  # G1: Ki-67 < 3 %; G2: Ki-67 3-20 % (3 % is G2)
WHO_G2_KI67_MAX_PCT = Decimal("20")  # G2 up to 20 % inclusive; G3: Ki-67 > 20 %
WHO_G2_MITOSES_MIN = Decimal("2")  # G1: < 2 mitoses; G2: 2-20 (2 is G2)
WHO_G2_MITOSES_MAX = Decimal("20")  # G2 up to 20 inclusive; G3: > 20 mitoses per 2 mm²


class WhoGrade(StrEnum):
    """WHO 2019 grade of a GEP neuroendocrine neoplasm (CodeSystem ``who-net-grade``)."""

    G1 = "G1"
    G2 = "G2"
    G3_NET = "G3-NET"
    G3_NEC = "G3-NEC"


@dataclass(frozen=True, kw_only=True)
class GradeAssessment:
    """The WHO grade, or ``None`` when the form does not allow one, with the reasons."""

    grade: WhoGrade | None
    reasons: tuple[str, ...]


_TIER_GRADE: Final[dict[int, WhoGrade]] = {1: WhoGrade.G1, 2: WhoGrade.G2}


def derive_who_grade(factors: RiskFactors) -> GradeAssessment:
    """WHO 2019 grade from differentiation, Ki-67 and mitotic count (review section I "Grade").

    Rules (WHO 2019 as ``crf.md`` states it): Ki-67 < 3 % is G1, 3-20 % G2, > 20 % G3; a mitotic
    count < 2 per 2 mm² is G1, 2-20 G2, > 20 G3; both boundaries 3 % / 2 and 20 % / 20 belong to
    G2. The **higher** of the two categories is the grade (WHO 2019; CodeSystem
    ``who-net-grade``). Well differentiated with grade-3 proliferation is a G3 NET; poorly
    differentiated is a G3 NEC whatever the figures, NECs being poorly differentiated and high
    grade by definition.

    Decisions:

    - **One figure is enough**: with Ki-67 or the mitotic count missing, the grade comes from the
      other (section I grades "based on their Ki67 or mitotic index") and a reason says which
      was missing and that it could have raised the grade, never lowered it.
    - **Differentiation missing**: grade-1/2 proliferation gives G1/G2, because WHO 2019 defines
      every G1/G2 neoplasm as a well-differentiated NET; grade-3 proliferation gives ``None``,
      since only the differentiation separates a G3 NET from a G3 NEC.
    - A poorly differentiated tumour with Ki-67 <= 20 % and at most 20 mitoses is still a G3 NEC,
      with a reason asking to check the pathology, as that combination is unusual.

    :param factors: the form's ``risk`` group.
    :returns: the grade, or ``None`` when undetermined, with the reasons.
    :raises fhirnet.errors.InvalidInputError: with every out-of-range value.
    """
    validate_risk_factors(factors)
    return grade_of(factors)


def _ki67_tier(ki67: Decimal) -> tuple[int, str]:
    k = as_written(ki67)
    if less_than(ki67, WHO_G2_KI67_MIN_PCT):
        return 1, f"Ki-67 {k} % is below {WHO_G2_KI67_MIN_PCT} %: G1 (WHO 2019)"
    if at_most(ki67, WHO_G2_KI67_MAX_PCT):
        return 2, (
            f"Ki-67 {k} % is within {WHO_G2_KI67_MIN_PCT}-{WHO_G2_KI67_MAX_PCT} %: G2 (WHO 2019)"
        )
    return 3, f"Ki-67 {k} % is above {WHO_G2_KI67_MAX_PCT} %: G3 (WHO 2019)"


def _mitoses_tier(mitoses: Decimal) -> tuple[int, str]:
    m = as_written(mitoses)
    if less_than(mitoses, WHO_G2_MITOSES_MIN):
        return 1, f"mitotic count {m} per 2 mm² is below {WHO_G2_MITOSES_MIN}: G1 (WHO 2019)"
    if at_most(mitoses, WHO_G2_MITOSES_MAX):
        return 2, (
            f"mitotic count {m} per 2 mm² is within {WHO_G2_MITOSES_MIN}-{WHO_G2_MITOSES_MAX}: "
            "G2 (WHO 2019)"
        )
    return 3, f"mitotic count {m} per 2 mm² is above {WHO_G2_MITOSES_MAX}: G3 (WHO 2019)"


def proliferation(factors: RiskFactors) -> tuple[int | None, list[str]]:
    """The grade tier (1-3) of Ki-67 and mitotic count, the higher of the two, with reasons."""
    ki67, mitoses = factors.ki67_pct, factors.mitoses_per_2mm2
    if ki67 is None and mitoses is None:
        return None, ["neither Ki-67 nor the mitotic count is recorded"]
    tiers: list[int] = []
    reasons: list[str] = []
    if ki67 is not None:
        tier, reason = _ki67_tier(ki67)
        tiers.append(tier)
        reasons.append(reason)
    if mitoses is not None:
        tier, reason = _mitoses_tier(mitoses)
        tiers.append(tier)
        reasons.append(reason)
    tier = max(tiers)
    if len(set(tiers)) > 1:
        reasons.append(f"the higher of the two categories sets the grade: G{tier} (WHO 2019)")
    elif len(tiers) == 1:
        present, absent = ("Ki-67", "mitotic count")
        if ki67 is None:
            present, absent = absent, present
        could_raise = f"; the {absent} could raise it, never lower it" if tier < 3 else ""
        reasons.append(f"{absent} not recorded: graded on the {present} alone{could_raise}")
    return tier, reasons


def grade_of(factors: RiskFactors) -> GradeAssessment:
    """The WHO grade of :func:`derive_who_grade`, for factors already validated."""
    tier, reasons = proliferation(factors)
    differentiation = factors.differentiation
    if differentiation is Differentiation.POORLY:
        if tier is not None and tier < 3:
            reasons.append(
                f"grade-{tier} proliferation is unusual for a poorly differentiated carcinoma, "
                "which is high grade by definition: check the pathology"
            )
        reasons.append(
            "poorly differentiated: G3 NEC whatever the Ki-67 and mitotic count (WHO 2019: a NEC "
            "is poorly differentiated and high grade by definition; review section I)"
        )
        return GradeAssessment(grade=WhoGrade.G3_NEC, reasons=tuple(reasons))
    grade: WhoGrade | None
    if tier is None:
        grade = None
        reasons.append("the WHO grade is undetermined")
    elif tier == 3 and differentiation is Differentiation.WELL:
        grade = WhoGrade.G3_NET
        reasons.append("well differentiated with grade-3 proliferation: G3 NET (WHO 2019)")
    elif tier == 3:
        grade = None
        reasons.append(
            "differentiation not recorded: grade-3 proliferation is a G3 NET if well "
            "differentiated and a G3 NEC if poorly differentiated, so the grade is undetermined"
        )
    else:
        grade = _TIER_GRADE[tier]
        if differentiation is Differentiation.WELL:
            reasons.append(f"well differentiated: {grade} NET (WHO 2019)")
        else:
            reasons.append(
                f"differentiation not recorded: a grade-{tier} neoplasm is a well-differentiated "
                f"NET by definition (WHO 2019: NECs are high grade): {grade} NET"
            )
    return GradeAssessment(grade=grade, reasons=tuple(reasons))
