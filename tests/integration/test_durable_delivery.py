"""Durable delivery, end to end: fhirnet served by ``fhirnet serve`` (gunicorn, several worker
processes, each with its delivery thread) in front of a sekmet-fhir of its own that the tests stop,
start and break.

The promises checked (issue 5): a form accepted with ``202`` is never lost — not when the FHIR
server is down, not when fhirnet is killed with ``SIGKILL`` in the middle of delivering; each is
delivered exactly once in effect (one set of results per exam on the server, with the categories
of the example series), in order per patient; a ``503`` with ``Retry-After`` is honoured; a
refusal is not retried.

The scenarios that run ``fhirnet serve`` run on both backends of the outbox and patient locks:
the data directory's SQLite file with ``flock``, and PostgreSQL (``FHIRNET_DATABASE_URL``, an
empty database per test).

The server is read back directly with a :class:`~fhirnet.adapters.fhir_client.FhirClient`, never
through
fhirnet. These tests need a server they can stop: they are skipped with
``FHIRNET_TEST_FHIR_URL``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.outbox import OUTBOX_FILE, SqliteOutbox
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.ports import Outbox, State
from tests.integration.conftest import OWN_SERVER_ONLY, OwnServer
from tests.integration.fault_proxy import (
    TRANSACTION,
    FaultProxy,
    ProxiedRequest,
    Slow,
    refuse,
    unavailable,
)
from tests.integration.fhirnets import FHIR_JSON, Answer, Fhirnet, MakeFhirnet
from tests.integration.test_submission_scenarios import (
    CATEGORIES,
    DATA_WRITE,
    FHIRNET_TIMEOUT,
    SERVER_FAULTS,
    UNSEEN_COMMITS,
    Json,
    Patient,
    ServerFault,
    assert_one_set,
    bundle,
    category,
    new_patient,
    written,
)
from tests.servers import ROOT, free_port, wait_for_health

pytestmark = [pytest.mark.integration, OWN_SERVER_ONLY]

PATIENTS = 10
FORMS_PER_PATIENT = 5
#: Backoff of the deliveries under test: short, so that a restarted server is found quickly.
BACKOFF, MAX_BACKOFF = 0.2, 2.0
#: Seconds to wait for every submission to be finished after the server is back.
SETTLE_SECONDS = 180.0


def DATA_TRANSACTION(request: ProxiedRequest) -> bool:  # noqa: N802 - a predicate
    """A transaction of results: not one of a failure's AuditEvent alone."""
    return TRANSACTION(request) and DATA_WRITE(request)


# -- the processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """Where fhirnet keeps its outbox and patient locks: the data directory's SQLite file and
    ``flock`` (``database_url`` ``None``), or a PostgreSQL database (``FHIRNET_DATABASE_URL``)."""

    database_url: str | None = None

    @property
    def environment(self) -> dict[str, str]:
        return {} if self.database_url is None else {"FHIRNET_DATABASE_URL": self.database_url}

    def outbox(self, data_dir: Path) -> Outbox:
        """The outbox a fhirnet with data directory ``data_dir`` uses, opened from outside."""
        if self.database_url is None:
            return SqliteOutbox(data_dir / OUTBOX_FILE)
        return PostgresOutbox(self.database_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each scenario on both backends."""
    if request.param == "sqlite":
        return Backend()
    return Backend(request.getfixturevalue("fresh_database_url"))


@dataclass
class Served:
    """``fhirnet serve`` in a process group of its own (gunicorn master and workers), so that
    ``SIGKILL`` takes all of them at once, as a crash or the OOM killer would."""

    fhir_base_url: str
    data_dir: Path
    log_path: Path
    workers: int = 2
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    backend: Backend = field(default_factory=Backend)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, same_port: bool = False) -> None:
        """Start (again); ``same_port``: where it listened before, as a restarted service."""
        if not (same_port and self.port):
            self.port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
        environment |= {
            "FHIRNET_FHIR_BASE_URL": self.fhir_base_url,
            "FHIRNET_DATA_DIR": str(self.data_dir),
            "FHIRNET_AUTH": "none",
            "FHIRNET_WORKERS": str(self.workers),
            "FHIRNET_THREADS": "4",
            "FHIRNET_FHIR_TIMEOUT": "10",
            "FHIRNET_DELIVERY_BACKOFF": f"{BACKOFF:g}",
            "FHIRNET_DELIVERY_MAX_BACKOFF": f"{MAX_BACKOFF:g}",
            "FHIRNET_PORT": str(self.port),
            **self.environment,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fhirnet.web.cli", "serve"],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_health(f"{self.url}/health", self.process, self.log_path, 60)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group and wait for the master."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if sig is not signal.SIGKILL:  # let the workers go too
            time.sleep(0.5)
        with_group_gone(self.process.pid)

    @property
    def fhirnet(self) -> Fhirnet:
        return Fhirnet(url=self.url)


def with_group_gone(pgid: int, seconds: float = 10.0) -> None:
    """Wait until no process of group ``pgid`` is left (killed workers are reaped by init)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def served(own_server: OwnServer, backend: Backend, tmp_path: Path) -> Iterator[Served]:
    """fhirnet writing to the test's own server; killed (not stopped) at the end."""
    data_dir = tmp_path / "fhirnet-data"
    data_dir.mkdir()
    process = Served(
        own_server.base_url,
        data_dir,
        tmp_path / "fhirnet.log",
        environment=backend.environment,
        backend=backend,
    )
    process.start()
    try:
        yield process
    finally:
        process.kill(signal.SIGTERM)


@contextmanager
def fhirnet_behind(
    proxy: FaultProxy, tmp_path: Path, backend: Backend, workers: int = 1
) -> Iterator[Served]:
    """``fhirnet serve`` writing through ``proxy``, stopped (SIGTERM) at the end."""
    process = Served(
        proxy.base_url,
        tmp_path / "data",
        tmp_path / "fhirnet.log",
        workers=workers,
        environment=backend.environment,
        backend=backend,
    )
    process.data_dir.mkdir()
    process.start()
    try:
        yield process
    finally:
        process.kill(signal.SIGTERM)


@pytest.fixture
def server_fhir(own_server: OwnServer) -> FhirClient:
    return FhirClient(own_server.base_url, timeout=(5.0, 60.0))


# -- submissions and their status ----------------------------------------------------------------


def make_patients(fhir: FhirClient) -> list[Patient]:
    """Ten patients on the server, over the three example series in turn."""
    series = sorted(CATEGORIES)
    return [new_patient(fhir, series[i % len(series)]) for i in range(PATIENTS)]


def forms_in_order(patients: Sequence[Patient]) -> list[tuple[Patient, int]]:
    """Each patient's forms in date order, the patients interleaved as an EHR's worklist would
    send them: every baseline, then every first follow-up, and so on."""
    return [(p, n) for n in range(1, FORMS_PER_PATIENT + 1) for p in patients]


def status_url(fhirnet_url: str, answer: Answer) -> str:
    """The status URL of a 202 (its ``Content-Location``), on the fhirnet at ``fhirnet_url``."""
    location = answer.headers["Content-Location"]
    return fhirnet_url + "/fhir/_submission/" + location.rsplit("/", 1)[1]


def wait_until_finished(urls: Sequence[str], seconds: float = SETTLE_SECONDS) -> list[Any]:
    """Poll every status URL until each answers 200; returns the status Bundles, in order."""
    deadline = time.monotonic() + seconds
    finished: dict[str, Any] = {}
    while True:
        for url in urls:
            if url in finished:
                continue
            answer = requests.get(url, headers={"Accept": FHIR_JSON}, timeout=30)
            assert answer.status_code in (200, 202), f"{url}: {answer.status_code} {answer.text}"
            if answer.status_code == 200:
                finished[url] = answer.json()
        if len(finished) == len(urls):
            return [finished[url] for url in urls]
        if time.monotonic() > deadline:
            pending = [url for url in urls if url not in finished]
            pytest.fail(f"{len(pending)} of {len(urls)} submissions still queued: {pending[:3]}")
        time.sleep(0.5)


def entry_status(status: Any) -> str:
    """The status of the original request in a status Bundle (``201 Created``...)."""
    assert (status["resourceType"], status["type"]) == ("Bundle", "batch-response"), status
    (entry,) = status["entry"]
    return str(entry["response"]["status"])


def assert_delivered_once(fhir: FhirClient, patients: Sequence[Patient]) -> None:
    """One set of results per exam on the server, each with the series' category."""
    exams = range(1, FORMS_PER_PATIENT + 1)
    for patient in patients:
        now = written(fhir, patient)
        assert_one_set(now, patient, exams)
        found = [category(now.report(patient, n)) for n in exams]
        assert found == list(CATEGORIES[patient.series][:FORMS_PER_PATIENT]), patient.series


def outbox_counts(process: Served) -> dict[State, int]:
    outbox = process.backend.outbox(process.data_dir)
    try:
        return outbox.counts()
    finally:
        outbox.close()


# -- the scenarios -------------------------------------------------------------------------------


def test_fifty_forms_accepted_while_the_server_is_down_are_each_delivered_once_when_it_is_back(
    own_server: OwnServer, served: Served, server_fhir: FhirClient
) -> None:
    patients = make_patients(server_fhir)
    own_server.stop()

    answers = [served.fhirnet.submit(p.form(n)) for p, n in forms_in_order(patients)]

    assert [a.status for a in answers] == [202] * len(answers), [str(a) for a in answers[:2]]
    assert all(a.body["resourceType"] == "OperationOutcome" for a in answers)
    urls = [status_url(served.url, a) for a in answers]
    assert len(set(urls)) == len(urls)
    queued = requests.get(urls[-1], headers={"Accept": FHIR_JSON}, timeout=10)
    assert queued.status_code == 202
    assert queued.headers["X-Progress"].startswith("queued")
    assert outbox_counts(served)[State.QUEUED] == PATIENTS * FORMS_PER_PATIENT

    own_server.start()
    statuses = wait_until_finished(urls)

    assert [entry_status(s) for s in statuses] == ["201 Created"] * len(statuses)
    for status in statuses:
        location = status["entry"][0]["response"]["location"]
        # A FHIR create's answer: the form's version on the server (the report is in the outcome).
        assert location.startswith(f"{own_server.base_url}/QuestionnaireResponse/"), location
        assert "/_history/" in location, location
    assert_delivered_once(server_fhir, patients)


def test_a_kill_9_in_the_middle_of_delivery_loses_and_duplicates_nothing(
    own_server: OwnServer, server_fhir: FhirClient, backend: Backend, tmp_path: Path
) -> None:
    patients = make_patients(server_fhir)
    with (
        FaultProxy(own_server.base_url) as proxy,
        fhirnet_behind(proxy, tmp_path, backend, 2) as process,
    ):
        # Transactions take long enough for the kill to catch deliveries mid-way.
        proxy.inject(Slow(0.3), when=DATA_TRANSACTION)
        answers = [
            process.fhirnet.submit(p.form(n), prefer="respond-async")
            for p, n in forms_in_order(patients)
        ]
        assert [a.status for a in answers] == [202] * len(answers)
        deadline = time.monotonic() + 60
        while len(proxy.requests(DATA_TRANSACTION)) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)

        process.kill(signal.SIGKILL)

        counts = outbox_counts(process)
        assert counts[State.DELIVERED] >= 5, counts  # the kill came in the middle...
        assert counts[State.QUEUED] >= 10, counts  # ... not before, not after
        proxy.pass_through()
        process.start()
        statuses = wait_until_finished([status_url(process.url, a) for a in answers])

    assert {entry_status(s) for s in statuses} <= {"201 Created", "200 OK"}
    assert_delivered_once(server_fhir, patients)


def test_kill_9_while_an_ehr_submits_and_resends_loses_and_duplicates_nothing(
    own_server: OwnServer, server_fhir: FhirClient, backend: Backend, tmp_path: Path
) -> None:
    """An EHR posts 50 forms one after the other (no respond-async) and sends a form again when
    its request fails (connection refused or reset), as EHRs do. fhirnet is killed with SIGKILL
    three times meanwhile — in the middle of requests, of inline and background deliveries — and
    started again on the same port. Every form ends up on the server once, with its category."""
    patients = make_patients(server_fhir)
    forms = forms_in_order(patients)
    answers: dict[int, Answer] = {}
    problems: list[str] = []
    resent = 0
    with (
        FaultProxy(own_server.base_url) as proxy,
        fhirnet_behind(proxy, tmp_path, backend, 2) as process,
    ):
        proxy.inject(Slow(0.2), when=DATA_TRANSACTION)  # requests long enough to be cut

        def ehr() -> None:
            nonlocal resent
            for index, (patient, number) in enumerate(forms):
                while True:
                    try:
                        answer = process.fhirnet.submit(patient.form(number))
                    except requests.RequestException:
                        resent += 1
                        time.sleep(0.2)
                        continue
                    if answer.status in (200, 201, 202):
                        answers[index] = answer
                        break
                    problems.append(str(answer))
                    return

        thread = threading.Thread(target=ehr, daemon=True)
        thread.start()
        for kill in range(1, 4):
            deadline = time.monotonic() + 120
            while len(answers) < 12 * kill and thread.is_alive():
                assert time.monotonic() < deadline, f"{len(answers)} answers"
                time.sleep(0.02)
            process.kill(signal.SIGKILL)
            process.start(same_port=True)
        thread.join(300)
        assert problems == []
        assert sorted(answers) == list(range(len(forms)))
        queued = [status_url(process.url, a) for a in answers.values() if a.status == 202]
        statuses = wait_until_finished(queued)

    assert resent >= 3, "the EHR never noticed a crash: the kills came between requests"
    assert {entry_status(s) for s in statuses} <= {"201 Created", "200 OK"}
    assert_delivered_once(server_fhir, patients)


def test_a_503_with_retry_after_is_honoured(
    own_server: OwnServer, tmp_path: Path, server_fhir: FhirClient, backend: Backend
) -> None:
    patient = new_patient(server_fhir, "small-bowel-net-prrt")
    with (
        FaultProxy(own_server.base_url) as proxy,
        fhirnet_behind(proxy, tmp_path, backend) as process,
    ):
        rule = proxy.inject(unavailable(retry_after=3), when=DATA_TRANSACTION, times=1)
        answer = process.fhirnet.submit(patient.form(1))
        assert answer.status == 202, answer
        assert rule.applied == 1
        (status,) = wait_until_finished([status_url(process.url, answer)], seconds=60)
        first, second = proxy.requests(DATA_TRANSACTION)

    assert entry_status(status) == "201 Created"
    waited = second.request.received - first.request.received
    assert waited >= 3.0, f"retried after {waited:.2f} s despite Retry-After: 3"
    assert_one_set(written(server_fhir, patient), patient, (1,))


def test_a_form_the_server_refuses_fails_with_its_reason_and_is_not_retried(
    own_server: OwnServer, tmp_path: Path, server_fhir: FhirClient, backend: Backend
) -> None:
    patient = new_patient(server_fhir, "small-bowel-net-prrt")
    with (
        FaultProxy(own_server.base_url) as proxy,
        fhirnet_behind(proxy, tmp_path, backend) as process,
    ):
        # Rules apply in order: a 503 first (the form is queued), then refusals.
        proxy.inject(unavailable(retry_after=None), when=DATA_TRANSACTION, times=1)
        refusal = proxy.inject(
            refuse(422, "Injected: rule R-9 failed", "business-rule"), when=DATA_TRANSACTION
        )
        answer = process.fhirnet.submit(patient.form(1))
        assert answer.status == 202, answer
        (status,) = wait_until_finished([status_url(process.url, answer)], seconds=60)
        time.sleep(3 * MAX_BACKOFF)  # time enough for retries that must not happen

    (entry,) = status["entry"]
    assert entry["response"]["status"] == "502 Bad Gateway", entry
    assert "Injected: rule R-9 failed" in json.dumps(entry["response"]["outcome"])
    assert refusal.applied == 1
    transactions = proxy.requests(DATA_TRANSACTION)
    assert len(transactions) == 2, [s.action for s in transactions]  # the 503, then the refusal
    assert written(server_fhir, patient).everything == []


# -- in-process: each failure of the server, answered 202 and delivered once it recovers --------

#: fhirnet's own faults of the server that a retry may cure (the refusals fail at once, and are
#: answered like without an outbox: ``test_submission_scenarios.py``).
RETRYABLE_FAULTS = {name: case for name, case in SERVER_FAULTS.items() if case.status == 503} | {
    f"unseen-{name}": ServerFault(fault, 202) for name, fault in UNSEEN_COMMITS.items()
}


def in_process_status(fhirnet: Fhirnet, answer: Answer, seconds: float = 60.0) -> Json:
    """Poll the status of a 202 through ``fhirnet`` until it is finished."""
    path = "/fhir/_submission/" + answer.headers["Content-Location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + seconds
    while True:
        status = fhirnet.get(path)
        assert status.status in (200, 202), status
        if status.status == 200:
            return dict(status.body)
        assert time.monotonic() < deadline, f"still queued after {seconds} s: {status}"
        time.sleep(0.2)


@pytest.mark.parametrize("case", list(RETRYABLE_FAULTS.values()), ids=list(RETRYABLE_FAULTS))
def test_a_failing_server_gets_the_form_once_it_recovers(
    make_fhirnet: MakeFhirnet,
    fault_proxy: FaultProxy,
    fhir: FhirClient,
    case: ServerFault,
    backend: Backend,
) -> None:
    """Down, slow, 5xx, 429, a dropped connection, or a commit fhirnet could not see: the EHR
    gets ``202`` (no partial data on the server meanwhile), and once the server works the form
    is delivered — exactly once, with the category it should have."""
    fhirnet = make_fhirnet(
        fault_proxy.base_url, timeout=FHIRNET_TIMEOUT, database_url=backend.database_url
    )
    patient = new_patient(fhir, "small-bowel-net-prrt")
    assert fhirnet.submit(patient.form(1)).status == 201
    before = written(fhir, patient)
    unseen = case.status == 202  # the fault lets the server commit
    rule = fault_proxy.inject(case.fault, when=DATA_TRANSACTION, times=1 if unseen else None)

    answer = fhirnet.submit(patient.form(2))

    assert answer.status == 202, answer
    assert answer.body["resourceType"] == "OperationOutcome"
    assert rule.applied >= 1
    if not unseen:
        assert fault_proxy.wait_idle(30)
        assert written(fhir, patient).keys() == before.keys(), "partial data while queued"
        fault_proxy.pass_through()
    status = in_process_status(fhirnet, answer)

    assert entry_status(status) in ({"200 OK", "201 Created"} if unseen else {"201 Created"})
    now = written(fhir, patient)
    assert_one_set(now, patient, (1, 2))
    assert category(now.report(patient, 2)) == CATEGORIES[patient.series][1]


def test_a_transaction_bundle_is_kept_and_delivered_whole(
    make_fhirnet: MakeFhirnet, fault_proxy: FaultProxy, fhir: FhirClient, backend: Backend
) -> None:
    fhirnet = make_fhirnet(
        fault_proxy.base_url, timeout=FHIRNET_TIMEOUT, database_url=backend.database_url
    )
    first = new_patient(fhir, "small-bowel-net-prrt")
    second = new_patient(fhir, "pancreatic-net-everolimus")
    fault_proxy.inject(unavailable(retry_after=1), when=DATA_TRANSACTION, times=2)

    answer = fhirnet.submit_bundle(
        bundle("transaction", [first.form(1), first.form(2), second.form(1)])
    )

    assert answer.status == 202, answer
    status = in_process_status(fhirnet, answer)
    (entry,) = status["entry"]
    assert entry["response"]["status"] == "200 OK"
    response = entry["resource"]
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created"] * 3
    assert_one_set(written(fhir, first), first, (1, 2))
    assert_one_set(written(fhir, second), second, (1,))


def test_a_follow_up_waits_for_its_queued_baseline(
    make_fhirnet: MakeFhirnet, fault_proxy: FaultProxy, fhir: FhirClient, backend: Backend
) -> None:
    """The baseline is queued (the server failed it); the follow-up, sent when the server works
    again, is queued behind it rather than assessed without it — then both go, in order."""
    fhirnet = make_fhirnet(
        fault_proxy.base_url, timeout=FHIRNET_TIMEOUT, database_url=backend.database_url
    )
    patient = new_patient(fhir, "small-bowel-net-prrt")
    fault_proxy.inject(unavailable(retry_after=2), when=DATA_TRANSACTION, times=1)
    baseline = fhirnet.submit(patient.form(1))
    assert baseline.status == 202, baseline

    follow_up = fhirnet.submit(patient.form(2))

    assert follow_up.status == 202, follow_up
    statuses = [in_process_status(fhirnet, a) for a in (baseline, follow_up)]
    assert [entry_status(s) for s in statuses] == ["201 Created", "201 Created"]
    delivered = [s["meta"]["lastUpdated"] for s in statuses]
    assert delivered == sorted(delivered)
    now = written(fhir, patient)
    assert_one_set(now, patient, (1, 2))
    assert category(now.report(patient, 2)) == "SD"
