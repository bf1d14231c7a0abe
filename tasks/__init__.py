"""The Celery shell: `celery -A tasks worker -Q gpu-long` finds `app` here.

Task modules validate payloads and call `synth` or `scaler`; none of them imports torch at import time.
"""

from celery import Celery
from celery.signals import before_task_publish

from scaler.observe import stamp_queued_at
from tasks.leasing import LeaseKeeper

app = Celery("audiobook")
app.config_from_object("celeryconfig")
app.conf.include = ["tasks.chapter", "tasks.book", "tasks.preview", "tasks.autoscale", "tasks.reaper"]
# Every task this app publishes carries its publish time: the scaler reads the age of the oldest waiting one.
before_task_publish.connect(stamp_queued_at, weak=False)
# Every worker leases the messages it holds (Redis broker), so the reaper can tell a dead worker's from a live one's.
app.steps["consumer"].add(LeaseKeeper)

__all__ = ["app"]
