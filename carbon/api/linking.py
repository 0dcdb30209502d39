"""What the link endpoints of both slices share (transit cards, partner accounts): the
per-resident throttle on link attempts, and the request and answer shapes of the proof of
control protocol (carbon.services.linking), described once for the OpenAPI schema."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.throttling import UserRateThrottle

from carbon.models.linking import LinkStatus

PROTOCOL = """
Linking proves control of the account (as a bank or a wallet does):

1. The resident asks to link (`POST` here): the link is `pending`, earns nothing, and the
   answer holds its `link_token` and `expires_at` (CARBON_LINK_PENDING_HOURS).
2. It becomes `confirmed` in one of two ways:
   - **the partner confirms it**: the resident gives the `link_token` to the partner (its
     app, counter or website); the partner, having signed its own customer in, sends the
     signed `POST .../links/confirm` with `link_token` and `user_ref` (its own id of that
     customer; for a transit card, its `card_hash` as in the taps);
   - **a one-time code**: the partner asks for a code with the signed `POST .../links/code`
     naming its customer (`user_ref`), shows it only to that customer (its app, the card's
     statement), and the resident sends it to `POST .../{id}/confirm` within
     CARBON_LINK_CODE_TTL_SECONDS. After CARBON_LINK_CODE_MAX_ATTEMPTS wrong codes the
     pending link is void (`link_void`), and asking again for the same account is refused
     (`link_locked`) until that request would have expired.
3. On confirmation the account's earlier records still inside their claim window are
   credited once; every other resident's link to the same account ends (pending ones are
   void, an older confirmed one is superseded): the proof says who holds the account.

Starting a link and entering a code are throttled per resident (`link_attempts`), and a
resident has at most CARBON_LINK_MAX_PENDING open pending links of each kind
(`too_many_pending_links`).
"""


# The error envelope of the link endpoints, for their documented error answers (the codes
# each status carries are listed in its description).
LINK_ERROR = inline_serializer(
    "LinkError",
    {
        "error": inline_serializer(
            "LinkErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)


def link_errors(codes_by_status: dict[int, str]) -> dict[int, OpenApiResponse]:
    """The documented error answers of an operation: {status: "code, code"}."""
    return {
        status: OpenApiResponse(LINK_ERROR, description=f"Codes: {codes}.")
        for status, codes in codes_by_status.items()
    }


class LinkAttemptThrottle(UserRateThrottle):
    """Per resident, shared by every link endpoint: starting a link and entering a code."""

    scope = "link_attempts"

    def get_rate(self):
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope, "10/hour")


LINK_STATE_FIELDS = ["status", "linked_at", "confirmed_at", "link_token", "expires_at"]


def link_state_help(*, who: str, where: str, what: str) -> dict[str, dict[str, str]]:
    """The help texts of a link's state fields; `who` confirms `what` is yours `where`."""
    return {
        "status": {"help_text": "pending (earns nothing yet) or confirmed."},
        "link_token": {
            "help_text": f"While pending: give it to the {who} ({where}) so it can confirm the "
            f"{what} is yours. Null once confirmed."
        },
        "expires_at": {"help_text": "While pending: void if not confirmed by then."},
    }


# A resident's link (a card, a partner account) with its proof state: the token and its
# expiry are shown only while the link is pending. (A comment, not a docstring: the
# serializers that use it document themselves in the schema.)
class ProvenLinkSerializer(serializers.ModelSerializer):
    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.status != LinkStatus.PENDING:
            data["link_token"] = data["expires_at"] = None
        return data


class LinkCodeSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=16, help_text="The one-time code the partner showed you (6 digits)."
    )


class PartnerLinkConfirmSerializer(serializers.Serializer):
    link_token = serializers.CharField(
        max_length=32, help_text="The token the resident brought from our app."
    )
    user_ref = serializers.CharField(
        max_length=200,
        help_text="Your own id of the customer who brought it (a transit operator sends the "
        "card's `card_hash`, as in its taps). Must be the account the resident asked to link.",
    )


class PartnerLinkCodeRequestSerializer(serializers.Serializer):
    user_ref = serializers.CharField(
        max_length=200,
        help_text="Your own id of the customer (a transit operator sends the card's "
        "`card_hash`). Show the code only to that customer.",
    )


class PartnerLinkConfirmedSerializer(serializers.Serializer):
    link_token = serializers.CharField()
    status = serializers.ChoiceField(choices=LinkStatus.choices, help_text="confirmed")
    confirmed_at = serializers.DateTimeField()


class PartnerLinkCodeSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Show it to your customer only; never send it on.")
    expires_at = serializers.DateTimeField()
    pending_links = serializers.IntegerField(
        help_text="Link requests waiting for this account; the code confirms the one whose "
        "resident enters it, and voids the others."
    )


def issued_code_body(issued) -> dict:
    return {
        "code": issued.code,
        "expires_at": issued.expires_at,
        "pending_links": issued.links,
    }


def confirmed_body(link) -> dict:
    return {"link_token": link.link_token, "status": link.status, "confirmed_at": link.confirmed_at}
