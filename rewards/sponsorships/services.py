"""Funding a sponsor's budget: the request (a Sponsorship and its Payment, in one
transaction) and the payment purpose that credits the budget when Stripe confirms, and takes
back a refund (reserved when asked, given back if Stripe refuses the refund)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from carbon.models import User
from rewards.payments.errors import NotRefundable
from rewards.payments.models import Payment, PaymentRefund
from rewards.payments.services import Purpose, payment_request
from rewards.sponsorships.errors import InvalidSponsorshipAmount
from rewards.sponsorships.models import Sponsor, Sponsorship, SponsorshipStatus

PURPOSE = "sponsorship"


@transaction.atomic
def sponsorship_request(*, sponsor: Sponsor, amount_fen: int, requested_by: User) -> Sponsorship:
    if (
        not isinstance(amount_fen, int)
        or isinstance(amount_fen, bool)
        or not settings.SPONSORSHIP_MIN_FEN <= amount_fen <= settings.SPONSORSHIP_MAX_FEN
    ):
        raise InvalidSponsorshipAmount(
            details={
                "min_fen": settings.SPONSORSHIP_MIN_FEN,
                "max_fen": settings.SPONSORSHIP_MAX_FEN,
            }
        )
    sponsorship = Sponsorship.objects.create(sponsor=sponsor, amount_fen=amount_fen)
    sponsorship.payment = payment_request(
        purpose=PURPOSE,
        reference=f"sponsorship:{sponsorship.pk}",
        payer=sponsor.partner,
        amount_fen=amount_fen,
        requested_by=requested_by,
    )
    sponsorship.save(update_fields=["payment"])
    return sponsorship


def _of(payment: Payment) -> Sponsorship:
    return Sponsorship.objects.select_for_update().get(payment=payment)


def _succeeded(payment: Payment) -> None:
    sponsorship = _of(payment)
    if sponsorship.status == SponsorshipStatus.CREDITED:
        return
    sponsorship.status = SponsorshipStatus.CREDITED
    sponsorship.credited_at = timezone.now()
    sponsorship.save(update_fields=["status", "credited_at"])
    Sponsor.objects.filter(pk=sponsorship.sponsor_id).update(
        budget_fen=F("budget_fen") + sponsorship.amount_fen
    )


def _failed(payment: Payment) -> None:
    sponsorship = _of(payment)
    if sponsorship.status == SponsorshipStatus.PENDING:
        sponsorship.status = SponsorshipStatus.FAILED
        sponsorship.save(update_fields=["status"])


def _refund_requested(payment: Payment, refund: PaymentRefund) -> None:
    sponsorship = _of(payment)
    # Only what is still in the budget can be refunded: the conditional update reserves it.
    taken = Sponsor.objects.filter(
        pk=sponsorship.sponsor_id, budget_fen__gte=refund.amount_fen
    ).update(budget_fen=F("budget_fen") - refund.amount_fen)
    if sponsorship.status != SponsorshipStatus.CREDITED or taken != 1:
        raise NotRefundable(details={"budget": "the sponsor's budget has not that much left"})


def _refund_settled(payment: Payment, refund: PaymentRefund, succeeded: bool) -> None:
    sponsorship = _of(payment)
    if succeeded:
        Sponsorship.objects.filter(pk=sponsorship.pk).update(
            refunded_fen=F("refunded_fen") + refund.amount_fen
        )
    else:
        Sponsor.objects.filter(pk=sponsorship.sponsor_id).update(
            budget_fen=F("budget_fen") + refund.amount_fen
        )


SPONSORSHIP_PURPOSE = Purpose(
    name=PURPOSE,
    on_succeeded=_succeeded,
    on_failed=_failed,
    on_refund_requested=_refund_requested,
    on_refund_settled=_refund_settled,
)
