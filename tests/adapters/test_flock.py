"""An exclusive flock taken with a deadline: at once when free; when another open file holds it,
tried again after pauses that double up to a ceiling, until the deadline."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from fhirnet.adapters.flock import take_flock


def open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def test_a_free_lock_is_taken_at_once(tmp_path: Path) -> None:
    pauses: list[float] = []
    descriptor = open_lock(tmp_path / "a.lock")
    try:
        assert take_flock(
            descriptor, deadline=0, first_pause=0.001, longest_pause=0.05, sleep=pauses.append
        )
        other = open_lock(tmp_path / "a.lock")
        try:
            assert not take_flock(other, deadline=0, first_pause=0.001, longest_pause=0.05)
        finally:
            os.close(other)
    finally:
        os.close(descriptor)
    assert pauses == []


def test_a_held_lock_is_tried_again_with_doubling_pauses_until_the_deadline(
    tmp_path: Path,
) -> None:
    holder = open_lock(tmp_path / "a.lock")
    fcntl.flock(holder, fcntl.LOCK_EX)
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    descriptor = open_lock(tmp_path / "a.lock")
    try:
        taken = take_flock(
            descriptor,
            deadline=0.1,
            first_pause=0.01,
            longest_pause=0.03,
            monotonic=lambda: now[0],
            sleep=sleep,
        )
    finally:
        os.close(descriptor)
        os.close(holder)
    assert not taken
    assert pauses == [0.01, 0.02, 0.03, 0.03, 0.03]


def test_the_lock_is_taken_once_its_holder_closes_it(tmp_path: Path) -> None:
    holder = open_lock(tmp_path / "a.lock")
    fcntl.flock(holder, fcntl.LOCK_EX)

    def sleep(_seconds: float) -> None:
        os.close(holder)  # the other process ends its turn while this one waits

    descriptor = open_lock(tmp_path / "a.lock")
    try:
        assert take_flock(
            descriptor, deadline=1e9, first_pause=0.001, longest_pause=0.05, sleep=sleep
        )
    finally:
        os.close(descriptor)
