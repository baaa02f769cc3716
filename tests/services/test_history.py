"""The patient's history as the submissions read it (:mod:`fhirnet.services.history`): stored
forms read into domain forms once per version, and never a stale one."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.criteria import Response
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.ports import Json
from fhirnet.services import Context, submit
from fhirnet.services.history import ReadForms, read_forms, stored_forms
from tests.submissions import RECIST, amended, form, set_answer, target


def stored(number: int, *, version: str = "1", updated: str = "2026-01-01T00:00:00Z") -> Json:
    resource = form(RECIST, number)
    return {**resource, "id": f"f{number}", "meta": {"versionId": version, "lastUpdated": updated}}


def diameter(resource: Json, lesion: str, mm: float) -> Json:
    changed = copy.deepcopy(resource)
    set_answer(target(changed, lesion), "lesion-size", "valueDecimal", mm)
    return changed


def t1_mm(forms: ReadForms, resource: Json) -> object:
    (t1,) = [lesion for lesion in forms.read(resource).targets if lesion.id == "T1"]
    return t1.diameter_mm


@pytest.fixture(autouse=True)
def forgotten() -> Iterator[None]:
    """The process's remembered forms start and end empty in each test."""
    read_forms.clear()
    yield
    read_forms.clear()


def test_the_same_version_is_read_once() -> None:
    forms = ReadForms()

    first = forms.read(stored(1))

    assert forms.read(stored(1)) is first
    assert len(forms) == 1


def test_a_new_version_is_read_afresh() -> None:
    forms = ReadForms()
    forms.read(stored(1))

    changed = diameter(stored(1, version="2", updated="2026-02-01T00:00:00Z"), "T1", 142.0)

    assert t1_mm(forms, changed) == 142.0
    assert t1_mm(forms, stored(1)) != 142.0


def test_the_same_version_key_with_other_content_is_read_afresh() -> None:
    """Another store, or a server reusing version ids: the content decides, not the key."""
    forms = ReadForms()
    forms.read(stored(1))

    assert t1_mm(forms, diameter(stored(1), "T1", 142.0)) == 142.0


def test_the_least_recently_used_are_forgotten_beyond_the_size() -> None:
    forms = ReadForms(size=2)
    first = forms.read(stored(1))
    forms.read(stored(2))
    forms.read(stored(1))  # now the most recently used
    forms.read(stored(3))

    assert len(forms) == 2
    assert forms.read(stored(1)) is first


def test_a_form_without_version_is_read_every_time() -> None:
    forms = ReadForms()
    resource = form(RECIST, 1)

    assert forms.read(resource) is not forms.read(resource)
    assert len(forms) == 0


def test_an_unreadable_form_is_refused_and_not_remembered() -> None:
    forms = ReadForms()
    broken = {**stored(1), "item": []}

    with pytest.raises(InvalidInputError):
        forms.read(broken)
    assert len(forms) == 0


def category(store: EmbeddedStore, date: str) -> str:
    (report,) = [
        r
        for r in store.search("DiagnosticReport", {"subject": f"Patient/{RECIST}"})
        if r["effectiveDateTime"] == date
    ]
    codes = {c["code"] for concept in report["conclusionCode"] for c in concept["coding"]}
    (found,) = [r for r, coding in RESPONSE_CATEGORIES.items() if coding.code in codes]
    return found.value


def test_after_an_amendment_the_next_submission_is_assessed_against_the_new_version(
    context: Context, embedded: EmbeddedStore
) -> None:
    submit(form(RECIST, 1), context)
    submit(form(RECIST, 2), context)  # reads the stored baseline: now remembered
    assert category(embedded, "2025-04-14") == Response.SD.value

    # The baseline amended with a much larger T1: the follow-up shrank by more than 30 %.
    submit(diameter(amended(form(RECIST, 1)), "T1", 142.0), context)
    submit(form(RECIST, 3), context)

    forms, _ = stored_forms(embedded, patient=RECIST, questionnaire=QUESTIONNAIRE_URL)
    (baseline,) = [f for f in forms if f.assessment_type.value == "baseline"]
    assert [t.diameter_mm for t in baseline.targets if t.id == "T1"] == [142.0]
    assert category(embedded, "2025-04-14") == Response.PR.value
    assert category(embedded, "2025-07-14") == Response.PR.value
