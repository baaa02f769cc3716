"""The per-patient locks on PostgreSQL (:mod:`fhirnet.adapters.pg_locks`): exclusive across
processes (as across hosts), taken in a fixed order, given up after the timeout, released at
once when their holder dies, and held only by a transaction, never left behind in a session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from fhirnet.adapters.pg_locks import PostgresLocks, lock_key
from fhirnet.errors import PatientBusyError
from fhirnet.ports import PatientLocks

REPO_ROOT = Path(__file__).parents[2]
#: Another process (another host, for the database) holding the locks of its arguments until
#: a line arrives on its standard input.
HOLDER = """
import sys
from fhirnet.adapters.pg_locks import PostgresLocks
with PostgresLocks(sys.argv[1]).hold(sys.argv[2:]):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@contextmanager
def holder(url: str, *patients: str) -> Iterator[subprocess.Popen[str]]:
    """A process holding the locks of ``patients`` (it has them when this yields)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, *patients],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "held\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def release(process: subprocess.Popen[str]) -> None:
    """Let ``holder`` leave its block, and wait until it has."""
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("\n")
    process.stdin.flush()
    assert process.stdout.readline() == "released\n"


def advisory_locks(url: str) -> int:
    """How many advisory locks anyone holds or waits for in the database of ``url``."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_locks_are_patient_locks(fresh_database_url: str) -> None:
    locks: PatientLocks = PostgresLocks(fresh_database_url)
    with locks.hold(["Patient/p1"]):
        pass


def test_a_patient_held_by_another_process_is_busy_until_it_releases(
    fresh_database_url: str,
) -> None:
    locks = PostgresLocks(fresh_database_url, timeout=0.3)
    with holder(fresh_database_url, "Patient/p1") as other:
        with pytest.raises(PatientBusyError), locks.hold(["Patient/p1"]):
            pass
        with pytest.raises(PatientBusyError), locks.hold(["Patient/p0", "Patient/p1"]):
            pass
        with locks.hold(["Patient/p2"]):  # another patient is not held up
            pass
        release(other)
        with locks.hold(["Patient/p1"]):
            pass


def test_the_timeout_is_waited_once_for_all_patients_then_busy_with_retry_after(
    fresh_database_url: str,
) -> None:
    locks = PostgresLocks(fresh_database_url, timeout=1.0)
    with holder(fresh_database_url, "Patient/p1", "Patient/p2"):
        started = time.monotonic()
        with pytest.raises(PatientBusyError) as busy, locks.hold(["Patient/p1", "Patient/p2"]):
            pass
        waited = time.monotonic() - started

    assert 0.9 <= waited < 3.0
    assert busy.value.retry_after >= 1.0
    assert "1 s" in str(busy.value)


def test_a_waiting_holder_gets_the_lock_as_soon_as_it_is_released(
    fresh_database_url: str,
) -> None:
    locks = PostgresLocks(fresh_database_url, timeout=10.0)
    with holder(fresh_database_url, "Patient/p1") as other:
        timer = threading.Timer(0.5, release, (other,))
        timer.start()
        started = time.monotonic()
        with locks.hold(["Patient/p1"]):
            waited = time.monotonic() - started
        # The lock is free at the holder's COMMIT, before it says "released": let it say so
        # rather than kill it mid-sentence when the block ends.
        timer.join(10)

    assert 0.4 <= waited < 5.0


def test_overlapping_sets_asked_in_opposite_orders_never_deadlock(fresh_database_url: str) -> None:
    locks = PostgresLocks(fresh_database_url, timeout=20.0)
    errors: list[BaseException] = []
    inside = [0]
    most_inside = [0]
    guard = threading.Lock()

    def submit(patients: list[str]) -> None:
        try:
            for _ in range(15):
                with locks.hold(patients):
                    with guard:
                        inside[0] += 1
                        most_inside[0] = max(most_inside[0], inside[0])
                    time.sleep(0.005)
                    with guard:
                        inside[0] -= 1
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    forward = ["Patient/a", "Patient/b", "Patient/c"]
    threads = [
        threading.Thread(target=submit, args=(forward,)),
        threading.Thread(target=submit, args=(list(reversed(forward)),)),
        threading.Thread(target=submit, args=(["Patient/c", "Patient/a"],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert most_inside[0] == 1  # every pair of the three sets overlaps: one at a time


def test_a_killed_holder_releases_its_patients_at_once(fresh_database_url: str) -> None:
    locks = PostgresLocks(fresh_database_url, timeout=10.0)
    with holder(fresh_database_url, "Patient/p1") as other:
        os.kill(other.pid, signal.SIGKILL)
        other.wait(timeout=10)
        started = time.monotonic()
        with locks.hold(["Patient/p1"]):
            waited = time.monotonic() - started

    assert waited < 2.0


def test_a_holder_whose_database_session_is_terminated_releases_its_patients(
    fresh_database_url: str,
) -> None:
    locks = PostgresLocks(fresh_database_url, timeout=10.0)
    with holder(fresh_database_url, "Patient/p1"), psycopg.connect(fresh_database_url) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'fhirnet-locks' AND datname = current_database()"
        )
        started = time.monotonic()
        with locks.hold(["Patient/p1"]):
            waited = time.monotonic() - started

    assert waited < 2.0


def test_locks_live_in_the_transaction_only_and_none_is_left_behind(
    fresh_database_url: str,
) -> None:
    locks = PostgresLocks(fresh_database_url)
    with locks.hold(["Patient/p1", "Patient/p2", "Patient/p1"]):
        assert advisory_locks(fresh_database_url) == 2
    assert advisory_locks(fresh_database_url) == 0

    with pytest.raises(RuntimeError), locks.hold(["Patient/p1"]):
        raise RuntimeError("the submission failed")
    assert advisory_locks(fresh_database_url) == 0

    with psycopg.connect(fresh_database_url) as connection:
        sessions = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fhirnet-locks'"
        ).fetchone()
    assert sessions == (0,)  # each hold closes its connection


def test_lock_keys_are_stable_64_bit_integers_per_patient() -> None:
    assert lock_key("Patient/p1") == -1304206270880450885  # the same on every host, for ever
    assert lock_key("Patient/p1") != lock_key("Patient/P1")
    keys = {lock_key(f"Patient/{n}") for n in range(10_000)}
    assert len(keys) == 10_000
    assert all(-(2**63) <= key < 2**63 for key in keys)


def test_an_unreachable_database_is_a_busy_patient_without_the_password() -> None:
    locks = PostgresLocks(
        "postgresql://fhirnet:s3cret@127.0.0.1:1/fhirnet", timeout=1.0, connect_timeout=1.0
    )
    with pytest.raises(PatientBusyError) as busy, locks.hold(["Patient/p1"]):
        pass

    assert "s3cret" not in str(busy.value)
    assert "s3cret" not in repr(locks)
