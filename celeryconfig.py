"""Celery's setting names, mapped from the one Settings object. Nothing else lives here."""

from kombu import Exchange, Queue

from scaler.redis_client import is_redis_url
from settings import QUEUE_CONTROL, QUEUE_GPU, QUEUE_PREVIEW, get_settings

_s = get_settings()

broker_url = _s.broker_url.get_secret_value()
result_backend = _s.backend_url

# A message no worker can read is dead-lettered by this consumer instead of stopping the worker (tasks.consumer).
worker_consumer = "tasks.consumer:GuardedConsumer"

# JSON only: a pickled message from an untrusted client is remote code execution.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
event_serializer = "json"

# Chapters run minutes to an hour: ack after the work, requeue when the pool child dies,
# and never hold a second chapter in reserve behind a running one.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_track_started = True
# A pool child loads the model in worker_process_init, before it reports UP; Celery's default of 4 s kills
# any child that takes longer (a real model, a busy CPU) and forks the next one, for ever.
worker_proc_alive_timeout = 600.0
task_time_limit = _s.chapter_time_limit_s
task_soft_time_limit = _s.chapter_time_limit_s - 300
result_expires = _s.result_expires_s
# Results carry what the caller needs, not the task's arguments: a chapter's text stays out of the backend.
result_extended = False
# A result write during a backend blip waits for the backend instead of failing the finished chapter.
result_backend_always_retry = True
worker_send_task_events = True
task_send_sent_event = True

_transport = {"visibility_timeout": _s.visibility_timeout_s}
if _s.broker_keyprefix:
    _transport["global_keyprefix"] = _s.broker_keyprefix


def _transport_for(url: str) -> dict:
    """kombu and Celery ask a Sentinel for its current master by name; other URLs take no name."""
    if url.lower().startswith("sentinel://") and _s.redis_master_name:
        return _transport | {"master_name": _s.redis_master_name}
    return dict(_transport)


broker_transport_options = _transport_for(broker_url)
result_backend_transport_options = _transport_for(result_backend)

# Survive broker restarts: retry forever, at start-up too.
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
broker_channel_error_retry = True
# RabbitMQ requeues a running chapter's message as soon as the connection drops: keep running it here and it
# runs twice. Redis keeps it in `unacked` (leased, so never reaped while this worker lives): keep running.
worker_cancel_long_running_tasks_on_connection_loss = not is_redis_url(broker_url)

task_queues = (
    Queue(QUEUE_GPU, Exchange(QUEUE_GPU), routing_key=QUEUE_GPU),
    Queue(QUEUE_PREVIEW, Exchange(QUEUE_PREVIEW), routing_key=QUEUE_PREVIEW),
    Queue(QUEUE_CONTROL, Exchange(QUEUE_CONTROL), routing_key=QUEUE_CONTROL),
)
task_default_queue = QUEUE_CONTROL
task_routes = {
    "audiobook.synthesize_chapter": {"queue": QUEUE_GPU},
    "audiobook.synthesize_preview": {"queue": QUEUE_PREVIEW},
    "audiobook.*": {"queue": QUEUE_CONTROL},
}
task_create_missing_queues = False

beat_schedule = {
    "autoscale": {
        "task": "audiobook.autoscale",
        "schedule": _s.scaler_interval_s,
        # A tick that waited longer than its interval is stale: drop it, the next one is coming.
        "options": {"queue": QUEUE_CONTROL, "expires": max(1.0, _s.scaler_interval_s * 0.8)},
    },
    # Puts back the messages of dead workers (Redis broker): a chapter resumes within a scaler interval of
    # its lease lapsing, not after the visibility timeout.
    "reap": {
        "task": "audiobook.reap",
        "schedule": _s.scaler_interval_s,
        "options": {"queue": QUEUE_CONTROL, "expires": max(1.0, _s.scaler_interval_s * 0.8)},
    },
}
beat_schedule_filename = "var/celerybeat-schedule"
