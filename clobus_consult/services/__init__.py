"""What the service does, independent of HTTP: each public function is one short write transaction."""


class ServiceError(Exception):
    """A request the service understood but cannot serve; the API turns it into ``{"detail": ...}``."""

    def __init__(self, status: int, detail: str, errors: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock detected


def retry_on_conflict(fn, attempts: int = 5):
    """Run ``fn`` (one transaction) again when a concurrent writer won a uniqueness race, or PostgreSQL
    chose this transaction as a deadlock's victim.

    The unique indexes are what keep identical concurrent requests to one row; the loser's transaction is
    rolled back, and on the next pass it finds the winner's row.
    """
    from peewee import IntegrityError, OperationalError

    for attempt in range(attempts):
        try:
            return fn()
        except IntegrityError:
            if attempt == attempts - 1:
                raise
        except OperationalError as exc:
            code = getattr(getattr(exc, "orig", None), "pgcode", None) or getattr(exc.__cause__, "pgcode", None)
            if code not in RETRYABLE_SQLSTATES or attempt == attempts - 1:
                raise
