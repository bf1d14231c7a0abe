"""The crash-loop breaker: after K workers in a row fail to become ready, stop creating for a cool-off.

A worker fails to become ready when it never registers within the boot timeout, or when it publishes that its
model cannot load (it steps aside). One that registers and reports its model loaded closes the breaker. Pure:
the tick feeds it each worker's outcome once and saves what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Breaker:
    """How the last workers started. Open while `now < resumes_at`: no create beyond the minimum."""

    failed_in_a_row: int = 0
    last_error: str | None = None
    tripped_at: float | None = None  # when the K-th failure in a row (or a later one) came
    resumes_at: float | None = None  # end of the cool-off (an operator's resume ends it sooner)

    def is_open(self, now: float) -> bool:
        return self.resumes_at is not None and now < self.resumes_at


def after_outcomes(breaker: Breaker, ready: int, failures: list[str], threshold: int, cooloff_s: float,
                   now: float) -> Breaker:
    """The breaker after this tick's outcomes: `ready` workers that came up, then the errors of those that
    failed. After a cool-off the breaker is half open: one more failure opens it again at once."""
    if ready:
        breaker = Breaker()
    for error in failures:
        count = breaker.failed_in_a_row + 1
        breaker = replace(breaker, failed_in_a_row=count, last_error=error)
        if count >= threshold:
            breaker = replace(breaker, tripped_at=now, resumes_at=now + cooloff_s)
    return breaker


def resumed(breaker: Breaker) -> Breaker:
    """An operator's resume: creating may start again now; the count starts over."""
    return Breaker(last_error=breaker.last_error)
