"""QuestionnaireResponse → domain (``fhirnet.fhir.extract``).

The central check is the product contract of ``assessment-api.md``: the FHIR path must produce
exactly the same categories and figures as the JSON endpoint for the same measurements. Each
example patient's forms are extracted, assessed, and compared with the assessment of the JSON
example of the same patient (``examples/questionnaire-responses/README.md``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhirnet.criteria import (
    Criteria,
    Differentiation,
    FunctionalStatus,
    IntratumoralNodules,
    Men1Status,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    PetReference,
    PrimarySite,
    Response,
    RiskFactors,
    Syndrome,
    TargetLesion,
    TimePointRole,
    assess,
)
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.crf_codes import (
    CRITERIA,
    LESION_SITES,
    MODALITIES,
    NODAL_LOCATIONS,
    RESPONSE_CATEGORIES,
    AssessmentType,
)
from fhirnet.fhir.datatypes import NCIT, SNOMED, Coding
from fhirnet.fhir.extract import ExamForm, assessment_request, extract_form
from fhirnet.fhir.identifiers import CRF_SUBMISSION, Identifier
from fhirnet.fhir.profiles import Catalog
from fhirnet.web.assessment_schemas import load_request
from tests.fhir import builders
from tests.fhir.builders import (
    CATALOG,
    boolean,
    coding,
    date,
    decimal,
    group,
    integer,
    question,
    response,
    string,
)

ROOT = Path(__file__).resolve().parents[2]
FORMS_DIR = ROOT / "examples" / "questionnaire-responses"
ASSESSMENTS_DIR = ROOT / "examples" / "assessments"

#: Patient folder → the JSON assessment example of the same patient.
PATIENTS = {
    "pancreatic-net-everolimus": "choi-pancreatic-net-everolimus.json",
    "small-bowel-net-prrt": "recist-1.1-small-bowel-net-prrt.json",
    "g3-nec-immunotherapy": "irecist-g3-nec-immunotherapy.json",
}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _forms(patient: str) -> list[ExamForm]:
    return [extract_form(_load(path)) for path in sorted((FORMS_DIR / patient).glob("*.json"))]


# -- the FHIR path equals the JSON path -----------------------------------------------------------


@pytest.mark.parametrize("patient", PATIENTS)
def test_forms_give_the_json_endpoints_categories_and_figures(patient: str) -> None:
    request = load_request(_load(ASSESSMENTS_DIR / PATIENTS[patient]))
    from_json = assess(request)
    forms = _forms(patient)

    from_forms = assess(assessment_request(forms, forms[-1].criteria))

    assert from_forms.criteria == from_json.criteria
    # Every follow-up: categories, sums, nadir, changes, criteria figures and reasons.
    assert from_forms.timepoints == from_json.timepoints
    # The pre-baseline form (crf.md v2) gives the same growth rate as the JSON's pre-baseline scan.
    assert from_forms.tumor_growth_rate == from_json.tumor_growth_rate
    assert from_forms.warnings == from_json.warnings


@pytest.mark.parametrize("patient", PATIENTS)
def test_with_the_same_options_the_whole_assessment_is_the_json_endpoints(patient: str) -> None:
    request = load_request(_load(ASSESSMENTS_DIR / PATIENTS[patient]))
    forms = _forms(patient)

    from_forms = assess(assessment_request(forms, forms[-1].criteria, options=request.options))

    assert from_forms == assess(request)


@pytest.mark.parametrize("patient", PATIENTS)
def test_each_form_is_the_json_examples_timepoint(patient: str) -> None:
    request = load_request(_load(ASSESSMENTS_DIR / PATIENTS[patient]))
    expected = sorted(request.timepoints, key=lambda t: t.date)
    timepoints = [form.timepoint() for form in _forms(patient)]
    # The CRF asks for intratumoral nodules at Choi follow-ups only; the JSON baseline says none.
    first = next(i for i, tp in enumerate(expected) if tp.role is TimePointRole.ASSESSMENT)
    expected[first] = dataclasses.replace(expected[first], intratumoral_nodules=None)
    assert timepoints == expected


# -- one form, field by field ---------------------------------------------------------------------


def test_a_baseline_form_with_its_risk_group() -> None:
    form = extract_form(_load(FORMS_DIR / "small-bowel-net-prrt" / "01-2025-01-13-baseline.json"))

    assert form.response_id == "small-bowel-net-prrt-01"
    assert form.identifier == Identifier(system=CRF_SUBMISSION, value="small-bowel-net-prrt-01")
    assert form.subject == "Patient/small-bowel-net-prrt"
    assert form.questionnaire == "https://fhirnet.dev/fhir/Questionnaire/gep-net-imaging-crf|0.1.0"
    assert (form.status, form.authored) == ("completed", "2025-01-13T18:15:00+01:00")
    assert form.author == "Practitioner/reader-nuclear-radiology"
    assert form.imaging_date.isoformat() == "2025-01-13"
    assert form.assessment_type is AssessmentType.BASELINE
    assert (form.baseline_date, form.nadir_date) == (None, None)
    assert form.criteria is Criteria.RECIST_1_1
    assert form.modalities == (Modality.CT, Modality.SSTR_PET)
    assert form.targets[0] == TargetLesion(
        id="T1",
        site="liver",
        nodal=False,
        diameter_mm=Decimal("42.0"),
        density_hu=Decimal("96"),
        suv_max=Decimal("38.2"),
    )
    assert form.targets[2].nodal
    assert form.targets[2].site == "lymph-node"
    assert form.location("T3") == Coding(system=SNOMED, code="59441001", display="Lymph node")
    assert form.non_targets == (
        NonTargetLesion(id="NT1", site="bone", status=NonTargetStatus.PRESENT),
        NonTargetLesion(id="NT2", site="peritoneum", status=NonTargetStatus.PRESENT),
    )
    assert (form.new_lesions, form.pet, form.intratumoral_nodules) == ((), None, None)
    assert (form.response_vs_baseline, form.response_vs_nadir) == (None, None)
    assert form.risk == RiskFactors(
        primary_site=PrimarySite.JEJUNUM_ILEUM,
        functional_status=FunctionalStatus.FUNCTIONING,
        syndromes=(Syndrome.CARCINOID_SYNDROME,),
        men1=Men1Status.NO,
        differentiation=Differentiation.WELL,
        ki67_pct=Decimal("5"),
        mitoses_per_2mm2=Decimal("2"),
        krenning_score=4,
        fdg_avid=False,
    )
    assert form.response["id"] == "small-bowel-net-prrt-01"  # kept as received


def test_a_follow_up_with_the_readers_conclusion_and_an_equivocal_new_lesion() -> None:
    form = extract_form(_load(FORMS_DIR / "small-bowel-net-prrt" / "06-2026-04-13-follow-up.json"))

    assert form.assessment_type is AssessmentType.FOLLOW_UP
    assert (str(form.baseline_date), str(form.nadir_date)) == ("2025-01-13", "2025-10-13")
    # The group's linkId prefix ("new-lesion.lesion-id") is stripped on reading.
    assert form.new_lesions == (
        NewLesion(id="N1", site="liver", modality=Modality.SSTR_PET, equivocal=True),
    )
    assert form.non_targets[1].status is NonTargetStatus.ABSENT
    # A continuing PR (criteria v2 §2.1 rule 6), as the RECIST working group has readers record it.
    assert (form.response_vs_baseline, form.response_vs_nadir) == (Response.PR, Response.PR)
    assert form.risk is None


def test_the_documented_discordant_reader_answer_is_read_as_given() -> None:
    form = extract_form(_load(FORMS_DIR / "small-bowel-net-prrt" / "03-2025-07-14-follow-up.json"))
    assert (form.response_vs_baseline, form.response_vs_nadir) == (Response.PR, Response.SD)


def test_choi_follow_up_reads_the_intratumoral_nodules() -> None:
    form = extract_form(
        _load(FORMS_DIR / "pancreatic-net-everolimus" / "05-2026-01-26-follow-up.json")
    )
    assert form.criteria is Criteria.CHOI
    assert form.intratumoral_nodules is IntratumoralNodules.ENLARGING


def test_irecist_reader_codes_are_the_irecist_categories() -> None:
    form = extract_form(_load(FORMS_DIR / "g3-nec-immunotherapy" / "02-2025-04-28-follow-up.json"))
    assert form.criteria is Criteria.IRECIST
    assert form.response_vs_baseline is Response.IUPD


def test_the_builders_follow_up_reads_pet_reference_and_every_item() -> None:
    form = extract_form(builders.follow_up())

    assert form.pet == PetReference(
        liver_sul_mean=Decimal("2.1"),
        liver_sul_sd=Decimal("0.25"),
        blood_pool_sul_mean=Decimal("1.6"),
        blood_pool_sul_sd=Decimal("0.2"),
        uptake_time_min=Decimal("62"),
    )
    assert form.new_lesions == (
        NewLesion(id="N1", site="liver", modality=Modality.CT, diameter_mm=Decimal("8")),
    )
    assert form.identifier is None  # the builders' responses have none
    assert form.risk is not None
    assert form.risk.ki67_pct == Decimal("4.5")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (decimal(24.5), Decimal("24.5")),
        (decimal(9.8), Decimal("9.8")),  # the shortest repr, not the binary expansion
        (decimal(42.0), Decimal("42.0")),  # keeps its decimal place, as the JSON API does
        (decimal(96), Decimal("96")),
        (decimal(-0.0), Decimal("0.0")),  # a zero has no sign (no "-0.0 mm" in reasons)
        ({"valueDecimal": Decimal("12.50")}, Decimal("12.50")),  # parse_float=Decimal input
    ],
    ids=["decimal", "float-repr", "trailing-zero", "integer", "negative-zero", "Decimal"],
)
def test_numbers_are_exact_decimals_as_the_json_api_reads_them(
    answer: dict[str, Any], expected: Decimal
) -> None:
    form = extract_form(_with_target(question("lesion-size", answer)))
    size = form.targets[0].diameter_mm
    assert size == expected
    assert str(size) == str(expected)


def test_a_lymph_node_location_is_nodal_when_the_form_does_not_say() -> None:
    target = group(
        "target-lesion",
        question("lesion-id", string("T1")),
        question("lesion-location", coding("lesion-location", "Retroperitoneal lymph node")),
        question("lesion-size", decimal(16)),
    )
    form = extract_form(_baseline(target))
    assert form.targets[0].nodal
    assert form.targets[0].site == "lymph-node"


def test_an_empty_pet_reference_group_is_no_reference() -> None:
    form = extract_form(
        _baseline(builders.target_lesion("T1", "Liver", size=20), group("pet-reference"))
    )
    assert form.pet is None
    form = extract_form(
        _baseline(
            builders.target_lesion("T1", "Liver", size=20),
            group("pet-reference", question("liver-sul-mean", decimal(2.0))),
        )
    )
    assert form.pet == PetReference(liver_sul_mean=Decimal("2.0"))


def test_too_small_to_measure_is_read() -> None:
    form = extract_form(_with_target(question("lesion-too-small", boolean(True))))
    assert form.targets[0].too_small_to_measure
    assert form.targets[0].diameter_mm is None


def test_every_unreadable_answer_is_reported_at_once() -> None:
    resource = response(
        question("assessment-type", coding("assessment-type", "baseline")),
        question("response-criteria", {"valueCoding": {"system": NCIT, "code": "C00000"}}),
        group(
            "target-lesion",
            question("lesion-id", string("T1")),
            question("lesion-location", {"valueCoding": {"system": SNOMED, "code": "1"}}),
            question("lesion-size", {"valueDecimal": "12"}),
        ),
        group(
            "risk", question("krenning-score", integer(3)), question("men1", coding("men1", "Y"))
        ),
    )

    with pytest.raises(InvalidInputError) as raised:
        extract_form(resource)

    assert [(e.path, e.message.split(" ")[0]) for e in raised.value.errors] == [
        (("item", "imaging-date"), "'imaging-date'"),
        (("item", "response-criteria"), "'response-criteria':"),
        (("item", "lesion-location"), "http://snomed.info/sct#1"),
        (("item", "lesion-size"), "'lesion-size'"),
    ]


def test_assessment_request_uses_the_given_criteria_and_options() -> None:
    forms = _forms("small-bowel-net-prrt")
    request = assessment_request(forms, Criteria.IRECIST)
    assert request.criteria is Criteria.IRECIST
    assert [tp.date for tp in request.timepoints] == [f.imaging_date for f in forms]
    assert request.options == Options()


# -- the code tables agree with the package -------------------------------------------------------


def _expansion(catalog: Catalog, value_set: str) -> dict[tuple[str, str], str | None]:
    url = f"https://fhirnet.dev/fhir/ValueSet/{value_set}"
    return {(c.system, c.code): c.display for c in catalog.expand(url)}


@pytest.mark.parametrize(
    ("table", "value_set"),
    [(CRITERIA, "response-criteria"), (RESPONSE_CATEGORIES, "response-category")],
    ids=["criteria", "response-category"],
)
def test_ncit_tables_are_their_value_sets_with_the_same_displays(
    table: Mapping[Any, Coding], value_set: str
) -> None:
    expansion = _expansion(CATALOG, value_set)
    assert {(c.system, c.code): c.display for c in table.values()} == expansion


def test_response_codes_map_to_the_category_their_cdisc_designation_names() -> None:
    vs = CATALOG.by_url("https://fhirnet.dev/fhir/ValueSet/response-category")
    assert vs is not None
    designations = {
        concept["code"]: concept["designation"][0]["value"]
        for include in vs["compose"]["include"]
        for concept in include["concept"]
    }
    assert {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()} == (
        designations
    )


def test_imaging_procedure_codes_are_the_modalities_except_us() -> None:
    expansion = _expansion(CATALOG, "imaging-procedure")
    assert {(c.system, c.code): c.display for c in MODALITIES.values()} == expansion
    assert {m.value for m in MODALITIES} == {m.value for m in Modality} - {"US"}
    assert all(coding.code == modality.value for modality, coding in MODALITIES.items())


def test_every_lesion_location_has_a_site_and_every_lymph_node_is_nodal() -> None:
    expansion = _expansion(CATALOG, "lesion-location")
    assert {code for _, code in expansion} == set(LESION_SITES)
    lymph_nodes = {
        code for (_, code), display in expansion.items() if "lymph node" in str(display).lower()
    }
    assert lymph_nodes == set(NODAL_LOCATIONS) == {"59441001", "279795009", "91394001"}
    # The examples' sites are the JSON examples' sites.
    assert LESION_SITES["10200004"] == "liver"
    assert LESION_SITES["39607008"] == "lung"


# -- helpers --------------------------------------------------------------------------------------


def _baseline(*items: dict[str, Any]) -> dict[str, Any]:
    return response(
        question("imaging-date", date("2025-01-15")),
        question("assessment-type", coding("assessment-type", "baseline")),
        question("imaging-procedure", coding("imaging-procedure", "CT")),
        question("response-criteria", coding("response-criteria", "C124415")),
        *items,
    )


def _with_target(*answers: dict[str, Any]) -> dict[str, Any]:
    return _baseline(
        group(
            "target-lesion",
            question("lesion-id", string("T1")),
            question("lesion-location", coding("lesion-location", "Liver")),
            question("lesion-nodal", boolean(False)),
            *answers,
        )
    )


def test_a_pre_baseline_form_is_a_pre_baseline_timepoint() -> None:
    form = extract_form(
        _load(FORMS_DIR / "g3-nec-immunotherapy" / "00-2025-01-20-pre-baseline.json")
    )

    assert form.assessment_type is AssessmentType.PRE_BASELINE
    assert form.pre_baseline
    assert (form.baseline_date, form.nadir_date, form.new_lesions) == (None, None, ())
    timepoint = form.timepoint()
    assert timepoint.role is TimePointRole.PRE_BASELINE
    assert [(t.id, t.diameter_mm) for t in timepoint.targets] == [
        ("T1", Decimal("40.0")),
        ("T2", Decimal("27.0")),
        ("T3", Decimal("22.0")),
    ]


def test_the_non_target_status_increased_is_read() -> None:
    resource = _load(FORMS_DIR / "g3-nec-immunotherapy" / "03-2025-06-23-follow-up.json")
    (group,) = [item for item in resource["item"] if item["linkId"] == "non-target-lesion"]
    (status,) = [item for item in group["item"] if item["linkId"] == "lesion-status"]
    status["answer"] = [
        {
            "valueCoding": {
                "system": "https://fhirnet.dev/fhir/CodeSystem/non-target-status",
                "code": "increased",
                "display": "Increased",
            }
        }
    ]

    form = extract_form(resource)

    assert form.non_targets[0].status is NonTargetStatus.INCREASED
