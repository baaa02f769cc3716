"""FhirClient against ``responses``-mocked HTTP: status mapping, OperationOutcome parsing, headers
and timeouts, the retry policy (Retry-After, backoff, budget, never for POST), paging, and both
auth modes (static bearer, SMART Backend Services with a key made here).

Nothing sleeps: the client's ``sleep``, ``jitter`` and ``clock`` are injected.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from fhirnet.adapters.fhir_client import FHIR_JSON, FhirClient, RetryPolicy
from fhirnet.adapters.smart import ASSERTION_TYPE, SmartCredentials
from fhirnet.errors import FhirServerError, FhirServerRejectedError, FhirServerUnavailableError
from fhirnet.ports import FhirStore

BASE = "https://fhir.test/r4"
OAUTH_URL = "https://auth.test/token"  # the SMART token endpoint
FAKE_BEARER = "s3cret"
NOW = 1_800_000_000.0  # a fixed "now" for Retry-After dates and token expiry

MakeClient = Callable[..., FhirClient]


def outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def patient(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id}


def timeout_of(call: Any) -> Any:
    """The timeout a mocked request was sent with (``responses`` records the send() kwargs)."""
    return call.request.req_kwargs["timeout"]


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(str(call.request.url).partition("?")[2])


class Clock:
    """A settable clock the client reads for Retry-After dates and token expiry."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Mocked HTTP; every registered response must be used, and nothing else is reachable."""
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client asked to sleep, in order."""
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_client(sleeps: list[float], clock: Clock) -> MakeClient:
    """A client on :data:`BASE` that records sleeps instead of sleeping; jitter fixed at 0.5."""

    def make(**kwargs: Any) -> FhirClient:
        kwargs.setdefault("timeout", (2.0, 7.0))
        return FhirClient(BASE, sleep=sleeps.append, jitter=lambda: 0.5, clock=clock, **kwargs)

    return make


@pytest.fixture
def client(make_client: MakeClient) -> FhirClient:
    return make_client()


def test_the_client_implements_the_fhir_store_port(client: FhirClient) -> None:
    store: FhirStore = client
    assert store is client


# -- read, headers, timeouts ------------------------------------------------------------------


def test_read_returns_the_resource_and_sends_fhir_json_headers_and_the_timeout(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    assert client.read("Patient", "p-1") == patient("p-1")

    request = http.calls[0].request
    assert request.headers["Accept"] == FHIR_JSON
    assert "Authorization" not in request.headers
    assert timeout_of(http.calls[0]) == (2.0, 7.0)


def test_a_single_number_timeout_applies_to_connect_and_read(
    http: responses.RequestsMock, make_client: MakeClient
) -> None:
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    make_client(timeout=3.5).read("Patient", "p-1")
    assert timeout_of(http.calls[0]) == (3.5, 3.5)


def test_the_default_timeout_is_set_too(http: responses.RequestsMock) -> None:
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    FhirClient(BASE).read("Patient", "p-1")
    assert timeout_of(http.calls[0]) == (5.0, 30.0)


@pytest.mark.parametrize("status", [404, 410])
def test_read_of_a_missing_or_deleted_resource_is_none(
    http: responses.RequestsMock, client: FhirClient, status: int
) -> None:
    http.get(f"{BASE}/Patient/gone", status=status, json=outcome("not-found", "no such Patient"))
    assert client.read("Patient", "gone") is None


@pytest.mark.parametrize(
    ("resource_type", "resource_id"),
    [("Patient", "../Observation"), ("Patient", "a/b"), ("Patient", ""), ("patient", "p-1")],
)
def test_read_refuses_ids_and_types_that_are_not_fhir_syntax(
    client: FhirClient, resource_type: str, resource_id: str
) -> None:
    # No request is made (the http fixture is not active: a request would really be attempted).
    with pytest.raises(ValueError, match="not a FHIR"):
        client.read(resource_type, resource_id)


def test_read_that_answers_another_resource_type_is_a_server_error(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/Patient/p-1", json=outcome("processing", "odd"))
    with pytest.raises(FhirServerError, match="not a Patient"):
        client.read("Patient", "p-1")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"body": "<html>hello</html>", "content_type": "text/html"},
        {"body": "[]"},
        {"body": ""},
        {"status": 302, "headers": {"Location": "https://elsewhere.test/"}},
    ],
    ids=["html", "json-array", "empty", "redirect"],
)
def test_a_success_that_is_not_a_json_object_is_a_server_error_not_a_crash(
    http: responses.RequestsMock, client: FhirClient, kwargs: dict[str, Any]
) -> None:
    http.get(f"{BASE}/Patient/p-1", **kwargs)
    with pytest.raises(FhirServerError, match="without the JSON object expected") as caught:
        client.read("Patient", "p-1")
    assert type(caught.value) is FhirServerError
    assert len(http.calls) == 1  # a redirect is not followed


# -- status mapping and OperationOutcome ------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 405, 409, 412, 422])
def test_a_4xx_is_rejected_with_the_servers_operation_outcome(
    http: responses.RequestsMock, client: FhirClient, status: int
) -> None:
    body = outcome("invalid", "Observation.status: required")
    http.get(f"{BASE}/Patient/p-1", status=status, json=body)

    with pytest.raises(FhirServerRejectedError) as caught:
        client.read("Patient", "p-1")

    assert caught.value.status == status
    assert caught.value.outcome == body
    assert "error invalid: Observation.status: required" in str(caught.value)
    assert len(http.calls) == 1


@pytest.mark.parametrize("status", [500, 501])
def test_a_5xx_outside_the_retry_list_is_unavailable_at_once(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float], status: int
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=status, json=outcome("exception", "boom", "fatal"))

    with pytest.raises(FhirServerUnavailableError) as caught:
        client.read("Patient", "p-1")

    assert caught.value.status == status
    assert caught.value.outcome is not None
    assert "fatal exception: boom" in str(caught.value)
    assert sleeps == []


def test_an_error_page_that_is_no_operation_outcome_is_quoted_briefly(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    page = "<html><body>\n  <h1>Bad   request</h1>" + "x" * 1000 + "</body></html>"
    http.get(f"{BASE}/Patient/p-1", status=400, body=page, content_type="text/html")

    with pytest.raises(FhirServerRejectedError) as caught:
        client.read("Patient", "p-1")

    assert caught.value.outcome is None
    assert "<html><body> <h1>Bad request</h1>xxx" in str(caught.value)
    assert len(str(caught.value)) < 400


def test_error_messages_leave_out_the_query_which_may_identify_a_patient(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/Observation", status=400, json=outcome("not-supported", "bad param"))
    with pytest.raises(FhirServerRejectedError) as caught:
        list(client.search("Observation", {"patient.identifier": "MRN|12345"}))
    assert "12345" not in str(caught.value)
    assert f"GET {BASE}/Observation answered 400" in str(caught.value)


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_idempotent_requests_are_retried_with_exponential_backoff(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float], status: int
) -> None:
    for _ in range(3):
        http.get(f"{BASE}/Patient/p-1", status=status)
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    assert client.read("Patient", "p-1") == patient("p-1")
    # Ceilings 0.5, 1, 2 s; with jitter 0.5 each delay is three quarters of its ceiling.
    assert sleeps == [0.375, 0.75, 1.5]


def test_retries_stop_after_the_attempts_of_the_policy(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=503, json=outcome("transient", "maintenance"))

    with pytest.raises(FhirServerUnavailableError) as caught:
        client.read("Patient", "p-1")

    assert len(http.calls) == 4
    assert len(sleeps) == 3
    assert caught.value.status == 503
    assert caught.value.outcome == outcome("transient", "maintenance")


def test_backoff_is_capped(
    http: responses.RequestsMock, make_client: MakeClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=502)
    client = make_client(retry=RetryPolicy(attempts=7, backoff=1.0, max_backoff=4.0))
    with pytest.raises(FhirServerUnavailableError):
        client.read("Patient", "p-1")
    assert sleeps == [0.75, 1.5, 3.0, 3.0, 3.0, 3.0]


def test_retry_after_in_seconds_is_honoured_exactly(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=429, headers={"Retry-After": "7"})
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    assert client.read("Patient", "p-1") == patient("p-1")
    assert sleeps == [7.0]


def test_retry_after_as_an_http_date_is_counted_from_the_clock(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)
    http.get(f"{BASE}/Patient/p-1", status=503, headers={"Retry-After": when})
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    client.read("Patient", "p-1")
    assert sleeps == [12.0]


def test_retry_after_in_the_past_means_retry_now(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW - 60, UTC), usegmt=True)
    http.get(f"{BASE}/Patient/p-1", status=503, headers={"Retry-After": when})
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    client.read("Patient", "p-1")
    assert sleeps == [0.0]


def test_an_unreadable_retry_after_falls_back_to_backoff(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=503, headers={"Retry-After": "soon"})
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    client.read("Patient", "p-1")
    assert sleeps == [0.375]


def test_a_retry_after_beyond_the_cap_fails_at_once_instead_of_waiting(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=503, headers={"Retry-After": "31"})
    with pytest.raises(FhirServerUnavailableError):
        client.read("Patient", "p-1")
    assert sleeps == []


def test_the_sleep_budget_of_one_call_is_bounded(
    http: responses.RequestsMock, make_client: MakeClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=429, headers={"Retry-After": "20"})
    client = make_client(retry=RetryPolicy(attempts=10, budget=45.0))
    with pytest.raises(FhirServerUnavailableError):
        client.read("Patient", "p-1")
    assert sleeps == [20.0, 20.0]  # a third wait would pass 45 s


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectTimeout("connect"), requests.ReadTimeout("read"), requests.ConnectionError()],
    ids=["connect-timeout", "read-timeout", "connection-error"],
)
def test_timeouts_and_connection_failures_are_unavailable_after_retries(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float], failure: Exception
) -> None:
    http.get(f"{BASE}/Patient/p-1", body=failure)

    with pytest.raises(FhirServerUnavailableError, match=type(failure).__name__) as caught:
        client.read("Patient", "p-1")

    assert caught.value.status is None
    assert len(http.calls) == 4
    assert len(sleeps) == 3


def test_a_connection_failure_then_success_returns_the_resource(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", body=requests.ConnectionError("reset"))
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    assert client.read("Patient", "p-1") == patient("p-1")
    assert sleeps == [0.375]


def test_retries_can_be_turned_off(
    http: responses.RequestsMock, make_client: MakeClient, sleeps: list[float]
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=503)
    with pytest.raises(FhirServerUnavailableError):
        make_client(retry=RetryPolicy(attempts=1)).read("Patient", "p-1")
    assert len(http.calls) == 1


# -- transaction ------------------------------------------------------------------------------

TRANSACTION = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:5d1f7d1c-0c55-4a55-9f38-6cf3c0bbd1a0",
            "resource": {"resourceType": "Patient", "name": [{"family": "Müller"}]},
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=x|1"},
        }
    ],
}
TRANSACTION_RESPONSE = {
    "resourceType": "Bundle",
    "type": "transaction-response",
    "entry": [{"response": {"status": "201 Created", "location": "Patient/abc/_history/1"}}],
}


def test_a_transaction_posts_the_bundle_as_fhir_json_and_returns_the_response(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.post(BASE, json=TRANSACTION_RESPONSE)

    assert client.transaction(TRANSACTION) == TRANSACTION_RESPONSE

    request = http.calls[0].request
    assert request.headers["Content-Type"] == FHIR_JSON
    assert request.headers["Accept"] == FHIR_JSON
    assert request.headers["Prefer"] == "return=representation"
    assert timeout_of(http.calls[0]) == (2.0, 7.0)
    assert isinstance(request.body, bytes)
    assert json.loads(request.body) == TRANSACTION
    assert "Müller".encode() in request.body  # UTF-8, not \u escapes


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "headers": {"Retry-After": "1"}},
        {"status": 429},
        {"status": 504},
        {"body": requests.ReadTimeout("read")},
        {"body": requests.ConnectionError("reset")},
    ],
    ids=["503", "429", "504", "read-timeout", "connection-error"],
)
def test_a_transaction_is_never_retried(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float], failure: dict[str, Any]
) -> None:
    # The server may have committed before the answer was lost; the pipeline retries it with
    # conditional entries, not the client.
    http.post(BASE, **failure)
    with pytest.raises(FhirServerUnavailableError):
        client.transaction(TRANSACTION)
    assert len(http.calls) == 1
    assert sleeps == []


def test_a_rejected_transaction_carries_the_outcome(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    body = outcome("invalid", "Entry 0: Patient.gender: bogus")
    http.post(BASE, status=422, json=body)
    with pytest.raises(FhirServerRejectedError) as caught:
        client.transaction(TRANSACTION)
    assert caught.value.outcome == body
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "answer",
    [{"resourceType": "Bundle", "type": "batch-response"}, outcome("informational", "ok", "info")],
)
def test_a_transaction_answered_with_something_else_is_a_server_error(
    http: responses.RequestsMock, client: FhirClient, answer: dict[str, Any]
) -> None:
    http.post(BASE, json=answer)
    with pytest.raises(FhirServerError, match="not a transaction-response"):
        client.transaction(TRANSACTION)


@pytest.mark.parametrize(
    "bundle",
    [{**TRANSACTION, "type": "batch"}, {"resourceType": "Patient"}],
    ids=["batch", "not-a-bundle"],
)
def test_transaction_takes_only_transaction_bundles(
    client: FhirClient, bundle: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="transaction"):
        client.transaction(bundle)


# -- search and paging ------------------------------------------------------------------------


def page(resources: list[dict[str, Any]], next_url: str | None, **extra: Any) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
        "link": [{"relation": "self", "url": "ignored"}],
    }
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    bundle.update(extra)
    return bundle


def test_search_follows_next_links_across_pages(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    second, third = f"{BASE}/Patient?_count=2&page=2", f"{BASE}/Patient?_count=2&page=3"
    http.get(f"{BASE}/Patient", json=page([patient("a"), patient("b")], second))
    http.get(second, json=page([patient("c"), patient("d")], third))
    http.get(third, json=page([patient("e")], None))

    found = client.search("Patient", {"_count": "2", "name": "x"})

    assert [resource["id"] for resource in found] == ["a", "b", "c", "d", "e"]
    first_query = query_of(http.calls[0])
    assert first_query == {"_count": ["2"], "name": ["x"]}
    assert http.calls[1].request.url == second  # the server's link, verbatim


def test_search_repeats_a_parameter_given_several_values(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/Observation", json=page([], None))
    list(client.search("Observation", {"date": ["ge2025-01-01", "lt2026-01-01"], "code": "x"}))
    query = query_of(http.calls[0])
    assert query == {"date": ["ge2025-01-01", "lt2026-01-01"], "code": ["x"]}


def test_search_yields_matches_and_includes_but_not_outcomes(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    bundle = page([patient("a")], None)
    bundle["entry"] += [
        {"resource": {"resourceType": "Practitioner", "id": "dr"}, "search": {"mode": "include"}},
        {
            "resource": outcome("processing", "unknown param", "warning"),
            "search": {"mode": "outcome"},
        },
        {"resource": patient("no-mode")},
        {"fullUrl": "no-resource"},
    ]
    http.get(f"{BASE}/Patient", json=bundle)

    found = [
        r["id"] for r in client.search("Patient", {"_include": "Patient:general-practitioner"})
    ]
    assert found == ["a", "dr", "no-mode"]


def test_an_empty_search_yields_nothing(http: responses.RequestsMock, client: FhirClient) -> None:
    http.get(f"{BASE}/Patient", json={"resourceType": "Bundle", "type": "searchset", "total": 0})
    assert list(client.search("Patient", {})) == []


def test_a_relative_next_link_is_resolved_against_the_current_page(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/Patient", json=page([patient("a")], "Patient?page=2"))
    http.get(f"{BASE}/Patient?page=2", json=page([patient("b")], None))
    assert [r["id"] for r in client.search("Patient", {})] == ["a", "b"]


def test_a_next_link_to_another_host_is_not_followed(
    http: responses.RequestsMock, make_client: MakeClient
) -> None:
    # e.g. a server that does not know its public URL links to localhost: the bearer token must
    # not go there.
    http.get(f"{BASE}/Patient", json=page([patient("a")], "http://localhost:8090/fhir/Patient?p=2"))
    found = make_client(bearer_token=FAKE_BEARER).search("Patient", {})
    assert next(found)["id"] == "a"
    with pytest.raises(FhirServerError, match="next link leaves"):
        next(found)


def test_next_links_that_go_in_a_circle_are_a_server_error(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    second = f"{BASE}/Patient?page=2"
    http.get(f"{BASE}/Patient", json=page([patient("a")], second))
    http.get(second, json=page([patient("b")], second))
    with pytest.raises(FhirServerError, match="circle"):
        list(client.search("Patient", {}))


def test_a_page_that_is_not_a_bundle_is_a_server_error(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/Patient", json=patient("a"))
    with pytest.raises(FhirServerError, match="not a Bundle"):
        list(client.search("Patient", {}))


def test_search_pages_are_retried_like_reads(
    http: responses.RequestsMock, client: FhirClient, sleeps: list[float]
) -> None:
    second = f"{BASE}/Patient?page=2"
    http.get(f"{BASE}/Patient", json=page([patient("a")], second))
    http.get(second, status=503, headers={"Retry-After": "2"})
    http.get(second, json=page([patient("b")], None))
    assert [r["id"] for r in client.search("Patient", {})] == ["a", "b"]
    assert sleeps == [2.0]


def test_search_checks_the_resource_type_before_iterating(client: FhirClient) -> None:
    with pytest.raises(ValueError, match="not a FHIR resource type"):
        client.search("Patient/x", {})


# -- construction and static auth -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("ftp://fhir.test",), {}, "http"),
        (("fhir.test/r4",), {}, "http"),
        ((f"{BASE}?x=1",), {}, "without a query"),
        ((BASE,), {"timeout": 0}, "timeout"),
        ((BASE,), {"timeout": (1.0, -1.0)}, "timeout"),
        ((BASE,), {"bearer_token": " "}, "empty"),
    ],
)
def test_unusable_constructor_arguments_are_refused(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FhirClient(*args, **kwargs)


def test_static_and_smart_auth_are_exclusive(rsa_pem: bytes) -> None:
    smart = SmartCredentials(client_id="c", private_key_pem=rsa_pem, scope="system/*.rs")
    with pytest.raises(ValueError, match="not both"):
        FhirClient(BASE, bearer_token=FAKE_BEARER, smart=smart)


def test_a_retry_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


def test_a_static_bearer_token_is_sent_and_a_401_is_rejected_without_retry(
    http: responses.RequestsMock, make_client: MakeClient
) -> None:
    http.get(f"{BASE}/Patient/p-1", status=401, json=outcome("login", "token expired"))
    with pytest.raises(FhirServerRejectedError) as caught:
        make_client(bearer_token=FAKE_BEARER).read("Patient", "p-1")
    assert caught.value.status == 401
    assert len(http.calls) == 1
    assert http.calls[0].request.headers["Authorization"] == f"Bearer {FAKE_BEARER}"


def test_the_base_url_may_end_with_a_slash(http: responses.RequestsMock) -> None:
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    with FhirClient(BASE + "/") as client:
        assert client.read("Patient", "p-1") == patient("p-1")


class RecordingSession(requests.Session):
    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_a_session_given_to_the_client_is_used_and_left_open(http: responses.RequestsMock) -> None:
    session = RecordingSession()
    session.headers["X-Trace"] = "t-1"
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    with FhirClient(BASE, session=session) as client:
        client.read("Patient", "p-1")
    assert http.calls[0].request.headers["X-Trace"] == "t-1"
    assert session.closed == 0  # the caller owns it


def test_the_clients_own_session_is_closed_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests, "Session", RecordingSession)
    with FhirClient(BASE) as client:
        pass
    assert client._session.closed == 1  # type: ignore[attr-defined]


# -- SMART Backend Services -------------------------------------------------------------------


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_pem(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ec_pem(curve: ec.EllipticCurve) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(curve)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key, pem


@pytest.fixture
def smart(rsa_pem: bytes) -> SmartCredentials:
    return SmartCredentials(client_id="fhirnet", private_key_pem=rsa_pem, scope="system/*.rs")


def token_answer(access: str = "at-1", expires_in: int = 300) -> dict[str, Any]:
    return {"access_token": access, "token_type": "Bearer", "expires_in": expires_in}


def smart_configuration() -> dict[str, Any]:
    return {"token_endpoint": OAUTH_URL, "grant_types_supported": ["client_credentials"]}


def form(call: Any) -> dict[str, str]:
    return {key: value for key, (value,) in parse_qs(call.request.body).items()}


def test_smart_discovers_the_token_endpoint_and_sends_a_signed_assertion(
    http: responses.RequestsMock,
    make_client: MakeClient,
    smart: SmartCredentials,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    http.get(f"{BASE}/.well-known/smart-configuration", json=smart_configuration())
    http.post(OAUTH_URL, json=token_answer())
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))

    assert make_client(smart=smart).read("Patient", "p-1") == patient("p-1")

    discovery, token_call, read = http.calls
    assert discovery.request.headers["Accept"] == "application/json"
    assert "Authorization" not in discovery.request.headers
    assert timeout_of(token_call) == (2.0, 7.0)
    sent = form(token_call)
    assert sent["grant_type"] == "client_credentials"
    assert sent["scope"] == "system/*.rs"
    assert sent["client_assertion_type"] == ASSERTION_TYPE
    header = jwt.get_unverified_header(sent["client_assertion"])
    assert header["alg"] == "RS384"
    assert header["kid"] == smart.kid
    claims = jwt.decode(
        sent["client_assertion"],
        rsa_key.public_key(),
        algorithms=["RS384"],
        audience=OAUTH_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "fhirnet"
    assert NOW < claims["exp"] <= NOW + 300
    assert claims["jti"]
    assert read.request.headers["Authorization"] == "Bearer at-1"


def test_the_access_token_is_cached_until_shortly_before_it_expires(
    http: responses.RequestsMock, make_client: MakeClient, rsa_pem: bytes, clock: Clock
) -> None:
    smart = SmartCredentials(
        client_id="fhirnet", private_key_pem=rsa_pem, scope="system/*.rs", token_url=OAUTH_URL
    )
    http.post(OAUTH_URL, json=token_answer("at-1", expires_in=300))
    http.post(OAUTH_URL, json=token_answer("at-2", expires_in=300))
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    client = make_client(smart=smart)

    client.read("Patient", "p-1")
    clock.now = NOW + 239  # the token is good for 300 s less a 60 s margin
    client.read("Patient", "p-1")
    clock.now = NOW + 240
    client.read("Patient", "p-1")

    used = [
        c.request.headers.get("Authorization")
        for c in http.calls
        if "Patient" in str(c.request.url)
    ]
    assert used == ["Bearer at-1", "Bearer at-1", "Bearer at-2"]
    assertions = [form(c)["client_assertion"] for c in http.calls if c.request.url == OAUTH_URL]
    jtis = [jwt.decode(a, options={"verify_signature": False})["jti"] for a in assertions]
    assert len(set(jtis)) == 2  # a new assertion, never a replayed one


def test_a_401_gets_a_fresh_token_and_one_more_try(
    http: responses.RequestsMock, make_client: MakeClient, smart: SmartCredentials
) -> None:
    http.get(f"{BASE}/.well-known/smart-configuration", json=smart_configuration())
    http.post(OAUTH_URL, json=token_answer("revoked"))
    http.post(OAUTH_URL, json=token_answer("fresh"))
    http.post(BASE, status=401, json=outcome("login", "token revoked"))
    http.post(BASE, json=TRANSACTION_RESPONSE)

    assert make_client(smart=smart).transaction(TRANSACTION) == TRANSACTION_RESPONSE

    posts = [c.request for c in http.calls if str(c.request.url).rstrip("/") == BASE]
    assert [p.headers["Authorization"] for p in posts] == ["Bearer revoked", "Bearer fresh"]
    assert sum(c.request.url == OAUTH_URL for c in http.calls) == 2


def test_a_second_401_in_a_row_is_rejected(
    http: responses.RequestsMock, make_client: MakeClient, smart: SmartCredentials
) -> None:
    http.get(f"{BASE}/.well-known/smart-configuration", json=smart_configuration())
    http.post(OAUTH_URL, json=token_answer())
    http.get(f"{BASE}/Patient/p-1", status=401, json=outcome("login", "no"))
    with pytest.raises(FhirServerRejectedError) as caught:
        make_client(smart=smart).read("Patient", "p-1")
    assert caught.value.status == 401
    assert sum("Patient" in str(c.request.url) for c in http.calls) == 2


def test_a_refused_token_request_is_rejected_with_the_oauth_error(
    http: responses.RequestsMock, make_client: MakeClient, smart: SmartCredentials
) -> None:
    http.get(f"{BASE}/.well-known/smart-configuration", json=smart_configuration())
    http.post(
        OAUTH_URL,
        status=401,
        json={"error": "invalid_client", "error_description": "unknown key"},
    )
    with pytest.raises(FhirServerRejectedError, match="invalid_client: unknown key") as caught:
        make_client(smart=smart).read("Patient", "p-1")
    assert caught.value.outcome is None


def test_a_failing_token_endpoint_is_unavailable_and_not_retried(
    http: responses.RequestsMock, make_client: MakeClient, smart: SmartCredentials
) -> None:
    http.get(f"{BASE}/.well-known/smart-configuration", json=smart_configuration())
    http.post(OAUTH_URL, status=503)
    with pytest.raises(FhirServerUnavailableError):
        make_client(smart=smart).read("Patient", "p-1")
    assert sum(c.request.url == OAUTH_URL for c in http.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"token_type": "Bearer"},
        {"access_token": "", "token_type": "Bearer"},
        {"access_token": "x", "token_type": "mac"},
    ],
)
def test_a_token_answer_without_a_bearer_token_is_a_server_error(
    http: responses.RequestsMock, make_client: MakeClient, rsa_pem: bytes, answer: dict[str, Any]
) -> None:
    smart = SmartCredentials(
        client_id="c", private_key_pem=rsa_pem, scope="system/*.rs", token_url=OAUTH_URL
    )
    http.post(OAUTH_URL, json=answer)
    with pytest.raises(FhirServerError, match="without a bearer access_token"):
        make_client(smart=smart).read("Patient", "p-1")


def test_a_token_without_expires_in_is_kept_for_the_recommended_five_minutes(
    http: responses.RequestsMock, make_client: MakeClient, rsa_pem: bytes, clock: Clock
) -> None:
    smart = SmartCredentials(
        client_id="c", private_key_pem=rsa_pem, scope="system/*.rs", token_url=OAUTH_URL
    )
    http.post(OAUTH_URL, json={"access_token": "a", "token_type": "bearer"})
    http.post(OAUTH_URL, json={"access_token": "b", "token_type": "bearer"})
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    client = make_client(smart=smart)
    client.read("Patient", "p-1")
    clock.now = NOW + 239
    client.read("Patient", "p-1")
    clock.now = NOW + 241
    client.read("Patient", "p-1")
    assert sum(c.request.url == OAUTH_URL for c in http.calls) == 2


def test_a_short_lived_token_is_renewed_at_half_its_life(
    http: responses.RequestsMock, make_client: MakeClient, rsa_pem: bytes, clock: Clock
) -> None:
    smart = SmartCredentials(
        client_id="c", private_key_pem=rsa_pem, scope="system/*.rs", token_url=OAUTH_URL
    )
    http.post(OAUTH_URL, json=token_answer("a", expires_in=60))
    http.post(OAUTH_URL, json=token_answer("b", expires_in=60))
    http.get(f"{BASE}/Patient/p-1", json=patient("p-1"))
    client = make_client(smart=smart)
    client.read("Patient", "p-1")
    clock.now = NOW + 29
    client.read("Patient", "p-1")
    clock.now = NOW + 30
    client.read("Patient", "p-1")
    assert sum(c.request.url == OAUTH_URL for c in http.calls) == 2


@pytest.mark.parametrize(
    "configuration",
    [{}, {"token_endpoint": "not a url"}],
    ids=["missing", "not-a-url"],
)
def test_a_smart_configuration_without_a_token_endpoint_is_a_server_error(
    http: responses.RequestsMock,
    make_client: MakeClient,
    smart: SmartCredentials,
    configuration: dict[str, Any],
) -> None:
    http.get(f"{BASE}/.well-known/smart-configuration", json=configuration)
    with pytest.raises(FhirServerError, match="token_endpoint"):
        make_client(smart=smart).read("Patient", "p-1")


def test_an_es384_key_signs_with_es384(clock: Clock) -> None:
    key, pem = ec_pem(ec.SECP384R1())
    smart = SmartCredentials(client_id="c", private_key_pem=pem, scope="s", key_id="k-1")
    assertion = smart.client_assertion(audience=OAUTH_URL, now=NOW, jti="j")
    assert jwt.get_unverified_header(assertion) == {"alg": "ES384", "typ": "JWT", "kid": "k-1"}
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=["ES384"],
        audience=OAUTH_URL,
        options={"verify_exp": False},
    )
    assert claims == {"iss": "c", "sub": "c", "aud": OAUTH_URL, "exp": int(NOW) + 240, "jti": "j"}


def test_the_default_kid_is_the_rfc_7638_thumbprint(
    smart: SmartCredentials, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    canonical = f'{{"e":"{jwk["e"]}","kty":"RSA","n":"{jwk["n"]}"}}'.encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    assert smart.kid == expected


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "cannot be read"),
        (ec_pem(ec.SECP256R1())[1], "RS384.*ES384"),
    ],
    ids=["garbage", "p-256"],
)
def test_unusable_smart_keys_are_refused_at_construction(pem: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmartCredentials(client_id="c", private_key_pem=pem, scope="s")


def test_smart_credentials_do_not_show_the_key(smart: SmartCredentials) -> None:
    assert "PRIVATE" not in repr(smart)


# -- capabilities, Retry-After on the error ----------------------------------------------------


def test_capabilities_reads_the_servers_metadata(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    statement = {"resourceType": "CapabilityStatement", "status": "active"}
    http.get(f"{BASE}/metadata", json=statement)

    assert client.capabilities() == statement


def test_capabilities_that_are_not_a_capability_statement_are_a_server_error(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.get(f"{BASE}/metadata", json=patient("p-1"))

    with pytest.raises(FhirServerError, match="not a CapabilityStatement"):
        client.capabilities()


def test_an_unavailable_transaction_carries_the_servers_retry_after(
    http: responses.RequestsMock, client: FhirClient
) -> None:
    http.post(BASE, status=503, headers={"Retry-After": "12"})

    with pytest.raises(FhirServerUnavailableError) as unavailable:
        client.transaction({"resourceType": "Bundle", "type": "transaction"})

    assert unavailable.value.retry_after == 12.0
