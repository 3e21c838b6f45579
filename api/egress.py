"""Egress policy: where the service may open outbound connections (webhook deliveries).

A webhook URL is chosen by a consumer, so without a policy any consumer could make the
service probe loopback, link-local (``169.254.169.254``), private ranges or the database and
read the outcome back from the delivery log. The policy is applied twice:

1. **at registration** (:func:`check_url`): the URL must be ``http(s)``, its host an IP literal
   or a name, and every address the host resolves to must be permitted;
2. **on every connection** (:func:`pinned_connector`): the delivery resolves the host once,
   checks every address, and the connection is opened to exactly those checked addresses (a
   pinned resolver, no DNS cache, no second resolution: a name that re-binds to an internal
   address between check and connect cannot slip through). A socket factory re-checks the
   address the socket is about to connect to, so even an IP literal that skips resolution is
   checked where the connection is made. Redirects are never followed (the caller passes
   ``allow_redirects=False``).

An address is permitted when an operator's allowlist network contains it, or when it is a
globally routable unicast address: not loopback, private, link-local, shared (CGN),
unspecified (``0.0.0.0``, ``::``), multicast, broadcast, reserved or documentation space.
IPv4-mapped (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``) and 6to4 (``2002::/16``) IPv6
addresses are judged by the IPv4 address they carry; Teredo is refused. Odd IPv4 spellings
(``2130706433``, ``0x7f.1``, ``0177.0.0.1``) are normalised before the check, the way
``inet_aton`` (and so a resolver) reads them.

Every refusal carries one fixed reason (:data:`REFUSED`) and no detail about the target, so
the answer is not an oracle for internal names or addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from anyio import to_thread

from api import errors

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The fixed reason code of every refusal (registration answer and delivery log alike).
REFUSED = "egress_refused"
#: The one detail a refusal carries (also how a refusal is recognised inside a wrapped error).
REFUSED_DETAIL = "the target is outside the egress policy (docs/api.md, Webhook egress)"

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Special-purpose ranges refused although the ``ipaddress`` flags of some Python versions
#: call (part of) them global: IETF protocol assignments, 6to4 relay anycast, CGN, benchmarking.
_SPECIAL: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "240.0.0.0/4",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
    )
)
_SCHEMES = ("http", "https")


class TargetRefusedError(errors.EgressRefusedError, OSError):
    """The target is outside the egress policy: the API's ``egress_refused`` problem, and an
    ``OSError`` so that an HTTP client's connector reports it as a failed connection. Its
    detail never names the target or the reason."""

    def __init__(self) -> None:
        errors.EgressRefusedError.__init__(self, REFUSED_DETAIL)


@dataclass(frozen=True)
class EgressPolicy:
    """Globally routable unicast only, plus the operator's allowlist networks."""

    allow: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def of(cls, networks: Iterable[Any]) -> EgressPolicy:
        return cls(tuple(ipaddress.ip_network(str(n), strict=False) for n in networks))

    def permits(self, address: IPAddress | str) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return False  # zoned (fe80::1%eth0) addresses are link-local by definition
        inner = _embedded_v4(ip)
        candidates = [ip] if inner is None else [ip, inner]
        if any(c in net for c in candidates for net in self.allow if c.version == net.version):
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.teredo is not None:
            return False
        return _public(ip) and (inner is None or _public(inner))


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _public(ip: IPAddress) -> bool:
    return (
        ip.is_global
        and not any(ip in net for net in _SPECIAL if net.version == ip.version)
        and not ip.is_multicast
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
        and not ip.is_reserved
        and not ip.is_unspecified
        and not (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def literal_address(host: str) -> IPAddress | None:
    """The address a host string denotes when it is an IP literal in any spelling, else None.

    ``inet_aton`` accepts what resolvers accept (``127.1``, ``2130706433``, ``0x7f.0.0.1``,
    ``0177.0.0.1``), so those are read as the IPv4 address they reach.
    """
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0] if "%" in bare else bare)
    except ValueError:
        pass
    if bare and all(
        part and all(ch in "0123456789abcdefxABCDEFX" for ch in part) for part in bare.split(".")
    ):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (blocking; call from a worker thread)."""
    literal = literal_address(host)
    if literal is not None:
        if "%" in host:
            raise TargetRefusedError()  # a zone id only makes sense for link-local addresses
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefusedError() from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _checked(policy: EgressPolicy, addresses: Sequence[IPAddress]) -> list[IPAddress]:
    # One internal address among public ones refuses the whole name (DNS rebinding, mixed sets).
    if not addresses or not all(policy.permits(a) for a in addresses):
        raise TargetRefusedError()
    return list(dict.fromkeys(addresses))


def split_target(url: str) -> tuple[str, int]:
    """Host and port of an ``http(s)`` URL, or :class:`TargetRefusedError`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefusedError() from exc
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        raise TargetRefusedError()
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def check_url(url: str, policy: EgressPolicy) -> list[IPAddress]:
    """Registration check: every address of the URL's host is permitted (blocking)."""
    host, port = split_target(url)
    return _checked(policy, resolve(host, port))


async def resolve_checked(url: str, policy: EgressPolicy) -> tuple[str, list[IPAddress]]:
    """Connection-time check: resolve once (in a worker thread the caller may abandon: wrap
    the call in ``anyio.fail_after``) and check every address."""
    host, port = split_target(url)
    addresses = await to_thread.run_sync(resolve, host, port, abandon_on_cancel=True)
    return host, _checked(policy, addresses)


class _PinnedResolver(AbstractResolver):
    """Answers only with the addresses already resolved and checked for this one host."""

    def __init__(self, host: str, addresses: Sequence[IPAddress]) -> None:
        self._host = host
        self._addresses = list(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.strip("[]").lower() != self._host.strip("[]").lower():
            raise TargetRefusedError()
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET if a.version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self._addresses
        ]

    async def close(self) -> None:
        return None


def is_refusal(exc: BaseException) -> bool:
    """Whether an HTTP client error was caused by this policy (however the client wrapped it:
    ``os_error`` of a connector error, a cause, or the text of a combined error)."""
    seen: BaseException | None = exc
    for _ in range(8):  # wrappers nest a few levels at most
        if seen is None:
            return False
        if isinstance(seen, TargetRefusedError) or REFUSED_DETAIL in str(seen):
            return True
        os_error = getattr(seen, "os_error", None)
        seen = os_error if isinstance(os_error, BaseException) else seen.__cause__
    return False


def _guarded_socket_factory(policy: EgressPolicy, pinned: Sequence[IPAddress]) -> Any:
    allowed = set(pinned)

    def factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        try:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError as exc:
            raise TargetRefusedError() from exc
        # The last word before connect(): the exact address must be one we checked.
        if address not in allowed or not policy.permits(address):
            raise TargetRefusedError()
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def pinned_connector(
    host: str, addresses: Sequence[IPAddress], policy: EgressPolicy
) -> aiohttp.TCPConnector:
    """A one-delivery connector that can only connect to ``addresses`` (already checked)."""
    return aiohttp.TCPConnector(
        resolver=_PinnedResolver(host, addresses),
        use_dns_cache=False,
        force_close=True,
        socket_factory=_guarded_socket_factory(policy, addresses),
    )
