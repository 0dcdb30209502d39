"""Messages our libraries answer with but whose own Simplified Chinese catalogues leave
untranslated. Listed here (never called) so `makemessages` keeps them in our catalogue,
locale/zh_Hans, which Django reads before the libraries' own."""

from django.utils.translation import gettext_noop

LIBRARY_MESSAGES = (
    # djangorestframework-simplejwt: a refresh token that is forged, garbled or expired.
    gettext_noop("Token is invalid"),
    gettext_noop("Token is expired"),
)
