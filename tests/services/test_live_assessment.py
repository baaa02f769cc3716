"""The live assessment of a form being typed: a dry run of the submission against the real
embedded store — the figures, categories, reasons and discordances the submission would write,
what is still missing, and nothing written but the AuditEvent of the read."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from fhirnet.criteria.models import Criteria, Response
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.ports import Json
from fhirnet.services import Context, submit
from fhirnet.services.live_assessment import (
    DRAFT_SYSTEM,
    Discordance,
    LiveAssessment,
    assess_live,
    item_path,
)
from tests.submissions import (
    CHOI,
    IRECIST,
    RECIST,
    WRITTEN,
    RecordingStore,
    counts,
    form,
    form_paths,
    items,
    set_answer,
    target,
)

CATEGORY_CODES = {coding.code: response for response, coding in RESPONSE_CATEGORIES.items()}
#: The RECIST patient's exam of 2025-07-14 (CT + SSTR-PET, as at baseline): its targets T1-T3
#: had 42 + 28 + 22 = 92 mm at baseline.
FOLLOW_UP = 3


def typed(sizes: dict[str, float], *, status: str = "in-progress") -> Json:
    """The follow-up as the page has it: the given target sizes, the reader's conclusion of the
    example (response-vs-baseline PR, response-vs-nadir SD), not yet signed."""
    resource = form(RECIST, FOLLOW_UP)
    resource["status"] = status
    for lesion_id, size in sizes.items():
        set_answer(target(resource, lesion_id), "lesion-size", "valueDecimal", size)
    return resource


def new_lesion(resource: Json, lesion_id: str = "N1") -> Json:
    """``resource`` with an unequivocal new liver lesion on CT."""
    changed = copy.deepcopy(resource)
    group = {
        "linkId": "new-lesion",
        "item": [
            {"linkId": "new-lesion.lesion-id", "answer": [{"valueString": lesion_id}]},
            {
                "linkId": "new-lesion.lesion-location",
                "answer": [
                    {
                        "valueCoding": {
                            "system": "http://snomed.info/sct",
                            "code": "10200004",
                            "display": "Liver",
                        }
                    }
                ],
            },
            {"linkId": "new-lesion.lesion-nodal", "answer": [{"valueBoolean": False}]},
            {
                "linkId": "lesion-modality",
                "answer": [
                    {
                        "valueCoding": {
                            "system": "https://fhirnet.dev/fhir/CodeSystem/imaging-procedure",
                            "code": "CT",
                            "display": "Contrast-enhanced CT",
                        }
                    }
                ],
            },
            {"linkId": "lesion-equivocal", "answer": [{"valueBoolean": False}]},
        ],
    }
    position = max(i for i, item in enumerate(changed["item"]) if item["linkId"].endswith("lesion"))
    changed["item"].insert(position + 1, group)
    return changed


def stored_versions(store: RecordingStore) -> set[tuple[str, str, str]]:
    """Every resource of a type fhirnet writes, with its version."""
    return {
        (kind, resource["id"], resource["meta"]["versionId"])
        for kind in WRITTEN
        for resource in store.inner.search(kind, {})
    }


@pytest.fixture
def with_baseline(context: Context) -> Context:
    """The RECIST patient's baseline stored, as submitted."""
    submit(form(RECIST, 1), context)
    return context


def test_sizes_that_shrink_the_sum_by_30_percent_give_pr_with_the_numbers(
    with_baseline: Context,
) -> None:
    found = assess_live(typed({"T1": 30.0, "T2": 20.0, "T3": 14.0}), with_baseline)

    assert found.assessable
    assert found.missing == ()
    assert found.criteria is Criteria.RECIST_1_1
    assert (found.sum_mm, found.baseline_sum_mm, found.nadir_sum_mm) == (
        Decimal(64),
        Decimal(92),
        Decimal(92),
    )
    assert found.change_from_baseline_pct == Decimal("-30.4")
    assert found.change_from_nadir_pct == Decimal("-30.4")
    assert (found.target_response, found.non_target_response) == (
        Response.PR,
        Response.NON_CR_NON_PD,
    )
    assert (found.new_lesion_response, found.overall) == ("absent", Response.PR)
    assert found.reasons
    assert any("30" in reason for reason in found.reasons)


def test_the_same_form_edited_goes_from_pr_to_sd_to_pd_as_the_sizes_change(
    with_baseline: Context,
) -> None:
    edits = [
        ({"T1": 30.0, "T2": 20.0, "T3": 14.0}, Response.PR, 64, "-30.4"),
        ({"T1": 30.0, "T2": 20.0, "T3": 15.0}, Response.SD, 65, "-29.3"),  # 1 mm short of PR
        ({"T1": 50.0, "T2": 35.0, "T3": 26.0}, Response.PD, 111, "20.7"),  # +19 mm, +20.7 %
    ]
    for sizes, overall, total, change in edits:
        found = assess_live(typed(sizes), with_baseline)

        assert (found.overall, found.sum_mm) == (overall, Decimal(total))
        assert found.change_from_baseline_pct == Decimal(change)
        assert found.change_from_nadir_pct == Decimal(change)  # the nadir is the baseline


def test_pd_needs_five_millimetres_as_well_as_twenty_percent_over_the_nadir(
    with_baseline: Context,
) -> None:
    # 110 mm is +19.6 % over the 92 mm nadir: SD; 111 mm (+20.7 %, +19 mm) is PD.
    below = assess_live(typed({"T1": 50.0, "T2": 35.0, "T3": 25.0}), with_baseline)
    above = assess_live(typed({"T1": 50.0, "T2": 35.0, "T3": 26.0}), with_baseline)

    assert (below.overall, below.change_from_nadir_pct) == (Response.SD, Decimal("19.6"))
    assert (above.overall, above.target_response) == (Response.PD, Response.PD)
    assert any("nadir" in reason for reason in above.reasons)


def test_a_new_lesion_makes_the_exam_pd_whatever_the_sizes(with_baseline: Context) -> None:
    found = assess_live(new_lesion(typed({"T1": 30.0, "T2": 20.0, "T3": 14.0})), with_baseline)

    assert found.target_response is Response.PR
    assert (found.new_lesion_response, found.overall) == ("present", Response.PD)
    assert any("N1" in reason or "new" in reason.lower() for reason in found.reasons)


def test_a_reader_conclusion_that_differs_is_a_discordance_before_signing(
    with_baseline: Context,
) -> None:
    # The example's deliberate discordance: -29.3 % is SD, the reader rounded it to PR.
    found = assess_live(typed({"T1": 30.0, "T2": 20.0, "T3": 15.0}), with_baseline)

    assert (found.reader.response_vs_baseline, found.reader.response_vs_nadir) == (
        Response.PR,
        Response.SD,
    )
    assert found.reader.overall is Response.PR
    assert found.discordances == (
        Discordance(item="response-vs-baseline", reader=Response.PR, computed=Response.SD),
    )


def test_a_conclusion_that_agrees_is_no_discordance(with_baseline: Context) -> None:
    resource = typed({"T1": 30.0, "T2": 20.0, "T3": 15.0})
    (conclusion,) = items(resource, "response-vs-baseline")
    conclusion["answer"] = copy.deepcopy(items(resource, "response-vs-nadir")[0]["answer"])

    assert assess_live(resource, with_baseline).discordances == ()


def test_a_form_still_being_typed_names_the_sizes_it_waits_for(with_baseline: Context) -> None:
    resource = typed({"T1": 30.0})
    for lesion_id in ("T2", "T3"):
        group = target(resource, lesion_id)
        group["item"] = [item for item in group["item"] if item["linkId"] != "lesion-size"]

    found = assess_live(resource, with_baseline)

    assert not found.assessable
    assert [m.item for m in found.missing] == [
        "target-lesion[1].lesion-size",
        "target-lesion[2].lesion-size",
    ]
    assert "T2" in found.missing[0].message
    assert found.missing[0].expression == "QuestionnaireResponse.item[9]"
    assert found.overall is None
    assert found.sum_mm is None
    assert found.criteria is Criteria.RECIST_1_1


def test_required_answers_not_given_yet_are_missing_not_an_error(with_baseline: Context) -> None:
    resource = typed({"T1": 30.0, "T2": 20.0, "T3": 15.0})
    resource["item"] = [item for item in resource["item"] if item["linkId"] != "imaging-date"]
    del target(resource, "T2")["item"][1]  # lesion-location

    found = assess_live(resource, with_baseline)

    assert not found.assessable
    assert {m.item for m in found.missing} == {"imaging-date", "target-lesion[1].lesion-location"}


def test_a_baseline_target_left_out_of_a_follow_up_is_missing(with_baseline: Context) -> None:
    resource = typed({"T1": 30.0, "T2": 20.0})
    resource["item"].remove(target(resource, "T3"))

    found = assess_live(resource, with_baseline)

    assert not found.assessable
    assert [m.message for m in found.missing] == [
        "Baseline target T3 is not in the form: give its size."
    ]


def test_a_rule_the_submission_would_refuse_is_a_problem(with_baseline: Context) -> None:
    resource = typed({"T1": 30.0, "T2": 20.0, "T3": 15.0})
    set_answer(target(resource, "T3"), "lesion-id", "valueString", "T9")  # no such baseline target

    found = assess_live(resource, with_baseline)

    assert not found.assessable
    assert found.missing == ()
    assert [p.item for p in found.problems] == ["target-lesion[2].lesion-id"]
    assert "T9" in found.problems[0].message


def test_a_follow_up_without_a_stored_baseline_is_a_problem(context: Context) -> None:
    found = assess_live(typed({"T1": 30.0, "T2": 20.0, "T3": 15.0}), context)

    assert not found.assessable
    assert [p.item for p in found.problems] == ["baseline-date"]


def test_a_baseline_being_typed_shows_its_own_sum(context: Context) -> None:
    resource = form(RECIST, 1)
    resource["status"] = "in-progress"

    found = assess_live(resource, context)

    assert found.assessable
    assert (found.assessment_type, found.sum_mm, found.baseline_sum_mm) == (
        "baseline",
        Decimal(92),
        Decimal(92),
    )
    assert found.overall is None


def test_nothing_is_written_but_the_audit_of_the_read(
    with_baseline: Context, store: RecordingStore
) -> None:
    before = counts(store.inner)
    versions = stored_versions(store)
    sent = len(store.sent)
    for sizes in ({"T1": 30.0, "T2": 20.0, "T3": 14.0}, {"T1": 50.0, "T2": 35.0, "T3": 26.0}):
        assess_live(typed(sizes, status="completed"), with_baseline)

    assert counts(store.inner) == before
    assert stored_versions(store) == versions
    written = store.sent[sent:]
    assert len(written) == 2
    for bundle in written:
        (entry,) = bundle["entry"]
        event = entry["resource"]
        assert event["resourceType"] == "AuditEvent"
        assert event["subtype"][0]["code"] == "operation"
        assert event["action"] == "E"
        assert {"reference": f"Patient/{RECIST}"} in [e.get("what") for e in event["entity"]]


def test_a_form_that_reads_nothing_writes_nothing(
    with_baseline: Context, store: RecordingStore
) -> None:
    sent = len(store.sent)
    resource = typed({"T1": 30.0})
    del target(resource, "T2")["item"][3]

    assert not assess_live(resource, with_baseline).assessable
    assert store.sent[sent:] == []


def test_a_form_without_identifier_or_id_is_assessed_as_a_new_exam(
    with_baseline: Context,
) -> None:
    resource = typed({"T1": 30.0, "T2": 20.0, "T3": 14.0})
    del resource["identifier"], resource["id"]

    found: LiveAssessment = assess_live(resource, with_baseline)

    assert found.overall is Response.PR
    assert DRAFT_SYSTEM.startswith("https://fhirnet.dev/")


@pytest.mark.parametrize(
    ("expression", "path"),
    [
        ("QuestionnaireResponse.item[9].item[3]", "target-lesion[1].lesion-size"),
        ("QuestionnaireResponse.item[0]", "imaging-date"),
        ("QuestionnaireResponse", "QuestionnaireResponse"),
        ("QuestionnaireResponse.item[99]", "QuestionnaireResponse"),
        ("Bundle.entry[0]", "Bundle.entry[0]"),
    ],
)
def test_an_expression_is_named_by_linkids_and_occurrences(expression: str, path: str) -> None:
    assert item_path(form(RECIST, FOLLOW_UP), expression) == path


@pytest.mark.parametrize("patient", [RECIST, CHOI, IRECIST])
def test_before_each_example_exam_is_signed_the_dry_run_shows_what_its_report_then_says(
    context: Context, patient: str
) -> None:
    """Every exam of each criteria's example patient, typed (in-progress) with the earlier exams
    on file: the live category is the one the submitted report concludes."""
    first = 0 if patient == IRECIST else 1
    for number in range(first, len(form_paths(patient)) + 1):
        typed_form = form(patient, number)
        typed_form["status"] = "in-progress"
        live = assess_live(typed_form, context)
        report = submit(form(patient, number), context).report

        assert live.assessable, live
        codes = [
            c["code"] for concept in report.get("conclusionCode", []) for c in concept["coding"]
        ]
        assert [CATEGORY_CODES[code] for code in codes][:1] == (
            [live.overall] if live.overall else []
        )
