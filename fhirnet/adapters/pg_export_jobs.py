"""The Bulk Data export jobs' table in PostgreSQL (``FHIRNET_DATABASE_URL``): the
:class:`~fhirnet.adapters.export_jobs.JobTable` every host shares, so a kick-off answered by one
host is polled, cancelled and downloaded through any other (the files themselves are in
``FHIRNET_EXPORT_DIR``, which the hosts must share too).

The table is ``export_jobs`` of migration 2 (:mod:`fhirnet.adapters.pg_schema`), with the
SQLite table's columns, so :class:`~fhirnet.adapters.export_jobs.ExportJobs` sends the same
statements to both; their ``?`` placeholders become psycopg's ``%s`` here (no statement of
``ExportJobs`` holds a literal ``%`` or ``?``: every value is a parameter).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from fhirnet.adapters.export_jobs import Cursor, ExportJobsUnavailableError, Rows
from fhirnet.adapters.pg_connections import Connection, PostgresAdapter

__all__ = ["PostgresJobTable"]


class PostgresJobTable(PostgresAdapter):
    """The export jobs' table in the database at ``database_url``: a connection per transaction
    (:class:`~fhirnet.adapters.pg_connections.PostgresAdapter`)."""

    application_name = "fhirnet export jobs"

    @contextmanager
    def transaction(self) -> Iterator[Rows]:
        """A transaction on a new connection, committed at the end of the block.

        :raises ExportJobsUnavailableError: the database cannot be reached or times out.
        """
        try:
            with self._connections.transaction() as connection:
                yield _Rows(connection)
        except (psycopg.Error, OSError) as error:
            raise ExportJobsUnavailableError(
                f"export jobs unavailable ({self.where}): {type(error).__name__}: {error}"
            ) from None


class _Rows:
    """A psycopg connection taking the ``?`` statements of the SQLite table."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self._connection.execute(sql.replace("?", "%s").encode(), tuple(parameters))
