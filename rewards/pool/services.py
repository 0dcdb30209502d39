"""Selling pooled reductions: the purchase request (a PoolSale and its Payment in one
transaction; the pool must hold the grams when asked), and the payment purpose: on success the
grams move from the pool's account to the buyer's through the ledger and the certificate is
drawn; if the pool ran short meanwhile (another buyer paid first) the sale is unfulfilled and
refunded in full; a refund moves the grams back."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from carbon.errors import InsufficientFunds
from carbon.models import User
from carbon.services.ledger import enterprise_account, ledger_move
from rewards.payments.errors import NotRefundable
from rewards.payments.models import Payment, PaymentRefund
from rewards.payments.services import Purpose, payment_refund_request, payment_request
from rewards.pool.certificate import retirement_certificate_render
from rewards.pool.errors import InvalidTonnes, PoolShort
from rewards.pool.models import EnterpriseBuyer, Pool, PoolSale, SaleStatus

log = logging.getLogger(__name__)
PURPOSE = "pool_sale"


def pool_available_g(*, pool: Pool) -> int:
    return enterprise_account(partner=pool.keeper).available_g


@transaction.atomic
def pool_purchase_request(
    *, pool: Pool, buyer: EnterpriseBuyer, tonnes: int, requested_by: User, max_tonnes: int
) -> PoolSale:
    if not isinstance(tonnes, int) or isinstance(tonnes, bool) or not 1 <= tonnes <= max_tonnes:
        raise InvalidTonnes(details={"max_tonnes": max_tonnes})
    sale = PoolSale(
        pool=pool,
        buyer=buyer,
        tonnes=tonnes,
        price_fen_per_tonne=pool.price_fen_per_tonne,
        amount_fen=tonnes * pool.price_fen_per_tonne,
    )
    if pool_available_g(pool=pool) < sale.grams:
        raise PoolShort(details={"available_g": pool_available_g(pool=pool)})
    sale.save()
    sale.payment = payment_request(
        purpose=PURPOSE,
        reference=f"pool_sale:{sale.pk}",
        payer=buyer.partner,
        amount_fen=sale.amount_fen,
        requested_by=requested_by,
    )
    sale.save(update_fields=["payment"])
    return sale


def _of(payment: Payment) -> PoolSale:
    return (
        PoolSale.objects.select_for_update()
        .select_related("pool__keeper", "buyer__partner")
        .get(payment=payment)
    )


def _succeeded(payment: Payment) -> None:
    sale = _of(payment)
    if sale.status != SaleStatus.PENDING and sale.status != SaleStatus.FAILED:
        return
    try:
        with transaction.atomic():
            sale.transfer = ledger_move(
                from_account=enterprise_account(partner=sale.pool.keeper),
                to_account=enterprise_account(partner=sale.buyer.partner),
                amount_g=sale.grams,
                idempotency_key=f"pool_sale:{sale.pk}:move",
                description=f"Pooled reductions sold: {sale.tonnes} t to {sale.buyer}",
                reference=f"pool_sale:{sale.pk}",
            )
    except InsufficientFunds:
        # Paid, but another buyer's payment took the grams first: give the money back.
        # In this transaction (the webhook's): the refund is owed as surely as the sale failed.
        sale.status = SaleStatus.UNFULFILLED
        sale.save(update_fields=["status"])
        _refund_unfulfilled(payment.pk)
        return
    now = timezone.now()
    sale.status = SaleStatus.COMPLETED
    sale.completed_at = now
    sale.certificate_number = f"CR-{now:%Y}-{sale.pk:06d}"
    sale.certificate_png = retirement_certificate_render(
        buyer=sale.buyer.partner.name,
        tonnes=sale.tonnes,
        pool=sale.pool.name,
        number=sale.certificate_number,
        on=timezone.localdate(now),
    )
    sale.save()


def _refund_unfulfilled(payment_id: int) -> None:
    payment_refund_request(
        payment_id=payment_id,
        amount_fen=None,
        reason="the pool had not enough reductions left",
        actor=None,
    )


def _failed(payment: Payment) -> None:
    sale = _of(payment)
    if sale.status == SaleStatus.PENDING:
        sale.status = SaleStatus.FAILED
        sale.save(update_fields=["status"])


def _refund_requested(payment: Payment, refund: PaymentRefund) -> None:
    sale = _of(payment)
    # Tonnes are sold whole: a refund is of the whole sale.
    if refund.amount_fen != sale.amount_fen or sale.status not in (
        SaleStatus.COMPLETED,
        SaleStatus.UNFULFILLED,
    ):
        raise NotRefundable(details={"refundable_fen": sale.amount_fen, "status": sale.status})


def _refund_settled(payment: Payment, refund: PaymentRefund, succeeded: bool) -> None:
    sale = _of(payment)
    if not succeeded or sale.status == SaleStatus.REFUNDED:
        return
    if sale.transfer_id is not None:
        sale.return_transfer = ledger_move(
            from_account=enterprise_account(partner=sale.buyer.partner),
            to_account=enterprise_account(partner=sale.pool.keeper),
            amount_g=sale.grams,
            idempotency_key=f"pool_sale:{sale.pk}:return",
            description=f"Pool sale {sale.pk} refunded: grams back to the pool",
            reference=f"pool_sale:{sale.pk}",
            reverses=sale.transfer,
        )
    sale.status = SaleStatus.REFUNDED
    sale.save(update_fields=["status", "return_transfer"])


POOL_PURPOSE = Purpose(
    name=PURPOSE,
    on_succeeded=_succeeded,
    on_failed=_failed,
    on_refund_requested=_refund_requested,
    on_refund_settled=_refund_settled,
)
