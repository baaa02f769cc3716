"""The embedded FHIR store: the :class:`~fhirnet.ports.FhirStore` port over a SQLite file, for
running fhirnet on one machine with no FHIR server.

It behaves like :class:`fhirnet.adapters.fhir_client.FhirClient` where the port is concerned:
``read`` answers
``None`` for missing and deleted resources and raises ``ValueError`` for ids that are not FHIR
syntax; ``transaction`` takes only ``transaction`` Bundles (``ValueError`` otherwise), answers a
``transaction-response`` Bundle and raises :class:`~fhirnet.errors.FhirServerRejectedError` with
an OperationOutcome when it refuses (nothing written); a database that stays locked or fails is
:class:`~fhirnet.errors.FhirServerUnavailableError`. Beyond the port it offers what the web layer
needs to serve ``/fhir``: :meth:`EmbeddedStore.search_page`, :meth:`EmbeddedStore.vread` and
:meth:`EmbeddedStore.batch`.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from fhirnet.adapters.store import versions
from fhirnet.adapters.store.parser import parse_query
from fhirnet.adapters.store.query import CURSOR
from fhirnet.adapters.store.resources import is_id, is_resource_type
from fhirnet.adapters.store.search import MAX_PAGE_BYTES, SearchPage, run
from fhirnet.adapters.store.sqlite import (
    DATABASE_FILE,
    MIGRATIONS,
    Database,
    Migrations,
    private_directory,
)
from fhirnet.adapters.store.transaction import (
    Prepared,
    prepare_batch,
    prepare_transaction,
    process_batch,
    process_transaction,
)
from fhirnet.errors import FhirServerUnavailableError
from fhirnet.ports import Json, SearchParams

__all__ = ["EmbeddedStore"]

_log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _uuid4() -> str:
    return str(uuid.uuid4())


class EmbeddedStore:
    """FHIR R4 resources in a SQLite database: ``read``, ``search``, ``transaction`` and more.

    Thread-safe; share one instance per process. Several processes may open the same file: SQLite
    serialises their writes.

    :param path: the database file (created with its schema on first use) or ``":memory:"``.
    :param clock: the time of a write (``meta.lastUpdated``); must return aware datetimes.
    :param new_id: the ids of created resources; must return valid FHIR ids.
    :param busy_timeout: seconds a write waits for another one before failing as unavailable.
    :param max_page_bytes: most bytes of JSON of the matches of one search page.
    :param migrations: the schema; an older prefix of it only to compare schemas (bench/).
    :raises fhirnet.adapters.store.sqlite.SchemaTooNewError: the file comes from a newer fhirnet.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], str] = _uuid4,
        busy_timeout: float = 30.0,
        max_page_bytes: int = MAX_PAGE_BYTES,
        migrations: Migrations = MIGRATIONS,
    ) -> None:
        self._database = Database(path, busy_timeout=busy_timeout, migrations=migrations)
        self._max_page_bytes = max_page_bytes
        self._clock = clock
        self._new_id = new_id

    @classmethod
    def open(cls, data_dir: Path, **options: Any) -> EmbeddedStore:
        """The store in ``data_dir`` (``FHIRNET_DATA_DIR``), creating the directory if needed:
        ``0700``, and tightened to it if found looser (it holds patient data)."""
        private_directory(data_dir)
        return cls(data_dir / DATABASE_FILE, **options)

    @classmethod
    def in_memory(cls, **options: Any) -> EmbeddedStore:
        """A store that lives as long as the object (tests, demos)."""
        return cls(":memory:", **options)

    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
        return self._database.path

    # -- the FhirStore port ------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Json | None:
        """The current version of a resource; ``None`` if it does not exist or was deleted.

        :raises ValueError: the type or id is not valid FHIR syntax.
        """
        _check(resource_type, resource_id)
        with self._reading() as connection:
            return versions.load(connection, resource_type, resource_id)

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        """Every match and included resource of a search, page after page (lazily).

        :raises fhirnet.adapters.store.query.SearchParameterError: a parameter or value the store
        does
            not support (raised at once, before the first resource).
        """
        page = self.search_page(resource_type, params)
        return self._pages(resource_type, params, page)

    def transaction(self, bundle: Json) -> Json:
        """Process a ``transaction`` Bundle atomically; returns the ``transaction-response``.

        :raises ValueError: ``bundle`` is not a transaction Bundle.
        :raises fhirnet.errors.FhirServerRejectedError: an entry was refused; nothing was written.
        :raises fhirnet.errors.FhirServerUnavailableError: the database stayed locked or failed.
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise ValueError("transaction() takes a Bundle of type 'transaction'")
        return self._write(process_transaction, prepare_transaction(bundle))

    # -- beyond the port ---------------------------------------------------------------------

    def batch(self, bundle: Json) -> Json:
        """Process a ``batch`` Bundle, each entry on its own; returns the ``batch-response``.

        :raises ValueError: ``bundle`` is not a batch Bundle.
        :raises fhirnet.errors.FhirServerRejectedError: the Bundle itself is malformed.
        :raises fhirnet.errors.FhirServerUnavailableError: the database stayed locked or failed.
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "batch":
            raise ValueError("batch() takes a Bundle of type 'batch'")
        return self._write(process_batch, prepare_batch(bundle))

    def search_page(self, resource_type: str, params: SearchParams) -> SearchPage:
        """One page of a search, for a ``searchset`` Bundle: matches, included resources, the
        total, and the cursor of the next page (pass it back as ``_cursor`` with the same
        parameters).

        :raises fhirnet.adapters.store.query.SearchParameterError: an unsupported parameter,
        modifier or
            prefix, a malformed value, or a cursor of another search (status 400).
        """
        query = parse_query(resource_type, params)
        with self._reading() as connection:
            return run(connection, query, max_bytes=self._max_page_bytes)

    def vread(self, resource_type: str, resource_id: str, version: str) -> Json | None:
        """One version of a resource (``_history``); ``None`` if absent or a deletion.

        :raises ValueError: the type or id is not valid FHIR syntax.
        """
        _check(resource_type, resource_id)
        if not version.isascii() or not version.isdigit() or len(version) > 9:
            return None
        with self._reading() as connection:
            return versions.load_version(connection, resource_type, resource_id, int(version))

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connections."""
        self._database.close()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _pages(self, resource_type: str, params: SearchParams, page: SearchPage) -> Iterator[Json]:
        while True:
            yield from page.matches
            yield from page.included
            if page.next_cursor is None:
                return
            following = {k: v for k, v in params.items() if k != CURSOR}
            page = self.search_page(resource_type, {**following, CURSOR: page.next_cursor})

    def _write(self, process: Callable[..., Json], prepared: Prepared) -> Json:
        """Run ``process`` on ``prepared`` (parsed and made ready before, without the lock) under
        the write lock."""
        try:
            with self._database.writing() as connection:
                # The clock is read under the write lock, so lastUpdated follows commit order.
                now = self._clock()
                if now.utcoffset() is None:
                    raise ValueError("the store's clock must return timezone-aware datetimes")
                return process(connection, prepared, now=now, new_id=self._new_id)
        except sqlite3.OperationalError as error:
            raise _unavailable(error, "write") from error

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._database.reading() as connection:
                yield connection
        except sqlite3.OperationalError as error:
            raise _unavailable(error, "read") from error


#: SQLite errors that mean "not now" (a lock held too long, a disk full or failing), worth a
#: retry; any other ``OperationalError`` is a bug and is raised as it is (500, nothing told).
_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")


def _unavailable(error: sqlite3.OperationalError, doing: str) -> Exception:
    """The error to raise for ``error``: :class:`FhirServerUnavailableError` with a fixed
    message (SQLite's text may quote SQL, and the client sees this one), or ``error`` itself."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if not name.startswith(_UNAVAILABLE):
        return error
    _log.warning("the embedded FHIR store could not %s: %s", doing, name)
    busy = name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    reason = "it is busy with other writes" if busy else "its database file cannot be used"
    return FhirServerUnavailableError(f"the embedded FHIR store could not {doing}: {reason}")


def _check(resource_type: str, resource_id: str) -> None:
    if not is_resource_type(resource_type):
        raise ValueError(f"not a FHIR R4 resource type: {resource_type!r}")
    if not is_id(resource_id):
        raise ValueError(f"not a FHIR id: {resource_id!r}")
