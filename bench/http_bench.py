#!/usr/bin/env python3
"""HTTP throughput of clobus-consult against a bare Flask + sqlite3 app, both under gunicorn.

What it measures
----------------
In one run it starts two servers with the service's own ``gunicorn.conf.py`` (same workers, threads,
worker class, keep-alive, log settings):

* the real service, ``gunicorn -c gunicorn.conf.py wsgi:app``, on a fresh temporary instance folder,
  with static bearer auth, no scheduler, no rate limits and no upstreams configured (so no sync);
* ``bench/bare_app.py``: plain Flask with ``GET /hello`` (small JSON) and ``POST /insert`` (parse the
  JSON body, one SQLite insert in WAL mode).

It then drives these endpoints with ``wrk --latency`` (Debian package ``wrk``) one after another, each
after a short warm-up:

=================  ===============================================================================
service create     ``POST /api/consultations/create``; every request has a unique comment (and, by
                   default, a unique client e-mail) so the 24 h duplicate absorption never short-cuts
service ticket     ``GET /api/tickets/<consultation_id>`` of one consultation created beforehand
bare insert        ``POST /insert`` with the same bodies as "service create"
bare hello         ``GET /hello``
bare select        ``GET /item/<id>``, one SELECT by key (informational, no target; ``--no-select``
                   skips it)
=================  ===============================================================================

and prints requests/s, p50, p99 and errors (non-2xx answers plus socket errors) for each, with two
ratios and their targets:

* create / bare insert  ≥ 0.6
* ticket / bare hello   ≥ 0.7

The table also goes to ``bench/results/http_bench.md`` (git-ignored). wrk runs on the same machine as
the servers, so the numbers are for "this box, loopback". Other work on the machine skews them: each row
records "other CPU", the cores that anything but our servers and wrk kept busy during that row's run
(from /proc), and the load average before and after is noted too. Both apps run with the access log
sent to /dev/null (production logs to stdout), so neither pays for log I/O.

How to run
----------
::

    . .venv/bin/activate
    apt-get install -y wrk          # once
    python bench/http_bench.py [--quick] [--duration 10] [--connections 16] [--threads 2]

``--quick`` runs 3 s per endpoint. ``--rounds N`` repeats the whole sequence and keeps each endpoint's
median round, which steadies the ratios on a busy machine (run-to-run spread of ±20 % is normal here).
``--clients K`` cycles K client e-mails in the create bodies instead of a new client per request (0, the
default, means a new client every request).
``GUNICORN_WORKERS`` / ``GUNICORN_THREADS`` in the environment are passed to both servers.
Exit status: 0 when both targets are met and no request failed, 1 otherwise, 2 on a setup error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results" / "http_bench.md"

TARGET_CREATE = 0.6
TARGET_TICKET = 0.7

# wrk's Lua: each wrk thread has its own Lua state; setup() numbers the threads so that
# "<run nonce>-<thread>-<counter>" is unique across the whole run.
LUA_POST = r"""
local thread_no = 0
function setup(thread)
  thread:set("tid", thread_no)
  thread_no = thread_no + 1
end

local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s

function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
end

function request()
  counter = counter + 1
  local n = counter
  local clients = %(clients)d
  local who
  if clients > 0 then who = tostring(n %% clients) else who = "%(nonce)s-" .. (tid or 0) .. "-" .. n end
  local body = '{"client": {"email": "bench' .. who .. '@example.com", "phone_number": "+998901234567"}, '
    .. '"consultation": {"comment": "Bench question %(nonce)s-' .. (tid or 0) .. '-' .. n .. '-'
    .. math.random(1, 1000000000) .. '", "lang": "ru"}, "source": "SITE"}'
  return wrk.format(nil, nil, nil, body)
end
"""

LUA_GET = r"""
wrk.method = "GET"
%(auth)s
"""


class SetupError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_has_control_socket() -> bool:
    try:
        from importlib.metadata import version

        return int(version("gunicorn").split(".")[0]) >= 27
    except Exception:
        return False


class Server:
    """One gunicorn, in its own process group so that stopping it takes every worker with it."""

    def __init__(self, name: str, app_spec: list[str], env: dict[str, str], logdir: Path):
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        # gunicorn ≥ 27 opens a control socket, by default one shared path per user: give each server its
        # own so the two (and any other gunicorn on the host) do not clash. It has no effect on serving.
        ctl = ["--control-socket", str(logdir / f"{name}.ctl")] if gunicorn_has_control_socket() else []
        self.cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *ctl, *app_spec]
        self.log_path = logdir / f"{name}.gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SetupError(f"{self.name}: gunicorn exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + path, timeout=2) as r:
                    if r.status == 200:
                        return
                    last = r.status
            except (urllib.error.URLError, OSError) as err:
                last = err
            time.sleep(0.2)
        raise SetupError(f"{self.name}: {path} not 200 after {timeout:.0f}s (last: {last})\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self._log.close()
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # gunicorn: graceful shutdown of master and workers
            self.proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            self._log.close()


# --------------------------------------------------------------------------------------------- wrk


@dataclass
class Result:
    endpoint: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    other_cpu: float | None = None  # cores busy with anything but the two servers and wrk during the run

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(endpoint: str, out: str) -> Result:
    def grab(pattern: str, default: str | None = None) -> str:
        m = re.search(pattern, out, re.M)
        if m:
            return m.group(1)
        if default is None:
            raise SetupError(f"wrk output for {endpoint} lacks {pattern!r}:\n{out}")
        return default

    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(
        endpoint=endpoint,
        rps=float(grab(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(grab(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(grab(r"^\s+99%\s+(\S+)")),
        requests=int(grab(r"^\s+(\d+) requests in")),
        non2xx=int(grab(r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
        socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
    )


def run_wrk(url: str, script: Path, *, threads: int, connections: int, duration: float,
            timeout: float = 10.0) -> str:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
           f"--timeout={timeout:g}s", "--latency", "-s", str(script), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30)
    if proc.returncode != 0:
        raise SetupError(f"wrk failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


class CpuMeter:
    """CPU used on the machine by anything other than our servers and wrk, during one wrk run (Linux /proc).

    The machine is shared; this says which rows were disturbed. Busy = all CPU time but idle and iowait,
    from /proc/stat; ours = the servers' process groups (/proc/<pid>/stat) plus wrk (our reaped children).
    """

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pgids: set[int]):
        self.pgids = pgids

    @staticmethod
    def _busy() -> int:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
        return sum(vals) - vals[3] - vals[4]

    def _ours(self) -> float:
        ticks = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) in self.pgids:
                ticks += int(fields[11]) + int(fields[12])
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ticks + (ru.ru_utime + ru.ru_stime) * self.TICK

    def __enter__(self):
        try:
            self.t0, self.busy0, self.ours0 = time.monotonic(), self._busy(), self._ours()
        except OSError:
            self.t0 = None
        self.other_cores = None
        return self

    def __exit__(self, *exc):
        if self.t0 is None or exc[0] is not None:
            return
        elapsed = time.monotonic() - self.t0
        other = (self._busy() - self.busy0) - (self._ours() - self.ours0)
        self.other_cores = max(0.0, other / self.TICK / elapsed)


# --------------------------------------------------------------------------------------------- helpers


def post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, {"raw": err.read().decode(errors="replace")}


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def median_run(rs: list[Result]) -> Result:
    """The run with the median requests/s (its own p50/p99), with the errors of every run added up."""
    mid = sorted(rs, key=lambda r: r.rps)[(len(rs) - 1) // 2]
    return Result(mid.endpoint, mid.rps, mid.p50_ms, mid.p99_ms, sum(r.requests for r in rs),
                  sum(r.non2xx for r in rs), sum(r.socket_errors for r in rs), mid.other_cpu)


def fmt_cores(cores: float | None) -> str:
    return "n/a" if cores is None else f"{cores:.2f}"


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "MISS"


def render(results: dict[str, Result], meta: dict[str, str]) -> tuple[str, bool]:
    rows = ["| endpoint | requests/s | p50 ms | p99 ms | requests | errors | other CPU (cores) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results.values():
        err = f"{r.errors}" + (f" (non-2xx {r.non2xx}, socket {r.socket_errors})" if r.errors else "")
        rows.append(f"| {r.endpoint} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.requests:,} | {err} "
                    f"| {fmt_cores(r.other_cpu)} |")
    c = results["service create"].rps / results["bare insert"].rps
    t = results["service ticket"].rps / results["bare hello"].rps
    ok = c >= TARGET_CREATE and t >= TARGET_TICKET and all(r.errors == 0 for r in results.values())
    ratios = [
        "| ratio | value | target | verdict |",
        "| --- | ---: | ---: | --- |",
        f"| create / bare insert | {c:.2f} | ≥ {TARGET_CREATE} | {verdict(c, TARGET_CREATE)} |",
        f"| ticket read / bare hello | {t:.2f} | ≥ {TARGET_TICKET} | {verdict(t, TARGET_TICKET)} |",
    ]
    if "bare select" in results:
        s = results["service ticket"].rps / results["bare select"].rps
        ratios.append(f"| ticket read / bare select (info) | {s:.2f} | – | – |")
    head = [f"- {k}: {v}" for k, v in meta.items()]
    text = "\n".join(["# HTTP benchmark: clobus-consult vs bare Flask", "", *head, "", *rows, "", *ratios, ""])
    return text, ok


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint (default 10)")
    ap.add_argument("--quick", action="store_true", help="3 s per endpoint, 1 s warm-up")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint (default 2)")
    ap.add_argument("--connections", "-c", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--threads", "-t", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the whole plan N times, report each endpoint's median round (default 1)")
    ap.add_argument("--clients", type=int, default=0,
                    help="distinct client e-mails cycled in create bodies; 0 = a new client per request")
    ap.add_argument("--no-select", action="store_true",
                    help="skip the informational 'bare select' run (GET /item/<id>, one SELECT by key)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases) for inspection")
    ap.add_argument("--output", type=Path, default=RESULTS, help=f"markdown output (default {RESULTS})")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0

    if shutil.which("wrk") is None:
        print("wrk not found: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="clobus-http-bench-"))
    token = secrets.token_urlsafe(24)
    nonce = secrets.token_hex(4)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("CLOBUS_", "CHATWOOT_", "ONEC_", "GUNICORN_BIND"))}
    base_env.update({
        "GUNICORN_ACCESSLOG": "/dev/null",  # production logs to stdout; off here for both apps alike
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    service_env = {
        **base_env,
        "CLOBUS_INSTANCE": str(tmp / "service-instance"),
        "CLOBUS_AUTH_MODE": "static",
        "CLOBUS_API_TOKENS": token,
        "CLOBUS_SCHEDULER_ENABLED": "false",
        "CLOBUS_RATELIMIT_ENABLED": "false",
    }
    # The conf's on_starting hook builds the service app once in the master even for the bare app:
    # give it a throw-away instance folder too, so nothing lands in the checkout's instance/.
    bare_db = tmp / "bare" / "bare.sqlite3"
    bare_env = {**base_env, "BARE_DB": str(bare_db), "CLOBUS_INSTANCE": str(tmp / "bare-instance"),
                "CLOBUS_SCHEDULER_ENABLED": "false", "CLOBUS_RATELIMIT_ENABLED": "false"}

    service = Server("service", ["wsgi:app"], service_env, tmp)
    bare = Server("bare", ["--pythonpath", "bench", "bare_app:app"], bare_env, tmp)
    servers = [service, bare]

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Ctrl-C raises KeyboardInterrupt already; make SIGTERM and SIGHUP do the same, so `finally` stops the servers.
    old_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        sys.path.insert(0, str(BENCH))
        import bare_app  # only for init_db: the schema exists before any worker starts

        bare_db.parent.mkdir(parents=True)
        bare_app.init_db(str(bare_db))

        for s in servers:
            s.start()
        service.wait_ready("/api/health")
        bare.wait_ready("/hello")

        status, body = post_json(service.base + "/api/consultations/create", {
            "client": {"email": "bench-ticket@example.com", "phone_number": "+998901234567"},
            "consultation": {"comment": f"Bench ticket {nonce}", "lang": "ru"}, "source": "SITE",
        }, token)
        if status != 200:
            raise SetupError(f"seed create answered {status}: {body}\n{service.log_tail()}")
        consultation_id = body["consultation"]["consultation_id"]
        status, body = post_json(bare.base + "/insert", {
            "client": {"email": "bench-item@example.com"}, "consultation": {"comment": "Bench item"}}, token)
        if status != 200:
            raise SetupError(f"bare seed insert answered {status}: {body}\n{bare.log_tail()}")
        item_id = body["id"]

        auth = f'wrk.headers["Authorization"] = "Bearer {token}"'

        def post_script() -> Path:
            """A POST script with a fresh nonce: every wrk run (warm-up included) sends never-seen bodies."""
            path = tmp / f"post-{secrets.token_hex(4)}.lua"
            path.write_text(LUA_POST % {"auth": auth, "nonce": secrets.token_hex(4), "clients": args.clients})
            return path

        get_auth = tmp / "get_auth.lua"
        get_auth.write_text(LUA_GET % {"auth": auth})
        get_plain = tmp / "get.lua"
        get_plain.write_text(LUA_GET % {"auth": ""})

        plan = [  # (name, url, script)
            ("service create", service.base + "/api/consultations/create", post_script),
            ("bare insert", bare.base + "/insert", post_script),  # same bodies as create
            ("service ticket", f"{service.base}/api/tickets/{consultation_id}", get_auth),
            ("bare hello", bare.base + "/hello", get_plain),
        ]
        if not args.no_select:
            plan.append(("bare select", f"{bare.base}/item/{item_id}", get_plain))
        load_before = loadavg()
        runs: dict[str, list[Result]] = {name: [] for name, _, _ in plan}
        wrk_opts = {"threads": args.threads, "connections": args.connections}
        for round_no in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"round {round_no}/{args.rounds}", flush=True)
            for name, url, script in plan:
                if args.warmup > 0:
                    run_wrk(url, script() if callable(script) else script, duration=args.warmup, **wrk_opts)
                with CpuMeter({s.proc.pid for s in servers}) as meter:
                    out = run_wrk(url, script() if callable(script) else script, duration=args.duration,
                                  **wrk_opts)
                r = parse_wrk(name, out)
                r.other_cpu = meter.other_cores
                runs[name].append(r)
                print(f"  {name:15s} {r.rps:9,.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                      f"errors {r.errors}  other CPU {fmt_cores(r.other_cpu)}", flush=True)
        load_after = loadavg()
        results = {name: median_run(rs) for name, rs in runs.items()}

        workers = os.environ.get("GUNICORN_WORKERS", "conf default (min(2*cpu, 8))")
        threads = os.environ.get("GUNICORN_THREADS", "conf default (4)")
        meta = {
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "commit": git_rev(),
            "machine": f"{os.cpu_count()} CPUs; wrk on the same host over loopback",
            "gunicorn": f"gunicorn.conf.py, gthread, workers={workers}, threads={threads}, access log /dev/null",
            "wrk": f"{args.threads} threads, {args.connections} connections, {args.duration:g} s "
                   f"(+{args.warmup:g} s warm-up) per endpoint",
            "rounds": f"{args.rounds} (median round per endpoint; requests and errors summed)"
                      if args.rounds > 1 else "1",
            "create bodies": ("a new client per request" if args.clients == 0
                              else f"{args.clients} distinct clients cycled") + ", unique comment per request",
            "load average (1/5/15 min) before → after": f"{load_before} → {load_after} (the servers and "
                                                         "wrk themselves raise it; see 'other CPU' per row)",
        }
        text, ok = render(results, meta)
        print()
        print(text)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"written to {args.output}")
        return 0 if ok else 1
    except SetupError as err:
        print(f"setup error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"interrupted ({err or 'Ctrl-C'}); stopping the servers", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as err:  # keep stopping the others
                print(f"stopping {s.name}: {err}", file=sys.stderr)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
