"""Who may pay on a partner's behalf: a manager among that partner's staff. Partner staff are
the merchants slice's MerchantStaff profiles (a user with the merchant-staff role tied to one
partner), reused for sponsors and enterprise buyers rather than a second staff table: one
login, one token, one way to invite and revoke, whatever the partner's kind."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from rewards.merchants.staff import staff_profile


class IsPartnerManager(BasePermission):
    """A manager of an active partner; the partner is kept on the request for the view."""

    message = _("Only a manager of a partner's staff may pay on its behalf.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        profile = staff_profile(user=user)
        request.partner = profile.merchant if profile is not None and profile.is_manager else None
        return request.partner is not None
