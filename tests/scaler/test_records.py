"""Typed tick records: one JSON form, read back whole; the workers' model reports."""

from __future__ import annotations

import json

from scaler import health
from scaler.policy import PolicyConfig
from scaler.records import TickRecord
from scaler.state import StateStore
from tests.scaler.memworld import MemWorld


def test_a_record_round_trips_through_its_json(redis_client) -> None:
    m = MemWorld(PolicyConfig(max_workers=2))
    m.queue(12)
    record = m.tick()
    assert TickRecord.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["decision"]["create"][0]["gpu_type"] == "NVIDIA RTX A4000"
    store = StateStore(redis_client, "test-records")
    store.push_record(record, keep=5)
    redis_client.lpush(store.key("decisions"), json.dumps({"outcome": "ok", "decision": {"target": "x"}}))
    assert store.records(2) == [record]  # a record this version cannot read is skipped, not fatal


def test_model_reports_are_published_read_and_forgotten(redis_client) -> None:
    key = health.health_key("t:")
    health.publish(redis_client, key, "gpu-a@h", None, 1.0)
    health.publish(redis_client, key, "gpu-b@h", "cannot load model config for 'x'\nTraceback ...", 2.0)
    reports = health.read(redis_client, key)
    assert reports["gpu-a@h"].ok and reports["gpu-a@h"].error is None
    assert not reports["gpu-b@h"].ok and reports["gpu-b@h"].error == "cannot load model config for 'x'"
    health.forget(redis_client, key, ["gpu-a@h", "gpu-b@h"])
    assert health.read(redis_client, key) == {}
