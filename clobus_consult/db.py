"""The database: SQLite by default, PostgreSQL when ``DATABASE_URL`` says so.

Models bind to ``db`` (a proxy) at import; ``init_app`` points it at the real database. Each request takes a
connection in ``before_request`` and gives it back in ``teardown_request``; jobs use ``connection_context()``.
Connections are pooled on both engines: opening a SQLite file and setting its pragmas on every request costs
more than the request itself.
"""
import os
import threading
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

from flask import Flask
from peewee import DatabaseProxy
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

db = DatabaseProxy()
_sqlite_writer = threading.RLock()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never block the writer
    "synchronous": "normal",  # durable at checkpoints; safe with WAL
    "foreign_keys": 1,
    "cache_size": -16000,
    "busy_timeout": 10000,
}


def make_database(url: str, max_connections: int = 20):
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:] if url.startswith("sqlite:///") else parsed.path)
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return PooledSqliteDatabase(
            path, pragmas=SQLITE_PRAGMAS, timeout=10, max_connections=max_connections,
            stale_timeout=300, check_same_thread=False,
        )  # ``timeout``: wait for a free pooled connection; SQLite's own lock wait is the busy_timeout pragma
    if parsed.scheme in ("postgres", "postgresql"):
        return PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")), user=unquote(parsed.username or "") or None,
            password=unquote(parsed.password or "") or None, host=parsed.hostname,
            port=parsed.port or 5432, max_connections=max_connections, stale_timeout=300,
            timeout=10,  # wait this long for a free pooled connection instead of failing at once
        )
    raise ValueError(f"Unsupported DATABASE_URL scheme: {parsed.scheme!r}")


def is_sqlite() -> bool:
    return isinstance(db.obj, PooledSqliteDatabase)


@contextmanager
def write_transaction():
    """A short write transaction that takes the write lock at once on SQLite (BEGIN IMMEDIATE).

    A deferred transaction that reads first and writes later can fail with "database is locked" when another
    writer got there in between, whatever the busy timeout; taking the lock up front makes it wait instead.
    """
    if is_sqlite():
        # Threads of one process queue on a lock instead of in SQLite's busy handler, which polls with
        # growing sleeps (up to 100 ms) and leaves the write lock idle meanwhile: the p99 of intake.
        with _sqlite_writer, db.atomic("IMMEDIATE") as tx:
            yield tx
    else:
        with db.atomic() as tx:
            yield tx


def init_app(app: Flask) -> None:
    url = app.config.get("DATABASE_URL") or "sqlite:///" + os.path.join(app.instance_path, "clobus.sqlite3")
    app.config["DATABASE_URL"] = url
    db.initialize(make_database(url, app.config["DATABASE_MAX_CONNECTIONS"]))

    @app.before_request
    def _connect():
        db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(_exc):
        if not db.is_closed():
            db.close()
