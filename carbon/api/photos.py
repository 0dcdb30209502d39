"""Residents' photo evidence over HTTP: the owner fetches the re-encoded image and its
thumbnail; nobody else can (404, as if it did not exist). Photos are private evidence, so
there is no public media URL. Also the ASGI guard that refuses oversized request bodies
before Django spools them."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from carbon.api.errors import error_body
from carbon.models import ClaimPhoto
from carbon.services.photos import photo_for_owner

log = logging.getLogger(__name__)


class _ClaimPhotoFileView(APIView):
    variant = "image"

    def perform_content_negotiation(self, request, force=False):
        # A browser or app asks for image/*; the JSON renderer is still the one for errors.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, pk):
        try:
            photo = photo_for_owner(user=request.user, claim_id=pk)
        except ClaimPhoto.DoesNotExist:
            raise NotFound() from None
        stored = getattr(photo, self.variant)
        try:
            handle = stored.open("rb")
        except OSError:
            log.error("photo file missing for claim %s: %s", pk, stored.name)
            raise NotFound() from None
        suffix = "" if self.variant == "image" else "-thumbnail"
        response = FileResponse(handle, content_type="image/jpeg")
        response["Content-Disposition"] = f'inline; filename="claim-{pk}{suffix}.jpg"'
        # The resident's own evidence: a browser may keep it, a shared cache may not.
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response


_PHOTO_RESPONSES = {
    (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="JPEG without metadata"),
    404: OpenApiResponse(description="Not one of your claims, or the claim has no photo"),
}


class ClaimPhotoView(_ClaimPhotoFileView):
    """The photo of one of my claims, as stored: re-encoded, at most 2048 px, no EXIF."""

    variant = "image"

    @extend_schema(responses=_PHOTO_RESPONSES, operation_id="claims_photo_retrieve")
    def get(self, request, pk):
        return super().get(request, pk)


class ClaimPhotoThumbnailView(_ClaimPhotoFileView):
    """The thumbnail (at most 320 px) of one of my claims' photo."""

    variant = "thumbnail"

    @extend_schema(responses=_PHOTO_RESPONSES, operation_id="claims_photo_thumbnail_retrieve")
    def get(self, request, pk):
        return super().get(request, pk)


class RequestBodyLimit:
    """ASGI middleware: answer 413 to a request body above `max_bytes` on `prefixes`.

    Django's ASGI handler reads the whole body into a temporary file before any Django
    middleware or view runs, so a size check in Django comes after a 2 GB upload has been
    written to disk. This wraps the Django ASGI app and refuses on Content-Length at once,
    or, for a chunked body, stops reading as soon as the limit is passed.
    """

    def __init__(
        self, app, *, max_bytes: int | None = None, prefixes: tuple[str, ...] = ("/api/",)
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.prefixes = prefixes

    def limit(self) -> int:
        # The photo plus the multipart envelope and the form's small fields.
        return (
            self.max_bytes if self.max_bytes is not None else settings.PHOTO_MAX_BYTES + 1024 * 1024
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        limit = self.limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if declared is not None and int(declared) > limit:
                return await self._refuse(send, limit)
        except ValueError:
            pass  # a malformed header: Django answers 400 itself
        received = 0
        cut_off = False
        started = False

        async def limited_receive():
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django treats a disconnect as an aborted request and answers nothing.
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if cut_off and not started:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send, limit: int) -> None:
        body = json.dumps(
            error_body(
                "request_too_large",
                f"The request body may be at most {limit} bytes.",
                {"max_bytes": limit},
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
