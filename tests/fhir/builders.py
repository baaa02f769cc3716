"""Builders of QuestionnaireResponses for the CRF Questionnaire, so that test tables read like the
form: ``question("lesion-size", decimal(24.5))`` inside ``group("target-lesion", ...)``.

Coded answers are looked up in the catalog (the item's ``answerValueSet`` expanded offline) by
code or display, so a fixture cannot hold a code the package does not define. This module walks
the Questionnaire JSON itself rather than using ``fhirnet.fhir.questionnaire``: the fixtures must
not share a bug with the code under test.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fhirnet.fhir.profiles import QUESTIONNAIRE_URL, Catalog, load_catalog

PROFILES = Path(__file__).parents[2] / "profiles"
CATALOG = load_catalog(PROFILES)
CANONICAL = f"{QUESTIONNAIRE_URL}|{CATALOG.version}"

Json = dict[str, Any]


def _walk(items: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for item in items:
        yield item
        yield from _walk(item.get("item", []))


def coding(link_id: str, code_or_display: str, catalog: Catalog = CATALOG) -> Json:
    """``{"valueCoding": ...}`` for the concept of ``link_id``'s value set with that code or
    display; :class:`LookupError` if there is none."""
    item = next(i for i in _walk(catalog.questionnaire()["item"]) if i["linkId"] == link_id)
    for concept in catalog.expand(item["answerValueSet"]):
        if code_or_display in (concept.code, concept.display):
            return {"valueCoding": concept.coding()}
    raise LookupError(f"{code_or_display!r} is not in the value set of {link_id}")


def decimal(value: float) -> Json:
    return {"valueDecimal": value}


def integer(value: int) -> Json:
    return {"valueInteger": value}


def boolean(value: bool) -> Json:
    return {"valueBoolean": value}


def date(value: str) -> Json:
    return {"valueDate": value}


def string(value: str) -> Json:
    return {"valueString": value}


def quantity(value: float, code: str, system: str = "http://unitsofmeasure.org") -> Json:
    return {"valueQuantity": {"value": value, "unit": code, "system": system, "code": code}}


def question(link_id: str, *answers: Json) -> Json:
    """A question item; each answer is one of the ``value...`` builders above. Without answers,
    the item has no ``answer`` (FHIR JSON has no empty arrays)."""
    return {"linkId": link_id, **({"answer": list(answers)} if answers else {})}


def group(link_id: str, *items: Json) -> Json:
    return {"linkId": link_id, **({"item": list(items)} if items else {})}


def response(*items: Json, **elements: Any) -> Json:
    """A completed QuestionnaireResponse to our Questionnaire (``url|version``) about
    ``Patient/p1``; ``elements`` override or add top-level elements."""
    resource: Json = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2025-05-23T09:30:00+02:00",
    }
    if items:
        resource["item"] = list(items)
    resource.update(elements)
    return resource


def target_lesion(
    lesion_id: str, location: str, *, nodal: bool = False, size: float | None = None
) -> Json:
    items = [
        question("lesion-id", string(lesion_id)),
        question("lesion-location", coding("lesion-location", location)),
        question("lesion-nodal", boolean(nodal)),
    ]
    if size is not None:
        items.append(question("lesion-size", decimal(size)))
    return group("target-lesion", *items)


def full_target_lesion(lesion_id: str, location: str, size: float) -> Json:
    """A target lesion with every item of the group answered (CT density and PET uptake)."""
    return group(
        "target-lesion",
        question("lesion-id", string(lesion_id)),
        question("lesion-location", coding("lesion-location", location)),
        question("lesion-nodal", boolean(False)),
        question("lesion-size", decimal(size)),
        question("lesion-too-small", boolean(False)),
        question("lesion-density", decimal(62.5)),
        question("lesion-suv-max", decimal(8.4)),
        question("lesion-sul-peak", decimal(6.1)),
    )


def non_target_lesion(lesion_id: str, location: str, status: str) -> Json:
    return group(
        "non-target-lesion",
        question("non-target-lesion.lesion-id", string(lesion_id)),
        question("non-target-lesion.lesion-location", coding("lesion-location", location)),
        question("non-target-lesion.lesion-nodal", boolean(False)),
        question("lesion-status", coding("lesion-status", status)),
    )


def new_lesion(lesion_id: str, location: str, modality: str) -> Json:
    return group(
        "new-lesion",
        question("new-lesion.lesion-id", string(lesion_id)),
        question("new-lesion.lesion-location", coding("lesion-location", location)),
        question("new-lesion.lesion-nodal", boolean(False)),
        question("new-lesion.lesion-size", decimal(8)),
        question("lesion-modality", coding("lesion-modality", modality)),
        question("lesion-equivocal", boolean(False)),
    )


def follow_up() -> Json:
    """A valid RECIST 1.1 follow-up on CT + FDG PET: 16 top-level items whose indices the tests
    use as expressions.

    ``item[0]`` imaging-date, ``[1]`` assessment-type, ``[2]`` imaging-procedure (CT, FDG-PET),
    ``[3]`` baseline-date, ``[4]`` nadir-date, ``[5]`` previous-treatment, ``[6]`` therapy-type,
    ``[7]`` response-criteria, ``[8]`` target-lesion T1 (liver, 4 items: id, location, nodal,
    size), ``[9]`` target-lesion T2 (nodal), ``[10]`` non-target-lesion NT1, ``[11]`` new-lesion
    N1, ``[12]`` pet-reference (5 items), ``[13]`` response-vs-baseline, ``[14]``
    response-vs-nadir, ``[15]`` risk (9 items, functioning with a syndrome).
    """
    return response(
        question("imaging-date", date("2025-05-22")),
        question("assessment-type", coding("assessment-type", "follow-up")),
        question(
            "imaging-procedure",
            coding("imaging-procedure", "CT"),
            coding("imaging-procedure", "FDG-PET"),
        ),
        question("baseline-date", date("2025-01-15")),
        question("nadir-date", date("2025-03-20")),
        question("previous-treatment", coding("previous-treatment", "somatostatin-analog")),
        question("therapy-type", coding("therapy-type", "cytotoxic")),
        question("response-criteria", coding("response-criteria", "C124415")),
        target_lesion("T1", "Liver", size=24.5),
        target_lesion("T2", "Lymph node", nodal=True, size=9.0),
        non_target_lesion("NT1", "Bone", "present"),
        new_lesion("N1", "Liver", "CT"),
        group(
            "pet-reference",
            question("liver-sul-mean", decimal(2.1)),
            question("liver-sul-sd", decimal(0.25)),
            question("blood-pool-sul-mean", decimal(1.6)),
            question("blood-pool-sul-sd", decimal(0.2)),
            question("uptake-time", integer(62)),
        ),
        question("response-vs-baseline", coding("response-vs-baseline", "C18058")),
        question("response-vs-nadir", coding("response-vs-nadir", "C18213")),
        group(
            "risk",
            question("primary-site", coding("primary-site", "jejunum-ileum")),
            question("functional-status", coding("functional-status", "functioning")),
            question("syndrome", coding("syndrome", "carcinoid-syndrome")),
            question("men1", coding("men1", "N")),
            question("differentiation", coding("differentiation", "well-differentiated")),
            question("ki67", decimal(4.5)),
            question("mitotic-count", decimal(1)),
            question("krenning-score", integer(3)),
            question("fdg-avid", boolean(False)),
        ),
    )


def baseline() -> Json:
    """A valid baseline on CE-CT only: imaging date, type, procedure, criteria, one target."""
    return response(
        question("imaging-date", date("2025-01-15")),
        question("assessment-type", coding("assessment-type", "baseline")),
        question("imaging-procedure", coding("imaging-procedure", "CT")),
        question("response-criteria", coding("response-criteria", "C124415")),
        target_lesion("T1", "Liver", size=32.0),
    )


def five_targets() -> Json:
    """The largest valid response, used to measure validation: a follow-up with 5 targets (the
    maximum) with every item answered, one non-target and one new lesion, PET reference and risk
    group: 75 answers, 7.7 kB of JSON."""
    resource = follow_up()
    targets = [
        full_target_lesion(f"T{n}", site, size)
        for n, (site, size) in enumerate(
            [("Liver", 24.5), ("Liver", 18.0), ("Pancreas", 31.2), ("Lung", 12.4), ("Bone", 15)],
            start=1,
        )
    ]
    resource["item"][8:10] = targets
    return resource


def fresh(resource: Json) -> Json:
    """A deep copy, for tests that mutate a shared fixture."""
    return copy.deepcopy(resource)
