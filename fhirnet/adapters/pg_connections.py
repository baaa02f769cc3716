"""PostgreSQL connections: how every PostgreSQL adapter connects (:func:`connect`: timeouts,
TCP keepalives, the session's name), and the transactions of the adapters that keep shared state
there besides the outbox and the locks (the used client assertions, the Bulk Data export jobs:
:class:`Connections`, :class:`PostgresAdapter`), with the schema migrated on first use.

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
from typing import Any, ClassVar
from urllib.parse import urlsplit

import psycopg

from fhirnet.adapters.pg_schema import migrate

__all__ = ["Connection", "Connections", "PostgresAdapter", "connect", "where"]

Connection = psycopg.Connection[tuple[Any, ...]]


def where(database_url: str) -> str:
    """The database of ``database_url`` for messages: host, port and name, never the password."""
    parts = urlsplit(database_url)
    return f"postgresql://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def connect(
    database_url: str,
    *,
    application_name: str,
    connect_timeout: float,
    statement_timeout: float | None = None,
    autocommit: bool = True,
) -> Connection:
    """A new session on the database at ``database_url``.

    TCP keepalives on every session, this side's: a database server that vanished without closing
    the connection (power loss, a cut network) fails the session within about 30 s instead of
    leaving a thread blocked on a dead socket. The other way round, the server noticing a host
    that vanished, is the server's ``tcp_keepalives_*`` settings (``docs/deployment.md``).

    :param application_name: how the session is named in ``pg_stat_activity``.
    :param connect_timeout: seconds to wait for the connection (at least 1: libpq's unit).
    :param statement_timeout: seconds a statement may run, and wait for a lock; ``None``: the
        caller sets them per transaction.
    :raises psycopg.Error: the database cannot be reached.
    """
    options = None  # psycopg leaves a parameter that is None out of the connection string
    if statement_timeout is not None:
        milliseconds = max(1, round(statement_timeout * 1000))
        options = f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
    return psycopg.connect(
        database_url,
        autocommit=autocommit,
        connect_timeout=max(1, round(connect_timeout)),
        application_name=application_name,
        keepalives=1,
        keepalives_idle=15,
        keepalives_interval=5,
        keepalives_count=3,
        options=options,
    )


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
        self._statement_timeout = statement_timeout
        self._connect_timeout = connect_timeout
        self._migrated = False

    def __repr__(self) -> str:  # never the URL: it carries the password
        return f"{type(self).__name__}({self.where})"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A new connection inside one transaction, committed at the end of the block (rolled
        back on an exception), then closed."""
        with connect(
            self._url,
            application_name=self._application_name,
            connect_timeout=self._connect_timeout,
            statement_timeout=self._statement_timeout,
        ) as connection:
            if not self._migrated:
                migrate(connection)
                self._migrated = True
            with connection.transaction():
                yield connection


class PostgresAdapter:
    """An adapter whose state is a table in the database at ``database_url``: its
    :class:`Connections` (schema migrated on first use; a connection per transaction, none
    before nor kept) and where it is, for messages.

    :param statement_timeout: seconds a statement may run or wait for a lock (then 503).
    :param connect_timeout: seconds to wait for a connection (then 503).
    """

    #: How the adapter's sessions are named in ``pg_stat_activity``.
    application_name: ClassVar[str]

    def __init__(
        self, database_url: str, *, statement_timeout: float = 10.0, connect_timeout: float = 10.0
    ) -> None:
        self._connections = Connections(
            database_url,
            application_name=self.application_name,
            statement_timeout=statement_timeout,
            connect_timeout=connect_timeout,
        )
        #: Where the table is, for messages: never the password.
        self.where = self._connections.where

    def __repr__(self) -> str:  # never the URL: it carries the password
        return f"{type(self).__name__}({self.where})"
