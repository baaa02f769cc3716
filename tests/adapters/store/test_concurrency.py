"""Concurrent writers on one database file: eight threads posting the same conditional
transaction at the same moment leave exactly one set of resources, whether they share one store
object or each open their own (as separate worker processes would)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.ports import Json
from tests.adapters.store import (
    SYSTEM,
    identifier,
    located,
    observation,
    post,
    put,
    statuses,
    transaction,
    urn,
)

THREADS = 8


def assessment() -> Json:
    """A QuestionnaireResponse, two Observations and their DiagnosticReport, every entry a
    conditional create, linked by urn:uuid (fresh urns each time, as a rebuilt Bundle has)."""
    qr, first, second = urn(), urn(), urn()

    def conditional(resource: Json, full_url: str, value: str) -> Json:
        return post(
            {**resource, "identifier": identifier(value)},
            full_url=full_url,
            if_none_exist=f"identifier={SYSTEM}|{value}",
        )

    return transaction(
        conditional({"resourceType": "QuestionnaireResponse", "status": "completed"}, qr, "qr"),
        conditional(observation(derivedFrom=[{"reference": qr}]), first, "sum"),
        conditional(observation(derivedFrom=[{"reference": qr}]), second, "overall"),
        conditional(
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "code": {"text": "RECIST 1.1"},
                "result": [{"reference": first}, {"reference": second}],
            },
            urn(),
            "report",
        ),
    )


def race(stores: list[EmbeddedStore], make_bundle: Callable[[], Json]) -> list[Json]:
    """Run one transaction per store, all released at the same instant; re-raise failures."""
    barrier = threading.Barrier(len(stores))
    answers: list[Json | BaseException] = [RuntimeError("did not run")] * len(stores)

    def work(index: int) -> None:
        bundle = make_bundle()
        barrier.wait()
        try:
            answers[index] = stores[index].transaction(bundle)
        except BaseException as error:  # reported below, in the test's thread
            answers[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [answer for answer in answers if not isinstance(answer, BaseException)]


@pytest.mark.parametrize("shared", [True, False], ids=["one-store-object", "a-store-per-thread"])
def test_eight_simultaneous_conditional_transactions_leave_one_set_of_resources(
    tmp_path: Path, shared: bool
) -> None:
    first = EmbeddedStore.open(tmp_path)
    stores = [first] * THREADS if shared else [EmbeddedStore.open(tmp_path) for _ in range(THREADS)]
    try:
        answers = race(stores, assessment)

        # One thread created everything; the seven others found it and answered 200.
        assert sorted(statuses(answer) for answer in answers) == sorted(
            [[201] * 4] + [[200] * 4] * (THREADS - 1)
        )
        locations = {tuple(located(e) for e in answer["entry"]) for answer in answers}
        assert len(locations) == 1
        for resource_type, expected in [
            ("QuestionnaireResponse", 1),
            ("Observation", 2),
            ("DiagnosticReport", 1),
        ]:
            assert first.search_page(resource_type, {}).total == expected
        (report,) = first.search("DiagnosticReport", {"identifier": f"{SYSTEM}|report"})
        observations = {f"Observation/{o['id']}" for o in first.search("Observation", {})}
        assert {r["reference"] for r in report["result"]} == observations
    finally:
        for store in set(stores):
            store.close()


def test_eight_simultaneous_conditional_updates_leave_one_resource_at_version_1(
    tmp_path: Path,
) -> None:
    stores = [EmbeddedStore.open(tmp_path) for _ in range(THREADS)]
    try:
        url = f"Observation?identifier={SYSTEM}|single"
        answers = race(
            stores, lambda: transaction(put(url, observation(identifier=identifier("single"))))
        )
        assert sorted(statuses(answer)[0] for answer in answers) == [200] * 7 + [201]
        (only,) = stores[0].search("Observation", {})
        # The seven later ones changed nothing, so made no new version.
        assert only["meta"]["versionId"] == "1"
    finally:
        for store in stores:
            store.close()


def test_unconditional_creates_from_eight_threads_all_succeed(tmp_path: Path) -> None:
    # The control: without criteria, each of the eight writes its own resource.
    with EmbeddedStore.open(tmp_path) as store:
        race([store] * THREADS, lambda: transaction(post(observation())))
        assert store.search_page("Observation", {}).total == THREADS
