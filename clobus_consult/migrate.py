"""Schema migrations: numbered scripts in ``migrations/``, applied in order (peewee's migration runner).

Several gunicorn workers (or hosts) may start at once, so applying is serialised: an exclusive file lock
beside the SQLite file, or a PostgreSQL advisory lock. The second comer finds nothing left to do.
"""
import fcntl
import os
from contextlib import contextmanager

from playhouse.migrations import Runner

from .db import db, is_sqlite

DIRECTORY = os.path.join(os.path.dirname(__file__), "migrations")
ADVISORY_LOCK_ID = 7070_0001


@contextmanager
def _migration_lock():
    if is_sqlite():
        path = db.obj.database
        if path == ":memory:":
            yield
            return
        with open(path + ".migrate.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        db.execute_sql("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))


def runner() -> Runner:
    return Runner(db.obj, DIRECTORY)


def pending() -> list[str]:
    with db.connection_context():
        return [m.name for m in runner().status() if not m.applied]


def upgrade() -> list[str]:
    """Apply every pending migration; returns the names applied."""
    with db.connection_context(), _migration_lock():
        return runner().up()
