"""The console with a bad or secret-bearing REDIS_URL: a clear message, never a traceback or a password."""

from __future__ import annotations

import pytest

from .conftest import open_console


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379/mymaster", "redis://127.0.0.1:99999/0",
                                 "redis+cluster://"])
def test_malformed_redis_url_shows_a_configuration_error_not_a_traceback(monkeypatch, url):
    """Every page stops with "Configuration error" naming REDIS_URL; no exception reaches the page."""
    monkeypatch.setenv("REDIS_URL", url)
    at = open_console()
    assert not at.exception
    assert any("Configuration error" in e.value and "REDIS_URL" in e.value for e in at.error)


def test_ssl_password_on_a_plain_url_is_a_redacted_configuration_error(monkeypatch, redis_url, real_redis):
    """?ssl_password= on a redis:// URL would fail at the first command (redis-py passes it to a plain
    connection): the console stops with one configuration error naming the option, the password shown as ***."""
    monkeypatch.setenv("REDIS_URL", f"{redis_url}/0?ssl_password=s3cret-key-pass")
    monkeypatch.delenv("BREAKER_KEY_PREFIX", raising=False)
    at = open_console()
    errors = " ".join(e.value for e in at.error)
    assert "Configuration error" in errors and "ssl_password" in errors and "REDIS_URL" in errors
    shown = errors + " ".join(m.value for m in at.sidebar.markdown)
    assert "s3cret" not in shown


def test_sidebar_redacts_ssl_password(monkeypatch, redis_url):
    """?ssl_password= (a rediss:// option) in REDIS_URL is shown as *** in the sidebar anonymous viewers see."""
    monkeypatch.setenv("REDIS_URL", f"{redis_url.replace('redis://', 'rediss://')}/0?ssl_password=s3cret-key-pass")
    monkeypatch.delenv("BREAKER_KEY_PREFIX", raising=False)
    at = open_console()
    shown = " ".join(m.value for m in at.sidebar.markdown)
    assert "ssl_password=***" in shown and "s3cret" not in shown
