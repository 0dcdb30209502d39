"""Bearer-token authentication for views that render more of the user than its row:
simplejwt's JWTAuthentication as configured (the same checks, errors and OpenAPI scheme),
made to read what the view renders in its one statement for the user.

The ledger account read this way is as of the start of the request: only views that read
and write nothing else may render it (GET /me, GET /ledger); a view that moves points
reads the account again, locked (carbon.services.people.resident_lock)."""

from __future__ import annotations

from django.db.models import BooleanField, Value
from rest_framework.authentication import BaseAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication

from carbon.models import Account, User


class _UsersWithArea:
    """What JWTAuthentication.get_user reads the user through (`user_model.objects.get`,
    `user_model.DoesNotExist`): the user with their community and district joined, their
    boundaries (multipolygons nobody here renders) left out."""

    DoesNotExist = User.DoesNotExist
    objects = User.objects.select_related("community", "district").defer(
        "community__boundary", "district__boundary"
    )


# Marks a user object as read with its account by this request's authentication: a user
# object that outlives a request (a test client's forced login) must not serve an account
# cached on it by an earlier one.
_READ_WITH_ACCOUNT = "ledger_account_read_with_user"


def _with_account(users):
    return users.select_related("ledger_account").annotate(
        **{_READ_WITH_ACCOUNT: Value(True, output_field=BooleanField())}
    )


class _UsersWithAreaAndAccount(_UsersWithArea):
    """The same, with the user's ledger account (a resident's balance, for GET /me)."""

    objects = _with_account(_UsersWithArea.objects)


class _UsersWithAccount:
    """The user with their ledger account (GET /ledger pages the account's entries)."""

    DoesNotExist = User.DoesNotExist
    objects = _with_account(User.objects.all())


def authenticators_reading(
    authenticators: list[BaseAuthentication], *, area: bool = False, account: bool = False
) -> list[BaseAuthentication]:
    """The view's authenticators, the bearer token's reading the user with their community
    and district (`area`: /me renders their codes; one statement where a resident of a
    community cost three) and their ledger account (`account`: see the module's note; one
    statement fewer for /me and /ledger). Instances of simplejwt's own class, so the
    OpenAPI document names the one `jwtAuth` scheme as before."""
    users = {
        (True, False): _UsersWithArea,
        (True, True): _UsersWithAreaAndAccount,
        (False, True): _UsersWithAccount,
    }.get((area, account))
    if users is None:
        return authenticators
    for authenticator in authenticators:
        if isinstance(authenticator, JWTAuthentication):
            authenticator.user_model = users
    return authenticators


def account_as_authenticated(user: User) -> Account | None:
    """The ledger account read with the user by `authenticators_reading(account=True)` in
    this request; None when the user has none or came another way (the service then reads
    it)."""
    if not getattr(user, _READ_WITH_ACCOUNT, False):
        return None
    try:
        return user.ledger_account
    except Account.DoesNotExist:
        return None
