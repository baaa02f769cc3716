"""One slow client must not stall the service (finding 2 of the security review): ``fhirnet
serve`` ran one sync worker with one thread, so a client trickling its headers blocked everyone,
and one trickling a body held the worker for 30 s. Against a real ``fhirnet serve`` with the
production defaults (no ``FHIRNET_WORKERS``/``FHIRNET_THREADS``): while one connection trickles
its headers and another its body, other clients are answered within :data:`PROMPT_SECONDS`.

This needs no FHIR server (the embedded store), so it is not marked ``integration``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, serving

#: How long an ordinary request may take while the slow clients trickle.
PROMPT_SECONDS = 1.0
#: How long the slow clients keep trickling: longer than every check below.
TRICKLE_SECONDS = 8.0


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``fhirnet serve`` with its defaults (only the port, open access and a data dir set)."""
    chosen = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env |= {
        "FHIRNET_PORT": str(chosen),
        "FHIRNET_AUTH": "none",
        "FHIRNET_DATA_DIR": str(tmp_path_factory.mktemp("slow") / "data"),
    }
    log_path = Path(tmp_path_factory.mktemp("slow-log")) / "serve.log"
    command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
    with serving(command, port=chosen, env=env, log_path=log_path):
        yield chosen


def trickle(port: int, head: bytes, drip: bytes, stop: threading.Event) -> None:
    """Send ``head`` at once, then ``drip`` one byte every 0.2 s until ``stop`` (or it is all
    sent): a client on a very slow line, or one holding a connection on purpose."""
    with socket.create_connection(("127.0.0.1", port), timeout=TRICKLE_SECONDS + 5) as sock:
        sock.sendall(head)
        for byte in drip:
            if stop.wait(0.2):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return  # the server gave up on us: fine


def timed_get(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        response.read()
        assert response.status == 200
    return time.monotonic() - started


def test_other_clients_are_answered_promptly_while_one_trickles_headers_and_one_a_body(
    port: int,
) -> None:
    stop = threading.Event()
    slow_headers = (
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        b"X-Slow: " + b"a" * 200 + b"\r\n\r\n",
    )
    body = b'{"criteria": "recist-1.1", "timepoints": []}'.ljust(400)
    slow_body = (
        b"POST /api/v1/assessments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n",
        body,
    )
    clients = [
        threading.Thread(target=trickle, args=(port, head, drip, stop), daemon=True)
        for head, drip in (slow_headers, slow_body)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(1.0)  # both slow requests are being read by now
        base = f"http://127.0.0.1:{port}"
        durations = [
            timed_get(f"{base}{path}")
            for _ in range(5)
            for path in ("/health", "/fhir/metadata", "/fhir/DiagnosticReport")
        ]
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=5)

    assert max(durations) < PROMPT_SECONDS, durations
