"""Fixtures of the use-case tests: the form catalog, an embedded store in a temporary directory
(recording what is sent to it), file locks beside it and a :class:`Context` over them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.fhir.profiles import Catalog, load_catalog
from fhirnet.services import Context
from fhirnet.services.audits import AuditTrail
from tests.submissions import NOW, RecordingStore


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(Settings().profiles_dir)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with EmbeddedStore.open(tmp_path / "data") as store:
        yield store


@pytest.fixture
def store(embedded: EmbeddedStore) -> RecordingStore:
    return RecordingStore(embedded)


@pytest.fixture
def context(store: RecordingStore, catalog: Catalog, tmp_path: Path) -> Context:
    """The recording store, the catalog, file locks, :data:`~tests.submissions.NOW` and an
    audit trail (as the web layer always sets one)."""
    locks = FileLocks(tmp_path / "data" / "locks", timeout=10)
    return Context(
        store=store, catalog=catalog, locks=locks, now=NOW, audit=AuditTrail(requester="key:0")
    )
