"""A submission that another request (or the delivery thread) finished while this one waited is
answered from the outbox's record: the form, or for ``$submit`` its DiagnosticReport, found by
the ``entry.link`` the record keeps (and, in records kept by an earlier fhirnet, by the URL in
its OperationOutcome)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.ports import Entry, State
from fhirnet.services.delivery import Attempt
from fhirnet.web.fhir_bundles import REPORT_RELATION, report_url_of
from tests.submissions import RECIST, SUBMIT_FOR_REPORT, body, form, post
from tests.web.test_delivery_views import (  # fixtures of the durable app
    app,
    client,
    clock,
    deliver,
    delivery_of,
    entries,
    settings,
    store,
)

__all__ = ["app", "client", "clock", "settings", "store"]

REPORT_URL = "http://fhir.example.org/fhir/DiagnosticReport/abc"


def delivered(app: Flask, client: FlaskClient) -> Entry:
    """The first form, accepted with ``respond-async`` and then delivered by the thread's job."""
    response = post(client, form(RECIST, 1), Prefer="respond-async")
    assert response.status_code == 202, response.get_data(as_text=True)
    deliver(app)
    (entry,) = entries(app)
    assert entry.state is State.DELIVERED
    return entry


def finished_elsewhere(app: Flask, monkeypatch: pytest.MonkeyPatch, entry: Entry) -> None:
    """The next submission finds ``entry`` finished by someone else when it gets the lock."""
    delivery = delivery_of(app)

    def accept(**_: Any) -> Attempt:
        return Attempt(entry=entry)

    monkeypatch.setattr(delivery, "accept", accept)


def test_a_delivered_answer_links_to_the_report(app: Flask, client: FlaskClient) -> None:
    entry = delivered(app, client)
    assert entry.answer is not None
    (link,) = entry.answer["link"]
    assert link["relation"] == REPORT_RELATION
    assert "DiagnosticReport/" in link["url"]
    assert report_url_of(entry.answer) == link["url"]


@pytest.mark.parametrize("kept_by", ["this fhirnet", "an earlier fhirnet"])
def test_a_replayed_submit_answers_the_report_of_the_kept_answer(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    kept_by: str,
) -> None:
    entry = delivered(app, client)
    assert entry.answer is not None
    report_url = report_url_of(entry.answer)
    assert report_url is not None
    answer = copy.deepcopy(entry.answer)
    if kept_by == "an earlier fhirnet":
        del answer["link"]  # the URL is then only in the OperationOutcome's message
    finished_elsewhere(app, monkeypatch, dataclasses.replace(entry, answer=answer))

    response = post(client, form(RECIST, 1), SUBMIT_FOR_REPORT)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Location"] == report_url
    report = body(response)
    assert report["resourceType"] == "DiagnosticReport"
    assert report_url.endswith(f"DiagnosticReport/{report['id']}")


def test_report_url_of_reads_the_link_before_the_message() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": "The results of the form: DiagnosticReport http://x/DiagnosticReport/old.",
            }
        ],
    }
    answer = {"response": {"status": "201 Created", "outcome": outcome}}
    assert report_url_of(answer) == "http://x/DiagnosticReport/old"
    linked = {"link": [{"relation": REPORT_RELATION, "url": REPORT_URL}], **answer}
    assert report_url_of(linked) == REPORT_URL
    assert report_url_of({"response": {"status": "201 Created"}}) is None
