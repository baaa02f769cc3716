"""The pinned FHIR release: fhir.resources' **R4B** models serve FHIR R4 (4.0.1), and
:func:`parse` turns their validation errors into :class:`~fhirnet.fhir.outcome.Issue`\\ s.

fhir.resources 7+ defaults to R5 and ships no R4 package. R4B (4.3.0) changed resources fhirnet does
not read (medication definitions, Subscription, Evidence...): its QuestionnaireResponse has exactly
the R4 elements and the package's R4 Questionnaire parses unchanged (both tested). Every module
imports FHIR models from here and nowhere else, so a move to another release is one file.

What the models check and what they do not (fhir.resources 8.3.0, measured): they reject unknown
elements, missing 1..1 elements, malformed primitives (a decimal ``"abc"``, a date ``2025-13-01``),
two ``value[x]`` at once and wrong JSON shapes; they do **not** check required code bindings
(``status: "bogus"`` passes), they *coerce* primitives (``"valueDecimal": "12.5"`` and
``"valueBoolean": "true"`` pass although FHIR JSON requires a number and a boolean), and they
accept the empty arrays, empty objects and ``null`` properties that FHIR JSON forbids
(R4 json.html: no empty arrays or objects, no ``null`` properties; ele-1). :func:`parse`
adds the last check; the coercions of answer values are the Questionnaire validator's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from fhirnet.fhir.outcome import Issue, IssueType

__all__ = [
    "FHIR_VERSION",
    "FHIRAbstractModel",
    "OperationOutcome",
    "Parsed",
    "Questionnaire",
    "QuestionnaireResponse",
    "model_class",
    "parse",
]

#: The FHIR version fhirnet speaks (CapabilityStatement.fhirVersion, package dependencies).
FHIR_VERSION = "4.0.1"

Model = TypeVar("Model", bound=FHIRAbstractModel)

#: A JSON property name; pydantic's own location tags (union branches, validators) are not.
_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9_]*")
#: pydantic error types (besides ``*_type``) that mean "wrong JSON shape", not "bad value".
_SHAPE = frozenset({"json_invalid", "fhir-validation-wrong-resource-type"})


@dataclass(frozen=True, kw_only=True)
class Parsed(Generic[Model]):
    """The outcome of :func:`parse`.

    ``rejected`` holds the FHIRPath of every element whose *content* the model rejected (a bad
    value, a wrong JSON type, an unknown element). Checks that go on reading the raw JSON skip
    those elements and everything inside them, so each problem is reported once.
    """

    resource: Model | None
    issues: tuple[Issue, ...]
    rejected: frozenset[str]


def model_class(resource_type: str) -> type[FHIRAbstractModel]:
    """The R4B model class of a resource or datatype name, e.g. ``model_class("Bundle")``.

    :raises ValueError: no such FHIR type.
    """
    return get_fhir_model_class(resource_type)


def parse(data: object, model: type[Model]) -> Parsed[Model]:
    """Read ``data`` (parsed JSON) as a ``model`` resource and report every structural problem.

    Expressions are FHIRPath from the resource type with the JSON property names as sent (a choice
    element keeps its type suffix: ``QuestionnaireResponse.item[0].answer[0].valueDecimal``); a
    primitive's ``_element`` extension is addressed as the element. A **missing** element is
    reported at its parent with the element named in the message, as the HL7 validator does.

    - not a JSON object, or a ``resourceType`` that is not ``model``'s → one ``structure`` error and
      no model: nothing else is worth reporting about the wrong resource;
    - no ``resourceType`` → ``required`` (the models accept it; FHIR JSON requires it);
    - pydantic errors → ``required`` (missing), ``structure`` (unknown element, wrong JSON type) or
      ``value`` (malformed or out-of-range primitive);
    - empty arrays, empty objects, ``null`` properties → ``structure``.

    :param data: the request body as parsed by a JSON parser.
    :param model: the expected resource class, e.g. :class:`QuestionnaireResponse`.
    :returns: the model (``None`` when it cannot be built), the issues, the rejected elements.
    """
    root = model.get_resource_type()
    if not isinstance(data, Mapping):
        message = f"expected a JSON object (a {root} resource), got {_json_type(data)}"
        return _failed(root, message)
    resource_type = data.get("resourceType")
    if resource_type is not None and resource_type != root:
        return _failed(root, f"resourceType is {resource_type!r}, expected {root!r}")
    issues: list[Issue] = []
    rejected: set[str] = set()
    if resource_type is None:
        issues.append(
            Issue.error(
                IssueType.REQUIRED, f"resourceType is missing; expected {root}", expression=root
            )
        )
    json_issues = _json_issues(data, root)
    resource: Model | None = None
    try:
        resource = model.model_validate(data)
    except ValidationError as error:
        for details in error.errors():
            issue, element = _from_pydantic(root, details)
            issues.append(issue)
            if element is not None:
                rejected.add(element)
    except Exception as error:
        # fhir_core raises e.g. KeyError('R4.NopeType') for a contained resource of an unknown
        # type instead of a ValidationError; the request is still answered with an issue.
        issues.append(
            Issue.error(IssueType.STRUCTURE, f"not a valid {root}: {error!r}", expression=root)
        )
    issues += [issue for issue in json_issues if issue.expression not in rejected]
    # An empty resource rejects nothing inside it: the other checks still name what is missing.
    rejected.update(i.expression for i in json_issues if i.expression and i.expression != root)
    return Parsed(resource=resource, issues=tuple(issues), rejected=frozenset(rejected))


def _failed(root: str, message: str) -> Parsed[Any]:
    issue = Issue.error(IssueType.STRUCTURE, message, expression=root)
    return Parsed(resource=None, issues=(issue,), rejected=frozenset({root}))


def _from_pydantic(root: str, details: ErrorDetails) -> tuple[Issue, str | None]:
    """One pydantic error as an issue, and the element it rejects (``None`` when missing)."""
    loc = details["loc"]
    kind = details["type"]
    message = " ".join(str(details["msg"]).removeprefix("Value error, ").split())
    if kind.endswith("missing"):
        parent, name = _expression(root, loc[:-1]), str(loc[-1]) if loc else "?"
        return Issue.error(
            IssueType.REQUIRED, f"element {name!r} is required but missing", expression=parent
        ), None
    expression = _expression(root, loc)
    if kind == "extra_forbidden":
        name = expression.rpartition(".")[2]
        return Issue.error(
            IssueType.STRUCTURE, f"unknown element {name!r}", expression=expression
        ), expression
    code = IssueType.STRUCTURE if kind.endswith("_type") or kind in _SHAPE else IssueType.VALUE
    return Issue.error(code, message, expression=expression), expression


def _expression(root: str, loc: tuple[int | str, ...]) -> str:
    expression = root
    for part in loc:
        if isinstance(part, int):
            expression += f"[{part}]"
        elif _NAME.fullmatch(part) and part != "resource_type":
            expression += "." + part.removeprefix("_")
    return expression


def _json_issues(value: Mapping[str, Any], expression: str) -> list[Issue]:
    """Empty arrays, empty objects and ``null`` properties, which FHIR JSON forbids."""
    issues: list[Issue] = []
    if not value:
        issues.append(
            Issue.error(IssueType.STRUCTURE, "empty object (ele-1)", expression=expression)
        )
    for key, child in value.items():
        path = f"{expression}.{key.removeprefix('_')}" if isinstance(key, str) else expression
        if child is None:
            issues.append(Issue.error(IssueType.STRUCTURE, f"{key!r} is null", expression=path))
        elif isinstance(child, list):
            if not child:
                issues.append(
                    Issue.error(IssueType.STRUCTURE, f"{key!r} is an empty array", expression=path)
                )
            for index, element in enumerate(child):
                if isinstance(element, Mapping):
                    issues += _json_issues(element, f"{path}[{index}]")
        elif isinstance(child, Mapping):
            issues += _json_issues(child, path)
    return issues


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else type(value).__name__
