"""Plain domain values of the response assessment: what goes in (timepoints) and what comes out.

Frozen, keyword-only dataclasses and string enums whose values are the published codes, so that
results compare, hash and serialise without any framework. Numbers are ``Decimal``: thresholds are
compared exactly (``criteria.md`` §0), never through float ratios.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class Criteria(StrEnum):
    """The response criteria fhirnet implements (``criteria.md`` §2-§5)."""

    RECIST_1_1 = "recist-1.1"
    IRECIST = "irecist"
    CHOI = "choi"
    PERCIST_1_0 = "percist-1.0"


class Modality(StrEnum):
    """Imaging modalities of a timepoint; used by the new-modality rule (``criteria.md`` §2.3)."""

    CT = "CT"
    MRI = "MRI"
    SSTR_PET = "SSTR-PET"
    SSTR_SPECT = "SSTR-SPECT"
    FDG_PET = "FDG-PET"
    DOPA_PET = "DOPA-PET"
    US = "US"


class TimePointRole(StrEnum):
    """A scan is part of the assessment, or a pre-treatment scan used only for the TGR (§7)."""

    ASSESSMENT = "assessment"
    PRE_BASELINE = "pre-baseline"


class NonTargetStatus(StrEnum):
    """Qualitative status of a non-target lesion (RECIST 1.1 §4.3.3).

    ``increased`` (criteria v2) is a further increase since the last assessment that is not by
    itself unequivocal progression: the iRECIST FAQ's INCLA, which confirms iCPD after a
    non-target-driven iUPD (``criteria.md`` §2.2, §3.2 b, D18).
    """

    PRESENT = "present"
    ABSENT = "absent"
    PROGRESSION = "progression"
    NOT_EVALUATED = "not-evaluated"
    INCREASED = "increased"


class IntratumoralNodules(StrEnum):
    """Choi's intratumoral nodule finding; ``new`` or ``enlarging`` is progression (Choi 2007)."""

    NONE = "none"
    NEW = "new"
    ENLARGING = "enlarging"


class Response(StrEnum):
    """Every response category code, as the criteria publish them (``assessment-api.md``)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"
    NON_CR_NON_PD = "NON-CR/NON-PD"
    ICR = "iCR"
    IPR = "iPR"
    ISD = "iSD"
    IUPD = "iUPD"
    ICPD = "iCPD"
    NON_ICR_NON_IUPD = "NON-iCR/NON-iUPD"
    CMR = "CMR"
    PMR = "PMR"
    SMD = "SMD"
    PMD = "PMD"


@dataclass(frozen=True, kw_only=True)
class TargetLesion:
    """A target lesion as measured at one timepoint.

    ``diameter_mm`` is the longest diameter, or the short axis when ``nodal``; ``0`` means the
    lesion disappeared and ``None`` that it was not evaluable; ``too_small_to_measure`` counts
    as 5 mm.
    """

    id: str
    site: str
    nodal: bool = False
    diameter_mm: Decimal | None = None
    too_small_to_measure: bool = False
    density_hu: Decimal | None = None
    sul_peak: Decimal | None = None
    suv_max: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class NonTargetLesion:
    """A non-target lesion, followed qualitatively."""

    id: str
    site: str
    nodal: bool = False
    status: NonTargetStatus = NonTargetStatus.PRESENT


@dataclass(frozen=True, kw_only=True)
class NewLesion:
    """A lesion absent at baseline; ``modality`` is the one that shows it."""

    id: str
    site: str
    modality: Modality | None = None
    equivocal: bool = False
    diameter_mm: Decimal | None = None
    nodal: bool = False


@dataclass(frozen=True, kw_only=True)
class PetReference:
    """PERCIST reference-region values of one PET scan (Practical PERCIST steps 2-3)."""

    liver_sul_mean: Decimal | None = None
    liver_sul_sd: Decimal | None = None
    blood_pool_sul_mean: Decimal | None = None
    blood_pool_sul_sd: Decimal | None = None
    uptake_time_min: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class TimePoint:
    """One imaging exam with everything the four criteria read from it."""

    date: dt.date
    role: TimePointRole = TimePointRole.ASSESSMENT
    modalities: tuple[Modality, ...] = ()
    targets: tuple[TargetLesion, ...] = ()
    non_targets: tuple[NonTargetLesion, ...] = ()
    new_lesions: tuple[NewLesion, ...] = ()
    pet: PetReference | None = None
    intratumoral_nodules: IntratumoralNodules | None = None


@dataclass(frozen=True, kw_only=True)
class Options:
    """Best-overall-response options (``assessment-api.md`` "Request")."""

    confirmation_required: bool = False
    confirmation_min_days: int = 28
    sd_min_days: int = 42


@dataclass(frozen=True, kw_only=True)
class AssessmentRequest:
    """Timepoints in any order, the criteria to apply and the BOR options."""

    criteria: Criteria
    timepoints: tuple[TimePoint, ...]
    options: Options = field(default_factory=Options)


@dataclass(frozen=True, kw_only=True)
class ChoiFigures:
    """Choi's density figures of one follow-up (``criteria.md`` §4)."""

    mean_density_hu: Decimal | None
    density_change_from_baseline_pct: Decimal | None


@dataclass(frozen=True, kw_only=True)
class PercistFigures:
    """PERCIST's SULpeak figures of one follow-up (``criteria.md`` §5)."""

    target_sul_peak: Decimal | None
    baseline_target_sul_peak: Decimal
    sul_peak_change_pct: Decimal | None
    sul_peak_change_abs: Decimal | None
    measurability_threshold: Decimal | None


@dataclass(frozen=True, kw_only=True)
class IrecistFigures:
    """iRECIST's new-lesion sum and the iUPD an iCPD confirms (``criteria.md`` §3)."""

    new_lesion_sum_mm: Decimal | None
    confirmation_of: dt.date | None


@dataclass(frozen=True, kw_only=True)
class TimePointAssessment:
    """Categories and figures of one follow-up; numbers rounded as ``criteria.md`` §0 says."""

    date: dt.date
    sum_mm: Decimal | None
    baseline_sum_mm: Decimal | None
    nadir_sum_mm: Decimal | None
    nadir_date: dt.date | None
    change_from_baseline_pct: Decimal | None
    change_from_nadir_pct: Decimal | None
    target_response: Response | None
    non_target_response: Response | None
    new_lesions: bool
    overall_response: Response
    reasons: tuple[str, ...]
    choi: ChoiFigures | None = None
    percist: PercistFigures | None = None
    irecist: IrecistFigures | None = None


@dataclass(frozen=True, kw_only=True)
class BestOverallResponse:
    """Best overall response (``criteria.md`` §6); ``confirmed`` is ``None`` unless required."""

    response: Response
    date: dt.date | None
    confirmed: bool | None


@dataclass(frozen=True, kw_only=True)
class TumorGrowthRate:
    """Tumour growth rates before and on treatment, in %/month (``criteria.md`` §7)."""

    pre_treatment_pct_per_month: Decimal | None
    on_treatment_pct_per_month: Decimal | None
    ratio: Decimal | None
    hyperprogression: bool


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """The whole result of assessing one patient's timepoints under one criteria."""

    criteria: Criteria
    baseline_date: dt.date
    timepoints: tuple[TimePointAssessment, ...]
    best_overall_response: BestOverallResponse
    progression_date: dt.date | None
    tumor_growth_rate: TumorGrowthRate | None
    warnings: tuple[str, ...]
