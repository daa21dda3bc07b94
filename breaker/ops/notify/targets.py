"""Where notifications go: one target from two variables, or several from a TOML file.

``VIX_BREAKER_WEBHOOK_URL`` + ``VIX_BREAKER_WEBHOOK_SECRET`` name one target that receives every event in the
``standard`` format; ``VIX_BREAKER_WEBHOOKS=path`` names a TOML file of ``[[webhook]]`` tables (``name``,
``url``, ``secret``, ``events`` (action names or globs, default every event), ``format``). A file nobody can
deliver from is refused at start-up with one line naming the problem; a secret is never part of any message.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...config import ConfigError

FORMATS = ("standard", "slack")
SECRET_PREFIX = "whsec_"
TARGET_KEYS = {"name", "url", "secret", "events", "format"}


class TargetsError(ConfigError):
    """The notification targets cannot be used; the message names the variable or file and the target."""


@dataclass(frozen=True)
class WebhookTarget:
    """One receiver. ``repr`` leaves out the secret and all of the URL but its scheme and host (a Slack URL's path
    is a credential), so a target can be logged."""

    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ("*",)
    format: str = "standard"

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
        return f"WebhookTarget(name={self.name!r}, url={where!r}, events={self.events!r}, format={self.format!r})"

    def wants(self, action: str) -> bool:
        """The event filter: an action name or a glob (``override_*``) matches; ``*`` matches everything."""
        return any(fnmatch.fnmatchcase(action, pattern) for pattern in self.events)


def check_secret(secret: object, where: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of at least 16 bytes (24 to 64 is what senders use)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise TargetsError(f"{where}: the secret must start with {SECRET_PREFIX!r} (Standard Webhooks)")
    try:
        text = secret[len(SECRET_PREFIX):].rstrip("=")
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise TargetsError(f"{where}: the secret after {SECRET_PREFIX!r} is not base64") from None
    if len(key) < 16:
        raise TargetsError(f"{where}: the secret is {len(key)} bytes; use at least 16 (24 to 64 is usual)")
    return secret


def check_url(url: object, where: str) -> str:
    """An http(s) URL with a host, a usable port and nothing ``http.client`` refuses (spaces, control characters).

    The message never repeats the URL: a Slack incoming-webhook URL is itself a credential."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        usable = (parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
                  and (parts.port is None or parts.port > 0)
                  and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url))
    except ValueError:  # a malformed port or IPv6 literal
        usable = False
    if usable and (parts.username is not None or parts.password is not None):
        raise TargetsError(f"{where}: url has a user or password, which notifications do not send (a receiver that "
                           "needs one would answer 401 to every try): authenticate the receiver by the signature")
    if not usable:
        raise TargetsError(f"{where}: url must be an http:// or https:// URL with a host, a port in 1-65535 if any, "
                           "and no spaces or control characters (the URL is not shown: it may be a credential)")
    return url


def load_targets(environ: Mapping[str, str]) -> tuple[WebhookTarget, ...]:
    """The configured targets; ``TargetsError`` when they are malformed or when there are none."""
    path = environ.get("VIX_BREAKER_WEBHOOKS")
    url = environ.get("VIX_BREAKER_WEBHOOK_URL")
    targets: list[WebhookTarget] = []
    if url:
        where = "VIX_BREAKER_WEBHOOK_URL"
        secret = environ.get("VIX_BREAKER_WEBHOOK_SECRET")
        if not secret:
            raise TargetsError("VIX_BREAKER_WEBHOOK_URL is set but VIX_BREAKER_WEBHOOK_SECRET is not")
        targets.append(WebhookTarget("default", check_url(url, where),
                                     check_secret(secret, "VIX_BREAKER_WEBHOOK_SECRET")))
    if path:
        targets.extend(targets_from_file(path))
    if not targets:
        raise TargetsError("no webhook target: set VIX_BREAKER_WEBHOOK_URL and VIX_BREAKER_WEBHOOK_SECRET, "
                           "or VIX_BREAKER_WEBHOOKS to a TOML file of [[webhook]] tables")
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TargetsError(f"webhook target names must be unique, repeated: {', '.join(duplicates)}")
    return tuple(targets)


def targets_from_file(path: str) -> list[WebhookTarget]:
    try:
        with open(path, "rb") as file:
            doc = tomllib.load(file)
    except OSError as exc:
        raise TargetsError(f"VIX_BREAKER_WEBHOOKS={path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetsError(f"VIX_BREAKER_WEBHOOKS={path}: not TOML: {exc}") from None
    tables = doc.get("webhook")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise TargetsError(f"VIX_BREAKER_WEBHOOKS={path}: expected one or more [[webhook]] tables")
    unknown_top = sorted(set(doc) - {"webhook"})
    if unknown_top:
        raise TargetsError(f"VIX_BREAKER_WEBHOOKS={path}: unknown key(s) {', '.join(unknown_top)}")
    return [_target(table, f"VIX_BREAKER_WEBHOOKS={path}: webhook #{n}") for n, table in enumerate(tables, 1)]


def _target(table: dict, where: str) -> WebhookTarget:
    unknown = sorted(set(table) - TARGET_KEYS)
    if unknown:
        raise TargetsError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(TARGET_KEYS))})")
    name = table.get("name", "webhook" + where.rsplit("#", 1)[-1])
    name = str(name) if isinstance(name, (str, int)) else None
    if not name or not name.strip() or len(name) > 64 or "|" in name:
        raise TargetsError(f"{where}: name must be 1 to 64 characters without '|'")
    where = f"{where} ({name})"
    events = table.get("events", ["*"])
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) and e.strip() for e in events):
        raise TargetsError(f"{where}: events must be a non-empty list of action names or globs")
    fmt = table.get("format", "standard")
    if fmt not in FORMATS:
        raise TargetsError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return WebhookTarget(name, check_url(table.get("url"), where), check_secret(table.get("secret"), where),
                         tuple(e.strip() for e in events), fmt)
