"""Helpers of the submission tests (``tests/test_services.py``, ``tests/web/test_submission_views
.py``): the example forms, ways to change one answer, the golden transaction Bundles compared as
parsed JSON without what the server or the clock sets, and stores that fail or misbehave."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.errors import FhirServerError
from fhirnet.fhir.resources import model_class, parse
from fhirnet.ports import Json, SearchParams

ROOT = Path(__file__).resolve().parents[1]
FORMS_DIR = ROOT / "examples" / "questionnaire-responses"
GOLDEN_DIR = ROOT / "examples" / "transactions"
#: A clock that is not UTC (style.md P13); its UTC date is the validator's "today".
NOW = dt.datetime(2026, 11, 21, 17, 5, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
RECIST = "small-bowel-net-prrt"
CHOI = "pancreatic-net-everolimus"
IRECIST = "g3-nec-immunotherapy"
#: Where forms are submitted (the FHIR create, answered with the form), and the media type of
#: every FHIR answer.
SUBMIT = "/fhir/QuestionnaireResponse"
#: The same submission answered with the DiagnosticReport: what the tests of the results post to.
SUBMIT_FOR_REPORT = "/fhir/QuestionnaireResponse/$submit"
FHIR_JSON = "application/fhir+json; charset=utf-8"
#: What fhirnet writes.
WRITTEN = (
    "QuestionnaireResponse",
    "BodyStructure",
    "Observation",
    "DiagnosticReport",
    "Provenance",
)


def form_paths(patient: str) -> list[Path]:
    """The patient's baseline and follow-up example forms (numbered 01, 02, ...), in date order;
    a pre-baseline form (00, before the baseline) is :func:`form` ``(patient, 0)``."""
    return [path for path in _all_forms(patient) if not path.name.startswith("00-")]


def _all_forms(patient: str) -> list[Path]:
    return sorted((FORMS_DIR / patient).glob("*.json"))


def _form_path(patient: str, number: int) -> Path:
    (path,) = (p for p in _all_forms(patient) if p.name.startswith(f"{number:02d}-"))
    return path


def form(patient: str, number: int) -> Json:
    """A fresh copy of the patient's example form ``number`` (its file's ``NN``: 1 = the
    baseline, 0 = the pre-baseline scan of a patient that has one)."""
    loaded: Json = json.loads(_form_path(patient, number).read_text(encoding="utf-8"))
    return loaded


def golden(patient: str, number: int) -> Json:
    path = GOLDEN_DIR / patient / _form_path(patient, number).name
    loaded: Json = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def items(resource: Json, link_id: str) -> list[Json]:
    """The top-level items ``link_id`` of a form."""
    return [item for item in resource["item"] if item["linkId"] == link_id]


def set_answer(item: Json, link_id: str, key: str, value: Any) -> None:
    """Set the answer of ``link_id`` (a top-level item, or one inside the group ``item``)."""
    for child in item.get("item", []):
        if child["linkId"].split(".")[-1] == link_id:
            child["answer"] = [{key: value}]
            return
    raise KeyError(link_id)


def answer_of(resource: Json, link_id: str) -> Any:
    (item,) = items(resource, link_id)
    return next(iter(item["answer"][0].values()))


def set_top(resource: Json, link_id: str, key: str, value: Any) -> None:
    (item,) = items(resource, link_id)
    item["answer"] = [{key: value}]


def target(resource: Json, lesion_id: str) -> Json:
    """The ``target-lesion`` group of ``lesion_id``."""
    for group in items(resource, "target-lesion"):
        if group["item"][0]["answer"][0]["valueString"] == lesion_id:
            return group
    raise KeyError(lesion_id)


def amended(resource: Json) -> Json:
    changed = copy.deepcopy(resource)
    changed["status"] = "amended"
    return changed


def normalised(bundle: Json) -> Json:
    """A transaction Bundle without what the server or the clock sets (as the golden-file test
    of ``tests/fhir/test_build.py`` compares them): ids, ``meta.lastUpdated``/``versionId``,
    ``issued``, ``recorded``, ``Bundle.timestamp``."""
    bundle = copy.deepcopy(bundle)
    for key in ("id", "timestamp"):
        bundle.pop(key, None)
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        meta = resource.get("meta", {})
        for key in ("lastUpdated", "versionId"):
            meta.pop(key, None)
        for key in ("id", "issued", "recorded"):
            resource.pop(key, None)
    return bundle


def bundle_of(*resources: Json, kind: str = "transaction") -> Json:
    """A Bundle submitting ``resources``."""
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": resource, "request": {"method": "POST", "url": "QuestionnaireResponse"}}
            for resource in resources
        ],
    }


def counts(store: EmbeddedStore) -> dict[str, int]:
    """How many resources of each written type the store holds."""
    return {kind: store.search_page(kind, {"_count": "0"}).total for kind in WRITTEN}


class RecordingStore:
    """The embedded store, noting every transaction Bundle sent to it."""

    def __init__(self, inner: EmbeddedStore) -> None:
        self.inner = inner
        self.sent: list[Json] = []

    def read(self, resource_type: str, resource_id: str) -> Json | None:
        return self.inner.read(resource_type, resource_id)

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        return self.inner.search(resource_type, params)

    def transaction(self, bundle: Json) -> Json:
        self.sent.append(copy.deepcopy(bundle))
        return self.inner.transaction(bundle)


class ParameterIgnoringStore(RecordingStore):
    """A server that ignores every search parameter, as sekmet-fhir 0.1.1 does for
    QuestionnaireResponse: every search answers all resources of the type."""

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        return self.inner.search(resource_type, {})


class FailingStore(RecordingStore):
    """The embedded store, with a transaction (or every search) that fails with ``error``."""

    def __init__(
        self, inner: EmbeddedStore, error: FhirServerError, *, on_search: bool = False
    ) -> None:
        super().__init__(inner)
        self.error = error
        self.on_search = on_search

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        if self.on_search:
            raise self.error
        return super().search(resource_type, params)

    def transaction(self, bundle: Json) -> Json:
        self.sent.append(copy.deepcopy(bundle))
        raise self.error


# -- talking to the app ------------------------------------------------------------------------


def post(
    client: FlaskClient, resource: Json, url: str = SUBMIT_FOR_REPORT, **headers: str
) -> TestResponse:
    """Submit ``resource``; by default with ``$submit``, whose answer is the DiagnosticReport."""
    return client.post(
        url, data=json.dumps(resource), content_type="application/fhir+json", headers=headers
    )


def body(response: TestResponse) -> Json:
    assert response.headers["Content-Type"] == FHIR_JSON
    loaded: Json = json.loads(response.get_data())
    return loaded


def issues_of(response: TestResponse, status: int) -> list[Json]:
    """The issues of the OperationOutcome answered with ``status`` (a valid resource)."""
    assert response.status_code == status, response.get_data(as_text=True)
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert parse(outcome, model_class("OperationOutcome")).issues == ()
    found: list[Json] = outcome["issue"]
    return found
