"""The Celery shell: `celery -A tasks worker -Q gpu-long` finds `app` here.

Task modules validate payloads and call `synth` or `scaler`; none of them imports torch at import time.
"""

from celery import Celery

app = Celery("audiobook")
app.config_from_object("celeryconfig")
app.conf.include = ["tasks.chapter", "tasks.book", "tasks.preview", "tasks.autoscale"]

__all__ = ["app"]
