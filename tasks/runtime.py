"""Per-process resources of a worker: the engine (loaded once, after fork) and storage; what the worker tells
the control plane (whether its model loads, scaler.health) and, for workers the local scaler started, the
watch that stops them when the control plane is gone (scaler.providers.local)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from celery.signals import celeryd_after_setup, worker_process_init, worker_ready

from settings import QUEUE_GPU, get_settings
from synth.storage import Storage, open_storage

if TYPE_CHECKING:
    from synth.engines.base import Engine

log = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_consumed_queues: frozenset[str] = frozenset()
_nodename: str | None = None


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
    """Remember (in the parent, before fork) which queues this worker consumes, and its nodename."""
    global _consumed_queues, _nodename
    _consumed_queues = frozenset(instance.app.amqp.queues.consume_from)
    _nodename = sender


def report_model(error: BaseException | str | None, nodename: str | None = None) -> None:
    """Tell the control plane whether this worker's model loads (None) or why not, where the scaler reads it
    every tick (scaler.health). Never raises: a worker keeps working if Redis is away."""
    nodename = nodename or _nodename
    if not nodename:
        return
    try:
        from scaler import health
        from scaler.state import state_client
        from tasks import app

        s = get_settings()
        client = state_client(app, s, socket_timeout=5)
        health.publish(client, health.health_key(s.broker_keyprefix), nodename,
                       None if error is None else str(error) or type(error).__name__, time.time())
        client.close()
    except Exception as exc:  # noqa: BLE001
        log.warning("could not report the model's state to the control plane: %s", exc)


@worker_process_init.connect
def _load_engine_after_fork(**_: object) -> None:
    """Load the model once per pool process, right after fork, so the first chapter does not pay for it."""
    if consumes(QUEUE_GPU):
        try:
            get_engine()
        except Exception as exc:  # a chapter will report the load error to its caller
            log.exception("model load failed at worker start")
            report_model(exc)
        else:
            report_model(None)


@worker_ready.connect
def _stop_with_the_control_plane(**_: object) -> None:
    """A worker the local scaler started watches the scaler's lease, and stops when no tick renews it."""
    from scaler.providers.local import LEASE_ENV, stop_own_session, watch_lease

    key = os.environ.get(LEASE_ENV)
    if not key:
        return
    from scaler.state import state_client
    from tasks import app

    client = state_client(app, get_settings(), socket_timeout=5)
    threading.Thread(target=watch_lease, args=(lambda: bool(client.exists(key)), stop_own_session),
                     name="scaler-lease", daemon=True).start()
