"""Property: whatever is posted to ``/api/v1/assessments``, the answer is never a server error.

The contract promises "never a 500 for bad input": every request ends in 200, 413, 415 or 422,
and every error carries the ``{"errors": ...}`` envelope. Hypothesis posts arbitrary JSON values,
arbitrary bytes, and valid requests with one to three random mutations (a value replaced, a key
removed or added, a list item duplicated or dropped, a number pushed to an extreme). The number
of requests run is printed in the terminal summary by ``tests/conftest.py``.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirnet.config import Settings
from fhirnet.criteria.models import Criteria
from fhirnet.web.app import create_app

URL = "/api/v1/assessments"
ALLOWED_STATUSES = {200, 413, 415, 422}
SMALL_BODY_LIMIT = 20_000  # small enough that some fuzzed bodies exceed it

FUZZ = settings(
    max_examples=300,
    deadline=None,
    # Same examples on every run, so CI is not flaky; explore more with --hypothesis-seed=N.
    derandomize=True,
    # The client fixture is module-scoped and stateless, so sharing it across examples is safe.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

ValidBody = Callable[..., dict[str, Any]]
Path = tuple[str | int, ...]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["2025-01-15", "NaN", "12", "CT", "present", "pre-baseline", "choi"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
#: Numbers that stress the arithmetic: boundaries, tiny, huge, negative, non-finite.
numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([0, 0.0, -0.0, 5, 9.8, 10, 15, 1000, 1000.0000001, 1e-300, 5e-324])
)


@pytest.fixture(scope="module")
def fuzz_client() -> FlaskClient:
    """One app for all examples of this module, with a small body limit to reach 413 too."""
    return create_app(Settings(max_body_bytes=SMALL_BODY_LIMIT, auth="none")).test_client()


def post_and_check(client: FlaskClient, data: bytes, content_type: str, seen: Counter[int]) -> int:
    """Post, record the status, and check the promise: no 5xx, errors in the envelope."""
    response = client.post(URL, data=data, content_type=content_type)
    seen[response.status_code] += 1
    assert response.status_code in ALLOWED_STATUSES, response.get_data(as_text=True)[:2000]
    if response.status_code != 200:
        body = response.get_json()
        assert set(body) == {"errors"}
        assert all(p.startswith("$") and isinstance(m, list) for p, m in body["errors"].items())
    return response.status_code


def paths(value: Any, path: Path = ()) -> Iterator[Path]:
    """Every path inside a JSON value, the root included."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*path, index))


def get_at(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def _replace(body: Any, path: Path, value: Any) -> Any:
    """``body`` with the value at ``path`` replaced (the root too)."""
    if not path:
        return value
    get_at(body, path[:-1])[path[-1]] = value
    return body


#: Which paths each mutation applies to.
APPLIES_TO: dict[str, Callable[[Path, Any], bool]] = {
    "replace": lambda path, value: True,
    "number": lambda path, value: isinstance(value, int | float) and not isinstance(value, bool),
    "delete": lambda path, value: bool(path),
    "add-key": lambda path, value: isinstance(value, dict),
    "duplicate-item": lambda path, value: isinstance(value, list) and bool(value),
    "drop-item": lambda path, value: isinstance(value, list) and bool(value),
    "date": lambda path, value: bool(path) and path[-1] == "date",
}


@st.composite
def mutated_bodies(draw: st.DrawFn, valid_body: ValidBody) -> Any:
    """A valid request for some criteria with one to three random mutations applied.

    The mutation is drawn first and then a path it applies to, so that e.g. "push a number to an
    extreme" always hits a number (most paths are strings and objects).
    """
    criteria = draw(st.sampled_from([c.value for c in Criteria]))
    body: Any = valid_body(criteria, pre_baseline=draw(st.booleans()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        operation = draw(st.sampled_from(sorted(APPLIES_TO)))
        candidates = [p for p in paths(body) if APPLIES_TO[operation](p, get_at(body, p))]
        if not candidates:
            continue
        path = draw(st.sampled_from(candidates))
        target = get_at(body, path)
        if operation == "replace":
            body = _replace(body, path, draw(json_values))
        elif operation == "number":
            body = _replace(body, path, draw(numbers))
        elif operation == "delete":
            del get_at(body, path[:-1])[path[-1]]
        elif operation == "add-key":
            target[draw(st.text(max_size=12))] = draw(json_values)
        elif operation == "duplicate-item":
            target.append(copy.deepcopy(draw(st.sampled_from(target))))
        elif operation == "drop-item":
            del target[draw(st.integers(min_value=0, max_value=len(target) - 1))]
        else:
            dates = st.sampled_from(["2025-01-15", "2025-03-20", "2024-01-01", "9999-12-31"])
            body = _replace(body, path, draw(dates | st.dates().map(str)))
    return body


@FUZZ
@given(value=json_values)
def test_any_json_value_is_answered_without_a_server_error(
    fuzz_client: FlaskClient, fuzz_statuses: Counter[int], value: Any
) -> None:
    post_and_check(fuzz_client, json.dumps(value).encode(), "application/json", fuzz_statuses)


@FUZZ
@given(data=st.binary(max_size=SMALL_BODY_LIMIT + 100))
def test_any_bytes_are_answered_without_a_server_error(
    fuzz_client: FlaskClient, fuzz_statuses: Counter[int], data: bytes
) -> None:
    post_and_check(fuzz_client, data, "application/json", fuzz_statuses)


@FUZZ
@given(size=st.integers(min_value=0, max_value=2 * SMALL_BODY_LIMIT))
def test_a_body_of_any_size_is_answered_without_a_server_error(
    fuzz_client: FlaskClient, fuzz_statuses: Counter[int], valid_body: ValidBody, size: int
) -> None:
    data = json.dumps(valid_body()).encode()
    data += b" " * max(0, size - len(data))  # whitespace keeps it valid JSON

    status = post_and_check(fuzz_client, data, "application/json", fuzz_statuses)

    assert status == (413 if len(data) > SMALL_BODY_LIMIT else 200)


@FUZZ
@given(
    content_type=st.sampled_from(["text/plain", "application/xml", "", "application/fhir+json"])
    | st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t),
    data=st.binary(max_size=200),
)
def test_any_content_type_is_answered_without_a_server_error(
    fuzz_client: FlaskClient, fuzz_statuses: Counter[int], content_type: str, data: bytes
) -> None:
    post_and_check(fuzz_client, data, content_type, fuzz_statuses)


@FUZZ
@given(data=st.data())
def test_a_mutated_valid_request_is_answered_without_a_server_error(
    fuzz_client: FlaskClient,
    fuzz_statuses: Counter[int],
    valid_body: ValidBody,
    data: st.DataObject,
) -> None:
    body = data.draw(mutated_bodies(valid_body))

    post_and_check(fuzz_client, json.dumps(body).encode(), "application/json", fuzz_statuses)
