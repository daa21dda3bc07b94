"""vix-breaker: cache TTLs that fail safe during a market panic, on a clock shared through Redis.

``import breaker`` loads what a worker needs and nothing else; operators' tools (audit trail,
access, drills, the console's and the CLI's actions) live in :mod:`breaker.ops`.
"""

from ._version import __version__
from .circuit import PANIC_START_TS_KEY, PANIC_TS_TTL_SECONDS, VIXCircuitBreaker
from .client import redact_url, redis_client
from .clock import ClockReading, PanicClock, parse_start
from .config import ConfigError, Settings
from .heartbeat import WorkerBeat, new_worker_id, parse_beat
from .importance import MatchImportance, explain_importance
from .logs import configure_logging
from .override import InvalidOverride, Override, OverrideMode, parse_override
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
    "InvalidOverride",
    "MarketVIX",
    "MatchImportance",
    "Override",
    "OverrideMode",
    "PanicClock",
    "PanicMode",
    "Settings",
    "VIXCalculator",
    "VIXCircuitBreaker",
    "WorkerBeat",
    "__version__",
    "configure_logging",
    "explain_importance",
    "new_worker_id",
    "parse_beat",
    "parse_override",
    "parse_start",
    "redact_url",
    "redis_client",
]
