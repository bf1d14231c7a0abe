"""Redis URLs as Celery takes them: plain, TLS, socket, and Sentinel with the master name in transport options."""

from __future__ import annotations

import pytest
import redis

from scaler.redis_client import is_redis_url, redis_client, sentinel_hosts


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://localhost:6379/0", True), ("rediss://h:6380/1", True), ("unix:///run/redis.sock", True),
    ("sentinel://h1:26379;sentinel://h2:26379", True), ("amqp://guest:guest@localhost//", False),
    ("pyamqp://localhost", False), ("memory://", False), ("", False),
])
def test_is_redis_url(url: str, expected: bool) -> None:
    assert is_redis_url(url) is expected


def test_sentinel_hosts_take_every_part_and_the_first_password_and_db() -> None:
    hosts, options = sentinel_hosts("sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2;  ;sentinel://h3:5000")
    assert hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("h3", 5000)]
    assert options == {"password": "s3cret", "db": 2}


@pytest.mark.parametrize("url", ["sentinel://", "redis://h:1;sentinel://h2:2", ";"])
def test_bad_sentinel_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        sentinel_hosts(url)


def test_sentinel_needs_a_master_name() -> None:
    with pytest.raises(ValueError, match="master_name"):
        redis_client("sentinel://127.0.0.1:26379", {})


def test_a_plain_url_gives_a_working_client(redis_url: str) -> None:
    client = redis_client(redis_url, {"master_name": "ignored"}, socket_timeout=5)
    assert isinstance(client, redis.Redis) and client.ping()
