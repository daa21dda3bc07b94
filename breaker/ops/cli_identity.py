"""Who is running a CLI write: an API token, or console credentials, read from the environment or a file.

Secrets never come from argv (any local user can read ``/proc/<pid>/cmdline``): the token is
``VIX_BREAKER_TOKEN`` or ``--token-file PATH``; console credentials are ``VIX_BREAKER_USER`` plus
``VIX_BREAKER_PASSWORD`` or ``--password-file PATH``, checked against the same ``[operators]`` table the
console reads (``BREAKER_SECRETS_FILE``, default ``.streamlit/secrets.toml``) or the shared password. The
variables are removed from this process's environment once read, so nothing the CLI starts inherits them.
Password attempts go through the console's login throttle (address ``cli``), and failures are audited.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from .access import Credentials, attempt_login
from .audit import AuditTrail
from .login_throttle import LoginThrottle
from .roles import Principal, RoleRefused
from .tokens import TokenStore

TOKEN_ENV = "VIX_BREAKER_TOKEN"
USER_ENV = "VIX_BREAKER_USER"
PASSWORD_ENV = "VIX_BREAKER_PASSWORD"
SECRETS_ENV = "BREAKER_SECRETS_FILE"
DEFAULT_SECRETS_FILE = ".streamlit/secrets.toml"
CLI_ADDRESS = "cli"
NOT_AUTHENTICATED = (f"not authenticated: set {TOKEN_ENV} (or --token-file) to an API token, or {USER_ENV} and "
                     f"{PASSWORD_ENV} (or --password-file) to your console credentials")


class CliSecrets:
    """The secrets given to this run, taken out of the environment at start (before anything is started)."""

    def __init__(self, env: MutableMapping[str, str], *, token_file: str | None, password_file: str | None) -> None:
        self.token = _read_file(token_file, "--token-file") if token_file else env.pop(TOKEN_ENV, None)
        self.password = _read_file(password_file, "--password-file") if password_file else env.pop(PASSWORD_ENV,
                                                                                                    None)
        env.pop(TOKEN_ENV, None)
        env.pop(PASSWORD_ENV, None)
        self.user = env.get(USER_ENV)
        self.secrets_file = env.get(SECRETS_ENV) or DEFAULT_SECRETS_FILE

    def principal(self, client: Any, key_prefix: str, trail: AuditTrail, shared_password: str | None) -> Principal:
        """The verified principal of these secrets; ``WriteRefused`` when there are none or they are wrong."""
        if self.token:
            return TokenStore(client, key_prefix=key_prefix).verify(self.token)
        if self.user and self.password:
            credentials = Credentials.from_secrets(_load_secrets(self.secrets_file), shared_password)
            outcome = attempt_login(self.user, self.password, credentials=credentials,
                                    throttle=LoginThrottle(client, key_prefix=key_prefix), client_key=CLI_ADDRESS,
                                    trail=trail, audit_success=False)
            if outcome.operator is None:
                raise RoleRefused(f"login refused: {outcome.message.rstrip('.')}")
            return outcome.operator
        return Principal.anonymous(NOT_AUTHENTICATED)


def _read_file(path: str, option: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{option} {path}: {exc.strerror or exc}") from None
    first = text.splitlines()[0].strip() if text.strip() else ""
    if not first:
        raise ValueError(f"{option} {path} is empty")
    return first


def _load_secrets(path: str) -> Mapping[str, Any]:
    """The secrets file's tables; an absent file is no operators (the shared password may still be set)."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{SECRETS_ENV} {path}: {exc}") from None


def scrub_environment(env: MutableMapping[str, str] | None = None) -> None:
    """Drop the secret variables from ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    for name in (TOKEN_ENV, PASSWORD_ENV):
        env.pop(name, None)
