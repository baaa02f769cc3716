"""Search values as the store parses them (:mod:`fhirnet.adapters.store.parser`): R4's escapes
(``\\,`` ``\\|`` ``\\$`` ``\\\\``) and the separators they protect, with and without escapes."""

from __future__ import annotations

import pytest

from fhirnet.adapters.store.parser import parse_query
from fhirnet.adapters.store.query import TokenValue


def tokens(value: str) -> tuple[object, ...]:
    query = parse_query("Observation", {"identifier": value}, conditional=True)
    (criterion,) = query.criteria
    return criterion.values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s|c", (TokenValue(system="s", code="c"),)),
        ("c", (TokenValue(system=None, code="c", any_system=True),)),
        ("|c", (TokenValue(system=None, code="c"),)),
        ("s|", (TokenValue(system="s", code=None),)),
        ("s|a|b", (TokenValue(system="s", code="a|b"),)),
        ("s|a,t|b", (TokenValue(system="s", code="a"), TokenValue(system="t", code="b"))),
        (",s|a,,", (TokenValue(system="s", code="a"),)),
        ("s|a\\,b", (TokenValue(system="s", code="a,b"),)),
        ("s\\|x|c", (TokenValue(system="s|x", code="c"),)),
        ("s|a\\\\", (TokenValue(system="s", code="a\\"),)),
        ("s|a\\$b\\q", (TokenValue(system="s", code="a$b\\q"),)),
        ("https://x.org/a|urn:uuid:1", (TokenValue(system="https://x.org/a", code="urn:uuid:1"),)),
    ],
)
def test_token_values_with_and_without_escapes(value: str, expected: tuple[object, ...]) -> None:
    assert tokens(value) == expected
