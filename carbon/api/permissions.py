"""Who may call a resident endpoint: `IsResident`, on every view that creates claims or
appeals, reads or moves a resident's points, links cards or partner accounts, or serves a
resident's evidence (tests/carbon/test_residents_only.py walks every route to hold that).
Feature apps use it for their residents' endpoints too (rewards' offers and vouchers)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from carbon.services.residents import resident_require


class IsResident(BasePermission):
    """Signed in, with a resident's account. Anyone else signed in (merchant staff,
    institution members, administrators, a partner's signature) is refused with 403
    `residents_only`, raised as the services raise it, rather than DRF's generic
    `permission_denied`; no credentials at all still answers 401."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 not_authenticated
        resident_require(user=user)
        return True
