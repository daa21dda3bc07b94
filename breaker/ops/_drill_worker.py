"""One process of the multi-worker drill: connect, say ready, wait for the agreed instant, observe.

Run as ``python -m breaker.ops._drill_worker NAMESPACE NAME`` with the Redis URL in the environment
(``BREAKER_DRILL_REDIS_URL``: never on the command line, which other local users can read); the start
instant arrives on stdin, the result leaves as one JSON line on stdout. A plain subprocess rather than
multiprocessing: nothing of the parent (Streamlit's server, pytest) is re-imported or forked.
"""

from __future__ import annotations

import json
import os
import sys

from ..client import redis_client
from .drills import DRILL_URL_ENV, observe_at


def main(argv: list[str]) -> int:
    namespace, name = argv
    url = os.environ[DRILL_URL_ENV]
    client = redis_client(url, timeout_ms=2000)
    try:
        client.ping()
        print("ready", flush=True)
        instant = float(sys.stdin.readline())
        result = observe_at(client, namespace, instant)
    except Exception as exc:
        result = {"start": None, "initialized": False, "error": repr(exc)}
    finally:
        client.close()
    print(json.dumps({"worker": name, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
