"""Redis sorted sets: a set per (series, bucket), `lb:{series}:{bucket}`. Writes and
roll-overs are Lua scripts, so a write and a roll of the same rolling sum never interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import redis

from carbon.leaderboards.backends import ScoreChange

PREFIX = "lb:"
# Dirty topics nobody flushes (no ASGI worker running) fade instead of piling up.
DIRTY_TTL_SECONDS = 300

_APPLY = """
local n = tonumber(ARGV[1])
local nstarts = tonumber(ARGV[2])
local ntouch = tonumber(ARGV[3])
local starts = {}
local marks = {}  -- a series' rolling markers, read once per call
local listed = {}
local i = 4
for s = 1, nstarts do starts[s] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
for c = 1, n do
  local series, member, delta, day, fixed = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local base = 'lb:' .. series .. ':'
  local targets = {}
  for b in string.gmatch(fixed, '[^,]+') do table.insert(targets, b) end
  for s = 1, nstarts do
    local mk = base .. 'mark:' .. starts[s][1]
    local start = marks[mk]
    if not start then
      start = redis.call('GET', mk)
      if not start then redis.call('SET', mk, starts[s][2]); start = starts[s][2] end
      marks[mk] = start
    end
    if day >= start then table.insert(targets, starts[s][1]) end
  end
  for _, b in ipairs(targets) do
    local score = redis.call('ZINCRBY', base .. b, delta, member)
    if tonumber(score) == 0 then redis.call('ZREM', base .. b, member) end
    if not listed[base .. b] then  -- once per bucket per call, not per member
      redis.call('SADD', base .. 'buckets', b)
      listed[base .. b] = true
    end
  end
end
if ntouch > 0 then
  local last = i + ntouch - 1
  while i <= last do
    local upto = math.min(i + 999, last)  -- unpack has a stack limit
    redis.call('SADD', 'lb:dirty', unpack(ARGV, i, upto))
    i = upto + 1
  end
  redis.call('EXPIRE', 'lb:dirty', ARGV[i])
end
return 1
"""

_ROLL = """
local base, bucket, expected, new_start = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local mk = base .. 'mark:' .. bucket
local current = redis.call('GET', mk) or ''
if current ~= expected then return 0 end
for d = 5, #ARGV do
  local day = base .. ARGV[d]
  local rows = redis.call('ZRANGE', day, 0, -1, 'WITHSCORES')
  for r = 1, #rows, 2 do
    local score = redis.call('ZINCRBY', base .. bucket, -tonumber(rows[r + 1]), rows[r])
    if tonumber(score) == 0 then redis.call('ZREM', base .. bucket, rows[r]) end
  end
end
redis.call('SET', mk, new_start)
return 1
"""

_CLAIM = """
local interval = tonumber(ARGV[1])
local claimed = {}
for _, topic in ipairs(redis.call('SMEMBERS', 'lb:dirty')) do
  if redis.call('SET', 'lb:lock:' .. topic, '1', 'NX', 'PX', interval) then
    redis.call('SREM', 'lb:dirty', topic)
    local seq = 0
    if string.sub(topic, 1, 6) == 'board:' then seq = redis.call('INCR', 'lb:seq:' .. topic) end
    table.insert(claimed, topic)
    table.insert(claimed, seq)
  end
end
return claimed
"""


#: Seconds to connect to Redis, and to wait for one answer.
REDIS_CONNECT_TIMEOUT = 2
REDIS_READ_TIMEOUT = 30


class RedisBackend:
    def __init__(self, url: str) -> None:
        # Timeouts: a Redis that stops answering (a network cut) fails the call instead of
        # hanging it; the outbox sends while holding its lock, and every board read and the
        # process's exit flush wait on that lock. Generous for the read: a rebuild's script
        # runs long on a big board.
        self.redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_READ_TIMEOUT,
        )
        self._apply = self.redis.register_script(_APPLY)
        self._roll = self.redis.register_script(_ROLL)
        self._claim = self.redis.register_script(_CLAIM)

    @staticmethod
    def _key(series: str, bucket: str) -> str:
        return f"{PREFIX}{series}:{bucket}"

    def apply(
        self, *, changes: Sequence[ScoreChange], starts: dict[str, date], touch: Sequence[str] = ()
    ) -> None:
        if not changes:
            self.topics_touch(topics=touch)
            return
        args: list = [len(changes), len(starts), len(touch)]
        for bucket, start in starts.items():
            args += [bucket, start.isoformat()]
        for c in changes:
            args += [c.series, c.member, c.delta, c.day.isoformat(), ",".join(c.buckets)]
        if touch:
            args += [*touch, DIRTY_TTL_SECONDS]
        # One command for the write and the touch (EVALSHA; the script loads itself again
        # if the server lost it).
        self._apply(args=args)

    def put(self, *, series: str, bucket: str, scores: dict[str, int]) -> None:
        key = self._key(series, bucket)
        pipe = self.redis.pipeline()  # MULTI/EXEC: readers never see half of it
        for member, score in scores.items():
            if score:
                pipe.zadd(key, {member: score})
            else:
                pipe.zrem(key, member)
        pipe.sadd(f"{PREFIX}{series}:buckets", bucket)
        pipe.execute()

    def marker(self, *, series: str, bucket: str) -> date | None:
        raw = self.redis.get(f"{PREFIX}{series}:mark:{bucket}")
        return date.fromisoformat(raw) if raw else None

    def roll(self, *, series: str, bucket: str, new_start: date) -> None:
        for _attempt in range(5):
            current = self.marker(series=series, bucket=bucket)
            if current is not None and current >= new_start:
                return
            days = []
            if current is not None:
                day = current
                while day < new_start:
                    days.append(f"d:{day.isoformat()}")
                    day += timedelta(days=1)
            expected = current.isoformat() if current else ""
            args = [f"{PREFIX}{series}:", bucket, expected, new_start.isoformat(), *days]
            if self._roll(args=args):
                return
        raise RuntimeError(f"could not roll {series}/{bucket}: the marker kept moving")

    def buckets(self, *, series: str) -> list[str]:
        return sorted(self.redis.smembers(f"{PREFIX}{series}:buckets"))

    def drop(self, *, series: str, bucket: str) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(self._key(series, bucket))
        pipe.srem(f"{PREFIX}{series}:buckets", bucket)
        pipe.execute()

    def top(self, *, series: str, bucket: str, offset: int, limit: int) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        rows = self.redis.zrevrange(
            self._key(series, bucket), offset, offset + limit - 1, withscores=True
        )
        return [(member, int(score)) for member, score in rows]

    def around(
        self, *, series: str, bucket: str, member: str, before: int, after: int
    ) -> tuple[list[tuple[str, int]], int] | None:
        position = self.position(series=series, bucket=bucket, member=member)
        if position is None:
            return None
        offset = max(0, position - max(0, before))
        rows = self.top(
            series=series, bucket=bucket, offset=offset, limit=position - offset + 1 + max(0, after)
        )
        return rows, offset

    def score(self, *, series: str, bucket: str, member: str) -> int | None:
        value = self.redis.zscore(self._key(series, bucket), member)
        return None if value is None else int(value)

    def count_above(self, *, series: str, bucket: str, score: int) -> int:
        return self.redis.zcount(self._key(series, bucket), f"({score}", "+inf")

    def position(self, *, series: str, bucket: str, member: str) -> int | None:
        return self.redis.zrevrank(self._key(series, bucket), member)

    def size(self, *, series: str, bucket: str) -> int:
        return self.redis.zcard(self._key(series, bucket))

    def scores(self, *, series: str, bucket: str) -> dict[str, int]:
        return {
            m: int(s)
            for m, s in self.redis.zrange(self._key(series, bucket), 0, -1, withscores=True)
        }

    def replace(
        self, *, series: str, buckets: dict[str, dict[str, int]], markers: dict[str, date]
    ) -> None:
        # Built under temporary names, then renamed in one MULTI: readers see the old series
        # or the new one, never half of it.
        token = f"rebuild{id(buckets)}"
        pipe = self.redis.pipeline(transaction=False)
        for bucket, rows in buckets.items():
            tmp = self._key(series, f"{bucket}~{token}")
            pipe.delete(tmp)
            items = list(rows.items())
            for start in range(0, len(items), 10_000):
                chunk = {m: s for m, s in items[start : start + 10_000] if s != 0}
                if chunk:
                    pipe.zadd(tmp, chunk)
        pipe.execute()
        old = self.buckets(series=series)
        tx = self.redis.pipeline(transaction=True)
        for bucket in old:
            if bucket not in buckets:
                tx.delete(self._key(series, bucket))
        tx.delete(f"{PREFIX}{series}:buckets")
        for bucket, rows in buckets.items():
            tmp = self._key(series, f"{bucket}~{token}")
            if any(s != 0 for s in rows.values()):
                tx.rename(tmp, self._key(series, bucket))
            else:
                tx.delete(self._key(series, bucket))
            tx.sadd(f"{PREFIX}{series}:buckets", bucket)
        for bucket, start in markers.items():
            tx.set(f"{PREFIX}{series}:mark:{bucket}", start.isoformat())
        tx.execute()

    def topics_touch(self, *, topics: Sequence[str]) -> None:
        if not topics:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(f"{PREFIX}dirty", *topics)
        pipe.expire(f"{PREFIX}dirty", DIRTY_TTL_SECONDS)
        pipe.execute()

    def topics_claim(self, *, interval_ms: int) -> list[tuple[str, int]]:
        flat = self._claim(args=[max(1, interval_ms)])
        return [(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]

    def seq(self, *, topic: str) -> int:
        return int(self.redis.get(f"{PREFIX}seq:{topic}") or 0)

    def flush_all(self) -> None:
        """Tests: forget every board (only this backend's keys)."""
        keys = list(self.redis.scan_iter(f"{PREFIX}*", count=1000))
        for start in range(0, len(keys), 1000):
            self.redis.delete(*keys[start : start + 1000])
