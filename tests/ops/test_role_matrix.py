"""The role matrix of docs/access.md, cell by cell, through the breaker.ops API and the CLI (CliRunner, and a real
process for a few cells): allowed exactly where the table says yes; otherwise refused (RoleRefused / exit 3) with
nothing written and nothing audited. The console's door is tests/console/test_role_matrix_page.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from breaker import PanicClock
from breaker.ops.actions import end_panic, force_clear, start_panic
from breaker.ops.approvals import approve_force_calm, request_force_calm, set_override_or_request
from breaker.ops.audit import AuditTrail
from breaker.ops.cli import cli
from breaker.ops.overrides import clear_override, extend_override, set_override
from breaker.ops.roles import Principal, RoleRefused
from breaker.ops.schedule import approve_window, cancel_window, schedule_override
from breaker.ops.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[2]
SHARED = "matrix shared password"


def read_matrix() -> dict[tuple[str, str], bool]:
    """The table under "## The matrix" in docs/access.md: (write, column) -> allowed."""
    text = (ROOT / "docs" / "access.md").read_text(encoding="utf-8")
    section = text.split("## The matrix", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line)]
    header, body = rows[0], rows[1:]
    return {(row[0], column): row[i] == "yes" for row in body for i, column in enumerate(header) if i > 0}


MATRIX = read_matrix()
WRITES = sorted({write for write, _ in MATRIX})
COLUMNS = ["not logged in", "viewer", "self-declared", "operator", "approver", "admin"]
PRINCIPALS = {
    "not logged in": Principal.anonymous(),
    "viewer": Principal.of("vera", "viewer"),
    "self-declared": Principal.of("sam", "operator", "shared"),
    "operator": Principal.of("olga", "operator"),
    "approver": Principal.of("april", "approver"),
    "admin": Principal.of("adam", "admin"),
}


def test_the_docs_table_covers_every_write_and_column():
    """Sixteen writes (issue 19's list plus break-glass, and issue 23's scheduled windows) by six columns."""
    assert len(WRITES) == 16 and {c for _, c in MATRIX} == set(COLUMNS) and len(MATRIX) == 96


class World:
    """A namespace with something for every write to act on: a panic, a force_full override, a pending request
    by someone else (for approvals), a token (for revocations), and for the schedule's writes a planned window
    (force_full to cancel, another person's force_calm waiting for approval)."""

    def __init__(self, client, write: str) -> None:
        self.client, self.clock, self.trail = client, PanicClock(client), AuditTrail(client)
        self.tokens = TokenStore(client)
        setup = Principal.of("setup", "admin")
        start_panic(self.clock, self.trail, setup, now=self.clock.server_now(), why="matrix")
        set_override(self.clock, self.trail, setup, mode="force_full", minutes=10, why="matrix")
        self.request = None
        if write == "approve force_calm":
            self.request = request_force_calm(self.clock, self.trail, Principal.of("rita", "operator"), minutes=5,
                                              why="matrix request")
        self.window = None
        if write == "override cancel":
            self.window = schedule_override(self.clock, self.trail, setup, mode="force_full", minutes=5, why="m",
                                            after_s=7200)
        if write == "override approve-window":
            self.window = schedule_override(self.clock, self.trail, Principal.of("rita", "operator"),
                                            mode="force_calm", minutes=5, why="m", after_s=7200, two_person_rule=True)
        _, self.victim = self.tokens.create(self.trail, setup, name="victim", role="viewer", expires_s=None,
                                            why="matrix")

    def snapshot(self) -> dict[bytes, bytes]:
        """Every key's value (DUMP), but the login limiter's counters (a CLI password login counts attempts)."""
        return {key: self.client.dump(key) for key in sorted(self.client.keys("*"))
                if b"login_failures:" not in key}

    def ops(self, write: str, who: Principal) -> None:
        c, t, now = self.clock, self.trail, self.clock.server_now()
        calls = {
            "panic start": lambda: start_panic(c, t, who, now=now, why="m", overwrite=True),
            "panic end": lambda: end_panic(c, t, who, now=now, why="m"),
            "clear": lambda: force_clear(c, t, who, now=now, why="matrix reason"),
            "override set force_full": lambda: set_override(c, t, who, mode="force_full", minutes=5, why="m"),
            "override extend": lambda: extend_override(c, t, who, minutes=1, why="m"),
            "override clear": lambda: clear_override(c, t, who, why="m"),
            "request force_calm": lambda: request_force_calm(c, t, who, minutes=5, why="m"),
            "approve force_calm": lambda: approve_force_calm(c, t, who, request_id=self.request.id,
                                                             digest=self.request.digest),
            "force_calm alone (break-glass)": lambda: set_override_or_request(
                c, t, who, mode="force_calm", minutes=5, why="m", two_person_rule=False),
            "override schedule force_full": lambda: schedule_override(c, t, who, mode="force_full", minutes=5,
                                                                      why="m", after_s=3600),
            "override schedule force_calm": lambda: schedule_override(c, t, who, mode="force_calm", minutes=5,
                                                                      why="m", after_s=3600, two_person_rule=True),
            "override schedule force_calm alone (break-glass)": lambda: schedule_override(
                c, t, who, mode="force_calm", minutes=5, why="m", after_s=3600, two_person_rule=False),
            "override cancel": lambda: cancel_window(c, t, who, window_id=self.window.id, why="m"),
            "override approve-window": lambda: approve_window(c, t, who, window_id=self.window.id,
                                                              digest=self.window.digest()),
            "token create": lambda: self.tokens.create(t, who, name="new", role="viewer", expires_s=60, why="m"),
            "token revoke": lambda: self.tokens.revoke(t, who, self.victim.id, why="m"),
        }
        calls[write]()

    def cli_args(self, write: str) -> tuple[list[str], dict[str, str]]:
        args = {
            "panic start": ["panic", "start", "--why", "m", "--overwrite"],
            "panic end": ["panic", "end", "--why", "m"],
            "clear": ["clear", "--why", "matrix reason"],
            "override set force_full": ["override", "set", "force_full", "--minutes", "5", "--why", "m"],
            "override extend": ["override", "extend", "--minutes", "1", "--why", "m"],
            "override clear": ["override", "clear", "--why", "m"],
            "request force_calm": ["override", "set", "force_calm", "--minutes", "5", "--why", "m"],
            "approve force_calm": ["override", "approve", self.request.id if self.request else "-",
                                   "--digest", self.request.digest if self.request else "-"],
            "force_calm alone (break-glass)": ["override", "set", "force_calm", "--minutes", "5", "--why", "m"],
            "override schedule force_full": ["override", "schedule", "force_full", "--start", "+1h", "--length", "5m",
                                             "--why", "m"],
            "override schedule force_calm": ["override", "schedule", "force_calm", "--start", "+1h", "--length", "5m",
                                             "--why", "m"],
            "override schedule force_calm alone (break-glass)": ["override", "schedule", "force_calm", "--start", "+1h",
                                                                 "--length", "5m", "--why", "m"],
            "override cancel": ["override", "cancel", self.window.id if self.window else "-", "--why", "m"],
            "override approve-window": ["override", "approve-window", self.window.id if self.window else "-",
                                        "--digest", self.window.digest() if self.window else "-"],
            "token create": ["token", "create", "new", "--role", "viewer", "--expires", "1h"],
            "token revoke": ["token", "revoke", self.victim.id],
        }[write]
        env = {"BREAKER_TWO_PERSON_RULE": "false"} if write.endswith("alone (break-glass)") else {}
        return ["--json", *args] + ([] if write.startswith("token") else ["--yes"]), env

    def credentials(self, column: str) -> dict[str, str | None]:
        """What a CLI user in ``column`` sets: a token minted for the column's principal, the shared password, or
        nothing."""
        who = PRINCIPALS[column]
        if column == "not logged in":
            return {"VIX_BREAKER_TOKEN": None, "VIX_BREAKER_USER": None, "VIX_BREAKER_PASSWORD": None}
        if column == "self-declared":
            return {"VIX_BREAKER_TOKEN": None, "VIX_BREAKER_USER": who.name, "VIX_BREAKER_PASSWORD": SHARED}
        token, _ = self.tokens.create(self.trail, Principal.of("setup", "admin"), name=who.name, role=who.role,
                                      expires_s=None, why="matrix")
        return {"VIX_BREAKER_TOKEN": token, "VIX_BREAKER_USER": None, "VIX_BREAKER_PASSWORD": None}


CELLS = [(write, column) for write in WRITES for column in COLUMNS]


@pytest.mark.parametrize(("write", "column"), CELLS)
def test_ops_api(real_redis, write, column):
    """breaker.ops: an allowed write succeeds and its audit entries carry the writer's auth and role; a refused one
    raises RoleRefused and changes nothing."""
    world = World(real_redis, write)
    before, audited = world.snapshot(), len(world.trail.entries())
    who = PRINCIPALS[column]
    if MATRIX[write, column]:
        world.ops(write, who)
        assert world.snapshot() != before
        new = world.trail.entries()[audited:]
        assert new and all((e.auth, e.role) == (who.auth, who.role_name) for e in new), new
    else:
        with pytest.raises(RoleRefused):
            world.ops(write, PRINCIPALS[column])
        assert world.snapshot() == before and len(world.trail.entries()) == audited


@pytest.mark.parametrize(("write", "column"), CELLS)
def test_cli(real_redis, redis_url, write, column):
    """The CLI (click's runner): exit 0 where allowed; exit 3 with one JSON error document otherwise, nothing
    written or audited."""
    world = World(real_redis, write)
    env = {"REDIS_URL": redis_url, "BREAKER_OPERATOR_PASSWORD": SHARED, "BREAKER_SECRETS_FILE": "/nonexistent",
           **world.credentials(column)}
    args, extra = world.cli_args(write)
    before, audited = world.snapshot(), len(world.trail.entries())
    done = CliRunner().invoke(cli, args, env={**env, **extra})
    if MATRIX[write, column]:
        assert done.exit_code == 0, done.output
        assert world.snapshot() != before
    else:
        assert done.exit_code == 3, done.output
        assert json.loads(done.stdout)["ok"] is False and done.stderr.count("\n") == 1
        assert world.snapshot() == before and len(world.trail.entries()) == audited


@pytest.mark.parametrize(("write", "column"), [
    ("panic start", "viewer"), ("panic start", "self-declared"), ("approve force_calm", "approver"),
    ("approve force_calm", "operator"), ("token create", "admin"), ("token create", "not logged in"),
    ("override schedule force_calm", "self-declared"), ("override approve-window", "approver"),
])
def test_cli_as_a_real_process(real_redis, redis_url, write, column):
    """A few cells as `python -m breaker`: the same exit statuses as in-process."""
    world = World(real_redis, write)
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "BREAKER_OPERATOR_PASSWORD": SHARED,
           "BREAKER_SECRETS_FILE": "/nonexistent",
           **{k: v for k, v in world.credentials(column).items() if v is not None}}
    args, extra = world.cli_args(write)
    before = world.snapshot()
    done = subprocess.run([sys.executable, "-m", "breaker", *args], cwd=ROOT, env={**env, **extra},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == (0 if MATRIX[write, column] else 3), done.stderr
    assert (world.snapshot() == before) is (not MATRIX[write, column])
