"""The OpenAPI document's view: drf-spectacular's, in the language the request asks for."""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView


def _supported(code: str | None) -> str | None:
    try:
        return translation.get_supported_language_variant(code) if code else None
    except LookupError:
        return None


class SchemaView(SpectacularAPIView):
    """`?lang=` picks one of LANGUAGES over Accept-Language. Any other value is ignored, never
    handed to the translation machinery as drf-spectacular would: that loads, and keeps for
    the life of the process, a catalogue for every distinct value a client sends.
    Content-Language names the language the document is in."""

    @extend_schema(**SCHEMA_KWARGS)  # as drf-spectacular's (SERVE_INCLUDE_SCHEMA decides)
    def get(self, request, *args, **kwargs):
        language = _supported(request.GET.get("lang")) or translation.get_language()
        if "lang" in request.GET:
            query = request._request.GET.copy()
            del query["lang"]
            request._request.GET = query
        with translation.override(language):
            response = super().get(request, *args, **kwargs)
        response["Content-Language"] = language
        return response
