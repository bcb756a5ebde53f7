#!/usr/bin/env python3
"""Exactly-once sync benchmark: drain a backlog into Chatwoot and 1C, and intake latency with Chatwoot hanging.

What it measures
----------------
Both emulators run as subprocesses (``python -m clobus_consult.emulators.chatwoot`` / ``.onec``).

**A. Drain a backlog.** N pending consultations (default 5,000, each of its own client: a distinct e-mail, no
INN, because 1C accepts at most 3 calls per counterparty per day) are written once into a SQLite template
through the service layer (``create_consultation(..., targets={"chatwoot": True, "onec": True})``), then copied
for each variant. A variant runs ``flask --app clobus_consult sync run`` in 1 process, then in 2 processes at
once, against freshly reset emulators. The clock runs from starting the process(es) until every task is
``done`` in the database: N chatwoot, N onec and the N ``chatwoot_number`` follow-ups that the second upstream
to finish queues. Reported: consultations/s, upstream HTTP calls per consultation (the emulators'
``/__emulator__/stats`` ÷ N, per upstream and per route), CPU seconds of the sync process(es) and of each
emulator, and an exactly-once check:

* Chatwoot has exactly N conversations whose ``consultation_id`` custom attributes are distinct and are exactly
  the database's consultations, each conversation is the consultation's ``cons_id`` and carries its 1C
  ``number_con``;
* 1C has exactly N documents, their Ref_Keys are exactly the consultations' ``cl_ref_key``, numbers distinct;
* no task failed; the sync logs contain no "database is locked" and no traceback.

**B. Intake latency, Chatwoot healthy vs hanging.** The service under gunicorn exactly as in production
(``gunicorn -c gunicorn.conf.py wsgi:app``, conf-default workers and threads unless ``--workers``), configured
with both emulators, ``SYNC_INLINE_BUDGET_SECONDS`` at its default (5), the scheduler off (so only intake is
measured) and rate limits off. wrk drives ``POST /api/consultations/create`` with a unique comment and a
unique client per request. First with both emulators healthy; then Chatwoot is set to ``hang`` (delay 30 s,
longer than the client's 10 s read timeout) and W parallel sequential senders (W = workers) post until every
worker's circuit breaker is open (it opens after 3 consecutive transient failures, per process): the last
2·W answers all fast and ``GET /api/health`` (answered by random workers) shows the Chatwoot breaker open
every time. What those first requests cost is reported. Then wrk again, right away: the breaker re-closes
(half-open) 30 s after its last failure, and with the scheduler off nothing probes it, so the run must fit
in that window (``--duration`` ≤ 15 s; the table says whether the breakers were still open afterwards).
Target: hanging p99 ≤ 1.5 × healthy p99.

How to run
----------
::

    . .venv/bin/activate
    python bench/sync_bench.py [--quick] [--consultations 5000] [--duration 10] [--only drain|intake]

``--quick``: 500 consultations, 5 s wrk runs (≈ 1.5 minutes; the default run takes ≈ 8–9). ``--scheduler``
runs the intake part with the background scheduler on, as in production (background drains during the
outage). Noise: at start the script waits (up to ``--wait-load`` s) for a 1-min load average under 1.5, and
before each measurement for the machine to keep fewer than ``--max-busy`` cores busy elsewhere (up to
``--wait-idle`` s); wrk rows record "other CPU", the cores busy with anything but our processes.
Results also go to ``bench/results/sync_bench.md``.
Exit status 0 when exactly-once held, nothing failed and the latency target is met; 1 otherwise; 2 on a setup
error.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import datetime as dt
import json
import os
import re
import resource
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402

RESULTS = bl.RESULTS / "sync_bench.md"
TARGET_HANG_RATIO = 1.5
LOG_PROBLEMS = re.compile(r"database is locked|Traceback|crashed|internal error", re.I)


# --------------------------------------------------------------------------------------------- A. drain


def seed_template(path: Path, n: int, tmp: Path) -> float:
    """N pending consultations, each of its own client, through the service layer; returns seconds taken."""
    from clobus_consult import create_app
    from clobus_consult.db import db
    from clobus_consult.services.consultations import create_consultation

    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "SCHEDULER_ENABLED": False, "LOG_LEVEL": "WARNING",
                      "AUTH_MODE": "any", "RATELIMIT_ENABLED": False}, instance_path=str(tmp / "seed-instance"))
    nonce = secrets.token_hex(3)
    started = time.perf_counter()
    with app.app_context(), db.connection_context():
        for i in range(n):
            create_consultation({"email": f"backlog-{nonce}-{i}@example.com"},
                                {"comment": f"Backlog question {i}", "lang": "ru"}, "SITE",
                                targets={"chatwoot": True, "onec": True})
        took = time.perf_counter() - started
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.obj.close_all()
    return took


def task_counts(db_path: Path) -> dict[tuple[str, str], int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return {(t, s): n for t, s, n in conn.execute(
            "SELECT target, state, COUNT(*) FROM sync_task GROUP BY target, state")}
    finally:
        conn.close()


def all_done(counts: dict, n: int) -> bool:
    return all(counts.get((t, "done"), 0) == n for t in ("chatwoot", "onec", "chatwoot_number"))


def route_key(key: str) -> str:
    """Emulator stats keys are '<METHOD> <rule>'; shorten the 1C ones to their entity set."""
    method, _, rule = key.partition(" ")
    rule = re.sub(r"^/api/v1/accounts/<int:\w+>", "", rule).replace(
        "/<publication>/odata/standard.odata/<path:resource>", "<odata>")
    return f"{method} {rule}"


def verify(db_path: Path, cw: bl.Emulator, oc: bl.Emulator, n: int) -> list[str]:
    """The exactly-once checks; returns the violations (empty: all good)."""
    problems = []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT id, cons_id, cl_ref_key, number FROM consultation").fetchall()
        failed = conn.execute("SELECT target, last_error FROM sync_task WHERE state != 'done' LIMIT 5").fetchall()
    finally:
        conn.close()
    if len(rows) != n:
        problems.append(f"database has {len(rows)} consultations, expected {n}")
    if failed:
        problems.append(f"tasks not done, e.g. {failed}")
    by_id = {r[0]: r for r in rows}

    state = cw.state()
    convs = state["conversations"]
    attr_ids = [(c.get("custom_attributes") or {}).get("consultation_id") for c in convs]
    if len(convs) != n:
        problems.append(f"Chatwoot has {len(convs)} conversations, expected {n}")
    if len(set(attr_ids)) != len(attr_ids):
        dup = [k for k, v in collections.Counter(attr_ids).items() if v > 1][:3]
        problems.append(f"Chatwoot: {len(attr_ids) - len(set(attr_ids))} duplicate consultation_id, e.g. {dup}")
    if set(attr_ids) != set(by_id):
        problems.append(f"Chatwoot consultation_ids differ from the database's "
                        f"({len(set(attr_ids) - set(by_id))} unknown, {len(set(by_id) - set(attr_ids))} missing)")
    wrong_cons = wrong_number = 0
    for c in convs:
        attrs = c.get("custom_attributes") or {}
        row = by_id.get(attrs.get("consultation_id"))
        if row is None:
            continue
        wrong_cons += str(c["id"]) != row[1]
        wrong_number += attrs.get("number_con") != row[3]
    if wrong_cons:
        problems.append(f"{wrong_cons} conversations are not their consultation's cons_id")
    if wrong_number:
        problems.append(f"{wrong_number} conversations lack their consultation's number_con")
    if len(state["contacts"]) != n:
        problems.append(f"Chatwoot has {len(state['contacts'])} contacts for {n} distinct clients")

    docs = oc.state()
    calls = docs["Document_ТелефонныйЗвонок"]
    keys = [d["Ref_Key"] for d in calls]
    if len(calls) != n:
        problems.append(f"1C has {len(calls)} documents, expected {n}")
    if len(set(keys)) != len(keys) or set(keys) != {r[2] for r in rows}:
        problems.append("1C document Ref_Keys are not exactly the consultations' cl_ref_key")
    numbers = [d["Number"] for d in calls]
    if len(set(numbers)) != len(numbers):
        problems.append("1C document numbers repeat")
    counterparties = [c for c in docs["Catalog_Контрагенты"] if not c.get("IsFolder")]
    if len(counterparties) != n:
        problems.append(f"1C has {len(counterparties)} counterparties for {n} distinct clients")
    return problems


def drain_variant(processes: int, template: Path, tmp: Path, cw: bl.Emulator, oc: bl.Emulator, n: int,
                  timeout: float, machine: str) -> dict:
    cw.reset()
    oc.reset()
    db_path = tmp / f"drain-{processes}p.sqlite3"
    shutil.copy(template, db_path)
    env = {**bl.base_env(), "CLOBUS_INSTANCE": str(tmp / "drain-instance"),
           "CLOBUS_DATABASE_URL": f"sqlite:///{db_path}", "CLOBUS_SCHEDULER_ENABLED": "false",
           **cw.service_env(), **oc.service_env()}
    flask = str(Path(sys.executable).with_name("flask"))
    load = machine
    emu_cpu0 = {e.kind: bl.proc_cpu_seconds([e.pid]) for e in (cw, oc)}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    procs = [bl.Proc(f"sync-{processes}p-{i}", [flask, "--app", "clobus_consult", "sync", "run"], env,
                     tmp / f"sync-{processes}p-{i}.log").start() for i in range(processes)]
    exited: dict[int, float] = {}
    done_at = None
    counts: dict = {}
    progress: list[tuple[float, int]] = []  # (seconds, tasks done of every target)
    number_progress: list[tuple[float, int]] = []  # (seconds, chatwoot_number follow-ups done)
    while time.monotonic() - started < timeout:
        for i, p in enumerate(procs):
            if i not in exited and p.proc.poll() is not None:
                exited[i] = time.monotonic() - started
        counts = task_counts(db_path)
        progress.append((time.monotonic() - started, sum(k for (_, st), k in counts.items() if st == "done")))
        number_progress.append((time.monotonic() - started, counts.get(("chatwoot_number", "done"), 0)))
        if all_done(counts, n):
            done_at = time.monotonic() - started
            break
        if len(exited) == len(procs):
            counts = task_counts(db_path)
            if all_done(counts, n):
                done_at = time.monotonic() - started
            break
        time.sleep(0.2)
    for i, p in enumerate(procs):
        try:
            p.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except Exception:
            pass
        exited.setdefault(i, time.monotonic() - started)
    codes = [p.proc.returncode for p in procs]
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sync_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    emu_cpu = {e.kind: bl.proc_cpu_seconds([e.pid]) - emu_cpu0[e.kind] for e in (cw, oc)}
    logs = [p.log_path.read_text(errors="replace") for p in procs]
    for p in procs:
        p.stop()
    pushed = [m.group(1) if (m := re.search(r"pushed (\d+) task", text)) else "?" for text in logs]
    problems_in_logs = collections.Counter(m.group(0).lower() for text in logs for m in LOG_PROBLEMS.finditer(text))
    warnings = sum(text.count('"level": "WARNING"') + text.count(" WARNING ") for text in logs)
    stats = {"chatwoot": cw.stats(), "onec": oc.stats()}
    counts = task_counts(db_path)
    violations = verify(db_path, cw, oc, n) if done_at is not None else [
        f"not all tasks done after {timeout:.0f}s / process exit: {sorted(counts.items())}"]
    # Throughput over the first and the second half of the 3·N tasks (in consultations' worth, 3 tasks each):
    # does it sag as the upstreams' state grows? (Per consultation it would mislead: the drain takes due tasks
    # oldest first, so every chatwoot_number follow-up, queued when its consultation's second upstream
    # finished, waits until the whole backlog of first pushes is through.)
    half = next((t for t, k in progress if k >= 3 * n // 2), None)
    halves = (n / 2 / half if half else None, n / 2 / (done_at - half) if half and done_at else None)
    first_number = next((t for t, k in number_progress if k > 0), None)
    return {"processes": processes, "seconds": done_at, "halves": halves, "first_number": first_number,
            "exited": [exited[i] for i in range(len(procs))],
            "codes": codes, "pushed": pushed, "sync_cpu": sync_cpu, "emu_cpu": emu_cpu, "stats": stats,
            "counts": counts, "violations": violations, "log_problems": dict(problems_in_logs),
            "warnings": warnings, "load": load, "load_after": bl.loadavg()}


def render_drain(n: int, seed_seconds: float, results: list[dict]) -> str:
    rows = []
    for r in results:
        s = r["seconds"]
        cw_calls = r["stats"]["chatwoot"].get("total", 0) / n
        oc_calls = r["stats"]["onec"].get("total", 0) / n
        rows.append([
            f"{r['processes']}", f"{s:.1f}" if s else "not done", f"{n / s:,.1f}" if s else "–",
            " / ".join(f"{h:,.1f}" if h else "–" for h in r["halves"]),
            f"{r['first_number']:.0f}" if r["first_number"] is not None else "–",
            f"{cw_calls:.2f}", f"{oc_calls:.2f}", f"{cw_calls + oc_calls:.2f}",
            ", ".join(f"{e:.1f}" for e in r["exited"]) + " (" + "/".join(r["pushed"]) + ")",
            f"{r['sync_cpu']:.0f}", f"{r['emu_cpu']['chatwoot']:.0f} / {r['emu_cpu']['onec']:.0f}",
            "OK" if not r["violations"] else "**VIOLATED**", r["load"],
        ])
    table = bl.md_table(
        ["sync processes", "seconds to all done", "consultations/s", "1st half / 2nd half of the tasks, cons./s",
         "first number_con written at s",
         "Chatwoot calls/cons.", "1C calls/cons.",
         "total calls/cons.", "process exit s (tasks pushed)", "sync CPU s", "emulator CPU s (CW / 1C)",
         "exactly once", "machine before the run"], rows)
    routes = sorted({(up, k) for r in results for up, st in r["stats"].items() for k in st if k != "total"})
    route_rows = [[up, route_key(k),
                   *[f"{r['stats'][up].get(k, 0) / n:.2f}" for r in results]] for up, k in routes]
    route_table = bl.md_table(["upstream", "route", *[f"calls/cons. ({r['processes']}p)" for r in results]],
                              route_rows, "ll" + "r" * len(results))
    notes = []
    for r in results:
        for v in r["violations"]:
            notes.append(f"- **{r['processes']}p: {v}**")
        if r["log_problems"]:
            notes.append(f"- {r['processes']}p sync logs: {r['log_problems']}")
        if r["warnings"]:
            notes.append(f"- {r['processes']}p sync logs: {r['warnings']} warning line(s) (retried attempts)")
        if any(c != 0 for c in r["codes"]):
            notes.append(f"- {r['processes']}p exit codes {r['codes']}")
    return "\n".join([
        f"## A. Drain a backlog of {n:,} consultations (SQLite)", "",
        f"Backlog written through the service layer in {seed_seconds:.1f} s ({n / seed_seconds:,.0f}/s). "
        "Time = start of `flask --app clobus_consult sync run` until every chatwoot, onec and chatwoot_number "
        "task is done (DB polled every 0.2 s). Emulators reset before each variant; they run on the same "
        "2 cores, so their CPU is part of the cost.", "",
        table, "", "Calls per consultation by route:", "", route_table, "", *notes, ""])


# --------------------------------------------------------------------------------------------- B. intake


def health_breakers(base: str, polls: int) -> collections.Counter:
    """Chatwoot breaker state as seen by `polls` fresh connections (each answered by some worker)."""
    seen = collections.Counter()
    for _ in range(polls):
        try:
            req = urllib.request.Request(base + "/api/health", headers={"Connection": "close"})
            with urllib.request.urlopen(req, timeout=10) as r:
                seen[json.loads(r.read())["upstreams"]["chatwoot"]["breaker"]] += 1
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            seen[f"error {type(exc).__name__}"] += 1
    return seen


def open_breakers(base: str, token: str, workers: int, max_seconds: float = 150.0) -> dict:
    """W sequential senders post until the last 2·W answers were fast and /api/health says 'open' 40/40."""
    log: list[tuple[float, float, int]] = []  # (start offset, latency, status)
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.monotonic()
    nonce = secrets.token_hex(3)
    counter = iter(range(10**9))

    def sender():
        while not stop.is_set():
            with lock:
                i = next(counter)
            body = {"client": {"email": f"open-{nonce}-{i}@example.com"},
                    "consultation": {"comment": f"Breaker opener {nonce} {i}", "lang": "ru"}, "source": "SITE"}
            s = time.monotonic()
            status, _ = bl.post_json(base + "/api/consultations/create", body, token)
            with lock:
                log.append((s - t0, time.monotonic() - s, status))

    checks = []
    with cf.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(sender) for _ in range(workers)]
        try:
            while time.monotonic() - t0 < max_seconds:
                time.sleep(0.5)
                with lock:
                    recent = sorted(log)[-2 * workers:]
                    enough = len(log) >= 3 * workers + 2
                if enough and len(recent) == 2 * workers and all(lat < 1.0 for _, lat, _ in recent):
                    seen = health_breakers(base, 40)
                    checks.append(dict(seen))
                    if seen.get("open", 0) == 40:
                        break
        finally:
            stop.set()
            for f in futures:
                f.result()
    opened_after = time.monotonic() - t0
    slow = [lat for _, lat, _ in log if lat >= 1.0]
    last_slow = max((s + lat for s, lat, _ in log if lat >= 1.0), default=0.0)
    return {"requests": len(log), "slow": len(slow), "slow_p50": bl.percentile(slow, 50),
            "slow_max": max(slow, default=float("nan")), "all_p50": bl.percentile([x[1] for x in log], 50),
            "non200": sum(st != 200 for _, _, st in log), "last_slow_end": last_slow,
            "opened_after": opened_after, "checks": checks,
            "all_open": bool(checks) and checks[-1].get("open", 0) == 40}


def intake(args, tmp: Path, cw: bl.Emulator, oc: bl.Emulator) -> dict:
    cw.reset()
    oc.reset()
    token = secrets.token_urlsafe(24)
    extra = {"CLOBUS_SCHEDULER_ENABLED": "true" if args.scheduler else "false", **cw.service_env(),
             **oc.service_env()}
    env = bl.service_env(tmp, "intake", token, **extra)
    # bl.service_env sends the access log to /dev/null (production: stdout), as http_bench.py does.
    if args.workers:
        env["GUNICORN_WORKERS"] = str(args.workers)
    workers = args.workers or bl.gunicorn_conf_workers()
    server = bl.start_server(bl.Server("intake", ["wsgi:app"], env, tmp))
    wrk = {"threads": args.threads, "connections": args.connections}
    url = server.base + "/api/consultations/create"
    pg = {server.proc.pid, cw.pid, oc.pid}
    out: dict = {"workers": workers}

    load = bl.wait_idle(args.max_busy, args.wait_idle, "intake: ")
    bl.run_wrk(url, bl.lua_create(tmp, token), duration=2, **wrk)  # warm-up
    healthy = []
    calls = {"chatwoot": 0, "onec": 0}
    created = 0
    db_path = tmp / "intake-instance" / "clobus.sqlite3"

    def consultations() -> int:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute("SELECT COUNT(*) FROM consultation").fetchone()[0]
        finally:
            conn.close()

    time.sleep(2)  # the warm-up's follow-ups
    for _ in range(args.rounds):
        before = {e.kind: e.stats().get("total", 0) for e in (cw, oc)}
        rows_before = consultations()
        with bl.CpuMeter(pg) as meter:
            r = bl.parse_wrk("healthy", bl.run_wrk(url, bl.lua_create(tmp, token), duration=args.duration, **wrk))
        r.other_cpu = meter.other_cores
        time.sleep(2)  # the chatwoot_number follow-ups run after the answer
        for e in (cw, oc):
            calls[e.kind] += e.stats().get("total", 0) - before[e.kind]
        created += consultations() - rows_before
        healthy.append(r)
        print(f"  healthy  {r.rps:7.1f} req/s  p50 {r.p50_ms:8.1f} ms  p99 {r.p99_ms:8.1f} ms  "
              f"errors {r.errors}  other CPU {bl.http_bench.fmt_cores(r.other_cpu)}", flush=True)
    out["healthy"] = bl.median_result(healthy)
    out["healthy_load"] = load
    out["healthy_calls"] = calls
    out["healthy_made"] = created  # rows written, including requests still in flight when wrk stopped

    # Let the healthy run's background follow-ups finish before breaking Chatwoot.
    time.sleep(2)
    hang = []
    opening = []
    for round_no in range(args.rounds):
        cw.faults("hang", delay=args.hang_delay)
        print(f"  Chatwoot hangs ({args.hang_delay:g} s); opening every worker's breaker (W={workers})...",
              flush=True)
        o = open_breakers(server.base, token, workers)
        opening.append(o)
        print(f"    {o['requests']} requests, {o['slow']} slow (p50 {o['slow_p50']:.2f} s, max {o['slow_max']:.2f} s); "
              f"all open after {o['opened_after']:.1f} s: {o['all_open']} {o['checks'][-1:] }", flush=True)
        with bl.CpuMeter(pg) as meter:
            r = bl.parse_wrk("Chatwoot hanging", bl.run_wrk(url, bl.lua_create(tmp, token),
                                                            duration=args.duration, **wrk))
        r.other_cpu = meter.other_cores
        after = health_breakers(server.base, 40)
        o["after"] = dict(after)
        hang.append(r)
        print(f"  hanging  {r.rps:7.1f} req/s  p50 {r.p50_ms:8.1f} ms  p99 {r.p99_ms:8.1f} ms  "
              f"errors {r.errors}  breakers after the run: {dict(after)}", flush=True)
        if round_no + 1 < args.rounds:
            # Close the breakers again: Chatwoot healthy, cooloff over, one successful request per worker.
            cw.faults("none")
            time.sleep(32)
            bl.run_wrk(url, bl.lua_create(tmp, token), duration=3, **wrk)
    cw.faults("none")
    out["hang"] = bl.median_result(hang)
    out["opening"] = opening
    log = server.log_tail(100000)
    out["log_problems"] = dict(collections.Counter(m.group(0).lower() for m in LOG_PROBLEMS.finditer(log)))
    out["load_after"] = bl.loadavg()
    server.stop()
    return out


def render_intake(args, r: dict) -> tuple[str, bool]:
    h, g = r["healthy"], r["hang"]
    ratio = g.p99_ms / h.p99_ms if h.p99_ms else float("inf")
    rows = []
    for name, res in (("both healthy", h), ("Chatwoot hanging, breakers open", g)):
        rows.append([name, f"{res.rps:,.1f}", f"{res.p50_ms:,.1f}", f"{res.p99_ms:,.1f}", f"{res.requests:,}",
                     f"{res.errors}", bl.http_bench.fmt_cores(res.other_cpu)])
    table = bl.md_table(["phase", "requests/s", "p50 ms", "p99 ms", "requests", "errors", "other CPU (cores)"],
                        rows)
    ok = ratio <= TARGET_HANG_RATIO and h.errors == 0 and g.errors == 0
    open_rows = [[f"{i + 1}", f"{o['requests']}", f"{o['slow']}", f"{o['slow_p50']:.2f}", f"{o['slow_max']:.2f}",
                  f"{o['opened_after']:.1f}", f"{o['non200']}",
                  "yes" if o["all_open"] else "**no**", json.dumps(o.get("after", {}))]
                 for i, o in enumerate(r["opening"])]
    opening = bl.md_table(["round", "requests sent", "slow (≥ 1 s)", "slow p50 s", "slow max s",
                           "seconds until all open", "non-200", "all 40 health polls open",
                           "breakers after the wrk run (40 polls)"], open_rows)
    calls = r["healthy_calls"]
    text = "\n".join([
        "## B. Intake latency: Chatwoot healthy vs hanging", "",
        f"gunicorn -c gunicorn.conf.py wsgi:app, workers={r['workers']} threads="
        f"{os.environ.get('GUNICORN_THREADS', '4 (conf)')}, SQLite, SYNC_INLINE_BUDGET_SECONDS=5 (default), "
        f"scheduler {'ON' if args.scheduler else 'off'}, rate limits off; wrk {args.threads} threads, "
        f"{args.connections} connections, {args.duration:g} s per run, {args.rounds} round(s) (median). Every "
        "request a new client and a unique comment. Load before the healthy run: "
        f"{r['healthy_load']}; after everything: {r['load_after']}.", "",
        table, "",
        f"| ratio | value | target | verdict |\n| --- | ---: | ---: | --- |\n"
        f"| hanging p99 / healthy p99 | {ratio:.2f} | ≤ {TARGET_HANG_RATIO} | "
        f"{'PASS' if ratio <= TARGET_HANG_RATIO else 'MISS'} |", "",
        f"Healthy phase upstream calls (measured runs): Chatwoot {calls['chatwoot']:,}, 1C {calls['onec']:,} "
        f"for {r['healthy_made']:,} consultations written, i.e. {calls['chatwoot'] / max(r['healthy_made'], 1):.2f} + "
        f"{calls['onec'] / max(r['healthy_made'], 1):.2f} per consultation (inline + background follow-up).", "",
        "What it cost to open the breakers (Chatwoot set to hang 30 s; W sequential senders; a request whose "
        "inline Chatwoot attempt is tried waits the full 5 s budget; the failure that counts towards the "
        "breaker only arrives when the 10 s read timeout expires):", "",
        opening, "",
        (f"Service log: {r['log_problems']}" if r["log_problems"] else "Service log: no 'database is locked', "
                                                                       "no traceback."), ""])
    return text, ok


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="500 consultations, 5 s wrk runs")
    ap.add_argument("--consultations", "-n", type=int, default=5000)
    ap.add_argument("--processes", default="1,2", help="sync process counts to try (default 1,2)")
    ap.add_argument("--drain-timeout", type=float, default=600.0)
    ap.add_argument("--only", choices=("drain", "intake"), help="run one part only")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10, ≤ 15)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat each intake phase, report the median")
    ap.add_argument("--connections", "-c", type=int, default=8)
    ap.add_argument("--threads", "-t", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="GUNICORN_WORKERS (default: the conf's)")
    ap.add_argument("--hang-delay", type=float, default=30.0)
    ap.add_argument("--scheduler", action="store_true",
                    help="intake with the scheduler ON (production), i.e. background drains during the outage")
    ap.add_argument("--max-load", type=float, default=1.5, help="at start, wait for a 1-min load below this")
    ap.add_argument("--wait-load", type=float, default=60.0, help="…but at most this many seconds (default 60)")
    ap.add_argument("--max-busy", type=float, default=0.6,
                    help="before each measurement, wait until fewer cores than this are busy elsewhere")
    ap.add_argument("--wait-idle", type=float, default=20.0, help="…but at most this many seconds (default 20)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.consultations, args.duration = 500, 5.0
        args.wait_load = min(args.wait_load, 10.0)
    if shutil.which("wrk") is None and args.only != "drain":
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    bl.install_signal_handlers()
    tmp = Path(tempfile.mkdtemp(prefix="clobus-sync-bench-"))
    if not args.keep:
        bl.on_cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    else:
        bl.on_cleanup(lambda: print(f"kept {tmp}"))
    sections, ok = [], True
    meta = [f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- commit: {bl.git_rev()}", f"- machine: {os.cpu_count()} CPUs, everything on one host over loopback",
            f"- load average (1/5/15) at start: {bl.loadavg()}"]
    try:
        meta[-1] = f"- load average (1/5/15) at start: {bl.wait_quiet(args.max_load, args.wait_load)}"
        print(meta[-1], flush=True)
        cw, oc = bl.start_emulators(tmp, bl.base_env())
        if args.only != "intake":
            n = args.consultations
            template = tmp / "template.sqlite3"
            print(f"A. writing {n:,} pending consultations...", flush=True)
            seed = seed_template(template, n, tmp)
            print(f"   {seed:.1f} s ({n / seed:,.0f}/s)", flush=True)
            results = []
            for p in [int(x) for x in args.processes.split(",")]:
                load = bl.wait_idle(args.max_busy, args.wait_idle, f"drain {p}p: ")
                print(f"A. drain with {p} process(es) ({load})...", flush=True)
                r = drain_variant(p, template, tmp, cw, oc, n, args.drain_timeout, load)
                results.append(r)
                s = r["seconds"]
                speed = f"{s:.1f} s, {n / s:.1f} consultations/s" if s else "NOT DONE"
                per = {up: r["stats"][up].get("total", 0) / n for up in ("chatwoot", "onec")}
                print(f"   {speed}; calls/cons. Chatwoot {per['chatwoot']:.2f}, 1C {per['onec']:.2f}; "
                      f"exits {[round(e, 1) for e in r['exited']]} pushed {r['pushed']}; "
                      f"violations: {r['violations'] or 'none'}; log: {r['log_problems'] or 'clean'}", flush=True)
                ok &= not r["violations"] and not r["log_problems"]
            sections.append(render_drain(n, seed, results))
        if args.only != "drain":
            print("B. intake latency...", flush=True)
            r = intake(args, tmp, cw, oc)
            text, good = render_intake(args, r)
            sections.append(text)
            ok &= good and not r["log_problems"]
        text = "\n".join(["# Sync benchmark: exactly-once drain and intake under a hanging Chatwoot", "", *meta,
                          f"- load average at the end: {bl.loadavg()}", "", *sections])
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
