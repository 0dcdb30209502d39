"""Who may act on zero-waste cells and campaigns through the API: residents (operators of a
cell are residents; voting and objecting are residents' acts). Staff act in the admin."""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from carbon.models import User


class IsResident(BasePermission):
    message = _("Only residents may do this.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role == User.Role.RESIDENT)
