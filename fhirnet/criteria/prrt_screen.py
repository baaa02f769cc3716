"""PRRT eligibility screen: a G1/G2 well-differentiated NET with a Krenning score above 2
(review section V and Table 2 "Internalized vector radiotherapy").

Unlike the other derivations it is never ``None``: its CodeSystem has ``undetermined``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fhirnet.criteria.risk_factors import RiskFactors, validate_risk_factors
from fhirnet.criteria.who_grade import WhoGrade, grade_of, proliferation

# Review section V: "PRRT is considered when the Krenning score is greater than 2, i.e. an uptake
# higher than the physiological liver uptake" (refs 78, 80, 81).
PRRT_KRENNING_ABOVE = 2


class PrrtEligibility(StrEnum):
    """Outcome of the PRRT eligibility screen (CodeSystem ``prrt-eligibility``)."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not-eligible"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, kw_only=True)
class PrrtScreen:
    """The PRRT eligibility screen's outcome and the status of each criterion as reasons."""

    eligibility: PrrtEligibility
    reasons: tuple[str, ...]


def screen_prrt(factors: RiskFactors) -> PrrtScreen:
    """PRRT eligibility screen (review section V and Table 2 "Internalized vector radiotherapy").

    Two criteria: a well-differentiated **G1 or G2** NET (Table 2: PRRT "indications: G1/G2
    tumors"; section V: NETTER-1 in G1/G2 midgut NETs), and a **Krenning score greater than 2**,
    i.e. uptake above the physiological liver uptake (section V). Eligible when both are met; not
    eligible when either fails; undetermined otherwise (a criterion cannot be checked and none
    fails).

    Decisions:

    - Krenning 2 (uptake up to the liver's) is **not** eligible: "greater than 2" is strict.
    - A **G3 NET** is not eligible on this screen: section V mentions PRRT with chemotherapy for
      SSTR-positive, FDG-avid G3 disease only as a combination under evaluation; a reason says so.
    - Grade-3 proliferation with unknown differentiation is **not eligible**: G3 NET and G3 NEC
      both fail the G1/G2 criterion, so the missing differentiation does not matter.
    - FDG-avid disease does not change the outcome (section V proposes dual-tracer scoring but
      gives no rule); a reason notes that a high FDG-to-SSTR ratio predicts resistance.
    - Eligible means eligible on grade and uptake: Table 2 also requires failure of a previous
      treatment, which the ``risk`` group does not record; a reason says so.

    :param factors: the form's ``risk`` group.
    :returns: the outcome and one reason per criterion.
    :raises fhirnet.errors.InvalidInputError: with every out-of-range value.
    """
    validate_risk_factors(factors)
    return prrt_for(factors, grade_of(factors).grade)


def prrt_for(factors: RiskFactors, grade: WhoGrade | None) -> PrrtScreen:
    """The screen of :func:`screen_prrt`, given the grade derived from factors already
    validated."""
    grade_met, grade_reason = _prrt_grade(factors, grade)
    uptake_met, uptake_reason = _prrt_uptake(factors.krenning_score)
    reasons = [grade_reason, uptake_reason]
    if grade_met is False or uptake_met is False:
        eligibility = PrrtEligibility.NOT_ELIGIBLE
    elif grade_met and uptake_met:
        eligibility = PrrtEligibility.ELIGIBLE
        reasons.append(
            "eligible on grade and uptake; Table 2 gives PRRT for G1/G2 tumours after failure of "
            "somatostatin analogue, chemotherapy or targeted therapy, which the screen does not "
            "check"
        )
    else:
        eligibility = PrrtEligibility.UNDETERMINED
    if factors.fdg_avid:
        reasons.append(
            "FDG-avid disease: a high FDG-to-SSTR uptake ratio predicts resistance to PRRT "
            "(review section V); the screen does not weigh it"
        )
    return PrrtScreen(eligibility=eligibility, reasons=tuple(reasons))


def _prrt_grade(factors: RiskFactors, grade: WhoGrade | None) -> tuple[bool | None, str]:
    """Whether the G1/G2 well-differentiated criterion is met (``None``: cannot be checked)."""
    if grade in (WhoGrade.G1, WhoGrade.G2):
        return True, f"{grade} NET: grade criterion met (G1/G2, Table 2; section V)"
    if grade is WhoGrade.G3_NET:
        return False, (
            "G3 NET: grade criterion not met, PRRT being indicated for G1/G2 tumours (Table 2; "
            "section V); PRRT with chemotherapy for SSTR-positive, FDG-avid G3 disease is "
            "under evaluation (section V)"
        )
    if grade is WhoGrade.G3_NEC:
        return False, (
            "G3 NEC (poorly differentiated): grade criterion not met, PRRT being for "
            "well-differentiated G1/G2 tumours (Table 2; section V)"
        )
    if proliferation(factors)[0] == 3:
        return False, (
            "grade-3 proliferation: grade criterion not met whatever the differentiation "
            "(G3 NET or G3 NEC, neither is G1/G2)"
        )
    return None, "WHO grade undetermined: the G1/G2 criterion cannot be checked"


def _prrt_uptake(score: int | None) -> tuple[bool | None, str]:
    """Whether the Krenning score is above 2 (``None``: not recorded)."""
    if score is None:
        return None, (
            "Krenning score not recorded: SSTR imaging with Krenning scoring is required before "
            "PRRT (review section V)"
        )
    if score > PRRT_KRENNING_ABOVE:
        return True, (
            f"Krenning score {score} is above {PRRT_KRENNING_ABOVE}, uptake above the liver's: "
            "uptake criterion met (review section V)"
        )
    return False, (
        f"Krenning score {score} is not above {PRRT_KRENNING_ABOVE}, uptake not above the "
        "liver's: uptake criterion not met (review section V)"
    )
