"""A fault-injecting HTTP reverse proxy between fhirnet and the FHIR server under test.

fhirnet's promises about failures (no partial data, 502/503 with a clear message) can only be
checked against a real server if the server can be made to fail on cue, and a real server will
not answer 500, hang or hang up when asked. The proxy forwards everything to the real server by
default; a test adds *rules* (a predicate on the request and a :class:`Fault`) at runtime, so that
for instance only the transaction POST to the base URL fails while the history searches before it
still work. Every request seen is recorded with what was done to it.

Like a reverse proxy in front of a FHIR server (nginx ``sub_filter``, Apache
``ProxyPassReverse``), it rewrites the upstream base URL to its own in response bodies and in
``Location``/``Content-Location``, so that paging links and locations point back through it;
its base URL has the same path as the upstream one.

Standard library only (``http.server``, ``http.client``), loopback, a free port. :meth:`close`
returns within a few seconds even with requests held in a delay or keep-alive connections open.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ANY",
    "TRANSACTION",
    "WRITE",
    "Delay",
    "Drop",
    "Fault",
    "FaultProxy",
    "ProxiedRequest",
    "Respond",
    "Rule",
    "Seen",
    "Slow",
    "operation_outcome",
    "refuse",
    "searches",
    "server_error",
    "too_many_requests",
    "unavailable",
]

#: Headers that describe one connection, not the message (RFC 9110 §7.6.1), and the ones the
#: proxy sets itself; never copied from one side to the other.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",  # asked as identity, so bodies can be rewritten
        "date",
        "server",
    }
)
#: Response headers holding URLs of the upstream server, rewritten to the proxy's.
_URL_HEADERS = frozenset({"location", "content-location"})
#: Seconds an idle keep-alive connection to the proxy is kept open.
IDLE_TIMEOUT_SECONDS = 30.0
#: Seconds :meth:`FaultProxy.close` waits for each handler thread to finish.
CLOSE_JOIN_SECONDS = 5.0
#: Timeout of the proxy's own requests to the upstream server.
UPSTREAM_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ProxiedRequest:
    """One request as the proxy received it."""

    method: str
    #: The path as sent, e.g. ``/fhir/DiagnosticReport``.
    path: str
    #: The path below the base URL without slashes around it: ``""`` for the base itself (the
    #: transaction endpoint), ``"DiagnosticReport"``, ``"Patient/123"``.
    relative: str
    query: str
    body: bytes = field(repr=False)
    #: When the proxy received it (``time.monotonic()``).
    received: float = field(default_factory=time.monotonic, compare=False)

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it has none or it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


#: Chooses the requests a rule applies to.
Predicate = Callable[[ProxiedRequest], bool]


def ANY(request: ProxiedRequest) -> bool:  # noqa: N802 - a constant-like predicate
    """Every request."""
    return True


def TRANSACTION(request: ProxiedRequest) -> bool:  # noqa: N802
    """A POST to the base URL: a transaction or batch Bundle."""
    return request.method == "POST" and request.relative == ""


def WRITE(request: ProxiedRequest) -> bool:  # noqa: N802
    """Any request that can change data on the server."""
    return request.method in ("POST", "PUT", "PATCH", "DELETE")


def searches(resource_type: str) -> Predicate:
    """GETs of the type-level search of ``resource_type`` (its first page and the next ones)."""
    return lambda request: request.method == "GET" and request.relative == resource_type


@dataclass(frozen=True)
class Respond:
    """Answer in place of the server: without forwarding the request, or, with ``forward``,
    after the server processed it (a gateway's 504 or error page for a request the server
    committed)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    forward: bool = False


@dataclass(frozen=True)
class Delay:
    """Hold the request ``seconds`` (beyond the client's timeout), then forward it if
    ``forward`` — the server then commits what the client gave up on — or else hang up without
    an answer, as a server that never got to the request."""

    seconds: float
    forward: bool = False


@dataclass(frozen=True)
class Slow:
    """Hold the request ``seconds``, then forward it and pass the answer back: a slow server
    (within the client's timeout), which keeps a request in flight long enough to be caught
    there."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without an answer: before the server sees the request, or after it
    processed it (``forward``), which is the case where the client cannot know whether it
    committed."""

    forward: bool = False


Fault = Respond | Delay | Slow | Drop


@dataclass
class Rule:
    """Apply ``fault`` to requests that ``when`` accepts, ``times`` times (``None``: always)."""

    when: Predicate
    fault: Fault
    times: int | None = None
    #: How many requests the rule was applied to.
    applied: int = 0


@dataclass(frozen=True)
class Seen:
    """A request the proxy received, and what it did: ``"forwarded"``, or the fault applied."""

    request: ProxiedRequest
    action: str

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def relative(self) -> str:
        return self.request.relative


def operation_outcome(diagnostics: str, *, code: str = "processing") -> bytes:
    """An OperationOutcome with one error issue, as a FHIR server would refuse with."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return json.dumps(outcome).encode()


_FHIR_JSON_HEADER = ("Content-Type", "application/fhir+json; charset=utf-8")


def server_error(status: int = 500, diagnostics: str = "Injected internal server error") -> Respond:
    """A 5xx with an OperationOutcome, as a server that failed while processing."""
    return Respond(status, (_FHIR_JSON_HEADER,), operation_outcome(diagnostics, code="exception"))


def unavailable(retry_after: int | None = 2) -> Respond:
    """503 Service Unavailable, with ``Retry-After`` in seconds unless ``None``."""
    headers = [_FHIR_JSON_HEADER]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    body = operation_outcome("Injected: the server is in maintenance", code="transient")
    return Respond(503, tuple(headers), body)


def too_many_requests(retry_after: int | None = 2) -> Respond:
    """429 Too Many Requests, with ``Retry-After`` in seconds unless ``None``."""
    headers = [_FHIR_JSON_HEADER]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    body = operation_outcome("Injected: rate limit exceeded", code="throttled")
    return Respond(429, tuple(headers), body)


def refuse(
    status: int = 400, diagnostics: str = "Injected refusal", code: str = "invalid"
) -> Respond:
    """A 4xx refusal with an OperationOutcome, as a server whose own rules reject a request."""
    return Respond(status, (_FHIR_JSON_HEADER,), operation_outcome(diagnostics, code=code))


class FaultProxy:
    """A threaded reverse proxy on a free loopback port in front of ``upstream``.

    Use as a context manager, or :meth:`start` and :meth:`close`. :attr:`base_url` is the FHIR
    base to give the client instead of the server's.

    :param upstream: the server's FHIR base URL (http or https).
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._upstream_parts = parts
        self.base_path = parts.path.rstrip("/")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._rules: list[Rule] = []
        self._seen: list[Seen] = []
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{self.base_path}"

    def start(self) -> FaultProxy:
        """Listen on a free loopback port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, wake delayed requests, cut open connections and wait (bounded) for
        the handler threads. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            handlers = list(self._handlers)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + CLOSE_JOIN_SECONDS
        for handler in handlers:
            handler.join(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(CLOSE_JOIN_SECONDS)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- behaviour ---------------------------------------------------------------------------

    def inject(self, fault: Fault, *, when: Predicate = ANY, times: int | None = None) -> Rule:
        """Apply ``fault`` to the requests ``when`` accepts, from now on, ``times`` times.

        Rules are tried in the order they were added; the first that accepts a request and has
        applications left decides. :returns: the rule (its ``applied`` counts the requests).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for always")
        rule = Rule(when=when, fault=fault, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def pass_through(self) -> None:
        """Remove every rule: forward everything again."""
        with self._lock:
            self._rules.clear()

    # -- observation -------------------------------------------------------------------------

    @property
    def seen(self) -> list[Seen]:
        """The requests received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._seen)

    def requests(self, when: Predicate = ANY) -> list[Seen]:
        """The requests received so far that ``when`` accepts."""
        return [seen for seen in self.seen if when(seen.request)]

    def forget(self) -> None:
        """Clear the record of requests seen."""
        with self._lock:
            self._seen.clear()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no request is being handled (e.g. a delayed one was forwarded).

        :returns: whether the proxy became idle within ``timeout``.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    # -- internals used by the handler -------------------------------------------------------

    def _decide(self, request: ProxiedRequest) -> Fault | None:
        with self._lock:
            self._in_flight += 1
            for rule in self._rules:
                if (rule.times is None or rule.applied < rule.times) and rule.when(request):
                    rule.applied += 1
                    return rule.fault
            return None

    def _record(self, request: ProxiedRequest, action: str) -> None:
        with self._lock:
            self._seen.append(Seen(request, action))

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _register(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self._handlers.add(threading.current_thread())

    def _unregister(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)
            self._handlers.discard(threading.current_thread())

    def _forward(
        self, request: ProxiedRequest, headers: Iterable[tuple[str, str]]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        parts = self._upstream_parts
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_type(
            parts.hostname or "", parts.port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        sent = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
        sent.append(("Accept-Encoding", "identity"))
        target = request.path + (f"?{request.query}" if request.query else "")
        try:
            connection.putrequest(request.method, target, skip_accept_encoding=True)
            for name, value in sent:
                connection.putheader(name, value)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.reason, response.getheaders(), body
        finally:
            connection.close()

    def _rewrite(self, text: bytes) -> bytes:
        return text.replace(self.upstream.encode(), self.base_url.encode())

    def _rewrite_header(self, value: str) -> str:
        return value.replace(self.upstream, self.base_url)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # close() joins them itself, with a bound
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that went away (a client that timed out, or :meth:`close`);
        anything else is a bug of the proxy and is printed as usual."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    timeout = IDLE_TIMEOUT_SECONDS
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.proxy._register(self.connection)

    def finish(self) -> None:
        try:
            with suppress(OSError):
                super().finish()
        finally:
            self.server.proxy._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the proxy's record of requests is what tests look at."""

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

    def _handle(self) -> None:
        proxy = self.server.proxy
        request = self._read_request()
        fault = proxy._decide(request)
        try:
            self._apply(proxy, request, fault)
        finally:
            proxy._done()

    def _read_request(self) -> ProxiedRequest:
        parts = urlsplit(self.path)
        base = self.server.proxy.base_path
        relative = parts.path[len(base) :] if parts.path.startswith(base) else parts.path
        return ProxiedRequest(
            method=self.command,
            path=parts.path,
            relative=relative.strip("/"),
            query=parts.query,
            body=self._read_body(),
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _apply(self, proxy: FaultProxy, request: ProxiedRequest, fault: Fault | None) -> None:
        if isinstance(fault, Respond):
            if fault.forward:
                proxy._record(request, f"forwarded, then answered {fault.status}")
                with suppress(OSError, http.client.HTTPException):
                    proxy._forward(request, self.headers.items())
            else:
                proxy._record(request, f"answered {fault.status}")
            self._send(fault.status, None, list(fault.headers), fault.body, request.method)
        elif isinstance(fault, Drop):
            if fault.forward:
                proxy._record(request, "forwarded, then dropped")
                with suppress(OSError, http.client.HTTPException):
                    proxy._forward(request, self.headers.items())
            else:
                proxy._record(request, "dropped")
            self._hang_up()
        elif isinstance(fault, Delay):
            proxy._record(request, f"delayed {fault.seconds:g} s")
            if proxy._stopping.wait(fault.seconds):
                self._hang_up()  # the proxy is closing
            elif fault.forward:
                # The client has given up by now; the server still gets, and commits, it.
                with suppress(OSError, http.client.HTTPException):
                    proxy._forward(request, self.headers.items())
                self._hang_up()
            else:
                self._hang_up()
        elif isinstance(fault, Slow):
            proxy._record(request, f"slowed {fault.seconds:g} s, forwarded")
            if proxy._stopping.wait(fault.seconds):
                self._hang_up()
            else:
                self._pass(proxy, request)
        else:
            proxy._record(request, "forwarded")
            self._pass(proxy, request)

    def _pass(self, proxy: FaultProxy, request: ProxiedRequest) -> None:
        try:
            status, reason, headers, body = proxy._forward(request, self.headers.items())
        except (OSError, http.client.HTTPException) as error:
            text = f"fault proxy: upstream {proxy.upstream} failed: {error}".encode()
            self._send(502, "Bad Gateway", [("Content-Type", "text/plain")], text, request.method)
            return
        kept = [
            (name, proxy._rewrite_header(value) if name.lower() in _URL_HEADERS else value)
            for name, value in headers
            if name.lower() not in _HOP_BY_HOP
        ]
        self._send(status, reason, kept, proxy._rewrite(body), request.method)

    def _send(
        self,
        status: int,
        reason: str | None,
        headers: list[tuple[str, str]],
        body: bytes,
        method: str,
    ) -> None:
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD" and body:
            self.wfile.write(body)

    def _hang_up(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
