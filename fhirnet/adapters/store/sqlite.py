"""The SQLite database of the embedded store: schema, migrations and connection handling.

* **One writer at a time.** Every write runs in ``BEGIN IMMEDIATE``, which takes SQLite's write
  lock before the first read, so a conditional create checks for a match and creates under the
  same lock: concurrent identical requests (threads or processes) leave one resource.
* **Readers never wait for writers** in WAL mode; each read runs in one deferred transaction and
  sees one consistent snapshot (a search's count and its page agree).
* **Busy timeout**: a writer waits up to ``busy_timeout`` seconds for the lock, then fails with
  ``sqlite3.OperationalError`` ("database is locked"), which the store reports as unavailable.
* **Writers queue before SQLite's lock.** SQLite's busy handler sleeps 1, 2, 5, 10 ... up to
  100 ms between attempts, so a writer that found the lock taken often slept on long after it
  was free: under 16 clients the two gunicorn workers' CPUs stood 13-21 % idle and p99 latency
  grew by those sleeps. So :meth:`Database.writing` first takes a lock of its own: a
  ``threading.Lock`` among the process's threads, then ``flock`` on ``<database>-writer``
  among processes, tried again every 0.1 ms to 1 ms. ``BEGIN IMMEDIATE`` then finds SQLite's lock
  free unless a process outside fhirnet writes, for which SQLite's own waiting stays.
* **Durability**: ``synchronous=FULL``, so a committed transaction survives power loss; what a
  ``201`` promised is on disk.
* **Checkpoints** copy the write-ahead log back into the database file inside the COMMIT that
  finds the log over ``wal_autocheckpoint`` pages. At SQLite's default (1,000 pages) a
  submission's commit ran one every few dozen submissions, copying again the index pages every
  transaction rewrites; at :data:`WAL_AUTOCHECKPOINT` pages each page is copied once for many
  transactions (a COMMIT's CPU fell from 1.3 to 1.0 ms on average, its time from 2.2 to
  1.7 ms). Durability does not depend on it: a commit is on disk once its log frames are synced.
* Connections are pooled and handed to one thread at a time. ``:memory:`` databases exist once per
  connection, so the in-memory store shares one connection under a lock instead.
* **Private files.** The database holds patient data (the outbox holds submitted forms): it is
  created ``0600`` whatever the umask, and an existing one (with its ``-wal``, ``-shm`` and
  ``-journal``) found readable by others is tightened to ``0600`` when opened. SQLite creates
  ``-wal`` and ``-shm`` with the database file's mode. :func:`private_directory` does the same
  for the data directory (``0700``).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from fhirnet.adapters.flock import take_flock
from fhirnet.adapters.store import versions
from fhirnet.errors import FhirnetError

#: One step of a migration: a SQL statement, or a function run on the connection (inside the
#: migration's transaction) for what SQL alone cannot do, such as rebuilding index rows.
Step = str | Callable[[sqlite3.Connection], object]
#: A schema: the steps that bring a database from version ``n - 1`` to ``n`` (index ``n - 1``).
Migrations = tuple[tuple[Step, ...], ...]
#: File name of the database inside the data directory.
DATABASE_FILE = "fhirnet-store.sqlite3"
#: Idle connections kept for reuse; more are closed when returned.
MAX_IDLE_CONNECTIONS = 8
#: Pages of write-ahead log after which a COMMIT checkpoints it (module docstring): at most about
#: 40 MB of log with 4 KiB pages.
WAL_AUTOCHECKPOINT = 10_000

#: The ``search_index`` rows of token, reference and canonical parameters, and of date ones: the
#: conditions of the two partial lookup indexes. A value row always has a ``code`` and never a
#: ``low``, a date row the reverse (parameters.IndexRow); each condition names a column of its
#: own index, so a lookup through it reads the index alone.
VALUE_ROWS = "code IS NOT NULL"
DATE_ROWS = "low IS NOT NULL"

#: Statements that bring a database from version ``n - 1`` to ``n`` (index ``n - 1``). Only ever
#: append: a database records its version in ``schema_version`` and is migrated on open.
MIGRATIONS: Migrations = (
    (
        """
        CREATE TABLE resources (
            rid INTEGER PRIMARY KEY,
            type TEXT NOT NULL,
            id TEXT NOT NULL,
            version INTEGER NOT NULL,         -- the current (latest) version
            last_updated INTEGER NOT NULL,    -- of the current version, µs since the epoch, UTC
            deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
            UNIQUE (type, id)
        )
        """,
        "CREATE INDEX resources_by_last_updated ON resources (type, last_updated)",
        """
        CREATE TABLE history (
            rid INTEGER NOT NULL REFERENCES resources (rid),
            version INTEGER NOT NULL,
            last_updated INTEGER NOT NULL,
            deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
            content TEXT,                     -- the resource's JSON; NULL for a deletion
            PRIMARY KEY (rid, version)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE search_index (
            rid INTEGER NOT NULL REFERENCES resources (rid),
            type TEXT NOT NULL,
            param TEXT NOT NULL,
            system TEXT,
            code TEXT,
            low INTEGER,
            high INTEGER
        )
        """,
        # Token, reference and canonical lookups: "which resources have this value".
        "CREATE INDEX search_by_value ON search_index (type, param, code, system, rid)",
        # Date range lookups.
        "CREATE INDEX search_by_date ON search_index (type, param, low, high, rid)",
        # Probing one resource's values (further criteria, sort keys, _include).
        "CREATE INDEX search_by_resource ON search_index (rid, param)",
    ),
    # 2: Provenance-entity became a search parameter (how a client finds a form's results);
    # Provenances written before have no rows for it.
    (partial(versions.reindex, resource_types=("Provenance",)),),
    # 3: each lookup index holds only the rows it can serve: dates in search_by_date, tokens,
    # references and canonicals in search_by_value. A token row in the date index (and the
    # reverse) was an entry nothing read, on a page every transaction dirtied: a submission's
    # COMMIT wrote about 178 pages to the log, 131 of them of these two indexes. The search that
    # drives through one names the rows it wants (clauses.where).
    (
        "DROP INDEX search_by_value",
        f"CREATE INDEX search_by_value ON search_index (type, param, code, system, rid)"
        f" WHERE {VALUE_ROWS}",
        "DROP INDEX search_by_date",
        f"CREATE INDEX search_by_date ON search_index (type, param, low, high, rid)"
        f" WHERE {DATE_ROWS}",
    ),
)
#: The schema this code reads and writes; append to :data:`MIGRATIONS` to change it, and add a
#: step rebuilding the index rows of every type whose indexed parameters change
#: (:func:`fhirnet.adapters.store.versions.reindex`).
SCHEMA_VERSION = len(MIGRATIONS)


#: Modes of fhirnet's files and directories holding patient data: the owner's only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700
#: Files SQLite keeps next to a database, by suffix.
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")
#: The file whose ``flock`` orders fhirnet's writers of a database (module docstring), by suffix.
WRITER_SUFFIX = "-writer"
#: Longest pause between two attempts at another process's writer lock.
_WRITER_POLL_SECONDS = 0.001


def private_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by the owner only, whatever the umask, and
    tighten ``path`` itself to ``0700`` if it exists with more (not its parents: they may be
    shared, e.g. ``/var/lib``)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIRECTORY_MODE, exist_ok=True)
        os.chmod(directory, PRIVATE_DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    _tighten(path, PRIVATE_DIRECTORY_MODE)


def private_file(path: Path) -> None:
    """Create the database file ``path`` as ``0600`` if missing (before SQLite creates it with
    ``0644`` under the usual umask), and tighten it and its companions (``-wal``, ``-shm``,
    ``-journal``) to ``0600`` where they are looser."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(descriptor)
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in COMPANION_SUFFIXES)):
        _tighten(candidate, PRIVATE_FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        os.chmod(path, current & mode)


class SchemaTooNewError(FhirnetError, RuntimeError):
    """The database was written by a newer fhirnet; opening it could corrupt it."""


class Database:
    """A SQLite database file (or an in-memory database) with the store's schema.

    :param path: the database file, created with its schema on first use, or ``":memory:"``.
    :param busy_timeout: seconds a writer waits for another writer's lock before failing.
    :param migrations: the schema, as for :data:`MIGRATIONS` (the default); the outbox
        (:mod:`fhirnet.adapters.outbox`) has its own.
    :raises SchemaTooNewError: the file has a schema newer than its ``migrations``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 30.0,
        migrations: Migrations = MIGRATIONS,
    ) -> None:
        self.path = str(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        #: Held by the thread of this process that writes or waits for the writer lock.
        self._writer = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self._shared: sqlite3.Connection | None = None
        if self.path == ":memory:":
            self._shared = self._connect()
        else:
            private_file(Path(self.path))
        with self.writing() as connection:
            migrate(connection, migrations)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a read transaction: one consistent snapshot until it ends."""
        with self._connection() as connection:
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                if connection.in_transaction:  # SQLite may have ended it after an error
                    connection.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a write transaction holding the database's write lock; committed
        when the block ends, rolled back entirely if it raises.

        :raises sqlite3.OperationalError: the lock was not free within the busy timeout.
        """
        with self._writer_turn(), self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                # SQLite may have rolled back already (e.g. on SQLITE_FULL); don't mask the error.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """This writer's turn among fhirnet's writers of the database (module docstring).

        The lock file is opened on each turn: a descriptor opened before gunicorn forks would be
        shared by the workers, and one ``flock`` does not exclude its own holders.

        :raises sqlite3.OperationalError: ``SQLITE_BUSY`` after ``busy_timeout`` seconds.
        """
        if self.path == ":memory:":  # one connection, already taken in turn (closed or not)
            yield
            return
        deadline = time.monotonic() + self._busy_timeout
        if not self._writer.acquire(timeout=self._busy_timeout):
            raise _busy()
        try:
            descriptor = os.open(
                f"{self.path}{WRITER_SUFFIX}", os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE
            )
            try:
                if not take_flock(
                    descriptor,
                    deadline=deadline,
                    first_pause=0.0001,
                    longest_pause=_WRITER_POLL_SECONDS,
                ):
                    raise _busy()
                yield
            finally:
                os.close(descriptor)  # releases the flock
        finally:
            self._writer.release()

    def close(self) -> None:
        """Close every connection; the database cannot be used afterwards."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            shared, self._shared = self._shared, None
        for connection in idle:
            connection.close()
        if shared is not None:
            shared.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self.path == ":memory:":
            with self._lock:
                if self._shared is None:
                    raise sqlite3.ProgrammingError("the store is closed")
                yield self._shared
            return
        connection = self._acquire()
        try:
            yield connection
        finally:
            self._release(connection)

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the store is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, connection: sqlite3.Connection) -> None:
        if connection.in_transaction:  # only after an error in COMMIT/ROLLBACK itself
            connection.close()
            return
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; reading()/writing() issue BEGIN.
        # check_same_thread=False: pooled connections move between threads, one at a time.
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        connection.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self._write_ahead_log(connection)
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
        return connection

    def _write_ahead_log(self, connection: sqlite3.Connection) -> None:
        """Put the database in WAL mode (persistent once set), waiting up to the busy timeout.

        SQLite answers a journal-mode change that another connection is making at the same time
        with ``database is locked`` at once, without calling its busy handler: two gunicorn
        workers opening a new data directory together made the slower one fail its first request
        (500). So the change is retried here, briefly, until the other connection is done.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
                continue
            if str(mode).lower() == "wal":
                return
            raise sqlite3.OperationalError(f"the database stays in journal mode {mode}, not WAL")


def migrate(connection: sqlite3.Connection, migrations: Migrations = MIGRATIONS) -> None:
    """Bring the database to the version of ``migrations`` (:data:`SCHEMA_VERSION` for the
    store's); call inside a write transaction.

    :raises SchemaTooNewError: the database is newer than this code.
    """
    latest = len(migrations)
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    if current > latest:
        raise SchemaTooNewError(
            f"the database has schema version {current}; this fhirnet knows up to "
            f"{latest}. Use a newer fhirnet or another data directory."
        )
    for version in range(current + 1, latest + 1):
        for step in migrations[version - 1]:
            if isinstance(step, str):
                connection.execute(step)
            else:
                step(connection)
        connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def _busy() -> sqlite3.OperationalError:
    """The error SQLite raises when its lock stays taken past the busy timeout."""
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    error.sqlite_errorname = "SQLITE_BUSY"
    return error


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY/LOCKED)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)
