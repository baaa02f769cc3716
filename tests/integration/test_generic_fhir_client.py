"""A generic FHIR client (fhirpy, from PyPI) against a real ``fhirnet serve``: it creates a form,
reads it back where the create said it is, follows the documented search to the form's
DiagnosticReport, and pages a search — with nothing fhirnet-specific on the client side (FHIR
create, vread, search with ``_include`` and ``next`` links only).

This needs no FHIR server (the embedded store), so it is not marked ``integration``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fhirpy import SyncFHIRClient

from tests.servers import ROOT, free_port, serving

FORMS = ROOT / "examples" / "questionnaire-responses" / "small-bowel-net-prrt"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fhirnet serve`` on a free port, open access, a fresh embedded store."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_AUTH": "none",
        "FHIRNET_DATA_DIR": str(tmp_path_factory.mktemp("generic") / "data"),
    }
    log_path = Path(tmp_path_factory.mktemp("generic-log")) / "serve.log"
    command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
    with serving(command, port=port, env=env, log_path=log_path):
        yield f"http://127.0.0.1:{port}/fhir"


def test_fhirpy_creates_a_form_reads_it_back_finds_its_report_and_pages_a_search(
    base_url: str,
) -> None:
    client = SyncFHIRClient(base_url)
    forms = sorted(path for path in FORMS.glob("*.json") if not path.name.startswith("00-"))

    created = []
    for path in forms[:3]:
        content = json.loads(path.read_text())
        content.pop("id", None)  # a new resource: fhirpy would PUT (update) one with an id
        form = client.resource("QuestionnaireResponse", **content)
        form.create()  # type: ignore[no-untyped-call]  # POST [base]/QuestionnaireResponse
        created.append(form)
    form = created[-1]

    assert form.resource_type == "QuestionnaireResponse"
    version = form["meta"]["versionId"]
    # Where the create's Location points: [base]/QuestionnaireResponse/{id}/_history/{vid}.
    located = client.execute(f"QuestionnaireResponse/{form.id}/_history/{version}", method="get")
    assert located["id"] == form.id
    assert located["identifier"] == form["identifier"]
    assert client.reference("QuestionnaireResponse", form.id).to_resource()["id"] == form.id

    # The documented step from a form to its results.
    found = (
        client.resources("Provenance")
        .search(entity=f"QuestionnaireResponse/{form.id}")
        .include("Provenance", "target", "DiagnosticReport")
        .fetch_raw()
    )
    reports = [e.resource for e in found.entry if e.resource.resource_type == "DiagnosticReport"]
    assert len(reports) == 1
    assert reports[0]["subject"] == form["subject"]
    assert reports[0]["status"] == "final"

    # A search paged by next links, followed by the client itself.
    observations = (
        client.resources("Observation").search(subject=form["subject"]["reference"]).limit(5)
    )
    everything = observations.fetch_all()
    # (fhirpy's count() sends Aidbox's _totalMethod: the searchset's total is the FHIR way.)
    total = observations.fetch_raw().total
    assert total > 5
    assert len(everything) == total
    assert len({o.id for o in everything}) == total
