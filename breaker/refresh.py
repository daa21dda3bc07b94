"""The worker's one round trip per ``refresh_interval_s`` (protocol v2): a Lua script, run with EVALSHA.

One script call does what a worker needs from Redis, atomically and in the server's time:
- reads ``TIME`` (the worker learns its offset to the server from it);
- observes the panic clock when asked: first writer wins, a value that is not a usable start (garbage,
  NaN, inf, <= 0, another type, more than 60 s ahead of ``now`` or more than the maximum panic age
  behind it) is replaced by ``now`` in the same step,
  the expiry is (re)set; so no WATCH is needed, and no bad value ever has its expiry renewed;
- runs the schedule step (``breaker.schedule.FRAGMENT``) on server time: at a planned window's start it writes
  the window as the override, so the read below already sees it (SPEC section 14);
- reads the override, at most ``MAX_RAW_BYTES`` of it;
- writes the worker's heartbeat field, ``seen`` filled in by the server, with a per-field expiry where the
  server has ``HEXPIRE`` (Valkey 8+/Redis 7.4+; elsewhere readers prune).
Every reply is short whatever is stored, so with ``wire.call`` the whole round trip has one deadline.

Why a script rather than MULTI returning TIME: the replace-if-unusable decision and the 60 s rule need the
stored value, which a MULTI cannot branch on without a WATCH retry (a second round trip, and a command an
ACL user may lack); and a script's reply is bounded by construction. Measured with ``make bench``
(``bench/protocol.py``): an EVALSHA costs about what the old four-command MULTI did on loopback.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, NamedTuple

from .override import MAX_RAW_BYTES
from .schedule import FRAGMENT as SCHEDULE_FRAGMENT

MAX_AHEAD_S = 60
AUDIT_MAXLEN = 10_000  # the audit stream's trim length (``breaker.ops.audit.DEFAULT_MAXLEN``)
MAX_START_BYTES = 64

SCRIPT = SCHEDULE_FRAGMENT + """
local t = redis.call('TIME')
local server_text = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local now_text = server_text
if ARGV[2] ~= '' then now_text = ARGV[2] end
local now = tonumber(now_text)
local ascii = ARGV[9] == '1'
local function shown(text)
  if ascii then return (string.gsub(text, '[^\\32-\\126]', '?')) end
  return text
end
local start, created, replaced, epoch = false, 0, false, false
if ARGV[1] == '1' then
  local ttl = tonumber(ARGV[3])
  local len = redis.pcall('STRLEN', KEYS[1])
  local kind, raw, value = 'string', false, nil
  if type(len) == 'table' then
    kind = redis.call('TYPE', KEYS[1])['ok']  -- WRONGTYPE: a hash, a list...
  elseif len == 0 then
    kind, raw = redis.call('TYPE', KEYS[1])['ok'], ''  -- no key, or an empty string
  elseif len <= tonumber(ARGV[10]) then
    raw = redis.call('GET', KEYS[1])
    if string.match(raw, '^%s*%+?[%d%.]+[eE]?[%+%-]?%d*%s*$') then value = tonumber(raw) end
  else
    raw = redis.call('GETRANGE', KEYS[1], 0, 31) .. '...'
  end
  if kind == 'none' then
    redis.call('SET', KEYS[1], now_text, 'EX', ttl)
    start, created = now_text, 1
  elseif value and value == value and value > 0 and value < math.huge and value <= now + tonumber(ARGV[8])
      and value >= now - tonumber(ARGV[12]) then
    redis.call('EXPIRE', KEYS[1], ttl)
    start = raw
  else
    if kind == 'string' then replaced = (string.gsub(string.sub(raw, 1, 64), '[^\\32-\\126]', '?'))
    else replaced = '<' .. kind .. '>' end
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[1], now_text, 'EX', ttl)
    start, created = now_text, 1
  end
  redis.call('SET', KEYS[2], now_text, 'EX', ttl)
  local known = tonumber(ARGV[14]) or 0
  if created == 1 then
    local bumped = redis.pcall('INCR', KEYS[6])
    if type(bumped) ~= 'number' or bumped <= known then  -- garbage, or a counter a failover set back
      bumped = known + 1
      redis.call('DEL', KEYS[6])
      redis.call('SET', KEYS[6], bumped)
    end
    epoch = bumped
  else
    local stored = redis.pcall('GET', KEYS[6])
    epoch = type(stored) == 'string' and tonumber(stored) or 0
    if epoch < known then  -- a counter set back by a failover: the next start must still get a new epoch
      epoch = known
      redis.call('SET', KEYS[6], known)
    end
  end
end
local sched = {false, false}
if ARGV[22] ~= '' then
  sched = schedule_step_safe(KEYS[7], KEYS[3], KEYS[8], tonumber(server_text), server_text, tonumber(ARGV[22]),
    tonumber(ARGV[23]))
end
local override, override_len = false, 0
local read = redis.pcall('GETRANGE', KEYS[3], 0, tonumber(ARGV[11]) - 1)
if type(read) == 'table' then
  override, override_len = '<' .. redis.call('TYPE', KEYS[3])['ok'] .. '>', -1
elseif read ~= '' then
  override, override_len = shown(read), string.len(read)
end
local skew = false
if ARGV[13] ~= '' then skew = tonumber(ARGV[13]) - (tonumber(t[1]) + tonumber(t[2]) / 1e6) end
local beat = 0
if ARGV[5] ~= '' then
  local tail = '}'
  if skew then tail = ',"skew_s":' .. string.format('%.3f', skew) .. '}' end
  local written = redis.pcall('HSET', KEYS[4], ARGV[4], ARGV[5] .. server_text .. tail)
  if type(written) == 'table' and written['err'] then
    beat = -2
  elseif ARGV[7] == '1' then
    local expiring = redis.pcall('HEXPIRE', KEYS[4], tonumber(ARGV[6]), 'FIELDS', 1, ARGV[4])
    if type(expiring) == 'table' and expiring['err'] then beat = -1 else beat = 2 end
  else
    beat = 1
  end
end
local aggregated = 0
if beat > 0 and ARGV[15] ~= '' then
  local done = pcall(function()
    local agg, agg_ttl = KEYS[5] .. ':' .. math.floor(tonumber(t[1]) / tonumber(ARGV[19])), tonumber(ARGV[20])
    if redis.call('HINCRBY', agg, 'beats', 1) == 1 then redis.call('EXPIRE', agg, agg_ttl) end
    for mode, n in string.gmatch(ARGV[16], '(%S+) (%d+)') do redis.call('HINCRBY', agg, 'calls:' .. mode, n) end
    if ARGV[17] ~= '0' then redis.call('HINCRBY', agg, 'fail_safe', ARGV[17]) end
    local distinct = {agg .. ':' .. ARGV[15]}
    for stakes, tier in string.gmatch(ARGV[18], '(%S+) (%d+)') do
      distinct[#distinct + 1] = agg .. ':tier:' .. stakes .. ':' .. tier
    end
    for _, key in ipairs(distinct) do
      redis.call('PFADD', key, ARGV[4])
      redis.call('EXPIRE', key, agg_ttl)
    end
    if ARGV[15] == 'panic' and ARGV[21] == '0' then redis.call('HSET', agg, 'panic_seen', server_text) end
    if ARGV[14] ~= '0' and ARGV[15] == 'panic' then redis.call('HINCRBY', agg, 'epoch:' .. ARGV[14], 1) end
    if skew then
      local bounds = redis.call('HMGET', agg, 'skew_max', 'skew_min')
      local high, low = tonumber(bounds[1]), tonumber(bounds[2])
      if not high or skew > high then redis.call('HSET', agg, 'skew_max', string.format('%.3f', skew)) end
      if not low or skew < low then redis.call('HSET', agg, 'skew_min', string.format('%.3f', skew)) end
    end
  end)
  if done then aggregated = 1 else aggregated = -1 end
end
return {t[1], t[2], start, created, replaced, override, override_len, beat, epoch, aggregated, sched[1], sched[2]}
"""
SCRIPT_BYTES = SCRIPT.encode()
SCRIPT_SHA = hashlib.sha1(SCRIPT_BYTES).hexdigest().encode()

BEAT_NOT_SENT, BEAT_WRITTEN, BEAT_EXPIRING, BEAT_NO_HEXPIRE, BEAT_FAILED = 0, 1, 2, -1, -2
AGG_NOT_SENT, AGG_WRITTEN, AGG_FAILED = 0, 1, -1

#: The script's interface, in one place (``arguments`` builds it, ``parse_reply`` reads it; nothing else knows
#: positions).
#:
#: KEYS: 1 panic_start_ts, 2 panic_last_seen_ts, 3 panic_override, 4 workers, 5 fleet_agg (the prefix of the
#: per-bucket aggregate keys, ``<KEYS[5]>:<bucket>``: same hash slot), 6 panic_epoch, 7 override_schedule,
#: 8 audit (the schedule fragment's, ``breaker.schedule``).
#: ARGV: 1 observe (1/0), 2 now ('' = server time), 3 clock ttl, 4 worker id, 5 beat text up to ``"seen":``
#: ('' = no beat), 6 beat ttl, 7 hexpire (1/0), 8 max ahead s, 9 ascii only (1/0), 10 max start bytes,
#: 11 max override bytes + 1, 12 max panic age s, 13 the worker's local clock ('' = unknown; skew), 14 the
#: worker's known epoch (0: none), 15 aggregate state (panic/calm/fail_safe; '' = do not aggregate),
#: 16 calls ``"MODE n MODE n"``, 17 fail-safe count, 18 tiers ``"stakes tier stakes tier"``, 19 bucket
#: seconds, 20 aggregate key ttl, 21 honouring an override (1/0), 22 the worker's maximum override seconds
#: ('' = do not run the schedule step), 23 the audit stream's maxlen.
#: Reply: seconds, microseconds, start, created (1/0), replaced, override, override length, beat (BEAT_*),
#: epoch (observing calls: the panic's epoch; else nil), aggregated (AGG_*), schedule status (``breaker.schedule``
#: NONE/APPLIED/IN_FORCE/MANUAL/SKIPPED/INVALID/ERROR; nil when not run), the window's id (nil: none).
#: The schedule step runs on the server's TIME (never ARGV 2) after the clock and before the override read, so
#: the round trip that materializes a window reads the override it has just written.
KEY_COUNT = 8
ARGV_COUNT = 23
REPLY_LENGTH = 12

#: Aggregate bucket length (seconds of server time): one bucket holds every beat of a worker at
#: ``refresh_interval_s`` <= AGG_BUCKET_S at least once. Readers read the last complete bucket(s).
AGG_BUCKET_S = 10


def agg_ttl_s(interval_s: float) -> int:
    """How long a bucket's keys live: the reader's window and the one before it (stale), plus two buckets."""
    return (2 * math.ceil(max(interval_s, 1.0) / AGG_BUCKET_S) + 2) * AGG_BUCKET_S


class Reply(NamedTuple):
    """What one round trip learned."""

    server_now: float
    start_raw: bytes | None  # the agreed start as stored (None when the call did not observe)
    initialized: bool  # this call wrote the start (first writer, or it replaced an unusable value)
    replaced: str | None  # a printable description of the unusable value it replaced
    override_raw: bytes | None
    override_len: int  # bytes read at the override key, at most MAX_RAW_BYTES + 1 (-1: another type)
    beat: int  # BEAT_*
    epoch: int | None = None  # the panic's epoch (``{prefix}panic_epoch``) when the call observed
    aggregated: int = AGG_NOT_SENT
    schedule: str | None = None  # the schedule step's status (``breaker.schedule``), None when it did not run
    window_id: str | None = None  # the window that status is about


def _tokens(counts: dict[str, int]) -> bytes:
    """``"key n key n"`` for the script's gmatch: keys without whitespace, counts as whole numbers."""
    return " ".join(f"{'_'.join(str(key).split()) or '_'} {int(n)}" for key, n in counts.items() if n >= 0).encode()


def arguments(
    keys: tuple[bytes, ...],
    *,
    observe: bool,
    now: str,
    ttl_s: int,
    worker_id: str,
    beat: str,
    beat_ttl_s: int,
    hexpire: bool,
    ascii_only: bool,
    max_age_s: float,
    local_now: str = "",
    epoch: int = 0,
    state: str = "",
    calls: dict[str, int] | None = None,
    fail_safe: int = 0,
    tiers: dict[str, int] | None = None,
    overridden: bool = False,
    interval_s: float = 1.0,
    max_override_s: float | None = None,
    audit_maxlen: int = AUDIT_MAXLEN,
) -> list[bytes]:
    """EVALSHA's arguments after the sha: the key count, the keys, then ARGV in the script's order."""
    if len(keys) != KEY_COUNT:
        raise ValueError(f"the round-trip script takes {KEY_COUNT} keys, got {len(keys)}")
    argv = [
        b"1" if observe else b"0",
        now.encode(),
        b"%d" % ttl_s,
        worker_id.encode(),
        beat.encode(),
        b"%d" % beat_ttl_s,
        b"1" if hexpire else b"0",
        b"%d" % MAX_AHEAD_S,
        b"1" if ascii_only else b"0",
        b"%d" % MAX_START_BYTES,
        b"%d" % (MAX_RAW_BYTES + 1),  # one byte more than allowed, so a too-long value shows as too long
        repr(float(max_age_s)).encode(),  # a start older than this behind now is replaced (SPEC 3 v3)
        local_now.encode(),
        b"%d" % max(0, int(epoch)),
        state.encode() if beat else b"",
        _tokens(calls) if calls else b"",
        b"%d" % max(0, int(fail_safe)),
        _tokens(tiers) if tiers else b"",
        b"%d" % AGG_BUCKET_S,
        b"%d" % agg_ttl_s(interval_s),
        b"1" if overridden else b"0",
        b"" if max_override_s is None else repr(float(max_override_s)).encode(),  # None: no schedule step
        b"%d" % max(1, int(audit_maxlen)),
    ]
    return [b"%d" % KEY_COUNT, *keys, *argv]


def _bytes(value: Any) -> bytes | None:
    if value is None or value is False:
        return None
    return value.encode() if isinstance(value, str) else bytes(value)


def parse_reply(reply: Any) -> Reply:
    """The script's reply as a ``Reply``; ``ValueError`` for anything else (a proxy out of step)."""
    if not isinstance(reply, list) or len(reply) != REPLY_LENGTH:
        raise ValueError(f"unexpected reply to the round-trip script: {str(reply)[:80]}")
    (seconds, micros, start, created, replaced, override, override_len, beat, epoch, aggregated, status,
     window_id) = reply
    replaced_bytes = _bytes(replaced)
    status_bytes, window_bytes = _bytes(status), _bytes(window_id)
    return Reply(
        server_now=int(seconds) + int(micros) / 1e6,
        start_raw=_bytes(start),
        initialized=bool(created),
        replaced=replaced_bytes.decode("ascii", "replace") if replaced_bytes is not None else None,
        override_raw=_bytes(override),
        override_len=int(override_len),
        beat=int(beat),
        epoch=int(epoch) if epoch is not None else None,
        aggregated=int(aggregated),
        schedule=status_bytes.decode("ascii", "replace") if status_bytes is not None else None,
        window_id=window_bytes.decode("utf-8", "replace") if window_bytes is not None else None,
    )
