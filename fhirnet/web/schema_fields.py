"""The marshmallow toolkit every JSON API body is read and written with: strict JSON, exact
numbers, strict booleans and ISO dates, bounded lists, camelCase keys with unknown keys refused,
schemas that load into frozen domain dataclasses, and the error body with each field's JSON path.

Shared by the assessment (:mod:`fhirnet.web.assessment_schemas`), trial endpoint
(:mod:`fhirnet.web.endpoint_schemas`) and study (:mod:`fhirnet.web.study_schemas`) schemas, so the
three APIs refuse bad input alike.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeVar

from marshmallow import (
    RAISE,
    Schema,
    fields,
    post_load,
    validate,
)
from marshmallow.exceptions import SCHEMA

from fhirnet.errors import FieldError, InvalidInputError, Path
from fhirnet.web.limits import no_duplicate_keys

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_S = TypeVar("_S", bound=Schema)


@cache
def shared(schema: type[_S]) -> _S:
    """The one instance of ``schema`` every request loads or dumps with. Building a schema deep
    copies its declared fields (and its nested schemas' on first use): about a fifth of a small
    API request's CPU. An instance keeps no state of a call (marshmallow 4 has no schema
    context; errors are raised, not stored), so threads share it."""
    return schema()


def parse_json(raw: bytes | str) -> Any:
    """Decode a request body; every way it can fail becomes a 422-style input error at ``$``.

    Duplicate object keys are rejected rather than silently keeping the last one, so a body never
    means something other than what its author sees. ``NaN``/``Infinity`` tokens are let through
    as floats: the number fields reject them with the offending field's path.

    :param raw: the body as sent (UTF-8, -16 or -32; ``json`` detects which).
    :returns: the decoded JSON value.
    :raises InvalidInputError: the body is not JSON.
    """
    try:
        return json.loads(raw, object_pairs_hook=no_duplicate_keys)
    except RecursionError:
        message = "Malformed JSON: nested too deeply."
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        message = f"Malformed JSON: {error}."
    raise InvalidInputError([FieldError(path=(), message=message)])


def field_errors(messages: Any, path: Path = ()) -> list[FieldError]:
    """Flatten marshmallow's nested error messages into one :class:`FieldError` per message.

    marshmallow nests messages by field name and list index (``{"timepoints": {2: {"date":
    [...]}}}``) and puts object-level problems under ``"_schema"``; the latter belong to the
    object's own path. This is the one flattening used by the API and the CLI alike.

    :param messages: ``ValidationError.messages``, or any part of it.
    :param path: where ``messages`` sits in the request.
    :returns: the problems, in marshmallow's order.
    """
    if isinstance(messages, Mapping):
        found: list[FieldError] = []
        for key, value in messages.items():
            child = path if key == SCHEMA else (*path, key if isinstance(key, int) else str(key))
            found += field_errors(value, child)
        return found
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        return [error for message in messages for error in field_errors(message, path)]
    return [FieldError(path=path, message=str(messages))]


class Checked(fields.Field[Any]):
    """A field that runs its one validator itself. marshmallow wraps a field's validators in a new
    ``And`` on every value, even none or one of them, then re-raises the one validator's
    messages as they were: about a tenth of loading an assessment request. Two or more
    validators still go through ``And``, which reports every one that fails."""

    def _validate(self, value: Any) -> None:
        validators = self.validators
        if len(validators) == 1:
            validators[0](value)
        elif validators:
            super()._validate(value)


class Text(Checked, fields.String):
    """A string field (:class:`Checked`)."""


class Code(Checked, fields.Enum[Any]):
    """An enum field (:class:`Checked`)."""


class JsonNumber(Checked, fields.Decimal):
    """A JSON number, held as an exact ``Decimal`` (``criteria.md`` §0 compares exactly).

    Loading accepts only JSON numbers: booleans and numeric strings such as ``"12"`` or ``"NaN"``
    are type errors, and non-finite values are rejected. A float becomes the ``Decimal`` of its
    shortest repr (``9.8`` → ``Decimal('9.8')``), never of its binary expansion. Dumping writes a
    JSON number, not the string Flask's encoder would make of a ``Decimal``.
    """

    default_error_messages = {  # noqa: RUF012 (marshmallow's class-level dict)
        "invalid": "Not a valid number.",
        "special": "Must be a finite number.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.make_error("special")
            number = Decimal(repr(value))
            # -0.0 passes "non-negative" but would print as "-0.0 mm"; a zero has no sign here.
            return number.copy_abs() if number.is_zero() else number
        return Decimal(value)

    # A float, not the Decimal the base class declares: that is what json writes as a number.
    def _serialize(  # type: ignore[override]
        self, value: Any, attr: Any, obj: Any, **kwargs: Any
    ) -> float | None:
        if value is None:
            return None
        number = float(value)
        if not math.isfinite(number):
            # json would write the invalid token "Infinity"; a result this large is a domain bug.
            raise ValueError(f"{value} is outside the range of a JSON number")
        return 0.0 if number == 0 else number  # no "-0.0" after rounding a tiny negative change


class StrictBoolean(Checked, fields.Boolean):
    """``true`` or ``false`` only; marshmallow would also take ``1``, ``"yes"``, ``"on"``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


class IsoDate(Checked, fields.Date):
    """A calendar date written exactly ``YYYY-MM-DD`` (Python 3.11 would also take ``20250115``)."""

    default_error_messages = {  # noqa: RUF012 (marshmallow's class-level dict)
        "invalid": "Not a valid date; expected YYYY-MM-DD.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.date:
        date = iso_date(value)
        if date is None:
            raise self.make_error("invalid")
        return date


def iso_date(value: object) -> dt.date | None:
    """The date ``value`` spells as ``YYYY-MM-DD``, or ``None`` when it is anything else."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


class BoundedList(Checked, fields.List[Any]):
    """A list whose length limits are checked before its items are.

    So a body with 100 000 timepoints is refused in one message instead of 100 000 item errors,
    and without the cost of validating them. The items load into a tuple, as the frozen domain
    dataclasses hold them.

    A list of objects for a nested schema is loaded by that schema in one ``many=True`` load
    rather than one load per item: the same fields, hooks and errors (keyed by index either
    way), without marshmallow's per-load work repeated for every lesion (about a tenth of an
    assessment request's loading). A list holding anything but objects goes item by item, so
    ``null`` or a string where an object belongs gets the nested field's own message.
    """

    def __init__(
        self,
        inner: fields.Field[Any],
        *,
        min_length: int = 0,
        max_length: int,
        error: str | None = None,
        validate_items: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._length = validate.Length(min=min_length, max=max_length, error=error)
        validators: list[Callable[[Any], Any]] = [self._length]
        if validate_items is not None:
            validators.append(validate_items)
        super().__init__(inner, validate=validators, post_load=tuple, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list):
            self._length(value)
            inner = self.inner
            if (
                isinstance(inner, fields.Nested)
                and not (inner.many or inner.validators or inner.pre_load or inner.post_load)
                and all(type(item) is dict for item in value)
            ):
                return inner.schema.load(
                    value, many=True, unknown=inner.unknown, partial=kwargs.get("partial")
                )
        return super()._deserialize(value, attr, data, **kwargs)


class WholeObject(fields.Nested):
    """Nests a schema that reads the parent object itself, e.g. ``"progression": {"date": ...}``.

    The contract wraps some scalar results in objects; this keeps them declared fields (and
    therefore documented in OpenAPI) without a wrapper type in the domain.
    """

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return obj


class CamelCaseSchema(Schema):
    """Python snake_case attributes, the contract's camelCase keys; unknown keys are errors."""

    class Meta:
        unknown = RAISE

    error_messages = {  # noqa: RUF012 (marshmallow's class-level dict)
        "type": "Expected a JSON object.",
        "unknown": "Unknown field.",
    }

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        """Derive the JSON key from the attribute name: ``diameter_mm`` → ``diameterMm``."""
        head, *rest = (field_obj.data_key or field_name).split("_")
        field_obj.data_key = head + "".join(part.capitalize() for part in rest)


class ModelSchema(CamelCaseSchema):
    """A request schema that loads into the domain dataclass named by ``model``.

    Absent optional keys are simply not passed, so the dataclass defaults are the only defaults.
    """

    model: ClassVar[type]

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.model(**data)


class ErrorsSchema(Schema):
    """Body of every error response: each offending field's JSON path and its messages."""

    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={
            "description": 'JSON path ("$" for the body itself, e.g. '
            '"$.timepoints[0].targets[1].diameterMm") → messages.',
        },
    )
