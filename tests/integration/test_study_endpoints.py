"""The study endpoints against the real FHIR server the integration tests start: a study, a
subject and the RECIST example's six forms written there, the endpoints read back from the
server's DiagnosticReports."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.submissions import RECIST, form, post

pytestmark = pytest.mark.integration


def test_the_endpoints_of_a_subject_are_read_from_the_fhir_server(
    fhir: FhirClient, unique: str, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path, auth="none"), store=fhir, durable=False)
    client = app.test_client()
    study_url = f"/api/v1/studies/E{unique}"
    patient = f"p{unique}"
    study = {
        "title": "Integration endpoints",
        "criteria": "recist-1.1",
        "options": {"confirmationRequired": True},
        "arms": [{"code": "A", "name": "Arm A"}],
        "sites": [{"id": "001", "name": "Site 1"}],
        "readers": [
            {
                "reference": "Practitioner/reader-nuclear-radiology",
                "role": "central",
                "label": "RADIOLOGIST 1",
            }
        ],
    }
    subject = {
        "patient": f"Patient/{patient}",
        "site": "001",
        "arm": "A",
        "referenceDate": "2025-01-14",
    }
    assert client.put(study_url, json=study).status_code == 201
    assert client.put(f"{study_url}/subjects/001-1", json=subject).status_code == 201
    for number in range(1, 7):
        resource = form(RECIST, number)
        resource["subject"] = {"reference": f"Patient/{patient}"}
        resource.pop("identifier", None)
        answer = post(client, resource)
        assert answer.status_code in (200, 201), answer.get_data(as_text=True)

    answer = client.get(f"{study_url}/endpoints")

    assert answer.status_code == 200, answer.get_json()
    (found,) = answer.get_json()["subjects"]
    central = next(e for e in found["evaluations"] if e["evaluator"] == "CENTRAL")
    assert central["endpoints"]["confirmedBestOverallResponse"] == {
        "response": "PR",
        "date": "2025-10-13",
    }
    assert central["endpoints"]["progressionFreeSurvival"]["days"] == 455
