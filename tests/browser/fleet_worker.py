"""A worker process for the Fleet browser test: a real breaker calling get_ttl in a loop, so it heartbeats.

Run as ``python -m tests.browser.fleet_worker URL PREFIX STATUS``; it answers until it is terminated.
"""

from __future__ import annotations

import signal
import sys
import time

from breaker import VIXCircuitBreaker, redis_client

REFRESH_INTERVAL_S = 0.2
CALL_EVERY_S = 0.05  # a backend's cache writes; the breaker reaches Redis once per refresh interval


def main(url: str, prefix: str, status: str) -> None:
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    breaker = VIXCircuitBreaker(redis_client(url, timeout_ms=500), key_prefix=prefix,
                                refresh_interval_s=REFRESH_INTERVAL_S)
    contexts = ({"league": "Champions League"}, {"league": "Ligue 1"}, {"league": "Ligue 2"})
    while running:
        for context in contexts:
            breaker.get_ttl(60, status, context)
        time.sleep(CALL_EVERY_S)


if __name__ == "__main__":
    main(*sys.argv[1:4])
