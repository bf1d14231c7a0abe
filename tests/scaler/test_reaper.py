"""Leases and the reaper on a real Redis: only messages no live worker holds go back, once, at the queue's head."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from celery import Celery
from kombu import Connection

from scaler.leases import Held, Leases, stranded
from scaler.observe import RedisDepth
from scaler.reaper import Reaper

QUEUES = {"gpu-long", "preview", "control"}


def held(tag: str, queue: str | None = "gpu-long", age: float = 100.0) -> Held:
    return Held(tag, queue, 1000.0 - age)


@pytest.mark.parametrize("entries,leased,expected", [
    ([held("a")], set(), ["a"]),  # no lease, delivered long ago: its worker is gone
    ([held("a")], {"a"}, []),  # leased: a live worker holds it
    ([held("a", age=5)], set(), []),  # just delivered: its worker may not have leased it yet
    ([held("a", queue="someone-elses")], set(), []),  # not one of our queues
    ([held("a", queue=None)], set(), []),  # unreadable entry: left to kombu's visibility timeout
    ([held("a"), held("b"), held("c", age=1)], {"b"}, ["a"]),
])
def test_stranded_is_unleased_and_older_than_the_grace(entries, leased, expected) -> None:  # noqa: ANN001
    assert [h.tag for h in stranded(entries, leased, now=1000.0, grace_s=30.0, queues=QUEUES)] == expected


def _app(url: str) -> Celery:
    app = Celery("reaper-test", broker=url, set_as_current=False)
    app.conf.update(task_serializer="json", broker_connection_retry_on_startup=True,
                    broker_transport_options={"visibility_timeout": 3600})
    return app


def _take(app: Celery, count: int) -> list[tuple[str, str]]:
    """Send `count` chapters and take them as a worker would: (task id, delivery tag), left unacknowledged."""
    sent = [app.send_task("audiobook.synthesize_chapter", queue="gpu-long",
                          kwargs={"book_id": "b", "chapter_id": f"c{i}", "text": "Hi."}).id for i in range(count)]
    taken = []
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        channel.do_restore = False  # no warm goodbye: the messages stay in `unacked`, as a killed worker leaves them
        for _ in sent:
            message = channel.basic_get("gpu-long", no_ack=False)
            taken.append((message.headers["id"], message.delivery_tag))
    return taken


def test_reaper_restores_only_unleased_messages_at_the_head(redis_url: str, redis_client: redis.Redis) -> None:
    app = _app(redis_url)
    (dead_id, dead_tag), (live_id, live_tag) = _take(app, 2)
    waiting_id = app.send_task("audiobook.synthesize_chapter", queue="gpu-long",
                               kwargs={"book_id": "b", "chapter_id": "w", "text": "Hi."}).id
    Leases(redis_client, ttl_s=60).renew([live_tag], "gpu-1@host")
    later = time.time() + 120  # past the grace: the unleased one's worker is presumed dead
    reaper = Reaper(redis_client, lambda: Connection(redis_url), QUEUES, lease_s=5, clock=lambda: later)

    depth = RedisDepth(redis_client, "gpu-long", {}, lease_s=5, clock=lambda: later).read()
    assert (depth.waiting, depth.in_flight, depth.stranded) == (2, 1, 1)  # the dead one needs a worker

    report = reaper.run()
    assert report.held == 2 and [r["task_id"] for r in report.restored] == [dead_id]
    assert redis_client.hexists("unacked", live_tag) and not redis_client.hexists("unacked", dead_tag)
    with app.connection_for_read() as conn:  # the restored chapter is taken next, before the one waiting
        first = conn.default_channel.basic_get("gpu-long", no_ack=True)
        second = conn.default_channel.basic_get("gpu-long", no_ack=True)
    assert (first.headers["id"], second.headers["id"]) == (dead_id, waiting_id)
    assert first.delivery_info.get("redelivered") or first.headers.get("redelivered")
    assert reaper.run().restored == []  # nothing twice
    app.close()


def test_reaper_and_kombus_visibility_sweep_never_both_restore(redis_url: str, redis_client: redis.Redis) -> None:
    app = _app(redis_url)
    [(task_id, tag)] = _take(app, 1)
    later = time.time() + 120
    reaper = Reaper(redis_client, lambda: Connection(redis_url), QUEUES, lease_s=5, clock=lambda: later)
    # kombu's own sweep, as every worker runs it, with a visibility timeout that has passed
    with Connection(redis_url, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(interval=1)
    assert reaper.run().restored == []  # already back: the reaper's transaction finds no entry
    assert redis_client.llen("gpu-long") == 1 and redis_client.hlen("unacked") == 0
    app.close()


def test_reaper_waits_after_a_redis_restart(redis_url: str, redis_client: redis.Redis) -> None:
    app = _app(redis_url)
    _take(app, 1)
    uptime = int(redis_client.info("server")["uptime_in_seconds"])
    reaper = Reaper(redis_client, lambda: Connection(redis_url), QUEUES, lease_s=uptime + 3600,
                    clock=lambda: time.time() + 10 * uptime + 7200)
    report = reaper.run()
    assert report.restored == [] and "restarted" in (report.skipped or "")
    assert redis_client.hlen("unacked") == 1
    app.close()


def test_keys_follow_the_global_keyprefix(redis_url: str, redis_client: redis.Redis) -> None:
    prefix = f"tenant-{uuid.uuid4().hex[:6]}:"
    options = {"global_keyprefix": prefix, "visibility_timeout": 3600}
    app = Celery("prefixed", broker=redis_url, set_as_current=False)
    app.conf.update(broker_transport_options=options, broker_connection_retry_on_startup=True)
    app.send_task("audiobook.synthesize_chapter", queue="gpu-long", kwargs={"book_id": "b", "chapter_id": "c",
                                                                             "text": "Hi."})
    with app.connection_for_read() as conn:
        conn.default_channel.do_restore = False
        conn.default_channel.basic_get("gpu-long", no_ack=False)
    assert redis_client.hlen(prefix + "unacked") == 1
    later = time.time() + 120
    report = Reaper(redis_client, lambda: Connection(redis_url, transport_options=options), QUEUES, options,
                    lease_s=5, clock=lambda: later).run()
    assert len(report.restored) == 1 and redis_client.llen(prefix + "gpu-long") == 1
    app.close()
