"""The simulated provider's lies and the world's surprises, each with its rate.

Call faults hit one provider call (a listing, a lookup, a price, a create); world faults happen between ticks
(a pod of another deployment appears, a price moves, the image breaks for a while). `STORM` is what
`audiobook simulate --faults` runs; `FaultModel()` is a world that never lies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultModel:
    """Probabilities: per call for call faults, per tick for world faults (per pod for `null_runtime`)."""

    list_error: float = 0.0  # the listing fails outright (an HTTP 500)
    omit_all: float = 0.0  # the listing answers `pods: []`
    omit_some: float = 0.0  # the listing leaves out each pod with probability 1/2
    null_runtime: float = 0.0  # a running pod is listed with `runtime: null` (per pod and listing)
    lookup_hang: float = 0.0  # a lookup by id hangs past the deadline
    price_hang: float = 0.0  # a price call hangs past the deadline
    lost_create: float = 0.0  # the pod is made, the answer is lost
    late_create: float = 0.0  # the answer times out; the pod appears up to `late_s` later
    failed_create: float = 0.0  # the answer times out and no pod is ever made
    foreign_pod: float = 0.0  # a pod of another deployment, with our name prefix, appears (per tick)
    price_change: float = 0.0  # a GPU type's price moves by -30 % to +40 % (per tick; pods keep theirs)
    crash_loop: float = 0.0  # the image breaks: new pods cannot load the model for `crash_loop_s` (per tick)
    late_s: float = 30.0
    foreign_s: float = 4 * 3600.0  # longest life of a foreign pod
    crash_loop_s: float = 3600.0


FAULT_RATES = ("list_error", "omit_all", "omit_some", "null_runtime", "lookup_hang", "price_hang", "lost_create",
               "late_create", "failed_create", "foreign_pod", "price_change", "crash_loop")

#: `audiobook simulate --faults`: every lie at once, often enough that each happens hundreds of times.
STORM = FaultModel(
    list_error=0.02, omit_all=0.03, omit_some=0.05, null_runtime=0.05, lookup_hang=0.05, price_hang=0.05,
    lost_create=0.05, late_create=0.05, failed_create=0.03, foreign_pod=0.02, price_change=0.01, crash_loop=0.001)
