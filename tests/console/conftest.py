"""AppTest fixtures: the console against the session's real server, a fresh cache per test."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import console.shared
from breaker import Settings, redis_client
from breaker.ops.target import Target

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """st.cache_resource is shared by every AppTest in the process: each test builds its own target."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def console_env(monkeypatch, redis_url, real_redis):
    """A real REDIS_URL target (read-only until login) on a flushed database, default key prefix."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BREAKER_OPERATOR_PASSWORD", PASSWORD)
    monkeypatch.delenv("BREAKER_KEY_PREFIX", raising=False)
    # The console's reads on a shared, loaded test machine can exceed 50 ms; these tests are about what the
    # pages show and write, not latency (the fault tests in tests/faults/ keep the 50 ms timeouts).
    monkeypatch.setenv("BREAKER_REDIS_TIMEOUT_MS", "1000")
    return real_redis


@pytest.fixture
def sandbox_env(monkeypatch, redis_url, real_redis):
    """The console as `make run` starts it (embedded target), borrowing the session server instead of a new one."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BREAKER_KEY_PREFIX", raising=False)
    monkeypatch.delenv("BREAKER_OPERATOR_PASSWORD", raising=False)

    def connect(settings: Settings) -> Target:
        return Target(redis_client(redis_url, timeout_ms=1000), redis_url, embedded=True, settings=settings)

    monkeypatch.setattr(console.shared, "connect_target", connect)
    return real_redis


def open_console(page: str | None = None) -> AppTest:
    """Run the console once (optionally on another page) and return the AppTest."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def login(at: AppTest, name: str = "alice", password: str = PASSWORD) -> AppTest:
    at.text_input(key="sidebar_login_name").input(name)
    at.text_input(key="sidebar_login_password").input(password)
    at.sidebar.button[0].click()  # the form's submit button
    return at.run()


def operator_password(name: str) -> str:
    return f"{name}'s own passphrase"


@functools.cache
def _hash(name: str) -> str:
    from breaker.ops.credentials import hash_password

    return hash_password(operator_password(name))


def with_operators(at: AppTest, **roles: str) -> AppTest:
    """Configure verified operators (``[operators]`` with a role each): ``with_operators(at, alice="admin")``;
    each logs in with ``operator_password(name)``."""
    at.secrets["operators"] = {name: {"hash": _hash(name), "role": role} for name, role in roles.items()}
    return at


def login_verified(at: AppTest, name: str, role: str = "operator", **others: str) -> AppTest:
    """Log in as verified ``name`` with ``role`` (other operators may be configured beside)."""
    with_operators(at, **{name: role}, **others)
    at.run()
    return login(at, name, operator_password(name))
