"""Who belongs to which institution and survey, and what that lets them do: record
verdicts (institution members) and see true coordinates (members of a survey that grants
it)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _

from biodiversity.institutions.models import (
    Institution,
    InstitutionMember,
    ProjectMember,
    SurveyProject,
)
from carbon.errors import DomainError, ErrorCode
from carbon.models import User


class NotInstitutionMember(DomainError):
    code = ErrorCode.NOT_INSTITUTION_MEMBER


def institution_of(*, user: User) -> Institution:
    """The institution a member acts for (the first they joined); NotInstitutionMember for
    anyone without the role and a membership."""
    membership = None
    if user.is_authenticated and user.role == User.Role.INSTITUTION_MEMBER:
        membership = (
            InstitutionMember.objects.filter(user=user)
            .select_related("institution")
            .order_by("joined_at", "id")
            .first()
        )
    if membership is None:
        raise NotInstitutionMember(
            _("Only members of a research institution may record a verdict.")
        )
    return membership.institution


@transaction.atomic
def institution_member_add(*, institution: Institution, user: User) -> InstitutionMember:
    """Make `user` a member of `institution` (and give them the institution-member role)."""
    if user.role != User.Role.INSTITUTION_MEMBER:
        user.role = User.Role.INSTITUTION_MEMBER
        user.save(update_fields=["role"])
    member, _created = InstitutionMember.objects.get_or_create(institution=institution, user=user)
    return member


def project_member_add(
    *, project: SurveyProject, user: User, role: str = ProjectMember.Role.VOLUNTEER
) -> ProjectMember:
    member, created = ProjectMember.objects.get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if not created and member.role != role:
        member.role = role
        member.save(update_fields=["role"])
    return member


def projects_granting_true_coordinates(*, user: User):
    """Survey projects whose obscured sightings `user` may see at their true point: the
    project grants it, the user is in it as an institution member, belongs to the project's
    institution, and still holds the institution-member role."""
    if not user.is_authenticated or user.role != User.Role.INSTITUTION_MEMBER:
        return SurveyProject.objects.none()
    return SurveyProject.objects.filter(
        grants_true_coordinates=True,
        members__user=user,
        members__role=ProjectMember.Role.MEMBER,
    ).filter(
        Exists(InstitutionMember.objects.filter(institution=OuterRef("institution"), user=user))
    )
