"""``fhirnet/fhir/resources.py``: the R4B models stand for R4, and :func:`parse` reports every
structural problem as an issue with a FHIRPath expression instead of raising."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhirnet.fhir.outcome import IssueType, Severity
from fhirnet.fhir.resources import (
    FHIR_VERSION,
    Questionnaire,
    QuestionnaireResponse,
    model_class,
    parse,
)
from tests.fhir import builders as b

QR = "QuestionnaireResponse"


def minimal(**elements: Any) -> dict[str, Any]:
    return {"resourceType": QR, "status": "completed", **elements}


def answered(*answers: dict[str, Any]) -> dict[str, Any]:
    return minimal(item=[{"linkId": "q", "answer": list(answers)}])


def test_a_valid_response_parses_into_the_r4b_model_without_issues() -> None:
    parsed = parse(b.follow_up(), QuestionnaireResponse)

    assert parsed.issues == ()
    assert parsed.rejected == frozenset()
    assert isinstance(parsed.resource, QuestionnaireResponse)
    assert parsed.resource.item is not None
    assert parsed.resource.item[0].linkId == "imaging-date"


def test_the_r4b_questionnaire_response_has_exactly_the_r4_elements() -> None:
    # R4 (4.0.1) QuestionnaireResponse, questionnaireresponse.html: R4B changed nothing here.
    r4 = ["identifier", "basedOn", "partOf", "questionnaire", "status", "subject", "encounter"]
    r4 += ["authored", "author", "source", "item"]
    domain_resource = ["id", "meta", "implicitRules", "language", "text", "contained"]
    domain_resource += ["extension", "modifierExtension"]

    assert QuestionnaireResponse.elements_sequence() == domain_resource + r4
    assert FHIR_VERSION == "4.0.1"


def test_the_catalog_questionnaire_is_a_valid_r4b_questionnaire() -> None:
    parsed = parse(b.CATALOG.questionnaire(), Questionnaire)

    assert parsed.issues == ()
    assert parsed.resource is not None


def test_model_class_finds_models_by_type_name() -> None:
    assert model_class("Bundle").get_resource_type() == "Bundle"
    with pytest.raises(ValueError, match="Nope"):
        model_class("Nope")


def test_parse_leaves_its_input_untouched() -> None:
    resource = answered({"valueDecimal": "abc"}, {"valueBoolean": True})
    before = copy.deepcopy(resource)

    parse(resource, QuestionnaireResponse)

    assert resource == before


@pytest.mark.parametrize(
    ("data", "code", "expression", "message"),
    [
        ([1, 2], IssueType.STRUCTURE, QR, "got an array"),
        ("text", IssueType.STRUCTURE, QR, "got a string"),
        (None, IssueType.STRUCTURE, QR, "got null"),
        ({"resourceType": "Patient"}, IssueType.STRUCTURE, QR, "resourceType is 'Patient'"),
        ({"resourceType": 5, "status": "completed"}, IssueType.STRUCTURE, QR, "resourceType is 5"),
    ],
    ids=["an array", "a string", "null", "another resource type", "a number as resourceType"],
)
def test_anything_but_the_expected_resource_is_one_structure_issue_and_no_model(
    data: object, code: IssueType, expression: str, message: str
) -> None:
    parsed = parse(data, QuestionnaireResponse)

    assert parsed.resource is None
    assert [(i.severity, i.code, i.expression) for i in parsed.issues] == [
        (Severity.ERROR, code, expression)
    ]
    assert message in parsed.issues[0].message


@pytest.mark.parametrize(
    ("data", "code", "expression", "named"),
    [
        # The models accept a missing resourceType; FHIR JSON requires it (R4 json.html).
        ({"status": "completed"}, IssueType.REQUIRED, QR, "resourceType"),
        (minimal(foo=1), IssueType.STRUCTURE, f"{QR}.foo", "foo"),
        ({"resourceType": QR}, IssueType.REQUIRED, QR, "status"),
        (
            minimal(item=[{"answer": [{"valueString": "x"}]}]),
            IssueType.REQUIRED,
            f"{QR}.item[0]",
            "linkId",
        ),
        (minimal(item=[{"linkId": 5}]), IssueType.STRUCTURE, f"{QR}.item[0].linkId", "string"),
        (minimal(item={"linkId": "q"}), IssueType.STRUCTURE, f"{QR}.item", "list"),
        (
            answered({"valueDecimal": "abc"}),
            IssueType.VALUE,
            f"{QR}.item[0].answer[0].valueDecimal",
            "Decimal",
        ),
        (
            answered({"valueInteger": 3.5}),
            IssueType.VALUE,
            f"{QR}.item[0].answer[0].valueInteger",
            "integer",
        ),
        (
            answered({"valueDate": "2025-02-30T"}),
            IssueType.VALUE,
            f"{QR}.item[0].answer[0].valueDate",
            "Date",
        ),
        (
            answered({"valueCoding": "CT"}),
            IssueType.STRUCTURE,
            f"{QR}.item[0].answer[0].valueCoding",
            "",
        ),
        (
            answered({"valueDecimal": 1, "valueString": "1"}),
            IssueType.VALUE,
            f"{QR}.item[0].answer[0]",
            "one",
        ),
        (
            minimal(_status={"extension": [{"url": 5}]}),
            IssueType.STRUCTURE,
            f"{QR}.status.extension[0].url",
            "",
        ),
        (
            minimal(subject={"reference": "Patient/1", "foo": 2}),
            IssueType.STRUCTURE,
            f"{QR}.subject.foo",
            "foo",
        ),
        (
            minimal(contained=[{"resourceType": "Patient", "foo": 1}]),
            IssueType.STRUCTURE,
            f"{QR}.contained[0].foo",
            "foo",
        ),
        # fhir_core raises KeyError, not a ValidationError, for an unknown contained type.
        (minimal(contained=[{"resourceType": "Nope"}]), IssueType.STRUCTURE, QR, "Nope"),
        # FHIR JSON forbids what the models let through (json.html, ele-1).
        (minimal(item=[]), IssueType.STRUCTURE, f"{QR}.item", "empty array"),
        (answered({}), IssueType.STRUCTURE, f"{QR}.item[0].answer[0]", "empty object"),
        (
            answered({"valueDecimal": None}),
            IssueType.STRUCTURE,
            f"{QR}.item[0].answer[0].valueDecimal",
            "null",
        ),
    ],
    ids=[
        "no resourceType",
        "unknown element",
        "missing status",
        "missing linkId",
        "linkId not a string",
        "item not an array",
        "malformed decimal",
        "integer with a fraction",
        "malformed date",
        "Coding given as a string",
        "two value[x] in one answer",
        "bad extension of a primitive",
        "unknown element in a Reference",
        "unknown element in a contained resource",
        "contained resource of an unknown type",
        "empty array",
        "empty object",
        "null property",
    ],
)
def test_a_structural_problem_is_one_issue_at_the_offending_element(
    data: dict[str, Any], code: IssueType, expression: str, named: str
) -> None:
    parsed = parse(data, QuestionnaireResponse)

    assert [(i.severity, i.code, i.expression) for i in parsed.issues] == [
        (Severity.ERROR, code, expression)
    ]
    assert named in parsed.issues[0].message


def test_a_missing_element_is_reported_at_its_parent_and_rejects_nothing() -> None:
    parsed = parse(minimal(item=[{"answer": [{"valueString": "x"}]}]), QuestionnaireResponse)

    assert parsed.issues[0].message == "element 'linkId' is required but missing"
    assert parsed.rejected == frozenset()


def test_rejected_elements_are_listed_so_later_checks_skip_them() -> None:
    parsed = parse(answered({"valueDecimal": "abc"}, {"valueString": None}), QuestionnaireResponse)

    assert parsed.rejected == {
        f"{QR}.item[0].answer[0].valueDecimal",
        f"{QR}.item[0].answer[1].valueString",
    }


def test_every_structural_problem_is_reported_at_once() -> None:
    data = {
        "status": "completed",
        "foo": 1,
        "item": [{"linkId": "q", "answer": [{"valueDecimal": "abc"}]}, {"linkId": "r", "item": []}],
    }

    expressions = [i.expression for i in parse(data, QuestionnaireResponse).issues]

    assert sorted(map(str, expressions)) == [
        QR,
        f"{QR}.foo",
        f"{QR}.item[0].answer[0].valueDecimal",
        f"{QR}.item[1].item",
    ]


def test_the_models_coerce_json_strings_which_the_questionnaire_validator_must_catch() -> None:
    # Documents why questionnaire.py checks the JSON type of answer values itself.
    parsed = parse(
        answered({"valueDecimal": "12.5"}, {"valueBoolean": "true"}), QuestionnaireResponse
    )

    assert parsed.issues == ()
