"""Sync across real processes: a serving process killed with SIGKILL mid-push, and two processes draining
one outbox. The service runs under gunicorn (or the flask CLI); the emulators serve over HTTP."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from .conftest import AUTH, TOKEN
from .processes import ROOT, gunicorn
from .upstreams import both_emulators, upstream_config


@pytest.fixture
def emulators():
    with both_emulators() as handles:
        yield handles


def service_env(app, cw, oc, **extra) -> dict:
    env = {"CLOBUS_DATABASE_URL": app.config["DATABASE_URL"], "CLOBUS_AUTH_MODE": "static",
           "CLOBUS_API_TOKENS": TOKEN}
    for key, value in upstream_config(cw, oc).items():
        env[f"CLOBUS_{key}"] = str(value)
    env.update({f"CLOBUS_{k}": str(v) for k, v in extra.items()})
    return env


def test_kill_9_mid_push_then_restart_leaves_one_object_each(make_app, emulators, tmp_path):
    cw, oc = emulators
    app = make_app()  # creates the schema; the servers below share its database
    env = service_env(app, cw, oc, SYNC_LEASE_SECONDS=2, SYNC_INTERVAL_SECONDS=1, SYNC_INLINE_BUDGET_SECONDS=30)
    instance = tmp_path / "instance"
    # Both upstreams take 2 s to answer a create: the process dies while they work, and they commit anyway.
    cw.fault("slow", match=cw.CONVERSATIONS, times=1, delay=2)
    oc.fault("slow", match=oc.DOCUMENTS, times=1, delay=2)
    with gunicorn(instance, env, workers=1) as url:
        client_id = requests.post(f"{url}/api/clients", json={"email": "kill@example.com"}, headers=AUTH,
                                  timeout=5).json()["client_id"]
        request = threading.Thread(target=lambda: _swallow(lambda: requests.post(
            f"{url}/api/consultations/simple", json={"client_id": client_id, "comment": "Убитый процесс"},
            headers=AUTH, timeout=30)))
        request.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (cw.stats().get("total", 0) >= 3 and
                                                   any("Document" in k for k in oc.stats())):
            time.sleep(0.02)
        os.killpg(url.proc.pid, signal.SIGKILL)  # master and worker, no chance to clean up
        request.join()
    time.sleep(2.5)  # the upstreams finish their slow writes; the dead worker's lease runs out
    assert len(cw.state()["conversations"]) == 1 and len(oc.documents()) == 1
    env["CLOBUS_SCHEDULER_ENABLED"] = "true"
    with gunicorn(instance, env, workers=1) as url:
        tickets = requests.get(f"{url}/api/tickets/clients/{client_id}/tickets", headers=AUTH, timeout=5).json()
        assert tickets["total"] == 1  # the request was stored before the crash
        cid = tickets["tickets"][0]["consultation_id"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            t = requests.get(f"{url}/api/tickets/{cid}", headers=AUTH, timeout=5).json()
            if t["sync"]["chatwoot"]["state"] == t["sync"]["onec"]["state"] == "done":
                break
            time.sleep(0.2)
        assert t["sync"]["chatwoot"]["state"] == "done" and t["sync"]["onec"]["state"] == "done", t["sync"]
    conversations = cw.state()["conversations"]
    assert len(conversations) == 1 and str(conversations[0]["id"]) == t["cons_id"]
    docs = oc.documents()
    assert len(docs) == 1 and docs[0]["Ref_Key"] == t["cl_ref_key"] and docs[0]["Number"] == t["number"]


def _swallow(fn):
    try:
        fn()
    except requests.RequestException:
        pass


def test_two_processes_draining_one_outbox_push_each_task_once(make_app, emulators, tmp_path):
    cw, oc = emulators
    app = make_app(**upstream_config(cw, oc), SYNC_INLINE_BUDGET_SECONDS=0)
    cw.fault("503")
    oc.fault("503")
    client = app.test_client()
    made = []
    for i in range(20):
        r = client.post("/api/consultations/create", headers=AUTH, json={
            "client": {"email": f"drain{i}@example.com"}, "consultation": {"comment": f"Вопрос {i}"}})
        made.append(r.get_json()["consultation"]["consultation_id"])
    cw.clear()
    oc.clear()
    from clobus_consult.db import db
    from clobus_consult.models import SyncTask, utcnow

    with app.app_context(), db.connection_context():
        SyncTask.update(next_attempt_at=utcnow()).where(SyncTask.state == "pending").execute()
    env = {**os.environ, **service_env(app, cw, oc), "CLOBUS_INSTANCE": str(tmp_path / "instance")}
    drainers = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "clobus_consult", "sync", "run"],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in drainers]
    assert all(p.returncode == 0 for p in drainers), "\n".join(outputs)
    pushed = [int(out.strip().splitlines()[-1].split()[1]) for out in outputs]
    assert sum(pushed) >= 40  # 20 × (chatwoot + 1C), plus the number follow-ups, split between the two
    for cid in made:
        assert len(cw.conversations_of(cid)) == 1
    assert len({d["Ref_Key"] for d in oc.documents()}) == len(oc.documents()) == 20
    for cid in made:
        t = client.get(f"/api/tickets/{cid}", headers=AUTH).get_json()
        assert t["sync"]["chatwoot"]["state"] == t["sync"]["onec"]["state"] == "done"
