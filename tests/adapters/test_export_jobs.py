"""Export jobs shared by worker processes: a job's life (running, done, failed, cancelled,
expired), its files (0600 in a 0700 directory) and unguessable ids."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fhirnet.adapters.export_jobs import STALE_SECONDS, ExportJobs, JobStatus, OutputFile

NOW = 1_800_000_000.0


@pytest.fixture
def jobs(tmp_path: Path) -> ExportJobs:
    return ExportJobs(tmp_path / "data")


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


def test_two_instances_on_one_data_directory_see_the_same_jobs(tmp_path: Path) -> None:
    first, second = ExportJobs(tmp_path / "data"), ExportJobs(tmp_path / "data")
    job_id = new_job(first)

    second.cancel(job_id)

    assert first.cancelled(job_id)


def test_a_running_job_without_progress_for_long_fails_as_abandoned(tmp_path: Path) -> None:
    beat = [NOW]
    jobs = ExportJobs(tmp_path / "data", clock=lambda: beat[0])
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
