"""The HTTP client of `Http` steps: it refuses to connect to addresses inside the worker's network.

A flow's calls go to the business's API on the internet. A call to a loopback, private,
link-local (the cloud metadata service at 169.254.169.254), shared, multicast or otherwise
non-global address is refused unless the configuration allows that host (`[http] allow` in
chatflow.toml, `CHATFLOW_HTTP_ALLOW`): a flow's URL, a misconfigured default or a redirect never
reaches the worker's own network by accident.

The check is made where the connection is made (httpcore's network backend): the host is
resolved once, every address it resolves to is checked, and the connection goes to a checked
address, so a DNS answer that changes between a check and the connection cannot get around it.
Redirects are not followed. Proxies from the environment are not used: the check must see the
address the call really goes to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(Exception):
    """A call to an address the configuration does not allow; the reason says which and why."""


@dataclass(frozen=True)
class AllowedHost:
    host: str
    port: int | None = None  # None: any port

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        """`host`, `host:port`, `[v6]:port`; ValueError when it is none of them."""
        try:
            split = urlsplit(f"//{entry.strip()}")
            port = split.port
        except ValueError:
            raise ValueError(f"{entry!r} is not host or host:port") from None
        if not split.hostname or split.path or split.query or split.fragment or split.username:
            raise ValueError(f"{entry!r} is not host or host:port")
        return cls(split.hostname.lower(), port)

    def allows(self, host: str, port: int) -> bool:
        return self.host == host.lower().strip("[]") and self.port in (None, port)


def allowed_hosts(entries: Iterable[str]) -> tuple[AllowedHost, ...]:
    return tuple(AllowedHost.parse(entry) for entry in entries if entry.strip())


def _embedded(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def refusal(address: str) -> str | None:
    """Why a call may not go to `address` (an IP), or None when it may."""
    ip = _embedded(ipaddress.ip_address(address.split("%", 1)[0]))
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to allowed hosts or to public addresses."""

    def __init__(self, allow: Iterable[AllowedHost] = ()) -> None:
        self.allow = tuple(allow)
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if any(allowed.allows(host, port) for allowed in self.allow):
            return await self.inner.connect_tcp(
                host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
            )
        try:
            async with asyncio.timeout(timeout):
                found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        addresses = list(dict.fromkeys(str(entry[4][0]) for entry in found))
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                shown = host if host == address else f"{host} ({address})"
                raise RefusedAddress(
                    f"refused to call {shown}:{port}: {reason}; allow it with [http] allow in chatflow.toml "
                    "or CHATFLOW_HTTP_ALLOW"
                )
        last: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:  # connect to what was checked, not to a second DNS answer
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                last = failed
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("refused to call a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, allow: Iterable[AllowedHost] = (), limits: httpx.Limits = LIMITS) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx does not take a network backend; its pool is replaced by one with the guard.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow),
        )


def business_client(allow: Iterable[str] = ()) -> httpx.AsyncClient:
    """The client `Http` steps call through: guarded, no redirects followed, no env proxies."""
    return httpx.AsyncClient(transport=GuardedTransport(allowed_hosts(allow)), follow_redirects=False, trust_env=False)
