"""The risk Observations of a form with a ``risk`` group: WHO grade, embryologic origin, PRRT
eligibility and imaging recommendation (``crf.md`` "What the service derives and writes"; profiles
``who-grade``, ``embryologic-origin``, ``prrt-eligibility``, ``imaging-recommendation``), from
:func:`fhirnet.criteria.risk.derive_risk`, each with its reasons as notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from fhirnet.criteria import (
    Differentiation,
    EmbryologicOrigin,
    Modality,
    PrimarySite,
    PrrtEligibility,
    RiskAssessment,
    RiskFactors,
    WhoGrade,
)
from fhirnet.fhir.crf_codes import MODALITIES
from fhirnet.fhir.datatypes import (
    NCIT,
    SNOMED,
    Coding,
    Json,
    code,
    concept,
    data_absent,
    project_system,
    quantity,
    reference,
)
from fhirnet.fhir.identifiers import Identifier, Kind
from fhirnet.fhir.observations import ExamContext, Written, component, obs_code


def _coding(system: str, value: str, display: str) -> Coding:
    return Coding(system=project_system(system), code=value, display=display)


#: CodeSystem ``who-net-grade``.
WHO_GRADES: Final[Mapping[WhoGrade, Coding]] = {
    WhoGrade.G1: _coding("who-net-grade", "G1", "G1 NET"),
    WhoGrade.G2: _coding("who-net-grade", "G2", "G2 NET"),
    WhoGrade.G3_NET: _coding("who-net-grade", "G3-NET", "G3 NET"),
    WhoGrade.G3_NEC: _coding("who-net-grade", "G3-NEC", "G3 NEC"),
}
#: CodeSystem ``embryologic-origin``.
ORIGINS: Final[Mapping[EmbryologicOrigin, Coding]] = {
    EmbryologicOrigin.FOREGUT: _coding("embryologic-origin", "foregut", "Foregut"),
    EmbryologicOrigin.MIDGUT: _coding("embryologic-origin", "midgut", "Midgut"),
    EmbryologicOrigin.HINDGUT: _coding("embryologic-origin", "hindgut", "Hindgut"),
}
#: CodeSystem ``prrt-eligibility``.
PRRT: Final[Mapping[PrrtEligibility, Coding]] = {
    PrrtEligibility.ELIGIBLE: _coding("prrt-eligibility", "eligible", "Eligible for PRRT"),
    PrrtEligibility.NOT_ELIGIBLE: _coding(
        "prrt-eligibility", "not-eligible", "Not eligible for PRRT"
    ),
    PrrtEligibility.UNDETERMINED: _coding(
        "prrt-eligibility", "undetermined", "Eligibility undetermined"
    ),
}
#: CodeSystem ``differentiation``.
DIFFERENTIATIONS: Final[Mapping[Differentiation, Coding]] = {
    Differentiation.WELL: _coding("differentiation", "well-differentiated", "Well differentiated"),
    Differentiation.POORLY: _coding(
        "differentiation", "poorly-differentiated", "Poorly differentiated"
    ),
}
#: CodeSystem ``krenning-score``: the form's integer 0-4 as a code.
KRENNING_SCORES: Final[Mapping[int, Coding]] = {
    0: _coding("krenning-score", "0", "0 - no uptake"),
    1: _coding("krenning-score", "1", "1 - very low uptake"),
    2: _coding("krenning-score", "2", "2 - uptake up to liver"),
    3: _coding("krenning-score", "3", "3 - uptake above liver"),
    4: _coding("krenning-score", "4", "4 - uptake above spleen or kidneys"),
}


def _site(value: str, display: str, snomed: str, snomed_display: str) -> tuple[Coding, Coding]:
    """A ``primary-site`` code and its SNOMED CT target in ``primary-site-to-snomed``."""
    target = Coding(system=SNOMED, code=snomed, display=snomed_display)
    return _coding("primary-site", value, display), target


#: CodeSystem ``primary-site``, with ConceptMap ``primary-site-to-snomed`` (``unknown``: none).
PRIMARY_SITES: Final[Mapping[PrimarySite, tuple[Coding, ...]]] = {
    PrimarySite.STOMACH: _site("stomach", "Stomach", "69695003", "Stomach"),
    PrimarySite.DUODENUM: _site("duodenum", "Duodenum", "38848004", "Duodenum"),
    PrimarySite.PANCREAS: _site("pancreas", "Pancreas", "15776009", "Pancreas"),
    PrimarySite.JEJUNUM_ILEUM: _site(
        "jejunum-ileum", "Jejunum / ileum", "30315005", "Small intestine"
    ),
    PrimarySite.APPENDIX: _site("appendix", "Appendix", "66754008", "Appendix"),
    PrimarySite.COLON: _site("colon", "Colon", "71854001", "Colon"),
    PrimarySite.COLON_RIGHT: _site("colon-right", "Right colon", "71854001", "Colon"),
    PrimarySite.COLON_LEFT: _site("colon-left", "Left colon", "71854001", "Colon"),
    PrimarySite.RECTUM: _site("rectum", "Rectum", "34402009", "Rectum"),
    PrimarySite.UNKNOWN: (_coding("primary-site", "unknown", "Unknown primary"),),
}

#: IARC/WHO classification of neuroendocrine neoplasms (2018 framework, the criteria of WHO 2019),
#: the ``who-grade`` method, with its NCI preferred term.
WHO_CLASSIFICATION: Final = concept(
    Coding(
        system=NCIT,
        code="C189619",
        display="IARC and WHO Classification of Tumors of Neuroendocrine Neoplasms 2018",
    )
)
#: The ``who-grade`` code, also that of the grade component of ``prrt-eligibility``.
GRADE_CODE: Final = code(NCIT, "C18000")


def risk_observations(
    ctx: ExamContext, factors: RiskFactors, risk: RiskAssessment
) -> tuple[Written, ...]:
    """The four risk Observations, in dependency order (grade, origin, PRRT, imaging).

    The embryologic origin is left out when ``primary-site`` is unanswered: its profile requires
    the primary site as ``bodySite`` (1..1), so no conforming Observation says "origin unknown
    because the site is unknown"; the grade's and the imaging recommendation's reasons say so.
    """
    grade = _who_grade(ctx, factors, risk)
    origin = _origin(ctx, factors, risk) if factors.primary_site is not None else None
    prrt = _prrt(ctx, factors, risk, grade)
    imaging = _imaging(ctx, risk, [w for w in (origin, grade) if w is not None])
    return tuple(w for w in (grade, origin, prrt, imaging) if w is not None)


def _who_grade(ctx: ExamContext, factors: RiskFactors, risk: RiskAssessment) -> Written:
    identifier, resource = _observation(ctx, Kind.WHO_GRADE, GRADE_CODE)
    _value(resource, WHO_GRADES.get(risk.grade.grade) if risk.grade.grade else None)
    _notes(resource, risk.grade.reasons)
    resource["method"] = WHO_CLASSIFICATION
    resource["derivedFrom"] = [reference(ctx.response_url)]
    components = []
    if factors.ki67_pct is not None:
        ki67 = quantity(factors.ki67_pct, "%")
        components.append(component(code(NCIT, "C123557"), "valueQuantity", ki67))
    if factors.mitoses_per_2mm2 is not None:
        count = quantity(factors.mitoses_per_2mm2, "/(2.mm2)", "per 2 mm²")
        components.append(component(obs_code("mitotic-count"), "valueQuantity", count))
    if factors.differentiation is not None:
        components.append(_differentiation(factors.differentiation))
    if components:
        resource["component"] = components
    return Written(resource=resource, identifier=identifier)


def _origin(ctx: ExamContext, factors: RiskFactors, risk: RiskAssessment) -> Written:
    identifier, resource = _observation(
        ctx, Kind.EMBRYOLOGIC_ORIGIN, obs_code("embryologic-origin")
    )
    origin = risk.origin.origin
    _value(resource, ORIGINS[origin] if origin is not None else None)
    _notes(resource, risk.origin.reasons)
    if factors.primary_site is not None:
        resource["bodySite"] = concept(*PRIMARY_SITES[factors.primary_site])
    resource["derivedFrom"] = [reference(ctx.response_url)]
    return Written(resource=resource, identifier=identifier)


def _prrt(ctx: ExamContext, factors: RiskFactors, risk: RiskAssessment, grade: Written) -> Written:
    identifier, resource = _observation(ctx, Kind.PRRT_ELIGIBILITY, obs_code("prrt-eligibility"))
    resource["valueCodeableConcept"] = concept(PRRT[risk.prrt.eligibility])
    _notes(resource, risk.prrt.reasons)
    resource["derivedFrom"] = [reference(ctx.response_url), grade.ref]
    components = []
    if factors.krenning_score is not None:
        score = concept(KRENNING_SCORES[factors.krenning_score])
        components.append(component(obs_code("krenning-score"), "valueCodeableConcept", score))
    if risk.grade.grade is not None:
        grade_value = concept(WHO_GRADES[risk.grade.grade])
        components.append(component(GRADE_CODE, "valueCodeableConcept", grade_value))
    if factors.differentiation is not None:
        components.append(_differentiation(factors.differentiation))
    if components:
        resource["component"] = components
    return Written(resource=resource, identifier=identifier)


def _imaging(ctx: ExamContext, risk: RiskAssessment, inputs: Sequence[Written]) -> Written:
    identifier, resource = _observation(
        ctx, Kind.IMAGING_RECOMMENDATION, obs_code("imaging-recommendation")
    )
    _notes(resource, risk.imaging.reasons)
    resource["derivedFrom"] = [reference(ctx.response_url), *(w.ref for w in inputs)]
    ranks: Sequence[tuple[str, tuple[Modality, ...]]] = (
        ("recommended-first", risk.imaging.first),
        ("recommended-second", risk.imaging.second),
        ("recommended-consider", risk.imaging.consider),
    )
    # Every Table 2 row ranks CT/MRI first, so there is always a component (profile: 1..*).
    resource["component"] = [
        component(obs_code(rank), "valueCodeableConcept", concept(MODALITIES[modality]))
        for rank, modalities in ranks
        for modality in modalities
        if modality in MODALITIES  # US is not a code of the imaging-procedure CodeSystem
    ]
    return Written(resource=resource, identifier=identifier)


def _observation(ctx: ExamContext, kind: Kind, observation_code: Json) -> tuple[Identifier, Json]:
    """The identifier and head of a risk Observation (no ``imaging`` category: not a reading)."""
    identifier = ctx.key.identifier(kind)
    return identifier, ctx.observation(kind, identifier, observation_code, imaging=False)


def _differentiation(differentiation: Differentiation) -> Json:
    value = concept(DIFFERENTIATIONS[differentiation])
    return component(obs_code("differentiation"), "valueCodeableConcept", value)


def _value(resource: Json, coding: Coding | None) -> None:
    """The value, or ``dataAbsentReason`` *unknown* (invariant ``fhirnet-value-or-absent``)."""
    if coding is not None:
        resource["valueCodeableConcept"] = concept(coding)
    else:
        resource["dataAbsentReason"] = data_absent("unknown")


def _notes(resource: Json, reasons: Sequence[str]) -> None:
    if reasons:
        resource["note"] = [{"text": reason} for reason in reasons]
