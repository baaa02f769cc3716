"""The round-robin proxy of the several-hosts test, against small HTTP servers of its own: each
request to the next host in turn, a host that refuses connections skipped, the request (method,
path, body, ``Host``) passed on as sent and the answer passed back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.integration.round_robin_proxy import RoundRobinProxy
from tests.servers import free_port


class _Echo(BaseHTTPRequestHandler):
    """Answers with its server's name and what it received."""

    protocol_version = "HTTP/1.1"
    server: _Named

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = {
            "name": self.server.name,
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "body": self.rfile.read(length).decode() if length else "",
        }
        data = json.dumps(received).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Location", f"http://{self.headers.get('Host')}/status/1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET  # noqa: N815


class _Named(ThreadingHTTPServer):
    daemon_threads = True
    name = ""


class Backend:
    """One HTTP server on a port of its own, that can be stopped (connections then refused)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.server: _Named | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = _Named(("127.0.0.1", self.port), _Echo)
        self.server.name = self.name
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    started = [Backend(name) for name in ("a", "b", "c")]
    for backend in started:
        backend.start()
    yield started
    for backend in started:
        backend.stop()


def names(proxy: RoundRobinProxy, count: int) -> list[str]:
    return [requests.get(f"{proxy.url}/x", timeout=10).json()["name"] for _ in range(count)]


def test_requests_go_to_each_host_in_turn(backends: list[Backend]) -> None:
    with RoundRobinProxy([b.url for b in backends]) as proxy:
        assert names(proxy, 6) == ["a", "b", "c", "a", "b", "c"]
        assert proxy.answered == {b.url: 2 for b in backends}


def test_a_host_that_refuses_connections_is_skipped(backends: list[Backend]) -> None:
    with RoundRobinProxy([b.url for b in backends]) as proxy:
        backends[1].stop()

        # b's turns go to the host after it: a, (b→) c, c, a, (b→) c, c
        assert names(proxy, 6) == ["a", "c", "c", "a", "c", "c"]
        assert proxy.refused[backends[1].url] == 2

        backends[1].start()  # back on its port: in the turn again
        assert sorted(names(proxy, 3)) == ["a", "b", "c"]


def test_with_every_host_down_the_answer_is_502(backends: list[Backend]) -> None:
    with RoundRobinProxy([b.url for b in backends]) as proxy:
        for backend in backends:
            backend.stop()

        answer = requests.get(f"{proxy.url}/x", timeout=10)

    assert answer.status_code == 502
    assert "refused" in answer.text


def test_the_request_and_the_answer_are_passed_on_as_they_are(backends: list[Backend]) -> None:
    with RoundRobinProxy([backends[0].url]) as proxy:
        answer = requests.post(f"{proxy.url}/fhir/Thing?x=1", data=b'{"a": 1}', timeout=10)
        host = proxy.url.removeprefix("http://")

    assert answer.status_code == 201
    assert answer.json() == {
        "name": "a",
        "method": "POST",
        "path": "/fhir/Thing?x=1",
        "host": host,
        "body": '{"a": 1}',
    }
    assert answer.headers["Content-Location"] == f"http://{host}/status/1"
