"""Bearer-token authentication for views that render more of the user than its row:
simplejwt's JWTAuthentication as configured (the same checks, errors and OpenAPI scheme),
made to read what the view renders in its one statement for the user."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication

from carbon.models import User


class _UsersWithArea:
    """What JWTAuthentication.get_user reads the user through (`user_model.objects.get`,
    `user_model.DoesNotExist`): the user with their community and district joined, their
    boundaries (multipolygons nobody here renders) left out."""

    DoesNotExist = User.DoesNotExist
    objects = User.objects.select_related("community", "district").defer(
        "community__boundary", "district__boundary"
    )


def authenticators_reading_area(
    authenticators: list[BaseAuthentication],
) -> list[BaseAuthentication]:
    """The view's authenticators, the bearer token's reading the user with their community
    and district (for /me, which renders their codes: one statement where a resident of a
    community cost three). Instances of simplejwt's own class, so the OpenAPI document
    names the one `jwtAuth` scheme as before."""
    for authenticator in authenticators:
        if isinstance(authenticator, JWTAuthentication):
            authenticator.user_model = _UsersWithArea
    return authenticators
