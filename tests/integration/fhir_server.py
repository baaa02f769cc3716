"""A real FHIR R4 server process for the integration tests: sekmet-fhir, installed into its own
virtual environment by ``tools/fhir-test-server/install.sh`` and run on a free loopback port with
a fresh data directory (``shared/reference/tooling.md`` §1.1).

The server runs from its own venv's interpreter with ``PYTHONPATH`` and ``SEKMET_*`` removed from
its environment, so neither fhirnet's packages nor a developer's settings leak into it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.servers import free_port

ROOT = Path(__file__).parents[2]
INSTALL_SCRIPT = ROOT / "tools" / "fhir-test-server" / "install.sh"
DEFAULT_VENV = ROOT / ".fhir-server-venv"
#: How long a start may take before the tests give up; it normally takes ~1.3 s.
START_TIMEOUT_SECONDS = 60.0
#: How long the server gets to shut down on SIGTERM before it is killed.
STOP_TIMEOUT_SECONDS = 10.0
#: Starts tried when the free port was taken before the server could bind it.
PORT_ATTEMPTS = 3
#: Lines of the server log quoted when it fails to start.
LOG_TAIL_LINES = 40


class FhirServerStartError(RuntimeError):
    """The server could not be installed or did not answer ``/metadata`` in time."""


@dataclass
class RunningServer:
    """A started server process; :func:`stop` ends it."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path


def ensure_installed(venv: Path = DEFAULT_VENV) -> Path:
    """Install the pinned server into ``venv`` unless it is there already (the script checks).

    :returns: the ``sekmet`` executable.
    :raises FhirServerStartError: the install failed; the message holds the script's output.
    """
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), str(venv)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise FhirServerStartError(
            f"{INSTALL_SCRIPT} failed with exit code {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return venv / "bin" / "sekmet"


def start(
    executable: Path,
    data_dir: Path,
    *,
    settings: dict[str, Any] | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
    port: int | None = None,
) -> RunningServer:
    """Start ``sekmet serve`` on a free loopback port with ``data_dir`` as its store.

    :param settings: extra sekmet settings merged over the defaults (e.g. ``server_auth``).
    :param port: this port instead of a free one: a server started again where it was, with
        the same ``data_dir``, is the same server back from an outage.
    :raises FhirServerStartError: it exited or did not answer in time; the message has its log.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start_once(executable, data_dir, settings or {}, timeout, port)
        except FhirServerStartError as error:
            # Another process may take the free port between our probe and the server's bind.
            if "address already in use" not in str(error).lower() or attempt == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _start_once(
    executable: Path, data_dir: Path, settings: dict[str, Any], timeout: float, port: int | None
) -> RunningServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}/fhir"
    config = {
        # base_url is required: without it, paging links point at localhost:8090.
        "base_url": base_url,
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(data_dir / "data"),
        "simulator": {"enabled": False},  # no hospital workflows reacting to our writes
        "log_inbound": False,
        **settings,
    }
    config_path = data_dir / "settings.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    log_path = data_dir / "server.log"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SEKMET_") and name not in ("PYTHONPATH", "PYTHONHOME")
    }
    with log_path.open("wb") as log:
        # A file, not a pipe: a pipe nobody reads would fill up and block the server.
        process = subprocess.Popen(
            [str(executable), "serve", "-c", str(config_path)],
            cwd=data_dir,  # sekmet resolves relative paths (keys/, reports/) from here
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(base_url=base_url, process=process, log_path=log_path, data_dir=data_dir)
    try:
        _wait_until_up(server, timeout)
    except BaseException:
        stop(server)
        raise
    return server


def _wait_until_up(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise FhirServerStartError(
                f"the FHIR server exited with code {server.process.returncode}:\n{log_tail(server)}"
            )
        try:
            if requests.get(f"{server.base_url}/metadata", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise FhirServerStartError(
        f"the FHIR server did not answer {server.base_url}/metadata within {timeout:.0f} s:\n"
        f"{log_tail(server)}"
    )


def stop(server: RunningServer) -> None:
    """Terminate the server, and kill it if it has not stopped after a grace period."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def log_tail(server: RunningServer) -> str:
    """The last lines of the server's log, for failure messages."""
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"
