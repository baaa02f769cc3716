"""Risk stratification of a GEP-NET: WHO grade, embryologic origin, imaging and PRRT screen.

The four derivations ``crf.md`` ("What the service derives") asks of the form's ``risk`` group, as
pure functions that return each result with its reasons. Sources: the WHO 2019 classification of
digestive neuroendocrine neoplasms, as ``crf.md`` states it, and the review the form comes from
(``shared/seeds/000_3abf9d9c5b9d5913.txt``): section I (risk stratification: embryology, grade),
Table 2 (imaging modalities per row: midgut, foregut, hindgut, insulinoma, gastrinoma, poorly
differentiated) and section V (PRRT selection). Enum values are the codes of the project's
CodeSystems (``profiles/CodeSystem-*.json``), so the FHIR layer maps them one to one.

Where the sources are silent or disagree, the function docstrings name the reading chosen as a
**decision**. A result that cannot be derived is ``None`` with the reason (the FHIR layer writes
a ``dataAbsentReason``), except for the PRRT screen, whose CodeSystem has ``undetermined``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from fhirnet.criteria.models import Modality
from fhirnet.criteria.thresholds import at_least, at_most, less_than
from fhirnet.errors import FieldError, InvalidInputError

# WHO 2019 classification of gastroenteropancreatic neuroendocrine neoplasms (crf.md "What the
# service derives"; review section I "Grade", refs 25-27). Mitoses are counted per 2 mm².
WHO_G2_KI67_MIN_PCT = Decimal("3")  # G1: Ki-67 < 3 %; G2: Ki-67 3-20 % (3 % is G2)
WHO_G2_KI67_MAX_PCT = Decimal("20")  # G2 up to 20 % inclusive; G3: Ki-67 > 20 %
WHO_G2_MITOSES_MIN = Decimal("2")  # G1: < 2 mitoses; G2: 2-20 (2 is G2)
WHO_G2_MITOSES_MAX = Decimal("20")  # G2 up to 20 inclusive; G3: > 20 mitoses per 2 mm²

# Review section I "Grade" (ref 31) and Fig. 4: 18F-FDG is more suitable than 68Ga-DOTATATE for
# G2 tumours with high proliferative capacity (Ki-67 >= 10 %); crf.md: "consider FDG PET".
FDG_CONSIDER_KI67_MIN_PCT = Decimal("10")

# Review section V: "PRRT is considered when the Krenning score is greater than 2, i.e. an uptake
# higher than the physiological liver uptake" (refs 78, 80, 81).
PRRT_KRENNING_ABOVE = 2

# Ranges of the form's items (crf.md; Questionnaire minValue/maxValue).
KI67_MAX_PCT = Decimal("100")
KRENNING_MAX = 4


class PrimarySite(StrEnum):
    """Primary tumour site (CodeSystem ``primary-site``); ``colon`` is refined to right or left."""

    STOMACH = "stomach"
    DUODENUM = "duodenum"
    PANCREAS = "pancreas"
    JEJUNUM_ILEUM = "jejunum-ileum"
    APPENDIX = "appendix"
    COLON = "colon"
    COLON_RIGHT = "colon-right"
    COLON_LEFT = "colon-left"
    RECTUM = "rectum"
    UNKNOWN = "unknown"


class FunctionalStatus(StrEnum):
    """Whether the tumour causes a hormonal syndrome (CodeSystem ``functional-status``)."""

    FUNCTIONING = "functioning"
    NON_FUNCTIONING = "non-functioning"


class Syndrome(StrEnum):
    """Hormonal syndrome of a functioning GEP-NET (CodeSystem ``functioning-syndrome``)."""

    INSULINOMA = "insulinoma"
    GASTRINOMA = "gastrinoma"
    VIPOMA = "vipoma"
    GLUCAGONOMA = "glucagonoma"
    SOMATOSTATINOMA = "somatostatinoma"
    CARCINOID_SYNDROME = "carcinoid-syndrome"


class Men1Status(StrEnum):
    """MEN1 answer (ValueSet ``men1-status``: HL7 v2-0136 ``Y``/``N``, data-absent ``unknown``)."""

    YES = "Y"
    NO = "N"
    UNKNOWN = "unknown"


class Differentiation(StrEnum):
    """Histological differentiation, WHO 2019 (CodeSystem ``differentiation``)."""

    WELL = "well-differentiated"
    POORLY = "poorly-differentiated"


class WhoGrade(StrEnum):
    """WHO 2019 grade of a GEP neuroendocrine neoplasm (CodeSystem ``who-net-grade``)."""

    G1 = "G1"
    G2 = "G2"
    G3_NET = "G3-NET"
    G3_NEC = "G3-NEC"


class EmbryologicOrigin(StrEnum):
    """Embryologic origin, derived from the primary site (CodeSystem ``embryologic-origin``)."""

    FOREGUT = "foregut"
    MIDGUT = "midgut"
    HINDGUT = "hindgut"


class PrrtEligibility(StrEnum):
    """Outcome of the PRRT eligibility screen (CodeSystem ``prrt-eligibility``)."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not-eligible"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, kw_only=True)
class RiskFactors:
    """The form's ``risk`` group; every item is optional because forms are often partly filled.

    ``ki67_pct`` is a percentage (0-100), ``mitoses_per_2mm2`` the mitotic count per 2 mm²,
    ``krenning_score`` the visual SSTR uptake grade 0-4. ``functional_status`` and ``men1`` are
    carried for the record: section I names them as prognostic, but none of the four derivations
    depends on them (Table 2's rows depend on the named syndrome, not on the status).
    """

    primary_site: PrimarySite | None = None
    functional_status: FunctionalStatus | None = None
    syndromes: tuple[Syndrome, ...] = ()
    men1: Men1Status | None = None
    differentiation: Differentiation | None = None
    ki67_pct: Decimal | None = None
    mitoses_per_2mm2: Decimal | None = None
    krenning_score: int | None = None
    fdg_avid: bool | None = None


@dataclass(frozen=True, kw_only=True)
class GradeAssessment:
    """The WHO grade, or ``None`` when the form does not allow one, with the reasons."""

    grade: WhoGrade | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class OriginAssessment:
    """The embryologic origin, or ``None`` (unknown primary, colon segment unknown), and why."""

    origin: EmbryologicOrigin | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ImagingRecommendation:
    """Modalities of Table 2 for this patient, by rank, each modality at one rank only.

    ``first`` holds the anatomic imaging and the molecular imaging ranked "1." by Table 2,
    ``second`` the molecular imaging ranked "2.", ``consider`` additional imaging worth
    considering; they map to the ``recommendedFirst``, ``recommendedSecond`` and ``toConsider``
    components of the ``imaging-recommendation`` profile. Alternatives that Table 2 joins with
    "or" share a rank, the preferred one first. ``reasons`` are the rules that fired; IACIG, which
    is not one of the form's modalities, appears only there.
    """

    first: tuple[Modality, ...]
    second: tuple[Modality, ...]
    consider: tuple[Modality, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PrrtScreen:
    """The PRRT eligibility screen's outcome and the status of each criterion as reasons."""

    eligibility: PrrtEligibility
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RiskAssessment:
    """The four risk derivations of one form."""

    grade: GradeAssessment
    origin: OriginAssessment
    imaging: ImagingRecommendation
    prrt: PrrtScreen


# Review section I "Embryology" names the three origins and places the pancreas in the foregut;
# the other sites follow the usual embryology, as ConceptMap primary-site-to-embryologic-origin
# records it (the review does not list them). Colon and unknown have no origin.
ORIGIN_OF_SITE: Final[dict[PrimarySite, EmbryologicOrigin]] = {
    PrimarySite.STOMACH: EmbryologicOrigin.FOREGUT,
    PrimarySite.DUODENUM: EmbryologicOrigin.FOREGUT,
    PrimarySite.PANCREAS: EmbryologicOrigin.FOREGUT,
    PrimarySite.JEJUNUM_ILEUM: EmbryologicOrigin.MIDGUT,
    PrimarySite.APPENDIX: EmbryologicOrigin.MIDGUT,
    PrimarySite.COLON_RIGHT: EmbryologicOrigin.MIDGUT,
    PrimarySite.COLON_LEFT: EmbryologicOrigin.HINDGUT,
    PrimarySite.RECTUM: EmbryologicOrigin.HINDGUT,
}

_SITE_LABEL: Final[dict[PrimarySite, str]] = {
    PrimarySite.STOMACH: "stomach",
    PrimarySite.DUODENUM: "duodenum",
    PrimarySite.PANCREAS: "pancreas",
    PrimarySite.JEJUNUM_ILEUM: "jejunum/ileum",
    PrimarySite.APPENDIX: "appendix",
    PrimarySite.COLON_RIGHT: (
        "right colon (caecum, ascending colon, proximal two thirds of the transverse colon)"
    ),
    PrimarySite.COLON_LEFT: (
        "left colon (distal third of the transverse colon, descending and sigmoid colon)"
    ),
    PrimarySite.RECTUM: "rectum",
}

_TIER_GRADE: Final[dict[int, WhoGrade]] = {1: WhoGrade.G1, 2: WhoGrade.G2}


def derive_risk(factors: RiskFactors) -> RiskAssessment:
    """Derive the WHO grade, the origin, the imaging recommendation and the PRRT screen at once.

    :param factors: the form's ``risk`` group.
    :returns: the four results, each with its reasons, as the functions below give them.
    :raises fhirnet.errors.InvalidInputError: with every out-of-range value (see
        :func:`validate_risk_factors`).
    """
    validate_risk_factors(factors)
    grade = _grade(factors)
    origin = _origin(factors)
    return RiskAssessment(
        grade=grade,
        origin=origin,
        imaging=_imaging(factors, grade.grade, origin.origin),
        prrt=_prrt(factors, grade.grade),
    )


def validate_risk_factors(factors: RiskFactors) -> None:
    """Check the ranges of the form: Ki-67 0-100 %, mitotic count >= 0, Krenning score 0-4.

    :param factors: the form's ``risk`` group.
    :raises fhirnet.errors.InvalidInputError: with every problem, each at its field's name.
    """
    problems = list(_problems(factors))
    if problems:
        raise InvalidInputError(problems)


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
    return _grade(factors)


def derive_embryologic_origin(factors: RiskFactors) -> OriginAssessment:
    """Embryologic origin from the primary site (review section I "Embryology").

    Stomach, duodenum and pancreas are foregut; jejunum/ileum, appendix and right colon midgut;
    left colon and rectum hindgut (ConceptMap ``primary-site-to-embryologic-origin``). The review
    names the three origins and puts the pancreas in the foregut; the rest is the usual
    embryology, which it does not spell out.

    Decisions: an unspecified ``colon`` has **no** origin, because the right colon is midgut and
    the left colon hindgut and Table 2 ranks their molecular imaging differently; an ``unknown``
    primary or an unanswered site has none either. Each says so in its reason.

    :param factors: the form's ``risk`` group; only ``primary_site`` is read.
    :returns: the origin, or ``None``, with the reason.
    :raises fhirnet.errors.InvalidInputError: with every out-of-range value of ``factors``.
    """
    validate_risk_factors(factors)
    return _origin(factors)


def recommend_imaging(factors: RiskFactors) -> ImagingRecommendation:
    """Imaging modalities of Table 2 ("Indication of medical imaging modalities in GEP-NETs").

    Rules, in order:

    1. Every row of Table 2 has contrast-enhanced CT and/or MRI as anatomic imaging: first.
    2. Poorly differentiated row: 18F-FDG PET first, and it replaces the origin and syndrome rows'
       tracers.
    3. Otherwise the origin row ranks the tracers: foregut 1. SSTR PET (68Ga-DOTATOC) or SSTR
       scintigraphy, 2. 18F-DOPA PET; midgut 1. 18F-DOPA PET, 2. SSTR PET or scintigraphy;
       hindgut "CT/MRI > NM", no tracer. SSTR PET precedes scintigraphy ("nowadays recommended
       when available", section I).
    4. Syndrome rows: insulinoma 18F-DOPA PET, gastrinoma 68Ga-DOTATOC (SSTR) PET, and IACIG for
       either when the tumour is difficult to localise (a reason only: not a form modality).
    5. Consider 18F-FDG PET when Ki-67 >= 10 % (section I, ref 31; Fig. 4), for a G3 NET (FDG "is
       highly informative for G3 NETs", section I) and for known FDG-avid disease.

    Decisions:

    - A syndrome row is more specific than the origin row: its tracer goes first and the origin
      row's tracers follow as second (Table 2 gives no order between rows).
    - The poorly differentiated row is applied whatever the origin, although Table 2 writes
      "(foregut and midgut)": section I ties FDG uptake to poor differentiation, not to origin
      (a reason says so for a hindgut or unknown origin).
    - Unknown differentiation applies the rows for well-differentiated tumours; no origin
      (unknown primary, unspecified colon) ranks no tracer, as Table 2 has no such row.

    :param factors: the form's ``risk`` group.
    :returns: the ranked modalities and the rules that fired.
    :raises fhirnet.errors.InvalidInputError: with every out-of-range value.
    """
    validate_risk_factors(factors)
    return _imaging(factors, _grade(factors).grade, _origin(factors).origin)


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
    return _prrt(factors, _grade(factors).grade)


def _problems(factors: RiskFactors) -> Iterator[FieldError]:
    ki67 = factors.ki67_pct
    if ki67 is not None and not (ki67.is_finite() and 0 <= ki67 <= KI67_MAX_PCT):
        yield FieldError(path=("ki67_pct",), message=f"Ki-67 must be 0-100 %, not {ki67}")
    mitoses = factors.mitoses_per_2mm2
    if mitoses is not None and not (mitoses.is_finite() and mitoses >= 0):
        yield FieldError(
            path=("mitoses_per_2mm2",),
            message=f"the mitotic count must be a number >= 0 per 2 mm², not {mitoses}",
        )
    score = factors.krenning_score
    if score is not None and (isinstance(score, bool) or not 0 <= score <= KRENNING_MAX):
        yield FieldError(
            path=("krenning_score",), message=f"the Krenning score must be 0-4, not {score}"
        )


def _text(value: Decimal) -> str:
    """A figure as the reader wrote it, never in exponent notation."""
    return format(value, "f")


def _ki67_tier(ki67: Decimal) -> tuple[int, str]:
    k = _text(ki67)
    if less_than(ki67, WHO_G2_KI67_MIN_PCT):
        return 1, f"Ki-67 {k} % is below {WHO_G2_KI67_MIN_PCT} %: G1 (WHO 2019)"
    if at_most(ki67, WHO_G2_KI67_MAX_PCT):
        return 2, (
            f"Ki-67 {k} % is within {WHO_G2_KI67_MIN_PCT}-{WHO_G2_KI67_MAX_PCT} %: G2 (WHO 2019)"
        )
    return 3, f"Ki-67 {k} % is above {WHO_G2_KI67_MAX_PCT} %: G3 (WHO 2019)"


def _mitoses_tier(mitoses: Decimal) -> tuple[int, str]:
    m = _text(mitoses)
    if less_than(mitoses, WHO_G2_MITOSES_MIN):
        return 1, f"mitotic count {m} per 2 mm² is below {WHO_G2_MITOSES_MIN}: G1 (WHO 2019)"
    if at_most(mitoses, WHO_G2_MITOSES_MAX):
        return 2, (
            f"mitotic count {m} per 2 mm² is within {WHO_G2_MITOSES_MIN}-{WHO_G2_MITOSES_MAX}: "
            "G2 (WHO 2019)"
        )
    return 3, f"mitotic count {m} per 2 mm² is above {WHO_G2_MITOSES_MAX}: G3 (WHO 2019)"


def _proliferation(factors: RiskFactors) -> tuple[int | None, list[str]]:
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


def _grade(factors: RiskFactors) -> GradeAssessment:
    tier, reasons = _proliferation(factors)
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


def _origin(factors: RiskFactors) -> OriginAssessment:
    site = factors.primary_site
    if site is None:
        reason = "primary site not recorded: no embryologic origin"
    elif site is PrimarySite.UNKNOWN:
        reason = "unknown primary: no embryologic origin"
    elif site is PrimarySite.COLON:
        reason = (
            "colon segment not specified: the right colon is midgut and the left colon hindgut, "
            "so no embryologic origin; record right or left colon"
        )
    else:
        origin = ORIGIN_OF_SITE[site]
        return OriginAssessment(
            origin=origin,
            reasons=(f"primary site {_SITE_LABEL[site]}: {origin} (embryology, review section I)",),
        )
    return OriginAssessment(origin=None, reasons=(reason,))


_FIRST, _SECOND, _CONSIDER = 1, 2, 3

_SSTR = (Modality.SSTR_PET, Modality.SSTR_SPECT)  # "68Ga-DOTATOC-PET or SSTR scintigraphy"

# Table 2, molecular-imaging column: tracers ranked "1." and "2." per origin row.
_ORIGIN_TRACERS: Final[
    dict[EmbryologicOrigin, tuple[tuple[Modality, ...], tuple[Modality, ...], str]]
] = {
    EmbryologicOrigin.FOREGUT: (
        _SSTR,
        (Modality.DOPA_PET,),
        "Table 2, foregut row: 1. SSTR PET (68Ga-DOTATOC) or SSTR scintigraphy, SSTR PET when "
        "available (section I), 2. 18F-DOPA PET",
    ),
    EmbryologicOrigin.MIDGUT: (
        (Modality.DOPA_PET,),
        _SSTR,
        "Table 2, midgut row: 1. 18F-DOPA PET, 2. SSTR PET (68Ga-DOTATOC) or SSTR scintigraphy",
    ),
    EmbryologicOrigin.HINDGUT: (
        (),
        (),
        "Table 2, hindgut row: CT/MRI rather than nuclear medicine (CT/MRI > NM), no tracer ranked",
    ),
}

# Table 2, insulinoma and gastrinoma rows: the tracer each names.
_SYNDROME_TRACER: Final[dict[Syndrome, tuple[Modality, str]]] = {
    Syndrome.INSULINOMA: (Modality.DOPA_PET, "Table 2, insulinoma row: 18F-DOPA PET"),
    Syndrome.GASTRINOMA: (Modality.SSTR_PET, "Table 2, gastrinoma row: 68Ga-DOTATOC (SSTR) PET"),
}


class _Ranking:
    """Modalities by rank; a modality keeps the best rank it is given."""

    def __init__(self) -> None:
        self._rank: dict[Modality, int] = {}

    def add(self, rank: int, *modalities: Modality) -> None:
        for modality in modalities:
            if rank < self._rank.get(modality, _CONSIDER + 1):
                self._rank.pop(modality, None)
                self._rank[modality] = rank

    def ranked(self, modality: Modality) -> bool:
        return modality in self._rank

    def at(self, rank: int) -> tuple[Modality, ...]:
        return tuple(m for m, r in self._rank.items() if r == rank)


def _imaging(
    factors: RiskFactors, grade: WhoGrade | None, origin: EmbryologicOrigin | None
) -> ImagingRecommendation:
    ranking = _Ranking()
    reasons = ["Table 2, every row: contrast-enhanced CT and/or MRI as anatomic imaging"]
    ranking.add(_FIRST, Modality.CT, Modality.MRI)
    syndromes = [s for s in _SYNDROME_TRACER if s in factors.syndromes]
    if factors.differentiation is Differentiation.POORLY:
        ranking.add(_FIRST, Modality.FDG_PET)
        reasons.append(
            "Table 2, poorly differentiated row: 18F-FDG PET, in place of the origin and syndrome "
            "rows' tracers (section I: poorly differentiated tumours have a high glucose turnover)"
        )
        if origin not in (EmbryologicOrigin.FOREGUT, EmbryologicOrigin.MIDGUT):
            reasons.append(
                "Table 2 writes this row for foregut and midgut tumours; it is applied to this "
                f"{'hindgut' if origin else 'unknown-origin'} tumour too, as section I ties FDG "
                "uptake to poor differentiation, not to origin"
            )
    else:
        if factors.differentiation is None:
            reasons.append(
                "differentiation not recorded: the rows for well-differentiated tumours apply "
                "(a poorly differentiated tumour would get 18F-FDG PET instead)"
            )
        if origin is None:
            reasons.append("no embryologic origin: no origin row of Table 2 ranks a tracer")
            first: tuple[Modality, ...] = ()
            second: tuple[Modality, ...] = ()
        else:
            first, second, origin_reason = _ORIGIN_TRACERS[origin]
            reasons.append(origin_reason)
        if syndromes:
            ranking.add(_FIRST, *(_SYNDROME_TRACER[s][0] for s in syndromes))
            ranking.add(_SECOND, *first, *second)
            reasons += [_SYNDROME_TRACER[s][1] for s in syndromes]
            if first or second:
                reasons.append(
                    "the syndrome row is more specific than the origin row: its tracer goes "
                    "first, the origin row's tracers second"
                )
        else:
            ranking.add(_FIRST, *first)
            ranking.add(_SECOND, *second)
    reasons += [
        f"Table 2, {s} row: IACIG if the tumour is difficult to localise (Table 2: selective "
        "intra-arterial injection of calcium with hepatic venous insulin gradients)"
        for s in syndromes
    ]
    if not ranking.ranked(Modality.FDG_PET):
        fdg_reasons = list(_fdg_to_consider(factors, grade))
        if fdg_reasons:
            ranking.add(_CONSIDER, Modality.FDG_PET)
            reasons += fdg_reasons
    return ImagingRecommendation(
        first=ranking.at(_FIRST),
        second=ranking.at(_SECOND),
        consider=ranking.at(_CONSIDER),
        reasons=tuple(reasons),
    )


def _fdg_to_consider(factors: RiskFactors, grade: WhoGrade | None) -> Iterator[str]:
    ki67 = factors.ki67_pct
    if ki67 is not None and at_least(ki67, FDG_CONSIDER_KI67_MIN_PCT):
        yield (
            f"Ki-67 {_text(ki67)} % is at least {FDG_CONSIDER_KI67_MIN_PCT} %: consider 18F-FDG "
            "PET, more suitable than 68Ga-DOTATATE PET for highly proliferative tumours (review "
            "section I, Grade; Fig. 4)"
        )
    if grade is WhoGrade.G3_NET:
        yield "G3 NET: consider 18F-FDG PET, highly informative for G3 NETs (review section I)"
    if factors.fdg_avid:
        yield (
            "FDG-avid disease: consider 18F-FDG PET, which shows the dedifferentiated lesions, "
            "probably those with the worst prognosis (review section I; Fig. 4)"
        )


def _prrt(factors: RiskFactors, grade: WhoGrade | None) -> PrrtScreen:
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
    if _proliferation(factors)[0] == 3:
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
