"""Imaging modalities for a GEP-NET, ranked by the review's Table 2 ("Indication of medical
imaging modalities in GEP-NETs") from differentiation, origin, syndrome, grade and Ki-67.

Table 2's rows are rules applied in order; :func:`recommend_imaging` lists them and the decisions
taken where Table 2 is silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from fhirnet.criteria.embryologic_origin import EmbryologicOrigin, origin_of
from fhirnet.criteria.models import Modality
from fhirnet.criteria.risk_factors import (
    Differentiation,
    RiskFactors,
    Syndrome,
    as_written,
    validate_risk_factors,
)
from fhirnet.criteria.thresholds import at_least
from fhirnet.criteria.who_grade import WhoGrade, grade_of

# Review section I "Grade" (ref 31) and Fig. 4: 18F-FDG is more suitable than 68Ga-DOTATATE for
# G2 tumours with high proliferative capacity (Ki-67 >= 10 %); crf.md: "consider FDG PET".
FDG_CONSIDER_KI67_MIN_PCT = Decimal("10")


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
    return imaging_for(factors, grade_of(factors).grade, origin_of(factors).origin)


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


def imaging_for(
    factors: RiskFactors, grade: WhoGrade | None, origin: EmbryologicOrigin | None
) -> ImagingRecommendation:
    """The recommendation of :func:`recommend_imaging`, given the grade and origin derived from
    factors already validated."""
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
            f"Ki-67 {as_written(ki67)} % is at least {FDG_CONSIDER_KI67_MIN_PCT} %: "
            "consider 18F-FDG PET, more suitable than 68Ga-DOTATATE PET for highly proliferative "
            "tumours (review section I, Grade; Fig. 4)"
        )
    if grade is WhoGrade.G3_NET:
        yield "G3 NET: consider 18F-FDG PET, highly informative for G3 NETs (review section I)"
    if factors.fdg_avid:
        yield (
            "FDG-avid disease: consider 18F-FDG PET, which shows the dedifferentiated lesions, "
            "probably those with the worst prognosis (review section I; Fig. 4)"
        )
