"""What every answer of the application carries, whatever the view: the status line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirnet.config import Settings
from fhirnet.web.app import create_app


@pytest.mark.parametrize(
    ("path", "status_line"),
    [
        ("/health", "200 OK"),
        ("/fhir/DiagnosticReport", "401 Unauthorized"),
        ("/fhir/no/such/route/here", "401 Unauthorized"),
        ("/api/v1/openapi.json", "200 OK"),
    ],
)
def test_the_reason_phrase_is_spelled_as_rfc_9110_does(
    tmp_path: Path, path: str, status_line: str
) -> None:
    """Werkzeug writes ``401 UNAUTHORIZED``; clients that compare the phrase (the SMART Bulk
    Data test suite does) expect ``401 Unauthorized``."""
    settings = Settings(data_dir=tmp_path, api_keys=(("a-key-of-32-characters-or-more!!", ()),))
    client = create_app(settings).test_client()

    assert client.get(path).status == status_line


def test_a_code_without_a_registered_phrase_keeps_its_status(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, auth="none"))
    app.add_url_rule("/odd", "odd", lambda: ("", 599))

    assert app.test_client().get("/odd").status_code == 599
