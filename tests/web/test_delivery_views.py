"""Durable delivery through HTTP (:mod:`fhirnet.web.delivery`): ``POST /fhir/QuestionnaireResponse``
and ``POST /fhir`` answer as without an outbox while the FHIR server takes the forms, ``202
Accepted`` with a ``Content-Location`` while it cannot, and ``GET /fhir/_submission/<id>`` tells
the submitter (and nobody else) what became of a submission.

The FHIR server is the embedded store behind a switch that makes its transactions fail; the
application clock is a fake one that only the tests move, so the backoff after a failure never
runs out by itself and what the background thread does is known."""

from __future__ import annotations

import copy
import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.pg_locks import PostgresLocks
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.errors import (
    FhirServerError,
    FhirServerRejectedError,
    FhirServerUnavailableError,
)
from fhirnet.fhir.resources import model_class, parse
from fhirnet.ports import Entry, Json, Kind, State
from fhirnet.services.delivery import Delivery
from fhirnet.web import WebState
from fhirnet.web.app import create_app
from tests.submissions import (
    CHOI,
    NOW,
    RECIST,
    RecordingStore,
    body,
    bundle_of,
    form,
    issues_of,
    post,
)

BASE = "http://localhost/fhir"
#: The first delay after a failure is between half of it and all of it (equal jitter).
BACKOFF = 60.0
MAX_BACKOFF = 600.0
STATUS_URL = re.compile(rf"{re.escape(BASE)}/_submission/([0-9a-f]{{32}})")
KEY_A = "key-of-site-a-0123456789"
#: Seconds the delivery thread gets for its first round before a test's first request.
SETTLE_SECONDS = 0.2
KEY_B = "key-of-site-b-0123456789"


class Clock:
    """The application clock: :data:`NOW` until a test moves it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class SwitchableStore(RecordingStore):
    """The embedded store as an external FHIR server: every transaction fails with ``error``
    while it is set (reads still work), and each one sent is noted."""

    def __init__(self, inner: EmbeddedStore) -> None:
        super().__init__(inner)
        self.error: FhirServerError | None = None

    def transaction(self, bundle: Json) -> Json:
        self.sent.append(copy.deepcopy(bundle))
        if self.error is not None:
            raise self.error
        return self.inner.transaction(bundle)

    def forms_written(self) -> list[str]:
        """The identifiers of the forms in the transactions sent, in the order sent."""
        return [
            entry["resource"]["identifier"]["value"]
            for bundle in self.sent
            for entry in bundle.get("entry", [])
            if entry.get("resource", {}).get("resourceType") == "QuestionnaireResponse"
        ]


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Every test here runs on both backends of the outbox and the patient locks: SQLite and
    ``flock`` in the data directory, and PostgreSQL (``FHIRNET_DATABASE_URL``, an empty
    database per test)."""
    database_url: str | None = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("fresh_database_url")
    return Settings(
        data_dir=tmp_path / "data",
        auth="none",
        delivery_backoff=BACKOFF,
        delivery_max_backoff=MAX_BACKOFF,
        database_url=database_url,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SwitchableStore]:
    with EmbeddedStore.open(tmp_path / "server") as inner:
        yield SwitchableStore(inner)


def durable_app(settings: Settings, store: SwitchableStore, clock: Clock) -> Flask:
    app = create_app(settings, store=store, durable=True, clock=clock)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def app(settings: Settings, store: SwitchableStore, clock: Clock) -> Iterator[Flask]:
    """The durable app with its delivery thread started and past its first round (an empty
    outbox), so the first request delivers its own form: a thread still starting (opening its
    PostgreSQL claims session) would otherwise race it for the entry, and the request would
    answer from the outbox's record instead."""
    app = durable_app(settings, store, clock)
    delivery_of(app)
    time.sleep(SETTLE_SECONDS)
    yield app
    state: WebState = app.extensions["fhirnet"]
    assert state.deliveries is not None
    state.deliveries.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def delivery_of(app: Flask) -> Delivery:
    state: WebState = app.extensions["fhirnet"]
    assert state.deliveries is not None
    with app.app_context():
        return state.deliveries.current()


def entries(app: Flask) -> list[Entry]:
    return list(delivery_of(app).outbox.entries())


def deliver(app: Flask) -> None:
    """Deliver everything that is due, as the background thread would; the thread may be at it
    too (then an entry it holds is skipped here), so go on until nothing due is left."""
    delivery = delivery_of(app)
    state: WebState = app.extensions["fhirnet"]
    deadline = time.monotonic() + 5
    with app.app_context():
        while True:
            delivery.deliver_due()
            if not delivery.outbox.due(state.clock().timestamp()):
                return
            assert time.monotonic() < deadline, "not delivered in 5 s"
            time.sleep(0.01)


def status_path(accepted: TestResponse) -> str:
    """The path of the status of a submission answered ``202 Accepted``."""
    match = STATUS_URL.fullmatch(accepted.headers["Content-Location"])
    assert match is not None, accepted.headers["Content-Location"]
    return f"/fhir/_submission/{match[1]}"


def answer_of(client: FlaskClient, path: str, **headers: str) -> Json:
    """The single entry of the ``batch-response`` of a finished submission."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = body(response)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "batch-response")
    assert parse(bundle, model_class("Bundle")).issues == ()
    (entry,) = bundle["entry"]
    assert isinstance(entry, dict)
    return entry


def down(retry_after: float | None = None) -> FhirServerUnavailableError:
    return FhirServerUnavailableError("POST / answered 503", status=503, retry_after=retry_after)


def accepted_while_down(client: FlaskClient, store: SwitchableStore, resource: Json) -> str:
    """Submit ``resource`` while the server is down: 202; the path of its status."""
    store.error = down()
    response = post(client, resource)
    assert response.status_code == 202, response.get_data(as_text=True)
    store.error = None
    return status_path(response)


# -- the server takes it: answered as without an outbox ----------------------------------------


def test_a_form_the_server_takes_is_answered_201_as_without_an_outbox(
    app: Flask, client: FlaskClient
) -> None:
    response = post(client, form(RECIST, 1))

    assert response.status_code == 201, response.get_data(as_text=True)
    report = body(response)
    assert report["resourceType"] == "DiagnosticReport"
    assert response.headers["Location"] == f"{BASE}/DiagnosticReport/{report['id']}"
    assert response.headers["ETag"] == 'W/"1"'
    assert "Content-Location" not in response.headers
    (entry,) = entries(app)
    assert (entry.state, entry.attempts, entry.body) == (State.DELIVERED, 1, None)
    assert entry.answer is not None
    assert entry.answer["response"]["status"] == "201 Created"
    # The status entry answers like the create: the form's version; the report in the outcome.
    assert "QuestionnaireResponse/" in entry.answer["response"]["location"]
    assert f"DiagnosticReport/{report['id']}" in str(entry.answer["response"]["outcome"])


def test_a_transaction_the_server_takes_is_answered_at_once(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    response = post(client, bundle_of(form(RECIST, 1), form(CHOI, 1)), url="/fhir")

    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = body(response)
    assert bundle["type"] == "transaction-response"
    assert [e["response"]["status"] for e in bundle["entry"]] == ["201 Created"] * 2
    (entry,) = entries(app)
    assert (entry.kind, entry.state) == (Kind.BUNDLE, State.DELIVERED)
    assert store.forms_written() == [f"{RECIST}-01", f"{CHOI}-01"]


def test_an_invalid_form_is_refused_422_at_once_and_nothing_is_kept(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    store.error = down()  # not even asked

    issues = issues_of(post(client, {"resourceType": "QuestionnaireResponse"}), 422)

    assert "required" in {i["code"] for i in issues if i["severity"] == "error"}
    assert entries(app) == []
    assert store.forms_written() == []


def test_a_form_the_server_rejects_is_answered_502_at_once_and_kept_as_failed(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    server_issue = {"severity": "error", "code": "invalid", "diagnostics": "no BodyStructure"}
    store.error = FhirServerRejectedError(
        "POST / answered 400",
        status=400,
        outcome={"resourceType": "OperationOutcome", "issue": [server_issue]},
    )

    response = post(client, form(RECIST, 1))

    issues = issues_of(response, 502)
    assert server_issue in issues
    assert "Content-Location" not in response.headers
    (entry,) = entries(app)
    assert (entry.state, entry.attempts, entry.body) == (State.FAILED, 1, None)
    answer = answer_of(client, f"/fhir/_submission/{entry.id}")
    assert answer["response"]["status"].startswith("502")
    assert server_issue in answer["response"]["outcome"]["issue"]
    store.error = None
    deliver(app)
    assert len(store.forms_written()) == 1  # never retried


# -- the server cannot take it: 202 and the status endpoint -------------------------------------


def test_a_form_the_server_cannot_take_now_is_accepted_202_with_its_status_url(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    store.error = down()

    response = post(client, form(RECIST, 1))

    issues = issues_of(response, 202)
    assert [(i["severity"], i["code"]) for i in issues] == [("information", "informational")]
    assert "queued" in issues[0]["diagnostics"]
    assert "the FHIR server could not take it now" in issues[0]["diagnostics"]
    assert "Location" not in response.headers
    (entry,) = entries(app)
    assert status_path(response) == f"/fhir/_submission/{entry.id}"
    assert (entry.state, entry.attempts) == (State.QUEUED, 1)
    assert entry.last_error == "FhirServerUnavailableError (HTTP 503)"
    # Its progress and when to ask again, in headers as on its status (R4 async.html).
    assert response.headers["X-Progress"].startswith(
        "queued; Attempts: 1, the last one failed: FhirServerUnavailableError (HTTP 503); "
        "next attempt not before"
    )
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_the_status_of_a_queued_submission_is_202_with_progress_and_retry_after(
    client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    path = accepted_while_down(client, store, form(RECIST, 1))
    clock.advance(10)

    response = client.get(path)

    issues = issues_of(response, 202)
    assert [(i["severity"], i["code"]) for i in issues] == [("information", "informational")]
    assert response.headers["X-Progress"].startswith(
        "queued; Attempts: 1, the last one failed: FhirServerUnavailableError (HTTP 503); "
        "next attempt not before 2026-11-21T22:0"
    )
    # The first delay is 30 to 60 s, of which 10 have passed.
    assert 20 <= int(response.headers["Retry-After"]) <= 50


def test_once_delivered_the_status_is_200_with_the_answer_of_the_original_request(
    app: Flask, client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    path = accepted_while_down(client, store, form(RECIST, 1))
    clock.advance(MAX_BACKOFF)

    deliver(app)

    answer = answer_of(client, path)
    response = answer["response"]
    assert response["status"] == "201 Created"
    form_id = re.fullmatch(r".*QuestionnaireResponse/([^/]+)/_history/1", response["location"])
    assert form_id is not None
    assert store.inner.read("QuestionnaireResponse", form_id[1]) is not None
    report_id = re.search(r"DiagnosticReport/([^ ]+?)[ .]", str(response["outcome"]))
    assert report_id is not None
    assert store.inner.read("DiagnosticReport", report_id[1]) is not None
    assert response["outcome"]["resourceType"] == "OperationOutcome"
    assert store.forms_written() == [f"{RECIST}-01"] * 2


def test_the_status_of_a_finished_submission_says_when_it_finished(
    app: Flask, client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    path = accepted_while_down(client, store, form(RECIST, 1))
    clock.advance(MAX_BACKOFF)
    deliver(app)

    bundle = body(client.get(path))

    assert bundle["id"] == path.rsplit("/", 1)[1]
    finished = dt.datetime.fromisoformat(bundle["meta"]["lastUpdated"])
    assert abs((finished - clock.now).total_seconds()) < 0.001


def test_a_paused_process_accepts_later_forms_without_asking_the_server(
    client: FlaskClient, store: SwitchableStore
) -> None:
    accepted_while_down(client, store, form(RECIST, 1))  # the server is back, but not known

    response = post(client, form(CHOI, 1))

    issues = issues_of(response, 202)
    assert "unavailable at the last attempt" in issues[0]["diagnostics"]
    assert store.forms_written() == [f"{RECIST}-01"]  # the failed attempt only


def test_respond_async_is_answered_202_even_when_the_server_is_up(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    response = post(client, form(RECIST, 1), Prefer="respond-async")

    issues = issues_of(response, 202)
    assert "as asked: Prefer: respond-async" in issues[0]["diagnostics"]
    path = status_path(response)
    deliver(app)
    assert answer_of(client, path)["response"]["status"] == "201 Created"
    assert store.forms_written() == [f"{RECIST}-01"]


def test_a_follow_up_sent_while_its_baseline_is_queued_waits_for_it(
    app: Flask, client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    baseline = accepted_while_down(client, store, form(RECIST, 1))

    response = post(client, form(RECIST, 2))

    assert response.status_code == 202, response.get_data(as_text=True)
    follow_up = status_path(response)
    assert client.get(follow_up).status_code == 202
    assert store.forms_written() == [f"{RECIST}-01"]
    queued = [e for e in entries(app) if e.state is State.QUEUED]
    assert len(queued) == 2
    assert delivery_of(app).outbox.blocked(queued[1].seq)
    clock.advance(MAX_BACKOFF)
    deliver(app)
    assert store.forms_written() == [f"{RECIST}-01", f"{RECIST}-01", f"{RECIST}-02"]
    assert answer_of(client, baseline)["response"]["status"] == "201 Created"
    assert answer_of(client, follow_up)["response"]["status"] == "201 Created"


def test_a_follow_up_sent_while_its_baseline_is_queued_but_due_goes_after_it(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    baseline = status_path(post(client, form(RECIST, 1), Prefer="respond-async"))

    response = post(client, form(RECIST, 2))

    assert response.status_code == 201, response.get_data(as_text=True)
    assert body(response)["resourceType"] == "DiagnosticReport"
    assert store.forms_written() == [f"{RECIST}-01", f"{RECIST}-02"]
    assert answer_of(client, baseline)["response"]["status"] == "201 Created"


def test_a_transaction_the_server_cannot_take_is_queued_and_delivered_likewise(
    app: Flask, client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    store.error = down()
    response = post(client, bundle_of(form(RECIST, 1), form(CHOI, 1)), url="/fhir")
    issues_of(response, 202)
    store.error = None
    path = status_path(response)
    assert client.get(path).status_code == 202
    clock.advance(MAX_BACKOFF)

    deliver(app)

    answer = answer_of(client, path)
    assert answer["response"]["status"] == "200 OK"
    inner = answer["resource"]
    assert (inner["resourceType"], inner["type"]) == ("Bundle", "transaction-response")
    assert [e["response"]["status"] for e in inner["entry"]] == ["201 Created"] * 2
    assert all("QuestionnaireResponse/" in e["response"]["location"] for e in inner["entry"])
    assert all("DiagnosticReport/" in str(e["response"]["outcome"]) for e in inner["entry"])
    assert store.forms_written()[-2:] == [f"{RECIST}-01", f"{CHOI}-01"]


def test_a_batch_is_kept_whole_when_the_server_cannot_take_its_forms(
    app: Flask, client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    store.error = down()
    response = post(client, bundle_of(form(RECIST, 1), form(CHOI, 1), kind="batch"), url="/fhir")
    issues_of(response, 202)
    store.error = None
    clock.advance(MAX_BACKOFF)

    deliver(app)

    inner = answer_of(client, status_path(response))["resource"]
    assert inner["type"] == "batch-response"
    assert [e["response"]["status"] for e in inner["entry"]] == ["201 Created"] * 2


def test_a_batch_of_refused_entries_only_is_answered_at_once_and_not_kept(
    app: Flask, client: FlaskClient, store: SwitchableStore
) -> None:
    store.error = down()
    invalid = form(RECIST, 1)
    invalid["status"] = "in-progress"

    response = post(client, bundle_of(invalid, kind="batch"), url="/fhir")

    assert response.status_code == 200, response.get_data(as_text=True)
    (entry,) = body(response)["entry"]
    assert entry["response"]["status"].startswith("422")
    assert entries(app) == []


def test_a_longer_retry_after_of_the_server_is_what_the_status_says(
    client: FlaskClient, store: SwitchableStore
) -> None:
    store.error = down(retry_after=3600)
    path = status_path(post(client, form(RECIST, 1)))

    response = client.get(path)

    assert response.status_code == 202
    assert response.headers["Retry-After"] == "3600"
    assert "next attempt not before 2026-11-21T23:05:30Z" in response.headers["X-Progress"]


# -- who may see a status ----------------------------------------------------------------------


@pytest.mark.parametrize("submission_id", ["0" * 32, "not-an-id", "A" * 32, "0" * 33])
def test_an_unknown_or_malformed_id_is_404(client: FlaskClient, submission_id: str) -> None:
    issues = issues_of(client.get(f"/fhir/_submission/{submission_id}"), 404)

    assert [(i["severity"], i["code"]) for i in issues] == [("error", "not-found")]


@pytest.fixture
def keyed_app(
    tmp_path: Path, store: SwitchableStore, clock: Clock, settings: Settings
) -> Iterator[Flask]:
    keyed = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        api_keys=((KEY_A, ()), (KEY_B, ("system/QuestionnaireResponse.c",))),
        delivery_backoff=BACKOFF,
        delivery_max_backoff=MAX_BACKOFF,
    )
    app = durable_app(keyed, store, clock)
    yield app
    state: WebState = app.extensions["fhirnet"]
    assert state.deliveries is not None
    state.deliveries.stop()


def test_only_the_submitter_sees_the_status_of_a_submission(
    keyed_app: Flask, store: SwitchableStore
) -> None:
    client = keyed_app.test_client()
    site_a = {"Authorization": f"Bearer {KEY_A}"}
    site_b = {"Authorization": f"Bearer {KEY_B}"}
    store.error = down()
    response = post(client, form(RECIST, 1), **site_a)
    assert response.status_code == 202, response.get_data(as_text=True)
    path = status_path(response)

    assert client.get(path, headers=site_a).status_code == 202
    assert [i["code"] for i in issues_of(client.get(path, headers=site_b), 404)] == ["not-found"]
    assert client.get(path).status_code == 401


def test_health_counts_the_submissions_in_each_state(
    app: Flask, client: FlaskClient, store: SwitchableStore, clock: Clock
) -> None:
    assert client.get("/health").get_json()["outbox"] == {"queued": 0, "delivered": 0, "failed": 0}
    accepted_while_down(client, store, form(RECIST, 1))
    accepted_while_down(client, store, form(CHOI, 1))

    queued = client.get("/health").get_json()
    clock.advance(MAX_BACKOFF)
    deliver(app)
    delivered = client.get("/health").get_json()

    assert queued["status"] == "ok"
    assert queued["outbox"] == {"queued": 2, "delivered": 0, "failed": 0}
    assert delivered["outbox"] == {"queued": 0, "delivered": 2, "failed": 0}


def test_an_outbox_that_cannot_be_opened_answers_503_not_500(
    tmp_path: Path, store: SwitchableStore, clock: Clock
) -> None:
    """The outbox path is a directory (as a full or read-only disk would fail it): submissions
    are refused with 503 and an OperationOutcome, health says unavailable, other endpoints
    still work."""
    directory = tmp_path / "not-a-file"
    directory.mkdir()
    settings = Settings(data_dir=tmp_path / "data", auth="none", outbox_path=directory)
    app = durable_app(settings, store, clock)
    client = app.test_client()

    refused = post(client, form(RECIST, 1))
    health = client.get("/health")
    metadata = client.get("/fhir/metadata")

    issues = issues_of(refused, 503)
    assert [i["code"] for i in issues] == ["transient"]
    assert "outbox" in issues[0]["diagnostics"]
    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable"
    assert metadata.status_code == 200
    assert store.sent == []


def test_one_setting_puts_the_outbox_and_the_locks_in_postgresql_or_on_this_host(
    app: Flask, client: FlaskClient, store: SwitchableStore, settings: Settings, clock: Clock
) -> None:
    accepted_while_down(client, store, form(RECIST, 1))
    delivery = delivery_of(app)
    state: WebState = app.extensions["fhirnet"]

    if settings.database_url is None:
        assert isinstance(delivery.outbox, SqliteOutbox)
        assert isinstance(state.backend.locks, FileLocks)
        assert (settings.data_dir / "outbox.sqlite3").is_file()
    else:
        assert isinstance(delivery.outbox, PostgresOutbox)
        assert isinstance(state.backend.locks, PostgresLocks)
        assert not (settings.data_dir / "outbox.sqlite3").exists()
        another_host = PostgresOutbox(settings.database_url)  # sees what this one accepted
        try:
            assert [entry.state for entry in another_host.entries()] == [State.QUEUED]
        finally:
            another_host.close()
    clock.advance(MAX_BACKOFF)
    deliver(app)
    assert [entry.state for entry in entries(app)] == [State.DELIVERED]


def test_a_database_that_cannot_be_reached_answers_503_without_its_password(
    tmp_path: Path, store: SwitchableStore, clock: Clock
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        auth="none",
        database_url="postgresql://fhirnet:s3cret@127.0.0.1:1/fhirnet",
    )
    app = durable_app(settings, store, clock)
    client = app.test_client()

    refused = post(client, form(RECIST, 1))
    health = client.get("/health")

    issues = issues_of(refused, 503)
    assert [i["code"] for i in issues] == ["transient"]
    assert "outbox" in issues[0]["diagnostics"]
    assert "s3cret" not in refused.get_data(as_text=True)
    assert health.status_code == 503
    assert "s3cret" not in health.get_data(as_text=True)
    assert store.sent == []
