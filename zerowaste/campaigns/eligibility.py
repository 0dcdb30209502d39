"""Who may vote: a verified resident.

"Verified" is built from what the core already proves: an active, not erased resident
account that holds at least one confirmed link to an outside account (a transit card the
operator confirmed, or a partner account confirmed by the partner or its one-time code), and
that is at least the campaign's minimum age. A confirmed link is proof of control of a
real-world account that costs something to obtain (a Wuhan Tong card, a bike-share or
recycling account), so a farm of fresh email sign-ups cannot vote; the age keeps out accounts
made for the campaign. The IP address is never looked at (households and campuses share one).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _

from carbon.adapters.partner_events.models import PartnerLink
from carbon.adapters.transit.models import TransitCard
from carbon.models import User
from zerowaste.campaigns.errors import VoterNotVerified
from zerowaste.campaigns.models import Campaign


def account_age_days(*, user: User, now: datetime) -> int:
    return max(0, (now - user.date_joined).days)


def voter_links():
    """Whether a user (OuterRef("pk")) holds a confirmed transit card, a confirmed partner
    link: the annotations the check reads, and the one-statement vote compiles."""
    return {
        "zw_card": Exists(TransitCard.objects.linked().filter(user=OuterRef("pk"))),
        "zw_partner": Exists(PartnerLink.objects.linked().filter(user=OuterRef("pk"))),
    }


def voter_check(
    *, user: User, campaign: Campaign, now: datetime, linked: bool | None = None
) -> None:
    """Raises VoterNotVerified, saying what is missing. `linked`: whether the user holds a
    confirmed link, when the caller has already read it (else it is read here)."""
    missing = []
    if user.role != User.Role.RESIDENT or not user.is_active or user.erased_at is not None:
        missing.append("resident")
    else:
        if linked is None:
            links = (
                User.objects.filter(pk=user.pk)
                .annotate(**voter_links())
                .values_list("zw_card", "zw_partner")
                .first()
            )
            linked = bool(links and any(links))
        if not linked:
            missing.append("confirmed_link")
        if account_age_days(user=user, now=now) < campaign.min_account_days:
            missing.append("account_age")
    if missing:
        raise VoterNotVerified(
            details={"missing": missing, "min_account_days": campaign.min_account_days}
        )


def voter_is_verified(*, user: User, campaign: Campaign, now: datetime) -> bool:
    try:
        voter_check(user=user, campaign=campaign, now=now)
    except VoterNotVerified:
        return False
    return True


__all__ = ["account_age_days", "voter_check", "voter_links", "voter_is_verified", "_"]
