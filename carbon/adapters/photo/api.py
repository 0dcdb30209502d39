"""Residents' photo evidence over HTTP: the owner fetches the re-encoded image and its
thumbnail; nobody else can (404, as if it did not exist). Photos are private evidence, so
there is no public media URL."""

from __future__ import annotations

import logging

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from carbon.adapters.photo.models import ClaimPhoto
from carbon.adapters.photo.storage import photo_for_owner
from carbon.api.permissions import IsResident

log = logging.getLogger(__name__)


class _ClaimPhotoFileView(APIView):
    permission_classes = [IsResident]
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
