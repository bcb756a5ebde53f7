#!/usr/bin/env python3
"""Fill a database with N consultations (and their clients, ~5 per client) for scale checks.

    python scripts/generate_data.py --consultations 1000000 [--database-url sqlite:///instance/big.sqlite3]

Applies migrations first, then inserts in large batches inside transactions (multi-row INSERTs through
peewee), with sync tasks marked done as if the upstreams had accepted everything. Prints rows/s.
"""
import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clobus_consult import create_app  # noqa: E402
from clobus_consult.db import db, is_sqlite  # noqa: E402
from clobus_consult.models import Client, Consultation, SyncTask  # noqa: E402

STATUSES = ["new", "pending", "pending", "closed", "closed", "closed", "other"]


def bulk_insert(model, rows: list[dict]) -> None:
    """executemany of one prepared INSERT: far faster than building multi-row statements in Python."""
    if not rows:
        return
    names = list(rows[0])
    columns = ", ".join(model._meta.fields[n].column_name for n in names)
    marks = ", ".join([db.param] * len(names))
    sql = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})'
    db.cursor().executemany(sql, [tuple(r[n] for n in names) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=1_000_000)
    parser.add_argument("--per-client", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("CLOBUS_DATABASE_URL"))
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()

    config = {"SCHEDULER_ENABLED": False, "AUTH_MODE": "any", "LOG_FORMAT": "text"}
    if args.database_url:
        config["DATABASE_URL"] = args.database_url
    app = create_app(config)
    rng = random.Random(7070)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    started = time.perf_counter()
    n_clients = max(1, args.consultations // args.per_client)
    with app.app_context(), db.connection_context():
        if is_sqlite():
            db.execute_sql("PRAGMA synchronous = OFF")
        made = 0
        while made < args.consultations:
            clients, consultations, tasks = [], [], []
            for _ in range(min(args.batch // args.per_client, n_clients)):
                client_id = str(uuid.uuid4())
                email = f"user{uuid.uuid4().hex[:12]}@example.com"
                phone = f"+9989{rng.randrange(10**7, 10**8)}"
                created = now - dt.timedelta(days=rng.randrange(0, 720), seconds=rng.randrange(86400))
                clients.append({"id": client_id, "identity": f"{email}|{phone}|", "email": email,
                                "phone_number": phone, "created_at": created, "updated_at": created})
                for _k in range(args.per_client):
                    if made >= args.consultations:
                        break
                    made += 1
                    cid = str(uuid.uuid4())
                    at = created + dt.timedelta(minutes=rng.randrange(0, 500_000))
                    consultations.append({
                        "id": cid, "client": client_id, "cons_id": str(made), "cl_ref_key": str(uuid.uuid4()),
                        "number": f"{made:011d}", "status": rng.choice(STATUSES), "lang": rng.choice(["ru", "uz"]),
                        "comment": f"Вопрос номер {made}", "source": "SITE", "fingerprint": uuid.uuid4().hex * 2,
                        "created_at": at, "updated_at": at})
                    for target in ("chatwoot", "onec"):
                        tasks.append({"id": str(uuid.uuid4()), "consultation": cid, "target": target,
                                      "state": "done", "attempts": 1, "uncertain": False, "next_attempt_at": at,
                                      "created_at": at, "updated_at": at})
            with db.atomic():
                for model, rows in ((Client, clients), (Consultation, consultations), (SyncTask, tasks)):
                    bulk_insert(model, rows)
            elapsed = time.perf_counter() - started
            print(f"\r{made:>9} consultations  {made / elapsed:,.0f}/s", end="", flush=True)
        db.execute_sql("ANALYZE")
    print(f"\ndone: {made} consultations, {n_clients} clients in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
