"""Console login in AppTest: per-operator credentials, self-declared names, the OIDC allow-list, the limiter."""

import pytest
import streamlit as st

from breaker.ops import AuditTrail
from breaker.ops.credentials import hash_password
from tests.console.conftest import PASSWORD, login, open_console

ALICE_PASSWORD = "alice's own passphrase"


@pytest.fixture
def client_at(monkeypatch):
    """Pin what st.context reports (AppTest gives a fresh MagicMock address each run): ``client_at(ip, xff)``.

    ``ip=None`` is what Streamlit reports for a loopback peer, such as a reverse proxy on the same host."""
    def pin(ip=None, forwarded_for=None):
        headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
        monkeypatch.setattr(type(st.context), "ip_address", property(lambda self: ip))
        monkeypatch.setattr(type(st.context), "headers", property(lambda self: headers))
    pin()
    return pin


def _with_operators(at):
    at.secrets["operators"] = {"alice": hash_password(ALICE_PASSWORD)}
    return at


def _logged_in_names(at):
    return [t.value for t in at.sidebar.text] if any("logged in" in m.value for m in at.sidebar.markdown) else []


def test_per_operator_password_logs_in_verified(console_env):
    """alice's own hash from [operators] logs her in as alice, audited as a verified operator."""
    at = _with_operators(open_console("pages/drills.py"))
    at.run()
    login(at, "alice", ALICE_PASSWORD)
    assert not at.button(key="drills_start").disabled
    assert _logged_in_names(at) == ["alice"]
    [entry] = AuditTrail(console_env).entries()
    assert (entry.who, entry.action) == ("alice", "login") and "own password" in entry.why


def test_shared_password_names_are_self_declared(console_env):
    """The shared password still works, and the audit marks the name as self-declared."""
    at = _with_operators(open_console("pages/drills.py"))
    at.run()
    login(at, "bob", PASSWORD)
    assert not at.button(key="drills_start").disabled
    at.button(key="drills_end").click().run()
    whos = [e.who for e in AuditTrail(console_env).entries()]
    assert whos == ["bob (self-declared)", "bob (self-declared)"]


def test_shared_password_cannot_take_a_verified_name(console_env):
    """A name in [operators] logs in with its own password only, not the shared one."""
    at = _with_operators(open_console("pages/drills.py"))
    at.run()
    login(at, "Alice", PASSWORD)
    assert at.button(key="drills_start").disabled
    assert [e.action for e in AuditTrail(console_env).entries()] == ["login_failed"]


def test_oidc_user_not_on_the_allow_list_is_read_only(monkeypatch, console_env):
    """Issue 14 finding 4: an identity the provider accepts but BREAKER_OPERATORS does not name cannot write."""
    monkeypatch.setenv("BREAKER_OPERATORS", "ops@example.com, @brainlab.example")
    at = open_console("pages/drills.py")
    at.user = {"is_logged_in": True, "email": "mallory@evil.example"}
    at.run()
    assert at.button(key="drills_start").disabled
    assert any("not on the operator allow-list" in t.value for t in at.sidebar.text)
    at.user = {"is_logged_in": True, "email": "carol@brainlab.example"}
    at.run()
    assert not at.button(key="drills_start").disabled


def test_ten_wrong_passwords_under_other_names_do_not_lock_out_an_operator(console_env, client_at):
    """Issue 14 finding 2: every client behind a local proxy shares one address; others' failures lock nobody out."""
    at = open_console("pages/drills.py")
    for i in range(10):
        login(at, f"guess{i}", "wrong")
        assert any(e.value == "Wrong password." for e in at.sidebar.error)
    login(at, "alice", PASSWORD)
    assert not at.button(key="drills_start").disabled


def test_cache_clear_does_not_reset_the_limiter(console_env, client_at):
    """Issue 14 finding 1 (AppTest form): st.cache_resource.clear() between wrong passwords; the guesser is slowed."""
    at = open_console("pages/drills.py")
    answers = []
    for _ in range(8):
        st.cache_resource.clear()
        login(at, "mallory", "wrong")
        answers += [e.value for e in at.sidebar.error]
    assert answers[0] == "Wrong password."
    assert any(a.startswith("Too many failed logins") for a in answers), answers


def test_password_typed_as_a_name_is_not_shown_on_history(console_env):
    """Issue 14 finding 6: a failed login whose name field holds a password never shows that text on History."""
    secret = "Tr0ub4dor&3-typed-in-the-name-field"
    at = login(open_console("pages/drills.py"), secret, "wrong")
    at = open_console("pages/history.py")
    assert not at.exception
    shown = [str(v) for v in at.dataframe[0].value.to_numpy().ravel()]
    shown += [m.value for m in at.markdown] + [c.value for c in at.caption]
    shown += [chart.proto.spec for chart in at.get("plotly_chart")]
    assert any("login_failed" in s for s in shown)
    assert not any(secret in s for s in shown)
    assert not any(secret.encode() in b"".join(v for f in fields.values() for v in [f])
                   for _, fields in console_env.xrange("brain:audit"))


def test_forwarded_for_counts_only_through_trusted_proxies(monkeypatch, console_env, client_at):
    """Behind a trusted local proxy each client is its own address; without trust, X-Forwarded-For is ignored."""
    monkeypatch.setenv("BREAKER_TRUSTED_PROXIES", "127.0.0.1/32, ::1/128")
    at = open_console("pages/drills.py")
    client_at(None, "203.0.113.9")
    for _ in range(6):
        login(at, "alice", "wrong")
    assert any(e.value.startswith("Too many failed logins") for e in at.sidebar.error)
    client_at(None, "198.51.100.7")
    login(at, "alice", PASSWORD)
    assert not at.button(key="drills_start").disabled


def test_forwarded_for_from_an_untrusted_peer_is_ignored(console_env, client_at):
    """A client that is no trusted proxy cannot pick a fresh address per guess by sending X-Forwarded-For."""
    at = open_console("pages/drills.py")
    answers = []
    for i in range(8):
        client_at("198.51.100.50", f"203.0.113.{i}")
        login(at, "alice", "wrong")
        answers += [e.value for e in at.sidebar.error]
    assert any(a.startswith("Too many failed logins") for a in answers), answers


def test_finding_6_a_name_that_is_the_shared_password_never_reaches_history(console_env):
    """Issue 19 finding 6: the shared password typed as the name (and as the password, as a password manager
    might) used to log in as "<password> (self-declared)", shown on History to anyone. Now the login is refused
    with a reason next to the form, and History shows no trace of the password."""
    at = open_console("pages/history.py")
    login(at, PASSWORD, PASSWORD)
    assert not at.exception
    assert any("not a password" in e.value for e in at.error)
    assert not _logged_in_names(at)
    at.switch_page("pages/history.py").run()
    page = " ".join(str(getattr(e, "value", "")) for e in at.main)
    tables = " ".join(d.value.to_string() for d in at.dataframe)
    assert "login_failed" in tables and PASSWORD not in tables and PASSWORD not in page
    assert [e.who for e in AuditTrail(console_env).entries()] == ["(unverified name)"]


def test_a_session_follows_the_operators_current_role_and_removal(console_env):
    """Review (identity): the session kept the Principal of its login, so an operator demoted to viewer, removed
    from [operators] or given a new password in secrets.toml kept writing until they logged out. Each run now
    re-reads their entry: the current role; logged out once removed or once the password changed."""
    hashed = hash_password(ALICE_PASSWORD)
    at = open_console("pages/drills.py")
    at.secrets["operators"] = {"alice": hashed}
    at.run()
    login(at, "alice", ALICE_PASSWORD)
    assert not at.button(key="drills_start").disabled
    at.secrets["operators"] = {"alice": {"hash": hashed, "role": "viewer"}}
    at.run()
    assert at.button(key="drills_start").disabled
    assert any("logged in · viewer" in m.value for m in at.sidebar.markdown)
    at.secrets["operators"] = {"alice": hashed}
    at.run()
    assert not at.button(key="drills_start").disabled  # promoted back: same login, same password
    at.secrets["operators"] = {"alice": hash_password("a rotated passphrase")}
    at.run()
    assert at.button(key="drills_start").disabled and _logged_in_names(at) == []
    login(at, "alice", "a rotated passphrase")
    assert _logged_in_names(at) == ["alice"]
    at.secrets["operators"] = {"bob": hashed}
    at.run()
    assert at.button(key="drills_start").disabled and _logged_in_names(at) == []


def test_a_self_declared_session_ends_when_the_shared_password_changes(console_env, monkeypatch):
    """Review (identity): as above for the shared password: rotating it ends the sessions it opened."""
    at = open_console("pages/drills.py")
    at.run()
    login(at, "bob", PASSWORD)
    assert _logged_in_names(at) == ["bob (self-declared)"]
    monkeypatch.setenv("BREAKER_OPERATOR_PASSWORD", "a new shared password")
    at.secrets["operator_password"] = "a new shared password"
    at.run()
    assert _logged_in_names(at) == [] and at.button(key="drills_start").disabled
