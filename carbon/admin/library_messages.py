"""Admin labels of our libraries (django-axes' lockout pages, simplejwt's token blacklist)
that their own Simplified Chinese catalogues lack. Listed here (never called) so
`makemessages` keeps them in our catalogue, locale/zh_Hans, which Django reads before the
libraries' own: the whole console then reads in the administrator's language."""

from django.utils.translation import gettext_noop

LIBRARY_MESSAGES = (
    # django-axes: models, fields and admin pages.
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("Access Attempt"),
    gettext_noop("Access lock out"),
    gettext_noop("Attempt Remaining"),
    gettext_noop("Attempt Time"),
    gettext_noop("Expires At"),
    gettext_noop("Failed Logins"),
    gettext_noop("Form Data"),
    gettext_noop("GET Data"),
    gettext_noop("HTTP Accept"),
    gettext_noop("IP Address"),
    gettext_noop("Locked Out"),
    gettext_noop("Logout Time"),
    gettext_noop("Meta Data"),
    gettext_noop("Not set"),
    gettext_noop("POST Data"),
    gettext_noop("Path"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("User Agent"),
    gettext_noop("Username"),
    # djangorestframework-simplejwt's token blacklist.
    gettext_noop("Blacklisted Token"),
    gettext_noop("Blacklisted Tokens"),
    gettext_noop("Outstanding Token"),
    gettext_noop("Outstanding Tokens"),
    gettext_noop("Blacklisted token for %(user)s"),
    gettext_noop("Token for %(user)s (%(jti)s)"),
)
