"""The marshmallow toolkit's shared schema instances (:func:`fhirnet.web.schema_fields.shared`):
one per schema, and safe to use from many threads at once."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fhirnet.criteria import assess
from fhirnet.errors import InvalidInputError
from fhirnet.web.assessment_schemas import (
    AssessmentRequestSchema,
    dump_assessment,
    load_request,
)
from fhirnet.web.schema_fields import shared

EXAMPLES = Path(__file__).parents[2] / "examples" / "assessments"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def test_each_schema_has_one_shared_instance() -> None:
    assert shared(AssessmentRequestSchema) is shared(AssessmentRequestSchema)
    assert isinstance(shared(AssessmentRequestSchema), AssessmentRequestSchema)


def outcome(document: Any) -> Any:
    """What loading and assessing ``document`` gives: the body, or the field errors."""
    try:
        return dump_assessment(assess(load_request(document)))
    except InvalidInputError as error:
        return sorted(str(e) for e in error.errors)


def test_threads_sharing_the_instances_each_get_their_own_result_and_errors() -> None:
    """Valid bodies of several criteria and invalid ones, interleaved over threads: each call
    answers exactly what it answers alone (no field error or value of another call)."""
    bodies = [example(p.name) for p in sorted(EXAMPLES.glob("*.json"))]
    broken = copy.deepcopy(bodies[0])
    broken["timepoints"][0]["date"] = "not a date"
    unknown = copy.deepcopy(bodies[-1])
    unknown["surprise"] = True
    documents = [*bodies, broken, unknown] * 20
    alone = [outcome(d) for d in documents[: len(bodies) + 2]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(outcome, documents))

    assert together == alone * 20
    failed = [result for result in alone if isinstance(result, list)]
    assert len(failed) == 2  # the broken ones, with their field errors
    assert all(failed)
