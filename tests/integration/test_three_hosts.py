"""Several hosts on PostgreSQL, end to end: three ``fhirnet serve`` processes (each its own data
directory and port, two gunicorn workers each with its delivery thread) share one PostgreSQL
database (``FHIRNET_DATABASE_URL``: the outbox and the patient locks) and one sekmet-fhir process,
behind a round-robin reverse proxy (:mod:`tests.integration.round_robin_proxy`) that skips a host
refusing connections.

An EHR per patient submits 10 forms of each of 20 patients (200 forms), the patients at once,
each patient's forms in date order, waiting for each answer (half the EHRs ask
``Prefer: respond-async``, half wait for the delivery), and resends a form whose request failed
(connection cut, ``502``/``503``), as EHRs do. Meanwhile:

* the FHIR server is **stopped** (SIGTERM: its process ends, its port refuses connections) after
  the first three forms of every patient, and **started again on the same port with the same
  data** after the seventh: a real outage, as a restart or a crash of the server is, not a
  proxy's imitation of one (every form of the outage is answered ``202``);
* once the server is back, host A is **killed with SIGKILL in the middle of a delivery**, and
  stays dead. Proof that it was mid-delivery, from PostgreSQL and the wire at the moment of the
  kill: one of A's processes holds the *claim* of a patient's queued entry (its delivery thread
  took it) and that patient's lock in an open transaction, and A's transaction with that very
  form is on its way to the FHIR server (held by a fault proxy between A and the server, then
  forwarded after the kill: a commit A never saw). Only patients whose EHR asks
  ``respond-async`` are considered, so the deliverer is the delivery thread, not a request.
  A's sessions must then leave PostgreSQL (its claims and locks with them);
* right after, while the hosts left deliver the backlog, host B is **restarted** (SIGTERM:
  gunicorn finishes its requests, the delivery thread stops after its attempt; then started
  again on its port and data directory).

Then, once the outbox is drained, on the FHIR server itself: every form once (one
QuestionnaireResponse, one DiagnosticReport, one response assessment per exam, counted by
business identifier), no fhirnet identifier on two resources, and every report's category, sum of
diameters, baseline sum, nadir sum and nadir date equal to what fhirnet's pure domain core
computes over the patient's whole timeline in order — no nadir from a missing exam, no report
rebuilt (``amended``) because an earlier exam came late. In the shared outbox, each patient's
entries finished in the order they were accepted, whichever host delivered them; every status
URL answers ``delivered`` through the proxy, whichever host it lands on.

The forms: the example series (``examples/questionnaire-responses``) renamed per patient, each
continued to 10 exams with follow-ups every 6 weeks whose target sizes change by a fixed factor
each time (shrinking, growing: categories change along the way), every one valid in sequence.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.pg_locks import lock_key
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.criteria import Response, assess
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.extract import assessment_request, extract_form
from fhirnet.fhir.identifiers import Kind
from fhirnet.fhir.populate import next_nadir_date
from fhirnet.ports import State
from fhirnet.web.fhir_bundles import report_url_of
from tests.integration.conftest import OWN_SERVER_ONLY, OwnServer
from tests.integration.fault_proxy import FaultProxy, ProxiedRequest, Slow
from tests.integration.fhirnets import FHIR_JSON
from tests.integration.round_robin_proxy import RoundRobinProxy
from tests.integration.test_durable_delivery import (
    DATA_TRANSACTION,
    Backend,
    Served,
)
from tests.integration.test_submission_scenarios import (
    CATEGORIES,
    CRF_SUBMISSION_SID,
    NCIT,
    REPORT_SID,
    SID,
    Json,
    Patient,
    _example_paths,
    component,
    identifiers,
    new_patient,
)
from tests.servers import socket_inodes, tcp_sockets

pytestmark = [pytest.mark.integration, OWN_SERVER_ONLY]

PATIENTS = 20
EXAMS = 10
#: The exams (1-based, inclusive) each phase submits: server up, server down, server back.
PHASES = ((1, 3), (4, 7), (8, 10))
#: Days between the synthetic follow-ups, and the factor of each one's target sizes over the
#: previous exam's (in turn).
STEP_DAYS = 42
FACTORS = (0.97, 0.92, 1.04, 1.3, 1.1)
#: Seconds host A's transactions are held on their way to the server, once the server is back:
#: long enough to see A mid-delivery and kill it there.
HOLD_SECONDS = 1.5
#: Seconds the FHIR server stays down at least (several backoffs of the hosts).
OUTAGE_SECONDS = 5.0
#: Seconds to wait for the mid-delivery moment, for the phases, and for the outbox to drain.
MOMENT_SECONDS = 60.0
PHASE_SECONDS = 120.0
DRAIN_SECONDS = 120.0
#: Prefix of fhirnet's claim lock keys (``fhirnet.adapters.pg_outbox``).
CLAIM_PREFIX = "fhirnet.outbox.claim:"
RESPONSE_ASSESSMENT_SID = Kind.RESPONSE_ASSESSMENT.system
SUM_OF_DIAMETERS_SID = Kind.SUM_OF_DIAMETERS.system


# -- the forms, and what the domain core says of them ---------------------------------------------


def _top(form: Json, link_id: str) -> Json:
    item: Json = next(i for i in form["item"] if i["linkId"] == link_id)
    return item


def _imaging_date(form: Json) -> dt.date:
    return dt.date.fromisoformat(_top(form, "imaging-date")["answer"][0]["valueDate"])


def exam_forms(patient: Patient) -> list[Json]:
    """The patient's 10 forms in date order: the example series (renamed to the patient), then
    follow-ups made from the previous one — 6 weeks later (closer together if that would be
    in the future: fhirnet refuses a form dated after today), every target's size times the
    next factor, no new lesion, the nadir date the domain core gives the next exam."""
    count = len(_example_paths(patient.series))
    forms = [patient.form(number) for number in range(1, count + 1)]
    room = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1) - _imaging_date(forms[-1])).days
    step = max(1, min(STEP_DAYS, room // (EXAMS - count)))
    while len(forms) < EXAMS:
        number = len(forms) + 1
        form = copy.deepcopy(forms[-1])
        date = _imaging_date(forms[-1]) + dt.timedelta(days=step)
        factor = Decimal(str(FACTORS[(number - count - 1) % len(FACTORS)]))
        _top(form, "imaging-date")["answer"] = [{"valueDate": date.isoformat()}]
        form["authored"] = f"{date.isoformat()}T17:20:00+01:00"
        form["identifier"]["value"] = f"{patient.series}-{number:02d}-{patient.suffix}"
        form["item"] = [item for item in form["item"] if item["linkId"] != "new-lesion"]
        for item in form["item"]:
            for part in item.get("item", []) if item["linkId"] == "target-lesion" else []:
                if part["linkId"] == "lesion-size":
                    size = Decimal(str(part["answer"][0]["valueDecimal"])) * factor
                    part["answer"] = [{"valueDecimal": float(round(size, 1))}]
        nadir = next_nadir_date([extract_form(f) for f in forms])
        _top(form, "nadir-date")["answer"] = [{"valueDate": nadir.isoformat()}]
        forms.append(form)
    return forms


def exam_of(form: Json) -> str:
    return str(form["identifier"]["value"])


@dataclass(frozen=True)
class Expected:
    """One exam's results as the domain core computes them over the patient's whole timeline."""

    category: Response | None
    sum_mm: Decimal | None
    baseline_sum_mm: Decimal | None
    nadir_sum_mm: Decimal | None
    nadir_date: dt.date | None


def expected_results(forms: Sequence[Json]) -> dict[str, Expected]:
    """Exam identifier → its expected results: fhirnet's pure engine (extract, assess) run on the
    forms in order, without any server."""
    exams = [extract_form(form) for form in forms]
    assessment = assess(assessment_request(exams, exams[-1].criteria))
    by_date = {timepoint.date: timepoint for timepoint in assessment.timepoints}
    baseline_sum = assessment.timepoints[0].baseline_sum_mm
    found = {}
    for form, exam in zip(forms, exams, strict=True):
        point = by_date.get(exam.imaging_date)
        if point is None:  # the baseline: its own sum, no category
            found[exam_of(form)] = Expected(None, baseline_sum, baseline_sum, None, None)
        else:
            found[exam_of(form)] = Expected(
                point.overall_response,
                point.sum_mm,
                point.baseline_sum_mm,
                point.nadir_sum_mm,
                point.nadir_date,
            )
    return found


# -- the EHRs ------------------------------------------------------------------------------------


@dataclass
class Sent:
    """One form's answered submission."""

    patient: Patient
    number: int
    status: int
    status_url: str | None


@dataclass
class Ehrs:
    """One EHR thread per patient, sending through ``url``; each phase's forms wait for its
    gate."""

    url: str
    forms: Mapping[str, list[Json]]
    patients: Sequence[Patient]
    gates: list[threading.Event] = field(
        default_factory=lambda: [threading.Event() for _ in PHASES]
    )
    sent: list[Sent] = field(default_factory=list)
    resent: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def asynchronous(self) -> set[str]:
        """The patients whose EHR asks ``respond-async`` (every other one)."""
        return {patient.id for patient in self.patients[::2]}

    def start(self) -> None:
        for patient in self.patients:
            asynchronous = patient.id in self.asynchronous
            thread = threading.Thread(target=self._send_all, args=(patient, asynchronous))
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def answered(self) -> int:
        with self._lock:
            return len(self.sent)

    def wait_answered(self, count: int) -> None:
        deadline = time.monotonic() + PHASE_SECONDS
        while self.answered() < count:
            assert not self.problems, self.problems[:3]
            assert time.monotonic() < deadline, f"{self.answered()} of {count} forms answered"
            time.sleep(0.05)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(PHASE_SECONDS)
            assert not thread.is_alive(), "an EHR is still sending"

    def _send_all(self, patient: Patient, asynchronous: bool) -> None:
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        if asynchronous:
            headers["Prefer"] = "respond-async"
        for number, form in enumerate(self.forms[patient.id], start=1):
            phase = next(i for i, (_, last) in enumerate(PHASES) if number <= last)
            self.gates[phase].wait(PHASE_SECONDS)
            data = json.dumps(form).encode()
            while True:
                try:
                    answer = requests.post(
                        f"{self.url}/fhir/QuestionnaireResponse", data=data, headers=headers,
                        timeout=60,
                    )  # fmt: skip
                except requests.RequestException as error:
                    status, reason = 0, type(error).__name__
                else:
                    status, reason = answer.status_code, answer.text[:300]
                if status in (200, 201, 202):
                    url = answer.headers.get("Content-Location") if status == 202 else None
                    with self._lock:
                        self.sent.append(Sent(patient, number, status, url))
                    break
                if status not in (0, 502, 503):
                    self.problems.append(f"{exam_of(form)}: {status} {reason}")
                    return
                with self._lock:  # the request failed: the EHR sends the form again
                    self.resent[f"{status} {reason[:60]}"] += 1
                time.sleep(0.2)


# -- PostgreSQL and the processes, seen from outside -----------------------------------------------


def group_ports(pgid: int) -> dict[int, int]:
    """The local TCP port of every socket of the processes of process group ``pgid``, with the
    process holding it (``/proc``: a socket's inode, in ``/proc/net/tcp`` with its port)."""
    holders: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
        holders |= dict.fromkeys(socket_inodes(int(proc.name)), int(proc.name))
    return {
        found.local_port: holders[found.inode] for found in tcp_sockets() if found.inode in holders
    }


@dataclass(frozen=True)
class HeldLock:
    """An advisory lock a session holds: its key, the session's client port and application,
    and whether the session is inside a transaction."""

    key: int
    port: int
    application: str
    in_transaction: bool


def held_locks(database_url: str) -> list[HeldLock]:
    """Every granted advisory lock of the database (``pg_locks``: a ``bigint`` key is shown as
    its high half in ``classid`` and its low half in ``objid``)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT (l.classid::bigint << 32) | l.objid::bigint, a.client_port, "
            "a.application_name, a.state "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND a.datname = current_database()"
        ).fetchall()
    return [HeldLock(int(k), int(p or 0), str(app), str(state).startswith("idle in")) for
            k, p, app, state in rows]  # fmt: skip


def sessions(database_url: str) -> dict[int, tuple[int, str]]:
    """Every session of the database: its client port → its server process id and start time
    (together, one session: a port, or a process id, may be used again later)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT client_port, pid, backend_start::text FROM pg_stat_activity "
            "WHERE datname = current_database() AND client_port IS NOT NULL"
        ).fetchall()
    return {int(port): (int(pid), str(start)) for port, pid, start in rows}


def claim_key(database_url: str, seq: int) -> int:
    """The advisory lock key of the claim of outbox entry ``seq``, as PostgreSQL hashes it."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT hashtextextended(%s, 0)", (f"{CLAIM_PREFIX}{seq}",)
        ).fetchone()
    assert row is not None
    return int(row[0])


def queued_entry_of(database_url: str, patient: str) -> tuple[int, str, str] | None:
    """``(seq, id, form identifier)`` of the patient's earliest queued outbox entry: the only
    one of the patient that may be being delivered."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT e.seq, e.id, e.body -> 'identifier' ->> 'value' FROM outbox_entry e "
            "JOIN outbox_entry_patient p USING (seq) "
            "WHERE p.patient = %s AND e.state = 'queued' ORDER BY e.seq LIMIT 1",
            (patient,),
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


@dataclass(frozen=True)
class MidDelivery:
    """What showed a host in the middle of delivering an entry: the form of its transaction held
    on the wire, the entry, and the process whose sessions held the entry's claim and its
    patient's lock."""

    form: str
    seq: int
    entry_id: str
    pid: int
    held_for: float


def forms_in(request: ProxiedRequest) -> list[tuple[str, str]]:
    """``(patient id, exam)`` of each form a transaction carries."""
    found = []
    for entry in (request.json() or {}).get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "QuestionnaireResponse":
            subject = str((resource.get("subject") or {}).get("reference", ""))
            found.append((subject.rsplit("/", 1)[-1], str(resource["identifier"]["value"])))
    return found


def mid_delivery(
    host: Served, proxy: FaultProxy, database_url: str, asynchronous: Collection[str]
) -> MidDelivery | None:
    """The entry ``host``'s delivery thread is delivering right now, if it is caught in the act:
    its transaction with the queued entry's form is held by ``proxy`` (not forwarded yet), and one
    process of the host holds both the entry's claim (taken by its delivery thread's ``due``)
    and the patient's lock inside an open transaction. Only patients whose EHR asks
    ``respond-async`` (``asynchronous``): their forms are never delivered by a request, so
    the deliverer is the delivery thread."""
    assert host.process is not None
    now = time.monotonic()
    held = [
        seen
        for seen in proxy.requests(DATA_TRANSACTION)
        if seen.action.startswith("slowed") and now - seen.request.received < HOLD_SECONDS - 0.4
    ]
    if not held:
        return None
    before = group_ports(host.process.pid)
    locks = held_locks(database_url)
    after = group_ports(host.process.pid)  # a port A held all along is A's session's
    ports = {port: pid for port, pid in before.items() if after.get(port) == pid}
    mine = [lock for lock in locks if lock.port in ports]
    for seen in held:
        for patient, exam in forms_in(seen.request):
            entry = queued_entry_of(database_url, patient) if patient in asynchronous else None
            if entry is None or entry[2] != exam:
                continue
            claim = claim_key(database_url, entry[0])
            claimed = {ports[lock.port] for lock in mine if lock.key == claim}
            locked = {
                ports[lock.port]
                for lock in mine
                if lock.key == lock_key(patient) and lock.in_transaction
            }
            for pid in claimed & locked:
                held_for = time.monotonic() - seen.request.received
                return MidDelivery(exam, entry[0], entry[1], pid, held_for)
    return None


# -- reading the FHIR server back ------------------------------------------------------------------


def everything(fhir: FhirClient, resource_type: str) -> list[Json]:
    """Every resource of a type on the test's own server (nothing else writes to it)."""
    return list(fhir.search(resource_type, {"_count": "500"}))


def by_identifier(resources: Sequence[Json], system: str) -> dict[str, list[Json]]:
    found: dict[str, list[Json]] = defaultdict(list)
    for resource in resources:
        for found_system, value in identifiers(resource):
            if found_system == system:
                found[value].append(resource)
    return found


def coded_category(concepts: Any) -> str | None:
    """The NCIt code of a response category among ``concepts`` (CodeableConcepts)."""
    codes = {coding.code for coding in RESPONSE_CATEGORIES.values()}
    for concept in concepts or []:
        for coding in concept.get("coding") or []:
            if coding.get("system") == NCIT and coding.get("code") in codes:
                return str(coding["code"])
    return None


def decimal(quantity: Any) -> Decimal | None:
    return None if quantity is None else Decimal(str(quantity["value"]))


# -- the scenario ----------------------------------------------------------------------------------


@dataclass
class Hosts:
    """The three fhirnet hosts, A writing to the FHIR server through a fault proxy."""

    a: Served
    b: Served
    c: Served

    @property
    def all(self) -> list[Served]:
        return [self.a, self.b, self.c]


@pytest.fixture
def hosts(
    own_server: OwnServer, fresh_database_url: str, tmp_path: Path
) -> Iterator[tuple[Hosts, FaultProxy]]:
    """Three ``fhirnet serve`` on one PostgreSQL database, started at once; killed at the end."""
    backend = Backend(fresh_database_url)
    with FaultProxy(own_server.base_url) as proxy:
        made = []
        for name, base_url in (
            ("a", proxy.base_url),
            ("b", own_server.base_url),
            ("c", own_server.base_url),
        ):
            data_dir = tmp_path / f"host-{name}"
            data_dir.mkdir()
            made.append(
                Served(
                    base_url, data_dir, tmp_path / f"host-{name}.log",
                    environment=backend.environment, backend=backend,
                )
            )  # fmt: skip
        hosts = Hosts(*made)
        failures: list[BaseException] = []

        def start(host: Served) -> None:
            try:
                host.start()
            except BaseException as error:
                failures.append(error)

        starting = [threading.Thread(target=start, args=(host,)) for host in hosts.all]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        try:
            if failures:
                raise failures[0]
            yield hosts, proxy
        finally:
            for host in hosts.all:
                host.kill(signal.SIGKILL)


def test_three_hosts_deliver_every_form_once_in_order_through_an_outage_a_kill_and_a_restart(
    own_server: OwnServer,
    hosts: tuple[Hosts, FaultProxy],
    fresh_database_url: str,
) -> None:
    started = time.monotonic()
    three, proxy_a = hosts
    fhir = FhirClient(own_server.base_url, timeout=(5.0, 60.0))
    series = sorted(CATEGORIES)
    patients = [new_patient(fhir, series[i % len(series)]) for i in range(PATIENTS)]
    forms = {patient.id: exam_forms(patient) for patient in patients}
    expected = {exam: e for p in patients for exam, e in expected_results(forms[p.id]).items()}

    with RoundRobinProxy([host.url for host in three.all]) as balancer:
        ehrs = Ehrs(balancer.url, forms, patients)
        ehrs.start()
        timings: dict[str, float] = {}

        def at(phase: int) -> int:
            return PATIENTS * PHASES[phase][1]

        # 1. the server up: exams 1 to 3
        ehrs.gates[0].set()
        ehrs.wait_answered(at(0))

        # 2. the server down (its process stopped, its port refusing): exams 4 to 7, all queued
        own_server.stop()
        timings["server stopped"] = time.monotonic() - started
        ehrs.gates[1].set()
        ehrs.wait_answered(at(1))
        down = [s for s in ehrs.sent if PHASES[1][0] <= s.number <= PHASES[1][1]]
        assert {s.status for s in down} == {202}, Counter(s.status for s in down)
        time.sleep(
            max(0.0, started + timings["server stopped"] + OUTAGE_SECONDS - time.monotonic())
        )
        outbox = PostgresOutbox(fresh_database_url)
        try:  # the hosts kept trying, backing off, while the server was down
            tried = [e.attempts for e in outbox.entries() if e.state is State.QUEUED]
        finally:
            outbox.close()
        assert max(tried) >= 2, Counter(tried)

        # 3. the server back on its port with its data: exams 8 to 10; host A killed while it
        # delivers, then host B restarted while the hosts left deliver what is queued
        own_server.start()
        timings["server started"] = time.monotonic() - started
        proxy_a.inject(Slow(HOLD_SECONDS), when=DATA_TRANSACTION)
        ehrs.gates[2].set()
        deadline = time.monotonic() + MOMENT_SECONDS
        caught = None
        while caught is None:
            assert time.monotonic() < deadline, "host A was never seen delivering"
            caught = mid_delivery(three.a, proxy_a, fresh_database_url, ehrs.asynchronous)
            if caught is None:
                time.sleep(0.05)
        assert three.a.process is not None
        a_ports = group_ports(three.a.process.pid)
        a_sessions = {s for port, s in sessions(fresh_database_url).items() if port in a_ports}
        three.a.kill(signal.SIGKILL)
        timings["host A killed"] = time.monotonic() - started
        proxy_a.pass_through()  # the held transaction goes on to the server: a commit A never saw
        assert a_sessions, "host A had no session"
        gone = time.monotonic() + 10
        while left := a_sessions & set(sessions(fresh_database_url).values()):
            assert time.monotonic() < gone, f"host A's sessions outlived it: {left}"
            time.sleep(0.05)
        timings["host A's sessions gone"] = time.monotonic() - started

        assert three.b.process is not None
        b_ports = set(group_ports(three.b.process.pid))
        b_held = [lock for lock in held_locks(fresh_database_url) if lock.port in b_ports]
        three.b.kill(signal.SIGTERM)
        timings["host B stopped"] = time.monotonic() - started
        three.b.start(same_port=True)
        timings["host B started again"] = time.monotonic() - started

        ehrs.join()
        assert ehrs.problems == []
        urls = [s.status_url for s in ehrs.sent if s.status_url is not None]
        statuses = wait_delivered(urls, fresh_database_url, balancer.url)
        timings["drained"] = time.monotonic() - started
        answered_by = dict(balancer.answered)
        refused_by = dict(balancer.refused)

    exams = {exam_of(form): patient for patient in patients for form in forms[patient.id]}
    assert len(exams) == PATIENTS * EXAMS
    reports = assert_each_exam_once_as_computed(fhir, exams, expected)
    assert_delivered_in_order(fresh_database_url, forms, reports)
    assert len(statuses) >= PATIENTS * EXAMS
    assert {entry_status(s) for s in statuses} <= {"201 Created", "200 OK"}
    assert answered_by.keys() == {host.url for host in three.all}, answered_by
    assert refused_by.get(three.a.url, 0) > 0, refused_by  # host A, dead, was skipped

    caught_status = [entry_status(s) for s in statuses if s["id"] == caught.entry_id]
    (caught_report,) = reports[f"{exams[caught.form].id}/{caught.form}"]
    summary = {
        "answers": dict(Counter(s.status for s in ehrs.sent)),
        "outbox entries": dict(Counter(entry_status(s) for s in statuses)),
        "resent": dict(ehrs.resent),
        "queued entries by attempts when the server came back": dict(Counter(tried)),
        "host A caught": caught,
        "host A's sessions when killed": len(a_sessions),
        "its status": caught_status,
        "its report's version": caught_report.get("meta", {}).get("versionId"),
        "advisory locks host B held when stopped": len(b_held),
        "answered by host": answered_by,
        "refused by host": refused_by,
        "timings": {name: round(seconds, 1) for name, seconds in timings.items()},
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nthree hosts:", json.dumps(summary, default=str, indent=1))  # noqa: T201 - pytest -s


def assert_each_exam_once_as_computed(
    fhir: FhirClient, exams: Mapping[str, Patient], expected: Mapping[str, Expected]
) -> dict[str, list[Json]]:
    """On the FHIR server: one QuestionnaireResponse, DiagnosticReport, sum of diameters and
    (follow-ups) response assessment per exam, no fhirnet identifier on two resources, and each
    report ``final`` (never rebuilt) with the category, sums and nadir of ``expected``.

    :returns: the reports by identifier value.
    """
    responses = by_identifier(everything(fhir, "QuestionnaireResponse"), CRF_SUBMISSION_SID)
    reports = by_identifier(everything(fhir, "DiagnosticReport"), REPORT_SID)
    observations = everything(fhir, "Observation")
    assessments = by_identifier(observations, RESPONSE_ASSESSMENT_SID)
    sums = by_identifier(observations, SUM_OF_DIAMETERS_SID)
    assert {exam: len(found) for exam, found in responses.items()} == dict.fromkeys(exams, 1)
    keys = {f"{patient.id}/{exam}": exam for exam, patient in exams.items()}
    assert {key: len(found) for key, found in reports.items()} == dict.fromkeys(keys, 1)
    repeated = Counter(
        key
        for resource in [*observations, *(r for found in reports.values() for r in found)]
        for key in identifiers(resource)
        if key[0].startswith(SID)
    )
    assert [key for key, n in repeated.items() if n > 1] == []
    wrong = []
    for key, exam in keys.items():
        want = expected[exam]
        category = None if want.category is None else RESPONSE_CATEGORIES[want.category].code
        ((report,), (total,)) = reports[key], sums[key]
        found: dict[str, Any] = {
            "status": report.get("status"),
            "category": coded_category(report.get("conclusionCode")),
            "sum": decimal(total.get("valueQuantity")),
        }
        wanted: dict[str, Any] = {"status": "final", "category": category, "sum": want.sum_mm}
        if want.category is not None:
            (assessment,) = assessments[key]

            def figure(code: str, kind: str, of: Json = assessment) -> Any:
                return component(of, code).get(kind)

            found |= {
                "assessed": coded_category([assessment.get("valueCodeableConcept")]),
                "baseline sum": decimal(figure("baseline-sum-of-diameters", "valueQuantity")),
                "nadir sum": decimal(figure("nadir-sum-of-diameters", "valueQuantity")),
                "nadir date": str(figure("nadir-date", "valueDateTime"))[:10],
            }
            wanted |= {
                "assessed": category,
                "baseline sum": want.baseline_sum_mm,
                "nadir sum": want.nadir_sum_mm,
                "nadir date": str(want.nadir_date),
            }
        if found != wanted:
            wrong.append((exam, found, wanted))
    assert wrong == [], wrong[:3]
    return reports


def assert_delivered_in_order(
    database_url: str, forms: Mapping[str, Sequence[Json]], reports: Mapping[str, list[Json]]
) -> None:
    """In the shared outbox: nothing queued or failed, and each patient's entries — whichever
    host accepted and delivered them — finished in the order they were accepted, which is the
    order of the patient's exams (a resent form repeats its exam)."""
    numbers = {exam_of(form): n for each in forms.values() for n, form in enumerate(each, 1)}
    exam_of_report = {found[0]["id"]: key.split("/", 1)[1] for key, found in reports.items()}
    outbox = PostgresOutbox(database_url)
    try:
        entries = list(outbox.entries())
        counts = outbox.counts()
    finally:
        outbox.close()
    assert counts[State.QUEUED] == counts[State.FAILED] == 0, counts
    finished: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for entry in entries:  # in acceptance (seq) order
        url = report_url_of(entry.answer or {})
        assert url is not None, entry
        assert entry.finished is not None, entry
        report_id = url.split("/_history/")[0].rstrip("/").rsplit("/", 1)[1]
        exam = exam_of_report[report_id]
        patient = next(key for key, each in forms.items() if exam in map(exam_of, each))
        finished[patient].append((entry.seq, numbers[exam], entry.finished))
    assert finished.keys() == forms.keys()
    for patient, delivered in finished.items():
        exams = [number for _, number, _ in delivered]
        times = [when for _, _, when in delivered]
        assert exams == sorted(exams), (patient, delivered)
        assert set(exams) == set(range(1, EXAMS + 1)), (patient, delivered)
        assert times == sorted(times), (patient, delivered)


def entry_status(status: Json) -> str:
    (entry,) = status["entry"]
    return str(entry["response"]["status"])


def wait_delivered(urls: Sequence[str], database_url: str, proxy_url: str) -> list[Json]:
    """Poll every status URL of a ``202`` (through the proxy: any host answers) until each is
    finished, and the outbox until nothing is queued; then ask the status of *every* entry of
    the outbox through the proxy — the forms answered ``201`` at once, and those whose answer
    was lost when a host died, too. Returns every entry's status Bundle."""
    deadline = time.monotonic() + DRAIN_SECONDS
    finished: set[str] = set()
    while len(finished) < len(urls):
        for url in urls:
            if url in finished:
                continue
            answer = requests.get(url, headers={"Accept": FHIR_JSON}, timeout=30)
            assert answer.status_code in (200, 202), f"{url}: {answer.status_code} {answer.text}"
            if answer.status_code == 200:
                finished.add(url)
        pending = len(urls) - len(finished)
        assert time.monotonic() < deadline, f"{pending} of {len(urls)} submissions still queued"
        if pending:
            time.sleep(0.5)
    outbox = PostgresOutbox(database_url)
    try:
        while outbox.counts()[State.QUEUED]:  # entries whose 202 was never answered, too
            assert time.monotonic() < deadline, f"still queued: {outbox.counts()}"
            time.sleep(0.5)
        entries = outbox.entries()
    finally:
        outbox.close()
    statuses = []
    for entry in entries:
        url = f"{proxy_url}/fhir/_submission/{entry.id}"
        answer = requests.get(url, headers={"Accept": FHIR_JSON}, timeout=30)
        assert answer.status_code == 200, f"{url}: {answer.status_code} {answer.text}"
        statuses.append(answer.json())
    return statuses
