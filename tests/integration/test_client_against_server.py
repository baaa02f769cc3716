"""FhirClient against a real FHIR R4 server process: transactions with ``urn:uuid:`` references,
conditional creates, rollback, paging, 404 and SMART Backend Services.

Written to hold on any conformant server (``FHIRNET_TEST_FHIR_URL``): ids are whatever the server
assigns, read back from ``response.location``; versionIds are opaque strings; resources are found
by identifiers unique to each test, never by id format or by what else is on the server.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.smart import SmartCredentials
from fhirnet.errors import FhirServerRejectedError
from tests.integration.conftest import RecordingSession

pytestmark = pytest.mark.integration

SYSTEM = "urn:fhirnet:integration-test"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient_entry(value: str, *, conditional: bool = False, full_url: str | None = None) -> Any:
    entry: dict[str, Any] = {
        "fullUrl": full_url or urn(),
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": SYSTEM, "value": value}],
            "name": [{"family": "Integration", "given": ["Test"]}],
        },
        "request": {"method": "POST", "url": "Patient"},
    }
    if conditional:
        entry["request"]["ifNoneExist"] = f"identifier={SYSTEM}|{value}"
    return entry


def observation_entry(subject: str, value: str) -> Any:
    return {
        "fullUrl": urn(),
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "identifier": [{"system": SYSTEM, "value": value}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "21907-1"}]},
            "subject": {"reference": subject},
            "valueQuantity": {
                "value": 42.5,
                "unit": "mm",
                "system": "http://unitsofmeasure.org",
                "code": "mm",
            },
        },
        "request": {"method": "POST", "url": "Observation"},
    }


def transaction(*entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def located(entry: Any) -> tuple[str, str]:
    """``(type, id)`` from a transaction-response entry's location, relative or absolute, with or
    without ``/_history/<version>``."""
    path = urlsplit(entry["response"]["location"]).path.split("/_history/")[0]
    resource_type, resource_id = path.rstrip("/").split("/")[-2:]
    return resource_type, resource_id


def status_code(entry: Any) -> int:
    """The code of ``response.status``, which is ``"201"`` or ``"201 Created"``."""
    return int(entry["response"]["status"].split()[0])


def ids_of(fhir: FhirClient, resource_type: str, value: str) -> list[str]:
    found = fhir.search(resource_type, {"identifier": f"{SYSTEM}|{value}"})
    return [resource["id"] for resource in found]


def test_a_transaction_creates_resources_and_resolves_urn_uuid_references(
    fhir: FhirClient, unique: str
) -> None:
    subject = urn()
    answer = fhir.transaction(
        transaction(
            patient_entry(unique, full_url=subject),
            observation_entry(subject, unique),
        )
    )

    assert answer["type"] == "transaction-response"
    patient_answer, observation_answer = answer["entry"]  # same order as the request (R4)
    assert [status_code(e) for e in answer["entry"]] == [201, 201]
    patient_type, patient_id = located(patient_answer)
    observation_type, observation_id = located(observation_answer)
    assert (patient_type, observation_type) == ("Patient", "Observation")

    observation = fhir.read("Observation", observation_id)
    assert observation is not None
    # The server rewrote the urn:uuid to the id it assigned; relative or absolute is its choice.
    assert observation["subject"]["reference"].endswith(f"Patient/{patient_id}")
    assert observation["valueQuantity"]["value"] == 42.5
    assert fhir.read("Patient", patient_id) is not None


def test_a_conditional_create_does_not_duplicate(fhir: FhirClient, unique: str) -> None:
    first = fhir.transaction(transaction(patient_entry(unique, conditional=True)))
    second = fhir.transaction(transaction(patient_entry(unique, conditional=True)))

    assert status_code(first["entry"][0]) == 201
    assert status_code(second["entry"][0]) == 200  # R4 3.1.0.8.1: a match is left as it is
    assert located(second["entry"][0]) == located(first["entry"][0])
    assert ids_of(fhir, "Patient", unique) == [located(first["entry"][0])[1]]


def test_a_transaction_that_fails_after_writing_is_rolled_back_entirely(
    fhir: FhirClient, unique: str
) -> None:
    # Make a Patient with two versions, so that the first version is stale.
    created = fhir.transaction(transaction(patient_entry(f"{unique}-existing")))
    _, existing_id = located(created["entry"][0])
    stale = fhir.read("Patient", existing_id)
    assert stale is not None
    update = {
        "resource": {**stale, "active": True},
        "request": {"method": "PUT", "url": f"Patient/{existing_id}"},
    }
    fhir.transaction(transaction(update))
    current = fhir.read("Patient", existing_id)
    assert current is not None
    assert current["meta"]["versionId"] != stale["meta"]["versionId"]

    # A new Patient (POSTs are processed before PUTs) and an update against the stale version.
    conflicting = {
        "resource": {**stale, "active": False},
        "request": {
            "method": "PUT",
            "url": f"Patient/{existing_id}",
            "ifMatch": f'W/"{stale["meta"]["versionId"]}"',
        },
    }
    with pytest.raises(FhirServerRejectedError) as caught:
        fhir.transaction(transaction(patient_entry(f"{unique}-new"), conflicting))

    outcome = caught.value.outcome
    assert isinstance(outcome, dict)
    assert outcome["resourceType"] == "OperationOutcome"
    assert ids_of(fhir, "Patient", f"{unique}-new") == []  # the POST was undone too
    after = fhir.read("Patient", existing_id)
    assert after is not None
    assert after["meta"]["versionId"] == current["meta"]["versionId"]
    assert after["active"] is True


def test_a_transaction_with_a_dangling_reference_is_refused_and_writes_nothing(
    fhir: FhirClient, unique: str
) -> None:
    nowhere = urn()  # no entry has this fullUrl
    with pytest.raises(FhirServerRejectedError) as caught:
        fhir.transaction(transaction(patient_entry(unique), observation_entry(nowhere, unique)))

    assert caught.value.status is not None
    assert 400 <= caught.value.status < 500
    assert caught.value.outcome is not None
    assert ids_of(fhir, "Patient", unique) == []
    assert ids_of(fhir, "Observation", unique) == []


def test_search_follows_paging_across_several_pages(
    fhir: FhirClient, session: RecordingSession, unique: str
) -> None:
    created = fhir.transaction(transaction(*(patient_entry(unique) for _ in range(7))))
    created_ids = {located(entry)[1] for entry in created["entry"]}
    assert len(created_ids) == 7
    session.sent.clear()

    found = list(fhir.search("Patient", {"identifier": f"{SYSTEM}|{unique}", "_count": "3"}))

    assert sorted(resource["id"] for resource in found) == sorted(created_ids)
    pages = [url for method, url in session.sent if method == "GET"]
    assert len(pages) >= 3  # _count=3 over 7 matches: servers honour _count as a page size


def test_search_that_matches_nothing_yields_nothing(fhir: FhirClient, unique: str) -> None:
    assert ids_of(fhir, "Patient", f"{unique}-nobody") == []


def test_read_of_a_resource_that_does_not_exist_is_none(fhir: FhirClient, unique: str) -> None:
    assert fhir.read("Patient", f"missing-{unique}") is None


def test_smart_backend_services_gets_a_token_once_and_uses_it(
    smart_server: tuple[str, SmartCredentials], session: RecordingSession, unique: str
) -> None:
    base_url, credentials = smart_server
    with (
        FhirClient(base_url, timeout=(5.0, 30.0)) as anonymous,
        pytest.raises(FhirServerRejectedError) as caught,
    ):
        anonymous.read("Patient", f"missing-{unique}")
    assert caught.value.status == 401

    client = FhirClient(base_url, timeout=(5.0, 30.0), smart=credentials, session=session)
    created = client.transaction(transaction(patient_entry(unique)))
    _, patient_id = located(created["entry"][0])
    assert client.read("Patient", patient_id) is not None
    assert ids_of(client, "Patient", unique) == [patient_id]

    token_requests = [url for method, url in session.sent if method == "POST" and "token" in url]
    assert len(token_requests) == 1  # discovered, then cached for every later request
    assert any(url.endswith("/.well-known/smart-configuration") for _, url in session.sent)
