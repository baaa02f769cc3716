"""How fhirnet's PostgreSQL adapters connect (fhirnet.adapters.pg_connections): every session
named, with TCP keepalives and, unless the adapter sets them per transaction, a statement and a
lock timeout; and where a database is, for messages, without its password."""

from __future__ import annotations

import pytest

from fhirnet.adapters.pg_connections import connect, where
from fhirnet.adapters.pg_export_jobs import PostgresJobTable
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.adapters.pg_replay_cache import PostgresReplayCache


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://fhirnet:s3cret@db.example:6543/trials",
            "postgresql://db.example:6543/trials",
        ),
        ("postgresql://fhirnet:s3cret@db.example/trials", "postgresql://db.example:5432/trials"),
        # A Unix socket: libpq's default host, not "None".
        ("postgresql:///trials", "postgresql://localhost:5432/trials"),
    ],
)
def test_where_names_host_port_and_database_never_the_password(url: str, shown: str) -> None:
    assert where(url) == shown


def _settings(url: str, statement_timeout: float | None = None) -> dict[str, str]:
    """What a session of :func:`connect` runs with, as the server and libpq say."""
    shown = {}
    with connect(
        url, application_name="fhirnet test", connect_timeout=5, statement_timeout=statement_timeout
    ) as connection:
        for name in ("application_name", "statement_timeout", "lock_timeout"):
            row = connection.execute(f"SHOW {name}").fetchone()
            assert row is not None
            shown[name] = str(row[0])
        parameters = connection.info.get_parameters()
    return {**shown, **{k: v for k, v in parameters.items() if k.startswith("keepalives")}}


def test_a_session_is_named_and_bounded_and_kept_alive(fresh_database_url: str) -> None:
    settings = _settings(fresh_database_url, statement_timeout=2.5)

    assert settings == {
        "application_name": "fhirnet test",
        "statement_timeout": "2500ms",
        "lock_timeout": "2500ms",
        "keepalives": "1",
        "keepalives_idle": "15",
        "keepalives_interval": "5",
        "keepalives_count": "3",
    }


def test_without_a_statement_timeout_the_session_keeps_the_servers(fresh_database_url: str) -> None:
    # The patient locks set both per transaction, from one deadline for all their keys.
    settings = _settings(fresh_database_url)

    assert (settings["statement_timeout"], settings["lock_timeout"]) == ("0", "0")


def test_every_adapter_names_its_database_alike(fresh_database_url: str) -> None:
    expected = where(fresh_database_url)
    outbox = PostgresOutbox(fresh_database_url)
    try:
        assert outbox.where == expected
    finally:
        outbox.close()
    assert PostgresJobTable(fresh_database_url).where == expected
    assert PostgresReplayCache(fresh_database_url).where == expected
    assert repr(PostgresJobTable(fresh_database_url)) == f"PostgresJobTable({expected})"
