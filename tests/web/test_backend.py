"""Which store the application works on (``fhirnet.web.backend``): the embedded store, opened on
first use in ``FHIRNET_DATA_DIR``, or the external FHIR server with its auth, whose
CapabilityStatement says how to address what fhirnet writes."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.pg_locks import PostgresLocks
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.adapters.pg_replay_cache import PostgresReplayCache
from fhirnet.adapters.replay_cache import ReplayCache
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import ConfigError, Settings
from fhirnet.errors import FhirServerRejectedError, FhirServerUnavailableError
from fhirnet.fhir.identifiers import DEFAULT_CLIENT_ID_TYPES
from fhirnet.web.backend import (
    Backend,
    open_export_jobs,
    open_outbox,
    outbox_location,
    patient_locks,
    per_host_state,
    used_assertions,
)

SERVER = "https://fhir.test/r4"
#: sekmet-fhir 0.1.1's CapabilityStatement as far as it matters: conditional update by identifier
#: for Observation and DiagnosticReport only.
CAPABILITY = {
    "resourceType": "CapabilityStatement",
    "rest": [
        {
            "mode": "server",
            "resource": [
                {
                    "type": resource_type,
                    "conditionalUpdate": True,
                    "searchParam": [{"name": "identifier", "type": "token"}],
                }
                for resource_type in ("Observation", "DiagnosticReport")
            ],
        }
    ],
}


@pytest.fixture
def external(settings: Settings) -> Settings:
    return dataclasses.replace(settings, fhir_base_url=SERVER)


def test_without_a_fhir_server_the_embedded_store_is_opened_on_first_use(
    settings: Settings,
) -> None:
    backend = Backend(settings)

    assert backend.embedded
    assert backend.server_url is None
    assert not settings.data_dir.exists()  # nothing opened by building the app
    store = backend.embedded_store()
    assert isinstance(store, EmbeddedStore)
    assert Path(store.path) == settings.data_dir / "fhirnet-store.sqlite3"
    assert backend.store() is store
    assert backend.client_id_types() == DEFAULT_CLIENT_ID_TYPES


def test_with_a_fhir_server_its_client_is_the_store(external: Settings) -> None:
    backend = Backend(external)

    assert not backend.embedded
    assert isinstance(backend.store(), FhirClient)
    assert backend.server_url == SERVER
    assert backend.embedded_store() is None


def test_the_servers_capability_is_read_once_for_the_client_id_types(external: Settings) -> None:
    backend = Backend(external)
    with responses.RequestsMock() as http:
        http.get(f"{SERVER}/metadata", json=CAPABILITY)

        first = backend.client_id_types()
        again = backend.client_id_types()

        assert len(http.calls) == 1
    assert first == again == {"Provenance", "QuestionnaireResponse", "BodyStructure"}


def test_a_capability_that_could_not_be_read_is_asked_again_next_time(external: Settings) -> None:
    backend = Backend(external)
    with responses.RequestsMock() as http:
        http.get(f"{SERVER}/metadata", status=404)
        with pytest.raises(FhirServerRejectedError, match="404"):
            backend.client_id_types()
        http.replace(responses.GET, f"{SERVER}/metadata", json=CAPABILITY)

        assert "BodyStructure" in backend.client_id_types()


def test_deliveries_from_the_outbox_try_the_server_once_per_attempt(external: Settings) -> None:
    """The outbox retries with its own backoff: a client retrying inside an attempt kept an
    EHR's request (and the patients' locks) waiting ~2.7 s for a server that was down."""
    backend = Backend(external)
    with responses.RequestsMock() as http:
        http.get(f"{SERVER}/metadata", status=503)
        http.get(f"{SERVER}/QuestionnaireResponse", status=503)

        with pytest.raises(FhirServerUnavailableError):
            backend.client_id_types()
        with pytest.raises(FhirServerUnavailableError):
            list(backend.delivery_store().search("QuestionnaireResponse", {"subject": "Patient/p"}))

        assert len(http.calls) == 2
    assert backend.delivery_store() is not backend.store()


def test_without_an_outbox_requests_are_retried_by_the_client(external: Settings) -> None:
    backend = Backend(dataclasses.replace(external, outbox=False))
    with responses.RequestsMock() as http:
        http.get(f"{SERVER}/metadata", status=503)
        http.get(f"{SERVER}/metadata", json=CAPABILITY)

        assert "BodyStructure" in backend.client_id_types()

        assert len(http.calls) == 2
    assert backend.delivery_store() is backend.store()


def test_a_smart_key_is_read_at_start(external: Settings, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    smart = dataclasses.replace(external, smart_client_id="fhirnet", smart_private_key_file=key)

    assert isinstance(Backend(smart).store(), FhirClient)


@pytest.mark.parametrize("content", [None, b"not a key"], ids=["missing", "not a key"])
def test_an_unusable_smart_key_file_stops_the_start_naming_the_variable(
    external: Settings, tmp_path: Path, content: bytes | None
) -> None:
    key = tmp_path / "key.pem"
    if content is not None:
        key.write_bytes(content)
    smart = dataclasses.replace(external, smart_client_id="fhirnet", smart_private_key_file=key)

    with pytest.raises(ConfigError, match="FHIRNET_SMART_PRIVATE_KEY_FILE"):
        Backend(smart)


def test_without_a_database_url_the_locks_and_outbox_are_files_of_this_host(
    settings: Settings,
) -> None:
    backend = Backend(settings)
    box = open_outbox(settings)
    try:
        assert isinstance(box, SqliteOutbox)
    finally:
        box.close()

    assert isinstance(backend.locks, FileLocks)
    assert backend.locks.directory == settings.data_dir / "locks"
    assert backend.locks.timeout == settings.lock_timeout
    assert outbox_location(settings) == str(settings.data_dir / "outbox.sqlite3")
    custom = dataclasses.replace(settings, outbox_path=settings.data_dir / "box.db")
    assert outbox_location(custom) == str(settings.data_dir / "box.db")


def test_with_a_database_url_the_locks_and_outbox_are_in_postgresql(
    settings: Settings, fresh_database_url: str
) -> None:
    shared = dataclasses.replace(settings, database_url=fresh_database_url, lock_timeout=7.0)
    backend = Backend(shared)
    box = open_outbox(shared)
    try:
        assert isinstance(box, PostgresOutbox)
    finally:
        box.close()

    assert isinstance(backend.locks, PostgresLocks)
    assert backend.locks.timeout == 7.0
    trying = patient_locks(shared, timeout=0)
    assert isinstance(trying, PostgresLocks)
    assert trying.timeout == 0
    with backend.locks.hold(["Patient/p1"]):  # they work
        pass
    assert not settings.data_dir.exists()  # nothing of them on this host's disk


def test_where_the_database_is_never_says_its_password(settings: Settings) -> None:
    shared = dataclasses.replace(
        settings, database_url="postgresql://fhirnet:s3cret@db.example.org:6543/box?sslmode=require"
    )

    assert outbox_location(shared) == "postgresql://db.example.org:6543/box"
    assert "s3cret" not in repr(Backend(shared).locks)


def test_without_a_database_url_assertions_and_export_jobs_stay_on_this_host(
    settings: Settings,
) -> None:
    assert isinstance(used_assertions(settings), ReplayCache)
    jobs = open_export_jobs(settings)
    assert jobs.files_dir == settings.data_dir / "exports"
    assert (settings.data_dir / "exports.sqlite3").is_file()
    assert per_host_state(settings) == ()
    moved = dataclasses.replace(settings, export_dir=settings.data_dir.parent / "nfs" / "exports")
    assert open_export_jobs(moved).files_dir == moved.export_dir


def test_with_a_database_url_assertions_and_export_jobs_are_in_postgresql(
    settings: Settings, fresh_database_url: str, tmp_path: Path
) -> None:
    shared = dataclasses.replace(
        settings, database_url=fresh_database_url, export_dir=tmp_path / "nfs" / "exports"
    )

    assert isinstance(used_assertions(shared), PostgresReplayCache)
    jobs = open_export_jobs(shared)
    job = jobs.create(owner="key:1", request="r", transaction_time="t", now=0.0)
    assert open_export_jobs(shared).get(job.id) == job  # another host sees it
    assert jobs.files_dir == tmp_path / "nfs" / "exports"
    assert not (settings.data_dir / "exports.sqlite3").exists()


def test_state_left_on_one_host_with_several_is_warned_about_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    several = dataclasses.replace(
        settings, database_url="postgresql://fhirnet:s3cret@db.example.org/fhirnet"
    )

    with caplog.at_level(logging.WARNING, logger="fhirnet.web.backend"):
        Backend(several)

    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 2
    assert "FHIRNET_FHIR_BASE_URL is not" in warned[0]  # an embedded store per host
    assert "FHIRNET_EXPORT_DIR is not" in warned[1]  # export files per host
    assert not any("s3cret" in message for message in warned)
    configured = dataclasses.replace(
        several, fhir_base_url=SERVER, export_dir=settings.data_dir / "shared"
    )
    assert per_host_state(configured) == ()
