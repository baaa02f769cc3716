"""``_summary`` and ``_elements`` on searches and reads, of the embedded store and of the
conformance resources (:mod:`fhirnet.fhir.subsetting`): subsets are tagged SUBSETTED and still
valid resources; ``_summary=count`` is the total only."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from fhirnet.fhir.resources import model_class, parse
from fhirnet.fhir.subsetting import SUBSETTED
from fhirnet.ports import Json
from tests.submissions import RECIST, SUBMIT, body, form, post

QUESTIONNAIRE = "/fhir/Questionnaire/gep-net-imaging-crf"


@pytest.fixture
def submitted(client: FlaskClient) -> Json:
    """The stored first form of the RECIST patient; its results are stored too."""
    response = post(client, form(RECIST, 1), SUBMIT)
    assert response.status_code == 201, response.get_data(as_text=True)
    return body(response)


def get(client: FlaskClient, url: str, status: int = 200) -> Json:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return body(response)


def subsetted(resource: Json) -> bool:
    return SUBSETTED in resource.get("meta", {}).get("tag", [])


def valid(resource: Json) -> None:
    assert parse(resource, model_class(resource["resourceType"])).issues == ()


def test_summary_count_is_the_total_without_entries(client: FlaskClient, submitted: Json) -> None:
    whole = get(client, "/fhir/Observation")
    counted = get(client, "/fhir/Observation?_summary=count")
    assert counted["total"] == whole["total"] > 0
    assert "entry" not in counted
    assert [link["relation"] for link in counted["link"]] == ["self"]


def test_summary_true_keeps_the_summary_elements_tagged(
    client: FlaskClient, submitted: Json
) -> None:
    bundle = get(client, "/fhir/DiagnosticReport?_summary=true")
    (report,) = [entry["resource"] for entry in bundle["entry"]]
    assert subsetted(report)
    assert {"resourceType", "id", "meta", "status", "code", "subject"} <= report.keys()
    # conclusion, conclusionCode and result are not summary elements in R4
    assert not {"conclusion", "conclusionCode", "result", "text"} & report.keys()
    assert report["meta"]["versionId"] == "1"
    valid(report)


def test_summary_true_on_a_read_and_a_vread(client: FlaskClient, submitted: Json) -> None:
    url = f"/fhir/QuestionnaireResponse/{submitted['id']}"
    for path in (url, f"{url}/_history/1"):
        form_summary = get(client, f"{path}?_summary=true")
        assert subsetted(form_summary)
        assert "item" not in form_summary
        assert form_summary["status"] == submitted["status"]
        valid(form_summary)


def test_summary_false_is_the_whole_resource_untagged(client: FlaskClient, submitted: Json) -> None:
    url = f"/fhir/QuestionnaireResponse/{submitted['id']}"
    assert get(client, f"{url}?_summary=false") == get(client, url)


def test_summary_data_drops_the_narrative_and_text_keeps_it(
    client: FlaskClient, submitted: Json
) -> None:
    bundle = get(client, "/fhir/Observation?_summary=data&_count=5")
    for entry in bundle["entry"]:
        assert "text" not in entry["resource"]
        assert subsetted(entry["resource"])
    text = get(client, "/fhir/Observation?_summary=text&_count=5")
    for entry in text["entry"]:
        assert set(entry["resource"]) <= {"resourceType", "id", "meta", "text", "status", "code"}
        valid(entry["resource"])


def test_elements_keeps_those_and_the_mandatory_ones(client: FlaskClient, submitted: Json) -> None:
    bundle = get(client, "/fhir/Observation?_elements=subject,value&_count=100")
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert subsetted(resource)
        extra = set(resource) - {"resourceType", "id", "meta", "subject", "status", "code"}
        assert all(name.startswith("value") for name in extra), extra
        valid(resource)
    assert "_elements=subject%2Cvalue" in bundle["link"][0]["url"]


def test_elements_applies_to_the_matches_not_to_included_resources(
    client: FlaskClient, submitted: Json
) -> None:
    bundle = get(
        client,
        f"/fhir/Provenance?entity=QuestionnaireResponse/{submitted['id']}"
        "&_include=Provenance:target:DiagnosticReport&_elements=target",
    )
    modes = {entry["search"]["mode"]: entry["resource"] for entry in bundle["entry"]}
    assert subsetted(modes["match"])
    assert "agent" in modes["match"]  # mandatory
    assert not subsetted(modes["include"])
    assert "result" in modes["include"]


@pytest.mark.parametrize(
    "query",
    [
        "_summary=maybe",
        "_elements=nonsense",
        "_summary=true&_elements=status",
        "_summary=true&_summary=false",
    ],
)
def test_bad_subsetting_is_400(client: FlaskClient, query: str) -> None:
    for path in ("/fhir/Observation", "/fhir/Questionnaire", QUESTIONNAIRE):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query, response.get_data(as_text=True))
        assert json.loads(response.get_data())["resourceType"] == "OperationOutcome"


def test_summary_count_on_a_read_is_400(client: FlaskClient) -> None:
    get(client, f"{QUESTIONNAIRE}?_summary=count", 400)


def test_conformance_resources_take_summary_and_elements(client: FlaskClient) -> None:
    questionnaire = get(client, f"{QUESTIONNAIRE}?_summary=true")
    assert subsetted(questionnaire)
    assert "item" not in questionnaire
    assert questionnaire["url"].endswith("gep-net-imaging-crf")
    valid(questionnaire)
    searched = get(client, "/fhir/StructureDefinition?_elements=url,version")
    for entry in searched["entry"]:
        assert set(entry["resource"]) <= {
            "resourceType",
            "id",
            "meta",
            "url",
            "version",
            "name",
            "status",
            "kind",
            "abstract",
            "type",
        }
    counted = get(client, "/fhir/ValueSet?_summary=count")
    assert counted["total"] > 0
    assert "entry" not in counted
    metadata = get(client, "/fhir/metadata?_summary=true")
    assert subsetted(metadata)
    valid(metadata)
