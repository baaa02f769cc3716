"""What the PostgreSQL outbox (:mod:`fhirnet.adapters.pg_outbox`) adds to the outbox's contract
(tested on both backends in ``test_outbox.py``): several hosts share it. Each ``PostgresOutbox``
here is one host; they split the due entries between them by claims, never hand out one entry
twice nor a patient's entry ahead of its earlier one, and a host whose connection is cut
mid-claim leaves nothing claimed. Its schema comes from versioned migrations
(:mod:`fhirnet.adapters.pg_schema`) that hosts starting together apply once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.adapters.pg_schema import MIGRATIONS, schema_version
from fhirnet.errors import OutboxUnavailableError
from fhirnet.ports import Entry, Json, Kind, State

T0 = 1_800_000_000.0
ANSWER: Json = {"response": {"status": "201 Created"}}


@pytest.fixture
def hosts(fresh_database_url: str) -> Iterator[tuple[PostgresOutbox, PostgresOutbox]]:
    """Two hosts' outboxes on one database."""
    one, other = PostgresOutbox(fresh_database_url), PostgresOutbox(fresh_database_url)
    yield one, other
    one.close()
    other.close()


def add(outbox: PostgresOutbox, *patients: str, number: int = 1) -> Entry:
    body: Json = {"resourceType": "QuestionnaireResponse", "id": f"qr-{number}"}
    return outbox.add(kind=Kind.FORM, body=body, patients=patients, requester="a", now=T0)


def ids(entries: list[Entry]) -> list[str]:
    return [entry.id for entry in entries]


# -- schema ------------------------------------------------------------------------------------


def test_hosts_starting_together_apply_each_migration_once(fresh_database_url: str) -> None:
    started: list[PostgresOutbox] = []
    failures: list[BaseException] = []
    go = threading.Barrier(4)

    def start() -> None:
        try:
            go.wait()
            started.append(PostgresOutbox(fresh_database_url))
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for box in started:
        box.close()

    assert failures == []
    with psycopg.connect(fresh_database_url) as connection:
        assert schema_version(connection) == MIGRATIONS[-1].version
        rows = connection.execute("SELECT version FROM fhirnet_schema_version").fetchall()
    assert rows == [(migration.version,) for migration in MIGRATIONS]


# -- claims ------------------------------------------------------------------------------------


def test_two_hosts_split_the_due_entries_and_never_take_a_patients_next_one_early(
    hosts: tuple[PostgresOutbox, PostgresOutbox],
) -> None:
    one, other = hosts
    first = [add(one, f"p{n}", number=n) for n in range(4)]
    behind = add(other, "p0", number=9)  # waits for first[0], whoever has it

    mine = one.due(T0, limit=2)
    theirs = other.due(T0)

    assert ids(mine) == ids(first[:2])
    assert ids(theirs) == ids(first[2:])  # not the claimed ones, nor the one behind them
    one.finish(first[0].seq, state=State.DELIVERED, answer=ANSWER, now=T0)
    # first[1] is still one's; the one behind first[0] may go now
    assert ids(other.due(T0)) == [first[2].id, first[3].id, behind.id]
    assert ids(one.due(T0)) == [first[1].id]


def test_a_claim_ends_when_its_entry_is_retried_later_or_at_the_next_round(
    hosts: tuple[PostgresOutbox, PostgresOutbox],
) -> None:
    one, other = hosts
    retried, left = add(one, "p1", number=1), add(one, "p2", number=2)
    assert ids(one.due(T0)) == [retried.id, left.id]

    one.retry_later(retried.seq, at=T0, error="FhirServerUnavailableError")
    assert ids(other.due(T0)) == [retried.id]  # left is still one's
    assert one.due(T0 - 1) == []  # one's next round: what it left alone is free again
    assert ids(other.due(T0)) == [retried.id, left.id]


def test_ending_a_round_leaves_what_it_claimed_to_the_other_hosts(
    hosts: tuple[PostgresOutbox, PostgresOutbox],
) -> None:
    one, other = hosts
    entries = [add(one, f"p{n}", number=n) for n in range(3)]
    assert ids(one.due(T0)) == ids(entries)
    assert other.due(T0) == []

    one.end_round()

    assert ids(other.due(T0)) == ids(entries)
    one.end_round()  # no round, or its session is gone: nothing to end, no error


def test_hosts_delivering_concurrently_deliver_each_entry_once_in_order_per_patient(
    fresh_database_url: str,
) -> None:
    patients, per_patient, host_count = 5, 8, 3
    boxes = [PostgresOutbox(fresh_database_url) for _ in range(host_count)]
    added = [add(boxes[0], f"p{n % patients}", number=n) for n in range(patients * per_patient)]
    delivered: list[tuple[int, int]] = []  # (seq, host), in the order deliveries ended
    active: set[str] = set()  # patients being delivered right now
    overlaps: list[int] = []
    failures: list[BaseException] = []
    guard = threading.Lock()
    go = threading.Barrier(host_count)

    def deliver(host: int) -> None:
        box = boxes[host]
        try:
            go.wait()
            deadline = time.monotonic() + 60
            while box.counts()[State.QUEUED] and time.monotonic() < deadline:
                for entry in box.due(T0, limit=3):
                    (patient,) = box.patients(entry.seq)
                    with guard:
                        if patient in active:
                            overlaps.append(entry.seq)
                        active.add(patient)
                    time.sleep(0.002)  # the FHIR server's time
                    with guard:
                        active.discard(patient)
                        delivered.append((entry.seq, host))
                    box.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=T0)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=deliver, args=(h,)) for h in range(host_count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for box in boxes:
            box.close()

    assert failures == []
    assert overlaps == []  # never two deliveries of one patient at once
    assert sorted(seq for seq, _ in delivered) == [e.seq for e in added]  # each exactly once
    for p in range(patients):  # each patient's entries in acceptance order
        mine = [e.seq for n, e in enumerate(added) if n % patients == p]
        order = [seq for seq, _ in delivered if seq in set(mine)]
        assert order == sorted(order)
    assert len({host for _, host in delivered}) > 1  # the work was shared


def test_a_host_whose_connection_is_cut_mid_claim_leaves_nothing_claimed(
    hosts: tuple[PostgresOutbox, PostgresOutbox], fresh_database_url: str
) -> None:
    one, other = hosts
    entries = [add(one, "p1", number=1), add(one, "p2", number=2)]
    assert ids(one.due(T0)) == ids(entries)
    assert other.due(T0) == []

    with psycopg.connect(fresh_database_url, autocommit=True) as admin:
        holders = admin.execute(
            "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
        assert len(holders) == 1  # one's claims session
        admin.execute("SELECT pg_terminate_backend(%s)", (holders[0][0],))
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.05)

    assert ids(other.due(T0)) == ids(entries)  # nothing waits for the dead session
    assert other.due(T0 - 1) == []  # other's next round ends its claims
    assert ids(one.due(T0)) == ids(entries)  # and one claims again on a new session


def test_connections_the_server_ended_while_idle_are_replaced_not_failed(
    hosts: tuple[PostgresOutbox, PostgresOutbox], fresh_database_url: str
) -> None:
    one, _ = hosts
    first = add(one, "p1", number=1)
    with psycopg.connect(fresh_database_url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid != pg_backend_pid()"
        ).fetchall()
        assert ended  # the outboxes' pooled connections (as after a server restart)
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid != pg_backend_pid()"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.05)

    second = add(one, "p1", number=2)

    assert ids(list(one.entries())) == [first.id, second.id]


def test_a_statement_longer_than_the_timeout_is_unavailable(fresh_database_url: str) -> None:
    quick = PostgresOutbox(fresh_database_url, statement_timeout=0.2)
    entry = add(quick, "p1")
    try:
        with psycopg.connect(fresh_database_url) as holder:  # a transaction holding the row
            holder.execute("SELECT 1 FROM outbox_entry WHERE seq = %s FOR UPDATE", (entry.seq,))
            started = time.monotonic()
            with pytest.raises(OutboxUnavailableError, match="timeout"):
                quick.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=T0)
            assert time.monotonic() - started < 5
        quick.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=T0)  # usable again
        assert quick.counts()[State.DELIVERED] == 1
    finally:
        quick.close()
