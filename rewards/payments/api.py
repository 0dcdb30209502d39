"""Stripe's webhook endpoint: the raw body is verified (signature, timestamp) and applied
once per event id. No session or token: Stripe's signature is the authentication."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.api import parsing
from rewards.payments.webhooks import stripe_webhook_receive


class RawJSON(parsing.JSONParser):
    """Keeps the body as bytes: the signature is over the exact bytes Stripe sent. (A
    refinement of the API's own JSON parser, as every parser here must be; the webhook
    parses the verified bytes with Stripe's library.)"""

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


class StripeWebhookView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    parser_classes = [RawJSON]

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={
            200: inline_serializer(
                "StripeWebhookReceived",
                {"received": serializers.BooleanField(), "duplicate": serializers.BooleanField()},
            ),
            400: OpenApiResponse(
                description="`webhook_signature_invalid` (also when no webhook secret is set)."
            ),
        },
    )
    def post(self, request):
        """Receive one Stripe event (signed with the webhook secret)."""
        record = stripe_webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        return Response({"received": True, "duplicate": record is None})
