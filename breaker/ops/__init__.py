"""What operators' tools share (the console, the CLI, the demo fleet): never imports streamlit.

Audit trail, write access, the audited actions, drills, the zombie verdict, targets, the
per-class status, operator overrides and the fleet view. A worker never needs this package;
``import breaker`` does not load it.
"""

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
from .drills import fail_safe_drill, multi_worker_drill, replay_scenario
from .fleet import FleetView, read_fleet
from .overrides import (
    NoActiveOverride,
    OverrideReading,
    OverrideTooLong,
    clear_override,
    extend_override,
    read_override,
    set_override,
)
from .zombie import ZombieVerdict, zombie_verdict

__all__ = [
    "AuditEntry",
    "AuditTrail",
    "ClockCleared",
    "FleetView",
    "LoginRateLimiter",
    "NoActiveOverride",
    "OverrideReading",
    "OverrideTooLong",
    "PanicEpisode",
    "WriteAccess",
    "WriteRefused",
    "ZombieVerdict",
    "attempt_login",
    "clear_override",
    "end_panic",
    "extend_override",
    "fail_safe_drill",
    "force_clear",
    "multi_worker_drill",
    "panic_episodes",
    "password_matches",
    "read_fleet",
    "read_override",
    "replay_scenario",
    "run_failsafe_drill",
    "run_multi_worker_drill",
    "run_replay",
    "set_override",
    "start_panic",
    "state_change_listener",
    "write_access",
    "zombie_verdict",
]
