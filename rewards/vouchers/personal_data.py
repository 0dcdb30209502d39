"""The vouchers slice's personal data: a resident's vouchers (with where they were redeemed).

Erasure unlinks the vouchers from the resident and keeps them, their ledger holds and the
merchants' settlement lines whole: a merchant is still owed for a voucher it took. An unused
voucher is cancelled first (its hold voided, its unit back on sale): nobody can use it once
the account is gone. A donation's certificate, which shows the name, is deleted."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from carbon.models import User
from carbon.personal_data import PersonalData
from carbon.services.ledger import ledger_void
from rewards.offers.stock import offer_stock_return
from rewards.vouchers.models import Voucher, VoucherStatus


def vouchers_export(*, user: User) -> list[dict[str, Any]]:
    rows = []
    for v in (
        Voucher.objects.filter(user=user)
        .select_related("offer", "partner", "redemption")
        .order_by("created_at", "id")
    ):
        redemption = getattr(v, "redemption", None)
        rows.append(
            {
                "id": str(v.pk),
                "offer": v.offer.title_en,
                "kind": v.offer.kind,
                "partner": v.partner.name,
                "price_g": v.price_g,
                "status": v.status,
                "code": v.code,
                "created_at": v.created_at.isoformat(),
                "expires_at": v.expires_at.isoformat(),
                "resolved_at": v.resolved_at.isoformat() if v.resolved_at else None,
                "refunded": v.refunded,
                "redeemed_at": redemption.created_at.isoformat() if redemption else None,
            }
        )
    return rows


def vouchers_erase(*, user: User) -> None:
    """Runs inside user_erase with the user row locked: the same lock order as a cancel."""
    now = timezone.now()
    for voucher in Voucher.objects.select_for_update().filter(
        user=user, status=VoucherStatus.ISSUED
    ):
        ledger_void(pending_id=voucher.hold_id, description="Voucher cancelled: account erased")
        offer_stock_return(offer_id=voucher.offer_id)
        voucher.status, voucher.resolved_at, voucher.refunded = VoucherStatus.CANCELLED, now, True
        voucher.outcome_note = "Cancelled: the account was erased"
        voucher.save(update_fields=["status", "resolved_at", "refunded", "outcome_note"])
    for voucher in Voucher.objects.filter(user=user).exclude(certificate=""):
        voucher.certificate.delete(save=False)
    Voucher.objects.filter(user=user).update(user=None, idempotency_key="", certificate="")


PROVIDERS = (PersonalData("rewards_vouchers", (Voucher,), vouchers_export, vouchers_erase),)
