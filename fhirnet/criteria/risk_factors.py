"""The form's ``risk`` group as domain values: its coded answers, :class:`RiskFactors` and the
check of its ranges (``crf.md``; review section I).

Enum values are the codes of the project's CodeSystems (``profiles/CodeSystem-*.json``), so the
FHIR layer maps them one to one. The derivations read these values: ``who_grade.py``,
``embryologic_origin.py``, ``imaging_recommendation.py`` and ``prrt_screen.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from fhirnet.errors import FieldError, InvalidInputError

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


def validate_risk_factors(factors: RiskFactors) -> None:
    """Check the ranges of the form: Ki-67 0-100 %, mitotic count >= 0, Krenning score 0-4.

    :param factors: the form's ``risk`` group.
    :raises fhirnet.errors.InvalidInputError: with every problem, each at its field's name.
    """
    problems = list(_problems(factors))
    if problems:
        raise InvalidInputError(problems)


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


def as_written(value: Decimal) -> str:
    """A figure as the reader wrote it, never in exponent notation."""
    return format(value, "f")
