"""The transaction Bundle fhirnet writes (``fhirnet.fhir.build`` and the modules it uses).

Golden files (``style.md`` P11): for every example form, the Bundle built with the patient's
earlier forms as history equals ``examples/transactions/<patient>/<exam>.json`` as parsed JSON,
ignoring what a server or the clock sets (``meta.lastUpdated``, ``issued``, ``recorded``,
``Bundle.timestamp``, resource ids). Regenerate them with ``tools/regenerate_golden.py``.
Self-conformance: every resource of every Bundle validates against its own profile.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import json
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhirnet import __version__
from fhirnet.criteria import Response, assess
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.build import (
    ExamResult,
    build_transaction,
    exam_results,
    exams_to_rebuild,
    pre_baseline_result,
)
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES, AssessmentType
from fhirnet.fhir.datatypes import NCIT, OBSERVATION_CODES, number
from fhirnet.fhir.extract import ExamForm, assessment_request, extract_form
from fhirnet.fhir.identifiers import (
    CRF_SUBMISSION,
    ExamKey,
    Identifier,
    Kind,
    client_id_types,
    patient_id,
)
from fhirnet.fhir.observations import DISEASE_STATUS, METHOD_TRANSLATIONS, concordant
from fhirnet.fhir.profiles import Catalog
from fhirnet.fhir.risk_observations import (
    DIFFERENTIATIONS,
    KRENNING_SCORES,
    ORIGINS,
    PRIMARY_SITES,
    PRRT,
    WHO_GRADES,
)
from fhirnet.web.api_views import assess_document
from tests.conformance import validate_resource
from tests.fhir.builders import (
    CATALOG,
    boolean,
    coding,
    date,
    decimal,
    group,
    integer,
    question,
    response,
    string,
)

ROOT = Path(__file__).resolve().parents[2]
FORMS_DIR = ROOT / "examples" / "questionnaire-responses"
GOLDEN_DIR = ROOT / "examples" / "transactions"
ASSESSMENTS_DIR = ROOT / "examples" / "assessments"
FORM_FILES = sorted(FORMS_DIR.glob("*/*.json"))
#: A clock a test can fake: not UTC, to catch timezone slips (style.md P13). Not the golden
#: files' own ``issued``, which the comparison ignores.
ISSUED = dt.datetime(2026, 11, 21, 17, 5, 30, 250000, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
PATIENTS = {
    "pancreatic-net-everolimus": "choi-pancreatic-net-everolimus.json",
    "small-bowel-net-prrt": "recist-1.1-small-bowel-net-prrt.json",
    "g3-nec-immunotherapy": "irecist-g3-nec-immunotherapy.json",
}
#: sekmet-fhir 0.1.1's CapabilityStatement as far as it matters here: conditional update for the
#: types it lists, none of which is QuestionnaireResponse or BodyStructure.
SEKMET_CAPABILITY = {
    "resourceType": "CapabilityStatement",
    "rest": [
        {
            "mode": "server",
            "resource": [
                {
                    "type": rtype,
                    "conditionalUpdate": True,
                    "updateCreate": True,
                    "searchParam": [{"name": n, "type": "token"} for n in params],
                }
                for rtype, params in (
                    ("Observation", ["_tag", "identifier", "code"]),
                    ("DiagnosticReport", ["_tag", "identifier", "code"]),
                    ("Provenance", ["_tag", "target", "entity"]),
                )
            ],
        }
    ],
}

Json = dict[str, Any]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _history(path: Path) -> list[ExamForm]:
    """The patient's forms up to and including the one at ``path``."""
    paths = sorted(path.parent.glob("*.json"))
    return [extract_form(_load(p)) for p in paths[: paths.index(path) + 1]]


def _results(forms: Sequence[ExamForm]) -> tuple[ExamResult, ...]:
    """The exams of ``forms``; a pre-baseline form before any baseline is written on its own."""
    if not any(form.assessment_type is AssessmentType.BASELINE for form in forms):
        return tuple(pre_baseline_result(form) for form in forms)
    return exam_results(forms, assess(assessment_request(forms, forms[-1].criteria)))


def _bundle(path: Path, **options: Any) -> Json:
    """The Bundle fhirnet writes when the form at ``path`` arrives."""
    return build_transaction([_results(_history(path))[-1]], issued=ISSUED, **options)


def _entries(bundle: Json, profile: str) -> list[Json]:
    url = f"https://fhirnet.dev/fhir/StructureDefinition/{profile}"
    return [e for e in bundle["entry"] if url in e["resource"].get("meta", {}).get("profile", [])]


def _one(bundle: Json, profile: str) -> Json:
    (found,) = _entries(bundle, profile)
    resource: Json = found["resource"]
    return resource


def _kinds(bundle: Json) -> list[str]:
    """Each entry as its profile id (the QuestionnaireResponse as its type)."""
    return [
        e["resource"]
        .get("meta", {})
        .get("profile", [e["resource"]["resourceType"]])[0]
        .rsplit("/", 1)[-1]
        for e in bundle["entry"]
    ]


def _ids(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


# -- golden files ---------------------------------------------------------------------------------


def _normalised(bundle: Json) -> Json:
    """The Bundle without what the server or the clock sets: resource ids (the server assigns
    them), ``meta.lastUpdated``/``versionId``, ``issued``, ``recorded``, ``Bundle.timestamp``."""
    bundle = copy.deepcopy(bundle)
    for key in ("id", "timestamp"):
        bundle.pop(key, None)
    resources = [bundle, *(e.get("resource", {}) for e in bundle.get("entry", []))]
    for resource in resources:
        meta = resource.get("meta", {})
        for key in ("lastUpdated", "versionId"):
            meta.pop(key, None)
        if resource is not bundle:
            for key in ("id", "issued", "recorded"):
                resource.pop(key, None)
    return bundle


def _diff(expected: Json, actual: Json) -> str:
    def lines(value: Json) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return "\n".join(
        difflib.unified_diff(
            lines(expected), lines(actual), "golden file", "built now", lineterm="", n=4
        )
    )


def test_there_is_one_golden_bundle_per_example_form() -> None:
    golden = sorted(p.relative_to(GOLDEN_DIR) for p in GOLDEN_DIR.glob("*/*.json"))
    assert golden == sorted(p.relative_to(FORMS_DIR) for p in FORM_FILES)
    assert len(golden) == 17  # 16 baseline and follow-up forms, 1 pre-baseline form


@pytest.mark.parametrize("path", FORM_FILES, ids=_ids)
def test_the_bundle_is_its_golden_file(path: Path) -> None:
    golden_path = GOLDEN_DIR / path.parent.name / path.name
    expected, actual = _normalised(_load(golden_path)), _normalised(_bundle(path))
    if actual != expected:
        pytest.fail(
            f"{golden_path.relative_to(ROOT)} differs from what fhirnet builds now. If the change "
            "is intended, run `.venv/bin/python tools/regenerate_golden.py` and review the "
            f"diff of the golden file:\n{_diff(expected, actual)}",
            pytrace=False,
        )


def test_the_comparison_ignores_only_server_and_clock_fields() -> None:
    path = FORMS_DIR / "g3-nec-immunotherapy" / "02-2025-04-28-follow-up.json"
    bundle = _bundle(path)
    later = build_transaction([_results(_history(path))[-1]], issued=ISSUED + dt.timedelta(days=3))
    assert later != bundle
    assert _normalised(later) == _normalised(bundle)
    changed = copy.deepcopy(bundle)
    _one(changed, "sum-of-diameters")["valueQuantity"]["value"] = 1
    assert _normalised(changed) != _normalised(bundle)
    assert '-          "value": 123.0\n+          "value": 1' in _diff(
        _normalised(bundle), _normalised(changed)
    )


# -- self-conformance -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", FORM_FILES, ids=_ids)
def test_every_resource_conforms_to_its_own_profile(path: Path) -> None:
    bundle = _bundle(path)
    # In the Bundle, so that urn:uuid references resolve through the fullUrls.
    assert [
        f"{i.severity} {i.expression}: {i.message}" for i in validate_resource(bundle, CATALOG)
    ] == []
    for entry in bundle["entry"]:
        # And alone (urn:uuid references are then not resolved, everything else is checked).
        assert validate_resource(entry["resource"], CATALOG) == [], entry["fullUrl"]
    for entry in bundle["entry"][1:]:
        assert entry["resource"]["meta"]["profile"], entry["fullUrl"]


@pytest.mark.parametrize(
    "addressing",
    [{}, {"client_id_types": client_id_types(SEKMET_CAPABILITY)}],
    ids=["conditional", "client-ids"],
)
def test_a_rebuild_of_a_whole_patient_conforms_and_writes_each_lesion_once(
    addressing: Mapping[str, Any],
) -> None:
    forms = _history(FORM_FILES[-1])  # small-bowel-net-prrt, all six exams
    bundle = build_transaction(_results(forms), issued=ISSUED, **addressing)

    assert validate_resource(bundle, CATALOG) == []
    kinds = _kinds(bundle)
    assert kinds.count("lesion") == 3
    assert kinds.count("imaging-response-report") == kinds.count("assessment-provenance") == 6
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))


# -- layout and addressing ------------------------------------------------------------------------


def test_a_baseline_with_a_risk_group_writes_lesions_sum_risk_report_and_provenance() -> None:
    bundle = _bundle(FORMS_DIR / "small-bowel-net-prrt" / "01-2025-01-13-baseline.json")

    assert _kinds(bundle) == [
        "QuestionnaireResponse",
        *["lesion"] * 3,
        *["lesion-measurement"] * 3,
        "sum-of-diameters",
        "who-grade",
        "embryologic-origin",
        "prrt-eligibility",
        "imaging-recommendation",
        "imaging-response-report",
        "assessment-provenance",
    ]
    report = _one(bundle, "imaging-response-report")
    assert "conclusionCode" not in report  # the baseline is not assessed
    assert report["conclusion"].startswith("RECIST 1.1: baseline. Sum of diameters 92.0 mm")
    assert _one(bundle, "sum-of-diameters")["valueQuantity"]["value"] == 92.0


def test_a_follow_up_writes_the_response_and_the_disease_status() -> None:
    bundle = _bundle(FORMS_DIR / "small-bowel-net-prrt" / "04-2025-10-13-follow-up.json")

    assert _kinds(bundle) == [
        "QuestionnaireResponse",
        *["lesion"] * 3,
        *["lesion-measurement"] * 3,
        "sum-of-diameters",
        "response-assessment",
        "cancer-disease-status",
        "imaging-response-report",
        "assessment-provenance",
    ]
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    report = _one(bundle, "imaging-response-report")
    assert [r["reference"] for r in report["result"]] == full_urls[4:10]
    assert report["effectiveDateTime"] == "2025-10-13"
    assert report["subject"] == {"reference": "Patient/small-bowel-net-prrt"}
    assert report["issued"] == "2026-11-21T17:05:30.250-05:00"
    assert report["conclusionCode"] == [
        {"coding": [{"system": NCIT, "code": "C18058", "display": "Partial Remission"}]}
    ]
    provenance = _one(bundle, "assessment-provenance")
    assert [t["reference"] for t in provenance["target"]] == full_urls[1:11]
    assert provenance["entity"] == [{"role": "source", "what": {"reference": full_urls[0]}}]
    assert provenance["contained"][0]["version"] == [{"value": __version__}]
    assert _one(bundle, "cancer-disease-status")["valueCodeableConcept"]["coding"][0]["code"] == (
        "268910001"  # improved
    )


def test_every_entry_is_a_put_by_business_identifier_and_provenance_by_its_uuid() -> None:
    bundle = _bundle(FORMS_DIR / "g3-nec-immunotherapy" / "01-2025-03-03-baseline.json")

    for entry in bundle["entry"]:
        resource, request = entry["resource"], entry["request"]
        assert request["method"] == "PUT"
        if resource["resourceType"] == "Provenance":
            assert request["url"] == f"Provenance/{resource['id']}"
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            continue
        identifiers = resource["identifier"]
        identifier = identifiers if isinstance(identifiers, dict) else identifiers[-1]
        assert "id" not in resource
        assert request["url"] == (
            f"{resource['resourceType']}?identifier={identifier['system']}|{identifier['value']}"
        )
        key = Identifier(system=identifier["system"], value=identifier["value"])
        assert entry["fullUrl"] == key.full_url
    assert bundle["entry"][0]["request"]["url"] == (
        f"QuestionnaireResponse?identifier={CRF_SUBMISSION}|g3-nec-immunotherapy-01"
    )
    assert bundle["entry"][1]["request"]["url"] == (
        "BodyStructure?identifier=https://fhirnet.dev/fhir/sid/lesion|g3-nec-immunotherapy/T1"
    )


def test_a_server_without_identifier_search_gets_client_ids_for_those_types() -> None:
    types = client_id_types(SEKMET_CAPABILITY)
    assert types == {"QuestionnaireResponse", "BodyStructure", "Provenance"}

    bundle = _bundle(FORM_FILES[0], client_id_types=types)

    for entry in bundle["entry"]:
        resource, url = entry["resource"], entry["request"]["url"]
        if resource["resourceType"] in types:
            assert url == f"{resource['resourceType']}/{resource['id']}"
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        else:
            assert url.startswith(f"{resource['resourceType']}?identifier=")
    assert validate_resource(bundle, CATALOG) == []


def test_the_questionnaire_response_is_written_as_received_without_its_id() -> None:
    received = _load(FORM_FILES[3])
    written = _bundle(FORM_FILES[3])["entry"][0]["resource"]
    assert written == {key: value for key, value in received.items() if key != "id"}


def test_a_lesion_is_the_same_body_structure_in_every_exam() -> None:
    patient = FORMS_DIR / "pancreatic-net-everolimus"
    bundles = [_bundle(path) for path in sorted(patient.glob("*.json"))]
    lesions = [_entries(bundle, "lesion") for bundle in bundles]

    assert all(found == lesions[0] for found in lesions)
    assert [e["resource"]["identifier"][1]["value"] for e in lesions[0]] == [
        "pancreatic-net-everolimus/T1",
        "pancreatic-net-everolimus/T2",
        "pancreatic-net-everolimus/T3",
    ]
    measurements = _entries(bundles[2], "lesion-measurement")
    assert [m["resource"]["focus"][0]["reference"] for m in measurements] == [
        e["fullUrl"] for e in lesions[0]
    ]


def test_building_is_pure() -> None:
    results = _results(_history(FORM_FILES[4]))
    first = build_transaction(results, issued=ISSUED)
    assert build_transaction(results, issued=ISSUED) == first
    json.dumps(first, allow_nan=False)  # plain JSON: no Decimal, no NaN


# -- the figures are the JSON endpoint's ----------------------------------------------------------

#: Component code → the assessment API's timepoint field (fsh/README.md component table).
FIELDS = {
    (NCIT, "C94534"): "targetResponse",
    (NCIT, "C94535"): "nonTargetResponse",
    (NCIT, "C142362"): "newLesions",
    (OBSERVATION_CODES, "baseline-date"): "baselineDate",
    (OBSERVATION_CODES, "baseline-sum-of-diameters"): "baselineSumMm",
    (OBSERVATION_CODES, "nadir-sum-of-diameters"): "nadirSumMm",
    (OBSERVATION_CODES, "nadir-date"): "nadirDate",
    (NCIT, "C112370"): "changeFromBaselinePct",
    (NCIT, "C112373"): "changeFromNadirPct",
    (OBSERVATION_CODES, "mean-density"): "meanDensityHu",
    (OBSERVATION_CODES, "density-change-from-baseline"): "densityChangeFromBaselinePct",
    (NCIT, "C181547"): "targetSulPeak",
    (OBSERVATION_CODES, "baseline-target-sul-peak"): "baselineTargetSulPeak",
    (OBSERVATION_CODES, "sul-peak-change-percent"): "sulPeakChangePct",
    (OBSERVATION_CODES, "sul-peak-change-absolute"): "sulPeakChangeAbs",
    (OBSERVATION_CODES, "measurability-threshold"): "measurabilityThreshold",
    (OBSERVATION_CODES, "new-lesion-sum-of-diameters"): "newLesionSumMm",
    (OBSERVATION_CODES, "confirmation-of"): "confirmationOf",
}
API_CODES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}


def _as_api_timepoint(bundle: Json) -> Json:
    """The response-assessment and sum-of-diameters of a Bundle read back as an API timepoint."""
    assessment = _one(bundle, "response-assessment")
    timepoint: Json = {
        "date": assessment["effectiveDateTime"],
        "sumMm": _one(bundle, "sum-of-diameters").get("valueQuantity", {}).get("value"),
        "overallResponse": API_CODES[assessment["valueCodeableConcept"]["coding"][0]["code"]],
        "reasons": [note["text"] for note in assessment["note"]],
    }
    for component in assessment["component"]:
        coding = component["code"]["coding"][0]
        field = FIELDS.get((coding["system"], coding["code"]))
        if field is None:
            continue  # the reader's answers: not in the API
        if "valueCodeableConcept" in component:
            value = API_CODES[component["valueCodeableConcept"]["coding"][0]["code"]]
        elif "valueQuantity" in component:
            value = component["valueQuantity"]["value"]
        else:
            value = component.get("valueBoolean", component.get("valueDateTime"))
        timepoint[field] = value
    return timepoint


@pytest.mark.parametrize("patient", PATIENTS)
def test_the_figures_written_are_the_json_endpoints(patient: str) -> None:
    api = assess_document((ASSESSMENTS_DIR / PATIENTS[patient]).read_bytes())
    expected = [
        {**{k: v for k, v in tp.items() if v is not None}, "baselineDate": api["baselineDate"]}
        for tp in api["timepoints"]
    ]
    follow_ups = sorted((FORMS_DIR / patient).glob("*-follow-up.json"))
    assert [_as_api_timepoint(_bundle(path)) for path in follow_ups] == expected


#: Component code → the assessment API's ``tumorGrowthRate`` field (criteria.md §7).
GROWTH_RATE_FIELDS = {
    "tumor-growth-rate-pre-treatment": "preTreatmentPctPerMonth",
    "tumor-growth-rate-on-treatment": "onTreatmentPctPerMonth",
    "tumor-growth-rate-ratio": "ratio",
    "hyperprogression": "hyperprogression",
}


def _growth_rate(bundle: Json) -> Json | None:
    """The tumour growth rate components of a Bundle's response assessment, as the API's
    ``tumorGrowthRate``; ``None`` when it has none."""
    found: Json = {}
    for component in _one(bundle, "response-assessment")["component"]:
        coding = component["code"]["coding"][0]
        field = GROWTH_RATE_FIELDS.get(coding["code"])
        if coding["system"] == OBSERVATION_CODES and field is not None:
            found[field] = component.get("valueBoolean", component.get("valueQuantity", {}))
            if isinstance(found[field], dict):
                found[field] = found[field]["value"]
    return found or None


@pytest.mark.parametrize("patient", PATIENTS)
def test_every_follow_up_carries_the_json_endpoints_tumour_growth_rate(patient: str) -> None:
    api = assess_document((ASSESSMENTS_DIR / PATIENTS[patient]).read_bytes())
    follow_ups = sorted((FORMS_DIR / patient).glob("*-follow-up.json"))

    growth = {_as_json(_growth_rate(_bundle(path))) for path in follow_ups}

    assert growth == {_as_json(api.get("tumorGrowthRate"))}


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_a_pre_baseline_form_writes_its_sum_and_a_report_without_category() -> None:
    path = FORMS_DIR / "g3-nec-immunotherapy" / "00-2025-01-20-pre-baseline.json"

    bundle = _bundle(path)

    assert _kinds(bundle) == [
        "QuestionnaireResponse",
        "sum-of-diameters",
        "imaging-response-report",
        "assessment-provenance",
    ]
    # 40 + 27 + 22 mm: the D of the pre-treatment growth rate (criteria.md §7).
    assert _one(bundle, "sum-of-diameters")["valueQuantity"]["value"] == 89.0
    report = _one(bundle, "imaging-response-report")
    assert "conclusionCode" not in report
    assert report["conclusion"].startswith("iRECIST: pre-baseline scan before treatment start")


# -- the reader's conclusion ----------------------------------------------------------------------


def _reader_components(bundle: Json) -> dict[str, Any]:
    found = {}
    for component in _one(bundle, "response-assessment")["component"]:
        coding = component["code"]["coding"][0]
        if coding["code"].startswith("reader-"):
            value = component.get("valueBoolean")
            if value is None:
                value = API_CODES[component["valueCodeableConcept"]["coding"][0]["code"]]
            found[coding["code"]] = value
    return found


def test_only_the_documented_reader_answer_is_flagged_discordant() -> None:
    flagged = [
        path.stem
        for path in FORM_FILES
        if "follow-up" in path.name and _reader_components(_bundle(path))["reader-discordant"]
    ]
    assert flagged == ["03-2025-07-14-follow-up"]

    bundle = _bundle(FORMS_DIR / "small-bowel-net-prrt" / "03-2025-07-14-follow-up.json")
    # The report carries both: the computed SD as conclusionCode, the reader's PR beside it.
    assert _reader_components(bundle) == {
        "reader-response-vs-baseline": "PR",
        "reader-response-vs-nadir": "SD",
        "reader-discordant": True,
    }
    report = _one(bundle, "imaging-response-report")
    assert report["conclusionCode"][0]["coding"][0]["code"] == "C18213"
    assert report["conclusion"].endswith(
        "The reader's conclusion (PR versus baseline, SD versus nadir) differs from the "
        "computed SD: discordant."
    )


@pytest.mark.parametrize(
    ("reader", "computed", "agrees"),
    [
        (Response.SD, Response.SD, True),
        (Response.PR, Response.SD, False),  # the documented -29.3 % read as PR
        (Response.PR, Response.IPR, True),  # crf.md: RECIST codes under any criteria
        (Response.PD, Response.IUPD, True),  # an unconfirmed progression is a PD read
        (Response.PD, Response.ICPD, True),
        (Response.SD, Response.SMD, True),
        (Response.PR, Response.PMR, True),
        (Response.IPR, Response.PR, False),  # another criteria's own code is not RECIST's
        (Response.ISD, Response.IUPD, False),
        (Response.NON_CR_NON_PD, Response.NON_ICR_NON_IUPD, True),
    ],
)
def test_reader_and_computed_categories_agree_on_the_same_category(
    reader: Response, computed: Response, agrees: bool
) -> None:
    assert concordant(reader, computed) is agrees


# -- amendments, resubmissions and rebuilds -------------------------------------------------------


def _amended_small_bowel_03() -> list[Json]:
    """The small-bowel patient's forms, with exam 03 amended: T1 25 mm instead of 30 mm, which
    turns its SD into a PR and moves the nadir of every later exam."""
    raws = [_load(path) for path in sorted((FORMS_DIR / "small-bowel-net-prrt").glob("*.json"))]
    amended = raws[2]
    amended["status"] = "amended"
    (t1,) = (
        item
        for item in amended["item"]
        if item["linkId"] == "target-lesion" and item["item"][0]["answer"][0]["valueString"] == "T1"
    )
    (size,) = (q for q in t1["item"] if q["linkId"] == "lesion-size")
    size["answer"][0]["valueDecimal"] = 25.0
    return raws


def test_an_amended_form_replaces_its_results_as_amended() -> None:
    forms = [extract_form(raw) for raw in _amended_small_bowel_03()][:3]
    bundle = build_transaction([_results(forms)[-1]], issued=ISSUED)
    original = _bundle(FORMS_DIR / "small-bowel-net-prrt" / "03-2025-07-14-follow-up.json")

    # Same identifiers and addresses: the PUTs replace what the original form wrote.
    assert [e["request"] for e in bundle["entry"]] == [e["request"] for e in original["entry"]]
    assert bundle["entry"][0]["resource"]["status"] == "amended"
    assert {e["resource"]["status"] for e in bundle["entry"][4:-1]} == {"amended"}
    report = _one(bundle, "imaging-response-report")
    assert report["conclusionCode"][0]["coding"][0]["code"] == "C18058"  # now a PR
    # The reader's SD versus nadir now disagrees with the computed PR: still flagged.
    assert _reader_components(bundle)["reader-discordant"] is True
    assert validate_resource(bundle, CATALOG) == []


def test_an_amendment_rebuilds_the_amended_exam_and_the_later_exams_it_changes() -> None:
    original = [
        extract_form(_load(p)) for p in sorted((FORMS_DIR / "small-bowel-net-prrt").glob("*.json"))
    ]
    amended = [extract_form(raw) for raw in _amended_small_bowel_03()]

    rebuilt = exams_to_rebuild(_results(original), _results(amended))

    assert [r.form.imaging_date.isoformat() for r in rebuilt] == [
        "2025-07-14",
        "2025-10-13",
        "2026-01-12",
        "2026-04-13",
    ]
    assert all(r.amended for r in rebuilt)
    bundle = build_transaction(rebuilt, issued=ISSUED)
    reports = [e["resource"] for e in _entries(bundle, "imaging-response-report")]
    assert {r["status"] for r in reports} == {"amended"}
    assert validate_resource(bundle, CATALOG) == []


def test_a_resubmission_rebuilds_nothing_and_a_new_form_only_itself() -> None:
    forms = [
        extract_form(_load(p)) for p in sorted((FORMS_DIR / "g3-nec-immunotherapy").glob("*.json"))
    ]
    assert exams_to_rebuild(_results(forms), _results(forms)) == ()
    (new,) = exams_to_rebuild(_results(forms[:-1]), _results(forms))
    assert new.form == forms[-1]
    assert not new.amended


def test_the_status_of_what_is_written_follows_the_forms() -> None:
    results = _results(_history(FORM_FILES[2]))
    statuses = {}
    for qr_status in ("completed", "amended", "in-progress", "entered-in-error"):
        form = dataclasses.replace(results[-1].form, status=qr_status)
        bundle = build_transaction([dataclasses.replace(results[-1], form=form)], issued=ISSUED)
        statuses[qr_status] = _one(bundle, "imaging-response-report")["status"]
    assert statuses == {
        "completed": "final",
        "amended": "amended",
        "in-progress": "preliminary",
        "entered-in-error": "entered-in-error",
    }


# -- what cannot be written -----------------------------------------------------------------------


def test_a_form_without_identifier_or_patient_reference_cannot_be_written() -> None:
    result = _results(_history(FORM_FILES[0]))[-1]
    form = dataclasses.replace(result.form, identifier=None, subject="urn:uuid:" + "0" * 32)

    with pytest.raises(InvalidInputError) as raised:
        build_transaction([dataclasses.replace(result, form=form)], issued=ISSUED)

    assert [e.path for e in raised.value.errors] == [("subject", "reference"), ("identifier",)]


def test_the_same_exam_twice_or_a_naive_clock_is_refused() -> None:
    result = _results(_history(FORM_FILES[0]))[-1]
    with pytest.raises(ValueError, match="written twice"):
        build_transaction([result, result], issued=ISSUED)
    with pytest.raises(ValueError, match="timezone"):
        build_transaction([result], issued=dt.datetime(2026, 11, 21, 9, 30))


# -- other criteria and edge cases, built from the form builders ----------------------------------


def _form(*items: Json, number_: str) -> Json:
    return response(
        *items,
        identifier={"system": CRF_SUBMISSION, "value": f"percist-{number_}"},
        author={"reference": "Organization/reading-site"},
    )


def _percist_target(lesion_id: str, *answers: Json, location: str = "Liver") -> Json:
    return group(
        "target-lesion",
        question("lesion-id", string(lesion_id)),
        question("lesion-location", coding("lesion-location", location)),
        question("lesion-nodal", boolean(False)),
        *answers,
    )


def _percist_series() -> list[ExamForm]:
    """A PERCIST 1.0 baseline and follow-up: at follow-up one target too small to measure and
    one with a SULpeak but no size, a PET reference, the reader answering in RECIST codes."""
    pet = group(
        "pet-reference",
        question("liver-sul-mean", decimal(2.0)),
        question("liver-sul-sd", decimal(0.3)),
        question("uptake-time", integer(60)),
    )
    header = [
        question("imaging-procedure", coding("imaging-procedure", "FDG-PET")),
        question("response-criteria", coding("response-criteria", "C126039")),
    ]
    baseline = _form(
        question("imaging-date", date("2025-01-15")),
        question("assessment-type", coding("assessment-type", "baseline")),
        *header,
        _percist_target(
            "T1", question("lesion-size", decimal(30)), question("lesion-sul-peak", decimal(8.4))
        ),
        _percist_target(
            "T2", question("lesion-size", decimal(20)), question("lesion-sul-peak", decimal(5.0))
        ),
        _percist_target(
            "T3",
            question("lesion-size", decimal(15)),
            question("lesion-sul-peak", decimal(4.1)),
            location="Lung",
        ),
        pet,
        number_="01",
    )
    follow_up = _form(
        question("imaging-date", date("2025-04-15")),
        question("assessment-type", coding("assessment-type", "follow-up")),
        *header[:1],
        question("baseline-date", date("2025-01-15")),
        question("nadir-date", date("2025-02-01")),  # not the computed nadir: a warning
        *header[1:],
        _percist_target(
            "T1",
            question("lesion-too-small", boolean(True)),
            question("lesion-sul-peak", decimal(3.1)),
        ),
        _percist_target(
            "T2", question("lesion-size", decimal(12)), question("lesion-sul-peak", decimal(2.6))
        ),
        _percist_target("T3", question("lesion-sul-peak", decimal(2.0)), location="Lung"),
        pet,
        question("response-vs-baseline", coding("response-vs-baseline", "C18058")),
        number_="02",
    )
    return [extract_form(baseline), extract_form(follow_up)]


def test_a_percist_follow_up_writes_the_sul_figures_and_conforms() -> None:
    results = _results(_percist_series())
    bundle = build_transaction(results, issued=ISSUED)

    assert validate_resource(bundle, CATALOG) == []
    assert results[-1].assessment is not None
    assessment = _one(bundle, "response-assessment")
    codes = {c["code"]["coding"][0]["code"] for c in assessment["component"]}
    assert {"C181547", "baseline-target-sul-peak", "measurability-threshold"} <= codes
    assert assessment["valueCodeableConcept"]["coding"][0]["code"] == (
        RESPONSE_CATEGORIES[results[-1].assessment.overall_response].code
    )
    assert results[-1].assessment.overall_response is Response.PMR
    assert _reader_components(bundle) == {  # PR is PERCIST's PMR read in RECIST codes
        "reader-response-vs-baseline": "PR",
        "reader-discordant": False,
    }
    follow_up = [e["resource"] for e in _entries(bundle, "lesion-measurement")][3:]
    assert [sorted(c["code"]["coding"][0]["code"] for c in m["component"]) for m in follow_up] == [
        ["33728-7", "C181547", "too-small-to-measure"],
        ["33728-7", "C181547"],
        ["33728-7", "C181547"],
    ]
    # mCODE TumorSize's longest dimension is always there; without a size it says why.
    assert [_longest_absent(m) for m in follow_up] == ["unknown", None, "unknown"]
    assert follow_up[0]["method"]["coding"][0]["code"] == "FDG-PET"
    assert follow_up[0]["performer"] == [{"reference": "Organization/reading-site"}]
    # T3 has no size: the sum of diameters is not evaluable.
    sums = [e["resource"] for e in _entries(bundle, "sum-of-diameters")]
    assert sums[1]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    report = _entries(bundle, "imaging-response-report")[1]["resource"]
    assert (
        "Warning reader-nadir-date: the reader's nadir date 2025-02-01 differs"
        in (report["conclusion"])
    )


def _longest_absent(measurement: dict[str, Any]) -> str | None:
    """The dataAbsentReason code of a measurement's LOINC 33728-7 component, if any."""
    (longest,) = [
        c for c in measurement["component"] if c["code"]["coding"][0]["code"] == "33728-7"
    ]
    reason = longest.get("dataAbsentReason")
    return None if reason is None else str(reason["coding"][0]["code"])


def test_a_target_without_any_measure_gets_a_measurement_with_a_data_absent_reason() -> None:
    header = [
        question("imaging-procedure", coding("imaging-procedure", "CT")),
        question("response-criteria", coding("response-criteria", "C124415")),
    ]
    baseline = _form(
        question("imaging-date", date("2025-01-15")),
        question("assessment-type", coding("assessment-type", "baseline")),
        *header,
        _percist_target("T1", question("lesion-size", decimal(30))),
        number_="01",
    )
    follow_up = _form(
        question("imaging-date", date("2025-04-15")),
        question("assessment-type", coding("assessment-type", "follow-up")),
        header[0],
        question("baseline-date", date("2025-01-15")),
        header[1],
        _percist_target("T1"),
        number_="02",
    )
    results = _results([extract_form(baseline), extract_form(follow_up)])
    bundle = build_transaction(results[-1:], issued=ISSUED)

    assert validate_resource(bundle, CATALOG) == []
    measurement = _one(bundle, "lesion-measurement")
    assert [c["code"]["coding"][0]["code"] for c in measurement["component"]] == ["33728-7"]
    assert _longest_absent(measurement) == "unknown"
    assert measurement["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assessment = _one(bundle, "response-assessment")
    assert assessment["valueCodeableConcept"]["coding"][0]["code"] == "C62222"  # NE


def test_a_baseline_without_target_lesions_writes_a_sum_not_applicable() -> None:
    form = _form(
        question("imaging-date", date("2025-01-15")),
        question("assessment-type", coding("assessment-type", "baseline")),
        question("imaging-procedure", coding("imaging-procedure", "CT")),
        question("response-criteria", coding("response-criteria", "C124415")),
        group(
            "non-target-lesion",
            question("non-target-lesion.lesion-id", string("NT1")),
            question("non-target-lesion.lesion-location", coding("lesion-location", "Bone")),
            question("non-target-lesion.lesion-nodal", boolean(False)),
            question("lesion-status", coding("lesion-status", "present")),
        ),
        group("risk", question("primary-site", coding("primary-site", "unknown"))),
        number_="01",
    )
    bundle = build_transaction(_results([extract_form(form)]), issued=ISSUED)

    assert validate_resource(bundle, CATALOG) == []
    assert _one(bundle, "sum-of-diameters")["dataAbsentReason"]["coding"][0]["code"] == (
        "not-applicable"
    )
    origin = _one(bundle, "embryologic-origin")
    assert origin["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert _one(bundle, "who-grade")["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert "No target lesions." in _one(bundle, "imaging-response-report")["conclusion"]


def test_without_a_primary_site_no_embryologic_origin_is_written() -> None:
    form = extract_form(
        _form(
            question("imaging-date", date("2025-01-15")),
            question("assessment-type", coding("assessment-type", "baseline")),
            question("imaging-procedure", coding("imaging-procedure", "CT")),
            question("response-criteria", coding("response-criteria", "C124415")),
            _percist_target("T1", question("lesion-size", decimal(30))),
            group("risk", question("ki67", decimal(12))),
            number_="01",
        )
    )
    bundle = build_transaction(_results([form]), issued=ISSUED)
    assert "embryologic-origin" not in _kinds(bundle)
    assert validate_resource(bundle, CATALOG) == []


# -- identifiers and JSON numbers -----------------------------------------------------------------


def test_identifier_values_are_injective_and_need_no_search_escaping() -> None:
    a = ExamKey(patient="p", exam="a/b").identifier(Kind.LESION_MEASUREMENT, "c")
    b = ExamKey(patient="p", exam="a").identifier(Kind.LESION_MEASUREMENT, "b/c")
    assert a.value == "p/a%2Fb/c"
    assert b.value == "p/a/b%2Fc"
    odd = ExamKey(patient="p", exam="x|y,z$").identifier(Kind.WHO_GRADE)
    assert odd.value == "p/x%7Cy%2Cz%24"
    assert odd.search() == "https://fhirnet.dev/fhir/sid/who-grade|p/x%257Cy%252Cz%2524"
    # An EHR's own identifier is escaped for FHIR search, then for the URL.
    assert Identifier(system="urn:x", value="a|b c").search() == "urn:x|a%5C%7Cb%20c"
    with pytest.raises(ValueError, match="lesion id"):
        ExamKey(patient="p", exam="e").identifier(Kind.LESION)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/p-1", "p-1"),
        ("https://ehr.example/fhir/Patient/p.1/_history/3", "p.1"),
        ("urn:uuid:6f1c3b2e-0d6a-4c1e-9a53-1c1f0b7b2a10", None),
        ("Group/g", None),
    ],
)
def test_the_patient_key_is_the_patient_id(reference: str, expected: str | None) -> None:
    assert patient_id(reference) == expected


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("41.0"), "41.0"),
        (Decimal("96"), "96"),
        (Decimal("-18.0"), "-18.0"),
        (Decimal("-0.0"), "0.0"),
        (Decimal("3.69"), "3.69"),
        (Decimal("1E+1"), "10"),
    ],
)
def test_json_numbers_keep_the_digits_of_the_domain(value: Decimal, written: str) -> None:
    assert json.dumps(number(value)) == written


# -- the build-side code tables agree with the package --------------------------------------------


def _concept_map(catalog: Catalog, name: str) -> Iterator[tuple[str, str, str, str | None]]:
    """(source system, source code, target system, target code) of a ConceptMap of ours."""
    cm = catalog.by_url(f"https://fhirnet.dev/fhir/ConceptMap/{name}")
    assert cm is not None
    for grp in cm["group"]:
        for element in grp["element"]:
            for target in element.get("target", []):
                yield grp["source"], element["code"], grp.get("target", ""), target.get("code")


def _expansion(value_set: str) -> dict[tuple[str, str], str | None]:
    url = f"https://fhirnet.dev/fhir/ValueSet/{value_set}"
    return {(c.system, c.code): c.display for c in CATALOG.expand(url)}


def test_disease_status_is_the_concept_map_response_category_to_disease_status() -> None:
    mapped = {
        (code, target)
        for _, code, _, target in _concept_map(CATALOG, "response-category-to-disease-status")
    }
    assert {(RESPONSE_CATEGORIES[r].code, c.code) for r, c in DISEASE_STATUS.items()} == mapped
    trend = _expansion("disease-status-trend")
    assert all(trend[(c.system, c.code)] == c.display for c in DISEASE_STATUS.values())


def test_method_translations_are_the_concept_map_imaging_procedure_to_snomed() -> None:
    mapped = {
        (code, system, target)
        for _, code, system, target in _concept_map(CATALOG, "imaging-procedure-to-snomed")
    }
    assert {(m.value, c.system, c.code) for m, c in METHOD_TRANSLATIONS.items()} == mapped


def test_primary_sites_are_the_code_system_with_the_concept_map_to_snomed() -> None:
    assert {(cs[0].system, cs[0].code): cs[0].display for cs in PRIMARY_SITES.values()} == (
        _expansion("primary-site")
    )
    mapped = {
        (code, target)
        for _, code, _, target in _concept_map(CATALOG, "primary-site-to-snomed")
        if target
    }
    assert {(cs[0].code, cs[1].code) for cs in PRIMARY_SITES.values() if len(cs) > 1} == mapped


@pytest.mark.parametrize(
    ("table", "value_set"),
    [
        (WHO_GRADES, "who-net-grade"),
        (ORIGINS, "embryologic-origin"),
        (PRRT, "prrt-eligibility"),
        (KRENNING_SCORES, "krenning-score"),
        (DIFFERENTIATIONS, "differentiation"),
    ],
)
def test_risk_tables_are_their_value_sets(table: Mapping[Any, Any], value_set: str) -> None:
    assert {(c.system, c.code): c.display for c in table.values()} == _expansion(value_set)
