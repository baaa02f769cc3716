"""How fhirnet runs under gunicorn (:mod:`fhirnet.web.serving`): the objects built at start-up are
frozen out of the garbage collector's scans, in the master and in each worker."""

from __future__ import annotations

import gc
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask

from fhirnet.config import ConfigError, Settings
from fhirnet.web.app import create_app
from fhirnet.web.serving import (
    FirstStart,
    GunicornServer,
    ensure_address_free,
    freeze_start_up_objects,
    gunicorn_options,
)
from tests.servers import free_port


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(Settings(auth="none", data_dir=tmp_path))


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (the freeze is process-wide)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freezing_moves_what_exists_out_of_the_scans_and_leaves_later_garbage_collectable() -> None:
    freeze_start_up_objects()

    assert gc.get_freeze_count() > 0
    _Cycle()  # garbage made after the freeze: a reference cycle only a collection frees
    assert gc.collect() > 0


def test_building_the_server_freezes_the_masters_objects_before_it_forks(app: Flask) -> None:
    GunicornServer(app, gunicorn_options(Settings(auth="none")))

    assert gc.get_freeze_count() > 0


def test_each_worker_freezes_once_initialised_with_the_parsed_models_loaded(app: Flask) -> None:
    server = GunicornServer(app, gunicorn_options(Settings(auth="none", workers=1)))
    gc.unfreeze()

    server.cfg.post_worker_init(None)

    assert gc.get_freeze_count() > 0


def test_the_server_builds_no_access_log_line_for_a_request(app: Flask) -> None:
    """fhirnet writes its own request log; gunicorn's access log has no handler, so building
    its line for every request is CPU spent on nothing."""
    server = GunicornServer(app, gunicorn_options(Settings(auth="none")))
    log = server.cfg.logger_class(server.cfg)

    class Unreadable:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the access log read {name}")

    log.access(Unreadable(), Unreadable(), {}, None)  # reads nothing of the request


def test_a_worker_waits_for_the_others_of_the_first_start_once_initialised(app: Flask) -> None:
    server = GunicornServer(app, gunicorn_options(Settings(auth="none")))
    gc.unfreeze()

    with mock.patch.object(FirstStart, "wait") as wait:
        server.cfg.post_worker_init(None)

    wait.assert_called_once_with()


def _arrive(first_start: FirstStart, delay: float, returned: Any) -> None:
    time.sleep(delay)
    first_start.wait()
    returned.value = time.monotonic()


def test_the_workers_of_the_first_start_begin_together_and_a_later_one_does_not_wait() -> None:
    context = multiprocessing.get_context("fork")
    first_start = FirstStart(2, timeout=30)
    returned = context.Value("d", 0.0)
    early = context.Process(target=_arrive, args=(first_start, 0.0, returned))
    early.start()
    time.sleep(0.5)  # the other worker is still starting

    arrived = time.monotonic()
    first_start.wait()
    early.join(timeout=10)

    assert returned.value >= arrived  # the early one waited for the late one
    started = time.monotonic()
    first_start.wait()  # a replacement worker, started later
    assert time.monotonic() - started < 0.5


def test_a_worker_of_the_first_start_waits_at_most_the_timeout() -> None:
    first_start = FirstStart(2, timeout=0.3)
    started = time.monotonic()

    first_start.wait()  # the other worker never comes (it failed to boot, say)

    assert 0.25 <= time.monotonic() - started < 5


def test_a_single_worker_does_not_wait() -> None:
    started = time.monotonic()

    FirstStart(1).wait()

    assert time.monotonic() - started < 0.1


def test_serve_gives_each_worker_its_own_listening_socket() -> None:
    """The kernel then spreads connections over the workers (tests/web/test_cli.py shows it)."""
    assert gunicorn_options(Settings(auth="none"))["reuse_port"] is True


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"], ids=["IPv4", "IPv6"])
def test_a_free_address_passes_the_check_and_stays_free(host: str) -> None:
    if host.startswith("[") and not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    port = free_port()

    ensure_address_free(f"{host}:{port}")
    ensure_address_free(f"{host}:{port}")  # the probe let go of it


@pytest.mark.parametrize("shared", [False, True], ids=["plain listener", "SO_REUSEPORT listener"])
def test_an_address_in_use_is_refused_even_by_a_shared_socket(shared: bool) -> None:
    with socket.socket() as other:
        if shared:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{port}"):
            ensure_address_free(f"127.0.0.1:{port}", pause=0.01)


def test_an_address_freed_while_the_check_waits_passes() -> None:
    """A server restarted on its port right after a kill: its old workers let go within
    about a second."""
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    port = other.getsockname()[1]
    threading.Timer(0.3, other.close).start()

    ensure_address_free(f"127.0.0.1:{port}", attempts=50, pause=0.05)


def test_the_server_checks_its_address_before_it_runs(app: Flask) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        options = gunicorn_options(Settings(auth="none"), port=other.getsockname()[1])

        with pytest.raises(ConfigError):
            GunicornServer(app, options).run()  # after its 5 attempts a second apart
