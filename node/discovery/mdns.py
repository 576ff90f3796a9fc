"""Optional LAN discovery over mDNS (zeroconf), off by default.

Each node announces ``<peer-id>._mosaik._udp.local.`` with its network id and QUIC port, and
browses for the same service type. A peer of the same network found this way becomes a dial
hint (like a bootstrap address): its identity is still proven by the QUIC handshake and its
catalog entry still arrives signed, so a forged announcement can at most cause a failed dial.
"""

from __future__ import annotations

import ipaddress
import logging

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from node._tasks import TaskScope
from node.discovery.service import Discovery
from node.errors import ConfigError
from node.primitives.keys import PeerId
from node.transport.addr import SocketAddr

log = logging.getLogger("mosaik.discovery.mdns")

SERVICE_TYPE = "_mosaik._udp.local."
_RESOLVE_TIMEOUT_MS = 3000


class LanDiscovery:
    """Announces this node on the LAN and feeds peers it hears of to discovery as hints."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._tasks = TaskScope("mdns")
        self.found: set[PeerId] = set()

    async def start(self) -> None:
        discovery = self._discovery
        addrs = [SocketAddr.parse(a) for a in discovery.local_entry.entry.addrs]
        hosts = [ipaddress.ip_address(a.host).packed for a in addrs if _is_ip(a.host)]
        peer = discovery.endpoint.peer_id.hex()
        self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{peer[:40]}.{SERVICE_TYPE}",
            port=discovery.endpoint.local_addr.port,
            addresses=hosts,
            properties={"peer": peer, "net": discovery.endpoint.network_id.hex()},
        )
        await self._zeroconf.async_register_service(self._info)
        self._browser = AsyncServiceBrowser(
            self._zeroconf.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
        )

    async def close(self) -> None:
        await self._tasks.aclose()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zeroconf is not None:
            if self._info is not None:
                await self._zeroconf.async_unregister_service(self._info)
            await self._zeroconf.async_close()

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            self._tasks.spawn(self._resolve(zeroconf, service_type, name), f"resolve/{name[:10]}")

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, _RESOLVE_TIMEOUT_MS):
            return
        props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        endpoint = self._discovery.endpoint
        if props.get("net") != endpoint.network_id.hex():
            return
        try:
            peer = PeerId.from_hex(props.get("peer", ""))
        except ConfigError:
            log.info("ignoring mDNS announcement %s with a malformed peer id", name)
            return
        if peer == endpoint.peer_id or info.port is None:
            return
        addrs = tuple(str(SocketAddr(host, info.port)) for host in info.parsed_addresses())
        if addrs:
            self.found.add(peer)
            self._discovery.add_hint(peer, addrs)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
