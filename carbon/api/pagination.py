"""Cursor pagination for the lists that grow (claims, ledger, appeals): newest first, with a
stable tie-break on the id so a page boundary never repeats or skips a row.

A cursor is opaque to clients but travels through their hands: an edited one (garbage, a
position that is not a time, a time out of range, a negative offset) is a 400 `invalid` on
`cursor`, and a page size outside 1..max_page_size a 400 on `page_size`; never a 500 from
the database, never a silent default.
"""

from __future__ import annotations

import heapq
import re
from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext, gettext_lazy
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination

# What DRF's encode_cursor writes: standard base64, padded.
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    cursor_query_description = "The `next` or `previous` link's cursor, as given (opaque)."
    page_size_query_description = "Results per page."

    invalid_cursor = gettext_lazy("Invalid cursor: use the `next` or `previous` link as given.")

    def paginate_queryset(self, queryset, request, view=None):
        # decode_cursor checks the position against the field the list is ordered by.
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        if not self.page_size_query_param:
            return self.page_size
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
            self._refuse_page_size()
        size = int(raw)
        if not 1 <= size <= self.max_page_size:
            self._refuse_page_size()
        return size

    def _refuse_page_size(self):
        raise ValidationError(
            {
                self.page_size_query_param: [
                    gettext("A whole number from 1 to %(maximum)d.")
                    % {"maximum": self.max_page_size}
                ]
            }
        )

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        # DRF's decoder skips characters outside base64, so "!!!!" would read as no cursor.
        if encoded is not None and not (encoded and _BASE64.fullmatch(encoded)):
            self._refuse_cursor()
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF's answer to a cursor it cannot read; a client error here
            self._refuse_cursor()
        if cursor is None or cursor.position is None:
            return cursor
        return Cursor(
            offset=cursor.offset, reverse=cursor.reverse, position=self._position(cursor.position)
        )

    def _position(self, raw: str) -> str:
        """The cursor's position as a valid value of the ordering field, or a refusal: the
        database must never see a string it cannot compare."""
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            value = field.to_python(raw)
            if isinstance(value, datetime):
                # Positions are written with their offset; a naive or unrepresentable time
                # (year 1 east of UTC, year 9999 west of it) was not written by us.
                if value.tzinfo is None:
                    self._refuse_cursor()
                value = value.astimezone(UTC)
            field.get_prep_value(value)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            self._refuse_cursor()
        return str(value)

    def _refuse_cursor(self):
        raise ValidationError({self.cursor_query_param: [self.invalid_cursor]})

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.cursor_query_param:
                parameter["schema"] = {"type": "string", "minLength": 1}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
        return parameters


class ClaimsNewestFirst(NewestFirst):
    ordering = ("-submitted_at", "-id")


class LedgerNewestFirst(NewestFirst):
    """A resident's ledger is the entries they are credited by plus those they are debited
    by. One query with `credit = me OR debit = me` cannot walk an index in page order, so
    the planner reads every entry of the account (or walks the whole table by time) to
    return 50. Each side alone is a short range scan on its (account, created_at, id)
    index (Transfer.objects.account_sides()): the page is read from both and merged, the
    same rows in the same order."""

    def paginate_queryset(self, queryset, request, view=None):
        return super().paginate_queryset(_MergedSides(*queryset.account_sides()), request, view)


class _MergedSides:
    """Disjoint querysets (no row in two of them) read as one in the three calls DRF's
    CursorPagination makes: order_by, filter, then one slice. The slice takes up to `stop`
    rows from each, in the same order, and merges them."""

    def __init__(self, *parts, ordering: tuple[str, ...] = ()):
        self.parts = parts
        self.ordering = ordering
        self.model = parts[0].model

    def order_by(self, *fields: str) -> _MergedSides:
        if len({f.startswith("-") for f in fields}) != 1:
            raise ValueError("the merge needs one direction for every ordering field")
        return _MergedSides(*(p.order_by(*fields) for p in self.parts), ordering=fields)

    def filter(self, *args, **kwargs) -> _MergedSides:
        return _MergedSides(
            *(p.filter(*args, **kwargs) for p in self.parts), ordering=self.ordering
        )

    def __getitem__(self, window: slice) -> list:
        if not isinstance(window, slice) or window.stop is None or window.step is not None:
            raise TypeError("only a bounded slice of merged sides can be read")
        names = [f.lstrip("-") for f in self.ordering]

        def key(row):
            return tuple(getattr(row, n) for n in names)

        newest_first = self.ordering[0].startswith("-")
        merged = heapq.merge(
            *(list(p[: window.stop]) for p in self.parts), key=key, reverse=newest_first
        )
        return list(merged)[window]


class AppealsNewestFirst(NewestFirst):
    page_size_query_param = None  # a resident has few appeals; one fixed page size
