"""The points ledger: accounts, immutable transfers, and award lots with expiry.

Double entry after TigerBeetle: balances are four cached counters per account, changed only
by the ledger service in the same transaction that inserts the transfer. Points are integer
grams of CO2e.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .catalogue import Category
from .partners import Partner


class AccountKind(models.TextChoices):
    RESIDENT = "resident", _("Resident")
    ISSUANCE = "issuance", _("Issuance (source of awards)")
    EXPIRY = "expiry", _("Expired credits")
    REDEMPTION = "redemption", _("Redemption liabilities")
    OFFSET = "offset", _("Mortgage-interest offsets")
    DONATION = "donation", _("Donations")
    POOL = "pool", _("Enterprise / pool")
    # One per partner (e.g. a bank that takes over residents' reductions as mortgage-interest
    # offsets): unlike the other system accounts it is not sharded, and it names its partner.
    ENTERPRISE = "enterprise", _("Enterprise (a partner's own carbon account)")


class AccountQuerySet(models.QuerySet):
    def residents(self) -> AccountQuerySet:
        return self.filter(kind=AccountKind.RESIDENT)

    def system(self) -> AccountQuerySet:
        return self.exclude(kind=AccountKind.RESIDENT)


class Account(models.Model):
    kind = models.CharField(_("kind"), max_length=16, choices=AccountKind.choices)
    # System accounts are split in shards (same kind, shard 0..N-1) so awards don't all
    # queue on one row lock; a resident's account has shard 0.
    shard = models.PositiveSmallIntegerField(_("shard"), default=0)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_account",
        verbose_name=_("resident"),
    )
    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
        verbose_name=_("partner"),
        help_text=_("For an enterprise account: the partner that owns it."),
    )
    debits_must_not_exceed_credits = models.BooleanField(_("no overdraft"), default=True)
    debits_pending = models.BigIntegerField(_("debits pending (g)"), default=0)
    debits_posted = models.BigIntegerField(_("debits posted (g)"), default=0)
    credits_pending = models.BigIntegerField(_("credits pending (g)"), default=0)
    credits_posted = models.BigIntegerField(_("credits posted (g)"), default=0)
    # A resident's grams ever earned: awards credited less reversals taken back (GET /me
    # shows it). Kept by the ledger service beside the four counters, so /me reads one row
    # instead of summing every transfer; ledger_check compares it with the transfers.
    lifetime_g = models.BigIntegerField(_("lifetime earned (g)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(debits_pending__gte=0)
                & Q(debits_posted__gte=0)
                & Q(credits_pending__gte=0)
                & Q(credits_posted__gte=0),
                name="account_counters_non_negative",
            ),
            # The database itself refuses an overdraft, whatever the Python above it does.
            models.CheckConstraint(
                condition=Q(debits_must_not_exceed_credits=False)
                | Q(credits_posted__gte=F("debits_posted") + F("debits_pending")),
                name="account_no_overdraft",
            ),
            models.CheckConstraint(
                condition=Q(kind=AccountKind.RESIDENT, user__isnull=False)
                | (~Q(kind=AccountKind.RESIDENT) & Q(user__isnull=True)),
                name="account_resident_has_user",
            ),
            models.UniqueConstraint(
                fields=["kind", "shard"],
                condition=~Q(kind__in=[AccountKind.RESIDENT, AccountKind.ENTERPRISE]),
                name="unique_system_account_shard",
            ),
            models.CheckConstraint(
                condition=Q(kind=AccountKind.ENTERPRISE, partner__isnull=False)
                | (~Q(kind=AccountKind.ENTERPRISE) & Q(partner__isnull=True)),
                name="account_enterprise_has_partner",
            ),
            models.UniqueConstraint(
                fields=["partner"],
                condition=Q(partner__isnull=False),
                name="unique_enterprise_account_per_partner",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == AccountKind.RESIDENT:
            return f"resident:{self.user_id}"
        if self.kind == AccountKind.ENTERPRISE:
            return f"enterprise:{self.partner_id}"
        return f"{self.kind}#{self.shard}"

    @property
    def balance_g(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available_g(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


class TransferFlag(models.TextChoices):
    POSTED = "posted", _("Posted (single phase)")
    PENDING = "pending", _("Pending (hold)")
    POST_PENDING = "post_pending", _("Posts a pending transfer")
    VOID_PENDING = "void_pending", _("Voids a pending transfer")


class TransferCode(models.TextChoices):
    AWARD = "award", _("Award for a green behaviour")
    SPEND = "spend", _("Spend")
    HOLD = "hold", _("Hold for a redemption or offset")
    RELEASE = "release", _("Hold resolved")
    EXPIRY = "expiry", _("Credits expired")
    REVERSAL = "reversal", _("Reversal of an earlier transfer")


_SIDES = ("credit_account_id", "debit_account_id")


class TransferQuerySet(models.QuerySet):
    def for_account(self, account: Account) -> TransferQuerySet:
        return self.filter(Q(debit_account=account) | Q(credit_account=account))

    def account_sides(self) -> tuple[TransferQuerySet, TransferQuerySet]:
        """This queryset (for_account's, then filtered, ordered...) as its credit side and its
        debit side: every other filter kept, `credit = account` or `debit = account` in place
        of the OR. No transfer is on both sides (transfer_distinct_accounts), so together
        they hold the same rows. Each side is a range scan of its (account, created_at, id)
        index in page order; the OR, or the OR with a side added to it, is not (the planner
        misjudges its size and reads all the account's rows, or the table by time)."""
        where = self.query.where
        for i, node in enumerate(where.children):
            lookups = getattr(node, "children", ())
            if (
                getattr(node, "connector", None) == Q.OR
                and not node.negated
                and sorted(getattr(c.lhs, "target", None) and c.lhs.target.attname for c in lookups)
                == sorted(_SIDES)
            ):
                sides = []
                for name in _SIDES:
                    side = self.all()  # a clone, with its own copy of the where tree
                    side.query.where.children[i] = next(
                        c for c in lookups if c.lhs.target.attname == name
                    )
                    sides.append(side)
                return sides[0], sides[1]
        raise ValueError("account_sides() needs a queryset made by for_account()")

    def unresolved_pending(self) -> TransferQuerySet:
        return self.filter(flag=TransferFlag.PENDING, resolution__isnull=True)


class Transfer(models.Model):
    """Moves a positive amount from one account to another. Never updated or deleted."""

    # Unique through Meta.constraints, not unique=True: a unique CharField also gets a
    # varchar_pattern_ops index on PostgreSQL, for LIKE 'x%' queries nobody makes.
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    payload_hash = models.CharField(_("payload hash"), max_length=64)
    # The account columns are indexed by the (account, created_at, id) pairs in Meta.
    debit_account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="debit_transfers",
        verbose_name=_("debit account"),
    )
    credit_account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="credit_transfers",
        verbose_name=_("credit account"),
    )
    amount_g = models.BigIntegerField(_("amount (g)"))
    flag = models.CharField(
        pgettext_lazy("transfer", "flag"), max_length=16, choices=TransferFlag.choices
    )
    code = models.CharField(_("type"), max_length=16, choices=TransferCode.choices)
    pending = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="resolution",
        verbose_name=_("pending transfer"),
        help_text=_("For post/void: the pending transfer it resolves (at most once)."),
    )
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # mostly NULL: a partial index in Meta
        related_name="reversals",
        verbose_name=_("reverses"),
    )
    timeout_at = models.DateTimeField(_("timeout at"), null=True, blank=True)
    category = models.CharField(_("category"), max_length=32, choices=Category.choices, blank=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,  # mostly NULL: a partial index in Meta
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = TransferQuerySet.as_manager()

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        ordering = ["-created_at", "-id"]
        # Taking credit back from a resident is an administrator's act, not a reviewer's.
        permissions = [("reverse_transfer", "Can reverse an award")]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="transfer_idempotency_key"),
            models.CheckConstraint(condition=Q(amount_g__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=~Q(debit_account=F("credit_account")), name="transfer_distinct_accounts"
            ),
            models.CheckConstraint(
                condition=Q(flag__in=["post_pending", "void_pending"], pending__isnull=False)
                | (Q(flag__in=["posted", "pending"]) & Q(pending__isnull=True)),
                name="transfer_resolution_has_pending",
            ),
            models.CheckConstraint(
                condition=~Q(flag="pending") | Q(timeout_at__isnull=False),
                name="transfer_pending_has_timeout",
            ),
        ]
        # Every transfer writes each of these, so only what a query uses. A resident's
        # ledger page reads one side at a time in (created_at, id) order and merges the two
        # (carbon.api.pagination.LedgerNewestFirst): one short range scan per side, however
        # many entries the account or the table holds. They also serve the foreign keys.
        indexes = [
            models.Index(
                fields=["debit_account", "-created_at", "-id"], name="transfer_debit_time_idx"
            ),
            models.Index(
                fields=["credit_account", "-created_at", "-id"], name="transfer_credit_time_idx"
            ),
            # What a transfer is for (a claim, a redemption), to find it by; no LIKE twin.
            models.Index(fields=["reference"], name="transfer_reference_idx"),
            # Mostly NULL columns: only the rows that have one (reversal sums, and the
            # SET_NULL when a staff user is deleted).
            models.Index(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="transfer_reverses_idx",
            ),
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="transfer_created_by_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.code} {self.amount_g} g {self.debit_account_id}->{self.credit_account_id}"


class LotQuerySet(models.QuerySet):
    def open(self) -> LotQuerySet:
        return self.filter(remaining_g__gt=0)


class Lot(models.Model):
    """What is left of one award. Spends consume lots oldest expiry first."""

    # Indexed by (account, expires_at) in Meta, which the spend order reads.
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="lots",
        verbose_name=_("account"),
    )
    award = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, related_name="lot", verbose_name=_("award")
    )
    category = models.CharField(_("category"), max_length=32, choices=Category.choices)
    amount_g = models.BigIntegerField(_("amount (g)"))
    remaining_g = models.BigIntegerField(_("remaining (g)"))
    expires_at = models.DateTimeField(_("expires at"))

    objects = LotQuerySet.as_manager()

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        ordering = ["expires_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_g__gt=0), name="lot_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining_g__gte=0) & Q(remaining_g__lte=F("amount_g")),
                name="lot_remaining_in_range",
            ),
        ]
        indexes = [models.Index(fields=["account", "expires_at"], name="lot_account_expiry_idx")]

    def __str__(self) -> str:
        return (
            f"lot {self.pk}: {self.remaining_g}/{self.amount_g} g until {self.expires_at:%Y-%m-%d}"
        )


class LotAllocation(models.Model):
    """Grams a transfer took from (positive) or gave back to (negative) a lot."""

    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("lot")
    )
    transfer = models.ForeignKey(
        Transfer, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("transfer")
    )
    amount_g = models.BigIntegerField(_("amount (g)"))

    class Meta:
        verbose_name = _("lot allocation")
        verbose_name_plural = _("lot allocations")
        constraints = [
            models.CheckConstraint(condition=~Q(amount_g=0), name="allocation_nonzero"),
            models.UniqueConstraint(fields=["lot", "transfer"], name="unique_lot_transfer"),
        ]

    def __str__(self) -> str:
        return f"{self.amount_g} g of lot {self.lot_id} by transfer {self.transfer_id}"
