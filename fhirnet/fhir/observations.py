"""The imaging resources of one exam: lesion BodyStructures, lesion measurements, the sum of
diameters, the response assessment and the cancer disease status (``crf.md`` "What the service
derives and writes"; profiles ``lesion``, ``lesion-measurement``, ``sum-of-diameters``,
``response-assessment``, ``cancer-disease-status`` in ``fsh/README.md``).

Each function returns a :class:`Written`: the resource as JSON and the business identifier that
addresses it (:mod:`fhirnet.fhir.identifiers`). References between the resources of a Bundle are
the ``urn:uuid`` fullUrls of those identifiers; the element order is R4's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fhirnet.criteria import (
    Criteria,
    Modality,
    Response,
    TargetLesion,
    TimePointAssessment,
    TumorGrowthRate,
)
from fhirnet.fhir.crf_codes import CRITERIA, MODALITIES, RESPONSE_CATEGORIES
from fhirnet.fhir.datatypes import (
    DCM,
    LOINC,
    NCIT,
    OBSERVATION_CATEGORY,
    OBSERVATION_CODES,
    RESOURCE_TYPES,
    SNOMED,
    Coding,
    Json,
    code,
    concept,
    data_absent,
    date_time,
    profile_url,
    quantity,
    reference,
)
from fhirnet.fhir.extract import ExamForm
from fhirnet.fhir.identifiers import CRF_LESION_ID, ExamKey, Identifier, Kind

#: ``lesion-nodal`` extension of the ``lesion`` profile.
LESION_NODAL: Final = profile_url("lesion-nodal")
#: ConceptMap ``imaging-procedure-to-snomed``: the standard code added to ``Observation.method``
#: as a translation (mCODE TumorSizeMethodVS; DICOM PS3.16 CID 3108 for SSTR scintigraphy/SPECT).
METHOD_TRANSLATIONS: Final[Mapping[Modality, Coding]] = {
    Modality.CT: Coding(
        system=SNOMED, code="77477000", display="Computerized axial tomography (procedure)"
    ),
    Modality.MRI: Coding(
        system=SNOMED, code="113091000", display="Magnetic resonance imaging (procedure)"
    ),
    Modality.SSTR_PET: Coding(
        system=SNOMED, code="82918005", display="Positron emission tomography (procedure)"
    ),
    Modality.FDG_PET: Coding(
        system=SNOMED, code="82918005", display="Positron emission tomography (procedure)"
    ),
    Modality.DOPA_PET: Coding(
        system=SNOMED, code="82918005", display="Positron emission tomography (procedure)"
    ),
    Modality.SSTR_SPECT: Coding(
        system=SNOMED, code="45316007", display="Radionuclide localization of tumor"
    ),
}
#: Modalities that measure size and density; a lesion's ``method`` is the first of these the
#: exam used, since its diameter is the measurement the criteria rest on.
ANATOMIC: Final[tuple[Modality, ...]] = (Modality.CT, Modality.MRI)

_IMPROVED = Coding(
    system=SNOMED, code="268910001", display="Patient's condition improved (finding)"
)
_STABLE = Coding(system=SNOMED, code="359746009", display="Patient's condition stable (finding)")
_WORSENED = Coding(
    system=SNOMED, code="271299001", display="Patient's condition worsened (finding)"
)
_UNDETERMINED = Coding(
    system=SNOMED, code="709137006", display="Patient condition undetermined (finding)"
)
#: ConceptMap ``response-category-to-disease-status``: the mCODE ConditionStatusTrendVS code of
#: each overall response; iUPD is *undetermined* (an unconfirmed progression, ``inexact``).
DISEASE_STATUS: Final[Mapping[Response, Coding]] = {
    Response.CR: _IMPROVED,
    Response.PR: _IMPROVED,
    Response.ICR: _IMPROVED,
    Response.IPR: _IMPROVED,
    Response.CMR: _IMPROVED,
    Response.PMR: _IMPROVED,
    Response.SD: _STABLE,
    Response.ISD: _STABLE,
    Response.SMD: _STABLE,
    Response.NON_CR_NON_PD: _STABLE,
    Response.NON_ICR_NON_IUPD: _STABLE,
    Response.PD: _WORSENED,
    Response.ICPD: _WORSENED,
    Response.PMD: _WORSENED,
    Response.NE: _UNDETERMINED,
    Response.IUPD: _UNDETERMINED,
}

#: The reader may answer in RECIST codes whatever the criteria (``crf.md`` "Conclusion": "PD,
#: SD, PR, CR (or the chosen criteria's own codes)"); each criteria code's RECIST equivalent.
_RECIST_EQUIVALENT: Final[Mapping[Response, Response]] = {
    Response.ICR: Response.CR,
    Response.IPR: Response.PR,
    Response.ISD: Response.SD,
    Response.IUPD: Response.PD,
    Response.ICPD: Response.PD,
    Response.NON_ICR_NON_IUPD: Response.NON_CR_NON_PD,
    Response.CMR: Response.CR,
    Response.PMR: Response.PR,
    Response.SMD: Response.SD,
    Response.PMD: Response.PD,
}
_RECIST_CODES: Final = frozenset(
    {Response.CR, Response.PR, Response.SD, Response.PD, Response.NE, Response.NON_CR_NON_PD}
)

_IMAGING_CATEGORY: Final = code(OBSERVATION_CATEGORY, "imaging")
_PERFORMER_TYPES: Final = ("Practitioner/", "PractitionerRole/", "Organization/")


@dataclass(frozen=True, kw_only=True)
class Written:
    """One resource to write and the business identifier that addresses it."""

    resource: Json
    identifier: Identifier

    @property
    def full_url(self) -> str:
        return self.identifier.full_url

    @property
    def ref(self) -> Json:
        """A Reference to it inside the Bundle."""
        return reference(self.identifier.full_url)


@dataclass(frozen=True, kw_only=True)
class ExamContext:
    """What every resource of one exam shares."""

    key: ExamKey
    form: ExamForm
    subject: str
    response: Identifier  # the QuestionnaireResponse's own identifier
    status: str  # of every Observation and the DiagnosticReport (build.STATUSES)
    issued: str

    @property
    def response_url(self) -> str:
        """The fullUrl of the QuestionnaireResponse in the Bundle."""
        return self.response.full_url

    @property
    def effective(self) -> str:
        return date_time(self.form.imaging_date)

    def observation(
        self,
        kind: Kind,
        identifier: Identifier,
        observation_code: Json,
        *,
        imaging: bool,
        extension: Sequence[Json] = (),
    ) -> Json:
        """The head every Observation profile of ours shares (``DerivedObservation`` RuleSet)."""
        resource: Json = {
            "resourceType": "Observation",
            "meta": {"profile": [profile_url(kind.value)]},
        }
        if extension:
            resource["extension"] = list(extension)
        resource["identifier"] = [identifier.json()]
        resource["status"] = self.status
        if imaging:
            resource["category"] = [_IMAGING_CATEGORY]
        resource["code"] = observation_code
        resource["subject"] = reference(self.subject)
        resource["effectiveDateTime"] = self.effective
        resource["issued"] = self.issued
        return resource


def lesion(key: ExamKey, target: TargetLesion, location: Coding, subject: str) -> Written:
    """The ``lesion`` BodyStructure of a target lesion: one per patient and CRF lesion-id, the
    same in every exam's Bundle (from the baseline form, where the target is chosen)."""
    identifier = key.identifier(Kind.LESION, target.id)
    resource: Json = {
        "resourceType": "BodyStructure",
        "meta": {"profile": [profile_url(Kind.LESION.value)]},
        "extension": [{"url": LESION_NODAL, "valueBoolean": target.nodal}],
        "identifier": [
            {
                "use": "usual",
                "type": code(RESOURCE_TYPES, "BodyStructure"),
                "system": CRF_LESION_ID,
                "value": target.id,
            },
            identifier.json(),
        ],
        "location": concept(location),
        "patient": reference(subject),
    }
    return Written(resource=resource, identifier=identifier)


def measurement(ctx: ExamContext, target: TargetLesion, location: Coding, body: Written) -> Written:
    """The ``lesion-measurement`` of one target at this exam (mCODE TumorSize shape).

    Components: the longest diameter (LOINC 33728-7), always, as mCODE TumorSize requires it
    1..1: with ``dataAbsentReason`` *not-performed* for a node, whose size is its short axis
    (SCT 103340004), and *unknown* for a lesion too small to measure or without a size; too
    small to measure; mean density; SUVmax; SULpeak — those answered. A target without any
    measure (not evaluable) also gets ``dataAbsentReason`` *unknown* on the Observation.
    ``method`` is the first anatomic modality of the exam, else its first modality, with the
    ConceptMap translation.
    """
    identifier = ctx.key.identifier(Kind.LESION_MEASUREMENT, target.id)
    resource = ctx.observation(
        Kind.LESION_MEASUREMENT, identifier, code(LOINC, "21889-1"), imaging=True
    )
    resource["focus"] = [{**body.ref, "identifier": {"system": CRF_LESION_ID, "value": target.id}}]
    author = ctx.form.author
    if author is not None and author.startswith(_PERFORMER_TYPES):
        resource["performer"] = [reference(author)]
    components = list(_size_components(target))
    if len(components) == 1 and "dataAbsentReason" in components[0]:
        resource["dataAbsentReason"] = data_absent("unknown")
    resource["bodySite"] = concept(location)
    method = _method(ctx.form.modalities)
    if method is not None:
        resource["method"] = method
    resource["derivedFrom"] = [reference(ctx.response_url)]
    if components:
        resource["component"] = components
    return Written(resource=resource, identifier=identifier)


def _size_components(target: TargetLesion) -> Sequence[Json]:
    longest = code(LOINC, "33728-7")
    size = None if target.diameter_mm is None else quantity(target.diameter_mm, "mm")
    found = []
    if target.nodal:
        found.append(component(longest, "dataAbsentReason", data_absent("not-performed")))
        if size is not None:
            found.append(component(code(SNOMED, "103340004"), "valueQuantity", size))
    elif size is not None:
        found.append(component(longest, "valueQuantity", size))
    else:
        found.append(component(longest, "dataAbsentReason", data_absent("unknown")))
    if target.too_small_to_measure:
        found.append(component(obs_code("too-small-to-measure"), "valueBoolean", True))
    if target.density_hu is not None:
        density = quantity(target.density_hu, "[hnsf'U]", "HU")
        found.append(component(code(DCM, "112181"), "valueQuantity", density))
    if target.suv_max is not None:
        suv = quantity(target.suv_max, "g/ml{SUVbw}", "SUVbw")
        found.append(component(code(NCIT, "C95012"), "valueQuantity", suv))
    if target.sul_peak is not None:
        sul = quantity(target.sul_peak, "g/ml{SUVlbm}", "SUL")
        found.append(component(code(NCIT, "C181547"), "valueQuantity", sul))
    return found


def _method(modalities: Sequence[Modality]) -> Json | None:
    chosen: Modality | None = next((m for m in modalities if m in ANATOMIC), None)
    if chosen is None:
        chosen = next((m for m in modalities if m in MODALITIES), None)
    if chosen is None:
        return None
    return concept(MODALITIES[chosen], METHOD_TRANSLATIONS[chosen])


def sum_of_diameters(
    ctx: ExamContext, sum_mm: Decimal | None, measurements: Sequence[Written]
) -> Written:
    """The ``sum-of-diameters`` at this exam (CDISC SUMDIAM): the assessment's ``sumMm``
    (``baselineSumMm`` at baseline); ``dataAbsentReason`` *unknown* when a target is not
    evaluable, *not-applicable* when the patient has no target lesions."""
    identifier = ctx.key.identifier(Kind.SUM_OF_DIAMETERS)
    resource = ctx.observation(
        Kind.SUM_OF_DIAMETERS, identifier, code(NCIT, "C96631"), imaging=True
    )
    if sum_mm is not None:
        resource["valueQuantity"] = quantity(sum_mm, "mm")
    else:
        # A pre-baseline exam writes no measurements: its own targets say whether it has any.
        with_targets = bool(measurements) or bool(ctx.form.targets)
        resource["dataAbsentReason"] = data_absent("unknown" if with_targets else "not-applicable")
    resource["derivedFrom"] = [reference(ctx.response_url), *(m.ref for m in measurements)]
    return Written(resource=resource, identifier=identifier)


def response_assessment(
    ctx: ExamContext,
    criteria: Criteria,
    baseline_date: dt.date,
    result: TimePointAssessment,
    sum_of_diameters: Written,
    growth_rate: TumorGrowthRate | None = None,
) -> Written:
    """The ``response-assessment``: the overall response as value, the criteria as method, every
    figure of the assessment API as a component (``fsh/README.md`` component table; a figure the
    API gives as ``null`` is left out), the patient's tumour growth rate and hyperprogression
    when there is a pre-baseline scan (``tumorGrowthRate``, ``criteria.md`` §7), the reasons as
    notes, and the reader's own categories with the ``readerDiscordant`` flag when the form has
    them."""
    identifier = ctx.key.identifier(Kind.RESPONSE_ASSESSMENT)
    resource = ctx.observation(
        Kind.RESPONSE_ASSESSMENT, identifier, code(NCIT, "C96613"), imaging=True
    )
    resource["valueCodeableConcept"] = concept(RESPONSE_CATEGORIES[result.overall_response])
    if result.reasons:
        resource["note"] = [{"text": reason} for reason in result.reasons]
    resource["method"] = concept(CRITERIA[criteria])
    resource["derivedFrom"] = [reference(ctx.response_url), sum_of_diameters.ref]
    resource["component"] = [
        *_figures(baseline_date, result),
        *_growth_rate(growth_rate),
        *_reader(ctx.form, result.overall_response),
    ]
    return Written(resource=resource, identifier=identifier)


def _figures(baseline_date: dt.date, result: TimePointAssessment) -> Sequence[Json]:
    found = []

    def add(component_code: Json, key: str, value: Any) -> None:
        if value is not None:
            found.append(component(component_code, key, value))

    def category(value: Response | None) -> Json | None:
        return None if value is None else concept(RESPONSE_CATEGORIES[value])

    def amount(value: Decimal | None, unit: str, shown: str | None = None) -> Json | None:
        return None if value is None else quantity(value, unit, shown)

    def day(value: dt.date | None) -> str | None:
        return None if value is None else date_time(value)

    add(code(NCIT, "C94534"), "valueCodeableConcept", category(result.target_response))
    add(code(NCIT, "C94535"), "valueCodeableConcept", category(result.non_target_response))
    add(code(NCIT, "C142362"), "valueBoolean", result.new_lesions)
    add(obs_code("baseline-date"), "valueDateTime", day(baseline_date))
    add(
        obs_code("baseline-sum-of-diameters"), "valueQuantity", amount(result.baseline_sum_mm, "mm")
    )
    add(obs_code("nadir-sum-of-diameters"), "valueQuantity", amount(result.nadir_sum_mm, "mm"))
    add(obs_code("nadir-date"), "valueDateTime", day(result.nadir_date))
    add(code(NCIT, "C112370"), "valueQuantity", amount(result.change_from_baseline_pct, "%"))
    add(code(NCIT, "C112373"), "valueQuantity", amount(result.change_from_nadir_pct, "%"))
    if result.choi is not None:
        density = amount(result.choi.mean_density_hu, "[hnsf'U]", "HU")
        add(obs_code("mean-density"), "valueQuantity", density)
        change = amount(result.choi.density_change_from_baseline_pct, "%")
        add(obs_code("density-change-from-baseline"), "valueQuantity", change)
    if result.percist is not None:
        p = result.percist
        add(
            code(NCIT, "C181547"), "valueQuantity", amount(p.target_sul_peak, "g/ml{SUVlbm}", "SUL")
        )
        baseline_peak = amount(p.baseline_target_sul_peak, "g/ml{SUVlbm}", "SUL")
        add(obs_code("baseline-target-sul-peak"), "valueQuantity", baseline_peak)
        add(
            obs_code("sul-peak-change-percent"), "valueQuantity", amount(p.sul_peak_change_pct, "%")
        )
        change_abs = amount(p.sul_peak_change_abs, "g/ml{SUVlbm}", "SUL")
        add(obs_code("sul-peak-change-absolute"), "valueQuantity", change_abs)
        threshold = amount(p.measurability_threshold, "g/ml{SUVlbm}", "SUL")
        add(obs_code("measurability-threshold"), "valueQuantity", threshold)
    if result.irecist is not None:
        new_sum = amount(result.irecist.new_lesion_sum_mm, "mm")
        add(obs_code("new-lesion-sum-of-diameters"), "valueQuantity", new_sum)
        add(obs_code("confirmation-of"), "valueDateTime", day(result.irecist.confirmation_of))
    return found


def _growth_rate(growth_rate: TumorGrowthRate | None) -> Sequence[Json]:
    """``tumorGrowthRate`` as components: the two rates in %/month (UCUM ``mo`` is the mean
    Julian month, 30.4375 days, the month of §7), the ratio, and hyperprogression (always)."""
    if growth_rate is None:
        return []
    figures = [
        ("tumor-growth-rate-pre-treatment", growth_rate.pre_treatment_pct_per_month, "%/mo"),
        ("tumor-growth-rate-on-treatment", growth_rate.on_treatment_pct_per_month, "%/mo"),
        ("tumor-growth-rate-ratio", growth_rate.ratio, "1"),
    ]
    found = [
        component(obs_code(name), "valueQuantity", quantity(value, unit, _UNIT_SHOWN[unit]))
        for name, value, unit in figures
        if value is not None
    ]
    found.append(
        component(obs_code("hyperprogression"), "valueBoolean", growth_rate.hyperprogression)
    )
    return found


_UNIT_SHOWN: Final[Mapping[str, str]] = {"%/mo": "%/month", "1": "ratio"}


def _reader(form: ExamForm, computed: Response) -> Sequence[Json]:
    answers = [
        ("reader-response-vs-baseline", form.response_vs_baseline),
        ("reader-response-vs-nadir", form.response_vs_nadir),
    ]
    found = [
        component(obs_code(name), "valueCodeableConcept", concept(RESPONSE_CATEGORIES[answer]))
        for name, answer in answers
        if answer is not None
    ]
    given = [answer for _, answer in answers if answer is not None]
    if given:
        discordant = any(not concordant(answer, computed) for answer in given)
        found.append(component(obs_code("reader-discordant"), "valueBoolean", discordant))
    return found


def concordant(reader: Response, computed: Response) -> bool:
    """Whether the reader's category agrees with the computed one: the same code, or the RECIST
    code of the same category (``PR`` for ``iPR`` or ``PMR``; ``PD`` for ``iUPD``, ``iCPD`` or
    ``PMD``), which ``crf.md`` lets the reader use under any criteria. Each of the two reader
    answers is compared with the one computed timepoint response (``fsh/README.md`` "What in
    crf.md was wrong", 10: the comparison is the service's rule)."""
    if reader == computed:
        return True
    return reader in _RECIST_CODES and _RECIST_EQUIVALENT.get(computed) == reader


def disease_status(ctx: ExamContext, overall: Response, assessment: Written) -> Written:
    """The ``cancer-disease-status`` (mCODE CancerDiseaseStatus structure) of the overall
    response, through ConceptMap ``response-category-to-disease-status``. No mCODE extension:
    fhirnet's package does not depend on mCODE (the profile's description)."""
    identifier = ctx.key.identifier(Kind.CANCER_DISEASE_STATUS)
    resource = ctx.observation(
        Kind.CANCER_DISEASE_STATUS, identifier, code(LOINC, "97509-4"), imaging=True
    )
    resource["valueCodeableConcept"] = concept(DISEASE_STATUS[overall])
    resource["derivedFrom"] = [assessment.ref]
    return Written(resource=resource, identifier=identifier)


def obs_code(value: str) -> Json:
    """A code of the project's ``observation-codes`` CodeSystem."""
    return code(OBSERVATION_CODES, value)


def component(component_code: Json, key: str, value: Any) -> Json:
    """An ``Observation.component`` with its ``value[x]`` under ``key`` (``valueQuantity``...)."""
    return {"code": component_code, key: value}
