"""The autoscaler of the `gpu-long` worker pool.

`policy`, `caps`, `breaker` and `reconcile` are pure (numbers and a clock in, a decision out); `core` runs one
tick (read -> reconcile -> decide -> bookkeeping -> `execute`) over a small `world`, the same for the live tick
(`tick`: RunPod or local processes, Celery, Redis) and the simulator (`sim`). Around them, small I/O adapters:
`observe` (broker depth), `workers` and `drain` (Celery), `health` (the workers' model reports), `providers`,
`state` (Redis) and `metrics`. Importing this package is cheap: no torch, no transformers, and the RunPod SDK
only when the RunPod provider is built.
"""
