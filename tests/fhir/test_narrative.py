"""The generated narrative of what fhirnet writes (:mod:`fhirnet.fhir.narrative`)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fhirnet.fhir.narrative import XHTML, narrative_div, with_narrative

GOLDEN = sorted((Path(__file__).parents[2] / "examples" / "transactions").glob("*/*.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_written_resource_but_the_form_has_a_generated_xhtml_narrative(path: Path) -> None:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "QuestionnaireResponse":
            continue
        text = resource["text"]
        assert text["status"] == "generated"
        root = ElementTree.fromstring(text["div"])  # noqa: S314 -- our own output, well-formed XML
        assert root.tag == f"{{{XHTML}}}div"
        assert not [e for e in root.iter() if e.tag.endswith(("script", "style", "a"))]
        assert not [e for e in root.iter() if e is not root and e.attrib]


def test_values_are_escaped_and_the_form_keeps_its_own_narrative() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "<script>alert(1)</script> & more"},
        "valueString": '"quoted" <b>',
    }
    div = narrative_div(observation)
    assert "<script>" not in div
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in div
    ElementTree.fromstring(div)  # noqa: S314 -- our own output
    form = {"resourceType": "QuestionnaireResponse", "text": {"status": "additional", "div": "x"}}
    assert with_narrative(form) == form


def test_the_narrative_is_deterministic_and_replaces_an_earlier_one() -> None:
    resource = {"resourceType": "Observation", "id": "a", "meta": {}, "status": "final"}
    first = with_narrative(resource)
    assert list(first) == ["resourceType", "id", "meta", "text", "status"]
    retracted = with_narrative({**first, "status": "entered-in-error"})
    assert "entered-in-error" in retracted["text"]["div"]
    assert with_narrative(first) == first
