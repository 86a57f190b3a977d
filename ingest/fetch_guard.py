"""Which addresses a URL given by a user of the server may reach: public ones only.

The check sits where the connection is made (an httpcore network backend): the host is
resolved once, every address it resolves to is checked, and the socket connects to an address
that was checked, so a name that answers a public address to the check and a private one to
the connection (DNS rebinding) has no window. Redirects and feed item links go through the same
client, so every hop is checked. An operator's own fetches (the CLI, `newsdesk-watch`,
NEWSDESK_WATCH) do not use it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (RFC 6052 NAT64, and its
# local-use prefix of RFC 8215): the embedded address is what the packet reaches.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class AddressRefused(Exception):
    """A connection the fetch policy does not allow; `host` is the name that was asked for."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.host = host

    @property
    def reason(self) -> str:
        # One line whatever the address: nothing here says whether something listens there.
        return (f"refused: {self.host} is not a public address (the server fetches public "
                "addresses only; NEWSDESK_FETCH_ALLOW lists internal hosts it may fetch)")


def is_internal(address: IPAddress) -> bool:
    """True for loopback, private, link-local, shared (CGNAT), multicast, reserved and
    unspecified addresses, IPv4 and IPv6, an IPv4 address inside an IPv6 one included."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_internal(embedded)
    return (not address.is_global or address.is_private or address.is_loopback
            or address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus the hosts and networks an operator allows.

    `allow` entries: a host name (`intranet.example`), every name under a domain
    (`*.corp.example`), or an IP address or network (`10.1.0.0/16`, `::1`, `[::1]`).
    """

    allow: Sequence[str] = ()
    _hosts: frozenset[str] = field(init=False, repr=False)
    _domains: tuple[str, ...] = field(init=False, repr=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hosts, domains, networks = set(), [], []
        for entry in (e.strip().lower().strip("[]") for e in self.allow):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry.startswith("*."):
                    domains.append(entry[1:].rstrip("."))
                else:
                    hosts.add(entry.rstrip("."))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_domains", tuple(domains))
        object.__setattr__(self, "_networks", tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """May a connection asked for `host` go to `address`?"""
        name = host.lower().strip("[]").rstrip(".")
        if name in self._hosts or any(name.endswith(d) for d in self._domains):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            mapped: IPAddress = address.ipv4_mapped
            if any(mapped in net for net in self._networks):
                return True
        if any(address in net for net in self._networks):
            return True
        return not is_internal(address)

    def addresses(self, host: str, port: int) -> list[tuple[int, IPAddress]]:
        """Every address `host` resolves to, as (family, address); `AddressRefused` when any of
        them is not allowed (a name that mixes public and internal answers is refused whole)."""
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
        found: list[tuple[int, IPAddress]] = []
        for family, *_, sockaddr in infos:
            # A scoped IPv6 address ("fe80::1%eth0") is link-local, hence internal.
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not self.allows(host, address):
                raise AddressRefused(host)
            if (family, address) not in found:
                found.append((family, address))
        if not found:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        return found


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses that `policy` allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[tuple[int, int, int | bytes | None]] | None = None,
                    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for _, address in self.policy.addresses(host, port):
            try:
                # The checked address itself, never the name again: no rebinding window.
                return super().connect_tcp(str(address), port, timeout, local_address,
                                           socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


def guarded_transport(policy: AddressPolicy) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through `GuardedBackend`; proxies from
    the environment are not used (the check needs the direct connection)."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its pool without a way to pass a network backend: the same pool, with one.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy))
    return transport
