"""What a node advertises: explicit addresses, the bound one, or its interfaces' addresses."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from node.discovery.addrs import advertised_addrs, host_ipv4_addrs
from node.errors import ConfigError
from node.transport import SocketAddr


def _interface_ipv4() -> set[str]:
    """What iproute2 lists, the independent witness."""
    output = subprocess.run(
        ["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True
    ).stdout
    return {a["local"] for link in json.loads(output) for a in link.get("addr_info", [])}


def test_explicit_addresses_win() -> None:
    bound = SocketAddr("0.0.0.0", 7400)
    assert advertised_addrs(bound, ["10.0.0.5:7400", "[fd00::5]:7401"]) == (
        "10.0.0.5:7400",
        "[fd00::5]:7401",
    )


def test_a_specific_bind_is_advertised_as_is() -> None:
    assert advertised_addrs(SocketAddr("127.0.0.1", 9000)) == ("127.0.0.1:9000",)


def test_a_bad_advertised_address_is_named() -> None:
    with pytest.raises(ConfigError, match="not host:port"):
        advertised_addrs(SocketAddr("0.0.0.0", 7400), ["10.0.0.5"])


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
def test_unspecified_bind_advertises_every_interface_but_loopback() -> None:
    interfaces = _interface_ipv4()
    assert interfaces <= set(host_ipv4_addrs())
    reachable = sorted(a for a in interfaces if not a.startswith("127."))
    advertised = advertised_addrs(SocketAddr("0.0.0.0", 7400))
    if reachable:
        assert {a.removesuffix(":7400") for a in advertised} >= set(reachable)
        assert not any(a.startswith("127.") for a in advertised)
    else:
        assert advertised == ("127.0.0.1:7400",)


def test_interfaces_are_found_without_netlink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hardened unit may deny AF_NETLINK: /proc/net/dev still names the interfaces."""
    with_netlink = host_ipv4_addrs()

    def denied() -> list[tuple[int, str]]:
        raise OSError(97, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "if_nameindex", denied)
    assert host_ipv4_addrs() == with_netlink
