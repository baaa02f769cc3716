"""Properties of the embedded store's search: whatever parameters arrive, a search answers a page
or refuses with :class:`SearchParameterError`, never anything else; date parsing never raises;
paging in any page size returns what one page returns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirnet.adapters.store import CURSOR, EmbeddedStore, SearchParameterError
from fhirnet.adapters.store.dates import parse_range
from tests.adapters.store import SYSTEM, identifier, observation, put, transaction

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same examples on every run; explore with --hypothesis-seed=N
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

TYPES = ["Observation", "DiagnosticReport", "QuestionnaireResponse", "Provenance", "Patient"]
NAMES = [
    "_id",
    "_lastUpdated",
    "identifier",
    "subject",
    "patient",
    "code",
    "date",
    "status",
    "authored",
    "questionnaire",
    "result",
    "target",
    "_count",
    "_sort",
    "_include",
    "_total",
    CURSOR,
    "code:text",
    "subject.name",
    "_summary",
    "",
]
FRAGMENTS = [
    "eq",
    "ne",
    "gt",
    "lt",
    "ge",
    "le",
    "sa",
    "eb",
    "ap",
    "2025",
    "-01",
    "-13",
    "T10:00",
    ":00",
    ".5",
    "Z",
    "+02:00",
    " 02:00",
    "|",
    "\\|",
    ",",
    "\\,",
    "\\",
    "/",
    "Patient",
    "p1",
    "http://loinc.org",
    "21907-1",
    "-date",
    "_lastUpdated",
    "DiagnosticReport:result",
    "0",
    "1000",
    "final",
    "_history",
    "eyJ2IjoxfQ",
    "\x00",
    "☃",
    "\U0001d7d9",
    "٣",
]
values = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=6).map("".join)
params = st.dictionaries(
    st.sampled_from(NAMES) | st.text(max_size=10),
    values | st.lists(values, max_size=3),
    max_size=5,
)


@pytest.fixture(scope="module")
def store() -> Iterator[EmbeddedStore]:
    with EmbeddedStore.in_memory() as store:
        store.transaction(
            transaction(
                *(
                    put(
                        f"Observation/o{n}",
                        observation(
                            id=f"o{n}",
                            identifier=identifier(f"v{n}"),
                            effectiveDateTime=f"2025-01-{n + 10:02d}",
                        ),
                    )
                    for n in range(12)
                ),
                put(
                    "DiagnosticReport/r",
                    {
                        "resourceType": "DiagnosticReport",
                        "id": "r",
                        "status": "final",
                        "code": {"text": "x"},
                        "result": [{"reference": "Observation/o1"}],
                    },
                ),
            )
        )
        yield store


@FUZZ
@given(resource_type=st.sampled_from(TYPES) | st.text(max_size=12), query=params)
def test_any_search_answers_a_page_or_a_search_error(
    store: EmbeddedStore, resource_type: str, query: dict[str, str | list[str]]
) -> None:
    try:
        page = store.search_page(resource_type, query)
    except SearchParameterError as error:
        refusal = error
    else:
        assert 0 <= len(page.matches) <= page.total
        return
    assert refusal.status == 400
    assert refusal.code in ("invalid", "not-supported")


@FUZZ
@given(text=st.text(max_size=40) | values)
def test_date_parsing_never_raises_and_ranges_are_never_empty(text: str) -> None:
    found = parse_range(text)
    if found is not None:
        assert found.low < found.high


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    count=st.integers(min_value=1, max_value=13),
    sort=st.sampled_from(["date", "-date", "_id", "-_id", "_lastUpdated,-date", "-_lastUpdated"]),
    date=st.sampled_from(["", "ge2025-01-12", "lt2025-01-15", "ne2025-01-13"]),
)
def test_paging_in_any_page_size_returns_the_single_page_result(
    store: EmbeddedStore, count: int, sort: str, date: str
) -> None:
    base = {"_sort": sort, "date": date, "identifier": f"{SYSTEM}|"}
    whole = [r["id"] for r in store.search_page("Observation", {**base, "_count": "100"}).matches]
    paged = [r["id"] for r in store.search("Observation", {**base, "_count": str(count)})]
    assert paged == whole
