"""What operators' tools share (the console, the CLI, the demo fleet): never imports streamlit.

Audit trail, identity and roles, the audited actions, drills, the zombie verdict, targets, the
per-class status, operator overrides and the fleet view. A worker never needs this package;
``import breaker`` does not load it.
"""

from .access import (
    Credentials,
    attempt_login,
    oidc_operator,
    password_matches,
    verify_console_credentials,
    write_access,
)
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
from .login_throttle import LoginThrottle
from .overrides import (
    NoActiveOverride,
    OverrideReading,
    OverrideTooLong,
    clear_override,
    extend_override,
    read_override,
    set_override,
)
from .roles import Principal, Role, RoleRefused, WriteAccess, WriteRefused, canonical_name
from .tokens import TokenRecord, TokenRefused, TokenStore
from .zombie import ZombieVerdict, zombie_verdict

__all__ = [
    "AuditEntry",
    "AuditTrail",
    "ClockCleared",
    "Credentials",
    "FleetView",
    "LoginThrottle",
    "NoActiveOverride",
    "OverrideReading",
    "OverrideTooLong",
    "PanicEpisode",
    "Principal",
    "Role",
    "RoleRefused",
    "TokenRecord",
    "TokenRefused",
    "TokenStore",
    "WriteAccess",
    "WriteRefused",
    "ZombieVerdict",
    "attempt_login",
    "canonical_name",
    "clear_override",
    "end_panic",
    "extend_override",
    "fail_safe_drill",
    "force_clear",
    "multi_worker_drill",
    "oidc_operator",
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
    "verify_console_credentials",
    "write_access",
    "zombie_verdict",
]
