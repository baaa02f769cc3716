"""SDC ``$populate``, pure (fhirnet.fhir.populate): for each criteria's example patient, the next
follow-up after each exam carries exactly what the forms on file say — the baseline targets with
label, location and nodal flag but no size, the non-targets without status, the baseline date, the
nadir so far, the criteria, the therapy type, the modalities used so far and the counted new
lesions without size — and validates against the Questionnaire as an in-progress form whose only
gaps are what the reader must type.

The expectations are read from the example forms themselves (the JSON), never from
fhirnet's reading of them. The PERCIST patient has no example forms: they are written here from
its JSON assessment example (``examples/assessments``), one form per timepoint.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from fhirnet.config import DEFAULT_PROFILES_DIR
from fhirnet.criteria import assess
from fhirnet.fhir.build import ExamResult, exam_results
from fhirnet.fhir.extract import assessment_request, extract_form
from fhirnet.fhir.outcome import IssueType, Severity
from fhirnet.fhir.populate import (
    blank_baseline,
    counted_new_lesions,
    follow_up,
    next_nadir_date,
)
from fhirnet.fhir.profiles import Catalog, load_catalog
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.ports import Json
from tests.submissions import CHOI, IRECIST, RECIST, ROOT, form, form_paths, items

PERCIST = "g3-pancreatic-net-capecitabine-temozolomide"
PERCIST_EXAMPLE = (
    ROOT
    / "examples"
    / "assessments"
    / "percist-1.0-g3-pancreatic-net-capecitabine-temozolomide.json"
)
QUESTIONNAIRE = "https://fhirnet.dev/fhir/Questionnaire/gep-net-imaging-crf|0.1.0"
READER = "Practitioner/reader-1"
TODAY = dt.date(2026, 11, 21)

#: What the reader must type in a pre-filled follow-up: the only required answers it may lack.
READER_TYPES = ("'imaging-date'", "'lesion-status'", "'lesion-modality'")


# -- the PERCIST patient's forms, written from its JSON assessment example --------------------

_SITES = {
    "liver": ("10200004", "Liver"),
    "lymph-node": ("59441001", "Lymph node"),
    "bone": ("272673000", "Bone"),
}
_SNOMED = "http://snomed.info/sct"
_CRF = "https://fhirnet.dev/fhir/CodeSystem/"
_MODALITY_DISPLAY = {"CT": "Contrast-enhanced CT", "FDG-PET": "FDG PET"}


def _coding(system: str, code: str, display: str) -> Json:
    return {"valueCoding": {"system": system, "code": code, "display": display}}


def _answer(link_id: str, *answers: Json) -> Json:
    return {"linkId": link_id, "answer": list(answers)}


def _lesion(prefix: str, lesion: Json) -> list[Json]:
    code, display = _SITES[lesion["site"]]
    return [
        _answer(f"{prefix}lesion-id", {"valueString": lesion["id"]}),
        _answer(f"{prefix}lesion-location", _coding(_SNOMED, code, display)),
        _answer(f"{prefix}lesion-nodal", {"valueBoolean": lesion["nodal"]}),
    ]


def percist_form(number: int) -> Json:
    """The PERCIST patient's form ``number`` (1 = the baseline), from the JSON example."""
    timepoints = json.loads(PERCIST_EXAMPLE.read_text(encoding="utf-8"))["timepoints"]
    point = timepoints[number - 1]
    baseline = timepoints[0]["date"]
    kind = "baseline" if number == 1 else "follow-up"
    item: list[Json] = [
        _answer("imaging-date", {"valueDate": point["date"]}),
        _answer("assessment-type", _coding(_CRF + "assessment-type", kind, kind.capitalize())),
        _answer(
            "imaging-procedure",
            *(
                _coding(_CRF + "imaging-procedure", m, _MODALITY_DISPLAY[m])
                for m in point["modalities"]
            ),
        ),
    ]
    if number > 1:
        item.append(_answer("baseline-date", {"valueDate": baseline}))
    item += [
        _answer("therapy-type", _coding(_CRF + "therapy-type", "cytotoxic", "Cytotoxic")),
        _answer(
            "response-criteria",
            _coding(
                "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
                "C126039",
                "PET Response Criteria in Solid Tumors",
            ),
        ),
    ]
    for target in point["targets"]:
        measured = [_answer("lesion-size", {"valueDecimal": target["diameterMm"]})]
        if "suvMax" in target:
            measured.append(_answer("lesion-suv-max", {"valueDecimal": target["suvMax"]}))
        measured.append(_answer("lesion-sul-peak", {"valueDecimal": target["sulPeak"]}))
        item.append({"linkId": "target-lesion", "item": [*_lesion("", target), *measured]})
    for lesion in point["nonTargets"]:
        status = lesion["status"]
        item.append(
            {
                "linkId": "non-target-lesion",
                "item": [
                    *_lesion("non-target-lesion.", lesion),
                    _answer(
                        "lesion-status",
                        _coding(_CRF + "non-target-status", status, status.capitalize()),
                    ),
                ],
            }
        )
    pet = point["pet"]
    item.append(
        {
            "linkId": "pet-reference",
            "item": [
                _answer("liver-sul-mean", {"valueDecimal": pet["liverSulMean"]}),
                _answer("liver-sul-sd", {"valueDecimal": pet["liverSulSd"]}),
                _answer("uptake-time", {"valueInteger": pet["uptakeTimeMin"]}),
            ],
        }
    )
    return {
        "resourceType": "QuestionnaireResponse",
        "identifier": {
            "system": "https://fhirnet.dev/fhir/sid/crf-submission",
            "value": f"{PERCIST}-{number:02d}",
        },
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "subject": {"reference": f"Patient/{PERCIST}"},
        "authored": f"{point['date']}T16:00:00+01:00",
        "author": {"reference": "Practitioner/reader-nuclear-medicine"},
        "item": item,
    }


PERCIST_EXAMS = len(json.loads(PERCIST_EXAMPLE.read_text(encoding="utf-8"))["timepoints"])


def example_form(patient: str, number: int) -> Json:
    """Form ``number`` of any criteria's example patient (0: a pre-baseline scan)."""
    return percist_form(number) if patient == PERCIST else form(patient, number)


def exam_count(patient: str) -> int:
    return PERCIST_EXAMS if patient == PERCIST else len(form_paths(patient))


def forms_up_to(patient: str, last: int) -> list[Json]:
    """The patient's forms up to ``last``, the pre-baseline scan first when there is one."""
    first = 0 if patient == IRECIST else 1
    return [example_form(patient, n) for n in range(first, last + 1)]


def assessed(forms: Sequence[Json]) -> list[ExamResult]:
    """What the submissions of ``forms`` give: one timeline, assessed by the domain."""
    read = [extract_form(f) for f in forms]
    criteria = max(read, key=lambda f: f.imaging_date).criteria
    return list(exam_results(read, assess(assessment_request(read, criteria))))


#: Every criteria's patient after each of its follow-ups (and after the baseline alone).
CASES = [
    pytest.param(patient, last, id=f"{patient}-after-{last:02d}")
    for patient in (RECIST, IRECIST, CHOI, PERCIST)
    for last in range(1, exam_count(patient) + 1)
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_PROFILES_DIR)


# -- what the forms say, read from their JSON ---------------------------------------------------


def answers(resource: Json, link_id: str) -> list[Any]:
    found = items(resource, link_id)
    return [value for item in found for a in item.get("answer", []) for value in a.values()]


def child(group: Json, link_id: str) -> list[Any]:
    return [
        value
        for item in group.get("item", [])
        if item["linkId"] == link_id
        for a in item.get("answer", [])
        for value in a.values()
    ]


def lesions(resource: Json, group: str, prefix: str = "") -> list[tuple[Any, ...]]:
    """(label, location, nodal) of each lesion of ``group``, in order."""
    return [
        (
            child(g, f"{prefix}lesion-id"),
            child(g, f"{prefix}lesion-location"),
            child(g, f"{prefix}lesion-nodal"),
        )
        for g in items(resource, group)
    ]


def exam_date(resource: Json) -> str:
    return str(answers(resource, "imaging-date")[0])


def smallest_sum_date(forms: Sequence[Json]) -> str:
    """The date of the smallest sum of target sizes so far (baseline included, ties to the
    earliest; an exam with a target without size has no sum)."""
    best: tuple[Decimal, str] | None = None
    for resource in forms:
        sizes = [child(g, "lesion-size") for g in items(resource, "target-lesion")]
        if any(not s for s in sizes):
            continue
        total = sum((Decimal(str(s[0])) for s in sizes), Decimal(0))
        if best is None or total < best[0]:
            best = (total, exam_date(resource))
    assert best is not None
    return best[1]


def assessment_forms(forms: Sequence[Json]) -> list[Json]:
    """The baseline and follow-up forms (not a pre-baseline scan)."""
    return [f for f in forms if answers(f, "assessment-type")[0]["code"] != "pre-baseline"]


# -- the pre-filled follow-up of each criteria's patient ---------------------------------------


@pytest.mark.parametrize(("patient", "last"), CASES)
def test_the_next_follow_up_carries_what_the_forms_on_file_say(patient: str, last: int) -> None:
    forms = forms_up_to(patient, last)
    on_file = assessment_forms(forms)
    baseline, latest = on_file[0], on_file[-1]

    response = follow_up(
        assessed(forms), questionnaire=QUESTIONNAIRE, subject=f"Patient/{patient}", author=READER
    )

    assert response["resourceType"] == "QuestionnaireResponse"
    assert response["status"] == "in-progress"
    assert response["subject"] == {"reference": f"Patient/{patient}"}
    assert response["author"] == {"reference": READER}
    assert response["questionnaire"] == QUESTIONNAIRE
    assert [a["code"] for a in answers(response, "assessment-type")] == ["follow-up"]
    assert answers(response, "imaging-date") == []  # the new exam's: the reader's to type
    # Every baseline target, labelled and located as at baseline, nothing measured.
    assert lesions(response, "target-lesion") == lesions(baseline, "target-lesion")
    for group in items(response, "target-lesion"):
        assert [i["linkId"] for i in group["item"]] == [
            "lesion-id",
            "lesion-location",
            "lesion-nodal",
        ]
    # The non-targets, without a status.
    prefix = "non-target-lesion."
    assert lesions(response, "non-target-lesion", prefix) == lesions(
        baseline, "non-target-lesion", prefix
    )
    for group in items(response, "non-target-lesion"):
        assert child(group, "lesion-status") == []
    assert answers(response, "baseline-date") == [exam_date(baseline)]
    assert answers(response, "nadir-date") == [smallest_sum_date(on_file)]
    assert answers(response, "response-criteria") == answers(latest, "response-criteria")
    assert answers(response, "therapy-type") == answers(latest, "therapy-type")
    used = list(dict.fromkeys(c["code"] for f in on_file for c in answers(f, "imaging-procedure")))
    assert [c["code"] for c in answers(response, "imaging-procedure")] == used
    # No example counts a new lesion (the RECIST patient's last one is equivocal).
    assert items(response, "new-lesion") == []
    # Nothing of the reader's conclusion or of the risk group is carried over.
    for link_id in ("response-vs-baseline", "response-vs-nadir", "risk", "pet-reference"):
        assert items(response, link_id) == []


@pytest.mark.parametrize(("patient", "last"), CASES)
def test_the_pre_filled_follow_up_validates_lacking_only_what_the_reader_types(
    patient: str, last: int, catalog: Catalog
) -> None:
    response = follow_up(
        assessed(forms_up_to(patient, last)),
        questionnaire=QUESTIONNAIRE,
        subject=f"Patient/{patient}",
    )

    issues = validate_response(response, catalog, today=TODAY)

    assert [i for i in issues if i.severity is not Severity.WARNING] == []
    for issue in issues:
        assert issue.code is IssueType.REQUIRED, issue
        assert any(name in issue.message for name in READER_TYPES), issue
    assert "author" not in response  # none given: none set


def test_the_recist_nadir_moves_to_the_smallest_sum_and_stays_there() -> None:
    # Sums 92 (baseline) → 82 → 65 → 60 (2025-10-13, the nadir) → 62 → 67 mm.
    dates = [
        next_nadir_date([extract_form(f) for f in forms_up_to(RECIST, last)])
        for last in range(1, 7)
    ]

    assert [d.isoformat() for d in dates] == [
        "2025-01-13",
        "2025-04-14",
        "2025-07-14",
        "2025-10-13",
        "2025-10-13",
        "2025-10-13",
    ]


def test_the_nadir_ties_go_to_the_earliest_exam() -> None:
    later = form(RECIST, 2)
    for group in items(later, "target-lesion"):  # the baseline's sizes again: the same sum
        lesion_id = child(group, "lesion-id")[0]
        (baseline_group,) = (
            g
            for g in items(form(RECIST, 1), "target-lesion")
            if child(g, "lesion-id") == [lesion_id]
        )
        for answer in group["item"]:
            if answer["linkId"] == "lesion-size":
                answer["answer"] = copy.deepcopy(child_answer(baseline_group, "lesion-size"))

    nadir = next_nadir_date([extract_form(form(RECIST, 1)), extract_form(later)])

    assert nadir == dt.date(2025, 1, 13)


def child_answer(group: Json, link_id: str) -> list[Json]:
    (item,) = (i for i in group["item"] if i["linkId"] == link_id)
    answer: list[Json] = item["answer"]
    return answer


# -- new lesions ---------------------------------------------------------------------------------


def with_new_lesion(
    resource: Json, lesion_id: str, size: float, *, equivocal: bool = False
) -> Json:
    """``resource`` with a new lesion in the liver (after its non-targets), seen on CT."""
    changed = copy.deepcopy(resource)
    children: list[Json] = [
        _answer("new-lesion.lesion-id", {"valueString": lesion_id}),
        _answer("new-lesion.lesion-location", _coding(_SNOMED, "10200004", "Liver")),
        _answer("new-lesion.lesion-nodal", {"valueBoolean": False}),
        _answer("new-lesion.lesion-size", {"valueDecimal": size}),
        _answer(
            "lesion-modality",
            _coding(_CRF + "imaging-procedure", "CT", "Contrast-enhanced CT"),
        ),
    ]
    if equivocal:
        children.append(_answer("lesion-equivocal", {"valueBoolean": True}))
    group = {"linkId": "new-lesion", "item": children}
    last = max(i for i, item in enumerate(changed["item"]) if item["linkId"] == "non-target-lesion")
    changed["item"].insert(last + 1, group)
    return changed


def test_irecist_new_lesions_already_counted_are_pre_filled_to_be_measured_again(
    catalog: Catalog,
) -> None:
    forms = forms_up_to(IRECIST, 3)
    forms[2] = with_new_lesion(forms[2], "N1", 14.0)  # the first follow-up (2025-04-28)
    forms[3] = with_new_lesion(forms[3], "N1", 12.0)

    response = follow_up(assessed(forms), questionnaire=QUESTIONNAIRE, subject=f"Patient/{IRECIST}")

    (group,) = items(response, "new-lesion")
    assert [i["linkId"] for i in group["item"]] == [
        "new-lesion.lesion-id",
        "new-lesion.lesion-location",
        "new-lesion.lesion-nodal",
    ]
    assert child(group, "new-lesion.lesion-id") == ["N1"]
    assert child(group, "new-lesion.lesion-location")[0]["code"] == "10200004"
    assert child(group, "new-lesion.lesion-nodal") == [False]
    issues = validate_response(response, catalog, today=TODAY)
    assert [i for i in issues if i.severity is not Severity.WARNING] == []
    assert any("'lesion-modality'" in i.message for i in issues)


def test_a_new_lesion_seen_at_an_earlier_follow_up_only_is_still_counted() -> None:
    forms = forms_up_to(IRECIST, 4)
    forms[2] = with_new_lesion(forms[2], "N1", 14.0)

    assert counted_new_lesions(assessed(forms), assessed(forms)[-1].criteria) == ["N1"]


def test_an_equivocal_new_lesion_is_not_pre_filled_until_it_is_confirmed() -> None:
    forms = forms_up_to(IRECIST, 3)
    forms[3] = with_new_lesion(forms[3], "N1", 12.0, equivocal=True)

    response = follow_up(assessed(forms), questionnaire=QUESTIONNAIRE, subject=f"Patient/{IRECIST}")

    assert items(response, "new-lesion") == []


def test_a_new_lesion_of_a_recist_patient_counts_with_the_recist_rules() -> None:
    forms = forms_up_to(RECIST, 3)
    forms[2] = with_new_lesion(forms[2], "N7", 16.0)

    response = follow_up(assessed(forms), questionnaire=QUESTIONNAIRE, subject=f"Patient/{RECIST}")

    assert [child(g, "new-lesion.lesion-id") for g in items(response, "new-lesion")] == [["N7"]]


# -- a patient without forms ---------------------------------------------------------------------


def test_a_patient_without_forms_gets_a_blank_baseline(catalog: Catalog) -> None:
    response = blank_baseline(questionnaire=QUESTIONNAIRE, subject="Patient/new", author=READER)

    assert response == {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE,
        "status": "in-progress",
        "subject": {"reference": "Patient/new"},
        "author": {"reference": READER},
        "item": [
            {
                "linkId": "assessment-type",
                "answer": [
                    {
                        "valueCoding": {
                            "system": "https://fhirnet.dev/fhir/CodeSystem/assessment-type",
                            "code": "baseline",
                            "display": "Baseline",
                        }
                    }
                ],
            }
        ],
    }
    issues = validate_response(response, catalog, today=TODAY)
    assert [i for i in issues if i.severity is not Severity.WARNING] == []


def test_a_timeline_without_its_baseline_is_refused() -> None:
    follow_ups = [r for r in assessed(forms_up_to(RECIST, 3)) if r.assessment is not None]
    with pytest.raises(ValueError, match="baseline"):
        follow_up(follow_ups, questionnaire=QUESTIONNAIRE, subject=f"Patient/{RECIST}")


def test_the_percist_forms_written_here_are_valid_completed_forms(catalog: Catalog) -> None:
    for number in range(1, PERCIST_EXAMS + 1):
        issues = validate_response(percist_form(number), catalog, today=TODAY)
        assert issues == [], issues
