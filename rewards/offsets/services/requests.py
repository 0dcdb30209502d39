"""A resident's offset requests (a hold of the programme's categories of grams, to the bank's
enterprise account, within the resident's monthly cap and the programme's budget), and what
a resident reads: programmes, offsets, a yearly statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from carbon.errors import IdempotencyConflict, InvalidAmount
from carbon.models import User
from carbon.services.ledger import enterprise_account, ledger_hold
from carbon.services.people import resident_lock
from carbon.services.residents import resident_require
from rewards.offsets.errors import (
    LoanLinkRequired,
    OffsetBudgetExhausted,
    OffsetMonthlyCap,
    OffsetTooSmall,
    ProgrammeClosed,
    UnknownProgramme,
)
from rewards.offsets.models import (
    BankProgramme,
    LoanLink,
    LoanLinkStatus,
    Offset,
    OffsetStatus,
    value_fen,
)

# Days between the confirmation window's end and the hold's own timeout: the offsets'
# expiry job (hourly) voids an unanswered offset first and records why; the ledger's expiry
# job, which knows nothing of offsets, is only the backstop.
HOLD_MARGIN_DAYS = 2


def offset_hold_timeout() -> timedelta:
    return timedelta(days=settings.OFFSETS_CONFIRM_DAYS + HOLD_MARGIN_DAYS)


def _month_start(now: datetime) -> datetime:
    """The calendar month the cap counts, in the city's time zone."""
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def programme_committed_fen(*, programme: BankProgramme) -> int:
    """Fen of the budget taken by offsets requested, sent or confirmed."""
    return (
        Offset.objects.committed().filter(programme=programme).aggregate(s=Sum("value_fen"))["s"]
        or 0
    )


@dataclass(frozen=True)
class MonthUse:
    grams: int
    fen: int


def resident_month_use(*, user: User, programme: BankProgramme, now: datetime) -> MonthUse:
    used = (
        Offset.objects.committed()
        .filter(user=user, programme=programme, requested_at__gte=_month_start(now))
        .aggregate(g=Sum("grams"), f=Sum("value_fen"))
    )
    return MonthUse(grams=used["g"] or 0, fen=used["f"] or 0)


def _same_request(offset: Offset, *, programme_id: int, grams: int) -> Offset:
    if offset.programme_id != programme_id or offset.grams != grams:
        raise IdempotencyConflict(details={"idempotency_key": offset.idempotency_key})
    return offset


@dataclass(frozen=True)
class OffsetRequested:
    offset: Offset
    created: bool


def offset_request(
    *,
    user: User,
    programme_id: int,
    grams: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> OffsetRequested:
    """Hold `grams` of the programme's categories (green travel) for the bank. The caps and
    the budget are checked with the programme row locked, so concurrent requests (of one
    resident or of many) are counted one after the other and never exceed them. The same
    key again returns the first offset; with another programme or amount it is refused."""
    # The view refuses other roles; this is the defence for every other caller.
    resident_require(user=user)
    if not isinstance(grams, int) or isinstance(grams, bool) or grams <= 0:
        raise InvalidAmount(details={"grams": grams})
    existing = Offset.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None:
        return OffsetRequested(
            _same_request(existing, programme_id=programme_id, grams=grams), False
        )
    now = now or timezone.now()
    with transaction.atomic():
        resident_lock(user=user)  # never beside an erasure of this resident
        # The programme row is the lock every request of the programme queues on: the caps
        # and the budget below are read and taken under it.
        programme = (
            BankProgramme.objects.select_for_update()
            .filter(pk=programme_id)
            .select_related("bank")
            .first()
        )
        if programme is None:
            raise UnknownProgramme(details={"programme": programme_id})
        # A retry of this request may have committed while this one waited for the lock.
        existing = Offset.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return OffsetRequested(
                _same_request(existing, programme_id=programme_id, grams=grams), False
            )
        if not BankProgramme.objects.open_at(now).filter(pk=programme.pk).exists():
            raise ProgrammeClosed(details={"programme": programme.pk})
        link = LoanLink.objects.filter(
            user=user, programme=programme, status=LoanLinkStatus.CONFIRMED
        ).first()
        if link is None:
            raise LoanLinkRequired(details={"programme": programme.pk})
        fen = value_fen(grams=grams, cny_per_kg=programme.cny_per_kg)
        if grams < programme.min_grams or fen < 1:
            raise OffsetTooSmall(details={"min_grams": programme.min_grams, "value_fen": fen})
        used = resident_month_use(user=user, programme=programme, now=now)
        if programme.monthly_cap_g is not None and used.grams + grams > programme.monthly_cap_g:
            raise OffsetMonthlyCap(
                details={
                    "cap_g": programme.monthly_cap_g,
                    "used_g": used.grams,
                    "left_g": max(0, programme.monthly_cap_g - used.grams),
                }
            )
        if programme.monthly_cap_fen is not None and used.fen + fen > programme.monthly_cap_fen:
            raise OffsetMonthlyCap(
                details={
                    "cap_fen": programme.monthly_cap_fen,
                    "used_fen": used.fen,
                    "left_fen": max(0, programme.monthly_cap_fen - used.fen),
                }
            )
        left = programme.budget_fen - programme_committed_fen(programme=programme)
        if fen > left:
            raise OffsetBudgetExhausted(details={"left_fen": max(0, left)})
        hold = ledger_hold(
            user=user,
            amount_g=grams,
            to_account=enterprise_account(partner=programme.bank),
            categories=list(programme.categories),
            idempotency_key=f"offset:{user.pk}:{idempotency_key}",
            description=f"Mortgage-interest offset at {programme.bank.name}"[:300],
            reference=f"offset-programme:{programme.pk}",
            timeout=offset_hold_timeout(),
        )
        offset = Offset.objects.create(
            user=user,
            programme=programme,
            link=link,
            idempotency_key=idempotency_key,
            grams=grams,
            cny_per_kg=programme.cny_per_kg,
            value_fen=fen,
            hold=hold,
            requested_at=now,
        )
    return OffsetRequested(offset, True)


def offsets_of(*, user: User):
    return (
        Offset.objects.filter(user=user)
        .select_related("programme__bank", "link")
        .order_by("-requested_at", "-id")
    )


def programmes_open(*, now: datetime | None = None):
    return BankProgramme.objects.open_at(now or timezone.now()).select_related("bank")


@dataclass(frozen=True)
class Statement:
    year: int
    offsets: list[Offset]
    count: int
    grams: int
    value_fen: int
    interest_credited_fen: int


def offset_statement(*, user: User, year: int) -> Statement:
    """The offsets the bank confirmed in `year` (the city's calendar year), with their
    totals: what a resident shows for the year's mortgage interest."""
    tz = timezone.get_current_timezone()
    start = datetime(year, 1, 1, tzinfo=tz)
    end = datetime(year + 1, 1, 1, tzinfo=tz)
    confirmed = offsets_of(user=user).filter(
        status=OffsetStatus.CONFIRMED, resolved_at__gte=start, resolved_at__lt=end
    )
    totals = confirmed.aggregate(
        n=Count("id"), g=Sum("grams"), f=Sum("value_fen"), i=Sum("interest_credited_fen")
    )
    return Statement(
        year=year,
        offsets=list(confirmed.order_by("resolved_at", "id")),
        count=totals["n"] or 0,
        grams=totals["g"] or 0,
        value_fen=totals["f"] or 0,
        interest_credited_fen=totals["i"] or 0,
    )
