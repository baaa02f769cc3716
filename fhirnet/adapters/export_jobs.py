"""Bulk Data export jobs shared by every worker process: one table of jobs (status, request,
owner, progress, transaction time, outputs, expiry) and the NDJSON files of each job in
``<files_dir>/<job id>/`` (``FHIRNET_EXPORT_DIR``, default ``<data_dir>/exports``).

The table is SQLite under the data directory (:class:`SqliteJobTable`: the worker processes of
one host), or, with ``FHIRNET_DATABASE_URL``, PostgreSQL
(:class:`fhirnet.adapters.pg_export_jobs.PostgresJobTable`: every host); the statements are the
same, written with ``?`` placeholders. Several hosts must also share the files directory
(a network file system): the kick-off may reach one host and the download another.

The export runs in a thread of the worker that got the kick-off; any worker (of any host sharing
the table and the files) answers the status, the cancel and the downloads from here. Job ids are
unguessable (:func:`secrets.token_urlsafe`), the files readable by fhirnet's user only
(directories 0700, files 0600). Expired jobs and their files go on each kick-off and status
request (:meth:`ExportJobs.purge`); a cancelled job's files go at once. A job whose worker
stopped (a host killed mid-export) fails once its heartbeat is :data:`STALE_SECONDS` old.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from fhirnet.errors import FhirnetError

DATABASE = "exports.sqlite3"
FILES_DIR = "exports"
#: Seconds a connection waits for another process's write lock.
BUSY_SECONDS = 10.0
#: Seconds without progress after which a running job counts as abandoned (its worker process
#: stopped): it fails, so that its client stops polling. An export notes progress at least
#: every 200 resources and every type.
STALE_SECONDS = 600.0
#: How long an abandoned job's failure stays visible.
ABANDONED_KEPT_SECONDS = 3600.0
#: A file name of an export: ``<Type>.ndjson`` (or ``OperationOutcome.ndjson``).
FILE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}\.ndjson")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS export_jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    request TEXT NOT NULL,
    transaction_time TEXT NOT NULL,
    created REAL NOT NULL,
    progress TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '[]',
    errors TEXT NOT NULL DEFAULT '[]',
    extension TEXT,
    failure TEXT,
    expires REAL,
    heartbeat REAL
)
"""


class ExportJobsUnavailableError(FhirnetError):
    """The job table or the files directory cannot be opened or written (503)."""


class Cursor(Protocol):
    """What a statement of the job table answers (sqlite3's and psycopg's cursors both are)."""

    @property
    def rowcount(self) -> int:
        """Rows an ``UPDATE`` or ``DELETE`` changed."""
        ...

    def fetchone(self) -> Any:
        """The next row, or ``None``."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        ...


class Rows(Protocol):
    """A connection in a transaction, taking statements with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        """Run one statement."""
        ...


class JobTable(Protocol):
    """Where the ``export_jobs`` rows live (SQLite for one host, PostgreSQL for several)."""

    def transaction(self) -> AbstractContextManager[Rows]:
        """A transaction, committed at the end of the block.

        :raises ExportJobsUnavailableError: the table cannot be reached.
        """
        ...


class SqliteJobTable:
    """The job table in the SQLite file ``path`` (created when missing), shared by the worker
    processes of one host.

    :raises ExportJobsUnavailableError: the file cannot be opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self.transaction() as rows:
                rows.execute(_SCHEMA)
        except OSError as error:
            raise ExportJobsUnavailableError(f"export jobs unavailable: {error}") from None

    @contextmanager
    def transaction(self) -> Iterator[Rows]:
        """A connection whose transaction commits at the end of the block."""
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
            with closing(connection), connection:
                yield connection
        except sqlite3.Error as error:
            raise ExportJobsUnavailableError(f"export jobs unavailable: {error}") from None


class JobStatus(StrEnum):
    """Where an export is."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
class OutputFile:
    """One NDJSON file of an export: its type, name and number of lines."""

    resource_type: str
    name: str
    count: int


@dataclass(frozen=True, kw_only=True)
class Job:
    """One export job as stored.

    :ivar owner: who kicked it off (the principal's identity); only it may poll or download.
    :ivar request: the kick-off URL (the manifest's ``request``).
    :ivar extension: extra manifest content (JSON object), e.g. the pseudonymization regime.
    :ivar failure: why a failed job failed (no patient data).
    :ivar expires: when the job and its files go (seconds since the epoch); ``None`` while running.
    """

    id: str
    status: JobStatus
    owner: str
    request: str
    transaction_time: str
    created: float
    progress: str
    outputs: tuple[OutputFile, ...]
    errors: tuple[OutputFile, ...]
    extension: dict[str, Any] | None
    failure: str | None
    expires: float | None


class ExportJobs:
    """The export jobs of one job table and their files in one directory.

    :param data_dir: where ``exports.sqlite3`` lives (created when missing) unless ``table``
        is given, and ``exports/`` unless ``files_dir`` is.
    :param files_dir: the jobs' files (``FHIRNET_EXPORT_DIR``); created (0700) when missing.
    :param table: the job table; ``None``: the SQLite file in ``data_dir``.
    :param clock: seconds since the epoch, for the running jobs' heartbeat (the same in every
        worker process: not the application's clock, which tests may move).
    :raises ExportJobsUnavailableError: the database or the files directory cannot be opened.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        files_dir: Path | None = None,
        table: JobTable | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.files_dir = data_dir / FILES_DIR if files_dir is None else files_dir
        try:
            self.files_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise ExportJobsUnavailableError(f"export jobs unavailable: {error}") from None
        self._table = SqliteJobTable(data_dir / DATABASE) if table is None else table

    # -- jobs -----------------------------------------------------------------------------------

    def create(self, *, owner: str, request: str, transaction_time: str, now: float) -> Job:
        """A new running job, with its empty files directory."""
        job_id = secrets.token_urlsafe(24)
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO export_jobs (id, status, owner, request, transaction_time, created,"
                " heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    JobStatus.RUNNING.value,
                    owner,
                    request,
                    transaction_time,
                    now,
                    self._clock(),
                ),
            )
        self.directory(job_id).mkdir(mode=0o700)
        job = self.get(job_id)
        assert job is not None  # noqa: S101 -- just written
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or ``None`` when there is none with this id (never one, or purged)."""
        if not _JOB_ID.fullmatch(job_id):
            return None
        with self._connection() as connection:
            row = connection.execute(
                "SELECT id, status, owner, request, transaction_time, created, progress, outputs,"
                " errors, extension, failure, expires FROM export_jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        return None if row is None else _job(row)

    def cancelled(self, job_id: str) -> bool:
        """Whether the job was cancelled or purged (the exporting thread stops then)."""
        job = self.get(job_id)
        return job is None or job.status is JobStatus.CANCELLED

    def set_progress(self, job_id: str, progress: str) -> None:
        """Note how far a running job is (``X-Progress``: under 100 characters), and that it is
        alive."""
        with self._connection() as connection:
            connection.execute(
                "UPDATE export_jobs SET progress = ?, heartbeat = ? WHERE id = ? AND status = ?",
                (progress[:99], self._clock(), job_id, JobStatus.RUNNING.value),
            )

    def finish(
        self,
        job_id: str,
        *,
        outputs: Sequence[tuple[str, str, int]],
        errors: Sequence[tuple[str, str, int]],
        extension: dict[str, Any] | None,
        expires: float,
    ) -> bool:
        """Mark a running job done with its ``(type, file name, count)`` files; ``False`` (and
        its files deleted) if it was cancelled meanwhile."""
        with self._connection() as connection:
            changed = connection.execute(
                "UPDATE export_jobs SET status = ?, outputs = ?, errors = ?, extension = ?,"
                " expires = ?, progress = ? WHERE id = ? AND status = ?",
                (
                    JobStatus.DONE.value,
                    _files_json(outputs),
                    _files_json(errors),
                    None if extension is None else json.dumps(extension),
                    expires,
                    "100%",
                    job_id,
                    JobStatus.RUNNING.value,
                ),
            ).rowcount
        if not changed:
            self._remove_files(job_id)
        return bool(changed)

    def fail(self, job_id: str, *, failure: str, expires: float) -> None:
        """Mark a running job failed; its files go."""
        with self._connection() as connection:
            connection.execute(
                "UPDATE export_jobs SET status = ?, failure = ?, expires = ? WHERE id = ?"
                " AND status = ?",
                (JobStatus.FAILED.value, failure, expires, job_id, JobStatus.RUNNING.value),
            )
        self._remove_files(job_id)

    def cancel(self, job_id: str) -> bool:
        """Cancel a job (running or done): its files go at once, the job answers 404 from now
        on; ``False`` when there is no such job (or it was cancelled already)."""
        with self._connection() as connection:
            changed = connection.execute(
                "UPDATE export_jobs SET status = ?, expires = created WHERE id = ? AND status != ?",
                (JobStatus.CANCELLED.value, job_id, JobStatus.CANCELLED.value),
            ).rowcount
        self._remove_files(job_id)
        return bool(changed)

    def purge(self, now: float) -> int:
        """Delete the jobs expired by ``now`` (done, failed and cancelled ones) and their files;
        returns how many. A running job without progress for :data:`STALE_SECONDS` fails
        (abandoned: the process running it stopped)."""
        beat = self._clock()
        with self._connection() as connection:
            abandoned = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM export_jobs WHERE status = ? AND heartbeat < ?",
                    (JobStatus.RUNNING.value, beat - STALE_SECONDS),
                ).fetchall()
            ]
            for job_id in abandoned:
                connection.execute(
                    "UPDATE export_jobs SET status = ?, failure = ?, expires = ? WHERE id = ?",
                    (
                        JobStatus.FAILED.value,
                        "abandoned: the process running it stopped",
                        now + ABANDONED_KEPT_SECONDS,
                        job_id,
                    ),
                )
            expired = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM export_jobs WHERE expires IS NOT NULL AND expires <= ?"
                    " AND status != ?",
                    (now, JobStatus.RUNNING.value),
                ).fetchall()
            ]
            for job_id in expired:
                connection.execute("DELETE FROM export_jobs WHERE id = ?", (job_id,))
        for job_id in (*expired, *abandoned):
            self._remove_files(job_id)
        return len(expired)

    # -- files ----------------------------------------------------------------------------------

    def directory(self, job_id: str) -> Path:
        """The files directory of a job."""
        return self.files_dir / job_id

    @contextmanager
    def writing(self, job_id: str, name: str) -> Iterator[IO[bytes]]:
        """A new file of a job, open for writing (mode 0600).

        :raises ValueError: ``name`` is not a file name of an export.
        """
        if not FILE_NAME.fullmatch(name):
            raise ValueError(f"not an export file name: {name!r}")
        path = self.directory(job_id) / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            yield file

    def file(self, job_id: str, name: str) -> Path | None:
        """The path of a file of a job, ``None`` when there is none."""
        if not _JOB_ID.fullmatch(job_id) or not FILE_NAME.fullmatch(name):
            return None
        path = self.directory(job_id) / name
        return path if path.is_file() else None

    def remove(self, job_id: str, name: str) -> None:
        """Delete one file of a job (an empty output)."""
        path = self.file(job_id, name)
        if path is not None:
            path.unlink(missing_ok=True)

    def _remove_files(self, job_id: str) -> None:
        if _JOB_ID.fullmatch(job_id):
            shutil.rmtree(self.directory(job_id), ignore_errors=True)

    def _connection(self) -> AbstractContextManager[Rows]:
        return self._table.transaction()


def _files_json(files: Sequence[tuple[str, str, int]]) -> str:
    return json.dumps([{"type": kind, "name": name, "count": count} for kind, name, count in files])


def _files(text: str) -> tuple[OutputFile, ...]:
    return tuple(
        OutputFile(resource_type=f["type"], name=f["name"], count=f["count"])
        for f in json.loads(text)
    )


def _job(row: Sequence[Any]) -> Job:
    return Job(
        id=row[0],
        status=JobStatus(row[1]),
        owner=row[2],
        request=row[3],
        transaction_time=row[4],
        created=row[5],
        progress=row[6],
        outputs=_files(row[7]),
        errors=_files(row[8]),
        extension=None if row[9] is None else json.loads(row[9]),
        failure=row[10],
        expires=row[11],
    )
