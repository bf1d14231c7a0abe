"""A discrete-event simulator of the GPU pool, driving the scaler's real policy on traffic traces.

`traces` makes the work (books of chapters over a day), `model` runs one policy on it with simulated pods
and a simulated clock, `peers` holds the policies compared, `report` turns runs into rows, `plot` draws
them. docs/simulator.md explains how to read the result.
"""

from __future__ import annotations

from scaler.policy import PolicyConfig
from scaler.sim.model import Run, SimConfig, simulate
from scaler.sim.peers import PEER_NAMES, default_peers
from scaler.sim.traces import Trace


def compare(trace: Trace, config: PolicyConfig, sim_config: SimConfig | None = None, seed: int = 1,
            policies: tuple[str, ...] = PEER_NAMES) -> list[Run]:
    """Every chosen policy on the same trace, world and seed."""
    peers = [p for p in default_peers(trace, config) if p.name in policies]
    return [simulate(trace, peer, config, sim_config, seed) for peer in peers]


__all__ = ["PEER_NAMES", "Run", "SimConfig", "compare", "simulate"]
