"""Who may earn, hold and spend points: residents only (`User.Role.RESIDENT`). The one check
that the API's permission (carbon.api.permissions.IsResident), the claim, appeal, link and
ledger services and the balance socket share, so a refusal reads the same wherever it is
caught. Merchant staff, institution members and administrators keep their own APIs."""

from __future__ import annotations

from carbon.errors import DomainError, ErrorCode
from carbon.models import User


class NotAResident(DomainError):
    code = ErrorCode.RESIDENTS_ONLY


def resident_require(*, user: User) -> None:
    """Refuse (NotAResident) anyone but a resident: the defence behind the API's permission,
    for paths that do not come through it (partner feeds, admin actions, jobs, scripts)."""
    if not getattr(user, "is_resident", False):
        raise NotAResident(details={"role": getattr(user, "role", "")})
