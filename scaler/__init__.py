"""The autoscaler of the `gpu-long` worker pool.

`policy` and `caps` are pure (numbers and a clock in, a decision out); everything else is a small I/O
adapter around them: `observe` (broker depth), `workers` (Celery inspect), `drain`, `providers`, `state`
(Redis), and `tick`, which runs observe -> decide -> act -> record once. Importing this package is cheap:
no torch, no transformers, and the RunPod SDK only when the RunPod provider is built.
"""
