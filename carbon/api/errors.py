"""One error shape for the whole API: {"error": {"code", "message", "details"}}, with every
code from the catalogue in carbon.errors (also documented in the OpenAPI schema from there)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import (
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from carbon.errors import DomainError, ErrorCode

_DRF_CODES: dict[type[exceptions.APIException], ErrorCode] = {
    exceptions.ParseError: ErrorCode.MALFORMED_REQUEST,
    exceptions.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    exceptions.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    exceptions.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: ErrorCode.NOT_ACCEPTABLE,
    exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    exceptions.Throttled: ErrorCode.THROTTLED,
    exceptions.ValidationError: ErrorCode.INVALID,
}


def error_body(code: ErrorCode, message: Any = None, details: Any = None) -> dict:
    """The envelope; only a catalogue code goes in, so no answer carries an unlisted code.
    The message (the catalogue's are lazy translations) is rendered now, in the language of
    the request being answered."""
    if not isinstance(code, ErrorCode):
        raise TypeError(f"error codes come from carbon.errors.ErrorCode, not {code!r}")
    return {
        "error": {
            "code": code.value,
            "message": str(message or code.default_message),
            "details": details or {},
        }
    }


def _json_error(code: ErrorCode, message: str | None = None, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=code.status)


def _refused_body(exc: Exception) -> tuple[ErrorCode, str, dict] | None:
    """Django's own refusals of a request body, raised wherever the body is first read (a
    parser, or the partner signature check reading the raw bytes). Django files the size
    limits under SuspiciousOperation, which would answer a bare 400."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return (
            ErrorCode.REQUEST_TOO_LARGE,
            f"The request body may be at most {limit} bytes, uploaded files excepted.",
            {"max_bytes": limit},
        )
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return (
            ErrorCode.REQUEST_TOO_LARGE,
            f"A request may carry at most {limit} form fields.",
            {"max_fields": limit},
        )
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return (
            ErrorCode.REQUEST_TOO_LARGE,
            f"A request may carry at most {limit} files.",
            {"max_files": limit},
        )
    if isinstance(exc, MultiPartParserError):
        return ErrorCode.MALFORMED_REQUEST, f"Malformed multipart body: {exc}", {}
    return None


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    refused = _refused_body(exc)
    if refused is not None:
        code, message, details = refused
        return Response(error_body(code, message, details), status=code.status)
    if isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        # An APIException of some library outside the map: its generic catalogue code.
        code = ErrorCode.SERVER_ERROR if response.status_code >= 500 else ErrorCode.BAD_REQUEST
    # The catalogue decides the status. (DRF would turn a 401 into 403 for a view whose
    # authenticators send no challenge; every authenticator here sends one.)
    response.status_code = code.status
    if isinstance(exc, exceptions.ValidationError):
        message = _("The request is not valid; see details.")
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    elif isinstance(exc, exceptions.ParseError):
        message, details = _("Malformed request body: %(detail)s") % {"detail": exc.detail}, {}
    else:
        message, details = str(exc.detail), {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
            message = _throttled_message(exc)
        # simplejwt's token errors carry their own code; keep it visible.
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            details = {"reason": exc.detail.get("code")}
            message = str(exc.detail.get("detail", message))
    response.data = error_body(code, message, details)
    return response


def _throttled_message(exc: exceptions.Throttled) -> str:
    """The throttle's reason and when to retry. DRF appends its "Expected available in ..."
    sentence already formatted, so its catalogue never translates it: say it ourselves."""
    seconds = int(exc.wait)
    return ngettext(
        "%(reason)s Retry in %(seconds)d second.",
        "%(reason)s Retry in %(seconds)d seconds.",
        seconds,
    ) % {"reason": type(exc).default_detail, "seconds": seconds}


def json_404(request, exception=None):
    return _json_error(ErrorCode.NOT_FOUND)


def json_500(request):
    return _json_error(ErrorCode.SERVER_ERROR)


def json_400(request, exception=None):
    # Django's answer to a SuspiciousOperation or BadRequest raised outside a DRF view.
    refused = _refused_body(exception) if exception is not None else None
    if refused is not None:
        return _json_error(*refused)
    return _json_error(ErrorCode.BAD_REQUEST)


def json_403(request, exception=None):
    return _json_error(ErrorCode.PERMISSION_DENIED, _("Forbidden."))


# --- the catalogue in the OpenAPI schema --------------------------------------------------------


def error_catalogue_schema(result, generator, request, public):
    """drf-spectacular postprocessing hook: the envelope as the `Error` component, its code
    an enum of the whole catalogue with each code's status, and a `default` response that
    points to it on every operation. Only adds; nothing already in the schema changes.
    The descriptions are in the request's language (Accept-Language, or `?lang=`)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorCodeEnum"] = {
        "enum": [code.value for code in ErrorCode],
        "type": "string",
        "description": _("Every error code and the one HTTP status it is answered with:")
        + "\n\n"
        + "\n".join(
            f"* `{code.value}` - {code.status}: {code.default_message}" for code in ErrorCode
        ),
    }
    schemas["Error"] = {
        "type": "object",
        "description": _(
            "Every error is answered in this envelope. `code` is stable and always comes with "
            "the same HTTP status (see ErrorCodeEnum); `message` is for people, in the language "
            "the request asks for (Accept-Language); `details` holds the specifics (field "
            "messages under `invalid`, for instance)."
        ),
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"$ref": "#/components/schemas/ErrorCodeEnum"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "additionalProperties": {}},
                },
                "required": ["code", "message", "details"],
            }
        },
        "required": ["error"],
    }
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault(
                    "default",
                    {
                        "description": _(
                            "An error; ErrorCodeEnum lists each code with its status."
                        ),
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return result
