"""Versions and their search index rows in the embedded store: whatever the sequence of creates,
updates, deletions, re-creations and refused transactions, a resource's ``search_index`` rows are
exactly those of its current content (none once deleted), never a left-over or a duplicate."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.adapters.store.parameters import index_rows
from fhirnet.adapters.store.sqlite import DATABASE_FILE
from fhirnet.errors import FhirServerRejectedError
from tests.adapters.store import (
    Clock,
    Ids,
    delete,
    identifier,
    located,
    observation,
    post,
    put,
    transaction,
    urn,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[EmbeddedStore]:
    with EmbeddedStore.open(data_dir, clock=Clock(), new_id=Ids()) as store:
        yield store


def index_of(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """The stored index rows by ``Type/id``, as ``index_rows`` orders them."""
    connection = sqlite3.connect(data_dir / DATABASE_FILE)
    try:
        rows = connection.execute(
            "SELECT r.type || '/' || r.id, s.param, s.system, s.code, s.low, s.high"
            " FROM search_index s JOIN resources r ON r.rid = s.rid"
        ).fetchall()
    finally:
        connection.close()
    found: dict[str, list[tuple[object, ...]]] = {}
    for name, *row in rows:
        found.setdefault(name, []).append(tuple(row))
    return {name: sorted(rows, key=repr) for name, rows in found.items()}


def expected(store: EmbeddedStore, *names: str) -> dict[str, list[tuple[object, ...]]]:
    """The index rows the current content of each live resource must have."""
    wanted: dict[str, list[tuple[object, ...]]] = {}
    for name in names:
        resource_type, resource_id = name.split("/")
        current = store.read(resource_type, resource_id)
        if current is None:
            continue
        rows = [(r.param, r.system, r.code, r.low, r.high) for r in index_rows(current)]
        if rows:
            wanted[name] = sorted(rows, key=repr)
    return wanted


def test_a_created_resource_has_the_index_rows_of_its_content_once(
    store: EmbeddedStore, data_dir: Path
) -> None:
    answer = store.transaction(
        transaction(post(observation(identifier=identifier("o1")), full_url=urn()))
    )
    name = "/".join(located(answer["entry"][0])[:2])

    assert index_of(data_dir) == expected(store, name)
    assert {row[0] for row in index_of(data_dir)[name]} >= {"identifier", "code", "subject"}


def test_updates_deletions_and_recreations_leave_exactly_the_current_rows(
    store: EmbeddedStore, data_dir: Path
) -> None:
    store.transaction(transaction(put("Observation/o1", observation(id="o1"))))
    store.transaction(
        transaction(
            put(
                "Observation/o1",
                observation(
                    id="o1", identifier=identifier("x"), subject={"reference": "Patient/p2"}
                ),
            )
        )
    )
    assert index_of(data_dir) == expected(store, "Observation/o1")

    store.transaction(transaction(delete("Observation/o1")))
    assert index_of(data_dir) == {}

    store.transaction(transaction(put("Observation/o1", observation(id="o1", status="amended"))))
    assert index_of(data_dir) == expected(store, "Observation/o1")


def test_a_refused_transaction_leaves_no_rows_and_later_creates_index_cleanly(
    store: EmbeddedStore, data_dir: Path
) -> None:
    with pytest.raises(FhirServerRejectedError):
        store.transaction(
            transaction(
                post(observation(identifier=identifier("a"))),
                post(observation(subject={"reference": urn()})),  # unresolved: refused
            )
        )
    assert index_of(data_dir) == {}

    answer = store.transaction(
        transaction(post(observation(identifier=identifier("b"))), post(observation()))
    )
    names = ["/".join(located(entry)[:2]) for entry in answer["entry"]]
    assert index_of(data_dir) == expected(store, *names)
