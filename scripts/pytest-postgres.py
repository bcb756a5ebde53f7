#!/usr/bin/env python3
"""Run the test suite again on PostgreSQL, when a server answers on 127.0.0.1:5432 (user postgres, trust).

Creates a database of its own, points the tests at it with CLOBUS_TEST_DATABASE_URL, and drops it afterwards.
Arguments are passed to pytest. With no server there, it says so and exits 0: SQLite is the default engine.
"""
import os
import subprocess
import sys
import uuid

import psycopg2

HOST, PORT, USER = os.environ.get("PGHOST", "127.0.0.1"), int(os.environ.get("PGPORT", 5432)), "postgres"


def admin():
    conn = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname="postgres", connect_timeout=3)
    conn.autocommit = True
    return conn


def main() -> int:
    try:
        conn = admin()
    except psycopg2.OperationalError as exc:
        print(f"PostgreSQL not reachable on {HOST}:{PORT} ({str(exc).strip()}); PostgreSQL run skipped.")
        return 0
    name = f"clobus_test_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    print(f"== test suite on PostgreSQL (database {name}) ==", flush=True)
    env = {**os.environ, "CLOBUS_TEST_DATABASE_URL": f"postgresql://{USER}@{HOST}:{PORT}/{name}"}
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]], env=env)
    finally:
        conn = admin()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
