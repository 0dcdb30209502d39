"""Helpers for partner-event tests: an event as a platform sends it, a resident's link to
their account at the partner (asked, then confirmed by the partner), a signed push."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.carbon.api_helpers import partner_post

EVENTS = "/api/v1/partners/events"


def ride(event_id="e1", user_ref="u-42", km=3.2, seconds=900, when=None, **extra):
    return {
        "event_id": event_id,
        "behaviour": "bike-share",
        "user_ref": user_ref,
        "occurred_at": (when or timezone.now() - timedelta(hours=1)).isoformat(),
        "distance_km": km,
        "duration_s": seconds,
        **extra,
    }


def ask_link(auth_api, partner, ref="u-42", consent=True):
    """The resident asks to link their account at the partner: the link is pending."""
    return auth_api.post(
        "/api/v1/me/partner-links",
        {"partner": partner.pk, "external_ref": ref, "consent": consent},
        format="json",
    )


def link(auth_api, issued, ref="u-42", consent=True):
    """Ask, then the partner confirms (signed) that its customer `ref` brought the token:
    the link earns from then on. Answers the partner's confirmation."""
    asked = ask_link(auth_api, issued.partner, ref, consent)
    assert asked.status_code == 202, asked.content
    return partner_post(
        "/api/v1/partners/links/confirm",
        key_id=issued.key_id,
        secret=issued.secret,
        payload={"link_token": asked.json()["link_token"], "user_ref": ref},
    )


def push_events(issued, events, **kw):
    return partner_post(
        EVENTS, key_id=issued.key_id, secret=issued.secret, payload={"events": events}, **kw
    )
