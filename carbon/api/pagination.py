"""Cursor pagination for the lists that grow (claims, ledger, appeals): newest first, with a
stable tie-break on the id so a page boundary never repeats or skips a row."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class ClaimsNewestFirst(NewestFirst):
    ordering = ("-submitted_at", "-id")


class LedgerNewestFirst(NewestFirst):
    pass


class AppealsNewestFirst(NewestFirst):
    page_size_query_param = None  # a resident has few appeals; one fixed page size
