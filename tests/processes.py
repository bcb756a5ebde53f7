"""Start the real service (gunicorn, as production does) and other processes for the tests."""
import concurrent.futures as cf
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Served(str):
    """The base URL of a started server, carrying its process (``.proc``) for tests that kill it."""

    proc: subprocess.Popen


@contextmanager
def gunicorn(instance: Path, env: dict | None = None, workers: int = 2, threads: int = 4):
    """Serve wsgi:app with gunicorn.conf.py on a free port; yields the base URL (a ``Served``)."""
    port = free_port()
    full_env = {
        **os.environ, "CLOBUS_INSTANCE": str(instance), "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads), "GUNICORN_ACCESSLOG": "",
        "CLOBUS_SCHEDULER_ENABLED": "false", "CLOBUS_RATELIMIT_ENABLED": "false", **(env or {}),
    }
    log = open(instance.parent / f"gunicorn-{port}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = Served(f"http://127.0.0.1:{port}")
    url.proc = proc
    try:
        wait_http(url + "/api/health", proc=proc)
        yield url
    finally:
        stop(proc)
        log.close()


def race(n: int, fn) -> list:
    """Call ``fn`` from ``n`` threads released at the same instant; returns the results in order."""
    barrier = threading.Barrier(n)

    def run(_):
        barrier.wait()
        return fn()

    with cf.ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))
