"""The used client assertions (fhirnet.adapters.replay_cache): each ``jti`` once until it
expires, across worker processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from fhirnet.adapters.replay_cache import ReplayCache
from fhirnet.authorization import TokenServiceUnavailableError

NOW = 1_800_000_000


def test_an_assertion_id_is_used_once_until_it_expires(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "used.sqlite3")

    assert cache.first_use("client|a", expires_at=NOW + 60, now=NOW)
    assert not cache.first_use("client|a", expires_at=NOW + 60, now=NOW + 59)
    assert cache.first_use("client|b", expires_at=NOW + 60, now=NOW)
    # Once expired, the assertion is refused for its exp anyway; the row may go.
    assert cache.first_use("client|a", expires_at=NOW + 200, now=NOW + 60)


def test_expired_ids_are_purged(tmp_path: Path) -> None:
    path = tmp_path / "used.sqlite3"
    cache = ReplayCache(path)
    for number in range(50):
        cache.first_use(f"old-{number}", expires_at=NOW + 10, now=NOW)

    cache.first_use("new", expires_at=NOW + 400, now=NOW + 11)

    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT jti FROM used_assertion").fetchall() == [("new",)]


def _race(path: str) -> list[bool]:
    cache = ReplayCache(Path(path))
    return [cache.first_use(f"jti-{n}", expires_at=NOW + 300, now=NOW) for n in range(40)]


def test_two_processes_never_both_accept_the_same_id(tmp_path: Path) -> None:
    path = str(tmp_path / "used.sqlite3")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.map(_race, [path] * 4)

    # Each id accepted by exactly one of the four processes.
    assert [sum(column) for column in zip(*results, strict=True)] == [1] * 40


def test_an_unusable_store_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cache = ReplayCache(tmp_path / "file" / "used.sqlite3")

    with pytest.raises(TokenServiceUnavailableError):
        cache.first_use("x", expires_at=NOW + 60, now=NOW)
