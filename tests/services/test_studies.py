"""The study and enrolment use cases (fhirnet.services.studies) on the embedded store: what each
writes, in one transaction with its AuditEvent, idempotence, and every refusal writing nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from fhirnet.criteria.models import Criteria
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.studies import (
    GROUP_SYSTEM,
    STUDY_SYSTEM,
    Arm,
    Enrolment,
    Reader,
    ReaderRole,
    Site,
    Study,
    SubjectStatus,
    Visit,
    subject_system,
)
from fhirnet.ports import Json
from fhirnet.services import Context
from fhirnet.services.studies import (
    StudyConflictError,
    StudyNotFoundError,
    delete_study,
    enrol,
    get_study,
    get_subject,
    put_study,
    withdraw,
)
from fhirnet.services.submission import submit
from tests.submissions import RECIST, RecordingStore, form

STUDY = Study(
    study_id="NET-01",
    title="Lutetium versus octreotide in midgut NET",
    criteria=Criteria.RECIST_1_1,
    options={"confirmationRequired": True, "sdMinDays": 42},
    arms=(Arm(code="A", name="177Lu-DOTATATE"), Arm(code="B", name="Octreotide LAR")),
    sites=(Site(id="001", name="Uppsala"), Site(id="002", name="Berlin")),
    readers=(
        Reader(reference="Practitioner/reader-1", role=ReaderRole.CENTRAL, label="RADIOLOGIST 1"),
    ),
    schedule=(Visit(visit="WEEK 8", day=57, window_days=7),),
)
SUBJECT = Enrolment(
    study_id="NET-01",
    subject_id="001-0001",
    patient="patient-a",
    site="001",
    arm="A",
    reference_date=dt.date(2025, 1, 15),
)


def resources(store: RecordingStore, kind: str) -> list[Json]:
    return list(store.inner.search(kind, {}))


def written_types(store: RecordingStore) -> list[list[str]]:
    return [
        [e["resource"]["resourceType"] for e in b["entry"] if "resource" in e] for b in store.sent
    ]


def test_a_study_is_a_research_study_with_an_enrolment_group_in_one_transaction(
    context: Context, store: RecordingStore
) -> None:
    stored = put_study(STUDY, context)

    assert stored.created
    assert stored.written
    assert written_types(store) == [["Group", "ResearchStudy", "AuditEvent"]]
    (study,) = resources(store, "ResearchStudy")
    (group,) = resources(store, "Group")
    assert study["identifier"] == [{"system": STUDY_SYSTEM, "value": "NET-01"}]
    assert study["enrollment"] == [{"reference": f"Group/{group['id']}"}]
    assert study["arm"] == [
        {"name": "A", "description": "177Lu-DOTATATE"},
        {"name": "B", "description": "Octreotide LAR"},
    ]
    assert group["identifier"] == [{"system": GROUP_SYSTEM, "value": "NET-01"}]
    assert (group["type"], group["actual"]) == ("person", True)
    assert get_study("NET-01", context).study == STUDY


def test_the_same_study_again_writes_nothing_and_a_changed_one_updates_it(
    context: Context, store: RecordingStore
) -> None:
    put_study(STUDY, context)
    again = put_study(STUDY, context)
    changed = put_study(replace(STUDY, title="Another title"), context)

    assert not again.created
    assert not again.written
    assert not changed.created
    assert changed.written
    assert written_types(store) == [
        ["Group", "ResearchStudy", "AuditEvent"],
        ["ResearchStudy", "AuditEvent"],
    ]
    assert len(resources(store, "ResearchStudy")) == 1
    assert get_study("NET-01", context).study.title == "Another title"


def test_enrolment_writes_the_subject_and_the_group_member_with_an_audit_event_naming_the_patient(
    context: Context, store: RecordingStore
) -> None:
    study = put_study(STUDY, context)
    stored = enrol(SUBJECT, context)

    assert stored.created
    assert stored.written
    assert written_types(store)[-1] == ["ResearchSubject", "Group", "AuditEvent"]
    (subject,) = resources(store, "ResearchSubject")
    assert subject["identifier"] == [{"system": subject_system("NET-01"), "value": "001-0001"}]
    assert subject["individual"] == {"reference": "Patient/patient-a"}
    assert subject["study"] == {"reference": study.reference}
    assert (subject["status"], subject["assignedArm"]) == ("on-study", "A")
    assert subject["period"] == {"start": "2025-01-15"}
    (group,) = resources(store, "Group")
    assert group["member"] == [
        {"entity": {"reference": "Patient/patient-a"}, "period": {"start": "2025-01-15"}}
    ]
    audit = store.sent[-1]["entry"][-1]["resource"]
    assert {"reference": "Patient/patient-a"} in [e.get("what") for e in audit["entity"]]
    assert get_subject("NET-01", "001-0001", context).enrolment == SUBJECT


def test_the_same_enrolment_again_writes_only_its_audit_event(
    context: Context, store: RecordingStore
) -> None:
    put_study(STUDY, context)
    enrol(SUBJECT, context)
    again = enrol(SUBJECT, context)
    moved = enrol(replace(SUBJECT, arm="B"), context)

    assert not again.written
    assert not again.created
    assert moved.written
    assert not moved.created
    assert written_types(store)[-2:] == [["AuditEvent"], ["ResearchSubject", "Group", "AuditEvent"]]
    (subject,) = resources(store, "ResearchSubject")
    assert subject["assignedArm"] == "B"
    assert subject["meta"]["versionId"] == "2"


@pytest.mark.parametrize(
    ("change", "error", "path"),
    [
        ({"arm": "C"}, InvalidInputError, "arm"),
        ({"site": "999"}, InvalidInputError, "site"),
        ({"patient": "patient-b"}, StudyConflictError, "patient"),  # number of another patient
        ({"subject_id": "001-0002"}, StudyConflictError, "patient"),  # patient under two numbers
    ],
    ids=["unknown arm", "unknown site", "number taken", "patient enrolled twice"],
)
def test_a_refused_enrolment_writes_nothing_but_its_failure_audit(
    context: Context,
    store: RecordingStore,
    change: dict[str, str],
    error: type[Exception],
    path: str,
) -> None:
    put_study(STUDY, context)
    enrol(SUBJECT, context)
    before = len(store.sent)

    with pytest.raises(error) as raised:
        enrol(replace(SUBJECT, **change), context)  # type: ignore[arg-type]

    assert [p.path for p in raised.value.errors] == [(path,)]  # type: ignore[attr-defined]
    assert written_types(store)[before:] == [["AuditEvent"]]
    assert store.sent[-1]["entry"][0]["resource"]["outcome"] == "4"
    assert len(resources(store, "ResearchSubject")) == 1


def test_enrolment_in_an_unknown_study_is_not_found(context: Context) -> None:
    with pytest.raises(StudyNotFoundError):
        enrol(SUBJECT, context)
    with pytest.raises(StudyNotFoundError):
        get_study("NET-01", context)
    with pytest.raises(StudyNotFoundError):
        get_subject("NET-01", "001-0001", context)


def test_a_reference_date_after_a_stored_follow_up_form_is_refused(
    context: Context, store: RecordingStore
) -> None:
    for number in (1, 2):  # baseline 2025-01-13, follow-up 2025-04-14
        submit(form(RECIST, number), context)
    put_study(STUDY, context)
    patient = replace(SUBJECT, patient=RECIST)

    enrol(replace(patient, reference_date=dt.date(2025, 1, 20)), context)  # after the baseline
    with pytest.raises(InvalidInputError) as raised:
        enrol(replace(patient, reference_date=dt.date(2025, 4, 14)), context)

    assert raised.value.errors[0].path == ("referenceDate",)
    assert "2025-04-14" in raised.value.errors[0].message


def test_withdrawal_keeps_the_subject_with_its_end_date_and_makes_the_member_inactive(
    context: Context, store: RecordingStore
) -> None:
    put_study(STUDY, context)
    enrol(SUBJECT, context)

    withdrawn = withdraw("NET-01", "001-0001", context, on=dt.date(2025, 6, 1))
    again = withdraw("NET-01", "001-0001", context, on=dt.date(2025, 6, 1))

    assert withdrawn.written
    assert not again.written
    assert withdrawn.enrolment.status is SubjectStatus.WITHDRAWN
    (subject,) = resources(store, "ResearchSubject")
    assert subject["status"] == "withdrawn"
    assert subject["period"] == {"start": "2025-01-15", "end": "2025-06-01"}
    (group,) = resources(store, "Group")
    assert group["member"][0]["inactive"] is True
    assert group["member"][0]["period"]["end"] == "2025-06-01"


def test_withdrawal_defaults_to_today_and_may_not_precede_the_reference_date(
    context: Context,
) -> None:
    put_study(STUDY, context)
    enrol(SUBJECT, context)

    with pytest.raises(InvalidInputError):
        withdraw("NET-01", "001-0001", context, on=dt.date(2025, 1, 1))
    today = withdraw("NET-01", "001-0001", context)

    assert today.enrolment.withdrawal_date == context.today
    with pytest.raises(StudyNotFoundError):
        withdraw("NET-01", "no-such-subject", context)


def test_a_study_with_subjects_cannot_be_deleted_nor_lose_an_arm_in_use(
    context: Context, store: RecordingStore
) -> None:
    put_study(STUDY, context)
    enrol(SUBJECT, context)
    withdraw("NET-01", "001-0001", context, on=dt.date(2025, 6, 1))
    before = len(store.sent)

    with pytest.raises(StudyConflictError):
        delete_study("NET-01", context)
    with pytest.raises(StudyConflictError) as raised:
        put_study(replace(STUDY, arms=STUDY.arms[1:]), context)

    assert raised.value.errors[0].path == ("arms",)
    assert len(store.sent) == before


def test_an_empty_study_is_deleted_with_its_group(context: Context, store: RecordingStore) -> None:
    put_study(STUDY, context)

    delete_study("NET-01", context)

    assert resources(store, "ResearchStudy") == []
    assert resources(store, "Group") == []
    with pytest.raises(StudyNotFoundError):
        delete_study("NET-01", context)
