"""Independent read streams (fhirnet.services.streams) on the embedded store: for a patient enrolled
in a study, each central reader's forms are that reader's own timeline (own baseline, nadir,
categories, reports, lesion BodyStructures), every other form the site's; outside studies, and
for readers of other studies, nothing changes."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from fhirnet.criteria import Response
from fhirnet.criteria.models import Criteria
from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.extract import ExamForm, extract_form
from fhirnet.fhir.outcome import UnprocessableResourceError
from fhirnet.fhir.studies import Arm, Enrolment, Reader, ReaderRole, Site, Study
from fhirnet.ports import Json, SearchParams
from fhirnet.services import Context
from fhirnet.services.reassessment import reassess
from fhirnet.services.streams import CentralRead, reader_key, split
from fhirnet.services.studies import enrol, put_study, withdraw
from fhirnet.services.submission import extract, submit
from tests.conformance import validate_against_profile, validate_resource
from tests.submissions import RECIST, RecordingStore, form, set_answer, target

SITE_READER = "Practitioner/reader-nuclear-radiology"  # the examples' author: a site radiologist
OTHER_SITE_READER = "Practitioner/reader-oncology-imaging"
CENTRAL_1 = Reader(reference="Practitioner/central-1", role=ReaderRole.CENTRAL, label="CR 1")
CENTRAL_2 = Reader(reference="Practitioner/central-2", role=ReaderRole.CENTRAL, label="CR 2")
LOCAL = Reader(reference=OTHER_SITE_READER, role=ReaderRole.LOCAL, label="LOCAL")
OUTSIDER = Reader(reference="Practitioner/central-9", role=ReaderRole.CENTRAL, label="CR 9")


def study(study_id: str, *readers: Reader) -> Study:
    return Study(
        study_id=study_id,
        title=f"Study {study_id}",
        criteria=Criteria.RECIST_1_1,
        arms=(Arm(code="A", name="177Lu-DOTATATE"),),
        sites=(Site(id="001", name="Uppsala"),),
        readers=readers,
    )


def enrolment(study_id: str, patient: str = RECIST) -> Enrolment:
    return Enrolment(
        study_id=study_id,
        subject_id="001-0001",
        patient=patient,
        site="001",
        arm="A",
        reference_date=dt.date(2025, 1, 14),
    )


#: Per stream: the author, the form identifiers' tag and the target sizes (T1, T2, T3 in mm) of
#: the baseline (2025-01-13) and the follow-ups of 2025-04-14 and 2025-07-14. Worked by hand
#: (RECIST 1.1 §4.3.1: PR ≥30% below baseline; PD ≥20% and ≥5 mm above the nadir; the
#: non-targets are present, no new lesions):
READS: dict[str, tuple[str, tuple[tuple[float, float, float], ...]]] = {
    # 92 → 86 (-6.5%: SD) → 84 (nadir 86, -2.3%: SD)
    "site": (SITE_READER, ((42, 28, 22), (40, 26, 20), (40, 25, 19))),
    # 92 → 64 (-30.4%: PR) → 58 (-37.0%: PR)
    "cr1": (CENTRAL_1.reference, ((42, 28, 22), (28, 20, 16), (26, 18, 14))),
    # 95 → 82 (-13.7%: SD) → 99 (nadir 82, +17 mm = +20.7%: PD)
    "cr2": (CENTRAL_2.reference, ((45, 28, 22), (38, 25, 19), (44, 31, 24))),
}
EXPECTED = {
    "site": ["SD", "SD"],
    "cr1": ["PR", "PR"],
    "cr2": ["SD", "PD"],
}
DATES = ("2025-01-13", "2025-04-14", "2025-07-14")


def read_form(tag: str, number: int, author: str, sizes: Sequence[float]) -> Json:
    """Example form ``number`` (1 baseline, 2 and 3 follow-ups) of the RECIST patient as read by
    ``author``: its own identifier ``<tag>-<number>`` and target sizes."""
    resource = form(RECIST, number)
    resource["identifier"]["value"] = f"{tag}-{number}"
    resource["author"] = {"reference": author}
    for lesion, size in zip(("T1", "T2", "T3"), sizes, strict=True):
        set_answer(target(resource, lesion), "lesion-size", "valueDecimal", size)
    # The reader's own conclusion is not what this test is about.
    resource["item"] = [
        i
        for i in resource["item"]
        if i["linkId"] not in ("response-vs-baseline", "response-vs-nadir", "nadir-date")
    ]
    return resource


def category(report: Json) -> str | None:
    codes = report.get("conclusionCode")
    if not codes:
        return None
    coding = codes[0]["coding"][0]
    (found,) = (r for r, c in RESPONSE_CATEGORIES.items() if c.code == coding["code"])
    return Response(found).value


def lesion_identifiers(store: RecordingStore) -> list[str]:
    """The business identifiers (``…/sid/lesion``) of the stored lesion BodyStructures."""
    return sorted(
        i["value"]
        for body in store.inner.search("BodyStructure", {})
        for i in body["identifier"]
        if i["system"].endswith("/sid/lesion")
    )


def reports(store: RecordingStore) -> dict[str, Json]:
    """The stored DiagnosticReports by their form's identifier value (the key's last part)."""
    found = {}
    for report in store.inner.search("DiagnosticReport", {}):
        value = report["identifier"][0]["value"]
        found[value.rsplit("/", 1)[-1]] = report
    return found


def submit_all(context: Context, *tags: str) -> None:
    """Each stream's baseline, then the follow-ups date by date, interleaving the streams."""
    for number in (1, 2, 3):
        for tag in tags:
            author, sizes = READS[tag]
            submit(read_form(tag, number, author, sizes[number - 1]), context)


@pytest.fixture
def enrolled(context: Context) -> Context:
    """A study with two central readers and a local one; the RECIST patient enrolled."""
    put_study(study("NET-01", CENTRAL_1, CENTRAL_2, LOCAL), context)
    enrol(enrolment("NET-01"), context)
    return context


# -- the pure split --------------------------------------------------------------------------


def exam_form(author: str | None, imaging_date: str = "2025-04-14") -> ExamForm:
    resource = form(RECIST, 2)
    if author is None:
        resource.pop("author", None)
    else:
        resource["author"] = {"reference": author}
    parsed = extract_form(resource)
    return replace(parsed, imaging_date=dt.date.fromisoformat(imaging_date))


@pytest.mark.parametrize(
    ("author", "read", "stream"),
    [
        (SITE_READER, CentralRead(reader=CENTRAL_1), None),
        (None, CentralRead(reader=CENTRAL_1), None),
        ("Practitioner/central-1", CentralRead(reader=CENTRAL_1), "Practitioner/central-1"),
        # absolute and versioned references name the same reader
        (
            "https://ehr.example/fhir/Practitioner/central-1/_history/3",
            CentralRead(reader=CENTRAL_1),
            "Practitioner/central-1",
        ),
        # withdrawn after the exam: still the study's read
        (
            "Practitioner/central-1",
            CentralRead(reader=CENTRAL_1, until=dt.date(2025, 4, 14), withdrawn=True),
            "Practitioner/central-1",
        ),
        # withdrawn before the exam: the site's
        (
            "Practitioner/central-1",
            CentralRead(reader=CENTRAL_1, until=dt.date(2025, 4, 13), withdrawn=True),
            None,
        ),
        # withdrawn without a date: never the study's
        ("Practitioner/central-1", CentralRead(reader=CENTRAL_1, withdrawn=True), None),
    ],
    ids=[
        "site-reader",
        "no-author",
        "central-reader",
        "absolute-versioned-reference",
        "withdrawn-on-exam-date",
        "withdrawn-before-exam",
        "withdrawn-undated",
    ],
)
def test_a_form_joins_its_authors_stream_while_the_patient_is_enrolled(
    author: str | None, read: CentralRead, stream: str | None
) -> None:
    found = split([exam_form(author)], [read])

    non_empty = [s for s in found if s.forms]
    assert [None if s.reader is None else s.reader.reference for s in non_empty] == [stream]
    assert found[0].reader is None  # the site's stream always comes first


def test_reader_key_reads_practitioner_and_role_references_only() -> None:
    assert reader_key("PractitionerRole/r-1") == "PractitionerRole/r-1"
    assert reader_key("Organization/o") is None
    assert reader_key(None) is None


# -- three independent reads of one patient --------------------------------------------------


def test_site_and_two_central_readers_get_independent_categories_and_reports(
    enrolled: Context, store: RecordingStore
) -> None:
    submit_all(enrolled, "site", "cr1", "cr2")

    found = reports(store)
    for tag, expected in EXPECTED.items():
        got = [category(found[f"{tag}-{n}"]) for n in (1, 2, 3)]
        assert got == [None, *expected], tag
    # the same exam dates in every stream
    assert {found[f"{tag}-2"]["effectiveDateTime"] for tag in READS} == {DATES[1]}
    # whose read it is
    interpreter = found["cr1-3"]["resultsInterpreter"]
    assert interpreter == [{"reference": CENTRAL_1.reference, "display": "CR 1"}]
    assert found["cr2-3"]["conclusion"].startswith("Central read by CR 2. RECIST 1.1: PD.")
    assert found["site-3"]["resultsInterpreter"] == [{"reference": SITE_READER}]
    assert found["site-3"]["conclusion"].startswith("RECIST 1.1: SD.")


def test_each_reader_has_own_nadir_and_baseline_sum(
    enrolled: Context, store: RecordingStore
) -> None:
    submit_all(enrolled, "site", "cr1", "cr2")

    found = reports(store)
    # reader 2: a baseline of 95 mm of their own, their nadir 82 mm at their first follow-up
    assert "below baseline 95.0 mm" in found["cr2-2"]["conclusion"]
    assert "above the nadir of 2025-04-14 82.0 mm" in found["cr2-3"]["conclusion"]
    assert "below baseline 92.0 mm" in found["site-2"]["conclusion"]


def test_two_readers_t1_of_one_patient_are_separate_lesion_body_structures(
    enrolled: Context, store: RecordingStore
) -> None:
    submit_all(enrolled, "site", "cr1", "cr2")

    t1 = [value for value in lesion_identifiers(store) if value.endswith("/T1")]
    assert t1 == [
        f"{RECIST}/Practitioner%2Fcentral-1/T1",
        f"{RECIST}/Practitioner%2Fcentral-2/T1",
        f"{RECIST}/T1",  # the site's lesion keeps its identifier
    ]
    measurements = [
        o
        for o in store.inner.search("Observation", {})
        if o["identifier"][0]["system"].endswith("/lesion-measurement")
        and o["identifier"][0]["value"].endswith("cr1-1/T1")
    ]
    (measured,) = measurements
    focus = measured["focus"][0]["reference"]
    body = store.inner.read(*focus.split("/"))
    assert body is not None
    assert f"{RECIST}/Practitioner%2Fcentral-1/T1" in {i["value"] for i in body["identifier"]}


def test_a_central_read_in_another_order_gives_the_same_categories(
    enrolled: Context, store: RecordingStore
) -> None:
    for tag in ("cr2", "site", "cr1"):  # each stream whole, one after the other
        author, sizes = READS[tag]
        for number in (1, 2, 3):
            submit(read_form(tag, number, author, sizes[number - 1]), enrolled)

    found = reports(store)
    for tag, expected in EXPECTED.items():
        assert [category(found[f"{tag}-{n}"]) for n in (2, 3)] == expected, tag


# -- outside studies nothing changes ---------------------------------------------------------


def test_without_enrolment_every_form_of_a_practitioner_is_the_site_stream(
    context: Context, store: RecordingStore
) -> None:
    put_study(study("NET-01", CENTRAL_1, CENTRAL_2), context)  # the patient is not enrolled
    submit(read_form("cr1", 1, CENTRAL_1.reference, READS["cr1"][1][0]), context)

    # a central reader's follow-up joins the site's timeline: no baseline of its own needed
    answer = submit(read_form("site", 2, CENTRAL_1.reference, READS["site"][1][1]), context)

    assert category(answer.report) == "SD"  # 92 → 86, against the one baseline on file
    assert answer.report["resultsInterpreter"] == [{"reference": CENTRAL_1.reference}]
    assert not answer.report["conclusion"].startswith("Central read")
    assert lesion_identifiers(store) == [f"{RECIST}/T1", f"{RECIST}/T2", f"{RECIST}/T3"]


def test_a_central_reader_of_another_study_only_reports_in_the_site_stream(
    context: Context, store: RecordingStore
) -> None:
    put_study(study("NET-01", CENTRAL_1), context)
    put_study(study("NET-02", OUTSIDER), context)
    enrol(enrolment("NET-01"), context)
    submit(read_form("site", 1, SITE_READER, READS["site"][1][0]), context)

    answer = submit(read_form("out", 2, OUTSIDER.reference, READS["site"][1][1]), context)

    assert category(answer.report) == "SD"
    assert answer.report["resultsInterpreter"] == [{"reference": OUTSIDER.reference}]


def test_a_local_reader_of_the_study_reports_in_the_site_stream(enrolled: Context) -> None:
    submit(read_form("site", 1, SITE_READER, READS["site"][1][0]), enrolled)

    answer = submit(read_form("loc", 2, LOCAL.reference, READS["site"][1][1]), enrolled)

    assert category(answer.report) == "SD"


def test_after_withdrawal_a_central_readers_new_exam_is_the_sites(
    enrolled: Context, store: RecordingStore
) -> None:
    submit(read_form("site", 1, SITE_READER, READS["site"][1][0]), enrolled)
    submit(read_form("cr1", 1, CENTRAL_1.reference, READS["cr1"][1][0]), enrolled)
    withdraw("NET-01", "001-0001", enrolled, on=dt.date(2025, 3, 1))

    later = submit(read_form("cr1", 2, CENTRAL_1.reference, READS["cr1"][1][1]), enrolled)

    # 64 mm against the site's baseline of 92 mm: a site read now
    assert category(later.report) == "PR"
    assert later.report["resultsInterpreter"] == [{"reference": CENTRAL_1.reference}]
    # the central baseline read before withdrawal stays the reader's
    baseline = reports(store)["cr1-1"]
    assert baseline["resultsInterpreter"][0]["display"] == "CR 1"


# -- rules within one stream -----------------------------------------------------------------


def test_two_forms_of_one_stream_on_one_date_are_still_refused(enrolled: Context) -> None:
    submit(read_form("cr1", 1, CENTRAL_1.reference, READS["cr1"][1][0]), enrolled)

    with pytest.raises(UnprocessableResourceError, match="baseline form of 2025-01-13"):
        submit(read_form("cr1b", 1, CENTRAL_1.reference, READS["cr1"][1][0]), enrolled)


def test_a_follow_up_of_a_central_reader_needs_that_readers_baseline(enrolled: Context) -> None:
    submit(read_form("site", 1, SITE_READER, READS["site"][1][0]), enrolled)

    with pytest.raises(UnprocessableResourceError, match="central read of CR 1"):
        submit(read_form("cr1", 2, CENTRAL_1.reference, READS["cr1"][1][1]), enrolled)


def test_two_follow_ups_of_one_stream_on_one_date_are_refused(enrolled: Context) -> None:
    submit_all(enrolled, "cr1")
    author, sizes = READS["cr1"]

    with pytest.raises(UnprocessableResourceError) as refused:
        submit(read_form("cr1-again", 2, author, sizes[1]), enrolled)

    assert any("2025-04-14" in i.message for i in refused.value.issues)


def test_amending_a_central_baseline_reassesses_only_that_readers_exams(
    enrolled: Context, store: RecordingStore
) -> None:
    submit_all(enrolled, "site", "cr1", "cr2")
    before = {key: copy.deepcopy(report) for key, report in reports(store).items()}
    author = READS["cr1"][0]
    corrected = read_form("cr1", 1, author, (36, 24, 20))  # 80 mm: 64 is -20%, SD
    corrected["status"] = "amended"

    answer = submit(corrected, enrolled)

    after = reports(store)
    changed = sorted(key for key in after if after[key] != before[key])
    assert changed == ["cr1-1", "cr1-2", "cr1-3"]
    assert [category(after[f"cr1-{n}"]) for n in (2, 3)] == ["SD", "SD"]
    assert "2025-04-14, 2025-07-14" in " ".join(i.message for i in answer.issues)


def test_extract_follows_the_stream_of_its_form(enrolled: Context) -> None:
    submit_all(enrolled, "site", "cr2")
    author, sizes = READS["cr1"]
    submit(read_form("cr1", 1, author, sizes[0]), enrolled)

    bundle = extract(read_form("cr1", 2, author, sizes[1]), enrolled)

    (report,) = (
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert category(report) == "PR"
    assert report["resultsInterpreter"][0]["display"] == "CR 1"


def test_reassess_keeps_the_streams_apart(enrolled: Context, store: RecordingStore) -> None:
    submit_all(enrolled, "site", "cr1", "cr2")

    again = reassess(RECIST, enrolled)

    assert again.exams == 9
    assert again.stale == ()
    assert not again.written


def test_reassess_moves_reads_stored_before_enrolment_into_their_stream(
    context: Context, store: RecordingStore
) -> None:
    put_study(study("NET-01", CENTRAL_1), context)
    author, sizes = READS["cr1"]
    submit(read_form("cr1", 1, author, sizes[0]), context)  # not enrolled yet: the site's
    enrol(enrolment("NET-01"), context)

    moved = reassess(RECIST, context)

    assert moved.stale == (dt.date(2025, 1, 13),)
    report = reports(store)["cr1-1"]
    assert report["resultsInterpreter"] == [{"reference": author, "display": "CR 1"}]
    assert f"{RECIST}/Practitioner%2Fcentral-1/T1" in lesion_identifiers(store)


def test_what_a_central_read_writes_conforms_to_the_profiles(
    enrolled: Context, store: RecordingStore
) -> None:
    submit_all(enrolled, "cr1")

    bundle = store.sent[-1]  # the last follow-up: lesions, measurements, response, report
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} >= {
        "BodyStructure",
        "DiagnosticReport",
    }
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "AuditEvent":
            continue
        assert validate_resource(resource, enrolled.catalog) == [], resource["resourceType"]
        for profile in resource.get("meta", {}).get("profile", []):
            problems = validate_against_profile(resource, profile, enrolled.catalog)
            assert [p for p in problems if p.is_error] == [], profile


class NoStudiesStore(RecordingStore):
    """A FHIR server that does not know ResearchSubject (answers its searches 400)."""

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        if resource_type == "ResearchSubject":
            raise FhirServerRejectedError("Unknown resource type ResearchSubject")
        return super().search(resource_type, params)


def test_a_server_without_research_subject_assesses_every_form_as_the_sites(
    context: Context, store: RecordingStore
) -> None:
    plain = replace(context, store=NoStudiesStore(store.inner))
    submit(read_form("site", 1, SITE_READER, READS["site"][1][0]), plain)

    answer = submit(read_form("cr1", 2, CENTRAL_1.reference, READS["site"][1][1]), plain)

    assert category(answer.report) == "SD"
    assert any("ResearchSubject" in issue.message for issue in answer.issues)
