"""Request bodies before Django reads them: an ASGI middleware that refuses oversized ones
before Django spools them to disk, and the one setting of Daphne (the ASGI server) that
leaves parsing them to Django."""

from __future__ import annotations

import inspect
import json

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from carbon.api.errors import error_body
from carbon.errors import ErrorCode


class RequestBodyLimit:
    """ASGI middleware: answer 413 to a request body above `max_bytes` on `prefixes`.

    Django's ASGI handler reads the whole body into a temporary file before any Django
    middleware or view runs, so a size check in Django comes after a 2 GB upload has been
    written to disk. This wraps the Django ASGI app and refuses on Content-Length at once,
    or, for a chunked body, stops reading as soon as the limit is passed.
    """

    def __init__(
        self, app, *, max_bytes: int | None = None, prefixes: tuple[str, ...] = ("/api/",)
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.prefixes = prefixes

    def limit(self) -> int:
        # The photo plus the multipart envelope and the form's small fields.
        return (
            self.max_bytes if self.max_bytes is not None else settings.PHOTO_MAX_BYTES + 1024 * 1024
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        limit = self.limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if declared is not None and int(declared) > limit:
                return await self._refuse(scope, send, limit)
        except ValueError:
            pass  # a malformed header: Django answers 400 itself
        received = 0
        cut_off = False
        started = False

        async def limited_receive():
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django treats a disconnect as an aborted request and answers nothing.
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if cut_off and not started:
            await self._refuse(scope, send, limit)

    @staticmethod
    async def _refuse(scope, send, limit: int) -> None:
        language = _request_language(scope)
        with translation.override(language):
            body = json.dumps(
                error_body(
                    ErrorCode.REQUEST_TOO_LARGE,
                    _("The request body may be at most %(max_bytes)d bytes.")
                    % {"max_bytes": limit},
                    {"max_bytes": limit},
                )
            ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": ErrorCode.REQUEST_TOO_LARGE.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"content-language", language.encode()),
                    (b"vary", b"Accept-Language"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _request_language(scope) -> str:
    """The language LocaleMiddleware would pick for this request (which never reaches it):
    Django's own reading of Accept-Language, over the settings' LANGUAGES, else the default."""
    request = HttpRequest()
    for name, value in scope.get("headers") or []:
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)


def daphne_form_parsing_disable() -> None:
    """Daphne's Twisted request parses a multipart or urlencoded POST body on its own (into
    `request.args`, which Daphne never uses) before the application sees it, answering a
    malformed one, say a multipart body with no boundary, with a bare 400 outside the error
    envelope, and holding a second copy of every upload while it parses. Switch that off so
    Django parses every body and the API answers in the envelope. Idempotent; a no-op where
    Daphne or that Twisted option is not installed."""
    try:
        from daphne import http_protocol
        from twisted.web import http
    except ImportError:
        return
    if "parsePOSTFormSubmission" not in inspect.signature(http.Request.__init__).parameters:
        return
    if getattr(http_protocol.WebRequest, "leaves_forms_to_the_app", False):
        return

    class WebRequest(http_protocol.WebRequest):
        leaves_forms_to_the_app = True

        def __init__(self, *args, **kwargs):
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(*args, **kwargs)

    # Daphne's HTTPFactory looks the request class up in its module on every connection.
    http_protocol.WebRequest = WebRequest
