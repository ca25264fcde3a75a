"""Reading redis.url when it names Sentinels instead of one server. Pure.

    redis+sentinel://[[username]:password@]host[:port][,host[:port]...]/service_name[/db]

Each host is a Sentinel: a DNS name, an IPv4 address or an IPv6 address in brackets, on port
26379 unless one is given. `service_name` is the name the Sentinels monitor the primary under
(`sentinel monitor <name> ...`; the RedisSentinel's `masterGroupName`), `db` the database number
(0 unless given). The username and password are percent-decoded, as redis-py reads them from a
`redis://` URL, and sent to the Sentinels and to the servers they name alike.

No message here quotes the URL or a piece of it: a malformed URL can put its password anywhere.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379

# What urlsplit (and so redis-py) removes before reading a URL: \t\r\n anywhere, and leading C0
# control characters and spaces.
_IGNORED = str.maketrans("", "", "\t\r\n")
_LEADING = "".join(map(chr, range(33)))
# A Sentinel master name, as the operator and redis.conf examples write them.
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
_DB = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class SentinelURL:
    """A redis+sentinel URL, read. The password never shows in repr."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def _normalised(url: str) -> str:
    return url.translate(_IGNORED).lstrip(_LEADING)


def is_sentinel_url(url: str) -> bool:
    """Whether `url` is meant as a redis+sentinel URL (its scheme, in any case)."""
    scheme, colon, _ = _normalised(url).partition(":")
    return bool(colon) and scheme.lower() == SENTINEL_SCHEME


def _sentinel(text: str, position: int) -> tuple[str, int]:
    where = f"Sentinel {position}"
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ValueError(f"{where}: not an IPv6 address between [ and ]") from None
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{where}: an IPv6 address needs [brackets], then :port or nothing")
        host, port = address, rest[1:] if rest else None
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = text, ""
        port = port_text if colon else None
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{where}: the host must be a DNS name or an IP address")
    if port is None:
        return host, DEFAULT_SENTINEL_PORT
    if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise ValueError(f"{where}: the port must be a number from 1 to 65535")
    return host, int(port)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Read a redis+sentinel URL; ValueError, with a message that quotes none of it, otherwise."""
    text = _normalised(url)
    scheme, separator, rest = text.partition("://")
    if not separator or scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"must start with {SENTINEL_SCHEME}://")
    if "?" in rest or "#" in rest:
        raise ValueError("takes no ?query or #fragment (the database goes in the path: /<db>)")
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    if not hosts:
        raise ValueError("names no Sentinel (host:port after //, several separated by commas)")
    sentinels = tuple(_sentinel(part, n) for n, part in enumerate(hosts.split(","), start=1))
    if len(set(sentinels)) != len(sentinels):
        raise ValueError("names a Sentinel twice")
    parts = path.split("/")
    if parts and parts[-1] == "":
        parts.pop()  # one trailing slash
    if not parts or not _SERVICE.fullmatch(parts[0]):
        raise ValueError(
            "needs the service name after the Sentinels (/<service_name>, the name they monitor "
            "the primary under: letters, digits, '.', '_' or '-')"
        )
    if len(parts) > 2 or (len(parts) == 2 and not _DB.fullmatch(parts[1])):
        raise ValueError("may end with one database number after the service name (/<db>)")
    db = int(parts[1]) if len(parts) == 2 else 0
    return SentinelURL(sentinels, parts[0], db, username, password)
