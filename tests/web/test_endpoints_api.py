"""``POST /api/v1/endpoints`` and ``fhirnet endpoints``: a body in, the trial endpoints out."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.web.cli import main
from fhirnet.web.openapi.json_api import ENDPOINTS_EXAMPLE

URL = "/api/v1/endpoints"


def body(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(ENDPOINTS_EXAMPLE)
    document.update(changes)
    return document


def errors_of(client: FlaskClient, document: Any) -> dict[str, list[str]]:
    response = client.post(URL, json=document)
    assert response.status_code == 422, response.get_json()
    found: dict[str, list[str]] = response.get_json()["errors"]
    return found


def test_the_documented_example_gives_a_confirmed_pr_and_a_pfs_event(
    client: FlaskClient,
) -> None:
    response = client.post(URL, json=ENDPOINTS_EXAMPLE)

    assert response.status_code == 200
    result = response.get_json()
    assert result["baselineDate"] == "2025-01-10"
    assert [(v["studyDay"], v["visit"], v["role"]) for v in result["visits"]] == [
        (-5, "UNSCHEDULED", "baseline"),
        (57, "WEEK 8", "follow-up"),
        (113, "WEEK 16", "follow-up"),
        (169, "WEEK 24", "follow-up"),
    ]
    assert result["confirmedBestOverallResponse"] == {"response": "PR", "date": "2025-03-12"}
    assert result["firstResponseDate"] == "2025-03-12"
    assert result["progressionDate"] == "2025-07-02"
    assert result["progressionStudyDay"] == 169
    assert result["progressionFreeSurvival"] == {
        "startDate": "2025-01-15",
        "date": "2025-07-02",
        "days": 169,
        "event": True,
        "censoringReason": None,
    }
    # DoR: 2025-03-12 to 2025-07-02, date - start + 1.
    assert result["durationOfResponse"]["days"] == 113
    assert result["objectiveResponse"] is True
    assert result["reasons"]


def test_the_cli_prints_what_the_endpoint_answers(client: FlaskClient, tmp_path: Path) -> None:
    request_file = tmp_path / "subject.json"
    request_file.write_text(json.dumps(ENDPOINTS_EXAMPLE))

    result = CliRunner().invoke(main, ["endpoints", str(request_file)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == client.post(URL, json=ENDPOINTS_EXAMPLE).get_json()


@pytest.mark.parametrize(
    ("document", "path", "fragment"),
    [
        (body(visits=[{"date": "2025-03-12", "overallResponse": "iPR"}]),
         "$.visits[0].overallResponse", "not an overall response of recist-1.1"),
        # admiralonco's ND (not done) and MISSING have no fhirnet code.
        (body(visits=[{"date": "2025-03-12", "overallResponse": "ND"}]),
         "$.visits[0].overallResponse", "Must be one of"),
        (body(visits=[{"date": "2025-03-12", "overallResponse": "PR"},
                      {"date": "2025-03-12", "overallResponse": "SD"}]),
         "$.visits[1].date", "Duplicate date"),
        (body(visits=[{"date": "2025-02-30", "overallResponse": "PR"}]),
         "$.visits[0].date", "Not a valid date"),
        (body(referenceDate="15/01/2025"), "$.referenceDate", "Not a valid date"),
        (body(options={"maxNeBetween": 11}), "$.options.maxNeBetween", "less than or equal to 10"),
        (body(options={"confirmationMinDays": -1}),
         "$.options.confirmationMinDays", "greater than"),
        (body(options={"acceptSdBetween": "yes"}), "$.options.acceptSdBetween", "boolean"),
        (body(withdrawalDate="2025-01-01"), "$.withdrawalDate", "before the reference date"),
        (body(visits=[{"date": "2025-03-12", "overallResponse": None}]),
         "$.visits[0].overallResponse", "needs an overall response"),
        (body(schedule=[{"visit": "W0", "day": 0, "windowDays": 3}]),
         "$.schedule[0].day", "no study day 0"),
        (body(criteria="recist-2"), "$.criteria", "Must be one of"),
        (body(extra=1), "$.extra", "Unknown field"),
    ],
    ids=[
        "code of another criteria", "ND", "duplicate date", "impossible date",
        "reference date format", "maxNeBetween too large", "negative interval",
        "string boolean", "withdrawal before reference", "follow-up without response",
        "study day 0", "unknown criteria", "unknown field",
    ],
)  # fmt: skip
def test_bad_input_is_a_field_level_422(
    client: FlaskClient, document: dict[str, Any], path: str, fragment: str
) -> None:
    errors = errors_of(client, document)
    assert path in errors, errors
    assert any(fragment in message for message in errors[path]), errors[path]


def test_another_content_type_is_a_415(client: FlaskClient) -> None:
    response = client.post(URL, data=json.dumps(ENDPOINTS_EXAMPLE), content_type="text/plain")
    assert response.status_code == 415


class TestBodyLimit:
    LIMIT = 512

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=self.LIMIT, auth="none")

    def test_a_body_over_the_limit_is_a_413(self, client: FlaskClient) -> None:
        visits = [{"date": f"2025-02-{day:02d}", "overallResponse": "SD"} for day in range(1, 29)]
        response = client.post(URL, json=body(visits=visits))
        assert response.status_code == 413
