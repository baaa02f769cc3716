"""The example QuestionnaireResponses of ``examples/questionnaire-responses/``.

Each form is an R4 QuestionnaireResponse that the CRF accepts; each patient's forms make a coherent
series; and each patient's answers equal the JSON assessment example of the same patient in
``examples/assessments/``, so extracting the forms must give that request back, a pre-baseline
scan included (``role: pre-baseline``, a form of assessment type ``pre-baseline``, crf.md v2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from fhirnet.fhir.profiles import Catalog, load_catalog
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.web.api_views import assess_document

ROOT = Path(__file__).resolve().parents[2]
FORMS_DIR = ROOT / "examples" / "questionnaire-responses"
ASSESSMENTS_DIR = ROOT / "examples" / "assessments"
QUESTIONNAIRE = "https://fhirnet.dev/fhir/Questionnaire/gep-net-imaging-crf|0.1.0"
SUBMISSION_SYSTEM = "https://fhirnet.dev/fhir/sid/crf-submission"
#: The brief's "now": no example may be dated after it.
TODAY = date(2026, 11, 21)
FILE_NAME = re.compile(r"^(\d{2})-(\d{4}-\d{2}-\d{2})-(pre-baseline|baseline|follow-up)\.json$")

#: Patient folder → the JSON assessment example of the same patient.
PATIENTS = {
    "pancreatic-net-everolimus": "choi-pancreatic-net-everolimus.json",
    "small-bowel-net-prrt": "recist-1.1-small-bowel-net-prrt.json",
    "g3-nec-immunotherapy": "irecist-g3-nec-immunotherapy.json",
}

#: Computed overall response of each follow-up, in date order (the README's table). The last
#: RECIST 1.1 exam is a continuing PR (criteria v2, §2.1 rule 6, D16): SD by the numbers.
EXPECTED_CATEGORIES = {
    "pancreatic-net-everolimus": ["PR", "PR", "SD", "PD"],
    "small-bowel-net-prrt": ["SD", "SD", "PR", "PR", "PR"],
    "g3-nec-immunotherapy": ["iUPD", "iSD", "iSD", "iPR"],
}
#: The tumour growth rate of the patients with a pre-baseline form (criteria.md §7).
EXPECTED_GROWTH_RATES = {
    "g3-nec-immunotherapy": {
        "preTreatmentPctPerMonth": 28.8,
        "onTreatmentPctPerMonth": 40.2,
        "ratio": 1.39,
        "hyperprogression": False,
    },
}

#: The one deliberate reader error (README): a -29.3 % sum change read as PR instead of SD.
DISCORDANCES = {("small-bowel-net-prrt-03", "response-vs-baseline"): ("PR", "SD")}

#: Lesion locations (SNOMED CT) of the examples → the assessment API's ``site``.
SITES = {
    "10200004": "liver",
    "15776009": "pancreas",
    "59441001": "lymph-node",
    "39607008": "lung",
    "272673000": "bone",
    "15425007": "peritoneum",
}

#: Response-criteria codes (NCIt) → the assessment API's ``criteria``.
CRITERIA = {
    "C124415": "recist-1.1",
    "C136711": "irecist",
    "C122394": "choi",
    "C126039": "percist-1.0",
}

#: Response-category codes (NCIt) → the assessment API's categories.
CATEGORIES = {
    "C4870": "CR",
    "C18058": "PR",
    "C18213": "SD",
    "C35571": "PD",
    "C62222": "NE",
    "C142357": "iCR",
    "C142358": "iPR",
    "C142359": "iSD",
    "C142360": "iUPD",
    "C142356": "iCPD",
}

Form = dict[str, Any]
Items = Sequence[Mapping[str, Any]]

FORM_FILES = sorted(FORMS_DIR.glob("*/*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _forms(patient: str) -> list[Form]:
    """The patient's forms in file-name order (NN)."""
    return [_load(path) for path in sorted((FORMS_DIR / patient).glob("*.json"))]


def _follow_ups(patient: str) -> list[Form]:
    return [f for f in _forms(patient) if _one(f["item"], "assessment-type") == "follow-up"]


def _value(answer: Mapping[str, Any]) -> Any:
    """An answer's value; a Coding gives its code."""
    (key,) = (key for key in answer if key.startswith("value"))
    return answer[key]["code"] if key == "valueCoding" else answer[key]


def _answers(items: Items, link_id: str) -> list[Any]:
    return [
        _value(a) for item in items if item["linkId"] == link_id for a in item.get("answer", [])
    ]


def _one(items: Items, link_id: str) -> Any:
    """The single answer of an item, ``None`` when unanswered."""
    values = _answers(items, link_id)
    assert len(values) <= 1, f"{link_id} has {len(values)} answers"
    return values[0] if values else None


def _groups(items: Items, link_id: str) -> Iterator[Items]:
    return (item.get("item", []) for item in items if item["linkId"] == link_id)


def _optional(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _target(items: Items) -> dict[str, Any]:
    return {
        "id": _one(items, "lesion-id"),
        "site": SITES[_one(items, "lesion-location")],
        "nodal": _one(items, "lesion-nodal"),
        **_optional(
            diameterMm=_one(items, "lesion-size"),
            tooSmallToMeasure=_one(items, "lesion-too-small"),
            densityHu=_one(items, "lesion-density"),
            suvMax=_one(items, "lesion-suv-max"),
            sulPeak=_one(items, "lesion-sul-peak"),
        ),
    }


def _non_target(items: Items) -> dict[str, Any]:
    return {
        "id": _one(items, "non-target-lesion.lesion-id"),
        "site": SITES[_one(items, "non-target-lesion.lesion-location")],
        "nodal": _one(items, "non-target-lesion.lesion-nodal"),
        "status": _one(items, "lesion-status"),
    }


def _new_lesion(items: Items) -> dict[str, Any]:
    return {
        "id": _one(items, "new-lesion.lesion-id"),
        "site": SITES[_one(items, "new-lesion.lesion-location")],
        "nodal": _one(items, "new-lesion.lesion-nodal"),
        "modality": _one(items, "lesion-modality"),
        **_optional(
            diameterMm=_one(items, "new-lesion.lesion-size"),
            equivocal=_one(items, "lesion-equivocal"),
        ),
    }


def _pet(items: Items) -> dict[str, Any]:
    return _optional(
        liverSulMean=_one(items, "liver-sul-mean"),
        liverSulSd=_one(items, "liver-sul-sd"),
        bloodPoolSulMean=_one(items, "blood-pool-sul-mean"),
        bloodPoolSulSd=_one(items, "blood-pool-sul-sd"),
        uptakeTimeMin=_one(items, "uptake-time"),
    )


def _timepoint(form: Form) -> dict[str, Any]:
    """The assessment API timepoint that a form's answers describe (contract field names)."""
    items = form["item"]
    timepoint: dict[str, Any] = {"date": _one(items, "imaging-date")}
    if _one(items, "assessment-type") == "pre-baseline":
        timepoint["role"] = "pre-baseline"
    timepoint |= {
        # imaging-procedure codes are the API's modality values by design (fsh/README.md)
        "modalities": _answers(items, "imaging-procedure"),
        "targets": [_target(group) for group in _groups(items, "target-lesion")],
        "nonTargets": [_non_target(group) for group in _groups(items, "non-target-lesion")],
        "newLesions": [_new_lesion(group) for group in _groups(items, "new-lesion")],
    }
    pet = [_pet(group) for group in _groups(items, "pet-reference")]
    if pet and pet[0]:
        timepoint["pet"] = pet[0]
    nodules = _one(items, "intratumoral-nodules")
    if nodules is not None:
        timepoint["intratumoralNodules"] = nodules
    return timepoint


def _expected_timepoints(assessment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON example's timepoints, every one a form, in date order, as a form states them."""
    expected = [dict(tp) for tp in sorted(assessment["timepoints"], key=lambda tp: tp["date"])]
    baseline = next(tp for tp in expected if tp.get("role") != "pre-baseline")
    # The CRF asks for intratumoral nodules at follow-up only (Choi compares with baseline).
    baseline.pop("intratumoralNodules", None)
    return expected


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "profiles")


def test_the_examples_are_the_three_patients_with_one_file_per_exam() -> None:
    assert sorted(p.name for p in FORMS_DIR.iterdir() if p.is_dir()) == sorted(PATIENTS)
    for patient in PATIENTS:
        names = sorted(path.name for path in (FORMS_DIR / patient).glob("*.json"))
        assert len(names) >= 3, patient
        # The baseline is 01; pre-baseline scans come before it (00, ...).
        before = sum(name.endswith("-pre-baseline.json") for name in names)
        for number, name in enumerate(names, start=1 - before):
            match = FILE_NAME.match(name)
            assert match, name
            assert int(match[1]) == number, name


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_parses_as_an_r4_questionnaire_response(path: Path) -> None:
    resource = QuestionnaireResponse.model_validate(_load(path))
    assert resource.get_resource_type() == "QuestionnaireResponse"


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_is_a_valid_response_to_the_crf(path: Path, catalog: Catalog) -> None:
    issues = validate_response(_load(path), catalog, today=TODAY)
    assert [f"{i.expression}: {i.message}" for i in issues if i.is_error] == []
    # Warnings too: the examples answer in the Questionnaire's order with its displays.
    assert [f"{i.severity} {i.expression}: {i.message}" for i in issues] == []


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_header_names_the_crf_the_patient_and_the_exam(path: Path) -> None:
    form = _load(path)
    match = FILE_NAME.match(path.name)
    assert match
    number, imaging_date, assessment_type = match.groups()
    patient = path.parent.name

    assert form["resourceType"] == "QuestionnaireResponse"
    assert form["id"] == f"{patient}-{number}"
    assert form["identifier"]["system"] == SUBMISSION_SYSTEM
    assert form["questionnaire"] == QUESTIONNAIRE
    assert form["status"] == "completed"
    assert form["subject"] == {"reference": f"Patient/{patient}"}
    assert form["author"]["reference"].startswith(("Practitioner/", "Organization/"))
    assert _one(form["item"], "imaging-date") == imaging_date
    assert _one(form["item"], "assessment-type") == assessment_type
    authored = datetime.fromisoformat(form["authored"])
    assert authored.tzinfo is not None
    assert authored.date() == date.fromisoformat(imaging_date) <= TODAY


def test_submission_identifiers_are_distinct() -> None:
    values = [_load(path)["identifier"]["value"] for path in FORM_FILES]
    assert len(values) == len(set(values))


@pytest.mark.parametrize("patient", PATIENTS)
def test_a_patients_forms_are_one_series_from_its_baseline(patient: str) -> None:
    forms = _forms(patient)
    dates = [_one(form["item"], "imaging-date") for form in forms]
    types = [_one(form["item"], "assessment-type") for form in forms]

    assert {form["subject"]["reference"] for form in forms} == {f"Patient/{patient}"}
    assert dates == sorted(set(dates)), "imaging dates must increase strictly"
    first = types.index("baseline")
    assert types == ["pre-baseline"] * first + ["baseline"] + ["follow-up"] * (
        len(forms) - 1 - first
    )
    # Only a follow-up names its baseline and nadir (the items are disabled otherwise).
    for form in forms[: first + 1]:
        assert _one(form["item"], "baseline-date") is None
        assert _one(form["item"], "nadir-date") is None
    for form, imaging_date in zip(forms[first + 1 :], dates[first + 1 :], strict=True):
        assert _one(form["item"], "baseline-date") == dates[first]
        nadir_date = _one(form["item"], "nadir-date")
        assert nadir_date is None or dates[first] <= nadir_date < imaging_date


@pytest.mark.parametrize("patient", PATIENTS)
def test_a_patients_measurements_equal_its_json_assessment_example(patient: str) -> None:
    assessment = _load(ASSESSMENTS_DIR / PATIENTS[patient])
    forms = _forms(patient)

    assert {CRITERIA[_one(form["item"], "response-criteria")] for form in forms} == {
        assessment["criteria"]
    }
    assert [_timepoint(form) for form in forms] == _expected_timepoints(assessment)


@pytest.mark.parametrize("patient", PATIENTS)
def test_reader_answers_agree_with_the_computed_response_except_the_documented_one(
    patient: str,
) -> None:
    computed = assess_document((ASSESSMENTS_DIR / PATIENTS[patient]).read_bytes())
    by_date = {tp["date"]: tp for tp in computed["timepoints"] if "overallResponse" in tp}
    follow_ups = _follow_ups(patient)
    assert [by_date[_one(f["item"], "imaging-date")]["overallResponse"] for f in follow_ups] == (
        EXPECTED_CATEGORIES[patient]
    )

    discordances = {}
    for form in follow_ups:
        timepoint = by_date[_one(form["item"], "imaging-date")]
        assert _one(form["item"], "nadir-date") == timepoint["nadirDate"], form["id"]
        for link_id in ("response-vs-baseline", "response-vs-nadir"):
            reader = CATEGORIES[_one(form["item"], link_id)]
            if reader != timepoint["overallResponse"]:
                discordances[form["id"], link_id] = (reader, timepoint["overallResponse"])
    assert discordances == {
        key: value for key, value in DISCORDANCES.items() if key[0].startswith(f"{patient}-")
    }


@pytest.mark.parametrize("patient", PATIENTS)
def test_the_json_example_gives_the_growth_rate_of_the_pre_baseline_form(patient: str) -> None:
    computed = assess_document((ASSESSMENTS_DIR / PATIENTS[patient]).read_bytes())
    types = [_one(form["item"], "assessment-type") for form in _forms(patient)]

    assert ("pre-baseline" in types) == (patient in EXPECTED_GROWTH_RATES)
    assert computed.get("tumorGrowthRate") == EXPECTED_GROWTH_RATES.get(patient)
