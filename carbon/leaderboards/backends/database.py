"""The database backend (the embedded default): BoardScore rows, BoardState for markers,
sequence numbers, dirty topics and flush locks. A write locks the series' rolling markers
(shared), a roll-over locks them exclusively, so the two never interleave on PostgreSQL;
SQLite serialises every write anyway.

Ranks: BoardBand counts the members per score band (carbon.leaderboards.bands), kept in the
transaction of every write, so a rank is a sum over the bands above (a few hundred rows at
most) plus two index range counts inside the member's own band, not a count of everyone
above (O(rank): 200-400 ms for the tail of a million). A writer adds its band changes at
the end of its transaction in one statement, in key order, so two writers never deadlock on
them. `bands_rebuild` recounts a series' bands from its rows (after a bulk load).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from carbon.leaderboards.backends import ScoreChange
from carbon.leaderboards.bands import band_bounds, score_band
from carbon.leaderboards.models import BoardBand, BoardScore, BoardState


def _mark_key(series: str, bucket: str) -> str:
    return f"mark:{series}:{bucket}"


class DatabaseBackend:
    @staticmethod
    def _moved(bands: Counter, series: str, bucket: str, old: int, new: int) -> None:
        if old:
            bands[(series, bucket, score_band(old))] -= 1
        if new:
            bands[(series, bucket, score_band(new))] += 1

    @staticmethod
    def _bands_add(bands: Counter) -> None:
        """Apply the band changes of this transaction: one statement, in key order."""
        rows = [(key, n) for key, n in sorted(bands.items()) if n]
        if not rows:
            return
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        params = [v for (series, bucket, band), n in rows for v in (series, bucket, band, n)]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO carbon_boardband (series, bucket, band, count) VALUES "
                f"{values} ON CONFLICT (series, bucket, band) "
                "DO UPDATE SET count = carbon_boardband.count + excluded.count",
                params,
            )

    def bands_rebuild(self, *, series: str) -> None:
        """Recount a series' bands from its rows (after rows were written around the
        backend, as a bulk load does)."""
        with transaction.atomic():
            counts: Counter = Counter()
            rows = BoardScore.objects.filter(series=series).values_list("bucket", "score")
            for bucket, score in rows.iterator(chunk_size=50_000):
                if score:
                    counts[(bucket, score_band(score))] += 1
            BoardBand.objects.filter(series=series).delete()
            BoardBand.objects.bulk_create(
                (
                    BoardBand(series=series, bucket=b, band=band, count=n)
                    for (b, band), n in counts.items()
                ),
                batch_size=5000,
            )

    def _markers(self, series: str, starts: dict[str, date], *, exclusive: bool) -> dict:
        found = self._markers_of({series: starts}, exclusive=exclusive)
        return found.get(series, {})

    @staticmethod
    def _markers_of(
        starts_of: dict[str, dict[str, date]], *, exclusive: bool
    ) -> dict[str, dict[str, date]]:
        """series -> {rolling bucket: start} for several series in one read (locked, shared
        or exclusive, on PostgreSQL); a missing marker is created with its start first."""
        keys = {
            _mark_key(series, bucket): (series, bucket, start)
            for series, starts in starts_of.items()
            for bucket, start in starts.items()
        }
        if not keys:
            return {}

        def read() -> list[tuple[str, str]]:
            if connection.vendor == "postgresql":
                mode = "UPDATE" if exclusive else "SHARE"
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT key, text FROM carbon_boardstate WHERE key = ANY(%s) "
                        f"ORDER BY key FOR {mode}",
                        [sorted(keys)],
                    )
                    return cursor.fetchall()
            return list(BoardState.objects.filter(key__in=list(keys)).values_list("key", "text"))

        rows = read()
        if len(rows) < len(keys):  # a first write since the series was built: create them
            have = {key for key, _text in rows}
            BoardState.objects.bulk_create(
                [
                    BoardState(key=key, text=start.isoformat())
                    for key, (_series, _bucket, start) in sorted(keys.items())
                    if key not in have
                ],
                ignore_conflicts=True,
            )
            rows = read()
        found: dict[str, dict[str, date]] = {}
        for key, text in rows:
            series, bucket, _start = keys[key]
            found.setdefault(series, {})[bucket] = date.fromisoformat(text)
        return found

    def apply(
        self, *, changes: Sequence[ScoreChange], starts: dict[str, date], touch: Sequence[str] = ()
    ) -> None:
        if changes:
            self._apply(changes=changes, starts=starts)
        if touch:
            self.topics_touch(topics=touch)

    def _apply(self, *, changes: Sequence[ScoreChange], starts: dict[str, date]) -> None:
        """A fixed number of statements whatever the changes: the markers of every series
        (one read), the scores (one upsert per thousand rows), the rows brought to 0 (one
        delete per thousand), the bands (one)."""
        with transaction.atomic():
            markers = self._markers_of({c.series: starts for c in changes}, exclusive=False)
            deltas: dict[tuple[str, str, str], int] = {}
            for c in changes:
                rolling = [b for b, start in markers.get(c.series, {}).items() if c.day >= start]
                for bucket in (*c.buckets, *rolling):
                    key = (c.series, bucket, c.member)
                    deltas[key] = deltas.get(key, 0) + c.delta
            self._scores_add(deltas)

    def _scores_add(self, deltas: dict[tuple[str, str, str], int]) -> None:
        """Add (series, bucket, member) -> delta to the scores, set-based: the scores in one
        upsert per thousand rows, the rows brought to 0 deleted in one statement per
        thousand, the bands in one. In the caller's transaction."""
        # In key order, so two writers take the rows' locks in the same order.
        rows = sorted((key, delta) for key, delta in deltas.items() if delta)
        bands: Counter = Counter()
        emptied = []
        for start in range(0, len(rows), 1000):
            part = rows[start : start + 1000]
            for series, bucket, member, new in self._upsert(part):
                old = new - deltas[(series, bucket, member)]
                self._moved(bands, series, bucket, old, new)
                if new == 0:
                    emptied.append((series, bucket, member))
        for start in range(0, len(emptied), 1000):
            self._delete_emptied(emptied[start : start + 1000])
        self._bands_add(bands)

    @staticmethod
    def _delete_emptied(keys: list[tuple[str, str, str]]) -> None:
        """Delete rows this transaction brought to 0 (and locked doing so): one statement."""
        values = ", ".join(["(%s, %s, %s)"] * len(keys))
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM carbon_boardscore WHERE score = 0 AND "
                f"(series, bucket, member) IN (VALUES {values})",
                [v for key in keys for v in key],
            )

    @staticmethod
    def _upsert(rows: list[tuple[tuple[str, str, str], int]]) -> list[tuple[str, str, str, int]]:
        """Add each delta to its row, creating the rows not there yet; the new scores. One
        statement: a first write of a member racing another's waits on the unique index and
        then adds to the row the other inserted."""
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        params = [
            v for (series, bucket, member), delta in rows for v in (series, bucket, member, delta)
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO carbon_boardscore (series, bucket, member, score) VALUES "
                f"{values} ON CONFLICT (series, bucket, member) "
                "DO UPDATE SET score = carbon_boardscore.score + excluded.score "
                "RETURNING series, bucket, member, score",
                params,
            )
            return cursor.fetchall()

    def put(self, *, series: str, bucket: str, scores: dict[str, int]) -> None:
        with transaction.atomic():
            bands: Counter = Counter()
            for member in sorted(scores):  # a fixed order: two puts cannot deadlock
                score = scores[member]
                rows = BoardScore.objects.filter(series=series, bucket=bucket, member=member)
                old = rows.select_for_update().values_list("score", flat=True).first() or 0
                if old == score:
                    continue
                if not score:
                    rows.delete()
                elif old:
                    rows.update(score=score)
                else:
                    try:
                        with transaction.atomic():
                            BoardScore.objects.create(
                                series=series, bucket=bucket, member=member, score=score
                            )
                    except IntegrityError:  # a concurrent first write: take its value
                        old = rows.select_for_update().values_list("score", flat=True).get()
                        rows.update(score=score)
                self._moved(bands, series, bucket, old, score)
            self._bands_add(bands)

    def marker(self, *, series: str, bucket: str) -> date | None:
        row = BoardState.objects.filter(key=_mark_key(series, bucket)).first()
        return date.fromisoformat(row.text) if row else None

    def roll(self, *, series: str, bucket: str, new_start: date) -> None:
        with transaction.atomic():
            current = self._markers(series, {bucket: new_start}, exclusive=True)[bucket]
            if current >= new_start:
                return
            # The days that leave the window, read in one statement and taken off the sum
            # set-based, as a write adds: a fixed number of statements however many
            # members those days hold.
            days = []
            day = current
            while day < new_start:
                days.append(f"d:{day.isoformat()}")
                day += timedelta(days=1)
            deltas: dict[tuple[str, str, str], int] = {}
            for member, score in BoardScore.objects.filter(
                series=series, bucket__in=days
            ).values_list("member", "score"):
                key = (series, bucket, member)
                deltas[key] = deltas.get(key, 0) - score
            self._scores_add(deltas)
            BoardState.objects.filter(key=_mark_key(series, bucket)).update(
                text=new_start.isoformat()
            )

    def buckets(self, *, series: str) -> list[str]:
        return sorted(
            BoardScore.objects.filter(series=series).values_list("bucket", flat=True).distinct()
        )

    def drop(self, *, series: str, bucket: str) -> None:
        with transaction.atomic():
            BoardScore.objects.filter(series=series, bucket=bucket).delete()
            BoardBand.objects.filter(series=series, bucket=bucket).delete()

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
        """The members of the bands above the score's, plus those above it in its band (an
        index range count no wider than the band)."""
        band = score_band(score) if score else 0
        _low, high = band_bounds(band) if score else (0, 0)
        above = BoardBand.objects.filter(series=series, bucket=bucket, band__gt=band)
        in_band = self._rows(series, bucket).filter(score__gt=score, score__lte=high)
        return (above.aggregate(n=Sum("count"))["n"] or 0) + in_band.count()

    def position(self, *, series: str, bucket: str, member: str) -> int | None:
        score = self.score(series=series, bucket=bucket, member=member)
        if score is None:
            return None
        # Ties: among equal scores the higher member key comes first (an index range count).
        ties = self._rows(series, bucket).filter(score=score, member__gt=member).count()
        return self.count_above(series=series, bucket=bucket, score=score) + ties

    def around(
        self, *, series: str, bucket: str, member: str, before: int, after: int
    ) -> tuple[list[tuple[str, int]], int] | None:
        """The rows from `before` above the member to `after` below it, and the position of
        the first: read by key from the member's row (an OFFSET would walk every row above)."""
        before, after = max(0, before), max(0, after)
        score = self.score(series=series, bucket=bucket, member=member)
        if score is None:
            return None
        position = self.position(series=series, bucket=bucket, member=member)
        rows = self._rows(series, bucket)
        fields = ("member", "score")
        # Each half as two plain ranges of the rank index (a tie range and a score range):
        # an OR of the two would not bound the index scan.
        above = list(
            rows.filter(score=score, member__gt=member)
            .order_by("member")
            .values_list(*fields)[:before]
        )
        if len(above) < before:
            above += list(
                rows.filter(score__gt=score)
                .order_by("score", "member")
                .values_list(*fields)[: before - len(above)]
            )
        below = list(
            rows.filter(score=score, member__lte=member)
            .order_by("-member")
            .values_list(*fields)[: 1 + after]
        )
        if len(below) < 1 + after:
            below += list(
                rows.filter(score__lt=score)
                .order_by("-score", "-member")
                .values_list(*fields)[: 1 + after - len(below)]
            )
        return [*reversed(above), *below], position - len(above)

    def size(self, *, series: str, bucket: str) -> int:
        found = BoardBand.objects.filter(series=series, bucket=bucket).aggregate(n=Sum("count"))
        return found["n"] or 0

    def scores(self, *, series: str, bucket: str) -> dict[str, int]:
        return dict(self._rows(series, bucket).values_list("member", "score"))

    def replace(
        self, *, series: str, buckets: dict[str, dict[str, int]], markers: dict[str, date]
    ) -> None:
        with transaction.atomic():
            BoardScore.objects.filter(series=series).delete()
            BoardBand.objects.filter(series=series).delete()
            counts = Counter(
                (bucket, score_band(score))
                for bucket, rows in buckets.items()
                for score in rows.values()
                if score != 0
            )
            BoardBand.objects.bulk_create(
                (
                    BoardBand(series=series, bucket=b, band=band, count=n)
                    for (b, band), n in counts.items()
                ),
                batch_size=5000,
            )
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
        """One statement. No look-up first: a dirty row seen there could be deleted by a
        claim before this commits, and the change would go unpushed; an insert that meets
        a row being claimed waits for the claim and then inserts it again."""
        keys = sorted({f"dirty:{t}" for t in topics})
        if not keys:
            return
        values = ", ".join(["(%s, 0, '')"] * len(keys))
        with connection.cursor() as cursor:  # one round trip (bulk_create adds BEGIN/COMMIT)
            cursor.execute(
                f"INSERT INTO carbon_boardstate (key, number, text) VALUES {values} "
                "ON CONFLICT (key) DO NOTHING",
                keys,
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
