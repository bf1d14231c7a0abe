"""One way to open a Redis client from a Celery-style URL: `redis://`, `rediss://`, `unix://` or `sentinel://`.

The scaler's state and lock, its depth reads, the preview limits and chapter leases all talk to the Redis
that Celery uses, so they must accept every URL Celery accepts. `sentinel://` is kombu's and Celery's form
for a highly available Redis: several `sentinel://host:port` parts joined by `;`, with the master's name in
the transport options (`master_name`), as `broker_transport_options` / `result_backend_transport_options`
hold it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")


def url_scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def is_redis_url(url: str) -> bool:
    """Whether `url` names a Redis (plain, TLS, socket or Sentinel)."""
    return url_scheme(url) in REDIS_SCHEMES


def sentinel_hosts(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """`sentinel://[:pw@]h1:26379/0;sentinel://h2:26379` -> ([(h1, 26379), (h2, 26379)], {password, db})."""
    hosts: list[tuple[str, int]] = []
    options: dict[str, Any] = {}
    for part in (p.strip() for p in url.split(";")):
        if not part:
            continue
        parts = urlsplit(part)
        if parts.scheme.lower() != "sentinel" or not parts.hostname:
            raise ValueError(f"not a sentinel:// URL part: {parts.scheme}://{parts.hostname or ''}")
        hosts.append((parts.hostname, parts.port or 26379))
        if parts.password is not None and "password" not in options:
            options["password"] = unquote(parts.password)
        if parts.username and "username" not in options:
            options["username"] = unquote(parts.username)
        db = parts.path.strip("/")
        if db and "db" not in options:
            options["db"] = int(db)
    if not hosts:
        raise ValueError("a sentinel:// URL names no host")
    return hosts, options


def redis_client(url: str, transport_options: Mapping[str, Any] | None = None, **kwargs: Any) -> redis.Redis:
    """A redis-py client for `url`; for `sentinel://`, the current master of `master_name`.

    `kwargs` go to the client (socket timeouts and the like). A Sentinel client finds the master again after
    a failover on its next command.
    """
    if url_scheme(url) != "sentinel":
        return redis.Redis.from_url(url, **kwargs)
    options = dict(transport_options or {})
    master_name = options.get("master_name")
    if not master_name:
        raise ValueError("a sentinel:// URL needs `master_name` in the transport options (AUDIOBOOK_REDIS_MASTER_NAME)")
    hosts, auth = sentinel_hosts(url)
    sentinel_kwargs = dict(options.get("sentinel_kwargs") or {})
    for key in ("socket_timeout", "socket_connect_timeout"):
        if key in kwargs:
            sentinel_kwargs.setdefault(key, kwargs[key])
    return Sentinel(hosts, sentinel_kwargs=sentinel_kwargs, **auth, **kwargs).master_for(master_name)
