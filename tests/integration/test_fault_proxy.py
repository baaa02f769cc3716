"""The fault proxy itself, exercised with fhirnet's FhirClient against the real server.

The submission scenarios trust the proxy to do exactly what a rule says — fail only the requests
chosen, hold a request past the client's timeout, hang up, forward faithfully otherwise — so each
behaviour is checked here on its own, where a failure points at the proxy and not at fhirnet.
These tests also show the client's own policy (GET retries honouring ``Retry-After``, POSTs never
retried) holding across a real network hop.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhirnet.adapters.fhir_client import FhirClient, RetryPolicy
from fhirnet.errors import FhirServerRejectedError, FhirServerUnavailableError
from tests.integration.fault_proxy import (
    TRANSACTION,
    Delay,
    Drop,
    FaultProxy,
    refuse,
    searches,
    server_error,
    unavailable,
)

pytestmark = pytest.mark.integration

SYSTEM = "urn:fhirnet:fault-proxy-test"


def patients(value: str, how_many: int = 1) -> dict[str, Any]:
    """A transaction creating ``how_many`` Patients that carry the identifier ``value``."""
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": SYSTEM, "value": value}],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
        for _ in range(how_many)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def patient_ids(fhir: FhirClient, value: str) -> list[str]:
    """Ids of the Patients with the identifier ``value``, read from the server (not the proxy)."""
    return sorted(p["id"] for p in fhir.search("Patient", {"identifier": f"{SYSTEM}|{value}"}))


def location_id(entry: dict[str, Any]) -> str:
    path = urlsplit(str(entry["response"]["location"])).path.split("/_history/")[0]
    return path.rstrip("/").split("/")[-1]


@pytest.fixture
def proxied(fault_proxy: FaultProxy) -> FhirClient:
    """A FhirClient of the proxy with a short read timeout and retries that do not sleep."""
    return FhirClient(
        fault_proxy.base_url,
        timeout=(2.0, 1.0),
        retry=RetryPolicy(attempts=3, backoff=0.0, max_backoff=0.0),
    )


def test_requests_pass_through_and_paging_links_point_back_through_the_proxy(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    created = proxied.transaction(patients(unique, 5))
    created_ids = sorted(location_id(entry) for entry in created["entry"])

    found = list(proxied.search("Patient", {"identifier": f"{SYSTEM}|{unique}", "_count": "2"}))

    assert sorted(p["id"] for p in found) == created_ids == patient_ids(fhir, unique)
    # The client refuses next links that leave its base URL, so three pages through the proxy
    # mean the proxy rewrote the server's links to itself.
    assert len(fault_proxy.requests(searches("Patient"))) >= 3
    assert all(seen.action == "forwarded" for seen in fault_proxy.seen)
    assert all(e["response"]["location"].startswith(fault_proxy.base_url) for e in created["entry"])


def test_a_503_with_retry_after_on_a_read_is_retried_after_the_delay_the_server_asked(
    fault_proxy: FaultProxy, fhir: FhirClient, unique: str
) -> None:
    created = fhir.transaction(patients(unique))
    patient_id = location_id(created["entry"][0])
    slept: list[float] = []
    client = FhirClient(fault_proxy.base_url, timeout=(2.0, 5.0), sleep=slept.append)
    rule = fault_proxy.inject(
        unavailable(retry_after=2),
        when=lambda request: request.method == "GET" and request.relative.startswith("Patient/"),
        times=1,
    )

    patient = client.read("Patient", patient_id)

    assert patient is not None
    assert patient["id"] == patient_id
    assert slept == [2.0]  # exactly the Retry-After, not the backoff
    assert rule.applied == 1
    assert [seen.action for seen in fault_proxy.seen] == ["answered 503", "forwarded"]


def test_a_500_on_the_transaction_is_not_retried_and_writes_nothing(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    fault_proxy.inject(server_error(500), when=TRANSACTION)

    with pytest.raises(FhirServerUnavailableError) as caught:
        proxied.transaction(patients(unique))

    assert caught.value.status == 500
    assert len(fault_proxy.requests(TRANSACTION)) == 1  # a POST is never retried by the client
    assert patient_ids(fhir, unique) == []


def test_a_refusal_reaches_the_client_with_its_operation_outcome(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    fault_proxy.inject(refuse(422, "Injected: business rule R-17"), when=TRANSACTION)

    with pytest.raises(FhirServerRejectedError) as caught:
        proxied.transaction(patients(unique))

    assert caught.value.status == 422
    assert isinstance(caught.value.outcome, dict)
    assert caught.value.outcome["issue"][0]["diagnostics"] == "Injected: business rule R-17"
    assert "business rule R-17" in str(caught.value)
    assert patient_ids(fhir, unique) == []


def test_only_the_requests_a_rule_chooses_fail(
    fault_proxy: FaultProxy, proxied: FhirClient, unique: str
) -> None:
    fault_proxy.inject(server_error(500), when=TRANSACTION)

    assert list(proxied.search("Patient", {"identifier": f"{SYSTEM}|{unique}"})) == []
    with pytest.raises(FhirServerUnavailableError):
        proxied.transaction(patients(unique))
    assert [seen.action for seen in fault_proxy.seen] == ["forwarded", "answered 500"]


def test_a_rule_applies_only_as_often_as_asked_and_pass_through_removes_every_rule(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    fault_proxy.inject(server_error(500), when=TRANSACTION, times=1)
    with pytest.raises(FhirServerUnavailableError):
        proxied.transaction(patients(f"{unique}-1"))
    proxied.transaction(patients(f"{unique}-2"))

    fault_proxy.inject(server_error(502), when=TRANSACTION)
    fault_proxy.pass_through()
    proxied.transaction(patients(f"{unique}-3"))

    assert patient_ids(fhir, f"{unique}-1") == []
    assert len(patient_ids(fhir, f"{unique}-2")) == 1
    assert len(patient_ids(fhir, f"{unique}-3")) == 1


def test_a_delay_beyond_the_client_timeout_times_out_and_nothing_reaches_the_server(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    fault_proxy.inject(Delay(3.0), when=TRANSACTION)

    started = time.monotonic()
    with pytest.raises(FhirServerUnavailableError, match="Timeout"):
        proxied.transaction(patients(unique))

    assert time.monotonic() - started < 2.5  # the client's 1 s read timeout, not the 3 s delay
    assert fault_proxy.wait_idle(10.0)
    assert patient_ids(fhir, unique) == []


def test_a_delayed_and_forwarded_transaction_commits_after_the_client_gave_up(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    fault_proxy.inject(Delay(1.5, forward=True), when=TRANSACTION)

    with pytest.raises(FhirServerUnavailableError):
        proxied.transaction(patients(unique))

    assert fault_proxy.wait_idle(10.0)
    assert len(patient_ids(fhir, unique)) == 1  # the case fhirnet's idempotent writes exist for


def test_an_answer_replaced_after_forwarding_hides_a_commit_from_the_client(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str
) -> None:
    fault_proxy.inject(replace(server_error(504), forward=True), when=TRANSACTION)

    with pytest.raises(FhirServerUnavailableError) as caught:
        proxied.transaction(patients(unique))

    assert caught.value.status == 504
    assert len(patient_ids(fhir, unique)) == 1
    assert [seen.action for seen in fault_proxy.seen] == ["forwarded, then answered 504"]


@pytest.mark.parametrize("forward", [False, True], ids=["before-the-server", "after-the-server"])
def test_a_dropped_connection_is_a_connection_failure_for_the_client(
    fault_proxy: FaultProxy, proxied: FhirClient, fhir: FhirClient, unique: str, forward: bool
) -> None:
    fault_proxy.inject(Drop(forward=forward), when=TRANSACTION)

    with pytest.raises(FhirServerUnavailableError, match="ConnectionError"):
        proxied.transaction(patients(unique))

    assert fault_proxy.wait_idle(10.0)
    assert len(patient_ids(fhir, unique)) == (1 if forward else 0)


def test_an_unreachable_upstream_is_answered_502_by_the_proxy(unique: str) -> None:
    with FaultProxy("http://127.0.0.1:9/fhir") as proxy:  # discard port: nobody listens
        client = FhirClient(proxy.base_url, timeout=(2.0, 5.0), retry=RetryPolicy(attempts=1))
        with pytest.raises(FhirServerUnavailableError) as caught:
            client.read("Patient", unique)
    assert caught.value.status == 502
    assert "fault proxy: upstream" in str(caught.value)


def test_closing_the_proxy_while_it_holds_a_request_returns_promptly(
    fhir_base_url: str, unique: str
) -> None:
    proxy = FaultProxy(fhir_base_url).start()
    proxy.inject(Delay(60.0))
    client = FhirClient(proxy.base_url, timeout=(2.0, 30.0), retry=RetryPolicy(attempts=1))
    failures: list[BaseException] = []

    def read() -> None:
        try:
            client.read("Patient", unique)
        except FhirServerUnavailableError as error:
            failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 5.0
    while not proxy.seen and time.monotonic() < deadline:
        time.sleep(0.01)

    started = time.monotonic()
    proxy.close()
    reader.join(10.0)

    assert time.monotonic() - started < 3.0
    assert not reader.is_alive()
    assert len(failures) == 1  # the held client saw the connection end, not an answer
