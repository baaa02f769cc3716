"""``validate_response``: a QuestionnaireResponse against FHIR R4 and the CRF Questionnaire.

One invalid response per rule (each exactly one issue: severity, code and FHIRPath), the
enableWhen semantics of R4 on the real form and on small synthetic Questionnaires, every problem
at once, and a property: no damage to a valid response makes the validator raise.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fhirpathpy import compile as fhirpath
from fhirpathpy.models import models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirnet.fhir.outcome import Issue, IssueType, Severity
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL, Catalog
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.fhir.questionnaire_answers import answers_by_link_id
from fhirnet.fhir.questionnaire_index import questionnaire_index
from tests.fhir import builders as b
from tests.fhir.builders import (
    CATALOG,
    Json,
    boolean,
    coding,
    date,
    decimal,
    group,
    integer,
    quantity,
    question,
    string,
)

#: The tests' current date (UTC). The fixtures' dates all lie before it.
TODAY = dt.date(2025, 6, 1)
QR = "QuestionnaireResponse"
ERROR, WARNING = Severity.ERROR, Severity.WARNING

Mutation = Callable[[Json], object]


def validate(resource: Any, catalog: Catalog = CATALOG) -> list[Issue]:
    return validate_response(resource, catalog, today=TODAY)


def found(issues: list[Issue]) -> list[tuple[Severity, IssueType, str | None]]:
    return [(issue.severity, issue.code, issue.expression) for issue in issues]


def at(resource: Json, *path: int) -> Json:
    """The item at ``path``: ``at(r, 8, 3)`` is ``r["item"][8]["item"][3]``."""
    item = resource
    for index in path:
        item = item["item"][index]
    return item


# Mutations of the follow-up fixture (indices: see builders.follow_up).


def answer(path: tuple[int, ...], value: Json) -> Mutation:
    """Replace the first answer of the item at ``path``."""
    return lambda r: at(r, *path)["answer"].__setitem__(0, value)


def also_answer(path: tuple[int, ...], value: Json) -> Mutation:
    return lambda r: at(r, *path)["answer"].append(value)


def drop(*path: int) -> Mutation:
    return lambda r: at(r, *path[:-1])["item"].pop(path[-1])


def insert(path: tuple[int, ...], item: Json | list[Json]) -> Mutation:
    """Insert ``item`` so that it sits at ``path`` (a list: its items, see :func:`_flatten`)."""
    return lambda r: at(r, *path[:-1])["item"].insert(path[-1], item)


def update(path: tuple[int, ...] = (), **elements: Any) -> Mutation:
    return lambda r: at(r, *path).update(elements)


def remove(key: str, path: tuple[int, ...] = ()) -> Mutation:
    return lambda r: at(r, *path).pop(key)


def both(*mutations: Mutation) -> Mutation:
    return lambda r: [mutation(r) for mutation in mutations]


def duplicate(index: int) -> Mutation:
    return lambda r: r["item"].insert(index + 1, copy.deepcopy(r["item"][index]))


STRUCTURE, REQUIRED, VALUE = IssueType.STRUCTURE, IssueType.REQUIRED, IssueType.VALUE
CODE_INVALID, NOT_FOUND = IssueType.CODE_INVALID, IssueType.NOT_FOUND
BUSINESS_RULE = IssueType.BUSINESS_RULE

SIZE = (8, 3)  # target-lesion T1, lesion-size
T1_SIZE = ".item[8].item[3].answer[0]"


def rule(
    name: str, mutation: Mutation, code: IssueType, where: str, severity: Severity = ERROR
) -> Any:
    """One row: ``mutation`` of the follow-up fixture gives exactly one issue, at ``QR + where``."""
    return pytest.param(mutation, severity, code, QR + where, id=name)


RULES = [
    # -- the resource (FHIR structure comes from the R4B models, see test_resources.py)
    rule("FHIR: unknown element", update(foo="bar"), STRUCTURE, ".foo"),
    rule(
        "FHIR: malformed date",
        answer((0,), date("2025-02-30")),
        VALUE,
        ".item[0].answer[0].valueDate",
    ),
    rule("FHIR: item without linkId", remove("linkId", (4,)), REQUIRED, ".item[4]"),
    rule("wrong resourceType", update(resourceType="Observation"), STRUCTURE, ""),
    rule("status outside its value set", update(status="done"), CODE_INVALID, ".status"),
    rule("subject missing", remove("subject"), REQUIRED, ""),
    rule(
        "subject not a Patient",
        update(subject={"reference": "Group/7"}),
        VALUE,
        ".subject.reference",
    ),
    rule(
        "authored in the future",
        update(authored="2025-06-02T08:00:00+02:00"),
        BUSINESS_RULE,
        ".authored",
    ),
    rule("questionnaire missing", remove("questionnaire"), REQUIRED, ""),
    rule(
        "questionnaire not ours",
        update(questionnaire="http://loinc.org/q/1"),
        NOT_FOUND,
        ".questionnaire",
    ),
    rule(
        "questionnaire of an unknown version",
        update(questionnaire=f"{QUESTIONNAIRE_URL}|0.0.9"),
        NOT_FOUND,
        ".questionnaire",
    ),
    # -- where items are
    rule("unknown linkId", insert((16,), question("grade", string("G2"))), NOT_FOUND, ".item[16]"),
    rule(
        "linkId of another group",
        insert((8, 4), question("lesion-status", coding("lesion-status", "present"))),
        STRUCTURE,
        ".item[8].item[4]",
    ),
    rule(
        "unprefixed linkId in the non-target group",
        insert((10, 0), question("lesion-id", string("NT1"))),
        STRUCTURE,
        ".item[10].item[0]",
    ),
    rule(
        "group item at the top",
        insert((16,), question("lesion-size", decimal(3))),
        STRUCTURE,
        ".item[16]",
    ),
    rule(
        "items out of order",
        lambda r: r["item"].insert(0, r["item"].pop(1)),
        STRUCTURE,
        ".item[1]",
        WARNING,
    ),
    rule("answer on a group", update((8,), answer=[string("T1")]), STRUCTURE, ".item[8].answer[0]"),
    rule(
        "item nested in a question",
        update((0,), item=[question("lesion-id", string("T1"))]),
        STRUCTURE,
        ".item[0].item[0]",
    ),
    # -- answer types
    rule("wrong answer type", answer(SIZE, string("24.5 mm")), STRUCTURE, f"{T1_SIZE}.valueString"),
    rule(
        "decimal as a JSON string",
        answer(SIZE, {"valueDecimal": "24.5"}),
        STRUCTURE,
        f"{T1_SIZE}.valueDecimal",
    ),
    rule(
        "boolean as a JSON string",
        answer((8, 2), {"valueBoolean": "false"}),
        STRUCTURE,
        ".item[8].item[2].answer[0].valueBoolean",
    ),
    rule(
        "integer item answered with a decimal",
        answer((15, 7), decimal(3)),
        STRUCTURE,
        ".item[15].item[7].answer[0].valueDecimal",
    ),
    rule("answer without a value", answer((0,), {"id": "a1"}), STRUCTURE, ".item[0].answer[0]"),
    # -- required items and enableWhen
    rule("required item missing", drop(0), REQUIRED, ""),
    rule("required item of a group missing", drop(8, 0), REQUIRED, ".item[8]"),
    rule("required item without answer", remove("answer", (0,)), REQUIRED, ".item[0]"),
    rule(
        "required item missing, in progress",
        both(drop(0), update(status="in-progress")),
        REQUIRED,
        "",
        WARNING,
    ),
    rule("baseline-date missing at follow-up", drop(3), REQUIRED, ""),
    rule(
        "answered while disabled: PET reference without PET",
        update((2,), answer=[coding("imaging-procedure", "CT")]),
        BUSINESS_RULE,
        ".item[12]",
    ),
    # -- occurrences
    rule(
        "6th target lesion",
        insert((10,), [b.target_lesion(f"T{n}", "Liver") for n in (3, 4, 5, 6)]),
        STRUCTURE,
        ".item[13]",
    ),
    rule("non-repeating group twice", duplicate(12), STRUCTURE, ".item[13]"),
    rule(
        "2nd answer to a non-repeating question",
        also_answer((0,), date("2025-05-21")),
        STRUCTURE,
        ".item[0].answer[1]",
    ),
    rule(
        "repeating question split over two items (qrs-2)",
        both(
            lambda r: r["item"][2]["answer"].pop(),
            insert((3,), question("imaging-procedure", coding("imaging-procedure", "FDG-PET"))),
        ),
        STRUCTURE,
        ".item[3]",
    ),
    # -- values
    rule(
        "code not in the value set",
        answer((8, 1), {"valueCoding": {"system": "http://snomed.info/sct", "code": "80146002"}}),
        CODE_INVALID,
        ".item[8].item[1].answer[0].valueCoding",
    ),
    rule(
        "code of another item's value set",
        answer((1,), coding("imaging-procedure", "CT")),
        CODE_INVALID,
        ".item[1].answer[0].valueCoding",
    ),
    rule(
        "display not the concept's",
        lambda r: at(r, 8, 1)["answer"][0]["valueCoding"].update(display="Lung"),
        CODE_INVALID,
        ".item[8].item[1].answer[0].valueCoding.display",
        WARNING,
    ),
    rule("decimal below minValue", answer(SIZE, decimal(-0.1)), VALUE, f"{T1_SIZE}.valueDecimal"),
    rule("decimal above maxValue", answer(SIZE, decimal(1000.5)), VALUE, f"{T1_SIZE}.valueDecimal"),
    rule(
        "integer above maxValue",
        answer((15, 7), integer(5)),
        VALUE,
        ".item[15].item[7].answer[0].valueInteger",
    ),
    rule(
        "quantity in the wrong unit",
        answer(SIZE, quantity(2.45, "cm")),
        VALUE,
        f"{T1_SIZE}.valueQuantity",
    ),
    rule(
        "quantity in the right unit, out of range",
        answer(SIZE, quantity(1200, "mm")),
        VALUE,
        f"{T1_SIZE}.valueQuantity.value",
    ),
    rule(
        "date in the future",
        answer((0,), date("2025-06-03")),
        BUSINESS_RULE,
        ".item[0].answer[0].valueDate",
    ),
]


def _flatten(mutation: Mutation) -> Mutation:
    """``insert`` of a list inserts its items one after the other."""

    def apply(resource: Json) -> None:
        mutation(resource)
        for item_list in _item_lists(resource):
            for i in range(len(item_list) - 1, -1, -1):
                if isinstance(item_list[i], list):
                    item_list[i : i + 1] = item_list[i]

    return apply


def _item_lists(resource: Json) -> Iterator[list[Any]]:
    items = resource.get("item")
    if isinstance(items, list):
        yield items
        for item in items:
            if isinstance(item, dict):
                yield from _item_lists(item)


@pytest.mark.parametrize(
    ("mutation", "severity", "code", "expression"),
    RULES,
)
def test_each_rule_reports_one_issue_with_its_code_and_expression(
    mutation: Mutation, severity: Severity, code: IssueType, expression: str
) -> None:
    resource = b.follow_up()
    _flatten(mutation)(resource)

    issues = validate(resource)

    assert found(issues) == [(severity, code, expression)]
    assert issues[0].message


# Valid responses.


@pytest.mark.parametrize(
    "resource",
    [b.follow_up(), b.baseline(), b.five_targets()],
    ids=["follow-up", "baseline", "5 targets, a non-target and a new lesion"],
)
def test_a_valid_response_has_no_issues(resource: Json) -> None:
    assert validate(resource) == []


@pytest.mark.parametrize(
    "mutation",
    [
        answer(SIZE, quantity(24.5, "mm")),
        update(questionnaire=QUESTIONNAIRE_URL),
        update(subject={"reference": "https://ehr.example/fhir/Patient/p1/_history/3"}),
        update(subject={"reference": "urn:uuid:0b6c4a37-5e55-4d2b-9a55-2d1c6c1f1b0e"}),
        update(subject={"type": "Patient", "identifier": {"system": "urn:x", "value": "1"}}),
        # Date-only values may be 1 day ahead of UTC (a reader at UTC+2 after midnight)...
        answer((0,), date("2025-06-02")),
        # ... a dateTime with a time is compared in UTC: 2025-06-01T23:30Z.
        update(authored="2025-06-02T01:30:00+02:00"),
        update(status="amended"),
        # An item with neither answer nor items is ignored even when disabled (as HL7 does).
        insert((13,), {"linkId": "intratumoral-nodules"}),
        lambda r: at(r, 8, 1)["answer"][0]["valueCoding"].update(display="LIVER"),
    ],
    ids=[
        "quantity in the item's UCUM unit",
        "questionnaire without version",
        "absolute versioned Patient reference",
        "urn:uuid Patient reference",
        "logical Patient reference",
        "imaging date tomorrow in UTC",
        "authored after midnight at UTC+2",
        "amended",
        "empty disabled item",
        "display differing in case only",
    ],
)
def test_accepted_variants_of_a_valid_response(mutation: Mutation) -> None:
    resource = b.follow_up()
    mutation(resource)

    assert validate(resource) == []


def test_validation_is_pure_and_deterministic() -> None:
    resource = b.follow_up()
    resource["item"][0]["answer"][0] = string("yesterday")
    before = copy.deepcopy(resource)

    first = validate(resource)

    assert resource == before
    assert validate(resource) == first


# Every problem at once.


def test_every_problem_is_reported_at_once() -> None:
    resource = b.follow_up()
    del resource["subject"]
    at(resource, 8, 3)["answer"][0] = decimal(-3)
    at(resource, 9, 1)["answer"][0] = string("lymph node")
    resource["item"].insert(16, question("comment", string("fine")))

    issues = validate(resource)

    assert found(issues) == [
        (ERROR, REQUIRED, QR),
        (ERROR, NOT_FOUND, f"{QR}.item[16]"),
        (ERROR, VALUE, f"{QR}.item[8].item[3].answer[0].valueDecimal"),
        (ERROR, STRUCTURE, f"{QR}.item[9].item[1].answer[0].valueString"),
    ]


def test_structural_and_subject_problems_are_reported_even_for_a_foreign_questionnaire() -> None:
    resource = b.follow_up()
    resource.update(questionnaire="http://example.org/Questionnaire/x", foo=1, status="x")
    del resource["subject"]
    resource["item"][0]["answer"][0] = string("not checked: the form is unknown")

    assert found(validate(resource)) == [
        (ERROR, STRUCTURE, f"{QR}.foo"),
        (ERROR, CODE_INVALID, f"{QR}.status"),
        (ERROR, REQUIRED, QR),
        (ERROR, NOT_FOUND, f"{QR}.questionnaire"),
    ]


def test_a_problem_the_fhir_models_report_is_not_repeated() -> None:
    resource = b.follow_up()
    at(resource, 8, 3)["answer"][0] = {"valueDecimal": "big"}  # malformed: the models reject it

    assert found(validate(resource)) == [(ERROR, VALUE, f"{QR}{T1_SIZE}.valueDecimal")]


# Versions.


@pytest.mark.parametrize(
    ("canonical", "accepted"),
    [
        (f"{QUESTIONNAIRE_URL}|{CATALOG.version}", True),
        (QUESTIONNAIRE_URL, True),
        (f"{QUESTIONNAIRE_URL}|0.2.0", False),
        (f"{QUESTIONNAIRE_URL}|", True),  # an empty version names no version
        (f"{QUESTIONNAIRE_URL}/", False),
        ("https://fhirnet.dev/fhir/Questionnaire/other|0.1.0", False),
    ],
    ids=[
        "our version",
        "no version",
        "unknown version",
        "empty version",
        "trailing slash",
        "other",
    ],
)
def test_the_questionnaire_canonical_must_be_ours_in_a_known_version(
    canonical: str, accepted: bool
) -> None:
    resource = b.follow_up()
    resource["questionnaire"] = canonical

    issues = validate(resource)

    assert found(issues) == ([] if accepted else [(ERROR, NOT_FOUND, f"{QR}.questionnaire")])


# enableWhen on the form.


def test_baseline_date_is_required_at_follow_up_only() -> None:
    follow_up = b.follow_up()
    del follow_up["item"][3]
    baseline = b.baseline()

    assert found(validate(follow_up)) == [(ERROR, REQUIRED, QR)]
    assert "baseline-date" in validate(follow_up)[0].message
    assert validate(baseline) == []


@pytest.mark.parametrize(
    ("procedures", "enabled"),
    [
        (["CT", "FDG-PET"], True),
        (["SSTR-PET"], True),
        (["MRI", "DOPA-PET"], True),
        (["CT"], False),
        (["SSTR-SPECT"], False),  # SPECT is not PET: no SUL reference
        (["CT", "MRI"], False),
    ],
    ids=["CT and FDG PET", "SSTR PET", "MRI and DOPA PET", "CT", "SSTR SPECT", "CT and MRI"],
)
def test_the_pet_reference_group_is_enabled_by_any_pet_procedure(
    procedures: list[str], enabled: bool
) -> None:
    resource = b.follow_up()
    at(resource, 2)["answer"] = [coding("imaging-procedure", p) for p in procedures]

    issues = validate(resource)

    expected = [] if enabled else [(ERROR, BUSINESS_RULE, f"{QR}.item[12]")]
    assert found(issues) == expected


@pytest.mark.parametrize(
    ("criteria", "assessment", "enabled"),
    [
        ("C122394", "follow-up", True),
        ("C122394", "baseline", False),
        ("C124415", "follow-up", False),
    ],
    ids=["Choi at follow-up", "Choi at baseline", "RECIST at follow-up"],
)
def test_intratumoral_nodules_need_choi_and_follow_up_together(
    criteria: str, assessment: str, enabled: bool
) -> None:
    resource = b.response(
        question("imaging-date", date("2025-05-22")),
        question("assessment-type", coding("assessment-type", assessment)),
        question("imaging-procedure", coding("imaging-procedure", "CT")),
        *([question("baseline-date", date("2025-01-15"))] if assessment == "follow-up" else []),
        question("response-criteria", coding("response-criteria", criteria)),
        question("intratumoral-nodules", coding("intratumoral-nodules", "new")),
    )

    issues = validate(resource)

    last = f"{QR}.item[{len(resource['item']) - 1}]"
    assert found(issues) == ([] if enabled else [(ERROR, BUSINESS_RULE, last)])


def test_everything_of_follow_up_is_disabled_at_baseline() -> None:
    resource = b.follow_up()
    at(resource, 1)["answer"][0] = coding("assessment-type", "baseline")

    issues = validate(resource)

    # baseline-date, nadir-date, new-lesion, response-vs-baseline, response-vs-nadir
    assert found(issues) == [(ERROR, BUSINESS_RULE, f"{QR}.item[{i}]") for i in (3, 4, 11, 13, 14)]
    assert "enabled when assessment-type = follow-up" in issues[0].message


def test_a_syndrome_is_enabled_by_its_sibling_in_the_risk_group() -> None:
    resource = b.follow_up()
    at(resource, 15, 1)["answer"][0] = coding("functional-status", "non-functioning")

    assert found(validate(resource)) == [(ERROR, BUSINESS_RULE, f"{QR}.item[15].item[2]")]


def test_an_invalid_answer_to_a_question_leaves_its_dependents_unjudged() -> None:
    # A typo in assessment-type must not also make five follow-up items "disabled".
    resource = b.follow_up()
    at(resource, 1)["answer"][0] = {"valueCoding": {"system": "urn:x", "code": "followup"}}

    assert found(validate(resource)) == [
        (ERROR, CODE_INVALID, f"{QR}.item[1].answer[0].valueCoding")
    ]


def test_items_inside_a_disabled_group_are_not_checked() -> None:
    resource = b.baseline()
    lesion = b.new_lesion("N1", "Liver", "CT")
    lesion["item"][3]["answer"][0] = decimal(-1)
    resource["item"].append(lesion)

    assert found(validate(resource)) == [(ERROR, BUSINESS_RULE, f"{QR}.item[5]")]


def _complete() -> Json:
    """The follow-up fixture with every item that has an enableWhen answered (Choi's nodules
    added), so that the validator reports exactly the disabled ones."""
    resource = b.follow_up()
    resource["item"].insert(
        13, question("intratumoral-nodules", coding("intratumoral-nodules", "new"))
    )
    return resource


def _choose(path: tuple[int, ...], link_id: str, *codes: str) -> Mutation:
    return lambda r: at(r, *path).update(answer=[coding(link_id, code) for code in codes])


@pytest.mark.parametrize(
    "mutation",
    [
        lambda r: None,
        _choose((1,), "assessment-type", "baseline"),
        _choose((2,), "imaging-procedure", "CT"),
        _choose((2,), "imaging-procedure", "SSTR-SPECT", "DOPA-PET"),
        _choose((7,), "response-criteria", "C122394"),
        both(
            _choose((7,), "response-criteria", "C122394"),
            _choose((1,), "assessment-type", "baseline"),
        ),
        _choose((16, 1), "functional-status", "non-functioning"),
    ],
    ids=[
        "as is",
        "baseline",
        "CT only",
        "SPECT and DOPA PET",
        "Choi",
        "Choi at baseline",
        "non-functioning",
    ],
)
def test_disabled_items_agree_with_fhirpath(mutation: Mutation) -> None:
    # Oracle: each enableWhen of the form written as one FHIRPath expression, run by fhirpathpy.
    resource = _complete()
    mutation(resource)
    oracle = {
        link_id
        for link_id, expression in _enable_when_as_fhirpath().items()
        if fhirpath(expression, models["r4"])(resource, {}) != [True]
    }

    issues = validate(resource)

    disabled = {_link_id(resource, i.expression) for i in issues if i.code is BUSINESS_RULE}
    assert disabled == oracle
    assert [i for i in issues if i.code is not BUSINESS_RULE] == []


def _enable_when_as_fhirpath() -> dict[str, str]:
    """``linkId`` → FHIRPath that is true when the item is enabled, read from the Questionnaire
    JSON (not from the validator's index). The form's conditions are all ``=`` on a Coding of a
    question that has no enableWhen itself, so one expression per item says it all."""
    expressions = {}
    pending = list(CATALOG.questionnaire()["item"])
    while pending:
        item = pending.pop()
        pending += item.get("item", [])
        terms = []
        for condition in item.get("enableWhen", []):
            assert condition["operator"] == "=", item["linkId"]
            coding = condition["answerCoding"]
            terms.append(
                f"repeat(item).where(linkId = '{condition['question']}').answer.value"
                f".where(system = '{coding['system']}' and code = '{coding['code']}').exists()"
            )
        if terms:
            joiner = " or " if item.get("enableBehavior") == "any" else " and "
            expressions[item["linkId"]] = joiner.join(terms)
    return expressions


def _link_id(resource: Json, expression: str | None) -> str:
    item: Any = resource
    for index in re.findall(r"item\[(\d+)\]", expression or ""):
        item = item["item"][int(index)]
    return str(item["linkId"])


# enableWhen semantics on small Questionnaires.


def catalog_of(*items: Json) -> Catalog:
    """A catalog whose only resource is a Questionnaire with our URL and version and ``items``."""
    questionnaire = {
        "resourceType": "Questionnaire",
        "id": "gep-net-imaging-crf",
        "url": QUESTIONNAIRE_URL,
        "version": CATALOG.version,
        "status": "active",
        "item": list(items),
    }
    return Catalog({"version": CATALOG.version}, (questionnaire,))


def when(question: str, operator: str, **answer: Any) -> dict[str, Any]:
    return {"question": question, "operator": operator, **answer}


@pytest.mark.parametrize(
    ("item_type", "condition", "answers", "enabled"),
    [
        ("integer", when("n", "exists", answerBoolean=True), [integer(3)], True),
        ("integer", when("n", "exists", answerBoolean=True), [], False),
        ("integer", when("n", "exists", answerBoolean=False), [], True),
        ("integer", when("n", "=", answerInteger=3), [integer(3)], True),
        ("integer", when("n", "=", answerInteger=3), [integer(4)], False),
        ("integer", when("n", "=", answerInteger=3), [integer(2), integer(3)], True),
        ("integer", when("n", "!=", answerInteger=3), [integer(4)], True),
        ("integer", when("n", "!=", answerInteger=3), [integer(4), integer(3)], False),
        ("integer", when("n", "!=", answerInteger=3), [], True),
        ("integer", when("n", ">", answerInteger=3), [integer(4)], True),
        ("integer", when("n", ">", answerInteger=3), [integer(3)], False),
        ("integer", when("n", ">", answerInteger=3), [], False),
        ("integer", when("n", "<", answerInteger=3), [integer(2)], True),
        ("integer", when("n", ">=", answerInteger=3), [integer(3)], True),
        ("integer", when("n", "<=", answerInteger=3), [integer(4)], False),
        ("decimal", when("n", ">", answerDecimal=3.25), [decimal(3.5)], True),
        ("decimal", when("n", "<", answerInteger=3), [decimal(2.99)], True),
        ("date", when("n", ">", answerDate="2025-01-01"), [date("2025-01-02")], True),
        ("date", when("n", "<=", answerDate="2025-01-01"), [date("2025-01-02")], False),
        ("string", when("n", "=", answerString="yes"), [string("yes")], True),
        ("boolean", when("n", "=", answerBoolean=False), [boolean(False)], True),
        ("boolean", when("n", ">", answerBoolean=False), [boolean(True)], False),
        (
            "choice",
            when("n", "=", answerCoding={"code": "x"}),
            [{"valueCoding": {"system": "urn:s", "code": "x"}}],
            True,
        ),
        (
            "choice",
            when("n", "=", answerCoding={"system": "urn:t", "code": "x"}),
            [{"valueCoding": {"system": "urn:s", "code": "x"}}],
            False,
        ),
        ("integer", when("n", "=", answerString="3"), [integer(3)], False),
    ],
    ids=[
        "exists true, answered",
        "exists true, unanswered",
        "exists false, unanswered",
        "= equal",
        "= different",
        "= any of several answers",
        "!= different",
        "!= one of several equal",
        "!= unanswered (no answer is equal)",
        "> greater",
        "> equal",
        "> unanswered",
        "< less",
        ">= equal",
        "<= greater",
        "decimal > decimal",
        "decimal < integer",
        "date >",
        "date <=",
        "string =",
        "boolean =",
        "booleans are not ordered",
        "Coding without system matches the code",
        "Coding of another system",
        "string never equals an integer",
    ],
)
def test_enable_when_operators_follow_r4(
    item_type: str, condition: dict[str, Any], answers: list[Json], enabled: bool
) -> None:
    catalog = catalog_of(
        {"linkId": "n", "type": item_type, "repeats": True},
        {"linkId": "dependent", "type": "string", "required": True, "enableWhen": [condition]},
    )
    resource = b.response(question("n", *answers)) if answers else b.response()

    issues = validate(resource, catalog)

    # An enabled required item that is missing is the one issue; a disabled one is none.
    assert found(issues) == ([(ERROR, REQUIRED, QR)] if enabled else [])


def test_enable_behavior_any_and_all() -> None:
    conditions = [when("a", "=", answerBoolean=True), when("b", "=", answerBoolean=True)]
    catalog = catalog_of(
        {"linkId": "a", "type": "boolean"},
        {"linkId": "b", "type": "boolean"},
        {
            "linkId": "any",
            "type": "string",
            "required": True,
            "enableWhen": conditions,
            "enableBehavior": "any",
        },
        {
            "linkId": "all",
            "type": "string",
            "required": True,
            "enableWhen": conditions,
            "enableBehavior": "all",
        },
    )
    resource = b.response(question("a", boolean(True)), question("b", boolean(False)))

    assert [i.message.split("'")[1] for i in validate(resource, catalog)] == ["any"]


REPEATED_GROUP = catalog_of(
    {
        "linkId": "g",
        "type": "group",
        "repeats": True,
        "item": [
            {"linkId": "kind", "type": "string"},
            {
                "linkId": "detail",
                "type": "string",
                "enableWhen": [when("kind", "=", answerString="x")],
            },
        ],
    }
)


def test_enable_when_looks_in_the_same_group_repetition_first() -> None:
    resource = b.response(
        group("g", question("kind", string("x")), question("detail", string("fine"))),
        group("g", question("kind", string("y")), question("detail", string("disabled here"))),
    )

    assert found(validate(resource, REPEATED_GROUP)) == [
        (ERROR, BUSINESS_RULE, f"{QR}.item[1].item[1]")
    ]


def test_enable_when_falls_back_to_the_nearest_enclosing_level() -> None:
    catalog = catalog_of(
        {"linkId": "kind", "type": "string"},
        {
            "linkId": "g",
            "type": "group",
            "repeats": True,
            "item": [
                {
                    "linkId": "detail",
                    "type": "string",
                    "required": True,
                    "enableWhen": [when("kind", "=", answerString="x")],
                }
            ],
        },
    )

    enabled = b.response(question("kind", string("x")), group("g"), group("g"))
    disabled = b.response(
        question("kind", string("y")), group("g", question("detail", string("d")))
    )

    assert found(validate(enabled, catalog)) == [
        (ERROR, REQUIRED, f"{QR}.item[1]"),
        (ERROR, REQUIRED, f"{QR}.item[2]"),
    ]
    assert found(validate(disabled, catalog)) == [(ERROR, BUSINESS_RULE, f"{QR}.item[1].item[0]")]


def test_a_disabled_question_counts_as_unanswered() -> None:
    catalog = catalog_of(
        {"linkId": "a", "type": "boolean"},
        {"linkId": "b", "type": "string", "enableWhen": [when("a", "=", answerBoolean=True)]},
        {
            "linkId": "c",
            "type": "string",
            "required": True,
            "enableWhen": [when("b", "exists", answerBoolean=True)],
        },
    )
    resource = b.response(question("a", boolean(False)), question("b", string("stale")))

    # b is answered while disabled; c, which depends on b, is therefore not required.
    assert found(validate(resource, catalog)) == [(ERROR, BUSINESS_RULE, f"{QR}.item[1]")]


def test_a_cycle_of_enable_when_disables_its_items_without_looping() -> None:
    catalog = catalog_of(
        {"linkId": "a", "type": "string", "enableWhen": [when("b", "exists", answerBoolean=True)]},
        {"linkId": "b", "type": "string", "enableWhen": [when("a", "exists", answerBoolean=True)]},
    )
    resource = b.response(question("a", string("1")), question("b", string("2")))

    assert {i.code for i in validate(resource, catalog)} == {BUSINESS_RULE}


# answerOption.


OPTIONS = catalog_of(
    {
        "linkId": "colour",
        "type": "choice",
        "answerOption": [
            {"valueCoding": {"system": "urn:c", "code": "r", "display": "Red"}},
            {"valueCoding": {"system": "urn:c", "code": "g", "display": "Green"}},
        ],
    },
    {
        "linkId": "grade",
        "type": "choice",
        "answerOption": [{"valueInteger": 1}, {"valueInteger": 2}],
    },
    {"linkId": "other", "type": "open-choice", "answerOption": [{"valueString": "none"}]},
)


@pytest.mark.parametrize(
    ("item", "issue"),
    [
        (question("colour", {"valueCoding": {"system": "urn:c", "code": "g"}}), None),
        (
            question("colour", {"valueCoding": {"system": "urn:c", "code": "b"}}),
            (ERROR, CODE_INVALID, f"{QR}.item[0].answer[0].valueCoding"),
        ),
        (
            question("colour", {"valueCoding": {"system": "urn:c", "code": "r", "display": "Rot"}}),
            (WARNING, CODE_INVALID, f"{QR}.item[0].answer[0].valueCoding.display"),
        ),
        (question("grade", integer(2)), None),
        (
            question("grade", integer(3)),
            (ERROR, CODE_INVALID, f"{QR}.item[0].answer[0].valueInteger"),
        ),
        (
            question("grade", string("2")),
            (ERROR, STRUCTURE, f"{QR}.item[0].answer[0].valueString"),
        ),
        (question("other", string("none")), None),
        (question("other", string("free text")), None),
    ],
    ids=[
        "coding option",
        "coding not an option",
        "other display",
        "integer option",
        "integer not an option",
        "string for integer options",
        "string option",
        "open-choice free text",
    ],
)
def test_answer_options_restrict_the_answers(item: Json, issue: tuple[Any, ...] | None) -> None:
    issues = validate(b.response(item), OPTIONS)

    assert found(issues) == ([] if issue is None else [issue])


# Helpers for other modules.


def test_answers_by_link_id_gives_the_values_of_one_level() -> None:
    resource = b.follow_up()

    top = answers_by_link_id(resource["item"])
    lesion = answers_by_link_id(at(resource, 9)["item"])

    assert [c["code"] for c in top["imaging-procedure"]] == ["CT", "FDG-PET"]
    assert "target-lesion" not in top
    assert lesion["lesion-size"] == [9.0]
    assert lesion["lesion-nodal"] == [True]
    assert answers_by_link_id("not a list") == {}


def test_the_questionnaire_index_is_built_once_per_catalog() -> None:
    index = questionnaire_index(CATALOG)

    assert questionnaire_index(CATALOG) is index
    assert questionnaire_index(OPTIONS) is not index
    assert index.by_link_id["target-lesion"].max_occurs == 5
    assert index.by_link_id["new-lesion.lesion-size"].unit == "mm"


# Robustness.


KEYS = [
    "linkId",
    "answer",
    "item",
    "valueDecimal",
    "valueInteger",
    "valueBoolean",
    "valueString",
    "valueDate",
    "valueCoding",
    "valueQuantity",
    "system",
    "code",
    "value",
    "display",
    "reference",
    "resourceType",
    "status",
    "subject",
    "questionnaire",
    "authored",
]
VALUE_KEYS = [key for key in KEYS if key.startswith("value")]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from _objects(child)


def _arrays(value: Any) -> Iterator[list[Any]]:
    if isinstance(value, list):
        if value:
            yield value
        for child in value:
            yield from _arrays(child)
    elif isinstance(value, dict):
        for child in value.values():
            yield from _arrays(child)


@st.composite
def damaged_responses(draw: st.DrawFn) -> Json:
    """The follow-up fixture after 1 to 4 random acts of damage: items or answers dropped,
    duplicated or moved elsewhere, value types swapped, elements set to random JSON or removed."""
    resource = b.follow_up()
    for _ in range(draw(st.integers(1, 4))):
        act = draw(st.sampled_from(["drop", "duplicate", "move", "swap type", "set", "delete"]))
        arrays, objects = list(_arrays(resource)), list(_objects(resource))
        if act in {"drop", "duplicate", "move"} and arrays:
            array = draw(st.sampled_from(arrays))
            index = draw(st.integers(0, len(array) - 1))
            if act == "duplicate":
                array.insert(index, copy.deepcopy(array[index]))
                continue
            element = array.pop(index)
            if act == "move" and (targets := list(_arrays(resource))):
                draw(st.sampled_from(targets)).append(element)
        elif act == "swap type":
            answers = [o for o in objects if any(key.startswith("value") for key in o)]
            if answers:
                answer = draw(st.sampled_from(answers))
                key = next(key for key in answer if key.startswith("value"))
                value = answer.pop(key)
                answer[draw(st.sampled_from(VALUE_KEYS))] = draw(st.just(value) | JSON)
        elif act == "set":
            draw(st.sampled_from(objects))[draw(st.sampled_from(KEYS))] = draw(JSON)
        else:
            victim = draw(st.sampled_from(objects))
            if victim:
                del victim[draw(st.sampled_from(sorted(victim)))]
    return resource


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(damaged_responses())
def test_any_damage_to_a_valid_response_gives_issues_never_an_exception(resource: Json) -> None:
    before = copy.deepcopy(resource)

    issues = validate(resource)

    assert all(isinstance(issue, Issue) for issue in issues)
    assert all((issue.expression or "").startswith(QR) for issue in issues)
    assert all(issue.message for issue in issues)
    assert resource == before
    assert validate(resource) == issues


@PROPERTY
@given(JSON | st.builds(lambda items: {**b.follow_up(), "item": items}, st.lists(JSON, max_size=4)))
def test_arbitrary_json_gives_issues_never_an_exception(data: Any) -> None:
    issues = validate(data)

    assert all((issue.expression or "").startswith(QR) for issue in issues)
