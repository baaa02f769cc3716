"""The ``$populate`` use case (fhirnet.services.populate) on the embedded store: it reads the
patient's submitted forms, continues the latest timeline of the chosen read stream, answers a
blank baseline when there is nothing to continue, and records the read in one AuditEvent naming
the patient."""

from __future__ import annotations

import pytest

from fhirnet.errors import InvalidInputError
from fhirnet.fhir.outcome import Severity
from fhirnet.fhir.populate import follow_up
from fhirnet.ports import Json
from fhirnet.services import Context
from fhirnet.services.populate import populate
from fhirnet.services.studies import enrol, put_study
from fhirnet.services.submission import submit
from tests.fhir.test_populate import (
    PERCIST,
    QUESTIONNAIRE,
    answers,
    assessed,
    exam_count,
    forms_up_to,
    lesions,
)
from tests.services.test_read_streams import (
    CENTRAL_1,
    CENTRAL_2,
    LOCAL,
    READS,
    enrolment,
    read_form,
    study,
)
from tests.submissions import CHOI, IRECIST, RECIST, RecordingStore, form, set_top

READER = "Practitioner/reader-1"


def submit_up_to(context: Context, patient: str, last: int) -> list[Json]:
    forms = forms_up_to(patient, last)
    for resource in forms:
        submit(resource, context)
    return forms


def audit_events(store: RecordingStore) -> list[Json]:
    return list(store.inner.search("AuditEvent", {}))


def entities(event: Json) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", []) if "what" in e]


@pytest.mark.parametrize("patient", [RECIST, IRECIST, CHOI, PERCIST])
def test_each_criteria_s_patient_gets_the_follow_up_its_forms_on_file_give(
    context: Context, patient: str
) -> None:
    last = exam_count(patient) - 1  # up to the last but one follow-up
    forms = submit_up_to(context, patient, last)

    found = populate(context, patient=patient, author=READER)

    assert found.response == follow_up(
        assessed(forms), questionnaire=QUESTIONNAIRE, subject=f"Patient/{patient}", author=READER
    )
    assert [a["code"] for a in answers(found.response, "assessment-type")] == ["follow-up"]
    baseline = form(patient, 1) if patient != PERCIST else forms[0]
    assert lesions(found.response, "target-lesion") == lesions(baseline, "target-lesion")
    assert [i for i in found.issues if i.severity is Severity.ERROR] == []


def test_the_read_is_audited_once_naming_the_patient(
    context: Context, store: RecordingStore
) -> None:
    submit_up_to(context, RECIST, 2)
    before = len(audit_events(store))

    populate(context, patient=RECIST)

    after = audit_events(store)
    assert len(after) == before + 1
    (event,) = [e for e in after if f"Patient/{RECIST}" in entities(e) and _is_operation(e)]
    assert event["action"] == "E"
    assert event["outcome"] == "0"


def _is_operation(event: Json) -> bool:
    return any(c.get("code") == "operation" for c in event.get("subtype", []))


def test_an_unknown_patient_gets_a_blank_baseline_and_the_read_is_audited(
    context: Context, store: RecordingStore
) -> None:
    found = populate(context, patient="nobody", author=READER)

    assert [a["code"] for a in answers(found.response, "assessment-type")] == ["baseline"]
    assert [i["linkId"] for i in found.response["item"]] == ["assessment-type"]
    assert found.response["subject"] == {"reference": "Patient/nobody"}
    assert found.response["author"] == {"reference": READER}
    assert found.issues == ()
    assert [entities(e) for e in audit_events(store)] == [["Patient/nobody"]]


def test_forms_without_a_baseline_give_a_blank_baseline_saying_why(context: Context) -> None:
    submit(form(IRECIST, 0), context)  # a pre-baseline scan waits for its baseline

    found = populate(context, patient=IRECIST)

    assert [a["code"] for a in answers(found.response, "assessment-type")] == ["baseline"]
    assert any("blank baseline" in i.message for i in found.issues)


def test_a_re_baselined_patient_continues_the_latest_timeline(context: Context) -> None:
    submit_up_to(context, RECIST, 3)
    # A new line of treatment: a new baseline after the third exam (the first one's findings).
    new_baseline = form(RECIST, 1)
    new_baseline["identifier"]["value"] = "small-bowel-net-prrt-rebaseline"
    set_top(new_baseline, "imaging-date", "valueDate", "2025-10-20")
    new_baseline["authored"] = "2025-10-20T16:00:00+02:00"
    submit(new_baseline, context)

    found = populate(context, patient=RECIST)

    assert answers(found.response, "baseline-date") == ["2025-10-20"]
    assert answers(found.response, "nadir-date") == ["2025-10-20"]


# -- read streams ------------------------------------------------------------------------------


@pytest.fixture
def two_streams(context: Context) -> Context:
    """The RECIST patient enrolled in a study: the site read three exams, the first central
    reader two, the second none."""
    put_study(study("NET-01", CENTRAL_1, CENTRAL_2, LOCAL), context)
    enrol(enrolment("NET-01"), context)
    for number in (1, 2, 3):
        author, sizes = READS["site"]
        submit(read_form("site", number, author, sizes[number - 1]), context)
    for number in (1, 2):
        author, sizes = READS["cr1"]
        submit(read_form("cr1", number, author, sizes[number - 1]), context)
    return context


def test_the_site_stream_continues_the_site_s_reads(two_streams: Context) -> None:
    found = populate(two_streams, patient=RECIST, stream="site")

    # Site sums 92 → 86 → 84 mm: the nadir is the last exam's.
    assert answers(found.response, "nadir-date") == ["2025-07-14"]


def test_a_central_reader_s_stream_continues_that_reader_s_own_reads(
    two_streams: Context,
) -> None:
    found = populate(two_streams, patient=RECIST, stream=CENTRAL_1.reference)

    # The central reader's sums 92 → 64 mm, read on 2025-01-13 and 2025-04-14 only.
    assert answers(found.response, "nadir-date") == ["2025-04-14"]
    assert answers(found.response, "baseline-date") == ["2025-01-13"]


def test_a_central_reader_as_author_selects_their_own_stream(two_streams: Context) -> None:
    found = populate(two_streams, patient=RECIST, author=CENTRAL_1.reference)

    assert answers(found.response, "nadir-date") == ["2025-04-14"]
    assert found.response["author"] == {"reference": CENTRAL_1.reference}


def test_a_central_reader_who_read_nothing_yet_starts_with_a_blank_baseline(
    two_streams: Context,
) -> None:
    found = populate(two_streams, patient=RECIST, author=CENTRAL_2.reference)

    assert [a["code"] for a in answers(found.response, "assessment-type")] == ["baseline"]


def test_a_reader_who_is_no_central_reader_reads_for_the_site(two_streams: Context) -> None:
    found = populate(two_streams, patient=RECIST, author=LOCAL.reference)

    assert answers(found.response, "nadir-date") == ["2025-07-14"]


def test_a_central_reader_is_also_named_by_the_study_s_label(two_streams: Context) -> None:
    found = populate(two_streams, patient=RECIST, stream=CENTRAL_1.label)

    assert answers(found.response, "nadir-date") == ["2025-04-14"]


def test_a_central_reader_starts_their_own_read_even_when_no_form_names_a_reader(
    context: Context,
) -> None:
    put_study(study("NET-01", CENTRAL_1), context)
    enrol(enrolment("NET-01"), context)
    for number in (1, 2):
        resource = form(RECIST, number)
        resource["author"] = {"reference": "Organization/site-radiology"}
        submit(resource, context)

    mine = populate(context, patient=RECIST, author=CENTRAL_1.reference)
    site = populate(context, patient=RECIST)

    assert [a["code"] for a in answers(mine.response, "assessment-type")] == ["baseline"]
    assert [a["code"] for a in answers(site.response, "assessment-type")] == ["follow-up"]


def test_a_stream_that_names_no_reader_is_refused(context: Context) -> None:
    with pytest.raises(InvalidInputError, match="stream"):
        populate(context, patient=RECIST, stream="Patient/x")
