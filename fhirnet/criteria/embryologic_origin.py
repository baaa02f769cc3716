"""Embryologic origin (foregut, midgut, hindgut) from the primary site (review section I).

The origin chooses the row of Table 2 that ranks the molecular imaging
(``imaging_recommendation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from fhirnet.criteria.risk_factors import PrimarySite, RiskFactors, validate_risk_factors


class EmbryologicOrigin(StrEnum):
    """Embryologic origin, derived from the primary site (CodeSystem ``embryologic-origin``)."""

    FOREGUT = "foregut"
    MIDGUT = "midgut"
    HINDGUT = "hindgut"


@dataclass(frozen=True, kw_only=True)
class OriginAssessment:
    """The embryologic origin, or ``None`` (unknown primary, colon segment unknown), and why."""

    origin: EmbryologicOrigin | None
    reasons: tuple[str, ...]


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
    return origin_of(factors)


def origin_of(factors: RiskFactors) -> OriginAssessment:
    """The origin of :func:`derive_embryologic_origin`, for factors already validated."""
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
