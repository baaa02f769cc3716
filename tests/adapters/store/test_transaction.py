"""Transaction and batch Bundles in the embedded store: the response, urn:uuid rewriting,
atomicity, conditional create/update/delete, versions, validation of entries."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.errors import FhirServerRejectedError
from fhirnet.ports import Json
from tests.adapters.store import (
    SYSTEM,
    Clock,
    Ids,
    batch,
    delete,
    get,
    identifier,
    located,
    observation,
    post,
    put,
    status,
    statuses,
    transaction,
    urn,
)


@pytest.fixture
def store() -> Iterator[EmbeddedStore]:
    with EmbeddedStore.in_memory(clock=Clock(), new_id=Ids()) as store:
        yield store


def rejected(store: EmbeddedStore, bundle: Json) -> FhirServerRejectedError:
    with pytest.raises(FhirServerRejectedError) as caught:
        store.transaction(bundle)
    return caught.value


def count(store: EmbeddedStore, resource_type: str, **params: str) -> int:
    return store.search_page(resource_type, params).total


# -- responses -------------------------------------------------------------------------------


def test_a_create_answers_201_with_location_etag_last_modified_and_the_resource(
    store: EmbeddedStore,
) -> None:
    answer = store.transaction(transaction(post(observation())))

    assert answer["resourceType"] == "Bundle"
    assert answer["type"] == "transaction-response"
    (entry,) = answer["entry"]
    assert entry["response"] == {
        "status": "201 Created",
        "location": "Observation/id-1/_history/1",
        "etag": 'W/"1"',
        # The clock reads 11:30:00+02:00; the store keeps UTC.
        "lastModified": "2025-01-13T09:30:00.000000Z",
    }
    assert entry["resource"]["id"] == "id-1"
    assert entry["resource"]["meta"] == {
        "versionId": "1",
        "lastUpdated": "2025-01-13T09:30:00.000000Z",
    }
    assert store.read("Observation", "id-1") == entry["resource"]


def test_server_assigned_ids_are_uuids_by_default() -> None:
    with EmbeddedStore.in_memory() as store:
        answer = store.transaction(transaction(post(observation()), post(observation())))
    ids = [located(entry)[1] for entry in answer["entry"]]
    assert len(set(ids)) == 2
    assert all(len(i) == 36 and i.count("-") == 4 for i in ids)


def test_a_client_id_on_create_is_ignored(store: EmbeddedStore) -> None:
    answer = store.transaction(transaction(post(observation(id="mine"))))
    assert located(answer["entry"][0])[1] == "id-1"
    assert store.read("Observation", "mine") is None


def test_client_meta_is_kept_but_version_and_last_updated_are_the_servers(
    store: EmbeddedStore,
) -> None:
    profile = "http://example.org/StructureDefinition/x"
    meta = {"profile": [profile], "versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z"}
    answer = store.transaction(transaction(post(observation(meta=meta))))
    stored = answer["entry"][0]["resource"]["meta"]
    assert stored["profile"] == [profile]
    assert (stored["versionId"], stored["lastUpdated"]) == ("1", "2025-01-13T09:30:00.000000Z")


def test_an_empty_transaction_answers_an_empty_response(store: EmbeddedStore) -> None:
    assert store.transaction(transaction()) == {
        "resourceType": "Bundle",
        "type": "transaction-response",
    }


def test_only_transaction_bundles_are_taken(store: EmbeddedStore) -> None:
    with pytest.raises(ValueError, match="transaction"):
        store.transaction({"resourceType": "Bundle", "type": "batch"})
    with pytest.raises(ValueError, match="batch"):
        store.batch(transaction())


# -- urn:uuid references ---------------------------------------------------------------------


def test_urn_uuid_references_are_rewritten_everywhere_in_every_resource(
    store: EmbeddedStore,
) -> None:
    obs, report, questionnaire_response, body_site = urn(), urn(), urn(), urn()
    extension_url = "http://example.org/extension/lesion"
    bundle = transaction(
        post(
            {
                "resourceType": "Provenance",
                "target": [{"reference": report}],
                "entity": [{"role": "source", "what": {"reference": questionnaire_response}}],
                "recorded": "2025-01-13T10:00:00Z",
                "agent": [{"who": {"display": "fhirnet"}}],
            }
        ),
        post(
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "code": {"text": "response assessment"},
                "result": [{"reference": obs}],
                "extension": [{"url": extension_url, "valueReference": {"reference": body_site}}],
            },
            full_url=report,
        ),
        post(observation(derivedFrom=[{"reference": questionnaire_response}]), full_url=obs),
        post(
            {"resourceType": "QuestionnaireResponse", "status": "completed"},
            full_url=questionnaire_response,
        ),
        post(
            {"resourceType": "BodyStructure", "patient": {"reference": "Patient/p1"}},
            full_url=body_site,
        ),
    )

    answer = store.transaction(bundle)

    ids = [located(entry)[:2] for entry in answer["entry"]]
    provenance, report_id, obs_id, qr_id, body_id = (f"{t}/{i}" for t, i in ids)
    stored = store.read(*provenance.split("/"))
    assert stored is not None
    assert stored["target"] == [{"reference": report_id}]
    assert stored["entity"][0]["what"] == {"reference": qr_id}
    stored_report = store.read(*report_id.split("/"))
    assert stored_report is not None
    assert stored_report["result"] == [{"reference": obs_id}]
    assert stored_report["extension"][0]["valueReference"] == {"reference": body_id}
    stored_obs = store.read(*obs_id.split("/"))
    assert stored_obs is not None
    assert stored_obs["derivedFrom"] == [{"reference": qr_id}]
    assert stored_obs["subject"] == {"reference": "Patient/p1"}  # not a fullUrl: unchanged


def test_identifier_values_equal_to_a_full_url_are_not_rewritten(store: EmbeddedStore) -> None:
    # A urn:uuid as business identifier is a common idempotency key; it must survive.
    full_url = urn()
    resource = observation(identifier=[{"system": "urn:ietf:rfc:3986", "value": full_url}])
    answer = store.transaction(transaction(post(resource, full_url=full_url)))
    assert answer["entry"][0]["resource"]["identifier"][0]["value"] == full_url


def test_a_reference_to_a_urn_uuid_no_entry_has_refuses_the_transaction(
    store: EmbeddedStore,
) -> None:
    error = rejected(
        store,
        transaction(
            post(observation(identifier=identifier("a"))),
            post(observation(subject={"reference": urn()})),
        ),
    )
    assert error.status == 400
    assert isinstance(error.outcome, dict)
    assert error.outcome["issue"][0]["code"] == "not-found"
    assert error.outcome["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert count(store, "Observation") == 0


def test_a_conditional_reference_is_resolved_to_its_single_match(store: EmbeddedStore) -> None:
    store.transaction(
        transaction(post({"resourceType": "Patient", "identifier": identifier("mrn")}))
    )
    answer = store.transaction(
        transaction(post(observation(subject={"reference": f"Patient?identifier={SYSTEM}|mrn"})))
    )
    assert answer["entry"][0]["resource"]["subject"] == {"reference": "Patient/id-1"}


@pytest.mark.parametrize("patients", [0, 2], ids=["no-match", "two-matches"])
def test_a_conditional_reference_without_a_single_match_is_412(
    store: EmbeddedStore, patients: int
) -> None:
    for _ in range(patients):
        store.transaction(
            transaction(post({"resourceType": "Patient", "identifier": identifier("mrn")}))
        )
    error = rejected(
        store,
        transaction(post(observation(subject={"reference": f"Patient?identifier={SYSTEM}|mrn"}))),
    )
    assert error.status == 412


# -- atomicity -------------------------------------------------------------------------------


def test_a_bad_entry_writes_nothing_even_after_other_entries_were_processed(
    store: EmbeddedStore,
) -> None:
    existing = store.transaction(transaction(post(observation(identifier=identifier("old")))))
    _, old_id, _ = located(existing["entry"][0])
    bundle = transaction(
        delete(f"Observation/{old_id}"),  # processed first
        post(observation(identifier=identifier("new"))),  # processed second
        put("Observation/other", observation(id="other")),  # processed third
        put("Observation/broken", observation(id="not-the-url-id")),  # fails
    )

    error = rejected(store, bundle)

    assert error.status == 400
    assert "Bundle.entry[3]" in str(error)
    assert store.read("Observation", old_id) is not None  # the DELETE was undone
    assert count(store, "Observation") == 1
    assert store.read("Observation", "other") is None


def test_the_rejection_names_the_entry_but_not_its_criteria(store: EmbeddedStore) -> None:
    store.transaction(transaction(post(observation(identifier=identifier("twin")))))
    store.transaction(transaction(post(observation(identifier=identifier("twin")))))
    error = rejected(
        store,
        transaction(
            post(observation(), if_none_exist=f"identifier={SYSTEM}|twin"),
        ),
    )
    assert error.status == 412
    assert "Bundle.entry[0] (POST Observation (conditional))" in str(error)
    assert "twin" not in str(error)  # criteria may hold patient identifiers; logs must not


# -- conditional create ----------------------------------------------------------------------


def test_conditional_create_with_no_match_creates(store: EmbeddedStore) -> None:
    answer = store.transaction(
        transaction(
            post(observation(identifier=identifier("a")), if_none_exist=f"identifier={SYSTEM}|a")
        )
    )
    assert statuses(answer) == [201]


def test_conditional_create_with_one_match_answers_the_existing_resource_with_200(
    store: EmbeddedStore,
) -> None:
    entry = post(observation(identifier=identifier("a")), if_none_exist=f"identifier={SYSTEM}|a")
    first = store.transaction(transaction(entry))
    second = store.transaction(transaction(entry))

    assert statuses(second) == [200]
    assert located(second["entry"][0]) == located(first["entry"][0])
    assert second["entry"][0]["resource"] == first["entry"][0]["resource"]
    assert count(store, "Observation") == 1


def test_conditional_create_with_several_matches_is_412(store: EmbeddedStore) -> None:
    for _ in range(2):
        store.transaction(transaction(post(observation(identifier=identifier("a")))))
    entry = post(observation(identifier=identifier("a")), if_none_exist=f"identifier={SYSTEM}|a")
    assert rejected(store, transaction(entry)).status == 412
    assert count(store, "Observation") == 2


def test_a_matched_conditional_create_resolves_its_full_url_to_the_existing_resource(
    store: EmbeddedStore,
) -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "identifier": identifier("q"),
    }
    first = store.transaction(transaction(post(qr, if_none_exist=f"identifier={SYSTEM}|q")))
    _, qr_id, _ = located(first["entry"][0])
    full_url = urn()
    answer = store.transaction(
        transaction(
            post(qr, full_url=full_url, if_none_exist=f"identifier={SYSTEM}|q"),
            post(observation(derivedFrom=[{"reference": full_url}])),
        )
    )
    assert statuses(answer) == [200, 201]
    assert answer["entry"][1]["resource"]["derivedFrom"] == [
        {"reference": f"QuestionnaireResponse/{qr_id}"}
    ]


@pytest.mark.parametrize(
    "if_none_exist",
    [f"Observation?identifier={SYSTEM}|a", f"?identifier={SYSTEM}|a"],
    ids=["with-type", "with-question-mark"],
)
def test_if_none_exist_tolerates_a_leading_type_or_question_mark(
    store: EmbeddedStore, if_none_exist: str
) -> None:
    store.transaction(transaction(post(observation(identifier=identifier("a")))))
    answer = store.transaction(transaction(post(observation(), if_none_exist=if_none_exist)))
    assert statuses(answer) == [200]


@pytest.mark.parametrize(
    ("if_none_exist", "code"),
    [
        ("", "invalid"),  # would match everything
        ("identifier=", "invalid"),  # empty values are ignored, so the same
        ("foo=bar", "not-supported"),
        ("_count=1", "not-supported"),  # result parameters are not criteria
        ("Patient?identifier=x", "value"),  # another type
    ],
    ids=["empty", "empty-value", "unknown-parameter", "result-parameter", "other-type"],
)
def test_unusable_if_none_exist_criteria_are_400(
    store: EmbeddedStore, if_none_exist: str, code: str
) -> None:
    error = rejected(store, transaction(post(observation(), if_none_exist=if_none_exist)))
    assert error.status == 400
    assert isinstance(error.outcome, dict)
    assert error.outcome["issue"][0]["code"] == code


# -- updates ---------------------------------------------------------------------------------


def test_conditional_update_with_no_match_creates(store: EmbeddedStore) -> None:
    url = f"Observation?identifier={SYSTEM}|a"
    answer = store.transaction(transaction(put(url, observation(identifier=identifier("a")))))
    assert statuses(answer) == [201]
    assert located(answer["entry"][0])[1:] == ("id-1", "1")


def test_conditional_update_with_no_match_and_a_client_id_creates_with_that_id(
    store: EmbeddedStore,
) -> None:
    url = f"Observation?identifier={SYSTEM}|a"
    resource = observation(id="chosen", identifier=identifier("a"))
    answer = store.transaction(transaction(put(url, resource)))
    assert located(answer["entry"][0])[:2] == ("Observation", "chosen")


def test_conditional_update_with_one_match_makes_a_new_version(store: EmbeddedStore) -> None:
    url = f"Observation?identifier={SYSTEM}|a"
    store.transaction(transaction(put(url, observation(identifier=identifier("a")))))
    answer = store.transaction(
        transaction(put(url, observation(identifier=identifier("a"), status="amended")))
    )
    assert statuses(answer) == [200]
    assert located(answer["entry"][0])[1:] == ("id-1", "2")
    current = store.read("Observation", "id-1")
    assert current is not None
    assert current["status"] == "amended"


def test_conditional_update_with_several_matches_is_412(store: EmbeddedStore) -> None:
    for _ in range(2):
        store.transaction(transaction(post(observation(identifier=identifier("a")))))
    url = f"Observation?identifier={SYSTEM}|a"
    assert rejected(store, transaction(put(url, observation()))).status == 412


def test_conditional_update_naming_another_id_than_its_match_is_400(store: EmbeddedStore) -> None:
    url = f"Observation?identifier={SYSTEM}|a"
    store.transaction(transaction(put(url, observation(identifier=identifier("a")))))
    assert rejected(store, transaction(put(url, observation(id="other")))).status == 400


def test_an_update_that_changes_nothing_makes_no_new_version(store: EmbeddedStore) -> None:
    url = f"Observation?identifier={SYSTEM}|a"
    first = store.transaction(transaction(put(url, observation(identifier=identifier("a")))))
    # Server-managed meta does not count as content.
    stored = first["entry"][0]["resource"]
    again = store.transaction(transaction(put(url, observation(identifier=identifier("a")))))
    echoed = store.transaction(transaction(put("Observation/id-1", stored)))

    for answer in (again, echoed):
        assert statuses(answer) == [200]
        assert answer["entry"][0]["resource"] == stored
        assert answer["entry"][0]["response"]["etag"] == 'W/"1"'
    assert store.vread("Observation", "id-1", "2") is None


def test_update_as_create_takes_the_clients_id(store: EmbeddedStore) -> None:
    answer = store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    assert statuses(answer) == [201]
    assert located(answer["entry"][0]) == ("Observation", "abc", "1")


def test_if_match_on_the_current_version_updates(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    answer = store.transaction(
        transaction(
            put("Observation/abc", observation(id="abc", status="amended"), if_match='W/"1"')
        )
    )
    assert located(answer["entry"][0])[2] == "2"


@pytest.mark.parametrize("if_match", ['W/"2"', '"7"'], ids=["stale-weak", "stale-strong"])
def test_if_match_on_another_version_is_412_and_changes_nothing(
    store: EmbeddedStore, if_match: str
) -> None:
    store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    store.transaction(transaction(put("Observation/abc", observation(id="abc", status="amended"))))
    store.transaction(transaction(put("Observation/abc", observation(id="abc", status="final"))))
    error = rejected(
        store,
        transaction(
            put("Observation/abc", observation(id="abc", status="cancelled"), if_match=if_match)
        ),
    )
    assert error.status == 412
    current = store.read("Observation", "abc")
    assert current is not None
    assert (current["status"], current["meta"]["versionId"]) == ("final", "3")


def test_if_match_on_a_resource_that_does_not_exist_is_412(store: EmbeddedStore) -> None:
    error = rejected(
        store, transaction(put("Observation/abc", observation(id="abc"), if_match='W/"1"'))
    )
    assert error.status == 412


# -- deletes and versions --------------------------------------------------------------------


def test_a_deleted_resource_reads_as_none_and_keeps_its_history(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    answer = store.transaction(transaction(delete("Observation/abc")))

    assert statuses(answer) == [204]
    assert store.read("Observation", "abc") is None
    assert store.vread("Observation", "abc", "1") is not None
    assert store.vread("Observation", "abc", "2") is None  # the deletion has no content
    assert count(store, "Observation") == 0


def test_deleting_what_does_not_exist_succeeds(store: EmbeddedStore) -> None:
    assert statuses(store.transaction(transaction(delete("Observation/nothing")))) == [204]


def test_a_put_recreates_a_deleted_resource_with_the_next_version(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    store.transaction(transaction(delete("Observation/abc")))
    answer = store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    assert statuses(answer) == [201]
    assert located(answer["entry"][0])[2] == "3"


def test_conditional_delete_deletes_its_single_match(store: EmbeddedStore) -> None:
    store.transaction(transaction(post(observation(identifier=identifier("a")))))
    store.transaction(transaction(delete(f"Observation?identifier={SYSTEM}|a")))
    assert count(store, "Observation") == 0


def test_conditional_delete_with_several_matches_is_412(store: EmbeddedStore) -> None:
    for _ in range(2):
        store.transaction(transaction(post(observation(identifier=identifier("a")))))
    assert rejected(store, transaction(delete(f"Observation?identifier={SYSTEM}|a"))).status == 412


def test_every_version_is_kept_with_increasing_version_ids_and_times(
    store: EmbeddedStore,
) -> None:
    for state in ("preliminary", "final", "amended"):
        store.transaction(transaction(put("Observation/abc", observation(id="abc", status=state))))

    versions = [store.vread("Observation", "abc", str(v)) for v in (1, 2, 3)]

    assert [v["status"] for v in versions if v] == ["preliminary", "final", "amended"]
    assert [v["meta"]["versionId"] for v in versions if v] == ["1", "2", "3"]
    times = [v["meta"]["lastUpdated"] for v in versions if v]
    assert times == sorted(times)
    assert len(set(times)) == 3
    assert store.read("Observation", "abc") == versions[2]


def test_deletes_run_before_creates_and_updates_before_reads(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/gone", observation(id="gone"))))
    answer = store.transaction(
        transaction(
            get("Observation/abc"),  # listed first, processed last: sees the PUT
            put("Observation/abc", observation(id="abc")),
            delete("Observation/gone"),
        )
    )
    assert statuses(answer) == [200, 201, 204]
    assert answer["entry"][0]["resource"]["id"] == "abc"  # response order is the request order


def test_get_entries_read_and_vread(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    store.transaction(transaction(put("Observation/abc", observation(id="abc", status="amended"))))
    answer = store.transaction(
        transaction(get("Observation/abc"), get("Observation/abc/_history/1"))
    )
    assert [e["resource"]["meta"]["versionId"] for e in answer["entry"]] == ["2", "1"]


def test_a_get_of_a_missing_resource_fails_the_transaction(store: EmbeddedStore) -> None:
    error = rejected(store, transaction(post(observation()), get("Observation/nothing")))
    assert error.status == 404
    assert count(store, "Observation") == 0


# -- entry validation ------------------------------------------------------------------------

VALID = observation()


@pytest.mark.parametrize(
    ("entry", "expected_status", "code"),
    [
        ({"resource": VALID}, 400, "structure"),  # no request
        ({"resource": VALID, "request": {"method": "POST"}}, 400, "required"),
        ({"resource": VALID, "request": {"method": "FETCH", "url": "Observation"}}, 400, "value"),
        (
            {"resource": VALID, "request": {"method": "PATCH", "url": "Observation/a"}},
            405,
            "not-supported",
        ),
        (
            {"resource": VALID, "request": {"method": "POST", "url": "Observations"}},
            400,
            "not-supported",
        ),
        (
            {"resource": VALID, "request": {"method": "POST", "url": "Observation/a"}},
            400,
            "value",
        ),
        (
            {"resource": VALID, "request": {"method": "POST", "url": "http://x/fhir/Observation"}},
            400,
            "value",
        ),
        ({"request": {"method": "POST", "url": "Observation"}}, 400, "required"),
        (
            {
                "resource": {**VALID, "resourceType": "Patient"},
                "request": {"method": "POST", "url": "Observation"},
            },
            400,
            "invalid",
        ),
        (
            {"resource": {"status": "final"}, "request": {"method": "POST", "url": "Observation"}},
            400,
            "invalid",
        ),
        (put("Observation/a b", {**VALID, "id": "a b"}), 400, "value"),
        (put("Observation/a", VALID), 400, "invalid"),  # PUT without id
        (put(f"Observation/{'x' * 65}", {**VALID, "id": "x" * 65}), 400, "value"),
        (put("Observation?identifier=a", {**VALID, "id": "a/b"}), 400, "value"),
        (put("Observation", {**VALID, "id": "a"}), 400, "value"),  # neither id nor criteria
        (
            {
                "resource": VALID,
                "request": {"method": "PUT", "url": "Observation/a", "ifMatch": "1"},
            },
            400,
            "invalid",
        ),
        (
            {
                "resource": {**VALID, "id": "a"},
                "request": {"method": "PUT", "url": "Observation/a", "ifNoneMatch": "*"},
            },
            400,
            "not-supported",
        ),
        (
            {"resource": VALID, "request": {"method": "DELETE", "url": "Observation/a"}},
            400,
            "invalid",
        ),
        (get("Observation?status=final"), 400, "not-supported"),  # no searches in GET entries
        ({**post(VALID), "fullUrl": "urn:uuid:not-a-uuid"}, 400, "value"),
        (post({**VALID, "valueQuantity": {"value": float("nan")}}), 400, "structure"),
        (post({**VALID, "note": [{"text": "\ud800"}]}), 400, "structure"),  # lone surrogate
        (post({**VALID, "meta": "x"}), 400, "structure"),
    ],
    ids=[
        "no-request",
        "no-url",
        "unknown-method",
        "patch",
        "unknown-type",
        "post-with-id",
        "absolute-url",
        "post-without-resource",
        "type-mismatch",
        "no-resource-type",
        "invalid-id",
        "put-without-id",
        "id-too-long",
        "invalid-id-in-conditional-update",
        "put-to-type",
        "malformed-if-match",
        "if-none-match",
        "delete-with-resource",
        "get-search",
        "bad-urn-uuid",
        "nan",
        "lone-surrogate",
        "meta-not-an-object",
    ],
)
def test_malformed_entries_are_refused_with_an_outcome_naming_them(
    store: EmbeddedStore, entry: Json, expected_status: int, code: str
) -> None:
    error = rejected(store, transaction(post(observation()), entry))

    assert error.status == expected_status
    assert isinstance(error.outcome, dict)
    (issue,) = error.outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", code)
    assert issue["expression"] == ["Bundle.entry[1]"]
    assert count(store, "Observation") == 0


def test_two_entries_with_the_same_full_url_are_refused(store: EmbeddedStore) -> None:
    full_url = urn()
    error = rejected(
        store,
        transaction(post(observation(), full_url=full_url), post(observation(), full_url=full_url)),
    )
    assert error.status == 400
    assert "repeats the fullUrl" in str(error)


def test_two_entries_changing_one_resource_are_refused(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/abc", observation(id="abc"))))
    error = rejected(
        store,
        transaction(delete("Observation/abc"), put("Observation/abc", observation(id="abc"))),
    )
    assert error.status == 400
    assert "change the same resource" in str(error)


@pytest.mark.parametrize("entries", [{"not": "a list"}, "x"], ids=["object", "string"])
def test_a_bundle_whose_entry_is_not_a_list_is_refused(store: EmbeddedStore, entries: Any) -> None:
    error = rejected(store, {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert error.status == 400


# -- idempotent retries ----------------------------------------------------------------------


def assessment(patient: str, key: str) -> Json:
    """The shape of what the service writes: QuestionnaireResponse, Observations, the
    DiagnosticReport and BodyStructure, all conditional on identifiers, linked by urn:uuid."""
    qr, site, obs1, obs2, report = urn(), urn(), urn(), urn(), urn()
    subject = {"reference": f"Patient/{patient}"}

    def conditional(resource: Json, full_url: str, value: str) -> Json:
        resource = {**resource, "identifier": identifier(value)}
        return post(resource, full_url=full_url, if_none_exist=f"identifier={SYSTEM}|{value}")

    return transaction(
        conditional(
            {"resourceType": "QuestionnaireResponse", "status": "completed", "subject": subject},
            qr,
            f"{key}-qr",
        ),
        conditional({"resourceType": "BodyStructure", "patient": subject}, site, f"{key}-site"),
        conditional(
            observation(
                subject=subject, derivedFrom=[{"reference": qr}], focus=[{"reference": site}]
            ),
            obs1,
            f"{key}-sum",
        ),
        conditional(
            observation(subject=subject, hasMember=[{"reference": obs1}]), obs2, f"{key}-overall"
        ),
        conditional(
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "code": {"text": "RECIST 1.1"},
                "subject": subject,
                "result": [{"reference": obs1}, {"reference": obs2}],
            },
            report,
            f"{key}-report",
        ),
    )


def test_retrying_a_whole_assessment_writes_nothing_new_and_answers_the_same_ids(
    store: EmbeddedStore,
) -> None:
    first = store.transaction(assessment("p1", "k"))
    retry = store.transaction(assessment("p1", "k"))  # new urn:uuids, as a rebuilt Bundle has

    assert statuses(first) == [201] * 5
    assert statuses(retry) == [200] * 5
    assert [located(e) for e in retry["entry"]] == [located(e) for e in first["entry"]]
    for resource_type in (
        "QuestionnaireResponse",
        "BodyStructure",
        "Observation",
        "DiagnosticReport",
    ):
        expected = 2 if resource_type == "Observation" else 1
        assert count(store, resource_type) == expected
    report = store.read("DiagnosticReport", located(first["entry"][4])[1])
    assert report is not None
    obs_ids = {f"Observation/{located(e)[1]}" for e in first["entry"][2:4]}
    assert {r["reference"] for r in report["result"]} == obs_ids


# -- batch -----------------------------------------------------------------------------------


def test_a_batch_processes_each_entry_on_its_own(store: EmbeddedStore) -> None:
    answer = store.batch(
        batch(
            post(observation(identifier=identifier("ok"))),
            put("Observation/a", observation(id="b")),  # id mismatch: this entry fails
            post(observation(subject={"reference": urn()})),  # batch entries cannot link
            get("Observation/nothing"),
            put("Observation/c", observation(id="c")),
        )
    )

    assert answer["type"] == "batch-response"
    assert statuses(answer) == [201, 400, 400, 404, 201]
    failed = answer["entry"][1]["response"]["outcome"]
    assert failed["resourceType"] == "OperationOutcome"
    assert failed["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert count(store, "Observation") == 2


def test_a_malformed_batch_entry_fails_alone(store: EmbeddedStore) -> None:
    answer = store.batch(batch({"request": "nonsense"}, post(observation())))
    assert statuses(answer) == [400, 201]
    assert status(answer["entry"][1]) == 201


def test_a_batch_reads_and_deletes_too(store: EmbeddedStore) -> None:
    store.transaction(transaction(put("Observation/a", observation(id="a"))))
    answer = store.batch(batch(get("Observation/a"), delete("Observation/a")))
    assert statuses(answer) == [200, 204]
    assert store.read("Observation", "a") is None


# -- robustness ------------------------------------------------------------------------------


def test_an_unreadable_full_url_is_refused(store: EmbeddedStore) -> None:
    error = rejected(store, transaction({**post(observation()), "fullUrl": 42}))
    assert error.status == 400


@pytest.mark.parametrize(
    "request_",
    [
        {"method": "PUT", "url": "Observation?"},  # empty criteria
        {"method": "PUT", "url": "Observation/a", "ifNoneExist": "identifier=a"},  # not on PUT
        {"method": "POST", "url": "Observation", "ifNoneExist": 7},
        {"method": "POST", "url": "Observation", "ifMatch": 'W/"1"'},  # not on POST
        {"method": "GET", "url": "Observation/a/_history/0"},
        {"method": "GET", "url": "Observation/a/_history/x"},
    ],
    ids=[
        "empty-criteria",
        "if-none-exist-on-put",
        "if-none-exist-not-text",
        "if-match-on-post",
        "version-zero",
        "version-text",
    ],
)
def test_misplaced_conditions_are_refused(store: EmbeddedStore, request_: Json) -> None:
    entry: Json = {"request": request_}
    if request_["method"] in ("POST", "PUT"):
        entry["resource"] = observation(id="a")
    assert rejected(store, transaction(entry)).status == 400


def test_a_conditional_reference_is_searched_once_and_other_queries_are_left_alone(
    store: EmbeddedStore,
) -> None:
    store.transaction(transaction(post({"resourceType": "Patient", "identifier": identifier("m")})))
    conditional = f"Patient?identifier={SYSTEM}|m"
    answer = store.transaction(
        transaction(
            post(
                observation(
                    subject={"reference": conditional},
                    performer=[{"reference": conditional}],
                    # Not a resource type: not a conditional reference, kept as written.
                    basedOn=[{"reference": "Nothing?x=1"}],
                )
            )
        )
    )
    stored = answer["entry"][0]["resource"]
    assert stored["subject"] == stored["performer"][0] == {"reference": "Patient/id-1"}
    assert stored["basedOn"] == [{"reference": "Nothing?x=1"}]


def test_a_resource_nested_too_deeply_is_refused_not_crashed(store: EmbeddedStore) -> None:
    nested: Json = {"valueString": "bottom"}
    for _ in range(3000):
        nested = {"extension": [nested]}
    error = rejected(store, transaction(post(observation(extension=[nested]))))
    assert error.status == 400
    assert "nested too deeply" in str(error)


def test_an_id_factory_returning_invalid_ids_is_a_programming_error() -> None:
    with EmbeddedStore.in_memory(new_id=lambda: "not valid!") as store:
        with pytest.raises(ValueError, match="invalid FHIR id"):
            store.transaction(transaction(post(observation())))
        assert store.search_page("Observation", {}).total == 0


def test_an_id_factory_returning_only_ids_in_use_gives_up() -> None:
    with EmbeddedStore.in_memory(new_id=lambda: "same") as store:
        store.transaction(transaction(post(observation())))
        with pytest.raises(RuntimeError, match="already in use"):
            store.transaction(transaction(post(observation())))


URN = urn()


# -- work done before the write lock ---------------------------------------------------------


def test_a_malformed_bundle_is_refused_without_waiting_for_the_write_lock(tmp_path: Path) -> None:
    with EmbeddedStore.open(tmp_path, busy_timeout=0.2) as store:
        store.transaction(transaction(post(observation())))
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            error = rejected(store, transaction({"request": "nonsense"}))
            duplicate = rejected(
                store,
                transaction(post(observation(), full_url=URN), post(observation(), full_url=URN)),
            )
        finally:
            other.execute("ROLLBACK")
            other.close()
    assert (error.status, duplicate.status) == (400, 400)


def test_unusable_criteria_are_refused_in_their_turn_after_earlier_entries_failures(
    store: EmbeddedStore,
) -> None:
    for _ in range(2):
        store.transaction(transaction(post(observation(identifier=identifier("a")))))
    bad = post(observation(), if_none_exist="no-such-parameter=1")

    # The DELETEs come first (R4), so their 412 wins over the POST's unusable criteria.
    several = rejected(store, transaction(bad, delete(f"Observation?identifier={SYSTEM}|a")))
    assert several.status == 412
    alone = rejected(store, transaction(bad))
    assert alone.status == 400
    assert "Bundle.entry[0]" in str(alone)


def test_the_same_unusable_criteria_fail_each_batch_entry(store: EmbeddedStore) -> None:
    bad = post(observation(), if_none_exist="no-such-parameter=1")
    answer = store.batch(batch(bad, post(observation()), bad))

    assert statuses(answer) == [400, 201, 400]
    expressions = [
        answer["entry"][i]["response"]["outcome"]["issue"][0]["expression"] for i in (0, 2)
    ]
    assert expressions == [["Bundle.entry[0]"], ["Bundle.entry[2]"]]


def test_the_answer_shares_no_container_with_the_bundle_and_the_bundle_is_unchanged(
    store: EmbeddedStore,
) -> None:
    patient = urn()
    bundle = transaction(
        put("Patient/p1", {"resourceType": "Patient", "id": "p1"}, full_url=patient),
        post(observation(subject={"reference": patient}, identifier=identifier("o"))),
    )
    before = copy.deepcopy(bundle)

    answer = store.transaction(bundle)

    assert bundle == before
    written = answer["entry"][1]["resource"]
    assert written["subject"] == {"reference": "Patient/p1"}
    assert written["identifier"][0] is not bundle["entry"][1]["resource"]["identifier"][0]
    assert written["subject"] is not bundle["entry"][1]["resource"]["subject"]
