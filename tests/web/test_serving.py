"""How fhirnet runs under gunicorn (:mod:`fhirnet.web.serving`): the objects built at start-up are
frozen out of the garbage collector's scans, in the master and in each worker."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from fhirnet.web.serving import GunicornServer, freeze_start_up_objects, gunicorn_options


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
    server = GunicornServer(app, gunicorn_options(Settings(auth="none")))
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
