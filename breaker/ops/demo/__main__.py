"""``python -m breaker.ops.demo``: a simulated fleet against REDIS_URL, or on an embedded server of its own.

Exit status: 0 done, 2 usage (unknown scenario, bad speed, the production prefix on a real server).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from ...client import redact_url, redis_client
from ...config import ConfigError, Settings
from ...logs import configure_logging
from .conductor import Conductor, FleetShape, worker_command
from .lifetime import exit_on_sigterm
from .scenario import InvalidScenario, check_speed, load_scenario, scenario_names

PRODUCTION_PREFIXES = ("brain:", "{brain}:")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m breaker.ops.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="tour", help=f"a file, or one of: {', '.join(scenario_names())}")
    parser.add_argument("--speed", type=float, default=None, help="scenario seconds per real second "
                        "(default: the scenario's)")
    parser.add_argument("--idle", action="store_true", help="start the fleet without playing (the console plays)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--identities", type=int, default=8, help="worker identities per process")
    parser.add_argument("--per-class", type=int, default=12, help="markets of each stakes class per process")
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between two reads of every market")
    parser.add_argument("--once", action="store_true", help="exit when the scenario has finished")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is no longer our parent")
    parser.add_argument("--sandbox", action="store_true", help="REDIS_URL is a sandbox (the console's embedded "
                        "server): the production prefix is allowed")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    try:
        settings = Settings.from_env()
        scenario = load_scenario(args.scenario)
        speed = None if args.speed is None else check_speed(args.speed)
    except (ConfigError, InvalidScenario) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if min(args.processes, args.identities, args.per_class) < 1 or not 0.05 <= args.tick <= 5:
        print("error: processes, identities and per-class must be >= 1, tick 0.05..5 s", file=sys.stderr)
        return 2
    configure_logging(args.log_level, settings.log_format)
    server: Any = None
    url = settings.redis_url
    if url is None:
        from ..embedded import start_embedded_server

        server = start_embedded_server()
        url = server.connection_url
        print(f"embedded server for the demo: REDIS_URL={url} (point the console at it)", flush=True)
    elif settings.key_prefix in PRODUCTION_PREFIXES and not args.sandbox:
        print(f"error: the demo writes a panic clock; on {redact_url(url)} give it a prefix of its own "
              f"(BREAKER_KEY_PREFIX=demo:), not the production {settings.key_prefix!r}", file=sys.stderr)
        return 2
    shape = FleetShape(args.processes, args.identities, args.per_class, args.tick)
    child_env = {**os.environ, "REDIS_URL": url}

    def spawn(index: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(worker_command(shape, settings.key_prefix, index, os.getpid(), args.log_level),
                                env=child_env)

    client = redis_client(url, timeout_ms=1000)
    conductor = Conductor(client, settings.key_prefix, shape, spawn=spawn, parent_pid=args.parent_pid,
                          panic_key_ttl_s=settings.panic_key_ttl_s)
    print(f"demo fleet: {shape.processes} processes × {shape.identities} workers, prefix {settings.key_prefix!r}, "
          f"scenario {scenario.name!r}" + (" (idle)" if args.idle else ""), flush=True)
    try:
        conductor.run(play=None if args.idle else (args.scenario, speed), until_finished=args.once)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
