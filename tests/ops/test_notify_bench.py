"""bench/notify.py runs end to end (small counts): two rows, numbers in them, no key left behind."""

import bench.notify
from bench.harness import BenchServer


def test_notify_bench_figures(monkeypatch, redis_url, real_redis):
    monkeypatch.setattr(bench.notify, "LATENCY_EVENTS", 5)
    monkeypatch.setattr(bench.notify, "BURST_EVENTS", 20)
    rows = bench.notify.notify_figures(BenchServer(None, redis_url, real_redis))
    assert [r.figure for r in rows] == ["N1", "N2"]
    assert rows[0].ours.endswith(" ms") and rows[1].ours.endswith(" events/s")
    assert real_redis.keys("bench:notify:*") == []
