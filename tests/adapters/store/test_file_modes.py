"""Patient data files are the owner's only (docs/security.md, finding 3 of the security review):
under the usual umask 022 the data directory was 0755 and the store, its WAL/SHM and the outbox
(which holds submitted forms) 0644, readable by every local user."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.adapters.store.sqlite import DATABASE_FILE
from fhirnet.ports import Kind
from tests.adapters.store import observation, put, transaction

T0 = 1_700_000_000.0


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The umask most systems start services with; restored afterwards."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def companions(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]


@pytest.mark.usefixtures("umask_022")
def test_the_store_its_wal_and_shm_and_the_data_directory_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "fhirnet"

    with EmbeddedStore.open(data_dir) as store:
        store.transaction(transaction(put("Observation/a", observation(id="a"))))
        database = data_dir / DATABASE_FILE
        files = [database, *companions(database)]
        assert all(path.exists() for path in files)  # WAL mode, open connection
        assert {str(p.name): mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(data_dir) == 0o700
    assert mode(data_dir.parent) == 0o700  # created by fhirnet too


@pytest.mark.usefixtures("umask_022")
def test_the_outbox_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "outbox.sqlite3"
    outbox = SqliteOutbox(path)
    try:
        outbox.add(
            kind=Kind.FORM,
            body={"resourceType": "QuestionnaireResponse"},
            patients={"p1"},
            requester="key:1",
            now=T0,
        )
        files = [path, *companions(path)]
        assert all(p.exists() for p in files)
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        outbox.close()
    assert mode(path.parent) == 0o700


@pytest.mark.usefixtures("umask_022")
def test_files_and_directory_found_readable_are_tightened_when_opened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedStore.open(data_dir) as store:
        store.transaction(transaction(put("Observation/a", observation(id="a"))))
    database = data_dir / DATABASE_FILE
    loose = [database, *(p for p in companions(database) if p.exists())]
    for path in loose:
        path.chmod(0o644)
    data_dir.chmod(0o755)

    with EmbeddedStore.open(data_dir) as store:
        assert store.read("Observation", "a") is not None
        assert mode(data_dir) == 0o700
        assert {p.name: mode(p) for p in loose} == {p.name: 0o600 for p in loose}
