"""The worker's one round trip per ``refresh_interval_s`` (protocol v2): a Lua script, run with EVALSHA.

One script call does what a worker needs from Redis, atomically and in the server's time:
- reads ``TIME`` (the worker learns its offset to the server from it);
- observes the panic clock when asked: first writer wins, a value that is not a usable start (garbage,
  NaN, inf, <= 0, another type, more than 60 s ahead of ``now`` or more than the maximum panic age
  behind it) is replaced by ``now`` in the same step,
  the expiry is (re)set; so no WATCH is needed, and no bad value ever has its expiry renewed;
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
from typing import Any, NamedTuple

from .override import MAX_RAW_BYTES

MAX_AHEAD_S = 60
MAX_START_BYTES = 64

SCRIPT = """
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
local start, created, replaced = false, 0, false
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
end
local override, override_len = false, 0
local read = redis.pcall('GETRANGE', KEYS[3], 0, tonumber(ARGV[11]) - 1)
if type(read) == 'table' then
  override, override_len = '<' .. redis.call('TYPE', KEYS[3])['ok'] .. '>', -1
elseif read ~= '' then
  override, override_len = shown(read), string.len(read)
end
local beat = 0
if ARGV[5] ~= '' then
  local written = redis.pcall('HSET', KEYS[4], ARGV[4], ARGV[5] .. server_text .. '}')
  if type(written) == 'table' and written['err'] then
    beat = -2
  elseif ARGV[7] == '1' then
    local expiring = redis.pcall('HEXPIRE', KEYS[4], tonumber(ARGV[6]), 'FIELDS', 1, ARGV[4])
    if type(expiring) == 'table' and expiring['err'] then beat = -1 else beat = 2 end
  else
    beat = 1
  end
end
return {t[1], t[2], start, created, replaced, override, override_len, beat}
"""
SCRIPT_BYTES = SCRIPT.encode()
SCRIPT_SHA = hashlib.sha1(SCRIPT_BYTES).hexdigest().encode()

BEAT_NOT_SENT, BEAT_WRITTEN, BEAT_EXPIRING, BEAT_NO_HEXPIRE, BEAT_FAILED = 0, 1, 2, -1, -2


class Reply(NamedTuple):
    """What one round trip learned."""

    server_now: float
    start_raw: bytes | None  # the agreed start as stored (None when the call did not observe)
    initialized: bool  # this call wrote the start (first writer, or it replaced an unusable value)
    replaced: str | None  # a printable description of the unusable value it replaced
    override_raw: bytes | None
    override_len: int  # bytes read at the override key, at most MAX_RAW_BYTES + 1 (-1: another type)
    beat: int  # BEAT_*


def arguments(
    keys: tuple[bytes, bytes, bytes, bytes],
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
) -> list[bytes]:
    """EVALSHA's arguments after the sha: the key count, the keys, then ARGV in the script's order."""
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
    ]
    return [b"4", *keys, *argv]


def _bytes(value: Any) -> bytes | None:
    if value is None or value is False:
        return None
    return value.encode() if isinstance(value, str) else bytes(value)


def parse_reply(reply: Any) -> Reply:
    """The script's reply as a ``Reply``; ``ValueError`` for anything else (a proxy out of step)."""
    if not isinstance(reply, list) or len(reply) != 8:
        raise ValueError(f"unexpected reply to the round-trip script: {str(reply)[:80]}")
    seconds, micros, start, created, replaced, override, override_len, beat = reply
    replaced_bytes = _bytes(replaced)
    return Reply(
        server_now=int(seconds) + int(micros) / 1e6,
        start_raw=_bytes(start),
        initialized=bool(created),
        replaced=replaced_bytes.decode("ascii", "replace") if replaced_bytes is not None else None,
        override_raw=_bytes(override),
        override_len=int(override_len),
        beat=int(beat),
    )
