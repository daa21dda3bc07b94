"""Settings from the environment, read in one place and checked before start-up."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .client import check_redis_url, is_cluster_url
from .clock import default_key_ttl_s
from .keyspace import cluster_prefix_problem, default_key_prefix

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("console", "json")


class ConfigError(ValueError):
    """A setting has a value the breaker cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    key_prefix: str | None = None  # None: default_key_prefix() for the URL's kind ("{brain}:" on a cluster)
    panic_key_ttl_s: int | None = None  # None: 900, or 86400 in seed mode (default_key_ttl_s)
    end_on_normal: bool = False
    refresh_interval_s: float = 1.0
    redis_timeout_ms: float = 50.0
    log_level: str = "INFO"
    log_format: str = "console"
    operator_password: str | None = None
    operators: tuple[str, ...] = ()  # OIDC allow-list: emails and @domains, lower case, each optionally "=role"
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For the console believes
    two_person_rule: bool | None = None  # None: on for a real target, off in the sandbox
    max_override_min: float = 60.0
    operator_read_timeout_s: float = 2.0  # one deadline over a whole operator read (breaker.ops.read_deadline)

    def __post_init__(self) -> None:
        if self.key_prefix is None:
            object.__setattr__(self, "key_prefix", default_key_prefix(self.cluster))
        if self.panic_key_ttl_s is None:
            object.__setattr__(self, "panic_key_ttl_s", default_key_ttl_s(self.end_on_normal))

    @property
    def cluster(self) -> bool:
        """``REDIS_URL`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
        return is_cluster_url(self.redis_url)

    @property
    def is_default_prefix(self) -> bool:
        """The production namespace for this kind of target; any other prefix is a drill namespace."""
        return self.key_prefix == default_key_prefix(self.cluster)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        end_on_normal = _boolean(env, "BREAKER_END_ON_NORMAL", False)
        redis_url = _redis_url(env)
        return cls(
            redis_url=redis_url,
            key_prefix=_prefix(env.get("BREAKER_KEY_PREFIX"), cluster=is_cluster_url(redis_url)),
            panic_key_ttl_s=_integer(env, "BREAKER_PANIC_KEY_TTL_S", None, minimum=1),
            end_on_normal=end_on_normal,
            refresh_interval_s=_number(env, "BREAKER_REFRESH_INTERVAL_S", 1.0, minimum=0.0),
            redis_timeout_ms=_number(env, "BREAKER_REDIS_TIMEOUT_MS", 50.0, minimum=1.0),
            log_level=_choice(env, "BREAKER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            log_format=_choice(env, "BREAKER_LOG_FORMAT", "console", LOG_FORMATS),
            operator_password=env.get("BREAKER_OPERATOR_PASSWORD") or None,
            operators=_operators(env.get("BREAKER_OPERATORS", "")),
            trusted_proxies=_networks(env.get("BREAKER_TRUSTED_PROXIES", "")),
            two_person_rule=_boolean(env, "BREAKER_TWO_PERSON_RULE", None),
            max_override_min=_number(env, "BREAKER_MAX_OVERRIDE_MIN", 60.0, minimum=1.0),
            operator_read_timeout_s=_number(env, "BREAKER_OPERATOR_READ_TIMEOUT_S", 2.0, minimum=0.01),
        )


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("REDIS_URL") or None
    if url is not None:
        try:
            check_redis_url(url, source="REDIS_URL")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return url


def _prefix(value: str | None, *, cluster: bool) -> str:
    if value is None:
        return default_key_prefix(cluster)
    if not value or any(ch.isspace() for ch in value):
        raise ConfigError(f"BREAKER_KEY_PREFIX must be a non-empty string without spaces, got {value!r}")
    problem = cluster_prefix_problem(value) if cluster else None
    if problem:
        raise ConfigError(f"BREAKER_KEY_PREFIX {problem} (REDIS_URL is a cluster)")
    return value


#: Operator roles, least privilege first (breaker.ops.roles builds on these names).
OPERATOR_ROLES = ("viewer", "operator", "approver", "admin")


def _operators(raw: str) -> tuple[str, ...]:
    """``alice@example.com=approver, @example.org``: exact emails, or every email of a domain, each with an
    optional role (default: operator)."""
    entries = []
    for part in (p.strip().lower() for p in raw.split(",") if p.strip()):
        email, eq, role = (text.strip() for text in part.partition("="))
        if eq and role not in OPERATOR_ROLES:
            raise ConfigError(f"BREAKER_OPERATORS roles must be one of {', '.join(OPERATOR_ROLES)}, got {part!r}")
        _, at, domain = email.rpartition("@")
        if not at or not domain or "." not in domain or any(ch.isspace() for ch in email):
            raise ConfigError(f"BREAKER_OPERATORS entries must be emails or @domains, got {part!r}")
        entries.append(f"{email}={role}" if eq else email)
    return tuple(entries)


def _networks(raw: str) -> tuple[str, ...]:
    """``127.0.0.1/32, 10.0.0.0/8``: the proxies whose X-Forwarded-For header is believed."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"BREAKER_TRUSTED_PROXIES entries must be IP networks (CIDR), got {part!r}") from None
    return tuple(networks)


def _integer(env: Mapping[str, str], name: str, default: int | None, *, minimum: int) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name} must be a finite number >= {minimum:g}, got {raw!r}")
    return value


def _boolean(env: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be one of true/false/1/0/yes/no/on/off, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value
