"""The CapabilityStatement as Bulk Data Access clients read it: it instantiates the Bulk Data
CapabilityStatement and lists the three ``export`` operations where ``bulk-data.fsh`` puts them
(system level in ``rest.operation``, Patient and Group on their resources)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhirnet.config import DEFAULT_PROFILES_DIR
from fhirnet.fhir.capability import capability_statement
from fhirnet.fhir.profiles import load_catalog


@pytest.fixture(scope="module")
def statement() -> dict[str, Any]:
    return capability_statement(load_catalog(DEFAULT_PROFILES_DIR), software_version="test")


def test_the_statement_instantiates_the_bulk_data_capability_statement(
    statement: dict[str, Any],
) -> None:
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    ]


def test_the_three_export_operations_are_all_named_export_where_the_ig_puts_them(
    statement: dict[str, Any],
) -> None:
    [rest] = statement["rest"]
    resources = {resource["type"]: resource for resource in rest["resource"]}

    assert [(o["name"], o["definition"]) for o in rest["operation"]] == [
        ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export")
    ]
    assert [(o["name"], o["definition"]) for o in resources["Patient"]["operation"]] == [
        ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export")
    ]
    assert [(o["name"], o["definition"]) for o in resources["Group"]["operation"]] == [
        ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export")
    ]
    # Patient is listed for its operation only: fhirnet serves no Patient interaction.
    assert "interaction" not in resources["Patient"]


def test_the_statement_stays_a_valid_r4_capability_statement(statement: dict[str, Any]) -> None:
    CapabilityStatement.model_validate(statement)


def test_populate_is_listed_on_the_questionnaire_with_the_sdc_definition(
    statement: dict[str, Any],
) -> None:
    [rest] = statement["rest"]
    resources = {resource["type"]: resource for resource in rest["resource"]}

    assert [(o["name"], o["definition"]) for o in resources["Questionnaire"]["operation"]] == [
        ("populate", "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate")
    ]
    # Only there: the other conformance types have no operation.
    for resource_type in ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap"):
        assert "operation" not in resources[resource_type]
