"""Reading request bodies: the API's parsers (JSON, and multipart forms with files), and the
fields and files of a form.

Every JSON document a client sends, a body or a JSON form field, is parsed by
`json_loads_bounded`, which refuses nesting deeper than `MAX_JSON_DEPTH` before the parser sees
it (and strings that are not text): a body like `[[[[...]]]]` 100,000 deep would otherwise exhaust the stack in the parser, or
later in a serializer, a deep copy or a hash, and answer 500. tests/carbon/test_bad_input.py
checks that no view parses with anything but the parsers here.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError

#: No request of this API nests deeper than a handful of levels; 64 leaves room and keeps
#: every recursive walk of the data (validation, copies, hashing) far from the stack limit.
MAX_JSON_DEPTH = 64

# What the depth scan keeps of a body: brackets and quotes; then brackets as signed steps.
_NOT_MARKS = bytes(set(range(256)) - set(b'[]{}"'))
_NESTING_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit`, found without
    parsing it. Free for everyday bodies (fewer brackets than the limit: no scan at all) and
    linear, in C, for the rest (about 20 ms a megabyte of bracket-heavy JSON)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    # Brackets inside strings do not nest. Drop the escapes that could hide a quote (an
    # escaped backslash first, then an escaped quote), keep only quotes and brackets, and
    # drop adjacent quote pairs (strings without brackets; removing two neighbouring quotes
    # never changes which brackets are inside a string). What quotes remain enclose brackets.
    raw = text.encode("utf-8", "surrogatepass").replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = raw.translate(None, _NOT_MARKS).replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[::2])
    steps = marks.translate(_NESTING_STEPS)
    if b"\x01" * (limit + 1) in steps:  # the plain `[[[[...` body, found at C speed
        return True
    return max(accumulate(memoryview(steps).cast("b")), default=0) > limit


# An unpaired surrogate is not text: no text column (nor jsonb) stores it, and every database
# driver fails on it. Valid JSON text carries one only as an escape; a pair of surrogates is
# one character once parsed, so the parsed strings are checked, and only when one appears.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: NUL is text, but PostgreSQL stores it neither in text nor in jsonb. Fields refuse it
#: (DRF's CharField does; free-form JSON fields check with `json_strings_match`).
NUL = re.compile("\x00")


def json_loads_bounded(text: str | bytes, *, strict: bool = True) -> Any:
    """Parse a JSON document from a client, refusing deep nesting, strings with an unpaired
    surrogate, and (when `strict`) the non-standard NaN and Infinity. Raises ValueError
    (json.JSONDecodeError included) on any refusal, with a message meant for the client."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if json_depth_exceeds(text):
        raise ValueError(_("JSON nests deeper than %(depth)d levels.") % {"depth": MAX_JSON_DEPTH})
    data = json.loads(text, parse_constant=_refuse_constant if strict else None)
    if _SURROGATE_ESCAPE.search(text) and json_strings_match(data, _SURROGATE):
        raise ValueError(_("Strings may not contain unpaired surrogates; they are not text."))
    return data


def json_strings_match(data: Any, pattern: re.Pattern) -> bool:
    """Whether any string in parsed JSON data, key or value, contains `pattern`. Recursion
    is safe: the depth was bounded before parsing."""
    if isinstance(data, str):
        return pattern.search(data) is not None
    if isinstance(data, dict):
        return any(
            json_strings_match(k, pattern) or json_strings_match(v, pattern)
            for k, v in data.items()
        )
    if isinstance(data, list):
        return any(json_strings_match(v, pattern) for v in data)
    return False


def _refuse_constant(name: str):
    raise ValueError(_("%(name)s is not valid JSON.") % {"name": name})


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, through `json_loads_bounded` (see the module docstring)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        raw = stream.read() if stream is not None else b""
        try:
            return json_loads_bounded(raw.decode(encoding), strict=self.strict)
        except (ValueError, RecursionError) as exc:
            # RecursionError cannot come from the parser after the depth check; it is here so
            # that no future change of the limit can turn a body back into a 500.
            raise ParseError(_("JSON parse error - %(problem)s") % {"problem": exc}) from None


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser; a JSON-valued form field goes through `json_loads_bounded`
    (`request_fields`). Named here so that views take every parser from this module."""


def request_fields(request) -> dict:
    """Multipart forms carry `evidence` as a JSON string; JSON bodies carry it as an object."""
    if request.content_type.startswith("multipart/"):
        fields = {k: request.data.get(k) for k in request.data if k not in request.FILES}
        raw = fields.get("evidence")
        if isinstance(raw, str) and raw:
            try:
                fields["evidence"] = json_loads_bounded(raw)
            except ValueError:
                raise serializers.ValidationError(
                    {"evidence": [_("Must be a JSON object.")]}
                ) from None
        else:
            fields.pop("evidence", None)
        return fields
    return request.data


def request_files(request) -> dict:
    """One file per form field; a second part under the same name is refused, not dropped."""
    files = {}
    for name, parts in request.FILES.lists():
        if len(parts) != 1:
            raise serializers.ValidationError({name: [_("Send one file under this name.")]})
        files[name] = parts[0]
    return files
