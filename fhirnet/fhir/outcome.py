"""Validation problems as data (:class:`Issue`) and their rendering as an OperationOutcome.

Issues are made with :meth:`Issue.error`, :meth:`Issue.warning` and :meth:`Issue.information`,
everywhere in fhirnet. Validators collect every problem as an :class:`Issue` and never stop at the
first; the web layer
turns the list into an OperationOutcome with :func:`operation_outcome` (``style.md`` P8).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from fhirnet.errors import FhirnetError


class Severity(StrEnum):
    """``OperationOutcome.issue.severity`` (http://hl7.org/fhir/issue-severity)."""

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


class IssueType(StrEnum):
    """The ``OperationOutcome.issue.code`` values fhirnet uses (http://hl7.org/fhir/issue-type)."""

    INVALID = "invalid"
    STRUCTURE = "structure"
    REQUIRED = "required"
    VALUE = "value"
    INVARIANT = "invariant"
    CODE_INVALID = "code-invalid"
    NOT_FOUND = "not-found"
    NOT_SUPPORTED = "not-supported"
    BUSINESS_RULE = "business-rule"
    TOO_LONG = "too-long"
    SECURITY = "security"
    LOGIN = "login"
    FORBIDDEN = "forbidden"
    PROCESSING = "processing"
    TRANSIENT = "transient"
    EXCEPTION = "exception"
    INFORMATIONAL = "informational"


@dataclass(frozen=True, kw_only=True)
class Issue:
    """One problem: how bad, what kind, where (a FHIRPath expression) and a plain message."""

    severity: Severity
    code: IssueType
    expression: str | None
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity in (Severity.FATAL, Severity.ERROR)

    @classmethod
    def error(cls, code: IssueType, message: str, *, expression: str | None = None) -> Issue:
        """A problem that stops the request (``error``); ``expression`` is where, if anywhere."""
        return cls(severity=Severity.ERROR, code=code, expression=expression, message=message)

    @classmethod
    def warning(cls, code: IssueType, message: str, *, expression: str | None = None) -> Issue:
        """A problem the request goes on with (``warning``)."""
        return cls(severity=Severity.WARNING, code=code, expression=expression, message=message)

    @classmethod
    def information(
        cls,
        message: str,
        *,
        code: IssueType = IssueType.INFORMATIONAL,
        expression: str | None = None,
    ) -> Issue:
        """Something the submitter should know (``information``), ``informational`` unless
        ``code`` says otherwise."""
        return cls(severity=Severity.INFORMATION, code=code, expression=expression, message=message)


class OutcomeError(FhirnetError):
    """A request refused with every problem found, as :class:`Issue` s (an OperationOutcome)."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(f"{i.expression or '-'}: {i.message}" for i in self.issues))


class UnprocessableResourceError(OutcomeError):
    """The resource is well-formed but cannot be accepted: invalid against the form, or breaking a
    rule of the assessment (answered 422)."""


class MalformedRequestError(OutcomeError):
    """The request is not what the interaction takes, e.g. a Bundle entry that is not a
    QuestionnaireResponse POST (answered 400)."""


def rebased(issue: Issue, root: str, prefix: str) -> Issue:
    """``issue`` with its expression moved from ``root`` to ``prefix``, e.g. from
    ``QuestionnaireResponse.item[2]`` to ``Bundle.entry[1].resource.item[2]``."""
    expression = issue.expression
    if expression is None or prefix == root:
        return issue
    if expression == root or expression.startswith((root + ".", root + "[")):
        return replace(issue, expression=prefix + expression[len(root) :])
    return issue


def has_errors(issues: Iterable[Issue]) -> bool:
    """Whether any issue stops the resource from being accepted."""
    return any(issue.is_error for issue in issues)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome JSON object listing ``issues``; "all OK" information when empty."""
    rendered = [_issue(issue) for issue in issues]
    if not rendered:
        rendered = [
            {
                "severity": Severity.INFORMATION.value,
                "code": IssueType.INFORMATIONAL.value,
                "diagnostics": "No issues detected",
            }
        ]
    return {"resourceType": "OperationOutcome", "issue": rendered}


def _issue(issue: Issue) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "severity": issue.severity.value,
        "code": issue.code.value,
        "diagnostics": issue.message,
        "details": {"text": issue.message},
    }
    if issue.expression:
        rendered["expression"] = [issue.expression]
    return rendered
