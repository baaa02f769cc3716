"""Per-patient locks as ``flock(2)`` on files under ``FHIRNET_DATA_DIR/locks/``: the
:class:`~fhirnet.ports.PatientLocks` adapter.

Why a file lock: gunicorn runs several worker processes, and two simultaneous first submissions
of the same form would otherwise both find no earlier results and both create them (a conditional
update is only atomic on the server's side, and not every server serialises it). ``flock`` locks
belong to an open file description, so two threads of one process that each open the file exclude
each other too, and the kernel releases a lock when its holder dies: a crashed worker never leaves
a patient locked. The lock covers the processes of one host sharing the data directory; several
hosts need a shared lock service instead.

Lock files are named by a hash of the patient id (ids differ only in case on case-insensitive file
systems) and are never deleted: deleting a lock file races with a process that is about to lock
it. One empty file per patient ever submitted.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fhirnet.adapters.flock import take_flock
from fhirnet.errors import PatientBusyError

#: Sub-directory of the data directory holding the lock files.
LOCKS_DIR = "locks"
#: Longest pause between two attempts to take a lock that is held.
_MAX_POLL_SECONDS = 0.05


class FileLocks:
    """``flock`` locks per patient in ``directory`` (created on first use).

    :param directory: where the lock files live, e.g. ``FHIRNET_DATA_DIR/locks``.
    :param timeout: seconds to wait for a held lock before :class:`PatientBusyError`.
    :param sleep: waits between attempts; tests may pass a recorder.
    :param monotonic: the clock of the timeout.
    """

    def __init__(
        self,
        directory: Path,
        *,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.timeout = timeout
        self._sleep = sleep
        self._monotonic = monotonic

    @contextmanager
    def hold(self, patients: Collection[str]) -> Iterator[None]:
        """Hold the lock of every patient of ``patients``, taken in sorted order."""
        if not self.directory.exists():
            _private_directories(self.directory)
        deadline = self._monotonic() + self.timeout
        with ExitStack() as held:
            for patient in sorted(set(patients)):
                held.enter_context(self._one(patient, deadline))
            yield

    @contextmanager
    def _one(self, patient: str, deadline: float) -> Iterator[None]:
        name = hashlib.sha256(patient.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        descriptor = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not take_flock(
                descriptor,
                deadline=deadline,
                first_pause=0.001,
                longest_pause=_MAX_POLL_SECONDS,
                monotonic=self._monotonic,
                sleep=self._sleep,
            ):
                raise PatientBusyError(
                    f"another submission about the same patient has been running for "
                    f"over {self.timeout:g} s",
                    retry_after=max(1.0, self.timeout / 10),
                )
            yield
        finally:
            os.close(descriptor)  # closing the descriptor releases the lock


def _private_directories(directory: Path) -> None:
    """Create ``directory`` and its missing parents (the data directory, usually) ``0700``,
    whatever the umask: the data directory holds patient data (docs/security.md)."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
