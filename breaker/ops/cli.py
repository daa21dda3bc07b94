"""``vix-breaker``: the console's reads and audited writes for runbooks, scripts and on-call shells.

Every write goes through the same functions as the console's (``breaker.ops.actions``,
``breaker.ops.overrides``), so it is audited the same way, and asks for confirmation (naming the
target) unless ``--yes``. ``--json`` prints one JSON document on stdout, errors included; human
output is a table. Exit status: 0 ok, 1 failed, 2 usage, 3 refused.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import click
from redis.exceptions import RedisError

from .._version import __version__
from ..client import redact_url, redis_client
from ..clock import PanicClock
from ..config import ConfigError, Settings
from ..logs import configure_logging
from ..override import OverrideMode
from .access import SELF_DECLARED, WriteAccess, WriteRefused
from .actions import MIN_CLEAR_REASON_CHARS, end_panic, force_clear, start_panic
from .approvals import PendingRequest, set_override_or_request, two_person_rule_applies
from .audit import AuditTrail
from .credentials import hash_password
from .fleet import read_fleet
from .overrides import NoActiveOverride, OverrideTooLong, clear_override, extend_override
from .report import (
    clock_doc,
    clock_line,
    fleet_doc,
    override_doc,
    override_json,
    override_line,
    printable,
    table,
    when,
)
from .status import worker_answers
from .target import is_sandbox, refuse_cluster_node
from .timefmt import format_duration
from .zombie import DEFAULT_STALE_AFTER_S

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
CLI_TIMEOUT_MS = 1000.0  # an operator's command, not a worker's hot path: a slow link may take a second
REFUSALS = (WriteRefused, OverrideTooLong, NoActiveOverride)


class CliError(click.ClickException):
    """An error that ends the command with ``exit_code``; in ``--json`` mode also one JSON document on stdout."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED, **detail: Any) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.detail = detail
        self.as_json = False  # set on the way out of the command, while its context is still known

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(_dumps({"ok": False, "error": self.message, "exit_status": self.exit_code, **self.detail}))
        click.echo(f"vix-breaker: {printable(self.message)}", err=True)  # may quote a stored name


@dataclasses.dataclass
class Session:
    """What a command needs: settings, output mode, and the Redis connection (opened on first use)."""

    settings: Settings
    json: bool = False
    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            if not self.settings.redis_url:
                raise CliError("REDIS_URL is not set (or pass --redis-url): the CLI acts on a real Redis only, "
                               "it never starts an embedded one", EXIT_USAGE)
            try:
                client = redis_client(self.settings.redis_url,
                                      timeout_ms=max(self.settings.redis_timeout_ms, CLI_TIMEOUT_MS))
            except (TypeError, ValueError) as exc:  # an option redis-py refuses: a usage error, not a traceback
                raise CliError(f"REDIS_URL {redact_url(self.settings.redis_url)}: {exc}", EXIT_USAGE) from None
            try:
                refuse_cluster_node(client, self.settings.redis_url)
            except ConfigError as exc:
                client.close()
                raise CliError(str(exc), EXIT_USAGE) from None
            self._client = client
        return self._client

    @property
    def sandbox(self) -> bool:
        """The console's embedded sandbox (a loopback server it marked): writes behave as the console's there."""
        return is_sandbox(self.client, self.settings.redis_url or "", self.settings.key_prefix)

    @property
    def target(self) -> str:
        return f"{redact_url(self.settings.redis_url or '')} (prefix {self.settings.key_prefix})"

    def clock(self) -> PanicClock:
        return PanicClock(self.client, key_prefix=self.settings.key_prefix,
                          panic_key_ttl_s=self.settings.panic_key_ttl_s)

    def trail(self) -> AuditTrail:
        return AuditTrail(self.client, key_prefix=self.settings.key_prefix)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _json_mode(ctx: click.Context) -> bool:
    session = ctx.find_object(Session)
    return bool(ctx.params.get("as_json")) or (session is not None and session.json)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, default=str)


def emit(ctx: click.Context, doc: dict[str, Any], human: str) -> None:
    """One JSON document, or the human text with any control character a value brought escaped (the values in
    tables and override lines are escaped where they are put, line breaks included)."""
    click.echo(_dumps({"ok": True, **doc}) if _json_mode(ctx) else printable(human, keep_newlines=True))


class CliGroup(click.Group):
    """Maps what the shared operator functions raise to the CLI's exit statuses."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except REFUSALS as exc:
                raise CliError(str(exc), EXIT_REFUSED) from exc
            except ConfigError as exc:
                raise CliError(str(exc), EXIT_USAGE) from exc
            except (RedisError, OSError) as exc:
                url = redact_url(ctx.obj.settings.redis_url or "")
                raise CliError(f"Redis at {url}: {type(exc).__name__}: {exc}", EXIT_FAILED) from exc
        except CliError as exc:
            exc.as_json = isinstance(ctx.obj, Session) and ctx.obj.json
            raise
        finally:
            if isinstance(ctx.obj, Session):
                ctx.obj.close()


class Minutes(click.FloatRange):
    """A FloatRange that also refuses nan (click's range checks compare, and nan passes every comparison)."""

    name = "minutes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    session = ctx.find_object(Session)
    if value and session is not None:
        session.json = True  # errors raised later print their JSON document too
    return value


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, callback=_note_json,
                        help="One JSON document on stdout.")(command)


def write_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--why (required), --who (default: login name), --yes: what every write takes."""
    command = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(command)
    command = click.option("--who", default=None, help="Name for the audit trail (default: your login name).")(command)
    command = click.option("--why", required=True, help="Reason, recorded in the audit trail.")(command)
    return json_option(command)


def _access(who: str | None) -> WriteAccess:
    """The CLI checks no operator identity (Redis credentials are its gate), so its names are audited as
    self-declared, like the console's shared-password logins: History never shows them as a verified operator."""
    name = (who or getpass.getuser() or "").strip().removesuffix(SELF_DECLARED.strip()).strip()
    if not name:
        raise CliError("--who is empty and the login name is unknown", EXIT_USAGE)
    return WriteAccess(True, name + SELF_DECLARED)


def _confirm(session: Session, action: str, yes: bool) -> None:
    """Name what is touched; anything but yes writes nothing and exits 3."""
    if yes:
        return
    where = "the console's sandbox: no worker reads it" if session.sandbox else "workers act on it"
    question = f"{action} on {session.target}: {where}. Continue?"
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input: no answer is not a yes
        confirmed = False
    if not confirmed:
        raise CliError("not confirmed: nothing written (--yes skips the question)", EXIT_REFUSED)


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="vix-breaker", message="%(prog)s %(version)s")
@click.option("--redis-url", default=None, help="Redis to act on (default: $REDIS_URL).")
@click.option("--key-prefix", default=None, help="Key prefix (default: $BREAKER_KEY_PREFIX or brain:).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (also per command).")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, key_prefix: str | None, as_json: bool) -> None:
    """Read and operate the shared panic clock, overrides and fleet (SPEC section 10)."""
    # The options stand in for their variables and go through the same checks and defaults: a cluster URL
    # given as --redis-url gets the cluster's {brain}: prefix, a bad one a usage error rather than a traceback.
    env = dict(os.environ)
    named = {}
    if redis_url:
        env["REDIS_URL"], named["REDIS_URL"] = redis_url, "--redis-url"
    if key_prefix:
        env["BREAKER_KEY_PREFIX"], named["BREAKER_KEY_PREFIX"] = key_prefix, "--key-prefix"
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        if ctx.invoked_subcommand == "hash-password":  # needs no Redis: a broken REDIS_URL must not stop it
            ctx.obj = Session(Settings(), json=as_json)
            return
        message = str(exc)
        for variable, option in named.items():
            message = message.replace(variable, option)
        raise CliError(message, EXIT_USAGE) from exc
    configure_logging("WARNING", settings.log_format)  # stderr; stdout is the command's output
    ctx.obj = Session(settings, json=as_json)


# ---- reads ------------------------------------------------------------------------------------------------


@cli.command()
@click.option("--base-ttl", default=60, show_default=True, type=click.IntRange(min=0), help="TTL to show per class.")
@json_option
@click.pass_context
def status(ctx: click.Context, base_ttl: int, as_json: bool) -> None:
    """Tier, mode and TTL per stakes class, the clock, the override and a fleet summary (one round trip)."""
    session: Session = ctx.obj
    view = read_fleet(session.clock(), interval_s=session.settings.refresh_interval_s)
    clock = clock_doc(view.reading)
    answers = worker_answers(view.reading, view.override.override, base_ttl, beats=view.workers)
    classes = [
        {"stakes": a.importance.value, "tier": a.tier, "mode": a.mode.value, "ttl": a.ttl,
         "minutes_to_next_tier": a.minutes_to_next_tier,
         "overridden_by": a.overridden_by.value if a.overridden_by else None,
         "without_override": {"tier": a.clock.tier, "mode": a.clock.mode.value, "ttl": a.clock.ttl},
         "reported_tiers": {str(t): n for t, n in a.reported_tiers.items()}}
        for a in answers
    ]
    override = override_doc(view.override)
    fleet = {"workers": len(view.workers), "counts": view.counts, "answers_per_s": view.answers_per_s,
             "disagreeing": len(view.disagreeing)}
    doc = {"target": session.target, "now": view.now, "base_ttl": base_ttl, "clock": clock, "classes": classes,
           "override": override, "fleet": fleet}
    counts = ", ".join(f"{n} {state}" for state, n in view.counts.items())
    human = "\n".join([
        f"target    {session.target}",
        f"now       {when(view.now)} (server)",
        f"clock     {clock_line(clock, view.now)}",
        f"zombie    {'; '.join(clock['zombie']['reasons']) if clock['zombie']['suspect'] else 'no'}",
        f"override  {override_line(override)}",
        f"fleet     {len(view.workers)} workers ({counts}), {view.answers_per_s:,.0f} answers/s, "
        f"{len(view.disagreeing)} disagreeing",
        "",
        table(("stakes", "tier", "mode", f"ttl (base {base_ttl})", "next tier in", "override",
               "without the override", "heartbeats report"),
              [(c["stakes"], c["tier"], c["mode"], c["ttl"],
                None if c["minutes_to_next_tier"] is None else format_duration(c["minutes_to_next_tier"] * 60),
                c["overridden_by"] or "",
                f"tier {a.clock.tier} {a.clock.mode.value} {a.clock.ttl}" if a.overridden_by else "",
                ", ".join(f"tier {t} ({n})" for t, n in a.reported_tiers.items()))
               for c, a in zip(classes, answers)]),
    ])
    emit(ctx, doc, human)


@cli.command()
@json_option
@click.pass_context
def fleet(ctx: click.Context, as_json: bool) -> None:
    """Every worker's last heartbeat: state, answers, tiers, override, error (one round trip)."""
    session: Session = ctx.obj
    view = read_fleet(session.clock(), interval_s=session.settings.refresh_interval_s)
    doc = fleet_doc(view)
    disagreeing = set(doc["disagreeing"])
    rows = [
        (b.worker_id, b.state, f"{b.age_s(view.now):.1f} s", b.answers, b.fail_safe,
         " ".join(f"{k.split('_')[0]}:{v}" for k, v in sorted(b.tiers.items())) or None, b.override,
         "yes" if b.worker_id in disagreeing else "", b.error, b.version)
        for b in view.workers
    ]
    counts = ", ".join(f"{n} {state}" for state, n in view.counts.items())
    human = (f"{len(view.workers)} workers ({counts}), {view.answers_per_s:,.0f} answers/s\n\n"
             + table(("worker", "state", "seen", "answers", "fail-safe", "tiers", "override", "disagrees", "error",
                      "version"), rows))
    emit(ctx, doc, human)


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1, max=10_000),
              help="Newest entries to show.")
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The audit trail, oldest of the newest LIMIT first: operator actions and breaker state changes."""
    entries = ctx.obj.trail().entries(limit)
    doc = {"entries": [dataclasses.asdict(entry) for entry in entries]}
    rows = [(when(e.at), e.kind, e.who, e.action, e.tier, e.why) for e in entries]
    emit(ctx, doc, table(("when", "kind", "who", "action", "tier", "why"), rows) if rows else "no history")


# ---- writes -----------------------------------------------------------------------------------------------


@cli.group()
def panic() -> None:
    """Start or end a (drill) panic on the shared clock."""


@panic.command("start")
@click.option("--back-date-min", default=0.0, type=Minutes(min=0), help="Start the panic N minutes ago.")
@click.option("--hold-min", default=None, type=Minutes(min=1 / 60, max=7 * 24 * 60),
              help="Minutes it lasts unless workers observe it (default: the calm period).")
@click.option("--overwrite", is_flag=True, help="Replace a running panic.")
@write_options
@click.pass_context
def panic_start(ctx: click.Context, back_date_min: float, hold_min: float | None, overwrite: bool, why: str,
                who: str | None, yes: bool, as_json: bool) -> None:
    """Start a panic now (or back-dated); a running panic is left alone (exit 3) unless --overwrite."""
    session: Session = ctx.obj
    access = _access(who)
    _confirm(session, "Start a panic" + (f" back-dated {back_date_min:g} min" if back_date_min else ""), yes)
    clock = session.clock()
    now = clock.server_now()
    hold_s = None if hold_min is None else max(1, round(hold_min * 60))
    result = start_panic(clock, session.trail(), access, now=now, why=why, backdate_s=back_date_min * 60,
                         hold_s=hold_s, overwrite=overwrite)
    if not result.started:
        raise CliError("a panic is already running: nothing written (--overwrite replaces it)", EXIT_REFUSED,
                       started=False, running=clock_doc(result.running) if result.running else None)
    start = now - back_date_min * 60
    hold = clock.panic_key_ttl_s if hold_s is None else hold_s
    emit(ctx, {"started": True, "panic_start": start, "hold_s": hold, "tier": result.tier, "who": access.who},
         f"panic started at {when(start)} (fleet tier {result.tier}), held {hold} s unless observed; "
         f"audited as {access.who}")


@panic.command("end")
@write_options
@click.pass_context
def panic_end(ctx: click.Context, why: str, who: str | None, yes: bool, as_json: bool) -> None:
    """Delete the panic clock (workers still in panic start a new one)."""
    session: Session = ctx.obj
    access = _access(who)
    _confirm(session, "End the panic", yes)
    clock = session.clock()
    existed = end_panic(clock, session.trail(), access, now=clock.server_now(), why=why)
    emit(ctx, {"existed": existed, "who": access.who},
         ("panic clock deleted" if existed else "there was no panic clock") + f"; audited as {access.who}")


@cli.command()
@click.option("--stale-after-min", default=DEFAULT_STALE_AFTER_S / 60, show_default=True,
              type=Minutes(min=0, min_open=True), help="Zombie threshold for the audit entry's verdict.")
@write_options
@click.pass_context
def clear(ctx: click.Context, stale_after_min: float, why: str, who: str | None, yes: bool, as_json: bool) -> None:
    """Force-clear a (zombie) panic clock; the reason (10+ characters) and the zombie verdict are audited."""
    if len(why.strip()) < MIN_CLEAR_REASON_CHARS:
        raise click.BadParameter(f"at least {MIN_CLEAR_REASON_CHARS} characters", param_hint="--why")
    session: Session = ctx.obj
    access = _access(who)
    _confirm(session, "Force-clear the panic clock", yes)
    clock = session.clock()
    cleared = force_clear(clock, session.trail(), access, now=clock.server_now(), why=why,
                          stale_after_s=stale_after_min * 60)
    verdict = {"suspect": cleared.verdict.suspect, "reasons": list(cleared.verdict.reasons)}
    human = ("clock cleared" if cleared.existed else "there was no panic clock") + (
        f" (zombie: {'; '.join(verdict['reasons'])})" if verdict["suspect"] else "") + f"; audited as {access.who}"
    emit(ctx, {"existed": cleared.existed, "zombie": verdict, "who": access.who}, human)


@cli.group()
def override() -> None:
    """Pin every worker to force_full or force_calm for a while (always with an end)."""


def _check_length(minutes: float, session: Session) -> None:
    limit = session.settings.max_override_min
    if minutes > limit:
        raise CliError(f"an override lasts at most {limit:g} minutes (BREAKER_MAX_OVERRIDE_MIN), asked for "
                       f"{minutes:g}: nothing written", EXIT_REFUSED)


@override.command("set")
@click.argument("mode", type=click.Choice([m.value for m in OverrideMode]))
@click.option("--minutes", required=True, type=Minutes(min=0, min_open=True), help="How long it lasts.")
@write_options
@click.pass_context
def override_set(ctx: click.Context, mode: str, minutes: float, why: str, who: str | None, yes: bool,
                 as_json: bool) -> None:
    """Set the override MODE for --minutes (replacing any override).

    force_calm under the two-person rule (BREAKER_TWO_PERSON_RULE, on by default: the CLI always talks to a
    real target) is filed as a request instead, which a second verified operator approves in the console."""
    session: Session = ctx.obj
    _check_length(minutes, session)
    access = _access(who)
    rule = two_person_rule_applies(session.settings.two_person_rule, embedded=session.sandbox)
    requesting = rule and mode == OverrideMode.FORCE_CALM.value
    _confirm(session, f"{'Request' if requesting else 'Set'} override {mode} for {minutes:g} min", yes)
    result = set_override_or_request(session.clock(), session.trail(), access, mode=mode, minutes=minutes, why=why,
                                     two_person_rule=rule, max_minutes=session.settings.max_override_min)
    if isinstance(result, PendingRequest):
        emit(ctx, {"requested": {"id": result.id, "mode": mode, "minutes": result.minutes, "who": result.requester,
                                 "why": result.why, "expires_in_s": result.left_s}},
             f"force_calm requested for {minutes:g} min: a second verified operator approves it in the console "
             f"within {format_duration(result.left_s)} (two-person rule); audited as {access.who}")
        return
    emit(ctx, {"override": override_json(result)},
         f"override {result.mode.value} until {when(result.until)}; audited as {access.who}")


@override.command("extend")
@click.option("--minutes", required=True, type=Minutes(min=0, min_open=True), help="Minutes to add.")
@write_options
@click.pass_context
def override_extend(ctx: click.Context, minutes: float, why: str, who: str | None, yes: bool, as_json: bool) -> None:
    """Move the end of the override in force --minutes later (exit 3 when none is in force, or for force_calm
    under the two-person rule: its length was approved, a longer one is a new request)."""
    session: Session = ctx.obj
    _check_length(minutes, session)
    access = _access(who)
    _confirm(session, f"Extend the override by {minutes:g} min", yes)
    result = extend_override(session.clock(), session.trail(), access, minutes=minutes, why=why,
                             max_minutes=session.settings.max_override_min,
                             two_person_rule=two_person_rule_applies(session.settings.two_person_rule,
                                                                     embedded=session.sandbox))
    emit(ctx, {"override": override_json(result)},
         f"override {result.mode.value} now until {when(result.until)}; audited as {access.who}")


@override.command("clear")
@write_options
@click.pass_context
def override_clear(ctx: click.Context, why: str, who: str | None, yes: bool, as_json: bool) -> None:
    """Remove the override: workers go back to their own answers within one interval."""
    session: Session = ctx.obj
    access = _access(who)
    _confirm(session, "Clear the override", yes)
    existed = clear_override(session.clock(), session.trail(), access, why=why)
    emit(ctx, {"existed": existed, "who": access.who},
         ("override cleared" if existed else "there was no override") + f"; audited as {access.who}")


# ---- tools ------------------------------------------------------------------------------------------------


@cli.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from stdin (one line) instead.")
@json_option
@click.pass_context
def hash_password_command(ctx: click.Context, from_stdin: bool, as_json: bool) -> None:
    """A salted scrypt hash for the console's [operators] table in secrets.toml (the password is never shown)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise CliError("the password is empty", EXIT_USAGE)
    hashed = hash_password(password)
    emit(ctx, {"hash": hashed}, hashed)


@cli.command()
@click.option("--port", default=9108, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.pass_context
def exporter(ctx: click.Context, port: int, host: str) -> None:
    """Serve the fleet's state on http://HOST:PORT/metrics, one Redis round trip per scrape."""
    from .exporter import serve_exporter

    session: Session = ctx.obj
    clock = session.clock()
    clock.client.ping()  # fail now (exit 1) rather than serve vix_breaker_up 0 from the first scrape
    try:
        server, _ = serve_exporter(clock, host=host, port=port, interval_s=session.settings.refresh_interval_s)
    except OSError as exc:  # not Redis's fault: the listening address
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED) from exc
    click.echo(f"vix-breaker exporter: http://{host}:{server.server_port}/metrics for {session.target}", err=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


def main() -> None:
    """Console script entry point (``vix-breaker``)."""
    cli(prog_name="vix-breaker")
