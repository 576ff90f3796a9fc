"""The addresses a node advertises in its signed entry."""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

from node.transport import SocketAddr

_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def advertised_addrs(bound: SocketAddr, advertise: Iterable[str] = ()) -> tuple[str, ...]:
    """Addresses peers should dial: explicit ones, else the bound one, else (bound to the
    unspecified address) this host's non-loopback IPv4 addresses, else loopback."""
    explicit = tuple(str(SocketAddr.parse(a)) for a in advertise)
    if explicit:
        return explicit
    if not bound.is_unspecified():
        return (str(bound),)
    hosts = [h for h in host_ipv4_addrs() if not h.startswith("127.")]
    return tuple(str(SocketAddr(h, bound.port)) for h in hosts) or (f"127.0.0.1:{bound.port}",)


def host_ipv4_addrs() -> list[str]:
    """IPv4 addresses of this host's interfaces (Linux), then what its name resolves to.

    The interfaces come first because a hostname often resolves only to 127.0.1.1 (Debian's
    /etc/hosts), which no other host can reach.
    """
    hosts: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in _interface_names():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:  # an interface without an IPv4 address
                continue
            hosts.append(socket.inet_ntoa(reply[20:24]))
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        infos = []
    hosts += [str(info[4][0]) for info in infos]
    return list(dict.fromkeys(hosts))


def _interface_names() -> list[str]:
    """Names of the network interfaces: from netlink, else from /proc/net/dev (a sandboxed
    service may be denied AF_NETLINK, e.g. systemd's RestrictAddressFamilies)."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:
        pass
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return []
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line]
