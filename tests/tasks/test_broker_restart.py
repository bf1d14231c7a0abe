"""The broker goes away and comes back: workers reconnect by themselves and queued work survives (AOF)."""

from __future__ import annotations

import time

import pytest
from celery import Celery

from tests.support.processes import RedisServer

pytestmark = pytest.mark.slow


def client_for(url: str) -> Celery:
    app = Celery("client", broker=url, backend=url, set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=True)
    return app


def test_worker_survives_a_broker_restart(start_worker, redis_server: RedisServer) -> None:
    url = redis_server.url
    worker = start_worker("gpu-long", env={"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url}, wait=False)
    client = client_for(url)
    worker.wait_ready(client)
    chapter = {"book_id": "restart", "chapter_id": "c1", "text": "Before the restart."}
    assert client.send_task("audiobook.synthesize_chapter", kwargs=chapter, queue="gpu-long").get(timeout=120)
    client.close()

    redis_server.kill()
    time.sleep(3)  # the worker is now retrying its broker connection
    assert worker.proc is not None and worker.proc.poll() is None
    redis_server.start()  # same port, same AOF directory

    client = client_for(url)
    result = client.send_task("audiobook.synthesize_chapter", queue="gpu-long",
                              kwargs={**chapter, "chapter_id": "c2", "text": "After the restart."})
    assert result.get(timeout=180)["chapter_id"] == "c2"
    client.close()
