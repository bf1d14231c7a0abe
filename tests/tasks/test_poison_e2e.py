"""Poison messages on every queue, both brokers: the worker keeps running, each message becomes one dead letter
(logged once, FAILURE for its caller), and an operator can list, requeue and purge them from the CLI."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from celery.result import AsyncResult
from kombu import Connection, Exchange

from tests.support.brokers import BOTH_BROKERS
from tests.support.processes import ROOT, wait_for

pytestmark = pytest.mark.slow

TASK_OF = {"gpu-long": "audiobook.synthesize_chapter", "preview": "audiobook.synthesize_preview",
           "control": "audiobook.assemble_book"}
JSON = ("application/json", "utf-8")
# (kind, body, content type and encoding, whether the message names its task, what the letter must say)
POISON = [
    ("[[]]", b"[[]]", JSON, True, "body must be [args, kwargs, embed], got a list of 1"),
    ("pickle", pickle.dumps(((), {"text": "x"}, {})), ("application/x-python-serialize", "binary"), True,
     "content type 'application/x-python-serialize' is refused"),
    ("yaml", b"- []\n- {}\n- {}\n", ("application/x-yaml", "utf-8"), True, "content type 'application/x-yaml'"),
    ("unknown content type", b"[]", ("application/x-frobnicate", "utf-8"), True, "'application/x-frobnicate'"),
    ("bad json", b"[[], {\"text\": ", JSON, True, "body is not valid JSON"),
    ("bad utf-8", b"[[], {\"text\": \"\xff\xfe\"}, {}]", JSON, True, "body is not valid UTF-8"),
    ("body an object", b'{"args": [], "kwargs": {}, "embed": {}}', JSON, True, "got a JSON object"),
    ("kwargs a list", b"[[], [\"text\"], {}]", JSON, True, "kwargs must be an object, got a JSON array"),
    ("no task header", b"[[], {}, {}]", JSON, False, "no 'task' header"),
    ("unknown task", b"[[], {}, {}]", JSON, True, "unknown task 'audiobook.no_such_task'"),
]


def publish_poison(url: str) -> dict[str, tuple[str, str]]:
    """Every kind on every queue, as a careless or hostile producer would send it; task id -> (queue, expected)."""
    sent = {}
    with Connection(url) as conn:
        producer = conn.Producer()
        for queue in TASK_OF:
            for kind, body, (content_type, encoding), named, expected in POISON:
                task_id = f"poison-{queue}-{kind.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
                task = "audiobook.no_such_task" if kind == "unknown task" else TASK_OF[queue]
                headers = {"lang": "py", "id": task_id} | ({"task": task} if named else {})
                producer.publish(body, exchange=Exchange(queue), routing_key=queue, content_type=content_type,
                                 content_encoding=encoding, headers=headers, retry=True)
                sent[task_id] = (queue, expected)
    return sent


def audiobook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def letters(env: dict[str, str]) -> list[dict]:
    run = audiobook(env, "deadletter", "list", "--json")
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@BOTH_BROKERS
def test_poison_messages_never_stop_a_worker(start_worker, client_app: Celery, broker_url: str,
                                             worker_env: dict[str, str], audio_dir: Path) -> None:
    worker = start_worker("gpu-long,preview,control", name="all")
    sent = publish_poison(broker_url)

    for task_id, (queue, expected) in sent.items():
        result = AsyncResult(task_id, app=client_app)
        with pytest.raises(Exception) as info:  # noqa: B017 - the remote type is checked by name
            result.get(timeout=60)
        assert type(info.value).__name__ == "PoisonMessage", (queue, repr(info.value))
        assert expected in str(info.value) and "dead letter" in str(info.value)

    # The same worker is alive and takes the next chapter.
    chapter = {"book_id": "after", "chapter_id": "c1", "text": "The worker is still here."}
    assert client_app.send_task("audiobook.synthesize_chapter", kwargs=chapter, queue="gpu-long").get(timeout=120)
    assert worker.proc is not None and worker.proc.poll() is None

    kept = wait_for(lambda: (found := letters(worker_env)) and len(found) == len(sent) and found, 30,
                    what="every poison message as a dead letter")
    by_task = {letter["task_id"]: letter for letter in kept}
    for task_id, (queue, expected) in sent.items():
        assert by_task[task_id]["queue"] == queue and expected in by_task[task_id]["problem"]
    unnamed = [letter for letter in kept if letter["task_name"] is None]
    assert len(unnamed) == len(TASK_OF) and all("no 'task' header" in u["problem"] for u in unnamed)
    assert worker.tail(10_000).count("dead letter ") == len(sent)  # logged once each

    # An operator sends one back: it is read again (and, still unreadable, kept again); then purges them all.
    again = kept[0]
    run = audiobook(worker_env, "deadletter", "requeue", again["id"])
    assert run.returncode == 0 and f"requeued {again['id']}" in run.stdout, run.stderr

    def kept_again() -> bool:
        now = letters(worker_env)
        return again["id"] not in {x["id"] for x in now} and len(now) == len(sent)

    wait_for(kept_again, 60, what="the requeued message back as a new dead letter")
    assert audiobook(worker_env, "deadletter", "purge", "--all").returncode == 0
    assert letters(worker_env) == []
    assert worker.proc.poll() is None


# Items pushed straight onto a Redis queue list, not through kombu: no envelope kombu can build a message from.
RAW = [(b"not json at all", "not JSON"), (b"\xff\xfe[]", "not UTF-8"), (b"[1, 2]", "a JSON array"),
       (b'{"body": "eA=="}', "no properties"),
       (b'{"body": "eA==", "properties": {"delivery_tag": "t", "delivery_info": {}}}', "no delivery_info")]


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_raw_items_on_a_redis_queue_never_stop_a_worker(start_worker, client_app: Celery, redis_client,
                                                        worker_env: dict[str, str]) -> None:
    worker = start_worker("gpu-long,preview", name="raw")
    for queue in ("gpu-long", "preview"):
        for item, _ in RAW:
            redis_client.lpush(queue, item)

    chapter = {"book_id": "raw", "chapter_id": "c1", "text": "The worker read past the garbage."}
    assert client_app.send_task("audiobook.synthesize_chapter", kwargs=chapter, queue="gpu-long").get(timeout=120)
    assert worker.proc.poll() is None
    wait_for(lambda: redis_client.llen("gpu-long") == redis_client.llen("preview") == 0, 30,
             what="both queues read to the end")

    kept = wait_for(lambda: (found := letters(worker_env)) and len(found) == 2 * len(RAW) and found, 30,
                    what="every raw item as a dead letter")
    for queue in ("gpu-long", "preview"):
        here = [letter for letter in kept if letter["queue"] == queue]
        assert sorted(base64.b64decode(letter["body_b64"]) for letter in here) == sorted(i for i, _ in RAW)
        for letter in here:
            expected = next(why for item, why in RAW if base64.b64decode(letter["body_b64"]) == item)
            assert expected in letter["problem"] and letter["task_id"] is None, letter
    assert worker.tail(10_000).count("dead letter ") == 2 * len(RAW)  # logged once each
