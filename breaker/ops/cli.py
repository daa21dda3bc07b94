"""``vix-breaker``: the console's reads and audited writes for runbooks, scripts and on-call shells.

Every write goes through the same functions as the console's (``breaker.ops.actions``,
``breaker.ops.overrides``), so it is audited and role-checked the same way, made as the verified operator
of an API token or of console credentials (``breaker.ops.cli_identity``; never argv), and asks for
confirmation (naming the target) unless ``--yes``. ``--json`` prints one JSON document on stdout, errors included; human
output is a table. Exit status: 0 ok, 1 failed, 2 usage, 3 refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click
from redis.exceptions import RedisError

from .._version import __version__
from ..client import redact_url, redis_client
from ..clock import PanicClock
from ..config import ConfigError, Settings
from ..heartbeat import STATES
from ..logs import configure_logging
from ..override import OverrideMode
from ..policy import AdaptivePanicQuota
from .actions import MIN_CLEAR_REASON_CHARS, end_panic, force_clear, start_panic
from .approvals import (
    NoPendingRequest,
    PendingRequest,
    approve_force_calm,
    pending_request,
    set_override_or_request,
    two_person_rule_applies,
)
from .audit import AuditTrail
from .cli_identity import CliSecrets
from .credentials import hash_password
from .fleet import disagrees
from .fleet_pages import iter_workers, read_hosts
from .fleet_summary import read_summary, summary_doc
from .overrides import NoActiveOverride, OverrideTooLong, clear_override, extend_override
from .read_deadline import operator_deadline
from .report import (
    clock_doc,
    clock_line,
    override_doc,
    override_json,
    override_line,
    printable,
    table,
    when,
)
from .roles import Principal, WriteRefused
from .status import worker_answers
from .target import is_sandbox, refuse_cluster_node
from .timefmt import format_duration
from .tokens import TokenStore, parse_duration
from .zombie import DEFAULT_STALE_AFTER_S

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
CLI_TIMEOUT_MS = 1000.0  # an operator's command, not a worker's hot path: a slow link may take a second
REFUSALS = (WriteRefused, OverrideTooLong, NoActiveOverride, NoPendingRequest)


class CliError(click.ClickException):
    """An error that ends the command with ``exit_code``; in ``--json`` mode also one JSON document on stdout."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED, **detail: Any) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.detail = detail
        self.as_json = False  # set on the way out of the command, while its context is still known
        self.json_written = False  # a streamed document already ended with this error (`fleet --json`)

    def show(self, file: Any = None) -> None:
        if self.as_json and not self.json_written:
            click.echo(_dumps({"ok": False, "error": self.message, "exit_status": self.exit_code, **self.detail}))
        click.echo(f"vix-breaker: {printable(self.message)}", err=True)  # may quote a stored name


@dataclasses.dataclass
class Session:
    """What a command needs: settings, output mode, and the Redis connection (opened on first use)."""

    settings: Settings
    json: bool = False
    secrets: CliSecrets | None = None
    _client: Any = None
    _principal: Principal | None = None

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
                with operator_deadline(self.settings.operator_read_timeout_s):  # a read like any other: bounded
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
                          panic_key_ttl_s=self.settings.panic_key_ttl_s,
                          max_panic_age_s=self.settings.max_panic_age_h * 3600)

    def trail(self) -> AuditTrail:
        return AuditTrail(self.client, key_prefix=self.settings.key_prefix)

    def principal(self) -> Principal:
        """Who this run writes as (verified once per run): a refusal (exit 3) when the secrets are missing or
        wrong; a role too low is refused by the write itself."""
        if self._principal is None:
            secrets = self.secrets or CliSecrets({}, token_file=None, password_file=None)
            self._principal = secrets.principal(self.client, self.settings.key_prefix, self.trail(),
                                                self.settings.operator_password)
            if self._principal.role is None and self.sandbox:  # no credentials: the sandbox is open, as in the console
                self._principal = Principal.sandbox()
        return self._principal

    def tokens(self) -> TokenStore:
        return TokenStore(self.client, key_prefix=self.settings.key_prefix)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _json_mode(ctx: click.Context) -> bool:
    session = ctx.find_object(Session)
    return bool(ctx.params.get("as_json")) or (session is not None and session.json)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf: a stored value, an audit detail) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _dumps(doc: Any) -> str:
    """Strict JSON (RFC 8259): no NaN or Infinity tokens, which ``jq`` and most parsers reject."""
    return json.dumps(_finite(doc), indent=2, sort_keys=False, default=str, allow_nan=False)


def emit(ctx: click.Context, doc: dict[str, Any], human: str) -> None:
    """One JSON document, or the human text with any control character a value brought escaped (the values in
    tables and override lines are escaped where they are put, line breaks included)."""
    click.echo(_dumps({"ok": True, **doc}) if _json_mode(ctx) else printable(human, keep_newlines=True))


def cli_error(ctx: click.Context, exc: Exception) -> CliError:
    """What the shared operator functions raise, as the CliError (message, exit status) the CLI ends with."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, REFUSALS):
        return CliError(str(exc), EXIT_REFUSED)
    if isinstance(exc, (ConfigError, ValueError)):  # bad input the shared checks refused: a usage error
        return CliError(str(exc), EXIT_USAGE)
    if isinstance(exc, (RedisError, OSError)):
        url = redact_url(ctx.obj.settings.redis_url or "") if isinstance(ctx.obj, Session) else ""
        return CliError(f"Redis at {url}: {type(exc).__name__}: {exc}", EXIT_FAILED)
    # the last resort: one line and exit 1, never a traceback
    return CliError(f"unexpected error: {type(exc).__name__}: {str(exc)[:300]}", EXIT_FAILED)


class CliGroup(click.Group):
    """Maps what the shared operator functions raise to the CLI's exit statuses."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except Exception as exc:
                raise cli_error(ctx, exc) from exc
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


def _why_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--why must hold text: a blank reason is a usage error (exit 2) for every write."""
    if value is not None and not value.strip():
        raise click.BadParameter("must hold text: the reason recorded in the audit trail", ctx, param)
    return value


def write_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--why (required, not blank), --yes: what every write takes. Who writes comes from the credentials."""
    command = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(command)
    command = click.option("--why", required=True, callback=_why_text,
                           help="Reason, recorded in the audit trail.")(command)
    return json_option(command)


def _access(session: Session, write: str, action: str) -> Principal:
    """The verified principal, refused (exit 3, nothing written) before any question when it may not ``write``."""
    principal = session.principal()
    principal.require(action, write)
    return principal


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
@click.option("--token-file", default=None, metavar="PATH",
              help="File holding your API token (else $VIX_BREAKER_TOKEN). Never pass a token itself.")
@click.option("--password-file", default=None, metavar="PATH",
              help="File holding your console password, for $VIX_BREAKER_USER (else $VIX_BREAKER_PASSWORD).")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, key_prefix: str | None, as_json: bool, token_file: str | None,
        password_file: str | None) -> None:
    """Read and operate the shared panic clock, overrides and fleet (SPEC section 10).

    Writes are made as a verified operator: an API token ($VIX_BREAKER_TOKEN or --token-file) or console
    credentials ($VIX_BREAKER_USER with $VIX_BREAKER_PASSWORD or --password-file)."""
    try:
        secrets = CliSecrets(os.environ, token_file=token_file, password_file=password_file)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
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
            ctx.obj = Session(Settings(), json=as_json, secrets=secrets)
            return
        message = str(exc)
        for variable, option in named.items():
            message = message.replace(variable, option)
        raise CliError(message, EXIT_USAGE) from exc
    configure_logging("WARNING", settings.log_format)  # stderr; stdout is the command's output
    ctx.obj = Session(settings, json=as_json, secrets=secrets)


# ---- reads ------------------------------------------------------------------------------------------------


@cli.command()
@click.option("--base-ttl", default=60, show_default=True, type=click.IntRange(min=0), help="TTL to show per class.")
@json_option
@click.pass_context
def status(ctx: click.Context, base_ttl: int, as_json: bool) -> None:
    """Tier, mode and TTL per stakes class, the clock, the override and a fleet summary (one bounded read)."""
    session: Session = ctx.obj
    with operator_deadline(session.settings.operator_read_timeout_s):  # connecting's checks included: one budget
        view = read_summary(session.clock(), interval_s=session.settings.refresh_interval_s,
                            deadline_s=session.settings.operator_read_timeout_s,
                            max_override_s=session.settings.max_override_min * 60)
    clock = clock_doc(view.reading)
    answers = worker_answers(view.reading, view.override.override, base_ttl, off_tiers=view.off_tiers)
    classes = [
        {"stakes": a.importance.value, "tier": a.tier, "mode": a.mode.value, "ttl": a.ttl,
         "minutes_to_next_tier": a.minutes_to_next_tier,
         "overridden_by": a.overridden_by.value if a.overridden_by else None,
         "without_override": {"tier": a.clock.tier, "mode": a.clock.mode.value, "ttl": a.clock.ttl},
         "reported_tiers": {str(t): n for t, n in a.reported_tiers.items()}}
        for a in answers
    ]
    override = override_doc(view.override)
    fleet = summary_doc(view)
    read = "" if view.from_beats else f" (aggregates of {view.until - view.since:.0f} s)"
    epochs = ", ".join(str(e) for e in sorted(view.epochs)) or "none in the window"
    epoch_line = f"{view.epoch or 0} (panic beats answer from: {epochs})" + (
        "  EPOCH CHANGED: a new start, or one lost in a failover" if view.epoch_changed else "")
    skew = "n/a" if view.skew_max is None else f"{view.skew_min:+.1f} s .. {view.skew_max:+.1f} s"
    doc = {"target": session.target, "now": view.now, "base_ttl": base_ttl, "clock": clock, "classes": classes,
           "override": override, "fleet": fleet}
    counts = ", ".join(f"{n} {state}" for state, n in view.counts.items())
    human = "\n".join([
        f"target    {session.target}",
        f"now       {when(view.now)} (server)",
        f"clock     {clock_line(clock, view.now)}",
        f"zombie    {'; '.join(clock['zombie']['reasons']) if clock['zombie']['suspect'] else 'no'}",
        f"override  {override_line(override)}",
        f"fleet     {view.reporting} workers ({counts}), {view.answers_per_s:,.0f} answers/s, "
        f"{view.disagreeing} disagreeing{read}",
        f"epoch     {epoch_line}",
        f"skew      {skew} (worker clock - server clock)",
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


FLEET_ROWS = 50  # rows the human `fleet` output shows unless --limit says otherwise


@cli.command()
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help=f"Workers to list (default: {FLEET_ROWS} in the table, all with --json).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES),
              help="Only workers in this state (repeatable).")
@click.option("--host", default=None, help="Only workers of this host (ids host:pid:xxxx; matched by the server).")
@click.option("--search", default=None, help="Only workers whose id contains this text.")
@click.option("--hosts", "by_host", is_flag=True, help="Workers grouped by host: counts per state.")
@json_option
@click.pass_context
def fleet(ctx: click.Context, limit: int | None, states: tuple[str, ...], host: str | None, search: str | None,
          by_host: bool, as_json: bool) -> None:
    """A fleet summary, then the workers' last heartbeats page by page (state, answers, tiers, override, error).

    The summary reads the workers' per-bucket aggregates (the same cost at any fleet size); the list is read in
    HSCAN pages and printed as
    it arrives, in the server's scan order. --json streams one document whose "workers" array is written a
    worker at a time.
    """
    session: Session = ctx.obj
    deadline_s = session.settings.operator_read_timeout_s
    with operator_deadline(deadline_s):  # connecting's checks and the summary: one budget, as `status` has
        clock = session.clock()
        if by_host:
            clock.client.ping()  # connect here, within the budget (the host view's pages have their own)
        else:
            view = read_summary(clock, interval_s=session.settings.refresh_interval_s, deadline_s=deadline_s,
                                max_override_s=session.settings.max_override_min * 60)
    if by_host:
        _fleet_hosts(ctx, clock, host, deadline_s)
        return
    summary = summary_doc(view)  # O(1) of the fleet (the aggregates); the list comes page by page below
    summary.update(filters={"state": list(states) or None, "host": host, "search": search, "limit": limit})
    listed = iter_workers(clock, limit=limit if limit is not None or _json_mode(ctx) else FLEET_ROWS + 1,
                          host=host, search=search, states=states or None, deadline_s=deadline_s)
    quota = AdaptivePanicQuota()
    if _json_mode(ctx):
        _stream_json(ctx, summary, ({**dataclasses.asdict(beat),
                                     "disagrees": disagrees(beat, view.reading, view.override, quota)}
                                    for beat in listed))
        return
    beats = list(listed)
    more = limit is None and len(beats) > FLEET_ROWS
    beats = sorted(beats[:FLEET_ROWS] if more else beats, key=lambda b: b.worker_id)
    rows = [
        (b.worker_id, b.state, f"{b.age_s(view.now):.1f} s", b.answers, b.fail_safe,
         " ".join(f"{k.split('_')[0]}:{v}" for k, v in sorted(b.tiers.items())) or None, b.override,
         "yes" if disagrees(b, view.reading, view.override, quota) else "", b.epoch,
         None if b.skew_s is None else f"{b.skew_s:+.1f} s", b.error, b.version)
        for b in beats
    ]
    counts = ", ".join(f"{n} {state}" for state, n in view.counts.items())
    read = " (from the heartbeats)" if view.from_beats else f" (aggregates of the last {view.until - view.since:.0f} s)"
    human = (f"{view.reporting} workers ({counts}), {view.answers_per_s:,.0f} answers/s, {view.disagreeing} "
             f"disagreeing{read}\n\n"
             + table(("worker", "state", "seen", "answers", "fail-safe", "tiers", "override", "disagrees", "epoch",
                      "skew", "error", "version"), rows))
    if more:
        human += f"\n… the first {FLEET_ROWS} listed: --limit N for more, --state/--host/--search to narrow"
    emit(ctx, {}, human)


def _fleet_hosts(ctx: click.Context, clock: PanicClock, host: str | None, deadline_s: float) -> None:
    view = read_hosts(clock, host=host, deadline_s=deadline_s)
    doc = {"now": view.now, "hosts": view.hosts, "scanned": view.scanned, "complete": view.complete,
           "invalid": view.invalid}
    rows = [(name, sum(per.values()), *per.values()) for name, per in view.hosts.items()]
    note = "" if view.complete else f"\n(from the first {view.scanned:,} heartbeats)"
    emit(ctx, doc, table(("host", "workers", *STATES), rows) + note if rows else "no workers" + note)


def _stream_json(ctx: click.Context, summary: dict[str, Any], workers: Iterator[dict[str, Any]]) -> None:
    """One strict JSON document, written as it is read: the summary's members, "workers" one element a line, and
    "ok" last. A read failing half way still closes the document: the workers listed so far, then ``"ok": false``
    with the error and the exit status (1) that the command then ends with."""
    def strict(value: Any) -> str:
        return json.dumps(_finite(value), default=str, allow_nan=False)

    click.echo("{" + "".join(f"{strict(name)}: {strict(value)}, " for name, value in summary.items())
               + '"workers": [', nl=False)
    try:
        for n, worker in enumerate(workers):
            click.echo(("," if n else "") + "\n" + strict(worker), nl=False)
    except Exception as exc:
        error = cli_error(ctx, exc)
        click.echo(f'\n], "ok": false, "error": {strict(error.message)}, "exit_status": {error.exit_code}}}')
        error.json_written = True
        raise error from exc
    click.echo('\n], "ok": true}')


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1, max=10_000),
              help="Newest entries to show.")
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The audit trail, oldest of the newest LIMIT first: operator actions and breaker state changes."""
    with operator_deadline(ctx.obj.settings.operator_read_timeout_s):
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
                yes: bool, as_json: bool) -> None:
    """Start a panic now (or back-dated); a running panic is left alone (exit 3) unless --overwrite."""
    session: Session = ctx.obj
    access = _access(session, "panic_start", "starting a panic")
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
def panic_end(ctx: click.Context, why: str, yes: bool, as_json: bool) -> None:
    """Delete the panic clock (workers still in panic start a new one)."""
    session: Session = ctx.obj
    access = _access(session, "panic_end", "ending the panic")
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
def clear(ctx: click.Context, stale_after_min: float, why: str, yes: bool, as_json: bool) -> None:
    """Force-clear a (zombie) panic clock; the reason (10+ characters) and the zombie verdict are audited."""
    if len(why.strip()) < MIN_CLEAR_REASON_CHARS:
        raise click.BadParameter(f"at least {MIN_CLEAR_REASON_CHARS} characters", param_hint="--why")
    session: Session = ctx.obj
    access = _access(session, "zombie_clear", "force-clearing the clock")
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
def override_set(ctx: click.Context, mode: str, minutes: float, why: str, yes: bool, as_json: bool) -> None:
    """Set the override MODE for --minutes (replacing any override).

    force_calm under the two-person rule (BREAKER_TWO_PERSON_RULE, on by default: the CLI always talks to a
    real target) is filed as a request instead, which a second verified operator approves in the console."""
    session: Session = ctx.obj
    _check_length(minutes, session)
    rule = two_person_rule_applies(session.settings.two_person_rule, embedded=session.sandbox)
    calm = mode == OverrideMode.FORCE_CALM.value
    requesting = rule and calm
    write = "force_calm_request" if requesting else "break_glass" if calm and not session.sandbox else "override_set"
    access = _access(session, write, "requesting force_calm" if requesting else f"setting {mode}")
    _confirm(session, f"{'Request' if requesting else 'Set'} override {mode} for {minutes:g} min", yes)
    result = set_override_or_request(session.clock(), session.trail(), access, mode=mode, minutes=minutes, why=why,
                                     two_person_rule=rule, max_minutes=session.settings.max_override_min,
                                     sandbox=session.sandbox)
    if isinstance(result, PendingRequest):
        emit(ctx, {"requested": {"id": result.id, "mode": mode, "minutes": result.minutes, "who": result.requester,
                                 "why": result.why, "expires_in_s": result.left_s, "digest": result.digest}},
             f"force_calm requested for {minutes:g} min (request {result.id}, digest {result.digest}): a second "
             f"verified approver approves it (console, or `override approve`) within {format_duration(result.left_s)} "
             f"(two-person rule); audited as {access.who}")
        return
    emit(ctx, {"override": override_json(result)},
         f"override {result.mode.value} until {when(result.until)}; audited as {access.who}")


@override.command("extend")
@click.option("--minutes", required=True, type=Minutes(min=0, min_open=True), help="Minutes to add.")
@write_options
@click.pass_context
def override_extend(ctx: click.Context, minutes: float, why: str, yes: bool, as_json: bool) -> None:
    """Move the end of the override in force --minutes later (exit 3 when none is in force, or for force_calm
    under the two-person rule: its length was approved, a longer one is a new request)."""
    session: Session = ctx.obj
    _check_length(minutes, session)
    access = _access(session, "override_extend", "extending an override")
    _confirm(session, f"Extend the override by {minutes:g} min", yes)
    result = extend_override(session.clock(), session.trail(), access, minutes=minutes, why=why,
                             max_minutes=session.settings.max_override_min,
                             two_person_rule=two_person_rule_applies(session.settings.two_person_rule,
                                                                     embedded=session.sandbox),
                             sandbox=session.sandbox)
    emit(ctx, {"override": override_json(result)},
         f"override {result.mode.value} now until {when(result.until)}; audited as {access.who}")


@override.command("clear")
@write_options
@click.pass_context
def override_clear(ctx: click.Context, why: str, yes: bool, as_json: bool) -> None:
    """Remove the override, and withdraw a pending force_calm request: workers go back to their own answers
    within one interval, and no calm is coming."""
    session: Session = ctx.obj
    access = _access(session, "override_clear", "clearing an override")
    _confirm(session, "Clear the override (and withdraw any pending force_calm request)", yes)
    clock = session.clock()
    waiting = pending_request(clock)
    existed = clear_override(clock, session.trail(), access, why=why)
    withdrawn = waiting.id if waiting is not None else None
    emit(ctx, {"existed": existed, "withdrawn": withdrawn, "who": access.who},
         ("override cleared" if existed else "there was no override")
         + (f"; force_calm request {withdrawn} withdrawn" if withdrawn else "") + f"; audited as {access.who}")


@override.command("pending")
@json_option
@click.pass_context
def override_pending(ctx: click.Context, as_json: bool) -> None:
    """The force_calm request waiting for a second person, with the id and digest an approval names."""
    request = pending_request(ctx.obj.clock())
    if request is None:
        emit(ctx, {"pending": None}, "no force_calm request is waiting")
        return
    doc = {"id": request.id, "digest": request.digest, "mode": request.mode, "minutes": request.minutes,
           "why": request.why, "requester": request.requester, "requester_auth": request.requester_auth,
           "at": request.at, "left_s": request.left_s}
    emit(ctx, {"pending": doc},
         f"request {request.id} (digest {request.digest}): {printable(request.requester)} asks for force_calm "
         f"for {request.minutes:g} min: {printable(request.why)}; lapses in {request.left_s:.0f} s")


@override.command("approve")
@click.argument("request_id")
@click.option("--digest", required=True, help="The request's digest as `override pending` showed it.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def override_approve(ctx: click.Context, request_id: str, digest: str, yes: bool, as_json: bool) -> None:
    """Approve another person's force_calm request REQUEST_ID (an approver's verified identity; the digest binds
    what you read: a changed request is refused)."""
    session: Session = ctx.obj
    access = _access(session, "force_calm_approve", "approving force_calm")
    _confirm(session, f"Approve force_calm request {request_id}", yes)
    result = approve_force_calm(session.clock(), session.trail(), access, request_id=request_id, digest=digest,
                                max_minutes=session.settings.max_override_min)
    emit(ctx, {"override": override_json(result)},
         f"force_calm on until {when(result.until)}: {result.who}")


# ---- tokens -----------------------------------------------------------------------------------------------


@cli.group()
def token() -> None:
    """API tokens for the CLI (admins issue and revoke them; a token is shown once)."""


@token.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["viewer", "operator", "approver", "admin"]))
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 30d, 12h, 90m, 45s; `never` for none.")
@click.option("--why", default="", help="Reason, recorded in the audit trail.")
@json_option
@click.pass_context
def token_create(ctx: click.Context, name: str, role: str, expires: str, why: str, as_json: bool) -> None:
    """Issue a token for NAME with ROLE and print it once (store it in a secret manager or a 0600 file)."""
    try:
        expires_s = None if expires.strip().lower() == "never" else parse_duration(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    session: Session = ctx.obj
    access = _access(session, "token_create", "creating a token")
    secret, record = session.tokens().create(session.trail(), access, name=name, role=role, expires_s=expires_s,
                                             why=why or f"token for {name}")
    emit(ctx, {"token": secret, **record.public(record.created)}, secret)  # stdout: the token only
    click.echo(f"token {record.id} for {printable(record.name)} ({record.role}), expires "
               f"{when(record.expires) if record.expires else 'never'}: shown once, store it now; audited as "
               f"{printable(access.who)}", err=True)


@token.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """Every token's id, name, role, created, expiry and state (no secrets: none are stored)."""
    session: Session = ctx.obj
    store = session.tokens()
    now = store.now()
    records = store.list()
    rows = [(r.id, r.name, r.role, when(r.created), when(r.expires) if r.expires else "never", r.state(now),
             r.created_by) for r in records]
    emit(ctx, {"tokens": [r.public(now) for r in records]},
         table(("id", "name", "role", "created", "expires", "state", "by"), rows) if rows else "no tokens")


@token.command("revoke")
@click.argument("token_id")
@click.option("--why", default="", help="Reason, recorded in the audit trail.")
@json_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, why: str, as_json: bool) -> None:
    """Revoke token TOKEN_ID at once (it stays listed as revoked)."""
    session: Session = ctx.obj
    access = _access(session, "token_revoke", "revoking a token")
    if not session.tokens().revoke(session.trail(), access, token_id, why=why or "revoked"):
        raise CliError(f"no token {token_id}: nothing written", EXIT_REFUSED)
    emit(ctx, {"revoked": token_id}, f"token {token_id} revoked; audited as {access.who}")


@cli.command()
@json_option
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Who the given credentials are: name, role, credential kind (nothing written)."""
    principal = ctx.obj.principal()
    emit(ctx, {"name": principal.name, "who": principal.who, "role": principal.role_name, "auth": principal.auth,
               "verified": principal.verified},
         f"{principal.who} ({principal.role_name or 'no role'}, {principal.auth})")


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
        server, _ = serve_exporter(clock, host=host, port=port, interval_s=session.settings.refresh_interval_s,
                                   max_override_s=session.settings.max_override_min * 60)
    except OSError as exc:  # not Redis's fault: the listening address
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED) from exc
    click.echo(f"vix-breaker exporter: http://{host}:{server.server_port}/metrics for {session.target}", err=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


@cli.command()
@click.option("--metrics-port", default=None, type=click.IntRange(0, 65535),
              help="Serve the notifier's metrics on http://127.0.0.1:PORT/metrics (default: none).")
@click.option("--consumer", default=None, help="Consumer name in the group (default: the host name).")
@click.option("--tries", default=8, show_default=True, type=click.IntRange(1, 100), help="Tries per event and target.")
@click.option("--backoff-s", default=1.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Wait after the first failed try; doubled after each further one (with jitter).")
@click.option("--backoff-cap-s", default=60.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Longest wait between two tries.")
@click.option("--timeout-s", default=10.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Longest one try may take (connect, send and the whole answer).")
@click.option("--claim-idle-s", default=60.0, show_default=True, type=click.FloatRange(0.1, 86400),
              help="Take over another consumer's pending entries idle this long (a crashed notifier).")
@click.option("--from-oldest", is_flag=True,
              help="A new group starts at the oldest audit entry (default: at the next new one).")
@click.pass_context
def notify(ctx: click.Context, metrics_port: int | None, consumer: str | None, tries: int, backoff_s: float,
           backoff_cap_s: float, timeout_s: float, claim_idle_s: float, from_oldest: bool) -> None:
    """POST every audit entry to the configured webhooks, signed, at least once (docs/notifications.md).

    Runs in the foreground until Ctrl-C or SIGTERM. Targets: VIX_BREAKER_WEBHOOK_URL + VIX_BREAKER_WEBHOOK_SECRET,
    or VIX_BREAKER_WEBHOOKS=targets.toml."""
    import signal

    from .notify import Notifier, NotifierMetrics, RetryPolicy, TargetsError, load_targets

    session: Session = ctx.obj
    try:
        targets = load_targets(os.environ)
    except TargetsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if not session.settings.redis_url:
        raise CliError("REDIS_URL is not set (or pass --redis-url)", EXIT_USAGE)
    configure_logging(session.settings.log_level, session.settings.log_format)
    block_ms = 1000
    client = redis_client(session.settings.redis_url,
                          timeout_ms=max(session.settings.redis_timeout_ms, block_ms + 2000.0))
    session._client = client  # closed by the group on the way out
    client.ping()
    metrics = NotifierMetrics()
    server = None
    if metrics_port is not None:
        try:
            server, _ = metrics.serve(metrics_port)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{metrics_port}: {exc.strerror or exc}", EXIT_FAILED) from exc
    notifier = Notifier(client, targets, key_prefix=session.settings.key_prefix, consumer=consumer,
                        policy=RetryPolicy(tries=tries, base_s=backoff_s, cap_s=backoff_cap_s, timeout_s=timeout_s),
                        claim_idle_s=claim_idle_s, block_ms=block_ms, start_id="0" if from_oldest else "$",
                        metrics=metrics)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: notifier.stop.set())
    where = f", metrics on http://127.0.0.1:{server.server_port}/metrics" if server is not None else ""
    click.echo(f"vix-breaker notify: {len(targets)} target(s) for {session.target}{where}", err=True)
    try:
        notifier.run()
    finally:
        if server is not None:
            server.shutdown()


def main() -> None:
    """Console script entry point (``vix-breaker``). Whatever escapes the commands' own handling (the group's
    guard) ends as one line on stderr and exit 1, never a traceback."""
    try:
        cli(prog_name="vix-breaker")
    except Exception as exc:
        click.echo(f"vix-breaker: unexpected error: {type(exc).__name__}: {printable(str(exc))[:300]}", err=True)
        sys.exit(EXIT_FAILED)


from . import cli_schedule  # noqa: E402,F401  (registers override schedule / list / cancel on the group above)
