"""Hostile JSON bodies are refused before any work on them: nesting, values, items and answers,
Bundle entries, string lengths, lone surrogates; on the FHIR endpoint and the JSON API alike, with
the settings' limits (``FHIRNET_MAX_*``); and strict JSON and media types on every POST."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirnet.config import Settings, load_settings
from fhirnet.web.app import create_app
from fhirnet.web.errors import JsonLimitError
from fhirnet.web.limits import (
    JsonLimits,
    _check_precisely,
    _fits,
    check_json,
    no_duplicate_keys,
)
from tests.submissions import IRECIST, bundle_of, form

FHIR_POSTS = (
    "/fhir/QuestionnaireResponse",
    "/fhir",
    "/fhir/QuestionnaireResponse/$validate",
    "/fhir/QuestionnaireResponse/$extract",
)
API = "/api/v1/assessments"
FHIR = "application/fhir+json"


def post(client: FlaskClient, url: str, body: bytes, content_type: str = FHIR) -> Any:
    return client.post(url, data=body, content_type=content_type)


def issue(response: Any) -> dict[str, Any]:
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert response.content_type.startswith("application/fhir+json")
    first: dict[str, Any] = outcome["issue"][0]
    return first


def questionnaire_response(**fields: Any) -> bytes:
    return json.dumps({"resourceType": "QuestionnaireResponse", **fields}).encode()


HOSTILE = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, "structure", id="100,000 deep"),
    pytest.param(b"[" * 65 + b"]" * 65, 400, "structure", id="65 deep"),
    pytest.param(
        questionnaire_response(item=[{"linkId": "a", "answer": [{"valueString": "x"}]}] * 1001),
        413,
        "too-long",
        id="2,002 items and answers",
    ),
    pytest.param(questionnaire_response(status="x" * 10_001), 422, "too-long", id="long string"),
    pytest.param(json.dumps({"x" * 10_001: 1}).encode(), 422, "too-long", id="long key"),
    pytest.param(questionnaire_response(id="a" * 65), 422, "too-long", id="id of 65"),
    pytest.param(
        json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [{}] * 101}).encode(),
        413,
        "too-long",
        id="101 Bundle entries",
    ),
    pytest.param(json.dumps([0] * 200_001).encode(), 413, "too-long", id="200,001 values"),
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": "\\ud800"}', 400, "structure"),
    pytest.param(questionnaire_response(status="a\u0000b"), 400, "structure", id="NUL"),
    pytest.param(questionnaire_response(status="\u001b[31m"), 400, "structure", id="ESC"),
    pytest.param(json.dumps({"a\u0007": 1}).encode(), 400, "structure", id="BEL in a key"),
]


@pytest.mark.parametrize("url", FHIR_POSTS)
@pytest.mark.parametrize(("body", "status", "code"), HOSTILE)
def test_a_fhir_post_refuses_a_body_over_a_limit_with_an_operation_outcome(
    client: FlaskClient, url: str, body: bytes, status: int, code: str
) -> None:
    response = post(client, url, body)

    assert response.status_code == status
    assert issue(response)["code"] == code


@pytest.mark.parametrize(("body", "status", "code"), HOSTILE)
def test_the_json_api_refuses_a_body_over_a_limit_with_its_error_envelope(
    client: FlaskClient, body: bytes, status: int, code: str
) -> None:
    response = post(client, API, body, "application/json")

    # The API has no 400; its schemas bound each list (the value count is left to them).
    assert response.status_code == (422 if status == 400 or body.startswith(b"[0") else status)
    assert set(response.get_json()) == {"errors"}


def test_the_outcome_locates_the_string_over_the_limit(client: FlaskClient) -> None:
    body = questionnaire_response(item=[{"linkId": "a"}, {"linkId": "b" * 10_001}])

    found = issue(post(client, "/fhir/QuestionnaireResponse", body))

    assert found["expression"] == ["QuestionnaireResponse.item[1].linkId"]


def test_the_api_envelope_locates_the_string_over_the_limit(
    client: FlaskClient, valid_body: Any
) -> None:
    body = valid_body()
    body["timepoints"][0]["date"] = "2" * 10_001

    response = post(client, API, json.dumps(body).encode(), "application/json")

    assert response.status_code == 422
    assert response.get_json() == {
        "errors": {"$.timepoints[0].date": ["A string has more than 10000 characters."]}
    }


def test_every_example_form_and_a_bundle_of_all_are_within_the_default_limits() -> None:
    forms = [form(IRECIST, number) for number in range(1, 6)]
    for resource in forms:
        check_json(resource, JsonLimits())
    check_json(bundle_of(*forms), JsonLimits())


def test_items_are_counted_per_resource_so_a_bundle_of_forms_is_not_summed() -> None:
    one = {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "a"}] * 3}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": one}] * 3}

    check_json(bundle, JsonLimits(max_items=3))
    with pytest.raises(JsonLimitError) as raised:
        check_json(bundle, JsonLimits(max_items=2))

    assert raised.value.expression == "Bundle.entry[2].resource"


@pytest.mark.parametrize(
    ("limits", "body", "fits"),
    [
        (JsonLimits(max_depth=3), [[[1]]], True),
        (JsonLimits(max_depth=3), [[[[1]]]], False),
        (JsonLimits(max_values=4), [1, 2, 3], True),  # the array and its three numbers
        (JsonLimits(max_values=4), [1, 2, 3, 4], False),
        (JsonLimits(max_string_length=3), {"abc": "def"}, True),
        (JsonLimits(max_string_length=3), {"abc": "defg"}, False),
        (JsonLimits(max_string_length=3), "abcd", False),  # the body itself a string
        (JsonLimits(max_bundle_entries=1), {"resourceType": "Bundle", "entry": [{}]}, True),
        (JsonLimits(max_bundle_entries=1), {"resourceType": "Bundle", "entry": [{}, {}]}, False),
        (JsonLimits(), {"resourceType": "Patient", "id": "a" * 64}, True),
        (JsonLimits(), {"id": "a" * 65}, True),  # not a resource: an element id has no limit
        (JsonLimits(), "\U0001f600 caf\u00e9", True),
        (JsonLimits(max_items=3), {"resourceType": "X", "item": [{"answer": [1, 2]}]}, True),
        (JsonLimits(max_items=3), {"resourceType": "X", "item": [{"answer": [1, 2, 3]}]}, False),
        (JsonLimits(max_items=1), {"item": [1, 2], "a": {"resourceType": "X", "item": [1]}}, True),
        (JsonLimits(max_items=1), {"a": {"resourceType": "X", "item": [{"item": [1]}]}}, False),
        (
            JsonLimits(max_items=1),
            {"resourceType": "X", "item": [{"resourceType": "Y", "item": [1]}]},
            True,
        ),
    ],
)
def test_check_json_honours_each_limit_exactly_at_its_boundary(
    limits: JsonLimits, body: Any, fits: bool
) -> None:
    assert _fits(body, limits) == fits  # the cheap pass agrees with the precise walk
    if fits:
        check_json(body, limits)
    else:
        with pytest.raises(JsonLimitError):
            check_json(body, limits)


def test_check_json_walks_100_000_levels_without_recursion() -> None:
    body: list[Any] = []
    for _ in range(100_000):
        body = [body]

    check_json(body, JsonLimits(max_depth=200_000, max_values=200_000))
    with pytest.raises(JsonLimitError) as raised:
        check_json(body, JsonLimits())

    assert raised.value.status == 400


def test_the_limits_come_from_the_settings(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, max_json_depth=2, max_string_length=5))
    client = app.test_client()

    assert post(client, "/fhir", b"[[[]]]").status_code == 400
    assert post(client, "/fhir", questionnaire_response(status="x" * 6)).status_code == 422


def test_the_limit_variables_are_read() -> None:
    settings = load_settings(
        {
            "FHIRNET_MAX_JSON_DEPTH": "10",
            "FHIRNET_MAX_JSON_VALUES": "11",
            "FHIRNET_MAX_STRING_LENGTH": "12",
            "FHIRNET_MAX_ITEMS": "13",
            "FHIRNET_MAX_BUNDLE_ENTRIES": "14",
            "FHIRNET_AUTH": "none",
        }
    )

    assert (
        settings.max_json_depth,
        settings.max_json_values,
        settings.max_string_length,
        settings.max_items,
        settings.max_bundle_entries,
    ) == (10, 11, 12, 13, 14)


STRICT = [
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": NaN}', id="NaN"),
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": -Infinity}', id="-Infinity"),
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": 1e999}', id="1e999"),
    pytest.param(
        b'{"resourceType": "QuestionnaireResponse", "resourceType": "QuestionnaireResponse"}',
        id="duplicate key",
    ),
]


@pytest.mark.parametrize("url", FHIR_POSTS)
@pytest.mark.parametrize("body", STRICT)
def test_a_fhir_post_refuses_json_that_fhir_json_cannot_be(
    client: FlaskClient, url: str, body: bytes
) -> None:
    response = post(client, url, body)

    assert response.status_code == 400
    assert issue(response)["code"] == "structure"


@pytest.mark.parametrize("url", [*FHIR_POSTS, API])
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/fhir+xml",
        "",
        "application/json; charset=latin-1",
    ],
)
def test_every_post_refuses_a_body_that_is_not_json_with_415(
    client: FlaskClient, url: str, content_type: str
) -> None:
    response = post(client, url, b"{}", content_type)

    assert response.status_code == 415


@pytest.mark.parametrize("url", FHIR_POSTS)
@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "Application/FHIR+JSON; charset=UTF-8",
        "application/json;charset=utf-8",
    ],
)
def test_a_fhir_post_takes_both_json_media_types_with_or_without_charset(
    client: FlaskClient, url: str, content_type: str
) -> None:
    response = post(client, url, b"{}", content_type)

    assert response.status_code == 400  # past the media type: {} is no resource
    assert "resourceType" in issue(response)["diagnostics"]


def test_tab_carriage_return_and_line_feed_are_text() -> None:
    check_json({"resourceType": "QuestionnaireResponse", "text": "a\tb\r\nc"}, JsonLimits())


# The cheap pass and the precise walk (check_json runs the second only when the first is unsure).

#: Characters of text, and those the limits concern: control characters, lone surrogates.
TEXT_CHARACTERS = ["a", "\u00e9", "\U0001f600", "\t", "\n", "\r"]
NOT_TEXT_CHARACTERS = ["\x00", "\x1f", "\ud83d", "\ude00"]


def json_values(characters: list[str]) -> st.SearchStrategy[Any]:
    """JSON values whose strings are made of ``characters``, shaped as resources at times."""
    text = st.one_of(
        st.text(st.sampled_from(characters), max_size=6),
        st.sampled_from(["Bundle", "QuestionnaireResponse", "a" * 64, "a" * 65]),
    )
    keys = st.one_of(st.sampled_from(["item", "answer", "resourceType", "id", "entry"]), text)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)

    def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        identifier = st.one_of(text, st.sampled_from(["a" * 64, "a" * 65]))
        listed = st.lists(children, max_size=4)
        resource = st.fixed_dictionaries(
            {"resourceType": st.sampled_from(["QuestionnaireResponse", "Patient", "Bundle"])},
            optional={"id": identifier, "item": listed, "answer": listed, "entry": listed},
        )
        bundle = st.fixed_dictionaries(
            {"resourceType": st.just("Bundle"), "entry": listed}, optional={"id": identifier}
        )
        return st.one_of(listed, st.dictionaries(keys, children, max_size=4), resource, bundle)

    return st.recursive(scalars, containers, max_leaves=30)


#: Values of text only (mostly within the limits drawn for them), and values of any characters.
JSON_VALUES = st.one_of(
    json_values(TEXT_CHARACTERS), json_values(TEXT_CHARACTERS + NOT_TEXT_CHARACTERS)
)


def measures(body: Any) -> tuple[int, int, int, int, int]:
    """The least limits ``body`` fits in: depth, values, string length (keys included), items
    and answers of one resource, entries of one Bundle (used to draw limits at the boundary)."""
    depth = values = length = items = entries = 0
    stack: list[tuple[Any, int, list[int] | None]] = [(body, 0, None)]
    while stack:
        value, level, counter = stack.pop()
        values += 1
        if isinstance(value, str):
            length = max(length, len(value))
        if not isinstance(value, dict | list):
            continue
        depth = max(depth, level + 1)
        children: Any = enumerate(value)
        if isinstance(value, dict):
            if isinstance(value.get("resourceType"), str):
                counter = [0]
                if value["resourceType"] == "Bundle" and isinstance(value.get("entry"), list):
                    entries = max(entries, len(value["entry"]))
            children = value.items()
        for key, child in children:
            if isinstance(key, str):
                length = max(length, len(key))
                if key in {"item", "answer"} and isinstance(child, list) and counter:
                    counter[0] += len(child)
                    items = max(items, counter[0])
            stack.append((child, level + 1, counter))
    return depth, values, length, items, entries


@st.composite
def bodies_and_limits(draw: st.DrawFn) -> tuple[Any, JsonLimits]:
    """A JSON value and limits at or above what it needs, but for at most one a step under."""
    body = draw(JSON_VALUES)
    under = draw(st.sampled_from([None, 0, 1, 2, 3, 4]))
    depth, values, length, items, entries = (
        max(0, need - 1 if number == under else need + draw(st.sampled_from([0, 0, 1, 10])))
        for number, need in enumerate(measures(body))
    )
    limits = JsonLimits(
        max_depth=depth,
        max_values=values,
        max_string_length=length,
        max_items=items,
        max_bundle_entries=entries,
    )
    return body, limits


def precise_error(body: Any, limits: JsonLimits) -> JsonLimitError | None:
    try:
        _check_precisely(body, limits)
    except JsonLimitError as error:
        return error
    return None


def outcome(error: JsonLimitError | None) -> tuple[Any, ...] | None:
    """What a client sees of an error: status, code, message and where."""
    if error is None:
        return None
    return (error.status, error.code, str(error), error.path, error.expression)


@settings(max_examples=1000, deadline=None)
@given(case=bodies_and_limits())
def test_the_cheap_pass_accepts_exactly_what_the_precise_walk_accepts(
    case: tuple[Any, JsonLimits],
) -> None:
    body, limits = case
    # True => the precise walk finds nothing (so check_json raises what it alone would);
    # False => it finds something (so no body within the limits is walked twice).
    assert _fits(body, limits) == (precise_error(body, limits) is None)


@settings(max_examples=200, deadline=None)
@given(case=bodies_and_limits())
def test_check_json_raises_what_the_precise_walk_raises(case: tuple[Any, JsonLimits]) -> None:
    body, limits = case
    expected = precise_error(body, limits)

    try:
        check_json(body, limits)
        raised = None
    except JsonLimitError as error:
        raised = error

    assert outcome(raised) == outcome(expected)


@pytest.mark.parametrize(
    "code",
    [*range(0x21), 0x7F, 0xD7FF, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xE000, 0x10FFFF],
    ids=lambda code: f"U+{code:04X}",
)
def test_the_cheap_pass_tells_each_character_as_the_precise_walk_does(code: int) -> None:
    for body in ({"a": f"b{chr(code)}c"}, {f"b{chr(code)}c": 1}, [chr(code)], chr(code)):
        assert _fits(body, JsonLimits()) == (precise_error(body, JsonLimits()) is None)


def test_a_decoded_str_holds_a_surrogate_only_when_the_json_held_a_lone_one() -> None:
    pair, lone, reversed_pair = (
        json.loads(text) for text in ('"\\ud83d\\ude00"', '"\\ud800"', '"\\ude00\\ud83d"')
    )

    assert pair == "\U0001f600"  # one astral code point, which is text
    check_json({"a": pair}, JsonLimits())
    assert lone == "\ud800"
    assert reversed_pair == "\ude00\ud83d"  # two code points: each alone
    for text in (lone, reversed_pair):
        assert not _fits({"a": text}, JsonLimits())
        with pytest.raises(JsonLimitError):
            check_json({"a": text}, JsonLimits())


def test_two_lone_surrogates_in_adjacent_strings_are_not_a_pair() -> None:
    body = {"resourceType": "QuestionnaireResponse", "a": "\ud83d", "b": "\ude00"}

    assert not _fits(body, JsonLimits())
    with pytest.raises(JsonLimitError) as raised:
        check_json(body, JsonLimits())
    assert raised.value.expression == "QuestionnaireResponse.a"


def test_strings_are_measured_each_on_its_own_not_summed() -> None:
    body = {"abc": "def", "ghi": ["jkl", "mno"]}

    assert _fits(body, JsonLimits(max_string_length=3))
    assert not _fits({**body, "p": "qrst"}, JsonLimits(max_string_length=3))


def test_the_cheap_pass_is_unsure_of_anything_json_does_not_make() -> None:
    class Text(str):
        pass

    assert _fits({"a": [1, 2.5, True, None, "b"]}, JsonLimits())
    for body in ({"a": Text("b")}, [Text("b")], {"a": (1,)} | {"b": {1: 2}}, {1: "a"}, Text("b")):
        assert not _fits(body, JsonLimits())


EXAMPLES = sorted((Path(__file__).parents[2] / "examples").rglob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_body_is_accepted_by_the_cheap_pass_alone(path: Path) -> None:
    assert _fits(json.loads(path.read_text(encoding="utf-8")), JsonLimits())


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        ('{"a": 1, "b": 2, "a": 3}', "a"),
        ('{"a": 1, "b": 2, "b": 2}', "b"),
        ('{"outer": {"x": 1, "y": {"x": 2}, "x": 3}}', "x"),  # only within one object
    ],
    ids=["first key again", "same value again", "nested object"],
)
def test_a_repeated_key_is_refused_naming_it(text: str, repeated: str) -> None:
    with pytest.raises(ValueError, match=f"duplicate key '{repeated}'"):
        json.loads(text, object_pairs_hook=no_duplicate_keys)


def test_keys_repeated_only_across_objects_are_kept_in_order() -> None:
    text = '{"b": {"a": 1, "b": 2}, "a": [{"a": 1}, {"a": 2}]}'

    loaded = json.loads(text, object_pairs_hook=no_duplicate_keys)

    assert loaded == json.loads(text)
    assert list(loaded) == ["b", "a"]
