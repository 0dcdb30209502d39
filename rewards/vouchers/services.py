"""Redeeming an offer (a ledger hold and a voucher), cancelling, expiring, a top-up's outcome,
a voucher used at a till, and a donation's certificate.

Locks, always in this order, so no two paths wait on each other the other way round: the
resident's user row (people.resident_lock, the row an erasure takes first), then a voucher
row, then the resident's ledger account (inside the ledger service), then the offer row
(the stock UPDATE, taken last: the offer is the one row every redemption of it shares).

A voucher's ledger hold times out REWARDS_HOLD_GRACE_HOURS after the voucher expires: the
expiry job here resolves the voucher (posting or voiding as the offer says) before the
ledger's own job could void the hold behind its back; if this job was down that long, it
finds the hold voided and records the voucher expired with the grams given back.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from carbon.errors import HoldExpired, IdempotencyConflict
from carbon.models import AccountKind, Partner, TransferFlag, User
from carbon.services.ledger import ledger_hold, ledger_post, ledger_void
from carbon.services.people import resident_lock
from carbon.services.residents import resident_require
from rewards.offers.errors import OfferInactive, OfferNotFound, OutOfStock
from rewards.offers.models import Offer, OfferKind
from rewards.offers.stock import offer_stock_return, offer_stock_take
from rewards.topups.models import TopUp
from rewards.vouchers.certificate import certificate_render
from rewards.vouchers.codes import voucher_code_new
from rewards.vouchers.errors import (
    LimitReached,
    NotCancellable,
    TopupCardRequired,
    VoucherCancelled,
    VoucherExpired,
    VoucherNotFound,
    VoucherNotRedeemable,
    VoucherUsed,
)
from rewards.vouchers.fulfilment import topup_fulfilment_start
from rewards.vouchers.limits import offer_remaining
from rewards.vouchers.models import Voucher, VoucherStatus

#: Offers a merchant's till redeems; top-ups and donations are fulfilled otherwise.
TILL_KINDS = (OfferKind.VOUCHER, OfferKind.TICKET)


def hold_key(*, user: User, idempotency_key: str) -> str:
    """The ledger's idempotency key of a redemption's hold, derived from the client's."""
    return f"rewards:redeem:{user.public_id}:{idempotency_key}"


def _kind_in_english(kind: str) -> str:
    # The ledger's descriptions are records, written once and read in any language: English,
    # like a claim's receipt, whatever the language of the request that wrote them.
    with translation.override("en"):
        return str(OfferKind(kind).label)


def hold_timeout(offer: Offer) -> timedelta:
    return offer.voucher_lifetime + timedelta(hours=settings.REWARDS_HOLD_GRACE_HOURS)


# --- redeeming an offer --------------------------------------------------------------------


def voucher_issue(
    *, user: User, offer_id: int, idempotency_key: str, card_number: str | None = None
) -> tuple[Voucher, bool]:
    """Redeem an offer: hold its price from the resident's grams and issue a voucher.
    Returns (voucher, created). The same key for the same offer returns the first voucher;
    for another offer it is refused (IdempotencyConflict).

    All or nothing, in one transaction: a refusal (inactive offer, limit, balance, stock)
    leaves no hold and no voucher. A donation is final: its hold is posted at once. A
    transit top-up needs `card_number` (one of the resident's linked cards) and stays
    `processing` until the top-up slice reports its outcome.
    """
    # The view refuses other roles; this is the defence for every other caller.
    resident_require(user=user)
    now = timezone.now()
    with transaction.atomic():
        resident_lock(user=user)
        # Looked up under the resident's lock: a concurrent retry of the same key waits for
        # the first and finds its voucher here.
        existing = Voucher.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.offer_id != offer_id:
                raise IdempotencyConflict(
                    details={"idempotency_key": idempotency_key, "offer": existing.offer_id}
                )
            return existing, False
        offer = Offer.objects.select_related("partner").filter(pk=offer_id).first()
        if offer is None:
            raise OfferNotFound(details={"offer": offer_id})
        if not offer.is_available(at=now):
            raise OfferInactive(details={"offer": offer_id})
        if offer.stock_left <= 0:
            # A read without a lock, to refuse early; the UPDATE below is what decides.
            raise OutOfStock(details={"offer": offer_id})
        remaining, period = offer_remaining(user=user, offer=offer, now=now)
        if remaining == 0:
            raise LimitReached(details={"offer": offer_id, "period": period})
        if offer.kind == OfferKind.TRANSIT_TOPUP and not card_number:
            raise TopupCardRequired(details={"offer": offer_id})

        voucher_id = uuid.uuid4()
        donation = offer.kind == OfferKind.DONATION
        hold = ledger_hold(
            user=user,
            amount_g=offer.price_g,
            to_kind=AccountKind.DONATION if donation else AccountKind.REDEMPTION,
            idempotency_key=hold_key(user=user, idempotency_key=idempotency_key),
            description=f"{_kind_in_english(offer.kind)}: {offer.title_en}"[:300],
            reference=f"voucher:{voucher_id}",
            timeout=hold_timeout(offer),
        )
        if donation:
            ledger_post(pending_id=hold.pk, description="Donation")
            status = VoucherStatus.REDEEMED
        elif offer.kind == OfferKind.TRANSIT_TOPUP:
            status = VoucherStatus.PROCESSING
        else:
            status = VoucherStatus.ISSUED
        voucher = _voucher_create(
            id=voucher_id,
            user=user,
            offer=offer,
            status=status,
            idempotency_key=idempotency_key,
            hold=hold,
            price_g=offer.price_g,
            partner=offer.partner,
            partner_value_cny=offer.partner_value_cny,
            expires_at=now + offer.voucher_lifetime,
            resolved_at=now if donation else None,
        )
        if status == VoucherStatus.PROCESSING:
            topup_fulfilment_start(voucher, card_number=card_number)
        # Last: the offer's row stays locked from this UPDATE to the commit just after.
        if not offer_stock_take(offer_id=offer.pk):
            raise OutOfStock(details={"offer": offer_id})
        return voucher, True


def _voucher_create(**fields) -> Voucher:
    """Insert with a fresh code; a clash of random codes (about one in 2^55) draws again."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Voucher.objects.create(code=voucher_code_new(), **fields)
        except IntegrityError:
            if Voucher.objects.filter(
                user=fields["user"], idempotency_key=fields["idempotency_key"]
            ).exists():
                raise
    raise RuntimeError("could not draw an unused voucher code")


# --- cancelling and expiring ---------------------------------------------------------------


def _final(voucher: Voucher, status: str, *, now: datetime, note: str, refunded: bool) -> None:
    voucher.status = status
    voucher.resolved_at = now
    voucher.outcome_note = note[:300]
    voucher.refunded = refunded
    voucher.save(update_fields=["status", "resolved_at", "outcome_note", "refunded"])


def voucher_cancel(*, user: User, voucher_id: uuid.UUID) -> Voucher:
    """Cancel an unused voucher of the resident's: the hold is voided (the grams come back)
    and the unit goes back on sale. Cancelling a cancelled voucher returns it unchanged."""
    now = timezone.now()
    with transaction.atomic():
        resident_lock(user=user)
        voucher = Voucher.objects.select_for_update().filter(pk=voucher_id, user=user).first()
        if voucher is None:
            raise VoucherNotFound(details={"voucher": str(voucher_id)})
        if voucher.status == VoucherStatus.CANCELLED:
            return voucher
        if voucher.status != VoucherStatus.ISSUED:
            raise NotCancellable(details={"status": voucher.status})
        if voucher.expires_at <= now:
            raise VoucherExpired(details={"expires_at": voucher.expires_at.isoformat()})
        ledger_void(pending_id=voucher.hold_id, description="Voucher cancelled")
        offer_stock_return(offer_id=voucher.offer_id)
        _final(
            voucher,
            VoucherStatus.CANCELLED,
            now=now,
            note="Cancelled by the resident",
            refunded=True,
        )
        return voucher


def _expire_one(voucher: Voucher, *, now: datetime) -> None:
    """Expire a locked, issued voucher past its date: void the hold if the offer gives the
    grams back, else post it. A hold the ledger already voided (this job was down past the
    grace period) is recorded as it is: the grams came back."""
    resolution = getattr(voucher.hold, "resolution", None)
    if resolution is not None:
        refunded = resolution.flag == TransferFlag.VOID_PENDING
        note = "Expired; the ledger had already released the hold"
    elif voucher.offer.refund_on_expiry:
        ledger_void(pending_id=voucher.hold_id, description="Voucher expired: refunded")
        refunded, note = True, "Expired unused; grams returned"
    else:
        try:
            ledger_post(pending_id=voucher.hold_id, description="Voucher expired: kept")
            refunded, note = False, "Expired unused; grams kept as the offer says"
        except HoldExpired:  # the hold had timed out: released instead, as the ledger decided
            refunded, note = True, "Expired; the hold had timed out and was released"
    _final(voucher, VoucherStatus.EXPIRED, now=now, note=note, refunded=refunded)


def vouchers_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire issued vouchers past their date, one transaction each (a periodic job; safe to
    run twice at once: a voucher another run holds is skipped, one it finished is left)."""
    now = now or timezone.now()
    due = list(
        Voucher.objects.filter(status=VoucherStatus.ISSUED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch]
    )
    done = 0
    for voucher_id in due:
        with transaction.atomic():
            voucher = (
                Voucher.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("offer", "hold", "hold__resolution")
                .filter(pk=voucher_id, status=VoucherStatus.ISSUED, expires_at__lte=now)
                .first()
            )
            if voucher is None:
                continue
            _expire_one(voucher, now=now)
            done += 1
    return done


# --- top-up outcome (called by the top-up slice) --------------------------------------------


def _processing(voucher: Voucher) -> Voucher | None:
    locked = Voucher.objects.select_for_update().get(pk=voucher.pk)
    if locked.status != VoucherStatus.PROCESSING:
        return None
    return locked


def voucher_fulfilled(voucher: Voucher) -> Voucher:
    """The operator topped the card up: the hold is posted, the voucher redeemed. Repeating
    it changes nothing. (Positional on purpose: the top-up slice's one entry point.)"""
    now = timezone.now()
    with transaction.atomic():
        locked = _processing(voucher)
        if locked is None:
            return Voucher.objects.get(pk=voucher.pk)
        ledger_post(pending_id=locked.hold_id, description="Top-up fulfilled")
        _final(locked, VoucherStatus.REDEEMED, now=now, note="Topped up", refunded=False)
        return locked


def voucher_fulfilment_failed(voucher: Voucher, reason: str) -> Voucher:
    """The operator refused, or never answered: the hold is voided (the grams come back), the
    unit goes back on sale, the voucher failed. Repeating it changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        locked = _processing(voucher)
        if locked is None:
            return Voucher.objects.get(pk=voucher.pk)
        ledger_void(pending_id=locked.hold_id, description="Top-up failed")
        offer_stock_return(offer_id=locked.offer_id)
        _final(locked, VoucherStatus.FAILED, now=now, note=reason, refunded=True)
        return locked


def topup_settled_receive(sender, *, topup: TopUp, outcome: str, **kwargs) -> None:
    """The top-up slice's `topup_settled` signal (connected in RewardsConfig.ready()): the
    voucher a top-up paid for is redeemed, or failed with the grams back. Idempotent."""
    if not topup.reference.startswith("voucher:"):
        return
    voucher = Voucher.objects.filter(pk=topup.reference.removeprefix("voucher:")).first()
    if voucher is None or voucher.status != VoucherStatus.PROCESSING:
        return  # another caller's top-up, or an outcome already recorded (a redelivery)
    if outcome == "confirmed" and topup.points_taken:
        voucher_fulfilled(voucher)
    else:
        # Refused, silent to the deadline, or (rarely) confirmed after the ledger had already
        # released an overdue hold: either way the resident's grams are back.
        voucher_fulfilment_failed(voucher, topup.last_error or outcome)


# --- at the till ----------------------------------------------------------------------------


def voucher_use(*, voucher: Voucher, now: datetime | None = None) -> Voucher:
    """Use a voucher the caller has locked (select_for_update) inside its transaction: the
    hold is posted and the voucher redeemed; a voucher that is not usable is refused with
    why. The merchants slice calls this and records its settlement line beside it."""
    now = now or timezone.now()
    if voucher.status == VoucherStatus.REDEEMED:
        raise VoucherUsed(details={"redeemed_at": voucher.resolved_at.isoformat()})
    if voucher.status == VoucherStatus.CANCELLED:
        raise VoucherCancelled()
    if voucher.status == VoucherStatus.EXPIRED or (
        voucher.status == VoucherStatus.ISSUED and voucher.expires_at <= now
    ):
        raise VoucherExpired(details={"expires_at": voucher.expires_at.isoformat()})
    if voucher.status != VoucherStatus.ISSUED or voucher.offer.kind not in TILL_KINDS:
        raise VoucherNotRedeemable(details={"status": voucher.status})
    ledger_post(pending_id=voucher.hold_id, description="Voucher redeemed")
    _final(voucher, VoucherStatus.REDEEMED, now=now, note="Redeemed", refunded=False)
    return voucher


def voucher_for_merchant(*, code: str, merchant: Partner) -> Voucher:
    """The merchant's voucher with this code, locked; VoucherNotFound for any other (also
    another merchant's: whether the code exists elsewhere is not told)."""
    voucher = (
        Voucher.objects.select_for_update(of=("self",))
        .select_related("offer")
        .filter(code=code, partner=merchant)
        .first()
    )
    if voucher is None:
        raise VoucherNotFound(
            _("No voucher of this merchant has this code."), details={"code": code}
        )
    return voucher


# --- a donation's certificate ---------------------------------------------------------------


def voucher_certificate(*, user: User, voucher_id: uuid.UUID) -> Voucher:
    """The resident's donation voucher with its certificate drawn (on first request)."""
    voucher = Voucher.objects.filter(
        pk=voucher_id, user=user, offer__kind=OfferKind.DONATION
    ).first()
    if voucher is None:
        raise VoucherNotFound(details={"voucher": str(voucher_id)})
    if voucher.certificate:
        return voucher
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().select_related("offer").get(pk=voucher.pk)
        if not voucher.certificate:
            png = certificate_render(
                name=user.display_name or user.email.split("@")[0],
                grams=voucher.price_g,
                project=voucher.offer.donation_project,
                on=timezone.localdate(voucher.created_at),
            )
            voucher.certificate.save(
                f"{voucher.pk}.png", ContentFile(png, name="certificate.png"), save=False
            )
            voucher.save(update_fields=["certificate"])
    return voucher
