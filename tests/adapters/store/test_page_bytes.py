"""Search pages are bounded by bytes as well as by ``_count`` (finding 4g of the security review:
one page of AuditEvents reached 54 MB): the page ends early, and its ``next`` cursor goes on
where it stopped, so paging still returns every match exactly once."""

from __future__ import annotations

from fhirnet.adapters.store import EmbeddedStore
from tests.adapters.store import observation, put, transaction


def test_a_page_ends_before_its_matches_exceed_the_byte_bound_and_paging_goes_on() -> None:
    padding = "x" * 1000  # each Observation is a little over 1 KB
    store = EmbeddedStore.in_memory(max_page_bytes=5_000)
    ids = [f"o{n:02d}" for n in range(12)]
    store.transaction(
        transaction(*(put(f"Observation/{i}", observation(id=i, comment=padding)) for i in ids))
    )

    first = store.search_page("Observation", {"_count": "1000"})
    seen = [r["id"] for r in store.search("Observation", {"_count": "1000"})]

    assert 1 <= len(first.matches) <= 4
    assert first.next_cursor is not None
    assert first.total == len(ids)
    assert seen == ids


def test_one_match_larger_than_the_bound_is_still_given() -> None:
    store = EmbeddedStore.in_memory(max_page_bytes=10)
    store.transaction(transaction(put("Observation/big", observation(id="big"))))

    page = store.search_page("Observation", {})

    assert [r["id"] for r in page.matches] == ["big"]
    assert page.next_cursor is None
