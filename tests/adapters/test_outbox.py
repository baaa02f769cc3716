"""The outbox, on both backends (:mod:`fhirnet.adapters.outbox`: a SQLite file;
:mod:`fhirnet.adapters.pg_outbox`: PostgreSQL): accepted submissions committed before they are
answered, handed out in acceptance order but never ahead of an earlier queued submission about
the same patient, and kept as a status (without the body) once finished."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.errors import OutboxUnavailableError
from fhirnet.ports import Entry, Json, Kind, Outbox, State

T0 = 1_800_000_000.0
ANSWER: Json = {"response": {"status": "201 Created", "location": "DiagnosticReport/r1"}}

#: Opens an outbox on the test's storage: each call another instance on the same entries (as
#: another worker process, or another host, would).
Opener = Callable[[], Outbox]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Outboxes of one backend on one test's own storage (a file, or an empty database)."""
    opened: list[Outbox] = []
    if request.param == "sqlite":
        path = tmp_path / "data" / "outbox.sqlite3"

        def opener() -> Outbox:
            opened.append(SqliteOutbox(path))
            return opened[-1]
    else:
        url: str = request.getfixturevalue("fresh_database_url")

        def opener() -> Outbox:
            opened.append(PostgresOutbox(url))
            return opened[-1]

    yield opener
    for box in opened:
        box.close()


@pytest.fixture
def outbox(open_outbox: Opener) -> Outbox:
    return open_outbox()


def form(number: int) -> Json:
    return {"resourceType": "QuestionnaireResponse", "id": f"qr-{number}", "status": "completed"}


def add(
    outbox: Outbox,
    *patients: str,
    number: int = 1,
    now: float = T0,
    kind: Kind = Kind.FORM,
    requester: str = "anonymous",
) -> Entry:
    return outbox.add(kind=kind, body=form(number), patients=patients, requester=requester, now=now)


def ids(entries: list[Entry]) -> list[str]:
    return [entry.id for entry in entries]


# -- add / get ---------------------------------------------------------------------------------


def test_an_added_entry_is_queued_due_at_once_and_read_back_as_it_was_given(
    outbox: Outbox,
) -> None:
    body: Json = {"resourceType": "QuestionnaireResponse", "text": "é ✓", "n": 1.5, "x": [None]}

    added = outbox.add(kind=Kind.FORM, body=body, patients={"p1"}, requester="api-key-1", now=T0)

    assert outbox.get(added.id) == added
    assert added == Entry(
        seq=added.seq,
        id=added.id,
        kind=Kind.FORM,
        requester="api-key-1",
        body=body,
        state=State.QUEUED,
        accepted=T0,
        attempts=0,
        next_attempt=T0,
        last_error=None,
        answer=None,
        finished=None,
    )


def test_ids_are_32_hex_digits_and_unguessable(outbox: Outbox) -> None:
    entries = [add(outbox, "p1", number=n) for n in range(20)]

    assert all(len(e.id) == 32 and set(e.id) <= set("0123456789abcdef") for e in entries)
    assert len({e.id for e in entries}) == 20


def test_an_unknown_id_is_none(outbox: Outbox) -> None:
    add(outbox, "p1")

    assert outbox.get("0" * 32) is None
    assert outbox.get("") is None


def test_entries_are_numbered_in_acceptance_order(outbox: Outbox) -> None:
    added = [add(outbox, f"p{n}", number=n) for n in range(5)]

    assert [e.seq for e in added] == sorted(e.seq for e in added)
    assert len({e.seq for e in added}) == 5
    assert list(outbox.entries()) == added
    assert list(outbox.entries(added[2].seq)) == added[2:]


def test_an_entry_lists_its_patients_once_each_in_order(outbox: Outbox) -> None:
    entry = outbox.add(
        kind=Kind.BUNDLE,
        body={"resourceType": "Bundle"},
        patients=["p2", "p1", "p2"],
        requester="anonymous",
        now=T0,
    )

    assert outbox.patients(entry.seq) == ("p1", "p2")


# -- due -----------------------------------------------------------------------------------


def test_entries_of_different_patients_are_all_due_in_acceptance_order(
    outbox: Outbox,
) -> None:
    added = [add(outbox, f"p{n}", number=n) for n in (3, 1, 2)]

    assert ids(outbox.due(T0)) == ids(added)


def test_an_entry_is_not_due_before_its_next_attempt(outbox: Outbox) -> None:
    entry = add(outbox, "p1")
    outbox.retry_later(entry.seq, at=T0 + 60, error="FhirServerUnavailableError")

    assert outbox.due(T0 + 59.9) == []
    assert ids(outbox.due(T0 + 60)) == [entry.id]
    assert outbox.next_due() == T0 + 60


def test_an_entry_accepted_in_the_future_is_not_due_yet(outbox: Outbox) -> None:
    add(outbox, "p1", now=T0 + 10)

    assert outbox.due(T0) == []


def test_a_follow_up_waits_behind_a_queued_baseline_of_the_same_patient(
    outbox: Outbox,
) -> None:
    baseline = add(outbox, "p1", number=1)
    follow_up = add(outbox, "p1", number=2)
    other = add(outbox, "p2", number=3)

    assert ids(outbox.due(T0)) == [baseline.id, other.id]
    assert outbox.blocked(follow_up.seq)
    assert not outbox.blocked(baseline.seq)
    assert not outbox.blocked(other.seq)


def test_a_baseline_waiting_for_its_next_attempt_still_holds_its_follow_up_back(
    outbox: Outbox,
) -> None:
    baseline = add(outbox, "p1", number=1)
    follow_up = add(outbox, "p1", number=2)
    outbox.retry_later(baseline.seq, at=T0 + 60, error="FhirServerUnavailableError")

    assert outbox.due(T0 + 30) == []
    assert outbox.blocked(follow_up.seq)
    assert outbox.next_due() == T0  # the follow-up's own time: blocked or not


def test_an_entry_sharing_any_patient_with_an_earlier_queued_one_is_not_due(
    outbox: Outbox,
) -> None:
    first = add(outbox, "p1", "p2", number=1, kind=Kind.BUNDLE)
    second = add(outbox, "p2", "p3", number=2, kind=Kind.BUNDLE)
    third = add(outbox, "p3", number=3)
    fourth = add(outbox, "p4", number=4)

    assert ids(outbox.due(T0)) == [first.id, fourth.id]
    assert outbox.blocked(second.seq)
    assert outbox.blocked(third.seq)  # behind the second, itself behind the first


def test_earlier_lists_the_queued_entries_before_it_that_share_a_patient(
    outbox: Outbox,
) -> None:
    first = add(outbox, "p1", number=1)
    done = add(outbox, "p1", number=2)
    other = add(outbox, "p3", number=3)
    both = add(outbox, "p1", "p2", number=4, kind=Kind.BUNDLE)
    later = add(outbox, "p2", "p1", number=5, kind=Kind.BUNDLE)
    outbox.finish(done.seq, state=State.DELIVERED, answer=ANSWER, now=T0)

    assert ids(outbox.earlier(later.seq)) == [first.id, both.id]
    assert outbox.earlier(first.seq) == []
    assert outbox.earlier(other.seq) == []


def test_an_entry_about_no_patient_is_never_held_back(outbox: Outbox) -> None:
    add(outbox, "p1", number=1)
    nobody = outbox.add(
        kind=Kind.BUNDLE, body={"resourceType": "Bundle"}, patients=(), requester="a", now=T0
    )

    assert nobody.id in ids(outbox.due(T0))
    assert outbox.patients(nobody.seq) == ()
    assert not outbox.blocked(nobody.seq)


def test_due_gives_at_most_limit_entries_the_earliest_first(outbox: Outbox) -> None:
    added = [add(outbox, f"p{n}", number=n) for n in range(5)]

    assert ids(outbox.due(T0, limit=2)) == ids(added[:2])


def test_finished_entries_are_never_due(outbox: Outbox) -> None:
    delivered = add(outbox, "p1", number=1)
    failed = add(outbox, "p2", number=2)
    outbox.finish(delivered.seq, state=State.DELIVERED, answer=ANSWER, now=T0 + 1)
    outbox.finish(failed.seq, state=State.FAILED, answer=ANSWER, now=T0 + 1)

    assert outbox.due(T0 + 10) == []
    assert outbox.next_due() is None


# -- finish --------------------------------------------------------------------------------


def test_finishing_keeps_the_answer_and_drops_the_body_and_the_patients(
    outbox: Outbox,
) -> None:
    entry = add(outbox, "p1")

    outbox.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=T0 + 5)

    finished = outbox.get(entry.id)
    assert finished is not None
    assert (finished.state, finished.body, finished.answer) == (State.DELIVERED, None, ANSWER)
    assert (finished.finished, finished.attempts) == (T0 + 5, 1)
    assert outbox.patients(entry.seq) == ()


def test_finishing_a_baseline_lets_its_follow_up_go(outbox: Outbox) -> None:
    baseline = add(outbox, "p1", number=1)
    follow_up = add(outbox, "p1", number=2)
    third = add(outbox, "p1", number=3)

    outbox.finish(baseline.seq, state=State.FAILED, answer=ANSWER, now=T0 + 1)

    assert ids(outbox.due(T0 + 1)) == [follow_up.id]
    assert not outbox.blocked(follow_up.seq)
    assert outbox.blocked(third.seq)


def test_finishing_without_an_attempt_does_not_count_one(outbox: Outbox) -> None:
    entry = add(outbox, "p1")

    outbox.finish(entry.seq, state=State.FAILED, answer=ANSWER, now=T0, attempted=False)

    finished = outbox.get(entry.id)
    assert finished is not None
    assert finished.attempts == 0


def test_an_entry_finishes_once(outbox: Outbox) -> None:
    entry = add(outbox, "p1")
    outbox.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=T0 + 1)

    outbox.finish(entry.seq, state=State.FAILED, answer={"other": True}, now=T0 + 2)
    outbox.retry_later(entry.seq, at=T0 + 99, error="late")

    finished = outbox.get(entry.id)
    assert finished is not None
    assert (finished.state, finished.answer, finished.finished) == (State.DELIVERED, ANSWER, T0 + 1)
    assert (finished.attempts, finished.last_error) == (1, None)


def test_finish_refuses_to_leave_an_entry_queued(outbox: Outbox) -> None:
    entry = add(outbox, "p1")

    with pytest.raises(ValueError, match="delivered or failed"):
        outbox.finish(entry.seq, state=State.QUEUED, answer=ANSWER, now=T0)

    assert outbox.get(entry.id) == entry


# -- retry_later / reschedule --------------------------------------------------------------


def test_each_retry_counts_an_attempt_and_keeps_the_last_error(outbox: Outbox) -> None:
    entry = add(outbox, "p1")

    outbox.retry_later(entry.seq, at=T0 + 1, error="FhirServerUnavailableError (HTTP 503)")
    outbox.retry_later(entry.seq, at=T0 + 3, error="FhirServerUnavailableError")

    retried = outbox.get(entry.id)
    assert retried is not None
    assert (retried.state, retried.attempts) == (State.QUEUED, 2)
    assert (retried.next_attempt, retried.last_error) == (T0 + 3, "FhirServerUnavailableError")
    assert retried.body == entry.body


def test_reschedule_brings_every_later_queued_entry_forward(outbox: Outbox) -> None:
    soon, late, due = (add(outbox, f"p{n}", number=n) for n in range(3))
    done = add(outbox, "p9", number=9)
    outbox.retry_later(soon.seq, at=T0 + 10, error="e")
    outbox.retry_later(late.seq, at=T0 + 300, error="e")
    outbox.retry_later(done.seq, at=T0 + 300, error="e")
    outbox.finish(done.seq, state=State.DELIVERED, answer=ANSWER, now=T0 + 5)

    outbox.reschedule(before=T0 + 5, at=T0 + 5)

    times = {e.id: e.next_attempt for e in outbox.entries()}
    assert times == {soon.id: T0 + 5, late.id: T0 + 5, due.id: T0, done.id: T0 + 300}
    assert ids(outbox.due(T0 + 5)) == [soon.id, late.id, due.id]


# -- counts --------------------------------------------------------------------------------


def test_counts_name_every_state(outbox: Outbox) -> None:
    assert outbox.counts() == {State.QUEUED: 0, State.DELIVERED: 0, State.FAILED: 0}
    entries = [add(outbox, f"p{n}", number=n) for n in range(4)]
    outbox.finish(entries[0].seq, state=State.DELIVERED, answer=ANSWER, now=T0)
    outbox.finish(entries[1].seq, state=State.FAILED, answer=ANSWER, now=T0)
    outbox.finish(entries[2].seq, state=State.DELIVERED, answer=ANSWER, now=T0)

    assert outbox.counts() == {State.QUEUED: 1, State.DELIVERED: 2, State.FAILED: 1}


# -- durability and concurrency ------------------------------------------------------------


def test_a_reopened_outbox_has_every_entry_and_its_order(open_outbox: Opener) -> None:
    first = open_outbox()
    baseline = add(first, "p1", number=1)
    follow_up = add(first, "p1", number=2)
    delivered = add(first, "p2", number=3)
    first.finish(delivered.seq, state=State.DELIVERED, answer=ANSWER, now=T0 + 1)
    first.close()  # as good as a crash: every write was committed before add() returned

    second = open_outbox()
    assert [e.id for e in second.entries()] == [baseline.id, follow_up.id, delivered.id]
    assert second.get(baseline.id) == baseline
    assert ids(second.due(T0 + 1)) == [baseline.id]
    later = add(second, "p3", number=4)
    assert later.seq > delivered.seq


def test_two_outboxes_on_one_store_see_each_others_entries(open_outbox: Opener) -> None:
    one, other = open_outbox(), open_outbox()  # as two worker processes (or hosts) would
    entry = add(one, "p1")
    other.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=T0 + 1)

    seen = one.get(entry.id)
    assert seen is not None
    assert seen.state is State.DELIVERED


def test_concurrent_adds_from_several_threads_get_distinct_seqs_and_ids(
    outbox: Outbox,
) -> None:
    threads, per_thread = 8, 10
    added: list[Entry] = []
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def accept(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                added.append(add(outbox, f"p{worker}", number=n, now=T0 + n))
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    workers = [threading.Thread(target=accept, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []
    assert len({e.seq for e in added}) == len({e.id for e in added}) == threads * per_thread
    assert outbox.counts()[State.QUEUED] == threads * per_thread
    for w in range(threads):  # each patient's entries are in the order its thread added them
        mine = [e for e in outbox.entries() if outbox.patients(e.seq) == (f"p{w}",)]
        assert [e.body["id"] for e in mine if e.body] == [f"qr-{n}" for n in range(per_thread)]
    due = outbox.due(T0 + per_thread)
    assert sorted(outbox.patients(e.seq) for e in due) == [(f"p{w}",) for w in range(threads)]
    assert all(e.body == form(0) for e in due)  # each patient's first, the rest behind it


def test_purge_deletes_the_entries_finished_before_the_cutoff_and_nothing_queued(
    outbox: Outbox,
) -> None:
    old = add(outbox, "p1", number=1)
    recent = add(outbox, "p2", number=2)
    queued = add(outbox, "p3", number=3, now=T0 - 10_000)
    outbox.finish(old.seq, state=State.DELIVERED, answer=ANSWER, now=T0)
    outbox.finish(recent.seq, state=State.FAILED, answer=ANSWER, now=T0 + 100)

    assert outbox.purge(finished_before=T0 + 50) == 1

    assert outbox.get(old.id) is None
    assert outbox.get(recent.id) is not None
    assert outbox.get(queued.id) is not None


def test_an_outbox_that_cannot_be_opened_is_unavailable_naming_its_path(tmp_path: Path) -> None:
    with pytest.raises(OutboxUnavailableError, match="not-a-file"):
        SqliteOutbox(tmp_path / "not-a-file" / "..")


def test_an_unreachable_database_is_unavailable_naming_it_without_the_password() -> None:
    url = "postgresql://fhirnet:s3cret@127.0.0.1:1/not-a-database"  # nothing listens on port 1

    with pytest.raises(OutboxUnavailableError, match="not-a-database") as raised:
        PostgresOutbox(url, connect_timeout=2)

    assert "s3cret" not in str(raised.value)
