"""Independent read streams over HTTP: a study defined and a patient enrolled through the study
API, then the site and a central reader submit forms of the same exam dates through the FHIR
endpoint; each read gets its own DiagnosticReport and category, found by FHIR search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.services.test_read_streams import READS, category, read_form
from tests.submissions import NOW, RECIST, body, issues_of, post

STUDY: dict[str, Any] = {
    "title": "Lutetium versus octreotide in midgut NET",
    "criteria": "recist-1.1",
    "arms": [{"code": "A", "name": "177Lu-DOTATATE"}],
    "sites": [{"id": "001", "name": "Uppsala"}],
    "readers": [
        {"reference": "Practitioner/central-1", "role": "central", "label": "CR 1"},
        {"reference": "Practitioner/central-2", "role": "central", "label": "CR 2"},
    ],
}
SUBJECT: dict[str, Any] = {
    "patient": f"Patient/{RECIST}",
    "site": "001",
    "arm": "A",
    "referenceDate": "2025-01-14",
}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = create_app(Settings(data_dir=tmp_path / "data", auth="none"), clock=lambda: NOW)
    app.config["TESTING"] = True
    return app.test_client()


def test_a_central_reader_and_the_site_report_the_same_exam_independently(
    client: FlaskClient,
) -> None:
    assert client.put("/api/v1/studies/NET-01", json=STUDY).status_code == 201
    enrolled = client.put("/api/v1/studies/NET-01/subjects/001-0001", json=SUBJECT)
    assert enrolled.status_code == 201

    answers = {}
    for number in (1, 2):
        for tag in ("site", "cr1"):
            author, sizes = READS[tag]
            response = post(client, read_form(tag, number, author, sizes[number - 1]))
            assert response.status_code in (200, 201), response.get_data(as_text=True)
            answers[f"{tag}-{number}"] = body(response)

    assert category(answers["site-2"]) == "SD"  # 92 → 86 mm
    assert category(answers["cr1-2"]) == "PR"  # 92 → 64 mm
    assert answers["cr1-2"]["resultsInterpreter"] == [
        {"reference": "Practitioner/central-1", "display": "CR 1"}
    ]
    found = client.get(
        "/fhir/DiagnosticReport",
        query_string={"subject": f"Patient/{RECIST}", "date": "2025-04-14"},
    )
    reports = [e["resource"] for e in body(found)["entry"]]
    assert sorted(category(r) or "" for r in reports) == ["PR", "SD"]

    # a second form of the central reader for the same date is refused, within the stream
    author, sizes = READS["cr1"]
    again = post(client, read_form("cr1-again", 2, author, sizes[1]))
    issues = issues_of(again, 422)
    assert any("2025-04-14" in issue.get("diagnostics", "") for issue in issues)
