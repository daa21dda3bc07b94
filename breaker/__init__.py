"""vix-breaker: cache TTLs that fail safe during a market panic, on a clock shared through Redis.

``import breaker`` loads what a worker needs and nothing else; operators' tools (audit trail,
access, drills, the console's and the CLI's actions) live in :mod:`breaker.ops`.
"""

from .circuit import PANIC_START_TS_KEY, PANIC_TS_TTL_SECONDS, VIXCircuitBreaker
from .client import redact_url, redis_client
from .clock import ClockReading, PanicClock, parse_start
from .config import ConfigError, Settings
from .importance import MatchImportance, explain_importance
from .logs import configure_logging
from .policy import AdaptivePanicQuota, PanicMode
from .signal import MarketVIX, VIXCalculator
from .volatility import CircuitBreakerMode

__all__ = [
    "PANIC_START_TS_KEY",
    "PANIC_TS_TTL_SECONDS",
    "AdaptivePanicQuota",
    "CircuitBreakerMode",
    "ClockReading",
    "ConfigError",
    "MarketVIX",
    "MatchImportance",
    "PanicClock",
    "PanicMode",
    "Settings",
    "VIXCalculator",
    "VIXCircuitBreaker",
    "configure_logging",
    "explain_importance",
    "parse_start",
    "redact_url",
    "redis_client",
]
