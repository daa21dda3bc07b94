"""Scheduled overrides (SPEC section 14): planned windows that workers honour by themselves, on server time.

The schedule is a sorted set ``{prefix}override_schedule``: score = the window's ``since``, member = one JSON
window (``Window.to_json``). Windows never overlap, so "the window containing server now" is the member with
the greatest ``since <= now`` (``ZRANGE key now -inf BYSCORE REV LIMIT 0 2``: O(log N), two members back).

No scheduler process: the worker's one round trip runs ``FRAGMENT`` (Lua, below) before it reads the override.
At the first round trip inside a window the fragment *materializes* it: it writes the window as a v2 override
at ``{prefix}panic_override`` (``{"mode","who","why","since","until","window": id}``, expiring at ``until`` by
``PXAT``), rewrites the member's ``state`` from ``planned`` to ``started`` and appends one
``override_window_start`` audit entry. The state in the member is the once-only guard: of all the workers that
run the fragment, exactly one (the first, the script is atomic) writes the override and the entry. Services
that read ``panic_override`` in the v2 format see the window in force; workers honour it through the override
read they already make.

Rules the fragment applies (``plan_step`` is its pure Python twin, for tests and for readers):
- a window is honoured at most ``max_s`` (the worker's ``BREAKER_MAX_OVERRIDE_MIN``) from its ``since``;
- an unapproved ``force_calm`` does not apply: at its start it becomes ``skipped`` (audited once);
- a manual override in force (a valid, unexpired value at the override key that is not this window's) takes
  precedence: the window waits, and applies for what is left of it once the manual override is gone;
- once started, the override key is the truth: clearing or replacing it by hand ends the window's effect
  (it is not re-applied); ``cancel`` (``breaker.ops.schedule``) removes the window and deletes the override if
  it is that window's;
- the first round trip after a started window's end rewrites it ``ended`` (audited ``override_window_end``);
  a window no round trip saw from inside becomes ``missed`` (audited as ``override_window_skipped``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .override import OverrideMode

SCHEDULE_KEY_NAME = "override_schedule"
MAX_WINDOW_BYTES = 4096  # a window is a few hundred bytes; anything longer is not read as one
MAX_ID_CHARS = 64
STATES = ("planned", "started", "skipped", "ended", "missed")
#: What the fragment answers, first element of its reply.
NONE, APPLIED, IN_FORCE, MANUAL, SKIPPED, INVALID = "none", "applied", "in_force", "manual", "skipped", "invalid"
ERROR = "error"  # a write the server refused (out of memory): nothing changed, the next round trip tries again


class InvalidWindow(ValueError):
    """A schedule member that is not a window; the fragment ignores it (status ``invalid``)."""


@dataclass(frozen=True)
class Window:
    """One planned override window, times in the Redis server's clock (rounded to milliseconds)."""

    id: str
    mode: OverrideMode
    who: str
    why: str
    since: float
    until: float
    at: float = 0.0  # when it was scheduled
    requested_by: str | None = None  # force_calm: the operator who asked (the two-person rule)
    approved: bool = True  # force_calm: False until a second operator approves
    approved_by: str | None = None
    state: str = "planned"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # fields a later version added: kept

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "v": 1, "id": self.id, "mode": self.mode.value, "who": self.who, "why": self.why,
                "since": self.since, "until": self.until, "at": self.at, "requested_by": self.requested_by,
                "approved": self.approved, "approved_by": self.approved_by, "state": self.state}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def digest(self) -> str:
        """What an approval is bound to: id, mode, times, who and why, and the requester's canonical name and
        credential kind when stored (not the state or the approval itself)."""
        bound = [self.id, self.mode.value, self.since, self.until, self.who, self.why, self.requested_by]
        if "requester_canonical" in self.extra or "requester_auth" in self.extra:  # who asked, as verified (v3)
            bound += [self.extra.get("requester_canonical"), self.extra.get("requester_auth")]
        content = json.dumps(bound, ensure_ascii=False)
        return hashlib.sha256(content.encode()).hexdigest()[:16]

    def until_for(self, max_s: float) -> float:
        """The end a worker honours: ``until``, but at most ``max_s`` after ``since`` (SPEC section 12)."""
        return min(self.until, self.since + max_s)

    def override_who(self) -> str:
        if self.mode is OverrideMode.FORCE_CALM and self.approved_by:
            return f"{self.requested_by or self.who}, approved by {self.approved_by}"
        return self.who

    def override_doc(self, max_s: float) -> dict[str, Any]:
        """The v2 override this window materializes into, plus ``window``: its id."""
        return {"mode": self.mode.value, "who": self.override_who(), "why": self.why, "since": self.since,
                "until": self.until_for(max_s), "window": self.id}


def ms(ts: float) -> float:
    """A time rounded to milliseconds: 13 significant digits, which Lua's cjson (14) re-encodes exactly."""
    return round(float(ts), 3)


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidWindow(f"{name} must be a finite number")
    return float(value)


def _text(data: dict[str, Any], name: str, optional: bool = False) -> Any:
    value = data.get(name)
    if optional and value is None:
        return None
    if not isinstance(value, str):
        raise InvalidWindow(f"{name} must be text")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no number a window may hold")


def parse_window(raw: Any) -> Window:
    """The window stored in ``raw``, or ``InvalidWindow``: the same checks as the fragment's."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_WINDOW_BYTES:
            raise InvalidWindow(f"longer than {MAX_WINDOW_BYTES} bytes")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWindow("not UTF-8 text") from None
    if not isinstance(raw, str) or len(raw.encode("utf-8")) > MAX_WINDOW_BYTES:
        raise InvalidWindow(f"not text of at most {MAX_WINDOW_BYTES} bytes")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise InvalidWindow("not JSON (or NaN / Infinity in it)") from None
    if not isinstance(data, dict):
        raise InvalidWindow("not a JSON object")
    window_id = _text(data, "id")
    if not window_id or len(window_id) > MAX_ID_CHARS:
        raise InvalidWindow(f"id must be 1 to {MAX_ID_CHARS} characters")
    try:
        mode = OverrideMode(data.get("mode"))
    except ValueError:
        raise InvalidWindow("unknown mode") from None
    since, until = _number(data, "since"), _number(data, "until")
    if until <= since:
        raise InvalidWindow("ends before it starts")
    state = data.get("state", "planned")
    if state not in STATES:
        raise InvalidWindow("unknown state")
    approved = data.get("approved", False)
    known = {"v", "id", "mode", "who", "why", "since", "until", "at", "requested_by", "approved", "approved_by",
             "state"}
    at = data.get("at", 0.0)
    return Window(window_id, mode, _text(data, "who"), _text(data, "why"), since, until,
                  float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else 0.0,
                  _text(data, "requested_by", True), approved is True, _text(data, "approved_by", True), state,
                  {k: v for k, v in data.items() if k not in known})


def override_in_force(raw: Any, now: float, window_id: str | None = None) -> bool:
    """A manual override that defers a window: a JSON object naming a known mode with a numeric ``until`` after
    ``now`` (the fragment's check; ``breaker.override.parse_override`` is stricter, never looser on these)."""
    if raw is None or len(raw) > MAX_WINDOW_BYTES + 1:  # the fragment reads 4097 bytes: a longer value is cut
        return False
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError, TypeError, UnicodeDecodeError):
        return False
    if not isinstance(data, dict) or (window_id is not None and data.get("window") == window_id):
        return False  # this window's own override (a step wrote it but could not mark the window) is no manual one
    until = data.get("until")
    return (data.get("mode") in ("force_full", "force_calm")
            and isinstance(until, (int, float)) and not isinstance(until, bool) and until > now)


@dataclass(frozen=True)
class Step:
    """What one run of the fragment decides: its status, the window it is about, the writes it makes."""

    status: str
    window_id: str | None = None
    override: dict[str, Any] | None = None  # written to the override key (expiring at its until)
    rewrites: tuple[tuple[Any, Window], ...] = ()  # (member as stored, the member replacing it)
    audits: tuple[dict[str, Any], ...] = ()  # audit entries, as AuditTrail.record's keyword arguments


def _audit(action: str, window: Window, now: float, **detail: Any) -> dict[str, Any]:
    return dict(who=window.who, action=action, why=window.why, at=now, window=window.id, mode=window.mode.value,
                since=window.since, until=window.until, auth="worker", role="", **detail)


def plan_step(rows: Sequence[Any], override_raw: Any, now: float, max_s: float) -> Step:
    """The fragment's decision, in Python: ``rows`` are the (at most two) members with ``since <= now``, latest
    first, as ZRANGE ... REV returns them; ``override_raw`` is the value at the override key (None: none)."""
    rewrites: list[tuple[Any, Window]] = []
    audits: list[dict[str, Any]] = []
    status, current_id, override = NONE, None, None
    for index in (1, 0):
        if index >= len(rows):
            continue
        try:
            window = parse_window(rows[index])
        except InvalidWindow:
            if index == 0:
                status = INVALID
            continue
        if window.state in ("ended", "missed"):
            continue  # over and done with
        end = window.until_for(max_s)
        if now >= end:
            if window.state == "started":
                rewrites.append((rows[index], replace(window, state="ended")))
                audits.append(_audit("override_window_end", window, now, ended_at=end))
            elif window.state == "planned":
                rewrites.append((rows[index], replace(window, state="missed")))
                audits.append(_audit("override_window_skipped", window, now,
                                     reason="no worker made a round trip inside the window"))
            continue
        if index != 0:
            continue  # an older window still open would overlap the latest one: only the latest counts
        current_id = window.id
        if window.state == "started":
            status = IN_FORCE
        elif window.state == "skipped":
            status = SKIPPED
        elif window.mode is OverrideMode.FORCE_CALM and not window.approved:
            status = SKIPPED
            rewrites.append((rows[index], replace(window, state="skipped")))
            audits.append(_audit("override_window_skipped", window, now,
                                 reason="force_calm not approved by a second operator before its start"))
        elif override_in_force(override_raw, now, window.id):
            status = MANUAL
        else:
            status = APPLIED
            override = window.override_doc(max_s)
            rewrites.append((rows[index], replace(window, state="started")))
            audits.append(_audit("override_window_start", window, now, honoured_until=end))
    return Step(status, current_id, override, tuple(rewrites), tuple(audits))


#: The fragment: Lua functions the round-trip script calls with the schedule, override and audit keys.
#: ``schedule_step_safe(skey, okey, akey, now, now_text, max_s, maxlen)`` returns ``{status, window id or false}``
#: (``{'error', false}`` if anything in it raised: the round trip around it never fails for the schedule);
#: it reads at most two schedule members and the override's first 4 KB, and writes only at a window's edges.
FRAGMENT = """
local function schedule_audit(akey, maxlen, action, w, now_text, extra)
  local detail = {window = w['id'], mode = w['mode'], since = w['since'], ['until'] = w['until']}
  for k, v in pairs(extra) do detail[k] = v end
  redis.pcall('XADD', akey, 'MAXLEN', maxlen, '*', 'at', now_text, 'kind', 'operator', 'who', w['who'],
    'action', action, 'why', w['why'], 'detail', cjson.encode(detail), 'auth', 'worker', 'role', '')
end
local function schedule_window(raw)
  if type(raw) ~= 'string' or string.len(raw) > __MAX_WINDOW_BYTES__ then return nil end
  local ok, w = pcall(cjson.decode, raw)
  if not ok or type(w) ~= 'table' then return nil end
  if type(w['id']) ~= 'string' or string.len(w['id']) == 0 or string.len(w['id']) > __MAX_ID_CHARS__ then
    return nil end
  if w['mode'] ~= 'force_full' and w['mode'] ~= 'force_calm' then return nil end
  if type(w['since']) ~= 'number' or type(w['until']) ~= 'number' or w['until'] <= w['since'] then return nil end
  if w['since'] ~= w['since'] or w['until'] ~= w['until'] or w['until'] == math.huge or w['since'] == -math.huge then
    return nil end
  if type(w['who']) ~= 'string' or type(w['why']) ~= 'string' then return nil end
  if w['state'] == nil then w['state'] = 'planned' end
  local known = {planned = 1, started = 1, skipped = 1, ended = 1, missed = 1}
  if not known[w['state']] then return nil end
  if not pcall(cjson.encode, w) then return nil end  -- NaN or inf anywhere in it: it could not be rewritten
  return w
end
local function schedule_rewrite(skey, raw, w, state)
  w['state'] = state
  local added = redis.pcall('ZADD', skey, string.format('%.3f', w['since']), cjson.encode(w))
  if type(added) == 'table' and added['err'] then return false end  -- out of memory: nothing changed
  redis.pcall('ZREM', skey, raw)
  return true
end
local function schedule_manual(okey, now, id)
  local raw = redis.pcall('GETRANGE', okey, 0, __MAX_WINDOW_BYTES__)
  if type(raw) ~= 'string' or raw == '' then return false end
  local ok, o = pcall(cjson.decode, raw)
  if not ok or type(o) ~= 'table' then return false end
  if o['mode'] ~= 'force_full' and o['mode'] ~= 'force_calm' then return false end
  if o['window'] == id then return false end  -- this window's own, written by a step that could not mark it
  return type(o['until']) == 'number' and o['until'] > now
end
local function schedule_step(skey, okey, akey, now, now_text, max_s, maxlen)
  local rows = redis.pcall('ZRANGE', skey, now_text, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 2)
  if type(rows) ~= 'table' or rows['err'] then return {'invalid', false} end
  local status, current = 'none', false
  for index = 2, 1, -1 do
    local raw = rows[index]
    if raw and (string.find(raw, '"state":"ended"', 1, true) or string.find(raw, '"state":"missed"', 1, true)) then
      raw = nil  -- over and done with: skip decoding it (the common case between windows, on every round trip)
    end
    if raw then
      local w = schedule_window(raw)
      if not w then
        if index == 1 then status = 'invalid' end
      elseif w['state'] == 'ended' or w['state'] == 'missed' then
        -- over (perhaps written in another spelling than ours): nothing to do
      else
        local stop = math.min(w['until'], w['since'] + max_s)
        if now >= stop then
          if w['state'] == 'started' then
            if schedule_rewrite(skey, raw, w, 'ended') then
              schedule_audit(akey, maxlen, 'override_window_end', w, now_text, {ended_at = stop})
            end
          elseif w['state'] == 'planned' then
            if schedule_rewrite(skey, raw, w, 'missed') then
              schedule_audit(akey, maxlen, 'override_window_skipped', w, now_text,
                {reason = 'no worker made a round trip inside the window'})
            end
          end
        elseif index == 1 then
          current = w['id']
          if w['state'] == 'started' then
            status = 'in_force'
          elseif w['state'] ~= 'planned' then
            status = 'skipped'
          elseif w['mode'] == 'force_calm' and w['approved'] ~= true then
            status = 'skipped'
            if schedule_rewrite(skey, raw, w, 'skipped') then
              schedule_audit(akey, maxlen, 'override_window_skipped', w, now_text,
                {reason = 'force_calm not approved by a second operator before its start'})
            end
          elseif schedule_manual(okey, now, w['id']) then
            status = 'manual'
          else
            status = 'applied'
            local who = w['who']
            if w['mode'] == 'force_calm' and type(w['approved_by']) == 'string' and w['approved_by'] ~= '' then
              local asked = w['who']
              if type(w['requested_by']) == 'string' then asked = w['requested_by'] end
              who = asked .. ', approved by ' .. w['approved_by']
            end
            local doc = cjson.encode({mode = w['mode'], who = who, why = w['why'], since = w['since'],
              ['until'] = stop, window = w['id']})
            local set = redis.pcall('SET', okey, doc, 'PXAT', string.format('%.0f', math.floor(stop * 1000)))
            if type(set) == 'table' and set['err'] then
              status = 'error'  -- out of memory, say: nothing written, the next round trip tries again
            elseif schedule_rewrite(skey, raw, w, 'started') then
              schedule_audit(akey, maxlen, 'override_window_start', w, now_text, {honoured_until = stop})
            end
          end
        end
      end
    end
  end
  return {status, current}
end
local function schedule_step_safe(skey, okey, akey, now, now_text, max_s, maxlen)
  local ok, reply = pcall(schedule_step, skey, okey, akey, now, now_text, max_s, maxlen)
  if ok then return reply end
  return {'error', false}  -- whatever went wrong, the round trip around it goes on
end
""".replace("__MAX_WINDOW_BYTES__", str(MAX_WINDOW_BYTES)).replace("__MAX_ID_CHARS__", str(MAX_ID_CHARS))

#: The fragment on its own, as a script: what the tests EVAL and what ``run_step`` calls (operator tools, the
#: sandbox). KEYS: schedule, override, audit; ARGV: now ('' = the server's TIME), max_s, audit maxlen.
STANDALONE_SCRIPT = FRAGMENT + """
local now_text = ARGV[1]
if now_text == '' then
  local t = redis.call('TIME')
  now_text = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
local reply = schedule_step_safe(KEYS[1], KEYS[2], KEYS[3], tonumber(now_text), now_text, tonumber(ARGV[2]),
  tonumber(ARGV[3]))
return {reply[1], reply[2], now_text}
"""


def parse_step_reply(reply: Any) -> tuple[str, str | None, float]:
    """The standalone script's reply; ``ValueError`` for anything else."""
    if not isinstance(reply, list) or len(reply) != 3:
        raise ValueError(f"unexpected reply to the schedule step: {str(reply)[:80]}")
    status, window_id, now = (v.decode() if isinstance(v, bytes) else v for v in reply)
    return str(status), (str(window_id) if window_id not in (None, False) else None), float(now)


def run_step(client: Any, *, key_prefix: str, max_s: float, maxlen: int = 10_000,
             now: float | None = None) -> tuple[str, str | None, float]:
    """Run the fragment once (EVAL) on ``client``: what a worker's round trip will do, for tools and tests."""
    keys = (f"{key_prefix}{SCHEDULE_KEY_NAME}", f"{key_prefix}panic_override", f"{key_prefix}audit")
    reply = client.eval(STANDALONE_SCRIPT, 3, *keys, "" if now is None else f"{now:.6f}", repr(float(max_s)),
                        str(int(maxlen)))
    return parse_step_reply(reply)
