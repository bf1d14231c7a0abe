"""Whether the GPU pool can serve, as the scaler's latest tick saw it: what `audiobook status` and the progress
view say about chapters that wait because no worker can start (a model that cannot load, a crash loop)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celery import Celery

    from scaler.records import Health
    from settings import Settings


def pool_health(app: Celery, settings: Settings) -> Health | None:
    """The pool's health from the scaler's latest decision record; None when there is none or it is unreadable."""
    from scaler.tick import state_store

    try:
        records = state_store(app, settings).records(1)
    except Exception:  # noqa: BLE001 - a status command shows what it can
        return None
    return records[0].health if records else None


def waiting_reason(health: Health | None) -> str | None:
    """"waiting: no healthy workers: <error>" when workers fail to start and none serves, else None."""
    if health is None or health.healthy > 0 or not health.last_error:
        return None
    if not (health.crash_loop or health.failed_in_a_row):
        return None
    return f"waiting: no healthy workers: {health.last_error}"


def chapter_label(phase: str, reason: str | None) -> str:
    """A chapter's phase as shown: a chapter not done that no healthy worker can take says why it waits."""
    return reason if reason is not None and phase in ("queued", "running") else phase
