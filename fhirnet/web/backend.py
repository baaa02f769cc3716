"""Which FHIR store the application works on, built from :class:`~fhirnet.config.Settings`: the
external server of ``FHIRNET_FHIR_BASE_URL`` through
:class:`~fhirnet.adapters.fhir_client.FhirClient`, or,
without one, the embedded SQLite store in ``FHIRNET_DATA_DIR``; and where the per-patient locks
and the outbox live: ``flock`` files and a SQLite file on this host, or, with
``FHIRNET_DATABASE_URL``, PostgreSQL shared by every host (one setting switches both) — and so do
the client assertion ids the token endpoint has seen and the Bulk Data export jobs, whose files go
to ``FHIRNET_EXPORT_DIR`` (docs/deployment.md). What stays on one host although the settings say
several is logged as a warning when the backend is built.

The embedded store is opened on first use, not by ``create_app``: gunicorn may build the app in
its master process and fork the workers from it, and a SQLite connection must not cross a fork.
The HTTP client is built at once (it opens no connection until used), so that a bad SMART key
file stops the start. With the outbox on, deliveries use a second client that does not retry:
the outbox retries them itself (with its backoff and its pause of the whole process), and a
client retrying inside an attempt would keep an EHR's request, and the patients' locks, waiting
seconds for a server that is down. The external server's CapabilityStatement, which says how
to address what fhirnet writes (:func:`fhirnet.fhir.identifiers.client_id_types`), is read on
the first submission and kept; a server that is down then is answered 503 and asked again next
time.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from fhirnet.adapters.export_jobs import FILES_DIR, ExportJobs
from fhirnet.adapters.fhir_client import FhirClient, RetryPolicy
from fhirnet.adapters.locks import LOCKS_DIR, FileLocks
from fhirnet.adapters.outbox import OUTBOX_FILE, SqliteOutbox
from fhirnet.adapters.pg_connections import where
from fhirnet.adapters.pg_export_jobs import PostgresJobTable
from fhirnet.adapters.pg_locks import PostgresLocks
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.adapters.pg_replay_cache import PostgresReplayCache
from fhirnet.adapters.replay_cache import FILE_NAME as USED_ASSERTIONS_FILE
from fhirnet.adapters.replay_cache import ReplayCache
from fhirnet.adapters.smart import SmartCredentials
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.authorization import UsedAssertions
from fhirnet.config import PREFIX, ConfigError, Settings
from fhirnet.fhir.identifiers import DEFAULT_CLIENT_ID_TYPES, client_id_types
from fhirnet.ports import FhirStore, Outbox, PatientLocks

_log = logging.getLogger(__name__)


class Backend:
    """The store, the locks and what the store's server supports, shared by every request.

    :param settings: where the store is (``fhir_base_url`` or ``data_dir``) and how to reach it.
    :param store: a store to use instead (tests: the embedded store in a temporary directory, a
        client of a test server, a fake); it is embedded when it is an :class:`EmbeddedStore`.
    :raises ConfigError: the SMART key file cannot be read or used.
    """

    def __init__(self, settings: Settings, *, store: FhirStore | None = None) -> None:
        self.settings = settings
        for warning in per_host_state(settings):
            _log.warning("%s", warning)
        self.locks = patient_locks(settings, timeout=settings.lock_timeout)
        if store is None and settings.fhir_base_url is not None:
            store = _client(settings, settings.fhir_base_url)
        self._store = store
        self._delivery_store: FhirClient | None = None
        if isinstance(store, FhirClient) and settings.outbox:
            self._delivery_store = _client(settings, store.base_url, retry=NO_RETRY)
        self._opening = threading.Lock()
        self._client_id_types: frozenset[str] | None = None

    @property
    def embedded(self) -> bool:
        """Whether fhirnet keeps the resources itself (and serves them under ``/fhir``)."""
        return self._store is None or isinstance(self._store, EmbeddedStore)

    @property
    def server_url(self) -> str | None:
        """The external FHIR server's base URL; ``None`` for the embedded store or a fake."""
        return self._store.base_url if isinstance(self._store, FhirClient) else None

    def store(self) -> FhirStore:
        """The store, opening the embedded one on first use."""
        if self._store is None:
            with self._opening:
                if self._store is None:
                    self._store = EmbeddedStore.open(self.settings.data_dir)
        return self._store

    def delivery_store(self) -> FhirStore:
        """The store the outbox's deliveries write to: the external server through a client
        that tries each request once (the outbox retries), else :meth:`store`."""
        return self._delivery_store or self.store()

    def embedded_store(self) -> EmbeddedStore | None:
        """The embedded store, or ``None`` when the resources live on an external server."""
        store = self.store() if self.embedded else None
        return store if isinstance(store, EmbeddedStore) else None

    def client_id_types(self) -> frozenset[str]:
        """The types written ``PUT Type/<id>`` rather than by conditional update: from the
        external server's CapabilityStatement, else the default (the embedded store updates
        every written type conditionally by identifier).

        :raises fhirnet.errors.FhirServerError: the CapabilityStatement could not be read.
        """
        if not isinstance(self._store, FhirClient):
            return DEFAULT_CLIENT_ID_TYPES
        if self._client_id_types is None:
            self._client_id_types = client_id_types(
                (self._delivery_store or self._store).capabilities()
            )
        return self._client_id_types


def patient_locks(settings: Settings, *, timeout: float) -> PatientLocks:
    """The per-patient locks: advisory locks in ``FHIRNET_DATABASE_URL`` (every host), else
    ``flock`` files in ``FHIRNET_DATA_DIR/locks`` (this host's processes).

    :param timeout: seconds to wait for a held lock; ``0``: try once.
    """
    if settings.database_url is not None:
        return PostgresLocks(settings.database_url, timeout=timeout)
    return FileLocks(settings.data_dir / LOCKS_DIR, timeout=timeout)


def outbox_path(settings: Settings) -> Path:
    """The SQLite outbox's file (used without ``FHIRNET_DATABASE_URL``)."""
    return settings.outbox_path or settings.data_dir / OUTBOX_FILE


def open_outbox(settings: Settings) -> Outbox:
    """The outbox, opened (and its schema migrated): in ``FHIRNET_DATABASE_URL``, shared by
    every host, else the SQLite file of :func:`outbox_path`.

    :raises fhirnet.errors.OutboxUnavailableError: it cannot be opened.
    """
    if settings.database_url is not None:
        return PostgresOutbox(settings.database_url)
    return SqliteOutbox(outbox_path(settings))


def outbox_location(settings: Settings) -> str:
    """Where the outbox is, for messages: the file, or the database without its password."""
    if settings.database_url is not None:
        return where(settings.database_url)
    return str(outbox_path(settings))


def used_assertions(settings: Settings) -> UsedAssertions:
    """The client assertion ids the token endpoint has seen: in ``FHIRNET_DATABASE_URL`` (an
    assertion replayed to another host is refused), else a SQLite file in the data directory."""
    if settings.database_url is not None:
        return PostgresReplayCache(settings.database_url)
    return ReplayCache(settings.data_dir / USED_ASSERTIONS_FILE)


def export_dir(settings: Settings) -> Path:
    """Where the bulk exports' files are: ``FHIRNET_EXPORT_DIR``, else ``data_dir/exports``."""
    return settings.export_dir or settings.data_dir / FILES_DIR


def open_export_jobs(settings: Settings) -> ExportJobs:
    """The Bulk Data export jobs: their table in ``FHIRNET_DATABASE_URL`` (every host), else
    SQLite in the data directory; their files in :func:`export_dir`.

    :raises fhirnet.adapters.export_jobs.ExportJobsUnavailableError: the files directory or the
        SQLite file cannot be opened.
    """
    table = None if settings.database_url is None else PostgresJobTable(settings.database_url)
    return ExportJobs(settings.data_dir, files_dir=export_dir(settings), table=table)


def per_host_state(settings: Settings) -> tuple[str, ...]:
    """What stays on this host although ``FHIRNET_DATABASE_URL`` says there are several: one
    warning each (none without it). The token key is not here: without a shared one, the start
    is refused (:func:`fhirnet.token_key.token_key_path`)."""
    if settings.database_url is None:
        return ()
    warnings = []
    if settings.fhir_base_url is None:
        warnings.append(
            f"{PREFIX}DATABASE_URL is set but {PREFIX}FHIR_BASE_URL is not: the resources are "
            f"kept in this host's embedded store ({settings.data_dir}); several hosts would "
            f"each keep their own. Give every host the same {PREFIX}FHIR_BASE_URL"
        )
    if settings.export_dir is None:
        warnings.append(
            f"{PREFIX}DATABASE_URL is set but {PREFIX}EXPORT_DIR is not: bulk export files are "
            f"written to this host's {export_dir(settings)}, and a download that reaches another "
            f"host fails. Set {PREFIX}EXPORT_DIR to a directory every host shares"
        )
    return tuple(warnings)


#: The retry policy of deliveries from the outbox: one try per attempt.
NO_RETRY = RetryPolicy(attempts=1)


def _client(settings: Settings, base_url: str, *, retry: RetryPolicy | None = None) -> FhirClient:
    return FhirClient(
        base_url,
        timeout=(settings.fhir_connect_timeout, settings.fhir_timeout),
        bearer_token=settings.fhir_bearer_token,
        smart=_smart(settings),
        retry=retry,
    )


def _smart(settings: Settings) -> SmartCredentials | None:
    path = settings.smart_private_key_file
    if settings.smart_client_id is None or path is None:
        return None  # load_settings allows both or neither
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{PREFIX}SMART_PRIVATE_KEY_FILE: cannot read {path}: {error.strerror}"
        ) from None
    try:
        return SmartCredentials(
            client_id=settings.smart_client_id,
            private_key_pem=pem,
            scope=settings.smart_scope,
            token_url=settings.smart_token_url,
            key_id=settings.smart_key_id,
        )
    except ValueError as error:
        raise ConfigError(f"{PREFIX}SMART_PRIVATE_KEY_FILE {path}: {error}") from None
