"""What makes a task message unreadable, named in one line.

Checked in the worker's main process before Celery builds a request from a message: Celery unpacks the body
there (`args, kwargs, embed = payload`), and an exception at that point stops the whole worker. A message
that passes this check is one Celery can turn into a request; its keyword arguments are then the task's
to validate (tasks.payloads).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from kombu.utils.json import loads as kombu_loads

JSON = "application/json"


@dataclass(frozen=True)
class Envelope:
    """The parts of a broker message the check reads (a kombu Message has them all)."""

    headers: Any
    body: bytes | str | None
    content_type: str | None
    content_encoding: str | None

    @classmethod
    def of(cls, message: Any) -> Envelope:  # noqa: ANN401 - a kombu Message
        return cls(message.headers, message.body, message.content_type, message.content_encoding)


def task_id_of(headers: Any) -> str | None:  # noqa: ANN401 - whatever the message carries
    """The task id a message names, if it names one readably."""
    task_id = headers.get("id") if isinstance(headers, Mapping) else None
    return task_id if isinstance(task_id, str) and task_id else None


def task_name_of(headers: Any) -> str | None:  # noqa: ANN401
    name = headers.get("task") if isinstance(headers, Mapping) else None
    return name if isinstance(name, str) else None


def _text(body: bytes | str | None) -> tuple[str | None, str | None]:
    """(body as text, problem)."""
    if body is None:
        return None, "no body"
    if isinstance(body, str):
        return body, None
    try:
        return bytes(body).decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"body is not valid UTF-8 (byte {exc.start})"


def problem(envelope: Envelope, known_tasks: Collection[str]) -> str | None:
    """Why Celery cannot run this message, or None when it can be handed to Celery."""
    headers = envelope.headers
    if not isinstance(headers, Mapping):
        return "message headers are not a mapping"
    if envelope.content_type != JSON:
        return f"content type {envelope.content_type!r} is refused: JSON only"
    encoding = (envelope.content_encoding or "utf-8").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8"):
        return f"content encoding {envelope.content_encoding!r} is refused: UTF-8 only"
    text, bad = _text(envelope.body)
    if bad:
        return bad
    try:
        payload = json.loads(text)  # type: ignore[arg-type]
    except ValueError as exc:
        return f"body is not valid JSON ({exc})"
    task = headers.get("task")
    if task is None:
        return "no 'task' header (a Celery protocol 2 message is expected)"
    if not isinstance(task, str) or task not in known_tasks:
        return f"unknown task {task!r}"
    if task_id_of(headers) is None:
        return f"no readable task id in the 'id' header (got {headers.get('id')!r})"
    if not isinstance(payload, list) or len(payload) != 3:
        shape = f"a list of {len(payload)}" if isinstance(payload, list) else f"a JSON {_kind(payload)}"
        return f"body must be [args, kwargs, embed], got {shape}"
    args, kwargs, embed = payload
    if not isinstance(args, list):
        return f"args must be a list, got a JSON {_kind(args)}"
    if not isinstance(kwargs, dict):
        return f"kwargs must be an object, got a JSON {_kind(kwargs)}"
    if embed is not None and not isinstance(embed, dict):
        return f"embed must be an object, got a JSON {_kind(embed)}"
    return None


def _kind(value: Any) -> str:  # noqa: ANN401
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def unreadable_item(item: bytes) -> str | None:
    """Why a raw item on a Redis queue list is not a message kombu can deliver (None when it is one).

    kombu's Redis transport builds a message from every item it pops, and an exception there stops the worker.
    An item is readable when it is a JSON object (kombu's own decoder) with `properties` holding a
    `delivery_tag` and a `delivery_info` with `exchange` and `routing_key`, `headers` an object if present,
    and a base64 `body` where `properties.body_encoding` says base64. What the message says is checked later,
    like any other message's (`problem`).
    """
    try:
        text = item.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"raw item on the queue is not UTF-8: {exc}"
    try:
        payload = kombu_loads(text)
    except (ValueError, TypeError) as exc:
        return f"raw item on the queue is not JSON: {exc}"
    if not isinstance(payload, dict):
        return f"raw item on the queue is not a kombu message: a JSON {_kind(payload)}"
    properties = payload.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties:
        return "raw item on the queue is not a kombu message: no properties with a delivery_tag"
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not {"exchange", "routing_key"} <= info.keys():
        return "raw item on the queue is not a kombu message: no delivery_info with exchange and routing_key"
    if payload.get("headers") is not None and not isinstance(payload["headers"], dict):
        return f"raw item on the queue has headers that are a JSON {_kind(payload['headers'])}"
    body = payload.get("body")
    if body and properties.get("body_encoding") == "base64":
        try:
            base64.b64decode(body, validate=True)
        except (ValueError, TypeError) as exc:
            return f"raw item on the queue has a body that is not base64: {exc}"
    return None
