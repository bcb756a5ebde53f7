"""The one error type the upstream clients raise; the outbox decides what to do with it."""


class SyncError(Exception):
    """An upstream call failed.

    ``permanent`` is True when retrying cannot help (a 4xx other than 408/429, a 1C business
    rejection): the outbox marks the task failed at once and keeps ``message`` for the operator.
    ``uncertain`` is True when the request may have reached the upstream and been applied
    (timeout, dropped connection, 5xx after sending a write): the next attempt must look before
    it creates anything.
    """

    def __init__(self, message: str, *, permanent: bool = False, uncertain: bool = False,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.uncertain = uncertain
        self.status = status

    def __str__(self) -> str:
        return self.message
