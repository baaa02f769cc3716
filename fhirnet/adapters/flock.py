"""Taking an exclusive ``flock(2)`` with a deadline, for the locks on the data directory's files
(patients and forms in :mod:`fhirnet.adapters.locks`, a database's writers in
:mod:`fhirnet.adapters.store.sqlite`). ``flock`` blocks without a timeout, so the lock is tried
without blocking and tried again after pauses that double up to a ceiling."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable


def take_flock(
    descriptor: int,
    *,
    deadline: float,
    first_pause: float,
    longest_pause: float,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Lock ``descriptor`` exclusively; ``False`` if it was still held by another open file
    when ``monotonic()`` reached ``deadline``. The lock is released by closing the descriptor."""
    pause = first_pause
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if monotonic() >= deadline:
                return False
            sleep(pause)
            pause = min(pause * 2, longest_pause)
