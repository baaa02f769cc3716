"""How fhirnet runs under gunicorn: the production settings of ``fhirnet serve`` (threaded workers,
timeouts, request limits, JSON logs, no access log) and gunicorn run in-process on an app already
built, starting and stopping each worker's deliveries.

**Garbage collector.** A process that has imported fhirnet tracks about 57,000 objects, most of
them fhir.resources / pydantic model machinery that lives as long as the process; each full
collection scanned them all, a 20-40 ms pause in the middle of some request (bench/README.md).
So the objects that exist once the app is built are frozen (:func:`gc.freeze`, moved to the
permanent generation, never scanned again): in the master before it forks the workers, and again
in each worker once it is initialised (with the models of what a request parses loaded). Objects
made by requests are collected as before.
"""

from __future__ import annotations

import gc
import multiprocessing
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from fhirnet.config import ConfigError, Settings
from fhirnet.fhir.resources import model_class

#: Resource models a request parses (fhir.resources loads each on first use): loaded in each
#: worker before its objects are frozen, so the first request does not add them to the scans.
WARM_MODELS = ("QuestionnaireResponse", "Bundle", "Parameters")

#: gunicorn settings of ``fhirnet serve`` that do not come from Settings (docs/security.md,
#: README "In production"). gunicorn's defaults (one sync worker, one thread) let one client
#: that sends its headers or body slowly hold the only worker: everyone else waited.
PRODUCTION_OPTIONS: Mapping[str, Any] = {
    # Threads: a slow client holds one thread, not the process. gthread also waits for a new
    # connection's first bytes in its poller, not in a thread (gunicorn >= 25).
    "worker_class": "gthread",
    # A worker whose main loop stops for this long is restarted (gthread's loop keeps
    # beating while threads work, so this does not cut slow requests short; the proxy does).
    "timeout": 30,
    "graceful_timeout": 30,
    # Idle kept-alive connections are closed after 5 s: they cost a file descriptor, no thread.
    "keepalive": 5,
    # Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
    # connections over them. On one shared socket the worker whose poller woke first accepted,
    # whether or not its threads were busy, and a kept-alive connection stays with the worker
    # that accepted it: when 16 connections opened at once, one of two workers took them all in
    # 5 of 18 runs, the other idle (bench/README.md, "Third day"). GunicornServer.run checks the
    # address is free first, so a second server on the same port fails instead of sharing it.
    "reuse_port": True,
    # Request line and headers as small as FHIR needs (search URLs included).
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}


def gunicorn_options(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """gunicorn settings for ``fhirnet serve``: bind address (unless overridden), workers and
    threads from Settings, and the production defaults of :data:`PRODUCTION_OPTIONS`.

    :param settings: the service settings.
    :param host: overrides ``settings.host``.
    :param port: overrides ``settings.port``.
    :returns: gunicorn setting names → values.
    """
    address = host or settings.host
    if ":" in address:  # an IPv6 address needs brackets in a bind string
        address = f"[{address}]"
    return {
        **PRODUCTION_OPTIONS,
        "bind": f"{address}:{port or settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        "loglevel": settings.log_level.lower(),
        # No access log: its lines hold the raw path and query string (ids, search parameters
        # with patient identifiers). The app logs each request as JSON with the URL rule instead
        # (fhirnet.web.logs), and gunicorn's own records use the same formatter.
        "accesslog": None,
        "logger_class": NoAccessLogger,
        "logconfig_dict": gunicorn_logging(settings),
        # gunicorn >= 25 opens a control socket in $HOME by default; we do not use it, and two
        # instances on one host would compete for the same path.
        "control_socket_disable": True,
    }


def gunicorn_logging(settings: Settings) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log as JSON lines on stderr
    (:class:`fhirnet.web.logs.JsonFormatter`), no access log, nothing on the root logger (the
    ``fhirnet`` loggers have their own handler, see :func:`fhirnet.web.logs.install_logging`)."""
    return {
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {
            "gunicorn.error": {
                "level": settings.log_level,
                "handlers": ["json"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "formatters": {"json": {"()": "fhirnet.web.logs.JsonFormatter"}},
    }


class NoAccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger without the access log. A ``logconfig_dict`` turns gunicorn's access
    log on whatever ``accesslog`` says, so every request built the line's atoms (headers, times,
    a dict of ~30 values: about 3 % of a small API request's samples under load) for a logger
    with no handler. fhirnet logs each request itself (:mod:`fhirnet.web.logs`)."""

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        """Nothing: there is no access log to write."""


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn run in-process on an app already built, so no import string or cwd is needed."""

    def __init__(self, app: Flask, options: Mapping[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)
        # Each worker delivers queued submissions from the start, not from its first request
        # (fhirnet.web.delivery), and finishes the attempt it is making when it stops.
        self.cfg.set("post_worker_init", self._post_worker_init)
        self.cfg.set("worker_exit", self._stop_deliveries)
        self._first_start = FirstStart(self.cfg.workers)
        freeze_start_up_objects()  # the master's, before it forks (module docstring)

    def _post_worker_init(self, _worker: object) -> None:
        for name in WARM_MODELS:
            model_class(name)
        freeze_start_up_objects()
        self._start_deliveries()
        self._first_start.wait()

    def _start_deliveries(self) -> None:
        deliveries = self._app.extensions["fhirnet"].deliveries
        if deliveries is not None:
            with self._app.app_context():
                deliveries.current()

    def _stop_deliveries(self, _server: object, _worker: object) -> None:
        deliveries = self._app.extensions["fhirnet"].deliveries
        if deliveries is not None:
            deliveries.stop(timeout=5)

    def load(self) -> Flask:
        return self._app

    def run(self) -> None:
        """Serve until stopped; first refuse an address some other socket listens on.

        :raises ConfigError: with ``reuse_port`` (each worker binds its own socket, the master
            none), when the address is in use: two servers on one port would otherwise share
            its connections silently, each with its own data.
        """
        if self._options.get("reuse_port"):
            ensure_address_free(self._options["bind"])
        super().run()


def ensure_address_free(bind: str, *, attempts: int = 5, pause: float = 1.0) -> None:
    """Bind ``host:port`` (``[v6]:port``) without ``SO_REUSEPORT`` and let go: that fails while
    any socket, shared or not, is bound there. Tried ``attempts`` times ``pause`` seconds apart,
    as gunicorn binds its own socket: the workers of a server just killed close theirs within a
    second or so.

    :raises ConfigError: the address is in use or cannot be bound.
    """
    host, _, port = bind.rpartition(":")
    family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
    for attempt in range(1, attempts + 1):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            try:
                probe.bind((host.strip("[]"), int(port)))
                return
            except OSError as error:
                if attempt == attempts:
                    message = f"Cannot listen on {bind}: {error.strerror or error}."
                    raise ConfigError(message) from None
        time.sleep(pause)


class FirstStart:
    """The workers of a server's first start begin accepting connections together.

    gunicorn forks its workers one after another, up to 0.1 s apart, and a kept-alive connection
    stays with the worker that accepted it. The first worker up answered ``/health`` before the
    second existed and accepted every connection made meanwhile: a proxy's pool or 16 clients
    that connected as the service came up ran on one of two workers, the host half idle
    (bench/README.md, "Third day"). So each worker of the first start waits, once initialised,
    until all are (connections meanwhile wait in its listening socket's queue), at most
    ``timeout`` seconds. The barrier is broken once passed: a worker started later, replacing
    one, does not wait.
    """

    def __init__(self, workers: int, timeout: float = 10.0) -> None:
        self._barrier = (
            multiprocessing.get_context("fork").Barrier(workers) if workers > 1 else None
        )
        self._timeout = timeout

    def wait(self) -> None:
        """Return when every worker of the first start got here, or ``timeout`` has passed, or
        at once after that."""
        if self._barrier is None:
            return
        try:
            self._barrier.wait(self._timeout)
        except threading.BrokenBarrierError:
            pass  # waited long enough, or started later
        finally:
            self._barrier.abort()


def freeze_start_up_objects() -> None:
    """Collect what is garbage now, then move every object left to the permanent generation,
    which no collection scans (module docstring): start-up objects live as long as the process."""
    gc.collect()
    gc.freeze()
