"""Declared row schemas for partner batches. A feed describes its row as a pydantic model; the
same model checks every row and is what the OpenAPI description shows, so the two cannot
drift. Each field declares the row code its failures are reported with."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self

from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from pydantic_core import PydanticCustomError

from carbon.adapters.batch.rows import RowCode
from carbon.errors import RowError

# Errors a validator raises with a row code of its own carry this prefix in their type, so
# they can never be mistaken for one of pydantic's error types.
_OWN = "row:"


class RowField:
    """Annotated metadata naming the row code (and the message) a field's failures get.

    `message` is a lazy translation (`gettext_lazy`: the model is declared at import, the
    message is read in the language of the request whose row failed). It may say
    `%(field)s` for the field's name and `%(name)s` for any of `params`. A validator of the
    field may still refuse with another code through `row_refusal`.
    """

    __slots__ = ("code", "message", "params")

    def __init__(self, code: RowCode, message: str | Promise, **params: Any):
        self.code, self.message, self.params = code, message, params

    def render(self, field: str) -> str:
        """The message for a failure of `field`, in the active language."""
        return str(self.message) % {"field": field, **self.params}


def row_refusal(code: RowCode, message: str) -> PydanticCustomError:
    """Raise this from a validator to refuse the row with `code` (not the field's own);
    `message` is already in the request's language (`gettext`, validators run per row)."""
    return PydanticCustomError(f"{_OWN}{code.value}", "{message}", {"message": message})


class RowModel(BaseModel):
    """Base of a declared batch row, or of one part of it (an event's behaviour fields).

    Every field is `Annotated[type, constraints..., RowField(code, message)]`; a subclass
    that leaves one out fails at import. Unknown fields are ignored unless a subclass sets
    `extra="forbid"` (they are then a malformed_row). Patterns are pydantic's default (Rust)
    regular expressions: `$` is the very end of the text, and white space is Unicode's.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    # What a row that is not a JSON object is told (a lazy translation).
    not_an_object: ClassVar[str | Promise] = gettext_lazy("Each row is a JSON object.")
    __row_fields__: ClassVar[dict[str, RowField]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        declared = {}
        for name, info in cls.model_fields.items():
            marks = [m for m in info.metadata if isinstance(m, RowField)]
            if not marks:
                raise TypeError(f"{cls.__name__}.{name} declares no RowField (its row code).")
            declared[name] = marks[-1]
        cls.__row_fields__ = declared

    @classmethod
    def row_parse(cls, raw: Any, *, context: dict[str, Any] | None = None) -> Self:
        """One row checked against the model, or a RowError with the row code of the first
        failed check (shape, unknown fields, then the fields in declared order)."""
        try:
            return cls.model_validate(raw, context=context)
        except ValidationError as exc:
            raise cls._row_error(exc) from None

    @classmethod
    def _row_error(cls, exc: ValidationError) -> RowError:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
        first = errors[0]
        own = first["type"].startswith(_OWN)
        if not first["loc"] and not own:
            return RowError(RowCode.MALFORMED_ROW, str(cls.not_an_object))
        if unknown:
            return RowError(
                RowCode.MALFORMED_ROW,
                _("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            )
        if own:  # a validator's own code, e.g. a time without its offset
            return RowError(RowCode(first["type"].removeprefix(_OWN)), first["msg"])
        name = str(first["loc"][0])
        mark = cls.__row_fields__[name]
        return RowError(mark.code, mark.render(name))


# --- field parsers shared by the feeds -------------------------------------------------------


def iso_time(value: Any) -> datetime:
    """An ISO-8601 date and time, read the way Django reads one (a space instead of the T,
    an offset or Z, or none: whether one is needed is the field's own rule)."""
    if not isinstance(value, str):
        raise PydanticCustomError("iso_time", "An ISO-8601 date and time is a string.")
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise PydanticCustomError("iso_time", "Not an ISO-8601 date and time.")
    return parsed


def int_as_text(value: Any) -> Any:
    """Ids some systems send as numbers are read as their decimal text (not booleans)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def positive_number(
    maximum: int | None, description: str, code: RowCode = RowCode.INVALID_FIELD
) -> Any:
    """A decimal above 0 (and up to `maximum`), sent as a JSON number or a string."""
    message = (
        gettext_lazy("`%(field)s` must be a positive number.")
        if maximum is None
        else gettext_lazy("`%(field)s` must be a positive number, at most %(maximum)d.")
    )
    return Annotated[
        Decimal,
        Field(gt=0, le=maximum, description=description),
        RowField(code, message, maximum=maximum),
    ]


def whole_number(maximum: int, description: str, code: RowCode = RowCode.INVALID_FIELD) -> Any:
    """A JSON integer from 1 to `maximum` (2.0 and true are refused)."""
    return Annotated[
        int,
        Strict(),
        Field(ge=1, le=maximum, description=description),
        RowField(
            code,
            gettext_lazy("`%(field)s` must be a whole number from 1 to %(maximum)d."),
            maximum=maximum,
        ),
    ]


def one_of(*choices: str, code: RowCode = RowCode.INVALID_FIELD) -> Any:
    """One of the given strings, exactly."""
    return Annotated[
        Literal[choices],
        RowField(
            code, gettext_lazy("`%(field)s` must be one of %(choices)s."), choices=sorted(choices)
        ),
    ]
