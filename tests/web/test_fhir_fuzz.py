"""Property: whatever is posted to the FHIR endpoints, the answer is never a server error.

``POST /fhir/QuestionnaireResponse``, ``POST /fhir``, ``$validate`` and ``$extract`` get arbitrary
JSON, resources of arbitrary content, nesting up to 100,000 deep, strings up to 100,000
characters, arbitrary bytes, arbitrary media types, and example forms with random mutations;
every answer is below 500 and an OperationOutcome. The number of requests run is printed in the
terminal summary (as ``tests/web/test_fuzz.py`` does for the JSON API).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.submissions import CHOI, IRECIST, NOW, RECIST, bundle_of, form, form_paths

URLS = (
    "/fhir/QuestionnaireResponse",
    "/fhir",
    "/fhir/QuestionnaireResponse/$validate",
    "/fhir/QuestionnaireResponse/$extract",
)
SMALL_BODY_LIMIT = 200_000  # small enough that some fuzzed bodies exceed it
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run; explore with --hypothesis-seed=N
    # One app per test function, shared by its examples: the store only grows, which is fine.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FORMS = [
    form(patient, number)
    for patient in (RECIST, CHOI, IRECIST)
    for number in range(1, len(form_paths(patient)) + 1)
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["QuestionnaireResponse", "Bundle", "Parameters", "completed", "2025-01-15", "T1"]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
resource_types = st.sampled_from(["QuestionnaireResponse", "Bundle", "Parameters", "Patient"])


class _FuzzSummary:
    """A plugin registered by the first fuzz test: counts statuses, prints them at the end."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.statuses:
            by_status = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
            terminalreporter.write_sep("-", "FHIR fuzz")
            terminalreporter.write_line(
                f"fuzz: {self.statuses.total()} requests posted to the FHIR endpoints ({by_status})"
            )


@pytest.fixture(scope="session")
def fhir_fuzz_statuses(pytestconfig: pytest.Config) -> Counter[int]:
    summary = _FuzzSummary()
    pytestconfig.pluginmanager.register(summary, "fhirnet-fhir-fuzz-summary")
    return summary.statuses


@pytest.fixture
def fuzz_client(settings: Settings) -> FlaskClient:
    limited = dataclasses.replace(settings, max_body_bytes=SMALL_BODY_LIMIT)
    return create_app(limited, clock=lambda: NOW).test_client()


def post_and_check(
    client: FlaskClient, url: str, data: bytes, content_type: str, seen: Counter[int]
) -> int:
    """Post, record the status, and check the promise: no 5xx, an OperationOutcome."""
    response = client.post(url, data=data, content_type=content_type)
    seen[response.status_code] += 1
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    if response.status_code >= 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"
    return response.status_code


def nested(depth: int, kind: str) -> bytes:
    """``depth`` levels of arrays, objects or resources, built as bytes (no recursion)."""
    opening, closing = {
        "array": (b"[", b"]"),
        "object": (b'{"a":', b"}"),
        "resource": (b'{"resourceType":"QuestionnaireResponse","item":[', b"]}"),
    }[kind]
    return opening * depth + b"1" * (kind != "resource") + closing * depth


def paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*path, index))


@st.composite
def mutated_forms(draw: st.DrawFn) -> Any:
    """An example form, or a Bundle or Parameters holding forms, with one to three mutations."""
    resource: Any = copy.deepcopy(draw(st.sampled_from(FORMS)))
    wrapper = draw(st.sampled_from(["none", "transaction", "batch", "parameters"]))
    if wrapper in ("transaction", "batch"):
        others = draw(st.lists(st.sampled_from(FORMS), max_size=2))
        resource = bundle_of(resource, *copy.deepcopy(others), kind=wrapper)
    elif wrapper == "parameters":
        name = draw(st.sampled_from(["resource", "questionnaire-response"]))
        resource = {
            "resourceType": "Parameters",
            "parameter": [{"name": name, "resource": resource}],
        }
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(paths(resource))))
        if not path:
            continue
        parent = resource
        for key in path[:-1]:
            parent = parent[key]
        operation = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if operation == "replace":
            parent[path[-1]] = draw(json_values | st.text(min_size=1000, max_size=20_000))
        elif operation == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return resource


@FUZZ
@given(url=st.sampled_from(URLS), value=json_values)
def test_any_json_value_is_answered_without_a_server_error(
    fuzz_client: FlaskClient, fhir_fuzz_statuses: Counter[int], url: str, value: Any
) -> None:
    post_and_check(
        fuzz_client, url, json.dumps(value).encode(), "application/fhir+json", fhir_fuzz_statuses
    )


@FUZZ
@given(
    url=st.sampled_from(URLS),
    resource_type=resource_types,
    fields=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
)
def test_any_resource_content_is_answered_without_a_server_error(
    fuzz_client: FlaskClient,
    fhir_fuzz_statuses: Counter[int],
    url: str,
    resource_type: str,
    fields: dict[str, Any],
) -> None:
    body = json.dumps({**fields, "resourceType": resource_type}).encode()
    post_and_check(fuzz_client, url, body, "application/fhir+json", fhir_fuzz_statuses)


@FUZZ
@given(url=st.sampled_from(URLS), data=st.data())
def test_a_mutated_example_form_is_answered_without_a_server_error(
    fuzz_client: FlaskClient, fhir_fuzz_statuses: Counter[int], url: str, data: st.DataObject
) -> None:
    body = json.dumps(data.draw(mutated_forms())).encode()
    post_and_check(fuzz_client, url, body, "application/fhir+json", fhir_fuzz_statuses)


@FUZZ
@given(
    url=st.sampled_from(URLS),
    depth=st.integers(min_value=0, max_value=100_000) | st.sampled_from([63, 64, 65, 1000]),
    kind=st.sampled_from(["array", "object", "resource"]),
)
def test_any_nesting_depth_is_answered_without_a_server_error(
    fuzz_client: FlaskClient, fhir_fuzz_statuses: Counter[int], url: str, depth: int, kind: str
) -> None:
    status = post_and_check(
        fuzz_client, url, nested(depth, kind), "application/fhir+json", fhir_fuzz_statuses
    )
    if depth > 64:
        assert status in (400, 413)


@FUZZ
@given(
    url=st.sampled_from(URLS),
    length=st.integers(min_value=0, max_value=SMALL_BODY_LIMIT),
    character=st.characters(codec="utf-8", exclude_categories=["Cs"]),
    where=st.sampled_from(["status", "id", "key", "answer"]),
)
def test_a_huge_string_is_answered_without_a_server_error(
    fuzz_client: FlaskClient,
    fhir_fuzz_statuses: Counter[int],
    url: str,
    length: int,
    character: str,
    where: str,
) -> None:
    resource = copy.deepcopy(FORMS[0])
    text = character * length
    if where == "key":
        resource[text] = 1
    elif where == "answer":
        resource["item"][0]["answer"] = [{"valueString": text}]
    else:
        resource[where] = text
    post_and_check(
        fuzz_client, url, json.dumps(resource).encode(), "application/fhir+json", fhir_fuzz_statuses
    )


@FUZZ
@given(url=st.sampled_from(URLS), data=st.binary(max_size=SMALL_BODY_LIMIT // 50))
def test_any_bytes_are_answered_without_a_server_error(
    fuzz_client: FlaskClient, fhir_fuzz_statuses: Counter[int], url: str, data: bytes
) -> None:
    post_and_check(fuzz_client, url, data, "application/fhir+json", fhir_fuzz_statuses)


@FUZZ
@given(
    url=st.sampled_from(URLS),
    content_type=st.sampled_from(
        [
            "text/plain",
            "application/xml",
            "",
            "application/json",
            "application/fhir+json; charset=x",
        ]
    )
    | st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t),
    data=st.binary(max_size=200) | st.sampled_from([json.dumps(FORMS[0]).encode()]),
)
def test_any_content_type_is_answered_without_a_server_error(
    fuzz_client: FlaskClient,
    fhir_fuzz_statuses: Counter[int],
    url: str,
    content_type: str,
    data: bytes,
) -> None:
    post_and_check(fuzz_client, url, data, content_type, fhir_fuzz_statuses)
