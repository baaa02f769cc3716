"""Search in the embedded store: every parameter and form of value, date prefixes with R4's
precision ranges, sort, paging, ``_include``, and the strict refusal of what is not supported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from fhirnet.adapters.store import CURSOR, EmbeddedStore, SearchParameterError
from fhirnet.adapters.store.query import MAX_COUNT
from fhirnet.ports import Json, SearchParams
from tests.adapters.store import (
    CEST,
    LOINC,
    SYSTEM,
    Clock,
    delete,
    identifier,
    observation,
    put,
    transaction,
)


@pytest.fixture
def store() -> Iterator[EmbeddedStore]:
    with EmbeddedStore.in_memory(clock=Clock()) as store:
        yield store


def save(store: EmbeddedStore, *resources: Json) -> None:
    """PUT each resource under its ``id``."""
    store.transaction(transaction(*(put(f"{r['resourceType']}/{r['id']}", r) for r in resources)))


def ids(store: EmbeddedStore, resource_type: str, params: SearchParams) -> list[str]:
    """The ids of a search's matches, in order, over all pages."""
    found = []
    page = store.search_page(resource_type, params)
    while True:
        found += [resource["id"] for resource in page.matches]
        if page.next_cursor is None:
            return found
        page = store.search_page(resource_type, {**params, CURSOR: page.next_cursor})


def refused(store: EmbeddedStore, resource_type: str, params: SearchParams) -> SearchParameterError:
    with pytest.raises(SearchParameterError) as caught:
        store.search_page(resource_type, params)
    return caught.value


# -- tokens ----------------------------------------------------------------------------------


@pytest.fixture
def identified(store: EmbeddedStore) -> EmbeddedStore:
    save(
        store,
        observation(id="sys-a", identifier=[{"system": SYSTEM, "value": "a"}]),
        observation(id="other-a", identifier=[{"system": "urn:other", "value": "a"}]),
        observation(id="bare-a", identifier=[{"value": "a"}]),
        observation(id="sys-b", identifier=[{"system": SYSTEM, "value": "b"}]),
        observation(id="comma", identifier=[{"system": SYSTEM, "value": "x,y"}]),
        observation(id="pipe", identifier=[{"system": SYSTEM, "value": "x|y"}]),
    )
    return store


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{SYSTEM}|a", ["sys-a"]),
        ("|a", ["bare-a"]),  # explicitly no system
        ("a", ["bare-a", "other-a", "sys-a"]),  # any system
        (f"{SYSTEM}|", ["comma", "pipe", "sys-a", "sys-b"]),  # any value of the system
        (f"{SYSTEM}|a,{SYSTEM}|b", ["sys-a", "sys-b"]),  # comma: OR
        (f"{SYSTEM}|x\\,y", ["comma"]),  # escaped comma
        (f"{SYSTEM}|x\\|y", ["pipe"]),  # escaped bar
        (f"{SYSTEM}|c", []),
    ],
    ids=["system-value", "no-system", "any-system", "system-only", "or", "comma", "bar", "none"],
)
def test_identifier_token_forms(identified: EmbeddedStore, value: str, expected: list[str]) -> None:
    assert ids(identified, "Observation", {"identifier": value}) == expected


def test_code_matches_any_coding_of_the_codeable_concept(store: EmbeddedStore) -> None:
    two_codings = {"coding": [{"system": LOINC, "code": "a"}, {"system": "urn:local", "code": "b"}]}
    save(
        store,
        observation(id="both", code=two_codings),
        observation(id="a-only", code={"coding": [{"system": LOINC, "code": "a"}]}),
        observation(id="text-only", code={"text": "a"}),
    )
    assert ids(store, "Observation", {"code": f"{LOINC}|a"}) == ["a-only", "both"]
    assert ids(store, "Observation", {"code": "b"}) == ["both"]
    assert ids(store, "Observation", {"code": "urn:local|a"}) == []
    # A repeated parameter is AND: both codes on one resource.
    assert ids(store, "Observation", {"code": ["a", "b"]}) == ["both"]
    assert ids(store, "Observation", {"code": "a,b"}) == ["a-only", "both"]


def test_status_matches_with_or_without_its_code_system(store: EmbeddedStore) -> None:
    save(store, observation(id="final"), observation(id="amended", status="amended"))
    assert ids(store, "Observation", {"status": "final"}) == ["final"]
    assert ids(
        store, "Observation", {"status": "http://hl7.org/fhir/observation-status|amended"}
    ) == ["amended"]
    assert ids(store, "Observation", {"status": "final,amended"}) == ["amended", "final"]


def test_underscore_id_matches_logical_ids(store: EmbeddedStore) -> None:
    save(store, observation(id="a"), observation(id="b"), observation(id="c"))
    assert ids(store, "Observation", {"_id": "a,c,zz"}) == ["a", "c"]
    assert ids(store, "Observation", {"_id": "no such id!"}) == []


# -- references ------------------------------------------------------------------------------


@pytest.fixture
def subjects(store: EmbeddedStore) -> EmbeddedStore:
    save(
        store,
        observation(id="p1-obs", subject={"reference": "Patient/p1"}),
        observation(id="p1-versioned", subject={"reference": "Patient/p1/_history/3"}),
        observation(id="p1-absolute", subject={"reference": "https://ehr.example/fhir/Patient/p1"}),
        observation(id="p2-obs", subject={"reference": "Patient/p2"}),
        observation(id="group-p1", subject={"reference": "Group/p1"}),
        observation(id="contained", subject={"reference": "#p"}),
        observation(id="logical", subject={"identifier": {"system": SYSTEM, "value": "p1"}}),
    )
    return store


P1 = ["p1-absolute", "p1-obs", "p1-versioned"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": "p1"}, P1),
        ({"patient": "Patient/p1"}, P1),
        ({"patient": "https://elsewhere.example/Patient/p1"}, P1),  # base not compared
        ({"patient": "Patient/p1/_history/9"}, P1),  # the version is not compared
        ({"subject": "Patient/p1"}, P1),
        ({"subject": "p1"}, ["group-p1", *P1]),  # a bare id: any type
        ({"subject": "Group/p1"}, ["group-p1"]),
        ({"patient": "p1,p2"}, [*P1, "p2-obs"]),
        ({"patient": "p3"}, []),
    ],
    ids=[
        "patient-id",
        "patient-reference",
        "absolute-url",
        "version-specific",
        "subject-patient",
        "subject-any-type",
        "subject-group",
        "or",
        "no-match",
    ],
)
def test_reference_forms(
    subjects: EmbeddedStore, params: SearchParams, expected: list[str]
) -> None:
    assert ids(subjects, "Observation", params) == sorted(expected)


@pytest.mark.parametrize(
    "params",
    [{"patient": "Group/p1"}, {"patient": "not a reference"}, {"subject": "Foo/1"}],
    ids=["wrong-target-type", "garbage", "unknown-type"],
)
def test_impossible_references_are_invalid(subjects: EmbeddedStore, params: SearchParams) -> None:
    assert refused(subjects, "Observation", params).code == "invalid"


def test_each_type_has_its_patient_and_subject_parameters(store: EmbeddedStore) -> None:
    subject = {"reference": "Patient/p1"}
    store.transaction(
        transaction(
            put(
                "DiagnosticReport/dr",
                {
                    "resourceType": "DiagnosticReport",
                    "id": "dr",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": subject,
                },
            ),
            put(
                "QuestionnaireResponse/qr",
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": "qr",
                    "status": "completed",
                    "subject": subject,
                },
            ),
            put(
                "BodyStructure/bs",
                {"resourceType": "BodyStructure", "id": "bs", "patient": subject},
            ),
            put(
                "Provenance/pv",
                {
                    "resourceType": "Provenance",
                    "id": "pv",
                    "target": [subject],
                    "recorded": "2025-01-13T10:00:00Z",
                    "agent": [],
                },
            ),
        )
    )
    for resource_type, expected in [
        ("DiagnosticReport", "dr"),
        ("QuestionnaireResponse", "qr"),
        ("BodyStructure", "bs"),
        ("Provenance", "pv"),
    ]:
        assert ids(store, resource_type, {"patient": "p1"}) == [expected]
    assert ids(store, "DiagnosticReport", {"subject": "Patient/p1"}) == ["dr"]
    assert ids(store, "Provenance", {"target": "Patient/p1"}) == ["pv"]


def test_diagnostic_report_result_and_questionnaire_canonical(store: EmbeddedStore) -> None:
    form = "http://fhirnet.example/Questionnaire/gep-net"
    store.transaction(
        transaction(
            put(
                "DiagnosticReport/dr",
                {
                    "resourceType": "DiagnosticReport",
                    "id": "dr",
                    "status": "final",
                    "code": {"text": "x"},
                    "result": [{"reference": "Observation/o1"}],
                },
            ),
            put(
                "QuestionnaireResponse/v1",
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": "v1",
                    "status": "completed",
                    "questionnaire": f"{form}|1.0",
                },
            ),
            put(
                "QuestionnaireResponse/plain",
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": "plain",
                    "status": "completed",
                    "questionnaire": form,
                },
            ),
        )
    )
    assert ids(store, "DiagnosticReport", {"result": "Observation/o1"}) == ["dr"]
    assert ids(store, "QuestionnaireResponse", {"questionnaire": form}) == ["plain", "v1"]
    assert ids(store, "QuestionnaireResponse", {"questionnaire": f"{form}|1.0"}) == ["v1"]
    assert ids(store, "QuestionnaireResponse", {"questionnaire": f"{form}|2.0"}) == []


# -- dates -----------------------------------------------------------------------------------


@pytest.fixture
def dated(store: EmbeddedStore) -> EmbeddedStore:
    def effective(resource_id: str, **value: object) -> Json:
        resource = observation(id=resource_id)
        del resource["effectiveDateTime"]
        return {**resource, **value}

    save(
        store,
        effective("day", effectiveDateTime="2025-01-13"),
        effective("noon", effectiveDateTime="2025-01-13T12:00:00Z"),
        effective("late", effectiveDateTime="2025-01-14T01:00:00+02:00"),  # 13th, 23:00 UTC
        effective("next", effectiveDateTime="2025-01-14T00:00:00Z"),
        effective("month", effectiveDateTime="2025-01"),
        effective("period", effectivePeriod={"start": "2025-01-12", "end": "2025-01-13"}),
        effective("open", effectivePeriod={"start": "2025-01-13T06:00:00Z"}),  # no end
        effective("instant", effectiveInstant="2025-01-13T12:00:00.250Z"),
        effective("none"),
        effective("garbage", effectiveDateTime="13/01/2025"),  # not indexed, never matched
    )
    return store


ON_13TH = ["day", "instant", "late", "noon"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # eq: the search range contains the target range.
        ("2025-01-13", ON_13TH),
        ("eq2025-01-13", ON_13TH),
        ("eq2025-01", [*ON_13TH, "month", "next", "period"]),
        ("2025", [*ON_13TH, "month", "next", "period"]),
        ("2025-01-13T12:00:00Z", ["instant", "noon"]),  # second precision
        ("2025-01-13T12:00Z", ["instant", "noon"]),  # minute precision
        ("2025-01-13T12:00:00.25Z", ["instant"]),  # hundredth of a second
        ("2025-01-13T23:00:00Z", ["late"]),  # the target's +02:00 converted
        ("2025-01-14T01:00:00+02:00", ["late"]),  # and the search value's
        ("2025-01-14T01:00:00 02:00", ["late"]),  # "+" sent unencoded arrives as a space
        # ne: the search range does not contain the target range.
        ("ne2025-01-13", ["month", "next", "open", "period"]),
        # lt / le: the range below the search value overlaps the target (le: or eq).
        ("lt2025-01-13", ["month", "period"]),
        ("le2025-01-13", [*ON_13TH, "month", "period"]),
        ("lt2025-01-13T06:00:00+02:00", ["day", "month", "period"]),
        # gt / ge: the range above the search value overlaps the target (ge: or eq).
        ("gt2025-01-13", ["month", "next", "open"]),
        ("ge2025-01-13", [*ON_13TH, "month", "next", "open"]),
        ("gt2025-01-13T12:00:00Z", ["day", "late", "month", "next", "open", "period"]),
        # sa / eb: starts after / ends before, no overlap at all.
        ("sa2025-01-13", ["next"]),
        ("eb2025-01-14", [*ON_13TH, "period"]),
        ("eb2025-01-13", []),
        # two values: OR
        ("lt2025-01-13,sa2025-01-13", ["month", "next", "period"]),
    ],
)
def test_date_prefixes_follow_r4_range_semantics(
    dated: EmbeddedStore, value: str, expected: list[str]
) -> None:
    assert ids(dated, "Observation", {"date": value}) == sorted(expected)


def test_repeated_date_parameters_are_and(dated: EmbeddedStore) -> None:
    window = ["ge2025-01-13T06:00:00Z", "lt2025-01-14"]
    # ge and lt test overlap, not containment: the whole day, the month and the period all
    # reach into the window; only "next" (starting at its end) does not.
    assert ids(dated, "Observation", {"date": window}) == [
        "day",
        "instant",
        "late",
        "month",
        "noon",
        "open",
        "period",
    ]
    # Containment needs sa/eb: start at or after 06:00:01, end before the 14th.
    contained = ["sa2025-01-13T06:00:00Z", "eb2025-01-14"]
    assert ids(dated, "Observation", {"date": contained}) == ["instant", "late", "noon"]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2025-13", "invalid"),
        ("2025-02-30", "invalid"),
        ("2024-02-30", "invalid"),
        ("2025-01-13T24:00:00Z", "invalid"),
        ("2025-01-13T12:00:60Z", "invalid"),
        ("2025-01-13T12:00:00+15:00", "invalid"),
        ("0000", "invalid"),
        ("13-01-2025", "invalid"),
        ("xx2025", "invalid"),
        ("ap2025", "not-supported"),
        ("२०२५", "invalid"),  # Devanagari digits: int() would read them
    ],
)
def test_malformed_dates_are_refused(dated: EmbeddedStore, value: str, code: str) -> None:
    assert refused(dated, "Observation", {"date": value}).code == code


def test_leap_days_and_year_9999_are_dates(dated: EmbeddedStore) -> None:
    assert ids(dated, "Observation", {"date": "2024-02-29"}) == []
    assert ids(dated, "Observation", {"date": "lt9999-12-31T23:59:59Z"}) != []
    assert ids(dated, "Observation", {"date": "gt9999"}) == ["open"]


def test_diagnostic_report_date_and_questionnaire_response_authored(store: EmbeddedStore) -> None:
    store.transaction(
        transaction(
            put(
                "DiagnosticReport/dr",
                {
                    "resourceType": "DiagnosticReport",
                    "id": "dr",
                    "status": "final",
                    "code": {"text": "x"},
                    "effectivePeriod": {"start": "2025-01-10", "end": "2025-01-13"},
                },
            ),
            put(
                "QuestionnaireResponse/qr",
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": "qr",
                    "status": "completed",
                    "authored": "2025-01-13T10:15:00+01:00",
                },
            ),
        )
    )
    assert ids(store, "DiagnosticReport", {"date": "2025-01"}) == ["dr"]
    assert ids(store, "DiagnosticReport", {"date": "gt2025-01-12"}) == ["dr"]
    assert ids(store, "QuestionnaireResponse", {"authored": "2025-01-13T09:15:00Z"}) == ["qr"]
    # R4's QuestionnaireResponse has `authored`, no `date`.
    assert refused(store, "QuestionnaireResponse", {"date": "2025"}).code == "not-supported"


def test_last_updated_is_searchable_to_the_microsecond() -> None:
    clock = Clock(datetime(2025, 1, 13, 11, 30, tzinfo=CEST))
    with EmbeddedStore.in_memory(clock=clock) as store:
        for name in ("first", "second", "third"):  # one transaction each: 09:30:00, :01, :02 UTC
            save(store, observation(id=name))

        def found(value: str | list[str]) -> list[str]:
            return ids(store, "Observation", {"_lastUpdated": value})

        assert found("2025-01-13T09:30:01Z") == ["second"]
        assert found("2025-01-13T11:30:01+02:00") == ["second"]
        assert found("2025-01-13T09:30:01.000000Z") == ["second"]
        assert found("2025-01-13T09:30:01.000001Z") == []
        assert found("gt2025-01-13T09:30:00Z") == ["second", "third"]
        assert found("ge2025-01-13T09:30:01Z") == ["second", "third"]
        assert found("lt2025-01-13T09:30:01Z") == ["first"]
        assert found("le2025-01-13T09:30:01Z") == ["first", "second"]
        assert found("2025-01-13T09:30Z") == ["first", "second", "third"]
        assert found(["gt2025-01-13T09:30:00Z", "lt2025-01-13T09:30:02Z"]) == ["second"]
        assert found("ne2025-01-13T09:30:01Z") == ["first", "third"]
        assert found("sa2025-01-13T09:30:01Z") == ["third"]
        assert found("eb2025-01-13T09:30:01Z") == ["first"]


# -- sort and paging -------------------------------------------------------------------------


@pytest.fixture
def sortable(store: EmbeddedStore) -> EmbeddedStore:
    def at(resource_id: str, **value: object) -> Json:
        resource = observation(id=resource_id)
        del resource["effectiveDateTime"]
        return {**resource, **value}

    save(
        store,
        at("b-jan15", effectiveDateTime="2025-01-15"),
        at("a-jan15", effectiveDateTime="2025-01-15"),  # tie with b-jan15: ids decide
        at("period", effectivePeriod={"start": "2025-01-10", "end": "2025-01-20"}),
        at("jan12", effectiveDateTime="2025-01-12T08:00:00Z"),
        at("undated"),
        at("feb", effectiveDateTime="2025-02"),
    )
    return store


def test_sort_by_date_ascending_uses_each_values_earliest_instant(sortable: EmbeddedStore) -> None:
    assert ids(sortable, "Observation", {"_sort": "date"}) == [
        "period",  # starts on the 10th
        "jan12",
        "a-jan15",
        "b-jan15",
        "feb",
        "undated",  # no value: last
    ]


def test_sort_by_date_descending_uses_each_values_latest_instant(sortable: EmbeddedStore) -> None:
    assert ids(sortable, "Observation", {"_sort": "-date"}) == [
        "feb",
        "period",  # ends on the 20th
        "a-jan15",  # ties are by ascending id in both directions
        "b-jan15",
        "jan12",
        "undated",
    ]


def test_sort_by_id_and_by_last_updated(sortable: EmbeddedStore) -> None:
    everything = ["a-jan15", "b-jan15", "feb", "jan12", "period", "undated"]
    assert ids(sortable, "Observation", {}) == everything  # default: by id
    assert ids(sortable, "Observation", {"_sort": "-_id"}) == everything[::-1]
    # All six were written by one transaction, so lastUpdated ties everywhere; ids decide.
    assert ids(sortable, "Observation", {"_sort": "-_lastUpdated"}) == everything
    save(sortable, observation(id="zz-later"))
    assert ids(sortable, "Observation", {"_sort": "-_lastUpdated"})[0] == "zz-later"
    assert ids(sortable, "Observation", {"_sort": "_lastUpdated"})[-1] == "zz-later"


@pytest.mark.parametrize("count", [1, 2, 3, 5, 6, 50])
@pytest.mark.parametrize("sort", ["date", "-date", "_lastUpdated", "-_id", "-date,_lastUpdated"])
def test_paging_returns_every_match_once_in_sort_order(
    sortable: EmbeddedStore, count: int, sort: str
) -> None:
    whole = ids(sortable, "Observation", {"_sort": sort, "_count": "1000"})
    paged = ids(sortable, "Observation", {"_sort": sort, "_count": str(count)})
    assert paged == whole
    assert len(whole) == 6


def test_a_page_carries_the_total_and_a_next_cursor_until_the_last(sortable: EmbeddedStore) -> None:
    first = sortable.search_page("Observation", {"_sort": "-date", "_count": "4"})
    assert (first.total, len(first.matches)) == (6, 4)
    assert first.next_cursor is not None
    last = sortable.search_page(
        "Observation", {"_sort": "-date", "_count": "4", CURSOR: first.next_cursor}
    )
    assert (last.total, len(last.matches), last.next_cursor) == (6, 2, None)


def test_paging_is_stable_while_resources_are_created_and_deleted(sortable: EmbeddedStore) -> None:
    params = {"_sort": "date", "_count": "3"}
    first = sortable.search_page("Observation", params)
    assert [r["id"] for r in first.matches] == ["period", "jan12", "a-jan15"]
    # Between the pages: one created before the cursor, one of the first page deleted.
    save(sortable, observation(id="early", effectiveDateTime="2025-01-01"))
    sortable.transaction(transaction(delete("Observation/jan12")))
    assert first.next_cursor is not None
    second = sortable.search_page("Observation", {**params, CURSOR: first.next_cursor})
    # An offset would now repeat a-jan15; the cursor continues right after it.
    assert [r["id"] for r in second.matches] == ["b-jan15", "feb", "undated"]


def test_count_zero_gives_the_total_only(sortable: EmbeddedStore) -> None:
    page = sortable.search_page("Observation", {"_count": "0"})
    assert (page.total, page.matches, page.next_cursor) == (6, [], None)


def test_count_defaults_to_50_and_is_capped(store: EmbeddedStore) -> None:
    save(store, *(observation(id=f"o{n:04d}") for n in range(1001)))
    assert len(store.search_page("Observation", {}).matches) == 50
    page = store.search_page("Observation", {"_count": "5000"})
    assert (len(page.matches), page.total) == (MAX_COUNT, 1001)
    assert page.next_cursor is not None


def test_a_cursor_only_continues_its_own_search(sortable: EmbeddedStore) -> None:
    page = sortable.search_page("Observation", {"_sort": "date", "_count": "2"})
    assert page.next_cursor is not None
    for params in (
        {"_sort": "-date", "_count": "2"},  # another sort
        {"_sort": "date", "status": "final"},  # another filter
        {"_sort": "date,_id"},  # another key list
    ):
        error = refused(sortable, "Observation", {**params, CURSOR: page.next_cursor})
        assert error.code == "invalid"
    # The page size may change between pages.
    rest = sortable.search_page(
        "Observation", {"_sort": "date", "_count": "10", CURSOR: page.next_cursor}
    )
    assert len(rest.matches) == 4


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "", "eyJ2IjoxfQ", "eyJ2IjoxLCJxIjoiMCIsImsiOlsxLCJhIl19", "!!!", "e30"],
)
def test_a_forged_cursor_is_invalid(sortable: EmbeddedStore, cursor: str) -> None:
    if not cursor:
        # An empty value is ignored (R4 §3.1.1.1): the first page.
        assert sortable.search_page("Observation", {CURSOR: cursor}).total == 6
        return
    assert refused(sortable, "Observation", {CURSOR: cursor}).code == "invalid"


# -- _include --------------------------------------------------------------------------------


@pytest.fixture
def reports(store: EmbeddedStore) -> EmbeddedStore:
    def report(resource_id: str, *results: str) -> Json:
        return {
            "resourceType": "DiagnosticReport",
            "id": resource_id,
            "status": "final",
            "code": {"text": "RECIST"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2025-01-13",
            "result": [{"reference": f"Observation/{r}"} for r in results],
        }

    save(
        store,
        observation(id="o1"),
        observation(id="o2"),
        observation(id="o3"),
        observation(id="gone"),
        {"resourceType": "Patient", "id": "p1"},
        report("r1", "o1", "o2"),
        report("r2", "o2", "o3", "gone", "missing"),
    )
    store.transaction(transaction(delete("Observation/gone")))
    return store


def test_include_adds_the_results_of_the_page_once_each(reports: EmbeddedStore) -> None:
    page = reports.search_page(
        "DiagnosticReport", {"patient": "p1", "_include": "DiagnosticReport:result"}
    )
    assert [r["id"] for r in page.matches] == ["r1", "r2"]
    assert [r["id"] for r in page.included] == ["o1", "o2", "o3"]  # not deleted, not missing
    assert page.total == 2  # included resources are not counted


def test_include_follows_only_the_current_page(reports: EmbeddedStore) -> None:
    page = reports.search_page(
        "DiagnosticReport", {"_include": "DiagnosticReport:result", "_count": "1"}
    )
    assert [r["id"] for r in page.included] == ["o1", "o2"]


def test_include_with_a_target_type_and_other_reference_parameters(reports: EmbeddedStore) -> None:
    with_target = reports.search_page(
        "DiagnosticReport", {"_id": "r1", "_include": "DiagnosticReport:result:Observation"}
    )
    assert [r["id"] for r in with_target.included] == ["o1", "o2"]
    subjects = reports.search_page(
        "DiagnosticReport",
        {"_id": "r1", "_include": ["DiagnosticReport:subject", "DiagnosticReport:result"]},
    )
    assert [(r["resourceType"], r["id"]) for r in subjects.included] == [
        ("Observation", "o1"),
        ("Observation", "o2"),
        ("Patient", "p1"),
    ]


def test_search_yields_matches_and_included_resources_of_every_page(reports: EmbeddedStore) -> None:
    found = reports.search(
        "DiagnosticReport", {"_include": "DiagnosticReport:result", "_count": "1"}
    )
    assert [(r["resourceType"], r["id"]) for r in found] == [
        ("DiagnosticReport", "r1"),
        ("Observation", "o1"),
        ("Observation", "o2"),
        ("DiagnosticReport", "r2"),
        ("Observation", "o2"),  # included again by the second page, as a server's pages do
        ("Observation", "o3"),
    ]


@pytest.mark.parametrize(
    ("include", "code"),
    [
        ("DiagnosticReport:code", "not-supported"),  # not a reference parameter
        ("DiagnosticReport:performer", "not-supported"),  # not supported here
        ("Observation:subject", "not-supported"),  # another type's parameter
        ("DiagnosticReport:*", "not-supported"),
        ("DiagnosticReport:result:Patient", "invalid"),  # result refers to Observations
        ("DiagnosticReport:subject:Nonsense", "invalid"),
    ],
)
def test_unsupported_includes_are_refused(reports: EmbeddedStore, include: str, code: str) -> None:
    assert refused(reports, "DiagnosticReport", {"_include": include}).code == code


# -- strictness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "params", "code"),
    [
        ("Observation", {"foo": "bar"}, "not-supported"),
        ("Observation", {"code:text": "x"}, "not-supported"),  # modifiers
        ("Observation", {"subject:Patient": "p1"}, "not-supported"),
        ("Observation", {"date:missing": "true"}, "not-supported"),
        ("Observation", {"subject.name": "x"}, "not-supported"),  # chaining
        ("Observation", {"_has:Observation:patient:code": "x"}, "not-supported"),
        ("Observation", {"_summary": "maybe"}, "invalid"),
        ("Observation", {"_elements": "nonsense"}, "invalid"),
        ("Observation", {"_summary": "true", "_elements": "id"}, "not-supported"),
        ("Observation", {"_contained": "true"}, "not-supported"),
        ("Observation", {"_include:iterate": "Observation:subject"}, "not-supported"),
        ("Observation", {"_revinclude": "Provenance:target"}, "not-supported"),
        ("Observation", {"_sort": "status"}, "not-supported"),
        ("Observation", {"_sort": "date,date"}, "invalid"),
        ("Observation", {"_sort": ["date", "_id"]}, "invalid"),  # given twice
        ("Observation", {"_count": "ten"}, "invalid"),
        ("Observation", {"_count": "-1"}, "invalid"),
        ("Observation", {"_count": "1" * 5000}, "invalid"),
        ("Observation", {"_total": "always"}, "invalid"),
        ("Observation", {"_format": "json"}, "not-supported"),  # the HTTP layer's business
        ("Patient", {"patient": "p1"}, "not-supported"),  # R4 Patient has no `patient`
        ("Patient", {"_sort": "date"}, "not-supported"),
        ("NotAType", {}, "not-supported"),
        ("Observation", {"code": ",".join(["a"] * 101)}, "invalid"),  # too many values
    ],
)
def test_what_the_store_cannot_honour_is_refused_not_ignored(
    store: EmbeddedStore, resource_type: str, params: SearchParams, code: str
) -> None:
    error = refused(store, resource_type, params)
    assert error.code == code
    assert error.status == 400
    assert isinstance(error.outcome, dict)
    assert error.outcome["resourceType"] == "OperationOutcome"
    assert error.outcome["issue"][0]["code"] == code


def test_an_unknown_parameter_error_lists_the_supported_ones(store: EmbeddedStore) -> None:
    message = str(refused(store, "Observation", {"foo": "bar"}))
    for name in (
        "_id",
        "_lastUpdated",
        "code",
        "date",
        "identifier",
        "patient",
        "status",
        "subject",
        "_count",
        "_sort",
        "_include",
    ):
        assert name in message


def test_empty_values_and_accepted_result_parameters_change_nothing(
    sortable: EmbeddedStore,
) -> None:
    everything = ids(sortable, "Observation", {})
    assert ids(sortable, "Observation", {"code": "", "_total": "accurate"}) == everything
    assert ids(sortable, "Observation", {"code": ["21907-1", ""]}) == everything


def test_the_search_error_is_a_rejection_like_a_remote_servers(store: EmbeddedStore) -> None:
    # Callers of the FhirStore port catch one error type, whichever store is configured.
    from fhirnet.errors import FhirServerRejectedError

    with pytest.raises(FhirServerRejectedError):
        list(store.search("Observation", {"foo": "bar"}))


# -- read ------------------------------------------------------------------------------------


def test_read_of_a_missing_resource_is_none(store: EmbeddedStore) -> None:
    assert store.read("Observation", "nothing") is None
    assert store.vread("Observation", "nothing", "1") is None


@pytest.mark.parametrize(
    ("resource_type", "resource_id"),
    [("Observation", "a/b"), ("Observation", ""), ("Observation", "x" * 65), ("Foo", "a")],
)
def test_read_of_invalid_syntax_is_a_value_error(
    store: EmbeddedStore, resource_type: str, resource_id: str
) -> None:
    with pytest.raises(ValueError, match="not a FHIR"):
        store.read(resource_type, resource_id)


@pytest.mark.parametrize("version", ["0", "x", "1" * 20, "-1", "२"])
def test_vread_of_an_impossible_version_is_none(store: EmbeddedStore, version: str) -> None:
    save(store, observation(id="a"))
    assert store.vread("Observation", "a", version) is None


def test_index_rows_follow_updates_and_deletes(store: EmbeddedStore) -> None:
    save(store, observation(id="a", status="preliminary"))
    save(store, observation(id="a", status="final"))
    assert ids(store, "Observation", {"status": "preliminary"}) == []
    assert ids(store, "Observation", {"status": "final"}) == ["a"]
    store.transaction(transaction(delete("Observation/a")))
    assert ids(store, "Observation", {"status": "final"}) == []


def test_search_times_are_not_confused_by_a_clock_in_another_timezone() -> None:
    # Written at 01:30+02:00 on the 14th, i.e. 23:30 UTC on the 13th.
    clock = Clock(datetime(2025, 1, 14, 1, 30, tzinfo=CEST))
    with EmbeddedStore.in_memory(clock=clock) as store:
        save(store, observation(id="a", identifier=identifier("a")))
        assert ids(store, "Observation", {"_lastUpdated": "2025-01-13"}) == ["a"]
        stored = store.read("Observation", "a")
        assert stored is not None
        assert stored["meta"]["lastUpdated"] == "2025-01-13T23:30:00.000000Z"
        later = clock.now + timedelta(days=1)
        assert ids(store, "Observation", {"_lastUpdated": f"gt{later:%Y-%m-%d}"}) == []


def test_a_cursor_with_the_right_fingerprint_but_wrong_values_is_invalid(
    sortable: EmbeddedStore,
) -> None:
    import base64
    import json

    from fhirnet.adapters.store.parser import parse_query

    fingerprint = parse_query("Observation", {"_sort": "date"}).fingerprint

    def cursor(keys: list[object]) -> str:
        body = json.dumps({"v": 1, "q": fingerprint, "k": keys}).encode()
        return base64.urlsafe_b64encode(body).decode()

    good = sortable.search_page("Observation", {"_sort": "date", CURSOR: cursor([0, "a"])})
    assert good.total == 6
    forged: list[list[object]] = [[0], [0, "a", "b"], ["0", "a"], [0, 1], [True, "a"], [2**64, "a"]]
    for keys in forged:
        error = refused(sortable, "Observation", {"_sort": "date", CURSOR: cursor(keys)})
        assert error.code == "invalid"


@pytest.mark.parametrize(
    "params",
    [{"code": [None]}, {"code": ["\ud800"]}, {"\udfff": "x"}, {"code": [1]}],
    ids=["none", "lone-surrogate-value", "lone-surrogate-name", "number"],
)
def test_parameters_that_are_not_text_are_invalid(store: EmbeddedStore, params: object) -> None:
    assert refused(store, "Observation", params).code == "invalid"  # type: ignore[arg-type]
