"""End to end: the exporter, a real Prometheus with the shipped rules, a real Alertmanager, a webhook receiver.

One Prometheus (Debian's ``prometheus``) and one Alertmanager (``prometheus-alertmanager``) for the module,
both on loopback at free ports with their storage in a tmp dir, stopped by PID at the end. Prometheus scrapes
the in-process exporter (``serve_exporter``) every second and evaluates a copy of deploy/alerts/breaker.yml
every second; the copy differs from the shipped file only in its ``for:``/``keep_firing_for:`` durations
(shortened to 2 s) and its groups' own ``interval:`` (1 s; the expressions are byte for byte the shipped ones).
Alertmanager groups for 1 s and posts to an HTTP receiver this module runs.
Each test makes a real fault and waits for its alert to arrive.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from breaker import PanicClock, redis_client
from breaker.ops.exporter import serve_exporter

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "deploy" / "alerts" / "breaker.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
SHORT = "2s"
ALERT_WAIT_S = 45.0

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def short_rules(text: str) -> str:
    """The shipped rules with every ``for:`` and ``keep_firing_for:`` set to 2 s and every group's own evaluation
    ``interval:`` to 1 s (the server's, as here); nothing else changes."""
    text = re.sub(r"^(\s+)interval: \S+$", r"\1interval: 1s", text, flags=re.MULTILINE)
    return re.sub(r"^(\s+)(for|keep_firing_for): \S+$", rf"\1\2: {SHORT}", text, flags=re.MULTILINE)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Receiver:
    """The webhook receiver: records every Alertmanager notification (arrival time, payload)."""

    def __init__(self) -> None:
        self.notifications: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.notifications.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def firing(self, alertname: str, since: float) -> list[dict]:
        """Firing alerts named ``alertname`` that started at or after ``since`` (Unix seconds)."""
        with self.lock:
            notes = list(self.notifications)
        found = []
        for _, payload in notes:
            for alert in payload.get("alerts", []):
                if alert["labels"].get("alertname") == alertname and alert["status"] == "firing" \
                        and _unix(alert["startsAt"]) >= since - 1.0:
                    found.append(alert)
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _unix(stamp: str) -> float:
    from datetime import datetime

    stamp = re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


class Exporter:
    """The exporter in this process, on a port that stays the same across a stop and a start."""

    def __init__(self, url: str) -> None:
        self.client = redis_client(url, timeout_ms=1000)
        self.port = free_port()
        self.server = None
        self.start()

    def start(self) -> None:
        if self.server is None:
            self.server, _ = serve_exporter(PanicClock(self.client), port=self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def start_process(args: list[str], log: Path) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chain(valkey_server, tmp_path_factory):
    """Receiver, Alertmanager, exporter and Prometheus, started once for the module and stopped by PID."""
    for binary in (PROMETHEUS, ALERTMANAGER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: `make prometheus` installs Debian's prometheus packages")
    tmp = tmp_path_factory.mktemp("chain")
    receiver = Receiver()
    exporter = Exporter(valkey_server.connection_url)
    am_port, prom_port = free_port(), free_port()
    (tmp / "alertmanager.yml").write_text(textwrap.dedent(f"""
        route:
          receiver: hook
          group_by: [alertname, instance]
          group_wait: 1s
          group_interval: 1s
          repeat_interval: 1h
        receivers:
          - name: hook
            webhook_configs:
              - url: {receiver.url}
                send_resolved: true
    """))
    (tmp / "rules.yml").write_text(short_rules(SHIPPED_RULES.read_text()))
    (tmp / "prometheus.yml").write_text(textwrap.dedent(f"""
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        rule_files: [rules.yml]
        alerting:
          alertmanagers:
            - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
        scrape_configs:
          - job_name: vix-breaker
            static_configs: [{{targets: ["127.0.0.1:{exporter.port}"]}}]
    """))
    processes = []
    try:
        processes.append(start_process([
            ALERTMANAGER, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
        ], tmp / "alertmanager.log"))
        processes.append(start_process([
            PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s",
        ], tmp / "prometheus.log"))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_until(lambda: get_json(f"http://127.0.0.1:{am_port}/api/v2/status"), 30, "Alertmanager")
        wait_until(lambda: any(target["health"] == "up"
                               for target in get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]),
                   30, "Prometheus scraping the exporter")
        yield type("Chain", (), {"receiver": receiver, "exporter": exporter, "prometheus": prom, "tmp": tmp})
    finally:
        for proc in reversed(processes):
            stop_process(proc)
        exporter.stop()
        receiver.stop()


def active(chain, alertname: str) -> list[dict]:
    alerts = get_json(f"{chain.prometheus}/api/v1/alerts")["data"]["alerts"]
    return [alert for alert in alerts if alert["labels"]["alertname"] == alertname]


def quiet(chain, alertname: str) -> float:
    """Wait until ``alertname`` is neither pending nor firing (a previous test's fault is over); now."""
    wait_until(lambda: not active(chain, alertname), 30, f"{alertname} to be inactive")
    return time.time()


def arrives(chain, alertname: str, since: float) -> list[dict]:
    return wait_until(lambda: chain.receiver.firing(alertname, since), ALERT_WAIT_S,
                      f"{alertname} at the webhook receiver")


WORKER = textwrap.dedent("""
    import sys, time
    from breaker import VIXCircuitBreaker, redis_client
    breaker = VIXCircuitBreaker(redis_client(sys.argv[1], timeout_ms=1000))
    while True:
        breaker.get_ttl(60, sys.argv[2])
        time.sleep(0.05)
""")


@pytest.fixture
def workers(chain, real_redis, redis_url):
    """Start worker processes (``start(n, vix_status)``); all stopped by PID and their beats deleted after."""
    procs: list[subprocess.Popen] = []

    def start(count: int, status: str) -> list[subprocess.Popen]:
        started = [subprocess.Popen([sys.executable, "-c", WORKER, redis_url, status], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
        procs.extend(started)
        return started

    yield start
    for proc in procs:
        stop_process(proc)
    real_redis.delete("brain:workers")


def test_exporter_stopped_raises_exporter_down(chain, real_redis):
    since = quiet(chain, "VixBreakerExporterDown")
    chain.exporter.stop()
    try:
        [alert] = arrives(chain, "VixBreakerExporterDown", since)[:1]
        assert alert["labels"]["instance"] == f"127.0.0.1:{chain.exporter.port}"
        assert alert["labels"]["job"] == "vix-breaker"
        assert alert["annotations"]["runbook_url"] == "docs/alerts.md#vixbreakerexporterdown"
    finally:
        chain.exporter.start()


def test_workers_stopped_raise_workers_stale(chain, workers, real_redis):
    procs = workers(2, "normal")
    wait_until(lambda: real_redis.hlen("brain:workers") == 2, 30, "two workers beating")
    since = quiet(chain, "VixBreakerWorkersStale")
    for proc in procs:
        proc.kill()  # a crash: no goodbye
        proc.wait(timeout=10)
    [alert] = arrives(chain, "VixBreakerWorkersStale", since)[:1]
    assert alert["labels"]["instance"] == f"127.0.0.1:{chain.exporter.port}"


def test_high_stakes_panic_back_dated_into_tier_3_raises_the_tier_alert_with_instance(chain, real_redis):
    since = quiet(chain, "VixBreakerTier3Reached")
    now = float(real_redis.time()[0])
    PanicClock(real_redis).observe(now - 200 * 60)  # high stakes: tier 3 from 180 min
    try:
        [high] = wait_until(lambda: [a for a in chain.receiver.firing("VixBreakerTier3Reached", since)
                                     if a["labels"].get("stakes") == "high_stakes"][:1],
                            ALERT_WAIT_S, "the high-stakes tier alert at the webhook receiver")
        assert high["labels"]["instance"] == f"127.0.0.1:{chain.exporter.port}"
        assert high["labels"]["job"] == "vix-breaker" and high["labels"]["severity"] == "page"
    finally:
        real_redis.delete("brain:panic_start_ts")


def test_workers_given_only_bad_input_raise_fleet_fail_safe(chain, workers, real_redis):
    since = quiet(chain, "VixBreakerFleetFailSafe")
    workers(1, "bogus")  # an unknown vix_status: every answer fails safe
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not chain.receiver.firing("VixBreakerFleetFailSafe", since):
        time.sleep(0.2)
    assert chain.receiver.firing("VixBreakerFleetFailSafe", since)


def test_the_test_copy_of_the_rules_differs_only_in_durations():
    """The chain runs the shipped expressions: only `for:` and `keep_firing_for:` are shortened, all of them."""
    import yaml

    shipped = yaml.safe_load(SHIPPED_RULES.read_text())
    copy = yaml.safe_load(short_rules(SHIPPED_RULES.read_text()))
    durations = 0
    for shipped_group, copy_group in zip(shipped["groups"], copy["groups"], strict=True):
        assert copy_group.get("interval", "1s") == "1s"
        for shipped_rule, copy_rule in zip(shipped_group["rules"], copy_group["rules"], strict=True):
            for key in ("for", "keep_firing_for"):
                if key in shipped_rule:
                    durations += 1
                    assert copy_rule.pop(key) == SHORT and shipped_rule.pop(key) != SHORT
            assert copy_rule == shipped_rule
    assert durations >= len([r for g in shipped["groups"] for r in g["rules"] if "alert" in r])
