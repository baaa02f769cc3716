"""A submitted form carries literal references to its own patient's data only (finding 5 of the
security review): a conditional reference was resolved by the embedded store (a search oracle
over every type for a create-only client, 201 against 502, and a stored link to another
patient's resource); references to other patients' resources, computable ``urn:uuid``s of
another patient's entries in a transaction, and a Patient on another server were accepted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.fhir.outcome import UnprocessableResourceError
from fhirnet.ports import Json
from fhirnet.services import Context, submit, submit_bundle
from tests.submissions import CHOI, RECIST, bundle_of, counts, form


def refused(resource: Json, context: Context) -> list[tuple[str | None, str]]:
    with pytest.raises(UnprocessableResourceError) as error:
        submit(resource, context)
    return [(i.expression, i.message) for i in error.value.issues if i.is_error]


def test_a_conditional_reference_is_refused_naming_the_element_and_nothing_is_written(
    context: Context, embedded: EmbeddedStore
) -> None:
    resource = form(RECIST, 1)
    resource["basedOn"] = [{"reference": "ServiceRequest?identifier=x"}]
    before = counts(embedded)

    ((expression, message),) = refused(resource, context)

    assert expression == "QuestionnaireResponse.basedOn[0].reference"
    assert "literal references only" in message
    assert counts(embedded) == before


def test_a_reference_to_another_patient_is_refused(context: Context) -> None:
    resource = form(RECIST, 1)
    resource["author"] = {"reference": f"Patient/{CHOI}"}

    ((expression, message),) = refused(resource, context)

    assert expression == "QuestionnaireResponse.author.reference"
    assert "another Patient" in message


def test_a_reference_to_a_stored_resource_of_another_patient_is_refused(context: Context) -> None:
    other = submit(form(CHOI, 1), context).report
    resource = form(RECIST, 1)
    resource["partOf"] = [{"reference": f"DiagnosticReport/{other['id']}"}]

    ((expression, message),) = refused(resource, context)

    assert expression == "QuestionnaireResponse.partOf[0].reference"
    assert "another patient" in message


def test_a_urn_uuid_naming_another_patients_entry_in_a_transaction_is_refused(
    context: Context, embedded: EmbeddedStore
) -> None:
    mine, theirs = form(RECIST, 1), form(CHOI, 1)
    bundle = bundle_of(mine, theirs)
    bundle["entry"][1]["fullUrl"] = "urn:uuid:8a5c2e1e-0f6e-4a34-9d55-7b7f0d1f2a11"
    mine["partOf"] = [{"reference": bundle["entry"][1]["fullUrl"]}]
    before = counts(embedded)

    with pytest.raises(UnprocessableResourceError) as error:
        submit_bundle(bundle, context)

    (issue,) = [i for i in error.value.issues if i.is_error]
    assert issue.expression == "Bundle.entry[0].resource.partOf[0].reference"
    assert counts(embedded) == before


def test_a_computed_urn_uuid_of_fhirnets_own_entries_is_refused(context: Context) -> None:
    other = submit(form(CHOI, 1), context).report
    resource = form(RECIST, 1)
    resource["partOf"] = [{"reference": f"urn:uuid:{other['id']}"}]

    ((expression, _),) = refused(resource, context)

    assert expression == "QuestionnaireResponse.partOf[0].reference"


@pytest.mark.parametrize(
    ("bases", "accepted"),
    [
        pytest.param(frozenset(), False, id="no base configured"),
        pytest.param(frozenset({"https://other.example.org/fhir"}), False, id="another server"),
        pytest.param(frozenset({"https://fhir.example.org/r4"}), True, id="the server written to"),
    ],
)
def test_a_patient_on_another_server_is_not_the_local_patient_of_that_id(
    context: Context, bases: frozenset[str], accepted: bool
) -> None:
    resource = form(RECIST, 1)
    resource["subject"] = {"reference": f"https://fhir.example.org/r4/Patient/{RECIST}"}
    context = replace(context, bases=bases)

    if accepted:
        assert submit(resource, context).created
    else:
        ((expression, message),) = refused(resource, context)
        assert expression == "QuestionnaireResponse.subject.reference"
        assert "another server" in message
