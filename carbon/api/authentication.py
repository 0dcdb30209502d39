"""Bearer-token authentication of the resident API's views that need more of the user than
its row: simplejwt's JWTAuthentication (the same checks, errors and schema), reading what
the view renders in the same statement."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
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


class ProfileJWTAuthentication(JWTAuthentication):
    """For /me, which renders the community's and district's codes: one statement for the
    user and both, where the plain read took three for a resident of a community."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user_model = _UsersWithArea


class ProfileJWTScheme(SimpleJWTScheme):
    """The same security scheme in the OpenAPI document as JWTAuthentication's."""

    target_class = "carbon.api.authentication.ProfileJWTAuthentication"
