"""Shared pieces of bench/sync_bench.py and bench/scale_bench.py (not a benchmark itself).

Re-uses bench/http_bench.py for gunicorn (``Server``: ``gunicorn -c gunicorn.conf.py wsgi:app`` in its own
process group, own control socket) and wrk (``run_wrk``/``parse_wrk``), and adds: the emulators as
subprocesses, PostgreSQL scratch databases, a load-average gate, markdown tables and a cleanup registry that
stops every subprocess on exit, error, Ctrl-C, SIGTERM or SIGHUP.
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import http_bench  # noqa: E402  (bench/ is not a package)
from http_bench import (  # noqa: E402,F401  re-exported for the two scripts
    CpuMeter,
    Result,
    Server,
    SetupError,
    free_port,
    git_rev,
    gunicorn_has_control_socket,
    loadavg,
    parse_wrk,
    post_json,
    run_wrk,
)

RESULTS = BENCH / "results"

# A create body per request, unique comment and unique client (e-mail only: a shared phone number would make
# every client the same Chatwoot contact, and 1C allows only 3 calls per counterparty per day).
LUA_CREATE = r"""
local thread_no = 0
function setup(thread)
  thread:set("tid", thread_no)
  thread_no = thread_no + 1
end

local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"

function request()
  counter = counter + 1
  local who = "%(nonce)s-" .. (tid or 0) .. "-" .. counter
  local body = '{"client": {"email": "bench' .. who .. '@example.com"}, '
    .. '"consultation": {"comment": "Bench question ' .. who .. '", "lang": "ru"}, "source": "SITE"}'
  return wrk.format(nil, nil, nil, body)
end
"""

LUA_GET = r"""
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


def lua_create(tmp: Path, token: str) -> Path:
    """A create script with a fresh nonce: each wrk run (warm-up included) sends never-seen bodies."""
    path = tmp / f"create-{secrets.token_hex(4)}.lua"
    path.write_text(LUA_CREATE % {"token": token, "nonce": secrets.token_hex(4)})
    return path


def lua_get(tmp: Path, token: str) -> Path:
    path = tmp / "get.lua"
    path.write_text(LUA_GET % {"token": token})
    return path


# --------------------------------------------------------------------------------------------- cleanup

_cleanups: list = []


def on_cleanup(fn) -> None:
    """Run ``fn`` at exit (newest first); each runs once even if cleanup() is called again."""
    _cleanups.append(fn)


def cleanup() -> None:
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as err:  # keep stopping the others
            print(f"cleanup: {err}", file=sys.stderr)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP raise KeyboardInterrupt like Ctrl-C does, so ``finally`` blocks and atexit run."""
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(cleanup)


class Proc:
    """A subprocess in its own session; stop() takes its whole process group."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path):
        self.name, self.cmd, self.env, self.log_path = name, cmd, env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        on_cleanup(self.stop)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            self._log.close()
            self.proc = None


def start_server(server: Server, ready_path: str = "/api/health", timeout: float = 60.0) -> Server:
    """http_bench.Server.start + wait_ready, registered for cleanup."""
    server.start()
    on_cleanup(server.stop)
    server.wait_ready(ready_path, timeout=timeout)
    return server


def proc_cpu_seconds(pids) -> float:
    """user+system CPU seconds used so far by the given processes (Linux /proc; children not included)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CpuMeter.TICK


def group_cpu_seconds(pgids) -> float:
    """user+system CPU seconds used so far by every live process of the given process groups."""
    pgids, total = set(pgids), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:
            total += int(fields[11]) + int(fields[12])
    return total / CpuMeter.TICK


# --------------------------------------------------------------------------------------------- emulators


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 120.0, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Emulator(Proc):
    """One of clobus_consult.emulators.{chatwoot,onec} on a free port."""

    def __init__(self, kind: str, tmp: Path, env: dict[str, str]):
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        if kind == "chatwoot":
            self.token = "tok-" + secrets.token_hex(8)
            args = ["--token", self.token, "--account", "1", "--inbox", "1"]
        else:
            self.user, self.password = "bench", "pw-" + secrets.token_hex(6)
            args = ["--user", self.user, "--password", self.password]
        cmd = [sys.executable, "-m", f"clobus_consult.emulators.{kind}", "--port", str(self.port), *args]
        super().__init__(kind, cmd, env, tmp / f"{kind}-emulator.log")

    def wait_ready(self, timeout: float = 20.0) -> Emulator:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SetupError(f"{self.kind} emulator exited {self.proc.returncode}\n{self.log_tail()}")
            try:
                self.stats()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise SetupError(f"{self.kind} emulator not ready after {timeout:.0f}s\n{self.log_tail()}")

    def stats(self) -> dict:
        return http_json("GET", self.base + "/__emulator__/stats", timeout=10)

    def state(self) -> dict:
        return http_json("GET", self.base + "/__emulator__/state", timeout=300)

    def reset(self) -> None:
        http_json("POST", self.base + "/__emulator__/reset", {}, timeout=30)

    def faults(self, mode: str, **kw) -> dict:
        return http_json("POST", self.base + "/__emulator__/faults", {"mode": mode, **kw}, timeout=10)

    def service_env(self) -> dict[str, str]:
        """The CLOBUS_* settings that point the service at this emulator."""
        if self.kind == "chatwoot":
            return {"CLOBUS_CHATWOOT_URL": self.base, "CLOBUS_CHATWOOT_API_TOKEN": self.token,
                    "CLOBUS_CHATWOOT_ACCOUNT_ID": "1", "CLOBUS_CHATWOOT_INBOX_ID": "1"}
        return {"CLOBUS_ONEC_URL": f"{self.base}/cl/odata/standard.odata/", "CLOBUS_ONEC_USER": self.user,
                "CLOBUS_ONEC_PASSWORD": self.password}


def start_emulators(tmp: Path, env: dict[str, str]) -> tuple[Emulator, Emulator]:
    cw, oc = Emulator("chatwoot", tmp, env), Emulator("onec", tmp, env)
    cw.start()
    oc.start()
    return cw.wait_ready(), oc.wait_ready()


# --------------------------------------------------------------------------------------------- environment


def base_env() -> dict[str, str]:
    """This process's environment without any service/gunicorn settings that could leak into a run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOBUS_", "CHATWOOT_", "ONEC_", "GUNICORN_", "PROMETHEUS_MULTIPROC"))}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "GUNICORN_ACCESSLOG": "/dev/null"})
    return env


def service_env(tmp: Path, name: str, token: str, **extra: str) -> dict[str, str]:
    """Production settings for a benchmark server: static auth, no rate limits (they would 429 wrk)."""
    return {**base_env(), "CLOBUS_INSTANCE": str(tmp / f"{name}-instance"), "CLOBUS_AUTH_MODE": "static",
            "CLOBUS_API_TOKENS": token, "CLOBUS_RATELIMIT_ENABLED": "false", **extra}


def gunicorn_conf_workers() -> int:
    """What gunicorn.conf.py picks when GUNICORN_WORKERS is unset."""
    import multiprocessing

    return min(multiprocessing.cpu_count() * 2, 8)


# --------------------------------------------------------------------------------------------- PostgreSQL

PG_HOST, PG_PORT, PG_USER = os.environ.get("PGHOST", "127.0.0.1"), int(os.environ.get("PGPORT", 5432)), "postgres"


def _pg_admin():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3)
    conn.autocommit = True
    return conn


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        _pg_admin().close()
        return None
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def pg_create(prefix: str = "clobus_bench") -> str:
    """Create a scratch database (dropped at exit); returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = _pg_admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    on_cleanup(lambda: pg_drop(name))
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def pg_drop(name: str) -> None:
    conn = _pg_admin()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# --------------------------------------------------------------------------------------------- load


def wait_quiet(max_load: float, max_wait: float, label: str = "") -> str:
    """Before a script starts: wait (up to max_wait s) for the 1-min load average to fall under max_load."""
    deadline = time.monotonic() + max_wait
    first = True
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        if first:
            print(f"  {label}load {loadavg()} ≥ {max_load}: waiting up to {max_wait:.0f} s for a quieter machine",
                  flush=True)
            first = False
        time.sleep(5)
    return loadavg()


def wait_idle(max_busy: float, max_wait: float, label: str = "") -> str:
    """Between runs, while our own servers sit idle: wait (up to max_wait s) until the whole machine keeps
    fewer than max_busy cores busy. The load average is no use here: our previous run still inflates it for
    a minute or more. Returns "busy X cores, load a b c" for the record."""
    deadline = time.monotonic() + max_wait
    busy = busy_cores(1.0)
    if busy >= max_busy and max_wait > 0:
        print(f"  {label}{busy:.2f} cores busy elsewhere: waiting up to {max_wait:.0f} s", flush=True)
        while busy >= max_busy and time.monotonic() < deadline:
            busy = busy_cores(2.0)
    return f"busy {busy:.2f} cores, load {loadavg()}"


def busy_cores(seconds: float = 2.0) -> float:
    """Cores kept busy on the whole machine over a short sample (/proc/stat): 'is someone else running?'."""
    def sample():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
        return sum(vals) - vals[3] - vals[4]

    b0, t0 = sample(), time.monotonic()
    time.sleep(seconds)
    return (sample() - b0) / CpuMeter.TICK / (time.monotonic() - t0)


# --------------------------------------------------------------------------------------------- output


def md_table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A markdown table; ``align`` is one char per column ('l' or 'r'), default: first left, rest right."""
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median_result(rs: list[Result]) -> Result:
    return http_bench.median_run(rs)


def settled(rs: list[Result], max_other: float) -> tuple[Result, int]:
    """The median of the rounds that ran undisturbed (other CPU < max_other cores), or of all rounds when none
    did; requests and errors summed over all rounds. Returns (result, number of undisturbed rounds)."""
    clean = [r for r in rs if r.other_cpu is not None and r.other_cpu < max_other]
    mid = http_bench.median_run(clean or rs)
    return Result(mid.endpoint, mid.rps, mid.p50_ms, mid.p99_ms, sum(r.requests for r in rs),
                  sum(r.non2xx for r in rs), sum(r.socket_errors for r in rs), mid.other_cpu), len(clean)
