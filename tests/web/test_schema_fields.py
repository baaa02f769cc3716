"""The marshmallow toolkit's shared schema instances (:func:`fhirnet.web.schema_fields.shared`):
one per schema, and safe to use from many threads at once; a bounded list of objects loaded in
one go, and a field running its one validator itself, give exactly what marshmallow's own ways
gave."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields
from marshmallow.validate import Length

from fhirnet.criteria import assess
from fhirnet.errors import InvalidInputError
from fhirnet.web.assessment_schemas import (
    MAX_TIMEPOINTS,
    AssessmentRequestSchema,
    TimePointSchema,
    dump_assessment,
    load_request,
)
from fhirnet.web.schema_fields import BoundedList, CamelCaseSchema, Checked, shared

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


class _ItemByItem(CamelCaseSchema):
    """What a BoundedList of timepoints was before it loaded a list of objects in one go."""

    timepoints = fields.List(
        fields.Nested(TimePointSchema), validate=Length(max=MAX_TIMEPOINTS), post_load=tuple
    )


class _AllAtOnce(CamelCaseSchema):
    timepoints = BoundedList(fields.Nested(TimePointSchema), max_length=MAX_TIMEPOINTS)


_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2000, 2000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "T1", "liver", "2025-01-15", "2025-02-30", "cr", "present", "ct"]),
    st.just([]),
    st.just({}),
)
_LESION = st.dictionaries(
    st.sampled_from(["id", "site", "nodal", "diameterMm", "status", "densityHu", "equivocal"]),
    _JSON_VALUES,
)
_TIMEPOINT = st.fixed_dictionaries(
    {},
    optional={
        "date": st.sampled_from(["2025-01-15", "2025-03-01", "15/01/2025", 20250115]),
        "role": st.sampled_from(["baseline", "follow-up", "pre-baseline", "other", None]),
        "targets": st.one_of(st.lists(_LESION, max_size=3), _JSON_VALUES),
        "nonTargets": st.lists(st.one_of(_LESION, _JSON_VALUES), max_size=3),
        "newLesions": st.lists(_LESION, max_size=2),
        "modalities": st.lists(st.sampled_from(["ct", "mri", "pet", "x"]), max_size=3),
        "unknownKey": _JSON_VALUES,
    },
)


@given(st.lists(st.one_of(_TIMEPOINT, _JSON_VALUES), max_size=4))
@settings(max_examples=400, deadline=None)
def test_a_list_of_objects_loaded_at_once_gives_what_item_by_item_gave(items: list[Any]) -> None:
    """Same values, or the same messages at the same paths, for valid and invalid items alike."""

    def load(schema: type[CamelCaseSchema]) -> Any:
        try:
            return shared(schema).load({"timepoints": items})
        except ValidationError as error:
            return error.messages

    assert load(_AllAtOnce) == load(_ItemByItem)


@given(st.lists(st.one_of(_TIMEPOINT, _JSON_VALUES), max_size=4))
@settings(max_examples=400, deadline=None)
def test_fields_running_their_one_validator_give_what_marshmallows_and_gave(
    items: list[Any],
) -> None:
    def load() -> Any:
        try:
            return shared(_AllAtOnce).load({"timepoints": items})
        except ValidationError as error:
            return error.messages

    checked = load()
    with mock.patch.object(Checked, "_validate", fields.Field._validate):
        assert checked == load()
