"""The study API against the real FHIR server the integration tests start: the ResearchStudy,
its Group and a ResearchSubject written there (``PUT Type/<uuid5>`` for the types the server
cannot search by identifier), read back, idempotent, withdrawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.config import Settings
from fhirnet.web.app import create_app

pytestmark = pytest.mark.integration


def test_a_study_and_a_subject_are_written_to_the_fhir_server_and_read_back(
    fhir: FhirClient, unique: str, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path, auth="none"), store=fhir, durable=False)
    client = app.test_client()
    study_url = f"/api/v1/studies/S{unique}"
    study = {
        "title": "Integration study",
        "criteria": "recist-1.1",
        "arms": [{"code": "A", "name": "Arm A"}],
        "sites": [{"id": "001", "name": "Site 1"}],
        "readers": [{"reference": "Practitioner/r1", "role": "central", "label": "R 1"}],
        "schedule": [{"visit": "WEEK 8", "day": 57, "windowDays": 7}],
    }
    subject = {
        "patient": f"Patient/p{unique}",
        "site": "001",
        "arm": "A",
        "referenceDate": "2025-01-14",
    }

    created = client.put(study_url, json=study)
    again = client.put(study_url, json=study)
    enrolled = client.put(f"{study_url}/subjects/001-1", json=subject)
    enrolled_again = client.put(f"{study_url}/subjects/001-1", json=subject)
    withdrawn = client.delete(f"{study_url}/subjects/001-1?date=2025-03-01")

    assert created.status_code == 201, created.get_json()
    assert again.status_code == 200
    assert (enrolled.status_code, enrolled_again.status_code) == (201, 200), enrolled.get_json()
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert client.get(study_url).get_json()["title"] == "Integration study"
    kind, study_id = created.get_json()["researchStudy"].split("/")
    stored = fhir.read(kind, study_id)
    assert stored is not None
    assert stored["identifier"][0]["value"] == f"S{unique}"
    kind, subject_id = withdrawn.get_json()["researchSubject"].split("/")
    written = fhir.read(kind, subject_id)
    assert written is not None
    assert written["status"] == "withdrawn"
    assert written["period"] == {"start": "2025-01-14", "end": "2025-03-01"}
    assert written["individual"] == {"reference": f"Patient/p{unique}"}
    group_type, group_id = created.get_json()["group"].split("/")
    group = fhir.read(group_type, group_id)
    assert group is not None
    assert group["member"][0]["inactive"] is True
    assert client.delete(study_url).status_code == 409
