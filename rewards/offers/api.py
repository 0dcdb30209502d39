"""An offer's picture, public like the offer itself: the re-encoded JPEG an administrator
uploaded (the offers list links to it)."""

from __future__ import annotations

import logging

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from rewards.offers.models import Offer

log = logging.getLogger(__name__)


class OfferImageView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="JPEG"),
            404: OpenApiResponse(description="No offer on sale has this id, or it has no picture."),
        },
    )
    def get(self, request, pk):
        offer = Offer.objects.filter(pk=pk, is_active=True).exclude(image="").first()
        if offer is None:
            raise NotFound()
        try:
            handle = offer.image.open("rb")
        except OSError:
            log.error("image file missing for offer %s: %s", pk, offer.image.name)
            raise NotFound() from None
        response = FileResponse(handle, content_type="image/jpeg")
        response["Cache-Control"] = "public, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
