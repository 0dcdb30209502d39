"""The ledger service: the only code that writes transfers, balances and lots.

Every function is keyword-only and idempotent by its idempotency key: the same key with the
same payload returns the original transfer, with a different payload raises
IdempotencyConflict. Balances change by conditional UPDATEs in the transaction that inserts
the transfer, so the database refuses an overdraft even under concurrent spends.

On PostgreSQL the two hot writes are one statement each: an award (transfer, both counters,
lot) and the lot allocation of a spend or hold. The embedded database (SQLite) takes the
same steps one ORM statement at a time, with the same results; the same tests run on both.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateField, F, Q, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.errors import (
    HoldExpired,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    NothingToReverse,
    NotPending,
    PendingAlreadyResolved,
)
from carbon.models import (
    Account,
    AccountKind,
    Lot,
    LotAllocation,
    Partner,
    Transfer,
    TransferCode,
    TransferFlag,
    User,
)
from carbon.services.realtime import changes_on_commit
from carbon.services.residents import resident_require

_system_account_ids: dict[tuple[str, int], int] = {}


# --- accounts -------------------------------------------------------------------------


def account_for_user(*, user: User) -> Account:
    account = Account.objects.filter(user=user).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(kind=AccountKind.RESIDENT, user=user)
    except IntegrityError:
        return Account.objects.get(user=user)


def system_account(*, kind: str, shard: int | None = None) -> Account:
    """A shard of a system account; a random shard when none is asked for.

    Only the id, kind and shard of the returned row are meant to be used: balances change
    by F() updates. Ids are cached once the transaction that saw the row has committed, so
    a row created in a transaction that rolled back is never served from the cache (SQLite
    would hand its id to the next row inserted, e.g. a resident's account).
    """
    if kind == AccountKind.RESIDENT:
        raise ValueError("resident accounts belong to a user")
    shards = max(1, settings.LEDGER_SYSTEM_SHARDS)
    if shard is None:
        shard = random.randrange(shards)
    key = (str(kind), shard)
    cached = _system_account_ids.get(key)
    if cached is not None:
        return Account(
            pk=cached, kind=kind, shard=shard, user=None, debits_must_not_exceed_credits=False
        )
    account, _ = Account.objects.get_or_create(
        kind=kind, shard=shard, defaults={"debits_must_not_exceed_credits": False}
    )
    transaction.on_commit(lambda: _system_account_ids.__setitem__(key, account.pk))
    return account


def enterprise_account(*, partner: Partner) -> Account:
    """The partner's own carbon account (one per partner), created on first use. It takes
    over grams a resident gives the partner (a bank's mortgage-interest offsets), so it
    can never be overdrawn."""
    account = Account.objects.filter(kind=AccountKind.ENTERPRISE, partner=partner).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(kind=AccountKind.ENTERPRISE, partner=partner)
    except IntegrityError:
        return Account.objects.get(kind=AccountKind.ENTERPRISE, partner=partner)


def system_accounts(*, kind: str) -> list[Account]:
    return list(Account.objects.filter(kind=kind).order_by("shard"))


def system_account_cache_clear() -> None:
    """Forget the system accounts' ids cached in the process: for tests that flush the
    database, where the cached ids go stale."""
    _system_account_ids.clear()


# --- balances ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    available_g: int
    pending_g: int
    posted_g: int
    lifetime_g: int
    expiring_soon_g: int
    expiring_soon_until: datetime
    next_expiries: list[dict] = field(default_factory=list)


def balance_for_user(
    *, user: User, horizon_days: int = 30, account: Account | None = None
) -> Balance:
    """`account`: the user's account as the caller already read it (GET /me reads it with
    the user); read here when not given."""
    # Reading a staff account's balance (GET /me is open to every account) must not open a
    # resident account for it; one that was a resident keeps the account it had.
    if account is None:
        account = (
            account_for_user(user=user)
            if user.is_resident
            else Account.objects.filter(user=user).first()
        )
    elif account.user_id != user.pk:
        raise ValueError("the account is not the user's")
    now = timezone.now()
    until = now + timedelta(days=horizon_days)
    if account is None:
        return Balance(
            available_g=0,
            pending_g=0,
            posted_g=0,
            lifetime_g=0,
            expiring_soon_g=0,
            expiring_soon_until=until,
        )
    # One read of the open lots up to the horizon, summed by local expiry day; lots already
    # past expiry fall in one group of their own (day NULL). Their grams are swept by the
    # periodic job; never show them as spendable in between.
    rows = list(
        Lot.objects.filter(account=account)
        .open()
        .filter(expires_at__lte=until)
        .values(
            day=Case(
                When(expires_at__lte=now, then=Value(None, output_field=DateField())),
                default=TruncDate("expires_at"),
                output_field=DateField(),
            )
        )
        .annotate(grams=Sum("remaining_g"))
        .order_by("day")
    )
    expired_unswept = sum(row["grams"] for row in rows if row["day"] is None)
    by_day = [row for row in rows if row["day"] is not None]
    return Balance(
        available_g=account.available_g - expired_unswept,
        pending_g=account.debits_pending,
        posted_g=account.balance_g,
        lifetime_g=account.lifetime_g,
        expiring_soon_g=sum(row["grams"] for row in by_day),
        expiring_soon_until=until,
        next_expiries=[{"date": row["day"], "grams": row["grams"]} for row in by_day],
    )


# --- the core write path ------------------------------------------------------------------


def payload_hash(payload: dict) -> str:
    """A transfer's payload digest: a retry under the same idempotency key must carry the
    same payload (IdempotencyConflict otherwise). ledger_bulk writes the same digests."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _existing(idempotency_key: str, digest: str) -> Transfer | None:
    existing = Transfer.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    if existing.payload_hash != digest:
        raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
    return existing


def award_fields(
    *,
    user_id: int,
    amount_g: int,
    category: str,
    idempotency_key: str,
    description: str,
    reference: str,
) -> dict:
    """An award's transfer fields but its accounts, its payload digest included. One
    definition for ledger_award and ledger_bulk.ledger_award_many: a retry under the same
    key must match whichever path wrote the original (IdempotencyConflict otherwise)."""
    return {
        "idempotency_key": idempotency_key,
        "payload_hash": payload_hash(
            {
                "op": "award",
                "user": user_id,
                "amount": amount_g,
                "category": category,
                "reference": reference,
            }
        ),
        "amount_g": amount_g,
        "flag": TransferFlag.POSTED,
        "code": TransferCode.AWARD,
        "category": category,
        "description": description,
        "reference": reference,
    }


def amount_require(*, amount_g: int) -> None:
    """Refuse (InvalidAmount) anything but a positive whole number of grams."""
    if not isinstance(amount_g, int) or isinstance(amount_g, bool) or amount_g <= 0:
        raise InvalidAmount(details={"amount_g": amount_g})


def _apply_balances(
    *, flag: str, debit: Account, credit: Account, amount: int, earned: int = 0
) -> None:
    """Change the four counters of both accounts, and the resident's lifetime-earned
    counter by `earned` (an award adds its grams, a reversal takes them back).

    Rows are locked resident first, then the system shard. Every ledger transaction touches
    one resident, and the resident-first paths (spends, holds, resolutions, reversals,
    expiry) lock the resident's row before anything else; an award that updated a lower-id
    issuance shard before the resident would wait on them the other way round (deadlock).
    """
    changes: dict[int, dict] = {}
    if flag == TransferFlag.POSTED:
        changes[debit.pk] = {"debits_posted": F("debits_posted") + amount}
        changes[credit.pk] = {"credits_posted": F("credits_posted") + amount}
    elif flag == TransferFlag.PENDING:
        changes[debit.pk] = {"debits_pending": F("debits_pending") + amount}
        changes[credit.pk] = {"credits_pending": F("credits_pending") + amount}
    elif flag == TransferFlag.POST_PENDING:
        changes[debit.pk] = {
            "debits_pending": F("debits_pending") - amount,
            "debits_posted": F("debits_posted") + amount,
        }
        changes[credit.pk] = {
            "credits_pending": F("credits_pending") - amount,
            "credits_posted": F("credits_posted") + amount,
        }
    elif flag == TransferFlag.VOID_PENDING:
        changes[debit.pk] = {"debits_pending": F("debits_pending") - amount}
        changes[credit.pk] = {"credits_pending": F("credits_pending") - amount}
    else:  # pragma: no cover - guarded by the model's choices
        raise ValueError(flag)

    is_system = {a.pk: a.kind != AccountKind.RESIDENT for a in (debit, credit)}
    if earned:
        resident = credit if earned > 0 else debit
        if resident.kind != AccountKind.RESIDENT:  # pragma: no cover - callers' contract
            raise ValueError("only residents earn")
        changes[resident.pk]["lifetime_g"] = F("lifetime_g") + earned
    for account_id in sorted(changes, key=lambda pk: (is_system[pk], pk)):
        qs = Account.objects.filter(pk=account_id)
        if account_id == debit.pk and flag in (TransferFlag.POSTED, TransferFlag.PENDING):
            # Conditional update: only succeeds when the grams are there. The check
            # constraint is the backstop; this gives a clean error instead of a crash.
            qs = qs.filter(
                Q(debits_must_not_exceed_credits=False)
                | Q(credits_posted__gte=F("debits_posted") + F("debits_pending") + amount)
            )
        if qs.update(**changes[account_id]) != 1:
            raise InsufficientFunds(details={"account": account_id, "amount_g": amount})


def _insert(**fields) -> Transfer:
    """Insert under a savepoint, for callers that handle a duplicate key inside their own
    transaction. (Award and spend need none: a duplicate aborts their whole atomic block,
    and the caller looks the twin up after it.)"""
    with transaction.atomic():
        return Transfer.objects.create(**fields)


def _lock_account(account: Account) -> Account:
    return Account.objects.select_for_update().get(pk=account.pk)


def _allocate(
    *,
    account: Account,
    transfer: Transfer,
    amount: int,
    categories: Sequence[str] | None,
    now: datetime,
) -> None:
    """Take `amount` from the account's open lots, oldest expiry first (ties by lot id),
    only from `categories` when given; InsufficientFunds, taking nothing, when they hold
    too little. Caller holds the account's lock."""
    if connection.vendor == "postgresql":
        short = _allocate_in_one_statement(
            account=account, transfer=transfer, amount=amount, categories=categories, now=now
        )
        if short:
            _refuse_allocation(short=short, categories=categories)
        return
    lots = Lot.objects.select_for_update().filter(
        account=account, remaining_g__gt=0, expires_at__gt=now
    )
    if categories:
        lots = lots.filter(category__in=list(categories))
    left = amount
    allocations = []
    for lot in lots.order_by("expires_at", "id"):
        take = min(left, lot.remaining_g)
        Lot.objects.filter(pk=lot.pk).update(remaining_g=F("remaining_g") - take)
        allocations.append(LotAllocation(lot=lot, transfer=transfer, amount_g=take))
        left -= take
        if left == 0:
            break
    if left:
        _refuse_allocation(short=left, categories=categories)
    LotAllocation.objects.bulk_create(allocations)


def _refuse_allocation(*, short: int, categories: Sequence[str] | None) -> None:
    raise InsufficientFunds(
        _("Not enough unexpired grams in the allowed categories.")
        if categories
        else _("Not enough unexpired grams."),
        details={"short_g": short, "categories": list(categories or [])},
    )


# The lots a spend or hold takes, in one round trip: lock the account's open lots in the
# order they are spent, take from each what is still needed, record the allocations. It
# writes only when the lots hold enough (`total` >= amount); otherwise it returns the total
# and the caller refuses, with nothing written. The account's row lock (taken before) is
# what serialises one resident's writers, so the order read here is the order spent.
_ALLOCATE_SQL = """
WITH open_lots AS MATERIALIZED (
    SELECT id, remaining_g, expires_at FROM carbon_lot
    WHERE account_id = %(account)s AND remaining_g > 0 AND expires_at > %(now)s
      AND (%(any_category)s OR category = ANY(%(categories)s::varchar[]))
    ORDER BY expires_at, id
    FOR UPDATE
), running AS MATERIALIZED (
    SELECT id, remaining_g,
           SUM(remaining_g) OVER (ORDER BY expires_at, id ROWS UNBOUNDED PRECEDING)
             - remaining_g AS before,
           SUM(remaining_g) OVER () AS total
    FROM open_lots
), taken AS MATERIALIZED (
    SELECT id, LEAST(remaining_g, %(amount)s - before) AS grams FROM running
    WHERE before < %(amount)s AND total >= %(amount)s
), lots AS (
    UPDATE carbon_lot SET remaining_g = carbon_lot.remaining_g - taken.grams
    FROM taken WHERE carbon_lot.id = taken.id
), allocations AS (
    INSERT INTO carbon_lotallocation (lot_id, transfer_id, amount_g)
    SELECT id, %(transfer)s, grams FROM taken
)
SELECT COALESCE(MAX(total), 0) FROM running
"""


def _allocate_in_one_statement(
    *,
    account: Account,
    transfer: Transfer,
    amount: int,
    categories: Sequence[str] | None,
    now: datetime,
) -> int:
    """PostgreSQL: _allocate in one statement. The grams short (0 when allocated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ALLOCATE_SQL,
            {
                "account": account.pk,
                "now": now,
                "any_category": not categories,
                "categories": list(categories or []),
                "amount": amount,
                "transfer": transfer.pk,
            },
        )
        (total,) = cursor.fetchone()
    return max(0, amount - total)


def _release_allocations(*, pending: Transfer, resolution: Transfer) -> None:
    """Give a voided hold's grams back to the lots it came from."""
    restored = []
    for alloc in LotAllocation.objects.filter(transfer=pending).select_related("lot"):
        Lot.objects.filter(pk=alloc.lot_id).update(remaining_g=F("remaining_g") + alloc.amount_g)
        restored.append(LotAllocation(lot=alloc.lot, transfer=resolution, amount_g=-alloc.amount_g))
    LotAllocation.objects.bulk_create(restored)


# --- public operations --------------------------------------------------------------------


def ledger_award(
    *,
    user: User,
    amount_g: int,
    category: str,
    idempotency_key: str,
    description: str,
    expires_at: datetime,
    reference: str = "",
    account: Account | None = None,
) -> Transfer:
    """Credit a resident from issuance, as a new lot that expires at `expires_at`. Points are
    minted for residents only (NotAResident): whatever path an award comes by (a claim, its
    review, a held claim's release), no staff or institution account ever earns.

    `account`: the resident's ledger account when the caller already has it (the claim path
    reads it under its lock), which saves looking it up again. The returned transfer has
    its lot (`transfer.lot`) attached."""
    resident_require(user=user)
    amount_require(amount_g=amount_g)
    if account is None:
        account = account_for_user(user=user)
    elif account.user_id != user.pk or account.kind != AccountKind.RESIDENT:
        raise ValueError("the account given is not this resident's")
    fields = award_fields(
        user_id=user.pk,
        amount_g=amount_g,
        category=category,
        idempotency_key=idempotency_key,
        description=description,
        reference=reference,
    )
    digest = fields["payload_hash"]
    issuance = system_account(kind=AccountKind.ISSUANCE)
    groups = None
    if connection.vendor == "postgresql":
        transfer, groups = _award_in_one_statement(
            account=account, issuance=issuance, fields=fields, expires_at=expires_at
        )
        if transfer is None:
            # The key was taken: a retry (same payload) gets the original.
            found = _existing(idempotency_key, digest)
            if found is None:  # pragma: no cover - ON CONFLICT only skips an existing key
                raise RuntimeError(f"award {idempotency_key!r} neither inserted nor found")
            return found
    else:
        # No look-up first: awards are the hot path and retries are rare, so a duplicate
        # key is found by the unique index, and the original is read after the rollback.
        try:
            with transaction.atomic():
                transfer = Transfer.objects.create(
                    debit_account=issuance, credit_account=account, **fields
                )
                _apply_balances(
                    flag=TransferFlag.POSTED,
                    debit=issuance,
                    credit=account,
                    amount=amount_g,
                    earned=amount_g,
                )
                Lot.objects.create(
                    account=account,
                    award=transfer,
                    category=category,
                    amount_g=amount_g,
                    remaining_g=amount_g,
                    expires_at=expires_at,
                )
        except IntegrityError:
            if (found := _existing(idempotency_key, digest)) is not None:
                return found
            raise
    changes_on_commit(
        user_ids=[account.user_id],
        credits=[(account.user_id, amount_g, transfer.created_at)],
        groups=groups,
    )
    return transfer


# An award in one round trip. The transfer's insert skips a key already taken (ON CONFLICT:
# no error, so no savepoint is needed inside a caller's transaction) and every later part
# reads the part before: nothing is written beyond the transfer when it is skipped, and the
# resident's row is locked before the issuance shard's (the order every ledger write takes;
# the shard update can only run on the resident update's output). It also reads the
# resident's community and district, which the leaderboards need after commit.
_AWARD_SQL = """
WITH transfer AS (
    INSERT INTO carbon_transfer (idempotency_key, payload_hash, debit_account_id,
        credit_account_id, amount_g, flag, code, category, description, reference, created_at)
    VALUES (%(key)s, %(hash)s, %(issuance)s, %(account)s, %(amount)s, %(flag)s, %(code)s,
        %(category)s, %(description)s, %(reference)s, %(now)s)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), resident AS (
    UPDATE carbon_account SET credits_posted = carbon_account.credits_posted + %(amount)s,
        lifetime_g = carbon_account.lifetime_g + %(amount)s
    FROM transfer WHERE carbon_account.id = %(account)s
    RETURNING transfer.id AS transfer_id
), shard AS (
    UPDATE carbon_account SET debits_posted = carbon_account.debits_posted + %(amount)s
    FROM resident WHERE carbon_account.id = %(issuance)s
    RETURNING resident.transfer_id
), lot AS (
    INSERT INTO carbon_lot (account_id, award_id, category, amount_g, remaining_g, expires_at)
    SELECT %(account)s, shard.transfer_id, %(category)s, %(amount)s, %(amount)s, %(expires_at)s
    FROM shard
    RETURNING id, award_id
)
SELECT lot.id, lot.award_id, u.community_id, u.district_id
FROM lot JOIN carbon_user u ON u.id = %(user)s
"""


def _award_in_one_statement(
    *, account: Account, issuance: Account, fields: dict, expires_at: datetime
) -> tuple[Transfer | None, dict[int, tuple[int | None, int | None]]]:
    """PostgreSQL: the award's four writes in one statement. The transfer (None when the
    key is taken) and the resident's {user id: (community id, district id)}."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _AWARD_SQL,
            {
                "key": fields["idempotency_key"],
                "hash": fields["payload_hash"],
                "issuance": issuance.pk,
                "account": account.pk,
                "user": account.user_id,
                "amount": fields["amount_g"],
                "flag": str(fields["flag"]),
                "code": str(fields["code"]),
                "category": fields["category"],
                "description": fields["description"],
                "reference": fields["reference"],
                "now": now,
                "expires_at": expires_at,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None, {}
    lot_id, transfer_id, community_id, district_id = row
    # The instances callers get from the ORM path: saved rows, the lot attached.
    transfer = Transfer(
        pk=transfer_id, debit_account=issuance, credit_account=account, created_at=now, **fields
    )
    lot = Lot(
        pk=lot_id,
        account=account,
        award=transfer,  # also attaches the lot as transfer.lot
        category=fields["category"],
        amount_g=fields["amount_g"],
        remaining_g=fields["amount_g"],
        expires_at=expires_at,
    )
    for instance in (transfer, lot):
        instance._state.adding = False
        instance._state.db = connection.alias
    return transfer, {account.user_id: (community_id, district_id)}


def _debit_resident(
    *,
    user: User,
    amount_g: int,
    to_kind: str,
    flag: str,
    code: str,
    idempotency_key: str,
    description: str,
    reference: str,
    categories: Sequence[str] | None,
    timeout: timedelta | None,
    created_by: User | None = None,
    to_account: Account | None = None,
) -> Transfer:
    amount_require(amount_g=amount_g)
    if to_account is not None and to_account.kind == AccountKind.RESIDENT:
        raise ValueError("grams go from a resident to a system or enterprise account")
    payload = {
        "op": code,
        "flag": flag,
        "user": user.pk,
        "to": f"account:{to_account.pk}" if to_account is not None else str(to_kind),
        "amount": amount_g,
        "categories": sorted(categories or []),
        "reference": reference,
    }
    digest = payload_hash(payload)
    if (found := _existing(idempotency_key, digest)) is not None:
        return found
    now = timezone.now()
    try:
        with transaction.atomic():
            account = _lock_account(account_for_user(user=user))
            _sweep_expired_lots(account=account, now=now)
            # The target is locked after the resident's account (by _apply_balances' update),
            # the order every resident write takes.
            target = to_account if to_account is not None else system_account(kind=to_kind)
            transfer = Transfer.objects.create(
                idempotency_key=idempotency_key,
                payload_hash=digest,
                debit_account=account,
                credit_account=target,
                amount_g=amount_g,
                flag=flag,
                code=code,
                description=description,
                reference=reference,
                timeout_at=(now + timeout) if timeout is not None else None,
                created_by=created_by,
            )
            _apply_balances(flag=flag, debit=account, credit=target, amount=amount_g)
            _allocate(
                account=account, transfer=transfer, amount=amount_g, categories=categories, now=now
            )
    except IntegrityError:
        if (found := _existing(idempotency_key, digest)) is not None:
            return found
        raise
    # Registered at the caller's level, not in the savepoint above: a caller's transaction
    # announces all its changes in one send (see realtime.changes_on_commit).
    changes_on_commit(user_ids=[account.user_id])
    return transfer


def ledger_spend(
    *,
    user: User,
    amount_g: int,
    to_kind: str = AccountKind.REDEMPTION,
    idempotency_key: str,
    description: str,
    reference: str = "",
    categories: Sequence[str] | None = None,
) -> Transfer:
    """A single-phase spend: posted at once."""
    return _debit_resident(
        user=user,
        amount_g=amount_g,
        to_kind=to_kind,
        flag=TransferFlag.POSTED,
        code=TransferCode.SPEND,
        idempotency_key=idempotency_key,
        description=description,
        reference=reference,
        categories=categories,
        timeout=None,
    )


def ledger_hold(
    *,
    user: User,
    amount_g: int,
    to_kind: str = AccountKind.REDEMPTION,
    idempotency_key: str,
    description: str,
    reference: str = "",
    categories: Sequence[str] | None = None,
    timeout: timedelta | None = None,
    to_account: Account | None = None,
) -> Transfer:
    """Place a pending transfer: the grams stop being available until posted or voided.

    The grams go to a system account of `to_kind`, or to `to_account` when given (a
    partner's enterprise account, see enterprise_account)."""
    if timeout is None:
        timeout = timedelta(minutes=settings.LEDGER_HOLD_TIMEOUT_MINUTES)
    return _debit_resident(
        user=user,
        amount_g=amount_g,
        to_kind=to_kind,
        flag=TransferFlag.PENDING,
        code=TransferCode.HOLD,
        idempotency_key=idempotency_key,
        description=description,
        reference=reference,
        categories=categories,
        timeout=timeout,
        to_account=to_account,
    )


def _resolve(*, pending_id: int, flag: str, description: str) -> Transfer:
    key = f"resolve:{pending_id}"
    with transaction.atomic():
        pending = Transfer.objects.select_related("debit_account", "credit_account").get(
            pk=pending_id
        )
        if pending.flag != TransferFlag.PENDING:
            raise NotPending(details={"transfer": pending_id})
        # Lock the resident's account first: the same order as every other resident write.
        _lock_account(pending.debit_account)
        existing = Transfer.objects.filter(pending_id=pending_id).first()
        if existing is not None:
            if existing.flag == flag:
                return existing
            raise PendingAlreadyResolved(
                details={"transfer": pending_id, "resolved_as": existing.flag}
            )
        if (
            flag == TransferFlag.POST_PENDING
            and pending.timeout_at is not None
            and pending.timeout_at <= timezone.now()
        ):
            # Decided under the lock: a post that waited for it past the timeout would land
            # late. The hold is released instead; ledger_post reports HoldExpired.
            flag, description = TransferFlag.VOID_PENDING, "Hold expired"
        try:
            resolution = _insert(
                idempotency_key=key,
                payload_hash=payload_hash({"op": "resolve", "pending": pending_id, "flag": flag}),
                debit_account=pending.debit_account,
                credit_account=pending.credit_account,
                amount_g=pending.amount_g,
                flag=flag,
                code=TransferCode.RELEASE,
                pending=pending,
                description=description,
                reference=pending.reference,
            )
        except IntegrityError:
            existing = Transfer.objects.get(pending_id=pending_id)
            if existing.flag == flag:
                return existing
            raise PendingAlreadyResolved(
                details={"transfer": pending_id, "resolved_as": existing.flag}
            ) from None
        _apply_balances(
            flag=flag,
            debit=pending.debit_account,
            credit=pending.credit_account,
            amount=pending.amount_g,
        )
        if flag == TransferFlag.VOID_PENDING:
            _release_allocations(pending=pending, resolution=resolution)
        changes_on_commit(user_ids=[pending.debit_account.user_id])
        return resolution


def ledger_post(*, pending_id: int, description: str = "Hold posted") -> Transfer:
    """Post a hold. Posting twice returns the same resolution; after a void it is refused.

    A hold past its timeout is released instead (HoldExpired), even if the expiry job has
    not run yet. The timeout is read once the account is locked, so a post that waited for
    the lock cannot land after it.
    """
    resolution = _resolve(
        pending_id=pending_id, flag=TransferFlag.POST_PENDING, description=description
    )
    if resolution.flag == TransferFlag.VOID_PENDING:
        raise HoldExpired(details={"transfer": pending_id})
    return resolution


def ledger_void(*, pending_id: int, description: str = "Hold released") -> Transfer:
    return _resolve(pending_id=pending_id, flag=TransferFlag.VOID_PENDING, description=description)


def ledger_expire_pending(*, now: datetime | None = None) -> int:
    """Void every hold past its timeout. Safe to run concurrently: each resolves once."""
    now = now or timezone.now()
    count = 0
    for pending_id in (
        Transfer.objects.unresolved_pending()
        .filter(timeout_at__lte=now)
        .values_list("pk", flat=True)
    ):
        try:
            ledger_void(pending_id=pending_id, description="Hold expired")
            count += 1
        except PendingAlreadyResolved:
            continue
    return count


def _sweep_expired_lots(*, account: Account, now: datetime) -> Transfer | None:
    """Move what is left of the account's expired lots to expiry. Caller holds the lock."""
    lots = list(
        Lot.objects.select_for_update()
        .filter(account=account, remaining_g__gt=0, expires_at__lte=now)
        .order_by("expires_at", "id")
    )
    total = sum(lot.remaining_g for lot in lots)
    if not total:
        return None
    expiry = system_account(kind=AccountKind.EXPIRY)
    fingerprint = hashlib.sha256(
        ",".join(f"{lot.pk}:{lot.remaining_g}" for lot in lots).encode()
    ).hexdigest()[:16]
    transfer = _insert(
        idempotency_key=f"expiry:{account.pk}:{now.isoformat()}:{fingerprint}",
        payload_hash=payload_hash({"op": "expiry", "account": account.pk, "lots": fingerprint}),
        debit_account=account,
        credit_account=expiry,
        amount_g=total,
        flag=TransferFlag.POSTED,
        code=TransferCode.EXPIRY,
        description=f"{total} g expired",
    )
    _apply_balances(flag=TransferFlag.POSTED, debit=account, credit=expiry, amount=total)
    for lot in lots:
        Lot.objects.filter(pk=lot.pk).update(remaining_g=F("remaining_g") - lot.remaining_g)
    LotAllocation.objects.bulk_create(
        [LotAllocation(lot=lot, transfer=transfer, amount_g=lot.remaining_g) for lot in lots]
    )
    changes_on_commit(user_ids=[account.user_id])
    return transfer


def ledger_expire_lots(*, now: datetime | None = None) -> int:
    """Expire what is left of lots past their date, one account per transaction."""
    now = now or timezone.now()
    account_ids = (
        Lot.objects.open()
        .filter(expires_at__lte=now)
        .values_list("account_id", flat=True)
        .distinct()
    )
    grams = 0
    for account_id in list(account_ids):
        with transaction.atomic():
            account = Account.objects.select_for_update().get(pk=account_id)
            transfer = _sweep_expired_lots(account=account, now=now)
            if transfer is not None:
                grams += transfer.amount_g
    return grams


def ledger_reverse(*, transfer_id: int, reason: str, actor: User | None) -> Transfer:
    """Reverse an award with a new transfer back to issuance; never edit the original.

    Only what is still unspent of the award's lot can be taken back (a balance never goes
    negative); the reversal's description says how much of the award was already spent.
    """
    if not reason.strip():
        raise NothingToReverse(_("A reason is required to reverse a credit."))
    with transaction.atomic():
        original = Transfer.objects.select_related("credit_account").get(pk=transfer_id)
        if original.code != TransferCode.AWARD:
            raise NothingToReverse(_("Only awards can be reversed here."))
        account = _lock_account(original.credit_account)
        lot = Lot.objects.select_for_update().get(award=original)
        already = Transfer.objects.filter(reverses=original).aggregate(s=Sum("amount_g"))["s"] or 0
        amount = lot.remaining_g
        if amount <= 0:
            raise NothingToReverse(
                _("The credit was already reversed or spent."),
                details={"reversed_g": already, "award_g": original.amount_g},
            )
        issuance = system_account(kind=AccountKind.ISSUANCE)
        spent = original.amount_g - already - amount
        description = f"Reversal: {reason.strip()}"[:300]
        if spent > 0:
            description = f"{description} ({spent} g already spent)"[:300]
        reversal = _insert(
            idempotency_key=f"reversal:{original.pk}:{already}",
            payload_hash=payload_hash({"op": "reversal", "of": original.pk, "amount": amount}),
            debit_account=account,
            credit_account=issuance,
            amount_g=amount,
            flag=TransferFlag.POSTED,
            code=TransferCode.REVERSAL,
            reverses=original,
            description=description,
            reference=original.reference,
            created_by=actor,
        )
        _apply_balances(
            flag=TransferFlag.POSTED, debit=account, credit=issuance, amount=amount, earned=-amount
        )
        Lot.objects.filter(pk=lot.pk).update(remaining_g=F("remaining_g") - amount)
        LotAllocation.objects.create(lot=lot, transfer=reversal, amount_g=amount)
    # Counted on the award's day: the boards take back what the award gave.
    changes_on_commit(
        user_ids=[account.user_id], credits=[(account.user_id, -amount, original.created_at)]
    )
    return reversal


def signed_amount(transfer: Transfer, *, account_id: int) -> int:
    """Grams as the account sees them: credits positive, debits negative."""
    return transfer.amount_g if transfer.credit_account_id == account_id else -transfer.amount_g


def hold_status(transfer: Transfer) -> str:
    """posted / pending / voided, from the resident's side."""
    if transfer.flag == TransferFlag.PENDING:
        resolution = getattr(transfer, "resolution", None)
        if resolution is None:
            return "pending"
        return "posted" if resolution.flag == TransferFlag.POST_PENDING else "voided"
    return "posted"


def ledger_entries_for_user(*, user: User, account: Account | None = None):
    """A resident's entries, newest first. A hold's post or void moves no more grams from the
    resident's side (the hold shows the outcome as its status), so resolutions are left out:
    listing them too would count the grams twice. `account`: as in balance_for_user."""
    if account is None:
        account = account_for_user(user=user)
    elif account.user_id != user.pk:
        raise ValueError("the account is not the user's")
    return (
        Transfer.objects.for_account(account)
        .exclude(code=TransferCode.RELEASE)
        .select_related("resolution")
        .order_by("-created_at", "-id")
    ), account


def database_supports_row_locks() -> bool:
    return connection.vendor == "postgresql"


def ledger_move(
    *,
    from_account: Account,
    to_account: Account,
    amount_g: int,
    idempotency_key: str,
    description: str,
    reference: str = "",
    reverses: Transfer | None = None,
) -> Transfer:
    """Move grams between two accounts that are not residents' (a pool's and an enterprise's:
    a pooled reduction sold, or given back on a refund), posted at once. The debit account's
    no-overdraft rule holds as for residents (the conditional update refuses it)."""
    amount_require(amount_g=amount_g)
    if AccountKind.RESIDENT in (from_account.kind, to_account.kind):
        raise ValueError("residents' grams move by award, spend and hold")
    payload = {
        "op": "move",
        "from": from_account.pk,
        "to": to_account.pk,
        "amount": amount_g,
        "reference": reference,
        "reverses": reverses.pk if reverses is not None else None,
    }
    digest = payload_hash(payload)
    if (found := _existing(idempotency_key, digest)) is not None:
        return found
    try:
        with transaction.atomic():
            transfer = Transfer.objects.create(
                idempotency_key=idempotency_key,
                payload_hash=digest,
                debit_account=from_account,
                credit_account=to_account,
                amount_g=amount_g,
                flag=TransferFlag.POSTED,
                code=TransferCode.REVERSAL if reverses is not None else TransferCode.SPEND,
                reverses=reverses,
                description=description[:300],
                reference=reference,
            )
            _apply_balances(
                flag=TransferFlag.POSTED, debit=from_account, credit=to_account, amount=amount_g
            )
            return transfer
    except IntegrityError:
        if (found := _existing(idempotency_key, digest)) is not None:
            return found
        raise
