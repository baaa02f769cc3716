"""marshmallow schemas of the JSON assessment API: request body → domain request, result → body.

The request schemas enforce the structural rules of ``assessment-api.md`` and ``criteria.md`` §1
(types, finite non-negative numbers but densities from -1024 to 3071 HU, limits, unique dates,
known codes, no unknown fields) and their ``@post_load`` hooks build the frozen dataclasses of
:mod:`fhirnet.criteria.models`; the clinical rules (1-5 of §1) stay in the domain. The response
schemas dump an :class:`~fhirnet.criteria.models.Assessment` with exactly the contract's camelCase
fields. The OpenAPI document is generated from these same classes, so documentation and
validation agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import (
    ValidationError,
    fields,
    post_dump,
    validate,
    validates_schema,
)

from fhirnet.criteria.models import (
    Assessment,
    AssessmentRequest,
    Criteria,
    IntratumoralNodules,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    PetReference,
    Response,
    TargetLesion,
    TimePoint,
    TimePointRole,
)
from fhirnet.errors import InvalidInputError
from fhirnet.web.schema_fields import (
    BoundedList,
    CamelCaseSchema,
    Code,
    IsoDate,
    JsonNumber,
    ModelSchema,
    StrictBoolean,
    Text,
    WholeObject,
    field_errors,
    iso_date,
    shared,
)

#: Structural limits of the contract (``assessment-api.md`` "Request").
MAX_TIMEPOINTS = 200
MAX_LESIONS_PER_TIMEPOINT = 50
MAX_DIAMETER_MM = 1000
#: CT attenuation range of a 12-bit scanner (``criteria.md`` §1.5, v2): air is -1000 HU, fat is
#: negative, so a density may be below 0 but not outside what a CT number can be.
MIN_DENSITY_HU = -1024
MAX_DENSITY_HU = 3071
#: Not in the contract (its decision is pending): the domain quotes ids and sites in the reasons
#: of every follow-up, so a 1 MB id in a 1 MB body made a 150 MB response. 64 is FHIR's ``id``
#: limit, as lesions become FHIR resources.
MAX_ID_LENGTH = 64
MAX_SITE_LENGTH = 200


def load_request(document: Any) -> AssessmentRequest:
    """Validate a decoded request body and build the domain request from it.

    :param document: the decoded JSON body.
    :returns: the request, its timepoints in the order given (the domain sorts them).
    :raises InvalidInputError: every structural problem, with its path in the body.
    """
    try:
        request: AssessmentRequest = shared(AssessmentRequestSchema).load(document)
    except ValidationError as error:
        raise InvalidInputError(field_errors(error.messages)) from None
    return request


def dump_assessment(assessment: Assessment) -> dict[str, Any]:
    """Render a domain result as the contract's response body (plain JSON-ready values)."""
    body: dict[str, Any] = shared(AssessmentSchema).dump(assessment)
    return body


def _code(enum: Any, **kwargs: Any) -> Code:
    """An enum field (de)serialised by its published code, e.g. ``"recist-1.1"``, ``"iUPD"``."""
    return Code(enum, by_value=fields.String, **kwargs)


def _lesion_id() -> Text:
    return Text(required=True, validate=validate.Length(min=1, max=MAX_ID_LENGTH))


def _site() -> Text:
    return Text(required=True, validate=validate.Length(min=1, max=MAX_SITE_LENGTH))


def _each_once(values: Sequence[Any]) -> None:
    """Validator: no value listed twice (``modalities`` is a set written as a list)."""
    duplicates = sorted({str(v) for v in values if values.count(v) > 1})
    if duplicates:
        raise ValidationError(f"Listed more than once: {', '.join(duplicates)}.")


def _non_negative(**kwargs: Any) -> JsonNumber:
    return JsonNumber(validate=validate.Range(min=0), **kwargs)


def _diameter(**kwargs: Any) -> JsonNumber:
    return JsonNumber(validate=validate.Range(min=0, max=MAX_DIAMETER_MM), **kwargs)


def _density(**kwargs: Any) -> JsonNumber:
    """Hounsfield units: the one number the contract lets be negative (criteria v2)."""
    return JsonNumber(validate=validate.Range(min=MIN_DENSITY_HU, max=MAX_DENSITY_HU), **kwargs)


class TargetLesionSchema(ModelSchema):
    """A target lesion at one timepoint."""

    model = TargetLesion

    id = _lesion_id()
    site = _site()
    nodal = StrictBoolean()
    diameter_mm = _diameter(
        allow_none=True,
        metadata={
            "description": "Longest diameter, or short axis if nodal; 0 = disappeared, "
            "null = not evaluable."
        },
    )
    too_small_to_measure = StrictBoolean(
        metadata={"description": "Seen but too small to measure: counts as 5 mm."}
    )
    density_hu = _density(
        allow_none=True,
        metadata={"description": "Mean CT density in HU (Choi), -1024 to 3071; may be negative."},
    )
    sul_peak = _non_negative(allow_none=True, metadata={"description": "SULpeak (PERCIST)."})
    suv_max = _non_negative(allow_none=True, metadata={"description": "SUVmax (PERCIST)."})


class NonTargetLesionSchema(ModelSchema):
    """A non-target lesion at one timepoint, followed qualitatively."""

    model = NonTargetLesion

    id = _lesion_id()
    site = _site()
    nodal = StrictBoolean()
    status = _code(NonTargetStatus, required=True)


class NewLesionSchema(ModelSchema):
    """A lesion not present at baseline."""

    model = NewLesion

    id = _lesion_id()
    site = _site()
    modality = _code(Modality, allow_none=True)
    equivocal = StrictBoolean()
    diameter_mm = _diameter(allow_none=True)
    nodal = StrictBoolean()


class PetReferenceSchema(ModelSchema):
    """PERCIST reference-region values of one PET scan."""

    model = PetReference

    liver_sul_mean = _non_negative(allow_none=True)
    liver_sul_sd = _non_negative(allow_none=True)
    blood_pool_sul_mean = _non_negative(allow_none=True)
    blood_pool_sul_sd = _non_negative(allow_none=True)
    uptake_time_min = _non_negative(allow_none=True)


class TimePointSchema(ModelSchema):
    """One imaging exam."""

    model = TimePoint

    date = IsoDate(required=True)
    role = _code(TimePointRole)
    # A set: each modality once. Unbounded, a 5 MiB list made the domain's modality comparison
    # run for minutes.
    modalities = BoundedList(
        _code(Modality),
        max_length=len(Modality),
        error="Each modality may be listed only once; there are {max}.",
        validate_items=_each_once,
    )
    targets = BoundedList(fields.Nested(TargetLesionSchema), max_length=MAX_LESIONS_PER_TIMEPOINT)
    non_targets = BoundedList(
        fields.Nested(NonTargetLesionSchema), max_length=MAX_LESIONS_PER_TIMEPOINT
    )
    new_lesions = BoundedList(fields.Nested(NewLesionSchema), max_length=MAX_LESIONS_PER_TIMEPOINT)
    pet = fields.Nested(PetReferenceSchema, allow_none=True)
    intratumoral_nodules = _code(IntratumoralNodules, allow_none=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _at_most_50_lesions(self, data: Any, original: Any, **kwargs: Any) -> None:
        # Counted on the raw lists, so the limit is reported even when a lesion is itself invalid.
        if not isinstance(original, Mapping):
            return
        lists = (original.get(key) for key in ("targets", "nonTargets", "newLesions"))
        count = sum(len(lesions) for lesions in lists if isinstance(lesions, list))
        if count > MAX_LESIONS_PER_TIMEPOINT:
            raise ValidationError(
                f"At most {MAX_LESIONS_PER_TIMEPOINT} lesions per timepoint "
                f"(targets + nonTargets + newLesions); got {count}."
            )


class OptionsSchema(ModelSchema):
    """Best-overall-response options."""

    model = Options

    confirmation_required = StrictBoolean()
    confirmation_min_days = fields.Integer(strict=True, validate=validate.Range(min=0))
    sd_min_days = fields.Integer(strict=True, validate=validate.Range(min=0))


class AssessmentRequestSchema(ModelSchema):
    """Body of ``POST /api/v1/assessments``."""

    model = AssessmentRequest

    criteria = _code(Criteria, required=True)
    options = fields.Nested(OptionsSchema)
    timepoints = BoundedList(
        fields.Nested(TimePointSchema), required=True, min_length=1, max_length=MAX_TIMEPOINTS
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _unique_dates(self, data: Any, original: Any, **kwargs: Any) -> None:
        # Read from the raw body, so a duplicate is reported with its own index even when another
        # timepoint has errors (marshmallow drops invalid items from the loaded list).
        timepoints = original.get("timepoints") if isinstance(original, Mapping) else None
        if not isinstance(timepoints, list) or len(timepoints) > MAX_TIMEPOINTS:
            return
        first_index: dict[dt.date, int] = {}
        errors: dict[int, dict[str, list[str]]] = {}
        for index, timepoint in enumerate(timepoints):
            date = iso_date(timepoint.get("date")) if isinstance(timepoint, Mapping) else None
            if date is None:
                continue
            if date in first_index:
                errors[index] = {
                    "date": [f"Duplicate date {date}: timepoints[{first_index[date]}] has it too."]
                }
            else:
                first_index[date] = index
        if errors:
            raise ValidationError({"timepoints": errors})


def _out(field: fields.Field[Any]) -> fields.Field[Any]:
    """Mark a response field as always present, so the OpenAPI document lists it as required."""
    field.required = True
    return field


class TimePointAssessmentSchema(CamelCaseSchema):
    """One follow-up's categories and figures; criteria-specific figures only for their criteria.

    Those are read through the figures object (``choi.mean_density_hu``): when the domain leaves
    it ``None`` the key is absent, when it is present a ``None`` figure is written as ``null``.
    """

    date = _out(fields.Date())
    sum_mm = _out(JsonNumber(allow_none=True))
    baseline_sum_mm = _out(JsonNumber(allow_none=True))
    nadir_sum_mm = _out(JsonNumber(allow_none=True))
    nadir_date = _out(fields.Date(allow_none=True))
    change_from_baseline_pct = _out(JsonNumber(allow_none=True))
    change_from_nadir_pct = _out(JsonNumber(allow_none=True))
    target_response = _out(_code(Response, allow_none=True))
    non_target_response = _out(_code(Response, allow_none=True))
    new_lesions = _out(fields.Boolean())
    overall_response = _out(_code(Response))
    reasons = _out(fields.List(fields.String()))
    mean_density_hu = JsonNumber(
        attribute="choi.mean_density_hu", allow_none=True, metadata={"description": "Choi only."}
    )
    density_change_from_baseline_pct = JsonNumber(
        attribute="choi.density_change_from_baseline_pct",
        allow_none=True,
        metadata={"description": "Choi only."},
    )
    target_sul_peak = JsonNumber(
        attribute="percist.target_sul_peak",
        allow_none=True,
        metadata={"description": "PERCIST only."},
    )
    baseline_target_sul_peak = JsonNumber(
        attribute="percist.baseline_target_sul_peak", metadata={"description": "PERCIST only."}
    )
    sul_peak_change_pct = JsonNumber(
        attribute="percist.sul_peak_change_pct",
        allow_none=True,
        metadata={"description": "PERCIST only."},
    )
    sul_peak_change_abs = JsonNumber(
        attribute="percist.sul_peak_change_abs",
        allow_none=True,
        metadata={"description": "PERCIST only."},
    )
    measurability_threshold = JsonNumber(
        attribute="percist.measurability_threshold",
        allow_none=True,
        metadata={"description": "PERCIST only."},
    )
    new_lesion_sum_mm = JsonNumber(
        attribute="irecist.new_lesion_sum_mm",
        allow_none=True,
        metadata={"description": "iRECIST only."},
    )
    confirmation_of = fields.Date(
        attribute="irecist.confirmation_of",
        allow_none=True,
        metadata={"description": "iRECIST only: date of the iUPD this iCPD confirms."},
    )


class BestOverallResponseSchema(CamelCaseSchema):
    """Best overall response (``criteria.md`` §6)."""

    response = _out(_code(Response))
    date = _out(fields.Date(allow_none=True))
    confirmed = _out(fields.Boolean(allow_none=True))


class ProgressionSchema(CamelCaseSchema):
    """``{"date": ...}``: the date of first progression, or ``null``."""

    date = _out(fields.Date(attribute="progression_date", allow_none=True))


class TumorGrowthRateSchema(CamelCaseSchema):
    """Tumour growth rates in %/month (``criteria.md`` §7)."""

    pre_treatment_pct_per_month = _out(JsonNumber(allow_none=True))
    on_treatment_pct_per_month = _out(JsonNumber(allow_none=True))
    ratio = _out(JsonNumber(allow_none=True))
    hyperprogression = _out(fields.Boolean())


class AssessmentSchema(CamelCaseSchema):
    """Body of a ``200`` response of ``POST /api/v1/assessments``."""

    criteria = _out(_code(Criteria))
    baseline_date = _out(fields.Date())
    timepoints = _out(fields.List(fields.Nested(TimePointAssessmentSchema)))
    best_overall_response = _out(fields.Nested(BestOverallResponseSchema))
    progression = _out(WholeObject(ProgressionSchema))
    tumor_growth_rate = fields.Nested(
        TumorGrowthRateSchema, metadata={"description": "Only with a pre-baseline timepoint."}
    )
    warnings = _out(fields.List(fields.String()))

    @post_dump
    def _omit_absent_growth_rate(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("tumorGrowthRate") is None:
            data.pop("tumorGrowthRate", None)
        return data
