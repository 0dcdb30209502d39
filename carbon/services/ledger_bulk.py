"""Many awards written at once: the ledger rows of a feed batch credited set-based.

`ledger_award_many` writes exactly what `ledger_award` writes for each award (the same
idempotency keys, payload hashes, references, lots and counters, so `ledger_check` holds),
in a fixed number of statements whatever the batch size: one look-up-and-lock of the
residents' accounts, the rows numbered, one INSERT of the transfers, one of the lots, one
UPDATE of the residents' counters, one UPDATE of the issuance shard.

Lock order, the one every ledger write takes: the residents' rows first, in id order, then
the system shard (its UPDATE takes its lock), so two batches, or a batch and a single
award, spend or reversal, can never wait on each other in a cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from carbon.errors import InsufficientFunds
from carbon.models import (
    Account,
    AccountKind,
    Lot,
    Transfer,
    User,
)
from carbon.services.ledger import amount_require, award_fields, system_account
from carbon.services.realtime import changes_on_commit
from carbon.services.residents import resident_require
from carbon.services.rows_bulk import rows_insert, rows_number


@dataclass(frozen=True)
class AwardSpec:
    """One award, with the arguments `ledger_award` takes."""

    user: User
    amount_g: int
    category: str
    idempotency_key: str
    description: str
    expires_at: datetime
    reference: str = ""


def _add_to_counter(columns: str | tuple[str, ...], amounts: dict[int, int]) -> int:
    """column += amount for each account id and each column, in one UPDATE: on PostgreSQL
    the rows joined to two arrays (ids, amounts); elsewhere a CASE on the id (portable, but
    every row scans the CASE: quadratic in the batch). Returns the number of rows updated."""
    if not amounts:
        return 0
    columns = (columns,) if isinstance(columns, str) else columns
    ids = sorted(amounts)
    quote = connection.ops.quote_name
    table = quote(Account._meta.db_table)
    if connection.vendor == "postgresql":
        sets = ", ".join(f"{col} = {table}.{col} + v.g" for col in map(quote, columns))
        sql = (
            f"UPDATE {table} SET {sets} FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, g) "
            f"WHERE {table}.{quote('id')} = v.id"
        )
        params: list = [ids, [amounts[account_id] for account_id in ids]]
    else:
        whens = " ".join("WHEN %s THEN %s" for _ in ids)
        sets = ", ".join(f"{col} = {col} + CASE id {whens} END" for col in map(quote, columns))
        sql = f"UPDATE {table} SET {sets} WHERE id IN ({', '.join('%s' for _ in ids)})"
        params = []
        for _column in columns:
            for account_id in ids:
                params += [account_id, amounts[account_id]]
        params += ids
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _resident_accounts(users: dict[int, User]) -> dict[int, int]:
    """user id -> account id, the rows locked FOR UPDATE in id order (PostgreSQL; SQLite
    serialises writers and ignores the clause). Accounts missing are opened."""

    def locked() -> dict[int, int]:
        return dict(
            Account.objects.select_for_update()
            .filter(user_id__in=sorted(users), kind=AccountKind.RESIDENT)
            .order_by("pk")
            .values_list("user_id", "pk")
        )

    found = locked()
    missing = sorted(set(users) - set(found))
    if missing:
        # Residents who never had an account (account_for_user, for many): a concurrent
        # opening of the same one is ignored, and the rows are read again.
        Account.objects.bulk_create(
            [Account(kind=AccountKind.RESIDENT, user_id=user_id) for user_id in missing],
            ignore_conflicts=True,
        )
        found = locked()
    return found


def ledger_award_many(*, awards: Sequence[AwardSpec]) -> list[Transfer]:
    """Credit many residents from issuance at once; returns the transfers in the order of
    `awards`, each with its lot. The caller holds the residents' locks
    (people.resident_lock, or the same rows locked in id order).

    All or nothing: a duplicate idempotency key raises IntegrityError and nothing of the
    batch is written, so the caller can retry the batch one award at a time (ledger_award
    answers a duplicate with the original). One issuance shard, picked at random as
    ledger_award does, takes the whole batch: one shard row to lock per batch.
    """
    if not awards:
        return []
    users: dict[int, User] = {}
    for award in awards:
        resident_require(user=award.user)
        amount_require(amount_g=award.amount_g)
        users[award.user.pk] = award.user
    with transaction.atomic():
        account_of = _resident_accounts(users)
        issuance = system_account(kind=AccountKind.ISSUANCE)
        transfers = [
            Transfer(
                debit_account_id=issuance.pk,
                credit_account_id=account_of[award.user.pk],
                **award_fields(
                    user_id=award.user.pk,
                    amount_g=award.amount_g,
                    category=award.category,
                    idempotency_key=award.idempotency_key,
                    description=award.description,
                    reference=award.reference,
                ),
            )
            for award in awards
        ]
        lots = [
            Lot(
                account_id=transfer.credit_account_id,
                award=transfer,
                category=award.category,
                amount_g=award.amount_g,
                remaining_g=award.amount_g,
                expires_at=award.expires_at,
            )
            for transfer, award in zip(transfers, awards, strict=True)
        ]
        # Both numbered in one statement, then each written in one.
        rows_number(groups=[transfers, lots])
        rows_insert(objs=transfers)
        rows_insert(objs=lots)
        credits: dict[int, int] = defaultdict(int)
        for award in awards:
            credits[account_of[award.user.pk]] += award.amount_g
        # Posted credits and the lifetime earned (GET /me), as ledger_award keeps both.
        if _add_to_counter(("credits_posted", "lifetime_g"), credits) != len(credits):
            raise InsufficientFunds(details={"accounts": sorted(credits)})  # pragma: no cover
        # The shard last, after every resident row: the order of ledger_award. Its UPDATE
        # takes the row's lock (a SELECT ... FOR UPDATE before it would only add a statement).
        total = sum(award.amount_g for award in awards)
        if _add_to_counter("debits_posted", {issuance.pk: total}) != 1:
            raise InsufficientFunds(details={"account": issuance.pk})  # pragma: no cover
        # The balances and the boards, announced once after the commit.
        changes_on_commit(
            user_ids=sorted(users),
            credits=[
                (award.user.pk, award.amount_g, transfer.created_at)
                for transfer, award in zip(transfers, awards, strict=True)
            ],
        )
    for transfer, lot in zip(transfers, lots, strict=True):
        transfer.lot = lot
    return transfers
