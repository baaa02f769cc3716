"""A part of fhirnet's own storage that cannot be used is a ``503`` with a ``transient``
OperationOutcome, never a 500: the client may try again later, and nothing was half done."""

from __future__ import annotations

from pathlib import Path

from fhirnet.config import Settings
from fhirnet.web.app import create_app

KICK_OFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def test_a_bulk_export_whose_jobs_cannot_be_kept_is_refused_as_transient(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "exports").write_text("a file where the export files directory should be")
    client = create_app(Settings(data_dir=data_dir, auth="none")).test_client()

    response = client.get("/fhir/$export", headers=KICK_OFF)

    assert response.status_code == 503
    assert response.mimetype == "application/fhir+json"
    [issue] = response.get_json(force=True)["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "transient")
    assert "export" in issue["diagnostics"]
