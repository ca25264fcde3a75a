"""decisions/redis_url.py: reading redis+sentinel URLs, by table and by property."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facteur.decisions.redis_url import (
    DEFAULT_SENTINEL_PORT,
    SentinelURL,
    is_sentinel_url,
    parse_sentinel_url,
)

SERVICE_HOST = "redis-sentinel.facteur.svc.cluster.local"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"redis+sentinel://{SERVICE_HOST}:26379/facteur/0",
            SentinelURL(((SERVICE_HOST, 26379),), "facteur", 0),
        ),
        (
            "redis+sentinel://:pw@h1:26380,h2,10.0.0.3:1/mymaster/3",
            SentinelURL(
                (("h1", 26380), ("h2", DEFAULT_SENTINEL_PORT), ("10.0.0.3", 1)),
                "mymaster",
                3,
                None,
                "pw",
            ),
        ),
        (
            "REDIS+SENTINEL://user:p%40ss%2Fword@[::1]:26379,[fe80::1]/my.master_1-a/",
            SentinelURL(
                (("::1", 26379), ("fe80::1", DEFAULT_SENTINEL_PORT)),
                "my.master_1-a",
                0,
                "user",
                "p@ss/word",
            ),
        ),
        # The password is taken up to the last @, as urlsplit (so redact_url) reads it.
        ("redis+sentinel://:a@b@h/s", SentinelURL((("h", 26379),), "s", 0, None, "a@b")),
        ("redis+sentinel://user@h/s", SentinelURL((("h", 26379),), "s", 0, "user", None)),
        ("redis+sentinel://:@h/s", SentinelURL((("h", 26379),), "s", 0, None, None)),
        # What urlsplit ignores, this ignores too.
        ("\t redis+sentinel://h/s\n", SentinelURL((("h", 26379),), "s")),
    ],
)
def test_sentinel_urls_are_read(url: str, expected: SentinelURL) -> None:
    assert is_sentinel_url(url)
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://h:6379/0", "must start with redis+sentinel://"),
        ("redis+sentinel:h/s", "must start with redis+sentinel://"),
        ("redis+sentinel:///s", "names no Sentinel"),
        ("redis+sentinel://:pw@/s", "names no Sentinel"),
        ("redis+sentinel://h", "needs the service name"),
        ("redis+sentinel://h/", "needs the service name"),
        ("redis+sentinel://h/my master", "needs the service name"),
        ("redis+sentinel://h/s/x", "one database number"),
        ("redis+sentinel://h/s/0/1", "one database number"),
        ("redis+sentinel://h/s/-1", "one database number"),
        ("redis+sentinel://h/s?db=1", "no ?query"),
        ("redis+sentinel://h/s#x", "no ?query"),
        ("redis+sentinel://h:0/s", "Sentinel 1: the port"),
        ("redis+sentinel://h1,h2:65536/s", "Sentinel 2: the port"),
        ("redis+sentinel://h1,h2:x/s", "Sentinel 2: the port"),
        ("redis+sentinel://h1,,h2/s", "Sentinel 2: the host"),
        ("redis+sentinel://h1,h1:26379/s", "names a Sentinel twice"),
        ("redis+sentinel://::1:26379/s", "Sentinel 1: the host"),
        ("redis+sentinel://[::1/s", "Sentinel 1: an IPv6 address needs"),
        ("redis+sentinel://[nope]/s", "Sentinel 1: not an IPv6 address"),
        ("redis+sentinel://[::1]x/s", "Sentinel 1: an IPv6 address needs"),
        ("redis+sentinel://h_st%2F/s", "Sentinel 1: the host"),
    ],
)
def test_malformed_sentinel_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_sentinel_url(url)


@pytest.mark.parametrize(
    "url", ["redis://h/0", "rediss://h", "unix:///run/redis.sock", "redis+sentinelx://h/s", ""]
)
def test_other_urls_are_not_sentinel_urls(url: str) -> None:
    assert not is_sentinel_url(url)


def test_the_password_never_shows_in_repr() -> None:
    address = parse_sentinel_url("redis+sentinel://:hunter2-secret@h/s")
    assert address.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(address)


# -- properties ----------------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_NAMES = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_IPV4 = st.ip_addresses(v=4).map(str)
_IPV6 = st.ip_addresses(v=6).map(str)
_HOSTS = st.one_of(_NAMES, _IPV4, _IPV6)
_PORTS = st.none() | st.integers(1, 65535)
_SERVICES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_SECRETS = st.none() | st.text(min_size=1, max_size=20)


def _host_text(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


@given(
    sentinels=st.lists(st.tuples(_HOSTS, _PORTS), min_size=1, max_size=5, unique_by=lambda s: s),
    service=_SERVICES,
    db=st.none() | st.integers(0, 99999),
    username=_SECRETS,
    password=_SECRETS,
    trailing_slash=st.booleans(),
)
def test_every_well_formed_url_reads_back_what_was_written(
    sentinels: list[tuple[str, int | None]],
    service: str,
    db: int | None,
    username: str | None,
    password: str | None,
    trailing_slash: bool,
) -> None:
    expected_sentinels = tuple((h, DEFAULT_SENTINEL_PORT if p is None else p) for h, p in sentinels)
    if len(set(expected_sentinels)) != len(expected_sentinels):
        return  # h and h:26379 are the same Sentinel, refused (a table case above)
    auth = ""
    if username is not None or password is not None:
        auth = quote(username or "", safe="")
        auth += f":{quote(password, safe='')}" if password is not None else ""
        auth += "@"
    hosts = ",".join(_host_text(h, p) for h, p in sentinels)
    path = f"/{service}" + ("" if db is None else f"/{db}") + ("/" if trailing_slash else "")
    url = f"redis+sentinel://{auth}{hosts}{path}"
    assert parse_sentinel_url(url) == SentinelURL(
        expected_sentinels, service, db or 0, username, password
    )


_PIECES = st.sampled_from(
    ["redis+sentinel://", ":", "@", "/", ",", "[", "]", "?", "#", "h", "26379", "s", "%2F", " "]
)


@given(
    before=st.lists(_PIECES, max_size=8).map("".join),
    after=st.lists(_PIECES, max_size=8).map("".join),
)
def test_no_message_quotes_the_password_wherever_it_lands(before: str, after: str) -> None:
    secret = "Sup3rS3cretPassw0rd"
    url = f"{before}{secret}{after}"
    try:
        address = parse_sentinel_url(url)
    except ValueError as err:
        assert secret not in str(err)
    else:
        # Where it was read as the password, repr leaves it out (a host or a name it shows).
        if secret in (address.password or ""):
            assert secret not in repr(address)
