"""The simulator's fault model: the real core against a provider that lies, and the referee that counts what must
never happen (CI runs a short storm; `audiobook simulate --faults` runs 10,000 ticks)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from scaler.policy import PolicyConfig
from scaler.sim import STORM, fault_storm
from scaler.sim.cloud import SimClock, SimCloud
from scaler.sim.faults import FAULT_RATES, FaultModel
from scaler.sim.model import SimConfig
from scaler.sim.peers import ScalerPeer
from scaler.sim.report import summarize_faults
from scaler.sim.traces import get_trace, repeated
from tasks.cli import main

from .test_model import short_trace

TIGHT = PolicyConfig(max_workers=8, max_usd_per_hour=2.5, max_step=3, idle_s=300)


def test_a_short_storm_breaks_no_promise_under_any_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--faults", "--ticks", "600", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["violations"] == 0 and report["ticks"] == 600
    for row in report["policies"]:
        assert row["violations"] == 0, row
        assert row["max_pods"] <= row["max_workers"] and row["max_usd_per_hour"] <= row["usd_cap"] + 1e-9
        assert row["faults"] >= 100, row  # the storm really happened
        assert row["held"] > 0 and row["chapters_done"] > 0


def test_the_storm_hits_every_kind_of_fault_and_the_breaker() -> None:
    config = replace(TIGHT, boot_timeout_s=600)
    storm = replace(STORM, crash_loop=0.01, crash_loop_s=1800.0)
    [run] = fault_storm(repeated("diurnal", 3, 2000 * 30.0), config, 2000, SimConfig(crash_loop_workers=2), seed=3,
                        policies=("backlog",), faults=storm)
    row = summarize_faults(run)
    assert set(row.fault_counts) == set(FAULT_RATES)
    assert row.violations == 0 and row.crash_loop_ticks > 0


def test_the_referee_counts_what_must_never_happen() -> None:
    clock = SimClock()
    cloud = SimCloud(clock, SimConfig().offers, max_workers=1, max_usd_per_hour=10.0)
    cloud.create("audiobook-gpu-a", "NVIDIA RTX A4000")
    busy = cloud.create("audiobook-gpu-b", "NVIDIA RTX A4000")  # one past the cap
    assert cloud.stats.over_max_workers == 1
    cloud.pods[busy.id].chapter = 0
    cloud.terminate(busy.id)
    assert cloud.stats.busy_terminated == 1
    cloud.faults = FaultModel(foreign_pod=1.0)
    cloud.between_ticks()
    [foreign] = [p for p in cloud.pods.values() if p.deployment != "sim"]
    cloud.terminate(foreign.id)
    assert cloud.stats.foreign_touched == 1


def test_a_pod_the_scaler_never_sees_is_counted_unknown() -> None:
    from scaler.sim.model import Simulation

    sim = Simulation(short_trace(2), ScalerPeer("table", TIGHT), TIGHT, SimConfig(), seed=2)
    pod = sim.cloud._spawn("audiobook-gpu-ghost", "NVIDIA RTX A4000", "sim")
    pod.visible_at = float("inf")  # bills, but no listing or lookup will ever show it
    run = sim.run_ticks(5)
    assert run.unknown_after_faults == 1 and summarize_faults(run).violations == 1


def test_the_fault_trace_repeats_days() -> None:
    day = get_trace("diurnal", 1)
    three = repeated("diurnal", 1, 2.5 * 86_400)
    assert three.duration_s == 2.5 * 86_400 and len(three.chapters) > 2 * len(day.chapters)
    assert three.chapters[0] == day.chapters[0] and all(c.arrival_s < three.duration_s for c in three.chapters)
