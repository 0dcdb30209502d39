"""Zero-waste family award campaigns: their windows, rules and weights, the candidates
(family cells), residents' votes, and the audit of votes the anomaly review reversed.

The daily limits are the database's: a vote takes one of the voter's numbered slots for the
day (1..N, N copied from the campaign when it is cast), and a slot, like a candidate, can be
taken once per voter, campaign and day. Concurrent votes therefore cannot exceed either
limit, whatever the Python around them does."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Campaign(models.Model):
    title_zh = models.CharField(_("Chinese title"), max_length=120)
    title_en = models.CharField(_("English title"), max_length=120)
    rules_zh = models.TextField(_("Chinese rules"), max_length=4000)
    rules_en = models.TextField(_("English rules"), max_length=4000)
    nomination_opens_at = models.DateTimeField(_("nomination opens"))
    nomination_closes_at = models.DateTimeField(_("nomination closes"))
    voting_opens_at = models.DateTimeField(_("voting opens"))
    voting_closes_at = models.DateTimeField(_("voting closes"), db_index=True)
    votes_per_day = models.PositiveSmallIntegerField(_("votes per resident per day"), default=3)
    # A voter's account must be at least this old when voting (0 for none).
    min_account_days = models.PositiveSmallIntegerField(_("minimum account age (days)"), default=7)
    public_weight_pct = models.PositiveSmallIntegerField(_("public weight (%)"), default=30)
    jury_weight_pct = models.PositiveSmallIntegerField(_("jury weight (%)"), default=70)
    results_published_at = models.DateTimeField(_("results published at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("award campaign")
        verbose_name_plural = _("award campaigns")
        ordering = ["-voting_opens_at", "-id"]
        permissions = [
            ("publish_results", _("Can publish a campaign's results")),
            ("review_votes", _("Can run the vote anomaly review")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(public_weight_pct=100 - F("jury_weight_pct")),
                name="zerowaste_weights_sum_to_100",
            ),
            models.CheckConstraint(
                condition=Q(nomination_closes_at__gt=F("nomination_opens_at"))
                & Q(voting_opens_at__gte=F("nomination_closes_at"))
                & Q(voting_closes_at__gt=F("voting_opens_at")),
                name="zerowaste_campaign_windows_in_order",
            ),
            models.CheckConstraint(
                condition=Q(votes_per_day__gte=1, votes_per_day__lte=20),
                name="zerowaste_votes_per_day_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title_zh

    def is_voting_open(self, at=None) -> bool:
        at = at or timezone.now()
        return self.voting_opens_at <= at < self.voting_closes_at


class Candidate(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="candidates")
    cell = models.ForeignKey("zerowaste.Cell", on_delete=models.PROTECT, related_name="candidacies")
    statement = models.CharField(_("statement"), max_length=300, blank=True)
    # The jury's score out of 100, entered by an administrator before the results.
    jury_score = models.DecimalField(
        _("jury score"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    # Filled when the results are published.
    final_votes = models.PositiveIntegerField(_("final votes"), null=True, blank=True)
    final_score = models.DecimalField(
        _("final score"), max_digits=6, decimal_places=2, null=True, blank=True
    )
    rank = models.PositiveSmallIntegerField(_("rank"), null=True, blank=True)

    class Meta:
        verbose_name = _("candidate")
        verbose_name_plural = _("candidates")
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "cell"], name="zerowaste_candidate_once"),
            models.CheckConstraint(
                condition=Q(jury_score__isnull=True) | Q(jury_score__gte=0, jury_score__lte=100),
                name="zerowaste_jury_score_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cell} ({self.campaign_id})"


class VoteReversal(models.Model):
    """One finding of the anomaly review and the votes it reversed (the audit record)."""

    class Rule(models.TextChoices):
        BURST = "burst", _("Burst of votes from new accounts")
        CLUSTER = "cluster", _("New accounts voting alike")
        SERIAL = "serial", _("Serial voting")
        MANUAL = "manual", _("Reversed by an administrator")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="reversals")
    rule = models.CharField(_("rule"), max_length=10, choices=Rule.choices)
    reason = models.CharField(_("reason"), max_length=500)
    details = models.JSONField(_("details"), default=dict)
    votes_reversed = models.PositiveIntegerField(_("votes reversed"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("vote reversal")
        verbose_name_plural = _("vote reversals")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule}: {self.votes_reversed}"


class VoteQuerySet(models.QuerySet):
    def counted(self) -> VoteQuerySet:
        return self.filter(reversal__isnull=True)


class Vote(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="votes")
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="votes")
    # Null once the voter's data was erased: the vote stays counted, tied to nobody.
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="zerowaste_votes",
        verbose_name=_("voter"),
    )
    # The voter's day in the city's time zone, the slot taken that day, and the day's slots.
    day = models.DateField(_("day"))
    slot = models.PositiveSmallIntegerField(_("slot"))
    slots = models.PositiveSmallIntegerField(_("slots that day"))
    idempotency_key = models.CharField(max_length=100, blank=True)
    # The voter's account age at the time (days): kept so the review still sees it after an
    # erasure has unlinked the voter.
    account_age_days = models.PositiveIntegerField(_("account age (days)"), default=0)
    voter_joined_on = models.DateField(_("voter joined on"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    reversal = models.ForeignKey(
        VoteReversal, null=True, blank=True, on_delete=models.PROTECT, related_name="votes"
    )

    objects = VoteQuerySet.as_manager()

    class Meta:
        verbose_name = _("vote")
        verbose_name_plural = _("votes")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["voter", "campaign", "day", "candidate"],
                name="zerowaste_one_vote_per_candidate_a_day",
            ),
            models.UniqueConstraint(
                fields=["voter", "campaign", "day", "slot"], name="zerowaste_vote_slot_once"
            ),
            models.CheckConstraint(
                condition=Q(slot__gte=1) & Q(slot__lte=F("slots")),
                name="zerowaste_vote_slot_in_range",
            ),
            models.UniqueConstraint(
                fields=["voter", "campaign", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="zerowaste_vote_key_once",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "candidate"], name="zw_vote_tally_idx"),
            models.Index(fields=["campaign", "created_at"], name="zw_vote_time_idx"),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk} for {self.candidate_id}"
