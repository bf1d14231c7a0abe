"""The worker's consumer, guarded: nothing a message contains can stop the worker's main process.

`worker_consumer` points Celery here. Each message is checked (tasks.messages) before Celery builds a request
from it, and every path on which Celery gives up on a message (undecodable, disallowed content, unknown
task, invalid request, or anything raised while the request is built) ends in one place: the message is
kept as a dead letter (tasks.deadletter), acknowledged, logged once, and, when it names a task id, recorded
as FAILURE so the caller's `.get()` raises instead of waiting for ever.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from celery.utils.objects import Bunch
from celery.worker.consumer import Consumer
from vine import promise

from tasks.deadletter import DeadLetter, DeadLetterStore
from tasks.errors import PoisonMessage
from tasks.messages import Envelope, problem
from tasks.runtime import get_storage
from tasks.transport import screen_redis_channels

log = logging.getLogger(__name__)


def settle_safely(message: Any) -> None:  # noqa: ANN401 - a kombu Message
    """Make the message's ack and reject log a failure instead of raising it into the event loop.

    After a lost Redis connection kombu cannot create a client for the channel a message came on (AttributeError
    from a closed transport), and that error would stop the worker. A message left unacknowledged stays in
    `unacked`; its lease lapses once its request is over, the reaper puts it back, and the next delivery of a
    finished chapter is settled without work (tasks.chapter). A broken pipe still propagates: Celery reconnects.
    """
    for name in ("ack_log_error", "reject_log_error"):
        settle = getattr(message, name)

        def guarded(logger: Any, errors: Any, *args: Any, _settle: Any = settle, _name: str = name,  # noqa: ANN401
                    **kwargs: Any) -> None:  # noqa: ANN401
            try:
                _settle(logger, errors, *args, **kwargs)
            except BrokenPipeError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.critical("Couldn't %s %s on its old channel: %r; it stays in `unacked` until the reaper puts it "
                             "back", _name.split("_")[0], message.delivery_tag, exc)

        setattr(message, name, guarded)


class GuardedConsumer(Consumer):
    """Celery's consumer with one exit for every message it cannot run: the dead-letter store."""

    def create_task_handler(self, promise: Any = promise):  # noqa: ANN401, ANN201 - Celery's signature
        handle = super().create_task_handler(promise)
        recoverable = tuple(self.connection_errors) + tuple(self.channel_errors)

        def on_task_received(message: Any) -> Any:  # noqa: ANN401 - a kombu Message
            why = problem(Envelope.of(message), self.app.tasks)
            if why is not None:
                return self.dead_letter(message, why)
            settle_safely(message)
            try:
                return handle(message)
            except recoverable:
                raise  # the broker's trouble, not the message's: Celery reconnects
            except Exception as exc:  # anything else raised while Celery built the request
                return self.dead_letter(message, f"{type(exc).__name__}: {exc}")

        return on_task_received

    def connection_for_read(self, heartbeat: float | None = None) -> Any:  # noqa: ANN401 - a kombu Connection
        """The consuming connection; on Redis its channels screen each popped item first (tasks.transport), so a
        raw item that is no kombu message becomes a dead letter instead of stopping the worker."""
        return self.ensure_connected(screen_redis_channels(self.app.connection_for_read(heartbeat=heartbeat)))

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """On a lost Redis connection kombu would put back every message this worker holds, running chapters
        included (they would then run twice), or, as the connection is already gone, raise AttributeError
        from the channel's close and stop the worker. The messages stay in `unacked` instead, leased: acked
        when done, reaped if this worker dies. (RabbitMQ requeues on its side; nothing changes there.)"""
        channel = getattr(self.connection, "_default_channel", None) if self.connection else None
        if channel is not None and hasattr(channel, "do_restore"):
            channel.do_restore = False
        super().on_connection_error_after_connected(exc)

    # Celery's own handlers for these cases drop the message (or crash); ours keep it.
    def on_decode_error(self, message: Any, exc: Exception) -> None:  # noqa: ANN401
        self.dead_letter(message, f"cannot decode the body: {exc}")

    def on_unknown_message(self, body: Any, message: Any) -> None:  # noqa: ANN401
        self.dead_letter(message, "not a task message")

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:  # noqa: ANN401
        self.dead_letter(message, f"unknown task: {exc}")

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:  # noqa: ANN401
        self.dead_letter(message, f"invalid task message: {exc}")

    def dead_letter(self, message: Any, why: str) -> None:  # noqa: ANN401
        """Keep the message, take it off its queue, say so once, and fail its task for the caller."""
        if message.acknowledged:  # Celery already settled it; nothing left to take off the queue
            log.error("unreadable message %s, already settled: %s", message.delivery_tag, why)
            return
        letter = DeadLetter.from_message(message, why, worker=self.hostname)
        try:
            where = DeadLetterStore(get_storage()).put(letter)
        except Exception as exc:  # noqa: BLE001 - without a copy the message must stay on the broker
            log.error("cannot keep unreadable message %s (%s) as a dead letter: %s; it goes back to its queue",
                      letter.task_id or message.delivery_tag, why, exc)
            message.reject_log_error(log, self.connection_errors, requeue=True)
            return
        message.ack_log_error(log, self.connection_errors)
        log.error("dead letter %s: message %s for %s on queue %s: %s (kept at %s; `audiobook deadletter`)",
                  letter.id, letter.task_id, letter.task_name, letter.queue, why, where)
        if letter.task_id is not None:
            self._fail_task(letter, why)
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def _fail_task(self, letter: DeadLetter, why: str) -> None:
        request = Bunch(id=letter.task_id, name=letter.task_name, task=letter.task_name, chord=None, errbacks=None,
                        group=None, root_id=letter.headers.get("root_id"), parent_id=None, children=[],
                        correlation_id=letter.properties.get("correlation_id") or letter.task_id,
                        reply_to=letter.properties.get("reply_to"), delivery_info={"routing_key": letter.queue})
        try:
            self.app.backend.mark_as_failure(
                letter.task_id, PoisonMessage(f"{letter.task_name or 'message'}: unreadable message: {why} "
                                              f"(dead letter {letter.id})"), request=request)
        except Exception as exc:  # noqa: BLE001 - the dead letter is kept; the state is a courtesy
            log.error("cannot record task %s as failed: %s", letter.task_id, exc)
