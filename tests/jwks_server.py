"""A JWK Set served over HTTP on the loopback interface, as an authorization server or a bulk
client registered by ``jwks_url`` publishes its keys: the tests of token verification, of the
bulk clients and of the running service all fetch keys from one of these."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any


class JwksServer:
    """Serves ``{"keys": keys}`` at :attr:`url` while the ``with`` block runs.

    :ivar keys: the JWKs served; a test may change them while it serves (key rotation).
    :ivar asked: the paths of the requests received, in order.
    """

    def __init__(self, keys: Sequence[dict[str, Any]] = (), *, path: str = "/jwks.json") -> None:
        self.keys = list(keys)
        self.asked: list[str] = []
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.asked.append(self.path)
                body = json.dumps({"keys": served.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}{path}"

    @property
    def fetches(self) -> int:
        """How many times the keys were asked for."""
        return len(self.asked)

    def start(self) -> JwksServer:
        """Serve from a daemon thread (until :meth:`stop`, or the process ends)."""
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
