"""The poison check: every kind of unreadable message is named in one line; a readable one passes."""

from __future__ import annotations

import json
import pickle

import pytest

from tasks.messages import Envelope, problem, task_id_of, unreadable_item

KNOWN = {"audiobook.synthesize_chapter"}
HEADERS = {"task": "audiobook.synthesize_chapter", "id": "t-1", "lang": "py"}
GOOD = json.dumps([[], {"book_id": "b", "chapter_id": "c", "text": "Hi."}, {"callbacks": None}]).encode()


def env(body: bytes | str | None = GOOD, headers: object = HEADERS, content_type: str | None = "application/json",
        encoding: str | None = "utf-8") -> Envelope:
    return Envelope(headers, body, content_type, encoding)


@pytest.mark.parametrize("envelope,expected", [
    (env(body=b"[[]]"), "body must be [args, kwargs, embed], got a list of 1"),
    (env(body=pickle.dumps({"x": 1}), content_type="application/x-python-serialize", encoding="binary"),
     "content type 'application/x-python-serialize' is refused: JSON only"),
    (env(body=b"a: 1", content_type="application/x-yaml"), "content type 'application/x-yaml' is refused"),
    (env(content_type="application/x-frobnicate"), "content type 'application/x-frobnicate' is refused"),
    (env(content_type=None), "content type None is refused"),
    (env(body=b"[[], {\"a\": "), "body is not valid JSON"),
    (env(body=b"[[], {}, \xff\xfe]"), "body is not valid UTF-8 (byte 9)"),
    (env(body=b'{"args": [], "kwargs": {}}'), "body must be [args, kwargs, embed], got a JSON object"),
    (env(body=b"[[], [1, 2], {}]"), "kwargs must be an object, got a JSON array"),
    (env(body=b'["x", {}, {}]'), "args must be a list, got a JSON string"),
    (env(body=b"[[], {}, 7]"), "embed must be an object, got a JSON number"),
    (env(headers={"id": "t-1"}), "no 'task' header"),
    (env(headers={"task": "audiobook.nope", "id": "t-1"}), "unknown task 'audiobook.nope'"),
    (env(headers={"task": "audiobook.synthesize_chapter"}), "no readable task id"),
    (env(headers=["not", "a", "mapping"]), "message headers are not a mapping"),
    (env(encoding="latin-1"), "content encoding 'latin-1' is refused"),
    (env(body=None), "no body"),
])
def test_unreadable_messages_are_named(envelope: Envelope, expected: str) -> None:
    found = problem(envelope, KNOWN)
    assert found is not None and expected in found, found


@pytest.mark.parametrize("envelope", [env(), env(body=GOOD.decode()), env(body=b"[[], {}, null]", encoding="utf8")])
def test_readable_messages_pass(envelope: Envelope) -> None:
    assert problem(envelope, KNOWN) is None


def test_task_id_only_when_readable() -> None:
    assert task_id_of(HEADERS) == "t-1"
    assert task_id_of({"id": 7}) is None and task_id_of({"id": ""}) is None and task_id_of("x") is None


@pytest.mark.parametrize("item,expected", [
    (b"hello", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1]", "not a kombu message: a JSON array"),
    (b"7", "not a kombu message: a JSON number"),
    (b'{"body": "x"}', "no properties with a delivery_tag"),
    (b'{"properties": {"delivery_tag": "t"}}', "no delivery_info with exchange and routing_key"),
    (b'{"properties": {"delivery_tag": "t", "delivery_info": {"exchange": "", "routing_key": "q"}}, "headers": []}',
     "headers that are a JSON array"),
    (b'{"body": "*not base64*", "properties": {"delivery_tag": "t", "body_encoding": "base64", '
     b'"delivery_info": {"exchange": "", "routing_key": "q"}}}', "body that is not base64"),
])
def test_a_raw_item_kombu_cannot_deliver_is_named(item: bytes, expected: str) -> None:
    why = unreadable_item(item)
    assert why is not None and expected in why


def test_what_kombu_pushes_onto_redis_is_a_readable_item(redis_url: str, redis_client) -> None:  # noqa: ANN001
    from kombu import Connection, Queue

    with Connection(redis_url) as conn:
        conn.Producer().publish(GOOD, routing_key="raw-check", content_type="application/json",
                                content_encoding="utf-8", headers=HEADERS, declare=[Queue("raw-check")])
    [item] = redis_client.lrange("raw-check", 0, -1)
    assert unreadable_item(item) is None
    assert unreadable_item(item.replace(b'"delivery_tag"', b'"tag"')) is not None


def test_only_redis_channels_are_screened_and_only_once(redis_url: str) -> None:
    from kombu import Connection

    from tasks.transport import ScreenedBrpop, screen_redis_channels

    with Connection(redis_url) as conn:
        plain = conn.transport.Channel
        screened = screen_redis_channels(conn).transport.Channel
        assert issubclass(screened, ScreenedBrpop) and issubclass(screened, plain)
        assert screen_redis_channels(conn).transport.Channel is screened
        assert conn.as_uri().startswith("redis://")  # the URL Flower and the banner read is unchanged
    with Connection("memory://") as conn:
        assert not issubclass(screen_redis_channels(conn).transport.Channel, ScreenedBrpop)
