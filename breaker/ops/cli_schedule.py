"""``vix-breaker override schedule | list | cancel``: planned override windows from the command line.

Registered on the ``override`` group of ``breaker.ops.cli`` (which imports this module), through the same
functions as the console (``breaker.ops.schedule``): audited the same way, refusals exit 3. Times are the Redis
server's; a relative start (``+30s``) counts from the server's clock, not this machine's.
"""

from __future__ import annotations

from typing import Any

import click

from ..override import OverrideMode
from ..schedule import Window
from .approvals import two_person_rule_applies
from .cli import EXIT_USAGE, CliError, Session, _access, _confirm, emit, json_option, override, write_options
from .report import table, when
from .schedule import (
    approval_text,
    approve_window,
    cancel_window,
    parse_amount,
    parse_when,
    read_schedule,
    schedule_override,
)


class When(click.ParamType):
    name = "when"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return parse_when(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Length(click.ParamType):
    name = "length"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            seconds = parse_amount(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail("the length must be more than 0", param, ctx)
        return seconds / 60.0


def window_json(window: Window, now: float) -> dict[str, Any]:
    return {**window.to_dict(), "starts_in_s": round(window.since - now, 3), "ends_in_s": round(window.until - now, 3),
            "digest": window.digest()}


@override.command("schedule")
@click.argument("mode", type=click.Choice([m.value for m in OverrideMode]))
@click.option("--start", "start", required=True, type=When(),
              help="ISO 8601 (no zone: UTC) or relative to the server's clock: +30s, +15m, +2h, now.")
@click.option("--length", "minutes", required=True, type=Length(), help="How long: 90s, 15m, 2h.")
@write_options
@click.pass_context
def override_schedule(ctx: click.Context, mode: str, start: tuple[float | None, float | None], minutes: float,
                      why: str, yes: bool, as_json: bool) -> None:
    """Plan the override MODE for a window (refused, exit 3: overlapping, too long, too many, in the past, or a
    role that may not).

    force_calm needs a verified identity; under the two-person rule it is planned waiting for a second verified
    approver (console, or `override approve-window`); unapproved when it opens, it does not apply. Without the
    rule it is break-glass (a verified admin only)."""
    session: Session = ctx.obj
    calm = mode == OverrideMode.FORCE_CALM.value
    rule = two_person_rule_applies(session.settings.two_person_rule, embedded=False)
    access = _access(session, "override_schedule_calm" if calm else "override_schedule", f"scheduling {mode}")
    if calm and not rule:
        access.require("scheduling force_calm without a second person (break-glass)", "break_glass")
    at, after_s = start
    _confirm(session, f"Schedule {mode} for {minutes:g} min", yes)
    try:
        window = schedule_override(session.clock(), session.trail(), access, mode=mode, minutes=minutes, why=why,
                                   start=at, after_s=after_s, two_person_rule=rule,
                                   max_minutes=session.settings.max_override_min)
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        raise CliError(str(exc), EXIT_USAGE) from exc
    waiting = not window.approved
    emit(ctx, {"window": window_json(window, window.at)},
         f"{mode} scheduled from {when(window.since)} to {when(window.until)} (server time), id {window.id}"
         + ("; waiting for a second verified approver (console, or override approve-window; two-person rule)" if waiting
            else "") + f"; audited as {access.who}")


@override.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also windows that are over (kept an hour).")
@json_option
@click.pass_context
def override_list(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Planned override windows, by start, in server time (one round trip)."""
    session: Session = ctx.obj
    reading = read_schedule(session.clock())
    shown = [w for w in reading.windows if show_all or w.until > reading.now]
    human = table(("id", "mode", "from (server time)", "to", "state", "approval", "who", "why"),
                  [(w.id, w.mode.value, when(w.since), when(w.until), w.state, approval_text(w) or "-", w.who, w.why)
                   for w in shown]) if shown else "no windows planned"
    human = f"server time {when(reading.now)}\n{human}"
    if reading.invalid:
        human += f"\n{len(reading.invalid)} stored member(s) are not windows (ignored by workers): " \
                 + "; ".join(reading.invalid)
    emit(ctx, {"now": reading.now, "windows": [window_json(w, reading.now) for w in shown],
               "invalid": list(reading.invalid)}, human)


@override.command("cancel")
@click.argument("window_id", metavar="ID")
@write_options
@click.pass_context
def override_cancel(ctx: click.Context, window_id: str, why: str, yes: bool, as_json: bool) -> None:
    """Remove a planned window; if it is in force, its override ends too (workers follow within one interval)."""
    session: Session = ctx.obj
    access = _access(session, "override_schedule_cancel", "cancelling a scheduled override")
    _confirm(session, f"Cancel window {window_id}", yes)
    try:
        window = cancel_window(session.clock(), session.trail(), access, window_id=window_id, why=why)
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        raise CliError(str(exc), EXIT_USAGE) from exc
    emit(ctx, {"cancelled": window.to_dict(), "who": access.who},
         f"window {window.id} ({window.mode.value}, {when(window.since)} to {when(window.until)}) cancelled"
         f"; audited as {access.who}")


@override.command("approve-window")
@click.argument("window_id", metavar="ID")
@click.option("--digest", required=True, help="The window's digest as `override list` showed it.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def override_approve_window(ctx: click.Context, window_id: str, digest: str, yes: bool, as_json: bool) -> None:
    """Approve another person's planned force_calm window ID before it opens (an approver's verified identity;
    the digest binds what you read: a changed window is refused)."""
    session: Session = ctx.obj
    access = _access(session, "override_window_approve", "approving a scheduled force_calm")
    _confirm(session, f"Approve scheduled force_calm window {window_id}", yes)
    window = approve_window(session.clock(), session.trail(), access, window_id=window_id, digest=digest)
    emit(ctx, {"window": window_json(window, window.at), "who": access.who},
         f"window {window.id} (force_calm, {when(window.since)} to {when(window.until)}) approved; audited as "
         f"{access.who}")
