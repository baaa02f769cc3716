"""The issue factory of :mod:`fhirnet.fhir.outcome`: each named constructor is the issue it names,
and renders as the OperationOutcome issue the full constructor would."""

from __future__ import annotations

from fhirnet.fhir.outcome import Issue, IssueType, Severity, operation_outcome


def test_each_constructor_sets_its_severity_and_defaults() -> None:
    assert Issue.error(IssueType.VALUE, "bad", expression="X.a") == Issue(
        severity=Severity.ERROR, code=IssueType.VALUE, expression="X.a", message="bad"
    )
    assert Issue.warning(IssueType.BUSINESS_RULE, "odd") == Issue(
        severity=Severity.WARNING, code=IssueType.BUSINESS_RULE, expression=None, message="odd"
    )
    assert Issue.information("done") == Issue(
        severity=Severity.INFORMATION,
        code=IssueType.INFORMATIONAL,
        expression=None,
        message="done",
    )


def test_an_issue_from_the_factory_renders_as_before() -> None:
    outcome = operation_outcome([Issue.error(IssueType.REQUIRED, "missing", expression="X.b")])

    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "required",
                "diagnostics": "missing",
                "details": {"text": "missing"},
                "expression": ["X.b"],
            }
        ],
    }
