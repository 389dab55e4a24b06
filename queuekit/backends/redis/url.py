"""queuekit's Redis URLs, and the redis-py clients each one makes.

- `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS): one server, or with
  `queuekit_cluster=true` any node of a Cluster.
- `redis+sentinel://[user:password@]host[:port][,host[:port]...]/<master>[/db]`: the primary
  that Sentinel names `<master>`, found through the listed sentinels (port 26379 unless
  given). `user:password` is for the Redis servers; `sentinel_username` and
  `sentinel_password` query options authenticate to the sentinels.

`queuekit_*` query options configure the backend; the others go to redis-py. See
docs/redis.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import parse_url as redis_py_parse_url
from redis.asyncio.sentinel import Sentinel

from ...errors import InvalidURLError
from ..url_options import Read, count, flag, read_url, text
from .packing import pack_in_c

SCHEMES = ("redis", "rediss")
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
URL_OPTIONS: dict[str, tuple[str, Read]] = {
    "prefix": ("prefix", text),
    "cluster": ("cluster", flag),
    "wait_replicas": ("wait_replicas", count),
}
"""Each option's name in the URL (after `queuekit_`): its `RedisURL` field and reader."""
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class RedisURL:
    """What a queuekit Redis URL says: where to connect, and the backend's options."""

    prefix: str | None
    cluster: bool
    wait_replicas: int | None
    redis_url: str = ""
    """For one server or a Cluster: the URL as redis-py takes it."""
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    """For Sentinel: the sentinels' addresses and the name of the primary they watch."""
    connection: dict[str, Any] = field(default_factory=dict)
    """For Sentinel: keyword arguments of the connections to the Redis servers."""
    sentinel_connection: dict[str, Any] = field(default_factory=dict)
    """For Sentinel: keyword arguments of the connections to the sentinels."""


def parse_url(url: str) -> RedisURL:
    """Check a queuekit Redis URL and split it into what redis-py needs and our options."""
    parts, ours, rest = read_url(url, URL_OPTIONS, "Redis")
    scheme = parts.scheme.lower()
    if scheme not in (*SCHEMES, SENTINEL_SCHEME):
        raise InvalidURLError(
            f"not a Redis URL: {url!r}; use redis://, rediss:// or {SENTINEL_SCHEME}://"
        )
    options = RedisURL(
        prefix=ours.get("prefix"),
        cluster=ours.get("cluster", False),
        wait_replicas=ours.get("wait_replicas"),
    )
    if scheme == SENTINEL_SCHEME:
        if options.cluster:
            raise InvalidURLError("a Sentinel URL names a primary, not a Cluster")
        return _sentinel_url(url, parts.netloc, parts.path, rest, options)
    database = parts.path.lstrip("/")
    if database and not database.isdecimal():
        raise InvalidURLError(f"bad Redis URL {url!r}: the path must be a database number")
    redis_url = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        redis_py_parse_url(redis_url)
    except ValueError as exc:
        raise InvalidURLError(f"bad Redis URL {url!r}: {exc}") from None
    return replace(options, redis_url=redis_url)


def _sentinel_url(
    url: str, netloc: str, path: str, query: list[tuple[str, str]], options: RedisURL
) -> RedisURL:
    userinfo, _, hosts = netloc.rpartition("@")
    sentinels = tuple(_address(url, host) for host in hosts.split(","))
    master, _, database = path.strip("/").partition("/")
    if not master:
        raise InvalidURLError(f"bad Sentinel URL {url!r}: name the primary, as in /mymaster")
    if database and not database.isdecimal():
        raise InvalidURLError(f"bad Sentinel URL {url!r}: /{master}/<db>, a database number")
    ours = {name: value for name, value in query if name in SENTINEL_OPTIONS}
    rest = [(name, value) for name, value in query if name not in SENTINEL_OPTIONS]
    credentials = f"{userinfo}@" if userinfo else ""
    try:
        # redis-py's own reading of credentials, database and connection options.
        connection: dict[str, Any] = dict(
            redis_py_parse_url(f"redis://{credentials}sentinel/{database}?{urlencode(rest)}")
        )
    except ValueError as exc:
        raise InvalidURLError(f"bad Sentinel URL {url!r}: {exc}") from None
    del connection["host"]
    # Sentinels take the socket options, and credentials of their own.
    sentinel_connection = {
        name: value for name, value in connection.items() if name.startswith("socket_")
    }
    for name, value in ours.items():
        sentinel_connection[name.removeprefix("sentinel_")] = value
    return replace(
        options,
        sentinels=sentinels,
        master=unquote(master),
        connection=connection,
        sentinel_connection=sentinel_connection,
    )


def _address(url: str, host: str) -> tuple[str, int]:
    """`host[:port]` or `[v6 address][:port]` of one sentinel."""
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"bad Sentinel URL {url!r}: {host!r}: {exc}") from None
    if not parts.hostname:
        raise InvalidURLError(f"bad Sentinel URL {url!r}: a sentinel without a host")
    return parts.hostname, SENTINEL_PORT if port is None else port


def make_clients(
    target: RedisURL, options: dict[str, Any]
) -> tuple[Redis | RedisCluster, Redis | RedisCluster, Sentinel | None]:
    """The shared client, one for blocking pops (no socket timeout), and the Sentinel
    client to close with them, if any; `options` go to every connection to Redis."""
    blocking = {**options, "socket_timeout": None}
    if target.sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=target.sentinel_connection, **target.connection
        )
        return (
            pack_in_c(sentinel.master_for(target.master, **options)),
            pack_in_c(sentinel.master_for(target.master, **blocking)),
            sentinel,
        )
    if target.cluster:
        # Each blocking wait holds a connection to its node for the whole wait.
        return (
            RedisCluster.from_url(target.redis_url, **options),
            RedisCluster.from_url(target.redis_url, **blocking, max_connections=2**16),
            None,
        )
    return (
        pack_in_c(Redis.from_url(target.redis_url, **options)),
        pack_in_c(Redis.from_url(target.redis_url, **blocking)),
        None,
    )
