"""The kick-off parameters of a Bulk Data export: what is accepted, what is refused (400), and
what lenient handling leaves out and notes (Bulk Data Access 2.0 export.md; bdt's kick-off
tests)."""

from __future__ import annotations

import datetime as dt

import pytest

from fhirnet.fhir.bulk_parameters import (
    EXPORTABLE_TYPES,
    NDJSON,
    ExportRequest,
    Level,
    TypeFilter,
    export_request,
    parameter_pairs,
    parse_instant,
    query_pairs,
)
from fhirnet.fhir.outcome import IssueType, MalformedRequestError, Severity
from fhirnet.fhir.subsetting import SUBSETTED

NOW = dt.datetime(2026, 11, 21, 17, 5, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def read(
    pairs: list[tuple[str, str]], level: Level = Level.SYSTEM, *, lenient: bool = False
) -> ExportRequest:
    return export_request(level, pairs, now=NOW, lenient=lenient)


def refused(pairs: list[tuple[str, str]], level: Level = Level.SYSTEM) -> list[str]:
    with pytest.raises(MalformedRequestError) as raised:
        read(pairs, level)
    return [issue.expression or "" for issue in raised.value.issues]


def test_no_parameters_ask_for_every_type_as_fhir_ndjson() -> None:
    request = read([])

    assert request == ExportRequest(level=Level.SYSTEM)
    assert request.output_format == NDJSON
    assert "AuditEvent" not in EXPORTABLE_TYPES


@pytest.mark.parametrize("value", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_the_three_ndjson_output_formats_are_accepted(value: str) -> None:
    assert read([("_outputFormat", value)]).output_format == NDJSON


@pytest.mark.parametrize("value", ["application/xml", "text/html", "x-custom", "application/json"])
def test_other_output_formats_are_refused(value: str) -> None:
    assert refused([("_outputFormat", value)]) == ["_outputFormat"]


def test_type_takes_comma_lists_and_repeats_in_order_without_duplicates() -> None:
    request = read([("_type", "Observation,DiagnosticReport"), ("_type", "Observation,Group")])

    assert request.types == ("Observation", "DiagnosticReport", "Group")


@pytest.mark.parametrize("name", ["Foo", "AuditEvent", "Patient", "observation"])
def test_a_type_not_exported_is_refused(name: str) -> None:
    assert refused([("_type", f"Observation,{name}")]) == ["_type"]


def test_lenient_handling_leaves_out_an_unknown_type_and_parameter_and_notes_them() -> None:
    request = read([("_type", "Observation,Foo"), ("_until", "2026-01-01")], lenient=True)

    assert request.types == ("Observation",)
    assert sorted((n.severity, n.code, n.expression or "") for n in request.notes) == [
        (Severity.WARNING, IssueType.NOT_SUPPORTED, "_type"),
        (Severity.WARNING, IssueType.NOT_SUPPORTED, "_until"),
    ]


def test_an_unknown_parameter_is_refused_without_lenient_handling() -> None:
    assert refused([("organizeOutputBy", "Patient")]) == ["organizeOutputBy"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-01T00:00:00Z", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
        (
            "2025-01-01T10:00:00.123+01:00",
            dt.datetime(2025, 1, 1, 9, 0, 0, 123000, tzinfo=dt.UTC),
        ),
        ("2025-01-01", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_since_is_an_instant(value: str, expected: dt.datetime) -> None:
    assert read([("_since", value)]).since == expected


@pytest.mark.parametrize(
    "value", ["junk", "2025-13-01T00:00:00Z", "2025-01-01T00:00:00", "2025", "", "2026-11-22"]
)
def test_an_invalid_or_future_since_is_refused(value: str) -> None:
    # 2025-01-01T00:00:00 has no zone: an instant needs one; 2026-11-22 is after NOW.
    assert refused([("_since", value)]) == ["_since"]


def test_parse_instant_refuses_a_time_without_zone() -> None:
    assert parse_instant("2025-01-01T00:00") is None
    assert parse_instant("2025-01-01T00:00Z") == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_type_filters_are_searches_of_one_type_each() -> None:
    request = read(
        [
            ("_type", "Observation,DiagnosticReport"),
            ("_typeFilter", "Observation?code=21889-1&status=final"),
            ("_typeFilter", "Observation?code=44667-4"),
        ]
    )

    assert request.filters_of("Observation") == (
        TypeFilter(resource_type="Observation", params=(("code", "21889-1"), ("status", "final"))),
        TypeFilter(resource_type="Observation", params=(("code", "44667-4"),)),
    )
    assert request.filters_of("DiagnosticReport") == ()


@pytest.mark.parametrize(
    "value",
    [
        "code=1",  # no type
        "Foo?code=1",  # not exported
        "Observation?_include=Observation:subject",
        "Observation?_sort=date",
        "Observation?_elements=code",
        "Observation?",  # no parameter
        "DiagnosticReport?code=1",  # not among _type
    ],
)
def test_a_bad_type_filter_is_refused(value: str) -> None:
    assert refused([("_type", "Observation"), ("_typeFilter", value)]) == ["_typeFilter"]


def test_elements_apply_untyped_to_every_type_and_typed_to_theirs() -> None:
    request = read([("_elements", "status,Observation.code,DiagnosticReport.conclusion")])
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "sum"},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 1},
    }

    subset = request.subsetting_of("Observation").apply(observation)

    assert subset == {
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"tag": [SUBSETTED]},
        "status": "final",
        "code": {"text": "sum"},
    }
    assert request.subsetting_of("Group").whole is False  # status only (+ mandatory)
    assert read([]).subsetting_of("Observation").whole


@pytest.mark.parametrize("value", ["Observation.nothing", "Foo.code", "co de"])
def test_bad_elements_are_refused(value: str) -> None:
    assert refused([("_elements", value)]) == ["_elements"]


def test_patient_is_refused_at_system_level() -> None:
    assert refused([("patient", "Patient/p1")]) == ["patient"]


def test_patient_restricts_a_patient_or_group_export() -> None:
    pairs = [("patient", "Patient/p1"), ("patient", "Patient/p2"), ("patient", "Patient/p1")]

    assert read(pairs, Level.PATIENT).patients == ("p1", "p2")
    assert refused([("patient", "Observation/o1")], Level.GROUP) == ["patient"]


def test_patient_in_a_get_query_is_refused() -> None:
    with pytest.raises(MalformedRequestError) as raised:
        query_pairs([("patient", "Patient/p1")])

    assert raised.value.issues[0].code is IssueType.NOT_SUPPORTED


def test_include_associated_data_provenance_values_are_accepted_others_refused() -> None:
    assert read([("includeAssociatedData", "LatestProvenanceResources")]).notes == ()
    assert refused([("includeAssociatedData", "_custom")]) == ["includeAssociatedData"]
    lenient = read([("includeAssociatedData", "_custom")], lenient=True)
    assert [note.expression for note in lenient.notes] == ["includeAssociatedData"]


def test_a_parameters_body_becomes_name_value_pairs() -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Observation"},
            {"name": "_since", "valueInstant": "2025-01-01T00:00:00Z"},
            {"name": "_outputFormat", "valueCode": "ndjson"},
            {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
        ],
    }

    pairs = parameter_pairs(body)

    assert pairs == [
        ("_type", "Observation"),
        ("_since", "2025-01-01T00:00:00Z"),
        ("_outputFormat", "ndjson"),
        ("patient", "Patient/p1"),
    ]
    assert read(pairs, Level.GROUP).patients == ("p1",)


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Bundle"},
        {"resourceType": "Parameters", "parameter": {}},
        {"resourceType": "Parameters", "parameter": [{"valueString": "x"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "_type"}]},
    ],
)
def test_a_malformed_parameters_body_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(MalformedRequestError):
        parameter_pairs(body)


def test_every_problem_is_reported_at_once() -> None:
    problems = refused([("_type", "Foo"), ("_since", "junk"), ("_outputFormat", "xml")])

    assert sorted(problems) == ["_outputFormat", "_since", "_type"]


@pytest.mark.parametrize("value", ["Patient?status=active", "DiagnosticReport?status=final"])
def test_lenient_handling_leaves_out_a_type_filter_on_a_type_not_exported(value: str) -> None:
    # bdt's "Handles the _typeFilter parameter": Patient is no exported type here, and
    # _type leaves DiagnosticReport out; either filter could only narrow what is not exported.
    request = read([("_type", "Observation"), ("_typeFilter", value)], lenient=True)

    assert request.type_filters == ()
    assert [(n.severity, n.expression) for n in request.notes] == [
        (Severity.WARNING, "_typeFilter")
    ]
    assert value in request.notes[0].message
    assert refused([("_type", "Observation"), ("_typeFilter", value)]) == ["_typeFilter"]


@pytest.mark.parametrize("value", ["Observation?_sort=date", "Observation?", "code=1"])
def test_lenient_handling_still_refuses_a_bad_filter_on_an_exported_type(value: str) -> None:
    # Leaving it out would export every Observation where the client wanted some.
    with pytest.raises(MalformedRequestError):
        read([("_type", "Observation"), ("_typeFilter", value)], lenient=True)
