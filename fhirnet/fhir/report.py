"""The DiagnosticReport that gathers one exam's results and the Provenance of what fhirnet wrote
(``crf.md`` "What the service derives and writes"; profiles ``imaging-response-report`` and
``assessment-provenance`` in ``fsh/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from fhirnet.criteria import (
    Criteria,
    Modality,
    Response,
    RiskAssessment,
    TimePointAssessment,
    TumorGrowthRate,
)
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.datatypes import (
    LOINC,
    PROVENANCE_PARTICIPANT,
    V2_0074,
    Json,
    code,
    concept,
    profile_url,
    reference,
)
from fhirnet.fhir.extract import ExamForm
from fhirnet.fhir.identifiers import Kind
from fhirnet.fhir.observations import ExamContext, Written, concordant
from fhirnet.fhir.risk_observations import WHO_GRADES
from fhirnet.fhir.studies import Reader

#: How the criteria are named in the conclusion.
CRITERIA_LABELS: Final[Mapping[Criteria, str]] = {
    Criteria.RECIST_1_1: "RECIST 1.1",
    Criteria.IRECIST: "iRECIST",
    Criteria.CHOI: "Choi",
    Criteria.PERCIST_1_0: "PERCIST 1.0",
}
#: ``resultsInterpreter`` targets (R4): the reader, when ``author`` names one of them.
_INTERPRETER_TYPES: Final = ("Practitioner/", "PractitionerRole/", "Organization/")
#: The contained Device that stands for the service in the Provenance.
DEVICE_ID: Final = "fhirnet"


def diagnostic_report(
    ctx: ExamContext,
    *,
    criteria: Criteria,
    result: TimePointAssessment | None,
    sum_mm: Decimal | None,
    risk: RiskAssessment | None,
    warnings: Sequence[str],
    results: Sequence[Written],
    growth_rate: TumorGrowthRate | None = None,
    reader: Reader | None = None,
) -> Written:
    """The ``imaging-response-report`` of one exam: ``result`` → the Observations,
    ``conclusionCode`` = the computed overall response (none at baseline or pre-baseline),
    ``conclusion`` = the reasons as text, then the reader's conclusion with the discordance, the
    tumour growth rate and the warnings.

    ``resultsInterpreter`` is the form's ``author`` when it is a Practitioner, PractitionerRole
    or Organization. Of a study's central read (``reader``, :mod:`fhirnet.services.streams`) it
    is the study's reference of the reader with the evaluator's label as ``display`` (e.g.
    ``RADIOLOGIST 1``), and the conclusion opens with whose read it is: what tells the readers'
    reports of one exam apart, in the standard element a consumer compares with the study's
    readers (no extension to know of).
    """
    identifier = ctx.key.identifier(Kind.IMAGING_RESPONSE_REPORT)
    resource: Json = {
        "resourceType": "DiagnosticReport",
        "meta": {"profile": [profile_url(Kind.IMAGING_RESPONSE_REPORT.value)]},
        "identifier": [identifier.json()],
        "status": ctx.status,
        "category": [code(V2_0074, "RAD")],
        "code": code(LOINC, "18748-4"),
        "subject": reference(ctx.subject),
        "effectiveDateTime": ctx.effective,
        "issued": ctx.issued,
    }
    author = ctx.form.author
    if reader is not None:
        resource["resultsInterpreter"] = [{**reference(reader.reference), "display": reader.label}]
    elif author is not None and author.startswith(_INTERPRETER_TYPES):
        resource["resultsInterpreter"] = [reference(author)]
    resource["result"] = [written.ref for written in results]
    text = conclusion(ctx.form, criteria, result, sum_mm, risk, warnings, growth_rate)
    if reader is not None:
        text = f"Central read by {reader.label}. {text}"
    resource["conclusion"] = text
    if result is not None:
        resource["conclusionCode"] = [concept(RESPONSE_CATEGORIES[result.overall_response])]
    return Written(resource=resource, identifier=identifier)


def conclusion(
    form: ExamForm,
    criteria: Criteria,
    result: TimePointAssessment | None,
    sum_mm: Decimal | None,
    risk: RiskAssessment | None,
    warnings: Sequence[str],
    growth_rate: TumorGrowthRate | None = None,
) -> str:
    """``DiagnosticReport.conclusion``: one paragraph of sentences, e.g. "RECIST 1.1: SD. Sum of
    diameters 65.0 mm is 29.3% below baseline 92.0 mm: ... The reader's conclusion (PR versus
    baseline, SD versus nadir) differs from the computed SD: discordant."."""
    label = CRITERIA_LABELS[criteria]
    if result is None:
        count = len(form.targets)
        lesions = f"{count} target lesion{'s' if count != 1 else ''}"
        if form.pre_baseline:
            sentences = [
                f"{label}: pre-baseline scan before treatment start, not assessed; used for the "
                "tumour growth rate."
            ]
        else:
            sentences = [f"{label}: baseline."]
        if sum_mm is not None:
            sentences.append(f"Sum of diameters {sum_mm} mm ({lesions}).")
        elif form.targets:
            sentences.append(f"Sum of diameters not evaluable ({lesions}).")
        else:
            sentences.append("No target lesions.")
    else:
        overall = result.overall_response
        sentences = [f"{label}: {overall}.", *(_sentence(reason) for reason in result.reasons)]
        sentences += _reader_sentences(form, overall)
        sentences += _growth_rate_sentences(growth_rate)
    if risk is not None:
        sentences += _risk_sentences(risk)
    sentences += [
        f"Warning {warning}" + ("" if warning.endswith(".") else ".") for warning in warnings
    ]
    return " ".join(sentences)


def _growth_rate_sentences(growth_rate: TumorGrowthRate | None) -> list[str]:
    """The tumour growth rate in one sentence, and hyperprogression when found (§7)."""
    if growth_rate is None:
        return []

    def rate(value: Decimal | None) -> str:
        return "undefined" if value is None else f"{value} %/month"

    ratio = "undefined" if growth_rate.ratio is None else str(growth_rate.ratio)
    sentence = (
        f"Tumour growth rate {rate(growth_rate.pre_treatment_pct_per_month)} before treatment, "
        f"{rate(growth_rate.on_treatment_pct_per_month)} on treatment (ratio {ratio})"
    )
    if growth_rate.hyperprogression:
        return [
            f"{sentence}: hyperprogression (progression at the first follow-up with a TGR ratio "
            ">= 2)."
        ]
    return [f"{sentence}: no hyperprogression."]


def _reader_sentences(form: ExamForm, computed: Response) -> list[str]:
    answers = [
        (answer, versus)
        for answer, versus in (
            (form.response_vs_baseline, "baseline"),
            (form.response_vs_nadir, "nadir"),
        )
        if answer is not None
    ]
    if not answers:
        return []
    given = ", ".join(f"{answer} versus {versus}" for answer, versus in answers)
    if all(concordant(answer, computed) for answer, _ in answers):
        return [f"The reader's conclusion ({given}) agrees with the computed {computed}."]
    return [f"The reader's conclusion ({given}) differs from the computed {computed}: discordant."]


def _risk_sentences(risk: RiskAssessment) -> list[str]:
    """The four risk results in short; their reasons are the notes of their Observations."""
    grade = risk.grade.grade
    origin = risk.origin.origin
    ranks = [
        (label, modalities)
        for label, modalities in (
            ("first", risk.imaging.first),
            ("second", risk.imaging.second),
            ("to consider", risk.imaging.consider),
        )
        if modalities
    ]
    imaging = "; ".join(f"{label} {_modalities(modalities)}" for label, modalities in ranks)
    return [
        f"WHO grade: {WHO_GRADES[grade].display if grade else 'undetermined'}.",
        f"Embryologic origin: {origin or 'undetermined'}.",
        f"PRRT screen: {risk.prrt.eligibility.value.replace('-', ' ')}.",
        f"Imaging recommended {imaging}.",
    ]


def _modalities(modalities: Sequence[Modality]) -> str:
    return ", ".join(modality.value for modality in modalities)


def _sentence(reason: str) -> str:
    """A reason as a sentence: capitalised when its first word is lower case (not ``iUPD``)."""
    first = reason.split(" ", 1)[0]
    if first.islower():
        reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith(".") else f"{reason}."


def provenance(
    ctx: ExamContext, *, recorded: str, version: str, targets: Sequence[Written]
) -> Written:
    """The ``assessment-provenance``: ``target`` = every resource written for the form (not the
    form itself), ``entity[source]`` = the QuestionnaireResponse, ``agent[service]`` = fhirnet as
    a contained Device (``assembler``) carrying the service ``version``."""
    identifier = ctx.key.identifier(Kind.ASSESSMENT_PROVENANCE)
    device: Json = {
        "resourceType": "Device",
        "id": DEVICE_ID,
        "deviceName": [{"name": "fhirnet", "type": "user-friendly-name"}],
        "version": [{"value": version}],
    }
    resource: Json = {
        "resourceType": "Provenance",
        "meta": {"profile": [profile_url(Kind.ASSESSMENT_PROVENANCE.value)]},
        "contained": [device],
        "target": [written.ref for written in targets],
        "recorded": recorded,
        "agent": [
            {
                "type": code(PROVENANCE_PARTICIPANT, "assembler"),
                "who": reference(f"#{DEVICE_ID}"),
            }
        ],
        "entity": [{"role": "source", "what": reference(ctx.response_url)}],
    }
    return Written(resource=resource, identifier=identifier)
