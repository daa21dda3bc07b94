"""Notifier figures: delivery latency to a healthy loopback receiver, and throughput of a burst.

``python -m bench.notify`` prints them alone; ``make bench`` adds them to its table (no goal: reported).
Latency is from just before the audit XADD to the receiver having read the signed POST (one event at a time);
throughput is a burst of events written in pipelines until the receiver has all of them (one target, whose
thread delivers in order, a new connection per POST).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from breaker import redis_client
from breaker.ops.audit import AuditTrail
from breaker.ops.notify import Notifier, RetryPolicy, WebhookTarget

from .harness import BenchServer
from .table import Row

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PREFIX = "bench:notify:"
LATENCY_EVENTS = 200
BURST_EVENTS = 2000


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(204)
                self.end_headers()
                with receiver.changed:
                    receiver.arrived.setdefault(self.headers["webhook-id"], time.perf_counter())
                    receiver.changed.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, ids: set[str], timeout_s: float = 120.0) -> float:
        """The receipt time of the last of ``ids``."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not ids <= self.arrived.keys():
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"{len(ids - self.arrived.keys())} events not delivered")
            return max(self.arrived[i] for i in ids)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notify_figures(bench: BenchServer) -> list[Row]:
    for key in bench.client.scan_iter(f"{PREFIX}*"):
        bench.client.delete(key)
    receiver = Receiver()
    client = redis_client(bench.url, timeout_ms=5000)
    notifier = Notifier(client, [WebhookTarget("bench", f"http://127.0.0.1:{receiver.server.server_port}/", SECRET)],
                        key_prefix=PREFIX, policy=RetryPolicy(tries=3, timeout_s=5.0))
    thread = threading.Thread(target=notifier.run, daemon=True)
    thread.start()
    trail = AuditTrail(bench.client, key_prefix=PREFIX)
    try:
        while not client.exists(f"{PREFIX}audit"):
            time.sleep(0.01)
        latencies = []
        for i in range(LATENCY_EVENTS):
            began = time.perf_counter()
            event_id = trail.record(who="bench", action="override_set", why=f"latency {i}", mode="force_full")
            latencies.append((receiver.wait({event_id}) - began) * 1000)
        ids: set[str] = set()
        began = time.perf_counter()
        for start in range(0, BURST_EVENTS, 500):
            pipe = bench.client.pipeline(transaction=False)
            for i in range(start, min(start + 500, BURST_EVENTS)):
                trail.record_in(pipe, who="bench", action="override_set", why=f"burst {i}", mode="force_full")
            ids.update(x.decode() if isinstance(x, bytes) else x for x in pipe.execute())
        rate = BURST_EVENTS / (receiver.wait(ids) - began)
    finally:
        notifier.stop.set()
        thread.join(10)
        receiver.stop()
        client.close()
        for key in bench.client.scan_iter(f"{PREFIX}*"):
            bench.client.delete(key)
    cuts = statistics.quantiles(latencies, n=100)
    return [
        Row("N1", f"notify: audit XADD to signed POST received, healthy loopback receiver ({LATENCY_EVENTS} events, "
                  "one at a time), p50 / p99", f"{statistics.median(latencies):.1f} / {cuts[98]:.1f} ms"),
        Row("N2", f"notify: throughput of a burst of {BURST_EVENTS} events to one target", f"{rate:.0f} events/s"),
    ]


if __name__ == "__main__":
    server = BenchServer.start()
    try:
        for row in notify_figures(server):
            print(f"{row.measure}: {row.ours}")
    finally:
        server.stop()
    sys.exit(0)
