"""The database backend (the embedded default): BoardScore rows, BoardState for markers,
sequence numbers, dirty topics and flush locks. A write locks the series' rolling markers
(shared), a roll-over locks them exclusively, so the two never interleave on PostgreSQL;
SQLite serialises every write anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from carbon.leaderboards.backends import ScoreChange
from carbon.leaderboards.models import BoardScore, BoardState


def _mark_key(series: str, bucket: str) -> str:
    return f"mark:{series}:{bucket}"


class DatabaseBackend:
    def _add(self, series: str, bucket: str, member: str, delta: int) -> None:
        rows = BoardScore.objects.filter(series=series, bucket=bucket, member=member)
        if rows.update(score=F("score") + delta) == 0:
            try:
                with transaction.atomic():
                    BoardScore.objects.create(
                        series=series, bucket=bucket, member=member, score=delta
                    )
            except IntegrityError:  # a concurrent first write of the same member
                rows.update(score=F("score") + delta)
        rows.filter(score=0).delete()

    def _markers(self, series: str, starts: dict[str, date], *, exclusive: bool) -> dict:
        keys = {_mark_key(series, bucket): bucket for bucket in starts}
        for key, bucket in keys.items():
            BoardState.objects.get_or_create(key=key, defaults={"text": starts[bucket].isoformat()})
        if connection.vendor == "postgresql":
            mode = "UPDATE" if exclusive else "SHARE"
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT key, text FROM carbon_boardstate WHERE key = ANY(%s) "
                    f"ORDER BY key FOR {mode}",
                    [list(keys)],
                )
                rows = cursor.fetchall()
        else:
            rows = BoardState.objects.filter(key__in=list(keys)).values_list("key", "text")
        return {keys[key]: date.fromisoformat(text) for key, text in rows}

    def apply(
        self, *, changes: Sequence[ScoreChange], starts: dict[str, date], touch: Sequence[str] = ()
    ) -> None:
        if changes:
            self._apply(changes=changes, starts=starts)
        if touch:
            self.topics_touch(topics=touch)

    def _apply(self, *, changes: Sequence[ScoreChange], starts: dict[str, date]) -> None:
        with transaction.atomic():
            markers = {}
            for c in sorted(changes, key=lambda c: (c.series, c.member)):
                if c.series not in markers:
                    markers[c.series] = self._markers(c.series, starts, exclusive=False)
                targets = list(c.buckets) + [
                    b for b, start in markers[c.series].items() if c.day >= start
                ]
                for bucket in targets:
                    self._add(c.series, bucket, c.member, c.delta)

    def marker(self, *, series: str, bucket: str) -> date | None:
        row = BoardState.objects.filter(key=_mark_key(series, bucket)).first()
        return date.fromisoformat(row.text) if row else None

    def roll(self, *, series: str, bucket: str, new_start: date) -> None:
        with transaction.atomic():
            current = self._markers(series, {bucket: new_start}, exclusive=True)[bucket]
            if current >= new_start:
                return
            day = current
            while day < new_start:
                for member, score in BoardScore.objects.filter(
                    series=series, bucket=f"d:{day.isoformat()}"
                ).values_list("member", "score"):
                    self._add(series, bucket, member, -score)
                day += timedelta(days=1)
            BoardState.objects.filter(key=_mark_key(series, bucket)).update(
                text=new_start.isoformat()
            )

    def buckets(self, *, series: str) -> list[str]:
        return sorted(
            BoardScore.objects.filter(series=series).values_list("bucket", flat=True).distinct()
        )

    def drop(self, *, series: str, bucket: str) -> None:
        BoardScore.objects.filter(series=series, bucket=bucket).delete()

    def _rows(self, series: str, bucket: str):
        return BoardScore.objects.filter(series=series, bucket=bucket)

    def top(self, *, series: str, bucket: str, offset: int, limit: int) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        return list(
            self._rows(series, bucket)
            .order_by("-score", "-member")
            .values_list("member", "score")[offset : offset + limit]
        )

    def score(self, *, series: str, bucket: str, member: str) -> int | None:
        return (
            self._rows(series, bucket).filter(member=member).values_list("score", flat=True).first()
        )

    def count_above(self, *, series: str, bucket: str, score: int) -> int:
        return self._rows(series, bucket).filter(score__gt=score).count()

    def position(self, *, series: str, bucket: str, member: str) -> int | None:
        score = self.score(series=series, bucket=bucket, member=member)
        if score is None:
            return None
        # Two range counts on the rank index; one OR'ed filter would scan the whole board.
        rows = self._rows(series, bucket)
        return (
            rows.filter(score__gt=score).count()
            + rows.filter(score=score, member__gt=member).count()
        )

    def size(self, *, series: str, bucket: str) -> int:
        return self._rows(series, bucket).count()

    def scores(self, *, series: str, bucket: str) -> dict[str, int]:
        return dict(self._rows(series, bucket).values_list("member", "score"))

    def replace(
        self, *, series: str, buckets: dict[str, dict[str, int]], markers: dict[str, date]
    ) -> None:
        with transaction.atomic():
            BoardScore.objects.filter(series=series).delete()
            BoardScore.objects.bulk_create(
                (
                    BoardScore(series=series, bucket=bucket, member=member, score=score)
                    for bucket, rows in buckets.items()
                    for member, score in rows.items()
                    if score != 0
                ),
                batch_size=5000,
            )
            for bucket, start in markers.items():
                BoardState.objects.update_or_create(
                    key=_mark_key(series, bucket), defaults={"text": start.isoformat()}
                )

    def topics_touch(self, *, topics: Sequence[str]) -> None:
        keys = [f"dirty:{t}" for t in topics]
        existing = set(BoardState.objects.filter(key__in=keys).values_list("key", flat=True))
        BoardState.objects.bulk_create(
            [BoardState(key=k) for k in keys if k not in existing], ignore_conflicts=True
        )

    def topics_claim(self, *, interval_ms: int) -> list[tuple[str, int]]:
        now = timezone.now()
        claimed = []
        with transaction.atomic():
            dirty = BoardState.objects.filter(key__startswith="dirty:")
            if connection.vendor == "postgresql":
                dirty = dirty.select_for_update(skip_locked=True)
            for row in list(dirty):
                topic = row.key.removeprefix("dirty:")
                lock, _ = BoardState.objects.get_or_create(key=f"lock:{topic}")
                if lock.until is not None and lock.until > now:
                    continue
                BoardState.objects.filter(key=f"lock:{topic}").update(
                    until=now + timedelta(milliseconds=interval_ms)
                )
                row.delete()
                seq = 0
                if topic.startswith("board:"):
                    BoardState.objects.get_or_create(key=f"seq:{topic}")
                    state = BoardState.objects.select_for_update().get(key=f"seq:{topic}")
                    seq = state.number + 1
                    BoardState.objects.filter(pk=state.pk).update(number=seq)
                claimed.append((topic, seq))
        return claimed

    def seq(self, *, topic: str) -> int:
        row = BoardState.objects.filter(key=f"seq:{topic}").first()
        return row.number if row else 0
