"""The embedded store is interchangeable with the HTTP client: it implements the ``FhirStore``
port, and passes the scenarios ``FhirClient`` is tested with against a real FHIR server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.ports import FhirStore
from tests.integration import test_client_against_server as remote


@pytest.fixture
def store() -> Iterator[EmbeddedStore]:
    with EmbeddedStore.in_memory() as store:
        yield store


def test_the_embedded_store_implements_the_port(store: EmbeddedStore) -> None:
    port: FhirStore = store  # checked by mypy; the asserts check it at run time too
    assert callable(port.read)
    assert callable(port.search)
    assert callable(port.transaction)


SCENARIOS: list[Callable[[Any, str], None]] = [
    remote.test_a_transaction_creates_resources_and_resolves_urn_uuid_references,
    remote.test_a_conditional_create_does_not_duplicate,
    remote.test_a_transaction_that_fails_after_writing_is_rolled_back_entirely,
    remote.test_a_transaction_with_a_dangling_reference_is_refused_and_writes_nothing,
    remote.test_search_that_matches_nothing_yields_nothing,
    remote.test_read_of_a_resource_that_does_not_exist_is_none,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__[5:])
def test_the_real_server_scenarios_hold_for_the_embedded_store(
    store: EmbeddedStore, scenario: Callable[[Any, str], None]
) -> None:
    # The scenarios are written against the port's behaviour, not the client's internals.
    scenario(cast(FhirClient, store), f"embedded-{uuid.uuid4().hex[:8]}")


def test_search_follows_paging_across_several_pages(store: EmbeddedStore) -> None:
    # The remote scenario counts HTTP requests; here, the pages behind search() are counted.
    unique = f"embedded-{uuid.uuid4().hex[:8]}"
    created = store.transaction(
        remote.transaction(*(remote.patient_entry(unique) for _ in range(7)))
    )
    created_ids = {remote.located(entry)[1] for entry in created["entry"]}
    params = {"identifier": f"{remote.SYSTEM}|{unique}", "_count": "3"}
    assert sorted(r["id"] for r in store.search("Patient", params)) == sorted(created_ids)
    first = store.search_page("Patient", params)
    assert (first.total, len(first.matches), first.next_cursor is not None) == (7, 3, True)
