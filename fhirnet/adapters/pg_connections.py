"""PostgreSQL connections for the adapters that keep shared state there besides the outbox (the
used client assertions, the Bulk Data export jobs), with the schema migrated on first use.

One connection per transaction, closed at its end, none kept idle: these adapters are used
rarely (a token request per client per token lifetime; an export's polls every few seconds and
its progress every 200 resources), so a connection costs a few milliseconds where it is used,
and in exchange no worker process of any host holds an idle session (counted against
``max_connections``), nothing crosses a fork (gunicorn may build the app in its master), and
nothing is stale after a database restart. Nothing connects before the first use. Every
connection has a ``statement_timeout`` and a ``lock_timeout``. Errors are psycopg's and
:class:`OSError`: each adapter turns them into its own unavailable error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg

from fhirnet.adapters.pg_schema import migrate

__all__ = ["Connection", "Connections", "where"]

Connection = psycopg.Connection[tuple[Any, ...]]


def where(database_url: str) -> str:
    """The database of ``database_url`` for messages: host, port and name, never the password."""
    parts = urlsplit(database_url)
    return f"postgresql://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


class Connections:
    """Transactions on the database at ``database_url``.

    :param application_name: how the sessions are named in ``pg_stat_activity``.
    :param statement_timeout: seconds a statement may run, or wait for a lock.
    :param connect_timeout: seconds to wait for a connection.
    """

    def __init__(
        self,
        database_url: str,
        *,
        application_name: str,
        statement_timeout: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._url = database_url
        self.where = where(database_url)
        self._application_name = application_name
        milliseconds = max(1, round(statement_timeout * 1000))
        self._options = f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
        self._connect_timeout = max(1, round(connect_timeout))
        self._migrated = False

    def __repr__(self) -> str:  # never the URL: it carries the password
        return f"{type(self).__name__}({self.where})"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A new connection inside one transaction, committed at the end of the block (rolled
        back on an exception), then closed."""
        with self._connect() as connection:
            if not self._migrated:
                migrate(connection)
                self._migrated = True
            with connection.transaction():
                yield connection

    def _connect(self) -> Connection:
        return psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            options=self._options,
            application_name=self._application_name,
        )
