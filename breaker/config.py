"""Settings from the environment, read in one place and checked before start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .clock import default_key_ttl_s

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("console", "json")


class ConfigError(ValueError):
    """A setting has a value the breaker cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    key_prefix: str = "brain:"
    panic_key_ttl_s: int | None = None  # None: 900, or 86400 in seed mode (default_key_ttl_s)
    end_on_normal: bool = False
    refresh_interval_s: float = 1.0
    redis_timeout_ms: float = 50.0
    log_level: str = "INFO"
    log_format: str = "console"
    operator_password: str | None = None
    max_override_min: float = 60.0

    def __post_init__(self) -> None:
        if self.panic_key_ttl_s is None:
            object.__setattr__(self, "panic_key_ttl_s", default_key_ttl_s(self.end_on_normal))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        end_on_normal = _boolean(env, "BREAKER_END_ON_NORMAL", False)
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            key_prefix=_prefix(env.get("BREAKER_KEY_PREFIX", "brain:")),
            panic_key_ttl_s=_integer(env, "BREAKER_PANIC_KEY_TTL_S", None, minimum=1),
            end_on_normal=end_on_normal,
            refresh_interval_s=_number(env, "BREAKER_REFRESH_INTERVAL_S", 1.0, minimum=0.0),
            redis_timeout_ms=_number(env, "BREAKER_REDIS_TIMEOUT_MS", 50.0, minimum=1.0),
            log_level=_choice(env, "BREAKER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            log_format=_choice(env, "BREAKER_LOG_FORMAT", "console", LOG_FORMATS),
            operator_password=env.get("BREAKER_OPERATOR_PASSWORD") or None,
            max_override_min=_number(env, "BREAKER_MAX_OVERRIDE_MIN", 60.0, minimum=1.0),
        )


def _prefix(value: str) -> str:
    if not value or any(ch.isspace() for ch in value):
        raise ConfigError(f"BREAKER_KEY_PREFIX must be a non-empty string without spaces, got {value!r}")
    return value


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


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
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
