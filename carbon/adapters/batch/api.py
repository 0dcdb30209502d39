"""The HTTP side of the partner-batch kit: reading the list of rows a request carries, the one
answer shape as OpenAPI documents it, and declared row models rendered into the OpenAPI 3.0
description exactly as pydantic validates them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.drainage import set_override
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_serializer
from pydantic.json_schema import model_json_schema
from rest_framework import serializers

from carbon.adapters.batch.rows import BatchReport, RowCode, RowStatus

# The two enumerations of the answer, as OpenAPI names them (ENUM_NAME_OVERRIDES points here).
ROW_STATUS_CHOICES = [s.value for s in RowStatus]
ROW_CODE_CHOICES = [c.value for c in RowCode]


def request_rows(request, *, key: str, allow_empty: bool = True) -> list[Any]:
    """The batch's rows, `{key: [...]}`. Only the list itself is checked here: each row is
    checked on its own by the feed, so that one bad row never refuses the batch."""
    rows = request.data.get(key) if isinstance(request.data, dict) else None
    if not isinstance(rows, list) or not (rows or allow_empty):
        message = (
            _("A list of %(key)s is required.")
            if allow_empty
            else _("A non-empty list of %(key)s is required.")
        )
        raise serializers.ValidationError({key: [message % {"key": key}]})
    return rows


def batch_answer(report: BatchReport, *, deprecated: Mapping[str, str]) -> dict[str, Any]:
    """The answer's body: the report, plus each older name a feed keeps for its existing
    clients (old name -> the field it repeats)."""
    body = report.as_dict()
    for old, new in deprecated.items():
        body[old] = body[new]
    return body


def batch_answer_serializer(
    *,
    name: str,
    row_name: str,
    id_field: str,
    id_help: str,
    id_nullable: bool,
    row_fields: dict[str, serializers.Field] | None = None,
    fields: dict[str, serializers.Field] | None = None,
    deprecated: Mapping[str, str],
) -> type[serializers.Serializer]:
    """The answer of a feed as OpenAPI shows it: the counts, the feed's own blocks (`fields`),
    one entry per row, and the older names of `deprecated` (the same mapping `batch_answer`
    renders), marked deprecated."""
    row = type(
        row_name,
        (serializers.Serializer,),
        {
            "index": serializers.IntegerField(help_text="The row's position in the batch, from 0."),
            id_field: serializers.CharField(allow_null=id_nullable, help_text=id_help),
            "status": serializers.ChoiceField(choices=ROW_STATUS_CHOICES),
            "code": serializers.ChoiceField(
                choices=ROW_CODE_CHOICES,
                required=False,
                help_text="Why the row was refused (error rows only). A row that fails several "
                "checks reports the first.",
            ),
            "message": serializers.CharField(required=False, help_text="For people; may change."),
            **(row_fields or {}),
        },
    )
    # Each answer field, made anew for each name it is shown under.
    common: dict[str, Callable[[str], serializers.Field]] = {
        "received": lambda h: serializers.IntegerField(help_text=h),
        "accepted": lambda h: serializers.IntegerField(help_text=h),
        "duplicate": lambda h: serializers.IntegerField(help_text=h),
        "error": lambda h: serializers.IntegerField(help_text=h),
        "rows": lambda h: row(many=True, help_text=h),
    }
    declared = {
        "received": common["received"]("Rows in the batch."),
        "accepted": common["accepted"]("Rows stored now."),
        "duplicate": common["duplicate"]("Rows stored before with the same content: nothing new."),
        "error": common["error"]("Rows refused, each with a code."),
        **(fields or {}),
        "rows": common["rows"]("One entry per row, in the order sent."),
    }
    for old, new in deprecated.items():
        declared[old] = common[new](f"Deprecated: the same as `{new}`; read that instead.")
    answer = type(name, (serializers.Serializer,), declared)
    return extend_schema_serializer(deprecate_fields=list(deprecated))(answer)


# --- pydantic models in the OpenAPI 3.0 description ------------------------------------------


class PydanticModelSchema(OpenApiSerializerExtension):
    """Replaces drf-spectacular's own pydantic extension, which renders the serialization
    schema in JSON Schema 2020-12: a request is described by what validation accepts (a
    decimal may come as a number or a string), in the OpenAPI 3.0 dialect this API uses."""

    target_class = "pydantic.BaseModel"
    match_subclasses = True
    priority = 1  # over drf_spectacular.contrib.pydantic

    def get_name(self, auto_schema, direction):
        # Nested models are named by pydantic; the collision check cannot see them.
        set_override(self.target, "suppress_collision_warning", True)
        return self.target.__name__

    def map_serializer(self, auto_schema, direction):
        schema = model_json_schema(
            self.target,
            ref_template="#/components/schemas/{model}",
            mode="validation" if direction == "request" else "serialization",
        )
        for sub_name, sub_schema in schema.pop("$defs", {}).items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(
                    name=sub_name,
                    type=ResolvedComponent.SCHEMA,
                    object=sub_name,
                    schema=openapi_30(sub_schema),
                )
            )
        return openapi_30(schema)


def openapi_30(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema 2020-12 (pydantic's) to the OpenAPI 3.0 schema dialect: `const` becomes a
    one-value `enum`, a null branch becomes `nullable`, numeric exclusive bounds become
    boolean ones; titles are dropped (the DRF components have none)."""
    s = dict(schema)
    s.pop("title", None)
    if "const" in s:
        s["enum"] = [s.pop("const")]
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if exclusive in s and not isinstance(s[exclusive], bool):
            s[bound], s[exclusive] = s[exclusive], True
    if "examples" in s:
        s["example"] = s.pop("examples")[0]
    if "properties" in s:
        s["properties"] = {name: openapi_30(sub) for name, sub in s["properties"].items()}
    for key in ("items", "not", "additionalProperties"):
        if isinstance(s.get(key), dict):
            s[key] = openapi_30(s[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if key not in s:
            continue
        branches = [openapi_30(b) for b in s[key]]
        rest = [b for b in branches if b.get("type") != "null"]
        if len(rest) == len(branches):
            s[key] = branches
            continue
        s["nullable"] = True
        if len(rest) == 1 and "$ref" not in rest[0]:
            del s[key]
            s = {**rest[0], **s}
        else:
            s[key] = rest
    return s
