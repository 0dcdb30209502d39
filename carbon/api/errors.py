"""One error shape for the whole API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from carbon.errors import DomainError

_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if (
        isinstance(exc, exceptions.NotFound)
        and str(exc.detail) == CursorPagination.invalid_cursor_message
    ):
        exc = exceptions.ValidationError(
            {"cursor": ["Invalid cursor: use the `next` link as given."]}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is not valid; see details."
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    elif isinstance(exc, exceptions.ParseError):
        message, details = f"Malformed request body: {exc.detail}", {}
    else:
        message, details = str(exc.detail), {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
        # simplejwt's token errors carry their own code; keep it visible.
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            details = {"reason": exc.detail.get("code")}
            message = str(exc.detail.get("detail", message))
    response.data = error_body(code, message, details)
    return response


def json_404(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)


def json_500(request):
    return JsonResponse(
        error_body("server_error", "Something went wrong on our side; nothing was changed."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_400(request, exception=None):
    return JsonResponse(
        error_body("bad_request", "Bad request."), status=status.HTTP_400_BAD_REQUEST
    )


def json_403(request, exception=None):
    return JsonResponse(
        error_body("permission_denied", "Forbidden."), status=status.HTTP_403_FORBIDDEN
    )
