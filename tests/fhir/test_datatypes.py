"""JSON values as fhirnet writes them (:mod:`fhirnet.fhir.datatypes`): a form read with
``parse_float=Decimal`` is written back with the numbers it was sent with."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from fhirnet.fhir.datatypes import as_json


class Colour(StrEnum):
    RED = "red"


def test_decimals_at_any_depth_become_json_numbers() -> None:
    sent = '{"a": [{"valueDecimal": 4.20}, 1.5e3, 7], "b": {"c": [[0.1]]}}'
    read = json.loads(sent, parse_float=Decimal)

    written = as_json(read)

    assert written == {"a": [{"valueDecimal": 4.2}, 1500, 7], "b": {"c": [[0.1]]}}
    assert isinstance(written["a"][1], int)
    assert not any(isinstance(v, Decimal) for v in _leaves(written))


def test_the_copy_shares_no_container_and_keeps_other_values_as_they_are() -> None:
    value = {"list": [1, True, None, "x", Colour.RED], "tuple": (1, 2), "nested": {"k": [3.5]}}

    written = as_json(value)

    assert written == {
        "list": [1, True, None, "x", "red"],
        "tuple": [1, 2],
        "nested": {"k": [3.5]},
    }
    assert written["list"] is not value["list"]
    assert written["nested"] is not value["nested"]
    assert written["list"][4] is Colour.RED


def test_any_mapping_becomes_a_dict_with_string_keys() -> None:
    assert as_json(MappingProxyType({1: Decimal("2")})) == {"1": 2}


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
