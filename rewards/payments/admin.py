"""Payments in the admin: payments and their refunds (a refund, asked from here with a reason,
needs `rewards.refund_payment` and goes through the same service as any refund), the outbox
of Stripe calls and the webhook events applied. All rows are written by services only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import ReadOnlyAdmin, act_with_reason
from rewards.payments.models import Payment, PaymentRefund, StripeRequest, WebhookEvent
from rewards.payments.services import payment_refund_request


class RefundInline(admin.TabularInline):
    model = PaymentRefund
    extra = 0
    can_delete = False
    fields = ["created_at", "amount_fen", "reason", "status", "stripe_id", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "payer",
        "amount_fen",
        "refunded_fen",
        "status",
        "stripe_id",
        "created_at",
    ]
    list_filter = ["status", "purpose"]
    search_fields = ["reference", "stripe_id", "payer__name"]
    list_select_related = ["payer"]
    exclude = ["client_secret"]
    inlines = [RefundInline]
    actions = ["refund"]

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("rewards.refund_payment")

    @admin.action(
        description=gettext_lazy("Refund selected in full (with a reason)"),
        permissions=["refund"],
    )
    def refund(self, request, queryset):
        def act(payment: Payment, note: str) -> str:
            refund = payment_refund_request(
                payment_id=payment.pk, amount_fen=None, reason=note, actor=request.user
            )
            return _("Refund of %(fen)s fen asked for %(ref)s.") % {
                "fen": refund.amount_fen,
                "ref": payment.reference,
            }

        return act_with_reason(
            self,
            request,
            queryset,
            permission="refund",
            title=_("Refund payments"),
            max_length=300,
            label=lambda payment: payment.reference,
            act=act,
        )


@admin.register(PaymentRefund)
class PaymentRefundAdmin(ReadOnlyAdmin):
    list_display = ["payment", "amount_fen", "status", "stripe_id", "created_at", "settled_at"]
    list_filter = ["status"]


@admin.register(StripeRequest)
class StripeRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "owner",
        "operation",
        "status",
        "attempts",
        "stripe_id",
        "last_error",
        "created_at",
    ]
    list_filter = ["status", "operation"]
    search_fields = ["owner", "stripe_id"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "object_id", "outcome", "received_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "object_id"]
