"""vix-breaker: cache TTLs that fail safe during a market panic, on a clock shared through Redis."""

from .access import LoginRateLimiter, WriteAccess, WriteRefused, attempt_login, password_matches, write_access
from .actions import (
    ClockCleared,
    end_panic,
    force_clear,
    run_failsafe_drill,
    run_multi_worker_drill,
    run_replay,
    start_panic,
)
from .audit import AuditEntry, AuditTrail, PanicEpisode, panic_episodes, state_change_listener
from .circuit import PANIC_START_TS_KEY, PANIC_TS_TTL_SECONDS, VIXCircuitBreaker
from .client import redact_url, redis_client
from .clock import ClockReading, PanicClock, parse_start
from .config import ConfigError, Settings
from .drills import fail_safe_drill, multi_worker_drill, replay_scenario
from .importance import MatchImportance, explain_importance
from .logs import configure_logging
from .policy import AdaptivePanicQuota, PanicMode
from .signal import MarketVIX, VIXCalculator
from .volatility import CircuitBreakerMode
from .zombie import ZombieVerdict, zombie_verdict

__all__ = [
    "PANIC_START_TS_KEY",
    "PANIC_TS_TTL_SECONDS",
    "AdaptivePanicQuota",
    "AuditEntry",
    "AuditTrail",
    "CircuitBreakerMode",
    "ClockCleared",
    "ClockReading",
    "ConfigError",
    "LoginRateLimiter",
    "MarketVIX",
    "MatchImportance",
    "PanicClock",
    "PanicEpisode",
    "PanicMode",
    "Settings",
    "VIXCalculator",
    "VIXCircuitBreaker",
    "WriteAccess",
    "WriteRefused",
    "ZombieVerdict",
    "attempt_login",
    "configure_logging",
    "end_panic",
    "explain_importance",
    "fail_safe_drill",
    "force_clear",
    "multi_worker_drill",
    "panic_episodes",
    "parse_start",
    "password_matches",
    "redact_url",
    "redis_client",
    "replay_scenario",
    "run_failsafe_drill",
    "run_multi_worker_drill",
    "run_replay",
    "start_panic",
    "state_change_listener",
    "write_access",
    "zombie_verdict",
]
