"""Who the CLI writes as: API tokens (create, use, list, expire, revoke), console credentials from a file or the
environment, the bootstrap of the first admin token, secrets never in argv or a child's environment, and
issue 19 findings 1 and 2 through the CLI as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from breaker import PanicClock
from breaker.ops.approvals import pending_request
from breaker.ops.audit import AuditTrail
from breaker.ops.cli import cli
from breaker.ops.cli_identity import CliSecrets
from breaker.ops.credentials import hash_password
from breaker.ops.roles import Principal, RoleRefused
from breaker.ops.tokens import TokenRefused, TokenStore
from breaker.override import OVERRIDE_KEY_NAME

ROOT = Path(__file__).resolve().parents[2]
SHARED = "the shared team password"
PASSWORDS = {"root": "root's own passphrase", "alice": "alice's own passphrase", "carol": "carol's passphrase"}


@pytest.fixture
def secrets_file(tmp_path):
    """A secrets.toml as the console reads it: both forms of [operators], [operator_roles], the shared password."""
    path = tmp_path / "secrets.toml"
    path.write_text(
        f'operator_password = "{SHARED}"\n[operators]\n'
        f'root = {{ hash = "{hash_password(PASSWORDS["root"])}", role = "admin" }}\n'
        f'alice = "{hash_password(PASSWORDS["alice"])}"\n'
        f'carol = "{hash_password(PASSWORDS["carol"])}"\n'
        '[operator_roles]\ncarol = "approver"\n', encoding="utf-8")
    return path


@pytest.fixture
def env(redis_url, secrets_file):
    """A clean environment for the CLI: the target and the secrets file, no credentials."""
    return {"REDIS_URL": redis_url, "BREAKER_SECRETS_FILE": str(secrets_file), "PATH": "/usr/bin:/bin"}


def invoke(env, *args, input=None, **extra):
    runner_env = {**env, "VIX_BREAKER_TOKEN": None, "VIX_BREAKER_USER": None, "VIX_BREAKER_PASSWORD": None, **extra}
    return CliRunner().invoke(cli, list(args), input=input, env=runner_env)


def process(env, *args, input=None, **extra):
    return subprocess.run([sys.executable, "-m", "breaker", *args], cwd=ROOT, env={**env, **extra}, input=input,
                          capture_output=True, text=True, timeout=60)


def as_user(name, password=None):
    return {"VIX_BREAKER_USER": name, "VIX_BREAKER_PASSWORD": password or PASSWORDS[name]}


def entries(client):
    return [(e.action, e.who, e.auth, e.role) for e in AuditTrail(client).entries()]


def test_token_lifecycle_create_use_list_expire_revoke(env, real_redis, tmp_path):
    """The bootstrap admin (console credentials, password from a file) issues a token; it is printed once,
    stored only as a salted hash; it writes as its name with its role; list shows it without a secret; a
    short-lived one expires by server time; a revoked one is refused at once (exit 3)."""
    password_file = tmp_path / "root.pw"
    password_file.write_text(PASSWORDS["root"] + "\n")
    created = invoke(env, "--password-file", str(password_file), "token", "create", "ci-deploy", "--role",
                     "operator", "--expires", "30d", "--why", "deploy pipeline", VIX_BREAKER_USER="root")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("vxb_") and "shown once" in created.stderr
    token_id = token.split("_")[1]
    stored = real_redis.hget("brain:tokens", token_id).decode()
    assert token.split("_", 2)[2] not in stored and set(json.loads(stored)) >= {"salt", "hash", "role", "expires"}

    who = invoke(env, "--json", "whoami", VIX_BREAKER_TOKEN=token)
    assert json.loads(who.stdout) | {"ok": True} == {"ok": True, "name": "ci-deploy", "who": "ci-deploy",
                                                     "role": "operator", "auth": f"token:{token_id}",
                                                     "verified": True}
    started = invoke(env, "panic", "start", "--why", "pipeline drill", "--yes", VIX_BREAKER_TOKEN=token)
    assert started.exit_code == 0, started.output
    assert entries(real_redis)[-1] == ("panic_start", "ci-deploy", f"token:{token_id}", "operator")

    listed = json.loads(invoke(env, "--json", "token", "list").stdout)["tokens"]
    assert [(t["id"], t["name"], t["role"], t["state"]) for t in listed] == [(token_id, "ci-deploy", "operator",
                                                                             "active")]
    assert token not in invoke(env, "token", "list").stdout

    brief = json.loads(invoke(env, "--json", "token", "create", "brief", "--role", "operator", "--expires", "1s",
                              **as_user("root")).stdout)["token"]
    deadline = time.monotonic() + 10
    while invoke(env, "whoami", VIX_BREAKER_TOKEN=brief).exit_code == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    expired = invoke(env, "--json", "panic", "end", "--why", "too late", "--yes", VIX_BREAKER_TOKEN=brief)
    assert expired.exit_code == 3 and "expired" in json.loads(expired.stdout)["error"]

    refused = invoke(env, "token", "revoke", token_id, VIX_BREAKER_TOKEN=token)  # an operator cannot revoke
    assert refused.exit_code == 3 and "admin" in refused.stderr
    revoked = invoke(env, "token", "revoke", token_id, "--why", "pipeline retired", **as_user("root"))
    assert revoked.exit_code == 0, revoked.output
    after = invoke(env, "panic", "end", "--why", "after revoke", "--yes", VIX_BREAKER_TOKEN=token)
    assert after.exit_code == 3 and "revoked" in after.stderr
    assert real_redis.exists("brain:panic_start_ts") == 1  # neither refused end wrote anything
    assert [a for a, *_ in entries(real_redis)] == ["token_create", "panic_start", "token_create", "token_revoke"]


def test_token_expiry_follows_the_injected_clock(real_redis):
    """TokenStore's clock is injectable: a 30-day token is refused one second after its 30 days."""
    now = [1_800_000_000.0]
    store = TokenStore(real_redis, now=lambda: now[0])
    token, record = store.create(AuditTrail(real_redis), Principal.of("root", "admin"), name="Runbook", role="approver",
                                 expires_s=30 * 86400, why="runbook")
    assert store.verify(token) == Principal("Runbook", Principal.of("x", "approver").role, f"token:{record.id}")
    now[0] += 30 * 86400 - 1
    assert store.verify(token).name == "Runbook"
    now[0] += 1
    with pytest.raises(TokenRefused, match="expired"):
        store.verify(token)
    with pytest.raises(TokenRefused, match="does not match"):
        store.verify(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(TokenRefused, match="malformed"):
        store.verify("hunter2")


def test_only_a_verified_admin_creates_tokens(env, real_redis):
    """Token creation needs a verified admin: an approver, a self-declared name (the shared password) and
    nobody at all are refused with exit 3 and nothing stored or audited; a wrong password is audited."""
    for extra in (as_user("carol"), as_user("root", SHARED), as_user("zed", SHARED), {}):
        done = invoke(env, "--json", "token", "create", "x", "--role", "admin", **extra)
        assert done.exit_code == 3, (extra, done.output)
        assert json.loads(done.stdout)["ok"] is False
    assert not real_redis.exists("brain:tokens")
    assert [a for a, *_ in entries(real_redis)] == ["login_failed"]  # root with the shared password


def test_no_secret_in_argv_or_in_the_environment_of_a_child(env, real_redis, tmp_path):
    """While the CLI waits at its confirmation, /proc shows no token and no password in its command line, nor in
    the command line or environment of any process it started; with --token-file not in its own environment
    either. The CLI also drops the variables from its environment once read."""
    token, _ = TokenStore(real_redis).create(AuditTrail(real_redis), Principal.of("root", "admin"), name="alice",
                                             role="operator", expires_s=None, why="t")
    token_file = tmp_path / "token"
    token_file.write_text(token)
    secrets = (token, token.split("_", 2)[2], PASSWORDS["alice"])
    for extra, args in (({}, ["--token-file", str(token_file)]), ({"VIX_BREAKER_TOKEN": token}, []),
                        (as_user("alice"), [])):
        cli_proc = subprocess.Popen([sys.executable, "-m", "breaker", *args, "panic", "start", "--why", "drill"],
                                    cwd=ROOT, env={**env, **extra}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while b"Continue?" not in _peek_stderr(cli_proc) and time.monotonic() < deadline:
                time.sleep(0.05)
            seen = [_proc_text(cli_proc.pid, "cmdline")]
            for child in _descendants(cli_proc.pid):
                seen += [_proc_text(child, "cmdline"), _proc_text(child, "environ")]
            if not extra:
                seen.append(_proc_text(cli_proc.pid, "environ"))
            elif "VIX_BREAKER_TOKEN" in extra:  # the check reads /proc for real: the variable it was given is there
                assert token in _proc_text(cli_proc.pid, "environ")
            assert b"Continue?" in _peek_stderr(cli_proc)
            assert not any(secret in text for secret in secrets for text in seen), args or extra
        finally:
            cli_proc.communicate("n\n", timeout=30)
    scrubbed = {"VIX_BREAKER_TOKEN": token, "VIX_BREAKER_PASSWORD": "pw", "VIX_BREAKER_USER": "alice"}
    CliSecrets(scrubbed, token_file=None, password_file=None)
    assert scrubbed == {"VIX_BREAKER_USER": "alice"}


_stderr_seen: dict[int, bytes] = {}


def _peek_stderr(proc):
    """Read what the process has written to stderr so far, without blocking."""
    os.set_blocking(proc.stderr.fileno(), False)
    try:
        chunk = proc.stderr.buffer.read() if hasattr(proc.stderr, "buffer") else None
    except (BlockingIOError, TypeError):
        chunk = None
    _stderr_seen[proc.pid] = _stderr_seen.get(proc.pid, b"") + (chunk or b"")
    return _stderr_seen[proc.pid]


def _proc_text(pid, name):
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _descendants(pid):
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children + [d for c in children for d in _descendants(c)]


def test_finding_1_through_the_cli_a_self_declared_name_neither_requests_nor_approves(env, real_redis):
    """Issue 19 finding 1, as a real process: the CLI's --who is gone (exit 2); the shared password (any name)
    cannot request force_calm or approve; verified alice cannot approve her own request under another
    credential (her console password, her name in capitals); nothing is written by any refusal."""
    shared = {"VIX_BREAKER_USER": "zed", "VIX_BREAKER_PASSWORD": SHARED}
    assert process(env, "override", "set", "force_calm", "--minutes", "5", "--why", "w", "--who", "alice",
                   "--yes").returncode == 2
    alias = process(env, "--json", "override", "set", "force_calm", "--minutes", "5", "--why", "alias", "--yes",
                    **shared)
    assert alias.returncode == 3 and "self-declared" in json.loads(alias.stdout)["error"]
    assert pending_request(PanicClock(real_redis)) is None
    token, _ = TokenStore(real_redis).create(AuditTrail(real_redis), Principal.of("root", "admin"), name="Alice",
                                             role="approver", expires_s=None, why="t")
    requested = process(env, "--json", "override", "set", "force_calm", "--minutes", "5", "--why", "stuck",
                        "--yes", VIX_BREAKER_TOKEN=token)
    assert requested.returncode == 0, requested.stderr
    request = json.loads(requested.stdout)["requested"]
    for who in (shared, {"VIX_BREAKER_USER": "ALICE", "VIX_BREAKER_PASSWORD": PASSWORDS["alice"]}):
        approved = process(env, "override", "approve", request["id"], "--digest", request["digest"], "--yes", **who)
        assert approved.returncode == 3, approved.stderr
    assert not real_redis.exists(f"brain:{OVERRIDE_KEY_NAME}")
    carol = process(env, "override", "approve", request["id"], "--digest", request["digest"], "--yes",
                    **as_user("carol"))
    assert carol.returncode == 0, carol.stderr
    assert [e[:3] for e in entries(real_redis)[-2:]] == [("override_set", "Alice, approved by carol", "password"),
                                                       ("force_calm_approved", "carol", "password")]


def test_finding_2_through_the_cli_a_self_declared_name_cannot_replace_a_request(env, real_redis):
    """Issue 19 finding 2, as a real process: verified bob's pending request survives self-declared "bob"."""
    token, _ = TokenStore(real_redis).create(AuditTrail(real_redis), Principal.of("root", "admin"), name="bob",
                                             role="operator", expires_s=None, why="t")
    assert process(env, "override", "set", "force_calm", "--minutes", "5", "--why", "stuck", "--yes",
                   VIX_BREAKER_TOKEN=token).returncode == 0
    before = pending_request(PanicClock(real_redis))
    fake = process(env, "override", "set", "force_calm", "--minutes", "60", "--why", "mine", "--yes",
                   VIX_BREAKER_USER=" Bob", VIX_BREAKER_PASSWORD=SHARED)
    assert fake.returncode == 3 and "self-declared" in fake.stderr
    after = pending_request(PanicClock(real_redis))
    assert (after.id, after.minutes, after.why, after.requester) == (before.id, 5, "stuck", "bob")


def test_override_clear_withdraws_a_pending_request_from_the_cli(env, real_redis):
    """Issue 20 item 5: `override clear` also withdraws a waiting force_calm request, and says so."""
    token, _ = TokenStore(real_redis).create(AuditTrail(real_redis), Principal.of("root", "admin"), name="alice",
                                             role="operator", expires_s=None, why="t")
    assert invoke(env, "override", "set", "force_calm", "--minutes", "5", "--why", "stuck", "--yes",
                  VIX_BREAKER_TOKEN=token).exit_code == 0
    request = pending_request(PanicClock(real_redis))
    cleared = invoke(env, "--json", "override", "clear", "--why", "recovered", "--yes", VIX_BREAKER_TOKEN=token)
    assert cleared.exit_code == 0 and json.loads(cleared.stdout)["withdrawn"] == request.id
    assert pending_request(PanicClock(real_redis)) is None
    assert entries(real_redis)[-1] == ("force_calm_withdrawn", "alice", f"token:{token.split('_')[1]}", "operator")


def test_unauthenticated_writes_and_bad_credentials_are_refused(env, real_redis):
    """No credentials, a malformed token, a wrong password: exit 3 with one line (JSON with --json); reads work."""
    assert invoke(env, "status").exit_code == 0
    for extra in ({}, {"VIX_BREAKER_TOKEN": "vxb_nope"}, as_user("alice", "wrong")):
        done = invoke(env, "--json", "panic", "start", "--why", "x", "--yes", **extra)
        assert done.exit_code == 3 and json.loads(done.stdout)["exit_status"] == 3, (extra, done.output)
        assert len(done.stderr.strip().splitlines()) == 1
    assert not real_redis.exists("brain:panic_start_ts")
    with pytest.raises(RoleRefused):
        Principal.anonymous().require("x")


def test_bad_token_names_and_unreadable_secrets_are_usage_errors(env, real_redis, tmp_path):
    """A token name that could pass for another kind of name, or a secrets file that does not parse: exit 2, one
    line, nothing stored."""
    for name in ("bob (self-declared)", "alice, approved by bob", "eve\x1b[2J"):
        done = invoke(env, "token", "create", name, "--role", "viewer", **as_user("root"))
        assert done.exit_code == 2 and "letters, digits" in done.stderr, (name, done.output)
    broken = tmp_path / "broken.toml"
    broken.write_text("[operators\n")
    done = invoke({**env, "BREAKER_SECRETS_FILE": str(broken)}, "panic", "end", "--why", "x", "--yes",
                  **as_user("root"))
    assert done.exit_code == 2 and "BREAKER_SECRETS_FILE" in done.stderr
    assert not real_redis.exists("brain:tokens")


def test_revoking_a_token_revokes_the_tokens_it_issued(env, real_redis):
    """Review (identity): a leaked admin token is revoked, but the tokens it minted before that kept working, so
    whoever leaked it kept the fleet. A token is refused when any token up its chain of issuers is revoked (an
    issuer's expiry does not carry over: a CI token outlives the short-lived token that issued it)."""
    store, root = TokenStore(real_redis), Principal.of("root", "admin")
    trail = AuditTrail(real_redis)
    deputy, deputy_record = store.create(trail, root, name="deputy", role="admin", expires_s=None, why="on call")
    minted = process(env, "token", "create", "sock", "--role", "operator", "--why", "x", VIX_BREAKER_TOKEN=deputy)
    assert minted.returncode == 0, minted.stderr
    sock = minted.stdout.strip()
    store.revoke(trail, root, deputy_record.id, why="leaked")
    write = process(env, "override", "set", "force_full", "--minutes", "5", "--why", "x", "--yes",
                    VIX_BREAKER_TOKEN=sock)
    assert write.returncode == 3, (write.stdout, write.stderr)
    assert f"issued by revoked token {deputy_record.id}" in write.stderr and sock not in write.stderr + write.stdout
    assert real_redis.get(f"brain:{OVERRIDE_KEY_NAME}") is None
