"""``fhirnet study endpoints STUDY``: the same JSON as ``GET /api/v1/studies/STUDY/endpoints``,
on the store the app uses (here the embedded store of FHIRNET_DATA_DIR), for the multicenter
trial scenario (tests/trials_scenario.py)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from fhirnet.web.cli import INVALID_INPUT_EXIT_CODE, main
from tests import trials_scenario as scenario


def test_study_endpoints_prints_the_endpoints_json_of_the_api(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = create_app(Settings(data_dir=data_dir, auth="none"), durable=False)
    app.config["TESTING"] = True
    body = scenario.run(app.test_client(), "NET-CLI", "cli")
    env = {"FHIRNET_DATA_DIR": str(data_dir), "FHIRNET_FHIR_BASE_URL": None}

    printed = CliRunner().invoke(main, ["study", "endpoints", "NET-CLI"], env=env)
    unknown = CliRunner().invoke(main, ["study", "endpoints", "NO-SUCH-STUDY"], env=env)

    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == body
    scenario.check_endpoints(json.loads(printed.stdout))
    assert unknown.exit_code == INVALID_INPUT_EXIT_CODE
    assert unknown.stdout == ""
    assert "errors" in json.loads(unknown.stderr)
