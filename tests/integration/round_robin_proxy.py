"""A small round-robin HTTP reverse proxy in front of several fhirnet hosts, for the tests.

An EHR sees one address; behind it, each request goes to the next host in turn. A host whose
port refuses the connection (stopped, killed, restarting) is skipped and the request goes to the
next one, as a real reverse proxy with passive health checks does (nginx ``proxy_next_upstream
error``, HAProxy ``redispatch``): requests keep landing while a host is dead. Only a refused
*connection* is tried elsewhere; once a request was sent, its failure is the client's answer
(``502``), since a POST may have been acted upon.

The ``Host`` header is passed on as the client sent it (nginx ``proxy_set_header Host $host``),
so the URLs fhirnet answers with (``Content-Location`` of a ``202``) point at the proxy.

Standard library only (``http.server``, ``http.client``), threads, loopback, a free port; one
connection to a host per request.
"""

from __future__ import annotations

import http.client
import itertools
import threading
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["RoundRobinProxy"]

#: Headers about one connection, not the message (RFC 9110 §7.6.1): never passed on.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
#: Seconds a request may take on a host (fhirnet's own timeouts are shorter).
UPSTREAM_TIMEOUT_SECONDS = 120.0
#: Seconds an idle keep-alive connection of a client is kept open.
IDLE_TIMEOUT_SECONDS = 30.0


class RoundRobinProxy:
    """Forwards each request to the next of ``backends`` (``http://host:port``) that accepts
    the connection; :attr:`url` is its own address. Use as a context manager."""

    def __init__(self, backends: Sequence[str]) -> None:
        if not backends:
            raise ValueError("at least one backend")
        self.backends = [backend.rstrip("/") for backend in backends]
        self._next = itertools.count()
        self._lock = threading.Lock()
        #: Requests each backend answered, and connections each one refused.
        self.answered: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RoundRobinProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def order(self) -> list[str]:
        """The backends in the order the next request tries them."""
        with self._lock:
            start = next(self._next) % len(self.backends)
        return self.backends[start:] + self.backends[:start]

    def forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request to the first backend (in turn) that takes the connection.

        :raises ConnectionRefusedError: every backend refused it.
        """
        for backend in self.order():
            parts = urlsplit(backend)
            connection = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=UPSTREAM_TIMEOUT_SECONDS
            )
            try:
                try:
                    connection.connect()
                except ConnectionRefusedError:
                    with self._lock:
                        self.refused[backend] += 1
                    continue
                connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    connection.putheader(name, value)
                if body or method in ("POST", "PUT", "PATCH"):
                    connection.putheader("Content-Length", str(len(body)))
                connection.putheader("Connection", "close")
                connection.endheaders(body or None)
                response = connection.getresponse()
                answer = response.status, response.reason, response.getheaders(), response.read()
            finally:
                connection.close()
            with self._lock:
                self.answered[backend] += 1
            return answer
        raise ConnectionRefusedError(f"every backend refused the connection: {self.backends}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once (the default backlog is 5)
    proxy: RoundRobinProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that went away."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests look at the proxy's counters."""

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        try:
            status, reason, answer_headers, data = self.server.proxy.forward(
                self.command, self.path, headers, body
            )
        except (OSError, http.client.HTTPException) as error:
            text = f"round-robin proxy: {type(error).__name__}: {error}".encode()
            status, reason, answer_headers, data = 502, "Bad Gateway", [], text
            answer_headers = [("Content-Type", "text/plain")]
        self.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            with suppress(OSError):
                self.wfile.write(data)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815
