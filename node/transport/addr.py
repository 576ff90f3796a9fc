"""Addresses: ``host:port`` socket addresses and ``<peer-id>@host:port`` dial targets."""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from node.errors import ConfigError
from node.primitives.keys import PeerId


class SocketAddr(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> SocketAddr:
        """Parse ``host:port`` or ``[v6]:port``."""
        host, sep, port_text = text.strip().rpartition(":")
        if not sep or not host:
            raise ConfigError(f"address {text!r} is not host:port")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ConfigError(f"address {text!r}: write IPv6 hosts in brackets, e.g. [::1]:7400")
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"address {text!r}: port {port_text!r} is not a number") from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"address {text!r}: port {port} is out of range")
        return cls(host, port)

    def is_unspecified(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:
            return False


class PeerAddr(NamedTuple):
    """A peer to dial: its expected id and one socket address."""

    peer_id: PeerId
    addr: SocketAddr

    def __str__(self) -> str:
        return f"{self.peer_id.hex()}@{self.addr}"

    @classmethod
    def parse(cls, text: str) -> PeerAddr:
        peer_text, sep, addr_text = text.strip().partition("@")
        if not sep:
            raise ConfigError(f"peer address {text!r} is not <peer-id>@host:port")
        try:
            peer_id = PeerId.from_hex(peer_text)
        except ConfigError as exc:
            raise ConfigError(f"peer address {text!r}: {exc}") from None
        return cls(peer_id, SocketAddr.parse(addr_text))
