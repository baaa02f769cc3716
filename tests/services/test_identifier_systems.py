"""The identifier system of a form is part of its exam (finding 4 of the security review): two
forms of one patient with the same identifier value under different systems are two exams, and
neither overwrites the other's results; results of forms with the default system keep the
identifiers they always had (the golden transactions of ``examples/transactions``)."""

from __future__ import annotations

import pytest

from fhirnet.fhir.identifiers import CRF_SUBMISSION, ExamKey, Identifier, Kind
from fhirnet.ports import FhirStore, Json
from fhirnet.services import Context, submit
from tests.submissions import RECIST, form

OTHER_SYSTEM = "https://ehr.example.org/fhir/sid/imaging-forms"


def reports(store: FhirStore) -> list[Json]:
    return list(store.search("DiagnosticReport", {"subject": f"Patient/{RECIST}"}))


def test_a_form_with_another_system_and_the_same_value_does_not_overwrite_the_others_results(
    context: Context,
) -> None:
    submit(form(RECIST, 1), context)
    first = submit(form(RECIST, 2), context)
    other = form(RECIST, 3)
    other["identifier"] = {"system": OTHER_SYSTEM, "value": form(RECIST, 2)["identifier"]["value"]}

    second = submit(other, context)

    assert second.created, "answered as an update of the other form's report"
    assert second.report["id"] != first.report["id"]
    stored = {report["id"]: report for report in reports(context.store)}
    assert len(stored) == 3
    assert stored[first.report["id"]]["effectiveDateTime"] == first.report["effectiveDateTime"]
    assert stored[first.report["id"]]["meta"]["versionId"] == "1"


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_the_default_system_keeps_its_identifiers_and_another_system_gets_distinct_ones(
    kind: Kind,
) -> None:
    lesion = "T1" if kind in (Kind.LESION, Kind.LESION_MEASUREMENT) else None
    default = ExamKey.of("p", Identifier(system=CRF_SUBMISSION, value="exam-1"))
    other = ExamKey.of("p", Identifier(system=OTHER_SYSTEM, value="exam-1"))

    assert default.identifier(kind, lesion) == ExamKey(patient="p", exam="exam-1").identifier(
        kind, lesion
    )
    if kind is Kind.LESION:  # per patient and lesion, not per exam (fsh/README.md decision 7)
        assert other.identifier(kind, lesion) == default.identifier(kind, lesion)
    else:
        assert other.identifier(kind, lesion) != default.identifier(kind, lesion)
        assert other.identifier(kind, lesion) == ExamKey.of(
            "p", Identifier(system=OTHER_SYSTEM, value="exam-1")
        ).identifier(kind, lesion)


def test_a_value_that_looks_like_system_and_value_does_not_collide_with_another_system() -> None:
    spoofed = ExamKey.of("p", Identifier(system=CRF_SUBMISSION, value=f"{OTHER_SYSTEM}/exam-1"))
    other = ExamKey.of("p", Identifier(system=OTHER_SYSTEM, value="exam-1"))

    for kind in (Kind.IMAGING_RESPONSE_REPORT, Kind.RESPONSE_ASSESSMENT):
        assert spoofed.identifier(kind) != other.identifier(kind)
    assert spoofed.identifier(Kind.LESION_MEASUREMENT, "T1") != other.identifier(
        Kind.LESION_MEASUREMENT, "T1"
    )
