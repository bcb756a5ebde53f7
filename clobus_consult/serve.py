"""How clobus-consult is served by gunicorn: the settings and hooks, in one place for both ways to start it.

- In a checkout: ``gunicorn -c gunicorn.conf.py wsgi:app``, where gunicorn.conf.py is just
  ``from clobus_consult.serve import *``: the settings below and the hooks, all that gunicorn reads from a
  config file.
- From the single-file build: ``python3 clobus-consult.pyz serve`` calls :func:`run`, which starts gunicorn
  from Python with the same settings and hooks (and ``--bind``/``--workers`` on top).

Every value can be overridden from the environment (``GUNICORN_BIND``, ``GUNICORN_WORKERS``, ...), so the
systemd unit, the tests and the benchmarks all use these settings.
"""
import datetime as dt
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence

from gunicorn.glogging import Logger


class JsonAccessLogger(Logger):
    """gunicorn's access log as one JSON object per line, like the app's own logs.

    The path is logged without its query string: a Chatwoot webhook URL can carry ``?token=``.
    """

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = dict((k.lower(), v) for k, v in (resp.headers or []))
        record = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "level": "INFO",
            "logger": "gunicorn.access", "method": environ.get("REQUEST_METHOD"), "path": environ.get("PATH_INFO"),
            "status": int(status), "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2), "remote": environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"), "user_agent": environ.get("HTTP_USER_AGENT"),
            "request_id": headers.get("x-request-id"),
        }
        self.access_log.info(json.dumps(record, ensure_ascii=False))


def settings(environ: Mapping[str, str] | None = None) -> dict:
    """gunicorn's settings, read from ``environ`` (default: ``os.environ``) now."""
    env = os.environ if environ is None else environ
    return {
        "bind": env.get("GUNICORN_BIND", "127.0.0.1:7070"),
        # Requests are short and spend their time in SQLite or waiting on an upstream: a few processes with
        # threads each cover both without many connections.
        "workers": int(env.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2, 8))),
        "threads": int(env.get("GUNICORN_THREADS", 4)),
        "worker_class": "gthread",
        "timeout": int(env.get("GUNICORN_TIMEOUT", 30)),
        # systemd's TimeoutStopSec (deploy/systemd/clobus-consult.service) must stay above this.
        "graceful_timeout": int(env.get("GUNICORN_GRACEFUL_TIMEOUT", 20)),
        "keepalive": 5,
        # OIDC bearer tokens can be long (the verifier takes up to 16 KiB): gunicorn's default 8 KiB header line
        # is not.
        "limit_request_field_size": 20 * 1024,
        # Only nginx on this host talks to us; trust its X-Forwarded-* headers and nobody else's.
        "forwarded_allow_ips": env.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "accesslog": env.get("GUNICORN_ACCESSLOG", "-") or None,  # empty: no access log
        "errorlog": "-",
        "loglevel": env.get("GUNICORN_LOGLEVEL", "info"),
        "proc_name": "clobus-consult",
        "logger_class": "clobus_consult.serve.JsonAccessLogger",
    }


_created_multiproc_dir: list[str] = []


def _prometheus_multiproc_dir() -> None:
    """Every worker's metrics in one folder (prometheus-client's multiprocess mode), summed by /metrics.

    $PROMETHEUS_MULTIPROC_DIR if set (emptied: a previous run's files would add up), else a temp folder removed
    at exit. Set here in the master before the app, and so prometheus-client, is first imported: it picks its
    mode at import.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    else:
        path = tempfile.mkdtemp(prefix="clobus-prometheus-")
        _created_multiproc_dir.append(path)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def on_starting(server):
    """Apply migrations once, in the master, before any worker serves (workers then find nothing to do)."""
    _prometheus_multiproc_dir()
    from clobus_consult import create_app

    create_app({"SCHEDULER_ENABLED": False})


def post_worker_init(worker):
    """Start this worker's background jobs (the sync outbox; the 1C pull takes a lease first)."""
    from clobus_consult.sync import scheduler

    scheduler.start_for(worker.wsgi)


def worker_exit(server, worker):
    from clobus_consult.sync import scheduler

    scheduler.stop()


def child_exit(server, worker):
    """In the master: a dead worker's live gauges leave /metrics (its counters stay in the sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _created_multiproc_dir:
        shutil.rmtree(_created_multiproc_dir[0], ignore_errors=True)


HOOKS = {"on_starting": on_starting, "post_worker_init": post_worker_init, "worker_exit": worker_exit,
         "child_exit": child_exit, "on_exit": on_exit}


def run(bind: Sequence[str] = (), workers: int | None = None) -> None:
    """Serve the app with gunicorn in this process (the master); returns only by exiting."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):
        def __init__(self, options: dict):
            self.options = options
            super().__init__()

        def load_config(self):
            for key, value in self.options.items():
                self.cfg.set(key, value)

        def load(self):
            """In each worker, like ``wsgi:app`` (the instance folder comes from $CLOBUS_INSTANCE)."""
            from clobus_consult import create_app

            return create_app()

    options = {**settings(), **HOOKS}
    if bind:
        options["bind"] = list(bind)
    if workers:
        options["workers"] = workers
    Application(options).run()


# ``from clobus_consult.serve import *`` (gunicorn.conf.py) gives gunicorn the hooks and the settings, the latter
# read from the environment at that moment (module __getattr__, PEP 562): gunicorn takes every global of its
# config file that is named like a setting, and reads the file again on a reload (SIGHUP).
__all__ = [*settings(), *HOOKS]


def __getattr__(name: str):
    values = settings()
    if name in values:
        return values[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
