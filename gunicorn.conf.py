"""gunicorn settings for clobus-consult: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be overridden from the environment (``GUNICORN_BIND``, ``GUNICORN_WORKERS``, ...), so the
systemd unit and the benchmarks use this same file.
"""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:7070")
# Requests are short and spend their time in SQLite or waiting on an upstream: a few processes with
# threads each cover both without many connections.
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
keepalive = 5
# OIDC bearer tokens can be long (the verifier takes up to 16 KiB): gunicorn's default 8 KiB header line is not.
limit_request_field_size = 20 * 1024
# Only nginx on this host talks to us; trust its X-Forwarded-* headers and nobody else's.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
proc_name = "clobus-consult"


def on_starting(server):
    """Apply migrations once, in the master, before any worker serves (workers then find nothing to do)."""
    from clobus_consult import create_app

    create_app({"SCHEDULER_ENABLED": False})


def post_worker_init(worker):
    """Start this worker's background jobs (the sync outbox; the 1C pull takes a lease first)."""
    from clobus_consult.sync import scheduler

    scheduler.start_for(worker.wsgi)


def worker_exit(server, worker):
    from clobus_consult.sync import scheduler

    scheduler.stop()
