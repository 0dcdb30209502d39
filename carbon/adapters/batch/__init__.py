"""The partner-batch kit shared by every signed feed (transit taps, partner events; later the
bank's confirmations and recycling records): one row status, one list of row codes, one
answer shape, one duplicate-or-conflict rule, and rows validated from declared models.

`rows` holds the answer and the rules, `schemas` the declared row models, `api` the HTTP side
(the rows of a request, the answer in OpenAPI). docs/adapters.md shows a feed using it.
"""

from carbon.adapters.batch.rows import (
    BatchReport,
    BatchTooLarge,
    RowCode,
    RowError,
    RowResult,
    RowStatus,
    batch_size_check,
    payload_hash,
    row_duplicate_or_conflict,
)
from carbon.adapters.batch.schemas import (
    RowField,
    RowModel,
    int_as_text,
    iso_time,
    one_of,
    positive_number,
    row_refusal,
    whole_number,
)

__all__ = [
    "BatchReport",
    "BatchTooLarge",
    "RowCode",
    "RowError",
    "RowField",
    "RowModel",
    "RowResult",
    "RowStatus",
    "batch_size_check",
    "int_as_text",
    "iso_time",
    "one_of",
    "payload_hash",
    "positive_number",
    "row_duplicate_or_conflict",
    "row_refusal",
    "whole_number",
]
