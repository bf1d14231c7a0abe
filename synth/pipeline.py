"""A pipeline stage: one background thread that runs what it is handed, in order, beside the model.

The model runs in the caller's thread (torch releases the GIL inside its kernels); post-processing, file
writes and uploads go to stages so the next forward pass starts at once. A stage stops at its first error
and raises it in the submitting thread, on its next submit or at join, so a failure neither hangs the
pipeline nor lets later work (a checkpoint past lost audio) run after it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any


class StageStopped(Exception):
    """Work skipped because an earlier item of the same stage failed."""


class Stage:
    """Runs submitted calls on one thread, in submission order, with at most `backlog` not yet done."""

    def __init__(self, name: str, backlog: int = 4, finish_on_error: bool = False) -> None:
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1, got {backlog}")
        self.name = name
        self.backlog = backlog
        #: On leaving the `with` block by an exception, still run what was handed over (audio the model
        #: already made, checkpoints already cut) instead of dropping it.
        self.finish_on_error = finish_on_error
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[Future[Any]] = deque()
        self._failed = threading.Event()
        self.busy_s = 0.0  # seconds spent running items (for the benchmarks' overlap figures)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)`; blocks while `backlog` items are unfinished; raises an earlier item's error."""
        self._collect(block=False)
        while len(self._pending) >= self.backlog:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._run, fn, args))

    def join(self) -> None:
        """Wait for everything submitted; raises the first error."""
        self._collect(block=True)

    def _collect(self, block: bool) -> None:
        while self._pending and (block or self._pending[0].done()):
            self._pending.popleft().result()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self._failed.is_set():
            raise StageStopped(f"{self.name}: skipped after an earlier failure")
        started = time.perf_counter()
        try:
            return fn(*args)
        except BaseException:
            self._failed.set()
            raise
        finally:
            self.busy_s += time.perf_counter() - started

    @property
    def failed(self) -> bool:
        """Whether an item raised or was dropped: what the stage was building is incomplete."""
        return self._failed.is_set()

    def close(self, cancel: bool) -> None:
        """Stop the thread: after the running item (cancel: the rest never start) or after all of them."""
        if cancel and any(not future.done() for future in self._pending):
            self._failed.set()
        self._executor.shutdown(wait=True, cancel_futures=cancel)
        self._pending.clear()

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            try:
                self.join()
            finally:
                self.close(cancel=True)
            return
        self.close(cancel=not self.finish_on_error)


__all__ = ["Stage", "StageStopped"]
