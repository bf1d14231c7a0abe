"""`audiobook.autoscale`: one scaler tick, sent by beat every SCALER_INTERVAL_SECONDS to the `control` queue.

Never routed to `gpu-long` (with no GPU worker nobody would run it). Imports no torch or transformers.
"""

from __future__ import annotations

import functools
from typing import Any

from scaler import metrics
from scaler.tick import Scaler
from settings import get_settings
from tasks import app
from tasks.preview_spend import settle_open_previews


@functools.cache
def get_scaler() -> Scaler:
    """One Scaler per process: it keeps its provider client and Redis connections between ticks."""
    return Scaler.from_settings(app)


# A tick makes a few provider calls, each bounded by SCALER_PROVIDER_TIMEOUT_SECONDS; the limits only stop
# a tick that is stuck past all of them (its lock then expires on its own).
@app.task(name="audiobook.autoscale", ignore_result=True, soft_time_limit=240, time_limit=270)
def autoscale() -> dict[str, Any]:
    scaler = get_scaler()
    metrics.serve(get_settings().scaler_metrics_port, scaler.store)
    settle_open_previews()  # preview jobs whose bill was left open: re-read even in hours without previews
    return scaler.tick().to_dict()
