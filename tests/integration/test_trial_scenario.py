"""The multicenter trial scenario (tests/trials_scenario.py) against the real FHIR server the
integration tests start: the same table as tests/web/test_trial_scenario.py, every study,
enrolment, form, result and adjudication written to that server and the endpoints read back
from its DiagnosticReports; then the refusals, each with nothing written on the server. The
study and patients carry a per-run prefix, so runs against a shared server
(``FHIRNET_TEST_FHIR_URL``) never see each other's resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests import trials_scenario as scenario

pytestmark = pytest.mark.integration

#: What a refusal must not touch (the forms' resources are many on a shared server: their
#: count is checked by the scenario's endpoints).
STUDY_TYPES = ("ResearchStudy", "ResearchSubject", "Group")


def test_the_trial_endpoints_from_the_fhir_server_are_the_values_worked_by_hand(
    fhir: FhirClient, unique: str, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path, auth="none"), store=fhir, durable=False)
    client = app.test_client()
    study_id = f"T{unique}"
    url = f"/api/v1/studies/{study_id}"

    body = scenario.run(client, study_id, unique)

    scenario.check_endpoints(body)
    before = scenario.versions(fhir, STUDY_TYPES)
    first = scenario.SUBJECTS[0]
    enrolment = scenario.enrolment(unique, first)
    refusals = [
        client.get(f"/api/v1/studies/U{unique}/endpoints"),
        client.put(f"{url}/subjects/001-99", json=enrolment),
        client.put(
            f"{url}/subjects/{first.number}", json=enrolment | {"referenceDate": "2025-04-01"}
        ),
        client.put(
            f"{url}/subjects/001-04/adjudication",
            json={"accept": "RADIOLOGIST 9", "by": scenario.ADJUDICATOR},
        ),
    ]
    assert [r.status_code for r in refusals] == [404, 409, 422, 422]
    assert scenario.versions(fhir, STUDY_TYPES) == before
