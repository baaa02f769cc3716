"""Fixtures of the integration tests: the FHIR server they talk to, and clients of it.

By default the session installs (once) and starts sekmet-fhir on a free loopback port with a fresh
data directory, and stops it at the end. With ``FHIRNET_TEST_FHIR_URL`` set, the tests run against
that server instead and start nothing, so that fhirnet is checked against more than one server's
reading of FHIR. Tests leave data behind on such a server: each one writes under identifiers of
its own, so runs never see each other's resources.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from jwt.algorithms import ECAlgorithm

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.smart import SmartCredentials
from fhirnet.config import load_settings
from fhirnet.web.app import create_app
from tests.integration import fhir_server
from tests.integration.fault_proxy import FaultProxy
from tests.integration.fhirnets import Fhirnet, MakeFhirnet, fhirnet_settings_environment

#: The variable that points the tests at an already running FHIR R4 server.
EXTERNAL_URL_VARIABLE = "FHIRNET_TEST_FHIR_URL"
#: For the tests that stop and start their own FHIR server process, which a server given by
#: :data:`EXTERNAL_URL_VARIABLE` is not.
OWN_SERVER_ONLY = pytest.mark.skipif(
    bool(os.environ.get(EXTERNAL_URL_VARIABLE, "").strip()),
    reason=f"stops and restarts its FHIR server: not possible with {EXTERNAL_URL_VARIABLE}",
)
SMART_CLIENT_ID = "fhirnet-integration"


class RecordingSession(requests.Session):
    """A session that notes each request's method and URL, so tests can count round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append((method, str(url)))
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="session")
def sekmet_executable() -> Path:
    """The ``sekmet`` command of the test server's own venv, installed on first use."""
    try:
        return fhir_server.ensure_installed()
    except fhir_server.FhirServerStartError as error:
        pytest.fail(str(error), pytrace=False)


def _started(executable: Path, data_dir: Path, **settings: Any) -> fhir_server.RunningServer:
    try:
        return fhir_server.start(executable, data_dir, settings=settings)
    except fhir_server.FhirServerStartError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def fhir_base_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of the FHIR server under test: ``FHIRNET_TEST_FHIR_URL``, or a fresh
    sekmet-fhir started for this session."""
    external = os.environ.get(EXTERNAL_URL_VARIABLE, "").strip()
    if external:
        yield external.rstrip("/")
        return
    executable: Path = request.getfixturevalue("sekmet_executable")
    server = _started(executable, tmp_path_factory.mktemp("fhir-server"))
    try:
        yield server.base_url
    finally:
        fhir_server.stop(server)


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    with RecordingSession() as recording:
        yield recording


@pytest.fixture
def fhir(fhir_base_url: str, session: RecordingSession) -> FhirClient:
    """A client of the server under test, on a session that records the requests."""
    return FhirClient(fhir_base_url, timeout=(5.0, 30.0), session=session)


@pytest.fixture
def fault_proxy(fhir_base_url: str) -> Iterator[FaultProxy]:
    """A reverse proxy in front of the server under test that forwards everything until the test
    injects a fault (:mod:`tests.integration.fault_proxy`); closed after the test, so no rule or
    held request outlives it."""
    with FaultProxy(fhir_base_url) as proxy:
        yield proxy


@pytest.fixture
def unique() -> str:
    """A value no other test or run uses: resources are told apart by identifiers carrying it,
    never by server-assigned ids, whose format is the server's business."""
    return uuid.uuid4().hex


@pytest.fixture(scope="session")
def smart_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, SmartCredentials]]:
    """A second sekmet-fhir that accepts only SMART Backend Services tokens, with fhirnet's
    public key registered; yields its base URL and the matching credentials.

    Skipped with ``FHIRNET_TEST_FHIR_URL``: registering a client is specific to each server.
    """
    if os.environ.get(EXTERNAL_URL_VARIABLE, "").strip():
        pytest.skip(f"SMART is tested only on the bundled server, not {EXTERNAL_URL_VARIABLE}")
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    credentials = SmartCredentials(
        client_id=SMART_CLIENT_ID, private_key_pem=pem, scope="system/*.rs system/*.c"
    )
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {
        "kid": credentials.kid,
        "alg": "ES384",
        "use": "sig",
    }
    auth = {
        "types": ["smart"],
        "smart_clients": [
            {"client_id": SMART_CLIENT_ID, "jwks": {"keys": [jwk]}, "scopes": "system/*.cruds"}
        ],
    }
    executable: Path = request.getfixturevalue("sekmet_executable")
    server = _started(executable, tmp_path_factory.mktemp("smart-fhir-server"), server_auth=auth)
    try:
        yield server.base_url, credentials
    finally:
        fhir_server.stop(server)


@pytest.fixture
def make_fhirnet(tmp_path: Path) -> Iterator[MakeFhirnet]:
    """Builds in-process fhirnets for a FHIR base URL, each with a fresh data directory; their
    delivery threads are stopped after the test."""
    apps: list[Flask] = []

    def make(
        base_url: str,
        *,
        timeout: float | None = None,
        outbox: bool = True,
        database_url: str | None = None,
    ) -> Fhirnet:
        data_dir = tmp_path / f"fhirnet-data-{len(apps) + 1}"
        data_dir.mkdir()
        environment = fhirnet_settings_environment(base_url, data_dir, timeout=timeout)
        environment["FHIRNET_OUTBOX"] = "on" if outbox else "off"
        if database_url is not None:  # the outbox and locks in PostgreSQL
            environment["FHIRNET_DATABASE_URL"] = database_url
        app = create_app(load_settings(environment))
        app.config["TESTING"] = True
        apps.append(app)
        return Fhirnet(client=app.test_client())

    yield make
    for app in apps:
        deliveries = app.extensions["fhirnet"].deliveries
        if deliveries is not None:
            deliveries.stop()


@dataclass
class OwnServer:
    """A sekmet-fhir that a test may stop and start again: same port, same data."""

    executable: Path
    data_dir: Path
    port: int = 0
    running: fhir_server.RunningServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> None:
        try:
            self.running = fhir_server.start(self.executable, self.data_dir, port=self.port or None)
        except fhir_server.FhirServerStartError as error:
            pytest.fail(str(error), pytrace=False)
        self.port = int(self.running.base_url.split(":")[2].split("/")[0])

    def stop(self) -> None:
        if self.running is not None:
            fhir_server.stop(self.running)
            self.running = None


@pytest.fixture
def own_server(sekmet_executable: Path, tmp_path: Path) -> Iterator[OwnServer]:
    server = OwnServer(sekmet_executable, tmp_path / "fhir-server")
    server.start()
    try:
        yield server
    finally:
        server.stop()
