"""The database backend's storage: one row per (series, bucket, member), and a small
key-value table for what the engine coordinates across processes (rolling-window start
markers, sequence numbers, dirty topics and flush locks)."""

from __future__ import annotations

from django.db import models


class BoardScore(models.Model):
    series = models.CharField(max_length=64)
    bucket = models.CharField(max_length=16)
    member = models.CharField(max_length=32)
    score = models.BigIntegerField()

    class Meta:
        app_label = "carbon"
        constraints = [
            models.UniqueConstraint(
                fields=["series", "bucket", "member"], name="unique_board_score_member"
            )
        ]
        # Top N and ranks read a board in this order (ties: member, highest first).
        indexes = [
            models.Index(
                "series",
                "bucket",
                models.F("score").desc(),
                models.F("member").desc(),
                name="board_score_rank_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.series}/{self.bucket}/{self.member}: {self.score}"


class BoardState(models.Model):
    key = models.CharField(max_length=200, primary_key=True)
    number = models.BigIntegerField(default=0)
    text = models.CharField(max_length=64, blank=True)
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "carbon"

    def __str__(self) -> str:
        return f"{self.key}={self.number or self.text}"


class BoardBand(models.Model):
    """How many members of a board have a score in each band (carbon.leaderboards.bands): a
    rank is the members of the bands above plus a count inside the member's own band, so
    it costs the same for the last of a million as for the first. Kept by the database
    backend in the transaction of every score write."""

    series = models.CharField(max_length=64)
    bucket = models.CharField(max_length=16)
    band = models.IntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        app_label = "carbon"
        constraints = [
            models.UniqueConstraint(fields=["series", "bucket", "band"], name="unique_board_band")
        ]

    def __str__(self) -> str:
        return f"{self.series}/{self.bucket}/band {self.band}: {self.count}"
