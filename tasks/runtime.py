"""Per-process resources of a worker: the engine (loaded once, after fork) and storage."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from celery.signals import celeryd_after_setup, worker_process_init

from settings import QUEUE_GPU, get_settings
from synth.storage import Storage, open_storage

if TYPE_CHECKING:
    from synth.engines.base import Engine

log = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_consumed_queues: frozenset[str] = frozenset()


def get_engine() -> Engine:
    """The process's engine, loaded on first use. CUDA does not survive fork: never call in a parent."""
    global _engine
    with _lock:
        if _engine is None:
            from transformers.utils import logging as hf_logging

            from synth.engines import load_engine

            hf_logging.disable_progress_bar()  # worker logs are line-oriented
            s = get_settings()
            _engine = load_engine(s.model, s.device, s.unknown_chars)
            log.info("loaded model %s (pid %d)", _engine.name, os.getpid())
        return _engine


def get_storage() -> Storage:
    return open_storage(get_settings().storage_uri)


def consumes(queue: str) -> bool:
    """Whether this worker process consumes `queue` (known after worker start-up; False elsewhere)."""
    return queue in _consumed_queues


@celeryd_after_setup.connect
def _note_queues(sender: str, instance, **_: object) -> None:  # noqa: ANN001
    """Remember (in the parent, before fork) which queues this worker consumes."""
    global _consumed_queues
    _consumed_queues = frozenset(instance.app.amqp.queues.consume_from)


@worker_process_init.connect
def _load_engine_after_fork(**_: object) -> None:
    """Load the model once per pool process, right after fork, so the first chapter does not pay for it."""
    if consumes(QUEUE_GPU):
        try:
            get_engine()
        except Exception:  # a chapter will report the load error to its caller
            log.exception("model load failed at worker start")
