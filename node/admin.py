"""The node's local HTTP endpoint: ``/metrics`` (Prometheus), ``/status`` (JSON), ``/healthz``.

``/healthz`` answers 200 ``ok`` while ``problems()`` is empty, else 503 with one problem a line
(a group stopped on this node, and why).

A deliberately tiny HTTP/1.0 responder on asyncio: it serves three read-only documents to
`mosaik node inspect`, Prometheus and health checks, and nothing else. ``fetch_status`` is its
client: it reads ``/status`` of a running node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from node.errors import ConfigError, MosaikError
from node.transport.addr import SocketAddr

log = logging.getLogger("mosaik.admin")


class AdminServer:
    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        metrics: Callable[[], bytes],
        problems: Callable[[], Sequence[str]],
    ) -> None:
        self._status = status
        self._metrics = metrics
        self._problems = problems
        self._server: asyncio.Server | None = None
        self.address: SocketAddr | None = None

    async def start(self, bind: SocketAddr) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, bind.host, bind.port)
        except OSError as exc:
            raise ConfigError(f"cannot bind metrics address {bind}: {exc.strerror}") from None
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = SocketAddr(host, port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else "/"
            status, content_type, body = self._route(path.split("?")[0])
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4", self._metrics()
        if path == "/status":
            body = json.dumps(self._status(), indent=2, sort_keys=True).encode()
            return "200 OK", "application/json", body
        if path == "/healthz":
            problems = self._problems()
            if not problems:
                return "200 OK", "text/plain", b"ok\n"
            body = "".join(f"{problem}\n" for problem in problems).encode()
            return "503 Service Unavailable", "text/plain", body
        return "404 Not Found", "text/plain", b"not found\n"


def fetch_status(admin_addr: SocketAddr) -> dict[str, Any]:
    """The JSON ``/status`` of the node whose admin endpoint is ``admin_addr`` (blocking).

    Raises ``MosaikError`` naming the address when it does not answer with a JSON document.
    """
    try:
        with urllib.request.urlopen(f"http://{admin_addr}/status", timeout=5) as response:
            status: dict[str, Any] = json.load(response)
            return status
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise MosaikError(f"cannot read status from {admin_addr}: {exc}") from None
