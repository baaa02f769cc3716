"""``GET /api/v1/studies/{studyId}/plots/{waterfall|spider|swimmer}.{svg,png,json}`` and
``fhirnet study plot`` on the multicenter trial scenario (tests/trials_scenario.py), played once
on the embedded store.

The SVGs are compared byte for byte with ``tests/web/golden/*.svg``. After a deliberate change
of the drawing (or of matplotlib's pin), regenerate them and review the diff:

    FHIRNET_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/web/test_study_plots.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.web.app import create_app
from fhirnet.web.cli import INVALID_INPUT_EXIT_CODE, main
from tests import trials_scenario as scenario
from tests.submissions import NOW

STUDY_ID = "NET-TRIAL-1"
URL = f"/api/v1/studies/{STUDY_ID}/plots"
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("FHIRNET_REGENERATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plots") / "data"


@pytest.fixture(scope="module")
def store(data_dir: Path) -> Iterator[EmbeddedStore]:
    opened = EmbeddedStore.open(data_dir)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(data_dir: Path, store: EmbeddedStore) -> FlaskClient:
    """The scenario played once (the plots only read)."""
    settings = Settings(data_dir=data_dir, auth="none")
    app = create_app(settings, store=store, clock=lambda: NOW, durable=False)
    app.config["TESTING"] = True
    test_client = app.test_client()
    scenario.run(test_client, STUDY_ID, "trial")
    return test_client


def plot(client: FlaskClient, name: str, **query: str) -> Any:
    answer = client.get(f"{URL}/{name}", query_string=query)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer


@pytest.mark.parametrize("kind", ["waterfall", "spider", "swimmer"])
def test_the_svg_plots_of_the_scenario_are_the_golden_files(client: FlaskClient, kind: str) -> None:
    answer = plot(client, f"{kind}.svg")
    golden = GOLDEN / f"{kind}.svg"
    if REGENERATE:
        golden.write_bytes(answer.data)

    assert answer.content_type == "image/svg+xml"
    assert answer.data == golden.read_bytes()
    assert plot(client, f"{kind}.svg").data == answer.data  # the same bytes every time


def test_the_png_is_a_png(client: FlaskClient) -> None:
    answer = plot(client, "waterfall.png")

    assert answer.content_type == "image/png"
    assert answer.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_waterfall_data_is_each_subjects_lowest_change_sorted_descending(
    client: FlaskClient,
) -> None:
    body = plot(client, "waterfall.json").get_json()
    bars = {bar["subjectId"]: bar for bar in body["bars"]}

    # Hand-worked from the scenario's site reads (100 mm baselines).
    assert [(b["subjectId"], b["changePct"]) for b in body["bars"]] == [
        ("002-04", 14.0),  # 114 then 126 (PD): the lowest is the first
        ("001-03", -8.0),  # ties with 002-02: by subject number
        ("002-02", -8.0),
        ("002-03", -10.0),  # the 110 mm scan after the withdrawal is not counted
        ("001-02", -35.0),  # 65 then 80 (PD): the lowest is not the last
        ("001-01", -40.0),
        ("001-04", -40.0),
        ("002-01", -40.0),  # its NE exam (T2 not measured) has no sum
    ]
    assert bars["001-02"]["date"] == scenario.WEEK_8
    assert bars["001-02"]["bestOverallResponse"] == "SD"  # the PR was never confirmed
    assert bars["001-03"]["progressionBy"] == ["new lesion"]  # PD by a new lesion, bar < 0
    assert bars["001-01"]["bestOverallResponse"] == "PR"
    assert bars["002-02"]["bestOverallResponse"] == "NE"
    assert body["notEvaluable"] == []
    assert body["evaluator"] == "INVESTIGATOR"
    caption = body["caption"]
    assert "RECIST 1.1, evaluator INVESTIGATOR" in caption
    assert "CR/PR confirmed >= 28 days later, at most 1 NE between" in caption


def test_the_central_evaluation_is_the_adjudicated_or_agreed_read(client: FlaskClient) -> None:
    body = plot(client, "waterfall.json", evaluator="CENTRAL").get_json()
    bars = {bar["subjectId"]: bar for bar in body["bars"]}
    reader_2 = plot(client, "waterfall.json", evaluator="RADIOLOGIST 2").get_json()

    assert (bars["002-04"]["changePct"], bars["002-04"]["bestOverallResponse"]) == (22.0, "PD")
    assert bars["001-04"]["changePct"] == -40.0  # RADIOLOGIST 1's read, accepted
    assert {b["subjectId"]: b["changePct"] for b in reader_2["bars"]}["001-04"] == -20.0


def test_the_arm_filter_keeps_the_arms_subjects_and_audits_only_their_reads(
    client: FlaskClient, store: EmbeddedStore
) -> None:
    before = scenario.counts(store, ["AuditEvent"])["AuditEvent"]
    body = plot(client, "spider.json", arm="A").get_json()
    after = scenario.counts(store, ["AuditEvent"])["AuditEvent"]

    assert body["arm"] == "A"
    assert [line["subjectId"] for line in body["lines"]] == ["001-01", "001-02", "002-01", "002-02"]
    assert after - before == 4  # one READ per subject of arm A
    rebound = body["lines"][1]
    assert [(p["studyWeek"], p["changePct"]) for p in rebound["points"]] == [
        (0.0, 0.0),
        (8.0, -35.0),
        (16.0, -20.0),
    ]
    assert rebound["endedByProgression"] is True
    assert rebound["points"][-1]["progression"] is True


def test_the_swimmer_lanes_run_to_the_last_assessment_or_withdrawal(client: FlaskClient) -> None:
    body = plot(client, "swimmer.json").get_json()
    lanes = {lane["subjectId"]: lane for lane in body["lanes"]}

    assert [lane["subjectId"] for lane in body["lanes"]][:2] == ["002-01", "002-03"]
    assert lanes["002-03"]["endDate"] == scenario.WITHDRAWAL
    assert lanes["002-03"]["withdrawal"]["date"] == scenario.WITHDRAWAL
    assert lanes["002-03"]["ongoing"] is False
    assert lanes["001-01"]["ongoing"] is True
    assert lanes["001-01"]["response"] == {"date": scenario.WEEK_8, "studyWeek": 8.0, "label": "PR"}
    assert lanes["002-04"]["progression"]["date"] == scenario.WEEK_16


@pytest.mark.parametrize(
    ("path", "query", "status", "field"),
    [
        ("histogram.svg", {}, 404, "$"),
        ("waterfall.pdf", {}, 404, "$"),
        ("waterfall", {}, 404, "$"),
        ("waterfall.svg", {"arm": "C"}, 422, "$.arm"),
        ("waterfall.svg", {"evaluator": "RADIOLOGIST 9"}, 422, "$.evaluator"),
    ],
    ids=["unknown kind", "unknown format", "no format", "unknown arm", "unknown evaluator"],
)
def test_bad_input_is_a_4xx_with_the_study_apis_error_body(
    client: FlaskClient, path: str, query: dict[str, str], status: int, field: str
) -> None:
    answer = client.get(f"{URL}/{path}", query_string=query)

    assert answer.status_code == status
    assert list(answer.get_json()["errors"]) == [field]


def test_an_unknown_study_is_404(client: FlaskClient) -> None:
    answer = client.get("/api/v1/studies/NO-SUCH-STUDY/plots/waterfall.svg")

    assert answer.status_code == 404
    assert "errors" in answer.get_json()


def test_fhirnet_study_plot_writes_the_apis_bytes(
    client: FlaskClient, data_dir: Path, tmp_path: Path
) -> None:
    env = {"FHIRNET_DATA_DIR": str(data_dir), "FHIRNET_FHIR_BASE_URL": None}
    out = tmp_path / "waterfall.svg"

    written = CliRunner().invoke(
        main,
        ["study", "plot", STUDY_ID, "waterfall", "--format", "svg", "--out", str(out)],
        env=env,
    )
    printed = CliRunner().invoke(
        main, ["study", "plot", STUDY_ID, "swimmer", "--format", "json", "--arm", "B"], env=env
    )
    unknown = CliRunner().invoke(main, ["study", "plot", STUDY_ID, "spider", "--arm", "C"], env=env)

    assert written.exit_code == 0, written.output
    assert out.read_bytes() == (GOLDEN / "waterfall.svg").read_bytes()
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == plot(client, "swimmer.json", arm="B").get_json()
    assert unknown.exit_code == INVALID_INPUT_EXIT_CODE
    assert list(json.loads(unknown.stderr)["errors"]) == ["$.arm"]
