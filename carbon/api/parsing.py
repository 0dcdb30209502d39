"""Reading request bodies that come as JSON or as multipart forms with files."""

from __future__ import annotations

import json

from django.utils.translation import gettext as _
from rest_framework import serializers


def request_fields(request) -> dict:
    """Multipart forms carry `evidence` as a JSON string; JSON bodies carry it as an object."""
    if request.content_type.startswith("multipart/"):
        fields = {k: request.data.get(k) for k in request.data if k not in request.FILES}
        raw = fields.get("evidence")
        if isinstance(raw, str) and raw:
            try:
                fields["evidence"] = json.loads(raw)
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
