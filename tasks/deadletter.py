"""Dead letters: messages no worker can read, kept whole in storage for an operator to list, requeue or purge.

Storage rather than the broker: the same store works on Redis and RabbitMQ (Redis has no dead-letter
exchange), it survives the loss of the broker it came from, and every process (workers, CLI) already has it.
Poison messages are rare, so one small object each costs nothing. Keys live under `_deadletter/`, which no
book id can start with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from kombu import Connection, Queue

from synth.storage import Storage
from tasks.messages import task_id_of, task_name_of

PREFIX = "_deadletter/"
#: Message properties kept for a requeue; kombu sets the rest (delivery tag, body encoding) itself.
_REPUBLISHED = ("priority", "correlation_id", "reply_to", "delivery_mode")


def _json_safe(value: Any) -> Any:  # noqa: ANN401 - AMQP headers may hold bytes, datetimes, decimals
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class DeadLetter:
    id: str
    problem: str
    received_at: float
    queue: str | None
    exchange: str | None
    routing_key: str | None
    task_id: str | None
    task_name: str | None
    worker: str | None
    content_type: str | None
    content_encoding: str | None
    body_b64: str
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: Any, problem: str, worker: str | None = None,  # noqa: ANN401
                     now: float | None = None) -> DeadLetter:
        """Everything needed to put `message` back as it came, plus why it was taken off its queue."""
        now = time.time() if now is None else now
        raw = message.body if message.body is not None else b""
        body = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        headers = message.headers if isinstance(message.headers, dict) else {"_unreadable": repr(message.headers)}
        info = message.delivery_info or {}
        digest = hashlib.sha256(body + repr(sorted(headers.items(), key=str)).encode()
                                + str(message.delivery_tag).encode()).hexdigest()[:12]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        return cls(id=f"{stamp}-{digest}", problem=problem, received_at=now,
                   queue=info.get("routing_key") or info.get("exchange"), exchange=info.get("exchange"),
                   routing_key=info.get("routing_key"), task_id=task_id_of(headers), task_name=task_name_of(headers),
                   worker=worker, content_type=message.content_type, content_encoding=message.content_encoding,
                   body_b64=base64.b64encode(body).decode("ascii"), headers=_json_safe(headers),
                   properties=_json_safe({k: v for k, v in (message.properties or {}).items() if k in _REPUBLISHED}))

    @classmethod
    def from_raw(cls, item: bytes, queue: str, problem: str, worker: str | None = None,
                 now: float | None = None) -> DeadLetter:
        """A raw item popped from a Redis queue list that is no kombu message: its bytes become the body (a
        requeue sends them as the body of a message, which is then read like any other)."""
        now = time.time() if now is None else now
        digest = hashlib.sha256(item + queue.encode() + repr(now).encode()).hexdigest()[:12]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        return cls(id=f"{stamp}-{digest}", problem=problem, received_at=now, queue=queue, exchange=queue,
                   routing_key=queue, task_id=None, task_name=None, worker=worker, content_type=None,
                   content_encoding=None, body_b64=base64.b64encode(item).decode("ascii"))

    @property
    def body(self) -> bytes:
        return base64.b64decode(self.body_b64)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeadLetter:
        return cls(**data)


class DeadLetterStore:
    """Dead letters as JSON objects in storage, one per message, named by when they arrived."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def key(self, letter_id: str) -> str:
        return f"{PREFIX}{letter_id}.json"

    def put(self, letter: DeadLetter) -> str:
        return self.storage.put_json(self.key(letter.id), letter.to_json())

    def get(self, letter_id: str) -> DeadLetter | None:
        data = self.storage.get_json(self.key(letter_id))
        return None if data is None else DeadLetter.from_json(data)

    def list(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        letters = (self.storage.get_json(k) for k in self.storage.list(PREFIX) if k.endswith(".json"))
        return [DeadLetter.from_json(data) for data in letters if data is not None]

    def delete(self, letter_id: str) -> None:
        self.storage.delete([self.key(letter_id)])


def republish(connection: Connection, letter: DeadLetter, queue: Queue | None = None) -> None:
    """Send the letter's message again, byte for byte, to where it first went (declaring `queue` if given)."""
    producer = connection.Producer()
    producer.publish(letter.body, exchange=letter.exchange or "", routing_key=letter.routing_key or letter.queue or "",
                     content_type=letter.content_type or "application/data",
                     content_encoding=letter.content_encoding or "binary",
                     headers=letter.headers, declare=[queue] if queue is not None else [], retry=True,
                     **{k: v for k, v in letter.properties.items() if v is not None})
