"""Pseudonymization of exported FHIR resources: keyed ids, one date shift per patient, nothing
identifying left (``fhirnet.fhir.pseudonymize``)."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirnet.criteria.models import Criteria
from fhirnet.fhir.pseudonymize import (
    PSEUDED,
    STUDY_DAY_ANCHOR,
    DateRegime,
    PseudonymizationError,
    Pseudonymizer,
    Regime,
    reference_dates,
    shift_date,
)
from fhirnet.fhir.resources import model_class, parse
from fhirnet.fhir.studies import (
    Adjudication,
    Arm,
    Enrolment,
    Reader,
    ReaderRole,
    Site,
    Study,
    Visit,
    enrolment_group,
    group_member,
    research_study,
    research_subject,
)

TRANSACTIONS = Path(__file__).parents[2] / "examples" / "transactions"
SECRET = b"a-study-secret-of-at-least-32-bytes!!"
OTHER_SECRET = b"another-study-secret-of-32-bytes-or-more"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

NAME = "Zebulon Quaxmire"
MRN = "MRN-99887766"
PHRASE = "patient mentioned the lake house"
MARKERS = (NAME, MRN, PHRASE)

Json = dict[str, Any]


def regime(study: str = "NET-01", secret: bytes = SECRET, dates: str = "shift") -> Regime:
    return Regime(study_id=study, secret=secret, dates=DateRegime(dates))


def stored(patient: str) -> list[Json]:
    """The resources of a patient's golden transactions as a server stores them: each entry
    gets the id of its fullUrl (or its PUT url) and ``urn:uuid:`` references become
    ``Type/id`` — the set a FHIR export reads."""
    resources: dict[str, Json] = {}
    ids: dict[str, str] = {}
    for path in sorted((TRANSACTIONS / patient).glob("*.json")):
        for entry in json.loads(path.read_text())["entry"]:
            resource = entry["resource"]
            rid = entry["fullUrl"].removeprefix("urn:uuid:")
            ids[entry["fullUrl"]] = f"{resource['resourceType']}/{rid}"
            resources[ids[entry["fullUrl"]]] = {**resource, "id": rid}
    text = json.dumps(list(resources.values()))
    for urn, literal in ids.items():
        text = text.replace(f'"{urn}"', f'"{literal}"')
    result: list[Json] = json.loads(text)
    return result


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for value in node:
            yield from walk(value, path)
    else:
        yield path, node


def references(resources: list[Json]) -> list[str]:
    return [v for resource in resources for p, v in walk(resource) if p.endswith(".reference")]


def dates(resource: Json) -> list[tuple[str, str]]:
    """(path, value) of every date and dateTime of a resource, in document order."""
    found = []
    for path, value in walk(resource):
        key = path.rsplit(".", 1)[-1]
        if (
            isinstance(value, str)
            and key != "lastUpdated"
            and re.fullmatch(r"\d{4}-\d\d-\d\d.*", value)
        ):
            found.append((path, value))
    return found


def instant(value: str) -> dt.datetime:
    """A date as midnight UTC, a dateTime as its instant: what an interval is measured in."""
    if len(value) == 10:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(value)


# -- pseudonyms ----------------------------------------------------------------------------


def test_a_pseudonym_is_stable_for_the_same_secret_and_patient() -> None:
    assert regime().pseudonym("p-1") == regime().pseudonym("p-1")
    assert regime().pseudonym("p-1") != regime().pseudonym("p-2")


def test_pseudonyms_differ_between_studies_with_different_secrets() -> None:
    assert regime("NET-01", SECRET).pseudonym("p-1") != regime("NET-02", OTHER_SECRET).pseudonym(
        "p-1"
    )


def test_pseudonyms_differ_between_studies_even_with_one_secret() -> None:
    assert regime("NET-01").pseudonym("p-1") != regime("NET-02").pseudonym("p-1")


@pytest.mark.parametrize("patient", ["p", "small-bowel-net-prrt", "x" * 64, "ä/ö"])
def test_a_pseudonym_is_a_valid_fhir_id(patient: str) -> None:
    assert FHIR_ID.fullmatch(regime().pseudonym(patient))


def test_a_short_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(PseudonymizationError) as error:
        Regime(study_id="NET-01", secret=b"tooshort-secret", dates=DateRegime.SHIFT)
    assert "tooshort" not in str(error.value)


# -- dates ---------------------------------------------------------------------------------


def test_the_shift_offset_is_one_non_zero_value_per_patient() -> None:
    offsets = {p: regime().date_offset(p, None) for p in (f"p-{i}" for i in range(200))}
    assert all(30 <= abs(o) <= 395 for o in offsets.values())
    assert len(set(offsets.values())) > 100
    assert regime().date_offset("p-1", None) == regime().date_offset("p-1", dt.date(2020, 1, 1))


def test_the_study_day_offset_moves_the_reference_date_to_the_anchor() -> None:
    offset = regime(dates="study-day").date_offset("p-1", dt.date(2025, 1, 15))
    assert dt.date(2025, 1, 15) + dt.timedelta(days=offset) == STUDY_DAY_ANCHOR


def test_the_study_day_offset_needs_a_reference_date() -> None:
    with pytest.raises(ValueError, match="reference date"):
        regime(dates="study-day").date_offset("p-1", None)


@pytest.mark.parametrize(
    ("value", "shifted"),
    [
        ("2025-04-14", "2025-04-24"),
        ("2025-12-28T16:30:00+02:00", "2026-01-07T16:30:00+02:00"),
        ("2025-04-14T09:30:00.123Z", "2025-04-24T09:30:00.123Z"),
        ("2025", None),  # year only: redacted, it cannot be shifted exactly
        ("2025-04", None),
        ("2025-02-30", None),
        ("not a date", None),
    ],
)
def test_shift_date_keeps_time_and_zone_and_redacts_partial_dates(
    value: str, shifted: str | None
) -> None:
    assert shift_date(value, 10) == shifted


@pytest.mark.parametrize("dates_regime", ["shift", "study-day"])
def test_every_interval_between_two_dates_of_a_patient_is_unchanged(dates_regime: str) -> None:
    patient = "small-bowel-net-prrt"
    pseudonymizer = Pseudonymizer(regime(dates=dates_regime), {patient: dt.date(2025, 1, 14)})
    before = [d for r in stored(patient) for d in dates(r)]
    after = [d for r in stored(patient) for d in dates(pseudonymizer.resource(r, patient))]
    assert [p for p, _ in before] == [p for p, _ in after]
    assert len(before) > 50
    pairs_before = [instant(v) for _, v in before]
    pairs_after = [instant(v) for _, v in after]
    for i, j in itertools.combinations(range(len(pairs_before)), 2):
        assert pairs_after[j] - pairs_after[i] == pairs_before[j] - pairs_before[i]
    assert all(b != a for (_, b), (_, a) in zip(before, after, strict=True))


def test_under_study_day_the_reference_date_becomes_the_anchor() -> None:
    pseudonymizer = Pseudonymizer(regime(dates="study-day"), {"p-1": dt.date(2025, 1, 15)})
    subject = {
        "resourceType": "ResearchSubject",
        "id": "rs-1",
        "period": {"start": "2025-01-15", "end": "2025-06-01"},
        "individual": {"reference": "Patient/p-1"},
    }
    out = pseudonymizer.resource(subject, "p-1")
    assert out["period"] == {"start": "2000-01-01", "end": "2000-05-17"}


def test_a_study_day_export_of_a_patient_without_reference_date_fails_clearly() -> None:
    pseudonymizer = Pseudonymizer(regime(dates="study-day"), {})
    with pytest.raises(PseudonymizationError, match="reference date"):
        pseudonymizer.resource({"resourceType": "Observation", "issued": "2025-01-01"}, "p-1")


def test_group_members_are_each_shifted_by_their_own_patient() -> None:
    reg = regime()
    pseudonymizer = Pseudonymizer(reg, {})
    group = {
        "resourceType": "Group",
        "id": "g-1",
        "meta": {"lastUpdated": "2025-03-01T10:00:00Z"},
        "type": "person",
        "actual": True,
        "member": [
            {"entity": {"reference": f"Patient/{p}"}, "period": {"start": "2025-01-15"}}
            for p in ("p-1", "p-2")
        ],
    }
    out = pseudonymizer.resource(group, None)
    for member, patient in zip(out["member"], ("p-1", "p-2"), strict=True):
        assert member["entity"] == {"reference": f"Patient/{reg.pseudonym(patient)}"}
        expected = dt.date(2025, 1, 15) + dt.timedelta(days=reg.date_offset(patient, None))
        assert member["period"] == {"start": expected.isoformat()}
    assert "lastUpdated" not in out["meta"]  # a study-level date has no patient to shift by
    assert out["actual"] is True


def test_last_updated_is_shifted_with_the_patient() -> None:
    pseudonymizer = Pseudonymizer(regime(), {})
    out = pseudonymizer.resource(
        {"resourceType": "Observation", "meta": {"lastUpdated": "2025-04-14T09:00:00Z"}}, "p-1"
    )
    assert out["meta"]["lastUpdated"] == shift_date(
        "2025-04-14T09:00:00Z", regime().date_offset("p-1", None)
    )


# -- references ----------------------------------------------------------------------------


@pytest.mark.parametrize("patient", ["small-bowel-net-prrt", "g3-nec-immunotherapy"])
def test_every_reference_of_a_realistic_set_resolves_after_pseudonymization(patient: str) -> None:
    before = stored(patient)
    pseudonymizer = Pseudonymizer(regime(), {})
    after = [pseudonymizer.resource(r, patient) for r in before]
    exported = {f"{r['resourceType']}/{r['id']}" for r in after}
    literal = [r for r in references(after) if not r.startswith("#")]
    internal = [r for r in literal if not r.startswith(("Patient/", "Practitioner/"))]
    assert len(internal) > 20
    assert set(internal) <= exported  # results, targets, derivedFrom, focus all still resolve
    assert {r for r in literal if r.startswith("Patient/")} == {
        f"Patient/{regime().pseudonym(patient)}"
    }
    assert len(references(before)) == len(references(after))
    original_ids = {r["id"] for r in before}
    assert not original_ids & {r["id"] for r in after}
    assert patient not in json.dumps(after)


def test_a_report_points_at_its_exported_observations_and_provenance_at_its_report() -> None:
    patient = "small-bowel-net-prrt"
    pseudonymizer = Pseudonymizer(regime(), {})
    after = [pseudonymizer.resource(r, patient) for r in stored(patient)]
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in after}
    report = next(r for r in after if r["resourceType"] == "DiagnosticReport")
    kinds = {by_ref[ref["reference"]]["resourceType"] for ref in report["result"]}
    assert kinds == {"Observation"}
    provenance = next(r for r in after if r["resourceType"] == "Provenance")
    targets = {t["reference"] for t in provenance["target"]}
    assert any(by_ref[t]["resourceType"] == "DiagnosticReport" for t in targets)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Observation/o-1", "Observation/{o}"),
        ("https://ehr.example.org/fhir/Observation/o-1", "Observation/{o}"),
        ("Observation/o-1/_history/3", "Observation/{o}/_history/3"),
        ("Patient/p-1", "Patient/{p}"),
        (
            "urn:uuid:9d98a239-1ba7-53a2-9a43-163647fc55c6",
            "urn:uuid:9d98a239-1ba7-53a2-9a43-163647fc55c6",
        ),
        ("#fhirnet", "#fhirnet"),
    ],
)
def test_literal_references_keep_their_type_and_get_the_keyed_id(
    reference: str, expected: str
) -> None:
    reg = regime()
    out = Pseudonymizer(reg, {}).resource(
        {"resourceType": "DiagnosticReport", "result": [{"reference": reference}]}, "p-1"
    )
    o, p = reg.resource_id("Observation", "o-1"), reg.pseudonym("p-1")
    assert out["result"] == [{"reference": expected.format(o=o, p=p)}]


def test_a_conditional_reference_is_removed() -> None:
    out = Pseudonymizer(regime(), {}).resource(
        {"resourceType": "Observation", "subject": {"reference": f"Patient?identifier={MRN}"}}, "p"
    )
    assert "subject" not in out


def test_the_input_is_not_modified() -> None:
    resources = stored("small-bowel-net-prrt")
    before = copy.deepcopy(resources)
    for resource in resources:
        Pseudonymizer(regime(), {}).resource(resource, "small-bowel-net-prrt")
    assert resources == before


# -- lesions, identifiers, labels ----------------------------------------------------------


def test_lesion_labels_become_keyed_per_patient_and_still_link_form_and_results() -> None:
    patient = "small-bowel-net-prrt"
    reg = regime()
    after = [Pseudonymizer(reg, {}).resource(r, patient) for r in stored(patient)]
    t1 = reg.lesion_id(patient, "T1")
    form_labels = {
        a["valueString"]
        for r in after
        if r["resourceType"] == "QuestionnaireResponse"
        for path, a in _answers(r)
        if path == "lesion-id"
    }
    assert t1 in form_labels
    focus = [
        f["identifier"]["value"]
        for r in after
        if r["resourceType"] == "Observation"
        for f in r.get("focus", [])
    ]
    assert t1 in focus
    bodies = [
        i["value"] for r in after if r["resourceType"] == "BodyStructure" for i in r["identifier"]
    ]
    assert t1 in bodies
    assert reg.lesion_id(patient, "T1") != reg.lesion_id("other-patient", "T1")


def _answers(resource: Json) -> Iterator[tuple[str, Json]]:
    def items(nodes: list[Json]) -> Iterator[tuple[str, Json]]:
        for item in nodes:
            for answer in item.get("answer", []):
                yield item["linkId"], answer
            yield from items(item.get("item", []))

    return items(resource.get("item", []))


def test_study_identifiers_stay_in_clear_and_hospital_identifiers_are_hashed() -> None:
    sid = "https://fhirnet.dev/fhir/sid"
    subject = {
        "resourceType": "ResearchSubject",
        "identifier": [
            {"system": f"{sid}/research-study/NET-01/subject", "value": "001"},
            {"system": "urn:oid:1.2.3.4", "value": MRN},
        ],
    }
    out = Pseudonymizer(regime(), {}).resource(subject, "p-1")
    assert out["identifier"][0]["value"] == "001"
    assert out["identifier"][1]["value"] == regime().identifier_value("urn:oid:1.2.3.4", MRN)


def test_fhirnet_study_labels_stay_and_foreign_extensions_go() -> None:
    sd = "https://fhirnet.dev/fhir/StructureDefinition"
    study = {
        "resourceType": "ResearchStudy",
        "title": "NET imaging study",
        "extension": [
            {
                "url": f"{sd}/study-reader",
                "extension": [
                    {"url": "reader", "valueReference": {"reference": "Practitioner/r-1"}},
                    {"url": "label", "valueString": "RADIOLOGIST 1"},
                ],
            },
            {"url": "https://vendor.example/ext/remark", "valueString": PHRASE},
        ],
        "arm": [{"name": "A", "description": "Everolimus"}],
    }
    out = Pseudonymizer(regime(), {}).resource(study, None)
    assert out["extension"] == [
        {
            "url": f"{sd}/study-reader",
            "extension": [
                {
                    "url": "reader",
                    "valueReference": {
                        "reference": f"Practitioner/{regime().resource_id('Practitioner', 'r-1')}"
                    },
                },
                {"url": "label", "valueString": "RADIOLOGIST 1"},
            ],
        }
    ]
    assert out["title"] == "NET imaging study"
    assert out["arm"] == [{"name": "A", "description": "Everolimus"}]


def test_a_patient_resource_keeps_gender_and_birth_year_only() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p-1",
        "identifier": [{"system": "urn:mrn", "value": MRN}],
        "name": [{"family": "Quaxmire", "given": ["Zebulon"]}],
        "telecom": [{"system": "phone", "value": "+41 79 000 00 00"}],
        "address": [{"city": "Bern", "line": ["Seestrasse 1"]}],
        "gender": "female",
        "birthDate": "1950-07-04",
    }
    shifted = Pseudonymizer(regime(), {}).resource(patient, "p-1")
    assert shifted == {
        "resourceType": "Patient",
        "id": regime().pseudonym("p-1"),
        "gender": "female",
        "birthDate": "1950",
        "meta": {"security": [PSEUDED]},
    }
    days = Pseudonymizer(regime(dates="study-day"), {"p-1": dt.date(2025, 1, 1)})
    assert "birthDate" not in days.resource(patient, "p-1")


def test_pseudoed_is_added_and_existing_labels_kept() -> None:
    subsetted = {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    }
    out = Pseudonymizer(regime(), {}).resource(
        {"resourceType": "Observation", "meta": {"security": [subsetted, PSEUDED]}}, "p-1"
    )
    assert out["meta"]["security"] == [subsetted, PSEUDED]
    for resource in stored("small-bowel-net-prrt"):
        out = Pseudonymizer(regime(), {}).resource(resource, "small-bowel-net-prrt")
        assert PSEUDED in out["meta"]["security"]


def test_codings_keep_their_display() -> None:
    liver = {"system": "http://snomed.info/sct", "code": "10200004", "display": "Liver"}
    out = Pseudonymizer(regime(), {}).resource(
        {"resourceType": "BodyStructure", "location": {"coding": [liver], "text": PHRASE}}, "p"
    )
    assert out["location"] == {"coding": [liver]}


# -- nothing identifying leaves ------------------------------------------------------------


def planted() -> list[Json]:
    """A realistic set with a name, an MRN and a free-text phrase in every place free text
    or identifiers can ride."""
    resources = stored("small-bowel-net-prrt")
    marker = f"{NAME} {MRN} {PHRASE}"
    form = next(r for r in resources if r["resourceType"] == "QuestionnaireResponse")
    form["author"]["display"] = f"Dr. {NAME}"
    form["author"]["identifier"] = {"system": "urn:mrn", "value": MRN}
    form["identifier"]["value"] = MRN
    form["text"] = {"status": "generated", "div": f"<div>{marker}</div>"}
    form["item"].append({"linkId": "comment", "text": marker, "answer": [{"valueString": marker}]})
    form["extension"] = [
        {"url": "https://fhirnet.dev/fhir/StructureDefinition/remark", "valueString": marker},
        {"url": "https://vendor.example/remark", "valueString": marker},
    ]
    form["subject"]["display"] = NAME
    form["source"] = {"reference": "Patient/small-bowel-net-prrt", "display": NAME}
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    report["conclusion"] = marker
    report["resultsInterpreter"][0]["display"] = NAME
    report["presentedForm"] = [{"title": marker, "url": f"https://ehr/{MRN}", "data": "eA=="}]
    observation = next(r for r in resources if r["resourceType"] == "Observation")
    observation["note"] = [{"text": marker, "authorString": NAME}]
    observation["valueString"] = marker
    observation["performer"][0]["display"] = NAME
    observation["identifier"].append({"system": "urn:accession", "value": MRN})
    observation["component"].append(
        {
            "code": {"text": marker},
            "valueString": marker,
            "extension": [{"url": "x", "valueString": marker}],
        }
    )
    observation["unknownElement"] = marker
    observation["meta"]["source"] = f"https://ehr/{MRN}"
    provenance = next(r for r in resources if r["resourceType"] == "Provenance")
    provenance["agent"].append(
        {"who": {"reference": "Practitioner/r-1", "display": NAME}, "onBehalfOf": {"display": NAME}}
    )
    provenance["contained"].append(
        {
            "resourceType": "Practitioner",
            "id": "pr",
            "name": [{"text": NAME}],
            "identifier": [{"value": MRN}],
        }
    )
    return resources


def test_planted_markers_appear_nowhere_in_the_output() -> None:
    resources = planted()
    assert all(m in json.dumps(resources) for m in MARKERS)
    pseudonymizer = Pseudonymizer(regime(), {})
    out = json.dumps([pseudonymizer.resource(r, "small-bowel-net-prrt") for r in resources])
    for marker in (*MARKERS, "Zebulon", "Quaxmire", "99887766", "lake house"):
        assert marker not in out
    assert "small-bowel-net-prrt" not in out  # the patient's real id, also inside identifiers


def test_the_secret_appears_in_no_output_repr_error_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = SECRET.decode()
    reg = regime(dates="study-day")
    pseudonymizer = Pseudonymizer(reg, {"small-bowel-net-prrt": dt.date(2025, 1, 14)})
    out = [pseudonymizer.resource(r, "small-bowel-net-prrt") for r in planted()]
    texts = [json.dumps(out), repr(reg), str(reg), repr(pseudonymizer), json.dumps(reg.statement())]
    with pytest.raises(PseudonymizationError) as error:
        Pseudonymizer(reg, {}).resource(
            {"resourceType": "Observation", "issued": "2025-01-01"}, "p"
        )
    texts += [str(error.value), repr(error.value)]
    with pytest.raises(PseudonymizationError) as short:
        Regime(study_id="S", secret=SECRET[:20], dates=DateRegime.SHIFT)
    texts += [str(short.value)]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert secret_text not in text
        assert secret_text[:16] not in text
        assert SECRET.hex() not in text


def test_the_statement_names_the_regime_and_what_is_removed() -> None:
    statement = regime(dates="study-day").statement()
    assert statement["regime"] == "pseudonymized"
    assert statement["study"] == "NET-01"
    assert statement["dates"] == "study-day"
    assert "HMAC-SHA256" in statement["pseudonyms"]
    assert any("narratives" in r for r in statement["removed"])
    json.dumps(statement)


def test_other_resources_without_a_patient_keep_no_name_or_description() -> None:
    location = {
        "resourceType": "Location",
        "name": "Ward 7",
        "description": PHRASE,
        "status": "active",
    }
    out = Pseudonymizer(regime(), {}).resource(location, None)
    assert out == {"resourceType": "Location", "status": "active", "meta": {"security": [PSEUDED]}}


def test_odd_shapes_are_dropped_not_crashed_on() -> None:
    odd = {
        "resourceType": "Observation",
        "meta": {"security": "PSEUDED?", "source": MRN},
        "subject": {"reference": 42, "display": NAME},
        "valueString": ["not", "a", "string"],
        "effectiveDateTime": 20250101,
        "component": [NAME, 3, None],
    }
    out = Pseudonymizer(regime(), {}).resource(odd, "p-1")
    assert out["meta"] == {"security": [PSEUDED]}
    assert NAME not in json.dumps(out)
    assert MRN not in json.dumps(out)
    assert "effectiveDateTime" not in out  # a date of a shape that cannot be shifted


@pytest.mark.parametrize("dates_regime", ["shift", "study-day"])
@pytest.mark.parametrize(
    "patient", ["small-bowel-net-prrt", "g3-nec-immunotherapy", "pancreatic-net-everolimus"]
)
def test_pseudonymized_resources_are_still_valid_fhir(dates_regime: str, patient: str) -> None:
    pseudonymizer = Pseudonymizer(regime(dates=dates_regime), {patient: dt.date(2025, 1, 14)})
    for resource in stored(patient):
        out = pseudonymizer.resource(resource, patient)
        parsed = parse(out, model_class(out["resourceType"]))
        assert parsed.issues == (), (out["resourceType"], parsed.issues)


def test_the_study_resources_keep_their_trial_structure_and_lose_the_patients() -> None:
    study = Study(
        study_id="NET-01",
        title="NET trial",
        criteria=Criteria.RECIST_1_1,
        options={"confirmationRequired": True},
        arms=(Arm(code="A", name="177Lu-DOTATATE"),),
        sites=(Site(id="001", name="Uppsala"),),
        readers=(
            Reader(reference="Practitioner/r-1", role=ReaderRole.CENTRAL, label="RADIOLOGIST 1"),
        ),
        schedule=(Visit(visit="WEEK 8", day=57, window_days=7),),
    )
    enrolment = Enrolment(
        study_id="NET-01",
        subject_id="001-01",
        patient="p-1",
        site="001",
        arm="A",
        reference_date=dt.date(2025, 1, 14),
        adjudication=Adjudication(
            label="RADIOLOGIST 1",
            reader="Practitioner/r-1",
            by="Practitioner/adj-1",
            recorded=dt.datetime(2025, 6, 2, 10, 0, tzinfo=dt.UTC),
        ),
    )
    reg = regime(dates="study-day")
    pseudonymizer = Pseudonymizer(reg, {"p-1": enrolment.reference_date})
    research = {**research_study(study, enrolment_group="Group/g-1"), "id": "s-1"}
    group = {**enrolment_group("NET-01", [group_member(enrolment)]), "id": "g-1"}
    subject = {**research_subject(enrolment, study_reference="ResearchStudy/s-1"), "id": "rs-1"}
    out_study = pseudonymizer.resource(research, None)
    out_group = pseudonymizer.resource(group, None)
    out_subject = pseudonymizer.resource(subject, "p-1")
    for out in (out_study, out_group, out_subject):
        assert parse(out, model_class(out["resourceType"])).issues == ()
    text = json.dumps([out_study, out_group, out_subject])
    assert "Uppsala" not in text
    assert "p-1" not in text
    assert '"RADIOLOGIST 1"' in text  # the reader's label in the study and the adjudication
    assert '"WEEK 8"' in text
    assert out_study["title"] == "NET trial"
    assert out_study["identifier"] == research["identifier"]  # the study id, in clear
    assert out_study["site"] == [{"identifier": research["site"][0]["identifier"]}]
    assert out_study["enrollment"] == [{"reference": f"Group/{out_group['id']}"}]
    assert out_subject["study"] == {"reference": f"ResearchStudy/{out_study['id']}"}
    assert out_subject["identifier"] == subject["identifier"]  # the subject number, in clear
    assert out_subject["assignedArm"] == "A"
    pseudonym = f"Patient/{reg.pseudonym('p-1')}"
    assert out_subject["individual"] == {"reference": pseudonym}
    assert out_group["member"][0]["entity"] == {"reference": pseudonym}
    assert out_group["member"][0]["period"] == {"start": "2000-01-01"}
    assert out_subject["period"] == {"start": "2000-01-01"}
    adjudication = next(e for e in out_subject["extension"] if "adjudication" in e["url"])
    parts = {e["url"]: e for e in adjudication["extension"]}
    assert parts["recorded"]["valueDateTime"] == "2000-05-19T10:00:00+00:00"  # study day 140


def test_malformed_identifiers_extensions_and_patientless_lesions_are_dropped() -> None:
    resource = {
        "resourceType": "Group",
        "identifier": [
            MRN,
            {"system": "https://fhirnet.dev/fhir/sid/crf-lesion-id", "value": "T1"},
        ],
        "extension": [MRN, {"url": "https://fhirnet.dev/fhir/StructureDefinition/x"}],
    }
    out = Pseudonymizer(regime(), {}).resource(resource, None)
    assert out == {"resourceType": "Group", "meta": {"security": [PSEUDED]}}


def test_reference_dates_come_from_the_research_subjects() -> None:
    subjects: list[Json] = [
        {"individual": {"reference": "Patient/p-1"}, "period": {"start": "2025-01-14"}},
        {
            "individual": {"reference": "https://ehr/fhir/Patient/p-2"},
            "period": {"start": "2025-02-01"},
        },
        {"individual": {"reference": "Patient/p-3"}, "period": {"start": "2025-02"}},
        {"individual": {"reference": "Group/g"}, "period": {"start": "2025-02-01"}},
        {"individual": {"reference": "Patient/p-4"}, "period": {"start": "2025-02-30"}},
        {"individual": "Patient/p-5", "period": {"start": "2025-02-01"}},
    ]
    assert reference_dates(subjects) == {"p-1": dt.date(2025, 1, 14), "p-2": dt.date(2025, 2, 1)}
