"""Broker depth on a real Redis and a real RabbitMQ."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from celery import Celery
from kombu import Connection, Exchange, Producer, Queue

from scaler.errors import ObservationError
from scaler.observe import AmqpDepth, RedisDepth, depth_reader, message_text_length, queue_keys
from tests.support.processes import free_port, wait_for

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _app(redis_url: str, **transport: object) -> Celery:
    app = Celery("depth-test", broker=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", broker_transport_options=transport,
                    broker_connection_retry_on_startup=True)
    return app


def _send(app: Celery, text: str = "Some text.", priority: int | None = None, queue: str = "gpu-long") -> None:
    app.send_task("audiobook.synthesize_chapter", queue=queue, priority=priority,
                  kwargs={"book_id": "b", "chapter_id": uuid.uuid4().hex[:8], "text": text})


def test_queue_keys_follow_kombu_naming() -> None:
    assert queue_keys("gpu-long", {}) == ["gpu-long", "gpu-long\x06\x163", "gpu-long\x06\x166", "gpu-long\x06\x169"]
    assert queue_keys("q", {"global_keyprefix": "t1:", "sep": ":", "priority_steps": [0, 5]}) == ["t1:q", "t1:q:5"]


def test_waiting_counts_every_priority_key_like_kombu(redis_url: str, redis_client: redis.Redis) -> None:
    app = _app(redis_url)
    for priority in (None, 0, 2, 4, 5, 7, 9, 9):
        _send(app, priority=priority)
    depth = RedisDepth(redis_client, "gpu-long", app.conf.broker_transport_options)
    assert depth.read().waiting == 8
    assert redis_client.llen("gpu-long") < 8  # a bare LLEN misses the priority keys
    with app.connection_for_read() as conn:
        assert conn.default_channel.queue_declare("gpu-long", passive=True).message_count == 8
    app.close()


def test_global_keyprefix_sep_and_steps_come_from_the_transport_options(redis_url, redis_client) -> None:
    options = {"global_keyprefix": "tenant1:", "sep": ":", "priority_steps": [0, 5]}
    app = _app(redis_url, **options)
    for priority in (0, 7, 9):
        _send(app, priority=priority)
    assert RedisDepth(redis_client, "gpu-long", options).read().waiting == 3
    assert RedisDepth(redis_client, "gpu-long", {}).read().waiting == 0
    assert redis_client.llen("tenant1:gpu-long:5") == 2
    app.close()


def test_in_flight_counts_unacked_messages_of_the_queue_only(redis_url, redis_client) -> None:
    app = _app(redis_url)
    for _ in range(3):
        _send(app)
    _send(app, queue="control")
    depth = RedisDepth(redis_client, "gpu-long", {})
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        taken = channel.basic_get("gpu-long", no_ack=False)
        other = channel.basic_get("control", no_ack=False)
        assert taken is not None and other is not None
        reading = depth.read()
        assert (reading.waiting, reading.in_flight) == (2, 1)
        channel.basic_ack(taken.delivery_tag)
        channel.basic_ack(other.delivery_tag)
    assert depth.read().in_flight == 0
    app.close()


def test_queued_characters_are_sampled_and_extrapolated(redis_url, redis_client) -> None:
    app = _app(redis_url)
    lengths = [100 * (i + 1) for i in range(10)]
    for n in lengths:
        _send(app, text="x" * n)
    exact = RedisDepth(redis_client, "gpu-long", {}, sample=1000).read(with_chars=True)
    assert exact.queued_chars == sum(lengths)
    sampled = RedisDepth(redis_client, "gpu-long", {}, sample=3).read(with_chars=True)
    # the 3 oldest (100, 200, 300) have a mean of 200, times 10 waiting
    assert sampled.queued_chars == 2000
    assert RedisDepth(redis_client, "gpu-long", {}).read().queued_chars is None  # not asked: not read
    app.close()


def test_message_text_length_reads_the_kombu_body(redis_url, redis_client) -> None:
    app = _app(redis_url)
    _send(app, text="héllo wörld")
    [raw] = redis_client.lrange("gpu-long", 0, -1)
    assert message_text_length(raw) == 11
    assert message_text_length(b"not json") is None
    app.close()


def test_a_failed_read_raises_instead_of_reading_zero() -> None:
    depth = RedisDepth.from_url(f"redis://127.0.0.1:{free_port()}/0", "gpu-long")
    with pytest.raises(ObservationError, match="redis depth of gpu-long"):
        depth.read()


def test_amqp_depth_is_a_passive_declare() -> None:
    queue = f"gpu-long-test-{uuid.uuid4().hex[:8]}"
    depth = depth_reader(AMQP_URL, queue)
    assert isinstance(depth, AmqpDepth)
    assert depth.read().waiting == 0  # NOT_FOUND: never declared, nothing sent
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        bound = Queue(queue, Exchange(queue), routing_key=queue, auto_delete=False)(channel)
        bound.declare()
        producer = Producer(channel, exchange=Exchange(queue), routing_key=queue)
        for i in range(3):
            producer.publish({"i": i}, serializer="json")
        try:
            # publishes are asynchronous: the broker counts them a moment later
            wait_for(lambda: depth.read().waiting == 3, 5, 0.05, "three ready messages")
            assert depth.read().in_flight is None
        finally:
            bound.delete()
    with pytest.raises(ObservationError):
        AmqpDepth(f"amqp://guest:guest@127.0.0.1:{free_port()}//", queue, connect_timeout=1).read()
