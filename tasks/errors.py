"""Errors of the Celery shell."""


class TaskError(Exception):
    """Base of every task error."""


class InvalidPayload(TaskError):
    """The payload failed validation. Never retried; the message names each bad field."""


class TooManyAttempts(TaskError):
    """A chapter was delivered more times than AUDIOBOOK_MAX_ATTEMPTS (it keeps killing its worker)."""


class PreviewRefused(TaskError):
    """A preview was refused by a cap; the message names the cap and when to retry.

    Exceptions cross the result backend as JSON (type name + args), so they carry only a message.
    """


class PreviewFailed(TaskError):
    """The serverless endpoint gave no preview after its retries; the message keeps the endpoint's words."""


class PoisonMessage(TaskError):
    """A worker could not read the message; it names what was wrong. The message is kept as a dead letter."""


class BookInProgress(TaskError):
    """The book id names a book still in progress with different chapters; cancel it or wait."""
