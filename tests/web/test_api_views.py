"""``POST /api/v1/assessments`` against the contract (``assessment-api.md``): every error case
answers with the ``{"errors": {json path: [messages]}}`` envelope naming the offending fields;
a valid request answers 200 with the contract's shape. Specific categories are the domain
tests' business; here only their vocabulary is checked."""

from __future__ import annotations

import codecs
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet.config import Settings
from fhirnet.criteria.models import Criteria, NonTargetStatus
from fhirnet.web.assessment_schemas import load_request

CRITERIA = [criteria.value for criteria in Criteria]
ValidBody = Callable[..., dict[str, Any]]

URL = "/api/v1/assessments"
DELETE = object()

#: Category codes per criteria (``assessment-api.md`` "Category codes").
CODES = {
    "recist-1.1": {"CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD"},
    "irecist": {"iCR", "iPR", "iSD", "iUPD", "iCPD", "NE", "NON-iCR/NON-iUPD"},
    "choi": {"CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD"},
    "percist-1.0": {"CMR", "PMR", "SMD", "PMD", "NE", "CR", "NON-CR/NON-PD", "PD"},
}
TIMEPOINT_KEYS = {
    "date", "sumMm", "baselineSumMm", "nadirSumMm", "nadirDate", "changeFromBaselinePct",
    "changeFromNadirPct", "targetResponse", "nonTargetResponse", "newLesions", "overallResponse",
    "reasons",
}  # fmt: skip
CRITERIA_KEYS = {
    "recist-1.1": set(),
    "irecist": {"newLesionSumMm", "confirmationOf"},
    "choi": {"meanDensityHu", "densityChangeFromBaselinePct"},
    "percist-1.0": {
        "targetSulPeak", "baselineTargetSulPeak", "sulPeakChangePct", "sulPeakChangeAbs",
        "measurabilityThreshold",
    },
}  # fmt: skip


def post_raw(
    client: FlaskClient, data: bytes | str, content_type: str | None = None
) -> TestResponse:
    """Post a body exactly as given (``client.post(json=...)`` cannot send broken JSON)."""
    return client.post(URL, data=data, content_type=content_type or "application/json")


def post(client: FlaskClient, body: Any) -> TestResponse:
    """Post ``body`` as JSON; ``NaN``/``Infinity`` become the bare tokens Python's json writes."""
    return post_raw(client, json.dumps(body))


def error_paths(response: TestResponse) -> set[str]:
    """The JSON paths named in an error response, after checking the envelope's shape."""
    assert_error_envelope(response)
    return set(response.get_json()["errors"])


def assert_error_envelope(response: TestResponse) -> None:
    """Every error body is ``{"errors": {"$...": ["message", ...]}}`` and nothing else."""
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"errors"}
    assert body["errors"], "an error response names at least one problem"
    for path, messages in body["errors"].items():
        assert isinstance(path, str)
        assert path.startswith("$")
        assert isinstance(messages, list)
        assert messages
        assert all(isinstance(m, str) and m for m in messages)


def set_at(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """Set (or with ``DELETE`` remove) the value at ``path`` in ``body``; returns ``body``."""
    *parents, last = path
    container = body
    for key in parents:
        container = container[key]
    if value is DELETE:
        del container[last]
    else:
        container[last] = value
    return body


def lesions(count: int, prefix: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "site": "lung", "status": "present"} for i in range(count)]


def targets(count: int) -> list[dict[str, Any]]:
    return [{"id": f"T{i}", "site": f"organ {i}", "diameterMm": 20.0} for i in range(count)]


def test_a_valid_request_is_accepted_and_answers_with_json(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    response = post(client, valid_body())

    assert response.status_code == 200
    assert response.mimetype == "application/json"


@pytest.mark.parametrize("pre_baseline", [False, True], ids=["no pre-baseline", "pre-baseline"])
@pytest.mark.parametrize("criteria", CRITERIA)
def test_a_valid_request_answers_with_the_contract_shape(
    client: FlaskClient, valid_body: ValidBody, criteria: str, pre_baseline: bool
) -> None:
    body = valid_body(criteria, pre_baseline=pre_baseline)

    response = post(client, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    expected_keys = {"criteria", "baselineDate", "timepoints", "bestOverallResponse"}
    expected_keys |= {"progression", "warnings"}
    if pre_baseline:
        expected_keys.add("tumorGrowthRate")
    assert set(result) == expected_keys
    assert result["criteria"] == criteria
    assert result["baselineDate"] == "2025-01-15"
    # One entry per follow-up, in date order, whatever the order of the request.
    assert [tp["date"] for tp in result["timepoints"]] == ["2025-03-20", "2025-05-22"]
    for timepoint in result["timepoints"]:
        assert set(timepoint) == TIMEPOINT_KEYS | CRITERIA_KEYS[criteria]
        assert timepoint["overallResponse"] in CODES[criteria]
        for key in ("targetResponse", "nonTargetResponse"):
            assert timepoint[key] is None or timepoint[key] in CODES[criteria]
        assert isinstance(timepoint["newLesions"], bool)
        assert timepoint["reasons"]
        assert all(isinstance(reason, str) for reason in timepoint["reasons"])
        for key in ("sumMm", "baselineSumMm", "changeFromBaselinePct"):
            assert timepoint[key] is None or isinstance(timepoint[key], int | float)
    best = result["bestOverallResponse"]
    assert set(best) == {"response", "date", "confirmed"}
    assert best["response"] in CODES[criteria]
    assert best["confirmed"] is None  # confirmationRequired is false
    assert set(result["progression"]) == {"date"}
    assert all(isinstance(w, str) and ": " in w for w in result["warnings"])
    if pre_baseline:
        growth = result["tumorGrowthRate"]
        assert set(growth) == {
            "preTreatmentPctPerMonth", "onTreatmentPctPerMonth", "ratio", "hyperprogression",
        }  # fmt: skip
        assert isinstance(growth["hyperprogression"], bool)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (9.8, Decimal("9.8")),
        (0.1, Decimal("0.1")),
        (1e-7, Decimal("1e-7")),
        (32, Decimal(32)),
        (32.0, Decimal("32.0")),
        (1000, Decimal(1000)),
        (-0.0, Decimal("0.0")),
    ],
    ids=["9.8", "0.1", "1e-7", "int 32", "32.0", "int 1000", "-0.0 has no sign"],
)
def test_a_number_becomes_the_decimal_its_json_text_shows_not_its_binary_float(
    valid_body: ValidBody, number: float, expected: Decimal
) -> None:
    body = valid_body()
    body["timepoints"][1]["targets"][0]["diameterMm"] = number

    request = load_request(json.loads(json.dumps(body)))

    diameter = request.timepoints[1].targets[0].diameter_mm
    assert diameter == expected
    assert str(diameter) == str(expected)  # same digits, not 9.800000000000000710542735760...


def test_a_30_percent_decrease_is_reported_exactly(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    # 14.0 -> 9.8 mm: with binary floats this is 29.999999999999996 %.
    body = valid_body()
    baseline, follow_up = body["timepoints"][1], body["timepoints"][0]
    baseline["targets"] = [{"id": "T1", "site": "liver", "diameterMm": 14.0}]
    follow_up["targets"] = [{"id": "T1", "site": "liver", "diameterMm": 9.8}]
    body["timepoints"] = [baseline, follow_up]

    response = post(client, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    timepoint = response.get_json()["timepoints"][0]
    assert timepoint["sumMm"] == 9.8
    assert timepoint["changeFromBaselinePct"] == -30.0


# (request path, value put there, JSON path expected in the errors); DELETE removes the key.
STRUCTURAL_ERRORS = [
    pytest.param(("criteria",), "recist-2", "$.criteria", id="unknown criteria"),
    pytest.param(("criteria",), DELETE, "$.criteria", id="missing criteria"),
    pytest.param(("criteria",), None, "$.criteria", id="null criteria"),
    pytest.param(("timepoints",), DELETE, "$.timepoints", id="missing timepoints"),
    pytest.param(("timepoints",), [], "$.timepoints", id="no timepoints"),
    pytest.param(("timepoints",), {"date": "2025-01-15"}, "$.timepoints", id="timepoints object"),
    pytest.param(("timepoints", 1, "date"), DELETE, "$.timepoints[1].date", id="missing date"),
    pytest.param(("timepoints", 1, "date"), "15/01/2025", "$.timepoints[1].date", id="bad date"),
    pytest.param(("timepoints", 1, "date"), "2025-02-30", "$.timepoints[1].date", id="no such day"),
    pytest.param(("timepoints", 1, "date"), "20250115", "$.timepoints[1].date", id="basic date"),
    pytest.param(("timepoints", 1, "date"), 20250115, "$.timepoints[1].date", id="date number"),
    pytest.param(
        ("timepoints", 2, "date"), "2025-01-15", "$.timepoints[2].date", id="duplicate date"
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        "NaN",
        "$.timepoints[1].targets[0].diameterMm",
        id="string NaN as number",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        "12",
        "$.timepoints[1].targets[0].diameterMm",
        id="numeric string as number",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        True,
        "$.timepoints[1].targets[0].diameterMm",
        id="bool as number",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        float("nan"),
        "$.timepoints[1].targets[0].diameterMm",
        id="NaN token",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        float("inf"),
        "$.timepoints[1].targets[0].diameterMm",
        id="Infinity token",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        -1.0,
        "$.timepoints[1].targets[0].diameterMm",
        id="negative diameter",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameterMm"),
        1000.1,
        "$.timepoints[1].targets[0].diameterMm",
        id="diameter over 1000 mm",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "densityHu"),
        -1025,
        "$.timepoints[1].targets[0].densityHu",
        id="density below -1024 HU",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "densityHu"),
        3072,
        "$.timepoints[1].targets[0].densityHu",
        id="density above 3071 HU",
    ),
    pytest.param(
        ("timepoints", 1, "nonTargets", 0, "status"),
        "INCREASED",
        "$.timepoints[1].nonTargets[0].status",
        id="status codes are case-sensitive",
    ),
    pytest.param(
        ("timepoints", 1, "newLesions"),
        [{"id": "N1", "site": "lung", "diameterMm": 1001}],
        "$.timepoints[1].newLesions[0].diameterMm",
        id="new lesion diameter over 1000 mm",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "nodal"),
        1,
        "$.timepoints[1].targets[0].nodal",
        id="number as bool",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "nodal"),
        "true",
        "$.timepoints[1].targets[0].nodal",
        id="string as bool",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "nodal"),
        None,
        "$.timepoints[1].targets[0].nodal",
        id="null bool",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "id"), DELETE, "$.timepoints[1].targets[0].id", id="no id"
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "site"), 7, "$.timepoints[1].targets[0].site", id="site int"
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0), "T1", "$.timepoints[1].targets[0]", id="lesion string"
    ),
    pytest.param(
        ("timepoints", 1, "modalities"), ["PET-CT"], "$.timepoints[1].modalities[0]", id="modality"
    ),
    pytest.param(
        ("timepoints", 1, "modalities"),
        ["CT", "MRI", "CT"],
        "$.timepoints[1].modalities",
        id="modality listed twice",
    ),
    pytest.param(
        # Refused before the items are read: the domain compares modality lists pairwise.
        ("timepoints", 1, "modalities"),
        ["CT"] * 500_000,
        "$.timepoints[1].modalities",
        id="half a million modalities",
    ),
    pytest.param(
        # Ids are quoted in the reasons of every follow-up: a long one multiplies the response.
        ("timepoints", 1, "nonTargets", 0, "id"),
        "N" * 65,
        "$.timepoints[1].nonTargets[0].id",
        id="id over 64 characters",
    ),
    pytest.param(
        ("timepoints", 1, "targets", 0, "site"),
        "s" * 201,
        "$.timepoints[1].targets[0].site",
        id="site over 200 characters",
    ),
    pytest.param(
        ("timepoints", 1, "nonTargets", 0, "status"),
        "gone",
        "$.timepoints[1].nonTargets[0].status",
        id="unknown non-target status",
    ),
    pytest.param(
        ("timepoints", 1, "nonTargets", 0, "status"),
        DELETE,
        "$.timepoints[1].nonTargets[0].status",
        id="missing non-target status",
    ),
    pytest.param(("timepoints", 1, "role"), "baseline", "$.timepoints[1].role", id="unknown role"),
    pytest.param(
        ("timepoints", 1, "intratumoralNodules"),
        "many",
        "$.timepoints[1].intratumoralNodules",
        id="unknown nodules",
    ),
    pytest.param(
        ("timepoints", 0, "newLesions"),
        [{"id": "N1", "site": "lung", "modality": "X-ray"}],
        "$.timepoints[0].newLesions[0].modality",
        id="unknown new-lesion modality",
    ),
    pytest.param(
        ("timepoints", 1, "pet"),
        {"liverSulMean": "2.1"},
        "$.timepoints[1].pet.liverSulMean",
        id="pet string",
    ),
    pytest.param(("options", "sdMinDays"), -1, "$.options.sdMinDays", id="negative days"),
    pytest.param(("options", "sdMinDays"), 42.5, "$.options.sdMinDays", id="fractional days"),
    pytest.param(("options", "sdMinDays"), "42", "$.options.sdMinDays", id="days string"),
    pytest.param(
        ("options", "confirmationRequired"), "yes", "$.options.confirmationRequired", id="yes"
    ),
    pytest.param(("options",), None, "$.options", id="null options"),
    pytest.param(("priority",), "high", "$.priority", id="unknown top-level field"),
    pytest.param(
        ("timepoints", 1, "targets", 0, "diameter_mm"),
        20.0,
        "$.timepoints[1].targets[0].diameter_mm",
        id="unknown lesion field",
    ),
    pytest.param(
        ("timepoints",),
        [{"date": f"2025-01-{d:02d}"} for d in range(1, 32)] * 7,
        "$.timepoints",
        id="more than 200 timepoints",
    ),
    pytest.param(
        ("timepoints", 1, "nonTargets"),
        lesions(51, "NT"),
        "$.timepoints[1].nonTargets",
        id="51 non-targets in one list",
    ),
    pytest.param(
        ("timepoints", 1),
        {"date": "2025-01-15", "targets": targets(20), "nonTargets": lesions(20, "NT")}
        | {"newLesions": lesions(11, "N")},
        "$.timepoints[1]",
        id="51 lesions across the three lists",
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), STRUCTURAL_ERRORS)
def test_a_structural_error_is_a_422_naming_the_field(
    client: FlaskClient,
    valid_body: ValidBody,
    path: tuple[str | int, ...],
    value: Any,
    expected: str,
) -> None:
    response = post(client, set_at(valid_body(), path, value))

    assert response.status_code == 422
    assert expected in error_paths(response)


@pytest.mark.parametrize("density", [-1024, -0.5, 0, 3071], ids=["-1024", "-0.5", "0", "3071"])
def test_a_density_from_minus_1024_to_3071_hu_is_accepted(
    valid_body: ValidBody, density: float
) -> None:
    # criteria v2 §1.5: CT attenuation may be negative (fat, cysts), within a CT number's range.
    body = set_at(valid_body("choi"), ("timepoints", 0, "targets", 0, "densityHu"), density)

    request = load_request(json.loads(json.dumps(body)))

    assert request.timepoints[0].targets[0].density_hu == Decimal(str(density))


@pytest.mark.parametrize(
    ("density", "message"),
    [(-1025, "greater than or equal to -1024"), (3072, "less than or equal to 3071")],
    ids=["-1025", "3072"],
)
def test_a_density_outside_the_ct_range_is_refused_at_its_json_path(
    client: FlaskClient, valid_body: ValidBody, density: int, message: str
) -> None:
    body = set_at(valid_body("choi"), ("timepoints", 0, "targets", 1, "densityHu"), density)

    response = post(client, body)

    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"$.timepoints[0].targets[1].densityHu"}
    assert any(message in text for text in errors["$.timepoints[0].targets[1].densityHu"])


def test_a_choi_baseline_with_a_negative_density_lesion_is_assessed(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    # A fat-containing lesion (-40 HU) next to an enhancing one: the mean stays positive.
    body = valid_body("choi")
    for timepoint in body["timepoints"]:
        timepoint["targets"][1]["densityHu"] = -40

    response = post(client, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert all(tp["meanDensityHu"] is not None for tp in response.get_json()["timepoints"])


@pytest.mark.parametrize("criteria", CRITERIA)
def test_the_non_target_status_increased_is_accepted(
    client: FlaskClient, valid_body: ValidBody, criteria: str
) -> None:
    # criteria v2 §2.2: "increased" (the iRECIST FAQ's INCLA) counts like "present" outside iRECIST.
    body = set_at(valid_body(criteria), ("timepoints", 2, "nonTargets", 0, "status"), "increased")

    request = load_request(json.loads(json.dumps(body)))
    response = post(client, body)

    assert request.timepoints[2].non_targets[0].status is NonTargetStatus.INCREASED
    assert response.status_code == 200, response.get_data(as_text=True)
    last = response.get_json()["timepoints"][-1]
    assert last["nonTargetResponse"] in {"NON-CR/NON-PD", "NON-iCR/NON-iUPD"}


def test_a_choi_baseline_of_10_targets_5_in_one_organ_is_assessed(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    # criteria v2 D5: Choi selects up to 10 targets, 5 per organ; the structural schema only caps
    # 50 lesions per timepoint, so the domain's rule (and its message) decides.
    body = valid_body("choi")
    lesions_at = [
        {"id": f"T{i}", "site": "liver" if i < 5 else f"organ {i}", "diameterMm": 20.0}
        | {"densityHu": 80}
        for i in range(10)
    ]
    for timepoint in body["timepoints"]:
        timepoint["targets"] = [dict(lesion) for lesion in lesions_at]

    request = load_request(json.loads(json.dumps(body)))
    response = post(client, body)

    assert len(request.timepoints[1].targets) == 10
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_choi_baseline_with_6_targets_in_one_organ_quotes_the_domains_rule(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    body = valid_body("choi")
    six_in_liver = [
        {"id": f"T{i}", "site": "liver", "diameterMm": 20.0, "densityHu": 80} for i in range(6)
    ]
    body["timepoints"] = [{"date": "2025-01-15", "modalities": ["CT"], "targets": six_in_liver}]

    response = post(client, body)

    assert response.status_code == 422
    messages = [m for ms in response.get_json()["errors"].values() for m in ms]
    assert any("Choi" in m and "5" in m and "organ" in m for m in messages), messages


def test_a_large_integer_is_not_an_overflowing_number(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    body = set_at(valid_body(), ("timepoints", 1, "targets", 0, "diameterMm"), 10**400)

    response = post(client, body)

    assert response.status_code == 422
    assert error_paths(response) == {"$.timepoints[1].targets[0].diameterMm"}


def test_a_number_that_overflows_a_double_is_not_finite(client: FlaskClient) -> None:
    body = '{"criteria": "choi", "timepoints": [{"date": "2025-01-15", "targets": [' \
        '{"id": "T1", "site": "liver", "diameterMm": 20, "densityHu": 1e400}]}]}'  # fmt: skip

    response = post_raw(client, body)

    assert response.status_code == 422
    assert error_paths(response) == {"$.timepoints[0].targets[0].densityHu"}


def test_every_offending_field_is_named_in_one_response(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    body = valid_body()
    body["criteria"] = "who"
    body["extra"] = True
    body["timepoints"][0]["targets"][1]["diameterMm"] = "big"
    body["timepoints"][2]["date"] = body["timepoints"][1]["date"]
    body["timepoints"][2]["nonTargets"][0]["status"] = "gone"

    response = post(client, body)

    assert response.status_code == 422
    assert error_paths(response) == {
        "$.criteria",
        "$.extra",
        "$.timepoints[0].targets[1].diameterMm",
        "$.timepoints[2].date",
        "$.timepoints[2].nonTargets[0].status",
    }


def test_a_duplicate_date_is_named_even_when_that_timepoint_has_other_errors(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    body = valid_body()
    body["timepoints"][2]["date"] = body["timepoints"][0]["date"]
    body["timepoints"][2]["targets"][0]["diameterMm"] = -3

    response = post(client, body)

    assert error_paths(response) == {
        "$.timepoints[2].date",
        "$.timepoints[2].targets[0].diameterMm",
    }


def test_too_many_timepoints_is_one_error_not_one_per_timepoint(client: FlaskClient) -> None:
    body = {"criteria": "choi", "timepoints": [{"date": "bad", "targets": 7}] * 10_000}

    response = post(client, body)

    assert response.status_code == 422
    assert error_paths(response) == {"$.timepoints"}


def test_a_criteria_rule_violated_at_baseline_is_a_422_at_the_requests_own_index(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    # The baseline is the second timepoint of the request; RECIST needs non-nodal targets >= 10 mm.
    body = set_at(valid_body(), ("timepoints", 1, "targets", 0, "diameterMm"), 9.0)

    response = post(client, body)

    assert response.status_code == 422
    assert any(path.startswith("$.timepoints[1]") for path in error_paths(response))


def test_a_follow_up_target_unknown_at_baseline_is_a_422(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    body = set_at(valid_body(), ("timepoints", 2, "targets", 0, "id"), "T9")

    response = post(client, body)

    assert response.status_code == 422
    assert any(path.startswith("$.timepoints[2]") for path in error_paths(response))


MALFORMED_BODIES = [
    pytest.param(b"", id="empty body"),
    pytest.param(b'{"criteria": "choi",', id="truncated"),
    pytest.param(b'{"criteria": "choi"} trailing', id="trailing garbage"),
    pytest.param(b"{'criteria': 'choi'}", id="single quotes"),
    pytest.param(b"\xc3\x28garbage", id="not unicode"),  # no BOM, no NUL: not UTF-8 (a BOM: 415)
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested too deeply"),
    pytest.param(b"1" + b"0" * 5000, id="integer with 5001 digits"),
    pytest.param(b'{"criteria": "choi", "criteria": "irecist"}', id="duplicate key"),
]


@pytest.mark.parametrize("data", MALFORMED_BODIES)
def test_malformed_json_is_a_422_at_the_root(client: FlaskClient, data: bytes) -> None:
    response = post_raw(client, data)

    assert response.status_code == 422
    assert error_paths(response) == {"$"}


@pytest.mark.parametrize(
    "body",
    [[], "recist-1.1", 42, None, True],
    ids=["array", "string", "number", "null", "boolean"],
)
def test_a_body_that_is_not_an_object_is_a_422_at_the_root(client: FlaskClient, body: Any) -> None:
    response = post(client, body)

    assert response.status_code == 422
    assert error_paths(response) == {"$"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/fhir+json",
        "application/json-patch+json",
        "",
    ],
)
def test_a_body_that_is_not_application_json_is_a_415(
    client: FlaskClient, valid_body: ValidBody, content_type: str
) -> None:
    response = client.post(URL, data=json.dumps(valid_body()), content_type=content_type)

    assert response.status_code == 415
    assert error_paths(response) == {"$"}


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda text: text.encode("utf-16"), id="utf-16 with BOM"),
        pytest.param(lambda text: text.encode("utf-16-le"), id="utf-16-le"),
        pytest.param(lambda text: text.encode("utf-16-be"), id="utf-16-be"),
        pytest.param(lambda text: text.encode("utf-32"), id="utf-32 with BOM"),
        pytest.param(lambda text: text.encode("utf-32-le"), id="utf-32-le"),
        pytest.param(lambda text: codecs.BOM_UTF8 + text.encode(), id="utf-8 with BOM"),
    ],
)
def test_a_body_not_in_plain_utf8_is_refused_with_415_as_on_the_fhir_routes(
    client: FlaskClient, valid_body: ValidBody, encode: Callable[[str], bytes]
) -> None:
    response = client.post(
        URL, data=encode(json.dumps(valid_body())), content_type="application/json"
    )

    assert response.status_code == 415
    assert error_paths(response) == {"$"}
    assert "UTF-8 without a byte order mark" in response.get_json()["errors"]["$"][0]


def test_json_with_a_charset_parameter_is_accepted(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    response = post_raw(client, json.dumps(valid_body()), "application/json; charset=utf-8")

    assert response.status_code == 200


class TestBodySizeLimit:
    """The body limit comes from Settings (``FHIRNET_MAX_BODY_BYTES``)."""

    LIMIT = 2000

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=self.LIMIT, auth="none")

    @staticmethod
    def padded(body: dict[str, Any], size: int) -> bytes:
        data = json.dumps(body).encode()
        return data + b" " * (size - len(data))  # whitespace keeps it valid JSON

    def test_a_body_over_the_limit_is_a_413(
        self, client: FlaskClient, valid_body: ValidBody
    ) -> None:
        response = post_raw(client, self.padded(valid_body(), self.LIMIT + 1))

        assert response.status_code == 413
        assert error_paths(response) == {"$"}
        assert str(self.LIMIT) in response.get_json()["errors"]["$"][0]

    def test_a_body_exactly_at_the_limit_is_read(
        self, client: FlaskClient, valid_body: ValidBody
    ) -> None:
        response = post_raw(client, self.padded(valid_body(), self.LIMIT))

        assert response.status_code == 200

    @staticmethod
    def post_chunked(client: FlaskClient, data: bytes) -> TestResponse:
        """Post as a chunked body arrives from gunicorn: ``Transfer-Encoding: chunked`` (so no
        usable Content-Length) and input marked terminated, so werkzeug reads to the end."""
        return client.post(
            URL,
            data=data,
            content_type="application/json",
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    def test_a_chunked_body_over_the_limit_is_a_413_not_truncated(
        self, client: FlaskClient, valid_body: ValidBody
    ) -> None:
        # werkzeug alone would stop at the limit and parse the truncated body as malformed JSON.
        response = self.post_chunked(client, self.padded(valid_body(), self.LIMIT + 1))

        assert response.status_code == 413
        assert error_paths(response) == {"$"}

    def test_a_chunked_body_at_the_limit_is_read_whole(
        self, client: FlaskClient, valid_body: ValidBody
    ) -> None:
        response = self.post_chunked(client, self.padded(valid_body(), self.LIMIT))

        assert response.status_code == 200


def test_the_default_body_limit_is_5_mib(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", URL, 405),
        ("PUT", URL, 405),
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", "/nothing-here", 404),
    ],
    ids=["GET assessments", "PUT assessments", "unknown API URL", "unknown URL"],
)
def test_http_errors_use_the_same_json_envelope(
    client: FlaskClient, method: str, url: str, status: int
) -> None:
    response = client.open(url, method=method)

    assert response.status_code == status
    assert error_paths(response) == {"$"}
    if status == 405:
        assert "POST" in response.headers["Allow"]


def test_an_unexpected_error_is_a_500_without_internals_and_is_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    internals = "connection string at /srv/app/internal.py line 42"

    def broken() -> str:
        raise RuntimeError(internals)

    app.add_url_rule("/api/v1/broken", view_func=broken)

    response = app.test_client().get("/api/v1/broken")

    assert response.status_code == 500
    assert error_paths(response) == {"$"}
    assert internals not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert internals in caplog.text


def test_health_reports_ok_and_the_version(client: FlaskClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": "0.1.0"}


# Contract-valid input (finite, non-negative, diameters <= 1000) that reaches the domain core
# with extreme values; the contract says bad input never produces a 500.
Mutation = Callable[[dict[str, Any]], None]


def _set(path: tuple[str | int, ...], value: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        set_at(body, path, value)

    return mutate


def _confirmed_pr_near(dates: list[str], min_days: int) -> Mutation:
    """Confirmation required, a PR at both follow-ups, the three timepoints on ``dates``."""

    def mutate(body: dict[str, Any]) -> None:
        body["options"].update(confirmationRequired=True, confirmationMinDays=min_days)
        for timepoint, date in zip(body["timepoints"], dates, strict=True):
            timepoint["date"] = date
        for index in (0, 2):
            body["timepoints"][index]["targets"][0]["diameterMm"] = 10.0

    return mutate


def _pre_baseline_days_before(days_before_baseline: int, diameter: float) -> Mutation:
    """Add a pre-baseline scan of the baseline targets, all ``diameter`` mm, before baseline."""

    def mutate(body: dict[str, Any]) -> None:
        baseline = body["timepoints"][1]
        date = dt.date.fromisoformat(baseline["date"]) - dt.timedelta(days=days_before_baseline)
        targets = [{**target, "diameterMm": diameter} for target in baseline["targets"]]
        body["timepoints"].append({"date": str(date), "role": "pre-baseline", "targets": targets})

    return mutate


EXTREME_BUT_VALID = [
    pytest.param("recist-1.1", _set(("options", "sdMinDays"), 10**30), id="huge sdMinDays"),
    pytest.param(
        "percist-1.0",
        _set(("timepoints", 1, "pet", "uptakeTimeMin"), 1e300),
        id="huge uptake time",
    ),
    pytest.param(
        "recist-1.1",
        _set(("timepoints", 0, "targets", 0, "diameterMm"), 5e-324),
        id="subnormal follow-up diameter",
    ),
    pytest.param(
        "recist-1.1",
        _pre_baseline_days_before(1, 1.0),
        id="pre-baseline a day before with 1 mm lesions (TGR about 4e129 %/month)",
    ),
    pytest.param(
        "percist-1.0",
        _set(("timepoints", 0, "targets", 0, "sulPeak"), 1e300),
        id="huge follow-up SULpeak",
    ),
    pytest.param(
        "percist-1.0",
        _set(("timepoints", 1, "pet", "liverSulMean"), 1e-300),
        id="tiny baseline liver SULmean",
    ),
    pytest.param(
        "choi",
        _set(("timepoints", 0, "targets", 0, "densityHu"), 3071),
        id="highest follow-up density",
    ),
    pytest.param(
        "choi",
        _set(("timepoints", 0, "targets", 0, "densityHu"), -1024),
        id="lowest follow-up density",
    ),
    pytest.param(
        "recist-1.1",
        _pre_baseline_days_before(1, 5e-324),
        id="pre-baseline a day before with subnormal lesions",
    ),
    pytest.param(
        "recist-1.1",
        _confirmed_pr_near(["2025-03-20", "2025-01-15", "2025-05-22"], 10**12),
        id="huge confirmationMinDays",
    ),
    pytest.param(
        "recist-1.1",
        _confirmed_pr_near(["9999-12-20", "9999-10-01", "9999-12-31"], 28),
        id="confirmation window past 9999-12-31",
    ),
]


@pytest.mark.parametrize(("criteria", "mutate"), EXTREME_BUT_VALID)
def test_extreme_but_valid_numbers_never_cause_a_server_error(
    client: FlaskClient, valid_body: ValidBody, criteria: str, mutate: Mutation
) -> None:
    body = valid_body(criteria)
    mutate(body)

    response = post(client, body)

    assert response.status_code in {200, 422}, response.get_data(as_text=True)
