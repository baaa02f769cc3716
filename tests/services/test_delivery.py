"""Durable delivery (:mod:`fhirnet.services.delivery`) on a real outbox and real file locks, with
a fake clock, seeded jitter and fake ``send`` functions standing for the pipeline and the FHIR
server: what one attempt makes of an entry, the backoff and the pause of an outage, the order per
patient, and the background thread."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.pg_locks import PostgresLocks
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.errors import (
    FhirServerRejectedError,
    FhirServerUnavailableError,
    PatientBusyError,
)
from fhirnet.fhir.outcome import Issue, IssueType, Severity, UnprocessableResourceError
from fhirnet.ports import Entry, Json, Kind, Outbox, PatientLocks, State
from fhirnet.services.delivery import ROUND_SIZE, Attempt, Backoff, Delivery, Sent

T0 = 1_800_000_000.0
#: The backoff of these tests: 10 s, 20 s, 40 s, then 80 s at most (each less up to half).
BACKOFF = Backoff(initial=10.0, maximum=80.0)
SEED = 20_251_121


def seeded(seed: int = SEED) -> random.Random:
    """Jitter that is the same on every run."""
    return random.Random(seed)  # noqa: S311 - jitter, not secrets


class Clock:
    """Seconds since the epoch, moved by the test only."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Server:
    """A fake ``send``: notes each entry sent (its form's id) and answers as scripted — with
    ``error`` while it is set, else with the errors of ``errors`` for one attempt each, else
    with a ``201 Created`` whose value is the form's id."""

    sent: list[str] = field(default_factory=list)
    error: Exception | None = None
    errors: dict[str, list[Exception]] = field(default_factory=dict)
    during: Callable[[Entry], None] | None = None

    def __call__(self, entry: Entry) -> Sent:
        assert entry.body is not None
        name: str = entry.body["id"]
        self.sent.append(name)
        if self.during is not None:
            self.during(entry)
        if self.error is not None:
            raise self.error
        if self.errors.get(name):
            raise self.errors[name].pop(0)
        answer = {"response": {"status": "201 Created", "location": f"DiagnosticReport/{name}"}}
        return Sent(answer=answer, value=f"report of {name}")


def explain(error: Exception) -> Json:
    """The answer kept for a failed entry: here, the error's class."""
    return {"response": {"status": "failed", "error": type(error).__name__}}


#: The patient locks of one backend, waiting up to ``timeout`` seconds.
Locks = Callable[[float], PatientLocks]


@dataclass
class World:
    """A delivery and what it works with, on one backend: SQLite and ``flock``, or PostgreSQL
    for both."""

    delivery: Delivery
    outbox: Outbox
    server: Server
    clock: Clock
    locks: Locks

    def accept(self, name: str, *patients: str, attempt_now: bool = True) -> Attempt:
        return self.delivery.accept(
            kind=Kind.FORM,
            body={"resourceType": "QuestionnaireResponse", "id": name},
            patients=patients,
            requester="api-key-1",
            attempt_now=attempt_now,
        )

    def entry(self, attempt: Attempt) -> Entry:
        found = self.outbox.get(attempt.entry.id)
        assert found is not None
        return found

    def another_delivery(self, send: Server) -> Delivery:
        """A second deliverer on the same outbox and locks, as another worker process."""
        return build(self.outbox, send, self.clock, self.locks)


def build(outbox: Outbox, send: Server, clock: Clock, locks: Locks) -> Delivery:
    return Delivery(
        outbox,
        send=send,
        explain=explain,
        locks=locks(5),
        try_locks=locks(0),
        backoff=BACKOFF,
        clock=clock,
        rng=seeded(),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    outbox: Outbox
    locks: Locks
    if request.param == "sqlite":
        outbox = SqliteOutbox(tmp_path / "outbox.sqlite3")

        def locks(timeout: float) -> PatientLocks:
            return FileLocks(tmp_path / "locks", timeout=timeout)
    else:
        url: str = request.getfixturevalue("fresh_database_url")
        outbox = PostgresOutbox(url)

        def locks(timeout: float) -> PatientLocks:
            return PostgresLocks(url, timeout=timeout)

    server, clock = Server(), Clock()
    delivery = build(outbox, server, clock, locks)
    yield World(delivery, outbox, server, clock, locks)
    delivery.stop()
    outbox.close()


def unavailable(retry_after: float | None = None) -> FhirServerUnavailableError:
    return FhirServerUnavailableError("server down", status=503, retry_after=retry_after)


def unprocessable() -> UnprocessableResourceError:
    issue = Issue(
        severity=Severity.ERROR,
        code=IssueType.BUSINESS_RULE,
        expression="QuestionnaireResponse.item[0]",
        message="no baseline",
    )
    return UnprocessableResourceError([issue])


def bounds(failures: int, backoff: Backoff = BACKOFF) -> tuple[float, float]:
    """The least and the most a delay after ``failures`` failures may be."""
    ceiling = min(backoff.maximum, backoff.initial * 2 ** (failures - 1))
    return ceiling / 2, ceiling


# -- accept: delivered in the request ----------------------------------------------------------


def test_an_accepted_submission_is_delivered_at_once_and_its_answer_kept(world: World) -> None:
    attempt = world.accept("qr-1", "p1")

    entry = world.entry(attempt)
    assert attempt.value == "report of qr-1"
    assert attempt.error is None
    assert attempt.entry == entry
    assert (entry.state, entry.attempts, entry.finished) == (State.DELIVERED, 1, T0)
    assert entry.answer == {
        "response": {"status": "201 Created", "location": "DiagnosticReport/qr-1"}
    }
    assert entry.body is None
    assert world.server.sent == ["qr-1"]
    assert not world.delivery.paused()


def test_attempt_now_false_only_queues_it_for_the_background(world: World) -> None:
    attempt = world.accept("qr-1", "p1", attempt_now=False)

    assert (attempt.value, attempt.error) == (None, None)
    assert attempt.entry.state is State.QUEUED
    assert world.server.sent == []
    assert world.delivery.deliver_due() == 1
    assert world.entry(attempt).state is State.DELIVERED


def test_a_follow_up_accepted_while_its_due_baseline_is_queued_delivers_both_in_order(
    world: World,
) -> None:
    baseline = world.accept("qr-1", "p1", attempt_now=False)

    follow_up = world.accept("qr-2", "p1")

    assert world.server.sent == ["qr-1", "qr-2"]
    assert follow_up.value == "report of qr-2"
    assert world.entry(baseline).state is world.entry(follow_up).state is State.DELIVERED
    assert world.entry(baseline).attempts == world.entry(follow_up).attempts == 1


def test_a_follow_up_whose_baseline_waits_for_its_next_attempt_is_only_queued(
    world: World,
) -> None:
    world.server.errors["qr-1"] = [PatientBusyError("busy", retry_after=60)]
    baseline = world.accept("qr-1", "p1")

    follow_up = world.accept("qr-2", "p1")

    assert world.server.sent == ["qr-1"]
    assert (follow_up.value, follow_up.error) == (None, None)
    assert (world.entry(follow_up).state, world.entry(follow_up).attempts) == (State.QUEUED, 0)
    world.clock.now = world.entry(baseline).next_attempt
    world.delivery.deliver_due()
    assert world.server.sent == ["qr-1", "qr-1", "qr-2"]
    assert world.entry(follow_up).state is State.DELIVERED


def test_a_follow_up_behind_an_entry_about_another_patient_too_is_only_queued(
    world: World,
) -> None:
    both = world.delivery.accept(
        kind=Kind.BUNDLE,
        body={"resourceType": "Bundle", "id": "both"},
        patients={"p1", "p2"},
        requester="api-key-1",
        attempt_now=False,
    )

    follow_up = world.accept("qr-2", "p1")  # holds p1's lock only: "both" is not its to send

    assert world.server.sent == []
    assert (world.entry(follow_up).state, world.entry(follow_up).attempts) == (State.QUEUED, 0)
    world.delivery.deliver_due()
    assert world.server.sent == ["both", "qr-2"]
    assert world.entry(both).state is State.DELIVERED


def test_a_follow_up_whose_baseline_finds_the_server_down_is_queued_behind_it(
    world: World,
) -> None:
    world.accept("qr-1", "p1", attempt_now=False)
    world.server.errors["qr-1"] = [unavailable()]

    follow_up = world.accept("qr-2", "p1")

    assert world.server.sent == ["qr-1"]
    assert (world.entry(follow_up).state, world.entry(follow_up).attempts) == (State.QUEUED, 0)
    assert world.delivery.paused()


# -- the server unavailable: retried after a backoff, the process paused ------------------------


def test_an_unavailable_server_leaves_the_entry_queued_with_a_backoff(world: World) -> None:
    error = unavailable()
    world.server.error = error

    attempt = world.accept("qr-1", "p1")

    entry = world.entry(attempt)
    assert attempt.error is error
    assert attempt.value is None
    assert (entry.state, entry.attempts) == (State.QUEUED, 1)
    assert entry.last_error == "FhirServerUnavailableError (HTTP 503)"
    assert entry.body == {"resourceType": "QuestionnaireResponse", "id": "qr-1"}
    least, most = bounds(1)
    assert T0 + least <= entry.next_attempt <= T0 + most
    assert world.delivery.paused()


def test_while_paused_a_request_queues_without_trying_the_server(world: World) -> None:
    world.server.error = unavailable()
    first = world.accept("qr-1", "p1")
    world.server.error = None  # back, but the process does not know it yet

    later = world.accept("qr-2", "p2")

    assert world.server.sent == ["qr-1"]
    assert (later.value, later.error) == (None, None)
    assert (world.entry(later).state, world.entry(later).attempts) == (State.QUEUED, 0)
    assert world.delivery.deliver_due() == 0  # nothing either until the pause ends
    world.clock.advance(bounds(1)[1])
    assert not world.delivery.paused()
    assert world.entry(first).next_attempt <= world.clock.now
    third = world.accept("qr-3", "p3")
    assert third.value == "report of qr-3"


def test_a_longer_retry_after_is_honoured_as_the_least_wait(world: World) -> None:
    world.server.error = unavailable(retry_after=600)

    attempt = world.accept("qr-1", "p1")

    assert world.entry(attempt).next_attempt == T0 + 600
    world.clock.advance(599.9)
    assert world.delivery.paused()
    assert world.delivery.deliver_due() == 0
    world.clock.advance(0.1)
    assert not world.delivery.paused()


def test_a_shorter_retry_after_does_not_shorten_the_backoff(world: World) -> None:
    world.server.error = unavailable(retry_after=0.5)

    attempt = world.accept("qr-1", "p1")

    least, most = bounds(1)
    assert T0 + least <= world.entry(attempt).next_attempt <= T0 + most


def test_each_failure_doubles_the_backoff_up_to_the_maximum(world: World) -> None:
    world.server.error = unavailable()
    attempt = world.accept("qr-1", "p1")

    for failures in range(2, 7):
        world.clock.advance(bounds(failures - 1)[1])  # the entry is due, the pause over
        assert world.delivery.deliver_due() == 1
        entry = world.entry(attempt)
        least, most = bounds(failures)
        assert entry.attempts == failures
        assert least <= entry.next_attempt - world.clock.now <= most
    assert world.server.sent == ["qr-1"] * 6


def test_the_pause_grows_with_the_failures_in_a_row_and_starts_over_after_a_delivery(
    world: World,
) -> None:
    world.server.error = unavailable()
    world.accept("a1", "p1")
    for outage in (2, 3, 4):
        world.clock.advance(bounds(outage - 1)[1])
        assert not world.delivery.paused()
        assert world.delivery.deliver_due() == 1
        failed_at = world.clock.now
        world.clock.now = failed_at + bounds(outage)[0] - 0.001
        assert world.delivery.paused()
        world.clock.now = failed_at
    world.clock.advance(bounds(4)[1])
    world.server.error = None
    assert world.delivery.deliver_due() == 1  # delivered: the outage is over
    world.server.error = unavailable()

    world.accept("b1", "p2")

    world.clock.advance(bounds(1)[1])
    assert not world.delivery.paused()  # a first failure again: the shortest pause


def test_an_outage_costs_one_probe_not_one_per_entry(world: World) -> None:
    queued = [world.accept(f"qr-{n}", f"p{n}", attempt_now=False) for n in range(5)]
    world.server.error = unavailable()

    assert world.delivery.deliver_due() == 1

    assert world.server.sent == ["qr-0"]
    assert [world.entry(a).attempts for a in queued] == [1, 0, 0, 0, 0]
    assert world.delivery.paused()


def test_a_busy_patient_is_retried_later_without_pausing_the_others(world: World) -> None:
    world.server.errors["qr-1"] = [PatientBusyError("busy", retry_after=30)]
    busy = world.accept("qr-1", "p1", attempt_now=False)
    other = world.accept("qr-2", "p2", attempt_now=False)

    assert world.delivery.deliver_due() == 2

    assert world.entry(busy).state is State.QUEUED
    assert world.entry(busy).next_attempt == T0 + 30  # longer than the first backoff
    assert world.entry(busy).last_error == "PatientBusyError"
    assert world.entry(other).state is State.DELIVERED
    assert not world.delivery.paused()


# -- failed for good ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        FhirServerRejectedError("invalid", status=400, outcome={"resourceType": "x"}),
        unprocessable(),
        ValueError("a bug"),
    ],
    ids=["rejected by the server", "unprocessable", "a bug"],
)
def test_an_entry_that_cannot_succeed_fails_at_once_and_is_never_retried(
    world: World, error: Exception
) -> None:
    world.server.errors["qr-1"] = [error]

    attempt = world.accept("qr-1", "p1")

    entry = world.entry(attempt)
    assert attempt.error is error
    assert (entry.state, entry.attempts, entry.body) == (State.FAILED, 1, None)
    assert entry.answer == explain(error)
    assert not world.delivery.paused()
    world.clock.advance(10_000)
    assert world.delivery.deliver_due() == 0
    assert world.server.sent == ["qr-1"]


def test_a_failed_baseline_lets_its_follow_up_go(world: World) -> None:
    world.server.errors["qr-1"] = [FhirServerRejectedError("invalid", status=422)]
    baseline = world.accept("qr-1", "p1", attempt_now=False)
    follow_up = world.accept("qr-2", "p1", attempt_now=False)

    world.delivery.deliver_due()

    assert world.server.sent == ["qr-1", "qr-2"]
    assert world.entry(baseline).state is State.FAILED
    assert world.entry(follow_up).state is State.DELIVERED


# -- deliver_due: order per patient ------------------------------------------------------------


def test_deliver_due_sends_in_acceptance_order_never_a_follow_up_before_its_baseline(
    world: World,
) -> None:
    patients = {"a1": "p1", "b1": "p2", "a2": "p1", "c1": "p3", "a3": "p1", "b2": "p2"}
    accepted = {name: world.accept(name, p, attempt_now=False) for name, p in patients.items()}
    unfinished_earlier: list[list[str]] = []

    def check(entry: Entry) -> None:
        """Which earlier entries of the same patient are still queued when this one is sent."""
        assert entry.body is not None
        mine = patients[entry.body["id"]]
        unfinished_earlier.append(
            [
                name
                for name, attempt in accepted.items()
                if patients[name] == mine
                and attempt.entry.seq < entry.seq
                and world.entry(attempt).state is State.QUEUED
            ]
        )

    world.server.during = check

    assert world.delivery.deliver_due() == 6

    assert world.server.sent == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert unfinished_earlier == [[]] * 6
    assert world.outbox.counts()[State.DELIVERED] == 6


def test_a_baseline_waiting_to_be_retried_holds_back_only_its_own_patient(world: World) -> None:
    world.server.errors["a1"] = [PatientBusyError("busy", retry_after=60)]
    baseline = world.accept("a1", "p1", attempt_now=False)
    follow_up = world.accept("a2", "p1", attempt_now=False)
    other = world.accept("b1", "p2", attempt_now=False)

    world.delivery.deliver_due()

    assert world.server.sent == ["a1", "b1"]
    assert world.entry(follow_up).state is State.QUEUED
    assert world.entry(follow_up).attempts == 0
    assert world.entry(other).state is State.DELIVERED
    world.clock.now = world.entry(baseline).next_attempt
    world.delivery.deliver_due()
    assert world.server.sent == ["a1", "b1", "a1", "a2"]


def test_a_bundle_about_two_patients_waits_for_both_of_their_earlier_entries(
    world: World,
) -> None:
    world.server.errors["b1"] = [PatientBusyError("busy", retry_after=60)]
    world.accept("a1", "p1", attempt_now=False)
    world.accept("b1", "p2", attempt_now=False)
    bundle = world.delivery.accept(
        kind=Kind.BUNDLE,
        body={"resourceType": "Bundle", "id": "both"},
        patients={"p1", "p2"},
        requester="api-key-1",
        attempt_now=False,
    )

    world.delivery.deliver_due()

    assert world.server.sent == ["a1", "b1"]
    assert world.entry(bundle).state is State.QUEUED
    world.clock.advance(60)
    world.delivery.deliver_due()
    assert world.server.sent == ["a1", "b1", "b1", "both"]


def test_the_first_delivery_after_a_pause_brings_every_queued_entry_forward(
    world: World,
) -> None:
    world.server.errors["b1"] = [PatientBusyError("busy", retry_after=3600)]
    waiting = world.accept("b1", "p2")  # its next attempt in an hour: not an outage
    world.server.error = unavailable()
    probe = world.accept("a1", "p1")
    world.server.error = None
    world.clock.advance(bounds(1)[1])

    world.delivery.deliver_due()

    assert world.server.sent == ["b1", "a1", "a1", "b1"]
    assert world.entry(probe).state is world.entry(waiting).state is State.DELIVERED
    assert world.entry(waiting).finished == world.clock.now


def test_a_delivery_without_a_pause_before_it_reschedules_nothing(world: World) -> None:
    world.server.errors["b1"] = [PatientBusyError("busy", retry_after=3600)]
    waiting = world.accept("b1", "p2")

    world.accept("a1", "p1")

    assert world.entry(waiting).next_attempt == T0 + 3600
    assert world.delivery.deliver_due() == 0


def test_an_entry_whose_patient_is_locked_elsewhere_is_skipped_without_an_attempt(
    world: World,
) -> None:
    locked = world.accept("a1", "p1", attempt_now=False)
    other = world.accept("b1", "p2", attempt_now=False)

    with world.locks(30).hold(["p1"]):  # a request of another process delivers it
        assert world.delivery.deliver_due() == 1

    assert world.server.sent == ["b1"]
    assert world.entry(locked).state is State.QUEUED
    assert world.entry(locked).attempts == 0
    assert world.entry(locked).next_attempt == T0
    assert world.entry(other).state is State.DELIVERED
    assert world.delivery.deliver_due() == 1
    assert world.entry(locked).state is State.DELIVERED


def test_an_entry_delivered_by_another_process_meanwhile_is_not_sent_again(
    world: World,
) -> None:
    world.accept("a1", "p1", attempt_now=False)
    world.accept("b1", "p2", attempt_now=False)
    elsewhere = Server()
    other = world.another_delivery(elsewhere)
    # While this process sends a1 (its due list already holding b1), the other delivers b1.

    def deliver_elsewhere(entry: Entry) -> None:
        if not elsewhere.sent:
            other.deliver_due()

    world.server.during = deliver_elsewhere

    world.delivery.deliver_due()

    assert world.server.sent == ["a1"]
    assert elsewhere.sent == ["b1"]
    assert world.outbox.counts()[State.DELIVERED] == 2


def test_deliver_due_does_nothing_while_nothing_is_due(world: World) -> None:
    assert world.delivery.deliver_due() == 0
    world.accept("a1", "p1")

    assert world.delivery.deliver_due() == 0
    assert world.server.sent == ["a1"]


# -- Backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "ceiling"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (100, 8), (10**6, 8)]
)
def test_a_delay_is_between_half_and_all_of_the_doubled_initial_capped(
    failures: int, ceiling: float
) -> None:
    backoff = Backoff(initial=1, maximum=8)
    rng = seeded()

    delays = [backoff.delay(failures, rng) for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 100  # jittered: entries failing together come back apart


def test_the_default_backoff_starts_at_a_second_and_ends_at_five_minutes() -> None:
    rng = seeded()

    assert 0.5 <= Backoff().delay(1, rng) <= 1
    assert 150 <= Backoff().delay(50, rng) <= 300


@given(
    initial=st.floats(min_value=0.001, max_value=1_000),
    extra=st.floats(min_value=0, max_value=100_000),
    failures=st.integers(min_value=1, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_delay_is_within_the_bounds_of_equal_jitter(
    initial: float, extra: float, failures: int, seed: int
) -> None:
    backoff = Backoff(initial=initial, maximum=initial + extra)

    delay = backoff.delay(failures, seeded(seed))

    ceiling = min(backoff.maximum, initial * 2.0 ** min(failures - 1, 64))
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= backoff.maximum


# -- several hosts (PostgreSQL) -------------------------------------------------------------------


@pytest.fixture
def two_hosts(fresh_database_url: str) -> Iterator[tuple[World, World]]:
    """Two deliverers with an outbox each on one PostgreSQL database, as two hosts: what one
    claims, the other skips."""
    clock = Clock()

    def locks(timeout: float) -> PatientLocks:
        return PostgresLocks(fresh_database_url, timeout=timeout)

    worlds = []
    for _ in range(2):
        outbox, server = PostgresOutbox(fresh_database_url), Server()
        worlds.append(World(build(outbox, server, clock, locks), outbox, server, clock, locks))
    yield worlds[0], worlds[1]
    for world in worlds:
        world.delivery.stop()
        world.outbox.close()


def test_a_host_paused_by_an_outage_leaves_the_entries_it_claimed_to_the_other_hosts(
    two_hosts: tuple[World, World],
) -> None:
    """The server is down for one host only (its network): its probe fails and it pauses. The
    entries it claimed for the rest of its round are not kept from the other host, which
    reaches the server, for the length of its pause (up to FHIRNET_DELIVERY_MAX_BACKOFF)."""
    cut_off, connected = two_hosts
    queued = [cut_off.accept(f"qr-{n}", f"p{n}", attempt_now=False) for n in range(3)]
    cut_off.server.error = unavailable()

    assert cut_off.delivery.deliver_due() == 1  # claims all three, probes with qr-0, pauses
    assert cut_off.delivery.paused()

    assert connected.delivery.deliver_due() == 2
    assert connected.server.sent == ["qr-1", "qr-2"]
    assert [connected.entry(a).state for a in queued] == [
        State.QUEUED,  # retried later, when its backoff ends
        State.DELIVERED,
        State.DELIVERED,
    ]


def test_a_host_claims_a_few_entries_at_a_time_so_that_others_share_a_backlog(
    two_hosts: tuple[World, World],
) -> None:
    one, other = two_hosts
    backlog = [one.accept(f"qr-{n}", f"p{n}", attempt_now=False) for n in range(ROUND_SIZE + 5)]
    seen_by_other: list[int] = []

    def other_looks(entry: Entry) -> None:
        seen_by_other.append(len(other.outbox.due(other.clock())))
        other.outbox.end_round()

    one.server.during = other_looks

    one.delivery.deliver_due()

    assert seen_by_other[0] == 5  # while one delivers its first round, the rest is free
    assert [one.entry(a).state for a in backlog] == [State.DELIVERED] * len(backlog)


# -- the background thread ---------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_the_thread_delivers_what_is_queued_then_stops_promptly(world: World) -> None:
    queued = [world.accept(f"a{n}", "p1", attempt_now=False) for n in range(3)]
    queued += [world.accept(f"b{n}", "p2", attempt_now=False) for n in range(3)]

    world.delivery.start(poll=60)
    wait_for(lambda: world.outbox.counts()[State.DELIVERED] == 6)
    started = time.monotonic()
    world.delivery.stop()

    assert time.monotonic() - started < 2
    assert [n for n in world.server.sent if n.startswith("a")] == ["a0", "a1", "a2"]
    assert [n for n in world.server.sent if n.startswith("b")] == ["b0", "b1", "b2"]
    assert all(world.entry(a).state is State.DELIVERED for a in queued)


def test_a_queued_entry_wakes_the_waiting_thread(world: World) -> None:
    world.delivery.start(poll=60)

    attempt = world.accept("a1", "p1", attempt_now=False)

    wait_for(lambda: world.entry(attempt).state is State.DELIVERED)
    world.delivery.stop()


def test_a_stopped_thread_sends_nothing_more(world: World) -> None:
    world.delivery.start(poll=60)
    world.delivery.stop()

    world.accept("a1", "p1", attempt_now=False)
    time.sleep(0.05)

    assert world.server.sent == []


def test_a_failing_round_is_logged_and_the_thread_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    attempt = world.accept("a1", "p1", attempt_now=False)
    real_due = world.outbox.due
    failures = [sqlite3.OperationalError("database is locked")]

    def due(now: float, *, limit: int = 100) -> list[Entry]:
        if failures:
            raise failures.pop()
        return real_due(now, limit=limit)

    monkeypatch.setattr(world.outbox, "due", due)

    with caplog.at_level(logging.ERROR, logger="fhirnet.services.delivery"):
        world.delivery.start(poll=0.01)
        wait_for(lambda: world.entry(attempt).state is State.DELIVERED)
        world.delivery.stop()

    assert [r.getMessage() for r in caplog.records] == ["delivery round failed"]


def test_start_twice_runs_one_thread(world: World) -> None:
    # Counted against what runs already: another test's app may have left its own thread.
    before = {t for t in threading.enumerate() if t.name == "fhirnet-delivery"}
    world.delivery.start(poll=60)
    world.delivery.start(poll=60)

    started = {t for t in threading.enumerate() if t.name == "fhirnet-delivery"} - before
    world.delivery.stop()

    assert len(started) == 1
