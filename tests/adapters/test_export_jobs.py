"""Export jobs shared by worker processes: a job's life (running, done, failed, cancelled,
expired), its files (0600 in a 0700 directory) and unguessable ids — on both job tables: SQLite
in the data directory (one host), and PostgreSQL (``FHIRNET_DATABASE_URL``: several hosts, each
with its own data directory, sharing the files directory)."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from fhirnet.adapters.export_jobs import (
    STALE_SECONDS,
    ExportJobs,
    ExportJobsUnavailableError,
    JobStatus,
    OutputFile,
)
from fhirnet.adapters.pg_export_jobs import PostgresJobTable
from fhirnet.adapters.pg_schema import schema_version

NOW = 1_800_000_000.0

#: A new ExportJobs of "host" ``n`` (its own data directory), with an optional heartbeat clock.
Host = Callable[..., ExportJobs]


@pytest.fixture(params=["sqlite", "postgresql"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    """ExportJobs as one host sees them. SQLite: every instance on one data directory (the
    worker processes of a host). PostgreSQL: each instance with a data directory of its own
    (another host), one database and one shared files directory."""
    if request.param == "sqlite":
        yield lambda n=0, **options: ExportJobs(tmp_path / "data", **options)
        return
    url = request.getfixturevalue("fresh_database_url")
    yield lambda n=0, **options: ExportJobs(
        tmp_path / f"host-{n}",
        files_dir=tmp_path / "shared-exports",
        table=PostgresJobTable(url),
        **options,
    )


@pytest.fixture
def jobs(host: Host) -> ExportJobs:
    return host()


def new_job(jobs: ExportJobs) -> str:
    job = jobs.create(
        owner="key:1",
        request="https://x.test/fhir/$export",
        transaction_time="2026-01-01T00:00:00+00:00",
        now=NOW,
    )
    return job.id


def test_a_new_job_runs_and_has_a_private_directory(jobs: ExportJobs) -> None:
    job = jobs.create(owner="key:1", request="r", transaction_time="t", now=NOW)

    assert job.status is JobStatus.RUNNING
    assert job.owner == "key:1"
    assert job.expires is None
    assert len(job.id) >= 32
    assert stat.S_IMODE(jobs.directory(job.id).stat().st_mode) == 0o700
    assert stat.S_IMODE(jobs.files_dir.stat().st_mode) == 0o700


def test_ids_are_unguessable_and_unknown_or_malformed_ones_find_nothing(jobs: ExportJobs) -> None:
    ids = {new_job(jobs) for _ in range(20)}

    assert len(ids) == 20
    assert jobs.get("x" * 32) is None
    assert jobs.get("../../etc") is None
    assert jobs.file("../..", "Observation.ndjson") is None


def test_a_finished_job_lists_its_files_with_counts_and_expiry(jobs: ExportJobs) -> None:
    job_id = new_job(jobs)
    with jobs.writing(job_id, "Observation.ndjson") as out:
        out.write(b'{"resourceType":"Observation"}\n')
    jobs.set_progress(job_id, "Observation: 1 written")
    assert jobs.get(job_id).progress == "Observation: 1 written"  # type: ignore[union-attr]

    assert jobs.finish(
        job_id,
        outputs=[("Observation", "Observation.ndjson", 1)],
        errors=[],
        extension={"extension": [{"url": "u"}]},
        expires=NOW + 60,
    )

    job = jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE
    assert job.outputs == (
        OutputFile(resource_type="Observation", name="Observation.ndjson", count=1),
    )
    assert job.extension == {"extension": [{"url": "u"}]}
    path = jobs.file(job_id, "Observation.ndjson")
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_names_are_type_names_only(jobs: ExportJobs) -> None:
    job_id = new_job(jobs)
    with pytest.raises(ValueError, match="not an export file name"):
        jobs.writing(job_id, "../x.ndjson").__enter__()
    assert jobs.file(job_id, "x.txt") is None


def test_a_cancelled_job_loses_its_files_and_cannot_finish(jobs: ExportJobs) -> None:
    job_id = new_job(jobs)
    with jobs.writing(job_id, "Observation.ndjson") as out:
        out.write(b"{}\n")

    assert jobs.cancel(job_id)

    assert jobs.cancelled(job_id)
    assert not jobs.directory(job_id).exists()
    assert not jobs.finish(job_id, outputs=[], errors=[], extension=None, expires=NOW)
    assert jobs.get(job_id).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert not jobs.cancel(job_id)  # once


def test_a_failed_job_keeps_why_but_no_files(jobs: ExportJobs) -> None:
    job_id = new_job(jobs)

    jobs.fail(job_id, failure="transient: FhirServerUnavailableError", expires=NOW + 60)

    job = jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.failure == "transient: FhirServerUnavailableError"
    assert not jobs.directory(job_id).exists()


def test_purge_deletes_expired_jobs_and_files_and_keeps_running_ones(jobs: ExportJobs) -> None:
    running, done, later = new_job(jobs), new_job(jobs), new_job(jobs)
    jobs.finish(done, outputs=[], errors=[], extension=None, expires=NOW + 10)
    jobs.finish(later, outputs=[], errors=[], extension=None, expires=NOW + 100)

    assert jobs.purge(NOW + 10) == 1

    assert jobs.get(done) is None
    assert not jobs.directory(done).exists()
    assert jobs.get(later) is not None
    assert jobs.get(running) is not None


def test_two_instances_see_the_same_jobs_and_files(host: Host) -> None:
    first, second = host(1), host(2)
    job_id = new_job(first)
    with first.writing(job_id, "Observation.ndjson") as out:
        out.write(b"{}\n")
    first.finish(
        job_id,
        outputs=[("Observation", "Observation.ndjson", 1)],
        errors=[],
        extension=None,
        expires=NOW + 60,
    )

    assert second.get(job_id) == first.get(job_id)
    assert second.file(job_id, "Observation.ndjson") is not None
    second.cancel(job_id)

    assert first.cancelled(job_id)
    assert first.file(job_id, "Observation.ndjson") is None


def test_a_running_job_without_progress_for_long_fails_as_abandoned(host: Host) -> None:
    beat = [NOW]
    jobs = host(clock=lambda: beat[0])
    alive, stalled = new_job(jobs), new_job(jobs)
    beat[0] = NOW + STALE_SECONDS - 1
    jobs.set_progress(alive, "still going")
    beat[0] = NOW + STALE_SECONDS + 1

    jobs.purge(NOW)

    assert jobs.get(alive).status is JobStatus.RUNNING  # type: ignore[union-attr]
    job = jobs.get(stalled)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.failure is not None
    assert job.failure.startswith("abandoned")
    assert not jobs.directory(stalled).exists()


def test_an_unreachable_database_is_unavailable_without_its_password(tmp_path: Path) -> None:
    table = PostgresJobTable(
        "postgresql://fhirnet:s3cret-pw@127.0.0.1:1/fhirnet", connect_timeout=1
    )
    jobs = ExportJobs(tmp_path / "data", table=table)  # nothing is connected before a use

    with pytest.raises(ExportJobsUnavailableError) as raised:
        jobs.get("x" * 32)

    assert "127.0.0.1:1/fhirnet" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)
    assert "s3cret-pw" not in repr(table)


def test_the_postgresql_table_is_created_by_a_versioned_migration(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url) as connection:
        assert schema_version(connection) == 0
    table = PostgresJobTable(fresh_database_url)
    with table.transaction() as rows:
        assert rows.execute("SELECT count(*) FROM export_jobs").fetchone() == (0,)

    with psycopg.connect(fresh_database_url) as connection:
        assert schema_version(connection) >= 2
    password = urlsplit(fresh_database_url).password
    assert password
    assert password not in repr(table)
