#!/usr/bin/env python3
"""Outgrow one machine: intake throughput per worker count and engine, reads on 1,000,000 consultations.

What it measures
----------------
Every server is the service under gunicorn exactly as in production (``gunicorn -c gunicorn.conf.py
wsgi:app``, see bench/http_bench.py), static bearer auth, rate limits and scheduler off, no upstreams
configured (sync disabled), driven by wrk over loopback on the same machine.

**A. Intake.** ``POST /api/consultations/create`` (unique comment and a new client per request) with
``GUNICORN_WORKERS`` = 1, 2, 4 and ``GUNICORN_THREADS`` = 4, on SQLite (a fresh file) and on PostgreSQL (a
fresh database per configuration on 127.0.0.1:5432, user postgres, dropped at the end). ``--rounds`` repeats
the six configurations interleaved (default 3 rounds of 4 s) and keeps each one's median round among the
undisturbed ones (other CPU < ``--max-other``).

**B. Reads, empty vs 1,000,000 consultations.** ``scripts/generate_data.py`` fills a SQLite database with 10
consultations ("empty") and with 1,000,000 (~5 per client; its own wall time is reported). On PostgreSQL the
generator manages ~1,500 rows/s here (11 min for 1M), so by default the big PostgreSQL database gets the very
rows of the big SQLite one through COPY (``--pg-big generator`` uses the generator instead, ``skip`` leaves
PostgreSQL at "empty" only). Then, with the conf-default workers and threads:

* ``GET /api/tickets/<id>`` of one random existing consultation;
* ``GET /api/tickets/clients/<client_id>/tickets?skip=0&limit=100`` of that consultation's client (5 tickets);
* with ``--random-ids``, also ``GET /api/tickets/<id>`` cycling 1,000 random consultations (informational:
  not one hot row).

The empty and the big server of an engine run side by side and the measurements alternate between them,
``--read-rounds`` times, median of the undisturbed rounds kept. Reported: requests/s, p50, p99, and
1M/empty ratios (p99 ratio and requests/s drop), target within 2×.

Noise: the machine is shared. At start the script waits (up to ``--wait-load`` s) for a 1-min load average
under 1.5; before each measurement (our servers idle) it waits up to ``--wait-idle`` s for the machine to
keep fewer than ``--max-busy`` cores busy, and each row records "other CPU": cores busy with anything but
our servers, wrk and PostgreSQL during that run.

How to run
----------
::

    . .venv/bin/activate
    python bench/scale_bench.py [--quick] [--duration 8] [--rounds 2] [--only intake|reads] [--big 1000000]

Default run ≈ 9 minutes (most of it generating 1M rows). ``--quick``: 3 s runs, one round, 100,000
consultations for "big" (≈ 2 minutes). Results also go to
``bench/results/scale_bench.md``. Exit status 0 when every read ratio is within 2× and no request failed,
1 otherwise, 2 on a setup error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402

RESULTS = bl.RESULTS / "scale_bench.md"
TARGET_READ_RATIO = 2.0
FOOTNOTE = ("¹ cores kept busy by anything but our gunicorn(s), wrk and (PostgreSQL rows) the PostgreSQL server "
            "during the measured run, i.e. other work on this shared 2-core machine. ² rounds with other CPU "
            "under {max_other} cores; the row shows the median of those (of all rounds if none was).")
LUA_RANDOM_TICKETS = r"""
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
local ids = {%(ids)s}
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request() return wrk.format(nil, "/api/tickets/" .. ids[math.random(#ids)]) end
"""


class Meter(bl.CpuMeter):
    """http_bench's CpuMeter, plus (for PostgreSQL runs) every PostgreSQL server process as "ours": each
    backend is its own process group, and the ones serving our gunicorn workers appear during the run."""

    def __init__(self, pgids: set[int], postgres: bool):
        super().__init__(pgids)
        self.postgres = postgres

    def _ours(self) -> float:
        ticks = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            fields = text.rpartition(")")[2].split()
            if int(fields[2]) in self.pgids or (self.postgres and text[text.index("(") + 1:text.rindex(")")]
                                                 in ("postgres", "postmaster")):
                ticks += int(fields[11]) + int(fields[12])
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ticks + (ru.ru_utime + ru.ru_stime) * self.TICK


def measure(name: str, url: str, script: Path, args, pgids: set[int], postgres: bool,
            duration: float | None = None) -> bl.Result:
    wrk = {"threads": args.threads, "connections": args.connections}
    if args.warmup > 0:
        bl.run_wrk(url, script, duration=args.warmup, **wrk)
    with Meter(pgids, postgres) as meter:
        r = bl.parse_wrk(name, bl.run_wrk(url, script, duration=duration or args.duration, **wrk))
    r.other_cpu = meter.other_cores
    print(f"    {name:38s} {r.rps:8,.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  errors {r.errors}"
          f"  other CPU {bl.http_bench.fmt_cores(r.other_cpu)}  load {bl.loadavg()}", flush=True)
    return r


def log_problems(server: bl.Server) -> dict[str, int]:
    text = server.log_tail(1_000_000)
    found: dict[str, int] = {}
    for m in re.finditer(r"database is locked|Traceback|too many clients|could not connect|WORKER TIMEOUT", text):
        found[m.group(0)] = found.get(m.group(0), 0) + 1
    return found


# --------------------------------------------------------------------------------------------- A. intake


def intake(args, tmp: Path, token: str) -> tuple[str, bool]:
    engines = ["sqlite"] + (["postgresql"] if args.pg else [])
    configs = [(engine, w) for engine in engines for w in args.workers]
    runs: dict[tuple[str, int], list[bl.Result]] = {c: [] for c in configs}
    problems: dict[tuple[str, int], dict] = {}
    for round_no in range(args.rounds):
        print(f"A. intake, round {round_no + 1}/{args.rounds}", flush=True)
        for engine, w in configs:
            load = bl.wait_idle(args.max_busy, args.wait_idle, f"{engine} W={w}: ")
            name = f"intake-{engine}-{w}-{round_no}"
            extra = {"CLOBUS_SCHEDULER_ENABLED": "false", "GUNICORN_WORKERS": str(w), "GUNICORN_THREADS": "4"}
            if engine == "postgresql":
                extra["CLOBUS_DATABASE_URL"] = bl.pg_create("clobus_scale")
            server = bl.start_server(bl.Server(name, ["wsgi:app"], bl.service_env(tmp, name, token, **extra), tmp))
            try:
                print(f"  {engine} workers={w} ({load})", flush=True)
                r = measure(f"create {engine} W={w}", server.base + "/api/consultations/create",
                            bl.lua_create(tmp, token), args, {server.proc.pid}, engine == "postgresql")
                runs[(engine, w)].append(r)
            finally:
                server.stop()
                found = log_problems(server)
                if found:
                    problems[(engine, w)] = found
                if engine == "postgresql":
                    bl.pg_drop(extra["CLOBUS_DATABASE_URL"].rsplit("/", 1)[1])
    rows = []
    for (engine, w), rs in runs.items():
        r, clean = bl.settled(rs, args.max_other)
        base, _ = bl.settled(runs[(engine, args.workers[0])], args.max_other)
        rows.append([engine, f"{w}", "4", f"{r.rps:,.0f}", f"{r.rps / base.rps:.2f}", f"{r.p50_ms:.1f}",
                     f"{r.p99_ms:.1f}", f"{r.requests:,}", f"{r.errors}", bl.http_bench.fmt_cores(r.other_cpu),
                     f"{clean}/{len(rs)}",
                     " / ".join(f"{x.rps:,.0f} ({bl.http_bench.fmt_cores(x.other_cpu)})" for x in rs)])
    table = bl.md_table(["engine", "workers", "threads", "requests/s", f"× vs {args.workers[0]} worker",
                         "p50 ms", "p99 ms", "requests", "errors", "other CPU (cores)¹", "undisturbed rounds²",
                         "req/s per round (other CPU)"], rows)
    notes = [f"- **{engine} W={w} server log: {found}**" for (engine, w), found in problems.items()]
    if not args.pg:
        notes.append(f"- PostgreSQL skipped: {args.pg_why}")
    ok = all(bl.settled(rs, args.max_other)[0].errors == 0 for rs in runs.values()) and not problems
    text = "\n".join([
        "## A. Intake: POST /api/consultations/create (sync disabled)", "",
        f"wrk {args.threads} threads, {args.connections} connections, {args.duration:g} s (+{args.warmup:g} s "
        f"warm-up) per run, {args.rounds} round(s) interleaved, median (undisturbed) round shown. Fresh database per "
        "configuration; every request a new client and a unique comment. 2 CPUs shared by wrk, gunicorn and "
        "PostgreSQL.", "", table, "", FOOTNOTE.format(max_other=args.max_other), "", *notes, ""])
    return text, ok


# --------------------------------------------------------------------------------------------- B. reads


def generate(url: str, n: int) -> tuple[float, str]:
    """scripts/generate_data.py; returns (wall seconds, its own summary line)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "scripts/generate_data.py", "--consultations", str(n),
                           "--database-url", url], cwd=bl.ROOT, env=bl.base_env(), capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise bl.SetupError(f"generate_data.py failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                            f"{proc.stderr[-3000:]}")
    summary = next((line.strip() for line in reversed(proc.stdout.splitlines()) if line.startswith("done")), "")
    return took, summary


def pick_sqlite(path: Path, rng: random.Random, k: int = 1000) -> dict:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        top = conn.execute("SELECT MAX(rowid) FROM consultation").fetchone()[0]
        ids = []
        while len(ids) < min(k, top):
            row = conn.execute("SELECT id FROM consultation WHERE rowid = ?", (rng.randint(1, top),)).fetchone()
            if row:
                ids.append(row[0])
        one = ids[0]
        client = conn.execute("SELECT client_id FROM consultation WHERE id = ?", (one,)).fetchone()[0]
        tickets = conn.execute("SELECT COUNT(*) FROM consultation WHERE client_id = ?", (client,)).fetchone()[0]
        total = conn.execute("SELECT COUNT(*) FROM consultation").fetchone()[0]
    finally:
        conn.close()
    return {"id": one, "ids": ids, "client": client, "tickets": tickets, "total": total}


def pick_pg(url: str, rng: random.Random, k: int = 1000) -> dict:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM consultation")
        total = cur.fetchone()[0]
        # A random sample without a full sort: ids are random UUIDs, so "the first k ≥ a random UUID" is random.
        cur.execute("SELECT id FROM consultation WHERE id >= %s ORDER BY id LIMIT %s",
                    (f"{rng.getrandbits(128):032x}"[:8] + "-0000-0000-0000-000000000000", k))
        ids = [r[0] for r in cur.fetchall()]
        if len(ids) < min(k, total):
            cur.execute("SELECT id FROM consultation ORDER BY id LIMIT %s", (k,))
            ids = [r[0] for r in cur.fetchall()]
        rng.shuffle(ids)
        one = ids[0]
        cur.execute("SELECT client_id FROM consultation WHERE id = %s", (one,))
        client = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM consultation WHERE client_id = %s", (client,))
        tickets = cur.fetchone()[0]
    finally:
        conn.close()
    return {"id": one, "ids": ids, "client": client, "tickets": tickets, "total": total}


def _copy_value(v) -> str:
    if v is None:
        return r"\N"
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


TABLES = ("client", "consultation", "sync_task")


def copy_sqlite_to_pg(sqlite_path: Path, url: str, batch: int = 100_000) -> float:
    """The rows of the generated SQLite database into a migrated, empty PostgreSQL one; returns seconds.

    Bulk-load order: drop the foreign keys, the indexes and the primary keys, COPY, then build them again
    from their own definitions (so the schema ends up exactly as the migrations made it) and ANALYZE.
    """
    import psycopg2

    started = time.perf_counter()
    src = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype, conindid "
                        "FROM pg_constraint WHERE (conrelid::regclass::text = ANY(%s) AND contype IN ('p', 'u', 'f')) "
                        "OR (contype = 'f' AND confrelid::regclass::text = ANY(%s))", (list(TABLES), list(TABLES)))
            constraints = cur.fetchall()
            backing = [c[4] for c in constraints if c[4]]
            cur.execute("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT (i.indexrelid = ANY(%s::oid[]))",
                        (list(TABLES), backing))
            indexes = cur.fetchall()
            for table, name, _, _, _ in sorted(constraints, key=lambda c: c[3] != "f"):  # FKs first
                cur.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cur.execute(f"DROP INDEX {name}")
            for table in TABLES:
                q = src.execute(f'SELECT * FROM "{table}"')
                cols = ", ".join(f'"{d[0]}"' for d in q.description)
                while rows := q.fetchmany(batch):
                    buf = io.StringIO("".join("\t".join(map(_copy_value, r)) + "\n" for r in rows))
                    cur.copy_expert(f'COPY "{table}" ({cols}) FROM STDIN', buf)
            cur.execute("SET maintenance_work_mem = '256MB'")
            for table, name, definition, kind, _ in sorted(constraints, key=lambda c: c[3] == "f"):  # FKs last
                if kind != "f":
                    cur.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
            for _, definition in indexes:
                cur.execute(definition)
            for table, name, definition, kind, _ in constraints:
                if kind == "f":
                    cur.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    finally:
        conn.close()
        src.close()
    return time.perf_counter() - started


def pg_vacuum(url: str) -> float:
    """VACUUM (ANALYZE) after a bulk load: otherwise autovacuum processes the fresh tables in the middle of the
    measurements (its CPU and I/O halved some PostgreSQL rows in trial runs) and index-only scans still visit
    the heap. A database that has been live for a while is in this state anyway."""
    import psycopg2

    started = time.perf_counter()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def reads(args, tmp: Path, token: str) -> tuple[str, bool]:
    rng = random.Random(args.seed)
    datasets = []  # (engine, label, url, gen seconds, gen summary)
    print("B. generating data...", flush=True)
    empty_sqlite, big_sqlite = tmp / "empty.sqlite3", tmp / "big.sqlite3"
    took, summary = generate(f"sqlite:///{empty_sqlite}", 10)
    datasets.append(("sqlite", "empty", f"sqlite:///{empty_sqlite}", took, summary))
    print(f"  sqlite empty: {took:.1f} s  {summary}", flush=True)
    took, summary = generate(f"sqlite:///{big_sqlite}", args.big)
    datasets.append(("sqlite", "big", f"sqlite:///{big_sqlite}", took, summary))
    print(f"  sqlite {args.big:,}: {took:.1f} s  {summary}  ({args.big / took:,.0f} consultations/s)", flush=True)
    if args.pg:
        url = bl.pg_create("clobus_reads_empty")
        took, summary = generate(url, 10)
        pg_vacuum(url)
        datasets.append(("postgresql", "empty", url, took, summary))
        if args.pg_big != "skip":
            url = bl.pg_create("clobus_reads_big")
            if args.pg_big == "generator":
                took, summary = generate(url, args.big)
            else:
                t0 = time.perf_counter()
                _, _ = generate(url, 0)  # schema only
                copy = copy_sqlite_to_pg(big_sqlite, url)
                took, summary = time.perf_counter() - t0, f"COPY of the SQLite rows: {copy:.0f} s"
            vacuum = pg_vacuum(url)
            summary += f"; then VACUUM (ANALYZE) {vacuum:.0f} s"
            datasets.append(("postgresql", "big", url, took, summary))
            print(f"  postgresql {args.big:,}: {took:.1f} s  {summary}", flush=True)

    # Per engine, the empty and the big server run side by side (an idle gunicorn costs nothing) and the runs
    # alternate between them, round after round: a burst of load from elsewhere hits both alike.
    runs: dict[tuple[str, str, str], list[bl.Result]] = {}
    picks = {}
    problems = {}
    for engine in dict.fromkeys(d[0] for d in datasets):
        servers = {}
        try:
            plans = {}
            for eng, label, url, _, _ in datasets:
                if eng != engine:
                    continue
                pick = pick_sqlite(Path(url[len("sqlite:///"):]), rng) if engine == "sqlite" else pick_pg(url, rng)
                picks[(engine, label)] = pick
                name = f"reads-{engine}-{label}"
                env = bl.service_env(tmp, name, token, CLOBUS_SCHEDULER_ENABLED="false", CLOBUS_DATABASE_URL=url)
                server = servers[label] = bl.start_server(bl.Server(name, ["wsgi:app"], env, tmp))
                ids = ", ".join(f'"{i}"' for i in pick["ids"])
                random_lua = tmp / f"random-{engine}-{label}.lua"
                random_lua.write_text(LUA_RANDOM_TICKETS % {"token": token, "ids": ids})
                plans[label] = [
                    ("ticket", f"{server.base}/api/tickets/{pick['id']}", bl.lua_get(tmp, token)),
                    ("client tickets",
                     f"{server.base}/api/tickets/clients/{pick['client']}/tickets?skip=0&limit=100",
                     bl.lua_get(tmp, token)),
                ]
                if args.random_ids:
                    plans[label].insert(1, ("ticket, 1,000 random ids", server.base + "/", random_lua))
            pgids = {s.proc.pid for s in servers.values()}
            for round_no in range(args.read_rounds):
                load = bl.wait_idle(args.max_busy, args.wait_idle, f"{engine} reads: ")
                print(f"  {engine} reads, round {round_no + 1}/{args.read_rounds} ({load})", flush=True)
                for i, endpoint in enumerate(p[0] for p in plans["empty"]):
                    for label in plans:
                        _, url_, script = plans[label][i]
                        r = measure(f"{endpoint} {engine} {label}", url_, script, args, pgids,
                                    engine == "postgresql", duration=args.read_duration)
                        runs.setdefault((engine, label, endpoint), []).append(r)
        finally:
            for label, server in servers.items():
                server.stop()
                found = log_problems(server)
                if found:
                    problems[(engine, label)] = found
    results = {key: bl.settled(rs, args.max_other) for key, rs in runs.items()}

    rows, ok = [], True
    for (engine, label, endpoint), (r, clean) in results.items():
        ratio = ""
        if label == "big" and (engine, "empty", endpoint) in results:
            e = results[(engine, "empty", endpoint)][0]
            p99, rps = r.p99_ms / e.p99_ms, e.rps / r.rps
            within = p99 <= TARGET_READ_RATIO and rps <= TARGET_READ_RATIO
            if endpoint != "ticket, 1,000 random ids":
                ok &= within
            ratio = f"p99 ×{p99:.2f}, req/s ÷{rps:.2f} {'PASS' if within else 'MISS'}"
        ok &= r.errors == 0
        rows.append([engine, f"{picks[(engine, label)]['total']:,}", endpoint, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}",
                     f"{r.p99_ms:.2f}", f"{r.errors}", bl.http_bench.fmt_cores(r.other_cpu),
                     f"{clean}/{args.read_rounds}", ratio])
    table = bl.md_table(["engine", "consultations", "endpoint", "requests/s", "p50 ms", "p99 ms", "errors",
                         "other CPU (cores)¹", "undisturbed rounds²", f"{args.big:,} vs 10 (target ≤ 2×)"], rows,
                        "lrlrrrrrrl")
    gen_rows = [[engine, label, f"{took:.1f}", summary] for engine, label, _, took, summary in datasets]
    gen = bl.md_table(["engine", "dataset", "wall s", "generator's own summary"], gen_rows, "llrl")
    pick_lines = [f"- {engine} {label}: ticket {p['id']}, client {p['client']} ({p['tickets']} tickets)"
                  for (engine, label), p in picks.items()]
    notes = [f"- **{engine} {label} server log: {found}**" for (engine, label), found in problems.items()]
    if not args.pg:
        notes.append(f"- PostgreSQL skipped: {args.pg_why}")
    workers = bl.gunicorn_conf_workers()
    text = "\n".join([
        f"## B. Reads: empty (10) vs {args.big:,} consultations", "",
        f"gunicorn conf defaults (workers={workers}, threads=4); wrk {args.threads} threads, {args.connections} "
        f"connections, {args.read_duration:g} s (+{args.warmup:g} s warm-up) per endpoint, {args.read_rounds} "
        "round(s) alternating empty and big, median (undisturbed) round shown. Ratios: p99 big/empty and "
        "requests/s empty/big (the random-ids row, if any, is informational).", "",
        table, "", FOOTNOTE.format(max_other=args.max_other), "",
        "Data generation (scripts/generate_data.py unless said otherwise):", "", gen, "",
        "Picked:", "", *pick_lines, "", *notes, ""])
    return text, ok


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s runs, 1 round, 100,000 consultations for 'big'")
    ap.add_argument("--only", choices=("intake", "reads"))
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per intake wrk run (default 4)")
    ap.add_argument("--read-duration", type=float, default=4.0, help="seconds per read wrk run (default 4)")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each run (default 1)")
    ap.add_argument("--rounds", type=int, default=3, help="intake rounds, interleaved (default 3)")
    ap.add_argument("--read-rounds", type=int, default=3, help="read rounds, interleaved (default 3)")
    ap.add_argument("--connections", "-c", type=int, default=16)
    ap.add_argument("--threads", "-t", type=int, default=2)
    ap.add_argument("--workers", default="1,2,4", help="GUNICORN_WORKERS values for intake (default 1,2,4)")
    ap.add_argument("--big", type=int, default=1_000_000, help="consultations in the big dataset")
    ap.add_argument("--pg-big", choices=("copy", "generator", "skip"), default="copy",
                    help="how the big PostgreSQL dataset is made (default: COPY the SQLite rows)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--seed", type=int, default=7070)
    ap.add_argument("--max-load", type=float, default=1.5, help="at start, wait for a 1-min load below this")
    ap.add_argument("--wait-load", type=float, default=60.0, help="…but at most this many seconds (default 60)")
    ap.add_argument("--max-busy", type=float, default=0.6,
                    help="before each measurement, wait until fewer cores than this are busy elsewhere")
    ap.add_argument("--wait-idle", type=float, default=10.0, help="…but at most this many seconds (default 10)")
    ap.add_argument("--max-other", type=float, default=0.3,
                    help="a round counts as undisturbed when other work kept fewer cores busy (default 0.3)")
    ap.add_argument("--random-ids", action="store_true",
                    help="also GET /api/tickets/<id> cycling 1,000 random consultations (informational)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.read_duration, args.warmup, args.rounds, args.read_rounds, args.big = (
            3.0, 3.0, 1.0, 1, 1, 100_000)
        args.wait_load = min(args.wait_load, 10.0)
    args.workers = [int(w) for w in args.workers.split(",")]
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    args.pg_why = "--no-pg" if args.no_pg else bl.pg_available()
    args.pg = args.pg_why is None

    bl.install_signal_handlers()
    tmp = Path(tempfile.mkdtemp(prefix="clobus-scale-bench-"))
    bl.on_cleanup((lambda: print(f"kept {tmp}")) if args.keep else (lambda: shutil.rmtree(tmp, ignore_errors=True)))
    token = secrets.token_urlsafe(24)
    meta = [f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- commit: {bl.git_rev()}", f"- machine: {os.cpu_count()} CPUs, everything on one host over loopback",
            f"- load average (1/5/15) at start: {bl.loadavg()}"]
    started = time.monotonic()
    sections, ok = [], True
    try:
        meta[-1] = f"- load average (1/5/15) at start: {bl.wait_quiet(args.max_load, args.wait_load)}"
        print(meta[-1], flush=True)
        if args.only != "reads":
            text, good = intake(args, tmp, token)
            sections.append(text)
            ok &= good
        if args.only != "intake":
            text, good = reads(args, tmp, token)
            sections.append(text)
            ok &= good
        meta.append(f"- load average at the end: {bl.loadavg()}; total run {time.monotonic() - started:.0f} s")
        text = "\n".join(["# Scale benchmark: workers, engines, 1M consultations", "", *meta, "", *sections])
        print()
        print(text)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"written to {args.output}")
        return 0 if ok else 1
    except bl.SetupError as err:
        print(f"setup error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"interrupted ({err or 'Ctrl-C'}); cleaning up", file=sys.stderr)
        return 130
    finally:
        bl.cleanup()


if __name__ == "__main__":
    sys.exit(main())
