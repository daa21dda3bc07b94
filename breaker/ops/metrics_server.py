"""The exporter's HTTP server: bounded threads, bounded connections, a deadline on every request.

prometheus_client's ``start_http_server`` gives every connection a thread of its own and never times one out:
400 idle half-open connections hold 400 threads, for ever. Here one asyncio loop (one thread) holds every
connection while it waits for its request; only a complete ``GET`` reaches the single worker thread that
builds the page (``generate_latest``: the Redis round trip). A connection that has not sent its request
within ``request_timeout_s`` is closed, a reply not taken within it too, and when ``max_connections`` are
open the oldest one still waiting for its request makes room for the newcomer (a real scraper sends its
request at once; an idle socket is what waits). Requests arriving while a page is being built share that
build rather than queue one build each behind it (each build may take the whole operator-read deadline, and
a queued request holds a place that eviction cannot free). Each reply closes its connection
(``Connection: close``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

MAX_REQUEST_BYTES = 8192


class MetricsServer:
    """``/metrics`` of ``registry`` on ``host:port`` (0: a free port, see ``server_port``), started at once."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 9108, *,
                 max_connections: int = 100, request_timeout_s: float = 5.0) -> None:
        if max_connections < 1 or not request_timeout_s > 0:
            raise ValueError("max_connections must be >= 1 and request_timeout_s > 0")
        self.registry = registry
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="exporter-scrape")
        self._loop = asyncio.new_event_loop()
        self._waiting: dict[asyncio.StreamWriter, None] = {}  # insertion order: oldest first
        self._tasks: set[asyncio.Task] = set()
        self._open = 0
        self._building: dict[str, asyncio.Future] = {}  # content type -> the page being built for it
        # The loop runs in its own thread from the start and the listener is made there: the caller's thread
        # may already run an event loop of its own (a host's asyncio app, Playwright's sync API in tests).
        self.thread = threading.Thread(target=self._loop.run_forever, name="exporter-http", daemon=True)
        self.thread.start()
        listening = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, host, port, limit=MAX_REQUEST_BYTES), self._loop)
        try:
            self._server = listening.result()  # raises OSError here when the address is taken
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self.thread.join(timeout=5)
            self._loop.close()
            self._pool.shutdown(wait=False)
            raise
        self.server_port: int = self._server.sockets[0].getsockname()[1]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._open >= self.max_connections and not self._evict_oldest_waiting():
            writer.transport.abort()
            return
        self._open += 1
        self._waiting[writer] = None
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_timeout_s)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            finally:
                self._waiting.pop(writer, None)
            status, content_type, body = await self._answer(head)
            header = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                      "Connection: close\r\n\r\n").encode("latin-1")
            writer.write(header if head.startswith(b"HEAD ") else header + body)
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(writer.drain(), self.request_timeout_s)
        finally:
            self._open -= 1
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a reply nobody takes: drop it
            else:
                writer.close()

    def _evict_oldest_waiting(self) -> bool:
        for writer in self._waiting:
            writer.transport.abort()  # its reader then ends with an error and frees its place
            del self._waiting[writer]
            return True
        return False

    async def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"only GET /metrics\n"
        if parts[1].split("?", 1)[0] not in ("/metrics", "/"):
            return "404 Not Found", "text/plain", b"only GET /metrics\n"
        accept = next((line.split(":", 1)[1].strip() for line in lines[1:]
                       if line.lower().startswith("accept:")), "")
        encoder, content_type = choose_encoder(accept)
        building = self._building.get(content_type)
        if building is None:  # no page of this format under way: build one; requests arriving meanwhile share it
            building = self._building[content_type] = self._loop.run_in_executor(self._pool, encoder, self.registry)
            building.add_done_callback(lambda done, key=content_type: self._built(key, done))
        try:
            body = await asyncio.shield(building)  # a waiter cancelled (shutdown) leaves the build to the others
        except Exception as exc:  # a collector that raises: say so, keep serving
            return "500 Internal Server Error", "text/plain", f"scrape failed: {type(exc).__name__}\n".encode()
        return "200 OK", content_type, body

    def _built(self, content_type: str, done: asyncio.Future) -> None:
        if self._building.get(content_type) is done:
            del self._building[content_type]
        if not done.cancelled():
            done.exception()  # retrieved: no "never retrieved" warning when every waiter went away

    def shutdown(self) -> None:
        """Stop listening, close every connection, stop the loop and the worker thread."""
        if not self._loop.is_running():
            return

        async def stop() -> None:
            self._server.close()
            for writer in list(self._waiting):
                writer.transport.abort()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)  # each one ends (and closes) itself
            await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self.thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        """After ``shutdown``: release the loop (kept for the ``socketserver``-like interface)."""
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

