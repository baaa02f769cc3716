"""Which store the application works on (``fhirnet.web.backend``): the embedded store, opened on
first use in ``FHIRNET_DATA_DIR``, or the external FHIR server with its auth, whose
CapabilityStatement says how to address what fhirnet writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import ConfigError, Settings
from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.identifiers import DEFAULT_CLIENT_ID_TYPES
from fhirnet.web.backend import Backend

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
