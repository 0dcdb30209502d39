"""How the API describes itself in OpenAPI beyond drf-spectacular's defaults: each operation
lists the error statuses it can answer, derived from what the view is made of (so a new view
is described right without a line of its own), fields that render `null` say so, and path
ids carry their range.

The error statuses come from the view, not from a list per view:

* a request body: 400 (malformed or invalid), 413 (too large), 415 (wrong content type);
* query or path parameters: 400; a path parameter: 404;
* an authenticator (a token, a partner signature) or a token endpoint: 401;
* a permission beyond "authenticated" (partner kinds, roles): 403;
* a create (a POST answering 201; idempotency keys, unique accounts) or a signed partner
  request (replays): 409;
* a throttle: 429.

Every error is the envelope of carbon.api.errors (the `Error` component, added with the
catalogue by its postprocessing hook), and `default` still covers the rest (a 500).
"""

from __future__ import annotations

from drf_spectacular import openapi
from rest_framework import permissions
from rest_framework_simplejwt.views import TokenViewBase

from carbon.api.partner_auth import IsPartner, PartnerSignatureAuthentication

ERROR_REF = {"$ref": "#/components/schemas/Error"}
# Ids are BigAutoField primary keys; Django's `int` converter matches digits only.
_ID_RANGE = {"minimum": 1, "maximum": 2**63 - 1}
# Permissions that add no refusal of their own (IsPartner restates that the signature held).
_BASIC_PERMISSIONS = (permissions.AllowAny, permissions.IsAuthenticated, IsPartner)


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                parameter["schema"].update(_ID_RANGE)
        responses = operation["responses"]
        for status, why in sorted(self._error_statuses(operation).items()):
            response = responses.setdefault(str(status), {"description": why})
            # An error answer declared on a view without a body (a photo's 404) is the envelope.
            response.setdefault("content", {"application/json": {"schema": ERROR_REF}})
        for status, response in responses.items():
            if status.isdigit() and int(status) >= 400:
                response.setdefault("content", {"application/json": {"schema": ERROR_REF}})
        return operation

    def _error_statuses(self, operation: dict) -> dict[int, str]:
        view = self.view
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        authenticators = view.get_authenticators()
        partner_signed = any(isinstance(a, PartnerSignatureAuthentication) for a in authenticators)
        statuses: dict[int, str] = {}
        if has_body or parameters:
            statuses[400] = (
                "The request is not valid: `invalid` (field messages in `details`), "
                "`malformed_request`, or another 400 code of ErrorCodeEnum."
            )
        if authenticators or isinstance(view, TokenViewBase):
            statuses[401] = "Missing, wrong or expired credentials " + (
                "(`invalid_signature`: the partner signature)."
                if partner_signed
                else "(`not_authenticated`, `authentication_failed`)."
            )
        if any(not isinstance(p, _BASIC_PERMISSIONS) for p in view.get_permissions()):
            statuses[403] = "Not allowed to this caller: a 403 code of ErrorCodeEnum."
        if any(p["in"] == "path" for p in parameters):
            statuses[404] = "`not_found`: nothing of yours has this id."
        if (self.method == "POST" and "201" in operation["responses"]) or partner_signed:
            statuses[409] = (
                "A conflict with what exists: a reused key, a replayed request, something "
                "already taken; a 409 code of ErrorCodeEnum."
            )
        if has_body:
            statuses[413] = "The body, a file or a batch is too large: a 413 code of ErrorCodeEnum."
            statuses[415] = "`unsupported_media_type`: send one of the documented content types."
        if view.get_throttles():
            statuses[429] = (
                "`throttled`: too many requests; `details.retry_after_seconds` says when to retry."
            )
        return statuses

    def _get_request_body(self, direction="request"):
        # drf-spectacular documents a body for POST, PUT and PATCH only; a DELETE that reads
        # one (erasing my account asks for my password) declares it with extend_schema.
        if self.method != "DELETE" or self._declared_request() is None:
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def _declared_request(self):
        """The request serializer given with extend_schema, without guessing one from the
        view (which a body-less APIView cannot answer)."""
        self._get_serializer = lambda: None
        try:
            return self.get_request_serializer()
        finally:
            del self._get_serializer

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        # `default=None` on an output field renders null when its source is missing (a
        # resident without a community, a claim without a factor yet).
        if direction == "response" and field.default is None:
            meta["nullable"] = True
        return meta
