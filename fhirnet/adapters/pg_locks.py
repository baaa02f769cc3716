"""Per-patient locks as PostgreSQL transaction-scoped advisory locks: the
:class:`~fhirnet.ports.PatientLocks` adapter when several hosts share one database
(``FHIRNET_DATABASE_URL``); :mod:`fhirnet.adapters.locks` (``flock``) covers one host only.

Each :meth:`PostgresLocks.hold` opens its own connection, begins a transaction, and takes
``pg_advisory_xact_lock`` on every patient's key, in sorted key order (two holders of overlapping
sets cannot deadlock). The locks belong to that transaction only: the ROLLBACK that ends the
block releases them, and so does the server when the holder dies (its connection drops and the
transaction aborts); nothing is ever left locked at session level. ``lock_timeout`` makes a held
lock fail after the timeout instead of waiting forever (:class:`~fhirnet.errors.PatientBusyError`,
as the file locks), and ``statement_timeout`` bounds every statement the adapter sends.

Keys are 64-bit: the first 8 bytes of SHA-256 over a namespace and the patient id, so the keys
are the same on every host and Python version, and do not collide with other users of advisory
locks in the same database that key by small integers.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors

from fhirnet.adapters.pg_connections import Connection, connect
from fhirnet.errors import PatientBusyError

#: Prefix of every hashed patient id: fhirnet's advisory locks stay apart from other uses.
NAMESPACE = b"fhirnet.patient-lock\x00"
#: Seconds beyond the lock timeout a single statement may take (the server itself is slow).
_STATEMENT_MARGIN_SECONDS = 5.0


def lock_key(patient: str) -> int:
    """The advisory lock key of ``patient``: a signed 64-bit integer (PostgreSQL ``bigint``)."""
    digest = hashlib.sha256(NAMESPACE + patient.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLocks:
    """Advisory locks per patient in the PostgreSQL database of ``database_url``.

    :param database_url: ``postgresql://user:password@host:port/db`` (libpq syntax).
    :param timeout: seconds to wait for the held locks before :class:`PatientBusyError`; ``0``
        tries once without waiting.
    :param connect_timeout: seconds to reach the server; an unreachable server is answered as a
        busy patient (503 with ``Retry-After``), since the submission may be retried.
    :param monotonic: the clock of the timeout.
    """

    def __init__(
        self,
        database_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = database_url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._monotonic = monotonic

    def __repr__(self) -> str:  # never the URL: it carries the password
        return f"{type(self).__name__}(timeout={self.timeout:g})"

    @contextmanager
    def hold(self, patients: Collection[str]) -> Iterator[None]:
        """Hold the lock of every patient of ``patients`` for the block, in one transaction."""
        deadline = self._monotonic() + self.timeout
        keys = sorted({lock_key(patient) for patient in patients})
        connection = self._connect()
        try:
            for key in keys:
                self._take(connection, key, deadline)
            yield
        finally:
            try:
                connection.rollback()  # releases every lock of the transaction
            except psycopg.Error:
                pass  # a dead connection: the server aborted the transaction, the locks with it
            finally:
                connection.close()

    def _connect(self) -> Connection:
        try:
            # No session-wide timeouts: _take sets them per lock, from the one deadline.
            return connect(
                self._url,
                application_name="fhirnet-locks",
                connect_timeout=self.connect_timeout,
                autocommit=False,
            )
        except psycopg.Error as error:
            raise PatientBusyError(
                f"the patient lock database cannot be reached ({type(error).__name__})",
                retry_after=max(1.0, self.timeout / 10),
            ) from None

    def _take(self, connection: Connection, key: int, deadline: float) -> None:
        """Wait for the lock of ``key`` until ``deadline`` (one deadline for all the keys)."""
        remaining = max(0.0, deadline - self._monotonic())
        # lock_timeout 0 would mean "wait forever": 1 ms is "do not wait".
        wait_ms = max(1, round(remaining * 1000))
        statement_ms = wait_ms + round(_STATEMENT_MARGIN_SECONDS * 1000)
        try:
            connection.execute(
                "SELECT set_config('lock_timeout', %s, true), "
                "set_config('statement_timeout', %s, true)",
                (f"{wait_ms}ms", f"{statement_ms}ms"),
            )
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        except (pg_errors.LockNotAvailable, pg_errors.QueryCanceled):
            raise PatientBusyError(
                f"another submission about the same patient has been running for "
                f"over {self.timeout:g} s",
                retry_after=max(1.0, self.timeout / 10),
            ) from None
        except psycopg.Error as error:
            raise PatientBusyError(
                f"the patient lock database failed ({type(error).__name__})",
                retry_after=max(1.0, self.timeout / 10),
            ) from None
