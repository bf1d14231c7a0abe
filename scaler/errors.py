"""Errors of the scaler, in one small hierarchy."""

from __future__ import annotations


class ScalerError(Exception):
    """Base of every scaler error."""


class ObservationError(ScalerError):
    """A metric could not be read. Never treated as zero: the tick holds the current size."""


class ProviderError(ScalerError):
    """A provider call failed; the message keeps the provider's own message (secrets removed)."""

    #: False when the call may have taken effect anyway (a timeout, a 5xx, a dropped connection).
    definite: bool = True


class ProviderUnavailable(ProviderError):
    """The provider did not answer in time or answered 5xx: the outcome of the call is unknown."""

    definite = False


class CapacityError(ProviderError):
    """No instance of the requested GPU type is available now; try another type and back off this one."""


class ProviderAuthError(ProviderError):
    """The provider refused the API key."""


class InvalidProviderInput(ProviderError):
    """A value would be pasted unescaped into a provider query; refused before anything is sent."""


class CapRefused(ScalerError):
    """An action was refused because it would exceed a spend cap; the message names the cap."""


class LockLost(ScalerError):
    """The tick lost its single-flight lock (it expired): it stops acting at once."""
