"""The baseline for ``bench/http_bench.py``: a plain Flask + sqlite3 app, no framework layers on top.

It runs under the service's own ``gunicorn.conf.py`` (same workers, threads and worker class), so the
ratio "service / bare" measures what the service adds (flask-smorest, marshmallow, peewee, auth, the
extra rows of the outbox), not gunicorn or Flask themselves.

- ``GET /hello``   → a small JSON document, no I/O.
- ``POST /insert`` → parses the JSON body and inserts one small row into its own SQLite file (WAL,
  ``synchronous=NORMAL`` like the service), one connection per thread, one commit per request.
- ``GET /item/<id>`` → one ``SELECT`` by primary key, the row as JSON (an extra reference point: a read
  that touches the database, unlike ``/hello``).

The database path comes from ``BARE_DB``; ``http_bench.py`` creates the file and the table before
gunicorn starts, so workers never race on the schema.

Run on its own: ``BARE_DB=/tmp/bare.sqlite3 gunicorn -c gunicorn.conf.py --pythonpath bench bare_app:app``.
"""
import datetime as dt
import os
import sqlite3
import threading
import uuid

from flask import Flask, abort, jsonify, request

DB_PATH = os.environ.get("BARE_DB", "bare.sqlite3")
SCHEMA = """
CREATE TABLE IF NOT EXISTS item (
    id TEXT PRIMARY KEY,
    email TEXT,
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""

_local = threading.local()


def connect(path: str = DB_PATH) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def init_db(path: str) -> None:
    conn = connect(path)
    conn.execute(SCHEMA)
    conn.close()


def db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect()
    return conn


app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(status="ok", message="hello")


@app.post("/insert")
def insert():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400)
    client = body.get("client") or {}
    comment = (body.get("consultation") or {}).get("comment")
    if not comment:
        abort(400)
    row_id = str(uuid.uuid4())
    conn = db()
    with conn:  # BEGIN … COMMIT
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO item (id, email, comment, created_at) VALUES (?, ?, ?, ?)",
            (row_id, client.get("email"), comment, dt.datetime.now(dt.UTC).isoformat()),
        )
    return jsonify(id=row_id, status="created")


@app.get("/item/<row_id>")
def item(row_id):
    row = db().execute("SELECT id, email, comment, created_at FROM item WHERE id = ?", (row_id,)).fetchone()
    if row is None:
        abort(404)
    return jsonify(dict(zip(("id", "email", "comment", "created_at"), row, strict=True)))
