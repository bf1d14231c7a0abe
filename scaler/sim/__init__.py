"""A discrete-event simulator of the GPU pool, driving the scaler's real execution core on traffic traces.

`traces` makes the work (books of chapters over a day), `model` runs one policy on it through the core
(`scaler.core`) with simulated pods (`cloud`, which lies as `faults` says) and a simulated clock, `peers`
holds the policies compared, `report` turns runs into rows, `plot` draws them. docs/simulator.md explains
how to read the result.
"""

from __future__ import annotations

from scaler.policy import PolicyConfig
from scaler.sim.faults import STORM, FaultModel
from scaler.sim.model import Run, SimConfig, Simulation, simulate
from scaler.sim.peers import PEER_NAMES, default_peers
from scaler.sim.traces import Trace


def compare(trace: Trace, config: PolicyConfig, sim_config: SimConfig | None = None, seed: int = 1,
            policies: tuple[str, ...] = PEER_NAMES, faults: FaultModel | None = None) -> list[Run]:
    """Every chosen policy on the same trace, world and seed."""
    sim_config = sim_config or SimConfig()
    peers = [p for p in _peers(trace, config, sim_config) if p.name in policies]
    return [simulate(trace, peer, config, sim_config, seed, faults) for peer in peers]


def fault_storm(trace: Trace, config: PolicyConfig, ticks: int, sim_config: SimConfig | None = None, seed: int = 1,
                policies: tuple[str, ...] = PEER_NAMES, faults: FaultModel = STORM) -> list[Run]:
    """Every chosen policy for `ticks` ticks of seeded random faults, then two clean ticks (`Run.unknown_after_faults`
    counts the pods still unknown then)."""
    sim_config = sim_config or SimConfig()
    peers = [p for p in _peers(trace, config, sim_config) if p.name in policies]
    return [Simulation(trace, peer, config, sim_config, seed, faults).run_ticks(ticks) for peer in peers]


def _peers(trace: Trace, config: PolicyConfig, sim_config: SimConfig) -> list:
    cheapest = min((o.usd_per_hour for o in sim_config.offers), default=None)
    return default_peers(trace, config, sim_config.boot_s, sim_config.interval_s, cheapest)


__all__ = ["PEER_NAMES", "STORM", "FaultModel", "Run", "SimConfig", "compare", "fault_storm", "simulate"]
