"""The used client assertions in PostgreSQL (fhirnet.adapters.pg_replay_cache): the SQLite
cache's contract — each ``jti`` once until it expires — shared by several hosts, so an assertion
replayed to another host is refused; an unreachable database is unavailable (503), never an
acceptance."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest

from fhirnet.adapters.pg_replay_cache import PostgresReplayCache
from fhirnet.authorization import TokenServiceUnavailableError

NOW = 1_800_000_000


@pytest.fixture
def cache(fresh_database_url: str) -> PostgresReplayCache:
    return PostgresReplayCache(fresh_database_url)


def test_an_assertion_id_is_used_once_until_it_expires(cache: PostgresReplayCache) -> None:
    assert cache.first_use("client|a", expires_at=NOW + 60, now=NOW)
    assert not cache.first_use("client|a", expires_at=NOW + 60, now=NOW + 59)
    assert cache.first_use("client|b", expires_at=NOW + 60, now=NOW)
    # Once expired, the assertion is refused for its exp anyway; the row may go.
    assert cache.first_use("client|a", expires_at=NOW + 200, now=NOW + 60)


def test_expired_ids_are_purged(cache: PostgresReplayCache, fresh_database_url: str) -> None:
    for number in range(50):
        cache.first_use(f"old-{number}", expires_at=NOW + 10, now=NOW)

    cache.first_use("new", expires_at=NOW + 400, now=NOW + 11)

    with psycopg.connect(fresh_database_url) as connection:
        rows = connection.execute("SELECT jti FROM used_assertion").fetchall()
    assert rows == [("new",)]


def test_an_id_used_on_one_host_is_refused_on_another(fresh_database_url: str) -> None:
    one, other = PostgresReplayCache(fresh_database_url), PostgresReplayCache(fresh_database_url)

    assert one.first_use("client|a", expires_at=NOW + 60, now=NOW)
    assert not other.first_use("client|a", expires_at=NOW + 60, now=NOW + 1)


def _host(url: str) -> list[bool]:
    """One host (a process of its own) trying forty assertion ids."""
    cache = PostgresReplayCache(url)
    return [cache.first_use(f"jti-{n}", expires_at=NOW + 300, now=NOW) for n in range(40)]


def test_four_hosts_never_both_accept_the_same_id(fresh_database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.map(_host, [fresh_database_url] * 4)

    # Each id accepted by exactly one of the four processes.
    assert [sum(column) for column in zip(*results, strict=True)] == [1] * 40


def test_an_unreachable_database_is_unavailable_without_its_password() -> None:
    cache = PostgresReplayCache(
        "postgresql://fhirnet:s3cret-pw@127.0.0.1:1/fhirnet", connect_timeout=1
    )

    with pytest.raises(TokenServiceUnavailableError) as raised:
        cache.first_use("x", expires_at=NOW + 60, now=NOW)

    assert "127.0.0.1:1/fhirnet" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)
    assert "s3cret-pw" not in repr(cache)
