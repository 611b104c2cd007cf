"""Where outgoing requests may go: http(s) URLs without credentials, to public addresses only (SSRF guard).

A URL is checked when it is stored (its literal host) and again right before each request, on every address
its host resolves to; the request then connects to the address that was checked, so a DNS answer that changes
in between (rebinding) cannot point it somewhere private. Used by the webhook and push channels.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from offerloop.delivery.webhooks.exceptions import InvalidTargetUrl

MAX_URL_CHARS = 2048
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


_COMPATIBLE = ipaddress.IPv6Network("::/96")  # IPv4-compatible (deprecated), e.g. ::7f00:1 is ::127.0.0.1
_NAT64 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)  # RFC 6052, RFC 8215


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and that a translator or tunnel would reach: mapped,
    compatible, 6to4 (2002::/16), Teredo (2001::/32, server and client) and NAT64 (the last 32 bits)."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPATIBLE or any(ip in net for net in _NAT64):
        found.append(last32)
    return [v4 for v4 in found if v4 is not None]


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local, reserved, multicast…),
    and so is every IPv4 address an IPv6 one embeds (a NAT64 or 6to4 route would otherwise reach 127.0.0.1)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded(ip)
        if embedded:
            return all(v4.is_global and not v4.is_multicast for v4 in embedded)
    return ip.is_global and not ip.is_multicast


# The other spellings of an IPv4 address that inet_aton (and so every resolver) accepts: 127.1, 0x7f000001,
# 2130706433, 0177.0.0.1, 0. Stored as names they were only refused at send time; they are addresses.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


def _legacy_ipv4(host: str) -> str | None:
    """``host`` as a dotted-quad IPv4 address if it is one in another spelling, else None."""
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _parts(url: str, *, schemes: tuple[str, ...]) -> SplitResult:
    if len(url) > MAX_URL_CHARS:
        raise InvalidTargetUrl(f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidTargetUrl("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidTargetUrl(f"the URL is not valid: {exc}") from None
    if parts.scheme not in schemes:
        raise InvalidTargetUrl(f"the URL must start with {' or '.join(s + '://' for s in schemes)}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidTargetUrl("the URL must not carry credentials (user:password@)")
    if not parts.hostname:
        raise InvalidTargetUrl("the URL has no host")
    if port == 0:
        raise InvalidTargetUrl("the URL's port must be between 1 and 65535")
    if parts.fragment:
        raise InvalidTargetUrl("the URL must not have a #fragment")
    return parts


def check_url(url: str, *, allow_private: bool, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``url`` if it may be stored as a target, else ``InvalidTargetUrl`` (the host is not resolved here)."""
    parts = _parts(url, schemes=schemes)
    host = (parts.hostname or "").rstrip(".").lower()
    if not allow_private:
        if host in _LOCAL_NAMES or host.endswith(".localhost"):
            raise InvalidTargetUrl("the URL points at this machine (loopback)")
        try:
            literal = is_public(_legacy_ipv4(host) or host)
        except ValueError:
            literal = True  # a name: checked on its resolved addresses at send time
        if not literal:
            raise InvalidTargetUrl("the URL points at a private, loopback or reserved address")
    return url


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to for it."""

    url: str
    host: str
    port: int
    address: str

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (sent with the original Host header)."""
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if ":" in self.address else self.address
        return parts._replace(netloc=f"{ip}:{self.port}").geturl()

    def host_header(self) -> str:
        parts = urlsplit(self.url)
        default = 443 if parts.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def resolve(url: str, *, allow_private: bool, schemes: tuple[str, ...] = ("http", "https")) -> Target:
    """Resolve a stored URL's host and check every address it has; ``InvalidTargetUrl`` if one is private."""
    check_url(url, allow_private=allow_private, schemes=schemes)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidTargetUrl(f"the host {host!r} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise InvalidTargetUrl(f"the host {host!r} has no address")
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise InvalidTargetUrl(f"the host {host!r} resolves to a non-public address ({refused[0]})")
    return Target(url=url, host=host, port=port, address=addresses[0])
