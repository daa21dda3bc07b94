"""Console login: who is operating this session, from a password form or Streamlit's OIDC, and the sidebar.

The decisions live in ``breaker.ops.access``; this module reads Streamlit (``st.secrets``, ``st.user``,
``st.context``) and draws the login. Nothing here is kept in ``st.cache_resource`` (any browser can clear
it): the failed-login counts live in Redis, the session's operator in its own session state.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from breaker.ops import Credentials, LoginThrottle, Principal, attempt_login, oidc_operator, write_access
from breaker.ops.access import credential_stamp, session_principal
from breaker.ops.client_address import client_address, trusted_networks
from breaker.ops.target import Target
from console.shared import audit_trail, get_target, guarded

OPERATOR_KEY = "operator"
STAMP_KEY = "operator_credential_stamp"


def _secret(name: str) -> Any:
    try:
        return st.secrets.get(name)
    except Exception:  # no secrets file at all is the normal case
        return None


def credentials() -> Credentials:
    """``[operators]`` (name = scrypt hash, or {hash, role}), ``[operator_roles]`` and the shared password, from
    secrets.toml or the environment."""
    secrets = {name: _secret(name) for name in ("operators", "operator_roles", "operator_password")}
    return Credentials.from_secrets(secrets, get_target().settings.operator_password)


def _oidc_configured() -> bool:
    return _secret("auth") is not None


def _oidc_user() -> dict[str, Any]:
    try:
        return {k: st.user.get(k) for k in ("is_logged_in", "email", "email_verified")}
    except Exception:
        return {}


def oidc_login() -> tuple[Principal | None, str]:
    """The OIDC identity as an operator when BREAKER_OPERATORS allows it; else None and why not."""
    return oidc_operator(_oidc_user(), get_target().settings.operators)


def current_operator() -> Principal | None:
    """The OIDC identity, else this session's password login as the secrets say now (its current role; none
    once the operator is removed or the password changed: see ``breaker.ops.access.session_principal``)."""
    operator = oidc_login()[0]
    if operator is not None:
        return operator
    stored = st.session_state.get(OPERATOR_KEY)
    if not isinstance(stored, Principal):
        return None
    if STAMP_KEY not in st.session_state:  # put there by code, not by the login form (tests): taken as is
        return stored
    operator = session_principal(stored, st.session_state.get(STAMP_KEY), credentials())
    if operator is None:
        st.session_state.pop(OPERATOR_KEY, None)
        st.session_state.pop(STAMP_KEY, None)
    return operator


def current_access() -> Principal:
    """This session's principal: the logged-in operator, the sandbox, or an anonymous reader."""
    return write_access(embedded=get_target().embedded, operator=current_operator())


def login_throttle() -> LoginThrottle:
    target = get_target()
    return LoginThrottle(target.client, key_prefix=target.settings.key_prefix)


def client_key() -> str:
    """The client's address: X-Forwarded-For only through BREAKER_TRUSTED_PROXIES (see breaker.ops.client_address)."""
    try:
        peer = st.context.ip_address
        headers = st.context.headers
        get_all = getattr(headers, "get_all", None)
        forwarded = get_all("X-Forwarded-For") if get_all else headers.get("X-Forwarded-For")
    except Exception:
        peer, forwarded = None, None
    return client_address(peer, forwarded, trusted_networks(get_target().settings.trusted_proxies))


def render_login(target: Target) -> None:
    """The sidebar's operator section: who is logged in, or the login form (and SSO when configured)."""
    st.caption("Operator")
    operator = current_operator()
    if target.embedded and operator is None:
        st.badge("sandbox: writes open", color="blue", icon=":material/science:")
        return
    if operator is not None:
        st.badge(f"logged in · {operator.role_name}", color="green" if operator.allowed else "gray",
                 icon=":material/person:")
        st.text(operator.who)  # typed or provider-supplied: text, never markdown
        if not operator.allowed:
            st.caption("Your role is viewer: the console is read-only for you.")
        if st.button("Log out", key="sidebar_logout"):
            _logout(operator)
        return
    st.badge("read-only", color="gray", icon=":material/lock:")
    refused = oidc_login()[1]
    if refused:
        st.caption("Signed in, but not as an operator:")
        st.text(refused)
        if st.button("Sign out", key="sidebar_oidc_logout"):
            st.logout()
    elif _oidc_configured():
        st.button("Log in with SSO", key="sidebar_oidc", on_click=st.login)
    with st.form("sidebar_login"):
        name = st.text_input("Your name", key="sidebar_login_name")
        password = st.text_input("Operator password", type="password", key="sidebar_login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        outcome = guarded("checking the login", lambda: attempt_login(
            name, password, credentials=credentials(), throttle=login_throttle(), client_key=client_key(),
            trail=audit_trail(),
        ))
        if outcome is None:
            return
        if outcome.ok:
            st.session_state[OPERATOR_KEY] = outcome.operator
            st.session_state[STAMP_KEY] = credential_stamp(outcome.operator, credentials())
            st.rerun()
        st.error(outcome.message)


def _logout(operator: Principal) -> None:
    guarded("recording the logout", lambda: audit_trail().record(who=operator.who, action="logout",
                                                                 kind="login", **operator.audit()))
    st.session_state.pop(OPERATOR_KEY, None)
    st.session_state.pop(STAMP_KEY, None)
    if operator.auth == "oidc":
        st.logout()
    st.rerun()
