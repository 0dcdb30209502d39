"""DRF authentication for partner systems: HMAC-signed server-to-server requests."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from carbon.models import Partner
from carbon.services.partners import partner_request_verify


class PartnerPrincipal:
    """Stands in for request.user on partner requests."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, partner: Partner):
        self.partner = partner
        self.pk = None

    def __str__(self) -> str:
        return f"partner:{self.partner.name}"


class PartnerSignatureAuthentication(BaseAuthentication):
    def authenticate(self, request):
        # The raw body, exactly as sent: the signature covers these bytes.
        body = request._request.body
        # A bad signature raises InvalidSignature (401) or ReplayedRequest (409), answered by
        # the API's exception handler.
        partner = partner_request_verify(
            key_id=request.headers.get("X-Partner-Key", ""),
            timestamp=request.headers.get("X-Timestamp", ""),
            signature=request.headers.get("X-Signature", ""),
            body=body,
        )
        return PartnerPrincipal(partner), None

    def authenticate_header(self, request):
        return 'HMAC-SHA256 realm="partners"'


class IsPartner(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, PartnerPrincipal)


class PartnerSignatureScheme(OpenApiAuthenticationExtension):
    """Documents the partner signature in the OpenAPI schema."""

    target_class = "carbon.api.partner_auth.PartnerSignatureAuthentication"
    name = "PartnerSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Signature",
            "description": (
                "Send X-Partner-Key (key id), X-Timestamp (Unix seconds, within 5 minutes) and "
                'X-Signature: hex HMAC-SHA256 with the secret over "{timestamp}.{raw body}". '
                "Each signed request is accepted once."
            ),
        }
